//! A new plugin author's path, for real: `vigil plugin new` → `cargo build --release` →
//! `vigil plugin test`, and the harness route (`cargo test-host`), on the scaffold the
//! templates in `sdk/template/` make. The nested builds share one target folder
//! (`target/authoring`), so a rerun is incremental.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{stderr, text};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo ARGS` in `dir`, as an author runs it: none of this test's cargo environment, the
/// shared target folder, and the crates already on this machine.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", repo().join("target/authoring"))
        .env("CARGO_NET_OFFLINE", "true")
        .env("VIGIL", VIGIL);
    for name in vigil_plugin_build::PARENT_ENV {
        if *name != "CARGO_TARGET_DIR" {
            command.env_remove(name);
        }
    }
    command.output().unwrap()
}

fn vigil(args: &[&str]) -> Output {
    Command::new(VIGIL).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Makes the scaffold `demo-miner` in `parent`, with the workspace's lock file (so the build
/// resolves to the crates already here).
fn scaffold(parent: &Path) -> PathBuf {
    let dir = parent.join("demo-miner");
    let sdk = repo().join("sdk");
    let made = vigil(&[
        "plugin",
        "new",
        "demo-miner",
        "--path",
        text(&dir),
        "--sdk",
        text(&sdk),
    ]);
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    assert!(
        stdout(&made).contains("cargo build --release"),
        "{}",
        stdout(&made)
    );
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

#[test]
fn a_new_plugin_builds_with_plain_cargo_and_passes_its_samples_and_a_broken_one_fails() {
    let parent = tempfile::tempdir().unwrap();
    let dir = scaffold(parent.path());

    let built = cargo(&dir, &["build", "--release"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let wasm = repo().join("target/authoring/wasm32-unknown-unknown/release/demo_miner.wasm");
    let samples = dir.join("samples");
    let tested = vigil(&[
        "plugin",
        "test",
        "--format",
        "jsonl",
        text(&wasm),
        text(&samples),
    ]);
    assert_eq!(
        tested.status.code(),
        Some(0),
        "{}{}",
        stdout(&tested),
        stderr(&tested)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&tested).lines().last().unwrap()).unwrap();
    assert_eq!(
        (&summary["passed"], &summary["failed"]),
        (&2.into(), &0.into()),
        "{summary}"
    );

    // The file the harness builds and tests is the file plain `cargo build --release` makes.
    let harness_built =
        vigil_plugin_build::build(&dir, &vigil_plugin_build::default_target_dir(repo())).unwrap();
    assert_eq!(
        std::fs::read(&harness_built).unwrap(),
        std::fs::read(&wasm).unwrap(),
        "the harness builds exactly what the author ships"
    );

    // A broken plugin fails its samples, naming the sample and why: here its prefilter (the
    // pool schemes) no longer admits the sample, so it is never called for it.
    let source = dir.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        code.replace("\"stratum+tcp://\"", "\"nothing-here://\""),
    )
    .unwrap();
    let rebuilt = cargo(&dir, &["build", "--release"]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    let failed = vigil(&["plugin", "test", text(&wasm), text(&samples)]);
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
    let report = stdout(&failed);
    assert!(
        report.contains("FAIL")
            && report.contains(
                "start-miner.sh: clean -- the plugin is not called for this file: none of its \
                 prefilter's strings is in it"
            ),
        "{report}"
    );
    assert!(report.contains("1 passed, 1 failed"), "{report}");
}

#[test]
fn plugin_new_refuses_a_bad_name_and_an_existing_folder_and_overwrites_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let bad = vigil(&["plugin", "new", "9lives"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("the plugin name \"9lives\" is not valid: use a letter"),
        "{}",
        stderr(&bad)
    );

    let dir = parent.path().join("taken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "mine").unwrap();
    let refused = vigil(&["plugin", "new", "taken", "--path", text(&dir)]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("it must not exist: nothing is overwritten"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        "mine"
    );
}

#[test]
fn the_harness_route_runs_the_scaffold_tests_with_cargo_test() {
    let parent = tempfile::tempdir().unwrap();
    let dir = scaffold(parent.path());
    // Unit tests and tests/samples.rs (the harness, driving this build's vigil).
    let tested = cargo(&dir, &["test-host"]);
    let output = format!("{}{}", stdout(&tested), stderr(&tested));
    assert!(tested.status.success(), "{output}");
    assert!(
        output.contains("finds_a_pool_address_in_any_case_and_says_where ... ok")
            && output.contains("the_samples_give_what_their_folders_say ... ok")
            && output.contains("a_pool_address_in_an_elf_file_is_found_where_it_is ... ok"),
        "{output}"
    );
    // The harness showed the nested build's progress rather than nothing.
    assert!(output.contains("vigil-sdk harness: building"), "{output}");
}
