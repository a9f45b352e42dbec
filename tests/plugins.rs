//! WebAssembly plugins end to end through `vigil scan`: the first-party plugins in the default
//! definitions, and a hostile plugin (built here from `tests/hostile-plugin`) whose every kind
//! of misbehaviour must end as a `plugin_fault` within its limit while the scan's other results
//! stand. Plugins that must not load (forbidden imports, not wasm, truncated) exit 2.

mod common;

use std::path::{Path, PathBuf};

use common::{Sandbox, eicar, hostile_plugin, stderr, text};
use vigil_sdk::samples::{code_like_bytes, elf64, random_bytes};

/// A YARA rule matching the marker every hostile sample carries, so each file also has a
/// detection that must survive the plugin's misbehaviour.
const MARKER_RULE: &str = r#"
rule Hostile_Marker {
    meta:
        description = "marker of the hostile samples"
        threat_name = "Test:Multi/Marker"
        severity = "low"
    strings:
        $marker = "HOSTILE-SAMPLE-MARKER"
    condition:
        $marker
}
"#;

/// `(path, plugin)` of every fault, sorted.
fn faults(scan: &common::Scan) -> Vec<(String, String)> {
    let mut faults: Vec<_> = scan
        .of_type("plugin_fault")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    faults.sort();
    faults
}

#[test]
fn default_plugins_run_in_the_default_scan_and_can_be_turned_off() {
    let sandbox = Sandbox::new();
    let packed = sandbox.write(
        "bin/packed",
        elf64(&[
            (".text", &code_like_bytes(2048, 1), true),
            ("UPX1", &random_bytes(64 * 1024, 2), true),
        ]),
    );
    sandbox.write(
        "bin/normal",
        elf64(&[(".text", &code_like_bytes(64 * 1024, 3), true)]),
    );
    let script = sandbox.write("web/dropper.js", common::encoded_dropper_js());
    sandbox.write("web/app.js", "function add(a, b) { return a + b; }\n");
    let virus = sandbox.write("eicar.com", eicar());

    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let mut found: Vec<(String, String, String)> = scan
        .of_type("detection")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["detector"].as_str().unwrap().to_string(),
                r["threat"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let expected = vec![
        (
            text(&packed).to_string(),
            "plugin".to_string(),
            "Packed:Linux/HighEntropyCode".to_string(),
        ),
        (
            text(&virus).to_string(),
            "yara".to_string(),
            "Virus:DOS/EICAR_Test_File".to_string(),
        ),
        (
            text(&script).to_string(),
            "plugin".to_string(),
            "Obfuscated:Script/EncodedExec".to_string(),
        ),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(found, expected);
    let plugin_detection = scan
        .of_type("detection")
        .into_iter()
        .find(|r| r["detector"] == "plugin" && r["rule"] == "packed-exe")
        .unwrap()
        .clone();
    assert_eq!(plugin_detection["offset"], 64 + 2048);
    assert_eq!(scan.summary()["plugin_faults"], 0);

    let without = sandbox.scan(&["custom", text(&sandbox.corpus("")), "--no-plugins"]);
    assert_eq!(without.detections().len(), 1, "only the YARA detection");
    sandbox.configure("[plugins]\nenabled = false\n");
    let disabled = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(disabled.detections().len(), 1, "plugins.enabled = false");
}

#[test]
fn every_misbehaviour_is_a_fault_within_its_limit_and_other_results_stand() {
    let sandbox = Sandbox::new();
    sandbox.configure("[plugins]\ntimeout_ms = 300\nmax_faults = 1000\n");
    let rules = sandbox.write_outside("marker.yar", MARKER_RULE);
    let words = [
        "loop",
        "alloc",
        "recurse",
        "trap",
        "floodpanic",
        "findings",
        "huge",
        "badname",
        "badutf8",
        "log",
        "leak",
        "leak2",
        "clean",
        "detect",
    ];
    for (index, word) in words.iter().enumerate() {
        let word = word.trim_end_matches('2');
        sandbox.write(
            &format!("{word}-{index}.hostile"),
            format!("{word} HOSTILE-SAMPLE-MARKER\n"),
        );
    }
    sandbox.write("eicar.com", eicar());
    let scan = sandbox.scan(&[
        "custom",
        text(&sandbox.corpus("")),
        "--plugin",
        text(hostile_plugin()),
        "--rules",
        text(&rules),
        "--threads",
        "1",
    ]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);

    let reason = |word: &str| -> String {
        let matching: Vec<_> = faults(&scan)
            .into_iter()
            .filter(|(path, _)| {
                Path::new(path)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("{word}-"))
            })
            .map(|(_, reason)| reason)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one fault for {word}: {matching:?}\n{}",
            scan.stderr
        );
        matching[0].clone()
    };
    let expectations = [
        (
            "loop",
            "exceeded the time limit (300 ms, plugins.timeout_ms)",
        ),
        ("alloc", "exceeded the memory limit"),
        // Unbounded recursion overflows the shadow stack in linear memory (64 KiB) or the
        // WebAssembly stack (plugins.max_stack), whichever comes first; both are contained.
        ("recurse", "stack"),
        // The SDK's panic hook reports message and location, even after the log budget is
        // spent.
        ("trap", ": hostile plugin panics (trapped: unreachable"),
        ("floodpanic", ": after the flood (trapped: unreachable"),
        (
            "findings",
            "returned 100000 findings, more than plugins.max_findings (100)",
        ),
        ("huge", "more than plugins.max_output_size"),
        ("badname", "malformed threat name"),
        ("badutf8", "failed:"),
    ];
    for (word, expected) in expectations {
        let got = reason(word);
        assert!(got.contains(expected), "{word}: {got}");
    }
    let panic = reason("trap");
    assert!(
        panic.starts_with("panicked at tests/hostile-plugin/src/lib.rs:"),
        "the panic's location: {panic}"
    );
    assert_eq!(
        faults(&scan).len(),
        expectations.len(),
        "{:?}",
        faults(&scan)
    );
    assert_eq!(scan.summary()["plugin_faults"], expectations.len() as u64);

    // Every hostile sample still has its YARA detection; only `detect` has the plugin's.
    let detections = scan.detections();
    let marker = detections
        .iter()
        .filter(|(_, rule)| rule.ends_with("Hostile_Marker"))
        .count();
    assert_eq!(marker, words.len(), "{detections:?}");
    let from_plugin: Vec<_> = detections
        .iter()
        .filter(|(_, rule)| rule == "hostile")
        .collect();
    assert_eq!(
        from_plugin.len(),
        1,
        "no state leaks between calls: {from_plugin:?}"
    );
    assert!(from_plugin[0].0.contains("detect-"));
    assert!(
        detections
            .iter()
            .any(|(_, rule)| rule.ends_with("EICAR_Test_File"))
    );

    // The log is bounded (per call) and cannot drive the terminal.
    let lines_of = |prefix: &str| -> Vec<&str> {
        scan.stderr
            .lines()
            .filter(|l| l.starts_with(&format!("vigil: plugin hostile: warn: {prefix}")))
            .collect()
    };
    let log_lines = lines_of("line ");
    assert_eq!(
        log_lines.len(),
        10,
        "plugins.max_log_lines: {}",
        scan.stderr
    );
    assert_eq!(lines_of("flood ").len(), 10, "{}", scan.stderr);
    assert!(!scan.stderr.contains('\x1b'), "escapes are escaped");
    assert!(log_lines[0].contains("\\u{1b}[2J"), "{}", log_lines[0]);
}

