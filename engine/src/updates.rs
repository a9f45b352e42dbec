//! Definitions updates from a channel: fetch the channel's signed index, check it is trusted,
//! fresh and not replayed, download the drop it names into `updates.update_cache` (resuming a
//! partial download with a range request), check its size and SHA-256, and install it through
//! [`DefinitionsStore::update_from`], which verifies the drop's own signature and installs it
//! atomically. Every attempt, whatever became of it, is one line of the update report
//! (`vigil definitions history`) and one `update_report` diagnostic event.
//!
//! Refused, and the installed definitions left as they are: an index not signed by a trusted key,
//! for another channel, issued before the newest index already seen (a replay: a mirror cannot
//! serve an old index to hold a machine on old definitions), expired, or naming a drop over
//! `updates.max_download_size`; a download of the wrong size or digest.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::Digest;
use vigil_drop::channel::{ChannelIndex, INDEX_FILE, MAX_INDEX_SIZE, open_index};
use vigil_drop::hex;

use crate::config::{Config, DiagnosticLevel, UpdatesConfig};
use crate::definitions::{DefinitionsStore, Origin, UpdateRecord};
use crate::diagnostics::DiagnosticLog;
use crate::error::EngineError;
use crate::state::{State, unix_now};

/// How far in the future an index's issue time may lie (clocks differ).
const CLOCK_SKEW: i64 = 300;

/// Why an update attempt stopped before a drop was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A short word for the report: `not_configured`, `server_down`, `timeout`, `tls`,
    /// `not_found`, `http_error`, `invalid_index`, `signature`, `untrusted_key`, `wrong_channel`, `replayed`,
    /// `expired`, `too_large`, `truncated`, `size`, `digest`, `io`.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

impl Failure {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What a channel offers, once its index is verified.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The verified index.
    pub index: ChannelIndex,
    /// The index's URL.
    pub index_url: String,
    /// The installed version.
    pub installed: u64,
}

impl Offer {
    /// Whether the channel offers a newer version than the installed one.
    pub fn is_newer(&self) -> bool {
        self.index.version > self.installed
    }
}

/// Reads the configured channel's index and checks it (trusted, right channel, fresh, not
/// replayed); records it as seen. Does not download the drop.
pub fn check(config: &Config, state: &Arc<State>) -> Result<Offer, Failure> {
    let store = DefinitionsStore::open(state.clone()).map_err(io_failure)?;
    let fetcher = Fetcher::new(&config.updates)?;
    fetch_offer(config, state, &store, &fetcher)
}

/// Checks the channel and installs what it offers when that is newer. Every outcome is
/// recorded; the record is returned when the definitions are installed or already up to date,
/// an error (naming the reason) otherwise.
pub fn update(config: &Config, state: &Arc<State>) -> Result<UpdateRecord, EngineError> {
    let store = DefinitionsStore::open(state.clone())?;
    let installed = store.installed_version()?;
    let updates = &config.updates;
    let mut record = UpdateRecord {
        time: unix_now(),
        kind: "update".into(),
        from_version: installed,
        to_version: None,
        status: "failed".into(),
        reason: String::new(),
        error: None,
        source: index_url(updates).unwrap_or_default(),
        channel: Some(updates.channel_name.clone()),
        using_proxy: !updates.proxy.is_empty(),
    };
    let outcome = Fetcher::new(updates).and_then(|fetcher| {
        let offer = fetch_offer(config, state, &store, &fetcher)?;
        record.to_version = Some(offer.index.version);
        if !offer.is_newer() {
            return Ok(None);
        }
        let drop = download_drop(updates, state.dir(), &fetcher, &offer)?;
        Ok(Some((offer, drop)))
    });
    let (result, reported) = match outcome {
        Ok(None) => {
            record.status = "up_to_date".into();
            record.reason = "no_newer_version".into();
            store.record_attempt(&record)?;
            (Ok(record.clone()), record)
        }
        Ok(Some((offer, drop))) => {
            let origin = Origin {
                channel: record.channel.clone(),
                using_proxy: record.using_proxy,
                source: Some(offer.index_url.clone()),
            };
            match store.update_from(&drop, &config.definitions, false, &origin) {
                Ok(installed) => {
                    let _ = std::fs::remove_file(&drop);
                    (Ok(installed.clone()), installed)
                }
                // The store recorded the rejection: report that line.
                Err(err) => (Err(err), store.history()?.pop().unwrap_or(record)),
            }
        }
        Err(failure) => {
            record.reason = failure.reason.into();
            record.error = Some(failure.message.clone());
            store.record_attempt(&record)?;
            let err = EngineError::Definitions(format!(
                "update from channel {} failed ({}): {}",
                updates.channel_name, failure.reason, failure.message
            ));
            (Err(err), record)
        }
    };
    report(config, state.dir(), &reported);
    result
}

