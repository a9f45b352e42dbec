//! What scanning inside archives costs, on real archives, cases alternating round by round:
//!
//! (a) the archive corpus scanned with `archives.enabled = false` (each archive matched as bytes);
//! (b) the same with archives on (the default): members extracted and scanned;
//! (c) every member (b) scans, written out as files beforehand, scanned with archives off;
//! and, in this process, (d) the extraction alone (every member decoded and copied out, nothing
//! scanned; one thread).
//! An archive should cost about what its extracted bytes cost plus decompression: the figure is
//! (b) / ((a) + (c) + (d)). Also members per second for (b).
//!
//! The corpus (kept in the target folder): `.crate` files (tar.gz) from the cargo registry
//! cache, jars under `/usr/share/java` and the JDKs, wheels found under `/usr` and `/root`,
//! and `.deb` files from `VIGIL_BENCH_DEBS` (a folder, for example filled by
//! `apt-get download`) or `/var/cache/apt/archives`; about `VIGIL_BENCH_ARCHIVE_MB` (300) MB.
//! Environment: `VIGIL_BENCH_ROUNDS` (5), `VIGIL_BENCH_THREADS` (all cores).
#![allow(clippy::disallowed_methods)] // bench output: paths for the person running it

mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;

use measure::{Sample, bench_threads, env_or, measure_command, median, target_dir};
use vigil_engine::archive::{self, Bomb, LimitHit, Members};
use vigil_engine::config::ArchivesConfig;

fn main() {
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 5);
    let budget: u64 = env_or("VIGIL_BENCH_ARCHIVE_MB", 300) << 20;
    let threads = bench_threads();
    let base = target_dir().join("bench-archives");
    let corpus = collect(&base.join("corpus"), budget);
    let (extracted, members) = write_members(&corpus, &base.join("members"));
    println!(
        "corpus: {} archives, {:.1} MiB; {} members ({:.1} MiB) written out for case (c)",
        count(&corpus).0,
        count(&corpus).1 as f64 / 1048576.0,
        members,
        count(&extracted).1 as f64 / 1048576.0
    );

    let state = tempfile::tempdir().unwrap();
    let (on, off) = (state.path().join("on.toml"), state.path().join("off.toml"));
    std::fs::write(&on, "").unwrap();
    std::fs::write(&off, "[archives]\nenabled = false\n").unwrap();
    let scan = |root: &Path, config: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
        command
            .args(["scan", "custom"])
            .arg(root)
            .args([
                "--format",
                "jsonl",
                "--no-cache",
                "--threads",
                &threads.to_string(),
            ])
            .env("VIGIL_STATE_DIR", state.path())
            .env("VIGIL_CONFIG", config);
        command
    };
    // Warm the page cache and the plugin compile cache.
    measure_command(&mut scan(&corpus, &on));
    measure_command(&mut scan(&extracted, &off));
    let mut samples: [Vec<Sample>; 4] = Default::default();
    for round in 0..rounds {
        samples[0].push(measure_command(&mut scan(&corpus, &off)).0);
        samples[1].push(measure_command(&mut scan(&corpus, &on)).0);
        samples[2].push(measure_command(&mut scan(&extracted, &off)).0);
        samples[3].push(measure::timed_in_process(|| {
            extract_all(&corpus, &mut |_, _| {});
        }));
        measure::print_round(round, &samples);
    }
    let [off, on, files, extraction] = samples.map(|s| median(&s));
    println!("\nmedians ({threads} threads):");
    println!(
        "  (a) archives off                 {:.3?} wall, {:.3?} cpu",
        off.wall, off.cpu
    );
    println!(
        "  (b) archives on                  {:.3?} wall, {:.3?} cpu",
        on.wall, on.cpu
    );
    println!(
        "  (c) members as files, off        {:.3?} wall, {:.3?} cpu",
        files.wall, files.cpu
    );
    println!(
        "  (d) extraction alone (in-process) {:.3?} wall, {:.3?} cpu",
        extraction.wall, extraction.cpu
    );
    let expected = off.cpu + files.cpu + extraction.cpu;
    println!(
        "  on / off: {:.2}x wall; members per second with archives on: {:.0}",
        on.wall.as_secs_f64() / off.wall.as_secs_f64(),
        members as f64 / on.wall.as_secs_f64()
    );
    println!(
        "  cost of archives on / (off + members as files + extraction): {:.2}x cpu (target: about 1x)",
        on.cpu.as_secs_f64() / expected.as_secs_f64()
    );
}

