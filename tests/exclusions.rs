//! Exclusions through the configuration file and `vigil exclusion`, end to end.
#![allow(clippy::disallowed_methods)] // test code: paths in assertion messages, not output for people

mod common;

use common::{Sandbox, eicar, text};

/// A corpus with one EICAR file per exclusion kind, a FIFO inside the directory to exclude (a
/// walk into that directory would report it), and one file no exclusion covers.
fn corpus(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.write("excluded-dir/deep/eicar.com", eicar());
    let fifo = sandbox.corpus("excluded-dir/fifo");
    let c_path = std::ffi::CString::new(text(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    sandbox.write("exact-file.com", eicar());
    sandbox.write("image.ISO", eicar());
    sandbox.write("logs/app.log", eicar());
    sandbox.write("kept.com", eicar())
}

#[test]
fn configured_exclusions_are_neither_scanned_nor_walked() {
    let sandbox = Sandbox::new();
    let kept = corpus(&sandbox);
    sandbox.configure(&format!(
        "[[antivirus_engine.exclusions]]\npath = \"{}\"\nis_directory = true\n\
         [[antivirus_engine.exclusions]]\npath = \"{}\"\n\
         [[antivirus_engine.exclusions]]\nextension = \".iso\"\n\
         [[antivirus_engine.exclusions]]\nname = \"*.log\"\n",
        text(&sandbox.corpus("excluded-dir")),
        text(&sandbox.corpus("exact-file.com")),
    ));
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert_eq!(
        scan.detections(),
        vec![(text(&kept).to_string(), "eicar.EICAR_Test_File".into())]
    );
    assert!(
        !scan.mentions_under(&sandbox.corpus("excluded-dir")),
        "{:?}",
        scan.records
    );
    assert_eq!(scan.summary()["files_scanned"], 1);
}

#[test]
fn without_exclusions_the_same_corpus_is_all_found() {
    let sandbox = Sandbox::new();
    corpus(&sandbox);
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.detections().len(), 5);
    assert!(
        scan.reason("skipped", &sandbox.corpus("excluded-dir/fifo"))
            .is_some()
    );
}

#[test]
fn a_target_inside_an_excluded_directory_is_reported_as_skipped() {
    let sandbox = Sandbox::new();
    corpus(&sandbox);
    let target = sandbox.corpus("excluded-dir/deep");
    sandbox.configure(&format!(
        "[[antivirus_engine.exclusions]]\npath = \"{}/\"\nis_directory = true\n",
        text(&sandbox.corpus("excluded-dir"))
    ));
    let scan = sandbox.scan(&["custom", text(&target)]);
    assert_eq!(scan.code, 0);
    assert_eq!(scan.reason("skipped", &target).unwrap(), "excluded");
}

#[test]
fn cli_exclusions_persist_and_config_ones_are_managed() {
    let sandbox = Sandbox::new();
    let kept = corpus(&sandbox);
    sandbox.configure("[[antivirus_engine.exclusions]]\nname = \"*.log\"\n");
    let run = |args: &[&str]| {
        let output = sandbox
            .vigil()
            .arg("exclusion")
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let dir = sandbox.corpus("excluded-dir");
    let file = sandbox.corpus("exact-file.com");
    assert_eq!(run(&["add", "--path", text(&dir), "--directory"]).0, 0);
    assert_eq!(run(&["add", "--path", text(&file)]).0, 0);
    assert_eq!(run(&["add", "--extension", "iso"]).0, 0);
    let (code, stdout, _) = run(&["add", "--extension", "iso"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already present"), "{stdout}");

    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(
        scan.detections(),
        vec![(text(&kept).to_string(), "eicar.EICAR_Test_File".into())]
    );

    let (_, listing, _) = run(&["list"]);
    assert!(listing.contains("managed name *.log"), "{listing}");
    assert!(
        listing.contains(&format!("user    directory {}", dir.display())),
        "{listing}"
    );
    let (_, jsonl, _) = run(&["list", "--format", "jsonl"]);
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["source"], "managed");
    assert_eq!(first["name"], "*.log");

    let (code, _, stderr) = run(&["remove", "--name", "*.log"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("managed by the configuration file"),
        "{stderr}"
    );

    assert_eq!(run(&["remove", "--extension", ".iso"]).0, 0);
    let (code, _, stderr) = run(&["remove", "--extension", "iso"]);
    assert_eq!(code, 2, "already removed");
    assert!(stderr.contains("no stored exclusion"), "{stderr}");
    let scan = sandbox.scan(&["custom", text(&sandbox.corpus(""))]);
    assert_eq!(scan.detections().len(), 2, "the .ISO file is found again");

    let (code, _, stderr) = run(&["add", "--path", "relative/path"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not absolute"), "{stderr}");
}
