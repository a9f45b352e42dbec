//! Host bindings generated from the WIT contract: the current version (`sdk/wit/plugin.wit`,
//! 0.3.0) and the earlier ones (`engine/wit/plugin-0.1.0.wit`, `plugin-0.2.0.wit`), so plugins
//! built against any of them load.

/// Bindings of the current contract, `vigil:plugin@0.3.0`.
pub mod current {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "plugin",
    });
}

/// Bindings of the second contract, `vigil:plugin@0.2.0`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "wit/plugin-0.2.0.wit",
        world: "plugin",
    });
}

/// Bindings of the first contract, `vigil:plugin@0.1.0`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "wit/plugin-0.1.0.wit",
        world: "plugin",
    });
}

pub use current::exports::vigil::plugin::detector::{Descriptor, Finding, InputSize, Severity};

/// A version of the contract the host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `vigil:plugin@0.1.0`: no masks or search for magic, no file name.
    V0_1,
    /// `vigil:plugin@0.2.0`: no prefilter.
    V0_2,
    /// `vigil:plugin@0.3.0`, the current one.
    V0_3,
}

impl Contract {
    /// Every version, newest first.
    pub const ALL: [Contract; 3] = [Contract::V0_3, Contract::V0_2, Contract::V0_1];

    /// The version, as written in the WIT package.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
        }
    }

    /// The host interface a plugin of this version imports.
    pub fn host_import(self) -> &'static str {
        match self {
            Contract::V0_1 => "vigil:plugin/host@0.1.0",
            Contract::V0_2 => "vigil:plugin/host@0.2.0",
            Contract::V0_3 => "vigil:plugin/host@0.3.0",
        }
    }

    /// The detector interface a plugin of this version exports.
    pub fn detector_export(self) -> &'static str {
        match self {
            Contract::V0_1 => "vigil:plugin/detector@0.1.0",
            Contract::V0_2 => "vigil:plugin/detector@0.2.0",
            Contract::V0_3 => "vigil:plugin/detector@0.3.0",
        }
    }
}

/// The `scan-input` record of `detector.scan` (0.2.0 and 0.3.0), lowered straight from the file's bytes: the
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
    /// The file's name, when the plugin wants it.
    pub name: &'a str,
    /// The name's extension in lower case, when the plugin wants it.
    pub extension: &'a str,
}

/// The `scan-input` record of 0.1.0 (no name or extension).
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
pub struct ScanInputRefV0_1<'a> {
    /// The bytes the plugin asked for.
    pub data: &'a [u8],
    /// The file's full size.
    #[component(name = "file-size")]
    pub file_size: u64,
    /// False when `data` is only the start of the file.
    pub complete: bool,
}

impl From<v0_1::exports::vigil::plugin::detector::Descriptor>
    for v0_2::exports::vigil::plugin::detector::Descriptor
{
    /// A 0.1.0 descriptor in the 0.2.0 shape: magic at fixed offsets, all bits, no name.
    fn from(old: v0_1::exports::vigil::plugin::detector::Descriptor) -> Self {
        use v0_1::exports::vigil::plugin::detector::InputSize as OldInputSize;
        use v0_2::exports::vigil::plugin::detector::{InputSize, Magic};
        Self {
            name: old.name,
            version: old.version,
            description: old.description,
            magic: old
                .magic
                .into_iter()
                .map(|magic| Magic {
                    offset: magic.offset,
                    bytes: magic.bytes,
                    mask: Vec::new(),
                    anywhere: false,
                })
                .collect(),
            extensions: old.extensions,
            min_size: old.min_size,
            input: match old.input {
                OldInputSize::Prefix(bytes) => InputSize::Prefix(bytes),
                OldInputSize::WholeFile => InputSize::WholeFile,
            },
            wants_name: false,
        }
    }
}

impl From<v0_2::exports::vigil::plugin::detector::Descriptor> for Descriptor {
    /// A 0.2.0 descriptor in the current shape: no prefilter.
    fn from(old: v0_2::exports::vigil::plugin::detector::Descriptor) -> Self {
        use current::exports::vigil::plugin::detector::Magic;
        use v0_2::exports::vigil::plugin::detector::InputSize as OldInputSize;
        Descriptor {
            name: old.name,
            version: old.version,
            description: old.description,
            magic: old
                .magic
                .into_iter()
                .map(|magic| Magic {
                    offset: magic.offset,
                    bytes: magic.bytes,
                    mask: magic.mask,
                    anywhere: magic.anywhere,
                })
                .collect(),
            extensions: old.extensions,
            min_size: old.min_size,
            input: match old.input {
                OldInputSize::Prefix(bytes) => InputSize::Prefix(bytes),
                OldInputSize::WholeFile => InputSize::WholeFile,
            },
            wants_name: old.wants_name,
            prefilter: Vec::new(),
        }
    }
}
