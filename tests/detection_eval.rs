//! The CI subset of the real-world evaluation set (tests/eval: samples made by the real tools
//! attackers use — javascript-obfuscator, js-confuser, bash-obfuscate, bashsmash, UPX, XMRig,
//! ClamAV's test files — and hard real clean files). Stored neutralised (XOR 0x5A, base64) in
//! tests/eval/subset.jsonl, decoded here into a temporary folder and scanned with the default
//! definitions and plugins: every malicious sample is detected, no clean file is.
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use common::{Sandbox, text};
use serde_json::Value;

/// (category, file name, whether it must be detected, bytes) of each stored sample.
fn subset() -> Vec<(String, String, bool, Vec<u8>)> {
    let stored = include_str!("eval/subset.jsonl");
    stored
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let field = |key: &str| record[key].as_str().unwrap().to_string();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(field("xor5a_base64"))
                .unwrap()
                .into_iter()
                .map(|b| b ^ 0x5A)
                .collect();
            (
                field("category"),
                field("name"),
                field("expect") == "detect",
                bytes,
            )
        })
        .collect()
}

#[test]
fn real_tool_output_is_detected_and_hard_clean_files_are_not() {
    let sandbox = Sandbox::new();
    let samples = subset();
    let mut expected = BTreeSet::new();
    let mut categories: BTreeMap<String, usize> = BTreeMap::new();
    for (category, name, detect, bytes) in &samples {
        let kind = if *detect { "malicious" } else { "clean" };
        let relative = format!("{kind}/{category}/{name}");
        let path = sandbox.write(&relative, bytes);
        if *detect {
            expected.insert(text(&path).to_string());
            *categories.entry(category.clone()).or_default() += 1;
        }
    }
    assert!(categories.len() >= 10, "{categories:?}");
    assert!(categories.values().all(|&n| n >= 3), "{categories:?}");

    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert_eq!(scan.summary()["plugin_faults"], 0, "{:?}", scan.records);
    assert_eq!(scan.summary()["errors"], 0, "{:?}", scan.records);
    let detected: BTreeSet<String> = scan
        .of_type("detection")
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    let missed: Vec<_> = expected.difference(&detected).collect();
    let false_positives: Vec<_> = scan
        .of_type("detection")
        .into_iter()
        .filter(|r| !expected.contains(r["path"].as_str().unwrap()))
        .map(|r| format!("{} ({} {})", r["path"], r["detector"], r["rule"]))
        .collect();
    assert!(missed.is_empty(), "missed: {missed:?}");
    assert!(
        false_positives.is_empty(),
        "false positives: {false_positives:?}"
    );
}
