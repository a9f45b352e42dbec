//! A test harness that runs a built plugin through Vigil's real plugin host (the same sandbox,
//! limits and output checks as `vigil scan`), from a normal `cargo test`.
//!
//! It drives the installed `vigil` (`vigil plugin test`), so a plugin's tests compile the SDK
//! and nothing of the engine. `vigil` is taken from the `VIGIL` environment variable, else
//! from `PATH`.
//!
//! ```ignore
//! use vigil_sdk::harness::Harness;
//!
//! #[test]
//! fn finds_the_sample() {
//!     let plugin = Harness::build(env!("CARGO_MANIFEST_DIR")).unwrap();
//!     let findings = plugin.scan("sample.js", b"eval(atob('...'))").unwrap();
//!     assert_eq!(findings[0].threat, "Obfuscated:JS/EvalBase64");
//!     plugin.test(&["samples"]).unwrap(); // samples/detect/*, samples/clean/*
//! }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Finding, Severity};

/// One built plugin, run by `vigil plugin test`.
pub struct Harness {
    wasm: PathBuf,
    vigil: PathBuf,
    /// Where sample files are written for a call, and the compiled plugin is cached.
    work: PathBuf,
    /// The plugin's name, as its descriptor gives it.
    name: String,
}

/// What `vigil plugin test` said about one file.
struct Sample {
    plugin: String,
    selected: bool,
    findings: Vec<Finding>,
    faults: Vec<String>,
}

impl Harness {
    /// Builds the plugin crate whose `Cargo.toml` is in `crate_dir` exactly as `cargo build
    /// --release` with the scaffold's `.cargo/config.toml` does (same target, flags and
    /// profile), into `target/vigil-plugins` beside it, and uses the `vigil` named by `VIGIL`
    /// or found on `PATH`.
    pub fn build(crate_dir: impl AsRef<Path>) -> Result<Self, String> {
        Self::build_with(crate_dir, find_vigil()?)
    }

    /// Like [`Harness::build`], with this `vigil` binary.
    pub fn build_with(
        crate_dir: impl AsRef<Path>,
        vigil: impl Into<PathBuf>,
    ) -> Result<Self, String> {
        let crate_dir = crate_dir.as_ref();
        let target_dir = vigil_plugin_build::default_target_dir(crate_dir);
        // Straight to stderr, not through `eprintln!`, which the test runner captures: the
        // first build takes a while and must not look stuck. Cargo's progress follows.
        let _ = writeln!(
            std::io::stderr(),
            "vigil-sdk harness: building {} for {} into {}",
            crate_dir.display(),
            vigil_plugin_build::TARGET,
            target_dir.display()
        );
        let wasm = vigil_plugin_build::build(crate_dir, &target_dir)?;
        let harness = Self::load_with(wasm, vigil)?;
        Ok(harness)
    }

    /// Uses a plugin file that is already built, with this `vigil` binary. Fails if the plugin
    /// does not load.
    pub fn load_with(wasm: impl Into<PathBuf>, vigil: impl Into<PathBuf>) -> Result<Self, String> {
        let wasm = wasm.into();
        let work = wasm.with_extension("harness");
        std::fs::create_dir_all(&work)
            .map_err(|err| format!("cannot create {}: {err}", work.display()))?;
        let mut harness = Self {
            wasm,
            vigil: vigil.into(),
            work,
            name: String::new(),
        };
        // Loads (and compiles, into the cache) once, so a plugin that does not load fails here
        // with the host's reason.
        harness.name = harness.sample("probe", b"")?.plugin;
        Ok(harness)
    }

    /// The plugin's name, as its descriptor gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `.wasm` file this harness runs (the one its build produced).
    pub fn wasm(&self) -> &Path {
        &self.wasm
    }

