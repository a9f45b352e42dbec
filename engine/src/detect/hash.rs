//! The hash detector: files whose SHA-256 is in an installed hash list.
//!
//! A hash list is text, one `<sha256 hex> <threat name>` per line, `#` starting a comment. The
//! digest of a file is computed only when at least one list is installed, once per file.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::error::EngineError;
use crate::report::Finding;

/// Every installed hash, with its threat name and the list it came from.
#[derive(Debug, Default, Clone)]
pub struct HashLists {
    entries: HashMap<[u8; 32], (String, String)>,
}

impl HashLists {
    /// Parses one list; an error names the list and the line.
    pub fn add(&mut self, list: &str, text: &str) -> Result<(), EngineError> {
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fail = |why: &str| EngineError::HashList {
                list: list.to_string(),
                line: index + 1,
                why: why.to_string(),
            };
            let (hex, threat) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| fail("expected `<sha256 hex> <threat name>`"))?;
            let digest =
                parse_sha256(hex).ok_or_else(|| fail("the digest is not 64 hex digits"))?;
            let threat = threat.trim();
            if threat.is_empty() {
                return Err(fail("the threat name is missing"));
            }
            self.entries
                .insert(digest, (threat.to_string(), list.to_string()));
        }
        Ok(())
    }

    /// How many hashes are installed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no hash is installed (then no digest is computed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a finding when `data`'s SHA-256 is listed.
    pub fn scan(&self, data: &[u8], out: &mut Vec<Finding>) {
        if self.entries.is_empty() {
            return;
        }
        let digest: [u8; 32] = Sha256::digest(data).into();
        if let Some((threat, list)) = self.entries.get(&digest) {
            out.push(Finding {
                threat: threat.clone(),
                detector: "hash",
                rule: format!("{list}:sha256"),
                severity: "high".into(),
                description: "SHA-256 of the file is in a known-bad hash list".into(),
                offset: None,
                details: None,
                member: Vec::new(),
            });
        }
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_match_and_name_bad_lines() {
        let mut lists = HashLists::default();
        let digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; // "hello"
        lists
            .add(
                "known.txt",
                &format!("# comment\n\n{digest}  Trojan:Linux/Hello # trailing\n"),
            )
            .unwrap();
        let mut found = Vec::new();
        lists.scan(b"hello", &mut found);
        assert_eq!(found[0].threat, "Trojan:Linux/Hello");
        assert_eq!(found[0].detector, "hash");
        lists.scan(b"hello!", &mut found);
        assert_eq!(found.len(), 1);
        let err = lists.add("bad.txt", "ok\n").unwrap_err().to_string();
        assert!(err.contains("bad.txt") && err.contains("line 1"), "{err}");
        let err = lists
            .add("bad.txt", &format!("{digest}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
