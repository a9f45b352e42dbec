//! Quarantine, restore, remove, threat history, restoration exclusion and allowed threats, end to
//! end through the real binary, including SIGKILL fault-injection loops that prove no file is lost.
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Sandbox, eicar, stderr, text};
use serde_json::Value;

/// `vigil quarantine list --format jsonl` (which also runs crash recovery).
fn entries(sandbox: &Sandbox) -> Vec<Value> {
    let output = sandbox.run(&["quarantine", "list", "--format", "jsonl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn quarantine_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox.state_dir().join("quarantine")
}

/// EICAR variants (trailing white space is allowed by the standard), so each file differs.
fn eicar_variant(n: usize) -> Vec<u8> {
    let mut bytes = eicar();
    bytes.extend(std::iter::repeat_n(b' ', n));
    bytes
}

fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn quarantine_then_restore_round_trips_content_mode_owner_times_and_odd_names() {
    let sandbox = Sandbox::new();
    let name = OsStr::from_bytes(b"inv\xe9-oice \xff.com");
    let path = sandbox.corpus("").join(name);
    std::fs::write(&path, eicar()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
    }
    let times = std::fs::FileTimes::new()
        .set_accessed(std::time::UNIX_EPOCH + std::time::Duration::new(1_500_000_000, 123_456_789))
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 987_654_321));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_times(times)
        .unwrap();
    let before = std::fs::metadata(&path).unwrap();

    let scan = sandbox.quarantine_corpus();
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let quarantined = scan.of_type("quarantined");
    assert_eq!(quarantined.len(), 1);
    assert!(!path.exists(), "the file left its folder");
    assert_eq!(scan.summary()["quarantined"], 1);

    let vault = quarantine_dir(&sandbox);
    assert_eq!(std::fs::metadata(&vault).unwrap().mode() & 0o777, 0o700);
    let id = quarantined[0]["id"].as_str().unwrap();
    let vault_file = vault.join(format!("{id}.qv"));
    assert_eq!(
        std::fs::metadata(&vault_file).unwrap().mode() & 0o777,
        0o600
    );
    let stored = std::fs::read(&vault_file).unwrap();
    assert!(
        !stored
            .windows(20)
            .any(|w| eicar().windows(20).any(|e| e == w)),
        "content is not stored in clear"
    );
    let rescan = sandbox.scan(&["custom", text(&sandbox.state_dir())]);
    assert_eq!(rescan.code, 0, "the vault is not detected again");

    let listed = entries(&sandbox);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["blake3"], digest(&eicar()));
    assert_eq!(listed[0]["threats"][0], "Virus:DOS/EICAR_Test_File");

    let output = sandbox.run(&["quarantine", "restore", id]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), eicar());
    assert_eq!(after.mode(), before.mode());
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
    assert_eq!(
        (after.atime(), after.atime_nsec()),
        (before.atime(), before.atime_nsec())
    );
    if is_root {
        assert_eq!((after.uid(), after.gid()), (1234, 5678));
    }
    assert!(entries(&sandbox).is_empty());
    assert!(!vault_file.exists());

    let history = sandbox.run(&["threat", "list", "--format", "jsonl"]);
    let actions: Vec<String> = String::from_utf8(history.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, ["detected", "quarantined", "restored"]);
}

