//! Definitions: the rules, hash lists and plugins a scan uses, installed from signed drops.
//!
//! Layout under the state dir:
//!
//! ```text
//! definitions/versions/v<N>-<id>/   one complete installed version: the drop's manifest, signature
//!                                   and files, `compiled.rules` (serialized yara-x rules with native
//!                                   code) and `install.json`
//! definitions/active   -> versions/…   the version scans use (a symbolic link, switched by rename)
//! definitions/previous -> versions/…   the version `rollback` returns to
//! definitions/staging-<id>/          an install in progress (removed on the next open)
//! ```
//!
//! With nothing installed, scans use the default drop built into the binary (`builtin`),
//! verified by the same code as any other drop. An update checks everything, compiles the rules and
//! writes the complete new version before one atomic rename switches `active`; a crash at any point
//! leaves exactly one complete version active, and leftovers are removed on the next open.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::params;
use serde::{Deserialize, Serialize};
use vigil_drop::{DropError, Kind, VerifiedDrop};

use crate::builtin;
use crate::config::{DefinitionsConfig, PluginsConfig, YaraConfig};
use crate::detect::Detectors;
use crate::detect::externals::{self, Defines};
use crate::detect::hash::HashLists;
use crate::detect::yara::{RuleSource, YaraRules};
use crate::durable::{
    FileLock, LockMode, create_exclusive, io_error, random_id, remove_if_present, sync_dir,
};
use crate::error::EngineError;
use crate::fault;
use crate::plugin::PluginSet;
use crate::state::{State, unix_now};

/// This engine's version, compared with a drop's `min_engine_version`.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
const COMPILED: &str = "compiled.rules";
const INSTALL_INFO: &str = "install.json";

/// What a set of definitions is and where it came from (`vigil definitions status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DefinitionsInfo {
    /// The drop's version.
    pub version: u64,
    /// When the drop was built (Unix seconds).
    pub created: i64,
    /// `built-in`, or the drop file it was installed from.
    pub source: String,
    /// The public key line that signed it.
    pub signer: String,
    /// When it was installed (Unix seconds); absent for the built-in default.
    pub installed_at: Option<i64>,
    /// Compiled rules.
    pub rules: usize,
    /// Hashes in its hash lists.
    pub hashes: usize,
    /// Plugins it carries.
    pub plugins: usize,
    /// The yara-x version its `compiled.rules` were made with.
    pub yara_x: String,
    /// BLAKE3 of `compiled.rules` as written at install: that file is native code, loaded only
    /// if it still has this digest (absent for the built-in default and older installs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled_blake3: Option<String>,
    /// How `compiled.rules` was made ([`compiled_layout`]): rules made another way (or by an
    /// older Vigil, which declared no external variables and made one set) are compiled again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled_layout: Option<String>,
}

/// How installed rules are compiled: the per-file external variables declared (no constants:
/// constants from `[yara] defines` or `--define` make a scan compile its own rules), and the
/// rules in two sets, the MZ-only ones apart ([`crate::detect::split`]).
pub fn compiled_layout() -> String {
    format!(
        "externals={};sets=general,mz",
        externals::PER_FILE.join(",")
    )
}

/// Loaded definitions, ready to make detectors from.
pub struct Definitions {
    /// What they are.
    pub info: DefinitionsInfo,
    sources: Vec<RuleSource>,
    hashes: HashLists,
    /// Plugin file names and contents (run by the plugin host).
    pub plugins: Vec<(String, Vec<u8>)>,
    /// Rules already compiled (from `compiled.rules`, or compiled while loading).
    compiled: Option<YaraRules>,
    /// Problems met while loading that did not stop it: the active version was damaged and
    /// these are a fallback, or its compiled rules were damaged and were compiled again.
    pub warnings: Vec<String>,
    /// BLAKE3 over every file's path and content: two definitions with this digest detect alike.
    pub digest: String,
}

