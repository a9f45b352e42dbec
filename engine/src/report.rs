//! The output model: what a scan reports, as it goes, to a [`ScanSink`].
//!
//! Events are streamed while the scan runs; nothing collects a whole scan in memory. Each event
//! serializes to one JSON object (the `jsonl` format documented in the README).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Receives a scan's results as they are found. Called from many worker threads at once.
pub trait ScanSink: Sync {
    /// The scan's targets are planned and workers are about to start (before any file event).
    fn begin(&self, _scan: &ScanStart) {}
    /// A detection, error, skip or other per-file result.
    fn event(&self, event: &ScanEvent);
    /// A file has been scanned (for progress displays); called once per scanned file.
    fn file_scanned(&self, _path: &Path, _bytes: u64) {}
    /// The scan is over; `summary` is also what [`crate::Engine::scan`] returns.
    fn finish(&self, _summary: &ScanSummary) {}
    /// Polled before each file and directory entry: once it returns true, the walk stops, the
    /// workers finish the file in hand and the scan ends with `cancelled` set in its summary.
    fn cancelled(&self) -> bool {
        false
    }
}

/// What a starting scan is about to do.
#[derive(Debug, Clone)]
pub struct ScanStart {
    /// What is scanned.
    pub kind: crate::ScanKind,
    /// Worker threads.
    pub threads: usize,
}

/// One detection: which detector found which threat in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Threat name in `Family:Platform/Name` style.
    pub threat: String,
    /// The detector that produced it: `yara`, `hash` or `plugin`.
    pub detector: &'static str,
    /// The rule (or plugin) that matched.
    pub rule: String,
    /// `low`, `medium`, `high`, `critical`, or `unknown` when the rule does not say.
    pub severity: String,
    /// What the rule detects, from its metadata.
    pub description: String,
    /// Where in the file the evidence is, when the detector says (plugins may; for a YARA
    /// rule, its first pattern match).
    pub offset: Option<u64>,
    /// What a YARA rule matched and says about itself; `None` for other detectors.
    pub details: Option<Box<RuleDetails>>,
    /// Where inside an archive: member names from the outermost archive in (empty: the file
    /// itself). The offset is then in the innermost member.
    pub member: Vec<Vec<u8>>,
}

/// A YARA detection's details: the rule's tags and metadata, and where its patterns matched
/// (bounded: `yara.max_match_details` matches, [`RuleDetails::MAX_METADATA`] entries).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, Deserialize)]
pub struct RuleDetails {
    /// The rule's tags.
    pub tags: Vec<String>,
    /// The rule's metadata (`author`, `reference`, `date`, `score`...), in order, as JSON values.
    pub metadata: Vec<(String, serde_json::Value)>,
    /// Pattern matches, the first of each pattern first.
    pub matches: Vec<PatternMatch>,
    /// Matches left out of `matches` by the bound.
    pub more_matches: u64,
}

impl RuleDetails {
    /// The metadata as one JSON object; a key given several times (YARA allows it, for
    /// example several `reference`s) holds the list of its values.
    pub fn metadata_object(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut object = serde_json::Map::new();
        for (key, value) in &self.metadata {
            if self.repeats(key) {
                object
                    .entry(key.clone())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                    .as_array_mut()
                    .expect("repeated keys hold arrays")
                    .push(value.clone());
            } else {
                object.insert(key.clone(), value.clone());
            }
        }
        object
    }

    /// Whether `key` is given more than once.
    fn repeats(&self, key: &str) -> bool {
        self.metadata.iter().filter(|(k, _)| k == key).count() > 1
    }

    /// Most metadata entries kept per detection.
    pub const MAX_METADATA: usize = 32;
    /// Longest metadata text kept, in bytes (longer values are cut).
    pub const MAX_METADATA_TEXT: usize = 1024;
}

/// Where one pattern of a rule matched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PatternMatch {
    /// The pattern's identifier (`$a`).
    pub identifier: String,
    /// Where the match starts in the file.
    pub offset: u64,
    /// How many bytes matched.
    pub length: u64,
}

/// What is done about a threat, from `antivirus_engine.threat_type_settings`,
/// `severity_settings` and `threat_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// Reported only.
    Audit,
    /// Reported, and the file moved into the quarantine vault.
    Quarantine,
}

