//! WebAssembly detection plugins: loaded into a sandbox with no capabilities, run on the files
//! they ask for, each call in a fresh instance under time, memory, stack and output limits.
//!
//! The contract is the WIT world in `sdk/wit/plugin.wit` (`vigil:plugin/plugin@0.3.0`); plugins
//! built against the earlier versions (`engine/wit/plugin-0.1.0.wit`, `plugin-0.2.0.wit`) load
//! and run too.
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
mod prefilter;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub use host::{PluginHost, Prepared};
pub use prefilter::Prefilter;

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

/// Bytes that must appear in a file for a plugin to want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magic {
    /// Where in the file (with `anywhere`, the first offset searched).
    pub offset: usize,
    /// What must be there.
    pub bytes: Vec<u8>,
    /// Empty, or which bits of each byte count (one mask byte per byte of `bytes`).
    pub mask: Vec<u8>,
    /// Searched from `offset` to the end of the plugin's input rather than only at `offset`.
    pub anywhere: bool,
}

impl Magic {
    /// Whether the bytes are in `data` (a whole file for a fixed offset; the plugin's input
    /// when searched anywhere).
    pub fn matches(&self, data: &[u8]) -> bool {
        let Some(searched) = data.get(self.offset..) else {
            return false;
        };
        if !self.anywhere {
            return searched
                .get(..self.bytes.len())
                .is_some_and(|there| self.equal(there));
        }
        if self.mask.is_empty() {
            return memchr::memmem::find(searched, &self.bytes).is_some();
        }
        searched
            .windows(self.bytes.len())
            .any(|there| self.equal(there))
    }

    /// Whether `there` (as long as `bytes`) equals `bytes` under the mask.
    fn equal(&self, there: &[u8]) -> bool {
        if self.mask.is_empty() {
            return there == self.bytes;
        }
        there
            .iter()
            .zip(&self.bytes)
            .zip(&self.mask)
            .all(|((have, want), mask)| have & mask == want & mask)
    }
}

/// Why a plugin is not called for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The file is smaller than the plugin's `min_size`.
    TooSmall,
    /// Neither its magic nor its extensions select the file.
    NotSelected,
    /// None of its prefilter's byte strings is in the plugin's input.
    Prefilter,
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
    /// Whether it is given the file's name and extension (its results depend on the name).
    pub wants_name: bool,
    /// Byte strings one of which must be in its input for it to be called (none: no condition).
    pub prefilter: Prefilter,
    /// The version of the plugin contract it was built against (`0.1.0`, `0.2.0`, `0.3.0`).
    pub contract: &'static str,
    /// Where it was loaded from (a file, or a drop entry).
    pub origin: String,
    /// BLAKE3 digest of its WebAssembly.
    pub digest: String,
    /// Whether its compiled code was loaded from the on-disk cache (else compiled now).
    pub from_cache: bool,
}

impl PluginInfo {
    /// Whether the plugin asked for this file (its whole content in `data`): it is at least
    /// `min_size` bytes, a magic matches or the extension is listed (with neither list, every
    /// file), and its input holds one of the prefilter's byte strings (when it has any). Magic
    /// searched anywhere is looked for in the plugin's input only.
    pub fn wants(&self, path: &Path, data: &[u8], input_limit: usize) -> bool {
        self.refusal(path, data, input_limit).is_none()
    }

    /// Why the plugin does not want this file, or `None` when it does (see [`Self::wants`]).
    pub fn refusal(&self, path: &Path, data: &[u8], input_limit: usize) -> Option<Refusal> {
        if (data.len() as u64) < self.min_size {
            return Some(Refusal::TooSmall);
        }
        let input = &data[..data.len().min(self.input_len(input_limit))];
        if !self.selects(path, data, input) {
            return Some(Refusal::NotSelected);
        }
        (!self.prefilter.admits(input)).then_some(Refusal::Prefilter)
    }

