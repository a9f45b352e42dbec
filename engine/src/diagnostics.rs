//! Diagnostic data: events about how the engine behaves, written only to a local JSON Lines log
//! in the state directory (`diagnostics/events.jsonl`, rotated to `events.1.jsonl` when it
//! reaches half of `diagnostics.max_log_size`, so the two files stay within it). Nothing leaves
//! the machine; a support bundle (`vigil diagnostic create`) carries the log when an
//! administrator sends one.
//!
//! Every event has the common fields of [`CommonFields`] and its own `event` name and `level`.
//! `required` events are always written: configuration snapshots (exclusions redacted to counts),
//! update reports, scan summaries, crashes, support bundles. `optional` ones (performance
//! aggregates, feature usage) only at `diagnostics.level = "optional"`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::config::{Config, DiagnosticLevel};
use crate::durable::io_error;
use crate::error::EngineError;

/// The log's folder in the state dir.
pub const DIAGNOSTICS_DIR: &str = "diagnostics";
/// The current log file.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The rotated-out log file.
pub const ROTATED_FILE: &str = "events.1.jsonl";

/// The fields every event has (its `time`, `event` and `level`, then [`CommonFields`]), so a
/// reader can tell them from the event's own.
pub const EVENT_FIELDS: [&str; 10] = [
    "time",
    "event",
    "level",
    "platform",
    "machine_guid",
    "hostname",
    "app_version",
    "sig_version",
    "supported_compressions",
    "release_ring",
];

/// Fields every event carries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommonFields {
    /// `linux-<arch>`.
    pub platform: String,
    /// A random id made once per state dir (not derived from the hardware).
    pub machine_guid: String,
    /// The host's name.
    pub hostname: String,
    /// This engine's version.
    pub app_version: String,
    /// The definitions version in use.
    pub sig_version: u64,
    /// Compressions a support bundle and a drop may use.
    pub supported_compressions: Vec<&'static str>,
    /// `diagnostics.release_ring`.
    pub release_ring: String,
}

/// The diagnostic log of one state dir.
pub struct DiagnosticLog {
    dir: PathBuf,
    level: DiagnosticLevel,
    max_size: u64,
    common: CommonFields,
}

impl DiagnosticLog {
    /// Opens the log of `state_dir` under `config`, for definitions version `sig_version`
    /// (creating the folder and the machine id when needed).
    pub fn open(state_dir: &Path, config: &Config, sig_version: u64) -> Result<Self, EngineError> {
        let dir = state_dir.join(DIAGNOSTICS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        Ok(Self {
            common: CommonFields {
                platform: format!("linux-{}", std::env::consts::ARCH),
                machine_guid: machine_guid(&dir)?,
                hostname: hostname(),
                app_version: crate::VERSION.into(),
                sig_version,
                supported_compressions: vec!["gzip"],
                release_ring: config.diagnostics.release_ring.clone(),
            },
            level: config.diagnostics.level,
            max_size: config.diagnostics.max_log_size,
            dir,
        })
    }

    /// The common fields.
    pub fn common(&self) -> &CommonFields {
        &self.common
    }

    /// Whether events of `level` are written.
    pub fn wants(&self, level: DiagnosticLevel) -> bool {
        level <= self.level
    }

    /// Writes one event (nothing when its level is above the configured one). `fields` is a
    /// JSON object with the event's own fields.
    pub fn record(
        &self,
        event: &str,
        level: DiagnosticLevel,
        fields: Value,
    ) -> Result<(), EngineError> {
        if !self.wants(level) {
            return Ok(());
        }
        let mut line = serde_json::to_value(&self.common).expect("common fields serialize");
        line["time"] = json!(unix_now());
        line["event"] = json!(event);
        line["level"] = json!(level);
        if let Value::Object(own) = fields {
            for (key, value) in own {
                line[key] = value;
            }
        }
        let mut text = line.to_string();
        text.push('\n');
        self.append(text.as_bytes())
    }

    /// Appends one line (one `write`, so lines of concurrent writers never interleave),
    /// rotating first when the file would pass half the size bound.
    fn append(&self, line: &[u8]) -> Result<(), EngineError> {
        let path = self.dir.join(EVENTS_FILE);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        if size > 0 && size + line.len() as u64 > self.max_size / 2 {
            std::fs::rename(&path, self.dir.join(ROTATED_FILE))
                .map_err(io_error(format!("cannot rotate {}", path.display())))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_error(format!("cannot open {}", path.display())))?;
        file.write_all(line)
            .map_err(io_error(format!("cannot write {}", path.display())))
    }

    /// Writes a configuration snapshot when the configuration differs from the last one
    /// written (or always, with `reason` set, such as `service_start`).
    pub fn snapshot_config(
        &self,
        config: &Config,
        reason: Option<&str>,
    ) -> Result<(), EngineError> {
        let snapshot = config_snapshot(config);
        let digest = blake3::hash(snapshot.to_string().as_bytes())
            .to_hex()
            .to_string();
        let marker = self.dir.join("last_config_snapshot");
        let unchanged = std::fs::read_to_string(&marker).is_ok_and(|last| last.trim() == digest);
        if unchanged && reason.is_none() {
            return Ok(());
        }
        self.record(
            "config_snapshot",
            DiagnosticLevel::Required,
            json!({"reason": reason.unwrap_or("changed"), "config": snapshot}),
        )?;
        std::fs::write(&marker, &digest)
            .map_err(io_error(format!("cannot write {}", marker.display())))
    }
}

/// Events of the log of `state_dir` at or after `since` (Unix seconds), oldest first. Lines that
/// are not JSON (a torn write after a crash) are passed over.
pub fn events(state_dir: &Path, since: Option<i64>) -> Result<Vec<Value>, EngineError> {
    let dir = state_dir.join(DIAGNOSTICS_DIR);
    let mut out = Vec::new();
    for name in [ROTATED_FILE, EVENTS_FILE] {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(cause) => {
                return Err(EngineError::Io {
                    context: format!("cannot read {}", path.display()),
                    cause,
                });
            }
        };
        out.extend(
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|event| {
                    since.is_none_or(|since| event["time"].as_i64().is_some_and(|t| t >= since))
                }),
        );
    }
    Ok(out)
}

