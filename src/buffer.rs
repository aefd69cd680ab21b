//! `Buffer`: growable bytes with read and write indices and a hard maximum.
//!
//! In the event path: each connection's input and output. The loop's read
//! path appends what `readv` returned to the input buffer before it calls
//! the handler's `on_data`; `Context::write` appends to the output buffer
//! when the socket cannot take everything at once, and the write path drains
//! it on writability.
//!
//! ```text
//! +-------------------+------------------+------------------+
//! | consumed (free)   |  readable bytes  |  writable space  |
//! +-------------------+------------------+------------------+
//! 0      <=      read_index   <=   write_index   <=   capacity
//! ```
//!
//! The layout is muduo's. Consuming moves `read_index`; appending moves
//! `write_index`; when the tail runs out of room the readable bytes are
//! moved to the front (compaction) before the buffer grows. The buffer never
//! grows past its maximum (default 1 MiB, the notes' `MAX_BUFFER_LENGTH`):
//! appending more is a [`BufferFull`] error for that connection, never a
//! panic or unbounded growth. Unlike the notes' `CNetIOBuffer`, which
//! allocates the full maximum up front and `memset`s it on every reset, this
//! one starts empty, grows on demand, and is released once drained, so an
//! idle connection holds no buffer memory.

use std::fmt;

/// The default maximum size of a buffer: 1 MiB.
pub const DEFAULT_MAX: usize = 1024 * 1024;

/// Appending would take a buffer past its maximum size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferFull {
    /// The buffer's maximum size.
    pub max: usize,
    /// The size the append asked for.
    pub wanted: usize,
}

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer limit exceeded: {} bytes wanted, maximum {}",
            self.wanted, self.max
        )
    }
}

impl std::error::Error for BufferFull {}

impl From<BufferFull> for std::io::Error {
    fn from(e: BufferFull) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::OutOfMemory, e)
    }
}

/// Growable bytes with read/write indices and a maximum size.
#[derive(Clone)]
pub struct Buffer {
    bytes: Vec<u8>,
    read: usize,
    write: usize,
    max: usize,
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer::new()
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("max", &self.max)
            .finish()
    }
}

impl Buffer {
    /// An empty buffer with the default 1 MiB maximum. Allocates nothing.
    pub const fn new() -> Buffer {
        Buffer::with_max(DEFAULT_MAX)
    }

    /// An empty buffer that may hold at most `max` bytes. Allocates nothing.
    pub const fn with_max(max: usize) -> Buffer {
        Buffer {
            bytes: Vec::new(),
            read: 0,
            write: 0,
            max,
        }
    }

