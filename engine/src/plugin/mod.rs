//! WebAssembly detection plugins: loaded into a sandbox with no capabilities, run on the files
//! they ask for, each call in a fresh instance under time, memory, stack and output limits.
//!
//! The contract is the WIT world in `sdk/wit/plugin.wit` (`vigil:plugin/plugin@0.1.0`).
//! [`PluginHost`] is the sandbox (its own wasmtime engine, the only import `host.log`, the limits);
//! [`PluginSet`] is what a scan holds: the host and the loaded [`Plugin`]s, shared by every
//! worker thread. A plugin that traps, runs out of time or memory, or returns malformed data
//! produces a [`PluginFault`]; after `plugins.max_faults` of them it is disabled for the rest of
//! the scan. Fault counts belong to one scan ([`ScanFaults`]), not to the loaded set: a plugin
//! disabled in one scan runs again in the next.

mod bindings;
mod cache;
mod host;
mod output;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub use host::{PluginHost, Prepared};

use crate::config::PluginsConfig;
use crate::error::EngineError;
use crate::report::Finding;

/// The folder of the state dir where compiled plugins are cached.
pub const PLUGIN_CACHE: &str = "plugin-cache";

/// How many bytes of a file a plugin is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSize {
    /// At most this many bytes from the start.
    Prefix(u32),
    /// The whole file, up to `plugins.max_input_size`.
    WholeFile,
}

/// Bytes that must appear at an offset for a plugin to want a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magic {
    /// Where in the file.
    pub offset: usize,
    /// What must be there.
    pub bytes: Vec<u8>,
}

/// What a plugin says about itself, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its name (unique among loaded plugins).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it detects.
    pub description: String,
    /// Magic bytes of the files it wants.
    pub magic: Vec<Magic>,
    /// Extensions (lower case, no dot) of the files it wants.
    pub extensions: Vec<String>,
    /// Files smaller than this are not passed to it.
    pub min_size: u64,
    /// How much of each file it needs.
    pub input: InputSize,
    /// Where it was loaded from (a file, or a drop entry).
    pub origin: String,
    /// BLAKE3 digest of its WebAssembly.
    pub digest: String,
    /// Whether its compiled code was loaded from the on-disk cache (else compiled now).
    pub from_cache: bool,
}

impl PluginInfo {
    /// Whether the plugin asked for this file: it is at least `min_size` bytes, and a magic
    /// matches or the extension is listed (with neither list, every file).
    pub fn wants(&self, path: &Path, data: &[u8]) -> bool {
        if (data.len() as u64) < self.min_size {
            return false;
        }
        if self.magic.is_empty() && self.extensions.is_empty() {
            return true;
        }
        let magic = self.magic.iter().any(|magic| {
            data.get(magic.offset..magic.offset + magic.bytes.len()) == Some(&magic.bytes[..])
        });
        magic
            || path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| {
                    self.extensions
                        .iter()
                        .any(|wanted| wanted.eq_ignore_ascii_case(ext))
                })
    }
}

/// One loaded plugin, ready to be called from any thread.
pub struct Plugin {
    /// What it says about itself.
    pub info: PluginInfo,
    prepared: Prepared,
}

/// One scan's fault counts, one per loaded plugin, and which plugins that scan has disabled.
pub struct ScanFaults {
    counts: Vec<AtomicU32>,
    disabled: Vec<AtomicBool>,
}

/// A plugin call that failed; the file's other results stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFault {
    /// The plugin's name.
    pub plugin: String,
    /// What went wrong, naming the limit that was hit.
    pub reason: String,
    /// Set on the fault that disabled the plugin for the rest of the scan.
    pub disabled_after: Option<u32>,
}

/// The plugins a scan runs, with their host.
pub struct PluginSet {
    host: Option<PluginHost>,
    plugins: Vec<Plugin>,
}

impl PluginSet {
    /// No plugins (`--no-plugins`, or `plugins.enabled = false`).
    pub fn none() -> Self {
        Self {
            host: None,
            plugins: Vec::new(),
        }
    }

    /// Loads plugins given as (origin, WebAssembly bytes) into a new host sized for
    /// `concurrency` threads; compiled code is cached in `cache_dir` when given. Any plugin that
    /// does not load is an error naming it.
    pub fn load(
        sources: &[(String, Vec<u8>)],
        limits: &PluginsConfig,
        concurrency: usize,
        cache_dir: Option<&Path>,
    ) -> Result<Self, EngineError> {
        if sources.is_empty() {
            return Ok(Self::none());
        }
        let host = PluginHost::new(limits, concurrency, cache_dir).map_err(|message| {
            EngineError::Plugin {
                origin: "host".into(),
                message,
            }
        })?;
        let mut plugins: Vec<Plugin> = Vec::new();
        for (origin, bytes) in sources {
            let plugin = load_one(&host, origin, bytes).map_err(|message| EngineError::Plugin {
                origin: origin.clone(),
                message,
            })?;
            if let Some(other) = plugins.iter().find(|p| p.info.name == plugin.info.name) {
                return Err(EngineError::Plugin {
                    origin: origin.clone(),
                    message: format!(
                        "is named `{}`, like the plugin from {}",
                        plugin.info.name, other.info.origin
                    ),
                });
            }
            plugins.push(plugin);
        }
        Ok(Self {
            host: Some(host),
            plugins,
        })
    }

