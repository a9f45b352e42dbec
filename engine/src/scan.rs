//! The engine and its scan pipeline: plan the targets, walk them in parallel, and let a pool of
//! workers read, detect and report each file while the walk goes on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, ExclusionConfig};
use crate::detect::Detectors;
use crate::discover;
use crate::error::EngineError;
use crate::exclusions::Exclusions;
use crate::input::{FileReader, Unscannable};
use crate::report::{ScanEvent, ScanSink, ScanSummary};
use crate::sigbus;
pub use crate::targets::ScanKind;

/// How many discovered paths may wait for a worker; bounds memory on huge trees.
const QUEUE_DEPTH: usize = 4096;

/// One scan to run.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// What to scan.
    pub kind: ScanKind,
    /// Worker threads (at least one).
    pub threads: usize,
}

/// A configured engine: compiled detectors, exclusions and limits, ready to run scans.
pub struct Engine {
    config: Config,
    exclusions: Exclusions,
    detectors: Detectors,
    truncate_mapped_for_test: bool,
}

impl Engine {
    /// Builds an engine from the configuration, the exclusions stored in the state dir, and the
    /// compiled detectors.
    pub fn new(
        config: Config,
        stored_exclusions: &[ExclusionConfig],
        detectors: Detectors,
    ) -> Result<Self, EngineError> {
        let exclusions = Exclusions::new(
            config
                .antivirus_engine
                .exclusions
                .iter()
                .chain(stored_exclusions),
        )?;
        Ok(Self {
            config,
            exclusions,
            detectors,
            truncate_mapped_for_test: std::env::var_os("VIGIL_FAULT_TRUNCATE_MAPPED").is_some(),
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The compiled detectors.
    pub fn detectors(&self) -> &Detectors {
        &self.detectors
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
                scope.spawn(move || self.run_worker(receiver, report, counters, sink));
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
        for path in paths {
            let outcome = reader.with_contents(&path, |bytes| detector.scan(bytes, &mut findings));
            let infected = !findings.is_empty();
            for finding in findings.drain(..) {
                report(ScanEvent::Detection {
                    path: path.clone(),
                    finding,
                });
            }
            if infected {
                counters.infected_files.fetch_add(1, Ordering::Relaxed);
            }
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
}

impl Counters {
    fn count(&self, event: &ScanEvent) {
        let counter = match event {
            ScanEvent::Detection { .. } => &self.detections,
            ScanEvent::Error { .. } => &self.errors,
            ScanEvent::Skipped { .. } => &self.skipped,
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
            duration_ms: 0,
        }
    }
}