#[test]
fn a_plugin_that_keeps_faulting_is_disabled_once_and_the_scan_goes_on() {
    let sandbox = Sandbox::new();
    for n in 0..10 {
        sandbox.write(&format!("t{n}.hostile"), "trap");
    }
    sandbox.write("z.hostile", "detect");
    sandbox.write("eicar.com", eicar());
    let scan = sandbox.scan(&[
        "custom",
        text(&sandbox.corpus("")),
        "--plugin",
        text(hostile_plugin()),
        "--threads",
        "1",
    ]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert_eq!(
        scan.of_type("plugin_fault").len(),
        3,
        "plugins.max_faults = 3"
    );
    let disabled = scan.of_type("plugin_disabled");
    assert_eq!(disabled.len(), 1, "said once");
    assert_eq!(disabled[0]["plugin"], "hostile");
    assert!(
        disabled[0]["reason"]
            .as_str()
            .unwrap()
            .contains("after 3 faults")
    );
    assert_eq!(scan.summary()["files_scanned"], 12, "the scan went on");
    assert_eq!(scan.detections().len(), 1, "EICAR still found");
}

#[test]
fn plugins_that_must_not_load_are_refused_naming_the_problem() {
    let sandbox = Sandbox::new();
    sandbox.write("clean.txt", "nothing");
    let wasm = std::fs::read(hostile_plugin()).unwrap();
    let wasi_component = wat::parse_str(
        r#"(component
            (import "wasi:cli/environment@0.2.0" (instance
                (export "get-environment" (func (result (list (tuple string string)))))))
        )"#,
    )
    .unwrap();
    let wasi_module = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1))"#,
    )
    .unwrap();
    let native = vigil_sdk::samples::elf64(&[(".text", b"\x90\x90", true)]);
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "wasi-component.wasm",
            wasi_component,
            "imports `wasi:cli/environment@0.2.0`, which plugins may not use (WASI): build for \
             wasm32-unknown-unknown, not a WASI target",
        ),
        (
            "wasi-module.wasm",
            wasi_module,
            "imports `wasi_snapshot_preview1::fd_write` (WASI), which plugins may not use: build \
             for wasm32-unknown-unknown",
        ),
        (
            "native.so",
            native,
            "is a native library (ELF), not WebAssembly: build it with `cargo build --release \
             --target wasm32-unknown-unknown`",
        ),
        (
            "not-wasm.wasm",
            b"#!/bin/sh\necho hello\n".to_vec(),
            "is not a WebAssembly module or component",
        ),
        (
            "truncated.wasm",
            wasm[..wasm.len() / 2].to_vec(),
            "is not a valid WebAssembly module: unexpected end-of-file",
        ),
        ("header-only.wasm", wasm[..4].to_vec(), "is truncated"),
    ];
    for (name, bytes, expected) in cases {
        let plugin = sandbox.write_outside(name, bytes);
        let output = sandbox.run(&[
            "scan",
            "custom",
            text(&sandbox.corpus("")),
            "--plugin",
            text(&plugin),
        ]);
        assert_eq!(output.status.code(), Some(2), "{name}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.contains(text(&plugin)),
            "{name} names the file: {message}"
        );
        assert!(message.contains(expected), "{name}: {message}");
        let info = sandbox.run(&["plugin", "info", text(&plugin)]);
        assert_eq!(info.status.code(), Some(2), "{name}");
    }
}

