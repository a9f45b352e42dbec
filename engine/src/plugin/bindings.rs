//! Host bindings generated from the WIT contract in `sdk/wit/plugin.wit`.

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "plugin",
});

pub use exports::vigil::plugin::detector::{Descriptor, Finding, InputSize, ScanInput, Severity};
pub use vigil::plugin::host::{Host, Level};

/// The one import a plugin may have: the host interface, at this exact version.
pub const HOST_IMPORT: &str = "vigil:plugin/host@0.1.0";
