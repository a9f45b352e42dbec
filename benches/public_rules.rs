//! A large public rule set (signature-base, all of it) on real files: Vigil against `yr scan`
//! with the same rules on the same files and threads, cases alternated round by round, start-up
//! included, with peak RSS.
//!
//! Cases:
//! - (a) `yr scan` (compiles the rules from source each run);
//! - (b) `vigil scan --no-cache` with the rules installed as definitions (start-up loads the
//!   compiled rules stored at install);
//! - (c) the same with one more `--rules` file, so Vigil compiles the whole set from source;
//! - (d) `vigil scan` rescan with the caches warm.
//!
//! Target (issue "public rule sets"): (b) at most 0.83x (a), peak RSS no higher.
//!
//! Environment: `VIGIL_BENCH_CORPUS=DIR` (real files; without it the generated corpus at
//! `VIGIL_BENCH_SCALE`, default 0.25), `VIGIL_BENCH_RULESET` (default: the vendored
//! `tests/rulesets/signature-base/yara`), `VIGIL_BENCH_YR` (else `yr` on `PATH`),
//! `VIGIL_BENCH_ROUNDS` (3), `VIGIL_BENCH_THREADS` (all cores).
#![allow(clippy::disallowed_methods)] // test code: paths in messages, not output for people

mod corpus;
mod measure;
mod vigil_setup;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use measure::{
    Sample, bench_threads, env_or, find_on_path, measure_command, median, print_round, target_dir,
};
use vigil_setup::{install_ruleset, yr_scan};

fn main() {
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 3);
    let threads = bench_threads();
    let (root, _) = corpus::real_or_generated(&target_dir(), env_or("VIGIL_BENCH_SCALE", 0.25));
    let rules = std::env::var_os("VIGIL_BENCH_RULESET")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rulesets/signature-base/yara")
        });
    let Some(yr) = std::env::var_os("VIGIL_BENCH_YR")
        .map(PathBuf::from)
        .or_else(|| find_on_path("yr"))
    else {
        panic!("yr not found: set VIGIL_BENCH_YR or put yr on PATH");
    };
    let base = tempfile::tempdir().unwrap();
    let settle = "[antivirus_engine]\nscan_cache_settle_time = 3\n";
    std::thread::sleep(Duration::from_secs(3));
    let setup = install_ruleset(base.path(), &rules, settle);
    // One more rule file makes Vigil compile everything from source, as yr does.
    let extra = base.path().join("extra.yar");
    std::fs::write(&extra, "rule vigil_bench_extra { condition: false }\n").unwrap();
    let extra = extra.to_str().unwrap().to_string();

    // Warm the page cache and the rescan's caches.
    let warm = setup.summary(&root, threads, &[]);
    println!(
        "rules {}; corpus {}: {} files; {threads} threads, {rounds} rounds; {} detections",
        rules.display(),
        root.display(),
        warm["files_scanned"],
        warm["detections"]
    );
    let run = |command: &mut Command, what: &str| {
        let (sample, code) = measure_command(command);
        assert!(code == 0 || code == 1, "{what} exited {code}");
        sample
    };
    let run_case = |index: usize| -> Sample {
        match index {
            0 => run(&mut yr_scan(&yr, &rules, &root, threads), "yr"),
            1 => run(
                &mut setup.scan(&root, threads, &["--no-cache"]),
                "vigil --no-cache",
            ),
            2 => run(
                &mut setup.scan(&root, threads, &["--no-cache", "--rules", &extra]),
                "vigil --no-cache, compiled from source",
            ),
            _ => run(&mut setup.scan(&root, threads, &[]), "vigil rescan"),
        }
    };
    let mut samples: [Vec<Sample>; 4] = Default::default();
    for round in 0..rounds {
        for step in 0..samples.len() {
            let index = (step + round) % samples.len();
            samples[index].push(run_case(index));
        }
        print_round(round, &samples);
    }
    let names = [
        "(a) yr scan",
        "(b) vigil --no-cache, installed rules",
        "(c) vigil --no-cache, from source",
        "(d) vigil rescan, caches warm",
    ];
    let medians: Vec<Sample> = samples.iter().map(|s| median(s)).collect();
    println!("\nmedians (wall, cpu, peak RSS):");
    for (name, sample) in names.iter().zip(&medians) {
        println!(
            "  {name:<40} {:>10.3?} cpu {:>10.3?} peak RSS {} KiB",
            sample.wall, sample.cpu, sample.peak_rss_kib
        );
    }
    let yr = medians[0];
    for (name, sample) in names.iter().zip(&medians).skip(1) {
        println!(
            "{name}: {:.3}x yr's time, {:.2}x yr's peak RSS",
            sample.wall.as_secs_f64() / yr.wall.as_secs_f64(),
            sample.peak_rss_kib as f64 / yr.peak_rss_kib as f64
        );
    }
    println!("target: (b) at most 0.83x yr's time, peak RSS no higher");
}
