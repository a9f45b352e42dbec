//! Configuration: the TOML file a user or administrator writes, with defaults for every key.
//!
//! Field names follow the product family this engine serves (`antivirus_engine.*`,
//! `filesystem_scanner.*`). Unknown keys are rejected, and every error names the file, the line and
//! the key, so a typo never silently turns a setting off.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// The whole effective configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Settings of the scanning engine itself.
    pub antivirus_engine: AntivirusEngine,
    /// Settings of on-demand file-system scans (quick and full).
    pub filesystem_scanner: FilesystemScanner,
    /// Settings of definitions updates.
    pub definitions: DefinitionsConfig,
    /// Settings and limits of WebAssembly detection plugins.
    pub plugins: PluginsConfig,
    /// Limits of the quarantine vault.
    pub quarantine: QuarantineConfig,
    /// Settings of the YARA rules.
    pub yara: YaraConfig,
    /// Archives and compressed files: whether their members are scanned, and the limits.
    pub archives: ArchivesConfig,
    /// The resident service (`vigil daemon`): its socket and who may administer it.
    pub service: ServiceConfig,
    /// Real-time protection: what the service watches and how fast it must answer.
    pub real_time: RealTimeConfig,
    /// Diagnostic data written locally: level and bounds.
    pub diagnostics: DiagnosticsConfig,
    /// Automatic definitions updates from a channel.
    pub updates: UpdatesConfig,
}

/// `[diagnostics]`: events about how the engine behaves, written only to a local log in the
/// state dir (nothing leaves the machine).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsConfig {
    /// `required` (configuration snapshots, update reports, scan summaries, crashes) or
    /// `optional` (also performance aggregates and feature usage).
    pub level: DiagnosticLevel,
    /// Most bytes the log takes (two files, the older one rotated out).
    pub max_log_size: u64,
    /// The release ring named in every event.
    pub release_ring: String,
    /// Most threat-history lines a support bundle carries (the newest).
    pub max_bundle_history: usize,
}

/// How much diagnostic data is written.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DiagnosticLevel {
    /// Only what is needed to keep the product working and secure.
    #[default]
    Required,
    /// Also performance aggregates and feature usage.
    Optional,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        Self {
            level: DiagnosticLevel::Required,
            max_log_size: 8 * 1024 * 1024,
            release_ring: "production".into(),
            max_bundle_history: 10_000,
        }
    }
}

/// `[updates]`: where definitions come from when `vigil definitions update` is given no file, and
/// how the service checks (`how_to_check = "automatic"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpdatesConfig {
    /// `automatic` (the service checks every `check_interval_minutes`) or `manual`.
    pub how_to_check: HowToCheck,
    /// The channel followed (a folder of the manifest server).
    pub channel_name: String,
    /// Where channels are published: `https://`, `http://` or `file://` (empty: none set).
    pub manifest_server: String,
    /// Where downloads are kept while they arrive (resumed from there); default
    /// `<state dir>/update_cache`.
    pub update_cache: Option<PathBuf>,
    /// An HTTP proxy (`http://host:port`) for downloads (empty: none).
    pub proxy: String,
    /// A PEM file of certificate authorities trusted for `https://` instead of the built-in
    /// Mozilla roots (for a private mirror); none: the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Minutes between automatic checks.
    pub check_interval_minutes: u64,
    /// Longest wait to connect or for the next bytes, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts after a failed download, with doubling waits.
    pub retries: u32,
    /// The first wait before a retry, in milliseconds.
    pub retry_backoff_ms: u64,
    /// Largest drop downloaded, in bytes.
    pub max_download_size: u64,
}

/// How updates are checked.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HowToCheck {
    /// By the service, on its interval.
    Automatic,
    /// Only when `vigil definitions update` runs.
    #[default]
    Manual,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        Self {
            how_to_check: HowToCheck::Manual,
            channel_name: "production".into(),
            manifest_server: String::new(),
            update_cache: None,
            proxy: String::new(),
            ca_file: None,
            check_interval_minutes: 60,
            timeout_ms: 30_000,
            retries: 3,
            retry_backoff_ms: 2_000,
            max_download_size: 256 * 1024 * 1024,
        }
    }
}

