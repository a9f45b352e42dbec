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

use crate::cache::{
    CachedResult, HashKey, ResultCache, ResultFingerprint, ScanKey, ScanStats, Validators, Volumes,
};
use crate::config::Config;
use crate::config::DiagnosticLevel;
use crate::decide::{ActionPolicy, Decider, Verdict};
use crate::definitions::DefinitionsStore;
use crate::detect::externals::{DefineValue, check_defines};
use crate::detect::yara::load_sources;
use crate::detect::{DetectorWorker, Detectors};
use crate::diagnostics::DiagnosticLog;
use crate::discover;
use crate::error::EngineError;
use crate::exclusions::Exclusions;
use crate::input::{CUT_SHORT, Contents, FileReader};
use crate::member_scan;
use crate::object::{ScanObject, Unscannable};
use crate::plugin::{PLUGIN_CACHE, PluginFault, PluginSet};
use crate::quarantine::Vault;
use crate::report::{Finding, Response, ScanEvent, ScanSink, ScanStart, ScanSummary};
use crate::sigbus;
use crate::state::{State, unix_now};
pub use crate::targets::ScanKind;

/// How many opened files may wait for a worker: bounds memory and open descriptors on huge trees.
const QUEUE_DEPTH: usize = 256;

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
    cache: bool,
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
            cache: true,
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

    /// Defines a constant for the rules (`--define NAME=VALUE`), over `[yara] defines`. A name
    /// that is not an identifier, or one of the per-file variables, fails [`EngineBuilder::build`].
    pub fn define(mut self, name: &str, value: DefineValue) -> Self {
        self.config.yara.defines.insert(name.to_string(), value);
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

    /// Whether scans use and update the result caches (default: yes, as far as
    /// `antivirus_engine.scan_cache_maximum` and `file_hash_cache_maximum` allow); `false` is
    /// `--no-cache`: every file is read and matched, and the caches are left as they are.
    pub fn cache(mut self, enabled: bool) -> Self {
        self.cache = enabled;
        self
    }

    /// Opens the state dir, loads the active definitions (or the built-in default), compiles the
    /// extra rules and loads the plugins. Fails on anything malformed, naming it.
    pub fn build(self) -> Result<Engine, EngineError> {
        check_defines(&self.config.yara.defines).map_err(EngineError::Rules)?;
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
        let mut warnings = definitions.warnings.clone();
        let fingerprint =
            ResultFingerprint::new(&self.config, &definitions, &extra_rules, &plugins);
        let limits = &self.config.antivirus_engine;
        let cache = if self.cache
            && (limits.scan_cache_maximum > 0 || limits.file_hash_cache_maximum > 0)
        {
            let (cache, warning) = ResultCache::open(state.dir(), &fingerprint, limits)?;
            warnings.extend(warning);
            Some(cache)
        } else {
            None
        };
        let info = definitions.info.clone();
        let detectors = definitions.detectors(&extra_rules, &self.config.yara, plugins)?;
        let diagnostics = match DiagnosticLog::open(state.dir(), &self.config, info.version) {
            Ok(log) => {
                if let Err(err) = log.snapshot_config(&self.config, None) {
                    warnings.push(format!("cannot write diagnostic data: {err}"));
                }
                Some(log)
            }
            Err(err) => {
                warnings.push(format!("cannot write diagnostic data: {err}"));
                None
            }
        };
        let mut engine = Engine::new(self.config, detectors, state, warnings, cache, info)?;
        engine.diagnostics = diagnostics;
        Ok(engine)
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
    /// The result caches, unless turned off.
    cache: Option<ResultCache>,
    /// The definitions its detectors came from.
    definitions: crate::definitions::DefinitionsInfo,
    /// The diagnostic log, when it could be opened.
    diagnostics: Option<DiagnosticLog>,
}

/// What one object's scan found: its events (detections, allowed detections, plugin faults, an
/// error or a skip), in the order they happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectReport {
    /// Every event about the object.
    pub events: Vec<ScanEvent>,
    /// Bytes of content scanned (0 when it could not be scanned).
    pub bytes_scanned: u64,
    /// Whether the result came from a cache.
    pub cached: bool,
    /// Whether the object's result was established (read and matched, or from a cache).
    pub scanned: bool,
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

    /// Adds this object to a scan's totals, counted as [`Engine::scan`] counts a file.
    pub fn add_to(&self, summary: &mut ScanSummary) {
        for event in &self.events {
            let counter = match event {
                ScanEvent::Detection { .. } => &mut summary.detections,
                ScanEvent::Error { .. } => &mut summary.errors,
                ScanEvent::Skipped { .. } => &mut summary.skipped,
                ScanEvent::Allowed { .. } => &mut summary.allowed,
                ScanEvent::Quarantined { .. } => &mut summary.quarantined,
                ScanEvent::PluginFault { .. } => &mut summary.plugin_faults,
                ScanEvent::Limit { .. } => &mut summary.limits,
                ScanEvent::PluginDisabled { .. } => continue,
            };
            *counter += 1;
        }
        if !self.threats().is_empty() {
            summary.infected_files += 1;
        }
        if self.scanned {
            summary.files_scanned += 1;
            summary.bytes_scanned += self.bytes_scanned;
            if self.cached {
                summary.cache_hits += 1;
            }
        }
    }
}

