//! `vigil exclusion add|remove|list`: exclusions stored in the state directory, shown together
//! with the ones the configuration file manages (which the CLI cannot remove).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use vigil_engine::config::ExclusionConfig;

use super::output::Format;
use super::{Context, print_line, shown, untrusted};

/// `vigil exclusion ...`
#[derive(Subcommand)]
pub enum ExclusionCommand {
    /// Add an exclusion (stored in the state directory).
    Add(ExclusionArgs),
    /// Remove an exclusion added with `add`.
    Remove(ExclusionArgs),
    /// List every exclusion in force.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Exactly one of `--path`, `--extension` or `--name`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["path", "extension", "name"])))]
pub struct ExclusionArgs {
    /// An absolute path to a file (or, with --directory, a folder and everything below it).
    #[arg(long)]
    path: Option<PathBuf>,
    /// With --path: the path is a directory.
    #[arg(long, requires = "path")]
    directory: bool,
    /// A file extension such as `iso` or `.iso`.
    #[arg(long)]
    extension: Option<String>,
    /// A glob on file names such as `*.log`.
    #[arg(long)]
    name: Option<String>,
}

impl ExclusionArgs {
    fn to_config(&self) -> ExclusionConfig {
        ExclusionConfig {
            path: self.path.clone(),
            is_directory: self.directory,
            extension: self.extension.clone(),
            name: self.name.clone(),
        }
    }
}

/// Runs an `exclusion` command.
pub fn run(context: &Context, command: ExclusionCommand) -> Result<ExitCode> {
    let state = context.open_state()?;
    match command {
        ExclusionCommand::Add(args) => {
            let exclusion = args.to_config();
            if state.add_exclusion(&exclusion)? {
                print_line(&format!("added: {}", describe(&exclusion)));
                crate::service::client::notify_reload(context);
            } else {
                print_line(&format!("already present: {}", describe(&exclusion)));
            }
        }
        ExclusionCommand::Remove(args) => {
            let exclusion = args.to_config();
            if !state.remove_exclusion(&exclusion)? {
                let (config, source) = context.load_config()?;
                if config.antivirus_engine.exclusions.contains(&exclusion) {
                    let file = source.map(|p| shown(&p).to_string()).unwrap_or_default();
                    bail!(
                        "{} is managed by the configuration file {file}; remove it there",
                        describe(&exclusion)
                    );
                }
                bail!("no stored exclusion {}", describe(&exclusion));
            }
            print_line(&format!("removed: {}", describe(&exclusion)));
            crate::service::client::notify_reload(context);
        }
        ExclusionCommand::List { format } => {
            let (config, _) = context.load_config()?;
            let managed = config
                .antivirus_engine
                .exclusions
                .iter()
                .map(|e| (e, "managed"));
            let stored = state.exclusions()?;
            for (exclusion, source) in managed.chain(stored.iter().map(|e| (e, "user"))) {
                match format {
                    Format::Text => print_line(&format!("{:<7} {}", source, describe(exclusion))),
                    Format::Jsonl => print_line(&to_json(exclusion, source).to_string()),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `directory /srv`, `extension iso`, `name *.log`...
fn describe(exclusion: &ExclusionConfig) -> String {
    if let Some(path) = &exclusion.path {
        let kind = if exclusion.is_directory {
            "directory"
        } else {
            "file"
        };
        format!("{kind} {}", shown(path))
    } else if let Some(extension) = &exclusion.extension {
        format!("extension {}", untrusted(extension))
    } else {
        format!(
            "name {}",
            untrusted(exclusion.name.as_deref().unwrap_or_default())
        )
    }
}

/// An exclusion as a JSON Lines record: its fields, `path_hex` when the path is not UTF-8 (serde
/// cannot write such a path as a string), and where it comes from.
fn to_json(exclusion: &ExclusionConfig, source: &str) -> serde_json::Value {
    let mut value = serde_json::json!({ "source": source });
    if let Some(path) = &exclusion.path {
        value["path"] = vigil_engine::report::path_lossy(path).into();
        if let Some(hex) = vigil_engine::report::path_hex(path) {
            value["path_hex"] = hex.into();
        }
        value["is_directory"] = exclusion.is_directory.into();
    }
    if let Some(extension) = &exclusion.extension {
        value["extension"] = extension.as_str().into();
    }
    if let Some(name) = &exclusion.name {
        value["name"] = name.as_str().into();
    }
    value
}