impl UpdatesConfig {
    /// Checks the settings are usable; the message names the key.
    fn validate(&self) -> Result<(), String> {
        let server = &self.manifest_server;
        if !server.is_empty()
            && !["https://", "http://", "file://"]
                .iter()
                .any(|scheme| server.starts_with(scheme))
        {
            return Err(format!(
                "updates.manifest_server: {server:?} must start with https://, http:// or file://"
            ));
        }
        if !self.proxy.is_empty() && !self.proxy.starts_with("http://") {
            return Err(format!(
                "updates.proxy: {:?} must start with http://",
                self.proxy
            ));
        }
        if self.channel_name.is_empty()
            || !self
                .channel_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "updates.channel_name: {:?} must be letters, digits, - or _",
                self.channel_name
            ));
        }
        for (key, path) in [
            ("update_cache", &self.update_cache),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(path) = path
                && !path.is_absolute()
            {
                return Err(format!("updates.{key}: must be an absolute path"));
            }
        }
        let at_least_one = [
            ("check_interval_minutes", self.check_interval_minutes),
            ("timeout_ms", self.timeout_ms),
            ("max_download_size", self.max_download_size),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(format!("updates.{key}: must be at least 1"));
        }
        Ok(())
    }
}

/// `[service]`: the resident service's local socket. Who may do what is decided by the peer's
/// credentials (`SO_PEERCRED`), never by the socket file's mode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// The Unix socket the service listens on (created mode 0666).
    pub socket: PathBuf,
    /// Members of this group (and root) may administer the service: scan paths, reload,
    /// change settings. Others may only scan descriptors they pass.
    pub admin_group: String,
    /// Largest request, in bytes; a larger one is refused and the connection closed.
    pub max_message_size: u32,
    /// Most clients connected at once; more are refused.
    pub max_clients: u32,
    /// Longest wait for the rest of a request once it has begun, in milliseconds.
    pub request_timeout_ms: u64,
    /// Definitions older than this many days make `vigil health` report them stale.
    pub definitions_stale_after_days: u64,
    /// How long the CLI waits for the service's hello before working in-process, in
    /// milliseconds.
    pub client_hello_timeout_ms: u64,
    /// How long the CLI waits for a reply that is not a scan's output (a reload builds an
    /// engine), in milliseconds.
    pub client_reply_timeout_ms: u64,
    /// Largest reply the CLI accepts, in bytes (a scan's SARIF document is one reply).
    pub max_reply_size: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/vigil/vigil.sock"),
            admin_group: "vigil".into(),
            max_message_size: 1024 * 1024,
            max_clients: 256,
            request_timeout_ms: 10_000,
            definitions_stale_after_days: 7,
            client_hello_timeout_ms: 10_000,
            client_reply_timeout_ms: 120_000,
            max_reply_size: 512 * 1024 * 1024,
        }
    }
}

impl ServiceConfig {
    /// Checks the settings are usable; the message names the key.
    fn validate(&self) -> Result<(), String> {
        if !self.socket.is_absolute() {
            return Err("service.socket: must be an absolute path".into());
        }
        for (key, size) in [
            ("max_message_size", self.max_message_size),
            ("max_reply_size", self.max_reply_size),
        ] {
            if size < 1024 {
                return Err(format!("service.{key}: must be at least 1024 bytes"));
            }
        }
        let at_least_one = [
            ("max_clients", u64::from(self.max_clients)),
            ("request_timeout_ms", self.request_timeout_ms),
            (
                "definitions_stale_after_days",
                self.definitions_stale_after_days,
            ),
            ("client_hello_timeout_ms", self.client_hello_timeout_ms),
            ("client_reply_timeout_ms", self.client_reply_timeout_ms),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(format!("service.{key}: must be at least 1"));
        }
        Ok(())
    }
}

/// `[real_time]`: real-time protection (fanotify). Whether it is on, and whether it may block,
/// are `antivirus_engine.enable_real_time_protection` and `antivirus_engine.passive_mode`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RealTimeConfig {
    /// What is watched. A mount point is watched whole; another folder is watched with every
    /// folder under it that exists when protection starts (on the same file system).
    pub paths: Vec<PathBuf>,
    /// Every permission event is answered within this many milliseconds: allow when the scan
    /// has not finished (counted as a missed deadline).
    pub deadline_ms: u64,
    /// Executables (absolute paths) whose file accesses are never scanned or blocked.
    pub process_exclusions: Vec<PathBuf>,
    /// Files larger than this many bytes are let through unscanned on open (0: no limit).
    pub max_file_size: u64,
    /// Threads scanning files for real-time protection.
    pub threads: usize,
    /// Events waiting for a scan thread; past this, events are let through and counted.
    pub queue_depth: usize,
    /// Most folders marked under the `paths` that are not mount points.
    pub max_directory_marks: usize,
}