/// Scans open files one after another on one thread, keeping its detectors and buffers (see
/// [`Engine::with_file_scanner`]).
pub struct FileScanner<'e> {
    engine: &'e Engine,
    worker: Worker<'e>,
}

impl FileScanner<'_> {
    /// Scans `file`, said to be at `path`, and decides on its findings (recorded in the threat
    /// history). With `act`, a detected file is quarantined when `threat_action` asks for it,
    /// through this handle (never by opening `path` again); without, nothing is done to it.
    pub fn scan(
        &mut self,
        file: &File,
        path: &Path,
        act: bool,
    ) -> Result<ObjectReport, EngineError> {
        let handle = file.try_clone().map_err(|cause| EngineError::Io {
            context: format!("cannot duplicate the descriptor of {}", path.display()),
            cause,
        })?;
        let engine = self.engine;
        let report = ObjectCollector::default();
        let scanned = match ScanObject::from_file(handle, path.to_path_buf()) {
            Ok(object) => {
                crate::fault::pause("scan_file: object opened");
                let looked = engine.look_up(&object, self.worker.volumes);
                self.worker
                    .scan(engine, &object, looked, &|event| report.push(event), act)
            }
            Err(problem) => {
                report.push(problem_event(path.to_path_buf(), problem));
                Scanned::default()
            }
        };
        let mut object_report = report.finish(scanned.bytes);
        object_report.cached = scanned.cache_hit.is_some();
        Ok(object_report)
    }
}