/// The first line of `vigil plugin info --format jsonl PLUGIN`.
fn plugin_record(sandbox: &Sandbox, plugin: &Path) -> serde_json::Value {
    let info = sandbox.run(&["plugin", "info", "--format", "jsonl", text(plugin)]);
    assert_eq!(info.status.code(), Some(0), "{}", stderr(&info));
    let stdout = String::from_utf8(info.stdout).unwrap();
    serde_json::from_str(stdout.lines().next().unwrap()).unwrap()
}

#[test]
fn plugins_of_earlier_contracts_keep_working_beside_current_ones_that_see_names() {
    let old = common::build_test_plugin("tests/plugin-v0_1");
    let second = common::build_test_plugin("tests/plugin-v0_2");
    let sandbox = Sandbox::new();
    let record = plugin_record(&sandbox, &old);
    assert_eq!(record["contract"], "0.1.0");
    assert_eq!(record["wants_name"], false);
    assert_eq!(record["magic"][0]["anywhere"], false);
    let record = plugin_record(&sandbox, &second);
    assert_eq!(record["contract"], "0.2.0");
    assert_eq!(record["wants_name"], true);
    assert_eq!(record["magic"][0]["mask"], "ffff00ff");
    assert_eq!(record["prefilter"], serde_json::json!([]));

    let padded = |head: &str| format!("{head}{}", " ".repeat(6000));
    let by_extension = sandbox.write("x.old", padded("xx MARKER"));
    let by_magic = sandbox.write("y.bin", "OLD-CONTRACT MARKER");
    sandbox.write("z.txt", padded("MARKER, but not selected"));
    let named = sandbox.write("Some.Name.HOSTILE", "name");
    let second_magic = sandbox.write("w.dat", "....V2x2 MARKER");
    sandbox.write(
        "v.dat",
        format!("{}V2x2, past the 4 KiB input", padded(" MARKER")),
    );
    let scan = sandbox.scan(&[
        "custom",
        text(&sandbox.corpus("")),
        "--plugin",
        text(&old),
        "--plugin",
        text(&second),
        "--plugin",
        text(hostile_plugin()),
    ]);
    let found: Vec<(String, String, String)> = scan
        .of_type("detection")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
                r["description"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        (&by_extension, "old-contract", "given 4096 of 6009 bytes"),
        (&by_magic, "old-contract", "given 19 of 19 bytes"),
        (
            &named,
            "hostile",
            "name \"Some.Name.HOSTILE\" extension \"hostile\"",
        ),
        (&second_magic, "second-contract", "named \"w.dat\""),
    ];
    for (path, rule, description) in expected {
        assert!(
            found.contains(&(text(path).to_string(), rule.into(), description.into())),
            "{path:?} {rule} {description}: {found:?} {}",
            scan.stderr
        );
    }
    assert_eq!(
        found.len(),
        4,
        "z.txt and v.dat are not selected: {found:?}"
    );
    assert_eq!(
        scan.of_type("plugin_fault"),
        Vec::<&serde_json::Value>::new()
    );
}

