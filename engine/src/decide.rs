//! Decide: turns findings into verdicts. A finding is a threat unless its threat name is allowed
//! (`antivirus_engine.allowed_threats`, `vigil threat allow`) or the file's content was restored
//! from quarantine less than `antivirus_engine.threat_restoration_exclusion_time` seconds ago.

use std::collections::{HashMap, HashSet};

use crate::report::Finding;

/// What to do with one finding.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Report (and act on) it.
    Threat,
    /// Record it as allowed, for this reason.
    Allowed(String),
}

/// The decision rules in force for one scan.
#[derive(Debug, Default)]
pub struct Decider {
    allowed_threats: HashSet<String>,
    /// Content digest -> Unix time of its restore.
    restored: HashMap<String, i64>,
    exclusion_time: i64,
}

impl Decider {
    /// Rules from the allowed threat names and the recently restored digests.
    pub fn new(
        allowed_threats: impl IntoIterator<Item = String>,
        restored: HashMap<String, i64>,
        exclusion_time: u64,
    ) -> Self {
        Self {
            allowed_threats: allowed_threats.into_iter().collect(),
            restored,
            exclusion_time: exclusion_time as i64,
        }
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
        Verdict::Threat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(threat: &str) -> Finding {
        Finding {
            threat: threat.into(),
            detector: "yara",
            rule: "r".into(),
            severity: "high".into(),
            description: String::new(),
            offset: None,
            details: None,
        }
    }

    #[test]
    fn allowed_names_and_fresh_restores_are_allowed_until_the_time_passes() {
        let restored = HashMap::from([("abc".to_string(), 1000)]);
        let decider = Decider::new(["Virus:DOS/EICAR_Test_File".to_string()], restored, 60);
        assert_ne!(
            decider.verdict(&finding("Virus:DOS/EICAR_Test_File"), None, 0),
            Verdict::Threat
        );
        assert_eq!(
            decider.verdict(&finding("Other:X/Y"), None, 1001),
            Verdict::Threat
        );
        assert_ne!(
            decider.verdict(&finding("Other:X/Y"), Some("abc"), 1059),
            Verdict::Threat
        );
        assert_eq!(
            decider.verdict(&finding("Other:X/Y"), Some("abc"), 1060),
            Verdict::Threat
        );
        assert_eq!(
            decider.verdict(&finding("Other:X/Y"), Some("def"), 1001),
            Verdict::Threat
        );
    }
}
