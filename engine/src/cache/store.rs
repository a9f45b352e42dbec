//! The cache file: a header, the scan-cache and file-hash-cache entries, and a BLAKE3 checksum of
//! all of it. Decoding checks the checksum first and every length against what is left, so a
//! truncated, garbled or foreign file is refused as a whole: its entries are never trusted.
//!
//! Layout (little endian): `MAGIC`, format `u32`, fingerprint digest `[32]`, definitions digest
//! `[32]`, saved-at `i64`, entry counts (`u64` each), the offset of the file-hash entries
//! (`u64`, so the two sections decode in parallel), the scan-cache entries, the file-hash entries,
//! then the checksum `[32]`.

use super::{CachedResult, HashKey, ScanKey, Validators};
use crate::report::Finding;

/// The first bytes of every cache file.
const MAGIC: &[u8; 8] = b"VIGILRC\0";
/// Bytes of the header, before the entries.
pub(crate) const HEADER_LEN: usize = 8 + 4 + 32 + 32 + 8 + 3 * 8;
/// Where the offset of the file-hash section is written in the header.
const HASH_SECTION_AT: usize = HEADER_LEN - 8;
const CHECKSUM_LEN: usize = 32;

/// What a cache file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub format: u32,
    pub fingerprint: [u8; 32],
    pub definitions: [u8; 32],
    /// Unix seconds of the save.
    pub saved_at: i64,
    pub scan_entries: u64,
    pub hash_entries: u64,
}

/// One scan-cache entry as stored.
pub(crate) type ScanRecord = (ScanKey, Validators, CachedResult, u64);
/// One file-hash-cache entry as stored.
pub(crate) type HashRecord = (HashKey, CachedResult, u64);

/// Writes the header, the entries and the checksum.
pub(crate) fn encode<'a>(
    header: &Header,
    scan: impl Iterator<Item = (&'a ScanKey, &'a Validators, &'a CachedResult, u64)>,
    hashes: impl Iterator<Item = (&'a HashKey, &'a CachedResult, u64)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 80 * header.scan_entries as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header.format.to_le_bytes());
    out.extend_from_slice(&header.fingerprint);
    out.extend_from_slice(&header.definitions);
    out.extend_from_slice(&header.saved_at.to_le_bytes());
    out.extend_from_slice(&header.scan_entries.to_le_bytes());
    out.extend_from_slice(&header.hash_entries.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut written = (0, 0);
    for (key, valid, result, last_used) in scan {
        for word in [key.dev, key.ino, key.names, valid.size] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&valid.mtime_ns.to_le_bytes());
        out.extend_from_slice(&valid.ctime_ns.to_le_bytes());
        out.extend_from_slice(&valid.fsid.to_le_bytes());
        out.extend_from_slice(&last_used.to_le_bytes());
        put_result(&mut out, result);
        written.0 += 1;
    }
    let hash_section = (out.len() as u64).to_le_bytes();
    out[HASH_SECTION_AT..HEADER_LEN].copy_from_slice(&hash_section);
    for (key, result, last_used) in hashes {
        out.extend_from_slice(&key.content);
        out.extend_from_slice(&key.names.to_le_bytes());
        out.extend_from_slice(&last_used.to_le_bytes());
        put_result(&mut out, result);
        written.1 += 1;
    }
    assert_eq!(
        written,
        (header.scan_entries, header.hash_entries),
        "the header counts the entries written"
    );
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

