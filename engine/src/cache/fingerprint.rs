//! The fingerprint of everything that decides what the detectors return for a file's bytes.
//!
//! A cached result is only as good as the engine that made it: other rules, plugins, limits or
//! yara-x would answer differently. Every such input is a field of [`ResultFingerprint`]; its
//! digest names the cache file, so an engine with another fingerprint never sees the entries.
//! Every configuration key is classified in [`RESULT_KEYS`] or [`NON_RESULT_KEYS`]; a test fails
//! when a key is added to the configuration without being classified.

use serde::Serialize;

use crate::config::{Config, PluginsConfig};
use crate::definitions::Definitions;
use crate::detect::yara::RuleSource;
use crate::plugin::PluginSet;

/// Bumped when the cache file format or the meaning of an entry changes.
pub(crate) const CACHE_FORMAT: u32 = 3;

/// Configuration keys that change what the detectors return; they are in [`ResultSettings`].
pub const RESULT_KEYS: &[&str] = &[
    "yara.defines",
    "yara.max_match_details",
    "antivirus_engine.max_file_size",
    "antivirus_engine.scan_timeout",
    "plugins.enabled",
    "plugins.timeout_ms",
    "plugins.memory_limit",
    "plugins.max_table_elements",
    "plugins.max_stack",
    "plugins.max_findings",
    "plugins.max_output_size",
    "plugins.max_input_size",
    "plugins.max_faults",
    "plugins.max_log_lines",
    "plugins.max_log_line",
    "archives.enabled",
    "archives.max_total_size",
    "archives.max_member_size",
    "archives.max_depth",
    "archives.max_members",
    "archives.max_ratio",
    "archives.max_time_ms",
    "archives.max_decoder_memory",
    "archives.alert_on_limit",
    "archives.alert_encrypted",
];

/// Configuration keys that do not change what the detectors return: which files are scanned
/// (exclusions, scan folders), what is done with a result (decide and act run on cached results
/// too), how the work is spread, and the caches' own sizes.
pub const NON_RESULT_KEYS: &[&str] = &[
    "antivirus_engine.maximum_scan_threads",
    "antivirus_engine.mmap_threshold",
    "antivirus_engine.exclusions",
    "antivirus_engine.threat_action",
    "antivirus_engine.threat_type_settings",
    "antivirus_engine.severity_settings.low",
    "antivirus_engine.severity_settings.medium",
    "antivirus_engine.severity_settings.high",
    "antivirus_engine.severity_settings.critical",
    "antivirus_engine.severity_settings.unknown",
    "antivirus_engine.threat_restoration_exclusion_time",
    "antivirus_engine.allowed_threats",
    "antivirus_engine.scan_cache_maximum",
    "antivirus_engine.file_hash_cache_maximum",
    "antivirus_engine.scan_cache_settle_time",
    "filesystem_scanner.full_scan_directory",
    "filesystem_scanner.full_scan_cross_file_systems",
    "filesystem_scanner.quick_scan_directories",
    "filesystem_scanner.follow_symlinks",
    "definitions.trusted_keys",
    "definitions.max_drop_size",
    "quarantine.max_size",
    "quarantine.min_free_space",
    "antivirus_engine.enable_real_time_protection",
    "antivirus_engine.passive_mode",
    "service.socket",
    "service.admin_group",
    "service.max_message_size",
    "service.max_clients",
    "service.request_timeout_ms",
    "service.definitions_stale_after_days",
    "service.client_hello_timeout_ms",
    "service.client_reply_timeout_ms",
    "service.max_reply_size",
    "real_time.paths",
    "real_time.deadline_ms",
    "real_time.process_exclusions",
    "real_time.max_file_size",
    "real_time.threads",
    "real_time.queue_depth",
    "real_time.max_directory_marks",
    "diagnostics.level",
    "diagnostics.max_log_size",
    "diagnostics.release_ring",
    "diagnostics.max_bundle_history",
    "updates.how_to_check",
    "updates.channel_name",
    "updates.manifest_server",
    "updates.update_cache",
    "updates.proxy",
    "updates.ca_file",
    "updates.check_interval_minutes",
    "updates.timeout_ms",
    "updates.retries",
    "updates.retry_backoff_ms",
    "updates.max_download_size",
];

/// The configuration keys of [`RESULT_KEYS`], as values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultSettings {
    /// `antivirus_engine.max_file_size`.
    pub max_file_size: u64,
    /// `antivirus_engine.scan_timeout`.
    pub scan_timeout: u64,
    /// `[plugins]`, every key.
    pub plugins: PluginsConfig,
    /// `[yara]`, every key (`defines` with any `--define` merged in by the engine builder).
    pub yara: crate::config::YaraConfig,
    /// `[archives]`, every key.
    pub archives: crate::config::ArchivesConfig,
}

impl ResultSettings {
    /// The result-changing part of `config`.
    pub fn of(config: &Config) -> Self {
        Self {
            max_file_size: config.antivirus_engine.max_file_size,
            scan_timeout: config.antivirus_engine.scan_timeout,
            plugins: config.plugins.clone(),
            yara: config.yara.clone(),
            archives: config.archives.clone(),
        }
    }
}

