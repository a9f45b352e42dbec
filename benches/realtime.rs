//! Real-time protection: the latency it adds to `open()`, and the open rate it sustains without
//! missing a deadline. Needs root (fanotify); the daemon watches only this benchmark's folder.
//!
//! Files: real small files (at most 64 KiB) copied from `VIGIL_BENCH_CORPUS` (default
//! `/usr/share`), `VIGIL_BENCH_FILES` of them (2000), in two copies: one watched, one not.
//! Cases, all in one run, rounds alternated:
//! - (a) baseline: `open()` of each file of the unwatched copy;
//! - (b) cached: `open()` of each watched file the scan cache knows to be clean;
//! - (c) first open: `open()` of each file of a fresh watched copy (scanned on the spot);
//! - (e) floor: `open()` of the unwatched copy while this process answers allow to every
//!   permission event of an fanotify mark of its own on it, with no work at all: what the
//!   kernel's round trip to any user-space responder costs on this machine;
//! - (d) rate: `VIGIL_BENCH_RATE` (1000) first opens per second of fresh watched files for
//!   `VIGIL_BENCH_SECONDS` (5), then the daemon's missed-deadline count.
//!
//! Targets (issue "the resident service"): (b) adds under 50 µs to (a) at p50 (p99 reported);
//! (d) no missed deadline at 1,000 opens/s.
#![allow(clippy::disallowed_methods)] // test code: paths in messages, not output for people

#[allow(dead_code)] // uses part of it
mod measure;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use measure::{env_or, target_dir};

/// Copies up to `count` regular files of at most 64 KiB found under `source` into `dest`.
fn copy_small_files(source: &Path, dest: &Path, count: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dest).unwrap();
    let mut copied = Vec::new();
    let mut stack = vec![source.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let Ok(metadata) = entry.path().symlink_metadata() else {
                continue;
            };
            if metadata.is_dir() {
                stack.push(entry.path());
            } else if metadata.is_file() && metadata.len() <= 64 * 1024 && metadata.len() > 0 {
                let target = dest.join(format!(
                    "{:05}-{}",
                    copied.len(),
                    entry.file_name().to_string_lossy()
                ));
                if std::fs::copy(entry.path(), &target).is_ok() {
                    copied.push(target);
                    if copied.len() == count {
                        return copied;
                    }
                }
            }
        }
    }
    copied
}

/// The duration of each `open()` (the file closed after, untimed), in µs.
fn open_latencies(files: &[PathBuf]) -> Vec<f64> {
    files
        .iter()
        .map(|path| {
            let started = Instant::now();
            let file = std::fs::File::open(path).expect("opens");
            let elapsed = started.elapsed();
            drop(file);
            elapsed.as_secs_f64() * 1e6
        })
        .collect()
}

fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

struct Daemon {
    child: Child,
    vigil: PathBuf,
    config: PathBuf,
    state: PathBuf,
}

