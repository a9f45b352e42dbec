//! A test harness that runs a built plugin through Vigil's real plugin host (the same sandbox,
//! limits and output checks as `vigil scan`), from a normal `cargo test`.
//!
//! ```ignore
//! use vigil_sdk::harness::Harness;
//!
//! #[test]
//! fn finds_the_sample() {
//!     let plugin = Harness::build(env!("CARGO_MANIFEST_DIR")).unwrap();
//!     let findings = plugin.scan("sample.js", b"eval(atob('...'))").unwrap();
//!     assert_eq!(findings[0].threat, "Obfuscated:JS/EvalBase64");
//! }
//! ```

use std::path::Path;

use vigil_engine::config::PluginsConfig;
use vigil_engine::plugin::{PluginInfo, PluginSet};

pub use vigil_engine::Finding;

/// One plugin loaded in the real host.
pub struct Harness {
    set: PluginSet,
}

impl Harness {
    /// Builds the plugin crate whose `Cargo.toml` is in `crate_dir` for WebAssembly and loads
    /// it with the default limits.
    pub fn build(crate_dir: impl AsRef<Path>) -> Result<Self, String> {
        let crate_dir = crate_dir.as_ref();
        let target_dir = vigil_plugin_build::default_target_dir(crate_dir);
        let wasm = vigil_plugin_build::build(crate_dir, &target_dir)?;
        Self::load(wasm)
    }

    /// Loads a built plugin (`.wasm`) with the default limits, except that faults never
    /// disable it (each test call should see its own outcome; each is its own scan anyway).
    pub fn load(wasm: impl AsRef<Path>) -> Result<Self, String> {
        let wasm = wasm.as_ref();
        let bytes =
            std::fs::read(wasm).map_err(|err| format!("cannot read {}: {err}", wasm.display()))?;
        let limits = PluginsConfig {
            max_faults: u32::MAX,
            ..PluginsConfig::default()
        };
        Self::load_bytes(&wasm.display().to_string(), bytes, &limits)
    }

    /// Loads a plugin from its bytes, under the given limits.
    pub fn load_bytes(
        origin: &str,
        bytes: Vec<u8>,
        limits: &PluginsConfig,
    ) -> Result<Self, String> {
        let set = PluginSet::load(&[(origin.to_string(), bytes)], limits, 1, None)
            .map_err(|err| err.to_string())?;
        Ok(Self { set })
    }

    /// What the plugin said about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.set.plugins()[0].info
    }

    /// Whether the host would pass a file with this name and content to the plugin.
    pub fn wants(&self, file_name: &str, data: &[u8]) -> bool {
        self.info().wants(Path::new(file_name), data)
    }

    /// Scans one file's content as `vigil scan` would: findings (none if the plugin does not
    /// want the file), or the reason for a fault.
    pub fn scan(&self, file_name: &str, data: &[u8]) -> Result<Vec<Finding>, String> {
        let (mut findings, mut faults) = (Vec::new(), Vec::new());
        let counts = self.set.scan_faults();
        self.set.scan(
            Path::new(file_name),
            data,
            &mut findings,
            &mut faults,
            &counts,
        );
        match faults.pop() {
            Some(fault) => Err(fault.reason),
            None => Ok(findings),
        }
    }

    /// The threat names found in one file (empty when clean); panics on a fault.
    pub fn threats(&self, file_name: &str, data: &[u8]) -> Vec<String> {
        match self.scan(file_name, data) {
            Ok(findings) => findings.into_iter().map(|f| f.threat).collect(),
            Err(reason) => panic!(
                "plugin {} faulted on {file_name}: {reason}",
                self.info().name
            ),
        }
    }
}