    /// Whether a magic matches (fixed ones in `data`, searched ones in `input`) or the
    /// extension is listed; true when the plugin lists neither.
    fn selects(&self, path: &Path, data: &[u8], input: &[u8]) -> bool {
        if self.magic.is_empty() && self.extensions.is_empty() {
            return true;
        }
        let magic = self
            .magic
            .iter()
            .any(|magic| magic.matches(if magic.anywhere { input } else { data }));
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

impl PluginInfo {
    /// A plugin named `p` that wants every file, whole, for unit tests to change.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            magic: Vec::new(),
            extensions: Vec::new(),
            min_size: 0,
            input: InputSize::WholeFile,
            wants_name: false,
            prefilter: Prefilter::none(),
            contract: "0.3.0",
            origin: String::new(),
            digest: String::new(),
            from_cache: false,
        }
    }

    /// How many bytes of a file the plugin is given, when no plugin may get more than
    /// `most` (`plugins.max_input_size`).
    pub fn input_len(&self, most: usize) -> usize {
        match self.input {
            InputSize::Prefix(bytes) => (bytes as usize).min(most),
            InputSize::WholeFile => most,
        }
    }
}

/// One loaded plugin, ready to be called from any thread.
pub struct Plugin {
    /// What it says about itself.
    pub info: PluginInfo,
    prepared: Prepared,
}

/// One scan's fault counts, one per loaded plugin, which plugins that scan has disabled, and
/// what each plugin cost it (calls and time, for the diagnostic performance event).
pub struct ScanFaults {
    counts: Vec<AtomicU32>,
    disabled: Vec<AtomicBool>,
    /// Calls of each plugin in this scan.
    calls: Vec<AtomicU64>,
    /// Time spent in each plugin's calls in this scan, in nanoseconds.
    nanos: Vec<AtomicU64>,
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
    /// The archive member it faulted on, outer to inner (empty: the file itself).
    pub member: Vec<Vec<u8>>,
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

    /// What a file's name decides about the plugins' results: the set of plugins that list
    /// its extension, and, when a loaded plugin reads names (`wants-name`), the name itself.
    /// Two names with the same key give the same results for the same bytes.
    pub fn name_key(&self, path: &Path) -> u64 {
        let extension = path.extension().and_then(|ext| ext.to_str());
        let listing = self.plugins.iter().enumerate().filter(|(_, plugin)| {
            extension.is_some_and(|extension| {
                plugin
                    .info
                    .extensions
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(extension))
            })
        });
        let name_matters = self.plugins.iter().any(|plugin| plugin.info.wants_name);
        if self.plugins.len() < 64 && !name_matters {
            return listing.fold(0, |key, (index, _)| key | 1 << index);
        }
        // More plugins than bits, or the name itself: a digest, with the top bit set so it
        // never equals a bit set.
        let mut hasher = blake3::Hasher::new();
        for (index, _) in listing {
            hasher.update(&(index as u64).to_le_bytes());
        }
        if name_matters {
            hasher.update(b"/");
            hasher.update(path.file_name().unwrap_or_default().as_encoded_bytes());
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
            calls: self.plugins.iter().map(|_| AtomicU64::new(0)).collect(),
            nanos: self.plugins.iter().map(|_| AtomicU64::new(0)).collect(),
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
        // No plugin gets more than plugins.max_input_size, whatever prefix it asks for.
        let most = host.limits().max_input_size as usize;
        let mut names = None;
        for (index, plugin) in self.plugins.iter().enumerate() {
            if scan.disabled[index].load(Ordering::Relaxed) || !plugin.info.wants(path, data, most)
            {
                continue;
            }
            let given = &data[..data.len().min(plugin.info.input_len(most))];
            let (name, extension) = if plugin.info.wants_name {
                names.get_or_insert_with(|| crate::object::name_and_extension(path))
            } else {
                &(String::new(), String::new())
            };
            let input = bindings::ScanInputRef {
                data: given,
                file_size: data.len() as u64,
                complete: given.len() == data.len(),
                name,
                extension,
            };
            let started = std::time::Instant::now();
            let result = host
                .scan(&plugin.prepared, &plugin.info.name, input)
                .and_then(|raw| output::check(raw, &plugin.info, data.len() as u64, host.limits()));
            scan.calls[index].fetch_add(1, Ordering::Relaxed);
            scan.nanos[index].fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            match result {
                Ok(found) => findings.extend(found),
                Err(reason) => faults.push(PluginFault {
                    plugin: plugin.info.name.clone(),
                    reason,
                    disabled_after: scan.count(index, host.limits().max_faults),
                    member: Vec::new(),
                }),
            }
        }
    }
}