    /// Whether the host would pass a file with this name and content to the plugin.
    pub fn wants(&self, file_name: &str, data: &[u8]) -> bool {
        self.sample(file_name, data)
            .map(|sample| sample.selected)
            .unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// Scans one file's content as `vigil scan` would: findings (none if the plugin does not
    /// want the file), or the reason for a fault.
    pub fn scan(&self, file_name: &str, data: &[u8]) -> Result<Vec<Finding>, String> {
        let sample = self.sample(file_name, data)?;
        match sample.faults.into_iter().next() {
            Some(reason) => Err(reason),
            None => Ok(sample.findings),
        }
    }

    /// The threat names found in one file (empty when clean); panics on a fault.
    pub fn threats(&self, file_name: &str, data: &[u8]) -> Vec<String> {
        match self.scan(file_name, data) {
            Ok(findings) => findings.into_iter().map(|f| f.threat).collect(),
            Err(reason) => panic!("the plugin faulted on {file_name}: {reason}"),
        }
    }

    /// Runs `vigil plugin test` on sample files or folders (relative ones from the crate's
    /// folder when run by `cargo test`): `detect/` samples must be detected, `clean/` ones not.
    /// Returns its report, or an error with the report when an expectation fails.
    pub fn test(&self, samples: &[impl AsRef<Path>]) -> Result<String, String> {
        let output = self
            .command()
            .args(samples.iter().map(AsRef::as_ref))
            .output()
            .map_err(|err| format!("cannot run {}: {err}", self.vigil.display()))?;
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(report)
        } else {
            Err(format!(
                "vigil plugin test failed:\n{report}{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// `vigil plugin test` for this plugin, with its compile cache.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.vigil);
        command
            .args(["plugin", "test", "--cache-dir"])
            .arg(self.work.join("cache"))
            .arg(&self.wasm);
        command
    }

    /// Writes `data` as `file_name` in a folder of its own and runs `vigil plugin test` on it.
    fn sample(&self, file_name: &str, data: &[u8]) -> Result<Sample, String> {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        if file_name.is_empty() || file_name.contains('/') || file_name == "." || file_name == ".."
        {
            return Err(format!("{file_name:?} is not a file name"));
        }
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let folder = self.work.join(format!("{}-{call}", std::process::id()));
        std::fs::create_dir_all(&folder)
            .map_err(|err| format!("cannot create {}: {err}", folder.display()))?;
        let file = folder.join(file_name);
        let run = || {
            std::fs::write(&file, data)
                .map_err(|err| format!("cannot write {}: {err}", file.display()))?;
            let output = self
                .command()
                .args(["--format", "jsonl"])
                .arg(&file)
                .output()
                .map_err(|err| format!("cannot run {}: {err}", self.vigil.display()))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let record = stdout
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|record| record["type"] == "sample")
                .ok_or_else(|| {
                    format!(
                        "{} plugin test gave no result for {}:\n{}",
                        self.vigil.display(),
                        self.wasm.display(),
                        String::from_utf8_lossy(&output.stderr)
                    )
                })?;
            parse_sample(&record)
        };
        let result = run();
        let _ = std::fs::remove_dir_all(&folder);
        result
    }
}

/// One `sample` record of `vigil plugin test --format jsonl`.
fn parse_sample(record: &serde_json::Value) -> Result<Sample, String> {
    let findings = record["findings"]
        .as_array()
        .ok_or("a sample record without findings")?
        .iter()
        .map(|finding| {
            let severity = match finding["severity"].as_str() {
                Some("low") => Severity::Low,
                Some("medium") => Severity::Medium,
                Some("high") => Severity::High,
                Some("critical") => Severity::Critical,
                other => return Err(format!("unknown severity {other:?}")),
            };
            Ok(Finding {
                threat: finding["threat"].as_str().unwrap_or_default().to_string(),
                severity,
                description: finding["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                offset: finding["offset"].as_u64(),
            })
        })
        .collect::<Result<_, String>>()?;
    let faults = record["faults"]
        .as_array()
        .map(|faults| {
            faults
                .iter()
                .filter_map(|fault| fault.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Sample {
        plugin: record["plugin"].as_str().unwrap_or_default().to_string(),
        selected: record["selected"].as_bool().unwrap_or(false),
        findings,
        faults,
    })
}

/// The `vigil` binary: `VIGIL`, else the first `vigil` on `PATH`.
fn find_vigil() -> Result<PathBuf, String> {
    if let Some(vigil) = std::env::var_os("VIGIL") {
        return Ok(vigil.into());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("vigil"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "the harness runs `vigil plugin test`, and no `vigil` is on PATH: install it \
             (`cargo install --path <vigil checkout>`) or set VIGIL to its path"
                .to_string()
        })
}