impl Definitions {
    /// Checks a verified drop's content: rules compile, hash lists parse, plugins are WebAssembly.
    fn from_drop(
        drop: &VerifiedDrop,
        source: String,
        installed_at: Option<i64>,
    ) -> Result<Self, Rejection> {
        let mut sources = Vec::new();
        let mut hashes = HashLists::default();
        let mut plugins = Vec::new();
        for (path, content) in &drop.files {
            let kind = vigil_drop::kind_of(path).map_err(|why| Rejection::new("layout", why))?;
            match kind {
                Kind::Rules => {
                    let text = String::from_utf8(content.clone()).map_err(|_| {
                        Rejection::new("rules", format!("{path} is not UTF-8 text"))
                    })?;
                    sources.push(RuleSource {
                        origin: path.clone(),
                        text,
                    });
                }
                Kind::Hashes => {
                    let text = String::from_utf8_lossy(content);
                    hashes
                        .add(path, &text)
                        .map_err(|err| Rejection::new("hash_list", err.to_string()))?;
                }
                Kind::Plugin => {
                    check_wasm(path, content)?;
                    plugins.push((path.clone(), content.clone()));
                }
            }
        }
        let compiled = YaraRules::compile(&sources, &Defines::new())
            .map_err(|err| Rejection::new("rules", err.to_string()))?;
        let info = DefinitionsInfo {
            version: drop.manifest.version,
            created: drop.manifest.created,
            source,
            signer: drop.signer.clone(),
            installed_at,
            rules: compiled.rule_count(),
            hashes: hashes.len(),
            plugins: plugins.len(),
            yara_x: builtin::YARA_X_VERSION.to_string(),
            compiled_blake3: None,
            compiled_layout: None,
        };
        Ok(Self {
            info,
            sources,
            hashes,
            plugins,
            compiled: Some(compiled),
            warnings: Vec::new(),
            digest: content_digest(&drop.files),
        })
    }

    /// The default definitions built into the binary.
    pub fn builtin() -> Result<Self, EngineError> {
        let key = vigil_drop::parse_public_key(builtin::DEFAULT_DROP_KEY)
            .map_err(|err| EngineError::Definitions(format!("built-in definitions: {err}")))?;
        let drop = vigil_drop::open(builtin::DEFAULT_DROP, &[key], u64::MAX)
            .map_err(|err| EngineError::Definitions(format!("built-in definitions: {err}")))?;
        Self::from_drop(&drop, "built-in".into(), None).map_err(|rejection| {
            EngineError::Definitions(format!("built-in definitions: {}", rejection.message))
        })
    }

    /// The detectors for a scan: these definitions plus `extra` rule sources (`--rules`), with
    /// `plugins` loaded by the caller (from [`Definitions::plugins`] and any others), under the
    /// `[yara]` settings: constants (or extra sources) make it compile the rules afresh, in memory.
    pub fn detectors(
        self,
        extra: &[RuleSource],
        settings: &YaraConfig,
        plugins: PluginSet,
    ) -> Result<Detectors, EngineError> {
        let mut yara = match self.compiled {
            Some(compiled) if extra.is_empty() && settings.defines.is_empty() => compiled,
            _ => {
                let mut sources = self.sources;
                sources.extend_from_slice(extra);
                YaraRules::compile(&sources, &settings.defines)?
            }
        };
        yara.set_max_match_details(settings.max_match_details);
        Ok(Detectors {
            yara,
            hashes: self.hashes,
            plugins,
        })
    }
}

/// BLAKE3 over `(path, content)` pairs, each length-prefixed so no two sets collide.
fn content_digest<'a>(files: impl IntoIterator<Item = (&'a String, &'a Vec<u8>)>) -> String {
    let mut hasher = blake3::Hasher::new();
    for (path, content) in files {
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update(&(content.len() as u64).to_le_bytes());
        hasher.update(content);
    }
    hasher.finalize().to_hex().to_string()
}