#[test]
fn restore_never_overwrites_without_force_and_can_go_elsewhere() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("eicar.com", eicar());
    sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    let id = entries(&sandbox)[0]["id"].as_str().unwrap().to_string();

    std::fs::write(&path, "the user's new file").unwrap();
    let output = sandbox.run(&["quarantine", "restore", &id]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"the user's new file");
    assert_eq!(entries(&sandbox).len(), 1, "the entry stays in the vault");

    let elsewhere = sandbox.corpus("restored/copy.com");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    let output = sandbox.run(&["quarantine", "restore", &id, "--to", text(&elsewhere)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(&elsewhere).unwrap(), eicar());
    assert_eq!(std::fs::read(&path).unwrap(), b"the user's new file");

    // Quarantine the original again (the user's file was replaced by a threat), then --force.
    std::fs::write(&path, eicar_variant(3)).unwrap();
    sandbox.configure("[antivirus_engine]\nthreat_restoration_exclusion_time = 0\n");
    sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    let id = entries(&sandbox)[0]["id"].as_str().unwrap().to_string();
    std::fs::write(&path, "replaced").unwrap();
    let output = sandbox.run(&["quarantine", "restore", &id, "--force"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(&path).unwrap(), eicar_variant(3));
}

#[test]
fn quarantine_works_across_file_systems() {
    // /dev/shm is a tmpfs on Linux; the sandbox's temporary folder is usually on another file
    // system. The vault always copies, fsyncs and then unlinks, so a rename is never needed.
    let shm = Path::new("/dev/shm");
    let sandbox = Sandbox::new();
    let Ok(shm_meta) = std::fs::metadata(shm) else {
        eprintln!("no /dev/shm here: cross-file-system case not run");
        return;
    };
    let other = tempfile::tempdir_in(shm).unwrap();
    std::fs::set_permissions(other.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let same_device = shm_meta.dev() == std::fs::metadata(sandbox.state_dir()).unwrap().dev();
    assert!(
        !same_device,
        "the test needs the state dir and /dev/shm on different file systems"
    );
    let path = other.path().join("eicar.com");
    std::fs::write(&path, eicar()).unwrap();
    let scan = sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    assert_eq!(scan.of_type("quarantined").len(), 1, "{:?}", scan.records);
    assert!(!path.exists());
    let id = entries(&sandbox)[0]["id"].as_str().unwrap().to_string();
    let output = sandbox.run(&["quarantine", "restore", &id]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(&path).unwrap(), eicar());
}

/// Edits one quarantine row in the state database, as an attacker with write access could.
fn tamper(sandbox: &Sandbox, sql: &str, value: &dyn rusqlite::ToSql) {
    let db = rusqlite::Connection::open(sandbox.state_dir().join("state.sqlite3")).unwrap();
    assert_eq!(db.execute(sql, [value]).unwrap(), 1);
}

#[test]
fn tampered_vault_entries_are_refused_and_nothing_is_written() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("eicar.com", eicar());
    sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    let id = entries(&sandbox)[0]["id"].as_str().unwrap().to_string();
    let restore = || sandbox.run(&["quarantine", "restore", &id]);

    let traversal = format!("{}/../../../etc/cron.d/evil", text(&sandbox.corpus("")));
    tamper(
        &sandbox,
        "UPDATE quarantine SET original_path = ?1",
        &traversal.as_bytes(),
    );
    let output = restore();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("tampered original path"),
        "{}",
        stderr(&output)
    );
    tamper(
        &sandbox,
        "UPDATE quarantine SET original_path = ?1",
        &b"etc/relative".as_slice(),
    );
    assert!(stderr(&restore()).contains("tampered original path"));

    tamper(
        &sandbox,
        "UPDATE quarantine SET original_path = ?1",
        &text(&path).as_bytes(),
    );
    tamper(
        &sandbox,
        "UPDATE quarantine SET blake3 = ?1",
        &digest(b"something else"),
    );
    let output = restore();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("does not match its recorded digest"),
        "{}",
        stderr(&output)
    );
    assert!(!path.exists(), "nothing was restored");

    tamper(
        &sandbox,
        "UPDATE quarantine SET blake3 = ?1",
        &digest(&eicar()),
    );
    let vault_file = quarantine_dir(&sandbox).join(format!("{id}.qv"));
    let mut stored = std::fs::read(&vault_file).unwrap();
    *stored.last_mut().unwrap() ^= 1;
    std::fs::write(&vault_file, &stored).unwrap();
    let output = restore();
    assert!(
        stderr(&output).contains("does not match its recorded digest"),
        "{}",
        stderr(&output)
    );
    assert!(!path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.corpus("")).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file is left: {leftovers:?}"
    );
    assert_eq!(
        entries(&sandbox).len(),
        1,
        "the entry is kept for inspection"
    );
}

#[test]
fn restored_files_are_not_detected_until_the_exclusion_time_passes() {
    let sandbox = Sandbox::new();
    sandbox.configure("[antivirus_engine]\nthreat_restoration_exclusion_time = 2\n");
    let path = sandbox.write("eicar.com", eicar());
    let other = sandbox.write("other/eicar.com", eicar_variant(1));
    sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    let id = entries(&sandbox)[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        sandbox.run(&["quarantine", "restore", &id]).status.code(),
        Some(0)
    );

    let scan = sandbox.quarantine_corpus();
    assert_eq!(scan.of_type("allowed").len(), 1, "{:?}", scan.records);
    assert!(
        scan.of_type("allowed")[0]["reason"]
            .as_str()
            .unwrap()
            .contains("restoration exclusion")
    );
    assert!(path.exists(), "the restored file stays");
    assert!(
        !other.exists(),
        "a file with other content is still quarantined"
    );

    std::thread::sleep(std::time::Duration::from_millis(2100));
    let scan = sandbox.scan(&["custom", text(&path)]);
    assert_eq!(scan.code, 1, "the exclusion has expired");
    assert_eq!(scan.detections().len(), 1);
}

