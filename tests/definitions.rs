//! Signed definitions drops end to end: keygen, build, update, status, history, rollback; every
//! kind of bad drop refused with the problem named and the installed definitions untouched; and a
//! SIGKILL loop proving an update never leaves anything but one complete active version.
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::{Sandbox, TarEntry, eicar, raw_tar, stderr, tar_entries, text};
use serde_json::Value;
use tar::EntryType;

/// A publisher: a key pair made with `vigil definitions keygen`, trusted by the sandbox's config.
struct Publisher {
    key_file: PathBuf,
    public_line: String,
}

impl Publisher {
    fn new(sandbox: &Sandbox) -> Self {
        let (key_file, public_line) = common::trusted_publisher_key(sandbox);
        Self {
            key_file,
            public_line,
        }
    }

    fn signing_key(&self) -> vigil_drop::SigningKey {
        vigil_drop::parse_secret_key(&std::fs::read_to_string(&self.key_file).unwrap()).unwrap()
    }

    /// Builds a drop with the CLI from a folder holding a marker rule for `version` and a hash
    /// list naming `hashed`'s content.
    fn build(&self, sandbox: &Sandbox, version: u64, hashed: &[u8]) -> PathBuf {
        let source = sandbox.root().join(format!("source-v{version}"));
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(
            source.join("marker.yar"),
            format!(
                "rule Marker{version} {{ meta: threat = \"Test:Any/Marker{version}\" strings: $m = \"VIGIL-MARKER-V{version}\" condition: $m }}"
            ),
        )
        .unwrap();
        std::fs::write(
            source.join("known.txt"),
            format!(
                "# known bad\n{}  Trojan:Linux/Known.V{version}\n",
                sha256_hex(hashed)
            ),
        )
        .unwrap();
        let out = sandbox.root().join(format!("v{version}.drop"));
        let output = sandbox.run(&[
            "definitions",
            "build",
            "--key",
            text(&self.key_file),
            "--version",
            &version.to_string(),
            "--out",
            text(&out),
            text(&source),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        out
    }

    /// A drop built with the library, for contents `vigil definitions build` refuses to ship.
    fn raw_build(&self, version: u64, min_engine: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_vec()))
            .collect();
        vigil_drop::build(&files, version, min_engine, 0, &self.signing_key()).unwrap()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn status(sandbox: &Sandbox) -> Value {
    let output = sandbox.run(&["definitions", "status", "--format", "jsonl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Files that tell which definitions are active: markers for versions 1-3, a hashed file, EICAR.
fn probe_corpus(sandbox: &Sandbox) -> Vec<u8> {
    for version in 1..=3 {
        sandbox.write(
            &format!("marker{version}.txt"),
            format!("xx VIGIL-MARKER-V{version} xx"),
        );
    }
    sandbox.write("eicar.com", eicar());
    let hashed = b"a file known by its hash only".to_vec();
    sandbox.write("hashed.bin", &hashed);
    hashed
}

/// (file name, rule) of every detection in the probe corpus.
fn probe(sandbox: &Sandbox) -> Vec<(String, String)> {
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_ne!(scan.code, 2, "{}", scan.stderr);
    scan.detections()
        .into_iter()
        .map(|(path, rule)| {
            (
                Path::new(&path)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
                rule,
            )
        })
        .collect()
}

#[test]
fn keygen_writes_a_private_key_and_a_public_line_and_never_overwrites() {
    let sandbox = Sandbox::new();
    let publisher = Publisher::new(&sandbox);
    let mode = std::fs::metadata(&publisher.key_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(publisher.public_line.starts_with("vigil-ed25519 "));
    let again = sandbox.run(&["definitions", "keygen", "--out", text(&publisher.key_file)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("never overwritten"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_valid_drop_installs_and_the_next_scan_uses_it() {
    let sandbox = Sandbox::new();
    let hashed = probe_corpus(&sandbox);
    let before = status(&sandbox);
    assert_eq!(before["source"], "built-in");
    assert_eq!(
        probe(&sandbox),
        vec![("eicar.com".to_string(), "eicar.EICAR_Test_File".to_string())],
        "the built-in defaults find EICAR only"
    );

    let publisher = Publisher::new(&sandbox);
    let drop = publisher.build(&sandbox, 2, &hashed);
    let output = sandbox.run(&["definitions", "update", "--from", text(&drop)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let after = status(&sandbox);
    assert_eq!(after["version"], 2);
    assert_eq!(after["rules"], 1);
    assert_eq!(after["hashes"], 1);
    assert_eq!(after["signer"], publisher.public_line.as_str());
    assert_eq!(after["source"], text(&drop));
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    let hash_hit = scan
        .of_type("detection")
        .into_iter()
        .find(|d| d["detector"] == "hash")
        .unwrap()
        .clone();
    assert_eq!(hash_hit["threat"], "Trojan:Linux/Known.V2");
    assert_eq!(
        probe(&sandbox),
        vec![
            (
                "hashed.bin".to_string(),
                "hashes/known.txt:sha256".to_string()
            ),
            ("marker2.txt".to_string(), "marker.Marker2".to_string()),
        ]
    );
    let active = std::fs::read_link(sandbox.state_dir().join("definitions/active")).unwrap();
    assert!(
        sandbox
            .state_dir()
            .join("definitions")
            .join(active)
            .join("compiled.rules")
            .exists()
    );

    let history = String::from_utf8(
        sandbox
            .run(&["definitions", "history", "--format", "jsonl"])
            .stdout,
    )
    .unwrap();
    let record: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(record["status"], "installed");
    assert_eq!(record["to_version"], 2);
}

#[test]
fn bad_drops_are_refused_by_name_and_change_nothing() {
    let sandbox = Sandbox::new();
    let hashed = probe_corpus(&sandbox);
    let publisher = Publisher::new(&sandbox);
    let good_v2 = publisher.build(&sandbox, 2, &hashed);
    assert_eq!(
        sandbox
            .run(&["definitions", "update", "--from", text(&good_v2)])
            .status
            .code(),
        Some(0)
    );
    let installed = probe(&sandbox);
    let good = std::fs::read(publisher.build(&sandbox, 3, &hashed)).unwrap();
    let entries = tar_entries(&good);
    let edit = |change: &dyn Fn(&mut Vec<TarEntry>)| {
        let mut changed = entries.clone();
        change(&mut changed);
        raw_tar(&changed)
    };
    let other = vigil_drop::generate_key().unwrap();
    let rule = b"rule ok { condition: false }".as_slice();

    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "truncated archive",
            good[..good.len() / 2 + 300].to_vec(),
            "archive",
            "truncated",
        ),
        (
            "bad signature",
            edit(&|e| {
                let sig = &mut e[1].2;
                let last = sig.len() - 2;
                sig[last] = if sig[last] == b'0' { b'1' } else { b'0' };
            }),
            "signature",
            "does not verify",
        ),
        (
            "unknown key",
            vigil_drop::build(
                &[("rules/a.yar".into(), rule.to_vec())],
                3,
                "0.1.0",
                0,
                &other,
            )
            .unwrap(),
            "untrusted_key",
            "untrusted key",
        ),
        (
            "unknown manifest key",
            {
                let manifest = br#"{"format":1,"version":3,"min_engine_version":"0.1.0","created":0,"files":[],"channel":"beta"}"#;
                use ed25519_dalek::Signer;
                let signature = publisher.signing_key().sign(manifest);
                let hex: String = signature
                    .to_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                raw_tar(&[
                    (
                        "manifest.json".into(),
                        EntryType::Regular,
                        manifest.to_vec(),
                    ),
                    (
                        "manifest.sig".into(),
                        EntryType::Regular,
                        format!("{}\n{hex}\n", publisher.public_line).into_bytes(),
                    ),
                ])
            },
            "manifest",
            "unknown field `channel`",
        ),
        (
            "tampered file",
            edit(&|e| e[2].2[0] ^= 0x20),
            "digest",
            "blake3 differs",
        ),
        (
            "file missing",
            edit(&|e| {
                e.remove(2);
            }),
            "contents",
            "missing from the archive",
        ),
        (
            "file not in manifest",
            edit(&|e| e.push(("rules/extra.yar".into(), EntryType::Regular, rule.to_vec()))),
            "contents",
            "not in the manifest",
        ),
        (
            "dot-dot entry",
            edit(&|e| {
                e.push((
                    "rules/../../../etc/cron.d/x".into(),
                    EntryType::Regular,
                    b"x".to_vec(),
                ))
            }),
            "entry",
            "`..`",
        ),
        (
            "absolute entry",
            edit(&|e| e.push(("/etc/cron.d/evil".into(), EntryType::Regular, b"x".to_vec()))),
            "entry",
            "absolute",
        ),
        (
            "symlink entry",
            edit(&|e| e.push(("rules/link.yar".into(), EntryType::Symlink, Vec::new()))),
            "entry",
            "not a regular file",
        ),
        (
            "hard-link entry",
            edit(&|e| e.push(("rules/hard.yar".into(), EntryType::Link, Vec::new()))),
            "entry",
            "not a regular file",
        ),
        (
            "duplicate entry",
            edit(&|e| {
                let copy = e[2].clone();
                e.push(copy);
            }),
            "entry",
            "appears twice",
        ),
        (
            "downgrade",
            publisher.raw_build(1, "0.1.0", &[("rules/a.yar", rule)]),
            "downgrade",
            "older than",
        ),
        (
            "same version",
            publisher.raw_build(2, "0.1.0", &[("rules/a.yar", rule)]),
            "downgrade",
            "same version",
        ),
        (
            "rules that do not compile",
            publisher.raw_build(
                4,
                "0.1.0",
                &[(
                    "rules/broken.yar",
                    b"rule broken {\n  condition: nonsense\n}\n",
                )],
            ),
            "rules",
            "rules/broken.yar:2:",
        ),
        (
            "plugin that does not load",
            publisher.raw_build(
                4,
                "0.1.0",
                &[
                    ("rules/a.yar", rule),
                    ("plugins/fake.wasm", b"#!/bin/sh\necho hi\n"),
                ],
            ),
            "plugin",
            "plugins/fake.wasm is not a WebAssembly",
        ),
        (
            "hash list that does not parse",
            publisher.raw_build(4, "0.1.0", &[("hashes/bad.txt", b"nothex Trojan:X/Y\n")]),
            "hash_list",
            "hashes/bad.txt, line 1",
        ),
        (
            "engine version too new",
            publisher.raw_build(4, "99.0.0", &[("rules/a.yar", rule)]),
            "engine_version",
            "needs engine version 99.0.0",
        ),
    ];
    for (what, bytes, reason, message) in cases {
        let path = sandbox.root().join("bad.drop");
        std::fs::write(&path, &bytes).unwrap();
        let output = sandbox.run(&["definitions", "update", "--from", text(&path)]);
        assert_eq!(output.status.code(), Some(2), "{what}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(message),
            "{what}: {}",
            stderr(&output)
        );
        assert_eq!(status(&sandbox)["version"], 2, "{what}");
        assert_eq!(
            probe(&sandbox),
            installed,
            "{what}: the installed definitions scan as before"
        );
        let history = String::from_utf8(
            sandbox
                .run(&["definitions", "history", "--format", "jsonl"])
                .stdout,
        )
        .unwrap();
        let record: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
        assert_eq!(record["status"], "rejected", "{what}");
        assert_eq!(record["reason"], reason, "{what}");
        assert_eq!(record["from_version"], 2, "{what}");
        assert!(
            record["error"].as_str().unwrap().contains(message),
            "{what}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.state_dir().join("definitions/versions"))
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1, "only the installed version is on disk");

    let output = sandbox.run(&[
        "definitions",
        "update",
        "--from",
        text(&good_v2),
        "--allow-downgrade",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the same version installs with --allow-downgrade: {}",
        stderr(&output)
    );
}

#[test]
fn rollback_returns_to_the_previous_version() {
    let sandbox = Sandbox::new();
    let hashed = probe_corpus(&sandbox);
    let publisher = Publisher::new(&sandbox);
    assert_eq!(
        sandbox.run(&["definitions", "rollback"]).status.code(),
        Some(2),
        "nothing to roll back to"
    );
    for version in [2, 3] {
        let drop = publisher.build(&sandbox, version, &hashed);
        assert_eq!(
            sandbox
                .run(&["definitions", "update", "--from", text(&drop)])
                .status
                .code(),
            Some(0)
        );
    }
    assert_eq!(status(&sandbox)["previous_version"], 2);
    assert!(probe(&sandbox).contains(&("marker3.txt".into(), "marker.Marker3".into())));
    let output = sandbox.run(&["definitions", "rollback"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(status(&sandbox)["version"], 2);
    assert_eq!(status(&sandbox)["previous_version"], 3);
    assert!(probe(&sandbox).contains(&("marker2.txt".into(), "marker.Marker2".into())));
    let history = String::from_utf8(sandbox.run(&["definitions", "history"]).stdout).unwrap();
    assert!(
        history.lines().last().unwrap().contains("rollback"),
        "{history}"
    );
}

#[test]
fn sigkill_at_any_point_of_an_update_leaves_one_complete_version_active() {
    let mut runs = 0;
    let mut outcomes = std::collections::BTreeSet::new();
    let mut seed: u64 = 0x0DDB_1A5E_5BAD_5EED;
    for attempt in 1..=40u64 {
        let sandbox = Sandbox::new();
        let hashed = probe_corpus(&sandbox);
        let publisher = Publisher::new(&sandbox);
        let v2 = publisher.build(&sandbox, 2, &hashed);
        let v3 = publisher.build(&sandbox, 3, &hashed);
        assert_eq!(
            sandbox
                .run(&["definitions", "update", "--from", text(&v2)])
                .status
                .code(),
            Some(0)
        );
        // Even attempts kill at fault point attempt/2; odd ones at a random time.
        let mut command = sandbox.vigil();
        command.args(["definitions", "update", "--from", text(&v3)]);
        let killed = if attempt % 2 == 0 {
            let output = command
                .env("VIGIL_FAULT_KILL_AT", (attempt / 2).to_string())
                .output()
                .unwrap();
            output.status.signal() == Some(libc::SIGKILL)
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut child = command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_micros(seed % 80_000));
            let _ = child.kill();
            !child.wait().unwrap().success()
        };
        runs += 1;
        let version = status(&sandbox)["version"].as_u64().unwrap();
        outcomes.insert((killed, version));
        let expected = match version {
            2 => vec![
                (
                    "hashed.bin".to_string(),
                    "hashes/known.txt:sha256".to_string(),
                ),
                ("marker2.txt".into(), "marker.Marker2".into()),
            ],
            3 => vec![
                (
                    "hashed.bin".to_string(),
                    "hashes/known.txt:sha256".to_string(),
                ),
                ("marker3.txt".into(), "marker.Marker3".into()),
            ],
            other => panic!("attempt {attempt}: version {other} is active"),
        };
        assert_eq!(
            probe(&sandbox),
            expected,
            "attempt {attempt} (killed: {killed}): version {version} scans as itself"
        );
        let definitions = sandbox.state_dir().join("definitions");
        let names: Vec<String> = std::fs::read_dir(&definitions)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with("staging-") && !n.ends_with(".tmp")),
            "attempt {attempt}: {names:?}"
        );
        if attempt % 2 == 0 && !killed {
            assert_eq!(
                version, 3,
                "an update that ran to the end installed version 3"
            );
        }
    }
    assert!(runs >= 40);
    assert!(
        outcomes.contains(&(true, 2)),
        "some kills left the old version: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&(true, 3)),
        "some kills came after the switch: {outcomes:?}"
    );
}

#[test]
fn damaged_active_definitions_fall_back_with_a_warning() {
    let sandbox = Sandbox::new();
    let hashed = probe_corpus(&sandbox);
    let publisher = Publisher::new(&sandbox);
    for version in [2, 3] {
        let drop = publisher.build(&sandbox, version, &hashed);
        assert_eq!(
            sandbox
                .run(&["definitions", "update", "--from", text(&drop)])
                .status
                .code(),
            Some(0)
        );
    }
    let definitions = sandbox.state_dir().join("definitions");
    let damage = |link: &str| {
        let dir = definitions.join(std::fs::read_link(definitions.join(link)).unwrap());
        let mut rules = std::fs::read(dir.join("rules/marker.yar")).unwrap();
        rules[0] ^= 0x20;
        std::fs::write(dir.join("rules/marker.yar"), rules).unwrap();
    };
    damage("active");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert!(
        scan.stderr.contains("damaged") && scan.stderr.contains("using version 2"),
        "{}",
        scan.stderr
    );
    assert!(probe(&sandbox).contains(&("marker2.txt".into(), "marker.Marker2".into())));

    damage("previous");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert!(scan.stderr.contains("built-in"), "{}", scan.stderr);
    assert_eq!(
        probe(&sandbox),
        vec![("eicar.com".to_string(), "eicar.EICAR_Test_File".to_string())]
    );
}

#[test]
fn damaged_compiled_rules_are_compiled_again_and_rewritten_never_loaded() {
    let sandbox = Sandbox::new();
    let hashed = probe_corpus(&sandbox);
    let publisher = Publisher::new(&sandbox);
    let drop = publisher.build(&sandbox, 2, &hashed);
    let update = sandbox.run(&["definitions", "update", "--from", text(&drop)]);
    assert_eq!(update.status.code(), Some(0), "{}", stderr(&update));
    let definitions = sandbox.state_dir().join("definitions");
    let active = definitions.join(std::fs::read_link(definitions.join("active")).unwrap());
    let compiled = active.join("compiled.rules");
    let info: Value =
        serde_json::from_slice(&std::fs::read(active.join("install.json")).unwrap()).unwrap();
    let good = std::fs::read(&compiled).unwrap();
    assert_eq!(
        info["compiled_blake3"],
        blake3::hash(&good).to_hex().as_str(),
        "the digest of the native code is recorded at install"
    );

    // One flipped byte deep inside the serialized native code.
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    std::fs::write(&compiled, &damaged).unwrap();
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert!(
        scan.stderr.contains("compiled.rules") && scan.stderr.contains("compiled again"),
        "{}",
        scan.stderr
    );
    assert!(probe(&sandbox).contains(&("marker2.txt".into(), "marker.Marker2".into())));

    // Rewritten atomically: the next start loads it without a warning.
    let rewritten = std::fs::read(&compiled).unwrap();
    assert_ne!(rewritten, damaged);
    let info: Value =
        serde_json::from_slice(&std::fs::read(active.join("install.json")).unwrap()).unwrap();
    assert_eq!(
        info["compiled_blake3"],
        blake3::hash(&rewritten).to_hex().as_str()
    );
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert!(!scan.stderr.contains("warning"), "{}", scan.stderr);
    let leftovers: Vec<_> = std::fs::read_dir(&active)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_update_or_a_rollback_makes_every_cached_result_a_miss() {
    let sandbox = Sandbox::new();
    let publisher = Publisher::new(&sandbox);
    sandbox.configure(&format!(
        "[antivirus_engine]\nscan_cache_settle_time = 3\n[definitions]\ntrusted_keys = [\"{}\"]\n",
        publisher.public_line
    ));
    sandbox.write("plain.txt", "plain text\n");
    sandbox.write("marked.txt", "VIGIL-MARKER-V3\n");
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let root = text(&sandbox.corpus("")).to_string();
    let cache_hits = |scan: &common::Scan| scan.summary()["cache_hits"].as_u64().unwrap();
    sandbox.scan(&["custom", &root]);
    assert_eq!(cache_hits(&sandbox.scan(&["custom", &root])), 2);

    for version in [2, 3] {
        let drop = publisher.build(&sandbox, version, b"nothing");
        let output = sandbox.run(&["definitions", "update", "--from", text(&drop)]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let scan = sandbox.scan(&["custom", &root]);
        assert_eq!(cache_hits(&scan), 0, "version {version} is new");
        assert_eq!(scan.code, i32::from(version == 3), "{:?}", scan.records);
        assert_eq!(cache_hits(&sandbox.scan(&["custom", &root])), 2);
    }
    let output = sandbox.run(&["definitions", "rollback"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let scan = sandbox.scan(&["custom", &root]);
    assert_eq!(
        cache_hits(&scan),
        0,
        "version 3's results are not version 2's"
    );
    assert_eq!(scan.code, 0, "the marker of version 3 is not in version 2");
}
