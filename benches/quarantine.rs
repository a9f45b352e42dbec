//! Quarantine throughput: `vigil scan --action quarantine` over N small detected files, against
//! the same scan with `--action report` (the scan's own cost) and a plain copy + fsync + unlink of
//! the same files (the least any crash-safe move must do), alternating round by round.
//!
//! Environment: `VIGIL_BENCH_FILES` (10000), `VIGIL_BENCH_ROUNDS` (3); `VIGIL_BENCH_REAL=DIR`
//! quarantines copies of the first N regular files under DIR (real sizes and contents, flagged by
//! an extra rule that matches every file) instead of EICAR files; `VIGIL_BASELINE_BIN=PATH` adds
//! the same quarantine scan by another `vigil` build (say, of an earlier commit), alternated, and
//! states the ratio.

// Only `has_cache` is used here.
#[allow(dead_code)]
mod measure;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn eicar() -> Vec<u8> {
    let mut bytes = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-".to_vec();
    bytes.extend_from_slice(b"ANTIVIRUS-TEST-FILE!$H+H*");
    bytes
}

/// Up to `files` regular files of at most 4 MiB under `dir`, in walk order.
fn real_files(dir: &Path, files: usize) -> Vec<std::path::PathBuf> {
    ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .build()
        .flatten()
        .filter(|e| {
            e.file_type().is_some_and(|t| t.is_file())
                && e.metadata().is_ok_and(|m| m.len() <= 4 << 20)
        })
        .map(|e| e.into_path())
        .take(files)
        .collect()
}

/// `files` detected files in 100 folders under a fresh `dir`: EICAR, or copies of `real` files.
fn plant(dir: &Path, files: usize, real: &[std::path::PathBuf]) {
    let _ = std::fs::remove_dir_all(dir);
    for n in 0..files {
        let folder = dir.join(format!("d{}", n % 100));
        if n < 100 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        let target = folder.join(format!("f{n}.com"));
        match real.get(n) {
            Some(source) => {
                std::fs::copy(source, &target).unwrap();
            }
            None => std::fs::write(target, eicar()).unwrap(),
        }
    }
    // Start every case with the files on disk, not only in the page cache's dirty list.
    unsafe { libc::sync() };
}

/// The baseline: copy each file elsewhere, fsync the copy and its folder, unlink the original.
fn copy_fsync_unlink(dir: &Path, vault: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(vault);
    std::fs::create_dir_all(vault).unwrap();
    let vault_dir = std::fs::File::open(vault).unwrap();
    let started = Instant::now();
    let mut n = 0;
    for folder in std::fs::read_dir(dir).unwrap() {
        for file in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let mut copy = std::fs::File::create(vault.join(n.to_string())).unwrap();
            copy.write_all(&bytes).unwrap();
            copy.sync_all().unwrap();
            vault_dir.sync_all().unwrap();
            std::fs::remove_file(&path).unwrap();
            std::fs::File::open(path.parent().unwrap())
                .unwrap()
                .sync_all()
                .unwrap();
            n += 1;
        }
    }
    started.elapsed()
}

