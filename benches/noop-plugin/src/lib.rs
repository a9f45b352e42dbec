//! A plugin that wants every file and returns nothing, so a benchmark measures only what the
//! host costs per call: a fresh instance, copying the input in, the call, reading the result.

include!("noop.rs");

vigil_sdk::export_plugin!(Noop);
