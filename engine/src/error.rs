//! The engine's error type: every failure that stops an operation, with what and where.

use std::path::PathBuf;

/// Errors that stop an engine operation (as opposed to per-file problems, which are reported as
/// scan events and never stop a scan).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration file is malformed or holds a value out of range.
    #[error("invalid configuration in {}: {message}", file.display())]
    Config {
        /// The configuration file.
        file: PathBuf,
        /// What is wrong, with the line and key.
        message: String,
    },
    /// A YARA rule source does not compile; the message carries file, line and column.
    #[error("rules do not compile:\n{0}")]
    Rules(String),
    /// A hash list line is malformed.
    #[error("hash list {list}, line {line}: {why}")]
    HashList {
        /// The list's name.
        list: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A definitions drop was refused, or definitions could not be installed or loaded.
    #[error("{0}")]
    Definitions(String),
    /// A plugin could not be loaded: not WebAssembly, truncated, a forbidden import, a bad
    /// descriptor. The origin is the file (or drop entry) it came from.
    #[error("plugin {origin}: {message}")]
    Plugin {
        /// Where the plugin came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A rule path given by the user does not exist or holds no rules.
    #[error("no rules at {}: {why}", path.display())]
    RulesPath {
        /// The path given.
        path: PathBuf,
        /// Why nothing could be loaded.
        why: String,
    },
    /// A scan target does not exist or cannot be examined.
    #[error("cannot scan {}: {why}", path.display())]
    Target {
        /// The target as given.
        path: PathBuf,
        /// Why it cannot be scanned.
        why: String,
    },
    /// An exclusion given on the command line or stored in the state is malformed.
    #[error("invalid exclusion: {0}")]
    Exclusion(String),
    /// The state directory or its database could not be used.
    #[error("state in {}: {message}", dir.display())]
    State {
        /// The state directory.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
    /// A quarantine operation was refused or failed; the message names the file or entry.
    #[error("{0}")]
    Quarantine(String),
    /// An I/O operation failed outside of scanning a file.
    // The cause is part of the message and deliberately not a `#[source]`, so that error chains
    // (anyhow's `{:#}`) do not print it twice.
    #[error("{context}: {cause}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        cause: std::io::Error,
    },
}