/// Writes an `update_report` diagnostic event for `record` (required level).
pub fn report(config: &Config, state_dir: &Path, record: &UpdateRecord) {
    let version = record.to_version.filter(|_| record.status == "installed");
    if let Ok(log) = DiagnosticLog::open(state_dir, config, version.unwrap_or(record.from_version))
    {
        let _ = log.record(
            "update_report",
            DiagnosticLevel::Required,
            json!({
                "kind": record.kind,
                "from_version": record.from_version,
                "to_version": record.to_version,
                "status": record.status,
                "reason": record.reason,
                "error": record.error,
                "using_proxy": record.using_proxy,
                "channel": record.channel,
            }),
        );
    }
}

/// The configured channel's index URL.
pub fn index_url(updates: &UpdatesConfig) -> Option<String> {
    (!updates.manifest_server.is_empty()).then(|| {
        format!(
            "{}/{}/{INDEX_FILE}",
            updates.manifest_server.trim_end_matches('/'),
            updates.channel_name
        )
    })
}

fn fetch_offer(
    config: &Config,
    state: &State,
    store: &DefinitionsStore,
    fetcher: &Fetcher,
) -> Result<Offer, Failure> {
    let updates = &config.updates;
    let url = index_url(updates).ok_or_else(|| {
        Failure::new(
            "not_configured",
            "updates.manifest_server is not set; set it or give a drop file with --from",
        )
    })?;
    let bytes = fetcher.fetch_small(&url, MAX_INDEX_SIZE)?;
    let trusted: Vec<_> = config
        .definitions
        .trusted_keys
        .iter()
        .filter_map(|line| vigil_drop::parse_public_key(line).ok())
        .collect();
    let index = open_index(&bytes, &trusted).map_err(|err| {
        let reason = match err {
            vigil_drop::DropError::UntrustedKey(_) => "untrusted_key",
            vigil_drop::DropError::Signature(_) => "signature",
            vigil_drop::DropError::Key(_) => "signature",
            _ => "invalid_index",
        };
        Failure::new(reason, format!("{url}: {err}"))
    })?;
    verify_fresh(&index, updates, state, unix_now())?;
    state
        .record_channel_seen(&index.channel, index.issued_at, index.version)
        .map_err(io_failure)?;
    if index.size > updates.max_download_size {
        return Err(Failure::new(
            "too_large",
            format!(
                "the drop of version {} is {} bytes, over updates.max_download_size ({})",
                index.version, index.size, updates.max_download_size
            ),
        ));
    }
    Ok(Offer {
        installed: store.installed_version().map_err(io_failure)?,
        index,
        index_url: url,
    })
}

/// Refuses an index for another channel, issued before the newest one seen, issued in the
/// future, or expired.
fn verify_fresh(
    index: &ChannelIndex,
    updates: &UpdatesConfig,
    state: &State,
    now: i64,
) -> Result<(), Failure> {
    if index.channel != updates.channel_name {
        return Err(Failure::new(
            "wrong_channel",
            format!(
                "the index is for channel {:?}, not {:?}",
                index.channel, updates.channel_name
            ),
        ));
    }
    if let Some((newest, version)) = state.channel_seen(&index.channel).map_err(io_failure)?
        && index.issued_at < newest
    {
        return Err(Failure::new(
            "replayed",
            format!(
                "the index (version {}, issued at {}) is older than one already seen (version {version}, issued at {newest}): refused as a replay",
                index.version, index.issued_at
            ),
        ));
    }
    if index.issued_at > now + CLOCK_SKEW {
        return Err(Failure::new(
            "invalid_index",
            format!("the index is issued in the future ({})", index.issued_at),
        ));
    }
    if index.expires_at <= now {
        return Err(Failure::new(
            "expired",
            format!(
                "the index (version {}) expired at {}; the publisher has not signed a newer one",
                index.version, index.expires_at
            ),
        ));
    }
    Ok(())
}

