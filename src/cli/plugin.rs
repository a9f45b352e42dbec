//! `vigil plugin list|info` (`test` and `new` have modules of their own): what plugins a scan would run, what files they want, and the
//! limits they run under.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use vigil_engine::config::PluginsConfig;
use vigil_engine::definitions::DefinitionsStore;
use vigil_engine::plugin::{InputSize, PLUGIN_CACHE, PluginInfo, PluginSet};

use super::output::Format;
use super::{Context, print_line, untrusted, untrusted_bytes};

/// `vigil plugin ...`
#[derive(Subcommand)]
pub enum PluginCommand {
    /// The plugins a scan runs: the active definitions' and any given with --plugin.
    List {
        /// Also list this plugin file (repeatable), as `vigil scan --plugin` would load it.
        #[arg(long = "plugin", value_name = "PATH")]
        plugins: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Loads one plugin file in the sandbox and describes it (exit 2 if it does not load).
    Info {
        /// The plugin: a WebAssembly component, or a core module built with vigil-sdk.
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Runs a plugin on samples with expected outcomes (`detect/`, `clean/`): exit 0 when all
    /// hold, 1 when one does not.
    Test(super::plugin_test::TestArgs),
    /// Creates a plugin crate: an example plugin, samples, and the build set-up.
    New(super::plugin_new::NewArgs),
}

/// Runs a `vigil plugin` command.
pub fn run(context: &Context, command: PluginCommand) -> Result<ExitCode> {
    match command {
        PluginCommand::Test(args) => super::plugin_test::run(context, args),
        PluginCommand::New(args) => super::plugin_new::run(args),
        PluginCommand::List { plugins, format } => describe(context, None, plugins, format),
        PluginCommand::Info { path, format } => describe(context, Some(path), Vec::new(), format),
    }
}

/// `list` (the active definitions' plugins and `extra` files) or `info` (the one file `only`):
/// loads them in the sandbox and describes each, then the limits.
fn describe(
    context: &Context,
    only: Option<PathBuf>,
    extra: Vec<PathBuf>,
    format: Format,
) -> Result<ExitCode> {
    let (config, _) = context.load_config()?;
    let state = Arc::new(context.open_state()?);
    let limits = PluginsConfig {
        enabled: true,
        ..config.plugins.clone()
    };
    let cache = state.dir().join(PLUGIN_CACHE);
    let load = |sources: &[(String, Vec<u8>)], files: &[PathBuf]| {
        PluginSet::load_with_files(sources, files, &limits, 1, Some(&cache))
    };
    let set = match only {
        Some(path) => load(&[], &[path])?,
        None => {
            let definitions = DefinitionsStore::open(state.clone())?.active()?;
            let set = load(&definitions.plugins, &extra)?;
            if !config.plugins.enabled {
                eprintln!("vigil: note: plugins.enabled is false: scans run none of these");
            }
            set
        }
    };
    for plugin in set.plugins() {
        let info = &plugin.info;
        match format {
            Format::Jsonl => print_line(&to_json(info).to_string()),
            Format::Text => print_text(info),
        }
    }
    match format {
        Format::Jsonl => print_line(&json!({"type": "limits", "limits": limits}).to_string()),
        Format::Text => print_limits(&limits),
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(info: &PluginInfo) -> serde_json::Value {
    json!({
        "type": "plugin",
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "origin": info.origin,
        "blake3": info.digest,
        "contract": info.contract,
        "magic": info.magic.iter().map(|m| json!({
            "offset": m.offset,
            "hex": hex(&m.bytes),
            "mask": (!m.mask.is_empty()).then(|| hex(&m.mask)),
            "anywhere": m.anywhere,
        })).collect::<Vec<_>>(),
        "extensions": info.extensions,
        "min_size": info.min_size,
        "input": match info.input {
            InputSize::Prefix(bytes) => json!({"prefix": bytes}),
            InputSize::WholeFile => json!("whole_file"),
        },
        "wants_name": info.wants_name,
        "prefilter": info.prefilter.literals().iter().map(|l| hex(l)).collect::<Vec<_>>(),
        "compiled": if info.from_cache { "cache" } else { "now" },
    })
}

fn print_text(info: &PluginInfo) {
    print_line(&format!(
        "{} {}",
        untrusted(&info.name),
        untrusted(&info.version)
    ));
    print_line(&format!("  {}", untrusted(&info.description)));
    print_line(&format!("  from:     {}", untrusted(&info.origin)));
    print_line(&format!("  blake3:   {}", info.digest));
    print_line(&format!("  contract: vigil:plugin@{}", info.contract));
    let mut wants: Vec<String> = info
        .magic
        .iter()
        .map(|m| {
            let mask = if m.mask.is_empty() {
                String::new()
            } else {
                format!(" (mask {})", hex(&m.mask))
            };
            let place = if m.anywhere { "from" } else { "at" };
            format!("magic {}{mask} {place} {}", hex(&m.bytes), m.offset)
        })
        .collect();
    wants.extend(
        info.extensions
            .iter()
            .map(|ext| format!(".{}", untrusted(ext))),
    );
    if wants.is_empty() {
        wants.push("every file".into());
    }
    print_line(&format!(
        "  wants:    {} (files of at least {} bytes)",
        wants.join(", "),
        info.min_size
    ));
    print_line(&format!(
        "  input:    {}",
        match info.input {
            InputSize::Prefix(bytes) => format!("the first {bytes} bytes"),
            InputSize::WholeFile => "the whole file (up to plugins.max_input_size)".into(),
        }
    ));
    if info.wants_name {
        print_line("  name:     given the file's name and extension");
    }
    let prefilter = info.prefilter.literals();
    if !prefilter.is_empty() {
        let shown: Vec<String> = prefilter
            .iter()
            .map(|literal| format!("\"{}\"", untrusted_bytes(literal)))
            .collect();
        print_line(&format!(
            "  only if:  its input holds one of {} strings, any case: {}",
            prefilter.len(),
            shown.join(" ")
        ));
    }
    print_line(&format!(
        "  compiled: {}",
        if info.from_cache {
            "loaded from the cache"
        } else {
            "now (cached for the next run)"
        }
    ));
}

fn print_limits(limits: &PluginsConfig) {
    print_line("limits (per call, [plugins] in the configuration):");
    print_line(&format!("  timeout_ms         {}", limits.timeout_ms));
    print_line(&format!("  memory_limit       {}", limits.memory_limit));
    print_line(&format!(
        "  max_table_elements {}",
        limits.max_table_elements
    ));
    print_line(&format!("  max_stack          {}", limits.max_stack));
    print_line(&format!("  max_findings       {}", limits.max_findings));
    print_line(&format!("  max_output_size    {}", limits.max_output_size));
    print_line(&format!("  max_input_size     {}", limits.max_input_size));
    print_line(&format!(
        "  max_faults         {} (per scan)",
        limits.max_faults
    ));
    print_line(&format!(
        "  max_log_lines      {} of up to {} bytes",
        limits.max_log_lines, limits.max_log_line
    ));
}

use vigil_drop::hex;
