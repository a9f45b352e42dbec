//! File names and rule metadata are an attacker's text: in human output they must not forge a
//! line, clear the screen or read backwards, and in JSON Lines they must stay exact. Every text
//! output and list command is checked on the bytes it prints.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Sandbox, eicar, stderr, text};
use serde_json::Value;

/// Names an attacker would pick: a forged summary line with a screen clear, a carriage return,
/// a right-to-left override, and bytes that are not UTF-8 with a colour escape.
fn hostile_names() -> Vec<Vec<u8>> {
    vec![
        b"a\nScanned 0 files: no threats\x1b[2J".to_vec(),
        b"b\rDETECTED nothing".to_vec(),
        "exe\u{202e}txt.exe".as_bytes().to_vec(),
        b"inv\xff\x1b[31m.com".to_vec(),
        "c1\u{9b}31m".as_bytes().to_vec(),
    ]
}

/// A rule whose metadata holds the same characters, matching files that contain its marker.
const HOSTILE_RULE: &str = "rule Hostile_Meta {
    meta:
        threat = \"Evil:Multi/Name\\nScanned 0 files\\x1b[2J\u{202e}\"
        description = \"line one\\r\\nline two \\x1b]0;title\\x07\"
        severity = \"high\"
    strings:
        $marker = \"HOSTILE-META-MARKER\"
    condition:
        $marker
}
";

