//! What plugins cost, measured in one run, cases alternating round by round:
//!
//! 1. Full scan of the scan-core corpus (or real files: `VIGIL_BENCH_CORPUS=DIR`): YARA only
//!    (`--no-plugins`) against YARA plus the first-party plugins (the default). Target:
//!    plugins add at most 15%.
//! 2. Per-call overhead of a plugin that returns nothing (`benches/noop-plugin`, wants every
//!    file): µs per file for an empty input (a fresh instance and the call) and for 4 KiB and
//!    64 KiB inputs, next to the YARA scan of the same 4 KiB in the same run. Target: < 20 µs.
//! 3. Plugin compile cost: loading a plugin with an empty compile cache (compile, then cache)
//!    against loading it again (from the cache). Target: the compile is paid once per version.
//!
//! Environment: `VIGIL_BENCH_CORPUS` (real files for case 1), `VIGIL_BENCH_SCALE` (generated
//! corpus size, 1.0 = about 1 GiB), `VIGIL_BENCH_ROUNDS` (5),
//! `VIGIL_BENCH_THREADS` (all cores), `VIGIL_BENCH_CALLS` (20000), `VIGIL_BENCH_FULL_SCAN` (1; 0
//! skips case 1).
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod corpus;
mod measure;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use measure::{bench_threads, env_or, measure_command, median, target_dir};
use vigil_engine::config::PluginsConfig;
use vigil_engine::definitions::Definitions;
use vigil_engine::plugin::PluginSet;

fn main() {
    let scale: f64 = env_or("VIGIL_BENCH_SCALE", 1.0);
    let rounds: usize = env_or("VIGIL_BENCH_ROUNDS", 5);
    let calls: usize = env_or("VIGIL_BENCH_CALLS", 20_000);
    let threads = bench_threads();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir();
    if env_or("VIGIL_BENCH_FULL_SCAN", 1) == 1 {
        let (root, real) = corpus::real_or_generated(&target, scale);
        full_scan(&root, threads, rounds, !real);
    }

    // The WebAssembly of a plugin crate under `benches/`, built now.
    let plugin = |name: &str| {
        let dir = manifest.join("benches").join(name);
        let wasm = vigil_plugin_build::build(&dir, &vigil_plugin_build::default_target_dir(&dir))
            .unwrap_or_else(|err| panic!("{name} does not build: {err}"));
        std::fs::read(wasm).unwrap()
    };
    let (noop, bare) = (plugin("noop-plugin"), plugin("noop-plugin-bare"));
    per_call(&noop, &bare, calls, rounds);
    compile_once(&noop, rounds);
}

/// Case 1: the whole corpus with and without the first-party plugins. The generated corpus is
/// `clean` (exit code 0 required); real files may hold detections (exit code 1 accepted).
fn full_scan(root: &Path, threads: usize, rounds: usize, clean: bool) {
    let expected = |code: i32| code == 0 || (!clean && code == 1);
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("vigil.toml");
    // Archives off in both cases: the target is the plugins' cost over YARA alone on the files
    // themselves (benches/archives.rs measures archives).
    std::fs::write(&config, "[archives]\nenabled = false\n").unwrap();
    let scan = |plugins: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
        command
            .args(["scan", "custom"])
            .arg(root)
            .args(["--format", "jsonl", "--threads", &threads.to_string()])
            // Scanning is measured, not the result caches.
            .arg("--no-cache")
            .env("VIGIL_STATE_DIR", state.path())
            .env("VIGIL_CONFIG", &config);
        if !plugins {
            command.arg("--no-plugins");
        }
        command
    };
    // Warm the page cache and the plugin compile cache.
    let (_, code) = measure_command(&mut scan(true));
    assert!(expected(code), "vigil exited {code}");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (sample, code) = measure_command(&mut scan(false));
        assert!(expected(code), "vigil --no-plugins exited {code}");
        without.push(sample);
        let (sample, code) = measure_command(&mut scan(true));
        assert!(
            expected(code),
            "a plugin flagged the clean corpus (exit {code})"
        );
        with.push(sample);
        println!(
            "round {round}: yara only {:.3?}  yara + plugins {:.3?}",
            without[round].wall, with[round].wall
        );
    }
    let (without, with) = (median(&without), median(&with));
    println!(
        "\n1. full scan of {} ({threads} threads), medians:",
        root.display()
    );
    println!(
        "  yara only       {:>9.3?} cpu {:>9.3?}",
        without.wall, without.cpu
    );
    println!(
        "  yara + plugins  {:>9.3?} cpu {:>9.3?}",
        with.wall, with.cpu
    );
    println!(
        "  ratio with / without plugins: wall {:.3}x, cpu {:.3}x (target <= 1.15x)",
        with.wall.as_secs_f64() / without.wall.as_secs_f64(),
        with.cpu.as_secs_f64() / without.cpu.as_secs_f64()
    );
    println!(
        "  peak RSS: {} KiB without, {} KiB with plugins\n",
        without.peak_rss_kib, with.peak_rss_kib
    );
}

