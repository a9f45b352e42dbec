//! `vigil config show`: the effective configuration.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{Context, print_line, shown};

/// `vigil config ...`
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults merged with the configuration file) as TOML.
    Show,
}

/// Runs a `config` command.
pub fn run(context: &Context, command: ConfigCommand) -> Result<ExitCode> {
    match command {
        ConfigCommand::Show => {
            let (config, source) = context.load_config()?;
            match source {
                Some(path) => print_line(&format!("# from {} and built-in defaults", shown(&path))),
                None => print_line("# built-in defaults (no configuration file)"),
            }
            print_line(&format!(
                "# exclusions added with `vigil exclusion add` are stored in {} (see `vigil exclusion list`)",
                shown(&context.state_dir())
            ));
            print_line(&config.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
