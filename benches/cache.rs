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
//!   (e) rescan with those rules installed as definitions (files using THOR/Loki external
//!   variables left out until they are supported), and (f) `yr scan` with the same files.
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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vigil_engine::detect::yara::{RuleSource, YaraRules};

use measure::{
    Sample, bench_threads, env_or, find_on_path, measure_command, median, target_dir,
    timed_in_process, walk_files,
};

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

/// A state dir with its configuration, for one kind of scan.
struct Setup {
    state: PathBuf,
    config: PathBuf,
}

impl Setup {
    fn new(base: &Path, name: &str, config: &str) -> Self {
        let state = base.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let path = base.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        Self {
            state,
            config: path,
        }
    }

    fn vigil(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
        command
            .env("VIGIL_STATE_DIR", &self.state)
            .env("VIGIL_CONFIG", &self.config);
        command
    }

    fn scan(&self, root: &Path, threads: usize, extra: &[&str]) -> Command {
        let mut command = self.vigil();
        command
            .args(["scan", "custom"])
            .arg(root)
            .args(["--format", "jsonl", "--threads", &threads.to_string()])
            .args(extra);
        command
    }

    /// Runs a scan untimed and returns its summary record.
    fn summary(&self, root: &Path, threads: usize, extra: &[&str]) -> serde_json::Value {
        let output = self.scan(root, threads, extra).output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(stdout.lines().last().expect("a summary")).unwrap()
    }

    fn clear_cache(&self) {
        succeeds(self.vigil().args(["cache", "clear"]));
    }
}

/// Copies the rule files that compile on their own into `out` (the ones that do not use the
/// external variables THOR and Loki define: `filename`, `filepath`, `extension`, `filetype`,
/// `owner`); returns (kept, left out).
fn rules_without_externals(ruleset: &Path, out: &Path) -> (usize, usize) {
    std::fs::create_dir_all(out).unwrap();
    let (mut kept, mut left) = (0, 0);
    for entry in std::fs::read_dir(ruleset).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .extension()
            .is_some_and(|ext| ext == "yar" || ext == "yara")
        {
            continue;
        }
        let source = RuleSource {
            origin: path.display().to_string(),
            text: String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
        };
        if YaraRules::compile(&[source]).is_err() {
            left += 1;
            continue;
        }
        std::fs::copy(&path, out.join(path.file_name().unwrap())).unwrap();
        kept += 1;
    }
    (kept, left)
}

/// A state dir whose installed definitions are the rules in `rules` (signed with a fresh key).
fn install_ruleset(base: &Path, rules: &Path, settle: &str) -> Setup {
    let publisher = Setup::new(base, "publisher", "");
    let key = base.join("bench.key");
    succeeds(
        publisher
            .vigil()
            .args(["definitions", "keygen", "--out"])
            .arg(&key),
    );
    let public = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    let drop = base.join("ruleset.drop");
    let config = format!(
        "{settle}[definitions]\ntrusted_keys = [\"{}\"]\nmax_drop_size = 1073741824\n",
        public.trim()
    );
    let setup = Setup::new(base, "ruleset", &config);
    succeeds(
        setup
            .vigil()
            .args(["definitions", "build", "--key"])
            .arg(&key)
            // Above the built-in definitions' version, which an update must exceed.
            .args(["--version", "1000000", "--out"])
            .arg(&drop)
            .arg(rules),
    );
    succeeds(
        setup
            .vigil()
            .args(["definitions", "update", "--from"])
            .arg(&drop),
    );
    setup
}

/// Runs a set-up command with its output captured; panics with its stderr if it fails.
fn succeeds(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn main() {
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 3);
    let threads = bench_threads();
    let root = match std::env::var_os("VIGIL_BENCH_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => corpus::generate(&target_dir(), env_or("VIGIL_BENCH_SCALE", 0.25)),
    };
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
        let rules = base.path().join("rules");
        let (kept, left) = rules_without_externals(ruleset, &rules);
        println!(
            "rule set {}: {kept} files, {left} left out (external variables)",
            ruleset.display()
        );
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
                let mut command = Command::new(yr);
                command
                    .args(["scan", "--recursive", "--threads", &threads.to_string()])
                    .args(["--disable-console-logs"])
                    .arg(rules)
                    .arg(&root);
                run_scan(&mut command, "yr")
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
        // Each case by its letter, (a) to (g); cases not measured in this run are left out.
        let walls: Vec<String> = samples
            .iter()
            .zip('a'..='g')
            .filter_map(|(s, letter)| Some(format!("({letter}) {:.3?}", s.last()?.wall)))
            .collect();
        println!("round {round}: {}", walls.join("  "));
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
