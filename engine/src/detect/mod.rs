//! Detection: the detectors that look at one file's bytes and report findings.
//!
//! [`Detectors`] is the shared, compiled state (`Send + Sync`, built once per engine);
//! [`DetectorWorker`] is the per-thread scanning state built from it once per worker thread, never
//! once per file.

pub mod hash;
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
    /// The name-dependent inputs of a file's result, as one key: today the plugins its
    /// extension selects (rules and hash lists look at bytes only).
    pub fn name_key(&self, path: &Path) -> u64 {
        self.plugins.name_key(path)
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

    /// Runs every detector over the content `data` of the file at `path`, appending findings to
    /// `out` and plugin failures to `faults`. An error names what failed (for example a YARA
    /// timeout); findings made before and after it stand.
    pub fn scan(
        &mut self,
        path: &Path,
        data: &[u8],
        out: &mut Vec<Finding>,
        faults: &mut Vec<PluginFault>,
    ) -> Result<(), String> {
        self.hashes.scan(data, out);
        let yara = self.yara.scan(data, out);
        self.plugins.scan(path, data, out, faults, self.faults);
        yara
    }
}
