//! The result caches end to end through `vigil scan`: a rescan of unchanged files is served from
//! the scan cache with the same results, and every way a file or the engine can change makes
//! a miss: content changed with the modification time replayed, an edit in the same second, a
//! rename over the file, another name for the same inode, other definitions, rules, limits or
//! plugins. Incomplete results are never kept; decisions run on cached results; damaged cache
//! files are discarded with a warning; concurrent scans leave a consistent cache.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Sandbox, eicar, hostile_plugin, stderr, text};

/// The settle time the tests configure (the smallest allowed), and how long they wait for it.
const SETTLE: &str = "[antivirus_engine]\nscan_cache_settle_time = 3\n";

fn settle() {
    std::thread::sleep(Duration::from_millis(3200));
}

/// A sandbox configured with the short settle time (plus `extra` TOML).
fn sandbox_with(extra: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.configure(&format!("{SETTLE}{extra}"));
    sandbox
}

/// EICAR with its first byte changed: the same size, and clean.
fn almost_eicar() -> Vec<u8> {
    let mut bytes = eicar();
    bytes[0] = b'Y';
    bytes
}

fn hits(scan: &common::Scan) -> (u64, u64) {
    let summary = scan.summary();
    (
        summary["cache_hits"].as_u64().unwrap(),
        summary["file_hash_hits"].as_u64().unwrap(),
    )
}

/// An obfuscated script the first-party `obfuscated-script` plugin detects when the file's
/// name selects it (a script extension), without a `#!` line that would select it by content.
/// `vigil cache status --format jsonl`: the one cache file's record, and the last scan's.
fn status(sandbox: &Sandbox) -> (serde_json::Value, serde_json::Value) {
    let output = sandbox.run(&["cache", "status", "--format", "jsonl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of = |kind: &str| {
        let mut matching = records.iter().filter(|r| r["type"] == kind);
        let record = matching.next().cloned().unwrap_or_default();
        assert!(matching.next().is_none(), "one {kind}: {records:?}");
        record
    };
    (of("cache_file"), of("last_scan"))
}

fn set_mtime(path: &Path, time: std::time::SystemTime) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_times(std::fs::FileTimes::new().set_modified(time))
        .unwrap();
}