/// A rule source or plugin, by name and content digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// Where it came from (a path, or a path inside the definitions) and, for plugins, the name
    /// and version it gives itself.
    pub name: String,
    /// BLAKE3 of its content.
    pub blake3: String,
}

/// Everything that decides a file's detector results, besides its bytes and name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultFingerprint {
    /// [`CACHE_FORMAT`].
    pub cache_format: u32,
    /// This engine's version.
    pub engine: String,
    /// The yara-x version rules are compiled and run with.
    pub yara_x: String,
    /// The active definitions' version.
    pub definitions_version: u64,
    /// The active definitions' content digest.
    pub definitions_digest: String,
    /// `--rules` sources added to the definitions' rules.
    pub extra_rules: Vec<Component>,
    /// The plugins that run, in order (none with `--no-plugins`).
    pub plugins: Vec<Component>,
    /// The result-changing configuration.
    pub settings: ResultSettings,
}

impl ResultFingerprint {
    /// The fingerprint of an engine made of `definitions`, `extra_rules` and `plugins` (the ones
    /// that run: none when plugins are off) under `config`.
    pub fn new(
        config: &Config,
        definitions: &Definitions,
        extra_rules: &[RuleSource],
        plugins: &PluginSet,
    ) -> Self {
        Self {
            cache_format: CACHE_FORMAT,
            engine: env!("CARGO_PKG_VERSION").into(),
            yara_x: crate::builtin::YARA_X_VERSION.into(),
            definitions_version: definitions.info.version,
            definitions_digest: definitions.digest.clone(),
            extra_rules: extra_rules
                .iter()
                .map(|source| Component {
                    name: source.origin.clone(),
                    blake3: blake3::hash(source.text.as_bytes()).to_hex().to_string(),
                })
                .collect(),
            plugins: plugins
                .plugins()
                .iter()
                .map(|plugin| Component {
                    name: format!("{} {}", plugin.info.name, plugin.info.version),
                    blake3: plugin.info.digest.clone(),
                })
                .collect(),
            settings: ResultSettings::of(config),
        }
    }

    /// BLAKE3 of the fingerprint's canonical (JSON) form.
    pub fn digest(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).expect("the fingerprint always serializes");
        *blake3::hash(&json).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every leaf key of the configuration, dotted (`plugins.max_stack`); arrays, and tables
    /// whose keys the user chooses (empty by default, such as `yara.defines`), are leaves.
    fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    leaves(child, &path, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }

    /// The default configuration with the value at `key` changed.
    fn changed(key: &str) -> Config {
        let mut value = serde_json::to_value(Config::default()).unwrap();
        let mut slot = &mut value;
        for part in key.split('.') {
            slot = slot.get_mut(part).unwrap();
        }
        *slot = match slot.take() {
            Value::Bool(flag) => Value::Bool(!flag),
            Value::Number(n) => Value::from(n.as_u64().unwrap() + 1),
            Value::Array(mut items) if key == "antivirus_engine.exclusions" => {
                items.push(serde_json::json!({"name": "*.x"}));
                Value::Array(items)
            }
            Value::Array(mut items) => {
                items.push(Value::from("/x"));
                Value::Array(items)
            }
            Value::String(text) if key.ends_with("threat_action") => {
                assert_eq!(text, "report");
                Value::from("quarantine")
            }
            Value::String(_) if key.contains("severity_settings") => Value::from("off"),
            Value::String(_) if key == "diagnostics.level" => Value::from("optional"),
            Value::String(_) if key == "updates.how_to_check" => Value::from("automatic"),
            Value::Null => Value::from("/x"),
            Value::Object(mut map) if key.ends_with("threat_type_settings") => {
                map.insert("Packed".into(), Value::from("off"));
                Value::Object(map)
            }
            Value::String(text) => Value::from(format!("{text}x")),
            Value::Object(mut map) => {
                map.insert("x".into(), Value::Bool(true));
                Value::Object(map)
            }
        };
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_config_key_is_classified() {
        let mut keys = Vec::new();
        leaves(
            &serde_json::to_value(Config::default()).unwrap(),
            "",
            &mut keys,
        );
        for key in &keys {
            let result = RESULT_KEYS.contains(&key.as_str());
            let other = NON_RESULT_KEYS.contains(&key.as_str());
            assert!(
                result ^ other,
                "configuration key {key} must be listed in exactly one of RESULT_KEYS (it changes \
                 what detectors return: add it to ResultSettings) or NON_RESULT_KEYS"
            );
        }
        for listed in RESULT_KEYS.iter().chain(NON_RESULT_KEYS) {
            assert!(keys.iter().any(|key| key == listed), "{listed} is gone");
        }
    }

    #[test]
    fn result_keys_change_the_settings_and_others_do_not() {
        let default = ResultSettings::of(&Config::default());
        for key in RESULT_KEYS {
            assert_ne!(ResultSettings::of(&changed(key)), default, "{key}");
        }
        for key in NON_RESULT_KEYS {
            assert_eq!(ResultSettings::of(&changed(key)), default, "{key}");
        }
    }
}
