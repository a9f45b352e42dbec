//! `vigil plugin test PLUGIN SAMPLES...`: runs one plugin, in the real sandbox and under the
//! configured limits, on sample files with expected outcomes, for plugin authors and their CI.
//!
//! A sample under a folder named `detect` must produce a finding, one under `clean` none; a
//! `.threat` file in a folder under `detect` names the threat its samples (and those below, the
//! nearest `.threat` winning) must produce. Other samples are scanned and reported with no
//! expectation. A fault (trap, limit, malformed output) fails any sample. Nothing is written to
//! the state directory: the compiled plugin is cached only in `--cache-dir`, when given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use vigil_engine::config::PluginsConfig;
use vigil_engine::plugin::{PluginSet, Refusal};
use vigil_engine::report::{self, Finding};

use super::output::Format;
use super::{Context, print_line, shown, untrusted};

/// The file that names the threat expected of the samples in its folder.
const THREAT_FILE: &str = ".threat";

/// `vigil plugin test` arguments.
#[derive(clap::Args)]
pub struct TestArgs {
    /// The plugin (`.wasm`), as built with `cargo build --release`.
    plugin: PathBuf,
    /// Sample files or folders (walked): `detect/` ones must be detected, `clean/` ones not.
    #[arg(required = true)]
    samples: Vec<PathBuf>,
    /// Keep the compiled plugin in this folder between runs (default: compile every run).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// What a sample is expected to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expectation {
    /// A finding; with a name, a finding of that threat.
    Detect(Option<String>),
    /// No finding.
    Clean,
    /// Nothing said: reported only.
    Unspecified,
}

/// One sample's outcome.
struct Outcome {
    path: PathBuf,
    expectation: Expectation,
    selected: bool,
    findings: Vec<Finding>,
    faults: Vec<String>,
    /// Why the expectation failed; `None` when it holds.
    failure: Option<String>,
}