/// The corpus: each hostile name detected by the default rules, by the hostile rule, and as a
/// FIFO (skipped, shown with --verbose).
fn corpus(sandbox: &Sandbox) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (n, name) in hostile_names().into_iter().enumerate() {
        let dir = sandbox.corpus(&format!("d{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(OsStr::from_bytes(&name));
        std::fs::write(&path, eicar()).unwrap();
        let mut marked = name.clone();
        marked.extend_from_slice(b".marked");
        std::fs::write(dir.join(OsStr::from_bytes(&marked)), "HOSTILE-META-MARKER").unwrap();
        let mut fifo = name;
        fifo.extend_from_slice(b".fifo");
        let fifo =
            std::ffi::CString::new([dir.as_os_str().as_bytes(), b"/", &fifo].concat()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        paths.push(path);
    }
    paths
}

/// Fails if a printed line holds a control character (other than its end), an escape, a C1
/// control or a bidirectional control.
fn assert_clean(bytes: &[u8], what: &str) {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|_| panic!("{what}: output is not UTF-8: {bytes:?}"));
    for c in text.chars() {
        let bidi = matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            c == '\n' || !(c.is_control() || bidi),
            "{what}: raw {c:?} in output:\n{text}"
        );
    }
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn jsonl(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The exact bytes of the path in a JSON record (`<key>_hex` when not UTF-8).
fn exact_path(record: &Value, key: &str) -> Vec<u8> {
    match record.get(format!("{key}_hex")).and_then(Value::as_str) {
        Some(hex) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
        None => record[key].as_str().unwrap().as_bytes().to_vec(),
    }
}

#[test]
fn scan_output_has_one_line_per_record_and_no_raw_control_or_bidi_characters() {
    let sandbox = Sandbox::new();
    let planted = corpus(&sandbox);
    let rules = sandbox.write_outside("hostile.yar", HOSTILE_RULE);
    let root = sandbox.corpus("");
    let scan_args = [
        "scan",
        "custom",
        text(&root),
        "--rules",
        text(&rules),
        "--verbose",
    ];

    let human = sandbox.run(&scan_args);
    assert_eq!(human.status.code(), Some(1), "{}", stderr(&human));
    assert_clean(&human.stdout, "scan (text)");
    assert_clean(&human.stderr, "scan (text) stderr");
    let machine = sandbox.run(&[&scan_args[..], &["--format", "jsonl"]].concat());
    let records = jsonl(&machine);
    // One line per record: the text output has as many lines as the JSON output has records
    // shown in text (detections, skips; the summary is one line in both).
    let shown: Vec<&Value> = records
        .iter()
        .filter(|r| {
            ["detection", "skipped", "summary", "error"].contains(&r["type"].as_str().unwrap())
        })
        .collect();
    let text_lines = lines(&human);
    assert_eq!(text_lines.len(), shown.len(), "{text_lines:#?}");
    for line in &text_lines {
        assert!(
            ["DETECTED ", "SKIPPED  ", "ERROR    ", "Scanned "]
                .iter()
                .any(|p| line.starts_with(p)),
            "a forged line: {line:?}"
        );
    }
    assert_eq!(
        text_lines
            .iter()
            .filter(|l| l.starts_with("Scanned "))
            .count(),
        1
    );
    let detections = records.iter().filter(|r| r["type"] == "detection").count();
    assert_eq!(
        detections, 10,
        "each name detected twice (EICAR, the hostile rule)"
    );

    // JSON keeps every name exactly, and the rule's metadata as written.
    for path in &planted {
        let found = records.iter().any(|r| {
            r["type"] == "detection" && exact_path(r, "path") == path.as_os_str().as_bytes()
        });
        assert!(found, "{path:?} is reported exactly in JSON");
    }
    assert!(
        records
            .iter()
            .any(|r| r["threat"] == "Evil:Multi/Name\nScanned 0 files\u{1b}[2J\u{202e}")
    );
    // The escapes are there for people to read.
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(
        human.contains("a\\nScanned 0 files: no threats\\x1b[2J"),
        "{human}"
    );
    assert!(human.contains("exe\\u{202e}txt.exe"), "{human}");
    assert!(human.contains("inv\\xff\\x1b[31m.com"), "{human}");
}

#[test]
fn list_commands_and_errors_escape_names_and_json_keeps_them() {
    let sandbox = Sandbox::new();
    let planted = corpus(&sandbox);
    let rules = sandbox.write_outside("hostile.yar", HOSTILE_RULE);
    let quarantine = sandbox.run(&[
        "scan",
        "custom",
        text(&sandbox.corpus("")),
        "--rules",
        text(&rules),
        "--action",
        "quarantine",
    ]);
    assert_eq!(quarantine.status.code(), Some(1), "{}", stderr(&quarantine));
    assert_clean(&quarantine.stdout, "quarantine scan");
    let quarantined = lines(&quarantine)
        .iter()
        .filter(|l| l.starts_with("QUARANTINED "))
        .count();
    assert_eq!(quarantined, 10);

    // threat list: one line per history entry, all escaped; JSON exact.
    let history = sandbox.run(&["threat", "list"]);
    assert_clean(&history.stdout, "threat list");
    let history_json = jsonl(&sandbox.run(&["threat", "list", "--format", "jsonl"]));
    assert_eq!(lines(&history).len(), history_json.len());
    assert!(
        lines(&history).iter().all(|l| l.starts_with("20")),
        "{:?}",
        lines(&history)
    );
    for path in &planted {
        assert!(
            history_json
                .iter()
                .any(|r| exact_path(r, "path") == path.as_os_str().as_bytes())
        );
    }

    // quarantine list: one line per entry; JSON exact, with original_path_hex where needed.
    let list = sandbox.run(&["quarantine", "list"]);
    assert_clean(&list.stdout, "quarantine list");
    let entries = jsonl(&sandbox.run(&["quarantine", "list", "--format", "jsonl"]));
    assert_eq!(entries.len(), 10);
    assert_eq!(lines(&list).len(), 10, "{:?}", lines(&list));
    for path in &planted {
        assert!(
            entries
                .iter()
                .any(|e| exact_path(e, "original_path") == path.as_os_str().as_bytes()),
            "{path:?}"
        );
    }

    // exclusion list: a stored exclusion with a hostile, non-UTF-8 name.
    let hostile = Path::new(OsStr::from_bytes(b"/srv/x\n\x1b[2J\xff"));
    let added = sandbox
        .vigil()
        .args(["exclusion", "add", "--path"])
        .arg(hostile)
        .output()
        .unwrap();
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    assert_clean(&added.stdout, "exclusion add");
    let listed = sandbox.run(&["exclusion", "list"]);
    assert_clean(&listed.stdout, "exclusion list");
    assert_eq!(lines(&listed).len(), 1);
    let listed = jsonl(&sandbox.run(&["exclusion", "list", "--format", "jsonl"]));
    assert_eq!(
        exact_path(&listed[0], "path"),
        hostile.as_os_str().as_bytes()
    );

    // An error naming a hostile path is one escaped line.
    let missing = Path::new(OsStr::from_bytes(
        b"/nonexistent/a\nvigil: all clear\x1b[2J",
    ));
    let failed = sandbox
        .vigil()
        .args(["scan", "custom"])
        .arg(missing)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    assert_clean(&failed.stderr, "error");
    assert_eq!(
        String::from_utf8_lossy(&failed.stderr).lines().count(),
        1,
        "{}",
        stderr(&failed)
    );
}