impl Default for RealTimeConfig {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("/")],
            deadline_ms: 1000,
            process_exclusions: Vec::new(),
            max_file_size: 64 * 1024 * 1024,
            threads: 2,
            queue_depth: 4096,
            max_directory_marks: 100_000,
        }
    }
}

impl RealTimeConfig {
    /// Checks the settings are usable; the message names the key.
    fn validate(&self) -> Result<(), String> {
        for (key, paths) in [
            ("paths", &self.paths),
            ("process_exclusions", &self.process_exclusions),
        ] {
            if let Some(bad) = paths.iter().find(|path| !path.is_absolute()) {
                return Err(format!(
                    "real_time.{key}: {} is not an absolute path",
                    bad.display()
                ));
            }
        }
        let at_least_one = [
            ("deadline_ms", self.deadline_ms),
            ("threads", self.threads as u64),
            ("queue_depth", self.queue_depth as u64),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(format!("real_time.{key}: must be at least 1"));
        }
        Ok(())
    }
}

/// `[archives]`: members of archives and compressed files are scanned like files, recursively,
/// within these limits (per top-level file on disk). A limit stops what it bounds cleanly, with a
/// `limit` record; what was found before stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ArchivesConfig {
    /// Whether members are extracted and scanned at all.
    pub enabled: bool,
    /// Most bytes extracted from one file on disk, all members and depths together.
    pub max_total_size: u64,
    /// Most bytes of one member scanned; a larger member's first bytes are.
    pub max_member_size: u64,
    /// Deepest nesting extracted (an archive in an archive is depth 2).
    pub max_depth: u32,
    /// Most members extracted from one file on disk.
    pub max_members: u64,
    /// Largest ratio of a member's size to its compressed size, past its first MiB.
    pub max_ratio: u64,
    /// Longest time spent extracting one file on disk, in milliseconds.
    pub max_time_ms: u64,
    /// Most memory one decoder may ask for (an xz or LZMA dictionary, a zstd window), in bytes.
    pub max_decoder_memory: u64,
    /// Report a file as a detection when a limit stopped part of its extraction.
    pub alert_on_limit: bool,
    /// Report a file as a detection when it holds an encrypted member.
    pub alert_encrypted: bool,
}

impl Default for ArchivesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_total_size: 400 * 1024 * 1024,
            max_member_size: 64 * 1024 * 1024,
            max_depth: 17,
            max_members: 10_000,
            max_ratio: 1_000,
            max_time_ms: 60_000,
            max_decoder_memory: 64 * 1024 * 1024,
            alert_on_limit: false,
            alert_encrypted: false,
        }
    }
}

impl ArchivesConfig {
    /// Checks the limits are usable; the message names the key.
    fn validate(&self) -> Result<(), String> {
        let at_least_one = [
            ("max_total_size", self.max_total_size),
            ("max_member_size", self.max_member_size),
            ("max_depth", self.max_depth.into()),
            ("max_members", self.max_members),
            ("max_ratio", self.max_ratio),
            ("max_time_ms", self.max_time_ms),
            ("max_decoder_memory", self.max_decoder_memory),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(format!("archives.{key}: must be at least 1"));
        }
        Ok(())
    }
}

/// `[yara]`: constants the rules may use as external variables, as `yr --define` sets them
/// (`[yara.defines]` with `name = value`: text, integer, float or boolean; the per-file variables
/// `filename`, `filepath`, `extension`, `filetype`, `owner` are set by Vigil), and how many
/// pattern matches a detection lists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct YaraConfig {
    /// The constants, by name.
    pub defines: crate::detect::externals::Defines,
    /// Most pattern matches listed per YARA detection (the rest are counted in `more_matches`).
    pub max_match_details: usize,
}

impl Default for YaraConfig {
    fn default() -> Self {
        Self {
            defines: Default::default(),
            max_match_details: 16,
        }
    }
}

/// `[quarantine]`: how much the vault may take, so that a local user who plants detectable
/// files cannot fill the disk through it. A file that does not fit is left in place and reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Largest total size of the files in the vault, in bytes.
    pub max_size: u64,
    /// Bytes that must stay free on the vault's file system after a file is copied in.
    pub min_free_space: u64,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        Self {
            max_size: 4 * 1024 * 1024 * 1024,
            min_free_space: 1024 * 1024 * 1024,
        }
    }
}