/// A per-file result of a scan.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanEvent {
    /// A threat was found in the file.
    Detection {
        /// The file.
        path: PathBuf,
        /// What was found.
        finding: Finding,
        /// What the action settings say to do about it (a tree scan acts; a scan of a caller's
        /// descriptor only reports).
        response: Response,
    },
    /// The file could not be scanned (unreadable, vanished, changed while mapped, timed out).
    Error {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file was deliberately not scanned (special file, symbolic link, over the size limit).
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A detection that is not reported as a threat: an allowed threat, or a file restored from
    /// quarantine within the restoration exclusion time.
    Allowed {
        /// The file.
        path: PathBuf,
        /// What was found.
        finding: Finding,
        /// Why it is allowed.
        reason: String,
    },
    /// A plugin failed on the file (trap, limit, malformed output); its other results stand.
    PluginFault {
        /// The file.
        path: PathBuf,
        /// The archive member it faulted on, outer to inner (empty: the file itself).
        member: Vec<Vec<u8>>,
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        reason: String,
    },
    /// A plugin faulted too often and is not run on any more files in this scan (said once).
    PluginDisabled {
        /// The file of its last fault.
        path: PathBuf,
        /// The plugin's name.
        plugin: String,
        /// Why it was disabled.
        reason: String,
    },
    /// Part of an archive was not scanned: a limit of `[archives]` stopped it, a member is
    /// encrypted, or the archive is damaged. What was scanned before stands.
    Limit {
        /// The file on disk.
        path: PathBuf,
        /// The member it is about, outer to inner (empty: the file itself).
        member: Vec<Vec<u8>>,
        /// Which limit (`max_member_size`, ..., `encrypted`, `damaged`).
        limit: &'static str,
        /// The configuration key that sets it, when one does.
        key: Option<&'static str>,
        /// What happened.
        reason: String,
    },
    /// A detected file was moved into the quarantine vault.
    Quarantined {
        /// Where the file was.
        path: PathBuf,
        /// The vault entry (for `vigil quarantine restore ID`).
        id: String,
    },
}

impl ScanEvent {
    /// The file (or directory) the event is about.
    pub fn path(&self) -> &Path {
        match self {
            ScanEvent::Detection { path, .. }
            | ScanEvent::Error { path, .. }
            | ScanEvent::Skipped { path, .. }
            | ScanEvent::Allowed { path, .. }
            | ScanEvent::PluginFault { path, .. }
            | ScanEvent::PluginDisabled { path, .. }
            | ScanEvent::Limit { path, .. }
            | ScanEvent::Quarantined { path, .. } => path,
        }
    }

    /// The event's `type` in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ScanEvent::Detection { .. } => "detection",
            ScanEvent::Error { .. } => "error",
            ScanEvent::Skipped { .. } => "skipped",
            ScanEvent::Allowed { .. } => "allowed",
            ScanEvent::PluginFault { .. } => "plugin_fault",
            ScanEvent::PluginDisabled { .. } => "plugin_disabled",
            ScanEvent::Limit { .. } => "limit",
            ScanEvent::Quarantined { .. } => "quarantined",
        }
    }
}

impl Serialize for ScanEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.kind())?;
        serialize_path(&mut map, self.path())?;
        match self {
            ScanEvent::Detection {
                finding, response, ..
            } => {
                serialize_finding(&mut map, finding)?;
                map.serialize_entry("action", response)?;
            }
            ScanEvent::Allowed {
                finding, reason, ..
            } => {
                serialize_finding(&mut map, finding)?;
                map.serialize_entry("reason", reason)?;
            }
            ScanEvent::Quarantined { id, .. } => map.serialize_entry("id", id)?,
            ScanEvent::PluginFault {
                member,
                plugin,
                reason,
                ..
            } => {
                serialize_member(&mut map, member)?;
                map.serialize_entry("plugin", plugin)?;
                map.serialize_entry("reason", reason)?;
            }
            ScanEvent::PluginDisabled { plugin, reason, .. } => {
                map.serialize_entry("plugin", plugin)?;
                map.serialize_entry("reason", reason)?;
            }
            ScanEvent::Error { reason, .. } | ScanEvent::Skipped { reason, .. } => {
                map.serialize_entry("reason", reason)?;
            }
            ScanEvent::Limit {
                member,
                limit,
                key,
                reason,
                ..
            } => {
                serialize_member(&mut map, member)?;
                map.serialize_entry("limit", limit)?;
                map.serialize_entry("key", key)?;
                map.serialize_entry("reason", reason)?;
            }
        }
        map.end()
    }
}

