//! Scan throughput against the read limit and against `yr` (yara-x-cli), measured in one run,
//! rules only (`--no-plugins`; `benches/plugins.rs` measures what plugins add).
//!
//! Cases alternate round by round (read limit, vigil, yr, read limit, ...) so that drift on a
//! shared machine hits them alike; medians are reported with CPU time (CPU about threads x wall
//! means every thread really ran), and results are stated as ratios within this run.
//!
//! Environment: `VIGIL_BENCH_SCALE` (corpus size, 1.0 = about 1 GiB), `VIGIL_BENCH_ROUNDS` (5),
//! `VIGIL_BENCH_THREADS` (all cores); `VIGIL_BENCH_CORPUS=DIR` scans DIR instead of the generated
//! corpus (for example a copy of real system files); `VIGIL_BASELINE_BIN=PATH` adds another
//! `vigil` build (say, of an earlier commit) as one more alternated case, to state a regression as
//! a ratio within one run.
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod corpus;
mod measure;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use measure::{
    Sample, baseline_bin, bench_threads, env_or, find_on_path, has_cache, measure_command, median,
    target_dir, timed_in_process, walk_files,
};

/// The read limit: walk in parallel with `threads` threads and read every byte of every file
/// (small files into a reused buffer, large ones in 1 MiB chunks), in this process.
fn read_limit(root: &Path, threads: usize) -> (Sample, u64) {
    let total = std::sync::atomic::AtomicU64::new(0);
    let sample = timed_in_process(|| {
        walk_files(
            root,
            threads,
            || vec![0u8; 1 << 20],
            |buffer, path| {
                let mut file = std::fs::File::open(path).unwrap();
                let mut bytes = 0;
                loop {
                    let n = file.read(buffer).unwrap();
                    if n == 0 {
                        break;
                    }
                    bytes += n as u64;
                }
                total.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            },
        )
    });
    (sample, total.into_inner())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let scale: f64 = env_or("VIGIL_BENCH_SCALE", 1.0);
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 5);
    let threads = bench_threads();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir();
    let started = Instant::now();
    let (root, _) = corpus::real_or_generated(&target, scale);
    println!(
        "corpus {} ready in {:.1?}",
        root.display(),
        started.elapsed()
    );

    let vigil = Path::new(env!("CARGO_BIN_EXE_vigil"));
    let baseline = baseline_bin();
    let state = tempfile::tempdir().unwrap();
    let empty_config = state.path().join("vigil.toml");
    std::fs::write(&empty_config, "").unwrap();
    let scan_with = |vigil: &Path, target: &Path| {
        let mut command = Command::new(vigil);
        command
            .args(["scan", "custom"])
            .arg(target)
            .args(["--format", "jsonl", "--threads", &threads.to_string()])
            // The same detection work as `yr` (rules only); plugins are measured by
            // `benches/plugins.rs`.
            .arg("--no-plugins")
            .env("VIGIL_STATE_DIR", state.path())
            .env("VIGIL_CONFIG", &empty_config);
        if has_cache(vigil) {
            command.arg("--no-cache");
        }
        command
    };
    let vigil_scan = |target: &Path| scan_with(vigil, target);
    let yr = find_on_path("yr");
    let yr_scan = |yr: &Path| {
        let mut command = Command::new(yr);
        command
            .args(["scan", "--recursive", "--threads", &threads.to_string()])
            .arg(manifest.join("signatures"))
            .arg(&root);
        command
    };

    // Warm the page cache so every case reads from memory.
    let (_, bytes) = read_limit(&root, threads);
    println!(
        "{} threads, {rounds} rounds, {:.0} MiB; yr: {}",
        threads,
        bytes as f64 / 1_048_576.0,
        yr.as_ref()
            .map_or("not installed (cargo install yara-x-cli)".into(), |p| p
                .display()
                .to_string())
    );

    // The generated corpus is clean; a real one may hold test files that are detected.
    let expected =
        |code: i32| code == 0 || (code == 1 && std::env::var_os("VIGIL_BENCH_CORPUS").is_some());
    let (mut reads, mut scans, mut yrs, mut bases) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        reads.push(read_limit(&root, threads).0);
        let (sample, code) = measure_command(&mut vigil_scan(&root));
        assert!(expected(code), "vigil exited {code}");
        scans.push(sample);
        if let Some(baseline) = &baseline {
            let (sample, code) = measure_command(&mut scan_with(baseline, &root));
            assert!(expected(code), "the baseline vigil exited {code}");
            bases.push(sample);
        }
        if let Some(yr) = &yr {
            let (sample, code) = measure_command(&mut yr_scan(yr));
            assert_eq!(code, 0, "yr exited {code}");
            yrs.push(sample);
        }
        println!(
            "round {round}: read {:.3?}  vigil {:.3?}{}{}",
            reads[round].wall,
            scans[round].wall,
            bases
                .last()
                .map_or(String::new(), |s| format!("  baseline {:.3?}", s.wall)),
            yrs.last()
                .map_or(String::new(), |s| format!("  yr {:.3?}", s.wall))
        );
    }

    let (read, scan) = (median(&reads), median(&scans));
    let mib_per_s = |s: Sample| bytes as f64 / 1_048_576.0 / s.wall.as_secs_f64();
    println!("\nmedians (wall, cpu, throughput):");
    println!(
        "  (a) read limit   {:>9.3?} cpu {:>9.3?}  {:>7.0} MiB/s",
        read.wall,
        read.cpu,
        mib_per_s(read)
    );
    println!(
        "  (b) vigil scan   {:>9.3?} cpu {:>9.3?}  {:>7.0} MiB/s",
        scan.wall,
        scan.cpu,
        mib_per_s(scan)
    );
    let scan_vs_read = scan.wall.as_secs_f64() / read.wall.as_secs_f64();
    println!("ratio vigil / read limit: {scan_vs_read:.2}x (target <= 1.5x)");
    if !yrs.is_empty() {
        let yr = median(&yrs);
        println!(
            "  (c) yr scan      {:>9.3?} cpu {:>9.3?}  {:>7.0} MiB/s",
            yr.wall,
            yr.cpu,
            mib_per_s(yr)
        );
        let scan_vs_yr = scan.wall.as_secs_f64() / yr.wall.as_secs_f64();
        println!("ratio vigil / yr: {scan_vs_yr:.2}x (target <= 1.0x)");
    }

    if !bases.is_empty() {
        let base = median(&bases);
        println!(
            "  (d) baseline     {:>9.3?} cpu {:>9.3?}  {:>7.0} MiB/s",
            base.wall,
            base.cpu,
            mib_per_s(base)
        );
        println!(
            "ratio vigil / baseline: wall {:.3}x, cpu {:.3}x (no regression: about 1.0x); peak RSS {} vs {} KiB",
            scan.wall.as_secs_f64() / base.wall.as_secs_f64(),
            scan.cpu.as_secs_f64() / base.cpu.as_secs_f64(),
            scan.peak_rss_kib,
            base.peak_rss_kib
        );
    }
    if !root.join("part0").is_dir() {
        return;
    }
    let (half, _) = measure_command(&mut vigil_scan(&root.join("part0")));
    let (whole, _) = measure_command(&mut vigil_scan(&root));
    println!(
        "peak RSS of vigil: half corpus {} KiB, whole corpus {} KiB (ratio {:.2}; flat means memory does not grow with the corpus)",
        half.peak_rss_kib,
        whole.peak_rss_kib,
        whole.peak_rss_kib as f64 / half.peak_rss_kib as f64
    );
}
