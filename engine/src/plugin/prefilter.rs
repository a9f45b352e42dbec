//! A plugin's prefilter (contract 0.3.0): byte strings one of which must occur in the plugin's
//! input for it to be called. The host searches them natively, so a plugin that only looks near
//! certain words is neither instantiated nor given the bytes of the many files that hold none.
//!
//! Case is ignored by lower-casing the input a chunk at a time (chunks overlap by the longest
//! string less one byte, so nothing across a boundary is missed) and searching lower-cased
//! strings: those of 3 bytes or more with one SIMD multi-substring search (Teddy, from
//! `aho-corasick`'s packed searcher), shorter ones with `memmem`. On 153 MB of real scripts with
//! obfuscated-script's 42 strings this ran at about 1.8 GB/s, against 0.7 GB/s for a
//! case-insensitive Aho-Corasick automaton, whose DFA the short strings keep from skipping.

use aho_corasick::{AhoCorasick, packed};
use memchr::memmem;

/// Most byte strings in a prefilter.
pub const MAX_LITERALS: usize = 256;
/// Longest byte string in a prefilter.
pub const MAX_LITERAL: usize = 64;

/// Strings shorter than this are searched with `memmem`, not in the multi-substring search:
/// a very short string makes Teddy stop at nearly every position.
const SHORT: usize = 3;
/// Bytes lower-cased and searched at a time (plus the overlap).
const CHUNK: usize = 16 * 1024;

/// A search for many strings at once.
#[derive(Clone)]
enum Searcher {
    /// Teddy (SIMD) where the CPU has it, else Rabin-Karp; for up to 128 strings.
    Packed(packed::Searcher),
    /// An Aho-Corasick automaton, for more.
    Automaton(AhoCorasick),
}

impl Searcher {
    fn new(strings: &[&Vec<u8>]) -> Result<Self, String> {
        if let Some(packed) = packed::Config::new().builder().extend(strings).build() {
            return Ok(Self::Packed(packed));
        }
        AhoCorasick::new(strings)
            .map(Self::Automaton)
            .map_err(|err| format!("a prefilter the host cannot search: {err}"))
    }

    fn is_match(&self, haystack: &[u8]) -> bool {
        match self {
            Self::Packed(searcher) => searcher.find(haystack).is_some(),
            Self::Automaton(automaton) => automaton.is_match(haystack),
        }
    }
}

/// Byte strings one of which must occur; empty: every input is admitted.
#[derive(Clone)]
pub struct Prefilter {
    literals: Vec<Vec<u8>>,
    /// The lower-cased strings of [`SHORT`] bytes or more, when there are any.
    long: Option<Searcher>,
    /// The shorter ones, lower-cased.
    short: Vec<memmem::Finder<'static>>,
}

impl Prefilter {
    /// A prefilter of these byte strings, or why they are not acceptable (too many, empty or
    /// too long).
    pub fn new(literals: Vec<Vec<u8>>) -> Result<Self, String> {
        if literals.len() > MAX_LITERALS
            || literals
                .iter()
                .any(|literal| literal.is_empty() || literal.len() > MAX_LITERAL)
        {
            return Err(format!(
                "a bad prefilter: at most {MAX_LITERALS} byte strings, each of 1 to {MAX_LITERAL} bytes"
            ));
        }
        let lower: Vec<Vec<u8>> = literals.iter().map(|l| l.to_ascii_lowercase()).collect();
        let (short, long): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
            lower.iter().partition(|literal| literal.len() < SHORT);
        let long = if long.is_empty() {
            None
        } else {
            Some(Searcher::new(&long)?)
        };
        Ok(Self {
            short: short
                .into_iter()
                .map(|literal| memmem::Finder::new(literal).into_owned())
                .collect(),
            literals,
            long,
        })
    }

    /// No prefilter: every input is admitted.
    pub fn none() -> Self {
        Self {
            literals: Vec::new(),
            long: None,
            short: Vec::new(),
        }
    }

    /// The byte strings, as the plugin declared them.
    pub fn literals(&self) -> &[Vec<u8>] {
        &self.literals
    }

