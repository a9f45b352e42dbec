use super::*;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "rules/a.yar".to_string(),
            b"rule a { condition: false }".to_vec(),
        ),
        ("hashes/bad.txt".to_string(), b"# none\n".to_vec()),
    ]
}

fn good() -> Vec<u8> {
    build(&files(), 5, "0.1.0", 1_700_000_000, &key()).unwrap()
}

/// A tar written entry by entry with raw headers, so names and types the builder refuses can be
/// made (as an attacker would).
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append(&header, *content).unwrap();
    }
    archive.into_inner().unwrap()
}

/// The good drop's entries, for variations.
fn good_entries() -> Vec<(String, Vec<u8>)> {
    let bytes = good();
    let mut archive = tar::Archive::new(&bytes[..]);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_str().unwrap().to_string();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (name, content)
        })
        .collect()
}

fn with_extra(name: &str, kind: tar::EntryType, content: &[u8]) -> Vec<u8> {
    let entries = good_entries();
    let mut all: Vec<(&str, tar::EntryType, &[u8])> = entries
        .iter()
        .map(|(n, c)| (n.as_str(), tar::EntryType::Regular, c.as_slice()))
        .collect();
    all.push((name, kind, content));
    raw_tar(&all)
}

fn trusted() -> Vec<VerifyingKey> {
    vec![key().verifying_key()]
}

#[test]
fn a_built_drop_opens_with_its_files() {
    let drop = open(&good(), &trusted(), 1 << 20).unwrap();
    assert_eq!(drop.manifest.version, 5);
    assert_eq!(drop.files.len(), 2);
    assert_eq!(drop.signer, public_key_line(&key().verifying_key()));
}

#[test]
fn bad_drops_are_refused_with_the_problem_named() {
    let other_key = SigningKey::from_bytes(&[9u8; 32]);
    let mut truncated = good();
    truncated.truncate(truncated.len() / 2 + 100);
    let mut tampered = good_entries();
    tampered.last_mut().unwrap().1[0] ^= 0x20;
    let tampered: Vec<(&str, tar::EntryType, &[u8])> = tampered
        .iter()
        .map(|(n, c)| (n.as_str(), tar::EntryType::Regular, c.as_slice()))
        .collect();
    let entries = good_entries();
    let missing: Vec<(&str, tar::EntryType, &[u8])> = entries
        .iter()
        .take(3)
        .map(|(n, c)| (n.as_str(), tar::EntryType::Regular, c.as_slice()))
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", truncated, "truncated"),
        ("not a tar", b"hello world".repeat(100), "archive"),
        (
            "other key",
            build(&files(), 5, "0.1.0", 0, &other_key).unwrap(),
            "untrusted key",
        ),
        ("tampered", raw_tar(&tampered), "blake3 differs"),
        (
            "missing file",
            raw_tar(&missing),
            "missing from the archive",
        ),
        (
            "unlisted file",
            with_extra("rules/extra.yar", tar::EntryType::Regular, b"x"),
            "not in the manifest",
        ),
        (
            "dot-dot",
            with_extra("rules/../../etc/x.yar", tar::EntryType::Regular, b"x"),
            "`..`",
        ),
        (
            "absolute",
            with_extra("/etc/cron.d/x", tar::EntryType::Regular, b"x"),
            "absolute",
        ),
        (
            "symlink",
            with_extra("rules/link.yar", tar::EntryType::Symlink, b""),
            "not a regular file",
        ),
        (
            "hard link",
            with_extra("rules/hard.yar", tar::EntryType::Link, b""),
            "not a regular file",
        ),
        (
            "duplicate",
            with_extra("rules/a.yar", tar::EntryType::Regular, b"x"),
            "appears twice",
        ),
        (
            "outside layout",
            with_extra("bin/evil.sh", tar::EntryType::Regular, b"x"),
            "unknown folder",
        ),
    ];
    for (what, bytes, expected) in cases {
        let err = open(&bytes, &trusted(), 1 << 20).unwrap_err().to_string();
        assert!(err.contains(expected), "{what}: {err}");
    }
    let err = open(&good(), &trusted(), 100).unwrap_err().to_string();
    assert!(err.contains("max_drop_size"), "{err}");
}

#[test]
fn a_manifest_with_an_unknown_key_is_refused_even_when_signed() {
    let manifest = br#"{"format":1,"version":2,"min_engine_version":"0.1.0","created":0,"files":[],"extra":true}"#;
    let signature = key().sign(manifest);
    let sig = format!(
        "{}\n{}\n",
        public_key_line(&key().verifying_key()),
        hex(&signature.to_bytes())
    );
    let bytes = raw_tar(&[
        (MANIFEST, tar::EntryType::Regular, manifest),
        (SIGNATURE, tar::EntryType::Regular, sig.as_bytes()),
    ]);
    let err = open(&bytes, &trusted(), 1 << 20).unwrap_err().to_string();
    assert!(err.contains("unknown field `extra`"), "{err}");
}

#[test]
fn keys_round_trip_through_their_text_forms() {
    let key = generate_key().unwrap();
    assert_eq!(
        parse_secret_key(&secret_key_text(&key)).unwrap().as_bytes(),
        key.as_bytes()
    );
    let line = public_key_line(&key.verifying_key());
    assert_eq!(
        parse_public_key(&format!("{line} release key")).unwrap(),
        key.verifying_key()
    );
    assert!(parse_public_key("ssh-ed25519 AAAA").is_err());
    assert!(parse_public_key("vigil-ed25519 abcd").is_err());
}
