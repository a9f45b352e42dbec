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
    first_pairs: Box<[u64; BITMAP_WORDS]>,
    /// The pairs that start (or are) a pattern of one or two bytes.
    short_pairs: Box<[u64; BITMAP_WORDS]>,
    /// One bit per hash of the first three bytes of the longer patterns.
    first_triples: Box<[u64; BITMAP_WORDS]>,
    /// Each byte as compared: lower-cased when ignoring case, else itself.
    fold: [u8; 256],
    ignore_case: bool,
}

/// Words of a bitmap with one bit per pair of bytes.
const BITMAP_WORDS: usize = 65536 / 64;

/// A zeroed bitmap, made on the heap (plugins run on a small stack).
fn empty_bitmap() -> Box<[u64; BITMAP_WORDS]> {
    vec![0u64; BITMAP_WORDS]
        .into_boxed_slice()
        .try_into()
        .expect("the length is BITMAP_WORDS")
}

fn set_bit(bitmap: &mut [u64], bit: usize) {
    bitmap[bit >> 6] |= 1 << (bit & 63);
}

fn has_bit(bitmap: &[u64], bit: usize) -> bool {
    bitmap[bit >> 6] & 1 << (bit & 63) != 0
}

/// A 16-bit hash of a pair of bytes and the byte after it.
fn triple(pair: usize, third: u8) -> usize {
    (pair.wrapping_mul(0x9E37) ^ (third as usize).wrapping_mul(0x2F1)) & 0xFFFF
}

/// The iterator of [`Patterns::find_iter`].
struct Matches<'a> {
    set: &'a Patterns,
    data: &'a [u8],
    /// Where the next candidate is looked for.
    offset: usize,
    /// Patterns still to try at `offset - 1`.
    candidates: &'a [usize],
}

impl Iterator for Matches<'_> {
    type Item = PatternMatch;

    fn next(&mut self) -> Option<PatternMatch> {
        loop {
            while let Some((&pattern, rest)) = self.candidates.split_first() {
                self.candidates = rest;
                let at = self.offset - 1;
                if self.set.is_at(pattern, self.data, at) {
                    return Some(PatternMatch {
                        pattern,
                        offset: at,
                    });
                }
            }
            let at = self.set.next_candidate(self.data, self.offset)?;
            let first = self.set.fold[self.data[at] as usize];
            self.candidates = &self.set.by_first_byte[first as usize];
            self.offset = at + 1;
        }
    }
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
        let mut first_pairs = empty_bitmap();
        let mut short_pairs = empty_bitmap();
        let mut first_triples = empty_bitmap();
        for (index, pattern) in patterns.iter().enumerate() {
            let Some(&first) = pattern.first() else {
                continue;
            };
            let first = fold(first) as usize;
            by_first_byte[first].push(index);
            match (pattern.get(1), pattern.get(2)) {
                (Some(&second), Some(&third)) => {
                    let pair = first << 8 | fold(second) as usize;
                    set_bit(&mut first_pairs[..], pair);
                    set_bit(&mut first_triples[..], triple(pair, fold(third)));
                }
                (Some(&second), None) => {
                    let pair = first << 8 | fold(second) as usize;
                    set_bit(&mut first_pairs[..], pair);
                    set_bit(&mut short_pairs[..], pair);
                }
                _ => (0..256).for_each(|second| {
                    set_bit(&mut first_pairs[..], first << 8 | second);
                    set_bit(&mut short_pairs[..], first << 8 | second);
                }),
            }
        }
        Self {
            patterns,
            by_first_byte,
            first_pairs,
            short_pairs,
            first_triples,
            fold: std::array::from_fn(|byte| fold(byte as u8)),
            ignore_case,
        }
    }

    /// Every match in `data`, by offset (several patterns at one offset in the order given;
    /// overlapping matches included).
    pub fn find_iter<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = PatternMatch> + 'a {
        Matches {
            set: self,
            data,
            offset: 0,
            candidates: &[],
        }
    }

    /// The next offset from `from` where a pattern may start: its first two bytes (folded) are
    /// a pair some pattern starts with and, for patterns of three bytes or more, the hash of its
    /// first three is one of theirs; or its last byte starts a one-byte pattern. One tight
    /// loop: most positions cost two table reads and a bit test.
    fn next_candidate(&self, data: &[u8], from: usize) -> Option<usize> {
        let fold = &self.fold;
        let pairs: &[u64; BITMAP_WORDS] = &self.first_pairs;
        let rest = data.get(from..)?;
        let (&first, after) = rest.split_first()?;
        let mut previous = fold[first as usize] as usize;
        for (index, &byte) in after.iter().enumerate() {
            let current = fold[byte as usize] as usize;
            let pair = previous << 8 | current;
            previous = current;
            if pairs[pair >> 6] & 1 << (pair & 63) == 0 {
                continue;
            }
            let offset = from + index;
            let third = data.get(offset + 2).map(|&b| fold[b as usize]);
            if has_bit(&self.short_pairs[..], pair)
                || third.is_some_and(|third| has_bit(&self.first_triples[..], triple(pair, third)))
            {
                return Some(offset);
            }
        }
        (!self.by_first_byte[previous].is_empty()).then_some(data.len() - 1)
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

    /// Every (pattern, offset) by trying each pattern at each offset.
    fn naive(patterns: &[&[u8]], data: &[u8], ignore_case: bool) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        for offset in 0..data.len() {
            for (index, pattern) in patterns.iter().enumerate() {
                let there = data.get(offset..offset + pattern.len());
                let equal = there.is_some_and(|there| match ignore_case {
                    true => there.eq_ignore_ascii_case(pattern),
                    false => there == *pattern,
                });
                if !pattern.is_empty() && equal {
                    found.push((index, offset));
                }
            }
        }
        found
    }

    #[test]
    fn patterns_agree_with_a_naive_search_on_dense_text() {
        // A small alphabet makes matches, overlaps and near misses frequent.
        let mut state = 0x2545_F491_u32;
        let text: Vec<u8> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                b"abcAB( |"[(state % 8) as usize]
            })
            .collect();
        let sets: [&[&[u8]]; 4] = [
            &[b"abc", b"ab(", b"cab a", b"| a", b"bbbb"],
            &[b"aaa", b"aab", b"(((", b"c|a|b"],
            &[b"ab", b"abc", b"|", b"B"],
            &[b"ca(", b"ABCAB"],
        ];
        for patterns in sets {
            for ignore_case in [false, true] {
                let set = match ignore_case {
                    true => Patterns::ignore_ascii_case(patterns),
                    false => Patterns::new(patterns),
                };
                let found: Vec<(usize, usize)> = set
                    .find_iter(&text)
                    .map(|m| (m.pattern, m.offset))
                    .collect();
                assert_eq!(
                    found,
                    naive(patterns, &text, ignore_case),
                    "{patterns:?} {ignore_case}"
                );
            }
        }
    }

    #[test]
    fn patterns_find_every_match_of_every_pattern_in_one_pass() {
        let set = Patterns::new(["eval(", "atob(", "ev", ""]);
        let found: Vec<(usize, usize)> = set
            .find_iter(b"x=eval(atob('ZXZhbA=='))")
            .map(|m| (m.pattern, m.offset))
            .collect();
        assert_eq!(found, [(0, 2), (2, 2), (1, 7)]);
        assert_eq!(set.find(b"nothing here"), None);
        assert_eq!(set.find(b""), None);
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