/// Checks a drop as an update would (signature with `key`, contents, rules compile) and returns
/// what it holds; `vigil definitions build` uses it so a publisher never ships a broken drop.
pub fn check_drop(
    bytes: &[u8],
    key: &vigil_drop::VerifyingKey,
) -> Result<DefinitionsInfo, EngineError> {
    let drop = vigil_drop::open(bytes, &[*key], u64::MAX)
        .map_err(|err| EngineError::Definitions(err.to_string()))?;
    let definitions = Definitions::from_drop(&drop, String::new(), None)
        .and_then(|definitions| check_plugins(&definitions.plugins).map(|()| definitions))
        .map_err(|rejection| EngineError::Definitions(rejection.message))?;
    Ok(definitions.info)
}

/// Refuses plugins that do not load in the plugin host (with the default limits): they compile,
/// import nothing forbidden, and describe themselves properly.
fn check_plugins(plugins: &[(String, Vec<u8>)]) -> Result<(), Rejection> {
    PluginSet::load(plugins, &PluginsConfig::default(), 1, None)
        .map(drop)
        .map_err(|err| Rejection::new("plugin", err.to_string()))
}

/// Refuses a plugin file that is not a WebAssembly module or component.
fn check_wasm(path: &str, content: &[u8]) -> Result<(), Rejection> {
    const MODULE: &[u8] = b"\0asm\x01\0\0\0";
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    if content.starts_with(MODULE) || content.starts_with(COMPONENT) {
        Ok(())
    } else {
        Err(Rejection::new(
            "plugin",
            format!("{path} is not a WebAssembly module or component"),
        ))
    }
}

/// Why an update was refused: a short machine-readable reason and a message for people.
#[derive(Debug)]
struct Rejection {
    reason: &'static str,
    message: String,
    to_version: Option<u64>,
}

impl Rejection {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            to_version: None,
        }
    }
}

impl From<DropError> for Rejection {
    fn from(err: DropError) -> Self {
        let reason = match &err {
            DropError::Archive(_) => "archive",
            DropError::EntryName { .. } | DropError::NotAFile(_) | DropError::Duplicate(_) => {
                "entry"
            }
            DropError::TooLarge(_) => "too_large",
            DropError::Missing(_) | DropError::Manifest(_) => "manifest",
            DropError::Signature(_) => "signature",
            DropError::UntrustedKey(_) => "untrusted_key",
            DropError::MissingFile(_) | DropError::Unlisted(_) => "contents",
            DropError::Mismatch { .. } => "digest",
            DropError::Key(_) => "key",
        };
        Self::new(reason, err.to_string())
    }
}

impl From<EngineError> for Rejection {
    fn from(err: EngineError) -> Self {
        Self::new("install", err.to_string())
    }
}

/// One line of the update report (`vigil definitions history`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UpdateRecord {
    /// Unix seconds.
    pub time: i64,
    /// `update` or `rollback`.
    pub kind: String,
    /// The version active before.
    pub from_version: u64,
    /// The version installed or offered, when known.
    pub to_version: Option<u64>,
    /// `installed` or `rejected`.
    pub status: String,
    /// Why it was rejected (`signature`, `digest`, `downgrade`, `rules`...), or `ok`.
    pub reason: String,
    /// The message naming the problem.
    pub error: Option<String>,
    /// The drop file, or the channel index it came from.
    pub source: String,
    /// The channel it came from (`vigil definitions update` without a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Whether it was downloaded through `updates.proxy`.
    pub using_proxy: bool,
}

/// Where a drop being installed came from, for the update report.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The channel, when it came from one.
    pub channel: Option<String>,
    /// Whether it was downloaded through a proxy.
    pub using_proxy: bool,
    /// What to record as the source instead of the drop file's path.
    pub source: Option<String>,
}

/// The installed definitions of one state dir.
pub struct DefinitionsStore {
    state: Arc<State>,
    dir: PathBuf,
}

