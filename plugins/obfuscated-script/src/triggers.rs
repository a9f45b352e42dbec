//! One pass over a script for everything the checks start from: execution sinks and
//! character-code markers, found together by one [`Patterns`] set ignoring case.

use vigil_sdk::bytes::Patterns;

use crate::{charcodes, encoded};

/// Where the sinks and markers are.
#[derive(Debug, Default)]
pub struct Triggers {
    /// Offsets of execution sinks ([`encoded::SINKS`]), in order.
    pub sinks: Vec<usize>,
    /// Character-code markers: (offset, index in [`charcodes::MARKERS`]), in order.
    pub char_markers: Vec<(usize, usize)>,
}

impl Triggers {
    /// Finds them in one pass.
    pub fn find(text: &[u8]) -> Self {
        let set = Patterns::ignore_ascii_case(encoded::SINKS.iter().chain(charcodes::MARKERS));
        let mut found = Self::default();
        for hit in set.find_iter(text) {
            match hit.pattern.checked_sub(encoded::SINKS.len()) {
                None => found.sinks.push(hit.offset),
                Some(marker) => found.char_markers.push((hit.offset, marker)),
            }
        }
        found
    }
}