impl Engine {
    fn new(
        config: Config,
        detectors: Detectors,
        state: Arc<State>,
        warnings: Vec<String>,
        cache: Option<ResultCache>,
        definitions: crate::definitions::DefinitionsInfo,
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
        let decider = Decider::new(allowed, restored, exclusion_time, ActionPolicy::new(engine));
        let vault = if decider.may_quarantine() {
            Some(Vault::open(state.clone(), &config.quarantine)?)
        } else {
            None
        };
        Ok(Self {
            config,
            exclusions,
            detectors,
            decider,
            state,
            vault,
            warnings,
            cache,
            definitions,
            diagnostics: None,
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

        // Counts what became of one object, and tells the sink.
        let record = |path: &Path, scanned: Scanned| {
            if scanned.infected {
                counters.infected_files.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(hit) = scanned.cache_hit {
                match hit {
                    CacheHit::File => &counters.cache_hits,
                    CacheHit::Content => &counters.file_hash_hits,
                }
                .fetch_add(1, Ordering::Relaxed);
            }
            counters
                .members_scanned
                .fetch_add(scanned.members, Ordering::Relaxed);
            if let Some(bytes) = scanned.bytes {
                counters.files_scanned.fetch_add(1, Ordering::Relaxed);
                if bytes > 0 {
                    // Shared by every thread: not touched for the cache hits that read nothing.
                    counters.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
                }
                sink.file_scanned(path, bytes);
            }
        };
        let volumes = Volumes::default();
        let (sender, receiver) = crossbeam_channel::bounded::<(ScanObject, Looked)>(QUEUE_DEPTH);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let receiver = receiver.clone();
                let (report, record, plugin_faults) = (&report, &record, &plugin_faults);
                let (cancelled, volumes) = (&cancelled, &volumes);
                std::thread::Builder::new()
                    .name("vigil-scan".into())
                    .stack_size(self.scan_thread_stack())
                    .spawn_scoped(scope, move || {
                        let mut worker = self.worker(plugin_faults, volumes);
                        for (object, looked) in receiver {
                            if cancelled() {
                                break;
                            }
                            let scanned = worker.scan(self, &object, looked, report, true);
                            record(object.path(), scanned);
                        }
                    })
                    .expect("cannot start a scan thread");
            }
            drop(receiver);
            // The walker opens each file; an unchanged file the scan cache knows to be clean is
            // done there and then, so a rescan costs a walk. The rest go to the workers.
            let on_file = |path: PathBuf| {
                let object = match ScanObject::open(&path) {
                    Ok(object) => object,
                    Err(problem) => {
                        report(problem_event(path, problem));
                        return true;
                    }
                };
                crate::fault::pause("scan: object opened");
                let looked = self.look_up(&object, &volumes);
                if looked
                    .cached
                    .as_ref()
                    .is_some_and(|hit| hit.detection().is_none())
                {
                    let hit = Scanned {
                        bytes: Some(0),
                        infected: false,
                        cache_hit: Some(CacheHit::File),
                        members: 0,
                    };
                    record(object.path(), hit);
                    return true;
                }
                sender.send((object, looked)).is_ok()
            };
            discover::walk(&plan, &self.exclusions, &report, &cancelled, &on_file);
            drop(sender);
        });

        let mut summary = counters.summary();
        if let Some(cache) = &self.cache {
            let stats = ScanStats {
                ended_at: unix_now(),
                files: summary.files_scanned,
                cache_hits: summary.cache_hits,
                file_hash_hits: summary.file_hash_hits,
            };
            if let Err(err) = cache.save(Some(stats)) {
                report(ScanEvent::Error {
                    path: self.state.dir().join(crate::cache::CACHE_DIR),
                    reason: format!("cannot save the scan cache: {err}"),
                });
                summary = counters.summary();
            }
        }
        summary.cancelled = stopped.load(Ordering::Relaxed);
        summary.duration_ms = started.elapsed().as_millis() as u64;
        let kind = match request.kind {
            ScanKind::Quick => "quick",
            ScanKind::Full => "full",
            ScanKind::Custom(_) => "custom",
        };
        self.record_scan_diagnostics(kind, threads, &summary, &plugin_faults);
        if !summary.cancelled
            && let Err(err) =
                self.state
                    .record_scan(kind, unix_now(), summary.files_scanned, summary.detections)
        {
            report(ScanEvent::Error {
                path: self.state.dir().to_path_buf(),
                reason: format!("cannot record the scan for health: {err}"),
            });
            summary.errors += 1;
        }
        sink.finish(&summary);
        Ok(summary)
    }

    /// Scans one open file (for example a descriptor a client passed) and decides on its
    /// findings; `path` is where it is said to be, used in the report and by plugins that choose
    /// files by extension. Nothing is done to the file, whatever `threat_action` says: acting on
    /// a caller's file is the caller's decision. Detections are recorded in the threat history.
    pub fn scan_file(&self, file: &File, path: &Path) -> Result<ObjectReport, EngineError> {
        self.with_file_scanner(|scanner| scanner.scan(file, path, false))
    }

    /// The stack a thread that scans needs: the engine's own frames plus the deepest plugin stack
    /// (`plugins.max_stack`). A front end that calls [`Engine::scan_file`] or
    /// [`Engine::with_file_scanner`] on threads of its own gives them this much.
    pub fn scan_thread_stack(&self) -> usize {
        WORKER_STACK + self.config.plugins.max_stack as usize
    }

