//! `vigil threat list|allow|disallow`: the threat history and the allowed threat names.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use super::output::Format;
use super::{Context, format_time, print_line, shown, untrusted};

/// `vigil threat ...`
#[derive(Subcommand)]
pub enum ThreatCommand {
    /// The threat history: detected, quarantined, restored, removed and allowed, oldest first.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Allow a threat name: its detections are recorded as allowed, not reported or quarantined.
    Allow {
        /// The threat name, e.g. `Virus:DOS/EICAR_Test_File`.
        name: String,
    },
    /// Stop allowing a threat name allowed with `allow`.
    Disallow {
        /// The threat name.
        name: String,
    },
}

/// Runs a `threat` command.
pub fn run(context: &Context, command: ThreatCommand) -> Result<ExitCode> {
    let state = context.open_state()?;
    match command {
        ThreatCommand::List { format } => {
            for entry in state.history()? {
                match format {
                    Format::Jsonl => print_line(&serde_json::to_string(&entry)?),
                    Format::Text => print_line(&format!(
                        "{}  {:<11} {}  {}{}",
                        format_time(entry.time),
                        entry.action,
                        untrusted(&entry.threat),
                        shown(&entry.path),
                        entry
                            .quarantine_id
                            .map(|id| format!("  [{id}]"))
                            .unwrap_or_default()
                    )),
                }
            }
        }
        ThreatCommand::Allow { name } => {
            if name.trim().is_empty() {
                bail!("a threat name cannot be empty");
            }
            let added = state.allow_threat(&name)?;
            print_line(&format!(
                "{} {}",
                if added {
                    "allowed:"
                } else {
                    "already allowed:"
                },
                untrusted(&name)
            ));
            crate::service::client::notify_reload(context);
        }
        ThreatCommand::Disallow { name } => {
            if !state.disallow_threat(&name)? {
                let (config, source) = context.load_config()?;
                if config.antivirus_engine.allowed_threats.contains(&name) {
                    let file = source.map(|p| shown(&p).to_string()).unwrap_or_default();
                    bail!(
                        "{} is allowed by the configuration file {file}; remove it there",
                        untrusted(&name)
                    );
                }
                bail!("{} is not an allowed threat", untrusted(&name));
            }
            print_line(&format!("disallowed: {}", untrusted(&name)));
            crate::service::client::notify_reload(context);
        }
    }
    Ok(ExitCode::SUCCESS)
}
