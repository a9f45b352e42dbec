//! Decide: turns findings into verdicts. A finding is a threat unless its threat name is allowed
//! (`antivirus_engine.allowed_threats`, `vigil threat allow`) or the file's content was restored
//! from quarantine less than `antivirus_engine.threat_restoration_exclusion_time` seconds ago,
//! or its type or severity is set to `off`. A threat's response (audit or quarantine) comes from
//! `threat_type_settings`, then `severity_settings`, then `threat_action`.

use std::collections::{HashMap, HashSet};

use crate::config::{AntivirusEngine, DetectionAction, SeveritySettings, ThreatAction};
use crate::report::{Finding, Response};

/// What to do with one finding.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Report it, and respond so.
    Threat(Response),
    /// Record it as allowed, for this reason.
    Allowed(String),
}

/// The action settings: per threat type, per severity, and the default.
#[derive(Debug, Default)]
pub struct ActionPolicy {
    /// Lower-case threat type -> its setting.
    types: HashMap<String, DetectionAction>,
    severities: SeveritySettings,
    default: ThreatAction,
}

impl ActionPolicy {
    /// The policy the engine settings describe.
    pub fn new(engine: &AntivirusEngine) -> Self {
        Self {
            types: engine
                .threat_type_settings
                .iter()
                .map(|(kind, action)| (kind.to_ascii_lowercase(), *action))
                .collect(),
            severities: engine.severity_settings,
            default: engine.threat_action,
        }
    }

    /// The response to `finding`, or why it is turned off.
    pub fn respond(&self, finding: &Finding) -> Result<Response, String> {
        let kind = threat_type(&finding.threat);
        let by_type = self.types.get(&kind.to_ascii_lowercase()).copied();
        let (action, by) = match by_type {
            Some(action) if action != DetectionAction::Default => {
                (action, format!("threat type {kind}"))
            }
            _ => {
                let action = self.severities.of(&finding.severity);
                (action, format!("severity {}", finding.severity))
            }
        };
        match action {
            DetectionAction::Audit => Ok(Response::Audit),
            DetectionAction::Quarantine => Ok(Response::Quarantine),
            DetectionAction::Off => Err(format!("{by} is set to off")),
            DetectionAction::Default => Ok(match self.default {
                ThreatAction::Report => Response::Audit,
                ThreatAction::Quarantine => Response::Quarantine,
            }),
        }
    }

    /// Whether any finding could be quarantined under this policy.
    pub fn may_quarantine(&self) -> bool {
        let severities = &self.severities;
        let set = [
            severities.low,
            severities.medium,
            severities.high,
            severities.critical,
            severities.unknown,
        ];
        self.default == ThreatAction::Quarantine
            || set
                .into_iter()
                .chain(self.types.values().copied())
                .any(|action| action == DetectionAction::Quarantine)
    }
}

/// A threat name's type: the part before `:` (`Packed` in `Packed:Linux/UPX`), or the whole
/// name when it has none.
pub fn threat_type(threat: &str) -> &str {
    threat.split_once(':').map_or(threat, |(kind, _)| kind)
}

/// The decision rules in force for one scan.
#[derive(Debug, Default)]
pub struct Decider {
    allowed_threats: HashSet<String>,
    /// Content digest -> Unix time of its restore.
    restored: HashMap<String, i64>,
    exclusion_time: i64,
    policy: ActionPolicy,
}

impl Decider {
    /// Rules from the allowed threat names, the recently restored digests and the action
    /// settings.
    pub fn new(
        allowed_threats: impl IntoIterator<Item = String>,
        restored: HashMap<String, i64>,
        exclusion_time: u64,
        policy: ActionPolicy,
    ) -> Self {
        Self {
            allowed_threats: allowed_threats.into_iter().collect(),
            restored,
            exclusion_time: exclusion_time as i64,
            policy,
        }
    }

    /// Whether a verdict may ask for quarantine (so the vault must be open).
    pub fn may_quarantine(&self) -> bool {
        self.policy.may_quarantine()
    }

    /// Whether verdicts need the content digest of a detected file.
    pub fn wants_digest(&self) -> bool {
        !self.restored.is_empty()
    }

