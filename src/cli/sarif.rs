//! `vigil scan --format sarif`: one SARIF 2.1.0 document per scan (what GitHub code scanning and
//! many SIEM and SOC tools import), written when the scan ends.
//!
//! Each rule that matched becomes a `reportingDescriptor` (id = the rule, name = the threat, with
//! its description, tags and metadata as properties); each detection a `result` with the file as
//! a `file://` URI and, when known, the offset and length of the first match as a byte region.
//! The level follows the severity: `critical` and `high` are `error`, `medium` a `warning`,
//! others a `note`. Files that could not be scanned are `toolExecutionNotifications`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};
use vigil_engine::{Finding, ScanEvent, ScanSink, ScanSummary};

/// The SARIF schema this output follows.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Collects what a scan reports and prints it as one SARIF document when it ends.
pub struct SarifSink {
    collected: Mutex<Collected>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Default for SarifSink {
    fn default() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }
}

impl SarifSink {
    /// A sink writing its document to `out` (the service's reply stream).
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self {
            collected: Mutex::default(),
            out: Mutex::new(out),
        }
    }
}

#[derive(Default)]
struct Collected {
    /// Rule ids in the order first seen, with their descriptor.
    rules: BTreeMap<String, (usize, Value)>,
    results: Vec<Value>,
    notifications: Vec<Value>,
}

impl ScanSink for SarifSink {
    fn event(&self, event: &ScanEvent) {
        let mut collected = self
            .collected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            ScanEvent::Detection { path, finding, .. } => collected.add_detection(path, finding),
            ScanEvent::Error { path, reason } | ScanEvent::PluginFault { path, reason, .. } => {
                collected.notifications.push(json!({
                    "level": "error",
                    "message": {"text": reason},
                    "locations": [location(path, None)],
                }));
            }
            _ => {}
        }
    }

    fn finish(&self, summary: &ScanSummary) {
        let collected = std::mem::take(
            &mut *self
                .collected
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let mut rules: Vec<(usize, Value)> = collected.rules.into_values().collect();
        rules.sort_by_key(|(index, _)| *index);
        let document = json!({
            "$schema": SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "Vigil",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules.into_iter().map(|(_, rule)| rule).collect::<Vec<_>>(),
                }},
                "invocations": [{
                    "executionSuccessful": true,
                    "toolExecutionNotifications": collected.notifications,
                    "properties": {
                        "filesScanned": summary.files_scanned,
                        "bytesScanned": summary.bytes_scanned,
                        "errors": summary.errors,
                        "skipped": summary.skipped,
                    },
                }],
                "results": collected.results,
            }],
        });
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A closed pipe (`vigil scan ... | head`) is not an error worth a panic.
        let _ = writeln!(out, "{document}");
        let _ = out.flush();
    }
}

impl Collected {
    fn add_detection(&mut self, path: &Path, finding: &Finding) {
        let next = self.rules.len();
        let index = self
            .rules
            .entry(finding.rule.clone())
            .or_insert_with(|| (next, rule_descriptor(finding)))
            .0;
        let region = finding.offset.map(|offset| {
            let length = finding
                .details
                .as_ref()
                .and_then(|details| details.matches.iter().find(|m| m.offset == offset))
                .map_or(1, |found| found.length.max(1));
            json!({"byteOffset": offset, "byteLength": length})
        });
        let mut properties = json!({
            "threat": finding.threat,
            "severity": finding.severity,
            "detector": finding.detector,
        });
        if let Some(details) = &finding.details {
            properties["matches"] = json!(details.matches);
        }
        self.results.push(json!({
            "ruleId": finding.rule,
            "ruleIndex": index,
            "level": level(&finding.severity),
            "message": {"text": message(finding)},
            "locations": [location(path, region)],
            "properties": properties,
        }));
    }
}

/// The `reportingDescriptor` of the rule behind a finding.
fn rule_descriptor(finding: &Finding) -> Value {
    let mut properties = json!({
        "detector": finding.detector,
        "severity": finding.severity,
    });
    if let Some(details) = &finding.details {
        properties["tags"] = json!(details.tags);
        properties["metadata"] = Value::Object(details.metadata_object());
    }
    let mut descriptor = json!({
        "id": finding.rule,
        "name": finding.threat,
        "defaultConfiguration": {"level": level(&finding.severity)},
        "properties": properties,
    });
    if !finding.description.is_empty() {
        descriptor["shortDescription"] = json!({"text": finding.description});
    }
    descriptor
}

/// The result's message: the threat, and the rule's description when it has one.
fn message(finding: &Finding) -> String {
    if finding.description.is_empty() {
        format!("{} ({})", finding.threat, finding.rule)
    } else {
        format!("{}: {}", finding.threat, finding.description)
    }
}

/// SARIF's level for a severity.
fn level(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "error",
        "medium" => "warning",
        _ => "note",
    }
}

/// A `location` naming the file (and a byte region of it).
fn location(path: &Path, region: Option<Value>) -> Value {
    let mut physical = json!({"artifactLocation": {"uri": file_uri(path)}});
    if let Some(region) = region {
        physical["region"] = region;
    }
    json!({"physicalLocation": physical})
}

/// A `file://` URI for a path, every byte outside the unreserved set and `/` percent-encoded
/// (so names that are not UTF-8, or hold spaces, `#` or `%`, stay exact).
pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for &byte in absolute.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_percent_encode_every_byte_that_is_not_plain() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a b#%\xff.txt"));
        assert_eq!(file_uri(path), "file:///tmp/a%20b%23%25%FF.txt");
    }
}
