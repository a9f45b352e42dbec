//! `vigil`: the command-line front end of the Vigil scanning engine.
//!
//! Parses arguments, builds the engine, renders results and maps outcomes to exit codes
//! (as ClamAV's: 0 nothing found, 1 threats found, 2 error). All behaviour lives in `vigil-engine`.

mod cli;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Vigil: a multithreaded malware scanner with YARA-X rules.
#[derive(Parser)]
#[command(name = "vigil", version, about)]
struct Args {
    /// Configuration file (TOML). Default: /etc/vigil/vigil.toml when it exists.
    #[arg(long, global = true, env = "VIGIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// State directory (exclusions, threat history, quarantine vault).
    /// Default: /var/lib/vigil as root, else $XDG_DATA_HOME/vigil.
    #[arg(long, global = true, env = "VIGIL_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Never use the resident service: scan and answer in this process.
    #[arg(long, global = true, env = "VIGIL_NO_DAEMON")]
    no_daemon: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan files for threats.
    Scan(cli::scan::ScanArgs),
    /// Show the effective configuration.
    Config {
        #[command(subcommand)]
        command: cli::config::ConfigCommand,
    },
    /// Manage exclusions stored in the state directory.
    Exclusion {
        #[command(subcommand)]
        command: cli::exclusion::ExclusionCommand,
    },
    /// The threat history and allowed threats.
    Threat {
        #[command(subcommand)]
        command: cli::threat::ThreatCommand,
    },
    /// Definitions drops: keygen, build, update, rollback, status, history.
    Definitions {
        #[command(subcommand)]
        command: cli::definitions::DefinitionsCommand,
    },
    /// The quarantine vault: list, restore, remove.
    Quarantine {
        #[command(subcommand)]
        command: cli::quarantine::QuarantineCommand,
    },
    /// YARA rule files: check (errors and warnings with locations).
    Rules {
        #[command(subcommand)]
        command: cli::rules::RulesCommand,
    },
    /// The result caches: status, clear.
    Cache {
        #[command(subcommand)]
        command: cli::cache::CacheCommand,
    },
    /// WebAssembly detection plugins: list, info, test, new.
    Plugin {
        #[command(subcommand)]
        command: cli::plugin::PluginCommand,
    },
    /// Run the resident service: definitions loaded once, scans over a local socket, real-time
    /// protection.
    Daemon,
    /// Whether protection works: service, real-time protection, definitions age, last scans.
    Health(cli::health::HealthArgs),
    /// The service's counters: connections, requests, real-time events and latencies.
    Statistics(cli::statistics::StatisticsArgs),
    /// Diagnostic data: the local event log, and support bundles.
    Diagnostic {
        #[command(subcommand)]
        command: cli::diagnostic::DiagnosticCommand,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let context = cli::Context {
        config_path: args.config,
        state_dir: args.state_dir,
        no_daemon: args.no_daemon,
    };
    cli::crash::install_hook(&context);
    vigil_engine::crash_point();
    cli::usage::record(&context);
    let outcome = match args.command {
        Command::Scan(scan) => cli::scan::run(&context, scan),
        Command::Config { command } => cli::config::run(&context, command),
        Command::Exclusion { command } => cli::exclusion::run(&context, command),
        Command::Threat { command } => cli::threat::run(&context, command),
        Command::Quarantine { command } => cli::quarantine::run(&context, command),
        Command::Definitions { command } => cli::definitions::run(&context, command),
        Command::Plugin { command } => cli::plugin::run(&context, command),
        Command::Cache { command } => cli::cache::run(&context, command),
        Command::Rules { command } => cli::rules::run(&context, command),
        Command::Daemon => service::server::run(&context),
        Command::Health(args) => cli::health::run(&context, args),
        Command::Statistics(args) => cli::statistics::run(&context, args),
        Command::Diagnostic { command } => cli::diagnostic::run(&context, command),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vigil: error: {}", cli::error_text(&err));
            ExitCode::from(2)
        }
    }
}