#[test]
fn allowed_threats_are_recorded_not_reported_nor_quarantined() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("eicar.com", eicar());
    let allow = sandbox.run(&["threat", "allow", "Virus:DOS/EICAR_Test_File"]);
    assert_eq!(allow.status.code(), Some(0));
    let scan = sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    assert_eq!(scan.code, 0, "{:?}", scan.records);
    assert_eq!(scan.of_type("allowed")[0]["reason"], "allowed threat");
    assert_eq!(scan.summary()["detections"], 0);
    assert!(path.exists());
    assert!(entries(&sandbox).is_empty());
    let history = String::from_utf8(sandbox.run(&["threat", "list"]).stdout).unwrap();
    assert!(history.contains("allowed"), "{history}");

    assert_eq!(
        sandbox
            .run(&["threat", "disallow", "Virus:DOS/EICAR_Test_File"])
            .status
            .code(),
        Some(0)
    );
    let scan = sandbox.scan(&["custom", text(&path)]);
    assert_eq!(scan.code, 1);

    sandbox.configure("[antivirus_engine]\nallowed_threats = [\"Virus:DOS/EICAR_Test_File\"]\n");
    let scan = sandbox.scan(&["custom", text(&path)]);
    assert_eq!(scan.code, 0);
    let output = sandbox.run(&["threat", "disallow", "Virus:DOS/EICAR_Test_File"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("configuration file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn remove_deletes_one_entry_or_all() {
    let sandbox = Sandbox::new();
    for n in 0..3 {
        sandbox.write(&format!("e{n}.com"), eicar_variant(n));
    }
    sandbox.quarantine_corpus();
    let listed = entries(&sandbox);
    assert_eq!(listed.len(), 3);
    let id = listed[0]["id"].as_str().unwrap();
    assert_eq!(
        sandbox.run(&["quarantine", "remove", id]).status.code(),
        Some(0)
    );
    assert_eq!(entries(&sandbox).len(), 2);
    assert_eq!(
        sandbox.run(&["quarantine", "remove", id]).status.code(),
        Some(2),
        "already gone"
    );
    assert_eq!(
        sandbox
            .run(&["quarantine", "remove", "--all"])
            .status
            .code(),
        Some(0)
    );
    assert!(entries(&sandbox).is_empty());
    let left: Vec<_> = std::fs::read_dir(quarantine_dir(&sandbox))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "vault.key" && n != "vault.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// After a crash and recovery: every file is whole at its path or whole in the vault (never
/// lost, never half-written), vault files and database rows match one to one, and no temporary
/// file is left. Vault entries are checked by restoring them elsewhere and comparing the bytes.
fn assert_nothing_lost(sandbox: &Sandbox, files: &[(PathBuf, Vec<u8>)], context: &str) {
    let listed = entries(sandbox);
    let mut rows: Vec<String> = listed
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let mut vault_files = Vec::new();
    for dirent in std::fs::read_dir(quarantine_dir(sandbox)).unwrap() {
        let name = dirent.unwrap().file_name().into_string().unwrap();
        if let Some(id) = name.strip_suffix(".qv") {
            vault_files.push(id.to_string());
        } else {
            assert!(
                name == "vault.key" || name == "vault.lock",
                "{context}: stray file {name} in the vault"
            );
        }
    }
    rows.sort();
    vault_files.sort();
    assert_eq!(rows, vault_files, "{context}: database and vault disagree");
    for dirent in std::fs::read_dir(sandbox.corpus("")).unwrap() {
        let name = dirent.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with(".vigil-restore"),
            "{context}: temporary file left"
        );
    }
    let check = sandbox.root().join("check");
    std::fs::create_dir_all(&check).unwrap();
    for (n, (path, content)) in files.iter().enumerate() {
        let in_vault: Vec<&Value> = listed
            .iter()
            .filter(|e| e["original_path"] == text(path))
            .collect();
        assert!(
            in_vault.len() <= 1,
            "{context}: {} is in the vault twice",
            path.display()
        );
        match std::fs::read(path) {
            Ok(bytes) => assert_eq!(&bytes, content, "{context}: {} is damaged", path.display()),
            Err(_) => assert_eq!(in_vault.len(), 1, "{context}: {} is lost", path.display()),
        }
        if let Some(entry) = in_vault.first() {
            assert_eq!(entry["blake3"], digest(content), "{context}");
            let copy = check.join(n.to_string());
            let _ = std::fs::remove_file(&copy);
            let output = sandbox.run(&[
                "quarantine",
                "restore",
                entry["id"].as_str().unwrap(),
                "--to",
                text(&copy),
            ]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{context}: {}",
                stderr(&output)
            );
            assert_eq!(
                &std::fs::read(&copy).unwrap(),
                content,
                "{context}: vault copy damaged"
            );
        }
    }
}

fn infected_corpus(sandbox: &Sandbox) -> Vec<(PathBuf, Vec<u8>)> {
    (0..3)
        .map(|n| {
            let content = eicar_variant(n);
            (sandbox.write(&format!("threat{n}.com"), &content), content)
        })
        .collect()
}

fn killed(output: &Output) -> bool {
    output.status.signal() == Some(libc::SIGKILL)
}

#[test]
fn sigkill_at_every_step_of_quarantine_loses_nothing() {
    let mut runs = 0;
    for kill_at in 1.. {
        let sandbox = Sandbox::new();
        let files = infected_corpus(&sandbox);
        let output = sandbox
            .vigil()
            .args([
                "scan",
                "custom",
                text(&sandbox.corpus("")),
                "--action",
                "quarantine",
                "--threads",
                "2",
            ])
            .env("VIGIL_FAULT_KILL_AT", kill_at.to_string())
            .output()
            .unwrap();
        runs += 1;
        assert_nothing_lost(
            &sandbox,
            &files,
            &format!("quarantine killed at point {kill_at}"),
        );
        if !killed(&output) {
            assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
            break;
        }
    }
    assert!(
        runs > 15,
        "every step of three quarantines was reached ({runs} runs)"
    );
}

#[test]
fn sigkill_at_every_step_of_restore_and_remove_loses_nothing() {
    let mut runs = 0;
    for command in ["restore", "remove"] {
        for target in 0..3 {
            for kill_at in 1.. {
                let sandbox = Sandbox::new();
                let files = infected_corpus(&sandbox);
                sandbox.quarantine_corpus();
                let listed = entries(&sandbox);
                assert_eq!(listed.len(), 3);
                let output = sandbox
                    .vigil()
                    .args([
                        "quarantine",
                        command,
                        listed[target]["id"].as_str().unwrap(),
                    ])
                    .env("VIGIL_FAULT_KILL_AT", kill_at.to_string())
                    .output()
                    .unwrap();
                runs += 1;
                let context = format!("{command} of entry {target} killed at point {kill_at}");
                if command == "restore" {
                    assert_nothing_lost(&sandbox, &files, &context);
                } else {
                    // A removal deletes on purpose: the other files must still be whole.
                    let removed = listed[target]["original_path"].as_str().unwrap();
                    let kept: Vec<_> = files
                        .iter()
                        .filter(|(p, _)| text(p) != removed)
                        .cloned()
                        .collect();
                    assert_nothing_lost(&sandbox, &kept, &context);
                }
                if !killed(&output) {
                    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
                    break;
                }
            }
        }
    }
    assert!(runs > 20, "{runs} runs");
}

#[test]
fn sigkill_at_random_times_during_quarantine_loses_nothing() {
    // Random timing on top of the step hooks: kills land inside writes, fsyncs and commits.
    // A new seed each run explores new timings; it is printed with any failure to replay it.
    let start_seed = std::env::var("VIGIL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut seed = start_seed;
    for run_index in 0..60 {
        let sandbox = Sandbox::new();
        let files = infected_corpus(&sandbox);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = std::time::Duration::from_micros(seed % 60_000);
        let mut child = sandbox
            .vigil()
            .args([
                "scan",
                "custom",
                text(&sandbox.corpus("")),
                "--action",
                "quarantine",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        assert_nothing_lost(
            &sandbox,
            &files,
            &format!("run {run_index} killed after {delay:?} (VIGIL_TEST_SEED={start_seed})"),
        );
    }
}

#[test]
fn a_file_that_cannot_be_removed_is_left_in_place_and_not_quarantined() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("locked/eicar.com", eicar());
    let locked = sandbox.corpus("locked");
    let mut command = sandbox.vigil();
    if unsafe { libc::geteuid() } == 0 {
        // Root may unlink anywhere: act as an unprivileged user on a folder it cannot write.
        for dir in [sandbox.corpus(""), locked.clone()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        command.uid(65534).gid(65534);
    } else {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let scan = sandbox.run_scan(
        command,
        &["custom", text(&locked), "--action", "quarantine"],
    );
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let reason = scan
        .reason("error", &path)
        .expect("the failure is reported");
    assert!(
        reason.contains("left in place and not quarantined"),
        "{reason}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), eicar());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(entries(&sandbox).is_empty(), "no vault entry remains");
}

#[test]
fn a_vault_opened_during_a_quarantine_scan_does_not_recover_its_work_in_progress() {
    // Recovery must not mistake another process's operation in progress for a crash.
    let sandbox = Sandbox::new();
    let files: Vec<(PathBuf, Vec<u8>)> = (0..120)
        .map(|n| {
            let content = eicar_variant(n % 50);
            (
                sandbox.write(&format!("d{}/t{n}.com", n % 7), &content),
                content,
            )
        })
        .collect();
    let mut scan = sandbox
        .vigil()
        .args([
            "scan",
            "custom",
            text(&sandbox.corpus("")),
            "--action",
            "quarantine",
            "--threads",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut listings = 0;
    while scan.try_wait().unwrap().is_none() {
        let output = sandbox.run(&["quarantine", "list"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        listings += 1;
    }
    let finished = scan.wait_with_output().unwrap();
    assert_eq!(finished.status.code(), Some(1), "{}", stderr(&finished));
    assert!(listings > 0);
    assert_eq!(
        entries(&sandbox).len(),
        files.len(),
        "every file was quarantined"
    );
    assert_nothing_lost(&sandbox, &files, "concurrent listing");
}

#[test]
fn the_vault_is_bounded_and_a_file_that_does_not_fit_stays_in_place() {
    let sandbox = Sandbox::new();
    let small = sandbox.write("small.com", eicar_variant(0));
    let large = sandbox.write("large.com", eicar_variant(50));
    // Room for the small file only.
    sandbox.configure("[quarantine]\nmax_size = 100\nmin_free_space = 0\n");
    let scan = sandbox.quarantine_corpus();
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert!(!small.exists(), "the file that fits is quarantined");
    assert_eq!(std::fs::read(&large).unwrap(), eicar_variant(50));
    let reason = scan
        .reason("error", &large)
        .unwrap_or_else(|| panic!("no refusal: {:?} {}", scan.records, scan.stderr));
    assert!(
        reason.contains("quarantine.max_size") && reason.contains("left in place"),
        "{reason}"
    );
    assert_eq!(entries(&sandbox).len(), 1);

    // A free-space floor larger than any disk refuses everything, naming its key.
    sandbox.configure("[quarantine]\nmin_free_space = 9223372036854775807\n");
    let scan = sandbox.quarantine_corpus();
    let reason = scan
        .reason("error", &large)
        .unwrap_or_else(|| panic!("no refusal: {:?} {}", scan.records, scan.stderr));
    assert!(reason.contains("quarantine.min_free_space"), "{reason}");
    assert!(large.exists());
    assert_eq!(entries(&sandbox).len(), 1);
}

#[test]
fn a_target_named_through_a_linked_folder_is_quarantined_from_its_real_folder() {
    let sandbox = Sandbox::new();
    let real = sandbox.write("real/inner/threat.com", eicar());
    // As `/bin -> usr/bin` on merged-/usr systems: the administrator names the path with a link.
    let linked = sandbox.root().join("linked");
    std::os::unix::fs::symlink(sandbox.corpus("real"), &linked).unwrap();
    let named = linked.join("inner/threat.com");
    let scan = sandbox.scan(&["custom", text(&named), "--action", "quarantine"]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let quarantined = scan.of_type("quarantined");
    assert_eq!(quarantined.len(), 1, "{:?}", scan.records);
    assert_eq!(
        quarantined[0]["path"],
        text(&real),
        "reported by its real path"
    );
    assert!(!real.exists());
}

#[test]
fn restore_to_a_path_named_through_a_linked_folder_lands_in_the_real_folder() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("eicar.com", eicar());
    sandbox.scan(&["custom", text(&path), "--action", "quarantine"]);
    let id = entries(&sandbox)[0]["id"].as_str().unwrap().to_string();
    // As `/bin -> usr/bin`: the administrator names the target through a link.
    let real = sandbox.corpus("real");
    std::fs::create_dir_all(&real).unwrap();
    let linked = sandbox.root().join("linked");
    std::os::unix::fs::symlink(&real, &linked).unwrap();
    let target = linked.join("back.com");
    let output = sandbox.run(&["quarantine", "restore", &id, "--to", text(&target)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(real.join("back.com")).unwrap(), eicar());
}

/// Three rules of different types and severities, each matching its own marker.
const RATED_RULES: &str = r#"
rule Rated_Low { meta: severity = "low" threat = "Packed:Linux/Marker" strings: $a = "LOW-MARKER-7f3a" condition: $a }
rule Rated_Medium { meta: severity = "medium" threat = "Obfuscated:JS/Marker" strings: $a = "MEDIUM-MARKER-7f3a" condition: $a }
rule Rated_High { meta: severity = "high" threat = "Backdoor:Linux/Marker" strings: $a = "HIGH-MARKER-7f3a" condition: $a }
"#;

/// Scans a fresh corpus of one file per rated rule with `config`; returns (file, action) for
/// each detection and the names of the files quarantined, both sorted.
fn rated_scan(config: &str) -> (Vec<(String, String)>, Vec<String>) {
    let sandbox = Sandbox::new();
    let rules = sandbox.write_outside("rated.yar", RATED_RULES);
    for level in ["LOW", "MEDIUM", "HIGH"] {
        sandbox.write(&format!("{level}.txt"), format!("x {level}-MARKER-7f3a x"));
    }
    sandbox.configure(config);
    let corpus = sandbox.corpus("");
    let scan = sandbox.scan(&["custom", text(&corpus), "--rules", text(&rules)]);
    assert!(scan.code == 0 || scan.code == 1, "{}", scan.stderr);
    let name = |record: &Value| {
        let path = PathBuf::from(record["path"].as_str().unwrap());
        path.file_name().unwrap().to_str().unwrap().to_string()
    };
    let mut actions: Vec<(String, String)> = scan
        .of_type("detection")
        .into_iter()
        .map(|r| (name(r), r["action"].as_str().unwrap().to_string()))
        .collect();
    actions.sort();
    let mut moved: Vec<String> = scan.of_type("quarantined").into_iter().map(name).collect();
    moved.sort();
    for file in &moved {
        assert!(
            !corpus.join(file).exists(),
            "{file} was reported quarantined but is still there"
        );
    }
    (actions, moved)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn by_default_quarantine_moves_only_high_severity_threats_and_audits_the_rest() {
    let (actions, moved) = rated_scan("[antivirus_engine]\nthreat_action = \"quarantine\"\n");
    assert_eq!(
        actions,
        pairs(&[
            ("HIGH.txt", "quarantine"),
            ("LOW.txt", "audit"),
            ("MEDIUM.txt", "audit")
        ])
    );
    assert_eq!(moved, ["HIGH.txt"]);
}

#[test]
fn threat_type_and_severity_settings_choose_the_action_and_off_allows() {
    // Report by default, but quarantine packed files; medium detections are turned off.
    let (actions, moved) = rated_scan(
        "[antivirus_engine.threat_type_settings]\npacked = \"quarantine\"\n\
         [antivirus_engine.severity_settings]\nmedium = \"off\"\n",
    );
    assert_eq!(
        actions,
        pairs(&[("HIGH.txt", "audit"), ("LOW.txt", "quarantine")])
    );
    assert_eq!(moved, ["LOW.txt"]);
    // Everything audited even with threat_action = quarantine.
    let (actions, moved) = rated_scan(
        "[antivirus_engine]\nthreat_action = \"quarantine\"\n\
         [antivirus_engine.severity_settings]\nhigh = \"audit\"\n",
    );
    assert!(
        actions.iter().all(|(_, action)| action == "audit"),
        "{actions:?}"
    );
    assert!(moved.is_empty());
}

#[test]
fn a_bad_action_setting_exits_2_naming_it() {
    let sandbox = Sandbox::new();
    sandbox.write("a.txt", "nothing");
    sandbox.configure("[antivirus_engine.severity_settings]\nlow = \"delete\"\n");
    let output = sandbox.run(&["scan", "custom", text(&sandbox.corpus(""))]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("line 2") && err.contains("delete"), "{err}");
}
