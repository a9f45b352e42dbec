//! The state directory: everything Vigil changes lives under it, with an embedded SQLite database
//! for user-managed settings (and, later, history and the quarantine index).
//!
//! SQLite gives crash-safe, concurrent-safe updates: two `vigil exclusion add` at once cannot lose
//! each other's change, and a crash mid-write leaves the previous state.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::ExclusionConfig;
use crate::error::EngineError;

/// The schema, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE exclusions (
        kind TEXT NOT NULL CHECK (kind IN ('file', 'directory', 'extension', 'name')),
        value BLOB NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (kind, value)
    );",
    "CREATE TABLE quarantine (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('stored', 'quarantined', 'restoring', 'removing')),
        original_path BLOB NOT NULL,
        restore_to BLOB,
        size INTEGER NOT NULL,
        mode INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        gid INTEGER NOT NULL,
        atime_ns INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        blake3 TEXT NOT NULL,
        threats TEXT NOT NULL,
        detected_at INTEGER NOT NULL,
        quarantined_at INTEGER NOT NULL
    );
    CREATE TABLE threat_history (
        time INTEGER NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('detected', 'quarantined', 'restored', 'removed', 'allowed')),
        path BLOB NOT NULL,
        threat TEXT NOT NULL,
        quarantine_id TEXT,
        detail TEXT
    );
    CREATE TABLE restored_files (
        blake3 TEXT PRIMARY KEY,
        restored_at INTEGER NOT NULL
    );
    CREATE TABLE allowed_threats (
        name TEXT PRIMARY KEY,
        added_at INTEGER NOT NULL
    );",
    "CREATE TABLE definition_updates (
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        from_version INTEGER NOT NULL,
        to_version INTEGER,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        error TEXT,
        source TEXT NOT NULL
    );",
    // The scanned file's identity, so recovery unlinks only that inode.
    "ALTER TABLE quarantine ADD COLUMN dev INTEGER;
     ALTER TABLE quarantine ADD COLUMN ino INTEGER;",
    // When each kind of on-demand scan last completed, for `vigil health`.
    "CREATE TABLE last_scans (
        kind TEXT PRIMARY KEY,
        ended_at INTEGER NOT NULL,
        files INTEGER NOT NULL,
        detections INTEGER NOT NULL
    );",
    // Where each definitions update came from, and the newest channel index seen (replay guard).
    "ALTER TABLE definition_updates ADD COLUMN channel TEXT;
     ALTER TABLE definition_updates ADD COLUMN using_proxy INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE update_channels (
        channel TEXT PRIMARY KEY,
        issued_at INTEGER NOT NULL,
        version INTEGER NOT NULL
    );",
];

/// The last completed scan of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastScan {
    /// `quick`, `full` or `custom`.
    pub kind: String,
    /// When it ended, Unix seconds.
    pub ended_at: i64,
    /// Files it scanned.
    pub files: u64,
    /// Threats it reported.
    pub detections: u64,
}

/// An open state directory.
pub struct State {
    dir: PathBuf,
    db: Mutex<Connection>,
}