/// Writes `member` (names as lossy UTF-8, outer to inner) when the chain is not empty, and
/// `member_hex` (every name's bytes in hex) when a name is not UTF-8.
fn serialize_member<M: SerializeMap>(map: &mut M, member: &[Vec<u8>]) -> Result<(), M::Error> {
    if member.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = member
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    map.serialize_entry("member", &names)?;
    if member.iter().any(|name| std::str::from_utf8(name).is_err()) {
        let hex: Vec<String> = member.iter().map(|name| vigil_drop::hex(name)).collect();
        map.serialize_entry("member_hex", &hex)?;
    }
    Ok(())
}

fn serialize_finding<M: SerializeMap>(map: &mut M, finding: &Finding) -> Result<(), M::Error> {
    serialize_member(map, &finding.member)?;
    map.serialize_entry("threat", &finding.threat)?;
    map.serialize_entry("detector", finding.detector)?;
    map.serialize_entry("rule", &finding.rule)?;
    map.serialize_entry("severity", &finding.severity)?;
    map.serialize_entry("description", &finding.description)?;
    if let Some(offset) = finding.offset {
        map.serialize_entry("offset", &offset)?;
    }
    if let Some(details) = &finding.details {
        map.serialize_entry("tags", &details.tags)?;
        map.serialize_entry("metadata", &details.metadata_object())?;
        map.serialize_entry("matches", &details.matches)?;
        if details.more_matches > 0 {
            map.serialize_entry("more_matches", &details.more_matches)?;
        }
    }
    Ok(())
}

/// Writes `path` (lossy UTF-8) and, when the path is not valid UTF-8, `path_hex` with its exact
/// bytes, so that no file name is ever misreported.
fn serialize_path<M: SerializeMap>(map: &mut M, path: &Path) -> Result<(), M::Error> {
    serialize_path_as(map, "path", path)
}

/// Writes `key` (lossy UTF-8) and, when the path is not valid UTF-8, `<key>_hex` with its exact
/// bytes.
pub fn serialize_path_as<M: SerializeMap>(
    map: &mut M,
    key: &str,
    path: &Path,
) -> Result<(), M::Error> {
    map.serialize_entry(key, &path_lossy(path))?;
    if let Some(hex) = path_hex(path) {
        map.serialize_entry(&format!("{key}_hex"), &hex)?;
    }
    Ok(())
}

/// A path as JSON text: exact when it is UTF-8, else lossy and paired with [`path_hex`].
pub fn path_lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The bytes of a path that is not valid UTF-8, in hex (`None` for a UTF-8 path).
pub fn path_hex(path: &Path) -> Option<String> {
    path.to_str()
        .is_none()
        .then(|| vigil_drop::hex(path.as_os_str().as_bytes()))
}

/// For `#[serde(flatten, serialize_with = ...)]` on a field named `path`: `path` and `path_hex`.
pub fn serialize_path_field<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    serialize_path_as(&mut map, "path", path)?;
    map.end()
}

/// For `#[serde(flatten, serialize_with = ...)]` on a field named `original_path`:
/// `original_path` and `original_path_hex`.
pub fn serialize_original_path_field<S: Serializer>(
    path: &Path,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    serialize_path_as(&mut map, "original_path", path)?;
    map.end()
}

/// The summary as its JSON Lines record: `{"type":"summary", ...totals}`.
#[derive(serde::Serialize)]
pub struct SummaryRecord<'a> {
    /// Always `summary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The totals.
    #[serde(flatten)]
    pub summary: &'a ScanSummary,
}

/// Totals of a finished scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanSummary {
    /// Files whose result was established: read and matched, or found in a cache.
    pub files_scanned: u64,
    /// Bytes of content read and matched (a scan-cache hit reads none).
    pub bytes_scanned: u64,
    /// Detection events (a file matching two rules counts twice).
    pub detections: u64,
    /// Files with at least one detection.
    pub infected_files: u64,
    /// Error events.
    pub errors: u64,
    /// Skipped events.
    pub skipped: u64,
    /// Detections not reported as threats (allowed threats, restoration exclusions).
    pub allowed: u64,
    /// Files moved into quarantine.
    pub quarantined: u64,
    /// Plugin calls that failed.
    pub plugin_faults: u64,
    /// Archive members extracted and scanned (they are not counted in `files_scanned`).
    pub members_scanned: u64,
    /// `limit` records: parts of archives not scanned.
    pub limits: u64,
    /// Of the files scanned, those whose result came from the scan cache (unchanged since an
    /// earlier scan): not read.
    pub cache_hits: u64,
    /// Of the files scanned, those whose result came from the file-hash cache (the same content
    /// was scanned before): read and hashed, not matched.
    pub file_hash_hits: u64,
    /// Whether the scan was cancelled before it covered every target.
    pub cancelled: bool,
    /// Wall-clock time of the scan.
    pub duration_ms: u64,
}
