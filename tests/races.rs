//! The attacks of a local user who can write a scanned folder, against a scan, a restore and crash
//! recovery run by root: swapping a folder for a symbolic link between Vigil's check and its
//! action must never make Vigil remove or write a file outside the folder it scanned.
//!
//! Each race is made deterministic with a pause point (the `fault-injection` feature the tests
//! build with): Vigil stops right at the window, the test swaps, Vigil goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, eicar, stderr, text};
use serde_json::Value;

/// A running `vigil` held at a pause point.
struct Paused {
    child: Child,
    dir: tempfile::TempDir,
}

impl Paused {
    /// Starts `command` with a pause at `point` and waits until it is there.
    fn start(mut command: Command, point: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = command
            .env("VIGIL_FAULT_PAUSE_AT", point)
            .env("VIGIL_FAULT_PAUSE_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.path().join("paused").exists() {
            assert!(Instant::now() < deadline, "vigil never reached {point}");
            std::thread::sleep(Duration::from_millis(2));
        }
        Self { child, dir }
    }

    /// Lets it go on and waits for it to finish.
    fn resume(self) -> Output {
        std::fs::write(self.dir.path().join("resume"), "").unwrap();
        self.child.wait_with_output().unwrap()
    }
}

fn jsonl(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The attacker's layout: `corpus/x/d/passwd` is detected; `victim/passwd` is a file the
/// attacker may not touch (standing in for `/etc/passwd`). Returns (x, victim).
fn attack_layout(sandbox: &Sandbox) -> (PathBuf, PathBuf) {
    sandbox.write("x/d/passwd", eicar());
    let victim = sandbox.root().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    (sandbox.corpus("x"), victim)
}

/// `mv x/d x/d2 && ln -s victim x/d`
fn swap_for_link(x: &Path, victim: &Path) {
    std::fs::rename(x.join("d"), x.join("d2")).unwrap();
    std::os::unix::fs::symlink(victim, x.join("d")).unwrap();
}

fn assert_victim_intact(victim: &Path, context: &str) {
    assert_eq!(
        std::fs::read(victim.join("passwd")).ok().as_deref(),
        Some(&b"root:x:0:0::/root:/bin/sh\n"[..]),
        "{context}: the victim outside the scanned folder was touched"
    );
}

#[test]
fn quarantine_never_follows_a_folder_swapped_for_a_link() {
    // The swap comes after the file is opened (so the scan reads the real file), after the
    // checks before the copy, or between the copy and the unlink: 21 races in all.
    let points = [
        "scan: object opened",
        "quarantine: before copy",
        "quarantine: before unlink",
    ];
    for round in 0..21 {
        let point = points[round % points.len()];
        let context = format!("round {round}, swap at {point}");
        let sandbox = Sandbox::new();
        let (x, victim) = attack_layout(&sandbox);
        let mut command = sandbox.vigil();
        command.args([
            "scan",
            "custom",
            text(&x),
            "--action",
            "quarantine",
            "--format",
            "jsonl",
        ]);
        let paused = Paused::start(command, point);
        swap_for_link(&x, &victim);
        let output = paused.resume();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{context}: {}",
            stderr(&output)
        );
        assert_victim_intact(&victim, &context);

        let records = jsonl(&output);
        let quarantined = records.iter().any(|r| r["type"] == "quarantined");
        let real = x.join("d2/passwd");
        if point == "scan: object opened" {
            // The folder is a link by the time Vigil acts: nothing is done, and it says so.
            assert!(!quarantined, "{context}: {records:?}");
            let error = records
                .iter()
                .find(|r| r["type"] == "error")
                .unwrap_or_else(|| panic!("{context}: no error record: {records:?}"));
            let reason = error["reason"].as_str().unwrap();
            assert!(
                reason.contains("left in place") && reason.contains("symbolic link"),
                "{context}: {reason}"
            );
            assert_eq!(std::fs::read(&real).unwrap(), eicar(), "{context}");
        } else {
            // The folder was opened before the swap: the file is removed from its real folder.
            assert!(quarantined, "{context}: {records:?}");
            assert!(
                !real.exists(),
                "{context}: quarantined from its real folder"
            );
        }
    }
}