/// Files and bytes below `dir`.
fn count(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .build()
    {
        let entry = entry.unwrap();
        if entry.file_type().is_some_and(|t| t.is_file()) {
            total.0 += 1;
            total.1 += entry.metadata().unwrap().len();
        }
    }
    total
}

/// Copies real archives into `dir` (once), up to `budget` bytes, a share for each kind.
fn collect(dir: &Path, budget: u64) -> PathBuf {
    if dir.is_dir() {
        return dir.to_path_buf();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let debs =
        std::env::var("VIGIL_BENCH_DEBS").unwrap_or_else(|_| "/var/cache/apt/archives".into());
    let kinds: [(&str, Vec<String>, &str); 4] = [
        (
            "crate",
            vec![format!("{home}/.cargo/registry/cache")],
            "crate",
        ),
        (
            "jar",
            vec!["/usr/share/java".into(), "/usr/lib/jvm".into()],
            "jar",
        ),
        ("whl", vec!["/usr".into(), home.clone()], "whl"),
        ("deb", vec![debs], "deb"),
    ];
    let staging = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).unwrap();
    for (kind, roots, extension) in kinds {
        let mut used = 0;
        let share = budget / 4;
        for root in roots.iter().filter(|r| Path::new(r).is_dir()) {
            for entry in ignore::WalkBuilder::new(root)
                .standard_filters(false)
                .build()
                .flatten()
            {
                let path = entry.path();
                let wanted = entry.file_type().is_some_and(|t| t.is_file())
                    && path.extension().is_some_and(|x| x == extension);
                let size = entry.metadata().map_or(0, |m| m.len());
                if !wanted || used + size > share {
                    continue;
                }
                let name = format!(
                    "{kind}-{:05}-{}",
                    used % 100_000,
                    path.file_name().unwrap().to_string_lossy()
                );
                if std::fs::copy(path, staging.join(name)).is_ok() {
                    used += size;
                }
            }
        }
        println!(
            "collected {:.1} MiB of .{extension}",
            used as f64 / 1048576.0
        );
    }
    std::fs::rename(&staging, dir).unwrap();
    dir.to_path_buf()
}

/// Runs the extractor (default limits) on every archive in `corpus`, handing each member to
/// `visit` with the archive's name.
fn extract_all(corpus: &Path, visit: &mut dyn FnMut(&Path, &Member)) {
    let config = ArchivesConfig::default();
    for entry in std::fs::read_dir(corpus).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut sink = Collect(Vec::new());
        archive::extract(&config, &data, name.as_bytes(), &mut sink);
        for member in &sink.0 {
            visit(&path, member);
        }
    }
}

/// One extracted member: its chain of names and bytes.
struct Member(Vec<Vec<u8>>, Vec<u8>);

struct Collect(Vec<Member>);

impl Members for Collect {
    fn member(&mut self, chain: &[Vec<u8>], data: &[u8]) {
        self.0.push(Member(chain.to_vec(), data.to_vec()));
    }
    fn limit(&mut self, _: LimitHit) {}
    fn bomb(&mut self, _: Bomb) {}
}

/// Writes every member the extractor gives into `dir` (once), each under a name made from its
/// archive and its index (never from the member's own path); returns the folder and the count.
fn write_members(corpus: &Path, dir: &Path) -> (PathBuf, u64) {
    let mut written = 0;
    let fresh = !dir.is_dir();
    if fresh {
        std::fs::create_dir_all(dir).unwrap();
    }
    extract_all(corpus, &mut |archive, member| {
        written += 1;
        if fresh {
            let leaf = member.0.last().map(|name| {
                let name = String::from_utf8_lossy(name);
                let leaf: String = name
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(80)
                    .collect();
                leaf.replace(['\\', '\0'], "_")
            });
            let folder = dir.join(archive.file_name().unwrap());
            std::fs::create_dir_all(&folder).unwrap();
            let name = format!("{written:06}-{}", leaf.unwrap_or_default());
            std::fs::write(folder.join(name), &member.1).unwrap();
        }
    });
    (dir.to_path_buf(), written)
}
