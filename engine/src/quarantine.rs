//! The quarantine vault: detected files moved out of harm's way, and given back on request.
//!
//! Layout under the state dir: `quarantine/` (0700) holds `vault.key` (32 random bytes, 0600) and
//! one `<id>.qv` file (0600) per entry: a magic header followed by the file's content XORed with a
//! keystream (BLAKE3 in keyed XOF mode, key = the vault key, input = the entry id). The point is not
//! secrecy (the key sits beside the files) but that a vault file can neither be executed nor be
//! detected again by this or any other scanner. Metadata lives in the state database.
//!
//! Every operation is a sequence of durable steps recorded in the entry's `status`, so a crash at
//! any point is repaired by [`Vault::open`] and a user's file is never lost:
//!
//! * quarantine: vault copy written from the handle that was scanned, fsync'd, renamed → row
//!   `stored` (with the digest and the file's device and inode) → original unlinked → row
//!   `quarantined` and history, in one transaction. The original is removed only after its vault
//!   copy and its row are durable.
//!
//! No operation resolves a user's path twice. The file is copied from the scanned handle; its
//! name is removed with `unlinkat` relative to its folder opened without following any link
//! (`SafeDir`), and only if that name still refers to the scanned inode. Restore and recovery
//! create, rename and unlink only inside folders opened the same way. A folder that became a link
//! leaves everything in place, with an error that says so.
//! * restore: row `restoring` (with the target) → decrypted into a temporary file beside the
//!   target and verified → renamed (or linked, without `--force`) into place → vault copy
//!   unlinked → row deleted.
//! * remove: row `removing` → vault copy unlinked → row deleted.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};

use crate::config::QuarantineConfig;
use crate::durable::{
    FileLock, LockMode, create_exclusive, io_error, random_bytes, random_id, remove_if_present,
    sync_dir,
};
use crate::error::EngineError;
use crate::fault;
use crate::object::{FileIdentity, ScanObject};
use crate::safe_dir::{SafeDir, is_file, split};
use crate::state::{State, insert_history, unix_now};

/// First bytes of every vault file: not an executable or script header of any kind.
const MAGIC: &[u8; 8] = b"VIGILQ1\0";
const CHUNK: usize = 256 * 1024;

