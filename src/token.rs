//! Tokens: what the loop stores in `epoll_event.u64` to find a registration.
//!
//! In the event path: between `epoll_wait` and dispatch. Each event carries
//! a token; it is checked against the slab before any handler runs.
//!
//! A token is a slab key plus a generation. The slab reuses keys, and the
//! kernel reuses fd numbers, so a key alone could deliver an event that was
//! meant for a closed connection to the connection that took its slot. The
//! generation is bumped on every insertion; an event whose generation does
//! not match the slot's current occupant is dropped.

use slab::Slab;

/// Identifies one registration in the loop: slab key + generation.
///
/// Two tokens are equal only if they name the same occupancy of the same
/// slot: a connection that reuses a closed one's slot gets a different token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    key: u32,
    generation: u32,
}

impl Token {
    /// Builds a token from its parts.
    pub const fn new(key: u32, generation: u32) -> Token {
        Token { key, generation }
    }

    /// The slab key (slot index).
    pub const fn key(self) -> usize {
        self.key as usize
    }

    /// The generation of the slot's occupant this token was issued for.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the token into the 64 bits of `epoll_event.data`.
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.key as u64
    }

    /// Unpacks a token from `epoll_event.data`.
    pub const fn from_u64(v: u64) -> Token {
        Token {
            key: v as u32,
            generation: (v >> 32) as u32,
        }
    }
}

/// A slab whose entries are addressed by generation-checked [`Token`]s.
#[derive(Debug)]
pub struct Registry<T> {
    slab: Slab<(u32, T)>,
    next_generation: u32,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            slab: Slab::new(),
            next_generation: 1,
        }
    }
}

impl<T> Registry<T> {
    /// An empty registry.
    pub fn new() -> Registry<T> {
        Registry::default()
    }

    /// Stores `value` in a free slot and returns its token.
    pub fn insert(&mut self, value: T) -> Token {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let key = self.slab.insert((generation, value));
        Token::new(key as u32, generation)
    }

    /// The token a value inserted now would receive.
    pub fn vacant_token(&self) -> Token {
        Token::new(self.slab.vacant_key() as u32, self.next_generation)
    }

    /// The value `token` names, if that occupancy is still present.
    #[inline]
    pub fn get(&self, token: Token) -> Option<&T> {
        match self.slab.get(token.key()) {
            Some((g, v)) if *g == token.generation => Some(v),
            _ => None,
        }
    }

    /// Mutable access to the value `token` names, if still present.
    #[inline]
    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        match self.slab.get_mut(token.key()) {
            Some((g, v)) if *g == token.generation => Some(v),
            _ => None,
        }
    }

    /// What `token`'s slot holds, without comparing generations: for a
    /// caller that checked `token` with [`Registry::get_mut`] and knows the
    /// slot has not been emptied since (the loop finds a connection again
    /// after its callback: connections leave only at the end of the turn).
    #[inline]
    pub(crate) fn get_mut_checked_before(&mut self, token: Token) -> Option<&mut T> {
        debug_assert!(self
            .slab
            .get(token.key())
            .is_some_and(|(g, _)| *g == token.generation));
        self.slab.get_mut(token.key()).map(|(_, v)| v)
    }

    /// Removes and returns the value `token` names, if still present.
    pub fn remove(&mut self, token: Token) -> Option<T> {
        match self.slab.get(token.key()) {
            Some((g, _)) if *g == token.generation => Some(self.slab.remove(token.key()).1),
            _ => None,
        }
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Every stored value with its token.
    pub fn iter(&self) -> impl Iterator<Item = (Token, &T)> {
        self.slab
            .iter()
            .map(|(k, (g, v))| (Token::new(k as u32, *g), v))
    }

    /// The tokens of every stored value.
    pub fn tokens(&self) -> Vec<Token> {
        self.iter().map(|(t, _)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_packs_into_u64_and_back() {
        let t = Token::new(0xdead_beef, 0x1234_5678);
        assert_eq!(Token::from_u64(t.to_u64()), t);
    }

    #[test]
    fn a_reused_slot_rejects_the_old_token() {
        let mut reg = Registry::new();
        let old = reg.insert("closed connection");
        assert_eq!(reg.remove(old), Some("closed connection"));
        let new = reg.insert("new occupant");
        assert_eq!(new.key(), old.key(), "the slab reuses the slot");
        assert_ne!(new, old);
        assert_eq!(
            reg.get(old),
            None,
            "a stale event must not reach the new occupant"
        );
        assert_eq!(reg.get_mut(old), None);
        assert_eq!(reg.remove(old), None);
        assert_eq!(reg.get(new), Some(&"new occupant"));
    }
}