#[test]
fn plugin_list_and_info_show_plugins_and_limits_and_the_cache_is_used() {
    let sandbox = Sandbox::new();
    sandbox.configure("[plugins]\ntimeout_ms = 250\n");
    let first = sandbox.run(&["plugin", "list"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let listing = String::from_utf8(first.stdout).unwrap();
    for name in ["packed-exe 0.1.0", "obfuscated-script 0.1.0"] {
        assert!(listing.contains(name), "{listing}");
    }
    assert!(listing.contains("magic 7f454c46 at 0"), "{listing}");
    assert!(
        listing.contains("only if:  its input holds one of ") && listing.contains("\"eval(\""),
        "obfuscated-script's prefilter: {listing}"
    );
    assert!(listing.contains("timeout_ms         250"), "{listing}");
    assert_eq!(listing.matches("compiled: now").count(), 2, "{listing}");
    let cached: Vec<PathBuf> = std::fs::read_dir(sandbox.state_dir().join("plugin-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 2);

    let list_json = || -> Vec<serde_json::Value> {
        let output = sandbox.run(&["plugin", "list", "--format", "jsonl"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let compiled = |records: &[serde_json::Value]| -> Vec<String> {
        let mut how: Vec<String> = records
            .iter()
            .filter(|r| r["type"] == "plugin")
            .map(|r| r["compiled"].as_str().unwrap().to_string())
            .collect();
        how.sort();
        how
    };
    let records = list_json();
    assert_eq!(
        compiled(&records),
        ["cache"; 2],
        "second run does not recompile"
    );
    assert_eq!(records.last().unwrap()["limits"]["timeout_ms"], 250);

    // A damaged cache entry is not loaded: that plugin is compiled again and the entry rewritten.
    let mut bytes = std::fs::read(&cached[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cached[0], &bytes).unwrap();
    assert_eq!(compiled(&list_json()), ["cache", "now"]);
    assert_eq!(compiled(&list_json()), ["cache"; 2]);

    let info = sandbox.run(&["plugin", "info", text(hostile_plugin())]);
    assert_eq!(info.status.code(), Some(0), "{}", stderr(&info));
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(
        info.contains("hostile 0.0.1") && info.contains("wants:    .hostile"),
        "{info}"
    );
}

#[test]
fn a_drop_whose_plugin_imports_wasi_is_refused() {
    let sandbox = Sandbox::new();
    let (key, _) = common::trusted_publisher_key(&sandbox);
    let input = sandbox.root().join("drop-input");
    std::fs::create_dir_all(input.join("rules")).unwrap();
    std::fs::write(input.join("rules/x.yar"), MARKER_RULE).unwrap();
    let wasi =
        wat::parse_str(r#"(component (import "wasi:random/random@0.2.0" (instance)))"#).unwrap();
    let plugin = sandbox.write_outside("sneaky.wasm", wasi);
    let drop = sandbox.root().join("sneaky.drop");
    let build = sandbox.run(&[
        "definitions",
        "build",
        "--key",
        text(&key),
        "--version",
        "2",
        "--out",
        text(&drop),
        text(&input),
        text(&plugin),
    ]);
    assert_eq!(
        build.status.code(),
        Some(2),
        "the publisher side refuses it: {}",
        stderr(&build)
    );
    assert!(
        stderr(&build).contains("wasi:random/random@0.2.0"),
        "{}",
        stderr(&build)
    );
}

#[test]
fn a_plugin_build_that_makes_no_wasm_fails_saying_why_and_never_returns_an_old_file() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let manifest = |crate_type: &str| {
        format!(
            "[package]\nname = \"author-plugin\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             [lib]\n{crate_type}\n[dependencies]\nvigil-sdk = {{ path = \"{}\" }}\n\
             [workspace]\n",
            text(&repo.join("sdk"))
        )
    };
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/lib.rs"),
        std::fs::read_to_string(repo.join("benches/noop-plugin/src/noop.rs")).unwrap()
            + "\nvigil_sdk::export_plugin!(Noop);\n",
    )
    .unwrap();
    // The workspace's lock file, so the build resolves to the crates already here.
    std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    // The repository's plugin target folder, where vigil-sdk is already built for wasm.
    let target = vigil_plugin_build::default_target_dir(repo);

    std::fs::write(
        dir.path().join("Cargo.toml"),
        manifest("crate-type = [\"cdylib\"]"),
    )
    .unwrap();
    let built = vigil_plugin_build::build(dir.path(), &target).expect("a cdylib builds");
    assert!(built.ends_with("author_plugin.wasm"), "{}", text(&built));
    assert!(built.is_file());

    // Without `cdylib` the build makes no .wasm: the one from before is still on disk, and
    // must not be returned as if this build had made it.
    std::fs::write(dir.path().join("Cargo.toml"), manifest("")).unwrap();
    let err = vigil_plugin_build::build(dir.path(), &target).unwrap_err();
    assert!(built.is_file(), "the old file is still there");
    assert!(
        err.contains("produced no WebAssembly file")
            && err.contains("crate-type = [\"cdylib\"]")
            && err.contains("[lib]"),
        "{err}"
    );
}

#[test]
fn plugin_test_checks_every_expectation_and_fails_on_faults() {
    let sandbox = Sandbox::new();
    let plugin = text(hostile_plugin()).to_string();
    let samples = sandbox.corpus("samples");
    sandbox.write("samples/detect/found.hostile", "detect");
    sandbox.write("samples/detect/named/found.hostile", "detect");
    sandbox.write("samples/detect/named/.threat", "Test:Multi/Hostile\n");
    sandbox.write("samples/detect/wrong/found.hostile", "detect");
    sandbox.write("samples/detect/wrong/.threat", "Test:Multi/Other\n");
    sandbox.write("samples/detect/unwanted.txt", "detect");
    sandbox.write("samples/clean/quiet.hostile", "nothing");
    sandbox.write("samples/clean/panics.hostile", "trap");
    sandbox.write("samples/loose.hostile", "detect");
    let run = |format: &str| {
        sandbox.run(&[
            "plugin",
            "test",
            "--format",
            format,
            &plugin,
            text(&samples),
        ])
    };
    let output = run("jsonl");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let outcome = |relative: &str| {
        let path = text(&sandbox.corpus(relative)).to_string();
        let record = records
            .iter()
            .find(|r| r["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{relative}: {records:?}"));
        (
            record["passed"].as_bool().unwrap(),
            record["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        outcome("samples/detect/found.hostile"),
        (true, String::new())
    );
    assert_eq!(
        outcome("samples/detect/named/found.hostile"),
        (true, String::new())
    );
    assert_eq!(
        outcome("samples/detect/wrong/found.hostile"),
        (false, "Test:Multi/Other was not found".into())
    );
    let (passed, reason) = outcome("samples/detect/unwanted.txt");
    assert!(
        !passed && reason.starts_with("the plugin does not want this file"),
        "{reason}"
    );
    assert_eq!(
        outcome("samples/clean/quiet.hostile"),
        (true, String::new())
    );
    let (passed, reason) = outcome("samples/clean/panics.hostile");
    assert!(
        !passed
            && reason
                .starts_with("the plugin faulted: panicked at tests/hostile-plugin/src/lib.rs:"),
        "{reason}"
    );
    assert_eq!(outcome("samples/loose.hostile"), (true, String::new()));
    let summary = records.last().unwrap();
    assert_eq!(
        (
            &summary["samples"],
            &summary["passed"],
            &summary["failed"],
            &summary["unspecified"]
        ),
        (&7.into(), &3.into(), &3.into(), &1.into()),
        "{summary}"
    );
    let text_report = String::from_utf8(run("text").stdout).unwrap();
    assert!(
        text_report.contains("7 samples: 3 passed, 3 failed, 1 with no expectation"),
        "{text_report}"
    );
    // Nothing was written to the state dir (the plugin was compiled in memory only).
    assert!(!sandbox.state_dir().join("plugin-cache").exists());

    // A plugin that does not load, or samples that are not there: exit 2 naming them.
    let not_a_plugin = sandbox.write_outside("not-a-plugin.wasm", "hello");
    let output = sandbox.run(&["plugin", "test", text(&not_a_plugin), text(&samples)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not a WebAssembly module"),
        "{}",
        stderr(&output)
    );
    let missing = sandbox.corpus("no-such-samples");
    let output = sandbox.run(&["plugin", "test", &plugin, text(&missing)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read the sample")
            && stderr(&output).contains("no-such-samples"),
        "{}",
        stderr(&output)
    );
}