    /// The readable bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.read..self.write]
    }

    /// The readable bytes, mutably (for in-place decoding).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[self.read..self.write]
    }

    /// How many bytes are readable.
    #[inline]
    pub fn len(&self) -> usize {
        self.write - self.read
    }

    /// True when nothing is readable.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.read == self.write
    }

    /// The allocated size.
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// The maximum number of readable bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Changes the maximum. Bytes already held are kept even above it.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Marks the first `n` readable bytes as consumed. Consuming more than
    /// is readable consumes everything (it does not panic).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.read += n.min(self.len());
        if self.read == self.write {
            self.read = 0;
            self.write = 0;
        }
    }

    /// Consumes everything, keeping the allocation for reuse.
    #[inline]
    pub fn clear(&mut self) {
        self.read = 0;
        self.write = 0;
    }

    /// Consumes everything and frees the allocation.
    pub fn release(&mut self) {
        self.clear();
        self.bytes = Vec::new();
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// [`BufferFull`] when the result would exceed the maximum; nothing is
    /// appended then.
    #[inline(always)] // three lines on every batched write: keep it inlined
    pub fn extend(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        // The common case, inline: the bytes fit in the tail and within the
        // maximum, so no compaction, growth or error to prepare.
        let end = self.write + data.len();
        if end <= self.bytes.len() && end - self.read <= self.max {
            self.bytes[self.write..end].copy_from_slice(data);
            self.write = end;
            return Ok(());
        }
        self.extend_slow(data)
    }

    /// Appends `data` if it fits in the allocated tail and the buffer then
    /// holds at most `limit` bytes (the maximum is not consulted); false,
    /// with nothing appended, otherwise. For the batching write path, whose
    /// buffer has no maximum and whose own limit is the batch size.
    #[inline(always)]
    pub(crate) fn append_within(&mut self, data: &[u8], limit: usize) -> bool {
        let end = self.write + data.len();
        if end - self.read > limit {
            return false;
        }
        // One range test: the room in the tail is the slice's bounds.
        match self.bytes.get_mut(self.write..end) {
            Some(room) => {
                room.copy_from_slice(data);
                self.write = end;
                true
            }
            None => false,
        }
    }

    #[cold]
    fn extend_slow(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        self.writable(data.len())?[..data.len()].copy_from_slice(data);
        self.write += data.len();
        Ok(())
    }

    /// Makes room for at least `n` more bytes (compacting, then growing
    /// geometrically, never past the maximum) and returns the writable
    /// space. Fill some of it, then call [`Buffer::commit`].
    ///
    /// # Errors
    /// [`BufferFull`] when `len() + n` exceeds the maximum.
    pub fn writable(&mut self, n: usize) -> Result<&mut [u8], BufferFull> {
        let wanted = self.len() + n;
        if wanted > self.max {
            return Err(BufferFull {
                max: self.max,
                wanted,
            });
        }
        if self.bytes.len() - self.write < n {
            if self.read > 0 {
                // Compaction: move the readable bytes to the front.
                self.bytes.copy_within(self.read..self.write, 0);
                self.write -= self.read;
                self.read = 0;
            }
            if self.bytes.len() - self.write < n {
                let cap = wanted
                    .max(self.bytes.len() * 2)
                    .max(64)
                    .min(self.max.max(wanted));
                self.bytes.resize(cap, 0);
            }
        }
        Ok(&mut self.bytes[self.write..])
    }

    /// The writable space already allocated, without growing.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.bytes[self.write..]
    }

    /// Declares that `n` bytes of the writable space were filled.
    /// Committing more than the space is clamped to it.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        self.write = self.write.saturating_add(n).min(self.bytes.len());
    }

    /// [`Buffer::commit`] for the read path, which knows that `n` fits: a
    /// read into [`Buffer::spare`] returns at most its length. Not clamped
    /// (were `n` too large, the next `as_slice` would panic, never read
    /// past the allocation).
    #[inline]
    pub(crate) fn commit_read(&mut self, n: usize) {
        debug_assert!(
            n <= self.bytes.len() - self.write,
            "read past the spare room"
        );
        self.write += n;
    }

    /// Takes `data` into an empty buffer without growing beyond what it
    /// needs, reusing the allocation if large enough.
    ///
    /// # Errors
    /// [`BufferFull`] as for [`Buffer::extend`].
    pub fn replace_with(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        self.clear();
        self.extend(data)
    }

    /// Position of the first occurrence of `needle` in the readable bytes.
    pub fn find(&self, needle: &[u8]) -> Option<usize> {
        if needle.is_empty() {
            return Some(0);
        }
        self.as_slice()
            .windows(needle.len())
            .position(|w| w == needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_consume_and_compact() {
        let mut b = Buffer::with_max(128);
        assert_eq!(b.capacity(), 0, "a new buffer allocates nothing");
        b.extend(b"hello world").unwrap();
        b.consume(6);
        assert_eq!(b.as_slice(), b"world");
        let cap = b.capacity();
        // Room at the tail runs out: the readable bytes move to the front
        // instead of the buffer growing.
        b.extend(&vec![b'x'; cap - 5]).unwrap();
        assert_eq!(b.capacity(), cap);
        assert_eq!(&b.as_slice()[..5], b"world");
        b.consume(usize::MAX);
        assert!(b.is_empty());
    }

    #[test]
    fn maximum_is_an_error_not_growth() {
        let mut b = Buffer::with_max(10);
        b.extend(b"0123456789").unwrap();
        let err = b.extend(b"x").unwrap_err();
        assert_eq!(
            err,
            BufferFull {
                max: 10,
                wanted: 11
            }
        );
        assert_eq!(b.len(), 10, "a failed append appends nothing");
        assert!(b.capacity() <= 10);
    }

    #[test]
    fn release_frees_memory() {
        let mut b = Buffer::new();
        b.extend(&[0u8; 4096]).unwrap();
        b.release();
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn writable_then_commit() {
        let mut b = Buffer::new();
        let w = b.writable(3).unwrap();
        w[..3].copy_from_slice(b"abc");
        b.commit(3);
        assert_eq!(b.as_slice(), b"abc");
        assert_eq!(b.find(b"bc"), Some(1));
        b.commit(usize::MAX);
        assert_eq!(b.len(), b.capacity());
    }
}
