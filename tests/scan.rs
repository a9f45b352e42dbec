//! End-to-end behaviour of `vigil scan` on corpora generated in temporary folders: what is found,
//! what is skipped or reported as an error, and that nothing hangs or crashes.
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use common::{Sandbox, eicar, text};

#[test]
fn planted_threats_are_found_with_exact_paths_among_many_clean_files() {
    let sandbox = Sandbox::new();
    let mut planted = Vec::new();
    for dir in 0..20 {
        for file in 0..100 {
            let name = format!("d{dir}/nested/f{file}.txt");
            if (dir * 100 + file) % 397 == 0 {
                planted.push(sandbox.write(&name, eicar()));
            } else {
                sandbox.write(&name, format!("clean file {dir} {file}\n").repeat(file + 1));
            }
        }
    }
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus("")), "--threads", "4"]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let expected: Vec<(String, String)> = planted
        .iter()
        .map(|p| (text(p).to_string(), "eicar.EICAR_Test_File".to_string()))
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(scan.detections(), expected);
    let summary = scan.summary();
    assert_eq!(summary["files_scanned"], 2000);
    assert_eq!(summary["detections"], planted.len());
    assert_eq!(summary["infected_files"], planted.len());
    assert_eq!(summary["errors"], 0);
}

#[test]
fn clean_tree_exits_zero_and_text_output_has_a_summary() {
    let sandbox = Sandbox::new();
    sandbox.write("a.txt", "hello");
    sandbox.write("empty", "");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    assert_eq!(
        scan.summary()["files_scanned"],
        2,
        "the empty file is scanned too"
    );
    assert_eq!(scan.records.len(), 1);

    let output = sandbox
        .vigil()
        .args(["scan", "custom", text(&sandbox.corpus(""))])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("Scanned 2 files"), "{stdout}");
}

