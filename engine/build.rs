//! Embeds the project's default rules (`signatures/*.yar`) into the engine so that a scan works on
//! a fresh machine with no set-up.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../signatures");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("signatures/ exists beside engine/")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yar"))
        .collect();
    files.sort();
    let mut code = String::from(
        "/// The default rule files: (file name, source text).\npub const SIGNATURES: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file.file_name().unwrap().to_string_lossy();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_signatures.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