impl State {
    /// The default state directory: `/var/lib/vigil` for root, else `$XDG_DATA_HOME/vigil`
    /// (`~/.local/share/vigil`).
    pub fn default_dir() -> PathBuf {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/lib/vigil");
        }
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(data).join("vigil");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        PathBuf::from(home).join(".local/share/vigil")
    }

    /// Opens (creating if needed, mode 0700) the state directory and its database.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        let fail = |message: String| EngineError::State {
            dir: dir.to_path_buf(),
            message,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| fail(format!("cannot create: {err}")))?;
        let db = Connection::open(dir.join("state.sqlite3"))
            .map_err(|err| fail(format!("cannot open database: {err}")))?;
        retry_while_busy(|| configure(&db))
            .map_err(|err| fail(format!("cannot configure database: {err}")))?;
        let state = Self {
            dir: dir.to_path_buf(),
            db: Mutex::new(db),
        };
        state.migrate()?;
        Ok(state)
    }

    /// The directory this state lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database connection (one at a time: SQLite serialises writers anyway).
    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings the schema up to date. The version is read inside the write transaction, so two
    /// processes opening a new state dir at once do not both apply the same migration.
    fn migrate(&self) -> Result<(), EngineError> {
        let mut db = self.db();
        let migrate = |db: &mut Connection| -> rusqlite::Result<()> {
            let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: usize = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            for migration in MIGRATIONS.iter().skip(version) {
                tx.execute_batch(migration)?;
            }
            tx.pragma_update(None, "user_version", MIGRATIONS.len().max(version))?;
            tx.commit()
        };
        retry_while_busy(|| migrate(&mut db)).map_err(|err| self.error(err))
    }

    /// Wraps a database error with the state directory it concerns.
    pub(crate) fn error(&self, err: rusqlite::Error) -> EngineError {
        EngineError::State {
            dir: self.dir.clone(),
            message: format!("database: {err}"),
        }
    }

    /// The exclusions added with `vigil exclusion add`.
    pub fn exclusions(&self) -> Result<Vec<ExclusionConfig>, EngineError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT kind, value FROM exclusions ORDER BY added_at, rowid")
            .map_err(|err| self.error(err))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|err| self.error(err))?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, value) = row.map_err(|err| self.error(err))?;
            out.push(exclusion_from_row(&kind, value));
        }
        Ok(out)
    }

    /// Stores an exclusion; returns false if it was already there.
    pub fn add_exclusion(&self, exclusion: &ExclusionConfig) -> Result<bool, EngineError> {
        exclusion.validate().map_err(EngineError::Exclusion)?;
        let (kind, value) = exclusion_to_row(exclusion);
        let added = self
            .db()
            .execute(
                "INSERT OR IGNORE INTO exclusions (kind, value, added_at) VALUES (?1, ?2, ?3)",
                params![kind, value, unix_now()],
            )
            .map_err(|err| self.error(err))?;
        Ok(added == 1)
    }

    /// Removes a stored exclusion; returns false if there was none.
    pub fn remove_exclusion(&self, exclusion: &ExclusionConfig) -> Result<bool, EngineError> {
        let (kind, value) = exclusion_to_row(exclusion);
        let found: Option<i64> = self
            .db()
            .query_row(
                "DELETE FROM exclusions WHERE kind = ?1 AND value = ?2 RETURNING 1",
                params![kind, value],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| self.error(err))?;
        Ok(found.is_some())
    }
}

