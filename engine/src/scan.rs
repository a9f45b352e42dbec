//! The engine and its scan pipeline: plan the targets, walk them in parallel, and let a pool of
//! workers open, read, detect, decide and act on each file while the walk goes on.
//!
//! [`EngineBuilder`] assembles an [`Engine`] from a configuration and a state dir (installed
//! definitions, extra rules and plugins). [`Engine::scan`] runs a tree scan and streams to a
//! [`ScanSink`]; [`Engine::scan_file`] and [`Engine::scan_bytes`] scan one object and return its
//! [`ObjectReport`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, ThreatAction};
use crate::decide::{Decider, Verdict};
use crate::definitions::DefinitionsStore;
use crate::detect::yara::load_sources;
use crate::detect::{DetectorWorker, Detectors};
use crate::discover;
use crate::error::EngineError;
use crate::exclusions::Exclusions;
use crate::input::{CUT_SHORT, Contents, FileReader};
use crate::object::{ScanObject, Unscannable};
use crate::plugin::{PLUGIN_CACHE, PluginFault, PluginSet};
use crate::quarantine::Vault;
use crate::report::{Finding, ScanEvent, ScanSink, ScanStart, ScanSummary};
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

/// Assembles an [`Engine`]: configuration, state dir, the active definitions, and any extra rules
/// and plugins.
///
/// ```no_run
/// # fn main() -> Result<(), vigil_engine::EngineError> {
/// let engine = vigil_engine::EngineBuilder::new(vigil_engine::Config::default())
///     .state_dir("/tmp/vigil-state")
///     .build()?;
/// # Ok(()) }
/// ```
pub struct EngineBuilder {
    config: Config,
    state_dir: Option<PathBuf>,
    extra_rules: Vec<PathBuf>,
    extra_plugins: Vec<PathBuf>,
    concurrency: Option<usize>,
}

impl EngineBuilder {
    /// A builder for an engine with this configuration (`plugins.enabled = false` runs none).
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state_dir: None,
            extra_rules: Vec::new(),
            extra_plugins: Vec::new(),
            concurrency: None,
        }
    }

    /// The state dir (definitions, history, vault, caches). Default: [`State::default_dir`].
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Adds a `.yar` file, or a folder of them, to the installed definitions' rules.
    pub fn extra_rules(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_rules.push(path.into());
        self
    }

    /// Adds a plugin (a WebAssembly component, or a core module built with `vigil-sdk`).
    pub fn extra_plugin(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_plugins.push(path.into());
        self
    }

    /// How many plugin calls may run at once, over all scans of this engine (default: the
    /// configured scan threads). More callers wait for a free plugin instance.
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = Some(calls.max(1));
        self
    }

    /// Opens the state dir, loads the active definitions (or the built-in default), compiles the
    /// extra rules and loads the plugins. Fails on anything malformed, naming it.
    pub fn build(self) -> Result<Engine, EngineError> {
        let dir = self.state_dir.unwrap_or_else(State::default_dir);
        let state = Arc::new(State::open(&dir)?);
        let definitions = DefinitionsStore::open(state.clone())?.active()?;
        let mut extra_rules = Vec::new();
        for path in &self.extra_rules {
            extra_rules.extend(load_sources(path)?);
        }
        let concurrency = self
            .concurrency
            .unwrap_or_else(|| self.config.scan_threads());
        let plugins = if self.config.plugins.enabled {
            PluginSet::load_with_files(
                &definitions.plugins,
                &self.extra_plugins,
                &self.config.plugins,
                concurrency,
                Some(&state.dir().join(PLUGIN_CACHE)),
            )?
        } else {
            PluginSet::none()
        };
        let warnings = definitions.warnings.clone();
        let detectors = definitions.detectors(&extra_rules, plugins)?;
        Engine::new(self.config, detectors, state, warnings)
    }
}

