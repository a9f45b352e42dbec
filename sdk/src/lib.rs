//! The Vigil plugin SDK: everything a detection plugin needs, in one dependency.
//!
//! A plugin is a type implementing [`Plugin`] (`describe` says which files it wants, `scan`
//! looks at one file's bytes and returns [`Finding`]s), exported with [`export_plugin!`] and
//! built with `cargo build --release --target wasm32-unknown-unknown`. Vigil runs it in a
//! sandbox with no capabilities: no files, network, clock, environment or randomness, only
//! [`log()`] (and [`log!`]). `vigil plugin new NAME` makes a plugin crate to start from; see
//! the SDK's README.
//!
//! Helpers for the usual work of a detector: [`entropy`], [`bytes`] (search, one pattern or
//! many), [`sniff`] (file types), [`exe`] (ELF and PE section tables), [`samples`] (minimal ELF
//! and PE files and random bytes for tests). With the `harness` feature (in
//! `[dev-dependencies]`), [`harness`] builds the plugin and runs it through Vigil's real host
//! (the installed `vigil plugin test`) in `cargo test`.

#![warn(missing_docs)]

#[cfg(feature = "arena")]
pub mod arena;
pub mod bytes;
pub mod entropy;
pub mod exe;
#[cfg(all(feature = "harness", not(target_arch = "wasm32")))]
pub mod harness;
pub mod samples;
pub mod sniff;

/// Bindings generated from `sdk/wit/plugin.wit` (the contract with the host).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "vigil_sdk::bindings",
        // So that plugin tests can compare findings and descriptors with `assert_eq!`.
        additional_derives: [PartialEq],
    });
}

pub use bindings::exports::vigil::plugin::detector::{
    Descriptor, Finding, Guest as Plugin, InputSize, Magic, ScanInput, Severity,
};
pub use bindings::vigil::plugin::host::Level;

/// Plugins allocate from a bump arena first (see [`arena`]); only inside WebAssembly.
#[cfg(all(feature = "arena", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// Exports a type implementing [`Plugin`] as the plugin of this crate (one per crate).
///
/// ```ignore
/// struct MyPlugin;
/// impl vigil_sdk::Plugin for MyPlugin { /* describe, scan */ }
/// vigil_sdk::export_plugin!(MyPlugin);
/// ```
///
/// Every call first installs a panic hook that reports the panic's message and location through
/// [`log()`] (as a line starting with `panicked at `), so the host can put them in the
/// `plugin_fault` reason instead of a bare "unreachable code reached".
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        /// The exported plugin: reports panics, then calls the author's code.
        struct __VigilExport;

        impl $crate::Plugin for __VigilExport {
            fn describe() -> $crate::Descriptor {
                $crate::report_panics();
                <$plugin as $crate::Plugin>::describe()
            }

            fn scan(input: $crate::ScanInput) -> ::std::vec::Vec<$crate::Finding> {
                $crate::report_panics();
                <$plugin as $crate::Plugin>::scan(input)
            }
        }

        $crate::bindings::export!(__VigilExport with_types_in $crate::bindings);
    };
}

/// The start of the log line that reports a panic; the host reads it into the fault reason.
pub const PANIC_PREFIX: &str = "panicked at ";

/// Installs the panic hook that reports a panic through [`log()`] (called by [`export_plugin!`]
/// at the start of every call: each call runs in a fresh instance).
#[doc(hidden)]
pub fn report_panics() {
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()))
            .unwrap_or_else(|| "an unknown place".into());
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        log(Level::Warn, &format!("{PANIC_PREFIX}{location}: {message}"));
    }));
}

/// [`log()`] with a format string: `vigil_sdk::log!(Level::Info, "{} sections", count)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($format:tt)+) => {
        $crate::log($level, &::std::format!($($format)+))
    };
}

/// Writes a line to the scan's diagnostic output (the host bounds the number and length of
/// lines). Outside WebAssembly (unit tests of plugin code) it prints to stderr.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::vigil::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {message}");
}

impl Default for Descriptor {
    /// An empty descriptor: fill in at least `name`, `version`, `description`, and `magic` or
    /// `extensions` (with both empty the plugin is given every file). The input defaults to
    /// the first 64 KiB, the name is not given, and there is no prefilter.
    fn default() -> Self {
        Self {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            magic: Vec::new(),
            extensions: Vec::new(),
            min_size: 0,
            input: InputSize::Prefix(64 * 1024),
            wants_name: false,
            prefilter: Vec::new(),
        }
    }
}

impl Descriptor {
    /// The prefilter made of these strings: the plugin is called only for files whose input
    /// holds one of them (ASCII case ignored). List what every one of its checks starts from.
    pub fn prefilter<S: AsRef<[u8]>>(mut self, strings: impl IntoIterator<Item = S>) -> Self {
        self.prefilter = strings.into_iter().map(|s| s.as_ref().to_vec()).collect();
        self
    }
}

impl Magic {
    /// `bytes` exactly at `offset`.
    pub fn at(offset: u32, bytes: &[u8]) -> Self {
        Self {
            offset,
            bytes: bytes.to_vec(),
            mask: Vec::new(),
            anywhere: false,
        }
    }

    /// `bytes` at `offset`, comparing only the bits set in `mask` (one mask byte per byte:
    /// `0xff` compares a byte, `0x00` skips it, `0xf0` its high half).
    pub fn masked(offset: u32, bytes: &[u8], mask: &[u8]) -> Self {
        Self {
            mask: mask.to_vec(),
            ..Self::at(offset, bytes)
        }
    }

    /// The same magic, searched for anywhere from its offset to the end of the plugin's input
    /// (so keep the input a prefix when the files can be large: the host searches every file).
    pub fn anywhere(mut self) -> Self {
        self.anywhere = true;
        self
    }
}

impl Finding {
    /// A finding with no offset.
    pub fn new(threat: &str, severity: Severity, description: impl Into<String>) -> Self {
        Self {
            threat: threat.to_string(),
            severity,
            description: description.into(),
            offset: None,
        }
    }

    /// The same finding, pointing at `offset` in the file.
    pub fn at(mut self, offset: usize) -> Self {
        self.offset = Some(offset as u64);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_compare_with_assert_eq() {
        let found = Finding::new("Test:Any/Sample", Severity::High, "why").at(3);
        assert_eq!(
            found,
            Finding::new("Test:Any/Sample", Severity::High, "why").at(3)
        );
        assert_ne!(
            found,
            Finding::new("Test:Any/Sample", Severity::Low, "why").at(3)
        );
    }
}
