//! Managed settings: the settings changed at run time (`vigil config real-time-protection
//! --value enabled`), kept in `managed_settings.toml` in the state directory.
//!
//! Precedence: a key set here wins over the same key in the configuration file
//! (`/etc/vigil/vigil.toml` or `--config`), which wins over the default. Only the keys below can
//! be managed; the file is written whole, atomically (new file, fsync, rename, fsync the folder),
//! so a crash leaves the old settings or the new ones, never half.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::durable;
use crate::error::EngineError;

/// The file's name in the state directory.
pub const MANAGED_SETTINGS_FILE: &str = "managed_settings.toml";

/// The settings that can be changed at run time; `None` leaves the configuration file's value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ManagedSettings {
    /// `[antivirus_engine]` keys.
    pub antivirus_engine: ManagedEngine,
}

/// `[antivirus_engine]` keys that can be managed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ManagedEngine {
    /// Overrides `antivirus_engine.enable_real_time_protection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_real_time_protection: Option<bool>,
    /// Overrides `antivirus_engine.passive_mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
}

/// A setting that can be managed, as the CLI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedKey {
    /// `antivirus_engine.enable_real_time_protection`.
    RealTimeProtection,
    /// `antivirus_engine.passive_mode`.
    PassiveMode,
}

impl ManagedSettings {
    /// The path of the file in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(MANAGED_SETTINGS_FILE)
    }

    /// Reads the managed settings of `state_dir`; none when the file does not exist. A damaged
    /// file is an error naming it and the line, never silently ignored.
    pub fn load(state_dir: &Path) -> Result<Self, EngineError> {
        let path = Self::path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(cause) => {
                return Err(EngineError::Io {
                    context: format!("cannot read managed settings {}", path.display()),
                    cause,
                });
            }
        };
        toml::from_str(&text).map_err(|err| EngineError::Config {
            file: path,
            message: crate::config::describe_toml_error(&text, &err),
        })
    }

    /// Applies the settings over `config`.
    pub fn apply(&self, config: &mut Config) {
        let engine = &mut config.antivirus_engine;
        if let Some(on) = self.antivirus_engine.enable_real_time_protection {
            engine.enable_real_time_protection = on;
        }
        if let Some(on) = self.antivirus_engine.passive_mode {
            engine.passive_mode = on;
        }
    }

    /// Sets one key.
    pub fn set(&mut self, key: ManagedKey, value: bool) {
        let slot = match key {
            ManagedKey::RealTimeProtection => {
                &mut self.antivirus_engine.enable_real_time_protection
            }
            ManagedKey::PassiveMode => &mut self.antivirus_engine.passive_mode,
        };
        *slot = Some(value);
    }

    /// Writes the settings into `state_dir` atomically.
    pub fn save(&self, state_dir: &Path) -> Result<(), EngineError> {
        let path = Self::path(state_dir);
        let staged = state_dir.join(format!(".{MANAGED_SETTINGS_FILE}.new"));
        durable::remove_if_present(&staged)?;
        let mut file = durable::create_exclusive(&staged)?;
        let text = format!(
            "# Settings changed with `vigil config`; they take precedence over the configuration file.\n{}",
            toml::to_string_pretty(self).expect("managed settings always serialize")
        );
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(durable::io_error(format!(
                "cannot write {}",
                staged.display()
            )))?;
        std::fs::rename(&staged, &path).map_err(durable::io_error(format!(
            "cannot replace {}",
            path.display()
        )))?;
        durable::sync_dir(state_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_settings_win_over_the_file_and_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.antivirus_engine.passive_mode = true;
        assert_eq!(
            ManagedSettings::load(dir.path()).unwrap(),
            Default::default()
        );
        let mut managed = ManagedSettings::default();
        managed.set(ManagedKey::RealTimeProtection, true);
        managed.set(ManagedKey::PassiveMode, false);
        managed.save(dir.path()).unwrap();
        let loaded = ManagedSettings::load(dir.path()).unwrap();
        assert_eq!(loaded, managed);
        loaded.apply(&mut config);
        assert!(config.antivirus_engine.enable_real_time_protection);
        assert!(!config.antivirus_engine.passive_mode);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            ManagedSettings::path(dir.path()),
            "[antivirus_engine]\npassive_mode = \"maybe\"\n",
        )
        .unwrap();
        let err = ManagedSettings::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(MANAGED_SETTINGS_FILE) && err.contains("line 2"),
            "{err}"
        );
    }
}