impl DefinitionsStore {
    /// Opens the store, removing what an interrupted install left behind.
    pub fn open(state: Arc<State>) -> Result<Self, EngineError> {
        let dir = state.dir().join("definitions");
        std::fs::create_dir_all(dir.join("versions"))
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        let store = Self { state, dir };
        // Clean up only when no update is running: its staging folder is not a leftover.
        if let Some(_lock) = store.lock(LockMode::TryExclusive)? {
            store.clean_up()?;
        }
        Ok(store)
    }

    /// The lock that serialises updates, rollbacks and clean-ups between processes.
    fn lock(&self, mode: LockMode) -> Result<Option<FileLock>, EngineError> {
        FileLock::take(&self.dir.join("update.lock"), mode)
    }

    fn link(&self, name: &str) -> Option<PathBuf> {
        let target = std::fs::read_link(self.dir.join(name)).ok()?;
        Some(self.dir.join(target))
    }

    /// Removes staging folders, half-made links, versions neither active nor previous, and
    /// temporary files left in the kept versions.
    fn clean_up(&self) -> Result<(), EngineError> {
        let keep: HashSet<PathBuf> = ["active", "previous"]
            .iter()
            .filter_map(|l| self.link(l))
            .collect();
        let list = |dir: &Path| -> Result<Vec<PathBuf>, EngineError> {
            let entries = std::fs::read_dir(dir)
                .map_err(io_error(format!("cannot list {}", dir.display())))?;
            Ok(entries.flatten().map(|entry| entry.path()).collect())
        };
        for path in list(&self.dir)? {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name.starts_with("staging-") {
                remove_tree(&path)?;
            } else if name.ends_with(".tmp") {
                remove_if_present(&path)?;
            }
        }
        for path in list(&self.dir.join("versions"))? {
            if !keep.contains(&path) {
                remove_tree(&path)?;
                continue;
            }
            // A rewrite of compiled.rules or install.json interrupted before its rename.
            for file in list(&path)? {
                if file.extension().is_some_and(|ext| ext == "tmp") {
                    remove_if_present(&file)?;
                }
            }
        }
        Ok(())
    }

    /// The definitions scans use: the active installed version, or the built-in default.
    /// If the active version is damaged (a file no longer matches its manifest), the previous
    /// version is used, else the built-in default, and [`Definitions::warnings`] says so: damaged
    /// state must not stop scanning.
    pub fn active(&self) -> Result<Definitions, EngineError> {
        let Some(active) = self.link("active") else {
            return Definitions::builtin();
        };
        let damage = match self.load_installed(&active) {
            Ok(definitions) => return Ok(definitions),
            Err(err) => err,
        };
        let previous = self
            .link("previous")
            .filter(|previous| previous != &active)
            .and_then(|previous| self.load_installed(&previous).ok());
        let mut fallback = match previous {
            Some(previous) => previous,
            None => Definitions::builtin()?,
        };
        fallback.warnings.push(format!(
            "the active definitions are damaged ({damage}); using version {} ({}) instead — \
             install a drop again or roll back",
            fallback.info.version, fallback.info.source
        ));
        Ok(fallback)
    }

    /// The previous installed version's description, if any.
    pub fn previous(&self) -> Result<Option<DefinitionsInfo>, EngineError> {
        self.link("previous")
            .map(|dir| read_install_info(&dir))
            .transpose()
    }

    fn active_version(&self) -> Result<u64, EngineError> {
        match self.link("active") {
            Some(dir) => Ok(read_install_info(&dir)?.version),
            None => Ok(Definitions::builtin()?.info.version),
        }
    }

