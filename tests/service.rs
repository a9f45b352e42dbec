//! The resident service (`vigil daemon`): a real daemon on a real socket, real fanotify marks.
//!
//! Each test runs its daemon under a watchdog (killed after [`WATCHDOG`] whatever happens) on a
//! socket in its own sandbox, and marks only its own temporary folders, so a hung daemon can
//! never freeze the machine. Real-time and peer-credential tests need root (CI runs as root);
//! they say so and pass over the part they cannot do otherwise.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Sandbox, eicar, text};
use serde_json::Value;

/// The longest any test's daemon may live.
const WATCHDOG: Duration = Duration::from_secs(180);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A daemon started for a sandbox, killed by a watchdog or when dropped.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
    alive: Arc<AtomicBool>,
    pause_dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Configures the sandbox with its own socket (plus `extra` TOML) and starts the daemon.
    fn start(sandbox: &Sandbox, extra: &str) -> Self {
        Self::start_with(sandbox, extra, None)
    }

    /// Like [`Daemon::start`], with the daemon pausing at the test hook `pause_at`.
    fn start_with(sandbox: &Sandbox, extra: &str, pause_at: Option<&str>) -> Self {
        let socket = sandbox.root().join("vigil.sock");
        sandbox.configure(&format!(
            "[service]\nsocket = \"{}\"\n{extra}",
            text(&socket)
        ));
        Self::spawn(sandbox, socket, pause_at)
    }

    fn spawn(sandbox: &Sandbox, socket: PathBuf, pause_at: Option<&str>) -> Self {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let number = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = sandbox.root().join(format!("daemon-{number}.log"));
        let mut command = sandbox.vigil();
        command
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let pause_dir = pause_at.map(|point| {
            let dir = tempfile::tempdir().unwrap();
            command
                .env("VIGIL_FAULT_PAUSE_AT", point)
                .env("VIGIL_FAULT_PAUSE_DIR", dir.path());
            dir
        });
        let child = command.spawn().unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        {
            let (alive, pid) = (alive.clone(), child.id() as i32);
            std::thread::spawn(move || {
                let started = Instant::now();
                while started.elapsed() < WATCHDOG {
                    if !alive.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // SAFETY: plain system call; the pid is our child's.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            });
        }
        let daemon = Self {
            child: Some(child),
            socket,
            log,
            alive,
            pause_dir,
        };
        daemon.wait_until_listening();
        daemon
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log_text().contains("listening on") {
            assert!(
                Instant::now() < deadline,
                "the daemon did not start: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn signal(&self, signal: i32) {
        // SAFETY: plain system call; the pid is our child's.
        unsafe { libc::kill(self.pid(), signal) };
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the daemon to exit and returns its status.
    fn wait(&mut self) -> std::process::ExitStatus {
        let status = self.child.as_mut().unwrap().wait().unwrap();
        self.alive.store(false, Ordering::Relaxed);
        self.child = None;
        status
    }

    /// Waits until the daemon pauses at its hook.
    fn wait_paused(&self) {
        let dir = self.pause_dir.as_ref().expect("started with a pause");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.path().join("paused").exists() {
            assert!(Instant::now() < deadline, "the daemon never paused");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a paused daemon go on.
    fn resume(&self) {
        let dir = self.pause_dir.as_ref().expect("started with a pause");
        let _ = std::fs::remove_file(dir.path().join("paused"));
        std::fs::write(dir.path().join("resume"), "").unwrap();
    }

    /// `vigil statistics --format jsonl`.
    fn statistics(&self, sandbox: &Sandbox) -> Value {
        let output = sandbox.run(&["statistics", "--format", "jsonl"]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // SAFETY: plain system call; the pid is our child's.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
        self.alive.store(false, Ordering::Relaxed);
    }
}

/// Writes one protocol frame.
fn send_frame(stream: &mut UnixStream, body: &[u8]) {
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
}

/// Reads one protocol frame (None when the daemon closed the connection).
fn read_frame(stream: &mut UnixStream) -> Option<Value> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut body).unwrap();
    Some(serde_json::from_slice(&body).unwrap())
}

/// The JSON lines of a command's output, without the summary's timing and cache counters (which
/// differ between two runs of the same scan).
fn comparable(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            if let Some(object) = value.as_object_mut() {
                for key in [
                    "duration_ms",
                    "cache_hits",
                    "file_hash_hits",
                    "bytes_scanned",
                ] {
                    object.remove(key);
                }
            }
            value
        })
        .collect()
}

#[test]
fn scans_through_the_service_print_what_in_process_scans_print_and_sigterm_stops_it() {
    let sandbox = Sandbox::new();
    sandbox.write("a/eicar.com", eicar());
    sandbox.write("a/clean.txt", "nothing to see");
    sandbox.write("b/dropper.js", common::encoded_dropper_js());
    let corpus = sandbox.corpus("");
    let mut daemon = Daemon::start(
        &sandbox,
        &format!(
            "[filesystem_scanner]\nquick_scan_directories = [\"{}\"]\n",
            text(&corpus)
        ),
    );
    let args = [
        "scan",
        "custom",
        text(&corpus),
        "--threads",
        "1",
        "--format",
        "jsonl",
    ];
    let through = sandbox.run(&args);
    let mut local = sandbox.vigil();
    let local = local.arg("--no-daemon").args(args).output().unwrap();
    assert_eq!(
        through.status.code(),
        Some(1),
        "{}",
        common::stderr(&through)
    );
    assert_eq!(local.status.code(), Some(1));
    assert_eq!(comparable(&through), comparable(&local));
    let text_scan = sandbox.run(&["scan", "custom", text(&corpus)]);
    assert!(
        String::from_utf8_lossy(&text_scan.stdout).contains("DETECTED"),
        "text output comes through too"
    );
    // A target that does not exist is the same error, with the same exit code.
    let missing = sandbox.run(&["scan", "custom", text(&sandbox.corpus("nowhere"))]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(common::stderr(&missing).contains("scan not started"));

    // A quick scan through the service is what health reports as the last one.
    let quick = sandbox.run(&["scan", "quick"]);
    assert_eq!(quick.status.code(), Some(1), "{}", common::stderr(&quick));
    let statistics = daemon.statistics(&sandbox);
    assert!(statistics["ipc"]["requests"].as_u64().unwrap() >= 5);
    assert_eq!(statistics["ipc"]["bad_messages"], 0);
    let health = sandbox.run(&["health", "--format", "jsonl"]);
    let health: Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(health["service_running"], true);
    assert!(health["service_up_since"].as_i64().unwrap() > 0);
    assert_eq!(health["definitions_status"], "up_to_date");
    assert_eq!(health["real_time_protection_enabled"], false);
    assert!(health["last_quick_scan"].as_i64().unwrap() > 0, "{health}");
    assert_eq!(health["last_full_scan"], Value::Null);
    let field = sandbox.run(&["health", "--field", "service_running"]);
    assert_eq!(String::from_utf8_lossy(&field.stdout).trim(), "true");

    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait().success(), "{}", daemon.log_text());
    assert!(!daemon.socket.exists(), "the socket is removed");
    // The service saved its caches on the way out, and kept the last scan's record of them.
    let cache = sandbox.run(&["cache", "status", "--format", "jsonl"]);
    let last_scan = String::from_utf8_lossy(&cache.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|record| record["type"] == "last_scan")
        .expect("a last-scan record");
    assert!(last_scan["files"].as_u64().unwrap() > 0, "{last_scan}");
    let after = sandbox.run(&["health", "--format", "jsonl"]);
    let after: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(after["service_running"], false);
    assert_eq!(after["healthy"], false);
}

#[test]
fn two_hundred_concurrent_clients_all_get_their_answer() {
    let sandbox = Sandbox::new();
    let infected = sandbox.write("eicar.com", eicar());
    let clean = sandbox.write("clean.txt", "clean");
    let _daemon = Daemon::start(&sandbox, "");
    let clients: Vec<(bool, Child)> = (0..200)
        .map(|index| {
            let target = if index % 2 == 0 { &infected } else { &clean };
            let mut command = sandbox.vigil();
            command
                .args(["scan", "custom", text(target), "--format", "jsonl"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if is_root() && index % 3 == 1 {
                // Some as another user, passing descriptors.
                command.uid(65534).gid(65534);
            }
            (index % 2 == 0, command.spawn().unwrap())
        })
        .collect();
    for (infected, child) in clients {
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(if infected { 1 } else { 0 }),
            "{}",
            common::stderr(&output)
        );
        let records = comparable(&output);
        let summary = records.last().expect("a summary");
        assert_eq!(summary["files_scanned"], 1);
        assert_eq!(summary["detections"], u64::from(infected));
    }
    let statistics = _daemon.statistics(&sandbox);
    assert!(statistics["ipc"]["connections_accepted"].as_u64().unwrap() >= 200);
}

#[test]
fn another_user_may_scan_only_descriptors_it_passes_and_no_admin_request() {
    if !is_root() {
        eprintln!("needs root to act as another user; passed over");
        return;
    }
    let sandbox = Sandbox::new();
    let readable = sandbox.write("readable/eicar.com", eicar());
    let secret = sandbox.write("secret/eicar.com", eicar());
    std::fs::set_permissions(
        secret.parent().unwrap(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let daemon = Daemon::start(&sandbox, "admin_group = \"vigil-test-no-such-group\"\n");
    let as_nobody = |args: &[&str]| {
        let mut command = sandbox.vigil();
        command.uid(65534).gid(65534).args(args);
        command.output().unwrap()
    };
    // What it can open itself is scanned through the descriptor it passes.
    let scan = as_nobody(&[
        "scan",
        "custom",
        text(&sandbox.corpus("")),
        "--format",
        "jsonl",
    ]);
    assert_eq!(scan.status.code(), Some(1), "{}", common::stderr(&scan));
    let records = comparable(&scan);
    let detected: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "detection")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(detected, [text(&readable)]);
    // What it cannot open, the service (root) does not open for it.
    let denied = records
        .iter()
        .find(|r| r["type"] == "error")
        .expect("the folder it cannot read is an error");
    assert_eq!(denied["path"], text(secret.parent().unwrap()));

    // Administrator requests are refused and counted.
    let refused = as_nobody(&["config", "passive-mode", "--value", "enabled"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        common::stderr(&refused).contains("admin group"),
        "{}",
        common::stderr(&refused)
    );
    let statistics = daemon.statistics(&sandbox);
    assert_eq!(statistics["ipc"]["unauthorized"], 1);
    assert!(
        daemon
            .log_text()
            .contains("refused changing settings to uid 65534")
    );
    let config = sandbox.run(&["config", "show"]);
    assert!(
        String::from_utf8_lossy(&config.stdout).contains("passive_mode = false"),
        "the setting is unchanged"
    );
}

#[test]
fn malformed_and_oversized_messages_get_an_error_and_are_counted() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, "max_message_size = 4096\n");
    let mut stream = UnixStream::connect(&daemon.socket).unwrap();
    for body in [
        &b"{not json"[..],
        br#"{"protocol":1,"op":"format_disk"}"#,
        br#"{"protocol":99,"op":"hello"}"#,
        br#"{"protocol":1,"op":"descriptor","name":"/etc/shadow"}"#,
    ] {
        send_frame(&mut stream, body);
        let reply = read_frame(&mut stream).expect("an answer");
        assert_eq!(reply["reply"], "error", "{reply}");
    }
    // The connection still works after bad requests.
    send_frame(&mut stream, br#"{"protocol":1,"op":"hello"}"#);
    assert_eq!(read_frame(&mut stream).unwrap()["reply"], "hello");
    // Over the limit: refused before it is read, and the connection is closed.
    stream.write_all(&100_000u32.to_be_bytes()).unwrap();
    let reply = read_frame(&mut stream).expect("an answer");
    assert_eq!(reply["code"], "too_large");
    assert!(read_frame(&mut stream).is_none(), "closed");
    // A client that connects and sends half a header, then goes, breaks nothing.
    let mut half = UnixStream::connect(&daemon.socket).unwrap();
    half.write_all(&[0, 0]).unwrap();
    drop(half);
    let statistics = daemon.statistics(&sandbox);
    assert_eq!(statistics["ipc"]["bad_messages"], 4, "{statistics}");
    let scan = sandbox.scan(&["custom", text(&sandbox.write("eicar.com", eicar()))]);
    assert_eq!(scan.code, 1, "the daemon still scans: {}", scan.stderr);
}

#[test]
fn a_reload_during_a_scan_lets_the_scan_finish_on_the_old_definitions() {
    let sandbox = Sandbox::new();
    sandbox.write("eicar.com", eicar());
    let daemon = Daemon::start_with(&sandbox, "", Some("scan: object opened"));
    let scan = sandbox
        .vigil()
        .args([
            "scan",
            "custom",
            text(&sandbox.corpus("")),
            "--format",
            "jsonl",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    daemon.wait_paused();
    // An exclusion added now reaches the service as a reload; the paused scan keeps its engine.
    let added = sandbox.run(&["exclusion", "add", "--extension", "com"]);
    assert!(added.status.success(), "{}", common::stderr(&added));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log_text().contains("generation 2") {
        assert!(
            Instant::now() < deadline,
            "no reload: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.resume();
    let output = scan.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "the scan that started before still detects"
    );
    // The next scan uses the new generation: the file is excluded (so the walk opens nothing
    // and never reaches the pause).
    let after = sandbox.run(&[
        "scan",
        "custom",
        text(&sandbox.corpus("")),
        "--format",
        "jsonl",
    ]);
    assert_eq!(after.status.code(), Some(0), "excluded after the reload");
    // SIGHUP reloads too.
    daemon.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log_text().contains("generation 3") {
        assert!(
            Instant::now() < deadline,
            "no reload: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_daemon_killed_mid_request_leaves_clients_an_error_and_restarts_with_its_state() {
    let sandbox = Sandbox::new();
    let infected = sandbox.write("eicar.com", eicar());
    let mut daemon = Daemon::start_with(&sandbox, "", Some("scan: object opened"));
    let exclusion = sandbox.run(&["exclusion", "add", "--name", "kept-*.txt"]);
    assert!(exclusion.status.success());
    // A request in flight when the daemon dies gets an error, not a hang.
    let socket = daemon.socket.clone();
    let client = sandbox
        .vigil()
        .args(["scan", "custom", text(&infected)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    daemon.wait_paused();
    daemon.signal(libc::SIGKILL);
    daemon.wait();
    let started = Instant::now();
    let output = client.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the client did not hang"
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        common::stderr(&output).contains("service"),
        "{}",
        common::stderr(&output)
    );
    // Restarted over the stale socket, with its state: the exclusion is still there.
    assert!(socket.exists(), "a killed daemon leaves its socket behind");
    let again = Daemon::spawn(&sandbox, socket, None);
    let list = sandbox.run(&["exclusion", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("kept-*.txt"));
    let scan = sandbox.scan(&["custom", text(&infected)]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert_eq!(
        std::fs::read(&infected).unwrap(),
        eicar(),
        "the user's file is intact"
    );
    drop(again);
}

/// The sandbox's `watch` folder: the only one real-time protection marks.
fn watched(sandbox: &Sandbox) -> PathBuf {
    let watch = sandbox.corpus("watch");
    std::fs::create_dir_all(&watch).unwrap();
    watch
}

fn real_time_config(watch: &Path, passive: bool, extra: &str) -> String {
    format!(
        "[antivirus_engine]\nenable_real_time_protection = true\npassive_mode = {passive}\n[real_time]\npaths = [\"{}\"]\n{extra}",
        text(watch)
    )
}

/// Waits until `check` holds, for at most `limit`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `cat` could open and read `path`.
fn cat_opens(path: &Path) -> bool {
    Command::new("cat")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn threat_history(sandbox: &Sandbox) -> String {
    String::from_utf8_lossy(&sandbox.run(&["threat", "list"]).stdout).into_owned()
}

#[test]
fn real_time_protection_blocks_a_detected_file_and_lets_a_clean_one_open() {
    if !is_root() {
        eprintln!("fanotify needs root; passed over");
        return;
    }
    let sandbox = Sandbox::new();
    let watch = watched(&sandbox);
    let daemon = Daemon::start(&sandbox, &real_time_config(&watch, false, ""));
    assert!(
        daemon
            .log_text()
            .contains("real-time protection on (blocking mode")
    );
    // Written into the watched folder: detected on close, within a bounded time.
    let infected = watch.join("eicar.com");
    std::fs::write(&infected, eicar()).unwrap();
    eventually(Duration::from_secs(10), "the new file is detected", || {
        threat_history(&sandbox).contains("eicar.com")
    });
    assert!(
        daemon
            .log_text()
            .contains("real-time: threat Virus:DOS/EICAR_Test_File")
    );
    let clean = watch.join("clean.txt");
    std::fs::write(&clean, "clean").unwrap();
    // `cat` of the detected file is denied (fanotify's denial is EPERM); a clean one opens.
    let denied = Command::new("cat").arg(&infected).output().unwrap();
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Operation not permitted"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let opened = Command::new("cat").arg(&clean).output().unwrap();
    assert_eq!(opened.stdout, b"clean");
    let statistics = daemon.statistics(&sandbox);
    let open = &statistics["real_time"]["events"]["open"];
    assert!(open["denied"].as_u64().unwrap() >= 1, "{statistics}");
    assert_eq!(open["missed_deadline"], 0);
    let health: Value =
        serde_json::from_slice(&sandbox.run(&["health", "--format", "jsonl"]).stdout).unwrap();
    assert_eq!(health["real_time_protection_available"], true, "{health}");
    assert_eq!(health["healthy"], true, "{health}");
    // A folder made after protection started is watched too, with what it already holds by
    // the time it is marked; entry events are counted by kind.
    let nested = watch.join("new/deeper");
    std::fs::create_dir_all(&nested).unwrap();
    eventually(
        Duration::from_secs(10),
        "the new folders are marked",
        || {
            daemon.statistics(&sandbox)["real_time"]["marks"]
                .as_u64()
                .unwrap()
                >= 3
        },
    );
    let dropped = nested.join("dropped.com");
    std::fs::write(&dropped, eicar()).unwrap();
    eventually(
        Duration::from_secs(10),
        "detected in the new folder",
        || threat_history(&sandbox).contains("dropped.com"),
    );
    assert!(!cat_opens(&dropped));
    std::fs::rename(&clean, watch.join("renamed.txt")).unwrap();
    std::fs::remove_file(watch.join("renamed.txt")).unwrap();
    eventually(Duration::from_secs(10), "entry events counted", || {
        let events = &daemon.statistics(&sandbox)["real_time"]["events"];
        events["create"]["received"].as_u64().unwrap() >= 3
            && events["move"]["received"].as_u64().unwrap() >= 1
            && events["remove"]["received"].as_u64().unwrap() >= 1
    });
    // Outside the watched folder nothing is blocked.
    let outside = sandbox.write("elsewhere/eicar.com", eicar());
    assert!(cat_opens(&outside));
}

#[test]
fn passive_mode_reports_and_never_blocks_and_can_be_switched_at_run_time() {
    if !is_root() {
        eprintln!("fanotify needs root; passed over");
        return;
    }
    let sandbox = Sandbox::new();
    let watch = watched(&sandbox);
    let daemon = Daemon::start(&sandbox, &real_time_config(&watch, true, ""));
    assert!(daemon.log_text().contains("passive mode"));
    let infected = watch.join("eicar.com");
    std::fs::write(&infected, eicar()).unwrap();
    eventually(Duration::from_secs(10), "reported in passive mode", || {
        daemon.log_text().contains("(passive mode: not blocked)")
    });
    assert!(cat_opens(&infected));
    assert_eq!(std::fs::read(&infected).unwrap(), eicar(), "never acted on");
    // Switched to blocking at run time through the managed settings.
    let switched = sandbox.run(&["config", "passive-mode", "--value", "disabled"]);
    assert!(switched.status.success(), "{}", common::stderr(&switched));
    eventually(
        Duration::from_secs(10),
        "restarted in blocking mode",
        || daemon.log_text().contains("blocking mode"),
    );
    assert!(!cat_opens(&infected));
    let shown = sandbox.run(&["config", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("passive_mode = false"));
    // Turned off entirely: opens are no longer checked.
    let off = sandbox.run(&["config", "real-time-protection", "--value", "disabled"]);
    assert!(off.status.success());
    eventually(Duration::from_secs(10), "stopped", || {
        daemon.log_text().contains("real-time protection off")
    });
    assert!(cat_opens(&infected));
}

#[test]
fn a_slow_scan_is_answered_allow_at_its_deadline_and_counted() {
    if !is_root() {
        eprintln!("fanotify needs root; passed over");
        return;
    }
    let sandbox = Sandbox::new();
    let watch = watched(&sandbox);
    let clean = watch.join("slow.txt");
    std::fs::write(&clean, "clean but slow").unwrap();
    let config = real_time_config(&watch, false, "deadline_ms = 200\n");
    let daemon = Daemon::start_with(&sandbox, &config, Some("scan_file: object opened"));
    let started = Instant::now();
    let opened = Command::new("cat").arg(&clean).output().unwrap();
    let waited = started.elapsed();
    assert_eq!(opened.stdout, b"clean but slow");
    assert!(
        waited >= Duration::from_millis(150),
        "{waited:?}: the scan was paused"
    );
    assert!(
        waited < Duration::from_secs(5),
        "{waited:?}: answered at the deadline"
    );
    daemon.resume();
    let statistics = daemon.statistics(&sandbox);
    assert!(
        statistics["real_time"]["events"]["open"]["missed_deadline"]
            .as_u64()
            .unwrap()
            >= 1,
        "{statistics}"
    );
}

#[test]
fn process_and_path_exclusions_let_files_through() {
    if !is_root() {
        eprintln!("fanotify needs root; passed over");
        return;
    }
    let sandbox = Sandbox::new();
    let watch = watched(&sandbox);
    let infected = watch.join("eicar.com");
    let excluded = watch.join("eicar.skip");
    std::fs::write(&infected, eicar()).unwrap();
    std::fs::write(&excluded, eicar()).unwrap();
    // `tail` is excluded as a process; `cat` is not.
    let tail = std::fs::canonicalize(which("tail")).unwrap();
    let config = real_time_config(
        &watch,
        false,
        &format!(
            "process_exclusions = [\"{}\"]\n[[antivirus_engine.exclusions]]\nextension = \"skip\"\n",
            text(&tail)
        ),
    );
    let _daemon = Daemon::start(&sandbox, &config);
    assert!(!cat_opens(&infected));
    assert!(
        Command::new(&tail)
            .arg(&infected)
            .status()
            .unwrap()
            .success()
    );
    assert!(cat_opens(&excluded));
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|path| path.exists())
        })
        .unwrap_or_else(|| panic!("{program} not found"))
}

#[test]
fn managed_settings_take_precedence_over_the_configuration_file() {
    let sandbox = Sandbox::new();
    sandbox.configure(
        "[antivirus_engine]\nenable_real_time_protection = false\npassive_mode = true\n",
    );
    let set = sandbox.run(&["config", "real-time-protection", "--value", "enabled"]);
    assert!(set.status.success(), "{}", common::stderr(&set));
    let shown = String::from_utf8_lossy(&sandbox.run(&["config", "show"]).stdout).into_owned();
    assert!(
        shown.contains("enable_real_time_protection = true"),
        "{shown}"
    );
    assert!(
        shown.contains("passive_mode = true"),
        "the file's other keys stand"
    );
    assert!(shown.contains("managed_settings.toml"), "{shown}");
    // A damaged managed settings file is an error naming it, and changes nothing.
    std::fs::write(
        sandbox.state_dir().join("managed_settings.toml"),
        "[antivirus_engine]\npassive_mode = 3\n",
    )
    .unwrap();
    let bad = sandbox.run(&["config", "show"]);
    assert_eq!(bad.status.code(), Some(2));
    let message = common::stderr(&bad);
    assert!(
        message.contains("managed_settings.toml") && message.contains("line 2"),
        "{message}"
    );
}

#[test]
fn real_time_detections_follow_threat_action_and_passive_mode_never_acts() {
    if !is_root() {
        eprintln!("fanotify needs root; passed over");
        return;
    }
    for passive in [false, true] {
        let sandbox = Sandbox::new();
        let watch = watched(&sandbox);
        let config = format!(
            "{}\n",
            real_time_config(&watch, passive, "").replace(
                "[antivirus_engine]\n",
                "[antivirus_engine]\nthreat_action = \"quarantine\"\n"
            )
        );
        let daemon = Daemon::start(&sandbox, &config);
        let infected = watch.join("dropped.com");
        std::fs::write(&infected, eicar()).unwrap();
        eventually(Duration::from_secs(10), "detected", || {
            daemon.log_text().contains("real-time: threat")
        });
        let list =
            || String::from_utf8_lossy(&sandbox.run(&["quarantine", "list"]).stdout).into_owned();
        if passive {
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(
                std::fs::read(&infected).unwrap(),
                eicar(),
                "passive mode never acts"
            );
            assert!(!list().contains("dropped.com"));
        } else {
            eventually(Duration::from_secs(10), "quarantined", || {
                !infected.exists()
            });
            assert!(list().contains("dropped.com"), "{}", list());
        }
    }
}

#[test]
fn the_service_installs_updates_from_its_channel_when_checking_automatically() {
    let sandbox = Sandbox::new();
    let (key, public_line) = common::trusted_publisher_key(&sandbox);
    let installed: Value = serde_json::from_slice(
        &sandbox
            .run(&["definitions", "status", "--format", "jsonl"])
            .stdout,
    )
    .unwrap();
    let next = installed["version"].as_u64().unwrap() + 1;
    let rules = sandbox.root().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("marker.yar"),
        "rule auto_update_marker { strings: $a = \"VIGIL-AUTO-UPDATE-MARKER\" condition: $a }\n",
    )
    .unwrap();
    let drop = sandbox.root().join("next.drop");
    let served = sandbox.root().join("served");
    for args in [
        vec![
            "definitions",
            "build",
            "--key",
            text(&key),
            "--version",
            &next.to_string(),
            "--out",
            text(&drop),
            text(&rules),
        ],
        vec![
            "definitions",
            "publish",
            text(&drop),
            "--key",
            text(&key),
            "--out",
            text(&served),
        ],
    ] {
        let output = sandbox.run(&args);
        assert!(output.status.success(), "{}", common::stderr(&output));
    }
    let daemon = Daemon::start(
        &sandbox,
        &format!(
            "[definitions]\ntrusted_keys = [\"{public_line}\"]\n[updates]\nhow_to_check = \"automatic\"\nmanifest_server = \"file://{}\"\n",
            text(&served)
        ),
    );
    eventually(Duration::from_secs(30), "installed and reloaded", || {
        daemon.log_text().contains(&format!(
            "automatic update: installed definitions version {next}"
        )) && daemon.log_text().contains("generation 2")
    });
    let health: Value =
        serde_json::from_slice(&sandbox.run(&["health", "--format", "jsonl"]).stdout).unwrap();
    assert_eq!(health["definitions_version"], next);
    let marked = sandbox.write("marked.txt", "VIGIL-AUTO-UPDATE-MARKER");
    assert_eq!(
        sandbox.scan(&["custom", text(&marked)]).code,
        1,
        "the new rules are in force"
    );
}

#[test]
fn a_reply_over_the_clients_limit_is_an_error_not_a_partial_output() {
    let sandbox = Sandbox::new();
    sandbox.write("eicar.com", eicar());
    let _daemon = Daemon::start(&sandbox, "max_reply_size = 1024\n");
    // A SARIF document is one reply, larger than 1 KiB.
    let scan = sandbox.run(&[
        "scan",
        "custom",
        text(&sandbox.corpus("")),
        "--format",
        "sarif",
    ]);
    assert_eq!(scan.status.code(), Some(2));
    assert!(scan.stdout.is_empty(), "nothing half-printed");
    assert!(
        common::stderr(&scan).contains("over the limit of 1024"),
        "{}",
        common::stderr(&scan)
    );
}
