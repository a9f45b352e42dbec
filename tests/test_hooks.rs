//! A `vigil` built without the `fault-injection` feature — what `cargo build` and `cargo install`
//! make — ignores every test-hook variable. `cargo test` itself builds `vigil` with the hooks, so
//! this test runs a binary built separately: `.ci/run` builds it and runs
//! `VIGIL_PLAIN_BIN=... cargo test --test test_hooks -- --ignored`.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, eicar, stderr, text};

#[test]
#[ignore = "needs a vigil built without test hooks in VIGIL_PLAIN_BIN (.ci/run provides it)"]
fn a_build_without_the_feature_ignores_the_test_hook_variables() {
    let plain = std::env::var_os("VIGIL_PLAIN_BIN").expect("VIGIL_PLAIN_BIN names the binary");
    let sandbox = Sandbox::new();
    sandbox.write("threat.com", eicar());
    // A file above the mapping threshold, which the truncation hook would empty.
    let large = sandbox.write("large.bin", vec![b'a'; 3 * 1024 * 1024]);
    let pause_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = std::process::Command::new(plain)
        .env("VIGIL_STATE_DIR", sandbox.state_dir())
        .env("VIGIL_CONFIG", sandbox.config_path())
        .env("VIGIL_FAULT_KILL_AT", "1")
        .env("VIGIL_FAULT_TRUNCATE_MAPPED", "1")
        .env("VIGIL_FAULT_PAUSE_AT", "scan: object opened")
        .env("VIGIL_FAULT_PAUSE_DIR", pause_dir.path())
        .env("VIGIL_FAULT_PANIC", "1")
        .args(["scan", "custom", text(&sandbox.corpus(""))])
        .args(["--action", "quarantine", "--format", "jsonl"])
        .output()
        .unwrap();
    // Not killed, not truncated, not paused, not crashed: a normal quarantine scan.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\"type\":\"quarantined\""), "{stdout}");
    assert_eq!(std::fs::metadata(&large).unwrap().len(), 3 * 1024 * 1024);
    assert!(!pause_dir.path().join("paused").exists());
    assert!(started.elapsed() < Duration::from_secs(30));
}