/// Case 2: µs per call of a plugin that returns nothing, against the YARA scan of the same file.
fn per_call(noop: &[u8], bare: &[u8], calls: usize, rounds: usize) {
    let load = |wasm: &[u8]| {
        PluginSet::load(
            &[("noop".into(), wasm.to_vec())],
            &PluginsConfig::default(),
            1,
            None,
        )
        .expect("the noop plugin loads")
    };
    let (set, bare_set) = (load(noop), load(bare));
    let detectors = Definitions::builtin()
        .and_then(|d| d.detectors(&[], &Default::default(), PluginSet::none()))
        .expect("the built-in definitions load");
    let no_faults = detectors.plugins.scan_faults();
    let mut yara = detectors.worker(Duration::from_secs(60), &no_faults);
    let counts = set.scan_faults();
    let path = Path::new("sample.bin");
    let sizes = [0usize, 4096, 65536, 1 << 20];
    let inputs: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&size| (0..size).map(|i| (i * 31 % 251) as u8).collect())
        .collect();
    let (mut findings, mut faults) = (Vec::new(), Vec::new());
    let per_file = |run: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..calls {
            run();
        }
        started.elapsed().as_secs_f64() * 1e6 / calls as f64
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); sizes.len() + 2];
    for _ in 0..rounds {
        // The SDK's panic hook, installed at every call, against the same plugin without it.
        samples[sizes.len() + 1].push(per_file(&mut || {
            bare_set.scan(path, &inputs[0], &mut findings, &mut faults, &counts);
        }));
        samples[0].push(per_file(&mut || {
            yara.scan(path, None, &inputs[1], &mut findings, &mut faults)
                .unwrap();
        }));
        for (index, input) in inputs.iter().enumerate() {
            samples[index + 1].push(per_file(&mut || {
                set.scan(path, input, &mut findings, &mut faults, &counts);
            }));
        }
        assert!(findings.is_empty() && faults.is_empty(), "{faults:?}");
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    println!("2. per call, {calls} calls per round, medians (one thread):");
    println!(
        "  yara + hashes on 4 KiB (baseline)   {:>7.2} µs",
        medians[0]
    );
    for (index, size) in sizes.iter().enumerate() {
        println!(
            "  noop plugin, {:>5} bytes in        {:>7.2} µs  ({:.2}x the baseline){}",
            size,
            medians[index + 1],
            medians[index + 1] / medians[0],
            if *size == 0 {
                "  = fresh instance + call"
            } else {
                ""
            }
        );
    }
    let bare = medians[sizes.len() + 1];
    println!(
        "  noop plugin without the panic hook, 0 bytes in {bare:>7.2} µs  (with it: {:.3}x)",
        medians[1] / bare
    );
    println!("  target: per-call overhead < 20 µs\n");
}

/// Case 3: loading a plugin with an empty compile cache against loading it from the cache.
fn compile_once(noop: &[u8], rounds: usize) {
    let sources = [("noop".to_string(), noop.to_vec())];
    let load = |cache: &Path| {
        let started = Instant::now();
        let set = PluginSet::load(&sources, &PluginsConfig::default(), 2, Some(cache)).unwrap();
        (started.elapsed(), set.plugins()[0].info.from_cache)
    };
    let (mut compiles, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let cache = tempfile::tempdir().unwrap();
        let (time, from_cache) = load(cache.path());
        assert!(!from_cache);
        compiles.push(time);
        let (time, from_cache) = load(cache.path());
        assert!(from_cache);
        cached.push(time);
    }
    compiles.sort();
    cached.sort();
    let (compile, cache) = (compiles[rounds / 2], cached[rounds / 2]);
    println!(
        "3. loading the noop plugin ({} KiB), medians:",
        noop.len() / 1024
    );
    println!("  empty cache (compile + store)  {compile:>9.3?}");
    println!("  from the cache                 {cache:>9.3?}");
    println!(
        "  ratio cached / compile: {:.3} (the compile is paid once per plugin version)",
        cache.as_secs_f64() / compile.as_secs_f64()
    );
}
