//! ZIP bombs: archives that expand to far more than any real content, to exhaust the disk,
//! memory or time of whatever unpacks them (including other scanners).
//!
//! Reads the central directory (ZIP64 included) without decompressing anything:
//! - `Bomb:Multi/Zip.Overlap` (high): entries whose data overlaps another entry's, the trick of
//!   "non-recursive" bombs that reuse one compressed stream for thousands of files;
//! - `Bomb:Multi/Zip.Ratio` (high): the entries claim at least 1 GiB in total and more than 1000
//!   times the archive's size (deflate itself cannot exceed about 1032:1 for one stream, so
//!   only degenerate content gets there).

use vigil_sdk::bytes::{u16_le, u32_le, u64_le};
use vigil_sdk::{Descriptor, Finding, InputSize, Magic, Plugin, ScanInput, Severity};

/// Total uncompressed size from which a ratio is suspicious.
const MIN_BOMB_SIZE: u64 = 1 << 30;
/// Uncompressed-to-archive size ratio that no real content reaches.
const MAX_RATIO: u64 = 1000;
/// Most central directory entries read.
const MAX_ENTRIES: usize = 1_000_000;

struct ZipBomb;

impl Plugin for ZipBomb {
    fn describe() -> Descriptor {
        Descriptor {
            name: "zip-bomb".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "ZIP bombs: absurd compression ratios and overlapping entries".into(),
            magic: vec![Magic::at(0, b"PK\x03\x04")],
            min_size: 22,
            input: InputSize::WholeFile,
            ..Descriptor::default()
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        let Some(entries) = central_directory(&input.data) else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        if let Some(offset) = overlapping_entry(&input.data, &entries) {
            findings.push(
                Finding::new(
                    "Bomb:Multi/Zip.Overlap",
                    Severity::High,
                    "entries share or overlap their compressed data (non-recursive ZIP bomb)",
                )
                .at(offset as usize),
            );
        }
        let total: u64 = entries
            .iter()
            .map(|e| e.uncompressed)
            .fold(0, u64::saturating_add);
        let size = input.file_size.max(1);
        if total >= MIN_BOMB_SIZE && total / size > MAX_RATIO {
            findings.push(Finding::new(
                "Bomb:Multi/Zip.Ratio",
                Severity::High,
                format!(
                    "{} entries expand to {total} bytes from a {size}-byte archive ({}:1)",
                    entries.len(),
                    total / size
                ),
            ));
        }
        findings
    }
}

/// One central directory entry.
#[derive(Debug)]
struct Entry {
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// The central directory's entries, or `None` when the end record is missing or malformed.
fn central_directory(data: &[u8]) -> Option<Vec<Entry>> {
    // The end record is in the last 64 KiB + 22 bytes (its comment is at most 64 KiB).
    let search_from = data.len().saturating_sub(65_557);
    let eocd = (search_from..data.len().saturating_sub(21))
        .rev()
        .find(|&at| data[at..].starts_with(b"PK\x05\x06"))?;
    let mut count = u64::from(u16_le(data, eocd + 10)?);
    let mut offset = u64::from(u32_le(data, eocd + 16)?);
    // ZIP64: a locator just before the end record points at the ZIP64 end record.
    if let Some(locator) = eocd
        .checked_sub(20)
        .filter(|&at| data[at..].starts_with(b"PK\x06\x07"))
    {
        let record = usize::try_from(u64_le(data, locator + 8)?).ok()?;
        if data.get(record..)?.starts_with(b"PK\x06\x06") {
            count = u64_le(data, record + 32)?;
            offset = u64_le(data, record + 48)?;
        }
    }
    let mut at = usize::try_from(offset).ok()?;
    let mut entries = Vec::new();
    for _ in 0..count.min(MAX_ENTRIES as u64) {
        if !data.get(at..)?.starts_with(b"PK\x01\x02") {
            break;
        }
        let mut entry = Entry {
            compressed: u64::from(u32_le(data, at + 20)?),
            uncompressed: u64::from(u32_le(data, at + 24)?),
            local_offset: u64::from(u32_le(data, at + 42)?),
        };
        let name = usize::from(u16_le(data, at + 28)?);
        let extra = usize::from(u16_le(data, at + 30)?);
        let comment = usize::from(u16_le(data, at + 32)?);
        let extra_at = at + 46 + name;
        apply_zip64_extra(data.get(extra_at..extra_at + extra)?, &mut entry);
        entries.push(entry);
        at = extra_at + extra + comment;
    }
    Some(entries)
}

/// Replaces 32-bit sizes and offset set to 0xFFFFFFFF with the ZIP64 extra field's values (in
/// the order the format gives them: uncompressed, compressed, offset).
fn apply_zip64_extra(mut extra: &[u8], entry: &mut Entry) {
    const MAX32: u64 = 0xFFFF_FFFF;
    while let (Some(id), Some(len)) = (u16_le(extra, 0), u16_le(extra, 2)) {
        let Some(body) = extra.get(4..4 + usize::from(len)) else {
            return;
        };
        if id == 1 {
            let mut fields = body
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
            for value in [
                &mut entry.uncompressed,
                &mut entry.compressed,
                &mut entry.local_offset,
            ] {
                if *value == MAX32 {
                    match fields.next() {
                        Some(field) => *value = field,
                        None => return,
                    }
                }
            }
            return;
        }
        extra = &extra[4 + usize::from(len)..];
    }
}

/// The local header offset of an entry whose data overlaps the entry before it (by offset), if
/// any: real archives store each entry's data once, one after the other.
fn overlapping_entry(data: &[u8], entries: &[Entry]) -> Option<u64> {
    let mut spans: Vec<(u64, u64)> = entries
        .iter()
        .map(|entry| {
            // The local header's own name and extra lengths say where its data starts.
            let at = usize::try_from(entry.local_offset).unwrap_or(usize::MAX);
            let header = match (
                u16_le(data, at.saturating_add(26)),
                u16_le(data, at.saturating_add(28)),
            ) {
                (Some(name), Some(extra)) => 30 + u64::from(name) + u64::from(extra),
                _ => 30,
            };
            let end = entry
                .local_offset
                .saturating_add(header)
                .saturating_add(entry.compressed);
            (entry.local_offset, end)
        })
        .collect();
    spans.sort_unstable();
    spans
        .windows(2)
        .find(|pair| pair[1].0 < pair[0].1)
        .map(|pair| pair[1].0)
}

vigil_sdk::export_plugin!(ZipBomb);