/// `[plugins]`: whether plugins run, and the limits every plugin call runs under.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Whether the definitions' plugins (and `--plugin` ones) run at all.
    pub enabled: bool,
    /// Wall-clock time one call (`describe` or one file's `scan`) may take, in milliseconds.
    pub timeout_ms: u64,
    /// Largest linear memory a plugin instance may grow to, in bytes.
    pub memory_limit: u64,
    /// Largest number of elements in a plugin's tables.
    pub max_table_elements: u32,
    /// WebAssembly stack a call may use, in bytes (deep recursion traps beyond it).
    pub max_stack: u64,
    /// Most findings one call may return; more is a fault.
    pub max_findings: u32,
    /// Most bytes of text (threat names and descriptions) one call may return; more is a fault.
    pub max_output_size: u64,
    /// Most bytes of a file passed to a plugin that asks for the whole file; larger files are
    /// passed truncated, marked incomplete.
    pub max_input_size: u64,
    /// Faults after which a plugin is disabled for the rest of the scan.
    pub max_faults: u32,
    /// Log lines one call may write; the rest are dropped.
    pub max_log_lines: u32,
    /// Longest log line kept, in bytes; longer ones are cut.
    pub max_log_line: u32,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_ms: 1000,
            memory_limit: 64 * 1024 * 1024,
            max_table_elements: 10_000,
            max_stack: 512 * 1024,
            max_findings: 100,
            max_output_size: 64 * 1024,
            max_input_size: 16 * 1024 * 1024,
            max_faults: 3,
            max_log_lines: 10,
            max_log_line: 512,
        }
    }
}

impl PluginsConfig {
    /// Checks the limits are usable; the message names the key.
    fn validate(&self) -> Result<(), String> {
        let at_least_one = [
            ("timeout_ms", self.timeout_ms),
            ("memory_limit", self.memory_limit),
            ("max_stack", self.max_stack),
            ("max_faults", self.max_faults.into()),
            ("max_input_size", self.max_input_size),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(format!("plugins.{key}: must be at least 1"));
        }
        if self.max_stack > MAX_PLUGIN_STACK {
            return Err(format!(
                "plugins.max_stack: at most {MAX_PLUGIN_STACK} bytes (plugins run on the scan threads' stacks)"
            ));
        }
        if self.memory_limit > 4 * 1024 * 1024 * 1024 {
            return Err("plugins.memory_limit: at most 4 GiB (32-bit WebAssembly)".into());
        }
        if self.max_input_size > u32::MAX.into() || self.max_input_size > self.memory_limit {
            return Err("plugins.max_input_size: must fit in plugins.memory_limit".into());
        }
        Ok(())
    }
}

/// The smallest `antivirus_engine.scan_cache_settle_time`: the coarsest common timestamp
/// granularity (2 s on FAT) plus the lag of the kernel's timestamp clock, rounded up.
pub const MIN_SETTLE_TIME: u64 = 3;

/// The largest `plugins.max_stack`: worker threads get this much more native stack than default.
pub const MAX_PLUGIN_STACK: u64 = 4 * 1024 * 1024;

/// `[definitions]`: who may sign definitions drops and how large they may be.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DefinitionsConfig {
    /// Public key lines (`vigil-ed25519 <hex>`) whose signatures are accepted on drops.
    pub trusted_keys: Vec<String>,
    /// Largest drop accepted, in bytes (the archive and the sum of its entries).
    pub max_drop_size: u64,
}

impl Default for DefinitionsConfig {
    fn default() -> Self {
        Self {
            trusted_keys: Vec::new(),
            max_drop_size: 256 * 1024 * 1024,
        }
    }
}

