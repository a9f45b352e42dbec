//! Vigil's scanning engine.
//!
//! One pipeline serves every scan: **discover** (`discover`) walks the targets in parallel and
//! applies the exclusions (`exclusions`); **input** (`input`) opens each file safely and reads
//! or maps it; **detect** ([`detect`]) runs the detectors; results stream to a
//! [`report::ScanSink`] as they are found, after **decide** (`decide`: allowed threats,
//! restoration exclusions) and **act** (report, or move into the [`quarantine`] vault). What flows
//! after discovery is a [`ScanObject`] (the open handle, its identity, where it was found), never a
//! path to open again.
//!
//! The API a front end uses: [`EngineBuilder`] → [`Engine`], then [`Engine::scan`] (a tree, to a
//! [`ScanSink`], cancellable), [`Engine::scan_file`] (an open file), [`Engine::with_file_scanner`]
//! (many open files on one thread, as real-time protection scans), [`Engine::cached_clean`] (the
//! scan cache's answer alone) and [`Engine::scan_bytes`]; [`DefinitionsStore`] (status, update,
//! rollback, history), [`updates`] (channels), [`Vault`] (list, restore, remove), [`State`]
//! (threat history, allowed threats, stored exclusions, last scans) and [`diagnostics`] over a
//! state directory. The `vigil` CLI and its resident service are front ends over exactly these.

#![warn(missing_docs)]

pub mod archive;
pub(crate) mod builtin;
pub mod cache;
pub mod config;
pub(crate) mod decide;
pub mod definitions;
pub mod detect;
pub mod diagnostics;
pub(crate) mod discover;
pub(crate) mod durable;
pub mod error;
pub(crate) mod exclusions;
pub(crate) mod fault;
pub(crate) mod input;
pub mod managed;
mod member_scan;
pub mod object;
pub mod plugin;
pub mod quarantine;
pub mod report;
pub(crate) mod safe_dir;
pub mod scan;
pub(crate) mod sigbus;
pub mod state;
pub(crate) mod targets;
pub mod updates;

#[cfg(test)]
mod proptests;

pub use config::Config;
pub use definitions::{DefinitionsInfo, DefinitionsStore, Origin, UpdateRecord};
pub use error::EngineError;
pub use object::{FileIdentity, ScanObject};
pub use quarantine::{QuarantineEntry, Vault};
pub use report::{Finding, Response, ScanEvent, ScanSink, ScanStart, ScanSummary};
pub use scan::{Engine, EngineBuilder, FileScanner, ObjectReport, ScanKind, ScanRequest};
pub use state::{HistoryEntry, LastScan, State};
/// This engine's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The yara-x version rules are compiled and run with.
pub const YARA_X_VERSION: &str = builtin::YARA_X_VERSION;
/// The wasmtime version plugins run on.
pub const WASMTIME_VERSION: &str = env!("VIGIL_WASMTIME_VERSION");
/// A test hook: panics when the `fault-injection` feature is on and `VIGIL_FAULT_PANIC` is set
/// (the crash-report test forces a crash with it); does nothing otherwise.
pub fn crash_point() {
    fault::crash_point();
}
/// The yara-x crate this engine is built with, for tools and tests that compare with it directly.
pub use yara_x;
