//! The first-party plugins in `plugins/`, built from source and run through the real host by
//! the SDK's test harness (with the `vigil` this build made), on generated samples.

#[path = "plugin_samples/obfuscated_script.rs"]
mod obfuscated_script;
#[path = "plugin_samples/packed_exe.rs"]
mod packed_exe;