    /// Runs `body` with a [`FileScanner`]: one thread's detectors and buffers, kept from one file
    /// to the next (for a thread that scans many open files, such as real-time protection's).
    /// The thread needs [`Engine::scan_thread_stack`] of stack.
    pub fn with_file_scanner<R>(&self, body: impl FnOnce(&mut FileScanner<'_>) -> R) -> R {
        sigbus::install();
        let plugin_faults = self.detectors.plugins.scan_faults();
        let volumes = Volumes::default();
        let mut scanner = FileScanner {
            engine: self,
            worker: self.worker(&plugin_faults, &volumes),
        };
        body(&mut scanner)
    }

    /// The diagnostic log of this engine's state dir, when it could be opened.
    pub fn diagnostics(&self) -> Option<&DiagnosticLog> {
        self.diagnostics.as_ref()
    }

    /// Writes a scan's summary (required) and its performance aggregates (optional) to the
    /// diagnostic log. A log that cannot be written never fails the scan.
    fn record_scan_diagnostics(
        &self,
        kind: &str,
        threads: usize,
        summary: &ScanSummary,
        plugin_costs: &crate::plugin::ScanFaults,
    ) {
        let Some(log) = &self.diagnostics else { return };
        let _ = log.record(
            "scan_summary",
            DiagnosticLevel::Required,
            serde_json::json!({
                "scan_kind": kind,
                "files_scanned": summary.files_scanned,
                "detections": summary.detections,
                "infected_files": summary.infected_files,
                "quarantined": summary.quarantined,
                "errors": summary.errors,
                "skipped": summary.skipped,
                "plugin_faults": summary.plugin_faults,
                "limits": summary.limits,
                "cancelled": summary.cancelled,
                "duration_ms": summary.duration_ms,
            }),
        );
        if log.wants(DiagnosticLevel::Optional) {
            let seconds = (summary.duration_ms as f64 / 1000.0).max(0.001);
            let hits = summary.cache_hits + summary.file_hash_hits;
            let _ = log.record(
                "performance",
                DiagnosticLevel::Optional,
                serde_json::json!({
                    "scan_kind": kind,
                    "threads": threads,
                    "files_per_second": summary.files_scanned as f64 / seconds,
                    "bytes_per_second": summary.bytes_scanned as f64 / seconds,
                    "cache_hit_rate": if summary.files_scanned > 0 {
                        hits as f64 / summary.files_scanned as f64
                    } else {
                        0.0
                    },
                    "plugins": self
                        .detectors
                        .plugins
                        .plugins()
                        .iter()
                        .zip(plugin_costs.costs())
                        .map(|(plugin, (calls, time))| serde_json::json!({
                            "name": plugin.info.name,
                            "calls": calls,
                            "time_ms": time.as_secs_f64() * 1000.0,
                        }))
                        .collect::<Vec<_>>(),
                    "plugin_faults": summary.plugin_faults,
                }),
            );
        }
    }

    /// Whether the scan cache holds a clean result for this open file (said to be at `path`),
    /// unchanged since it was kept: the answer a real-time check can give at once, without
    /// reading the file or waking a scan thread. False whenever it cannot tell.
    pub fn cached_clean(&self, file: &File, path: &Path) -> bool {
        let Some(cache) = self.cache.as_ref().filter(|c| c.scan_cache_enabled()) else {
            return false;
        };
        let Ok(metadata) = file.metadata() else {
            return false;
        };
        if !metadata.is_file() {
            return false;
        }
        let identity = crate::object::FileIdentity::of(&metadata);
        // Asked afresh each time: a device number may later belong to another file system.
        let Some(fsid) = Volumes::default().cacheable(identity.dev, file) else {
            return false;
        };
        let key = ScanKey {
            dev: identity.dev,
            ino: identity.ino,
            names: self.detectors.name_key(path, Some(identity.uid)),
        };
        let valid = Validators {
            size: identity.size,
            mtime_ns: identity.mtime_ns,
            ctime_ns: identity.ctime_ns,
            fsid,
        };
        cache
            .lookup(&key, &valid)
            .is_some_and(|hit| hit.detection().is_none())
    }

    /// Writes the result caches to disk (a scan does it when it ends; a long-lived front end
    /// that scans single files calls this now and then, and before it exits).
    pub fn save_cache(&self) -> Result<(), EngineError> {
        match &self.cache {
            Some(cache) => cache.save(None),
            None => Ok(()),
        }
    }

    /// Whether `path` is excluded from scanning (by its path, a folder above it, its extension
    /// or its name).
    pub fn excludes(&self, path: &Path) -> bool {
        self.exclusions
            .excludes_target(&crate::exclusions::normalize(path), false)
    }

    /// The definitions this engine's detectors came from.
    pub fn definitions(&self) -> &crate::definitions::DefinitionsInfo {
        &self.definitions
    }

    /// The state directory this engine records in.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Scans bytes held in memory, as the content of a file named `name` (used in the report and
    /// by plugins that choose files by extension), and decides on the findings.
    pub fn scan_bytes(&self, bytes: &[u8], name: &Path) -> ObjectReport {
        let plugin_faults = self.detectors.plugins.scan_faults();
        let volumes = Volumes::default();
        let mut worker = self.worker(&plugin_faults, &volumes);
        let report = ObjectCollector::default();
        let emit = |event| report.push(event);
        let names = self.detectors.name_key(name, None);
        let outcome = worker.detect(self, name, names, bytes, &emit);
        if let Err(reason) = outcome.result {
            emit(ScanEvent::Error {
                path: name.to_path_buf(),
                reason,
            });
        }
        self.decide(name, outcome.findings, outcome.digest, &emit);
        report.finish(Some(bytes.len() as u64))
    }

    fn worker<'e>(
        &'e self,
        plugin_faults: &'e crate::plugin::ScanFaults,
        volumes: &'e Volumes,
    ) -> Worker<'e> {
        let engine = &self.config.antivirus_engine;
        Worker {
            reader: FileReader::new(engine.mmap_threshold, engine.max_file_size),
            detector: self
                .detectors
                .worker(Duration::from_secs(engine.scan_timeout), plugin_faults),
            findings: Vec::new(),
            faults: Vec::new(),
            volumes,
        }
    }

    /// Reports each finding as a threat or as allowed and records it in the threat history;
    /// returns the threats that remain and whether one of them asks for quarantine.
    fn decide(
        &self,
        path: &Path,
        findings: Vec<Finding>,
        digest: Option<[u8; 32]>,
        report: &(dyn Fn(ScanEvent) + Sync),
    ) -> Threats {
        let now = unix_now();
        let digest = digest.map(|digest| blake3::Hash::from(digest).to_hex());
        let digest = digest.as_ref().map(|hex| hex.as_str());
        let mut threats = Threats::default();
        for finding in findings {
            let verdict = self.decider.verdict(&finding, digest, now);
            let (action, detail) = match &verdict {
                Verdict::Threat(_) => ("detected", None),
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
                Verdict::Threat(response) => {
                    threats.names.push(finding.threat.clone());
                    threats.quarantine |= response == Response::Quarantine;
                    ScanEvent::Detection {
                        path,
                        finding,
                        response,
                    }
                }
                Verdict::Allowed(reason) => ScanEvent::Allowed {
                    path,
                    finding,
                    reason,
                },
            });
        }
        threats.names.sort();
        threats.names.dedup();
        threats
    }

    /// Where the object's result is kept in the scan cache, when it may be: the scan cache is on
    /// and the file is on a file system whose times can be trusted (asked once per device and
    /// scan in `volumes`).
    fn cache_place(
        &self,
        object: &ScanObject,
        names: u64,
        volumes: &Volumes,
    ) -> Option<(&ResultCache, ScanKey, Validators)> {
        let cache = self.cache.as_ref().filter(|c| c.scan_cache_enabled())?;
        let identity = object.identity();
        let fsid = volumes.cacheable(identity.dev, object.file())?;
        let key = ScanKey {
            dev: identity.dev,
            ino: identity.ino,
            names,
        };
        let valid = Validators {
            size: identity.size,
            mtime_ns: identity.mtime_ns,
            ctime_ns: identity.ctime_ns,
            fsid,
        };
        Some((cache, key, valid))
    }

    /// The object's name key and what the scan cache holds for it (once per object: the walker
    /// asks, and a worker gets the answer).
    fn look_up(&self, object: &ScanObject, volumes: &Volumes) -> Looked {
        let names = self
            .detectors
            .name_key(object.path(), Some(object.identity().uid));
        let cached = self
            .cache_place(object, names, volumes)
            .and_then(|(cache, key, valid)| cache.lookup(&key, &valid));
        Looked { names, cached }
    }

    /// Quarantines the scanned object when one of its threats asks for it.
    fn act(&self, object: &ScanObject, threats: &Threats, report: &(dyn Fn(ScanEvent) + Sync)) {
        let Some(vault) = self.vault.as_ref().filter(|_| threats.quarantine) else {
            return;
        };
        let path = object.path().to_path_buf();
        report(match vault.quarantine(object, &threats.names) {
            Ok(entry) => ScanEvent::Quarantined { path, id: entry.id },
            Err(err) => ScanEvent::Error {
                path,
                reason: format!("quarantine failed: {err}"),
            },
        });
    }
}