fn vigil_scan(vigil: &Path, dir: &Path, state: &Path, action: &str, rules: &[&Path]) -> Duration {
    let config = state.with_extension("toml");
    // The vault bounds (quarantine.*) postdate the baseline builds: leave them at their
    // defaults, which these corpora fit.
    std::fs::write(&config, "").unwrap();
    let started = Instant::now();
    let status = Command::new(vigil)
        .args(["scan", "custom"])
        .arg(dir)
        .args(rules.iter().flat_map(|rule| [Path::new("--rules"), rule]))
        .args(["--action", action, "--format", "jsonl"])
        .args(measure::has_cache(vigil).then_some("--no-cache"))
        .env("VIGIL_STATE_DIR", state)
        .env("VIGIL_CONFIG", &config)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Some(1), "threats are found");
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let files = env_or("VIGIL_BENCH_FILES", 10_000);
    let rounds = env_or("VIGIL_BENCH_ROUNDS", 3);
    let work = tempfile::tempdir().unwrap();
    let corpus = work.path().join("corpus");
    let vigil = Path::new(env!("CARGO_BIN_EXE_vigil"));
    let other = std::env::var_os("VIGIL_BASELINE_BIN").map(std::path::PathBuf::from);
    let real = std::env::var_os("VIGIL_BENCH_REAL")
        .map(|dir| real_files(Path::new(&dir), files))
        .unwrap_or_default();
    let every_file = work.path().join("every-file.yar");
    std::fs::write(
        &every_file,
        "rule EveryFile { meta: threat = \"Test:Multi/EveryFile\" condition: true }\n",
    )
    .unwrap();
    let rules: Vec<&Path> = if real.is_empty() {
        Vec::new()
    } else {
        vec![every_file.as_path()]
    };
    let files = if real.is_empty() { files } else { real.len() };
    let bytes: u64 = real
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "{files} files ({}), {rounds} rounds",
        if real.is_empty() {
            "EICAR".to_string()
        } else {
            format!("real, {:.0} MiB", bytes as f64 / 1_048_576.0)
        }
    );
    let (mut baseline, mut report, mut quarantine, mut others) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        plant(&corpus, files, &real);
        baseline.push(copy_fsync_unlink(&corpus, &work.path().join("copies")));
        plant(&corpus, files, &real);
        report.push(vigil_scan(
            vigil,
            &corpus,
            &work.path().join(format!("state-report-{round}")),
            "report",
            &rules,
        ));
        plant(&corpus, files, &real);
        let state = work.path().join(format!("state-quarantine-{round}"));
        quarantine.push(vigil_scan(vigil, &corpus, &state, "quarantine", &rules));
        let entries = std::fs::read_dir(state.join("quarantine"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("qv".as_ref()))
            .count();
        assert_eq!(entries, files, "every file is in the vault");
        if let Some(other) = &other {
            plant(&corpus, files, &real);
            let state = work.path().join(format!("state-other-{round}"));
            others.push(vigil_scan(other, &corpus, &state, "quarantine", &rules));
        }
        println!(
            "round {round}: copy+fsync+unlink {:.2?}  scan (report) {:.2?}  scan (quarantine) {:.2?}{}",
            baseline[round],
            report[round],
            quarantine[round],
            others.last().map_or(String::new(), |d| format!(
                "  baseline build (quarantine) {d:.2?}"
            ))
        );
    }
    if !others.is_empty() {
        let (this, other) = (median(quarantine.clone()), median(others));
        println!(
            "quarantine scan, this build / baseline build: {:.2?} / {:.2?} = {:.3}x",
            this,
            other,
            this.as_secs_f64() / other.as_secs_f64()
        );
    }
    let (baseline, report, quarantine) = (median(baseline), median(report), median(quarantine));
    let per_file = |d: Duration| d.as_secs_f64() * 1e6 / files as f64;
    let quarantine_only = quarantine.saturating_sub(report);
    println!("\n{files} files, medians of {rounds} rounds:");
    println!(
        "  copy + fsync + unlink   {:>9.2?}  {:>7.0} µs/file",
        baseline,
        per_file(baseline)
    );
    println!(
        "  vigil scan, report      {:>9.2?}  {:>7.0} µs/file",
        report,
        per_file(report)
    );
    println!(
        "  vigil scan, quarantine  {:>9.2?}  {:>7.0} µs/file  ({:.0} files/s)",
        quarantine,
        per_file(quarantine),
        files as f64 / quarantine.as_secs_f64()
    );
    println!(
        "quarantine cost per file (quarantine - report run): {:.0} µs = {:.2}x a plain copy + fsync + unlink",
        per_file(quarantine_only),
        quarantine_only.as_secs_f64() / baseline.as_secs_f64()
    );
}
