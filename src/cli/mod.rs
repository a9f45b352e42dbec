//! One module per command; this one holds what they share: finding the configuration and the
//! state directory.

pub mod config;
pub mod exclusion;
pub mod output;
pub mod quarantine;
pub mod scan;
pub mod threat;

use std::path::{Path, PathBuf};

use anyhow::Result;
use vigil_engine::Config;
use vigil_engine::state::State;

/// The system-wide configuration file, read when no other is named.
const SYSTEM_CONFIG: &str = "/etc/vigil/vigil.toml";

/// Global options every command receives.
pub struct Context {
    /// `--config` / `VIGIL_CONFIG`.
    pub config_path: Option<PathBuf>,
    /// `--state-dir` / `VIGIL_STATE_DIR`.
    pub state_dir: Option<PathBuf>,
}

impl Context {
    /// The configuration in force and the file it came from (if any).
    pub fn load_config(&self) -> Result<(Config, Option<PathBuf>)> {
        let path = match &self.config_path {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(SYSTEM_CONFIG)).filter(|path| path.exists()),
        };
        match path {
            Some(path) => Ok((Config::load(&path)?, Some(path))),
            None => Ok((Config::default(), None)),
        }
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

/// Renders a path for people (lossy for non-UTF-8 names).
pub fn shown(path: &Path) -> std::borrow::Cow<'_, str> {
    path.to_string_lossy()
}
