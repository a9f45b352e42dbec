//! Builds a Vigil plugin crate to WebAssembly: `cargo build --release --target
//! wasm32-unknown-unknown` run as a separate cargo process, with a target folder of its own.
//!
//! The target is `wasm32-unknown-unknown`, not a WASI one, so the plugin imports nothing but what
//! the WIT world declares (Vigil refuses anything else). The result is a core module carrying
//! wit-bindgen's component type section; Vigil turns it into a component when it loads it.
//! Used by the engine's build script (first-party plugins), the SDK's test harness and tests.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target plugins are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// The shadow stack (in linear memory) plugins are linked with.
pub const STACK_SIZE: usize = 64 * 1024;

/// Environment a parent cargo (build script, test, clippy) sets that must not leak into the
/// plugin build: flags and wrappers meant for the host, and the parent's target folder.
pub const PARENT_ENV: &[&str] = &[
    "RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_LLVM_COV",
];

/// Builds the plugin crate in `crate_dir` in release mode into `target_dir` and returns the
/// path of the `.wasm` file this build produced (as cargo reports it: never a file an earlier
/// build left behind). Installs the wasm target with rustup first if it is missing.
pub fn build(crate_dir: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let manifest = crate_dir.join("Cargo.toml");
    ensure_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", TARGET])
        // Artefacts as JSON on stdout (fresh ones too), diagnostics rendered on stderr.
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // Debug info is not needed in a plugin; wit-bindgen's custom section must stay.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        // A 64 KiB shadow stack instead of Rust's default 1 MiB: the instance's memory is then a
        // few pages, which the host resets cheaply between calls (see ARCHITECTURE.md). Overflow
        // still traps: Rust puts the stack first in linear memory, below everything else.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("-Clink-arg=-zstack-size={STACK_SIZE}"),
        )
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    for name in PARENT_ENV {
        command.env_remove(name);
    }
    // cargo's progress and diagnostics go straight to our stderr: a first build takes a while
    // and should not look stuck; its artefact list comes on stdout.
    let output = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} for {TARGET} failed (cargo's messages are above)",
            crate_dir.display(),
        ));
    }
    wasm_artefact(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
        format!(
            "building {} for {TARGET} produced no WebAssembly file: a plugin is a `cdylib`; add \
             `crate-type = [\"cdylib\"]` under `[lib]` in its Cargo.toml",
            crate_dir.display()
        )
    })
}

/// The `.wasm` file of the `cdylib` target in cargo's JSON messages, if one was built.
fn wasm_artefact(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"))
        })
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|name| name.as_str().map(PathBuf::from))
        .find(|path| path.extension().is_some_and(|ext| ext == "wasm"))
}

/// Where plugins are built when the caller has no better place: `target/vigil-plugins` beside
/// the nearest `Cargo.lock` above `crate_dir` (the workspace root), else in `crate_dir`.
pub fn default_target_dir(crate_dir: &Path) -> PathBuf {
    let root = crate_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(crate_dir);
    root.join("target").join("vigil-plugins")
}

/// Whether the standard library for [`TARGET`] is installed in rustc's sysroot.
pub fn target_installed() -> Result<bool, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|err| format!("cannot run rustc: {err}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    Ok(sysroot.join("lib/rustlib").join(TARGET).is_dir())
}

/// Makes sure the standard library for [`TARGET`] is installed, adding it with rustup if not.
fn ensure_target() -> Result<(), String> {
    if target_installed()? {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|err| format!("the {TARGET} target is missing and rustup cannot run: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::wasm_artefact;

    #[test]
    fn the_artefact_is_the_cdylib_cargo_reported() {
        let sdk = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libvigil_sdk.rlib"],"fresh":true}"#;
        let plugin = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/release/my_plugin.wasm"],"fresh":true}"#;
        let done = r#"{"reason":"build-finished","success":true}"#;
        assert_eq!(
            wasm_artefact(&[sdk, plugin, done].join("\n")),
            Some("/t/release/my_plugin.wasm".into())
        );
        assert_eq!(wasm_artefact(&[sdk, done].join("\n")), None, "no cdylib");
        assert_eq!(wasm_artefact("not json\n"), None);
    }
}
