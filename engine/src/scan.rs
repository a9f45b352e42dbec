//! The engine and its scan pipeline: plan the targets, walk them in parallel, and let a pool of
//! workers read, detect and report each file while the walk goes on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, ThreatAction};
use crate::decide::{Decider, Verdict};
use crate::detect::Detectors;
use crate::discover;
use crate::error::EngineError;
use crate::exclusions::Exclusions;
use crate::input::{FileReader, Unscannable};
use crate::plugin::PluginFault;
use crate::quarantine::Vault;
use crate::report::{Finding, ScanEvent, ScanSink, ScanSummary};
use crate::sigbus;
use crate::state::{State, unix_now};
pub use crate::targets::ScanKind;

/// How many discovered paths may wait for a worker; bounds memory on huge trees.
const QUEUE_DEPTH: usize = 4096;

/// Native stack of a worker thread besides what plugins may use (`plugins.max_stack`).
const WORKER_STACK: usize = 2 * 1024 * 1024;

/// One scan to run.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// What to scan.
    pub kind: ScanKind,
    /// Worker threads (at least one).
    pub threads: usize,
}

/// A configured engine: compiled detectors, exclusions, decision rules and limits, ready to run
/// scans.
pub struct Engine {
    config: Config,
    exclusions: Exclusions,
    detectors: Detectors,
    decider: Decider,
    state: Arc<State>,
    /// Present when detected files are quarantined.
    vault: Option<Vault>,
    truncate_mapped_for_test: bool,
}

impl Engine {
    /// Builds an engine from the configuration, the compiled detectors, and the state dir (stored
    /// exclusions, allowed threats, recent restores, the vault).
    pub fn new(
        config: Config,
        detectors: Detectors,
        state: Arc<State>,
    ) -> Result<Self, EngineError> {
        let engine = &config.antivirus_engine;
        let stored_exclusions = state.exclusions()?;
        let exclusions = Exclusions::new(engine.exclusions.iter().chain(&stored_exclusions))?;
        let exclusion_time = engine.threat_restoration_exclusion_time;
        let restored = state.restored_since(unix_now() - exclusion_time as i64)?;
        let allowed = engine
            .allowed_threats
            .iter()
            .cloned()
            .chain(state.allowed_threats()?);
        let decider = Decider::new(allowed, restored, exclusion_time);
        let vault = match engine.threat_action {
            ThreatAction::Quarantine => Some(Vault::open(state.clone())?),
            ThreatAction::Report => None,
        };
        Ok(Self {
            config,
            exclusions,
            detectors,
            decider,
            state,
            vault,
            truncate_mapped_for_test: std::env::var_os("VIGIL_FAULT_TRUNCATE_MAPPED").is_some(),
        })
    }

