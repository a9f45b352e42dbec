//! `vigil quarantine list|restore|remove`: the vault of quarantined files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Subcommand;
use vigil_engine::quarantine::Vault;

use super::output::Format;
use super::{Context, print_line, shown, untrusted};

/// `vigil quarantine ...`
#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// The quarantined files, each with its id.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Put a file back with its content, mode, owner and times (digest checked).
    Restore {
        /// The entry's id (see `vigil quarantine list`).
        id: String,
        /// Restore to this path instead of the original one.
        #[arg(long)]
        to: Option<PathBuf>,
        /// Replace a file that exists at the destination.
        #[arg(long)]
        force: bool,
    },
    /// Delete quarantined files for good.
    Remove {
        /// The entry's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Remove every entry.
        #[arg(long)]
        all: bool,
    },
}

/// Runs a `quarantine` command.
pub fn run(context: &Context, command: QuarantineCommand) -> Result<ExitCode> {
    let (config, _) = context.load_config()?;
    let vault = Vault::open(Arc::new(context.open_state()?), &config.quarantine)?;
    match command {
        QuarantineCommand::List { format } => {
            for entry in vault.list()? {
                match format {
                    Format::Jsonl => print_line(&serde_json::to_string(&entry)?),
                    Format::Text => print_line(&format!(
                        "{}  {}  {} bytes  {}",
                        entry.id,
                        shown(&entry.original_path),
                        entry.size,
                        untrusted(&entry.threats.join(", "))
                    )),
                }
            }
        }
        QuarantineCommand::Restore { id, to, force } => {
            let restored = vault.restore(&id, to.as_deref(), force)?;
            print_line(&format!("restored {id} to {}", shown(&restored)));
            crate::service::client::notify_reload(context);
        }
        QuarantineCommand::Remove { id, all } => {
            let ids: Vec<String> = match (id, all) {
                (Some(id), _) => vec![id],
                (None, true) => vault.list()?.into_iter().map(|entry| entry.id).collect(),
                (None, false) => bail!("name an id or --all"),
            };
            for id in ids {
                let entry = vault.remove(&id)?;
                print_line(&format!("removed {id} ({})", shown(&entry.original_path)));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