#[test]
fn a_rescan_of_unchanged_files_is_served_from_the_cache_with_the_same_results() {
    let sandbox = sandbox_with("");
    for n in 0..20 {
        sandbox.write(&format!("clean/{n}.txt"), format!("clean file {n}\n"));
    }
    sandbox.write("bad/eicar.com", eicar());
    sandbox.write("web/dropper.js", common::encoded_dropper_js());
    settle();
    let root = sandbox.corpus("");
    let first = sandbox.scan(&["custom", text(&root)]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert_eq!(hits(&first), (0, 0));
    assert_eq!(first.detections().len(), 2, "{:?}", first.records);

    let second = sandbox.scan(&["custom", text(&root)]);
    assert_eq!(second.code, 1);
    assert_eq!(second.detections(), first.detections(), "the same results");
    assert_eq!(second.summary()["files_scanned"], 22);
    assert_eq!(hits(&second), (22, 0), "every file a hit");
    assert_eq!(second.summary()["bytes_scanned"], 0, "nothing read");

    let (file, last) = status(&sandbox);
    assert_eq!(file["scan_cache_entries"], 22);
    assert!(file["size"].as_u64().unwrap() > 0);
    assert_eq!(last["files"], 22);
    assert_eq!(last["cache_hits"], 22);
    assert_eq!(last["hit_rate"], 100.0);
    let text_status = String::from_utf8(sandbox.run(&["cache", "status"]).stdout).unwrap();
    assert!(text_status.contains("hit rate 100.0%"), "{text_status}");

    let uncached = sandbox.scan(&["custom", text(&root), "--no-cache"]);
    assert_eq!(hits(&uncached), (0, 0), "--no-cache reads every file");
    assert_eq!(uncached.detections(), first.detections());

    let cleared = sandbox.run(&["cache", "clear"]);
    assert_eq!(cleared.status.code(), Some(0), "{}", stderr(&cleared));
    assert_eq!(hits(&sandbox.scan(&["custom", text(&root)])), (0, 0));
}

#[test]
fn changed_content_is_a_miss_even_with_the_old_modification_time_or_size() {
    let sandbox = sandbox_with("");
    let replayed = sandbox.write("replayed.com", almost_eicar());
    let renamed = sandbox.write("renamed.com", almost_eicar());
    settle();
    let root = sandbox.corpus("");
    assert_eq!(sandbox.scan(&["custom", text(&root)]).code, 0);
    assert_eq!(hits(&sandbox.scan(&["custom", text(&root)])), (2, 0));

    // One byte changed in place, the same size, and the modification time set back (`touch -r`).
    let old_mtime = std::fs::metadata(&replayed).unwrap().modified().unwrap();
    std::fs::write(&replayed, eicar()).unwrap();
    set_mtime(&replayed, old_mtime);
    assert_eq!(
        std::fs::metadata(&replayed).unwrap().modified().unwrap(),
        old_mtime
    );
    // Replaced by a rename: a new inode with the old size and modification time.
    let old_mtime = std::fs::metadata(&renamed).unwrap().modified().unwrap();
    let fresh = sandbox.write("fresh.tmp", eicar());
    set_mtime(&fresh, old_mtime);
    std::fs::rename(&fresh, &renamed).unwrap();

    let scan = sandbox.scan(&["custom", text(&root)]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let found: Vec<String> = scan.detections().into_iter().map(|(p, _)| p).collect();
    assert_eq!(found, vec![text(&renamed), text(&replayed)]);
    assert_eq!(hits(&scan).0, 0, "both are misses");
}

#[test]
fn a_file_edited_within_the_settle_time_of_its_scan_is_not_kept() {
    let sandbox = sandbox_with("");
    let file = sandbox.write("edited.com", almost_eicar());
    // Scanned at once: its times are too recent to be trusted, so nothing is kept (an edit
    // within the file system's timestamp granularity would leave them unchanged) ...
    assert_eq!(sandbox.scan(&["custom", text(&file)]).code, 0);
    assert_eq!(
        status(&sandbox).0["scan_cache_entries"],
        0,
        "an unsettled file is not kept"
    );
    // ... and a same-size edit in the same second, with the same modification time, is seen.
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, eicar()).unwrap();
    set_mtime(&file, mtime);
    settle();
    let scan = sandbox.scan(&["custom", text(&file)]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert_eq!(hits(&scan), (0, 0));
}

#[test]
fn another_name_of_the_same_inode_is_scanned_by_the_plugins_its_name_selects() {
    let sandbox = sandbox_with("");
    let as_text = sandbox.write("notes.txt", common::encoded_dropper_js());
    settle();
    let first = sandbox.scan(&["custom", text(&as_text)]);
    assert_eq!(
        first.code, 0,
        "a .txt file is not a script: {:?}",
        first.records
    );
    assert_eq!(hits(&sandbox.scan(&["custom", text(&as_text)])), (1, 0));

    let as_script = sandbox.corpus("notes.js");
    std::fs::hard_link(&as_text, &as_script).unwrap();
    let scan = sandbox.scan(&["custom", text(&as_script)]);
    assert_eq!(
        scan.code, 1,
        "the .js name selects the plugin: {:?}",
        scan.records
    );
    assert_eq!(scan.detections()[0].1, "obfuscated-script");
    assert_eq!(hits(&scan), (0, 0), "another name is another lookup");
    // The link changed the inode's status-change time, so neither name is a scan-cache hit;
    // the file-hash cache holds the content under each name's key, each with its own result.
    let both = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(hits(&both), (0, 2));
    assert_eq!(both.detections().len(), 1, "{:?}", both.records);
}

#[test]
fn other_rules_limits_or_plugins_are_misses_and_the_default_cache_survives_them() {
    let sandbox = sandbox_with("");
    sandbox.write("a.txt", "some text\n");
    sandbox.write("b.txt", "more text\n");
    settle();
    let root = text(&sandbox.corpus("")).to_string();
    sandbox.scan(&["custom", &root]);
    assert_eq!(hits(&sandbox.scan(&["custom", &root])).0, 2);

    let rule = sandbox.write_outside(
        "extra.yar",
        "rule Extra { strings: $a = \"more text\" condition: $a }",
    );
    let with_rule = sandbox.scan(&["custom", &root, "--rules", text(&rule)]);
    assert_eq!(hits(&with_rule), (0, 0), "an extra rule");
    assert_eq!(with_rule.detections().len(), 1);
    assert_eq!(
        hits(&sandbox.scan(&["custom", &root, "--no-plugins"])),
        (0, 0),
        "--no-plugins"
    );
    assert_eq!(
        hits(&sandbox.scan(&["custom", &root])).0,
        2,
        "occasional scans with other rules or plugins leave the default cache in place"
    );
    sandbox.configure(&format!("{SETTLE}[plugins]\ntimeout_ms = 999\n"));
    assert_eq!(
        hits(&sandbox.scan(&["custom", &root])),
        (0, 0),
        "a changed plugin limit"
    );
    sandbox.configure(&format!("{SETTLE}max_file_size = 1000000\n"));
    assert_eq!(
        hits(&sandbox.scan(&["custom", &root])),
        (0, 0),
        "a changed max_file_size"
    );
    // Settings that do not change results share the cache.
    sandbox.configure(&format!("{SETTLE}allowed_threats = [\"X\"]\n"));
    assert_eq!(hits(&sandbox.scan(&["custom", &root])).0, 2);
}

#[test]
fn a_plugin_disabled_after_its_faults_leaves_no_clean_result_behind() {
    let sandbox = sandbox_with("");
    let traps: Vec<PathBuf> = (0..3)
        .map(|n| sandbox.write(&format!("t{n}.hostile"), "trap"))
        .collect();
    let sample = sandbox.write("z.hostile", "detect");
    settle();
    let plugin = text(hostile_plugin()).to_string();
    let mut args = vec!["custom".to_string()];
    args.extend(traps.iter().map(|t| text(t).to_string()));
    args.extend([text(&sample).into(), "--plugin".into(), plugin.clone()]);
    args.extend(["--threads".into(), "1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = sandbox.scan(&args);
    assert_eq!(
        first.of_type("plugin_disabled").len(),
        1,
        "{:?}",
        first.records
    );
    assert_eq!(
        first.detections().len(),
        0,
        "the sample came after the plugin was disabled: {:?}",
        first.records
    );
    let again = sandbox.scan(&["custom", text(&sample), "--plugin", &plugin]);
    assert_eq!(
        again.code, 1,
        "detected on the next scan: {:?}",
        again.records
    );
    assert_eq!(hits(&again), (0, 0));
    // The faulting files were not kept either: they fault again.
    let traps_again = sandbox.scan(&["custom", text(&traps[0]), "--plugin", &plugin]);
    assert_eq!(traps_again.of_type("plugin_fault").len(), 1);
}

#[test]
fn decisions_and_actions_run_on_cached_detections() {
    let sandbox = sandbox_with("");
    let virus = sandbox.write("eicar.com", eicar());
    settle();
    let target = text(&virus).to_string();
    assert_eq!(sandbox.scan(&["custom", &target]).code, 1);
    let allowed = sandbox.run(&["threat", "allow", "Virus:DOS/EICAR_Test_File"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    let scan = sandbox.scan(&["custom", &target]);
    assert_eq!(hits(&scan), (1, 0), "not scanned again");
    assert_eq!(scan.code, 0);
    assert_eq!(scan.of_type("allowed").len(), 1, "{:?}", scan.records);

    sandbox.run(&["threat", "disallow", "Virus:DOS/EICAR_Test_File"]);
    let quarantined = sandbox.scan(&["custom", &target, "--action", "quarantine"]);
    assert_eq!(hits(&quarantined), (1, 0));
    assert_eq!(quarantined.of_type("quarantined").len(), 1);
    assert!(!virus.exists(), "a cached detection is acted on");
}

#[test]
fn a_damaged_cache_file_is_discarded_with_a_warning_and_files_are_scanned() {
    let sandbox = sandbox_with("");
    sandbox.write("eicar.com", eicar());
    sandbox.write("a.txt", "text\n");
    settle();
    let root = text(&sandbox.corpus("")).to_string();
    sandbox.scan(&["custom", &root]);
    let cache_file = std::fs::read_dir(sandbox.state_dir().join("cache"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .expect("a cache file");
    let intact = std::fs::read(&cache_file).unwrap();
    let garbage: Vec<u8> = intact.iter().map(|b| b.wrapping_mul(31) ^ 0x5a).collect();
    for damage in [intact[..intact.len() / 2].to_vec(), garbage, Vec::new()] {
        std::fs::write(&cache_file, &damage).unwrap();
        let text = String::from_utf8(sandbox.run(&["cache", "status"]).stdout).unwrap();
        assert!(text.contains("damaged"), "{text}");
        let scan = sandbox.scan(&["custom", &root]);
        assert_eq!(scan.code, 1);
        assert!(scan.stderr.contains("is damaged"), "{}", scan.stderr);
        assert_eq!(hits(&scan).0, 0, "nothing from a damaged file is trusted");
        assert_eq!(scan.detections().len(), 1);
        assert_eq!(
            hits(&sandbox.scan(&["custom", &root])).0,
            2,
            "the cache was written again"
        );
    }
}

#[test]
fn concurrent_scans_leave_a_consistent_cache_and_bounds_hold() {
    let sandbox = sandbox_with("");
    for n in 0..200 {
        sandbox.write(&format!("d{}/f{n}.txt", n % 4), format!("file {n}\n"));
    }
    settle();
    let scans: Vec<std::process::Child> = (0..4)
        .map(|n| {
            sandbox
                .vigil()
                .args(["scan", "custom", text(&sandbox.corpus(&format!("d{n}")))])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut scan in scans {
        assert!(scan.wait().unwrap().success());
    }
    let after = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(
        hits(&after).0,
        200,
        "every save merged, none lost or damaged"
    );

    sandbox.configure(&format!(
        "{SETTLE}scan_cache_maximum = 50\nfile_hash_cache_maximum = 10\n"
    ));
    sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    let (file, _) = status(&sandbox);
    assert_eq!(file["scan_cache_entries"], 50);
    assert_eq!(file["file_hash_cache_entries"], 10);
}

#[test]
fn files_on_memory_file_systems_are_never_kept() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm here; skipped");
        return;
    }
    let dir = tempfile::tempdir_in(shm).unwrap();
    let file = dir.path().join("eicar.com");
    std::fs::write(&file, almost_eicar()).unwrap();
    let sandbox = sandbox_with("");
    settle();
    sandbox.scan(&["custom", text(&file)]);
    let again = sandbox.scan(&["custom", text(&file)]);
    assert_eq!(hits(&again).0, 0, "tmpfs times are not trusted");
}

#[test]
fn sigkill_at_every_step_of_saving_the_caches_leaves_a_whole_file() {
    use std::os::unix::process::ExitStatusExt;
    let sandbox = sandbox_with("");
    sandbox.write("eicar.com", eicar());
    for n in 0..20 {
        sandbox.write(&format!("clean/{n}.txt"), format!("clean {n}\n"));
    }
    settle();
    let root = text(&sandbox.corpus("")).to_string();
    let cache_dir = sandbox.state_dir().join("cache");
    sandbox.scan(&["custom", &root]);
    let mut killed_runs = 0;
    for kill_at in 1.. {
        // A changed file makes the next save write (an unchanged tree only touches the file).
        sandbox.write(
            &format!("changed/{kill_at}.txt"),
            format!("new {kill_at}\n"),
        );
        let output = sandbox
            .vigil()
            .args(["scan", "custom", &root, "--format", "jsonl"])
            .env("VIGIL_FAULT_KILL_AT", kill_at.to_string())
            .output()
            .unwrap();
        if output.status.signal() != Some(libc::SIGKILL) {
            assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
            break;
        }
        killed_runs += 1;
        // The next scan finds the old file or the new one, whole: no warning, same results.
        let after = sandbox.scan(&["custom", &root]);
        assert!(
            !after.stderr.contains("damaged"),
            "kill at {kill_at}: {}",
            after.stderr
        );
        assert_eq!(after.detections().len(), 1, "kill at {kill_at}");
        assert!(
            hits(&after).0 >= 21,
            "kill at {kill_at}: {:?}",
            hits(&after)
        );
        let leftovers: Vec<_> = std::fs::read_dir(&cache_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_str().is_some_and(|name| name.contains(".tmp-")))
            .collect();
        assert!(leftovers.is_empty(), "kill at {kill_at}: {leftovers:?}");
    }
    assert!(
        killed_runs >= 4,
        "every step of a save was reached ({killed_runs} runs)"
    );
}

#[test]
fn a_plugin_that_reads_file_names_gets_its_result_cached_per_name() {
    let sandbox = sandbox_with("");
    let plugin = text(hostile_plugin()).to_string();
    // The hostile plugin asks for names (`wants-name`) and reports the name it was given.
    let first = sandbox.write("a/first.hostile", "name");
    let copy = sandbox.write("b/first.hostile", "name");
    let renamed = sandbox.write("c/second.hostile", "name");
    settle();
    let described = |path: &Path| {
        let scan = sandbox.scan(&["custom", text(path), "--plugin", &plugin]);
        let detections = scan.of_type("detection");
        assert_eq!(detections.len(), 1, "{:?} {}", scan.records, scan.stderr);
        let description = detections[0]["description"].as_str().unwrap().to_string();
        (description, hits(&scan))
    };
    let (description, _) = described(&first);
    assert_eq!(description, "name \"first.hostile\" extension \"hostile\"");
    let (description, (_, file_hash_hits)) = described(&copy);
    assert_eq!(
        (description.as_str(), file_hash_hits),
        ("name \"first.hostile\" extension \"hostile\"", 1),
        "the same content under the same name is served from the file-hash cache"
    );
    let (description, (_, file_hash_hits)) = described(&renamed);
    assert_eq!(
        (description.as_str(), file_hash_hits),
        ("name \"second.hostile\" extension \"hostile\"", 0),
        "another name is scanned again: the plugin's result depends on it"
    );
}
