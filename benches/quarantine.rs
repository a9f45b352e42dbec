//! Quarantine throughput: `vigil scan --action quarantine` over N small detected files, against
//! the same scan with `--action report` (the scan's own cost) and a plain copy + fsync + unlink of
//! the same files (the least any crash-safe move must do), alternating round by round.
//!
//! Environment: `VIGIL_BENCH_FILES` (10000), `VIGIL_BENCH_ROUNDS` (3).

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

/// `files` detected files in 100 folders under a fresh `dir`.
fn plant(dir: &Path, files: usize) {
    let _ = std::fs::remove_dir_all(dir);
    for n in 0..files {
        let folder = dir.join(format!("d{}", n % 100));
        if n < 100 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        std::fs::write(folder.join(format!("f{n}.com")), eicar()).unwrap();
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

fn vigil_scan(dir: &Path, state: &Path, action: &str) -> Duration {
    let config = state.with_extension("toml");
    std::fs::write(&config, "").unwrap();
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["scan", "custom"])
        .arg(dir)
        .args(["--action", action, "--format", "jsonl"])
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
    let (mut baseline, mut report, mut quarantine) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        plant(&corpus, files);
        baseline.push(copy_fsync_unlink(&corpus, &work.path().join("copies")));
        plant(&corpus, files);
        report.push(vigil_scan(
            &corpus,
            &work.path().join(format!("state-report-{round}")),
            "report",
        ));
        plant(&corpus, files);
        let state = work.path().join(format!("state-quarantine-{round}"));
        quarantine.push(vigil_scan(&corpus, &state, "quarantine"));
        assert_eq!(
            std::fs::read_dir(state.join("quarantine")).unwrap().count(),
            files + 1
        );
        println!(
            "round {round}: copy+fsync+unlink {:.2?}  scan (report) {:.2?}  scan (quarantine) {:.2?}",
            baseline[round], report[round], quarantine[round]
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
