//! The http example's answers carry a `Date` (IMF-fixdate, always 29
//! bytes): tests that compare answers byte for byte check each date's
//! shape and then compare against [`EPOCH`] in its place.

/// The date the expected answers are written with.
pub const EPOCH: &[u8; 29] = b"Thu, 01 Jan 1970 00:00:00 GMT";

const FIELD: &[u8] = b"\r\nDate: ";

/// Whether `d` has the shape of an IMF-fixdate (`Sun, 06 Nov 1994
/// 08:49:37 GMT`).
pub fn is_imf_fixdate(d: &[u8]) -> bool {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let digits = |r: std::ops::Range<usize>| d[r].iter().all(u8::is_ascii_digit);
    d.len() == 29
        && DAYS.contains(&&d[0..3])
        && &d[3..5] == b", "
        && digits(5..7)
        && d[7] == b' '
        && MONTHS.contains(&&d[8..11])
        && d[11] == b' '
        && digits(12..16)
        && d[16] == b' '
        && digits(17..19)
        && d[19] == b':'
        && digits(20..22)
        && d[22] == b':'
        && digits(23..25)
        && &d[25..] == b" GMT"
}

/// `answers` with every `Date` value checked (panics on a malformed one)
/// and replaced by [`EPOCH`].
pub fn mask_dates(answers: &[u8]) -> Vec<u8> {
    let mut out = answers.to_vec();
    let mut from = 0;
    while let Some(i) = find(&out[from..], FIELD) {
        let at = from + i + FIELD.len();
        let end = (at + 29).min(out.len());
        assert!(
            is_imf_fixdate(&out[at..end]),
            "malformed Date {:?}",
            String::from_utf8_lossy(&out[at..end])
        );
        out[at..end].copy_from_slice(EPOCH);
        from = end;
    }
    out
}

/// `mask_dates` for text.
pub fn mask_dates_str(answers: &str) -> String {
    String::from_utf8(mask_dates(answers.as_bytes())).expect("utf-8")
}

/// The positions of `template`'s date value (where [`EPOCH`] stands), for
/// tests that compare a stream byte by byte.
pub fn date_span(template: &[u8]) -> Option<std::ops::Range<usize>> {
    find(template, FIELD).map(|i| i + FIELD.len()..i + FIELD.len() + 29)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