    /// Whether `input` (the bytes the plugin would be given) holds one of the byte strings,
    /// ignoring ASCII case; always true without a prefilter.
    pub fn admits(&self, input: &[u8]) -> bool {
        if self.literals.is_empty() {
            return true;
        }
        let mut lowered = [0u8; CHUNK + MAX_LITERAL - 1];
        let mut start = 0;
        loop {
            let end = input.len().min(start + CHUNK + MAX_LITERAL - 1);
            let chunk = &mut lowered[..end - start];
            for (to, from) in chunk.iter_mut().zip(&input[start..end]) {
                *to = from.to_ascii_lowercase();
            }
            let chunk = &*chunk;
            let found = self.long.as_ref().is_some_and(|s| s.is_match(chunk))
                || self.short.iter().any(|s| s.find(chunk).is_some());
            if found {
                return true;
            }
            if end == input.len() {
                return false;
            }
            start += CHUNK;
        }
    }
}

impl PartialEq for Prefilter {
    fn eq(&self, other: &Self) -> bool {
        self.literals == other.literals
    }
}

impl Eq for Prefilter {}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.literals
                    .iter()
                    .map(|literal| String::from_utf8_lossy(literal)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_inputs_holding_a_literal_in_any_ascii_case_and_everything_without_literals() {
        let prefilter = Prefilter::new(vec![b"eval(".to_vec(), b"_0x".to_vec()]).unwrap();
        assert!(prefilter.admits(b"x = EVAL(y)"));
        assert!(prefilter.admits(b"var _0X1f = 1"));
        assert!(!prefilter.admits(b"print('evaluate')"));
        assert!(!prefilter.admits(b""));
        assert!(Prefilter::none().admits(b"anything"));
        assert!(Prefilter::new(Vec::new()).unwrap().admits(b""));
    }

    #[test]
    fn finds_strings_across_chunk_boundaries_long_and_short() {
        let prefilter =
            Prefilter::new(vec![b"Invoke-Expression".to_vec(), b"$(".to_vec()]).unwrap();
        for at in [
            0,
            CHUNK - 8,
            CHUNK - 1,
            CHUNK,
            3 * CHUNK - 5,
            3 * CHUNK + 100,
        ] {
            let mut input = vec![b'.'; 3 * CHUNK + 200];
            input[at..at + 17].copy_from_slice(b"INVOKE-expression");
            assert!(prefilter.admits(&input), "long string at {at}");
            assert!(!prefilter.admits(&input[..at + 16]), "cut at {at}");
            let mut input = vec![b'.'; 3 * CHUNK + 200];
            input[at..at + 2].copy_from_slice(b"$(");
            assert!(prefilter.admits(&input), "short string at {at}");
        }
        assert!(!prefilter.admits(&vec![b'$'; 5 * CHUNK]));
    }

    #[test]
    fn refuses_empty_long_or_too_many_literals() {
        assert!(Prefilter::new(vec![Vec::new()]).is_err());
        assert!(Prefilter::new(vec![vec![b'a'; MAX_LITERAL + 1]]).is_err());
        assert!(Prefilter::new(vec![b"a".to_vec(); MAX_LITERALS + 1]).is_err());
        let most: Vec<Vec<u8>> = (0..MAX_LITERALS)
            .map(|n| format!("w{n:03}").into())
            .collect();
        let prefilter = Prefilter::new(most).unwrap();
        assert!(prefilter.admits(b"...W255...") && !prefilter.admits(b"w256 w25"));
    }

    proptest::proptest! {
        #[test]
        fn admits_exactly_when_a_naive_case_blind_search_finds_a_string(
            literals in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"aAbB$(".to_vec()), 1..5), 1..6),
            tail in proptest::collection::vec(proptest::sample::select(b"aAbB$(.".to_vec()), 0..24),
            padding in 0..2 * CHUNK + 100,
        ) {
            // Dots, then a short random tail: it may straddle a chunk boundary.
            let mut input = vec![b'.'; padding];
            input.extend(tail);
            let lower = input.to_ascii_lowercase();
            let naive = literals.iter().any(|literal| {
                let literal = literal.to_ascii_lowercase();
                lower.windows(literal.len()).any(|w| w == literal)
            });
            proptest::prop_assert_eq!(Prefilter::new(literals).unwrap().admits(&input), naive);
        }
    }
}
