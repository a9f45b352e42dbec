//! Benchmark set-up shared by the benchmarks that run the `vigil` binary: a state dir and
//! configuration per kind of scan, and a rule set installed as definitions.
#![allow(dead_code)] // each benchmark uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// A state dir with its configuration, for one kind of scan.
pub struct Setup {
    state: PathBuf,
    config: PathBuf,
}

impl Setup {
    pub fn new(base: &Path, name: &str, config: &str) -> Self {
        let state = base.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let path = base.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        Self {
            state,
            config: path,
        }
    }

    pub fn vigil(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
        command
            .env("VIGIL_STATE_DIR", &self.state)
            .env("VIGIL_CONFIG", &self.config);
        command
    }

    pub fn scan(&self, root: &Path, threads: usize, extra: &[&str]) -> Command {
        let mut command = self.vigil();
        command
            .args(["scan", "custom"])
            .arg(root)
            .args(["--format", "jsonl", "--threads", &threads.to_string()])
            .args(extra);
        command
    }

    /// Runs a scan untimed and returns its summary record.
    pub fn summary(&self, root: &Path, threads: usize, extra: &[&str]) -> serde_json::Value {
        let output = self.scan(root, threads, extra).output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(stdout.lines().last().expect("a summary")).unwrap()
    }

    pub fn clear_cache(&self) {
        succeeds(self.vigil().args(["cache", "clear"]));
    }
}

/// A state dir whose installed definitions are the rules in `rules` (signed with a fresh key).
pub fn install_ruleset(base: &Path, rules: &Path, settle: &str) -> Setup {
    let publisher = Setup::new(base, "publisher", "");
    let key = base.join("bench.key");
    succeeds(
        publisher
            .vigil()
            .args(["definitions", "keygen", "--out"])
            .arg(&key),
    );
    let public = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    let drop = base.join("ruleset.drop");
    let config = format!(
        "{settle}[definitions]\ntrusted_keys = [\"{}\"]\nmax_drop_size = 1073741824\n",
        public.trim()
    );
    let setup = Setup::new(base, "ruleset", &config);
    succeeds(
        setup
            .vigil()
            .args(["definitions", "build", "--key"])
            .arg(&key)
            // Above the built-in definitions' version, which an update must exceed.
            .args(["--version", "1000000", "--out"])
            .arg(&drop)
            .arg(rules),
    );
    succeeds(
        setup
            .vigil()
            .args(["definitions", "update", "--from"])
            .arg(&drop),
    );
    setup
}

/// Runs a set-up command with its output captured; panics with its stderr if it fails.
pub fn succeeds(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `yr scan` of `root` with the rules in `rules` on `threads` threads, the per-file external
/// variables THOR and Loki define declared as empty text (yr has no per-file values).
pub fn yr_scan(yr: &Path, rules: &Path, root: &Path, threads: usize) -> Command {
    let mut command = Command::new(yr);
    command
        .args(["scan", "--recursive", "--threads", &threads.to_string()])
        .args(["--disable-console-logs"]);
    for name in ["filename", "filepath", "extension", "filetype", "owner"] {
        command.args(["--define", &format!("{name}=\"\"")]);
    }
    command.arg(rules).arg(root);
    command
}
