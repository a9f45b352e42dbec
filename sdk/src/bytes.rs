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

/// A set of byte strings searched for in one pass over the data: a bitmap of the patterns'
/// first two bytes rejects most positions with one lookup, and a position that passes is checked
/// only against the patterns that start with its byte. For the tens of literals a detector looks
/// for (function names, URLs, markers) it costs 8 KiB and a table of 256 lists, not a regex
/// engine.
pub struct Patterns {
    patterns: Vec<Vec<u8>>,
    /// For each first byte (lower-cased when ignoring case), the patterns starting with it.
    by_first_byte: Vec<Vec<usize>>,
    /// One bit per pair of bytes (lower-cased when ignoring case) that starts a pattern; every
    /// pair starting with the byte of a one-byte pattern.
    first_pairs: Vec<u64>,
    ignore_case: bool,
}

/// Where one pattern of a [`Patterns`] set was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternMatch {
    /// The pattern's index in the set, in the order given.
    pub pattern: usize,
    /// Where it starts in the data.
    pub offset: usize,
}

impl Patterns {
    /// The patterns, matched exactly. Empty patterns are ignored.
    pub fn new<P: AsRef<[u8]>>(patterns: impl IntoIterator<Item = P>) -> Self {
        Self::build(patterns, false)
    }

    /// The patterns, matched with ASCII letters in either case.
    pub fn ignore_ascii_case<P: AsRef<[u8]>>(patterns: impl IntoIterator<Item = P>) -> Self {
        Self::build(patterns, true)
    }

    fn build<P: AsRef<[u8]>>(patterns: impl IntoIterator<Item = P>, ignore_case: bool) -> Self {
        let patterns: Vec<Vec<u8>> = patterns
            .into_iter()
            .map(|pattern| pattern.as_ref().to_vec())
            .collect();
        let fold = |byte: u8| {
            if ignore_case {
                byte.to_ascii_lowercase()
            } else {
                byte
            }
        };
        let mut by_first_byte = vec![Vec::new(); 256];
        let mut first_pairs = vec![0u64; 65536 / 64];
        let mut mark = |pair: usize| first_pairs[pair / 64] |= 1 << (pair % 64);
        for (index, pattern) in patterns.iter().enumerate() {
            let Some(&first) = pattern.first() else {
                continue;
            };
            let first = fold(first) as usize;
            by_first_byte[first].push(index);
            match pattern.get(1) {
                Some(&second) => mark(first << 8 | fold(second) as usize),
                None => (0..256).for_each(|second| mark(first << 8 | second)),
            }
        }
        Self {
            patterns,
            by_first_byte,
            first_pairs,
            ignore_case,
        }
    }

    /// Whether a pattern may start at `offset`: its first two bytes (or its only byte) fit.
    fn may_start(&self, data: &[u8], offset: usize) -> bool {
        let fold = |byte: u8| {
            if self.ignore_case {
                byte.to_ascii_lowercase()
            } else {
                byte
            }
        };
        let first = fold(data[offset]) as usize;
        match data.get(offset + 1) {
            Some(&second) => {
                let pair = first << 8 | fold(second) as usize;
                self.first_pairs[pair / 64] & 1 << (pair % 64) != 0
            }
            None => !self.by_first_byte[first].is_empty(),
        }
    }

    /// Every match in `data`, by offset (several patterns at one offset in the order given;
    /// overlapping matches included).
    pub fn find_iter<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = PatternMatch> + 'a {
        (0..data.len())
            .filter(move |&offset| self.may_start(data, offset))
            .flat_map(move |offset| {
                let byte = if self.ignore_case {
                    data[offset].to_ascii_lowercase()
                } else {
                    data[offset]
                };
                self.by_first_byte[byte as usize]
                    .iter()
                    .filter(move |&&pattern| self.is_at(pattern, data, offset))
                    .map(move |&pattern| PatternMatch { pattern, offset })
            })
    }

    /// The first match in `data`.
    pub fn find(&self, data: &[u8]) -> Option<PatternMatch> {
        self.find_iter(data).next()
    }

    /// The pattern at `index`, as given.
    pub fn pattern(&self, index: usize) -> &[u8] {
        &self.patterns[index]
    }

    fn is_at(&self, pattern: usize, data: &[u8], offset: usize) -> bool {
        let pattern = &self.patterns[pattern];
        let Some(there) = data.get(offset..offset + pattern.len()) else {
            return false;
        };
        if self.ignore_case {
            there.eq_ignore_ascii_case(pattern)
        } else {
            there == &pattern[..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_find_every_match_of_every_pattern_in_one_pass() {
        let set = Patterns::new(["eval(", "atob(", "ev", ""]);
        let found: Vec<(usize, usize)> = set
            .find_iter(b"x=eval(atob('ZXZhbA=='))")
            .map(|m| (m.pattern, m.offset))
            .collect();
        assert_eq!(found, [(0, 2), (2, 2), (1, 7)]);
        assert_eq!(set.find(b"nothing here"), None);
        assert_eq!(
            set.find(b"ev"),
            Some(PatternMatch {
                pattern: 2,
                offset: 0
            })
        );
        assert_eq!(
            set.find(b"eval"),
            Some(PatternMatch {
                pattern: 2,
                offset: 0
            })
        );
        assert_eq!(set.pattern(1), b"atob(");

        let nocase = Patterns::ignore_ascii_case(["Invoke-Expression", "IEX"]);
        let found: Vec<usize> = nocase
            .find_iter(b"iex (new-object net.webclient); INVOKE-EXPRESSION $x")
            .map(|m| m.offset)
            .collect();
        assert_eq!(found, [0, 32]);
        assert_eq!(
            Patterns::new(["IEX"]).find(b"iex"),
            None,
            "exact by default"
        );
    }

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