/// The threats [`Engine::decide`] left in one object.
#[derive(Default)]
struct Threats {
    /// Their names, sorted, without repeats.
    names: Vec<String>,
    /// Whether one of them is to be quarantined.
    quarantine: bool,
}

/// One thread's scanning state: its read buffer, its detectors, scratch space for results.
struct Worker<'e> {
    reader: FileReader,
    detector: DetectorWorker<'e>,
    findings: Vec<Finding>,
    faults: Vec<PluginFault>,
    /// Which devices' file systems may be cached, asked once per device in a scan.
    volumes: &'e Volumes,
}

/// What [`Engine::look_up`] found for an object before it is read.
struct Looked {
    /// Its name key.
    names: u64,
    /// The scan cache's result, when the file is unchanged since it was kept.
    cached: Option<CachedResult>,
}

/// What became of one object in a scan.
#[derive(Default)]
struct Scanned {
    /// Bytes scanned (0 for a scan-cache hit), or `None` when the content could not be read.
    bytes: Option<u64>,
    /// Whether a threat remained after the decision.
    infected: bool,
    /// Whether the result came from a cache.
    cache_hit: Option<CacheHit>,
    /// Archive members extracted and scanned.
    members: u64,
}

/// Which cache gave a file's result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CacheHit {
    /// The scan cache (the file is unchanged since it was scanned).
    File,
    /// The file-hash cache (the same content was scanned, under a name that selects the same
    /// detectors).
    Content,
}

