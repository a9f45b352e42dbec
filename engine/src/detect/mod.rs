//! Detection: the detectors that look at one file's bytes and report findings.
//!
//! [`Detectors`] is the shared, compiled state (`Send + Sync`, built once per engine);
//! [`DetectorWorker`] is the per-thread scanning state built from it once per worker thread, never
//! once per file.

pub mod hash;
pub mod yara;

use std::time::Duration;

use crate::report::Finding;

/// Every detector the engine runs, in compiled form.
pub struct Detectors {
    /// The YARA-X rule set.
    pub yara: yara::YaraRules,
    /// Known-bad SHA-256 digests.
    pub hashes: hash::HashLists,
}

impl Detectors {
    /// The per-thread state for one worker.
    pub fn worker(&self, timeout: Duration) -> DetectorWorker<'_> {
        DetectorWorker {
            yara: self.yara.scanner(timeout),
            hashes: &self.hashes,
        }
    }
}

/// One worker thread's scanning state.
pub struct DetectorWorker<'d> {
    yara: yara::YaraScanner<'d>,
    hashes: &'d hash::HashLists,
}

impl DetectorWorker<'_> {
    /// Runs every detector over `data`, appending findings to `out`. An error names what failed
    /// (for example a timeout); findings made before it stand.
    pub fn scan(&mut self, data: &[u8], out: &mut Vec<Finding>) -> Result<(), String> {
        self.hashes.scan(data, out);
        self.yara.scan(data, out)
    }
}
