//! The result caches, on real files: a rescan against the floor of the walk, a first scan with
//! the caches against one without them, and a rescan with a large public rule set against `yr`
//! with the same rules, all in one run with cases alternated round by round.
//!
//! Cases:
//! - (a) floor: a walk that opens, `fstat`s and closes every file on the same number of threads
//!   (in this process: the least any rescan must do);
//! - (b) rescan with the default definitions (plugins included), the caches warm;
//! - (c) first scan with the caches (emptied with `vigil cache clear` before each round);
//! - (d) the same scan with `--no-cache`;
//! - (g) a first scan with the scan cache only (`file_hash_cache_maximum = 0`): what hashing every
//!   file read into memory costs or saves;
//! - with `VIGIL_BENCH_RULESET=DIR` (a folder of `.yar` files such as signature-base's `yara/`):
//!   (e) rescan with those rules installed as definitions, and (f) `yr scan` with the same
//!   files (defining THOR's per-file external variables as yr requires).
//!
//! Targets (issue "scan cache and file-hash cache"): (b) <= 1.5x (a); (c) <= 1.05x (d);
//! (f) >= 20x (e).
//!
//! Environment: `VIGIL_BENCH_CORPUS=DIR` (real files; without it the generated corpus at
//! `VIGIL_BENCH_SCALE`, default 0.25), `VIGIL_BENCH_ROUNDS` (3), `VIGIL_BENCH_THREADS` (all
//! cores), `VIGIL_BENCH_RULESET`, `VIGIL_BENCH_YR` (the `yr` binary, else `yr` on `PATH`).
#![allow(clippy::disallowed_methods)] // test code: paths in messages, not output for people

mod corpus;
mod measure;
mod vigil_setup;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use measure::{
    Sample, bench_threads, env_or, find_on_path, measure_command, median, print_round, target_dir,
    timed_in_process, walk_files,
};
use vigil_setup::{Setup, install_ruleset, yr_scan};

/// The floor: walk in parallel, open, `fstat` and close every regular file.
fn floor(root: &Path, threads: usize) -> (Sample, u64) {
    let files = AtomicU64::new(0);
    let sample = timed_in_process(|| {
        walk_files(
            root,
            threads,
            || (),
            |_, path| {
                let file = std::fs::File::open(path).unwrap();
                std::hint::black_box(file.metadata().unwrap());
                files.fetch_add(1, Ordering::Relaxed);
            },
        )
    });
    (sample, files.into_inner())
}

