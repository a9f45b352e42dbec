//! `vigil plugin new NAME`: scaffolds a plugin crate from the templates in `sdk/template/`
//! (compiled into the binary): a working example plugin, `.cargo/config.toml` so that plain
//! `cargo build --release` builds the file to ship, sample folders for `vigil plugin test`,
//! and a harness test.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};

use vigil_plugin_build::{STACK_SIZE, TARGET};

use super::{print_line, shown};

/// The files of a new plugin crate: (path in the crate, template).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../sdk/template/Cargo.toml.in"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../sdk/template/cargo-config.toml.in"),
    ),
    (
        ".gitignore",
        include_str!("../../sdk/template/gitignore.in"),
    ),
    ("README.md", include_str!("../../sdk/template/README.md.in")),
    (
        "src/lib.rs",
        include_str!("../../sdk/template/src/lib.rs.in"),
    ),
    (
        "tests/samples.rs",
        include_str!("../../sdk/template/tests/samples.rs.in"),
    ),
    (
        "samples/detect/.threat",
        include_str!("../../sdk/template/samples/detect/.threat"),
    ),
    (
        "samples/detect/start-miner.sh",
        include_str!("../../sdk/template/samples/detect/start-miner.sh"),
    ),
    (
        "samples/clean/backup.sh",
        include_str!("../../sdk/template/samples/clean/backup.sh"),
    ),
];

/// The SDK beside the sources this `vigil` was built from, used when it is still there.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");

/// `vigil plugin new` arguments.
#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name: a letter, then letters, digits, `-` or `_` (at most 64).
    name: String,
    /// Where to create the crate (default: a folder named after the plugin, here).
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// The vigil-sdk source folder to depend on (default: the one this vigil was built from,
    /// when it exists, else vigil-sdk from crates.io).
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

/// Creates the crate; refuses a folder that exists (nothing is overwritten).
pub fn run(args: NewArgs) -> Result<ExitCode> {
    check_name(&args.name)?;
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = match args.sdk {
        Some(sdk) => Some(sdk),
        None => Some(PathBuf::from(BUILT_FROM_SDK)).filter(|sdk| sdk.join("Cargo.toml").is_file()),
    };
    let sdk_dependency = match &sdk {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk {}: no Cargo.toml there", shown(path));
            }
            let path = std::path::absolute(path)?;
            let path = path
                .to_str()
                .with_context(|| format!("the SDK path {} is not UTF-8", shown(&path)))?;
            format!("{{ path = {} }}", toml_string(path))
        }
        None => format!("{{ version = \"{}\" }}", env!("CARGO_PKG_VERSION")),
    };
    let host = host_target()?;
    let values = [
        ("{{name}}", args.name.clone()),
        ("{{crate_name}}", args.name.replace('-', "_")),
        ("{{type_name}}", type_name(&args.name)),
        ("{{sdk}}", sdk_dependency.clone()),
        (
            "{{sdk_harness}}",
            sdk_dependency.replace(" }", ", features = [\"harness\"] }"),
        ),
        ("{{host}}", host),
        ("{{stack_size}}", STACK_SIZE.to_string()),
        ("{{stack_kib}}", (STACK_SIZE / 1024).to_string()),
        ("{{target}}", TARGET.to_string()),
    ];
    std::fs::create_dir(&dir).with_context(|| {
        format!(
            "cannot create {} (it must not exist: nothing is overwritten)",
            shown(&dir)
        )
    })?;
    for (relative, template) in TEMPLATES {
        let path = dir.join(relative);
        let text = values
            .iter()
            .fold(template.to_string(), |text, (key, value)| {
                text.replace(key, value)
            });
        write_new(&path, &text)?;
    }
    let wasm = format!(
        "target/{TARGET}/release/{}.wasm",
        args.name.replace('-', "_")
    );
    print_line(&format!(
        "created {} (plugin `{}`, vigil-sdk {})",
        shown(&dir),
        args.name,
        match &sdk {
            Some(path) => format!("from {}", shown(path)),
            None => format!("{} from crates.io", env!("CARGO_PKG_VERSION")),
        }
    ));
    print_line("next:");
    print_line(&format!("  cd {}", shown(&dir)));
    if vigil_plugin_build::target_installed() != Ok(true) {
        print_line(&format!("  rustup target add {TARGET}"));
    }
    print_line("  cargo build --release");
    print_line(&format!("  vigil plugin test {wasm} samples"));
    Ok(ExitCode::SUCCESS)
}

/// Plugin names as the host accepts them, starting with a letter (the crate's type name is
/// made from it).
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter
        || name.len() > 64
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "the plugin name {:?} is not valid: use a letter, then letters, digits, `-` or `_` \
             (at most 64)",
            name
        );
    }
    Ok(())
}

/// `miner-url` → `MinerUrl`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// This machine's target triple (for the `cargo test-host` alias), from `rustc -vV`.
fn host_target() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("cannot run rustc (a plugin crate needs the Rust toolchain)")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV did not say the host target")
}

/// Writes a new file (never over an existing one), creating its folder.
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", shown(parent)))?;
    }
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", shown(path)))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", shown(path)))
}