/// What the detectors made of one object's bytes.
struct Detected {
    findings: Vec<Finding>,
    /// BLAKE3 of the content, when a decision may need it.
    digest: Option<[u8; 32]>,
    /// An error that cut a detector short (a YARA timeout); other findings stand.
    result: Result<(), String>,
    /// Every enabled detector completed on these bytes, so the result may be cached.
    complete: bool,
    /// The result came from the file-hash cache.
    from_content_cache: bool,
    /// Archive members extracted and scanned.
    members: u64,
}

impl Worker<'_> {
    /// The pipeline after discovery for one opened object: a cached result (`looked`), else
    /// read and detect; decide; act when `act` (tree scans; never for a caller's descriptor).
    fn scan(
        &mut self,
        engine: &Engine,
        object: &ScanObject,
        looked: Looked,
        report: &(dyn Fn(ScanEvent) + Sync),
        act: bool,
    ) -> Scanned {
        let path = object.path();
        let names = looked.names;
        if let Some(hit) = looked.cached {
            let (findings, digest) = hit.into_parts();
            let threats = engine.decide(path, findings, digest, report);
            if act {
                engine.act(object, &threats, report);
            }
            return Scanned {
                bytes: Some(0),
                infected: !threats.names.is_empty(),
                cache_hit: Some(CacheHit::File),
                members: 0,
            };
        }
        let place = engine.cache_place(object, names, self.volumes);
        let contents = match self.detect_object(engine, object, names, report) {
            Ok(contents) => contents,
            Err(problem) => {
                report(problem_event(path.to_path_buf(), problem));
                return Scanned::default();
            }
        };
        let detected = contents.result;
        let cache_hit = detected.from_content_cache.then_some(CacheHit::Content);
        // Kept for the next scan only when every detector completed on the bytes of a file that
        // has not changed since it was opened and whose times have settled.
        if let Some((cache, key, valid)) = place
            && detected.complete
            && !contents.cut_short
            && cache.settled(&valid, object.observed_at_ns())
            && object.unchanged()
        {
            let result = CachedResult::new(detected.findings.clone(), detected.digest);
            cache.store(key, valid, result);
        }
        let threats = engine.decide(path, detected.findings, detected.digest, report);
        let infected = !threats.names.is_empty();
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
                cache_hit: None,
                members: detected.members,
            };
        }
        if act {
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
            cache_hit,
            members: detected.members,
        }
    }

    /// Reads the object and runs the detectors on its bytes.
    fn detect_object(
        &mut self,
        engine: &Engine,
        object: &ScanObject,
        names: u64,
        report: &(dyn Fn(ScanEvent) + Sync),
    ) -> Result<Contents<Detected>, Unscannable> {
        let Self {
            reader,
            detector,
            findings,
            faults,
            ..
        } = self;
        reader.with_contents(object, |bytes, private| {
            let input = Input {
                path: object.path(),
                uid: Some(object.identity().uid),
                names,
                bytes,
                private,
            };
            detect_with(detector, findings, faults, engine, input, report)
        })
    }

    /// Runs the detectors on bytes that are not a file on disk.
    fn detect(
        &mut self,
        engine: &Engine,
        name: &Path,
        names: u64,
        bytes: &[u8],
        report: &(dyn Fn(ScanEvent) + Sync),
    ) -> Detected {
        let input = Input {
            path: name,
            uid: None,
            names,
            bytes,
            private: true,
        };
        detect_with(
            &mut self.detector,
            &mut self.findings,
            &mut self.faults,
            engine,
            input,
            report,
        )
    }
}

