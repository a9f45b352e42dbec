//! Detection: the detectors that look at one file's bytes and report findings.
//!
//! [`Detectors`] is the shared, compiled state (`Send + Sync`, built once per engine);
//! [`DetectorWorker`] is the per-thread scanning state built from it once per worker thread, never
//! once per file.

pub mod externals;
pub mod hash;
pub mod split;
pub mod yara;

use std::path::Path;
use std::time::Duration;

use crate::plugin::{PluginFault, PluginSet, ScanFaults};
use crate::report::Finding;

/// Every detector the engine runs, in compiled form.
pub struct Detectors {
    /// The YARA-X rule set.
    pub yara: yara::YaraRules,
    /// Known-bad SHA-256 digests.
    pub hashes: hash::HashLists,
    /// WebAssembly detection plugins.
    pub plugins: PluginSet,
}

impl Detectors {
    /// The name-dependent inputs of a file's result, as one key: the plugins its extension
    /// selects (and its name, for plugins that read names), and, when the rules may use the
    /// per-file external variables, its path and owner `uid`.
    pub fn name_key(&self, path: &Path, uid: Option<u32>) -> u64 {
        let plugins = self.plugins.name_key(path);
        if !self.yara.uses_file_externals() {
            return plugins;
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&plugins.to_le_bytes());
        hasher.update(&uid.map_or(u64::MAX, u64::from).to_le_bytes());
        hasher.update(path.as_os_str().as_encoded_bytes());
        let digest = hasher.finalize();
        // The top bit set, so it never equals a plain plugin bit set.
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes")) | 1 << 63
    }

    /// The per-thread state for one worker of a scan whose plugin faults are counted in
    /// `faults` (public for tools that drive the detectors directly, such as the benchmarks).
    pub fn worker<'d>(&'d self, timeout: Duration, faults: &'d ScanFaults) -> DetectorWorker<'d> {
        DetectorWorker {
            yara: self.yara.scanner(timeout),
            hashes: &self.hashes,
            plugins: &self.plugins,
            faults,
        }
    }
}

/// One worker thread's scanning state.
pub struct DetectorWorker<'d> {
    yara: yara::YaraScanner<'d>,
    hashes: &'d hash::HashLists,
    plugins: &'d PluginSet,
    faults: &'d ScanFaults,
}

impl DetectorWorker<'_> {
    /// Whether this scan has disabled a plugin (it no longer looks at files).
    pub fn plugins_disabled(&self) -> bool {
        self.faults.any_disabled()
    }

    /// Runs every detector over the content `data` of the file at `path` owned by `uid` (none
    /// for bytes that are not a file), appending findings to `out` and plugin failures to
    /// `faults`. An error names what failed (for example a YARA timeout); findings made before
    /// and after it stand.
    pub fn scan(
        &mut self,
        path: &Path,
        uid: Option<u32>,
        data: &[u8],
        out: &mut Vec<Finding>,
        faults: &mut Vec<PluginFault>,
    ) -> Result<(), String> {
        self.hashes.scan(data, out);
        let yara = self.yara.scan(path, uid, data, out);
        self.plugins.scan(path, data, out, faults, self.faults);
        yara
    }
}