impl Daemon {
    fn start(base: &Path, watched: &Path) -> Self {
        let socket = base.join("vigil.sock");
        let config = base.join("vigil.toml");
        let state = base.join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            &config,
            format!(
                "[service]\nsocket = \"{}\"\n[antivirus_engine]\nenable_real_time_protection = true\nscan_cache_settle_time = 3\n[real_time]\npaths = [\"{}\"]\n",
                socket.display(),
                watched.display()
            ),
        )
        .unwrap();
        let vigil = PathBuf::from(env!("CARGO_BIN_EXE_vigil"));
        let log = base.join("daemon.log");
        let child = Command::new(&vigil)
            .arg("daemon")
            .env("VIGIL_CONFIG", &config)
            .env("VIGIL_STATE_DIR", &state)
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            vigil,
            config,
            state,
        }
    }

    fn statistics(&self) -> serde_json::Value {
        let output = Command::new(&self.vigil)
            .args(["statistics", "--format", "jsonl"])
            .env("VIGIL_CONFIG", &self.config)
            .env("VIGIL_STATE_DIR", &self.state)
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: plain system call on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// An fanotify responder that allows everything at once, on `dir`: the floor of any on-access
/// scanner. Stops (and its mark goes) when dropped.
struct Floor {
    fd: i32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Floor {
    fn start(dir: &Path) -> Self {
        // SAFETY: plain system calls; the path is NUL-terminated and outlives the call.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
                (libc::O_RDONLY | libc::O_CLOEXEC) as u32,
            )
        };
        assert!(fd >= 0, "fanotify_init");
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let marked = unsafe {
            libc::fanotify_mark(
                fd,
                libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR,
                libc::FAN_OPEN_PERM | libc::FAN_EVENT_ON_CHILD,
                libc::AT_FDCWD,
                path.as_ptr(),
            )
        };
        assert_eq!(marked, 0, "fanotify_mark");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 64 * 1024];
                let header = std::mem::size_of::<libc::fanotify_event_metadata>();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // SAFETY: the buffer is ours; events are parsed within what was read.
                    let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
                    if read <= 0 {
                        break;
                    }
                    let mut offset = 0;
                    while offset + header <= read as usize {
                        let event: libc::fanotify_event_metadata =
                            unsafe { std::ptr::read_unaligned(buffer[offset..].as_ptr().cast()) };
                        if event.fd >= 0 {
                            let response = libc::fanotify_response {
                                fd: event.fd,
                                response: libc::FAN_ALLOW,
                            };
                            unsafe {
                                libc::write(
                                    fd,
                                    (&response as *const libc::fanotify_response).cast(),
                                    std::mem::size_of::<libc::fanotify_response>(),
                                );
                                libc::close(event.fd);
                            }
                        }
                        offset += event.event_len as usize;
                    }
                }
            })
        };
        Self {
            fd,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // One more event wakes the reader so it sees `stop`; closing the group allows the rest.
        unsafe { libc::close(self.fd) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("realtime: needs root (fanotify); nothing measured");
        return;
    }
    let count: usize = env_or("VIGIL_BENCH_FILES", 2000);
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 3);
    let rate: u64 = env_or("VIGIL_BENCH_RATE", 1000);
    let seconds: u64 = env_or("VIGIL_BENCH_SECONDS", 5);
    let source = std::env::var_os("VIGIL_BENCH_CORPUS")
        .map_or_else(|| PathBuf::from("/usr/share"), PathBuf::from);
    let base = target_dir().join("bench-realtime");
    let _ = std::fs::remove_dir_all(&base);
    let watched = base.join("watched");
    let baseline = copy_small_files(&source, &base.join("unwatched"), count);
    let cached = copy_small_files(&source, &watched.join("cached"), count);
    let fresh: Vec<Vec<PathBuf>> = (0..rounds)
        .map(|round| copy_small_files(&source, &watched.join(format!("fresh-{round}")), count))
        .collect();
    let paced = copy_small_files(&source, &watched.join("rate"), (rate * seconds) as usize);
    println!(
        "realtime: {} small files from {} per case, {rounds} rounds",
        baseline.len(),
        source.display()
    );
    let daemon = Daemon::start(&base, &watched);
    // Settled (scan_cache_settle_time = 3), so the first pass over `cached` fills the cache.
    std::thread::sleep(Duration::from_millis(3500));
    open_latencies(&cached);

    let floor_files = copy_small_files(&source, &base.join("floor"), count);
    let (mut a, mut b, mut c, mut e) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (round, fresh) in fresh.iter().enumerate() {
        let hits_before = daemon.statistics()["real_time"]["events"]["open"]["cache_hits"]
            .as_u64()
            .unwrap_or(0);
        let mut round_a = open_latencies(&baseline);
        let mut round_b = open_latencies(&cached);
        let hits = daemon.statistics()["real_time"]["events"]["open"]["cache_hits"]
            .as_u64()
            .unwrap_or(0)
            - hits_before;
        println!(
            "round {}: {hits} of the {} cached opens answered from the cache",
            round + 1,
            cached.len()
        );
        let mut round_c = open_latencies(fresh);
        let floor = Floor::start(&base.join("floor"));
        let mut round_e = open_latencies(&floor_files);
        // Its thread ends at the next event after `stop`: give it one.
        floor.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(std::fs::File::open(&floor_files[0]));
        drop(floor);
        println!(
            "round {}: p50 fanotify floor {:.1} µs",
            round + 1,
            percentile(&mut round_e, 0.5)
        );
        e.extend(round_e);
        println!(
            "round {}: p50 baseline {:.1} µs, cached {:.1} µs, first open {:.1} µs",
            round + 1,
            percentile(&mut round_a, 0.5),
            percentile(&mut round_b, 0.5),
            percentile(&mut round_c, 0.5)
        );
        a.extend(round_a);
        b.extend(round_b);
        c.extend(round_c);
    }
    for (name, values) in [
        ("(e) fanotify floor", &mut e),
        ("(b) cached open", &mut b),
        ("(c) first open", &mut c),
    ] {
        let (p50, p99) = (percentile(values, 0.5), percentile(values, 0.99));
        let (base50, base99) = (percentile(&mut a, 0.5), percentile(&mut a, 0.99));
        println!(
            "{name}: p50 {p50:.1} µs = {:.2}x baseline ({base50:.1} µs), adds {:.1} µs; p99 {p99:.1} µs = {:.2}x ({base99:.1} µs), adds {:.1} µs",
            p50 / base50,
            p50 - base50,
            p99 / base99,
            p99 - base99
        );
    }
    let (floor50, cached50) = (percentile(&mut e, 0.5), percentile(&mut b, 0.5));
    println!(
        "(b) over (e): a cached open costs {:.1} µs more than the bare fanotify round trip at p50 ({:.2}x)",
        cached50 - floor50,
        cached50 / floor50
    );

    let before = daemon.statistics();
    let open = &before["real_time"]["events"]["open"];
    println!(
        "daemon so far: {} opens received, {} answered from the scan cache, {} scanned",
        open["received"], open["cache_hits"], open["scanned"]
    );
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let started = Instant::now();
    let mut late = 0u64;
    for (index, path) in paced.iter().enumerate() {
        let due = started + interval * index as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_millis(100) {
            late += 1;
        }
        drop(std::fs::File::open(path).expect("opens"));
    }
    let achieved = paced.len() as f64 / started.elapsed().as_secs_f64();
    let after = daemon.statistics();
    let missed = |stats: &serde_json::Value| {
        stats["real_time"]["events"]["open"]["missed_deadline"]
            .as_u64()
            .unwrap_or(0)
    };
    println!(
        "(d) rate: {} first opens at {achieved:.0}/s (asked {rate}/s; {late} opens ran over 100 ms late): {} missed deadlines; daemon latency p50 {} µs, p99 {} µs, max {} µs (whole run)",
        paced.len(),
        missed(&after) - missed(&before),
        after["real_time"]["latency_us"]["p50"],
        after["real_time"]["latency_us"]["p99"],
        after["real_time"]["latency_us"]["max"]
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&base);
}