    /// The verdict on `finding` in a file with content `digest`, at Unix time `now`.
    pub fn verdict(&self, finding: &Finding, digest: Option<&str>, now: i64) -> Verdict {
        if self.allowed_threats.contains(&finding.threat) {
            return Verdict::Allowed("allowed threat".into());
        }
        if let Some(restored_at) = digest.and_then(|d| self.restored.get(d)) {
            let until = restored_at + self.exclusion_time;
            if now < until {
                return Verdict::Allowed(format!(
                    "restored from quarantine; restoration exclusion until {until} (Unix time)"
                ));
            }
        }
        match self.policy.respond(finding) {
            Ok(response) => Verdict::Threat(response),
            Err(reason) => Verdict::Allowed(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(threat: &str) -> Finding {
        finding_of(threat, "high")
    }

    fn finding_of(threat: &str, severity: &str) -> Finding {
        Finding {
            threat: threat.into(),
            detector: "yara",
            rule: "r".into(),
            severity: severity.into(),
            description: String::new(),
            offset: None,
            details: None,
            member: Vec::new(),
        }
    }

    const THREAT: Verdict = Verdict::Threat(Response::Audit);

    #[test]
    fn allowed_names_and_fresh_restores_are_allowed_until_the_time_passes() {
        let restored = HashMap::from([("abc".to_string(), 1000)]);
        let decider = Decider::new(
            ["Virus:DOS/EICAR_Test_File".to_string()],
            restored,
            60,
            ActionPolicy::default(),
        );
        assert_ne!(
            decider.verdict(&finding("Virus:DOS/EICAR_Test_File"), None, 0),
            THREAT
        );
        assert_eq!(decider.verdict(&finding("Other:X/Y"), None, 1001), THREAT);
        assert_ne!(
            decider.verdict(&finding("Other:X/Y"), Some("abc"), 1059),
            THREAT
        );
        assert_eq!(
            decider.verdict(&finding("Other:X/Y"), Some("abc"), 1060),
            THREAT
        );
        assert_eq!(
            decider.verdict(&finding("Other:X/Y"), Some("def"), 1001),
            THREAT
        );
    }

    fn policy(text: &str) -> ActionPolicy {
        let config = crate::Config::parse(text, std::path::Path::new("t.toml")).unwrap();
        ActionPolicy::new(&config.antivirus_engine)
    }

    #[test]
    fn by_default_quarantine_takes_only_high_critical_and_unrated_detections() {
        let quarantine = policy("[antivirus_engine]\nthreat_action = \"quarantine\"\n");
        let respond = |threat, severity| quarantine.respond(&finding_of(threat, severity));
        assert_eq!(
            respond("Backdoor:Linux/X", "high"),
            Ok(Response::Quarantine)
        );
        assert_eq!(
            respond("Rootkit:Linux/X", "critical"),
            Ok(Response::Quarantine)
        );
        assert_eq!(respond("Other:Any/X", "unknown"), Ok(Response::Quarantine));
        assert_eq!(respond("Packed:Linux/UPX", "low"), Ok(Response::Audit));
        assert_eq!(respond("Obfuscated:JS/X", "medium"), Ok(Response::Audit));
        assert!(quarantine.may_quarantine());
        let report = policy("");
        assert_eq!(
            report.respond(&finding_of("Backdoor:Linux/X", "critical")),
            Ok(Response::Audit)
        );
        assert!(!report.may_quarantine());
    }

    #[test]
    fn threat_type_decides_before_severity_and_off_allows() {
        let policy = policy(
            "[antivirus_engine.threat_type_settings]\nbackdoor = \"quarantine\"\n\
             Packed = \"off\"\nTrojan = \"default\"\n\
             [antivirus_engine.severity_settings]\nlow = \"quarantine\"\nhigh = \"off\"\n",
        );
        let respond = |threat, severity| policy.respond(&finding_of(threat, severity));
        // Types are compared ignoring case; they win over the severity.
        assert_eq!(respond("Backdoor:PHP/X", "high"), Ok(Response::Quarantine));
        assert_eq!(
            respond("Packed:Linux/UPX", "low"),
            Err("threat type Packed is set to off".into())
        );
        // `default` falls through to the severity.
        assert_eq!(respond("Trojan:Linux/X", "low"), Ok(Response::Quarantine));
        assert_eq!(
            respond("Trojan:Linux/X", "high"),
            Err("severity high is set to off".into())
        );
        // threat_action (report) for what neither names.
        assert_eq!(respond("Virus:DOS/X", "critical"), Ok(Response::Audit));
        assert!(policy.may_quarantine());
        assert_eq!(threat_type("NoColon"), "NoColon");
    }
}
