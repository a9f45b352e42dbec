//! The noop plugin exported straight through the generated bindings, without the panic hook
//! `export_plugin!` installs at every call: the plugin benchmark measures what the hook costs.

include!("../../noop-plugin/src/noop.rs");

vigil_sdk::bindings::export!(Noop with_types_in vigil_sdk::bindings);