/// Quarantines `corpus/x/d/evil` and returns its vault id.
fn quarantined_evil(sandbox: &Sandbox) -> (PathBuf, String) {
    sandbox.write("x/d/evil", eicar());
    let scan = sandbox.scan(&[
        "custom",
        text(&sandbox.corpus("x")),
        "--action",
        "quarantine",
    ]);
    let id = scan.of_type("quarantined")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (sandbox.corpus("x"), id)
}

#[test]
fn restore_never_writes_through_a_folder_swapped_for_a_link() {
    for round in 0..20 {
        let sandbox = Sandbox::new();
        let (x, id) = quarantined_evil(&sandbox);
        // Standing in for /etc/profile.d: a folder root trusts.
        let trusted = sandbox.root().join("profile.d");
        std::fs::create_dir(&trusted).unwrap();
        let mut restore = sandbox.vigil();
        restore.args(["quarantine", "restore", &id]);
        if round % 2 == 0 {
            // Swapped before the restore runs: refused, nothing written anywhere.
            swap_for_link(&x, &trusted);
            let output = restore.output().unwrap();
            assert_eq!(output.status.code(), Some(2), "round {round}");
            assert!(
                stderr(&output).contains("symbolic link"),
                "round {round}: {}",
                stderr(&output)
            );
            assert!(!x.join("d2/evil").exists(), "round {round}");
        } else {
            // Swapped after the folder was opened: written into the real folder only.
            let paused = Paused::start(restore, "restore: before create");
            swap_for_link(&x, &trusted);
            let output = paused.resume();
            assert_eq!(
                output.status.code(),
                Some(0),
                "round {round}: {}",
                stderr(&output)
            );
            assert_eq!(std::fs::read(x.join("d2/evil")).unwrap(), eicar());
        }
        let written: Vec<_> = std::fs::read_dir(&trusted).unwrap().collect();
        assert!(
            written.is_empty(),
            "round {round}: wrote into the link's target"
        );
    }
}

#[test]
fn recovery_after_kill_never_follows_a_folder_swapped_for_a_link() {
    for round in 0..20 {
        let context = format!("round {round}");
        let sandbox = Sandbox::new();
        // Make the vault (and its key) first, so the kill points count from the quarantine.
        assert_eq!(sandbox.run(&["quarantine", "list"]).status.code(), Some(0));
        sandbox.write("x/d/evil", eicar());
        let x = sandbox.corpus("x");
        // A victim with the very same bytes: recovery matches content, so only the folder
        // check can tell them apart.
        let victim = sandbox.root().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("evil"), eicar()).unwrap();
        // Killed after the row is stored (before the unlink) or after the vault copy is
        // renamed: points 3 and 2 of a quarantine.
        let kill_at = if round % 2 == 0 { "3" } else { "2" };
        let output = sandbox
            .vigil()
            .args(["scan", "custom", text(&x), "--action", "quarantine"])
            .env("VIGIL_FAULT_KILL_AT", kill_at)
            .output()
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&output.status),
            Some(libc::SIGKILL),
            "{context}: {}",
            stderr(&output)
        );
        std::fs::rename(x.join("d"), x.join("d2")).unwrap();
        std::os::unix::fs::symlink(&victim, x.join("d")).unwrap();
        // Any command that opens the vault recovers.
        let list = sandbox.run(&["quarantine", "list", "--format", "jsonl"]);
        assert_eq!(list.status.code(), Some(0), "{context}: {}", stderr(&list));
        assert_eq!(
            std::fs::read(victim.join("evil")).ok(),
            Some(eicar()),
            "{context}: recovery removed a file through the link"
        );
        // The original is still whole in its real folder, and nothing was lost.
        assert_eq!(
            std::fs::read(x.join("d2/evil")).unwrap(),
            eicar(),
            "{context}"
        );
    }
}