    /// Loads an installed version, checking every file against its manifest; compiled rules are
    /// loaded, or compiled again when they were made by another yara-x version.
    fn load_installed(&self, dir: &Path) -> Result<Definitions, EngineError> {
        let damaged = |why: String| {
            EngineError::Definitions(format!("installed definitions {}: {why}", dir.display()))
        };
        let info = read_install_info(dir)?;
        let manifest: vigil_drop::Manifest = serde_json::from_slice(
            &std::fs::read(dir.join(vigil_drop::MANIFEST))
                .map_err(|err| damaged(err.to_string()))?,
        )
        .map_err(|err| damaged(err.to_string()))?;
        let mut files = std::collections::BTreeMap::new();
        for entry in &manifest.files {
            let content = std::fs::read(dir.join(&entry.path))
                .map_err(|err| damaged(format!("{}: {err}", entry.path)))?;
            if blake3::hash(&content).to_hex().as_str() != entry.blake3 {
                return Err(damaged(format!(
                    "{} does not match its manifest",
                    entry.path
                )));
            }
            files.insert(entry.path.clone(), content);
        }
        let digest = content_digest(&files);
        let mut sources = Vec::new();
        let mut hashes = HashLists::default();
        let mut plugins = Vec::new();
        for (path, content) in files {
            match vigil_drop::kind_of(&path).map_err(damaged)? {
                Kind::Rules => sources.push(RuleSource {
                    origin: path,
                    text: String::from_utf8_lossy(&content).into_owned(),
                }),
                Kind::Hashes => hashes.add(&path, &String::from_utf8_lossy(&content))?,
                Kind::Plugin => plugins.push((path, content)),
            }
        }
        let mut warnings = Vec::new();
        let compiled = if info.yara_x == builtin::YARA_X_VERSION {
            self.load_compiled(dir, &info, &sources, &mut warnings)
        } else {
            None
        };
        Ok(Definitions {
            info,
            sources,
            hashes,
            plugins,
            compiled,
            warnings,
            digest,
        })
    }

    /// Loads `compiled.rules` (native code) only if it has the digest recorded at install. If
    /// not, says so, compiles the verified sources again and rewrites the file atomically, so
    /// the next start is fast again; `None` leaves the compiling to the caller.
    fn load_compiled(
        &self,
        dir: &Path,
        info: &DefinitionsInfo,
        sources: &[RuleSource],
        warnings: &mut Vec<String>,
    ) -> Option<YaraRules> {
        let bytes = std::fs::read(dir.join(COMPILED)).unwrap_or_default();
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let layout = info.compiled_layout == Some(compiled_layout());
        if info.compiled_blake3.as_deref() == Some(digest.as_str()) && layout {
            return YaraRules::deserialize(&bytes, sources).ok();
        }
        if layout {
            warnings.push(format!(
                "{} does not match the digest recorded when version {} was installed (damaged, \
                 or installed by an older Vigil); the rules were compiled again from their \
                 verified sources",
                dir.join(COMPILED).display(),
                info.version
            ));
        }
        // Else an older Vigil compiled them another way: compiled again,
        // silently (nothing is wrong).
        let compiled = YaraRules::compile(sources, &Defines::new()).ok()?;
        if let Err(err) = self.rewrite_compiled(dir, info, &compiled) {
            warnings.push(format!("could not store the recompiled rules: {err}"));
        }
        Some(compiled)
    }

    /// Replaces `compiled.rules` and `install.json` of an installed version (new file, fsync,
    /// rename, fsync of the folder), under the update lock; skipped while an update runs.
    fn rewrite_compiled(
        &self,
        dir: &Path,
        info: &DefinitionsInfo,
        compiled: &YaraRules,
    ) -> Result<(), EngineError> {
        let Some(_lock) = self.lock(LockMode::TryExclusive)? else {
            return Ok(());
        };
        let bytes = compiled.serialize()?;
        let info = DefinitionsInfo {
            compiled_blake3: Some(blake3::hash(&bytes).to_hex().to_string()),
            compiled_layout: Some(compiled_layout()),
            ..info.clone()
        };
        let info_bytes = serde_json::to_vec_pretty(&info).expect("info serializes");
        for (name, content) in [(COMPILED, &bytes), (INSTALL_INFO, &info_bytes)] {
            let temp = dir.join(format!("{name}.{}.tmp", random_id()?));
            write_durably(&temp, content)?;
            std::fs::rename(&temp, dir.join(name)).map_err(io_error(format!(
                "cannot replace {}",
                dir.join(name).display()
            )))?;
        }
        sync_dir(dir)
    }