/// The bytes the detectors look at, and what they are.
struct Input<'a> {
    /// Where they were found (plugins choose files by extension; rules may read the name).
    path: &'a Path,
    /// The file's owner (for the `owner` external variable), when the bytes are a file's.
    uid: Option<u32>,
    /// The name-dependent inputs of the result ([`Detectors::name_key`]).
    names: u64,
    bytes: &'a [u8],
    /// The bytes are this process's own copy (not a mapping another process may write to), so
    /// their digest is certainly the digest of what the detectors saw.
    private: bool,
}

/// Runs every detector on the input and reports plugin faults, or takes the result of the same
/// content from the file-hash cache. Private bytes go through the file-hash cache; the digest is
/// computed when it serves the cache or there are findings a decision may need it for.
fn detect_with(
    detector: &mut DetectorWorker<'_>,
    findings: &mut Vec<Finding>,
    faults: &mut Vec<PluginFault>,
    engine: &Engine,
    input: Input<'_>,
    report: &(dyn Fn(ScanEvent) + Sync),
) -> Detected {
    let content_cache = engine
        .cache
        .as_ref()
        .filter(|cache| input.private && cache.hash_cache_enabled())
        .map(|cache| {
            let key = HashKey {
                content: *blake3::hash(input.bytes).as_bytes(),
                names: input.names,
            };
            (cache, key)
        });
    if let Some((cache, key)) = &content_cache
        && let Some(hit) = cache.lookup_content(key)
    {
        let (findings, digest) = hit.into_parts();
        return Detected {
            findings,
            digest,
            result: Ok(()),
            complete: true,
            from_content_cache: true,
            members: 0,
        };
    }
    let mut result = detector.scan(input.path, input.uid, input.bytes, findings, faults);
    let members = member_scan::scan_members(
        detector,
        &engine.config.archives,
        input.path,
        input.bytes,
        findings,
        faults,
    );
    for hit in &members.limits {
        report(member_scan::limit_event(input.path, hit));
    }
    if let (Ok(()), Some(reason)) = (&result, members.error) {
        result = Err(reason);
    }
    // A plugin that faulted, or that this scan disabled, did not look at these bytes; a limit
    // left part of an archive unscanned (kept out of the caches, so it is said again).
    let complete = result.is_ok()
        && faults.is_empty()
        && !detector.plugins_disabled()
        && members.limits.is_empty();
    report_faults(input.path, faults, report);
    let findings = std::mem::take(findings);
    let digest = match &content_cache {
        Some((_, key)) => Some(key.content),
        None => (!findings.is_empty() && (complete || engine.decider.wants_digest()))
            .then(|| *blake3::hash(input.bytes).as_bytes()),
    };
    if let Some((cache, key)) = content_cache
        && complete
    {
        cache.store_content(key, CachedResult::new(findings.clone(), digest));
    }
    Detected {
        findings,
        digest,
        result,
        complete,
        from_content_cache: false,
        members: members.members,
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
            member: fault.member.clone(),
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
            cached: false,
            scanned: bytes.is_some(),
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
    members_scanned: AtomicU64,
    limits: AtomicU64,
    cache_hits: AtomicU64,
    file_hash_hits: AtomicU64,
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
            ScanEvent::Limit { .. } => &self.limits,
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
            members_scanned: self.members_scanned.load(Ordering::Relaxed),
            limits: self.limits.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            file_hash_hits: self.file_hash_hits.load(Ordering::Relaxed),
            cancelled: false,
            duration_ms: 0,
        }
    }
}