    /// Like [`PluginSet::load`], with the plugin files at `files` added after `sources`; a file
    /// that cannot be read is an error naming it.
    pub fn load_with_files(
        sources: &[(String, Vec<u8>)],
        files: &[std::path::PathBuf],
        limits: &PluginsConfig,
        concurrency: usize,
        cache_dir: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let mut sources = sources.to_vec();
        for path in files {
            let bytes = std::fs::read(path).map_err(|err| EngineError::Plugin {
                origin: path.display().to_string(),
                message: format!("cannot be read: {err}"),
            })?;
            sources.push((path.display().to_string(), bytes));
        }
        Self::load(&sources, limits, concurrency, cache_dir)
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// What a file's name decides about which plugins run on it: the set of plugins that list
    /// its extension (the only part of the name a plugin's selection uses). Two names with the
    /// same key select the same plugins for the same bytes.
    pub fn name_key(&self, path: &Path) -> u64 {
        let Some(extension) = path.extension().and_then(|ext| ext.to_str()) else {
            return 0;
        };
        let listing = self.plugins.iter().enumerate().filter(|(_, plugin)| {
            plugin
                .info
                .extensions
                .iter()
                .any(|wanted| wanted.eq_ignore_ascii_case(extension))
        });
        if self.plugins.len() < 64 {
            return listing.fold(0, |key, (index, _)| key | 1 << index);
        }
        // More plugins than bits: a digest of the indexes, with the top bit set so it never
        // equals a bit set.
        let mut hasher = blake3::Hasher::new();
        for (index, _) in listing {
            hasher.update(&(index as u64).to_le_bytes());
        }
        let digest = hasher.finalize();
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes")) | 1 << 63
    }

    /// Fresh fault counts for one scan.
    pub fn scan_faults(&self) -> ScanFaults {
        ScanFaults {
            counts: self.plugins.iter().map(|_| AtomicU32::new(0)).collect(),
            disabled: self
                .plugins
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
        }
    }

    /// Runs every plugin that wants this file and that this scan has not disabled: findings are
    /// appended to `findings`, failures to `faults` and counted in `scan`.
    pub fn scan(
        &self,
        path: &Path,
        data: &[u8],
        findings: &mut Vec<Finding>,
        faults: &mut Vec<PluginFault>,
        scan: &ScanFaults,
    ) {
        let Some(host) = &self.host else { return };
        for (index, plugin) in self.plugins.iter().enumerate() {
            if scan.disabled[index].load(Ordering::Relaxed) || !plugin.info.wants(path, data) {
                continue;
            }
            // No plugin gets more than plugins.max_input_size, whatever prefix it asks for.
            let most = host.limits().max_input_size as usize;
            let limit = match plugin.info.input {
                InputSize::Prefix(bytes) => (bytes as usize).min(most),
                InputSize::WholeFile => most,
            };
            let given = &data[..data.len().min(limit)];
            let input = bindings::ScanInputRef {
                data: given,
                file_size: data.len() as u64,
                complete: given.len() == data.len(),
            };
            let result = host
                .scan(&plugin.prepared, &plugin.info.name, input)
                .and_then(|raw| output::check(raw, &plugin.info, data.len() as u64, host.limits()));
            match result {
                Ok(found) => findings.extend(found),
                Err(reason) => faults.push(PluginFault {
                    plugin: plugin.info.name.clone(),
                    reason,
                    disabled_after: scan.count(index, host.limits().max_faults),
                }),
            }
        }
    }
}

impl ScanFaults {
    /// Whether this scan has disabled any plugin (results since then lack its findings).
    pub fn any_disabled(&self) -> bool {
        self.disabled
            .iter()
            .any(|disabled| disabled.load(Ordering::Relaxed))
    }

    /// Counts a fault of plugin `index`; returns the count when it reaches `max_faults` and
    /// the plugin is disabled for the rest of this scan.
    fn count(&self, index: usize, max_faults: u32) -> Option<u32> {
        let count = self.counts[index].fetch_add(1, Ordering::Relaxed) + 1;
        (count == max_faults).then(|| {
            self.disabled[index].store(true, Ordering::Relaxed);
            count
        })
    }
}

/// Compiles, links and describes one plugin.
fn load_one(host: &PluginHost, origin: &str, bytes: &[u8]) -> Result<Plugin, String> {
    let digest = blake3::hash(bytes).to_hex().to_string();
    let (prepared, from_cache) = host.prepare(bytes, &digest)?;
    let descriptor = host
        .describe(&prepared, origin)
        .map_err(|reason| format!("describe() {reason}"))?;
    let mut info = output::descriptor(descriptor, origin, digest)?;
    info.from_cache = from_cache;
    Ok(Plugin { info, prepared })
}
