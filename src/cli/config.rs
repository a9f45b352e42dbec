//! `vigil config show`, and the managed settings changed at run time
//! (`vigil config real-time-protection --value enabled`, `vigil config passive-mode ...`).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use vigil_engine::managed::{ManagedKey, ManagedSettings};

use super::{Context, print_line, shown};
use crate::service::client::Client;
use crate::service::protocol::{Request, SettingKey};

/// `vigil config ...`
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, the configuration file, then the managed
    /// settings) as TOML.
    Show,
    /// Turn real-time protection on or off (antivirus_engine.enable_real_time_protection).
    RealTimeProtection {
        /// The new value.
        #[arg(long, value_enum)]
        value: Toggle,
    },
    /// Turn passive mode on or off (antivirus_engine.passive_mode): detect and report only.
    PassiveMode {
        /// The new value.
        #[arg(long, value_enum)]
        value: Toggle,
    },
}

/// A setting's new value.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Toggle {
    /// On.
    Enabled,
    /// Off.
    Disabled,
}

/// Runs a `config` command.
pub fn run(context: &Context, command: ConfigCommand) -> Result<ExitCode> {
    let (key, toggle) = match command {
        ConfigCommand::Show => return show(context),
        ConfigCommand::RealTimeProtection { value } => (ManagedKey::RealTimeProtection, value),
        ConfigCommand::PassiveMode { value } => (ManagedKey::PassiveMode, value),
    };
    let enabled = matches!(toggle, Toggle::Enabled);
    let (config, _) = context.load_config()?;
    // Through the service when it runs, so it applies the change at once (and checks that the
    // caller may make it); else in the state directory, for the service's next start.
    if let Some(mut client) = Client::for_context(context, &config.service) {
        let key = match key {
            ManagedKey::RealTimeProtection => SettingKey::RealTimeProtection,
            ManagedKey::PassiveMode => SettingKey::PassiveMode,
        };
        client.call(&Request::SetSetting { key, enabled })?;
    } else {
        let state_dir = context.state_dir();
        let mut managed = ManagedSettings::load(&state_dir)?;
        managed.set(key, enabled);
        context.open_state()?;
        managed.save(&state_dir)?;
    }
    let name = match key {
        ManagedKey::RealTimeProtection => "real-time protection",
        ManagedKey::PassiveMode => "passive mode",
    };
    print_line(&format!(
        "{name} {}",
        if enabled { "enabled" } else { "disabled" }
    ));
    Ok(ExitCode::SUCCESS)
}

fn show(context: &Context) -> Result<ExitCode> {
    let (config, source) = context.load_config()?;
    match source {
        Some(path) => print_line(&format!("# from {} and built-in defaults", shown(&path))),
        None => print_line("# built-in defaults (no configuration file)"),
    }
    let managed = ManagedSettings::path(&context.state_dir());
    if managed.exists() {
        print_line(&format!(
            "# with the managed settings in {}, which take precedence",
            shown(&managed)
        ));
    }
    print_line(&format!(
        "# exclusions added with `vigil exclusion add` are stored in {} (see `vigil exclusion list`)",
        shown(&context.state_dir())
    ));
    print_line(&config.to_toml());
    Ok(ExitCode::SUCCESS)
}
