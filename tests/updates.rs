//! Definitions updates from a channel, against a real HTTP server started by the test on
//! 127.0.0.1 (range requests supported, so resume is real) and a real forwarding proxy; and the
//! diagnostic log, support bundles and crash reports.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Sandbox, eicar, text};
use ed25519_dalek::Signer;
use serde_json::{Value, json};

/// How the test server behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Normal,
    /// Every request gets 404.
    NotFound,
    /// Waits this long before answering.
    Slow(Duration),
    /// The next drop download stops after this many bytes (then back to normal).
    TruncateOnce(usize),
}

/// A static file server over a folder, with range requests, on 127.0.0.1.
struct Server {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    /// Request lines and their Range header, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

/// Serves one connection: a request on `stream`, answered from the folder by the mode.
type Handler = dyn Fn(TcpStream, &Path, &Mutex<Mode>, &Mutex<Vec<String>>) + Send + Sync;

impl Server {
    fn start(root: &Path) -> Self {
        Self::listen(root, Arc::new(serve::<TcpStream>))
    }

    /// Accepts connections on 127.0.0.1, each handled by `handler` on its own thread.
    fn listen(root: &Path, handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (root, thread_mode, thread_seen) = (root.to_path_buf(), mode.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, mode, seen) = (root.clone(), thread_mode.clone(), thread_seen.clone());
                let handler = handler.clone();
                std::thread::spawn(move || handler(stream, &root, &mode, &seen));
            }
        });
        Self { port, mode, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The same server over TLS, with a certificate for `localhost` from a certificate authority
    /// made here; returns it and that authority's PEM.
    fn start_tls(root: &Path) -> (Self, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Vigil test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let server = Self::listen(
            root,
            Arc::new(move |stream, root, mode, seen| {
                let connection = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, stream);
                serve(&mut tls, root, mode, seen);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }),
        );
        (server, ca.pem())
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads a request head: the request line and the headers, lower-cased names.
fn read_head(reader: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let request = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some((request, headers))
}

fn serve<S: Read + Write>(stream: S, root: &Path, mode: &Mutex<Mode>, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let Some((request, headers)) = read_head(&mut reader) else {
        return;
    };
    let stream = reader.get_mut();
    let range = headers
        .iter()
        .find(|(name, _)| name == "range")
        .map(|(_, value)| value.clone());
    seen.lock().unwrap().push(format!(
        "{request} range={}",
        range.clone().unwrap_or_default()
    ));
    let current = *mode.lock().unwrap();
    if let Mode::Slow(delay) = current {
        std::thread::sleep(delay);
    }
    let path = request
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/');
    let file = root.join(path);
    let body = match (current, std::fs::read(&file)) {
        (Mode::NotFound, _) | (_, Err(_)) => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        (_, Ok(body)) => body,
    };
    let start = range
        .and_then(|range| {
            range
                .strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        })
        .filter(|start| *start <= body.len());
    let (status, slice) = match start {
        Some(start) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {start}-{}/{}",
                body.len().saturating_sub(1),
                body.len()
            ),
            &body[start..],
        ),
        None => ("200 OK".to_string(), &body[..]),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        slice.len()
    );
    if let Mode::TruncateOnce(cut) = current
        && path.ends_with(".drop")
    {
        *mode.lock().unwrap() = Mode::Normal;
        let _ = stream.write_all(&slice[..cut.min(slice.len())]);
        let _ = stream.flush();
        return;
    }
    let _ = stream.write_all(slice);
    let _ = stream.flush();
}

/// A forwarding proxy (HTTP CONNECT) on 127.0.0.1 that records what it forwarded.
struct Proxy {
    port: u16,
    forwarded: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let record = forwarded.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().unwrap());
                    let Some((request, _)) = read_head(&mut reader) else {
                        return;
                    };
                    let Some(target) = request
                        .strip_prefix("CONNECT ")
                        .and_then(|rest| rest.split(' ').next())
                    else {
                        return;
                    };
                    record.lock().unwrap().push(request.clone());
                    let Ok(upstream) = TcpStream::connect(target) else {
                        return;
                    };
                    let mut client = client;
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .unwrap();
                    let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
                    let mut client_write = client.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut reader, &mut up_write);
                        let _ = up_write.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut up_read, &mut client_write);
                    let _ = client_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { port, forwarded }
    }
}