/// A configured engine: compiled detectors, exclusions, decision rules and limits, ready to run
/// scans. Shareable between threads; several scans may run at once.
pub struct Engine {
    config: Config,
    exclusions: Exclusions,
    detectors: Detectors,
    decider: Decider,
    state: Arc<State>,
    /// Present when detected files are quarantined.
    vault: Option<Vault>,
    warnings: Vec<String>,
}

/// What one object's scan found: its events (detections, allowed detections, plugin faults, an
/// error or a skip), in the order they happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectReport {
    /// Every event about the object.
    pub events: Vec<ScanEvent>,
    /// Bytes of content scanned (0 when it could not be scanned).
    pub bytes_scanned: u64,
}

impl ObjectReport {
    /// The threat names reported (not allowed ones).
    pub fn threats(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                ScanEvent::Detection { finding, .. } => Some(finding.threat.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl Engine {
    fn new(
        config: Config,
        detectors: Detectors,
        state: Arc<State>,
        warnings: Vec<String>,
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
            ThreatAction::Quarantine => Some(Vault::open(state.clone(), &config.quarantine)?),
            ThreatAction::Report => None,
        };
        Ok(Self {
            config,
            exclusions,
            detectors,
            decider,
            state,
            vault,
            warnings,
        })
    }

    /// Problems met while building that did not stop it (for example damaged definitions that
    /// were replaced by the previous version); a front end should show them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The plugins this engine runs.
    pub fn plugins(&self) -> &PluginSet {
        &self.detectors.plugins
    }

    /// Runs a scan, streaming every result to `sink`, and returns the totals. Fails only before
    /// scanning starts (a target that does not exist); per-file problems are events. The scan
    /// stops early, with `cancelled` set in the summary, once [`ScanSink::cancelled`] says so.
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
        sink.begin(&ScanStart {
            kind: request.kind.clone(),
            threads,
        });
        sigbus::install();
        let plugin_faults = self.detectors.plugins.scan_faults();
        // Set by whoever stops early, so a scan that ended anyway is not called cancelled.
        let stopped = AtomicBool::new(false);
        let cancelled = || {
            let cancel = sink.cancelled();
            if cancel {
                stopped.store(true, Ordering::Relaxed);
            }
            cancel
        };

        let (sender, receiver) = crossbeam_channel::bounded::<PathBuf>(QUEUE_DEPTH);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let receiver = receiver.clone();
                let (report, counters, plugin_faults) = (&report, &counters, &plugin_faults);
                let cancelled = &cancelled;
                std::thread::Builder::new()
                    .name("vigil-scan".into())
                    .stack_size(WORKER_STACK + self.config.plugins.max_stack as usize)
                    .spawn_scoped(scope, move || {
                        let mut worker = self.worker(plugin_faults);
                        for path in receiver {
                            if cancelled() {
                                break;
                            }
                            let scanned = match ScanObject::open(&path) {
                                Ok(object) => {
                                    crate::fault::pause("scan: object opened");
                                    worker.scan(self, &object, report, true)
                                }
                                Err(problem) => {
                                    report(problem_event(path.clone(), problem));
                                    Scanned::default()
                                }
                            };
                            if scanned.infected {
                                counters.infected_files.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some(bytes) = scanned.bytes {
                                counters.files_scanned.fetch_add(1, Ordering::Relaxed);
                                counters.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
                                sink.file_scanned(&path, bytes);
                            }
                        }
                    })
                    .expect("cannot start a scan thread");
            }
            drop(receiver);
            discover::walk(&plan, &self.exclusions, &report, &cancelled, sender);
        });

