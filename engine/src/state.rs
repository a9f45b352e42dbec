//! The state directory: everything Vigil changes lives under it, with an embedded SQLite database
//! for user-managed settings (and, later, history and the quarantine index).
//!
//! SQLite gives crash-safe, concurrent-safe updates: two `vigil exclusion add` at once cannot lose
//! each other's change, and a crash mid-write leaves the previous state.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::ExclusionConfig;
use crate::error::EngineError;

/// The schema, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &["CREATE TABLE exclusions (
        kind TEXT NOT NULL CHECK (kind IN ('file', 'directory', 'extension', 'name')),
        value BLOB NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (kind, value)
    );"];

/// An open state directory.
pub struct State {
    dir: PathBuf,
    db: Connection,
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
        db.busy_timeout(std::time::Duration::from_secs(10))
            .and_then(|_| db.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|_| db.pragma_update(None, "synchronous", "FULL"))
            .map_err(|err| fail(format!("cannot configure database: {err}")))?;
        let state = Self {
            dir: dir.to_path_buf(),
            db,
        };
        state.migrate()?;
        Ok(state)
    }

    /// The directory this state lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn migrate(&self) -> Result<(), EngineError> {
        let version: usize = self
            .db
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|err| self.error(err))?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let sql = format!(
                "BEGIN IMMEDIATE; {migration} PRAGMA user_version = {}; COMMIT;",
                index + 1
            );
            self.db.execute_batch(&sql).map_err(|err| self.error(err))?;
        }
        Ok(())
    }

    fn error(&self, err: rusqlite::Error) -> EngineError {
        EngineError::State {
            dir: self.dir.clone(),
            message: format!("database: {err}"),
        }
    }

    /// The exclusions added with `vigil exclusion add`.
    pub fn exclusions(&self) -> Result<Vec<ExclusionConfig>, EngineError> {
        let mut statement = self
            .db
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let added = self
            .db
            .execute(
                "INSERT OR IGNORE INTO exclusions (kind, value, added_at) VALUES (?1, ?2, ?3)",
                params![kind, value, now],
            )
            .map_err(|err| self.error(err))?;
        Ok(added == 1)
    }

    /// Removes a stored exclusion; returns false if there was none.
    pub fn remove_exclusion(&self, exclusion: &ExclusionConfig) -> Result<bool, EngineError> {
        let (kind, value) = exclusion_to_row(exclusion);
        let found: Option<i64> = self
            .db
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