/// One quarantined file, as recorded in the database.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuarantineEntry {
    /// The id users pass to `restore` and `remove`.
    pub id: String,
    /// Where the file was (exact bytes; shown lossily).
    #[serde(
        flatten,
        serialize_with = "crate::report::serialize_original_path_field"
    )]
    pub original_path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits and file type, as `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last access, nanoseconds since the Unix epoch.
    pub atime_ns: i64,
    /// Last modification, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
    /// Threat names detected in it.
    pub threats: Vec<String>,
    /// When it was detected (Unix seconds).
    pub detected_at: i64,
    /// When it entered the vault (Unix seconds).
    pub quarantined_at: i64,
}

/// The vault of one state directory.
pub struct Vault {
    state: Arc<State>,
    dir: PathBuf,
    key: [u8; 32],
    limits: QuarantineConfig,
    /// What the vault holds, as this process knows it, for `quarantine.max_size`.
    usage: Mutex<Usage>,
    /// Held shared while the vault is open, so that recovery (which needs it exclusively) never
    /// runs while another process is in the middle of an operation.
    _lock: FileLock,
}

fn failure(message: impl Into<String>) -> EngineError {
    EngineError::Quarantine(message.into())
}

impl Vault {
    /// Opens the vault (creating it if needed) and finishes or rolls back any operation a crash
    /// interrupted. `limits` bound what new entries may take (size of the vault, free space).
    pub fn open(state: Arc<State>, limits: &QuarantineConfig) -> Result<Self, EngineError> {
        let dir = state.dir().join("quarantine");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error(format!(
                "cannot create the vault {}",
                dir.display()
            )))?;
        let lock_path = dir.join("vault.lock");
        // Recover only when no other process has the vault open: an operation in progress
        // elsewhere looks exactly like an interrupted one. A crashed holder releases its lock.
        let exclusive = FileLock::take(&lock_path, LockMode::TryExclusive)?;
        let key = load_or_create_key(&dir.join("vault.key"))?;
        if let Some(exclusive) = exclusive {
            let recovering = Self {
                state: state.clone(),
                dir: dir.clone(),
                key,
                limits: limits.clone(),
                usage: Mutex::default(),
                _lock: exclusive,
            };
            recovering.recover()?;
        }
        let shared = FileLock::take(&lock_path, LockMode::Shared)?.expect("a shared lock waits");
        Ok(Self {
            state,
            dir,
            key,
            limits: limits.clone(),
            usage: Mutex::default(),
            _lock: shared,
        })
    }

    fn vault_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.qv"))
    }

    fn temp_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.tmp"))
    }

    /// Moves a scanned file into the vault and returns its entry. The content is copied from the
    /// object's open handle; the name is removed relative to its folder opened without following
    /// links, and only while it still refers to the scanned inode. Anything else leaves the file
    /// in place, and the error says why.
    pub fn quarantine(
        &self,
        object: &ScanObject,
        threats: &[String],
    ) -> Result<QuarantineEntry, EngineError> {
        let path = object.path();
        let identity = *object.identity();
        let left_in_place = |why: String| {
            failure(format!(
                "{} {why}; it was left in place and not quarantined",
                path.display()
            ))
        };
        let (folder, name) = split(path).ok_or_else(|| left_in_place("has no file name".into()))?;
        let parent =
            SafeDir::open(folder).map_err(|err| left_in_place(unreachable_folder(folder, &err)))?;
        if !names_file(&parent, name, &identity) {
            return Err(left_in_place(
                "no longer names the file that was scanned (moved or replaced)".into(),
            ));
        }
        let mut reservation = self.reserve(identity.size).map_err(left_in_place)?;
        let now = unix_now();
        let mut entry = QuarantineEntry {
            id: random_id()?,
            original_path: path.to_path_buf(),
            size: identity.size,
            mode: identity.mode,
            uid: identity.uid,
            gid: identity.gid,
            atime_ns: identity.atime_ns,
            mtime_ns: identity.mtime_ns,
            blake3: String::new(),
            threats: threats.to_vec(),
            detected_at: now,
            quarantined_at: now,
        };
        fault::pause("quarantine: before copy");
        let temp = self.temp_file(&entry.id);
        let (digest, size) = self.encrypt_into(object.file(), &temp, &entry.id)?;
        fault::point("quarantine: vault copy written");
        let vault_file = self.vault_file(&entry.id);
        std::fs::rename(&temp, &vault_file)
            .map_err(io_error(format!("cannot rename {}", temp.display())))?;
        sync_dir(&self.dir)?;
        fault::point("quarantine: vault copy renamed");

        entry.blake3 = digest;
        entry.size = size;
        self.insert_stored(&entry, &identity)?;
        reservation.stored = true;
        fault::point("quarantine: row stored");
        fault::pause("quarantine: before unlink");

        // Remove the name only if, in the folder checked above, it still refers to the file we
        // copied, and that file still has the size we copied.
        let unchanged = names_file(&parent, name, &identity)
            && object.file().metadata().is_ok_and(|now| now.len() == size);
        if unchanged && let Err(err) = parent.remove(name) {
            // The original stays (read-only folder, immutable file...): undo the vault copy.
            self.roll_back(&entry.id)?;
            return Err(left_in_place(format!("cannot be removed ({err})")));
        }
        if unchanged {
            parent.sync().map_err(io_error(format!(
                "cannot fsync directory {}",
                parent.path().display()
            )))?;
        }
        fault::point("quarantine: original removed");
        self.mark_quarantined(&entry)?;
        fault::point("quarantine: row quarantined");
        if !unchanged {
            return Err(failure(format!(
                "{} changed while it was being quarantined; a copy is in the vault as {} and the file was left in place",
                path.display(),
                entry.id
            )));
        }
        Ok(entry)
    }

    /// Counts `size` bytes against `quarantine.max_size` and checks `quarantine.min_free_space`;
    /// the reservation lasts until the returned guard is dropped (by then the entry is recorded).
    fn reserve(&self, size: u64) -> Result<Reservation<'_>, String> {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.limits.max_size;
        // Counting the entries costs a pass over the table: do it once, then add what this
        // process stores, and count again whenever that estimate comes within an eighth of the
        // limit (other processes may have added entries meanwhile).
        let stored = match usage.stored {
            Some(stored) if stored + usage.reserved + size <= max - max / 8 => stored,
            _ => {
                let stored = self.stored_bytes().map_err(|err| err.to_string())?;
                usage.stored = Some(stored);
                stored
            }
        };
        if stored + usage.reserved + size > max {
            return Err(format!(
                "would take the vault over quarantine.max_size ({stored} bytes stored + {size} > {max})"
            ));
        }
        let free = free_space(&self.dir)
            .map_err(|err| format!("cannot measure free space on {}: {err}", self.dir.display()))?;
        let floor = self.limits.min_free_space;
        if free.saturating_sub(usage.reserved + size) < floor {
            return Err(format!(
                "would leave less than quarantine.min_free_space ({floor} bytes) free on the vault's file system ({free} free, file {size})"
            ));
        }
        usage.reserved += size;
        Ok(Reservation {
            vault: self,
            size,
            stored: false,
        })
    }

    /// Bytes held by entries in the vault (every status: all have a copy on disk).
    fn stored_bytes(&self) -> Result<u64, EngineError> {
        let total: i64 = self
            .state
            .db()
            .query_row("SELECT COALESCE(SUM(size), 0) FROM quarantine", [], |row| {
                row.get(0)
            })
            .map_err(|err| self.state.error(err))?;
        Ok(total.max(0) as u64)
    }

    /// Streams `source` into `temp` (created 0600, exclusive), encrypted, and fsyncs it. Returns
    /// the BLAKE3 digest of the plain content and its size.
    fn encrypt_into(
        &self,
        source: &File,
        temp: &Path,
        id: &str,
    ) -> Result<(String, u64), EngineError> {
        let mut out = create_exclusive(temp)?;
        out.write_all(MAGIC)
            .map_err(io_error(format!("cannot write {}", temp.display())))?;
        let mut keystream = self.keystream(id);
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; CHUNK];
        let mut pad = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            // Positioned reads: the handle's offset is wherever the scan left it.
            let n = match source.read_at(&mut buffer, size) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => other.map_err(io_error("cannot read the file to quarantine".into()))?,
            };
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            keystream.fill(&mut pad[..n]);
            for (byte, key) in buffer[..n].iter_mut().zip(&pad[..n]) {
                *byte ^= key;
            }
            out.write_all(&buffer[..n])
                .map_err(io_error(format!("cannot write {}", temp.display())))?;
            size += n as u64;
        }
        out.sync_all()
            .map_err(io_error(format!("cannot fsync {}", temp.display())))?;
        Ok((hasher.finalize().to_hex().to_string(), size))
    }

    fn keystream(&self, id: &str) -> blake3::OutputReader {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(id.as_bytes());
        hasher.finalize_xof()
    }

    /// Decrypts an entry into `temp` inside `folder` (created 0600, exclusive, never through a
    /// link), checks its digest, and applies the recorded mode, owner and times. The caller
    /// renames it into place.
    fn decrypt_into(
        &self,
        entry: &QuarantineEntry,
        folder: &SafeDir,
        temp: &OsStr,
    ) -> Result<(), EngineError> {
        let shown = folder.path().join(temp);
        let vault_file = self.vault_file(&entry.id);
        let mut source = File::open(&vault_file)
            .map_err(io_error(format!("vault entry {} cannot be read", entry.id)))?;
        let mut magic = [0u8; 8];
        source
            .read_exact(&mut magic)
            .ok()
            .filter(|_| &magic == MAGIC)
            .ok_or_else(|| failure(format!("vault entry {} is damaged: bad header", entry.id)))?;
        let mut out = folder
            .create_new(temp)
            .map_err(io_error(format!("cannot create {}", shown.display())))?;
        let result = (|| {
            let mut keystream = self.keystream(&entry.id);
            let mut hasher = blake3::Hasher::new();
            let mut buffer = vec![0u8; CHUNK];
            let mut pad = vec![0u8; CHUNK];
            loop {
                let n = source
                    .read(&mut buffer)
                    .map_err(io_error(format!("cannot read vault entry {}", entry.id)))?;
                if n == 0 {
                    break;
                }
                keystream.fill(&mut pad[..n]);
                for (byte, key) in buffer[..n].iter_mut().zip(&pad[..n]) {
                    *byte ^= key;
                }
                hasher.update(&buffer[..n]);
                out.write_all(&buffer[..n])
                    .map_err(io_error(format!("cannot write {}", shown.display())))?;
            }
            if hasher.finalize().to_hex().as_str() != entry.blake3 {
                return Err(failure(format!(
                    "vault entry {} does not match its recorded digest (damaged or tampered with); not restored",
                    entry.id
                )));
            }
            apply_metadata(&out, entry)?;
            out.sync_all()
                .map_err(io_error(format!("cannot fsync {}", shown.display())))
        })();
        if result.is_err() {
            let _ = folder.remove(temp);
        }
        result
    }

    /// Puts an entry back at its original path (or `to`), with its content, mode, owner and times.
    /// An existing file is replaced only with `force`. Returns where the file was restored.
    pub fn restore(
        &self,
        id: &str,
        to: Option<&Path>,
        force: bool,
    ) -> Result<PathBuf, EngineError> {
        let entry = self
            .entry(id)?
            .ok_or_else(|| failure(format!("no quarantine entry {id}")))?;
        validate_entry(&entry)?;
        let target = match to {
            // The administrator's own path: links in its folders are resolved now, as for scan
            // targets. The recorded original path is never resolved (anyone could have changed
            // its folders since).
            Some(to) => crate::targets::resolve_folder(&crate::exclusions::normalize(to)),
            None => entry.original_path.clone(),
        };
        let cannot = |why: String| {
            failure(format!(
                "cannot restore to {}: {why}; nothing was written",
                target.display()
            ))
        };
        let (folder, name) = split(&target).ok_or_else(|| cannot("no file name".into()))?;
        // Every step below is relative to this folder: a folder swapped for a link afterwards
        // changes nothing, and one that is a link now is refused.
        let parent = SafeDir::open(folder)
            .map_err(|err| cannot(format!("it {}", unreachable_folder(folder, &err))))?;
        let exists = parent
            .contains(name)
            .map_err(|err| cannot(err.to_string()))?;
        if !force && exists {
            return Err(failure(format!(
                "{} already exists; use --force to replace it or --to to restore elsewhere",
                target.display()
            )));
        }
        let temp = restore_temp(id);
        parent
            .remove_if_present(&temp)
            .map_err(|err| cannot(err.to_string()))?;
        // Record the target first, so recovery can clean up the temporary file after a crash.
        self.set_restoring(id, &target)?;
        fault::point("restore: row restoring");
        fault::pause("restore: before create");
        if let Err(err) = self.decrypt_into(&entry, &parent, &temp) {
            self.set_status(id, "quarantined")?;
            return Err(err);
        }
        fault::point("restore: temporary written");

        let placed = if force {
            parent.rename(&temp, name)
        } else {
            // link() refuses to replace a file created since the check above.
            parent.link(&temp, name).and_then(|()| parent.remove(&temp))
        };
        if let Err(err) = placed {
            let _ = parent.remove(&temp);
            self.set_status(id, "quarantined")?;
            return Err(failure(format!(
                "cannot restore to {}: {err}",
                target.display()
            )));
        }
        parent.sync().map_err(io_error(format!(
            "cannot fsync directory {}",
            folder.display()
        )))?;
        fault::point("restore: file in place");
        self.finish_restore(&entry, &target)?;
        Ok(target)
    }

    /// The last steps of a restore, also run by recovery: drop the vault copy, forget the entry,
    /// start the restoration exclusion and record the history.
    fn finish_restore(&self, entry: &QuarantineEntry, target: &Path) -> Result<(), EngineError> {
        remove_if_present(&self.vault_file(&entry.id))?;
        sync_dir(&self.dir)?;
        fault::point("restore: vault copy removed");
        let mut db = self.state.db();
        let tx = db.transaction().map_err(|err| self.state.error(err))?;
        tx.execute("DELETE FROM quarantine WHERE id = ?1", params![entry.id])
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO restored_files (blake3, restored_at) VALUES (?1, ?2)
                     ON CONFLICT (blake3) DO UPDATE SET restored_at = excluded.restored_at",
                    params![entry.blake3, unix_now()],
                )
            })
            .map_err(|err| self.state.error(err))?;
        for threat in &entry.threats {
            insert_history(&tx, "restored", target, threat, Some(&entry.id), None)
                .map_err(|err| self.state.error(err))?;
        }
        tx.commit().map_err(|err| self.state.error(err))?;
        fault::point("restore: row deleted");
        Ok(())
    }

    /// Deletes an entry and its vault copy for good.
    pub fn remove(&self, id: &str) -> Result<QuarantineEntry, EngineError> {
        let entry = self
            .entry(id)?
            .ok_or_else(|| failure(format!("no quarantine entry {id}")))?;
        self.set_status(id, "removing")?;
        fault::point("remove: row removing");
        self.finish_remove(&entry)?;
        Ok(entry)
    }

    fn finish_remove(&self, entry: &QuarantineEntry) -> Result<(), EngineError> {
        remove_if_present(&self.vault_file(&entry.id))?;
        sync_dir(&self.dir)?;
        fault::point("remove: vault copy removed");
        let mut db = self.state.db();
        let tx = db.transaction().map_err(|err| self.state.error(err))?;
        tx.execute("DELETE FROM quarantine WHERE id = ?1", params![entry.id])
            .map_err(|err| self.state.error(err))?;
        for threat in &entry.threats {
            insert_history(
                &tx,
                "removed",
                &entry.original_path,
                threat,
                Some(&entry.id),
                None,
            )
            .map_err(|err| self.state.error(err))?;
        }
        tx.commit().map_err(|err| self.state.error(err))
    }

    /// Every quarantined entry, oldest first.
    pub fn list(&self) -> Result<Vec<QuarantineEntry>, EngineError> {
        let db = self.state.db();
        let mut statement = db
            .prepare(&format!(
                "SELECT {COLUMNS} FROM quarantine WHERE status = 'quarantined' ORDER BY quarantined_at, rowid"
            ))
            .map_err(|err| self.state.error(err))?;
        let entries = statement
            .query_map([], entry_from_row)
            .and_then(Iterator::collect)
            .map_err(|err| self.state.error(err))?;
        Ok(entries)
    }

    fn entry(&self, id: &str) -> Result<Option<QuarantineEntry>, EngineError> {
        let db = self.state.db();
        db.query_row(
            &format!("SELECT {COLUMNS} FROM quarantine WHERE id = ?1 AND status = 'quarantined'"),
            params![id],
            entry_from_row,
        )
        .optional()
        .map_err(|err| self.state.error(err))
    }

    /// Entries in a status of an unfinished operation, with what recovery needs beyond them.
    fn entries_with_status(&self, status: &str) -> Result<Vec<Pending>, EngineError> {
        let db = self.state.db();
        let mut statement = db
            .prepare(&format!(
                "SELECT {COLUMNS}, restore_to, dev, ino FROM quarantine WHERE status = ?1"
            ))
            .map_err(|err| self.state.error(err))?;
        let entries = statement
            .query_map(params![status], |row| {
                let restore_to: Option<Vec<u8>> = row.get(COLUMN_COUNT)?;
                let dev: Option<i64> = row.get(COLUMN_COUNT + 1)?;
                let ino: Option<i64> = row.get(COLUMN_COUNT + 2)?;
                Ok(Pending {
                    entry: entry_from_row(row)?,
                    restore_to: restore_to.map(|bytes| PathBuf::from(OsString::from_vec(bytes))),
                    inode: dev.zip(ino).map(|(dev, ino)| (dev as u64, ino as u64)),
                })
            })
            .and_then(Iterator::collect)
            .map_err(|err| self.state.error(err))?;
        Ok(entries)
    }

    /// Records an entry whose vault copy is durable (status `stored`: the original may still be
    /// in place).
    fn insert_stored(
        &self,
        entry: &QuarantineEntry,
        identity: &FileIdentity,
    ) -> Result<(), EngineError> {
        self.state
            .db()
            .execute(
                "INSERT INTO quarantine (id, status, original_path, size, mode, uid, gid, atime_ns,
                 mtime_ns, blake3, threats, detected_at, quarantined_at, dev, ino)
                 VALUES (?1, 'stored', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    entry.id,
                    entry.original_path.as_os_str().as_bytes(),
                    entry.size as i64,
                    entry.mode,
                    entry.uid,
                    entry.gid,
                    entry.atime_ns,
                    entry.mtime_ns,
                    entry.blake3,
                    serde_json::to_string(&entry.threats).expect("strings serialize"),
                    entry.detected_at,
                    entry.quarantined_at,
                    identity.dev as i64,
                    identity.ino as i64
                ],
            )
            .map_err(|err| self.state.error(err))?;
        Ok(())
    }

    /// Marks an entry quarantined and records it in the threat history, in one transaction. It
    /// need not wait for the disk: if a power cut loses it, the row is still `stored` and
    /// recovery, finding the original gone, marks it again.
    fn mark_quarantined(&self, entry: &QuarantineEntry) -> Result<(), EngineError> {
        self.state.without_waiting_for_disk(|db| {
            let tx = db.transaction()?;
            tx.execute(
                "UPDATE quarantine SET status = 'quarantined', restore_to = NULL WHERE id = ?1",
                params![entry.id],
            )?;
            for threat in &entry.threats {
                insert_history(
                    &tx,
                    "quarantined",
                    &entry.original_path,
                    threat,
                    Some(&entry.id),
                    None,
                )?;
            }
            tx.commit()
        })
    }

    fn set_restoring(&self, id: &str, target: &Path) -> Result<(), EngineError> {
        self.state
            .db()
            .execute(
                "UPDATE quarantine SET status = 'restoring', restore_to = ?2 WHERE id = ?1",
                params![id, target.as_os_str().as_bytes()],
            )
            .map_err(|err| self.state.error(err))?;
        Ok(())
    }

    fn set_status(&self, id: &str, status: &str) -> Result<(), EngineError> {
        self.state
            .db()
            .execute(
                "UPDATE quarantine SET status = ?2, restore_to = NULL WHERE id = ?1",
                params![id, status],
            )
            .map_err(|err| self.state.error(err))?;
        Ok(())
    }

    /// Undoes a quarantine whose original is still in place: vault copy, then row.
    fn roll_back(&self, id: &str) -> Result<(), EngineError> {
        remove_if_present(&self.temp_file(id))?;
        remove_if_present(&self.vault_file(id))?;
        sync_dir(&self.dir)?;
        self.delete_row(id)
    }

    fn delete_row(&self, id: &str) -> Result<(), EngineError> {
        self.state
            .db()
            .execute("DELETE FROM quarantine WHERE id = ?1", params![id])
            .map_err(|err| self.state.error(err))?;
        Ok(())
    }

    /// Repairs what an interrupted operation left, so that each file is whole in exactly one place
    /// (or, when a crash came between copy and unlink, whole in both) and rows match vault files.
    fn recover(&self) -> Result<(), EngineError> {
        // Vault copy durable, original maybe not yet removed: finish if the name still holds that
        // file. Anything uncertain keeps the vault copy: it may be the only one.
        for Pending { entry, inode, .. } in self.entries_with_status("stored")? {
            let original = split(&entry.original_path)
                .and_then(|(folder, name)| Some((SafeDir::open(folder).ok()?, name)));
            let original = original.and_then(|(parent, name)| {
                let file = holds_entry(&parent, name, &entry)?;
                let identity = FileIdentity::of(&file.metadata().ok()?);
                // Recorded at quarantine (older entries have none): the very inode scanned.
                let scanned = inode.is_none_or(|inode| inode == (identity.dev, identity.ino));
                scanned.then_some((parent, name, identity))
            });
            if let Some((parent, name, identity)) = original {
                let same = names_file(&parent, name, &identity);
                if !same || parent.remove(name).is_err() {
                    // The original is there and cannot be removed: it stays, and so the copy goes.
                    self.roll_back(&entry.id)?;
                    continue;
                }
                let _ = parent.sync();
            }
            self.mark_quarantined(&entry)?;
        }
        // Restore interrupted: finished if the file is in place, otherwise back to quarantined.
        for Pending {
            entry, restore_to, ..
        } in self.entries_with_status("restoring")?
        {
            let target = restore_to.unwrap_or_else(|| entry.original_path.clone());
            let place =
                split(&target).and_then(|(folder, name)| Some((SafeDir::open(folder).ok()?, name)));
            let in_place = place
                .as_ref()
                .is_some_and(|(parent, name)| holds_entry(parent, name, &entry).is_some());
            if let Some((parent, _)) = &place {
                let _ = parent.remove_if_present(&restore_temp(&entry.id));
            }
            if in_place || !self.vault_file(&entry.id).exists() {
                self.finish_restore(&entry, &target)?;
            } else {
                self.set_status(&entry.id, "quarantined")?;
            }
        }
        for Pending { entry, .. } in self.entries_with_status("removing")? {
            self.finish_remove(&entry)?;
        }
        // Vault files without a row: a quarantine interrupted before its row was written (the
        // original was never touched, since it is removed only after the row exists), or a
        // partial copy. Neither is the only copy of anything.
        let entries = std::fs::read_dir(&self.dir)
            .map_err(io_error(format!("cannot list {}", self.dir.display())))?;
        for dirent in entries.flatten() {
            let name = dirent.file_name();
            let Some(name) = name.to_str() else { continue };
            let orphan = match name
                .strip_suffix(".tmp")
                .or_else(|| name.strip_suffix(".qv"))
            {
                Some(id) => !self.entry_exists(id)?,
                // A key being created by a process that died before renaming it into place.
                None => name
                    .strip_prefix("vault.tmp")
                    .and_then(|pid| pid.parse::<libc::pid_t>().ok())
                    .is_some_and(|pid| !process_alive(pid)),
            };
            if orphan {
                remove_if_present(&dirent.path())?;
            }
        }
        Ok(())
    }

    fn entry_exists(&self, id: &str) -> Result<bool, EngineError> {
        let found: Option<i64> = self
            .state
            .db()
            .query_row(
                "SELECT 1 FROM quarantine WHERE id = ?1",
                params![id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| self.state.error(err))?;
        Ok(found.is_some())
    }
}

const COLUMNS: &str = "id, original_path, size, mode, uid, gid, atime_ns, mtime_ns, blake3, threats, detected_at, quarantined_at";
const COLUMN_COUNT: usize = 12;

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantineEntry> {
    let threats: String = row.get(9)?;
    Ok(QuarantineEntry {
        id: row.get(0)?,
        original_path: PathBuf::from(OsString::from_vec(row.get(1)?)),
        size: row.get::<_, i64>(2)? as u64,
        mode: row.get(3)?,
        uid: row.get(4)?,
        gid: row.get(5)?,
        atime_ns: row.get(6)?,
        mtime_ns: row.get(7)?,
        blake3: row.get(8)?,
        threats: serde_json::from_str(&threats).unwrap_or_else(|_| vec![threats]),
        detected_at: row.get(10)?,
        quarantined_at: row.get(11)?,
    })
}

/// Refuses metadata that could not have been written by the vault: a relative original path or one
/// with `.`/`..` components (path traversal), or a digest that is not 64 hex digits.
fn validate_entry(entry: &QuarantineEntry) -> Result<(), EngineError> {
    let path = &entry.original_path;
    let traversal = !path.is_absolute()
        || path.as_os_str().as_bytes().contains(&0)
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    if traversal {
        return Err(failure(format!(
            "vault entry {} has a tampered original path {:?} (not absolute or with `..`); not restored",
            entry.id,
            path.display().to_string()
        )));
    }
    if entry.blake3.len() != 64 || !entry.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(failure(format!(
            "vault entry {} has a tampered digest; not restored",
            entry.id
        )));
    }
    Ok(())
}

/// Sets the recorded permission bits, owner (when permitted) and times on a restored file.
fn apply_metadata(file: &File, entry: &QuarantineEntry) -> Result<(), EngineError> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fd is an open descriptor owned by `file` for the duration of these calls.
    unsafe {
        if libc::geteuid() == 0 {
            libc::fchown(fd, entry.uid, entry.gid);
        }
        if libc::fchmod(fd, (entry.mode & 0o7777) as libc::mode_t) != 0 {
            return Err(io_error("cannot set the restored file's mode".into())(
                io::Error::last_os_error(),
            ));
        }
        let time = |ns: i64| libc::timespec {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000),
        };
        let times = [time(entry.atime_ns), time(entry.mtime_ns)];
        if libc::futimens(fd, times.as_ptr()) != 0 {
            return Err(io_error("cannot set the restored file's times".into())(
                io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// The name of the temporary file a restore writes beside its target.
fn restore_temp(id: &str) -> OsString {
    OsString::from(format!(".vigil-restore-{id}"))
}

/// Why a file's folder could not be opened without following links, for people.
fn unreachable_folder(folder: &Path, err: &io::Error) -> String {
    if err.raw_os_error() == Some(libc::ELOOP) {
        format!(
            "is in a folder reached through a symbolic link ({}), which Vigil does not follow \
             when it acts on a file",
            folder.display()
        )
    } else {
        format!(
            "is in a folder that cannot be opened ({}: {err})",
            folder.display()
        )
    }
}

/// Whether `name` in `folder` is, right now, the file `identity` describes (not following a link).
fn names_file(folder: &SafeDir, name: &OsStr, identity: &FileIdentity) -> bool {
    folder
        .stat(name)
        .is_ok_and(|stat| is_file(&stat, identity.dev, identity.ino))
}

/// The file at `name` in `folder`, opened, if it is a regular file whose content has the entry's
/// digest.
fn holds_entry(folder: &SafeDir, name: &OsStr, entry: &QuarantineEntry) -> Option<File> {
    let mut file = folder.open_file(name).ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    io::copy(&mut file, &mut hasher).ok()?;
    (hasher.finalize().to_hex().as_str() == entry.blake3).then_some(file)
}

/// Bytes available to unprivileged users on the file system holding `dir`.
fn free_space(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// An entry whose operation did not finish, as recovery reads it.
struct Pending {
    entry: QuarantineEntry,
    /// Where an interrupted restore was writing.
    restore_to: Option<PathBuf>,
    /// Device and inode of the original file (recorded since they are; older rows have none).
    inode: Option<(u64, u64)>,
}

/// The vault's size as one process sees it: entries counted at some point, plus what this
/// process has stored since, plus copies in progress.
#[derive(Default)]
struct Usage {
    /// Bytes of all entries when last counted, plus what this process stored since.
    stored: Option<u64>,
    /// Bytes of copies in progress in this process.
    reserved: u64,
}

/// Bytes of a quarantine in progress, counted against the vault's limits until dropped.
struct Reservation<'v> {
    vault: &'v Vault,
    size: u64,
    /// Set once the entry is recorded: its bytes then count as stored.
    stored: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut usage = self.vault.usage.lock().unwrap_or_else(|p| p.into_inner());
        usage.reserved -= self.size;
        if self.stored {
            usage.stored = usage.stored.map(|stored| stored + self.size);
        }
    }
}

/// Whether a process with this id exists (a temporary file named after a live process is still
/// being written).
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH }
}

/// Reads the vault key, creating it (0600, written to a temporary file, fsync'd, renamed) on first
/// use.
fn load_or_create_key(path: &Path) -> Result<[u8; 32], EngineError> {
    if let Ok(bytes) = std::fs::read(path) {
        return bytes
            .try_into()
            .map_err(|_| failure(format!("{} is damaged: not a 32-byte key", path.display())));
    }
    let key = random_bytes::<32>()?;
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = create_exclusive(&temp)?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("cannot write {}", temp.display())))?;
    fault::point("vault: key written");
    // Another process may have created the key meanwhile: keep the first one.
    match std::fs::hard_link(&temp, path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(io_error(format!("cannot create {}", path.display()))(err)),
    }
    remove_if_present(&temp)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    let bytes = std::fs::read(path).map_err(io_error(format!("cannot read {}", path.display())))?;
    bytes
        .try_into()
        .map_err(|_| failure(format!("{} is damaged: not a 32-byte key", path.display())))
}

/// Property tests of the checks on vault metadata read back from the database (which a tampered
/// state dir could hold): whatever the path and digest bytes, an entry is refused unless its path
/// is absolute, without `.`, `..` or NUL, and its digest 64 hex digits.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn only_safe_metadata_passes(
            path in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'.'), Just(0u8), any::<u8>()], 0..40),
            digest in prop_oneof!["[0-9a-f]{64}", "\\PC{0,70}"],
        ) {
            let entry = QuarantineEntry {
                id: "0123456789abcdef".into(),
                original_path: PathBuf::from(OsString::from_vec(path.clone())),
                size: 0,
                mode: 0o100644,
                uid: 0,
                gid: 0,
                atime_ns: 0,
                mtime_ns: 0,
                blake3: digest.clone(),
                threats: Vec::new(),
                detected_at: 0,
                quarantined_at: 0,
            };
            if validate_entry(&entry).is_ok() {
                let path = &entry.original_path;
                prop_assert!(path.is_absolute());
                prop_assert!(!path.as_os_str().as_bytes().contains(&0));
                prop_assert!(path.components().all(|c| !matches!(c, Component::ParentDir | Component::CurDir)));
                prop_assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }
}