/// Downloads the offered drop into the update cache, resuming a partial download; returns the
/// complete, verified file.
fn download_drop(
    updates: &UpdatesConfig,
    state_dir: &Path,
    fetcher: &Fetcher,
    offer: &Offer,
) -> Result<PathBuf, Failure> {
    let index = &offer.index;
    let digest = index.sha256.to_ascii_lowercase();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::new(
            "invalid_index",
            "the index's sha256 is not 64 hex digits",
        ));
    }
    let cache = updates
        .update_cache
        .clone()
        .unwrap_or_else(|| state_dir.join("update_cache"));
    std::fs::create_dir_all(&cache)
        .map_err(|err| Failure::new("io", format!("cannot create {}: {err}", cache.display())))?;
    let partial = cache.join(format!("{digest}.part"));
    // Partial downloads of other drops are of no more use.
    if let Ok(entries) = std::fs::read_dir(&cache) {
        for entry in entries.flatten() {
            if entry.path() != partial {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let url = resolve(&offer.index_url, &index.drop);
    let mut wait = Duration::from_millis(updates.retry_backoff_ms);
    let mut attempt = 0;
    loop {
        match fetcher.download(&url, &partial, index.size) {
            Ok(()) => break,
            Err(failure) if attempt < updates.retries && failure.reason != "not_found" => {
                attempt += 1;
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(failure) => return Err(failure),
        }
    }
    let bytes = std::fs::read(&partial)
        .map_err(|err| Failure::new("io", format!("cannot read {}: {err}", partial.display())))?;
    let actual = hex(&sha2::Sha256::digest(&bytes));
    if actual != digest {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::new(
            "digest",
            format!("the download from {url} has SHA-256 {actual}, the index says {digest}"),
        ));
    }
    let complete = cache.join(format!("{digest}.drop"));
    std::fs::rename(&partial, &complete)
        .map_err(|err| Failure::new("io", format!("cannot rename {}: {err}", partial.display())))?;
    Ok(complete)
}

/// `reference` relative to `base` (a URL ending in a file name), unless it is a URL itself.
fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let folder = base.rsplit_once('/').map_or(base, |(folder, _)| folder);
    format!("{folder}/{}", reference.trim_start_matches('/'))
}

fn io_failure(err: EngineError) -> Failure {
    Failure::new("io", err.to_string())
}

/// Reads `http://`, `https://` (through `updates.proxy` when set) and `file://` URLs.
pub struct Fetcher {
    agent: ureq::Agent,
}

impl Fetcher {
    /// A fetcher with the timeouts and proxy of `updates`.
    pub fn new(updates: &UpdatesConfig) -> Result<Self, Failure> {
        let timeout = Some(Duration::from_millis(updates.timeout_ms));
        let proxy =
            if updates.proxy.is_empty() {
                None
            } else {
                Some(ureq::Proxy::new(&updates.proxy).map_err(|err| {
                    Failure::new("not_configured", format!("updates.proxy: {err}"))
                })?)
            };
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &updates.ca_file {
            let pem = std::fs::read(path).map_err(|err| {
                Failure::new(
                    "not_configured",
                    format!("updates.ca_file: cannot read {}: {err}", path.display()),
                )
            })?;
            let roots: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect();
            if roots.is_empty() {
                return Err(Failure::new(
                    "not_configured",
                    format!(
                        "updates.ca_file: {} holds no PEM certificate",
                        path.display()
                    ),
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .proxy(proxy)
            .timeout_connect(timeout)
            .timeout_resolve(timeout)
            .timeout_send_request(timeout)
            .timeout_recv_response(timeout)
            .timeout_recv_body(None)
            .timeout_per_read(timeout)
            .http_status_as_error(false)
            .max_redirects(3)
            .build()
            .new_agent();
        Ok(Self { agent })
    }

    /// The whole of a small file (at most `limit` bytes).
    fn fetch_small(&self, url: &str, limit: usize) -> Result<Vec<u8>, Failure> {
        if let Some(path) = url.strip_prefix("file://") {
            let file = std::fs::File::open(path).map_err(|err| file_failure(url, &err))?;
            let mut bytes = Vec::new();
            file.take(limit as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| file_failure(url, &err))?;
            return too_large_or(bytes, limit, url);
        }
        let response = self
            .agent
            .get(url)
            .call()
            .map_err(|err| http_failure(url, err))?;
        check_status(url, response.status().as_u16(), &[200])?;
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| read_failure(url, &err))?;
        too_large_or(bytes, limit, url)
    }

    /// Downloads `url` into `partial` until it holds `size` bytes, continuing from what it holds
    /// already (a range request); never writes more than `size` bytes.
    fn download(&self, url: &str, partial: &Path, size: u64) -> Result<(), Failure> {
        let have = std::fs::metadata(partial).map_or(0, |m| m.len());
        let have = if have > size { 0 } else { have };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(partial)
            .map_err(|err| {
                Failure::new("io", format!("cannot open {}: {err}", partial.display()))
            })?;
        file.set_len(have).map_err(|err| {
            Failure::new("io", format!("cannot resize {}: {err}", partial.display()))
        })?;
        if have == size {
            return Ok(());
        }
        let (mut body, start): (Box<dyn Read>, u64) = if let Some(path) =
            url.strip_prefix("file://")
        {
            let mut source = std::fs::File::open(path).map_err(|err| file_failure(url, &err))?;
            std::io::Seek::seek(&mut source, std::io::SeekFrom::Start(have))
                .map_err(|err| file_failure(url, &err))?;
            (Box::new(source), have)
        } else {
            let mut request = self.agent.get(url);
            if have > 0 {
                request = request.header("Range", format!("bytes={have}-"));
            }
            let response = request.call().map_err(|err| http_failure(url, err))?;
            let status = response.status().as_u16();
            check_status(url, status, &[200, 206])?;
            // A server that ignores the range sends the whole file again.
            let start = if status == 206 { have } else { 0 };
            (Box::new(response.into_body().into_reader()), start)
        };
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start)).map_err(|err| {
            Failure::new("io", format!("cannot seek {}: {err}", partial.display()))
        })?;
        file.set_len(start).map_err(|err| {
            Failure::new("io", format!("cannot resize {}: {err}", partial.display()))
        })?;
        let mut written = start;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    let _ = file.sync_all();
                    return Err(read_failure(url, &err));
                }
            };
            if written + read as u64 > size {
                drop(file);
                let _ = std::fs::remove_file(partial);
                return Err(Failure::new(
                    "size",
                    format!("{url} sent more than the {size} bytes the index announces"),
                ));
            }
            file.write_all(&buffer[..read]).map_err(|err| {
                Failure::new("io", format!("cannot write {}: {err}", partial.display()))
            })?;
            written += read as u64;
        }
        file.sync_all().map_err(|err| {
            Failure::new("io", format!("cannot write {}: {err}", partial.display()))
        })?;
        if written < size {
            return Err(Failure::new(
                "truncated",
                format!("{url} ended after {written} of {size} bytes (kept, to resume)"),
            ));
        }
        Ok(())
    }
}