fn put_result(out: &mut Vec<u8>, result: &CachedResult) {
    let Some(detection) = result.detection() else {
        out.extend_from_slice(&0u32.to_le_bytes());
        return;
    };
    out.extend_from_slice(&(detection.findings.len() as u32).to_le_bytes());
    out.extend_from_slice(&detection.digest);
    for finding in &detection.findings {
        put_str(out, &finding.threat);
        out.push(match finding.detector {
            "hash" => 0,
            "yara" => 1,
            "archive" => 3,
            _ => 2,
        });
        put_str(out, &finding.rule);
        put_str(out, &finding.severity);
        put_str(out, &finding.description);
        match finding.offset {
            Some(offset) => {
                out.push(1);
                out.extend_from_slice(&offset.to_le_bytes());
            }
            None => out.push(0),
        }
        // A YARA rule's details, as JSON (empty when there are none).
        let details = finding
            .details
            .as_ref()
            .map(|details| serde_json::to_string(details).expect("details serialize"))
            .unwrap_or_default();
        put_str(out, &details);
        // Where inside an archive: the member chain, outer to inner.
        out.extend_from_slice(&(finding.member.len() as u32).to_le_bytes());
        for name in &finding.member {
            put_bytes(out, name);
        }
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads the header alone, without checking the rest (for listing files).
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, String> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err("not a Vigil cache file".into());
    }
    Ok(Header {
        format: reader.u32()?,
        fingerprint: reader.array()?,
        definitions: reader.array()?,
        saved_at: reader.u64()? as i64,
        scan_entries: reader.u64()?,
        hash_entries: reader.u64()?,
    })
}

/// Checks the checksum and decodes every entry.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, Vec<ScanRecord>, Vec<HashRecord>), String> {
    let header = read_header(bytes)?;
    let Some(body_len) = bytes.len().checked_sub(CHECKSUM_LEN) else {
        return Err("truncated".into());
    };
    let (body, checksum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != checksum {
        return Err("checksum mismatch (truncated or overwritten)".into());
    }
    // Each entry takes at least 52 bytes: counts larger than the file allows are refused
    // before anything is allocated for them.
    let room = (body.len() / 52) as u64;
    if header.scan_entries > room || header.hash_entries > room {
        return Err("entry counts exceed the file".into());
    }
    let hash_section = u64::from_le_bytes(body[HASH_SECTION_AT..HEADER_LEN].try_into().unwrap());
    let hash_section = usize::try_from(hash_section)
        .ok()
        .filter(|at| (HEADER_LEN..=body.len()).contains(at))
        .ok_or("bad section offset")?;
    let (scan, hashes) = std::thread::scope(|scope| {
        let hashes =
            scope.spawn(|| decode_hashes(&body[hash_section..], header.hash_entries as usize));
        let scan = decode_scan(
            &body[HEADER_LEN..hash_section],
            header.scan_entries as usize,
        );
        (scan, hashes.join().expect("decoding does not panic"))
    });
    Ok((header, scan?, hashes?))
}

/// The scan-cache section: exactly `count` entries.
fn decode_scan(section: &[u8], count: usize) -> Result<Vec<ScanRecord>, String> {
    decode_section(section, count, |reader| {
        let key = ScanKey {
            dev: reader.u64()?,
            ino: reader.u64()?,
            names: reader.u64()?,
        };
        let valid = Validators {
            size: reader.u64()?,
            mtime_ns: reader.u64()? as i64,
            ctime_ns: reader.u64()? as i64,
            fsid: reader.u64()?,
        };
        let last_used = reader.u64()?;
        Ok((key, valid, reader.result()?, last_used))
    })
}

/// The file-hash section: exactly `count` entries.
fn decode_hashes(section: &[u8], count: usize) -> Result<Vec<HashRecord>, String> {
    decode_section(section, count, |reader| {
        let key = HashKey {
            content: reader.array()?,
            names: reader.u64()?,
        };
        let last_used = reader.u64()?;
        Ok((key, reader.result()?, last_used))
    })
}

/// `count` entries read by `entry` that fill `section` exactly.
fn decode_section<T>(
    section: &[u8],
    count: usize,
    entry: impl Fn(&mut Reader<'_>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut reader = Reader {
        bytes: section,
        at: 0,
    };
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(entry(&mut reader)?);
    }
    if reader.at != section.len() {
        return Err("bytes after the last entry of a section".into());
    }
    Ok(entries)
}