/// One line of the threat history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// `detected`, `quarantined`, `restored`, `removed` or `allowed`.
    pub action: String,
    /// The file concerned.
    #[serde(flatten, serialize_with = "crate::report::serialize_path_field")]
    pub path: PathBuf,
    /// The threat name.
    pub threat: String,
    /// The quarantine entry, for quarantine actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<String>,
    /// Why (for `allowed`: allowed threat or restoration exclusion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl State {
    /// Threat names allowed with `vigil threat allow`.
    pub fn allowed_threats(&self) -> Result<Vec<String>, EngineError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT name FROM allowed_threats ORDER BY name")
            .map_err(|err| self.error(err))?;
        let names = statement
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|err| self.error(err))?;
        Ok(names)
    }

    /// Allows a threat name; returns false if it already was.
    pub fn allow_threat(&self, name: &str) -> Result<bool, EngineError> {
        let added = self
            .db()
            .execute(
                "INSERT OR IGNORE INTO allowed_threats (name, added_at) VALUES (?1, ?2)",
                params![name, unix_now()],
            )
            .map_err(|err| self.error(err))?;
        Ok(added == 1)
    }

    /// Stops allowing a threat name; returns false if it was not allowed.
    pub fn disallow_threat(&self, name: &str) -> Result<bool, EngineError> {
        let removed = self
            .db()
            .execute("DELETE FROM allowed_threats WHERE name = ?1", params![name])
            .map_err(|err| self.error(err))?;
        Ok(removed == 1)
    }

    /// Appends a line to the threat history.
    pub(crate) fn record(
        &self,
        action: &str,
        path: &Path,
        threat: &str,
        quarantine_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), EngineError> {
        // A history line guards no file: see [`State::without_waiting_for_disk`].
        self.without_waiting_for_disk(|db| {
            insert_history(db, action, path, threat, quarantine_id, detail)
        })
    }

    /// Runs database changes that guard no user file with `synchronous = NORMAL`: they are
    /// committed without waiting for the disk (a crash keeps them; a power cut may lose the last
    /// ones, until the next ordinary commit makes them durable). Everything else runs with `FULL`.
    pub(crate) fn without_waiting_for_disk<T>(
        &self,
        change: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, EngineError> {
        let mut db = self.db();
        let run = |db: &mut Connection| {
            db.pragma_update(None, "synchronous", "NORMAL")?;
            let result = change(db);
            db.pragma_update(None, "synchronous", "FULL")?;
            result
        };
        run(&mut db).map_err(|err| self.error(err))
    }

    /// The whole threat history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, EngineError> {
        let db = self.db();
        let mut statement = db
            .prepare(
                "SELECT time, action, path, threat, quarantine_id, detail FROM threat_history ORDER BY rowid",
            )
            .map_err(|err| self.error(err))?;
        let rows = statement
            .query_map([], |row| {
                Ok(HistoryEntry {
                    time: row.get(0)?,
                    action: row.get(1)?,
                    path: PathBuf::from(std::ffi::OsString::from_vec(row.get(2)?)),
                    threat: row.get(3)?,
                    quarantine_id: row.get(4)?,
                    detail: row.get(5)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|err| self.error(err))?;
        Ok(rows)
    }

    /// Records that a scan of `kind` (`quick`, `full`, `custom`) completed at `ended_at`.
    pub(crate) fn record_scan(
        &self,
        kind: &str,
        ended_at: i64,
        files: u64,
        detections: u64,
    ) -> Result<(), EngineError> {
        self.without_waiting_for_disk(|db| {
            db.execute(
                "INSERT OR REPLACE INTO last_scans (kind, ended_at, files, detections) VALUES (?1, ?2, ?3, ?4)",
                params![kind, ended_at, files as i64, detections as i64],
            )
            .map(drop)
        })
    }

    /// The newest channel index seen for `channel`: when it was issued and the version it
    /// offered.
    pub fn channel_seen(&self, channel: &str) -> Result<Option<(i64, u64)>, EngineError> {
        self.db()
            .query_row(
                "SELECT issued_at, version FROM update_channels WHERE channel = ?1",
                params![channel],
                |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(|err| self.error(err))
    }

    /// Records a verified channel index, if it is newer than the newest seen.
    pub(crate) fn record_channel_seen(
        &self,
        channel: &str,
        issued_at: i64,
        version: u64,
    ) -> Result<(), EngineError> {
        self.db()
            .execute(
                "INSERT INTO update_channels (channel, issued_at, version) VALUES (?1, ?2, ?3)
                 ON CONFLICT (channel) DO UPDATE SET issued_at = excluded.issued_at, version = excluded.version
                 WHERE excluded.issued_at > update_channels.issued_at",
                params![channel, issued_at, version as i64],
            )
            .map(drop)
            .map_err(|err| self.error(err))
    }

    /// When each kind of scan last completed, with its file and detection counts.
    pub fn last_scans(&self) -> Result<Vec<LastScan>, EngineError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT kind, ended_at, files, detections FROM last_scans ORDER BY kind")
            .map_err(|err| self.error(err))?;
        let rows = statement
            .query_map([], |row| {
                Ok(LastScan {
                    kind: row.get(0)?,
                    ended_at: row.get(1)?,
                    files: row.get::<_, i64>(2)? as u64,
                    detections: row.get::<_, i64>(3)? as u64,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|err| self.error(err))?;
        Ok(rows)
    }

    /// Digests of files restored from quarantine at or after `since` (Unix seconds): the
    /// restoration exclusion still covers them.
    pub(crate) fn restored_since(
        &self,
        since: i64,
    ) -> Result<std::collections::HashMap<String, i64>, EngineError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT blake3, restored_at FROM restored_files WHERE restored_at >= ?1")
            .map_err(|err| self.error(err))?;
        let rows = statement
            .query_map(params![since], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|err| self.error(err))?;
        Ok(rows)
    }
}

/// Appends one threat-history line inside the caller's connection or transaction.
pub(crate) fn insert_history(
    db: &Connection,
    action: &str,
    path: &Path,
    threat: &str,
    quarantine_id: Option<&str>,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    db.execute(
        "INSERT INTO threat_history (time, action, path, threat, quarantine_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            unix_now(),
            action,
            path.as_os_str().as_bytes(),
            threat,
            quarantine_id,
            detail
        ],
    )?;
    Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The database form of an exclusion: its kind and its value's exact bytes.
fn exclusion_to_row(exclusion: &ExclusionConfig) -> (&'static str, Vec<u8>) {
    if let Some(path) = &exclusion.path {
        let path = crate::exclusions::normalize(path);
        let kind = if exclusion.is_directory {
            "directory"
        } else {
            "file"
        };
        (kind, path.as_os_str().as_bytes().to_vec())
    } else if let Some(extension) = &exclusion.extension {
        let bare = crate::exclusions::bare_extension(extension).to_ascii_lowercase();
        ("extension", bare.into_bytes())
    } else {
        (
            "name",
            exclusion.name.clone().unwrap_or_default().into_bytes(),
        )
    }
}

fn exclusion_from_row(kind: &str, value: Vec<u8>) -> ExclusionConfig {
    let text = || String::from_utf8_lossy(&value).into_owned();
    match kind {
        "file" | "directory" => ExclusionConfig {
            path: Some(PathBuf::from(std::ffi::OsString::from_vec(value.clone()))),
            is_directory: kind == "directory",
            ..Default::default()
        },
        "extension" => ExclusionConfig {
            extension: Some(text()),
            ..Default::default()
        },
        _ => ExclusionConfig {
            name: Some(text()),
            ..Default::default()
        },
    }
}

/// How long opening the state waits for other processes holding the database.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sets the connection up: busy timeout, write-ahead log, full sync. Switching a new database to
/// WAL needs an exclusive lock, so it is done only when the database is not already in WAL mode.
fn configure(db: &Connection) -> rusqlite::Result<()> {
    db.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = db.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        db.pragma_update(None, "journal_mode", "WAL")?;
    }
    db.pragma_update(None, "synchronous", "FULL")
}

/// Runs `step` again while SQLite reports the database busy or locked. SQLite's busy handler
/// covers most waits, but not all: changing the journal mode and opening a WAL database whose
/// last connection is closing can return `SQLITE_BUSY` at once. Gives up after [`BUSY_TIMEOUT`].
fn retry_while_busy<T>(mut step: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(err, _))
                if matches!(
                    err.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_persist_across_opens_and_remove_once() {
        let dir = tempfile::tempdir().unwrap();
        let directory = ExclusionConfig {
            path: Some("/srv/data/".into()),
            is_directory: true,
            ..Default::default()
        };
        let extension = ExclusionConfig {
            extension: Some(".ISO".into()),
            ..Default::default()
        };
        {
            let state = State::open(dir.path()).unwrap();
            assert!(state.add_exclusion(&directory).unwrap());
            assert!(!state.add_exclusion(&directory).unwrap());
            assert!(state.add_exclusion(&extension).unwrap());
        }
        let state = State::open(dir.path()).unwrap();
        let stored = state.exclusions().unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].path.as_deref(), Some(Path::new("/srv/data")));
        assert_eq!(stored[1].extension.as_deref(), Some("iso"));
        assert!(state.remove_exclusion(&extension).unwrap());
        assert!(!state.remove_exclusion(&extension).unwrap());
        assert_eq!(state.exclusions().unwrap().len(), 1);
    }
}
