//! One module per command; this one holds what they share: finding the configuration and the
//! state directory.

pub mod cache;
pub mod config;
pub mod crash;
pub mod definitions;
pub mod diagnostic;
pub mod exclusion;
pub mod health;
pub mod output;
pub mod plugin;
pub mod plugin_new;
pub mod plugin_test;
pub mod quarantine;
pub mod remote_scan;
pub mod rules;
pub mod sarif;
pub mod scan;
pub mod statistics;
pub mod threat;
pub mod untrusted;
pub mod usage;

pub use untrusted::{shown, untrusted, untrusted_bytes};

use std::path::PathBuf;

use anyhow::Result;
use vigil_engine::Config;
use vigil_engine::managed::ManagedSettings;
use vigil_engine::state::State;

/// The system-wide configuration file, read when no other is named.
const SYSTEM_CONFIG: &str = "/etc/vigil/vigil.toml";

/// Global options every command receives.
pub struct Context {
    /// `--config` / `VIGIL_CONFIG`.
    pub config_path: Option<PathBuf>,
    /// `--state-dir` / `VIGIL_STATE_DIR`.
    pub state_dir: Option<PathBuf>,
    /// `--no-daemon` / `VIGIL_NO_DAEMON`: never use the service.
    pub no_daemon: bool,
}

impl Context {
    /// The configuration file in use: `--config`, else the system one when it exists.
    pub fn config_file(&self) -> Option<PathBuf> {
        match &self.config_path {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(SYSTEM_CONFIG)).filter(|path| path.exists()),
        }
    }

    /// The configuration in force and the file it came from (if any): defaults, then the file,
    /// then the managed settings of the state directory (`vigil config real-time-protection`).
    pub fn load_config(&self) -> Result<(Config, Option<PathBuf>)> {
        let path = self.config_file();
        let mut config = match &path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        ManagedSettings::load(&self.state_dir())?.apply(&mut config);
        Ok((config, path))
    }

    /// The state directory in use.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(State::default_dir)
    }

    /// Opens the state directory, creating it if needed.
    pub fn open_state(&self) -> Result<State> {
        Ok(State::open(&self.state_dir())?)
    }
}

/// Writes a line to stdout, ignoring a closed pipe (`vigil ... | head` must not panic).
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// An error for people. Messages quote file names and rule text, so they are escaped like any
/// untrusted text; only the diagnostics of rules that do not compile keep their lines (they come
/// from yara-x, quoting the rule source, and each of their lines is escaped).
pub fn error_text(err: &anyhow::Error) -> String {
    let message = format!("{err:#}");
    let multi_line = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref(),
            Some(vigil_engine::EngineError::Rules(_))
        )
    });
    if multi_line {
        message
            .lines()
            .map(|line| untrusted(line).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        untrusted(&message).to_string()
    }
}

/// Renders Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_render_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_795_616_789), "2026-11-25 14:26:29 UTC");
        assert_eq!(super::format_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
