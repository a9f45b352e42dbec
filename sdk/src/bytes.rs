//! Byte search helpers.

/// The offset of the first `needle` in `haystack` at or after `from`.
pub fn find_from(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return (from <= haystack.len()).then_some(from);
    }
    let first = needle[0];
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let next = haystack[at..=haystack.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        at += next;
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// The offset of the first `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    find_from(haystack, needle, 0)
}

/// Every offset where `needle` starts in `haystack` (overlapping matches included).
pub fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = find_from(haystack, needle, from)?;
        from = at + 1;
        Some(at)
    })
}

/// A little-endian `u16` at `offset`, if the bytes are there.
pub fn u16_le(data: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.get(offset..offset.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// A little-endian `u32` at `offset`, if the bytes are there.
pub fn u32_le(data: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(offset..offset.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// A little-endian `u64` at `offset`, if the bytes are there.
pub fn u64_le(data: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(offset..offset.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_finds_every_occurrence_and_never_reads_past_the_end() {
        assert_eq!(find(b"hello world", b"world"), Some(6));
        assert_eq!(find(b"hello", b"hello!"), None);
        assert_eq!(find(b"", b"a"), None);
        assert_eq!(find_all(b"aaaa", b"aa").collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(find_from(b"abcabc", b"abc", 1), Some(3));
        assert_eq!(u32_le(&[1, 0, 0, 0], 0), Some(1));
        assert_eq!(u32_le(&[1, 0, 0], 0), None);
        assert_eq!(u64_le(&[0; 8], usize::MAX), None);
    }
}
