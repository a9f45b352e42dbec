//! Host bindings generated from the WIT contract in `sdk/wit/plugin.wit`.

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "plugin",
});

pub use exports::vigil::plugin::detector::{Descriptor, Finding, InputSize, Severity};
pub use vigil::plugin::host::{Host, Level};

/// The one import a plugin may have: the host interface, at this exact version.
pub const HOST_IMPORT: &str = "vigil:plugin/host@0.1.0";

/// The `scan-input` record of `detector.scan`, lowered straight from the file's bytes: the
/// generated `ScanInput` owns a `Vec`, which would copy every input once more on the host.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
pub struct ScanInputRef<'a> {
    /// The bytes the plugin asked for.
    pub data: &'a [u8],
    /// The file's full size.
    #[component(name = "file-size")]
    pub file_size: u64,
    /// False when `data` is only the start of the file.
    pub complete: bool,
}

/// The name of the interface a plugin exports.
pub const DETECTOR_EXPORT: &str = "vigil:plugin/detector@0.1.0";