    /// Verifies a drop and, if every check passes, installs it and makes it active. Every attempt
    /// is recorded in the update report; a refused drop changes nothing else.
    pub fn update(
        &self,
        drop_path: &Path,
        config: &DefinitionsConfig,
        allow_downgrade: bool,
    ) -> Result<UpdateRecord, EngineError> {
        self.update_from(drop_path, config, allow_downgrade, &Origin::default())
    }

    /// [`DefinitionsStore::update`], recording where the drop came from.
    pub fn update_from(
        &self,
        drop_path: &Path,
        config: &DefinitionsConfig,
        allow_downgrade: bool,
        origin: &Origin,
    ) -> Result<UpdateRecord, EngineError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let from_version = self.active_version()?;
        let outcome = self.try_update(drop_path, config, allow_downgrade, from_version);
        let mut record = UpdateRecord {
            time: unix_now(),
            kind: "update".into(),
            from_version,
            to_version: None,
            status: "installed".into(),
            reason: "ok".into(),
            error: None,
            source: origin
                .source
                .clone()
                .unwrap_or_else(|| drop_path.display().to_string()),
            channel: origin.channel.clone(),
            using_proxy: origin.using_proxy,
        };
        match &outcome {
            Ok(version) => record.to_version = Some(*version),
            Err(rejection) => {
                record.to_version = rejection.to_version;
                record.status = "rejected".into();
                record.reason = rejection.reason.into();
                record.error = Some(rejection.message.clone());
            }
        }
        self.record(&record)?;
        match outcome {
            Ok(_) => Ok(record),
            Err(rejection) => Err(EngineError::Definitions(format!(
                "drop {} refused: {}",
                drop_path.display(),
                rejection.message
            ))),
        }
    }

    fn try_update(
        &self,
        drop_path: &Path,
        config: &DefinitionsConfig,
        allow_downgrade: bool,
        from_version: u64,
    ) -> Result<u64, Rejection> {
        let bytes = std::fs::read(drop_path).map_err(|err| {
            Rejection::new(
                "unreadable",
                format!("cannot read {}: {err}", drop_path.display()),
            )
        })?;
        let trusted = config
            .trusted_keys
            .iter()
            .map(|line| vigil_drop::parse_public_key(line))
            .collect::<Result<Vec<_>, _>>()?;
        if trusted.is_empty() {
            return Err(Rejection::new(
                "untrusted_key",
                "no key is trusted: add the publisher's public key to definitions.trusted_keys",
            ));
        }
        let drop = vigil_drop::open(&bytes, &trusted, config.max_drop_size)?;
        let to_version = drop.manifest.version;
        let with_version = |mut rejection: Rejection| {
            rejection.to_version = Some(to_version);
            rejection
        };
        if to_version <= from_version && !allow_downgrade {
            let what = if to_version == from_version {
                "the same version as"
            } else {
                "older than"
            };
            return Err(with_version(Rejection::new(
                "downgrade",
                format!(
                    "version {to_version} is {what} the active version {from_version} (--allow-downgrade to install it anyway)"
                ),
            )));
        }
        if !engine_satisfies(&drop.manifest.min_engine_version) {
            return Err(with_version(Rejection::new(
                "engine_version",
                format!(
                    "it needs engine version {} or newer; this engine is {ENGINE_VERSION}",
                    drop.manifest.min_engine_version
                ),
            )));
        }
        let definitions =
            Definitions::from_drop(&drop, drop_path.display().to_string(), Some(unix_now()))
                .map_err(with_version)?;
        check_plugins(&definitions.plugins).map_err(with_version)?;
        self.install(&definitions, &drop)
            .map_err(|err| with_version(err.into()))?;
        Ok(to_version)
    }

    /// Writes the new version in a staging folder, moves it into `versions/`, then switches the
    /// links: `previous` first (to the still-active version), then `active`.
    fn install(&self, definitions: &Definitions, drop: &VerifiedDrop) -> Result<(), EngineError> {
        let staging = self.dir.join(format!("staging-{}", random_id()?));
        std::fs::create_dir(&staging)
            .map_err(io_error(format!("cannot create {}", staging.display())))?;
        write_durably(&staging.join(vigil_drop::MANIFEST), &drop.manifest_bytes)?;
        write_durably(&staging.join(vigil_drop::SIGNATURE), &drop.signature_bytes)?;
        for (path, content) in &drop.files {
            let target = staging.join(path);
            let folder = target.parent().expect("drop paths have a folder");
            if !folder.exists() {
                std::fs::create_dir(folder)
                    .map_err(io_error(format!("cannot create {}", folder.display())))?;
            }
            write_durably(&target, content)?;
            fault::point("definitions: file staged");
        }
        let compiled = definitions
            .compiled
            .as_ref()
            .expect("definitions made from a drop are compiled");
        let compiled = compiled.serialize()?;
        write_durably(&staging.join(COMPILED), &compiled)?;
        let info = DefinitionsInfo {
            compiled_blake3: Some(blake3::hash(&compiled).to_hex().to_string()),
            compiled_layout: Some(compiled_layout()),
            ..definitions.info.clone()
        };
        let info = serde_json::to_vec_pretty(&info).expect("info serializes");
        write_durably(&staging.join(INSTALL_INFO), &info)?;
        for folder in ["rules", "hashes", "plugins"] {
            if staging.join(folder).exists() {
                sync_dir(&staging.join(folder))?;
            }
        }
        sync_dir(&staging)?;
        fault::point("definitions: staging complete");

        let name = format!("v{}-{}", definitions.info.version, random_id()?);
        let version_dir = self.dir.join("versions").join(&name);
        std::fs::rename(&staging, &version_dir)
            .map_err(io_error(format!("cannot rename {}", staging.display())))?;
        sync_dir(&self.dir.join("versions"))?;
        fault::point("definitions: version in place");

        if let Ok(current) = std::fs::read_link(self.dir.join("active")) {
            self.switch_link("previous", &current)?;
            fault::point("definitions: previous switched");
        }
        self.switch_link("active", &Path::new("versions").join(&name))?;
        fault::point("definitions: active switched");
        self.clean_up()
    }

    /// Points `name` at `target` atomically: a new link, renamed over the old one, then fsync.
    fn switch_link(&self, name: &str, target: &Path) -> Result<(), EngineError> {
        let temp = self.dir.join(format!("{name}.tmp"));
        remove_if_present(&temp)?;
        std::os::unix::fs::symlink(target, &temp)
            .map_err(io_error(format!("cannot create {}", temp.display())))?;
        std::fs::rename(&temp, self.dir.join(name))
            .map_err(io_error(format!("cannot switch {name}")))?;
        sync_dir(&self.dir)
    }

    /// Makes the previous version active again (and the current one previous).
    pub fn rollback(&self) -> Result<UpdateRecord, EngineError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let from_version = self.active_version()?;
        let (Ok(previous), Ok(current)) = (
            std::fs::read_link(self.dir.join("previous")),
            std::fs::read_link(self.dir.join("active")),
        ) else {
            return Err(EngineError::Definitions(
                "there is no previous version to roll back to".into(),
            ));
        };
        if previous == current {
            return Err(EngineError::Definitions(
                "there is no previous version to roll back to".into(),
            ));
        }
        let to_version = read_install_info(&self.dir.join(&previous))?.version;
        self.switch_link("active", &previous)?;
        fault::point("rollback: active switched");
        self.switch_link("previous", &current)?;
        let record = UpdateRecord {
            time: unix_now(),
            kind: "rollback".into(),
            from_version,
            to_version: Some(to_version),
            status: "installed".into(),
            reason: "ok".into(),
            error: None,
            source: self.dir.join(&previous).display().to_string(),
            channel: None,
            using_proxy: false,
        };
        self.record(&record)?;
        Ok(record)
    }

    /// Adds an attempt that never reached a drop (a channel that could not be read, a download
    /// that failed, nothing newer) to the update report.
    pub fn record_attempt(&self, record: &UpdateRecord) -> Result<(), EngineError> {
        self.record(record)
    }

    /// The version of the active definitions.
    pub fn installed_version(&self) -> Result<u64, EngineError> {
        self.active_version()
    }

    fn record(&self, record: &UpdateRecord) -> Result<(), EngineError> {
        self.state
            .db()
            .execute(
                "INSERT INTO definition_updates (time, kind, from_version, to_version, status, reason, error, source, channel, using_proxy)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    record.time,
                    record.kind,
                    record.from_version as i64,
                    record.to_version.map(|v| v as i64),
                    record.status,
                    record.reason,
                    record.error,
                    record.source,
                    record.channel,
                    record.using_proxy
                ],
            )
            .map_err(|err| self.state.error(err))?;
        Ok(())
    }

    /// Every update and rollback attempt, oldest first.
    pub fn history(&self) -> Result<Vec<UpdateRecord>, EngineError> {
        let db = self.state.db();
        let mut statement = db
            .prepare(
                "SELECT time, kind, from_version, to_version, status, reason, error, source, channel, using_proxy
                 FROM definition_updates ORDER BY rowid",
            )
            .map_err(|err| self.state.error(err))?;
        let records = statement
            .query_map([], |row| {
                Ok(UpdateRecord {
                    time: row.get(0)?,
                    kind: row.get(1)?,
                    from_version: row.get::<_, i64>(2)? as u64,
                    to_version: row.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    status: row.get(4)?,
                    reason: row.get(5)?,
                    error: row.get(6)?,
                    source: row.get(7)?,
                    channel: row.get(8)?,
                    using_proxy: row.get(9)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|err| self.state.error(err))?;
        Ok(records)
    }
}

fn read_install_info(dir: &Path) -> Result<DefinitionsInfo, EngineError> {
    let bytes = std::fs::read(dir.join(INSTALL_INFO)).map_err(io_error(format!(
        "cannot read {}",
        dir.join(INSTALL_INFO).display()
    )))?;
    serde_json::from_slice(&bytes).map_err(|err| {
        EngineError::Definitions(format!(
            "{} is damaged: {err}",
            dir.join(INSTALL_INFO).display()
        ))
    })
}

/// Whether this engine is at least `required` (`major.minor.patch`).
fn engine_satisfies(required: &str) -> bool {
    let parse = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (parse(required), parse(ENGINE_VERSION)) {
        (Some(required), Some(engine)) => engine >= required,
        _ => false,
    }
}

fn write_durably(path: &Path, content: &[u8]) -> Result<(), EngineError> {
    let mut file = create_exclusive(path)?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("cannot write {}", path.display())))
}

fn remove_tree(path: &Path) -> Result<(), EngineError> {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot remove {}", path.display()))(err))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_versions_compare_numerically() {
        assert!(engine_satisfies("0.0.1"));
        assert!(engine_satisfies(ENGINE_VERSION));
        assert!(!engine_satisfies("999.0.0"));
        assert!(!engine_satisfies("not.a.version"));
    }

    #[test]
    fn the_builtin_drop_verifies_and_compiles() {
        let definitions = Definitions::builtin().unwrap();
        assert_eq!(definitions.info.source, "built-in");
        assert!(definitions.info.rules >= 11, "{:?}", definitions.info);
    }
}