#[test]
fn special_files_are_skipped_without_blocking() {
    let sandbox = Sandbox::new();
    sandbox.write("eicar.com", eicar());
    let fifo = sandbox.corpus("fifo");
    let c_path = std::ffi::CString::new(text(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let socket = sandbox.corpus("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let link = sandbox.corpus("link-to-eicar");
    std::os::unix::fs::symlink(sandbox.corpus("eicar.com"), &link).unwrap();

    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert_eq!(
        scan.reason("skipped", &fifo).unwrap(),
        "not a regular file: named pipe (FIFO)"
    );
    assert_eq!(
        scan.reason("skipped", &socket).unwrap(),
        "not a regular file: socket"
    );
    assert_eq!(
        scan.reason("skipped", &link).unwrap(),
        "symbolic link (not followed)"
    );
    assert_eq!(
        scan.detections().len(),
        1,
        "the link's target is found once, at its own path"
    );

    // A FIFO named explicitly is skipped too, never opened for reading.
    let direct = sandbox.scan(&["custom", text(&fifo)]);
    assert_eq!(direct.code, 0);
    assert!(direct.reason("skipped", &fifo).is_some());
}

#[test]
fn symlink_loops_end_when_links_are_followed() {
    let sandbox = Sandbox::new();
    sandbox.write("dir/eicar.com", eicar());
    std::os::unix::fs::symlink(sandbox.corpus("dir"), sandbox.corpus("dir/loop")).unwrap();
    sandbox.configure("[filesystem_scanner]\nfollow_symlinks = true\n");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let reason = scan
        .reason("error", &sandbox.corpus("dir/loop"))
        .expect("the loop is reported");
    assert!(reason.contains("loop"), "{reason}");
    assert_eq!(scan.detections().len(), 1);
}

#[test]
fn unreadable_files_are_reported_as_errors() {
    let sandbox = Sandbox::new();
    let secret = sandbox.write("secret", eicar());
    sandbox.write("open.txt", "fine");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut command = sandbox.vigil();
    // Root reads anything: scan as an unprivileged user then.
    if unsafe { libc::geteuid() } == 0 {
        for path in [sandbox.corpus(""), sandbox.corpus("open.txt")] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        command.uid(65534).gid(65534);
    }
    let scan = sandbox.run_scan(command, &["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    assert_eq!(scan.reason("error", &secret).unwrap(), "permission denied");
    assert_eq!(scan.summary()["files_scanned"], 1);
}

#[test]
fn file_truncated_while_mapped_is_an_error_not_a_crash() {
    let sandbox = Sandbox::new();
    // Larger than the mmap threshold (1 MiB) so it is mapped; the fault hook truncates it after
    // mapping, as another process could.
    let big = sandbox.write("big.bin", vec![b'A'; 8 * 1024 * 1024]);
    sandbox.write("eicar.com", eicar());
    let mut command = sandbox.vigil();
    command.env("VIGIL_FAULT_TRUNCATE_MAPPED", "1");
    let scan = sandbox.run_scan(command, &["custom", text(&sandbox.corpus(""))]);
    assert_eq!(
        scan.code, 1,
        "the scan went on to the other file: {}",
        scan.stderr
    );
    let reason = scan
        .reason("error", &big)
        .expect("the truncated file is reported");
    assert!(
        reason.contains("shrank while it was being scanned"),
        "{reason}"
    );
    assert_eq!(scan.detections().len(), 1);
}

#[test]
fn files_rewritten_during_a_scan_never_crash_it() {
    // A real race: a thread truncates and regrows mapped files while they are scanned.
    let sandbox = Sandbox::new();
    let files: Vec<_> = (0..12)
        .map(|i| sandbox.write(&format!("big{i}.bin"), vec![b'x'; 4 * 1024 * 1024]))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (files, stop) = (files.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for file in &files {
                    let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
                    handle.set_len(0).unwrap();
                    handle.set_len(4 * 1024 * 1024).unwrap();
                }
            }
        })
    };
    for _ in 0..5 {
        let scan = sandbox.scan(&["custom", text(&sandbox.corpus("")), "--threads", "2"]);
        assert_eq!(scan.code, 0, "{}", scan.stderr);
        let summary = scan.summary();
        let accounted =
            summary["files_scanned"].as_u64().unwrap() + summary["errors"].as_u64().unwrap();
        assert!(
            accounted >= 12,
            "every file is scanned or reported: {summary}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
}

#[test]
fn files_over_the_size_limit_are_skipped_with_the_limit_named() {
    let sandbox = Sandbox::new();
    let large = sandbox.write("large.bin", vec![0u8; 10_000]);
    let small = sandbox.write("small.com", eicar());
    let scan = sandbox.scan(&[
        "custom",
        text(&sandbox.corpus("")),
        "--max-file-size",
        "5000",
    ]);
    assert_eq!(scan.code, 1);
    let reason = scan.reason("skipped", &large).unwrap();
    assert!(
        reason.contains("max_file_size") && reason.contains("10000"),
        "{reason}"
    );
    assert_eq!(
        scan.detections(),
        vec![(text(&small).to_string(), "eicar.EICAR_Test_File".into())]
    );

    sandbox.configure("[antivirus_engine]\nmax_file_size = 1000\n");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert!(scan.reason("skipped", &large).is_some());
}

#[test]
fn non_utf8_file_names_are_reported_exactly() {
    let sandbox = Sandbox::new();
    let name = OsStr::from_bytes(b"caf\xe9-\xff.com");
    let path = sandbox.corpus("").join(name);
    std::fs::write(&path, eicar()).unwrap();
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1);
    let detection = scan.of_type("detection")[0];
    let hex: String = path
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(detection["path_hex"], hex);
    assert!(
        detection["path"]
            .as_str()
            .unwrap()
            .ends_with("caf\u{fffd}-\u{fffd}.com")
    );
}

#[test]
fn a_missing_path_is_an_error_before_anything_is_scanned() {
    let sandbox = Sandbox::new();
    sandbox.write("eicar.com", eicar());
    let missing = sandbox.corpus("no-such-file");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus("")), text(&missing)]);
    assert_eq!(scan.code, 2);
    assert!(scan.stderr.contains("no-such-file"), "{}", scan.stderr);
    assert!(scan.records.is_empty(), "nothing was scanned");
}

