//! Builds the project's default definitions drop from `signatures/` and the first-party plugins
//! in `plugins/` (each compiled from source to WebAssembly here) with the same code that
//! `vigil definitions build` uses, signed with a key made for this build, and embeds it (and the
//! key's public half) in the engine, so a scan on a fresh machine has definitions with no set-up.
//! It also records the yara-x version, which tags serialized rules.

use std::path::Path;

fn main() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let signatures = manifest_dir.join("../signatures");
    println!("cargo:rerun-if-changed={}", signatures.display());
    let mut files = Vec::new();
    collect(&signatures, &mut files);
    build_plugins(&manifest_dir.join("../plugins"), &mut files);
    files.sort();

    let key = vigil_drop::generate_key().expect("randomness for the build key");
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let version = env!("CARGO_PKG_VERSION");
    let drop = vigil_drop::build(&files, 1, version, created, &key)
        .expect("the default signatures form a valid drop");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).to_path_buf();
    std::fs::write(out.join("default.drop"), drop).unwrap();
    std::fs::write(
        out.join("default_drop.rs"),
        format!(
            "/// The default drop, built from `signatures/` at build time.\n\
             pub const DEFAULT_DROP: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/default.drop\"));\n\
             /// The public key that signed [`DEFAULT_DROP`] (trusted for it alone).\n\
             pub const DEFAULT_DROP_KEY: &str = {:?};\n",
            vigil_drop::public_key_line(&key.verifying_key())
        ),
    )
    .unwrap();

    let lock = std::fs::read_to_string(manifest_dir.join("../Cargo.lock")).unwrap_or_default();
    let version_of = |name: &str| {
        lock.split("[[package]]")
            .find(|package| package.contains(&format!("\nname = \"{name}\"\n")))
            .and_then(|package| package.lines().find_map(|l| l.strip_prefix("version = ")))
            .map_or("unknown".to_string(), |v| v.trim_matches('"').to_string())
    };
    println!("cargo:rerun-if-changed=../Cargo.lock");
    println!(
        "cargo:rustc-env=VIGIL_YARA_X_VERSION={}",
        version_of("yara-x")
    );
    println!(
        "cargo:rustc-env=VIGIL_WASMTIME_VERSION={}",
        version_of("wasmtime")
    );
}

/// Builds every plugin crate in `plugins/` to WebAssembly as `plugins/<folder>.wasm`.
fn build_plugins(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let sdk = dir.join("../sdk");
    println!("cargo:rerun-if-changed={}", sdk.join("src").display());
    println!("cargo:rerun-if-changed={}", sdk.join("wit").display());
    let target_dir = vigil_plugin_build::default_target_dir(dir);
    let mut crates: Vec<_> = std::fs::read_dir(dir)
        .expect("plugins/ exists beside engine/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    for crate_dir in crates {
        let wasm = vigil_plugin_build::build(&crate_dir, &target_dir)
            .unwrap_or_else(|err| panic!("first-party plugin: {err}"));
        let name = crate_dir.file_name().unwrap().to_string_lossy();
        out.push((
            format!("plugins/{name}.wasm"),
            std::fs::read(&wasm).unwrap(),
        ));
    }
}

/// Drop paths for the files below `dir`: `*.yar` under `rules/`, `*.txt` hash lists under `hashes/`.
fn collect(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("signatures/ exists beside engine/") {
        let path = entry.unwrap().path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(&path, out);
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let folder = match path.extension().and_then(|e| e.to_str()) {
            Some("yar") => "rules",
            Some("txt") => "hashes",
            _ => continue,
        };
        out.push((format!("{folder}/{name}"), std::fs::read(&path).unwrap()));
    }
}