/// Runs `vigil plugin test`: exit 0 when every expectation holds, 1 when one does not, 2 when
/// the plugin does not load or a sample cannot be read.
pub fn run(context: &Context, args: TestArgs) -> Result<ExitCode> {
    let (config, _) = context.load_config()?;
    // Every sample is its own scan: a fault never disables the plugin for the next one.
    let limits = PluginsConfig {
        enabled: true,
        max_faults: u32::MAX,
        ..config.plugins.clone()
    };
    let set = PluginSet::load_with_files(
        &[],
        std::slice::from_ref(&args.plugin),
        &limits,
        1,
        args.cache_dir.as_deref(),
    )?;
    let mut samples = Vec::new();
    for root in &args.samples {
        collect_samples(root, &mut samples)?;
    }
    if samples.is_empty() {
        bail!("no sample files in {}", list(&args.samples));
    }
    samples.sort();
    let name = &set.plugins()[0].info.name;
    let mut failed = 0;
    let mut unspecified = 0;
    for path in &samples {
        let outcome = test_one(&set, &limits, path)?;
        failed += usize::from(outcome.failure.is_some());
        unspecified += usize::from(outcome.expectation == Expectation::Unspecified);
        match args.format {
            Format::Jsonl => print_line(&outcome_json(name, &outcome).to_string()),
            Format::Text => print_outcome(&outcome),
        }
    }
    let passed = samples.len() - failed - unspecified;
    match args.format {
        Format::Jsonl => print_line(
            &json!({
                "type": "summary",
                "plugin": name,
                "samples": samples.len(),
                "passed": passed,
                "failed": failed,
                "unspecified": unspecified,
            })
            .to_string(),
        ),
        Format::Text => print_line(&format!(
            "{} samples: {passed} passed, {failed} failed, {unspecified} with no expectation",
            samples.len()
        )),
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Scans one sample with the plugin and checks it against its expectation.
fn test_one(set: &PluginSet, limits: &PluginsConfig, path: &Path) -> Result<Outcome> {
    let data =
        std::fs::read(path).with_context(|| format!("cannot read the sample {}", shown(path)))?;
    let plugin = &set.plugins()[0].info;
    let refusal = plugin.refusal(path, &data, limits.max_input_size as usize);
    let (mut findings, mut faults) = (Vec::new(), Vec::new());
    set.scan(path, &data, &mut findings, &mut faults, &set.scan_faults());
    let faults: Vec<String> = faults.into_iter().map(|fault| fault.reason).collect();
    let expectation = expectation(path)?;
    let failure = if let Some(fault) = faults.first() {
        Some(format!("the plugin faulted: {fault}"))
    } else {
        match &expectation {
            Expectation::Detect(_) if refusal.is_some() => Some(match refusal {
                Some(Refusal::Prefilter) => "the plugin is not called for this file: none of \
                     its prefilter's strings is in it"
                    .into(),
                _ => "the plugin does not want this file (its magic, extensions or min-size do \
                     not select it)"
                    .into(),
            }),
            Expectation::Detect(_) if findings.is_empty() => Some("nothing was found".into()),
            Expectation::Detect(Some(threat)) if !findings.iter().any(|f| &f.threat == threat) => {
                Some(format!("{threat} was not found"))
            }
            Expectation::Clean if !findings.is_empty() => {
                Some("a clean sample was detected".into())
            }
            _ => None,
        }
    };
    Ok(Outcome {
        path: path.to_path_buf(),
        expectation,
        selected: refusal.is_none(),
        findings,
        faults,
        failure,
    })
}

/// The expectation the sample's folders give it: the innermost `detect` or `clean` folder,
/// and for `detect` the nearest `.threat` file at or below it.
fn expectation(path: &Path) -> Result<Expectation> {
    let folders: Vec<&Path> = path.ancestors().skip(1).collect();
    let Some(marker) = folders.iter().position(|folder| {
        matches!(
            folder.file_name().and_then(|name| name.to_str()),
            Some("detect" | "clean")
        )
    }) else {
        return Ok(Expectation::Unspecified);
    };
    if folders[marker].ends_with("clean") {
        return Ok(Expectation::Clean);
    }
    for folder in &folders[..=marker] {
        let file = folder.join(THREAT_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let threat = text.trim();
                if threat.is_empty() || threat.contains('\n') {
                    bail!(
                        "{} must hold one threat name (Family:Platform/Name) on one line",
                        shown(&file)
                    );
                }
                return Ok(Expectation::Detect(Some(threat.to_string())));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", shown(&file))),
        }
    }
    Ok(Expectation::Detect(None))
}

/// The files under `root` (or `root` itself), without following links; `.threat` files are
/// expectations, not samples.
fn collect_samples(root: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::symlink_metadata(root)
        .with_context(|| format!("cannot read the sample {}", shown(root)))?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(root)
            .with_context(|| format!("cannot list the samples in {}", shown(root)))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list the samples in {}", shown(root)))?;
            collect_samples(&entry.path(), out)?;
        }
    } else if meta.is_file() && root.file_name().is_none_or(|name| name != THREAT_FILE) {
        out.push(root.to_path_buf());
    }
    Ok(())
}

fn outcome_json(plugin: &str, outcome: &Outcome) -> serde_json::Value {
    let (expect, threat) = match &outcome.expectation {
        Expectation::Detect(threat) => ("detect", threat.clone()),
        Expectation::Clean => ("clean", None),
        Expectation::Unspecified => ("none", None),
    };
    let mut record = json!({
        "type": "sample",
        "plugin": plugin,
        "path": report::path_lossy(&outcome.path),
        "expect": expect,
        "threat": threat,
        "selected": outcome.selected,
        "findings": outcome.findings.iter().map(|finding| json!({
            "threat": finding.threat,
            "severity": finding.severity,
            "description": finding.description,
            "offset": finding.offset,
        })).collect::<Vec<_>>(),
        "faults": outcome.faults,
        "passed": outcome.failure.is_none(),
        "reason": outcome.failure,
    });
    if let Some(hex) = report::path_hex(&outcome.path) {
        record["path_hex"] = hex.into();
    }
    record
}

fn print_outcome(outcome: &Outcome) {
    let verdict = match (&outcome.failure, &outcome.expectation) {
        (Some(_), _) => "FAIL",
        (None, Expectation::Unspecified) => "----",
        (None, _) => "ok  ",
    };
    let found: Vec<String> = outcome
        .findings
        .iter()
        .map(|f| format!("{} ({})", untrusted(&f.threat), f.severity))
        .collect();
    let found = if found.is_empty() {
        "clean".to_string()
    } else {
        found.join(", ")
    };
    let mut line = format!("{verdict} {}: {found}", shown(&outcome.path));
    if let Some(failure) = &outcome.failure {
        line.push_str(&format!(" -- {}", untrusted(failure)));
    }
    print_line(&line);
}

/// The sample roots, for a message.
fn list(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|root| shown(root).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