/// What a configuration snapshot says: the settings, with every path and name an administrator
/// wrote (exclusions, allowed threats, process exclusions, watched paths) reduced to counts.
pub fn config_snapshot(config: &Config) -> Value {
    let mut value = serde_json::to_value(config).expect("the configuration serializes");
    let exclusions = &config.antivirus_engine.exclusions;
    let count = |test: fn(&crate::config::ExclusionConfig) -> bool| {
        exclusions.iter().filter(|e| test(e)).count()
    };
    value["antivirus_engine"]["exclusions"] = json!({
        "paths": count(|e| e.path.is_some() && !e.is_directory),
        "directories": count(|e| e.is_directory),
        "extensions": count(|e| e.extension.is_some()),
        "names": count(|e| e.name.is_some()),
    });
    value["antivirus_engine"]["allowed_threats"] =
        json!(config.antivirus_engine.allowed_threats.len());
    value["real_time"]["paths"] = json!(config.real_time.paths.len());
    value["real_time"]["process_exclusions"] = json!(config.real_time.process_exclusions.len());
    value["filesystem_scanner"]["quick_scan_directories"] =
        json!(config.filesystem_scanner.quick_scan_directories.len());
    value["definitions"]["trusted_keys"] = json!(config.definitions.trusted_keys.len());
    value["yara"]["defines"] = json!(config.yara.defines.len());
    for key in ["manifest_server", "proxy"] {
        let set = value["updates"][key]
            .as_str()
            .is_some_and(|text| !text.is_empty());
        value["updates"][key] = json!(if set { "set" } else { "" });
    }
    value["updates"]["update_cache"] = json!(config.updates.update_cache.is_some());
    value["updates"]["ca_file"] = json!(config.updates.ca_file.is_some());
    value
}

/// The machine id of this state dir: made once from the kernel's random generator.
fn machine_guid(dir: &Path) -> Result<String, EngineError> {
    let path = dir.join("machine_guid");
    if let Ok(text) = std::fs::read_to_string(&path)
        && text.trim().len() == 32
    {
        return Ok(text.trim().to_string());
    }
    let bytes = crate::durable::random_bytes::<16>()?;
    let guid = vigil_drop::hex(&bytes);
    std::fs::write(&path, &guid).map_err(io_error(format!("cannot write {}", path.display())))?;
    Ok(guid)
}

fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return String::new();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

fn unix_now() -> i64 {
    crate::state::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_level_writes_no_optional_events_and_the_log_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.diagnostics.max_log_size = 64 * 1024;
        let log = DiagnosticLog::open(dir.path(), &config, 3).unwrap();
        log.record(
            "scan_summary",
            DiagnosticLevel::Required,
            json!({"files": 1}),
        )
        .unwrap();
        log.record(
            "performance",
            DiagnosticLevel::Optional,
            json!({"files_per_second": 1}),
        )
        .unwrap();
        let written = events(dir.path(), None).unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0]["event"], "scan_summary");
        assert_eq!(written[0]["sig_version"], 3);
        assert_eq!(written[0]["machine_guid"].as_str().unwrap().len(), 32);
        for index in 0..2000 {
            log.record(
                "scan_summary",
                DiagnosticLevel::Required,
                json!({"files": index}),
            )
            .unwrap();
        }
        let diagnostics = dir.path().join(DIAGNOSTICS_DIR);
        let total: u64 = [EVENTS_FILE, ROTATED_FILE]
            .iter()
            .map(|name| std::fs::metadata(diagnostics.join(name)).unwrap().len())
            .sum();
        assert!(total <= 64 * 1024, "{total}");
        let last = events(dir.path(), None).unwrap();
        assert_eq!(
            last.last().unwrap()["files"],
            1999,
            "the newest events are kept"
        );
    }

    #[test]
    fn event_fields_are_exactly_what_every_event_carries() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiagnosticLog::open(dir.path(), &Config::default(), 1).unwrap();
        log.record("x", DiagnosticLevel::Required, json!({}))
            .unwrap();
        let written = events(dir.path(), None).unwrap();
        let mut keys: Vec<&str> = written[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = EVENT_FIELDS.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn snapshots_redact_paths_to_counts_and_are_written_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config
            .antivirus_engine
            .exclusions
            .push(crate::config::ExclusionConfig {
                path: Some("/home/alice/secret-project".into()),
                ..Default::default()
            });
        let log = DiagnosticLog::open(dir.path(), &config, 1).unwrap();
        log.snapshot_config(&config, None).unwrap();
        log.snapshot_config(&config, None).unwrap();
        config.antivirus_engine.passive_mode = true;
        log.snapshot_config(&config, None).unwrap();
        let written = events(dir.path(), None).unwrap();
        assert_eq!(written.len(), 2, "one per change");
        let text = serde_json::to_string(&written).unwrap();
        assert!(!text.contains("alice"), "{text}");
        assert_eq!(
            written[0]["config"]["antivirus_engine"]["exclusions"]["paths"],
            1
        );
    }
}