/// `[antivirus_engine]`: how files are scanned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AntivirusEngine {
    /// Worker threads for a scan; 0 means one per available core.
    pub maximum_scan_threads: usize,
    /// Files larger than this many bytes are skipped (reported as `skipped`); 0 means no limit.
    pub max_file_size: u64,
    /// Seconds one file's YARA scan may take before it is abandoned and reported as an error.
    pub scan_timeout: u64,
    /// Files up to this many bytes are read into a per-thread buffer; larger ones are memory-mapped.
    pub mmap_threshold: u64,
    /// Paths, extensions and file-name globs that are never scanned.
    pub exclusions: Vec<ExclusionConfig>,
    /// What happens to a detected file that no `threat_type_settings` or `severity_settings`
    /// entry decides: `report` it, or move it into the `quarantine`.
    pub threat_action: ThreatAction,
    /// The action for each threat type (the part of a threat name before `:`, such as `Packed`,
    /// `Obfuscated` or `Backdoor`; compared ignoring case). Decides before `severity_settings`.
    pub threat_type_settings: std::collections::BTreeMap<String, DetectionAction>,
    /// The action for each severity; decides when `threat_type_settings` does not.
    pub severity_settings: SeveritySettings,
    /// Seconds during which a file restored from quarantine (by content digest) is not detected
    /// again; 0 turns the exclusion off.
    pub threat_restoration_exclusion_time: u64,
    /// Threat names whose detections are recorded as allowed, not reported or quarantined.
    pub allowed_threats: Vec<String>,
    /// Most files whose scan result is kept between scans, keyed by file identity (size of the
    /// scan cache, in entries); 0 turns the scan cache off.
    pub scan_cache_maximum: u64,
    /// Most file contents (BLAKE3 digests) whose scan result is kept, so that the same content
    /// under many names is scanned once (size of the file-hash cache, in entries); 0 turns it off.
    pub file_hash_cache_maximum: u64,
    /// Seconds a file's modification and status-change times must lie in the past before its
    /// result is kept in the scan cache (at least 3): a write that lands within the file system's
    /// timestamp granularity, or through a shared mapping not yet written back, may leave them
    /// unchanged.
    pub scan_cache_settle_time: u64,
    /// Whether the service watches files as they are opened, written and run (fanotify).
    pub enable_real_time_protection: bool,
    /// Detect and report only: never block an access and never act on a file (for machines
    /// where another product is in charge).
    pub passive_mode: bool,
}

/// What a scan does with a detected file.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ThreatAction {
    /// Report it only.
    #[default]
    Report,
    /// Move it into the quarantine vault.
    Quarantine,
}

/// What happens to a detection of one threat type or severity.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DetectionAction {
    /// Decided further on: by `severity_settings` for a threat type, by `threat_action` for a
    /// severity.
    #[default]
    Default,
    /// Reported (and recorded in the threat history), never quarantined.
    Audit,
    /// Reported and moved into the quarantine vault.
    Quarantine,
    /// Recorded as allowed, not reported as a threat.
    Off,
}

/// `[antivirus_engine.severity_settings]`: the action for each severity. By default low and
/// medium detections (packers, obfuscation, tools that have honest uses) are audited, so a
/// `threat_action = "quarantine"` moves only what is clearly malicious.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SeveritySettings {
    /// Detections of severity `low`.
    pub low: DetectionAction,
    /// Detections of severity `medium`.
    pub medium: DetectionAction,
    /// Detections of severity `high`.
    pub high: DetectionAction,
    /// Detections of severity `critical`.
    pub critical: DetectionAction,
    /// Detections whose rule states no severity.
    pub unknown: DetectionAction,
}

impl Default for SeveritySettings {
    fn default() -> Self {
        Self {
            low: DetectionAction::Audit,
            medium: DetectionAction::Audit,
            high: DetectionAction::Default,
            critical: DetectionAction::Default,
            unknown: DetectionAction::Default,
        }
    }
}

impl SeveritySettings {
    /// The setting for a finding's severity (any unrecognised text counts as `unknown`).
    pub fn of(&self, severity: &str) -> DetectionAction {
        match severity {
            "low" => self.low,
            "medium" => self.medium,
            "high" => self.high,
            "critical" => self.critical,
            _ => self.unknown,
        }
    }
}

impl Default for AntivirusEngine {
    fn default() -> Self {
        Self {
            maximum_scan_threads: 0,
            max_file_size: 128 * 1024 * 1024,
            scan_timeout: 60,
            mmap_threshold: 1024 * 1024,
            exclusions: Vec::new(),
            threat_action: ThreatAction::Report,
            threat_type_settings: Default::default(),
            severity_settings: SeveritySettings::default(),
            threat_restoration_exclusion_time: 3600,
            allowed_threats: Vec::new(),
            scan_cache_maximum: 1_000_000,
            file_hash_cache_maximum: 100_000,
            scan_cache_settle_time: 60,
            enable_real_time_protection: false,
            passive_mode: false,
        }
    }
}

