//! Measuring helpers shared by the benchmarks: wall and CPU time of a child process, medians,
//! environment knobs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall time, CPU time (user + system) and peak resident memory of one measured run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
    #[allow(dead_code)] // not every benchmark reports memory
    pub peak_rss_kib: i64,
}

/// An environment variable parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Threads for a benchmark: `VIGIL_BENCH_THREADS`, else all cores.
pub fn bench_threads() -> usize {
    env_or(
        "VIGIL_BENCH_THREADS",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    )
}

/// Cargo's target folder, where benchmark corpora are kept.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), PathBuf::from)
}

/// User + system time of a `rusage`.
pub fn cpu_of(usage: &libc::rusage) -> Duration {
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Wall and CPU time (user + system, of this whole process) of `run`, done in this process.
#[allow(dead_code)] // not every benchmark times work in-process
pub fn timed_in_process(run: impl FnOnce()) -> Sample {
    let usage = || {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        usage
    };
    let before = usage();
    let started = Instant::now();
    run();
    let wall = started.elapsed();
    Sample {
        wall,
        cpu: cpu_of(&usage()).saturating_sub(cpu_of(&before)),
        peak_rss_kib: 0,
    }
}

/// Runs a command to completion with its output discarded, measuring it with `wait4`.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also returns its resource usage
pub fn measure_command(command: &mut Command) -> (Sample, i32) {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("command starts");
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let sample = Sample {
        wall: started.elapsed(),
        cpu: cpu_of(&usage),
        peak_rss_kib: usage.ru_maxrss,
    };
    (sample, libc::WEXITSTATUS(status))
}

/// The sample with the median wall time.
pub fn median(samples: &[Sample]) -> Sample {
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| s.wall);
    sorted[sorted.len() / 2]
}

/// An executable on `PATH`.
#[allow(dead_code)] // not every benchmark compares with another tool
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// Another `vigil` to compare with in the same run (`VIGIL_BASELINE_BIN`, for example a build of
/// an earlier commit), if set.
#[allow(dead_code)] // not every benchmark compares builds
pub fn baseline_bin() -> Option<PathBuf> {
    std::env::var_os("VIGIL_BASELINE_BIN").map(PathBuf::from)
}

/// Whether this `vigil` has result caches (`--no-cache`); builds from before them do not know
/// the flag. Benchmarks other than `benches/cache.rs` pass it, so that alternated rounds measure
/// scanning, not the cache.
#[allow(dead_code)] // not every benchmark runs vigil
pub fn has_cache(vigil: &Path) -> bool {
    Command::new(vigil)
        .args(["scan", "--help"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("--no-cache"))
}

/// Visits every regular file below `root` on `threads` threads of the `ignore` walker (the
/// scan's own walker), each thread with its own state made by `init`.
#[allow(dead_code)] // not every benchmark walks in-process
pub fn walk_files<S: Send>(
    root: &Path,
    threads: usize,
    init: impl Fn() -> S + Sync,
    visit: impl Fn(&mut S, &Path) + Sync,
) {
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .threads(threads)
        .build_parallel()
        .run(|| {
            let mut state = init();
            let visit = &visit;
            Box::new(move |entry| {
                let entry = entry.unwrap();
                if entry.file_type().is_some_and(|t| t.is_file()) {
                    visit(&mut state, entry.path());
                }
                ignore::WalkState::Continue
            })
        });
}

/// Prints the last sample of each case of a round as `(a) 1.234s  (b) ...`, by the case's letter;
/// cases with no sample yet are left out.
#[allow(dead_code)] // not every benchmark alternates cases by letter
pub fn print_round(round: usize, samples: &[Vec<Sample>]) {
    let walls: Vec<String> = samples
        .iter()
        .zip('a'..)
        .filter_map(|(s, letter)| Some(format!("({letter}) {:.3?}", s.last()?.wall)))
        .collect();
    println!("round {round}: {}", walls.join("  "));
}