    /// Runs a scan, streaming every result to `sink`, and returns the totals. Fails only before
    /// scanning starts (a target that does not exist); per-file problems are events.
    pub fn scan(
        &self,
        request: &ScanRequest,
        sink: &dyn ScanSink,
    ) -> Result<ScanSummary, EngineError> {
        let started = Instant::now();
        let counters = Counters::default();
        let report = |event: ScanEvent| {
            counters.count(&event);
            sink.event(&event);
        };
        let threads = request.threads.max(1);
        let plan = crate::targets::plan(
            &request.kind,
            &self.config,
            &self.exclusions,
            threads,
            &report,
        )?;
        sigbus::install();

        let (sender, receiver) = crossbeam_channel::bounded::<PathBuf>(QUEUE_DEPTH);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let receiver = receiver.clone();
                let (report, counters) = (&report, &counters);
                std::thread::Builder::new()
                    .name("vigil-scan".into())
                    .stack_size(WORKER_STACK + self.config.plugins.max_stack as usize)
                    .spawn_scoped(scope, move || {
                        self.run_worker(receiver, report, counters, sink)
                    })
                    .expect("cannot start a scan thread");
            }
            drop(receiver);
            discover::walk(&plan, &self.exclusions, &report, sender);
        });

        let mut summary = counters.summary();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// One worker: takes paths until the walk is over, with its own reader and detector state.
    fn run_worker(
        &self,
        paths: crossbeam_channel::Receiver<PathBuf>,
        report: &(dyn Fn(ScanEvent) + Sync),
        counters: &Counters,
        sink: &dyn ScanSink,
    ) {
        let engine = &self.config.antivirus_engine;
        let mut reader = FileReader::new(
            engine.mmap_threshold,
            engine.max_file_size,
            self.truncate_mapped_for_test,
        );
        let mut detector = self
            .detectors
            .worker(Duration::from_secs(engine.scan_timeout));
        let mut findings = Vec::new();
        let mut faults = Vec::new();
        let wants_digest = self.decider.wants_digest();
        for path in paths {
            let mut digest = None;
            let outcome = reader.with_contents(&path, |bytes| {
                let result = detector.scan(&path, bytes, &mut findings, &mut faults);
                if wants_digest && !findings.is_empty() {
                    digest = Some(blake3::hash(bytes).to_hex().to_string());
                }
                result
            });
            report_faults(&path, &mut faults, report);
            self.decide_and_act(&path, &mut findings, digest.as_deref(), report, counters);
            let problem = match outcome {
                Ok((bytes, result)) => {
                    counters.files_scanned.fetch_add(1, Ordering::Relaxed);
                    counters.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
                    sink.file_scanned(&path, bytes);
                    result.err().map(Unscannable::Error)
                }
                Err(unscannable) => Some(unscannable),
            };
            match problem {
                Some(Unscannable::Error(reason)) => report(ScanEvent::Error { path, reason }),
                Some(Unscannable::Skipped(reason)) => report(ScanEvent::Skipped { path, reason }),
                None => {}
            }
        }
    }

    /// Reports each finding as a threat or as allowed, records it in the threat history, and
    /// quarantines the file when that is the configured action and a threat remains.
    fn decide_and_act(
        &self,
        path: &Path,
        findings: &mut Vec<Finding>,
        digest: Option<&str>,
        report: &(dyn Fn(ScanEvent) + Sync),
        counters: &Counters,
    ) {
        if findings.is_empty() {
            return;
        }
        let now = unix_now();
        let mut threats: Vec<String> = Vec::new();
        for finding in findings.drain(..) {
            let verdict = self.decider.verdict(&finding, digest, now);
            let (action, detail) = match &verdict {
                Verdict::Threat => ("detected", None),
                Verdict::Allowed(reason) => ("allowed", Some(reason.as_str())),
            };
            if let Err(err) = self
                .state
                .record(action, path, &finding.threat, None, detail)
            {
                report(ScanEvent::Error {
                    path: path.to_path_buf(),
                    reason: format!("cannot record in the threat history: {err}"),
                });
            }
            let path = path.to_path_buf();
            report(match verdict {
                Verdict::Threat => {
                    threats.push(finding.threat.clone());
                    ScanEvent::Detection { path, finding }
                }
                Verdict::Allowed(reason) => ScanEvent::Allowed {
                    path,
                    finding,
                    reason,
                },
            });
        }
        if threats.is_empty() {
            return;
        }
        counters.infected_files.fetch_add(1, Ordering::Relaxed);
        let Some(vault) = &self.vault else { return };
        threats.sort();
        threats.dedup();
        match vault.quarantine(path, &threats) {
            Ok(entry) => report(ScanEvent::Quarantined {
                path: path.to_path_buf(),
                id: entry.id,
            }),
            Err(err) => report(ScanEvent::Error {
                path: path.to_path_buf(),
                reason: format!("quarantine failed: {err}"),
            }),
        }
    }
}

/// Reports plugin faults on a file, and once, the fault that disabled a plugin.
fn report_faults(path: &Path, faults: &mut Vec<PluginFault>, report: &(dyn Fn(ScanEvent) + Sync)) {
    for fault in faults.drain(..) {
        report(ScanEvent::PluginFault {
            path: path.to_path_buf(),
            plugin: fault.plugin.clone(),
            reason: fault.reason,
        });
        if let Some(count) = fault.disabled_after {
            report(ScanEvent::PluginDisabled {
                path: path.to_path_buf(),
                plugin: fault.plugin,
                reason: format!(
                    "disabled for the rest of this scan after {count} faults (plugins.max_faults)"
                ),
            });
        }
    }
}

/// Running totals, updated from every thread.
#[derive(Default)]
struct Counters {
    files_scanned: AtomicU64,
    bytes_scanned: AtomicU64,
    detections: AtomicU64,
    infected_files: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    allowed: AtomicU64,
    quarantined: AtomicU64,
    plugin_faults: AtomicU64,
}

impl Counters {
    fn count(&self, event: &ScanEvent) {
        let counter = match event {
            ScanEvent::Detection { .. } => &self.detections,
            ScanEvent::Error { .. } => &self.errors,
            ScanEvent::Skipped { .. } => &self.skipped,
            ScanEvent::Allowed { .. } => &self.allowed,
            ScanEvent::Quarantined { .. } => &self.quarantined,
            ScanEvent::PluginFault { .. } => &self.plugin_faults,
            ScanEvent::PluginDisabled { .. } => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn summary(&self) -> ScanSummary {
        ScanSummary {
            files_scanned: self.files_scanned.load(Ordering::Relaxed),
            bytes_scanned: self.bytes_scanned.load(Ordering::Relaxed),
            detections: self.detections.load(Ordering::Relaxed),
            infected_files: self.infected_files.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            allowed: self.allowed.load(Ordering::Relaxed),
            quarantined: self.quarantined.load(Ordering::Relaxed),
            plugin_faults: self.plugin_faults.load(Ordering::Relaxed),
            duration_ms: 0,
        }
    }
}
