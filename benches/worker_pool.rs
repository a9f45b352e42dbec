//! Why the scan runs its own worker pool instead of rayon: the same files scanned with the same
//! detectors (YARA rules and hash lists of the built-in definitions), alternated round by round:
//!
//! (a) the engine's model: N threads, each with one detector worker (one `yara_x::Scanner`, which
//!     costs about 320 µs to make) created once, taking the next file from a shared counter;
//! (b) rayon's idiomatic `par_iter().for_each_init`, on a pool of N threads: its `init` runs once
//!     per work split, not once per thread, so it makes many scanners — the benchmark counts them.
//!
//! Files are listed first and read once to warm the page cache, so both cases do the same reads
//! and scans. Environment: `VIGIL_BENCH_CORPUS=DIR` (default: the generated corpus at scale 0.25),
//! `VIGIL_BENCH_ROUNDS` (5), `VIGIL_BENCH_THREADS` (all cores).
#![allow(clippy::disallowed_methods)] // benchmark output, not Vigil's

mod corpus;
#[allow(dead_code)] // helpers shared by the benchmarks; this one times in-process
mod measure;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use measure::{bench_threads, env_or, median, target_dir, timed_in_process};
use rayon::prelude::*;
use vigil_engine::definitions::Definitions;
use vigil_engine::detect::Detectors;
use vigil_engine::plugin::{PluginSet, ScanFaults};

const TIMEOUT: Duration = Duration::from_secs(60);

fn files_under(root: &Path) -> Vec<PathBuf> {
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .build()
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| e.into_path())
        .collect()
}

/// Reads a file into `buffer` (reused) and scans it; returns the findings count.
fn scan_one(
    worker: &mut vigil_engine::detect::DetectorWorker<'_>,
    buffer: &mut Vec<u8>,
    path: &Path,
) -> usize {
    buffer.clear();
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    if file.read_to_end(buffer).is_err() {
        return 0;
    }
    let (mut findings, mut faults) = (Vec::new(), Vec::new());
    let _ = worker.scan(path, None, buffer, &mut findings, &mut faults);
    findings.len()
}

/// (a) The engine's model: one worker per thread, made once.
fn own_pool(
    detectors: &Detectors,
    faults: &ScanFaults,
    files: &[PathBuf],
    threads: usize,
) -> usize {
    let next = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut worker = detectors.worker(TIMEOUT, faults);
                let mut buffer = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(index) else { break };
                    found.fetch_add(scan_one(&mut worker, &mut buffer, path), Ordering::Relaxed);
                }
            });
        }
    });
    found.into_inner()
}

/// (b) rayon's `for_each_init`; returns the findings and how many workers `init` made.
fn rayon_init(
    pool: &rayon::ThreadPool,
    detectors: &Detectors,
    faults: &ScanFaults,
    files: &[PathBuf],
) -> (usize, usize) {
    let made = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    pool.install(|| {
        files.par_iter().for_each_init(
            || {
                made.fetch_add(1, Ordering::Relaxed);
                (detectors.worker(TIMEOUT, faults), Vec::new())
            },
            |(worker, buffer), path| {
                found.fetch_add(scan_one(worker, buffer, path), Ordering::Relaxed);
            },
        )
    });
    (found.into_inner(), made.into_inner())
}

fn main() {
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 5);
    let threads = bench_threads();
    let (root, _) = corpus::real_or_generated(&target_dir(), 0.25);
    let files = files_under(&root);
    let detectors = Definitions::builtin()
        .and_then(|d| d.detectors(&[], &Default::default(), PluginSet::none()))
        .expect("the built-in definitions load");
    let faults = detectors.plugins.scan_faults();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool");
    // Warm the page cache (and check both find the same).
    let expected = own_pool(&detectors, &faults, &files, threads);
    println!(
        "{} files under {}, {threads} threads, {rounds} rounds",
        files.len(),
        root.display()
    );
    let (mut ours, mut theirs, mut made) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut found = 0;
        ours.push(timed_in_process(|| {
            found = own_pool(&detectors, &faults, &files, threads)
        }));
        assert_eq!(found, expected);
        let mut result = (0, 0);
        theirs.push(timed_in_process(|| {
            result = rayon_init(&pool, &detectors, &faults, &files)
        }));
        assert_eq!(result.0, expected);
        made.push(result.1);
        println!(
            "round {round}: own pool {:.3?} (cpu {:.3?})  rayon for_each_init {:.3?} (cpu {:.3?}, {} scanners made)",
            ours[round].wall, ours[round].cpu, theirs[round].wall, theirs[round].cpu, result.1
        );
    }
    let (ours, theirs) = (median(&ours), median(&theirs));
    made.sort();
    println!(
        "\nmedians: own pool {:.3?} cpu {:.3?}; rayon {:.3?} cpu {:.3?}",
        ours.wall, ours.cpu, theirs.wall, theirs.cpu
    );
    println!(
        "ratio rayon / own pool: wall {:.3}x, cpu {:.3}x; rayon made {} scanners for {threads} threads (median)",
        theirs.wall.as_secs_f64() / ours.wall.as_secs_f64(),
        theirs.cpu.as_secs_f64() / ours.cpu.as_secs_f64(),
        made[made.len() / 2]
    );
}
