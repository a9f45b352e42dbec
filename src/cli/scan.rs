//! `vigil scan quick|full|custom`: turns the options into an [`EngineBuilder`], runs the scan with
//! a printer as its sink and maps the outcome to the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use vigil_engine::config::ThreatAction;
use vigil_engine::{EngineBuilder, ScanKind, ScanRequest};

use super::Context;
use super::output::{Format, Printer};
use super::sarif::SarifSink;
use crate::service::client::Client;

/// `vigil scan ...`
#[derive(Args)]
pub struct ScanArgs {
    #[command(subcommand)]
    kind: KindArg,
    #[command(flatten)]
    options: ScanOptions,
}

#[derive(Subcommand)]
pub(crate) enum KindArg {
    /// The configured high-risk folders (filesystem_scanner.quick_scan_directories).
    Quick,
    /// The configured root (filesystem_scanner.full_scan_directory), skipping pseudo file systems.
    Full,
    /// The files and folders given.
    Custom {
        /// Files or folders to scan.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Options shared by every kind of scan.
#[derive(Args)]
pub(crate) struct ScanOptions {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text, global = true)]
    pub(crate) format: ScanFormat,
    /// Worker threads. Default: antivirus_engine.maximum_scan_threads, else all cores.
    #[arg(long, global = true)]
    pub(crate) threads: Option<usize>,
    /// An extra .yar file or folder of them (repeatable).
    #[arg(long = "rules", value_name = "PATH", global = true)]
    rules: Vec<PathBuf>,
    /// A constant for the rules' external variables (repeatable; `yr --define` syntax), over
    /// `[yara] defines`.
    #[arg(long = "define", short = 'd', value_name = "NAME=VALUE", global = true, value_parser = super::rules::parse_define)]
    defines: Vec<(String, vigil_engine::detect::externals::DefineValue)>,
    /// Skip files larger than this many bytes (0: no limit). Overrides antivirus_engine.max_file_size.
    #[arg(long, value_name = "BYTES", global = true)]
    max_file_size: Option<u64>,
    /// What to do with detected files. Overrides antivirus_engine.threat_action.
    #[arg(long, value_enum, global = true)]
    action: Option<ActionArg>,
    /// An extra plugin: a WebAssembly component or a core module built with vigil-sdk
    /// (repeatable).
    #[arg(long = "plugin", value_name = "PATH", global = true)]
    plugins: Vec<PathBuf>,
    /// Run no plugins (neither the definitions' nor --plugin ones).
    #[arg(long, global = true, conflicts_with = "plugins")]
    no_plugins: bool,
    /// Neither use nor update the result caches: read and match every file.
    #[arg(long, global = true)]
    no_cache: bool,
    /// In text output, list where each YARA detection's patterns matched (jsonl always has
    /// them, bounded).
    #[arg(long, global = true)]
    pub(crate) print_strings: bool,
    /// Also print skipped files and allowed detections in text output.
    #[arg(long, short, global = true)]
    pub(crate) verbose: bool,
}

/// Output formats of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ScanFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, as results arrive.
    Jsonl,
    /// One SARIF 2.1.0 document, when the scan ends.
    Sarif,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ActionArg {
    /// Report detected files only.
    Report,
    /// Move detected files into the quarantine vault.
    Quarantine,
}

/// Runs a scan; exit code 0 when nothing was found, 1 when threats were. Through the service
/// when one runs for this configuration and no option changes the engine; else in-process.
pub fn run(context: &Context, args: ScanArgs) -> Result<ExitCode> {
    let (mut config, _) = context.load_config()?;
    let options = args.options;
    let changes_engine = !options.rules.is_empty()
        || !options.plugins.is_empty()
        || !options.defines.is_empty()
        || options.no_plugins
        || options.no_cache
        || options.action.is_some()
        || options.max_file_size.is_some();
    if !changes_engine
        && let Some(client) = Client::for_context(context, &config.service)
        && let Some(outcome) = super::remote_scan::scan(client, &args.kind, &options)
    {
        return outcome;
    }
    if let Some(action) = options.action {
        config.antivirus_engine.threat_action = match action {
            ActionArg::Report => ThreatAction::Report,
            ActionArg::Quarantine => ThreatAction::Quarantine,
        };
    }
    if let Some(limit) = options.max_file_size {
        config.antivirus_engine.max_file_size = limit;
    }
    if options.no_plugins {
        config.plugins.enabled = false;
    }
    let threads = options.threads.unwrap_or_else(|| config.scan_threads());
    anyhow::ensure!(threads > 0, "--threads must be at least 1");

    let mut builder = EngineBuilder::new(config)
        .state_dir(context.state_dir())
        .concurrency(threads)
        .cache(!options.no_cache);
    for path in options.rules {
        builder = builder.extra_rules(path);
    }
    for path in options.plugins {
        builder = builder.extra_plugin(path);
    }
    for (name, value) in options.defines {
        builder = builder.define(&name, value);
    }
    let engine = builder.build()?;
    for warning in engine.warnings() {
        eprintln!("vigil: warning: {}", super::untrusted(warning));
    }

    let kind = match args.kind {
        KindArg::Quick => ScanKind::Quick,
        KindArg::Full => ScanKind::Full,
        KindArg::Custom { paths } => ScanKind::Custom(paths),
    };
    let request = ScanRequest { kind, threads };
    let summary = match options.format {
        ScanFormat::Sarif => engine.scan(&request, &SarifSink::default()),
        ScanFormat::Text | ScanFormat::Jsonl => {
            let format = if options.format == ScanFormat::Text {
                Format::Text
            } else {
                Format::Jsonl
            };
            let printer = Printer::new(format, options.verbose, options.print_strings);
            engine.scan(&request, &printer)
        }
    }
    .context("scan not started")?;
    Ok(if summary.detections > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
