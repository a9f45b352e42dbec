//! `vigil diagnostic events|create`: the local diagnostic log, and support bundles.
//!
//! A support bundle is one tar.gz with a `manifest.json` listing every other file with its size
//! and SHA-256: the effective configuration, the definitions status and update history, the
//! threat history (the newest `diagnostics.max_bundle_history` lines), the diagnostic log, the
//! health report, the service's statistics and the cache status where they exist, and the
//! versions of Vigil, the engine, yara-x and wasmtime. Paths (in the configuration's exclusions
//! and watched folders, and in the threat history) are replaced by a digest unless
//! `--include-paths`. Secrets are never read: the bundle is made from those parts only, never
//! from a copy of the state directory (which holds the quarantine vault and its key).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use sha2::Digest;
use vigil_drop::hex;
use vigil_engine::config::DiagnosticLevel;
use vigil_engine::diagnostics::{DiagnosticLog, events};
use vigil_engine::{Config, DefinitionsStore};

use super::output::Format;
use super::{Context, print_line, shown, untrusted};
use crate::service::client::Client;
use crate::service::protocol::{Reply, Request};

/// `vigil diagnostic ...`
#[derive(Subcommand)]
pub enum DiagnosticCommand {
    /// Print the diagnostic events written on this machine.
    Events {
        /// Only events at or after this time: Unix seconds, or an age such as `30m`, `12h`, `7d`.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Make a support bundle (tar.gz) and print its sha256, size, path and format.
    Create {
        /// Where to write it. Default: `<state dir>/diagnostics/bundles`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Keep file paths (exclusions, watched folders, threat history) instead of digests.
        #[arg(long)]
        include_paths: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs a `diagnostic` command.
pub fn run(context: &Context, command: DiagnosticCommand) -> Result<ExitCode> {
    match command {
        DiagnosticCommand::Events { since, format } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            for event in events(&context.state_dir(), since)? {
                match format {
                    Format::Jsonl => print_line(&event.to_string()),
                    Format::Text => print_line(&format!(
                        "{}  {:<16} {:<8} {}",
                        super::format_time(event["time"].as_i64().unwrap_or_default()),
                        untrusted(event["event"].as_str().unwrap_or("?")),
                        untrusted(event["level"].as_str().unwrap_or("?")),
                        untrusted(&own_fields(&event).to_string())
                    )),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DiagnosticCommand::Create {
            out,
            include_paths,
            format,
        } => create(context, out, include_paths, format),
    }
}

/// An event without the fields every event has.
fn own_fields(event: &Value) -> Value {
    let mut own = event.clone();
    if let Some(object) = own.as_object_mut() {
        for key in vigil_engine::diagnostics::EVENT_FIELDS {
            object.remove(key);
        }
    }
    own
}

/// `1700000000`, or `30m`, `12h`, `7d` ago.
fn parse_since(text: &str) -> Result<i64> {
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!(
            "--since {}: Unix seconds, or a number followed by s, m, h or d",
            untrusted(text)
        ),
    };
    let amount: i64 = number
        .parse()
        .with_context(|| format!("--since {}: not a number", untrusted(text)))?;
    Ok(now() - amount * seconds)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One file of the bundle.
struct Part {
    name: String,
    bytes: Vec<u8>,
}

fn create(
    context: &Context,
    out: Option<PathBuf>,
    include_paths: bool,
    format: Format,
) -> Result<ExitCode> {
    let (config, _) = context.load_config()?;
    let state = Arc::new(context.open_state()?);
    let state_dir = context.state_dir();
    let redact = |path: &Path| -> String {
        if include_paths {
            crate::service::server::path_text(path)
        } else {
            format!(
                "<redacted:{}>",
                &blake3::hash(path.as_os_str().as_encoded_bytes()).to_hex()[..16]
            )
        }
    };
    let mut parts = Vec::new();
    let json_part = |name: &str, value: &Value| Part {
        name: name.into(),
        bytes: format!("{value:#}\n").into_bytes(),
    };
    let lines_part = |name: &str, values: &[Value]| Part {
        name: name.into(),
        bytes: values
            .iter()
            .map(|v| format!("{v}\n"))
            .collect::<String>()
            .into_bytes(),
    };
    parts.push(json_part(
        "versions.json",
        &json!({
            "app_version": env!("CARGO_PKG_VERSION"),
            "engine_version": vigil_engine::VERSION,
            "yara_x_version": vigil_engine::YARA_X_VERSION,
            "wasmtime_version": vigil_engine::WASMTIME_VERSION,
        }),
    ));
    parts.push(Part {
        name: "config.toml".into(),
        bytes: redacted_config(&config, &redact).to_toml().into_bytes(),
    });
    let store = DefinitionsStore::open(state.clone())?;
    let active = store.active()?;
    let mut definitions = serde_json::to_value(&active.info)?;
    definitions["previous_version"] = json!(store.previous()?.map(|p| p.version));
    parts.push(json_part("definitions.json", &definitions));
    let history: Vec<Value> = store
        .history()?
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    parts.push(lines_part("update-history.jsonl", &history));
    let threats = state.history()?;
    let keep = config.diagnostics.max_bundle_history;
    let threats: Vec<Value> = threats[threats.len().saturating_sub(keep)..]
        .iter()
        .map(|entry| {
            json!({
                "time": entry.time,
                "action": entry.action,
                "path": redact(&entry.path),
                "threat": entry.threat,
                "quarantine_id": entry.quarantine_id,
                "detail": entry.detail,
            })
        })
        .collect();
    parts.push(lines_part("threat-history.jsonl", &threats));
    parts.push(lines_part(
        "diagnostic-events.jsonl",
        &events(&state_dir, None)?,
    ));
    let (health, statistics) = service_reports(context, &config);
    let health = match health {
        Some(health) => health,
        None => serde_json::to_value(crate::service::health::report(
            &config,
            &active.info,
            &state,
            None,
        ))?,
    };
    parts.push(json_part("health.json", &health));
    if let Some(statistics) = statistics {
        parts.push(json_part("statistics.json", &statistics));
    }
    let cache = vigil_engine::cache::status(&state_dir)?;
    let cache_files: Vec<Value> = cache
        .files
        .iter()
        .map(|file| {
            json!({
                "size": file.size,
                "entries": file.entries().ok(),
                "saved_at": file.saved_at(),
            })
        })
        .collect();
    parts.push(json_part("cache.json", &json!({"files": cache_files})));

    let manifest = json!({
        "format": 1,
        "created": now(),
        "include_paths": include_paths,
        "files": parts.iter().map(|part| json!({
            "name": part.name,
            "size": part.bytes.len(),
            "sha256": hex(&sha2::Sha256::digest(&part.bytes)),
        })).collect::<Vec<_>>(),
    });
    parts.push(json_part("manifest.json", &manifest));

    let folder = out.unwrap_or_else(|| state_dir.join("diagnostics").join("bundles"));
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", shown(&folder)))?;
    let name = format!("vigil-diagnostic-{}.tar.gz", compact_time(now()));
    let path = folder.join(&name);
    let bytes = bundle(&parts)?;
    write_private(&path, &bytes)?;
    let digest = hex(&sha2::Sha256::digest(&bytes));
    let record = json!({
        "sha256": digest,
        "size": bytes.len(),
        "original_path": crate::service::server::path_text(&path),
        "format": "tar.gz",
    });
    if let Ok(log) = DiagnosticLog::open(&state_dir, &config, active.info.version) {
        let _ = log.record("support_bundle", DiagnosticLevel::Required, record.clone());
    }
    match format {
        Format::Jsonl => print_line(&record.to_string()),
        Format::Text => {
            print_line(&format!("sha256:        {digest}"));
            print_line(&format!("size:          {}", bytes.len()));
            print_line(&format!("original_path: {}", shown(&path)));
            print_line("format:        tar.gz");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The service's health and statistics, when it runs for this configuration.
fn service_reports(context: &Context, config: &Config) -> (Option<Value>, Option<Value>) {
    let Some(mut client) = Client::for_context(context, &config.service) else {
        return (None, None);
    };
    let health = match client.call(&Request::Health) {
        Ok(Reply::Health { health }) => Some(health),
        _ => None,
    };
    let statistics = match client.call(&Request::Statistics) {
        Ok(Reply::Statistics { statistics }) => Some(statistics),
        _ => None,
    };
    (health, statistics)
}

/// The configuration with every path an administrator wrote passed through `redact`.
fn redacted_config(config: &Config, redact: &dyn Fn(&Path) -> String) -> Config {
    let mut config = config.clone();
    let paths = |paths: &mut Vec<PathBuf>| {
        for path in paths.iter_mut() {
            *path = PathBuf::from(redact(path));
        }
    };
    paths(&mut config.real_time.paths);
    paths(&mut config.real_time.process_exclusions);
    paths(&mut config.filesystem_scanner.quick_scan_directories);
    for exclusion in &mut config.antivirus_engine.exclusions {
        if let Some(path) = &mut exclusion.path {
            *path = PathBuf::from(redact(path));
        }
    }
    for path in [
        &mut config.updates.update_cache,
        &mut config.updates.ca_file,
    ]
    .into_iter()
    .flatten()
    {
        *path = PathBuf::from(redact(path));
    }
    config
}

/// The parts as a gzip-compressed tar (regular files, mode 0600, in order).
fn bundle(parts: &[Part]) -> Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    for part in parts {
        let mut header = tar::Header::new_ustar();
        header.set_size(part.bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        archive.append_data(&mut header, &part.name, part.bytes.as_slice())?;
    }
    Ok(archive.into_inner()?.finish()?)
}

/// Writes a new file readable by its owner only: a temporary name, fsync, rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut temp = path.as_os_str().to_os_string();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .with_context(|| format!("cannot create {}", shown(&temp)))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", shown(&temp)))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", shown(path)))
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn compact_time(unix: i64) -> String {
    super::format_time(unix)
        .trim_end_matches(" UTC")
        .replace(['-', ':'], "")
        .replace(' ', "-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_and_unix_times_are_understood() {
        assert_eq!(super::parse_since("1700000000").unwrap(), 1_700_000_000);
        let day = super::parse_since("1d").unwrap();
        assert!((super::now() - day - 86_400).abs() <= 1);
        assert!(super::parse_since("5y").is_err());
        assert_eq!(super::compact_time(1_795_616_789), "20261125-142629");
    }
}
