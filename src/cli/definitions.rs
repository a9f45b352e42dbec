//! `vigil definitions keygen|build|publish|check|update|rollback|status|history`: publishing and
//! installing signed definitions drops, from a file or from a channel.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use vigil_engine::definitions::{DefinitionsStore, ENGINE_VERSION, check_drop};

use super::output::Format;
use super::{Context, format_time, print_line, shown, untrusted};

/// `vigil definitions ...`
#[derive(Subcommand)]
pub enum DefinitionsCommand {
    /// Make a signing key pair: the secret key in KEYFILE (0600), the public key line in KEYFILE.pub.
    Keygen {
        /// Where to write the secret key (never overwritten).
        #[arg(long, value_name = "KEYFILE")]
        out: PathBuf,
    },
    /// Build a signed drop from rule files (.yar), hash lists (.txt) and plugins (.wasm).
    Build {
        /// The secret key file made by `keygen`.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// The definitions version (must rise with every release).
        #[arg(long)]
        version: u64,
        /// The drop file to write.
        #[arg(long, value_name = "DROP")]
        out: PathBuf,
        /// The oldest engine version that can use the drop.
        #[arg(long, default_value = ENGINE_VERSION)]
        min_engine_version: String,
        /// Files or folders to include.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Publish a drop on a channel: copy it into a folder any static web server can serve and
    /// write the channel's signed index (version, drop, size, SHA-256, issued-at, expiry).
    Publish {
        /// The drop file (built with `build`, signed with the same key).
        drop: PathBuf,
        /// The secret key file that signed the drop.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// The folder served as `updates.manifest_server`.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The channel.
        #[arg(long, default_value = "production")]
        channel: String,
        /// Days until the index expires (clients refuse it after that, until a newer one is
        /// published).
        #[arg(long, default_value_t = 7)]
        expires_in_days: u64,
    },
    /// Read the channel's index (updates.manifest_server, updates.channel_name), verify it and
    /// say whether a newer version is offered; exit code 0 up to date, 1 newer available.
    Check,
    /// Verify a drop and install it atomically (the current version is kept for rollback).
    /// Without --from: from the channel (download resumed, size, digest and signature checked).
    Update {
        /// The drop file (default: what the configured channel offers).
        #[arg(long, value_name = "DROP")]
        from: Option<PathBuf>,
        /// Accept a version that is not newer than the active one.
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Make the previous version active again.
    Rollback,
    /// Show the active definitions.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show every update and rollback attempt.
    History {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs a `definitions` command.
pub fn run(context: &Context, command: DefinitionsCommand) -> Result<ExitCode> {
    match command {
        DefinitionsCommand::Keygen { out } => keygen(&out)?,
        DefinitionsCommand::Build {
            key,
            version,
            out,
            min_engine_version,
            inputs,
        } => build(&key, version, &out, &min_engine_version, &inputs)?,
        DefinitionsCommand::Publish {
            drop,
            key,
            out,
            channel,
            expires_in_days,
        } => publish(&drop, &key, &out, &channel, expires_in_days)?,
        DefinitionsCommand::Check => return check(context),
        DefinitionsCommand::Update {
            from: None,
            allow_downgrade: _,
        } => {
            let (config, _) = context.load_config()?;
            let state = Arc::new(context.open_state()?);
            let record = vigil_engine::updates::update(&config, &state)?;
            if record.status == "installed" {
                print_line(&format!(
                    "installed definitions version {} (was {}) from channel {}",
                    record.to_version.unwrap_or_default(),
                    record.from_version,
                    untrusted(&config.updates.channel_name)
                ));
                crate::service::client::notify_reload(context);
            } else {
                print_line(&format!(
                    "definitions version {} is up to date (channel {} offers {})",
                    record.from_version,
                    untrusted(&config.updates.channel_name),
                    record.to_version.unwrap_or_default()
                ));
            }
        }
        DefinitionsCommand::Update {
            from: Some(from),
            allow_downgrade,
        } => {
            let (config, _) = context.load_config()?;
            let state = Arc::new(context.open_state()?);
            let store = DefinitionsStore::open(state.clone())?;
            let outcome = store.update(&from, &config.definitions, allow_downgrade);
            if let Some(last) = store.history()?.pop() {
                vigil_engine::updates::report(&config, state.dir(), &last);
            }
            let record = outcome?;
            print_line(&format!(
                "installed definitions version {} (was {})",
                record.to_version.unwrap_or_default(),
                record.from_version
            ));
            crate::service::client::notify_reload(context);
        }
        DefinitionsCommand::Rollback => {
            let (config, _) = context.load_config()?;
            let state = Arc::new(context.open_state()?);
            let store = DefinitionsStore::open(state.clone())?;
            let record = store.rollback()?;
            vigil_engine::updates::report(&config, state.dir(), &record);
            print_line(&format!(
                "rolled back to definitions version {} (was {})",
                record.to_version.unwrap_or_default(),
                record.from_version
            ));
            crate::service::client::notify_reload(context);
        }
        DefinitionsCommand::Status { format } => {
            let store = DefinitionsStore::open(Arc::new(context.open_state()?))?;
            let active = store.active()?;
            for warning in &active.warnings {
                eprintln!("vigil: warning: {}", untrusted(warning));
            }
            let info = active.info;
            let previous = store.previous()?;
            match format {
                Format::Jsonl => {
                    let mut value = serde_json::to_value(&info)?;
                    value["previous_version"] = previous.map(|p| p.version).into();
                    print_line(&value.to_string());
                }
                Format::Text => {
                    print_line(&format!("version:   {}", info.version));
                    print_line(&format!("created:   {}", format_time(info.created)));
                    print_line(&format!("source:    {}", untrusted(&info.source)));
                    print_line(&format!("signed by: {}", untrusted(&info.signer)));
                    if let Some(at) = info.installed_at {
                        print_line(&format!("installed: {}", format_time(at)));
                    }
                    print_line(&format!(
                        "contents:  {} rules, {} hashes, {} plugins",
                        info.rules, info.hashes, info.plugins
                    ));
                    print_line(&format!(
                        "previous:  {}",
                        previous.map_or("none".into(), |p| format!("version {}", p.version))
                    ));
                }
            }
        }
        DefinitionsCommand::History { format } => {
            let store = DefinitionsStore::open(Arc::new(context.open_state()?))?;
            for record in store.history()? {
                match format {
                    Format::Jsonl => print_line(&serde_json::to_string(&record)?),
                    Format::Text => print_line(&format!(
                        "{}  {:<8} {} -> {}  {:<8} {}{}{}",
                        format_time(record.time),
                        record.kind,
                        record.from_version,
                        record.to_version.map_or("?".into(), |v| v.to_string()),
                        record.status,
                        record.reason,
                        record
                            .channel
                            .as_ref()
                            .map(|channel| format!(
                                " (channel {}{})",
                                untrusted(channel),
                                if record.using_proxy {
                                    ", through the proxy"
                                } else {
                                    ""
                                }
                            ))
                            .unwrap_or_default(),
                        record
                            .error
                            .map(|e| format!(": {}", untrusted(&e)))
                            .unwrap_or_default()
                    )),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigil definitions check`.
fn check(context: &Context) -> Result<ExitCode> {
    let (config, _) = context.load_config()?;
    let state = Arc::new(context.open_state()?);
    let offer = vigil_engine::updates::check(&config, &state).map_err(|failure| {
        anyhow::anyhow!(
            "cannot check channel {} ({}): {}",
            config.updates.channel_name,
            failure.reason,
            failure.message
        )
    })?;
    let index = &offer.index;
    print_line(&format!(
        "channel {}: version {} ({} bytes, issued {}, expires {}); installed: {}",
        untrusted(&index.channel),
        index.version,
        index.size,
        format_time(index.issued_at),
        format_time(index.expires_at),
        offer.installed
    ));
    if offer.is_newer() {
        print_line("a newer version is available: `vigil definitions update` installs it");
        return Ok(ExitCode::from(1));
    }
    print_line("up to date");
    Ok(ExitCode::SUCCESS)
}

/// `vigil definitions publish`: copies the drop into `<out>/<channel>/drops/` and writes
/// `<out>/<channel>/index.json`, each atomically (the index last, so it never names a drop that
/// is not there yet).
fn publish(
    drop: &Path,
    key_path: &Path,
    out: &Path,
    channel: &str,
    expires_in_days: u64,
) -> Result<()> {
    anyhow::ensure!(
        !channel.is_empty()
            && channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "--channel {}: letters, digits, - or _ only",
        untrusted(channel)
    );
    anyhow::ensure!(expires_in_days > 0, "--expires-in-days must be at least 1");
    let key_text = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read {}", shown(key_path)))?;
    let key = vigil_drop::parse_secret_key(&key_text)
        .with_context(|| format!("in {}", shown(key_path)))?;
    let bytes = std::fs::read(drop).with_context(|| format!("cannot read {}", shown(drop)))?;
    // Only a drop this key signed, and that an engine would install, is published.
    let info = check_drop(&bytes, &key.verifying_key())
        .with_context(|| format!("{} cannot be published with this key", shown(drop)))?;
    let folder = out.join(channel);
    let drops = folder.join("drops");
    std::fs::create_dir_all(&drops).with_context(|| format!("cannot create {}", shown(&drops)))?;
    let name = format!("vigil-definitions-{}.drop", info.version);
    write_atomically(&drops.join(&name), &bytes)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let digest = vigil_drop::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let index = vigil_drop::channel::ChannelIndex {
        format: vigil_drop::channel::INDEX_FORMAT,
        channel: channel.to_string(),
        version: info.version,
        drop: format!("drops/{name}"),
        size: bytes.len() as u64,
        sha256: digest,
        issued_at: now,
        expires_at: now + expires_in_days as i64 * 86_400,
    };
    let signed = vigil_drop::channel::sign_index(&index, &key);
    let index_path = folder.join(vigil_drop::channel::INDEX_FILE);
    write_atomically(&index_path, &signed)?;
    print_line(&format!(
        "published version {} on channel {channel}: {} and {}",
        info.version,
        shown(&index_path),
        shown(&drops.join(&name))
    ));
    Ok(())
}

/// Writes `bytes` to a temporary name beside `path`, fsyncs, and renames over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = with_suffix(path, ".tmp");
    let mut file =
        std::fs::File::create(&temp).with_context(|| format!("cannot write {}", shown(&temp)))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", shown(&temp)))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", shown(path)))
}

fn keygen(out: &Path) -> Result<()> {
    let key = vigil_drop::generate_key()?;
    let public = vigil_drop::public_key_line(&key.verifying_key());
    let public_path = with_suffix(out, ".pub");
    let mut secret = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                shown(out)
            )
        })?;
    secret.write_all(vigil_drop::secret_key_text(&key).as_bytes())?;
    secret.sync_all()?;
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", shown(&public_path)))?;
    print_line(&format!("secret key: {} (keep it private)", shown(out)));
    print_line(&format!(
        "public key: {} — add this line to definitions.trusted_keys:",
        shown(&public_path)
    ));
    print_line(&public);
    Ok(())
}

fn build(
    key_path: &Path,
    version: u64,
    out: &Path,
    min_engine_version: &str,
    inputs: &[PathBuf],
) -> Result<()> {
    let key_text = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read {}", shown(key_path)))?;
    let key = vigil_drop::parse_secret_key(&key_text)
        .with_context(|| format!("in {}", shown(key_path)))?;
    let mut files = Vec::new();
    for input in inputs {
        collect(input, true, &mut files)?;
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    super::rules::warn_about(&files);
    let drop = vigil_drop::build(&files, version, min_engine_version, created, &key)?;
    // Refuse to publish what no engine would install.
    let info = check_drop(&drop, &key.verifying_key())?;
    let temp = with_suffix(out, ".tmp");
    std::fs::write(&temp, &drop).with_context(|| format!("cannot write {}", shown(&temp)))?;
    std::fs::rename(&temp, out).with_context(|| format!("cannot write {}", shown(out)))?;
    print_line(&format!(
        "built {} version {version}: {} rules, {} hashes, {} plugins",
        shown(out),
        info.rules,
        info.hashes,
        info.plugins
    ));
    Ok(())
}

/// `path` with `suffix` appended to its last component, bytes for bytes.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Adds `path` (a file, or every known file below a folder) as drop entries.
fn collect(path: &Path, named: bool, files: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", shown(path)))?;
    if metadata.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            collect(&entry, false, files)?;
        }
        return Ok(());
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        bail!("{}: a drop entry's name must be UTF-8", shown(path));
    };
    let folder = match path.extension().and_then(|e| e.to_str()) {
        Some("yar" | "yara") => "rules",
        Some("txt") => "hashes",
        Some("wasm") => "plugins",
        _ if named => bail!(
            "{}: only .yar, .yara, .txt and .wasm files go into a drop",
            shown(path)
        ),
        _ => return Ok(()),
    };
    files.push((format!("{folder}/{name}"), std::fs::read(path)?));
    Ok(())
}