fn too_large_or(bytes: Vec<u8>, limit: usize, url: &str) -> Result<Vec<u8>, Failure> {
    if bytes.len() > limit {
        return Err(Failure::new(
            "too_large",
            format!("{url} is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

fn check_status(url: &str, status: u16, wanted: &[u16]) -> Result<(), Failure> {
    if wanted.contains(&status) {
        return Ok(());
    }
    let reason = if status == 404 {
        "not_found"
    } else {
        "http_error"
    };
    Err(Failure::new(reason, format!("{url}: HTTP status {status}")))
}

fn http_failure(url: &str, err: ureq::Error) -> Failure {
    match err {
        ureq::Error::Timeout(what) => Failure::new("timeout", format!("{url}: timed out ({what})")),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            Failure::new("tls", format!("{url}: {err}"))
        }
        // A TLS failure during the handshake (an unknown issuer, a wrong name) arrives as
        // invalid data on the connection.
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Failure::new("tls", format!("{url}: {io}"))
        }
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => {
                Failure::new("server_down", format!("{url}: {io}"))
            }
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                Failure::new("timeout", format!("{url}: {io}"))
            }
            _ => Failure::new("server_down", format!("{url}: {io}")),
        },
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            Failure::new("server_down", format!("{url}: {err}"))
        }
        other => Failure::new("http_error", format!("{url}: {other}")),
    }
}

fn read_failure(url: &str, err: &std::io::Error) -> Failure {
    let text = err.to_string();
    if err.kind() == std::io::ErrorKind::TimedOut || text.contains("imeout") {
        Failure::new("timeout", format!("{url}: {err}"))
    } else {
        Failure::new("truncated", format!("{url}: {err} (kept, to resume)"))
    }
}

fn file_failure(url: &str, err: &std::io::Error) -> Failure {
    let reason = if err.kind() == std::io::ErrorKind::NotFound {
        "not_found"
    } else {
        "io"
    };
    Failure::new(reason, format!("{url}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_references_resolve_against_the_index_folder() {
        assert_eq!(
            resolve("http://h/c/production/index.json", "../drops/v2.drop"),
            "http://h/c/production/../drops/v2.drop"
        );
        assert_eq!(
            resolve("file:///srv/production/index.json", "v2.drop"),
            "file:///srv/production/v2.drop"
        );
        assert_eq!(
            resolve("http://h/x/index.json", "https://cdn/v2.drop"),
            "https://cdn/v2.drop"
        );
    }
}