#[test]
fn bad_configuration_exits_2_naming_key_and_line() {
    let sandbox = Sandbox::new();
    sandbox.configure("[antivirus_engine]\nmaximum_scan_threads = 2\nmax_filesize = 10\n");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 2);
    assert!(scan.stderr.contains("max_filesize"), "{}", scan.stderr);
    assert!(scan.stderr.contains("line 3"), "{}", scan.stderr);
    assert!(scan.stderr.contains("vigil.toml"), "{}", scan.stderr);

    sandbox.configure("[[antivirus_engine.exclusions]]\npath = \"relative/dir\"\n");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 2);
    assert!(scan.stderr.contains("exclusions[0]"), "{}", scan.stderr);
}

#[test]
fn bad_rules_exit_2_naming_file_and_line() {
    let sandbox = Sandbox::new();
    let rules = sandbox.root().join("broken.yar");
    std::fs::write(
        &rules,
        "rule fine { condition: true }\n\nrule broken {\n  condition: undefined_thing\n}\n",
    )
    .unwrap();
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus("")), "--rules", text(&rules)]);
    assert_eq!(scan.code, 2);
    assert!(
        scan.stderr.contains(&format!("{}:4:", rules.display())),
        "{}",
        scan.stderr
    );

    let scan = sandbox.scan(&[
        "custom",
        text(&sandbox.corpus("")),
        "--rules",
        "/no/such/rules",
    ]);
    assert_eq!(scan.code, 2);
    assert!(scan.stderr.contains("/no/such/rules"), "{}", scan.stderr);
}

#[test]
fn extra_rules_from_a_folder_are_used() {
    let sandbox = Sandbox::new();
    let rules = sandbox.root().join("rules");
    std::fs::create_dir_all(rules.join("nested")).unwrap();
    std::fs::write(
        rules.join("nested/marker.yar"),
        "rule Marker { meta: threat = \"Test:Any/Marker\" strings: $m = \"VIGIL-TEST-MARKER\" condition: $m }",
    )
    .unwrap();
    let marked = sandbox.write("marked.txt", "xx VIGIL-TEST-MARKER xx");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus("")), "--rules", text(&rules)]);
    assert_eq!(
        scan.detections(),
        vec![(text(&marked).to_string(), "marker.Marker".into())]
    );
    assert_eq!(scan.of_type("detection")[0]["threat"], "Test:Any/Marker");
}

#[test]
fn quick_scan_covers_the_configured_folders_with_globs() {
    let sandbox = Sandbox::new();
    let alice = sandbox.write("home/alice/Downloads/eicar.com", eicar());
    let bob = sandbox.write("home/bob/Downloads/eicar.com", eicar());
    sandbox.write("home/alice/Documents/eicar.com", eicar());
    let tmp = sandbox.write("tmp/eicar.com", eicar());
    sandbox.configure(&format!(
        "[filesystem_scanner]\nquick_scan_directories = [\"{}\", \"{}\", \"/nonexistent/folder\"]\n",
        text(&sandbox.corpus("home/*/Downloads")),
        text(&sandbox.corpus("tmp"))
    ));
    let scan = sandbox.scan(&["quick"]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let mut expected: Vec<_> = [alice, bob, tmp]
        .iter()
        .map(|p| (text(p).to_string(), "eicar.EICAR_Test_File".to_string()))
        .collect();
    expected.sort();
    assert_eq!(scan.detections(), expected);
}

#[test]
fn full_scan_walks_the_configured_root() {
    let sandbox = Sandbox::new();
    let deep = sandbox.write("a/b/c/d/eicar.com", eicar());
    sandbox.configure(&format!(
        "[filesystem_scanner]\nfull_scan_directory = \"{}\"\n",
        text(&sandbox.corpus(""))
    ));
    let scan = sandbox.scan(&["full"]);
    assert_eq!(
        scan.detections(),
        vec![(text(&deep).to_string(), "eicar.EICAR_Test_File".into())]
    );
}

#[test]
fn config_show_prints_the_effective_configuration() {
    let sandbox = Sandbox::new();
    sandbox.configure("[antivirus_engine]\nmaximum_scan_threads = 3\n");
    let output = sandbox.vigil().args(["config", "show"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("maximum_scan_threads = 3"), "{stdout}");
    assert!(stdout.contains("full_scan_directory = \"/\""), "{stdout}");
    assert!(stdout.contains("/home/*/Downloads"), "{stdout}");
}
