//! The resident service (`vigil daemon`) and the CLI's side of talking to it.
//!
//! `protocol` (frames and messages), `peer` (credentials and passed descriptors), `server` (the
//! service), `realtime` with `fanotify` (real-time protection), `stats` (counters), `health`
//! (the health report) and `client`.

pub mod client;
pub mod fanotify;
pub mod health;
pub mod peer;
pub mod protocol;
pub mod realtime;
pub mod server;
pub mod stats;