impl ScanFaults {
    /// Each plugin's calls and the time they took in this scan, in the plugin set's order.
    pub fn costs(&self) -> Vec<(u64, std::time::Duration)> {
        self.calls
            .iter()
            .zip(&self.nanos)
            .map(|(calls, nanos)| {
                (
                    calls.load(Ordering::Relaxed),
                    std::time::Duration::from_nanos(nanos.load(Ordering::Relaxed)),
                )
            })
            .collect()
    }

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
    info.contract = prepared.contract();
    Ok(Plugin { info, prepared })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn magic(offset: usize, bytes: &[u8], mask: &[u8], anywhere: bool) -> Magic {
        Magic {
            offset,
            bytes: bytes.to_vec(),
            mask: mask.to_vec(),
            anywhere,
        }
    }

    #[test]
    fn magic_matches_at_its_offset_under_its_mask_or_anywhere_after_it() {
        let file = b"\x4d\x5a\x90\x00 some text PK\x03\x04 more";
        assert!(magic(0, b"MZ", &[], false).matches(file));
        assert!(!magic(1, b"MZ", &[], false).matches(file));
        assert!(!magic(40, b"MZ", &[], false).matches(file), "past the end");
        // Only the masked bits count: 0x90 under 0xf0 matches 0x9X.
        assert!(magic(2, b"\x9f", b"\xf0", false).matches(file));
        assert!(!magic(2, b"\x8f", b"\xf0", false).matches(file));
        assert!(magic(0, b"M?\x90", b"\xff\x00\xff", false).matches(file));
        // Anywhere: from the offset on, plain or masked.
        assert!(magic(0, b"PK\x03\x04", &[], true).matches(file));
        assert!(
            !magic(20, b"PK\x03\x04", &[], true).matches(file),
            "before the offset"
        );
        assert!(magic(4, b"PK\x00\x00", b"\xff\xff\x00\x00", true).matches(file));
        assert!(!magic(0, b"PK\x05", &[], true).matches(file));
    }

    #[test]
    fn magic_searched_anywhere_looks_only_in_the_plugins_input() {
        let mut file = vec![b' '; 10_000];
        file[9_000..9_004].copy_from_slice(b"EVIL");
        let mut info = PluginInfo {
            magic: vec![magic(0, b"EVIL", &[], true)],
            input: InputSize::Prefix(4096),
            ..PluginInfo::for_tests()
        };
        let path = Path::new("f");
        assert!(
            !info.wants(path, &file, usize::MAX),
            "beyond the 4 KiB prefix"
        );
        info.input = InputSize::WholeFile;
        assert!(info.wants(path, &file, usize::MAX));
        assert!(
            !info.wants(path, &file, 8192),
            "beyond plugins.max_input_size"
        );
        // A fixed offset is checked in the whole file, whatever the input.
        info.magic = vec![magic(9_000, b"EVIL", &[], false)];
        info.input = InputSize::Prefix(16);
        assert!(info.wants(path, &file, 16));
    }

    #[test]
    fn a_prefilter_admits_only_inputs_holding_one_of_its_byte_strings_within_the_input() {
        let mut file = vec![b' '; 10_000];
        file[100..105].copy_from_slice(b"Eval(");
        file[9_000..9_003].copy_from_slice(b"_0x");
        let mut info = PluginInfo {
            extensions: vec!["js".into()],
            input: InputSize::Prefix(4096),
            prefilter: Prefilter::new(vec![b"_0x".to_vec()]).unwrap(),
            ..PluginInfo::for_tests()
        };
        let (js, txt) = (Path::new("a.js"), Path::new("a.txt"));
        assert!(
            !info.wants(js, &file, usize::MAX),
            "`_0x` is past the input"
        );
        info.input = InputSize::WholeFile;
        assert!(info.wants(js, &file, usize::MAX));
        assert!(!info.wants(txt, &file, usize::MAX), "not selected");
        info.input = InputSize::Prefix(4096);
        info.prefilter = Prefilter::new(vec![b"eval(".to_vec(), b"_0x".to_vec()]).unwrap();
        assert!(info.wants(js, &file, usize::MAX), "case is ignored");
    }
}