        let mut summary = counters.summary();
        summary.cancelled = stopped.load(Ordering::Relaxed);
        summary.duration_ms = started.elapsed().as_millis() as u64;
        sink.finish(&summary);
        Ok(summary)
    }

    /// Scans one open file (for example a descriptor a client passed) and decides on its
    /// findings; `path` is where it is said to be, used in the report and by plugins that choose
    /// files by extension. Nothing is done to the file, whatever `threat_action` says: acting on
    /// a caller's file is the caller's decision. Detections are recorded in the threat history.
    pub fn scan_file(&self, file: &File, path: &Path) -> Result<ObjectReport, EngineError> {
        let handle = file.try_clone().map_err(|cause| EngineError::Io {
            context: format!("cannot duplicate the descriptor of {}", path.display()),
            cause,
        })?;
        sigbus::install();
        let plugin_faults = self.detectors.plugins.scan_faults();
        let mut worker = self.worker(&plugin_faults);
        let report = ObjectCollector::default();
        let scanned = match ScanObject::from_file(handle, path.to_path_buf()) {
            Ok(object) => worker.scan(self, &object, &|event| report.push(event), false),
            Err(problem) => {
                report.push(problem_event(path.to_path_buf(), problem));
                Scanned::default()
            }
        };
        Ok(report.finish(scanned.bytes))
    }

    /// Scans bytes held in memory, as the content of a file named `name` (used in the report and
    /// by plugins that choose files by extension), and decides on the findings.
    pub fn scan_bytes(&self, bytes: &[u8], name: &Path) -> ObjectReport {
        let plugin_faults = self.detectors.plugins.scan_faults();
        let mut worker = self.worker(&plugin_faults);
        let report = ObjectCollector::default();
        let emit = |event| report.push(event);
        let outcome = worker.detect(self, name, bytes, &emit);
        if let Err(reason) = outcome.result {
            emit(ScanEvent::Error {
                path: name.to_path_buf(),
                reason,
            });
        }
        self.decide(name, outcome.findings, outcome.digest.as_deref(), &emit);
        report.finish(Some(bytes.len() as u64))
    }

    fn worker<'e>(&'e self, plugin_faults: &'e crate::plugin::ScanFaults) -> Worker<'e> {
        let engine = &self.config.antivirus_engine;
        Worker {
            reader: FileReader::new(engine.mmap_threshold, engine.max_file_size),
            detector: self
                .detectors
                .worker(Duration::from_secs(engine.scan_timeout), plugin_faults),
            findings: Vec::new(),
            faults: Vec::new(),
        }
    }

    /// Reports each finding as a threat or as allowed and records it in the threat history;
    /// returns the names of the threats that remain (sorted, without repeats).
    fn decide(
        &self,
        path: &Path,
        findings: Vec<Finding>,
        digest: Option<&str>,
        report: &(dyn Fn(ScanEvent) + Sync),
    ) -> Vec<String> {
        let now = unix_now();
        let mut threats: Vec<String> = Vec::new();
        for finding in findings {
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
        threats.sort();
        threats.dedup();
        threats
    }

    /// Quarantines the scanned object when that is the configured action.
    fn act(&self, object: &ScanObject, threats: &[String], report: &(dyn Fn(ScanEvent) + Sync)) {
        let Some(vault) = &self.vault else { return };
        let path = object.path().to_path_buf();
        report(match vault.quarantine(object, threats) {
            Ok(entry) => ScanEvent::Quarantined { path, id: entry.id },
            Err(err) => ScanEvent::Error {
                path,
                reason: format!("quarantine failed: {err}"),
            },
        });
    }
}

/// One thread's scanning state: its read buffer, its detectors, scratch space for results.
struct Worker<'e> {
    reader: FileReader,
    detector: DetectorWorker<'e>,
    findings: Vec<Finding>,
    faults: Vec<PluginFault>,
}

/// What became of one object in a scan.
#[derive(Default)]
struct Scanned {
    /// Bytes scanned, or `None` when the content could not be read.
    bytes: Option<u64>,
    /// Whether a threat remained after the decision.
    infected: bool,
}

/// What the detectors made of one object's bytes.
struct Detected {
    findings: Vec<Finding>,
    /// BLAKE3 of the content, when a decision may need it.
    digest: Option<String>,
    /// An error that cut a detector short (a YARA timeout); other findings stand.
    result: Result<(), String>,
}

