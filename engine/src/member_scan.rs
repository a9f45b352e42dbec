//! The archive stage of the scan: a file's members, extracted by [`crate::archive`], go through
//! the same detectors as the file (hashes, YARA, plugins); their findings name the member.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::archive::{self, Bomb, Limit, LimitHit, Members};
use crate::config::ArchivesConfig;
use crate::detect::DetectorWorker;
use crate::plugin::PluginFault;
use crate::report::{Finding, ScanEvent};

/// What the archive stage did for one file.
#[derive(Debug, Default)]
pub(crate) struct MemberOutcome {
    /// Members extracted and scanned.
    pub members: u64,
    /// Limits reached (each is also a `limit` record).
    pub limits: Vec<LimitHit>,
    /// The first member a detector could not finish (a YARA timeout), with why.
    pub error: Option<String>,
}

/// Scans the members of `bytes` (the file at `path`) when it is an archive: their findings and
/// the alerts `config` asks for are appended to `findings`, their plugin faults to `faults`.
pub(crate) fn scan_members(
    detector: &mut DetectorWorker<'_>,
    config: &ArchivesConfig,
    path: &Path,
    bytes: &[u8],
    findings: &mut Vec<Finding>,
    faults: &mut Vec<PluginFault>,
) -> MemberOutcome {
    if !config.enabled {
        return MemberOutcome::default();
    }
    let name = path.file_name().map(OsStr::as_bytes).unwrap_or_default();
    let mut scan = MemberScan {
        detector,
        findings,
        faults,
        outcome: MemberOutcome::default(),
    };
    scan.outcome.members = archive::extract(config, bytes, name, &mut scan);
    let outcome = scan.outcome;
    for hit in &outcome.limits {
        if let Some(alert) = alert(config, hit) {
            findings.push(alert);
        }
    }
    outcome
}

/// The `limit` record of a limit reached in the file at `path`.
pub(crate) fn limit_event(path: &Path, hit: &LimitHit) -> ScanEvent {
    ScanEvent::Limit {
        path: path.to_path_buf(),
        member: hit.member.clone(),
        limit: hit.limit.name(),
        key: hit.limit.key(),
        reason: hit.reason.clone(),
    }
}

/// The detection `archives.alert_encrypted` or `archives.alert_on_limit` makes of a limit.
fn alert(config: &ArchivesConfig, hit: &LimitHit) -> Option<Finding> {
    let threat = match hit.limit {
        Limit::Encrypted if config.alert_encrypted => "Heuristics:Archive/Encrypted",
        Limit::Encrypted | Limit::Damaged => return None,
        _ if config.alert_on_limit => "Heuristics:Archive/LimitExceeded",
        _ => return None,
    };
    Some(Finding {
        threat: threat.into(),
        detector: "archive",
        rule: hit.limit.key().unwrap_or("archives").into(),
        severity: "medium".into(),
        description: hit.reason.clone(),
        offset: None,
        details: None,
        member: hit.member.clone(),
    })
}

/// Runs the detectors on each member.
struct MemberScan<'a, 'd> {
    detector: &'a mut DetectorWorker<'d>,
    findings: &'a mut Vec<Finding>,
    faults: &'a mut Vec<PluginFault>,
    outcome: MemberOutcome,
}

impl Members for MemberScan<'_, '_> {
    fn member(&mut self, chain: &[Vec<u8>], data: &[u8]) {
        // Plugins choose by the member's extension, rules read its name: its last component.
        let name = chain.last().map(Vec::as_slice).unwrap_or_default();
        let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        let (first, first_fault) = (self.findings.len(), self.faults.len());
        let result = self.detector.scan(
            Path::new(OsStr::from_bytes(base)),
            None,
            data,
            self.findings,
            self.faults,
        );
        for finding in &mut self.findings[first..] {
            finding.member = chain.to_vec();
        }
        for fault in &mut self.faults[first_fault..] {
            fault.member = chain.to_vec();
        }
        if let Err(reason) = result
            && self.outcome.error.is_none()
        {
            let shown = String::from_utf8_lossy(name);
            self.outcome.error = Some(format!("member {shown:?}: {reason}"));
        }
    }

    fn limit(&mut self, hit: LimitHit) {
        self.outcome.limits.push(hit);
    }

    fn bomb(&mut self, bomb: Bomb) {
        self.findings.push(Finding {
            threat: bomb.threat.into(),
            detector: "archive",
            rule: "zip-bomb".into(),
            severity: "high".into(),
            description: bomb.reason,
            offset: bomb.offset,
            details: None,
            member: Vec::new(),
        });
    }
}