/// One exclusion as written in the configuration: exactly one of `path`, `extension` or `name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExclusionConfig {
    /// An absolute path: a file, or with `is_directory = true` a directory and all below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// With `path`: the path is a directory whose whole subtree is excluded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_directory: bool,
    /// A file extension such as `"iso"` (a leading dot is accepted), compared case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// A glob on the file name only, such as `"*.log"` or `"core.[0-9]*"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `[filesystem_scanner]`: what quick and full scans cover and how the walk behaves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemScanner {
    /// The root of a full scan.
    pub full_scan_directory: PathBuf,
    /// Whether a full scan descends into other (non-pseudo) file systems mounted below its root.
    pub full_scan_cross_file_systems: bool,
    /// The folders of a quick scan; `*` in a component matches any name (e.g. `/home/*/Downloads`).
    pub quick_scan_directories: Vec<PathBuf>,
    /// Whether symbolic links met during a walk are followed (loops are detected and reported).
    pub follow_symlinks: bool,
}

impl Default for FilesystemScanner {
    fn default() -> Self {
        let quick = [
            "/tmp",
            "/var/tmp",
            "/dev/shm",
            "/root/Downloads",
            "/root/.local/bin",
            "/root/.config/autostart",
            "/root/.config/systemd/user",
            "/home/*/Downloads",
            "/home/*/.local/bin",
            "/home/*/.config/autostart",
            "/home/*/.config/systemd/user",
            "/etc/xdg/autostart",
            "/etc/cron.d",
            "/etc/cron.hourly",
            "/etc/cron.daily",
            "/etc/cron.weekly",
            "/etc/cron.monthly",
            "/var/spool/cron",
            "/etc/systemd/system",
            "/etc/init.d",
        ];
        Self {
            full_scan_directory: PathBuf::from("/"),
            full_scan_cross_file_systems: false,
            quick_scan_directories: quick.iter().map(PathBuf::from).collect(),
            follow_symlinks: false,
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|cause| EngineError::Io {
            context: format!("cannot read configuration file {}", path.display()),
            cause,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, EngineError> {
        let config: Config = toml::from_str(text).map_err(|err| EngineError::Config {
            file: origin.to_path_buf(),
            message: describe_toml_error(text, &err),
        })?;
        config.validate().map_err(|message| EngineError::Config {
            file: origin.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Checks the rules serde cannot express; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        for (index, exclusion) in self.antivirus_engine.exclusions.iter().enumerate() {
            exclusion
                .validate()
                .map_err(|why| format!("antivirus_engine.exclusions[{index}]: {why}"))?;
        }
        if !self.filesystem_scanner.full_scan_directory.is_absolute() {
            return Err("filesystem_scanner.full_scan_directory: must be an absolute path".into());
        }
        if let Some(bad) = self
            .filesystem_scanner
            .quick_scan_directories
            .iter()
            .find(|dir| !dir.is_absolute())
        {
            return Err(format!(
                "filesystem_scanner.quick_scan_directories: {} is not an absolute path",
                bad.display()
            ));
        }
        for (index, key) in self.definitions.trusted_keys.iter().enumerate() {
            vigil_drop::parse_public_key(key)
                .map_err(|err| format!("definitions.trusted_keys[{index}]: {err}"))?;
        }
        for kind in self.antivirus_engine.threat_type_settings.keys() {
            if kind.is_empty() || kind.contains([':', '/']) {
                return Err(format!(
                    "antivirus_engine.threat_type_settings: {kind:?} is not a threat type (the part of a threat name before `:`, such as \"Packed\")"
                ));
            }
        }
        self.plugins.validate()?;
        self.archives.validate()?;
        self.service.validate()?;
        self.real_time.validate()?;
        self.updates.validate()?;
        if self.diagnostics.max_log_size < 64 * 1024 {
            return Err("diagnostics.max_log_size: must be at least 65536 bytes".into());
        }
        crate::detect::externals::check_defines(&self.yara.defines)
            .map_err(|why| format!("yara.defines: {why}"))?;
        if self.antivirus_engine.scan_timeout == 0 {
            return Err("antivirus_engine.scan_timeout: must be at least 1 second".into());
        }
        if self.antivirus_engine.scan_cache_settle_time < MIN_SETTLE_TIME {
            return Err(format!(
                "antivirus_engine.scan_cache_settle_time: must be at least {MIN_SETTLE_TIME} seconds (coarser file-system timestamps would let a change go unseen)"
            ));
        }
        Ok(())
    }

    /// The number of scan threads to use when the command line does not say.
    pub fn scan_threads(&self) -> usize {
        match self.antivirus_engine.maximum_scan_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The effective configuration as TOML text (for `vigil config show`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration model always serializes")
    }
}

impl ExclusionConfig {
    /// Checks that exactly one kind is set and that it is well formed.
    pub fn validate(&self) -> Result<(), String> {
        let kinds = [
            self.path.is_some(),
            self.extension.is_some(),
            self.name.is_some(),
        ];
        match kinds.iter().filter(|set| **set).count() {
            1 => {}
            0 => return Err("needs one of `path`, `extension` or `name`".into()),
            _ => return Err("set only one of `path`, `extension` or `name`".into()),
        }
        if self.is_directory && self.path.is_none() {
            return Err("`is_directory` goes only with `path`".into());
        }
        if let Some(path) = &self.path
            && !path.is_absolute()
        {
            return Err(format!("path {} is not absolute", path.display()));
        }
        if let Some(extension) = &self.extension {
            let bare = extension.strip_prefix('.').unwrap_or(extension);
            if bare.is_empty() || bare.contains('/') {
                return Err(format!("extension {extension:?} is not a file extension"));
            }
        }
        if let Some(name) = &self.name {
            if name.contains('/') {
                return Err(format!("name {name:?} must match a file name, not a path"));
            }
            globset::Glob::new(name).map_err(|err| format!("name {name:?}: {err}"))?;
        }
        Ok(())
    }
}

/// Renders a TOML error with its line number (toml's own message shows the offending line).
pub(crate) fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", err.message())
        }
        None => err.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err =
            parse("[antivirus_engine]\nmaximum_scan_threads = 2\nmax_fle_size = 3\n").unwrap_err();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("max_fle_size"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse("[antivirus_engine]\nscan_timeout = \"soon\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn exclusion_kinds_are_checked() {
        let ok = parse(
            "[[antivirus_engine.exclusions]]\npath = \"/srv\"\nis_directory = true\n\
             [[antivirus_engine.exclusions]]\nextension = \".iso\"\n\
             [[antivirus_engine.exclusions]]\nname = \"*.log\"\n",
        )
        .unwrap();
        assert_eq!(ok.antivirus_engine.exclusions.len(), 3);
        let both = parse("[[antivirus_engine.exclusions]]\npath = \"/a\"\nname = \"b\"\n");
        assert!(both.unwrap_err().contains("exclusions[0]"));
        let relative = parse("[[antivirus_engine.exclusions]]\npath = \"a/b\"\n");
        assert!(relative.unwrap_err().contains("not absolute"));
        let bad_glob = parse("[[antivirus_engine.exclusions]]\nname = \"[a\"\n");
        assert!(bad_glob.unwrap_err().contains("exclusions[0]"));
    }

    #[test]
    fn action_settings_are_checked() {
        let ok = parse(
            "[antivirus_engine.threat_type_settings]\nPacked = \"quarantine\"\n\
             [antivirus_engine.severity_settings]\nhigh = \"audit\"\n",
        )
        .unwrap();
        let engine = &ok.antivirus_engine;
        assert_eq!(
            engine.threat_type_settings["Packed"],
            DetectionAction::Quarantine
        );
        assert_eq!(engine.severity_settings.high, DetectionAction::Audit);
        // Keys not written keep their defaults.
        assert_eq!(engine.severity_settings.low, DetectionAction::Audit);
        let bad_value = parse("[antivirus_engine.severity_settings]\nlow = \"delete\"\n");
        assert!(bad_value.unwrap_err().contains("line 2"));
        let bad_severity = parse("[antivirus_engine.severity_settings]\nsevere = \"audit\"\n");
        assert!(bad_severity.unwrap_err().contains("severe"));
        let bad_type =
            parse("[antivirus_engine.threat_type_settings]\n\"Packed:Win32\" = \"off\"\n");
        assert!(bad_type.unwrap_err().contains("not a threat type"));
    }

    #[test]
    fn show_round_trips() {
        let config = Config::default();
        assert_eq!(parse(&config.to_toml()).unwrap(), config);
    }
}