/// Bounds-checked reading of the encoded fields.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("truncated")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "text that is not UTF-8".into())
    }

    /// A member chain: a count, then each name's bytes.
    fn member(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let count = self.u32()?;
        (0..count)
            .map(|_| {
                let len = self.u32()? as usize;
                Ok(self.take(len)?.to_vec())
            })
            .collect()
    }

    fn result(&mut self) -> Result<CachedResult, String> {
        let count = self.u32()?;
        if count == 0 {
            return Ok(CachedResult::default());
        }
        let digest = self.array()?;
        let mut findings = Vec::new();
        for _ in 0..count {
            let threat = self.string()?;
            let detector = match self.take(1)?[0] {
                0 => "hash",
                1 => "yara",
                2 => "plugin",
                3 => "archive",
                other => return Err(format!("unknown detector {other}")),
            };
            findings.push(Finding {
                threat,
                detector,
                rule: self.string()?,
                severity: self.string()?,
                description: self.string()?,
                offset: match self.take(1)?[0] {
                    0 => None,
                    1 => Some(self.u64()?),
                    other => return Err(format!("bad offset tag {other}")),
                },
                details: match self.string()? {
                    details if details.is_empty() => None,
                    details => Some(Box::new(
                        serde_json::from_str(&details)
                            .map_err(|err| format!("bad details: {err}"))?,
                    )),
                },
                member: self.member()?,
            });
        }
        Ok(CachedResult::new(findings, Some(digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<ScanRecord>, Vec<HashRecord>) {
        let finding = Finding {
            threat: "Test:Linux/Sample".into(),
            detector: "plugin",
            rule: "sample".into(),
            severity: "high".into(),
            description: "a sample".into(),
            offset: Some(7),
            details: None,
            member: vec![b"a.zip".to_vec(), b"\xffx".to_vec()],
        };
        let yara = Finding {
            detector: "yara",
            details: Some(Box::new(crate::report::RuleDetails {
                tags: vec!["apt".into()],
                metadata: vec![("score".into(), 80.into()), ("author".into(), "x".into())],
                matches: vec![crate::report::PatternMatch {
                    identifier: "$a".into(),
                    offset: 7,
                    length: 3,
                }],
                more_matches: 2,
            })),
            ..finding.clone()
        };
        let detected = CachedResult::new(vec![finding, yara], Some([9; 32]));
        let scan = vec![
            (
                ScanKey {
                    dev: 1,
                    ino: 2,
                    names: 3,
                },
                Validators {
                    size: 4,
                    mtime_ns: -5,
                    ctime_ns: 6,
                    fsid: 7,
                },
                CachedResult::default(),
                8,
            ),
            (
                ScanKey {
                    dev: 1,
                    ino: 9,
                    names: 0,
                },
                Validators {
                    size: 10,
                    mtime_ns: 11,
                    ctime_ns: 12,
                    fsid: 7,
                },
                detected.clone(),
                13,
            ),
        ];
        let hashes = vec![(
            HashKey {
                content: [1; 32],
                names: 2,
            },
            detected,
            14,
        )];
        let header = Header {
            format: 1,
            fingerprint: [2; 32],
            definitions: [3; 32],
            saved_at: 15,
            scan_entries: 2,
            hash_entries: 1,
        };
        (header, scan, hashes)
    }

    fn encoded() -> Vec<u8> {
        let (header, scan, hashes) = sample();
        encode(
            &header,
            scan.iter().map(|(k, v, r, u)| (k, v, r, *u)),
            hashes.iter().map(|(k, r, u)| (k, r, *u)),
        )
    }

    #[test]
    fn round_trips() {
        assert_eq!(decode(&encoded()).unwrap(), sample());
    }

    #[test]
    fn any_truncation_or_flipped_byte_is_refused() {
        let bytes = encoded();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(decode(&damaged).is_err(), "byte {at} flipped");
        }
    }
}