impl Worker<'_> {
    /// The pipeline after discovery for one opened object: read, detect, decide, and act when
    /// `act` (tree scans; never for a caller's descriptor).
    fn scan(
        &mut self,
        engine: &Engine,
        object: &ScanObject,
        report: &(dyn Fn(ScanEvent) + Sync),
        act: bool,
    ) -> Scanned {
        let path = object.path();
        let contents = match self.detect_object(engine, object, report) {
            Ok(contents) => contents,
            Err(problem) => {
                report(problem_event(path.to_path_buf(), problem));
                return Scanned::default();
            }
        };
        let detected = contents.result;
        let threats = engine.decide(path, detected.findings, detected.digest.as_deref(), report);
        let infected = !threats.is_empty();
        if contents.cut_short {
            // What was found is reported, but the file is no longer what was scanned: it is not
            // acted on, and not counted as scanned.
            report(problem_event(
                path.to_path_buf(),
                Unscannable::Error(CUT_SHORT.into()),
            ));
            return Scanned {
                bytes: None,
                infected,
            };
        }
        if act && infected {
            engine.act(object, &threats, report);
        }
        if let Err(reason) = detected.result {
            // Read and scanned, but a detector was cut short: counted, and said.
            report(problem_event(
                path.to_path_buf(),
                Unscannable::Error(reason),
            ));
        }
        Scanned {
            bytes: Some(contents.bytes),
            infected,
        }
    }

    /// Reads the object and runs the detectors on its bytes.
    fn detect_object(
        &mut self,
        engine: &Engine,
        object: &ScanObject,
        report: &(dyn Fn(ScanEvent) + Sync),
    ) -> Result<Contents<Detected>, Unscannable> {
        let Self {
            reader,
            detector,
            findings,
            faults,
        } = self;
        reader.with_contents(object, |bytes| {
            detect_with(
                detector,
                findings,
                faults,
                engine,
                object.path(),
                bytes,
                report,
            )
        })
    }

    /// Runs the detectors on bytes that are not a file on disk.
    fn detect(
        &mut self,
        engine: &Engine,
        name: &Path,
        bytes: &[u8],
        report: &(dyn Fn(ScanEvent) + Sync),
    ) -> Detected {
        detect_with(
            &mut self.detector,
            &mut self.findings,
            &mut self.faults,
            engine,
            name,
            bytes,
            report,
        )
    }
}

/// Runs every detector on `bytes`, reports plugin faults, and computes the digest when there are
/// findings and a decision depends on it.
fn detect_with(
    detector: &mut DetectorWorker<'_>,
    findings: &mut Vec<Finding>,
    faults: &mut Vec<PluginFault>,
    engine: &Engine,
    path: &Path,
    bytes: &[u8],
    report: &(dyn Fn(ScanEvent) + Sync),
) -> Detected {
    let result = detector.scan(path, bytes, findings, faults);
    report_faults(path, faults, report);
    let digest = (engine.decider.wants_digest() && !findings.is_empty())
        .then(|| blake3::hash(bytes).to_hex().to_string());
    Detected {
        findings: std::mem::take(findings),
        digest,
        result,
    }
}

/// The event for an object that produced no bytes to scan.
fn problem_event(path: PathBuf, problem: Unscannable) -> ScanEvent {
    match problem {
        Unscannable::Error(reason) => ScanEvent::Error { path, reason },
        Unscannable::Skipped(reason) => ScanEvent::Skipped { path, reason },
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

/// Collects one object's events for an [`ObjectReport`].
#[derive(Default)]
struct ObjectCollector {
    events: std::sync::Mutex<Vec<ScanEvent>>,
}

impl ObjectCollector {
    fn push(&self, event: ScanEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    fn finish(self, bytes: Option<u64>) -> ObjectReport {
        ObjectReport {
            events: self.events.into_inner().unwrap_or_else(|p| p.into_inner()),
            bytes_scanned: bytes.unwrap_or(0),
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
            cancelled: false,
            duration_ms: 0,
        }
    }
}