fn main() {
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 3);
    let threads = bench_threads();
    let (root, _) = corpus::real_or_generated(&target_dir(), env_or("VIGIL_BENCH_SCALE", 0.25));
    let base = tempfile::tempdir().unwrap();
    // Files must have settled before their results are kept; a corpus made just now waits for
    // the smallest settle time once.
    let settle = "[antivirus_engine]\nscan_cache_settle_time = 3\n";
    std::thread::sleep(Duration::from_secs(3));
    let rescan = Setup::new(base.path(), "rescan", settle);
    let first = Setup::new(base.path(), "first", settle);
    let uncached = Setup::new(base.path(), "uncached", settle);
    let unhashed = Setup::new(
        base.path(),
        "unhashed",
        &format!("{settle}file_hash_cache_maximum = 0\n"),
    );

    // Warm the page cache, the plugin compile caches, and the rescan's result caches.
    let (_, files) = floor(&root, threads);
    for setup in [&rescan, &first, &uncached, &unhashed] {
        setup.summary(&root, threads, &[]);
    }
    let warm = rescan.summary(&root, threads, &[]);
    println!(
        "{} files in {}; {threads} threads, {rounds} rounds; warm rescan: {} files, {} scan-cache hits, {} file-hash hits",
        files,
        root.display(),
        warm["files_scanned"],
        warm["cache_hits"],
        warm["file_hash_hits"]
    );
    let first_summary = {
        first.clear_cache();
        first.summary(&root, threads, &[])
    };
    println!(
        "first scan: {} files, {} of them file-hash hits (the same content under another name)",
        first_summary["files_scanned"], first_summary["file_hash_hits"]
    );

    let ruleset = std::env::var_os("VIGIL_BENCH_RULESET").map(PathBuf::from);
    let yr = std::env::var_os("VIGIL_BENCH_YR")
        .map(PathBuf::from)
        .or_else(|| find_on_path("yr"));
    let large = ruleset.as_ref().map(|ruleset| {
        let rules = ruleset.clone();
        println!("rule set {}", ruleset.display());
        let setup = install_ruleset(base.path(), &rules, settle);
        setup.summary(&root, threads, &[]);
        let warm = setup.summary(&root, threads, &[]);
        println!(
            "warm rescan with the rule set: {} scan-cache hits of {} files",
            warm["cache_hits"], warm["files_scanned"]
        );
        (rules, setup)
    });

    // One run of case `index`, or `None` when the case is not measured in this run.
    let expected = |code: i32| code == 0 || code == 1;
    let run_scan = |command: &mut Command, what: &str| {
        let (sample, code) = measure_command(command);
        assert!(expected(code), "{what} exited {code}");
        sample
    };
    let run_case = |index: usize| -> Option<Sample> {
        Some(match index {
            0 => floor(&root, threads).0,
            1 => run_scan(&mut rescan.scan(&root, threads, &[]), "rescan"),
            2 => {
                first.clear_cache();
                run_scan(&mut first.scan(&root, threads, &[]), "first scan")
            }
            3 => run_scan(
                &mut uncached.scan(&root, threads, &["--no-cache"]),
                "--no-cache scan",
            ),
            4 => {
                let (_, setup) = large.as_ref()?;
                run_scan(&mut setup.scan(&root, threads, &[]), "rule-set rescan")
            }
            5 => {
                let ((rules, _), yr) = (large.as_ref()?, yr.as_ref()?);
                run_scan(&mut yr_scan(yr, rules, &root, threads), "yr")
            }
            _ => {
                unhashed.clear_cache();
                run_scan(
                    &mut unhashed.scan(&root, threads, &[]),
                    "scan-cache-only scan",
                )
            }
        })
    };
    let mut samples: [Vec<Sample>; 7] = Default::default();
    for round in 0..rounds {
        // Each round starts one case later, so no case always follows the same one.
        for step in 0..samples.len() {
            let index = (step + round) % samples.len();
            if let Some(sample) = run_case(index) {
                samples[index].push(sample);
            }
        }
        print_round(round, &samples);
    }

    let names = [
        "(a) floor: open+fstat+close",
        "(b) rescan, default definitions",
        "(c) first scan, caches on",
        "(d) scan --no-cache",
        "(e) rescan, rule set",
        "(f) yr scan, rule set",
        "(g) first scan, scan cache only",
    ];
    println!("\nmedians (wall, cpu):");
    let medians: Vec<Option<Sample>> = samples
        .iter()
        .map(|s| (!s.is_empty()).then(|| median(s)))
        .collect();
    for (name, sample) in names.iter().zip(&medians) {
        if let Some(sample) = sample {
            println!(
                "  {name:<34} {:>10.3?} cpu {:>10.3?} peak RSS {} KiB",
                sample.wall, sample.cpu, sample.peak_rss_kib
            );
        }
    }
    let ratio = |a: usize, b: usize| {
        medians[a]
            .zip(medians[b])
            .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64())
    };
    if let Some(r) = ratio(1, 0) {
        println!("rescan / floor: {r:.2}x (target <= 1.5x)");
    }
    if let Some(r) = ratio(2, 3) {
        println!("first scan / --no-cache: {r:.3}x (target <= 1.05x)");
    }
    if let Some(r) = ratio(2, 6) {
        println!("first scan / first scan without the file-hash cache: {r:.3}x");
    }
    if let Some(r) = ratio(5, 4) {
        println!("yr / rule-set rescan: {r:.1}x faster (target >= 20x)");
    } else if large.is_some() {
        println!("yr not found: set VIGIL_BENCH_YR or put yr on PATH");
    }
}
