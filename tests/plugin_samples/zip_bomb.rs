//! The built plugin, run through Vigil's real host on ZIP archives written here byte by byte.
//! The plugin reads only headers, so bombs are made by their headers: what a real bomb's
//! central directory declares (sizes, shared data) is what these declare.

use std::sync::OnceLock;

use vigil_sdk::harness::Harness;

fn plugin() -> &'static Harness {
    static PLUGIN: OnceLock<Harness> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        Harness::build_with(
            concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/zip-bomb"),
            env!("CARGO_BIN_EXE_vigil"),
        )
        .expect("plugin builds and loads")
    })
}

/// One entry: its name, stored bytes, the uncompressed size its headers declare, and (for
/// overlapping archives) the entry whose local header it points to instead of its own.
struct Entry<'a> {
    name: &'a str,
    data: &'a [u8],
    declared: u64,
    shares: Option<usize>,
}

fn entry<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        name,
        data,
        declared: data.len() as u64,
        shares: None,
    }
}

/// A ZIP archive (stored method); sizes over 32 bits get a ZIP64 extra field.
fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        if e.shares.is_some() {
            continue;
        }
        out.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(e.declared.min(0xFFFF_FFFF) as u32).to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(e.data);
    }
    let directory = out.len() as u32;
    for (index, e) in entries.iter().enumerate() {
        let zip64 = e.declared >= 0xFFFF_FFFF;
        let extra: Vec<u8> = if zip64 {
            [
                &1u16.to_le_bytes()[..],
                &8u16.to_le_bytes(),
                &e.declared.to_le_bytes(),
            ]
            .concat()
        } else {
            Vec::new()
        };
        out.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(
            &(if zip64 {
                0xFFFF_FFFF
            } else {
                e.declared as u32
            })
            .to_le_bytes(),
        );
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
        out.extend_from_slice(&offsets[e.shares.unwrap_or(index)].to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&extra);
    }
    let size = out.len() as u32 - directory;
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&directory.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn wants_zip_archives_only() {
    let archive = zip(&[entry("a.txt", b"hello")]);
    assert!(plugin().wants("a.docx", &archive));
    assert!(!plugin().wants("a.zip", b"not a zip, but long enough to be one"));
    assert!(
        !plugin().wants("a.zip", b"PK\x03\x04"),
        "too small for an end record"
    );
}

#[test]
fn overlapping_entries_are_detected() {
    let kernel = vec![0u8; 1000];
    let mut entries = vec![entry("0", &kernel)];
    for _ in 0..50 {
        entries.push(Entry {
            name: "n",
            data: &kernel,
            declared: 1000,
            shares: Some(0),
        });
    }
    let archive = zip(&entries);
    let findings = plugin().scan("overlap.zip", &archive).unwrap();
    let threats: Vec<&str> = findings.iter().map(|f| f.threat.as_str()).collect();
    assert_eq!(threats, ["Bomb:Multi/Zip.Overlap"]);
    assert_eq!(findings[0].offset, Some(0));
}

#[test]
fn absurd_ratios_are_detected_including_zip64() {
    let stream = vec![0u8; 2000];
    let ten = |declared| -> Vec<u8> {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        zip(&names.map(|name| Entry {
            name,
            data: &stream,
            declared,
            shares: None,
        }))
    };
    // Ten 200 MiB entries from 20 KB of data.
    assert_eq!(
        plugin().threats("bomb.zip", &ten(200 << 20)),
        ["Bomb:Multi/Zip.Ratio"]
    );
    // Ten 5 GiB entries, sizes in ZIP64 extra fields.
    assert_eq!(
        plugin().threats("bomb64.zip", &ten(5 << 30)),
        ["Bomb:Multi/Zip.Ratio"]
    );
}

#[test]
fn ordinary_and_broken_archives_are_clean() {
    let text = b"hello world\n".repeat(100);
    let archive = zip(&[
        entry("a.txt", &text),
        entry("b.txt", b"second"),
        entry("dir/", b""),
    ]);
    assert!(plugin().threats("plain.zip", &archive).is_empty());
    // Highly compressible but real: 100 MiB from 200 KB is 500:1, under the 1 GiB floor anyway.
    let data = vec![1u8; 200_000];
    let archive = zip(&[Entry {
        name: "log",
        data: &data,
        declared: 100 << 20,
        shares: None,
    }]);
    assert!(plugin().threats("logs.zip", &archive).is_empty());
    // Truncated archives (no end record) and garbage after the magic are not findings.
    let archive = zip(&[entry("a.txt", &text)]);
    for cut in [4, 30, archive.len() / 2, archive.len() - 1] {
        assert!(
            plugin().threats("cut.zip", &archive[..cut]).is_empty(),
            "cut at {cut}"
        );
    }
}
