//! Vigil's scanning engine.
//!
//! One pipeline serves every scan: **discover** ([`discover`]) walks the targets in parallel and
//! applies the exclusions ([`exclusions`]); **input** ([`input`]) opens each file safely and reads
//! or maps it; **detect** ([`detect`]) runs the detectors; results stream to a
//! [`report::ScanSink`] as they are found, after **decide** ([`decide`]: allowed threats,
//! restoration exclusions) and **act** (report, or move into the [`quarantine`] vault). [`Engine`] ties them together behind a small API; the
//! `vigil` CLI is a thin front end over it.

pub mod builtin;
pub mod config;
pub mod decide;
pub mod definitions;
pub mod detect;
pub mod discover;
pub mod durable;
pub mod error;
pub mod exclusions;
pub mod fault;
pub mod input;
pub mod plugin;
pub mod quarantine;
pub mod report;
pub mod scan;
pub mod sigbus;
pub mod state;
pub mod targets;

pub use config::Config;
pub use error::EngineError;
pub use report::{Finding, ScanEvent, ScanSink, ScanSummary};
pub use scan::{Engine, ScanKind, ScanRequest};