/// A publisher (key, drops) and a client sandbox trusting it.
struct Channel {
    sandbox: Sandbox,
    key: PathBuf,
    public_line: String,
    /// The folder the server serves.
    served: PathBuf,
}

impl Channel {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let (key, public_line) = common::trusted_publisher_key(&sandbox);
        let served = sandbox.root().join("served");
        std::fs::create_dir_all(&served).unwrap();
        Self {
            sandbox,
            key,
            public_line,
            served,
        }
    }

    /// Configures the client for `server_url`, with extra `[updates]` keys (which replace the
    /// test defaults of the same name).
    fn configure(&self, server_url: &str, extra: &str) {
        let defaults: String = ["timeout_ms = 2000", "retries = 0", "retry_backoff_ms = 10"]
            .iter()
            .filter(|line| !extra.contains(line.split(' ').next().unwrap()))
            .map(|line| format!("{line}\n"))
            .collect();
        self.sandbox.configure(&format!(
            "[definitions]\ntrusted_keys = [\"{}\"]\n[updates]\nmanifest_server = \"{server_url}\"\n{defaults}{extra}",
            self.public_line
        ));
    }

    /// Builds drop `version` (a rule naming it) and returns its path.
    fn build(&self, version: u64) -> PathBuf {
        let rules = self.sandbox.root().join(format!("rules-{version}"));
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::write(
            rules.join("marker.yar"),
            format!("rule marker_v{version} {{ strings: $a = \"VIGIL-UPDATE-MARKER-{version}\" condition: $a }}\n"),
        )
        .unwrap();
        let drop = self.sandbox.root().join(format!("v{version}.drop"));
        let output = self.sandbox.run(&[
            "definitions",
            "build",
            "--key",
            text(&self.key),
            "--version",
            &version.to_string(),
            "--out",
            text(&drop),
            text(&rules),
        ]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        drop
    }

    /// Builds and publishes drop `version` with `vigil definitions publish`.
    fn publish(&self, version: u64) -> PathBuf {
        let drop = self.build(version);
        let output = self.sandbox.run(&[
            "definitions",
            "publish",
            text(&drop),
            "--key",
            text(&self.key),
            "--out",
            text(&self.served),
        ]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        drop
    }

    /// Replaces the channel's index with one signed by `key_file` holding `fields` over the
    /// published index's.
    fn rewrite_index(&self, key_file: &Path, fields: Value) {
        let path = self.served.join("production/index.json");
        let outer: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut index: Value = serde_json::from_str(outer["index"].as_str().unwrap()).unwrap();
        for (key, value) in fields.as_object().unwrap() {
            index[key] = value.clone();
        }
        std::fs::write(&path, signed_index(key_file, &index)).unwrap();
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.sandbox.run(args)
    }

    fn installed_version(&self) -> u64 {
        let output = self.run(&["definitions", "status", "--format", "jsonl"]);
        let status: Value = serde_json::from_slice(&output.stdout).unwrap();
        status["version"].as_u64().unwrap()
    }

    /// The last line of the update report.
    fn last_report(&self) -> Value {
        let output = self.run(&["definitions", "history", "--format", "jsonl"]);
        let text = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(text.lines().last().expect("a report")).unwrap()
    }

    /// `vigil definitions update` must fail, leave version `installed`, and report `reason`.
    fn update_fails(&self, installed: u64, reason: &str) -> Value {
        let output = self.run(&["definitions", "update"]);
        assert_eq!(output.status.code(), Some(2), "{}", common::stderr(&output));
        assert_eq!(
            self.installed_version(),
            installed,
            "the installed version stays"
        );
        let report = self.last_report();
        assert_eq!(report["status"], "failed", "{report}");
        assert_eq!(report["reason"], reason, "{report}");
        assert!(
            report["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{report}"
        );
        assert_eq!(report["channel"], "production");
        report
    }
}

/// An `index.json` holding `index`, signed with the secret key in `key_file`.
fn signed_index(key_file: &Path, index: &Value) -> Vec<u8> {
    let secret = std::fs::read_to_string(key_file).unwrap();
    let hex = secret.trim().rsplit(' ').next().unwrap();
    let seed: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed.try_into().unwrap());
    let text = index.to_string();
    let signature: String = key
        .sign(text.as_bytes())
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let public: String = key
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::to_vec(&json!({
        "index": text,
        "signer": format!("vigil-ed25519 {public}"),
        "signature": signature,
    }))
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn an_update_from_a_channel_installs_the_new_version_and_then_finds_nothing_newer() {
    let channel = Channel::new();
    let server = Server::start(&channel.served);
    channel.configure(&server.url(), "");
    let before = channel.installed_version();
    channel.publish(before + 1);
    let check = channel.run(&["definitions", "check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "newer available: {}",
        common::stderr(&check)
    );
    let update = channel.run(&["definitions", "update"]);
    assert!(update.status.success(), "{}", common::stderr(&update));
    assert_eq!(channel.installed_version(), before + 1);
    let report = channel.last_report();
    assert_eq!(report["status"], "installed");
    assert_eq!(report["channel"], "production");
    assert_eq!(report["using_proxy"], false);
    // The new rules are in force.
    let marked = channel
        .sandbox
        .write("marked.txt", format!("VIGIL-UPDATE-MARKER-{}", before + 1));
    assert_eq!(channel.sandbox.scan(&["custom", text(&marked)]).code, 1);
    // Nothing newer: reported as such, nothing changes.
    let again = channel.run(&["definitions", "update"]);
    assert!(again.status.success());
    assert_eq!(channel.last_report()["status"], "up_to_date");
    assert_eq!(channel.last_report()["reason"], "no_newer_version");
    assert_eq!(
        channel.run(&["definitions", "check"]).status.code(),
        Some(0)
    );
    // The update report is a diagnostic event too.
    let events = channel.run(&["diagnostic", "events", "--format", "jsonl"]);
    let events = String::from_utf8(events.stdout).unwrap();
    assert!(events.contains("\"event\":\"update_report\""), "{events}");
    // A file:// server works the same way.
    let file_channel = Channel::new();
    file_channel.configure(&format!("file://{}", text(&file_channel.served)), "");
    let base = file_channel.installed_version();
    file_channel.publish(base + 3);
    assert!(
        file_channel
            .run(&["definitions", "update"])
            .status
            .success()
    );
    assert_eq!(file_channel.installed_version(), base + 3);
}

#[test]
fn an_update_over_https_trusts_the_configured_authority_and_only_it() {
    let channel = Channel::new();
    let (server, ca_pem) = Server::start_tls(&channel.served);
    let url = format!("https://localhost:{}", server.port);
    let installed = channel.installed_version();
    channel.publish(installed + 1);
    // The built-in roots do not know this authority: refused.
    channel.configure(&url, "");
    let refused = channel.update_fails(installed, "tls");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("certificate"),
        "{refused}"
    );
    // Trusted through updates.ca_file: installed over TLS.
    let ca_file = channel.sandbox.root().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    channel.configure(&url, &format!("ca_file = \"{}\"\n", text(&ca_file)));
    let update = channel.run(&["definitions", "update"]);
    assert!(update.status.success(), "{}", common::stderr(&update));
    assert_eq!(channel.installed_version(), installed + 1);
    // A file that is not a certificate is a clear error.
    std::fs::write(&ca_file, "not a certificate").unwrap();
    channel.update_fails(installed + 1, "not_configured");
}

#[test]
fn a_server_that_is_down_missing_or_slow_leaves_the_definitions_and_says_why() {
    let channel = Channel::new();
    let installed = channel.installed_version();
    // Down: a port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    channel.configure(&format!("http://127.0.0.1:{port}"), "");
    channel.update_fails(installed, "server_down");
    // 404.
    let server = Server::start(&channel.served);
    channel.publish(installed + 1);
    server.set(Mode::NotFound);
    channel.configure(&server.url(), "");
    channel.update_fails(installed, "not_found");
    // Slower than the timeout.
    server.set(Mode::Slow(Duration::from_secs(3)));
    channel.configure(&server.url(), "timeout_ms = 300\n");
    let started = std::time::Instant::now();
    channel.update_fails(installed, "timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Not configured at all.
    channel.sandbox.configure(&format!(
        "[definitions]\ntrusted_keys = [\"{}\"]\n",
        channel.public_line
    ));
    channel.update_fails(installed, "not_configured");
}

#[test]
fn a_truncated_download_is_resumed_with_a_range_request() {
    let channel = Channel::new();
    let server = Server::start(&channel.served);
    channel.configure(&server.url(), "");
    let installed = channel.installed_version();
    let drop = channel.publish(installed + 1);
    let size = std::fs::metadata(&drop).unwrap().len() as usize;
    let cut = size / 2;
    server.set(Mode::TruncateOnce(cut));
    channel.update_fails(installed, "truncated");
    let partial: Vec<_> = std::fs::read_dir(channel.sandbox.state_dir().join("update_cache"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(partial.len(), 1, "the partial download is kept");
    assert_eq!(partial[0].metadata().unwrap().len() as usize, cut);
    let update = channel.run(&["definitions", "update"]);
    assert!(update.status.success(), "{}", common::stderr(&update));
    assert_eq!(channel.installed_version(), installed + 1);
    let resumed = format!("range=bytes={cut}-");
    assert!(
        server.seen().iter().any(|line| line.ends_with(&resumed)),
        "{:?}",
        server.seen()
    );
}

#[test]
fn wrong_digests_untrusted_keys_replays_expiry_and_oversized_drops_are_refused() {
    let channel = Channel::new();
    let server = Server::start(&channel.served);
    channel.configure(&server.url(), "");
    let installed = channel.installed_version();
    channel.publish(installed + 1);
    // A digest that does not match the drop.
    channel.rewrite_index(&channel.key, json!({"sha256": "ab".repeat(32)}));
    channel.update_fails(installed, "digest");
    // Signed by a key the client does not trust.
    let stranger = channel.sandbox.root().join("stranger.key");
    assert!(
        channel
            .run(&["definitions", "keygen", "--out", text(&stranger)])
            .status
            .success()
    );
    channel.publish(installed + 1);
    channel.rewrite_index(&stranger, json!({}));
    channel.update_fails(installed, "untrusted_key");
    // Expired.
    channel.publish(installed + 1);
    channel.rewrite_index(&channel.key, json!({"expires_at": now() - 60}));
    channel.update_fails(installed, "expired");
    // Over the download limit.
    channel.publish(installed + 1);
    channel.configure(&server.url(), "max_download_size = 100\n");
    channel.update_fails(installed, "too_large");
    // Replayed: once a newer index has been seen, an older one is refused.
    channel.configure(&server.url(), "");
    channel.publish(installed + 2);
    assert!(channel.run(&["definitions", "update"]).status.success());
    assert_eq!(channel.installed_version(), installed + 2);
    let old_drop = channel.build(installed + 3);
    let old_bytes = std::fs::read(&old_drop).unwrap();
    std::fs::write(channel.served.join("production/drops/old.drop"), &old_bytes).unwrap();
    channel.rewrite_index(
        &channel.key,
        json!({"issued_at": now() - 3600, "version": installed + 3, "drop": "drops/old.drop"}),
    );
    channel.update_fails(installed + 2, "replayed");
}

#[test]
fn an_update_through_a_proxy_is_reported_as_such() {
    let channel = Channel::new();
    let server = Server::start(&channel.served);
    let proxy = Proxy::start();
    channel.configure(
        &server.url(),
        &format!("proxy = \"http://127.0.0.1:{}\"\n", proxy.port),
    );
    let installed = channel.installed_version();
    channel.publish(installed + 1);
    let update = channel.run(&["definitions", "update"]);
    assert!(update.status.success(), "{}", common::stderr(&update));
    assert_eq!(channel.installed_version(), installed + 1);
    let report = channel.last_report();
    assert_eq!(report["using_proxy"], true);
    let forwarded = proxy.forwarded.lock().unwrap().clone();
    assert!(
        forwarded
            .iter()
            .any(|line| line.contains(&format!("127.0.0.1:{}", server.port))),
        "{forwarded:?}"
    );
}

fn events(sandbox: &Sandbox) -> Vec<Value> {
    let output = sandbox.run(&["diagnostic", "events", "--format", "jsonl"]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn the_required_level_writes_no_optional_events_and_optional_adds_performance() {
    let sandbox = Sandbox::new();
    sandbox.configure(
        "[[antivirus_engine.exclusions]]\npath = \"/home/alice/private-project\"\nis_directory = true\n",
    );
    sandbox.write("eicar.com", eicar());
    assert_eq!(sandbox.scan(&["custom", text(&sandbox.corpus(""))]).code, 1);
    let required = events(&sandbox);
    let names: Vec<&str> = required
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"config_snapshot") && names.contains(&"scan_summary"),
        "{names:?}"
    );
    assert!(
        required.iter().all(|e| e["level"] == "required"),
        "{required:?}"
    );
    let text_of_events = serde_json::to_string(&required).unwrap();
    assert!(
        !text_of_events.contains("alice"),
        "exclusion paths are redacted to counts"
    );
    for field in [
        "platform",
        "machine_guid",
        "hostname",
        "app_version",
        "sig_version",
        "supported_compressions",
        "release_ring",
    ] {
        assert!(!required[0][field].is_null(), "{field}: {}", required[0]);
    }
    sandbox.configure("[diagnostics]\nlevel = \"optional\"\n");
    assert_eq!(sandbox.scan(&["custom", text(&sandbox.corpus(""))]).code, 1);
    let optional = events(&sandbox);
    let performance: Vec<&Value> = optional
        .iter()
        .filter(|e| e["event"] == "performance")
        .collect();
    assert_eq!(performance.len(), 1);
    assert!(performance[0]["files_per_second"].as_f64().unwrap() > 0.0);
    let plugins = performance[0]["plugins"].as_array().unwrap();
    assert!(
        !plugins.is_empty() && plugins.iter().all(|p| p["calls"].is_u64()),
        "{plugins:?}"
    );
    let usage: Vec<&Value> = optional
        .iter()
        .filter(|e| e["event"] == "feature_usage")
        .collect();
    assert!(
        usage.iter().any(|e| e["command"] == "scan custom"),
        "{usage:?}"
    );
    assert!(
        !serde_json::to_string(&usage).unwrap().contains("corpus"),
        "no paths in usage"
    );
    // The level change itself was a configuration change.
    assert_eq!(
        optional
            .iter()
            .filter(|e| e["event"] == "config_snapshot")
            .count(),
        2
    );
    let since = events(&sandbox).last().unwrap()["time"].as_i64().unwrap() + 10;
    let later = sandbox.run(&[
        "diagnostic",
        "events",
        "--since",
        &since.to_string(),
        "--format",
        "jsonl",
    ]);
    assert!(later.stdout.is_empty());
}

/// The files of a tar.gz, by name.
fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = text(&entry.path().unwrap()).to_string();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (name, content)
        })
        .collect()
}

#[test]
fn a_support_bundle_matches_its_manifest_redacts_paths_and_holds_no_secret() {
    let sandbox = Sandbox::new();
    sandbox.configure(
        "[[antivirus_engine.exclusions]]\npath = \"/home/alice/private-project\"\nis_directory = true\n",
    );
    let infected = sandbox.write("secret-name/eicar.com", eicar());
    // A quarantined file: the vault and its key exist.
    assert_eq!(sandbox.quarantine_corpus().code, 1);
    let vault_key = std::fs::read(sandbox.state_dir().join("quarantine/vault.key")).unwrap();
    let out = sandbox.root().join("bundles");
    let created = sandbox.run(&[
        "diagnostic",
        "create",
        "--out",
        text(&out),
        "--format",
        "jsonl",
    ]);
    assert!(created.status.success(), "{}", common::stderr(&created));
    let record: Value = serde_json::from_slice(&created.stdout).unwrap();
    let path = PathBuf::from(record["original_path"].as_str().unwrap());
    assert_eq!(record["format"], "tar.gz");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(record["size"], bytes.len());
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(record["sha256"], digest);
    let files = untar(&bytes);
    let manifest: Value = serde_json::from_slice(
        &files
            .iter()
            .find(|(name, _)| name == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len() - 1, "every other file is listed");
    for entry in listed {
        let (_, content) = files
            .iter()
            .find(|(name, _)| name == entry["name"].as_str().unwrap())
            .expect("listed files are in the bundle");
        let digest: String = sha2::Sha256::digest(content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry["sha256"], digest, "{}", entry["name"]);
        assert_eq!(entry["size"], content.len());
    }
    for name in [
        "config.toml",
        "definitions.json",
        "update-history.jsonl",
        "threat-history.jsonl",
        "diagnostic-events.jsonl",
        "health.json",
        "versions.json",
        "cache.json",
    ] {
        assert!(
            files.iter().any(|(n, _)| n == name),
            "{name} is in the bundle"
        );
    }
    let everything: Vec<u8> = files
        .iter()
        .flat_map(|(_, content)| content.clone())
        .collect();
    let everything_text = String::from_utf8_lossy(&everything);
    assert!(
        !everything_text.contains("alice") && !everything_text.contains("secret-name"),
        "paths are redacted"
    );
    assert!(everything_text.contains("EICAR"), "threat names stay");
    assert!(
        !everything
            .windows(vault_key.len())
            .any(|w| w == vault_key.as_slice()),
        "no vault key"
    );
    assert!(!everything_text.contains("-secret "), "no signing key");
    assert!(everything_text.contains("wasmtime_version"));
    // With --include-paths, the paths are there.
    let with_paths = sandbox.run(&[
        "diagnostic",
        "create",
        "--out",
        text(&out),
        "--include-paths",
        "--format",
        "jsonl",
    ]);
    let record: Value = serde_json::from_slice(&with_paths.stdout).unwrap();
    let files = untar(&std::fs::read(record["original_path"].as_str().unwrap()).unwrap());
    let history = &files
        .iter()
        .find(|(n, _)| n == "threat-history.jsonl")
        .unwrap()
        .1;
    assert!(String::from_utf8_lossy(history).contains(text(&infected)));
    // The bundle is recorded as a diagnostic event.
    assert!(
        events(&sandbox)
            .iter()
            .any(|e| e["event"] == "support_bundle")
    );
}

#[test]
fn a_crash_writes_a_crash_event_with_its_backtrace() {
    let sandbox = Sandbox::new();
    let crashed = sandbox
        .vigil()
        .env("VIGIL_FAULT_PANIC", "1")
        .args(["health"])
        .output()
        .unwrap();
    assert_eq!(
        crashed.status.code(),
        Some(101),
        "{}",
        common::stderr(&crashed)
    );
    let crash = events(&sandbox)
        .into_iter()
        .find(|e| e["event"] == "crash")
        .expect("a crash event");
    assert!(
        crash["message"]
            .as_str()
            .unwrap()
            .contains("VIGIL_FAULT_PANIC")
    );
    assert!(
        crash["backtrace"].as_str().unwrap().contains("crash_point"),
        "{crash}"
    );
    assert_eq!(crash["level"], "required");
}
