//! `vigil health`: whether protection works, in the fields `mdatp health` has.
//!
//! The service answers with its own view (it knows whether real-time protection runs); without
//! the service, the CLI computes the same report from the configuration and state directory,
//! and the service not running is itself a health issue.

use serde::{Deserialize, Serialize};
use vigil_engine::{Config, DefinitionsInfo, State};

/// What the service knows that the configuration does not say.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// When it started (Unix seconds).
    pub up_since: i64,
    /// Whether real-time protection is running.
    pub real_time_running: bool,
    /// Why real-time protection is not running although enabled.
    pub real_time_problem: Option<String>,
}

/// The health report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthReport {
    /// No health issues.
    pub healthy: bool,
    /// What is wrong, for people.
    pub health_issues: Vec<String>,
    /// Whether the resident service answers.
    pub service_running: bool,
    /// When the service started (Unix seconds).
    pub service_up_since: Option<i64>,
    /// `antivirus_engine.enable_real_time_protection`.
    pub real_time_protection_enabled: bool,
    /// Whether real-time protection is actually running.
    pub real_time_protection_available: bool,
    /// `antivirus_engine.passive_mode`.
    pub passive_mode_enabled: bool,
    /// The definitions in use.
    pub definitions_version: u64,
    /// When they were built (Unix seconds).
    pub definitions_created: i64,
    /// Their age in whole days.
    pub definitions_age_days: i64,
    /// `up_to_date` or `stale` (older than `service.definitions_stale_after_days`).
    pub definitions_status: String,
    /// The engine's version.
    pub engine_version: String,
    /// The `vigil` version.
    pub app_version: String,
    /// The yara-x version.
    pub yara_x_version: String,
    /// When the last quick scan completed (Unix seconds).
    pub last_quick_scan: Option<i64>,
    /// When the last full scan completed (Unix seconds).
    pub last_full_scan: Option<i64>,
}

/// Builds the report; `service` is `None` when it is computed without the service.
pub fn report(
    config: &Config,
    definitions: &DefinitionsInfo,
    state: &State,
    service: Option<&ServiceInfo>,
) -> HealthReport {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let engine = &config.antivirus_engine;
    let mut issues = Vec::new();
    if service.is_none() {
        issues.push("the service (vigil daemon) is not running".to_string());
    }
    let running = service.is_some_and(|service| service.real_time_running);
    if !engine.enable_real_time_protection {
        issues.push("real-time protection is disabled".into());
    } else if service.is_some() && !running {
        let why = service
            .and_then(|service| service.real_time_problem.clone())
            .unwrap_or_else(|| "not started".into());
        issues.push(format!(
            "real-time protection is enabled but not running: {why}"
        ));
    }
    let age_days = (now - definitions.created).max(0) / 86_400;
    let stale = age_days >= config.service.definitions_stale_after_days as i64;
    if stale {
        issues.push(format!(
            "definitions are stale: version {} is {age_days} days old (service.definitions_stale_after_days = {})",
            definitions.version, config.service.definitions_stale_after_days
        ));
    }
    let (mut last_quick, mut last_full) = (None, None);
    match state.last_scans() {
        Ok(scans) => {
            for scan in scans {
                match scan.kind.as_str() {
                    "quick" => last_quick = Some(scan.ended_at),
                    "full" => last_full = Some(scan.ended_at),
                    _ => {}
                }
            }
        }
        Err(err) => issues.push(format!("cannot read the scan records: {err}")),
    }
    HealthReport {
        healthy: issues.is_empty(),
        health_issues: issues,
        service_running: service.is_some(),
        service_up_since: service.map(|service| service.up_since),
        real_time_protection_enabled: engine.enable_real_time_protection,
        real_time_protection_available: running,
        passive_mode_enabled: engine.passive_mode,
        definitions_version: definitions.version,
        definitions_created: definitions.created,
        definitions_age_days: age_days,
        definitions_status: if stale { "stale" } else { "up_to_date" }.into(),
        engine_version: vigil_engine::VERSION.into(),
        app_version: env!("CARGO_PKG_VERSION").into(),
        yara_x_version: vigil_engine::YARA_X_VERSION.into(),
        last_quick_scan: last_quick,
        last_full_scan: last_full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions(days_old: i64) -> DefinitionsInfo {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        DefinitionsInfo {
            version: 7,
            created: now - days_old * 86_400 - 60,
            source: "test".into(),
            signer: "test".into(),
            installed_at: None,
            rules: 1,
            hashes: 0,
            plugins: 0,
            yara_x: vigil_engine::YARA_X_VERSION.into(),
            compiled_blake3: None,
            compiled_layout: None,
        }
    }

    #[test]
    fn stale_definitions_and_a_missing_service_are_health_issues() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let mut config = Config::default();
        config.antivirus_engine.enable_real_time_protection = true;
        let running = ServiceInfo {
            up_since: 1,
            real_time_running: true,
            real_time_problem: None,
        };
        let fresh = report(&config, &definitions(1), &state, Some(&running));
        assert!(fresh.healthy, "{:?}", fresh.health_issues);
        assert_eq!(fresh.definitions_status, "up_to_date");
        let stale = report(&config, &definitions(8), &state, Some(&running));
        assert!(!stale.healthy);
        assert_eq!(stale.definitions_status, "stale");
        assert_eq!(stale.definitions_age_days, 8);
        assert!(
            stale.health_issues[0].contains("stale"),
            "{:?}",
            stale.health_issues
        );
        let alone = report(&config, &definitions(1), &state, None);
        assert!(!alone.service_running && !alone.healthy);
        assert!(!alone.real_time_protection_available);
    }
}
