//! Result caches: a rescan of an unchanged machine costs a walk, not a scan.
//!
//! Two caches keep the detectors' raw results (nothing found, or the findings) between scans:
//!
//! - the **scan cache**, keyed by file identity (`dev`, `ino`) and the name-dependent inputs of
//!   the result ([`ScanKey`]), used only while the file's size, modification and status-change
//!   times (ns) and file system are the same ([`Validators`]). The status-change time cannot be
//!   set back by a user, so replaying an old modification time (`touch -r`) does not hide a change;
//! - the **file-hash cache**, keyed by the BLAKE3 of the content and the name-dependent inputs
//!   ([`HashKey`]), so the same content under many names is matched once.
//!
//! Decide (allowed threats, restoration exclusions) and act always run on the cached findings, so
//! a change there takes effect without a rescan. The caches belong to one [`ResultFingerprint`]:
//! its digest names the cache file, so another engine, other definitions or other limits never
//! see the entries. Both caches are bounded in entries, least recently used out first; they are
//! saved at the end of each scan under a lock, merged with what another process saved meanwhile,
//! to a new file renamed into place. A damaged file is discarded with a warning.
//!
//! What is never cached, and why, is decided by the scan pipeline (`crate::scan`), by
//! `cacheable_volume` (which file systems' times can be trusted) and by `ResultCache::settled`.

mod fingerprint;
mod store;

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use fingerprint::{Component, NON_RESULT_KEYS, RESULT_KEYS, ResultFingerprint, ResultSettings};

use crate::config::AntivirusEngine;
use crate::durable::{FileLock, LockMode, io_error, remove_if_present};
use crate::error::EngineError;
use crate::report::Finding;
use crate::state::unix_now;
use store::Header;

/// The folder of the state dir that holds the cache files.
pub const CACHE_DIR: &str = "cache";
/// Cache files of other fingerprints kept besides the current one (an occasional `--rules` or
/// `--no-plugins` scan must not throw away the daily scan's cache).
const OTHER_FINGERPRINTS_KEPT: usize = 3;

/// Where a file's result is looked up in the scan cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ScanKey {
    pub dev: u64,
    pub ino: u64,
    /// The name-dependent inputs of the result ([`crate::detect::Detectors::name_key`]).
    pub names: u64,
}

/// What must be unchanged for a scan-cache entry to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validators {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// The file system's id (`statfs.f_fsid`), so another file system that gets the same device
    /// number later does not match.
    pub fsid: u64,
}

/// Where a content's result is looked up in the file-hash cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct HashKey {
    /// BLAKE3 of the content.
    pub content: [u8; 32],
    /// The name-dependent inputs of the result.
    pub names: u64,
}

/// The detectors' raw result for one content: nothing (most files: one pointer, no allocation),
/// or findings with the content's digest, which a decision may need.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CachedResult(Option<Box<Detection>>);

/// What was found in a content, and its BLAKE3.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detection {
    pub findings: Vec<Finding>,
    pub digest: [u8; 32],
}

impl CachedResult {
    /// The result of a scan that found `findings` in content whose BLAKE3 is `digest` (always
    /// known when something was found in a result that is kept).
    pub(crate) fn new(findings: Vec<Finding>, digest: Option<[u8; 32]>) -> Self {
        Self((!findings.is_empty()).then(|| {
            Box::new(Detection {
                findings,
                digest: digest.unwrap_or_default(),
            })
        }))
    }

    /// What was found, if anything.
    pub(crate) fn detection(&self) -> Option<&Detection> {
        self.0.as_deref()
    }

    /// The findings and, when there are any, the content digest.
    pub(crate) fn into_parts(self) -> (Vec<Finding>, Option<[u8; 32]>) {
        match self.0 {
            Some(detection) => (detection.findings, Some(detection.digest)),
            None => (Vec::new(), None),
        }
    }
}

/// The last scan's use of the caches (`cache/last-scan.json` in the state dir).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanStats {
    /// When it ended (Unix seconds).
    pub ended_at: i64,
    /// Files whose result was established (scanned or found in a cache).
    pub files: u64,
    /// Of those, results from the scan cache.
    pub cache_hits: u64,
    /// Of those, results from the file-hash cache.
    pub file_hash_hits: u64,
}

impl ScanStats {
    /// The share of files whose result came from a cache, in percent.
    pub fn hit_rate(&self) -> f64 {
        if self.files == 0 {
            return 0.0;
        }
        100.0 * (self.cache_hits + self.file_hash_hits) as f64 / self.files as f64
    }
}

/// The file that records the last scan's [`ScanStats`].
const LAST_SCAN: &str = "last-scan.json";

/// Entries used less recently than this are marked used again (and the cache saved); fresher
/// ones are not, so a rescan of an unchanged tree usually writes nothing. Eviction is least
/// recently used at this resolution.
const REFRESH_AFTER_SECONDS: u64 = 7 * 24 * 3600;

/// Both caches of one fingerprint, shared by every worker of every scan of an engine.
pub struct ResultCache {
    dir: PathBuf,
    fingerprint: [u8; 32],
    definitions: [u8; 32],
    scan: Shards<ScanKey, (Validators, CachedResult)>,
    hashes: Shards<HashKey, CachedResult>,
    settle_ns: i64,
    /// The cache file as this process last read or wrote it: when it is still that file at the
    /// next save, no other process saved meanwhile and there is nothing to merge.
    on_disk: Mutex<Option<FileStamp>>,
}

/// Which version of a file: its inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: metadata.mtime() * 1_000_000_000 + metadata.mtime_nsec(),
        }
    }
}

impl ResultCache {
    /// The caches of `fingerprint` in `state_dir`, loaded from their file when there is one. A
    /// damaged file is not an error: the caches start empty and the returned warning says why.
    pub fn open(
        state_dir: &Path,
        fingerprint: &ResultFingerprint,
        limits: &AntivirusEngine,
    ) -> Result<(Self, Option<String>), EngineError> {
        let dir = state_dir.join(CACHE_DIR);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        let definitions = blake3::hash(fingerprint.definitions_digest.as_bytes());
        let cache = Self {
            dir,
            fingerprint: fingerprint.digest(),
            definitions: *definitions.as_bytes(),
            scan: Shards::new(limits.scan_cache_maximum),
            hashes: Shards::new(limits.file_hash_cache_maximum),
            settle_ns: (limits.scan_cache_settle_time as i64).saturating_mul(1_000_000_000),
            on_disk: Mutex::new(None),
        };
        let warning = cache.load().err().map(|why| {
            format!(
                "the scan cache {} is damaged ({why}); it was discarded, and files are scanned \
                 again",
                cache.file().display()
            )
        });
        Ok((cache, warning))
    }

    /// The file holding this fingerprint's caches.
    fn file(&self) -> PathBuf {
        let name: String = self.fingerprint[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        self.dir.join(format!("results-{name}.bin"))
    }

    /// Merges the saved entries into memory; `Err` says why the file was not usable.
    fn load(&self) -> Result<(), String> {
        use std::io::Read;
        let mut file = match File::open(self.file()) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err.to_string()),
        };
        let stamp = FileStamp::of(&file.metadata().map_err(|err| err.to_string())?);
        let mut bytes = Vec::with_capacity(stamp.size as usize);
        file.read_to_end(&mut bytes)
            .map_err(|err| err.to_string())?;
        let (header, scan, hashes) = store::decode(&bytes)?;
        if header.format != fingerprint::CACHE_FORMAT || header.fingerprint != self.fingerprint {
            return Err("it belongs to another engine configuration".into());
        }
        *self.on_disk.lock().unwrap_or_else(|p| p.into_inner()) = Some(stamp);
        // The two maps fill in parallel.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                self.hashes.reserve(hashes.len());
                for (key, result, last_used) in hashes {
                    self.hashes.merge(key, result, last_used);
                }
            });
            self.scan.reserve(scan.len());
            for (key, valid, result, last_used) in scan {
                self.scan.merge(key, (valid, result), last_used);
            }
        });
        // Saved under a larger bound: trimmed and written at the next save.
        self.scan.mark_dirty_if_over_bound();
        self.hashes.mark_dirty_if_over_bound();
        Ok(())
    }

    /// Whether the scan cache is in use.
    pub(crate) fn scan_cache_enabled(&self) -> bool {
        self.scan.maximum > 0
    }

    /// Whether the file-hash cache is in use.
    pub(crate) fn hash_cache_enabled(&self) -> bool {
        self.hashes.maximum > 0
    }

    /// The scan cache's result for `key`, if it was stored with these validators.
    pub(crate) fn lookup(&self, key: &ScanKey, now: &Validators) -> Option<CachedResult> {
        self.scan.get(key, unix_now() as u64, |(valid, result)| {
            (valid == now).then(|| result.clone())
        })
    }

    /// Keeps `result` for the file at `key` while it has these validators.
    pub(crate) fn store(&self, key: ScanKey, valid: Validators, result: CachedResult) {
        self.scan.insert(key, (valid, result), unix_now() as u64);
    }

    /// The file-hash cache's result for `key`.
    pub(crate) fn lookup_content(&self, key: &HashKey) -> Option<CachedResult> {
        self.hashes
            .get(key, unix_now() as u64, |result| Some(result.clone()))
    }

    /// Keeps `result` for the content at `key`.
    pub(crate) fn store_content(&self, key: HashKey, result: CachedResult) {
        self.hashes.insert(key, result, unix_now() as u64);
    }

    /// Whether a file's times lie far enough before `observed_at_ns` (the clock just before its
    /// identity was taken) that any later write gets newer ones: the settle time covers the file
    /// system's timestamp granularity and writes through shared mappings not yet written back.
    pub(crate) fn settled(&self, valid: &Validators, observed_at_ns: i64) -> bool {
        let newest = valid.mtime_ns.max(valid.ctime_ns);
        observed_at_ns.saturating_sub(newest) >= self.settle_ns
    }

    /// Records `last_scan` (a scan's use of the caches; `None` when saving between scans, which
    /// keeps the last scan's record), and when the caches changed, writes them to their file: under the
    /// cache lock, merged with what another process saved meanwhile, trimmed to their bounds, to
    /// a new file renamed over the old. Cache files of other definitions, and of all but the most
    /// recent other fingerprints, are removed.
    pub fn save(&self, last_scan: Option<ScanStats>) -> Result<(), EngineError> {
        let _lock = FileLock::take(&self.dir.join("lock"), LockMode::Exclusive)?;
        if let Some(last_scan) = last_scan {
            let stats = serde_json::to_vec(&last_scan).expect("stats serialize");
            write_replacing(&self.dir.join(LAST_SCAN), &stats).map_err(io_error(format!(
                "cannot write {}",
                self.dir.join(LAST_SCAN).display()
            )))?;
        }
        crate::fault::point("cache: last scan recorded");
        let path = self.file();
        if !(self.scan.take_dirty() | self.hashes.take_dirty()) {
            // Nothing to write; the file's time says it was used, so pruning keeps it.
            self.mark_used(&path);
            return Ok(());
        }
        // Another process's entries are merged; a damaged file is simply replaced.
        let current = std::fs::metadata(&path).ok().map(|m| FileStamp::of(&m));
        if current != *self.on_disk.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = self.load();
        }
        self.scan.trim();
        self.hashes.trim();
        let bytes = {
            let scan = self.scan.lock_all();
            let hashes = self.hashes.lock_all();
            let header = Header {
                format: fingerprint::CACHE_FORMAT,
                fingerprint: self.fingerprint,
                definitions: self.definitions,
                saved_at: unix_now(),
                scan_entries: scan.iter().map(|shard| shard.len() as u64).sum(),
                hash_entries: hashes.iter().map(|shard| shard.len() as u64).sum(),
            };
            store::encode(
                &header,
                scan.iter()
                    .flat_map(|shard| shard.iter())
                    .map(|(key, entry)| (key, &entry.value.0, &entry.value.1, entry.last_used)),
                hashes
                    .iter()
                    .flat_map(|shard| shard.iter())
                    .map(|(key, entry)| (key, &entry.value, entry.last_used)),
            )
        };
        let stamp = write_replacing(&path, &bytes).map_err(|err| {
            // Not saved: the next save tries again.
            self.scan.mark_dirty();
            self.hashes.mark_dirty();
            io_error(format!("cannot write {}", path.display()))(err)
        })?;
        *self.on_disk.lock().unwrap_or_else(|p| p.into_inner()) = Some(stamp);
        crate::fault::point("cache: file replaced");
        self.prune(&path)?;
        crate::fault::point("cache: pruned");
        Ok(())
    }

    /// Sets the cache file's modification time to now (pruning keeps the most recently used).
    fn mark_used(&self, path: &Path) {
        let touched = File::open(path).and_then(|file| {
            file.set_modified(std::time::SystemTime::now())?;
            file.metadata()
        });
        let mut on_disk = self.on_disk.lock().unwrap_or_else(|p| p.into_inner());
        // Still the file this process read: it stays so after the touch.
        if let Ok(metadata) = touched
            && on_disk
                .is_some_and(|stamp| (stamp.dev, stamp.ino) == (metadata.dev(), metadata.ino()))
        {
            *on_disk = Some(FileStamp::of(&metadata));
        }
    }

    /// Removes cache files made with other definitions, and all but the most recently used
    /// files of other fingerprints.
    fn prune(&self, current: &Path) -> Result<(), EngineError> {
        // Writers hold the lock, so a temporary file seen under it was left by a crash.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().contains(".tmp-") {
                    remove_if_present(&entry.path())?;
                }
            }
        }
        let mut others: Vec<(i64, PathBuf)> = Vec::new();
        for file in cache_files(&self.dir)? {
            if file.path == current {
                continue;
            }
            match file.header {
                Ok(header) if header.definitions == self.definitions => {
                    others.push((file.modified_ns, file.path))
                }
                _ => remove_if_present(&file.path)?,
            }
        }
        others.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, path) in others.iter().skip(OTHER_FINGERPRINTS_KEPT) {
            remove_if_present(path)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to a new file renamed over `path`; returns the new file's stamp. No fsync: the
/// caches are derived data, and a file torn by a crash fails its checksum and is discarded with a
/// warning.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<FileStamp> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<FileStamp> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(bytes)?;
        let stamp = FileStamp::of(&file.metadata()?);
        crate::fault::point("cache: new file written");
        std::fs::rename(&temporary, path)?;
        Ok(stamp)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// The file system's id when results on it may be kept in the scan cache: a local disk file
/// system, where every write (also through a shared mapping, once written back) updates the
/// modification and status-change times. tmpfs does not update them for writes through a
/// mapping, and FUSE or network file systems report whatever their server says: never cached.
fn cacheable_volume(file: &File) -> Option<u64> {
    const CACHEABLE: &[i64] = &[
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0xF2F5_2010, // f2fs
        0x2FC1_2FC1, // zfs
        0x794C_7630, // overlayfs (times are the upper or lower file's)
    ];
    // SAFETY: fstatfs fills the zeroed struct for the open descriptor.
    let mut stats: libc::statfs64 = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs64(file.as_raw_fd(), &mut stats) } != 0 {
        return None;
    }
    if !CACHEABLE.contains(&(stats.f_type as i64)) {
        return None;
    }
    // SAFETY: fsid_t is two C ints (8 bytes) with private fields; read it as one u64.
    Some(unsafe { std::mem::transmute_copy::<libc::fsid_t, u64>(&stats.f_fsid) })
}

/// Which devices hold file systems whose results may be cached ([`cacheable_volume`]), asked once
/// per device for the length of one scan (a device number can be reused by another file system
/// later, so this is never kept longer).
#[derive(Default)]
pub(crate) struct Volumes(std::sync::RwLock<Vec<(u64, Option<u64>)>>);

impl Volumes {
    /// The file-system id of `dev` (where `file` is) when results on it may be cached.
    pub(crate) fn cacheable(&self, dev: u64, file: &File) -> Option<u64> {
        let known = self.0.read().unwrap_or_else(|p| p.into_inner());
        if let Some((_, fsid)) = known.iter().find(|(known, _)| *known == dev) {
            return *fsid;
        }
        drop(known);
        let fsid = cacheable_volume(file);
        let mut known = self.0.write().unwrap_or_else(|p| p.into_inner());
        if !known.iter().any(|(known, _)| *known == dev) {
            known.push((dev, fsid));
        }
        fsid
    }
}

/// One cache file in the state dir, with its header (or why it cannot be read).
pub struct CacheFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time in ns (orders saves more finely than the header's seconds).
    modified_ns: i64,
    header: Result<Header, String>,
}

impl CacheFile {
    /// Entries of the scan cache and of the file-hash cache, or why the file is damaged.
    pub fn entries(&self) -> Result<(u64, u64), String> {
        self.header
            .as_ref()
            .map(|header| (header.scan_entries, header.hash_entries))
            .map_err(Clone::clone)
    }

    /// When it was last written (Unix seconds).
    pub fn saved_at(&self) -> Option<i64> {
        self.header.as_ref().ok().map(|header| header.saved_at)
    }
}

/// The result caches of a state dir.
pub struct CacheStatus {
    /// The cache files (each checked whole), most recently saved first.
    pub files: Vec<CacheFile>,
    /// The last scan's use of the caches, if one was recorded.
    pub last_scan: Option<ScanStats>,
}

/// The result caches of a state dir, for `vigil cache status`.
pub fn status(state_dir: &Path) -> Result<CacheStatus, EngineError> {
    let dir = state_dir.join(CACHE_DIR);
    let mut files = cache_files(&dir)?;
    for file in &mut files {
        if file.header.is_ok() {
            let bytes = std::fs::read(&file.path)
                .map_err(io_error(format!("cannot read {}", file.path.display())))?;
            file.header = store::decode(&bytes).map(|(header, _, _)| header);
        }
    }
    files.sort_by_key(|file| std::cmp::Reverse(file.saved_at()));
    let last_scan = std::fs::read(dir.join(LAST_SCAN))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    Ok(CacheStatus { files, last_scan })
}

/// Removes every cache file (under the cache lock, so no save is half-merged); returns how many.
pub fn clear(state_dir: &Path) -> Result<usize, EngineError> {
    let dir = state_dir.join(CACHE_DIR);
    if !dir.exists() {
        return Ok(0);
    }
    let _lock = FileLock::take(&dir.join("lock"), LockMode::Exclusive)?;
    let files = cache_files(&dir)?;
    for file in &files {
        remove_if_present(&file.path)?;
    }
    remove_if_present(&dir.join(LAST_SCAN))?;
    Ok(files.len())
}

/// The `results-*.bin` files of a cache folder with their headers.
fn cache_files(dir: &Path) -> Result<Vec<CacheFile>, EngineError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error(format!("cannot list {}", dir.display()))(err)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(format!("cannot list {}", dir.display())))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("results-") && name.ends_with(".bin")) {
            continue;
        }
        let path = entry.path();
        let stamp = entry.metadata().map(|m| FileStamp::of(&m)).ok();
        let read = || -> Result<Header, String> {
            use std::io::Read;
            let mut file = File::open(&path).map_err(|err| err.to_string())?;
            let mut head = vec![0; store::HEADER_LEN];
            file.read_exact(&mut head)
                .map_err(|_| "truncated".to_string())?;
            store::read_header(&head)
        };
        files.push(CacheFile {
            size: stamp.map_or(0, |stamp| stamp.size),
            modified_ns: stamp.map_or(0, |stamp| stamp.mtime_ns),
            header: read(),
            path,
        });
    }
    Ok(files)
}

/// The maps' hash function: keys are inode numbers and BLAKE3 digests, which local users cannot
/// choose to collide, so a multiply-and-rotate fold (as rustc's FxHasher) with a finalizer
/// replaces SipHash, which costs more than the lookup it serves.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        // The fold leaves the low bits (which pick the bucket) poorly mixed: finish with
        // MurmurHash3's 64-bit finalizer.
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}

/// One shard's map.
type Map<K, V> = HashMap<K, Entry<V>, BuildHasherDefault<KeyHasher>>;

/// A value and when it was last used (Unix seconds), for least-recently-used eviction.
struct Entry<V> {
    value: V,
    last_used: u64,
}

/// A bounded map split into independently locked shards, so workers rarely wait for each other.
struct Shards<K, V> {
    shards: Box<[Mutex<Map<K, V>>]>,
    /// Most entries in all shards together; 0 disables the map.
    maximum: usize,
    /// Whether anything changed since the map was last saved.
    dirty: std::sync::atomic::AtomicBool,
}

/// How a key picks its shard.
trait ShardOf {
    fn shard(&self, count: usize) -> usize;
}

impl ShardOf for ScanKey {
    fn shard(&self, count: usize) -> usize {
        (self.ino as usize ^ self.names as usize) % count
    }
}

impl ShardOf for HashKey {
    fn shard(&self, count: usize) -> usize {
        self.content[0] as usize % count
    }
}

impl<K: Eq + Hash + Copy + ShardOf, V> Shards<K, V> {
    fn new(maximum: u64) -> Self {
        let maximum = usize::try_from(maximum).unwrap_or(usize::MAX);
        // Small caches keep one shard so that their bound is exact.
        let count = if maximum >= 1024 { 16 } else { 1 };
        Self {
            shards: (0..count).map(|_| Mutex::new(Map::default())).collect(),
            maximum,
            dirty: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Makes room for `additional` more entries, spread over the shards.
    fn reserve(&self, additional: usize) {
        let per_shard = additional.min(self.maximum) / self.shards.len();
        for shard in self.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .reserve(per_shard);
        }
    }

    /// Each shard's share of the bound.
    fn per_shard(&self) -> usize {
        self.maximum / self.shards.len()
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, Map<K, V>> {
        self.shards[key.shard(self.shards.len())]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `check`'s answer on the value at `key`; when it answers, marks the entry used (if its
    /// last use is older than [`REFRESH_AFTER_SECONDS`]).
    fn get<R>(&self, key: &K, now: u64, check: impl FnOnce(&V) -> Option<R>) -> Option<R> {
        if self.maximum == 0 {
            return None;
        }
        let mut shard = self.shard(key);
        let entry = shard.get_mut(key)?;
        let answer = check(&entry.value)?;
        if now.saturating_sub(entry.last_used) > REFRESH_AFTER_SECONDS {
            entry.last_used = now;
            self.mark_dirty();
        }
        Some(answer)
    }

    fn mark_dirty(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn mark_dirty_if_over_bound(&self) {
        let len: usize = self
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum();
        if len > self.maximum {
            self.mark_dirty();
        }
    }

    /// Whether anything changed since the last call.
    fn take_dirty(&self) -> bool {
        self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    fn insert(&self, key: K, value: V, now: u64) {
        if self.maximum == 0 {
            return;
        }
        let mut shard = self.shard(&key);
        shard.insert(
            key,
            Entry {
                value,
                last_used: now,
            },
        );
        self.mark_dirty();
        // Evict in batches (an eighth of the share at a time) so eviction costs O(1) per insert.
        let share = self.per_shard();
        if shard.len() > share + share / 8 {
            evict_oldest(&mut shard, share);
        }
    }

    /// Adds a saved entry unless a more recently used one is already there.
    fn merge(&self, key: K, value: V, last_used: u64) {
        if self.maximum == 0 {
            return;
        }
        let mut shard = self.shard(&key);
        if shard
            .get(&key)
            .is_none_or(|entry| entry.last_used < last_used)
        {
            shard.insert(key, Entry { value, last_used });
        }
    }

    /// Evicts down to the bound exactly.
    fn trim(&self) {
        let share = self.per_shard();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            if shard.len() > share {
                evict_oldest(&mut shard, share);
            }
        }
    }

    fn lock_all(&self) -> Vec<std::sync::MutexGuard<'_, Map<K, V>>> {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }
}

/// Keeps the `keep` most recently used entries of `map`.
fn evict_oldest<K: Eq + Hash + Copy, V>(map: &mut Map<K, V>, keep: usize) {
    let mut ages: Vec<(u64, K)> = map.iter().map(|(k, e)| (e.last_used, *k)).collect();
    let evict = ages.len() - keep;
    if keep > 0 {
        ages.select_nth_unstable_by_key(evict - 1, |(used, _)| *used);
    }
    for (_, key) in &ages[..evict] {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> ScanKey {
        ScanKey {
            dev: 1,
            ino,
            names: 0,
        }
    }

    #[test]
    fn bounded_maps_evict_the_least_recently_used() {
        let map: Shards<ScanKey, u32> = Shards::new(4);
        for ino in 0..4 {
            map.insert(key(ino), 0, ino);
        }
        // Using entry 0 a long time later makes it the most recent; the next inserts evict 1
        // and 2 first.
        let later = REFRESH_AFTER_SECONDS + 10;
        assert_eq!(map.get(&key(0), later, |v| Some(*v)), Some(0));
        map.insert(key(4), 0, later + 1);
        map.insert(key(5), 0, later + 2);
        map.trim();
        let kept: Vec<u64> = {
            let shards = map.lock_all();
            let mut kept: Vec<u64> = shards[0].keys().map(|k| k.ino).collect();
            kept.sort();
            kept
        };
        assert_eq!(kept, vec![0, 3, 4, 5]);
    }

    #[test]
    fn recent_uses_are_not_written_again() {
        let map: Shards<ScanKey, u32> = Shards::new(4);
        map.insert(key(1), 0, 100);
        assert!(map.take_dirty(), "an insert changes the map");
        assert_eq!(map.get(&key(1), 200, |v| Some(*v)), Some(0));
        assert!(
            !map.take_dirty(),
            "a use soon after changes nothing to save"
        );
        let later = 100 + REFRESH_AFTER_SECONDS + 1;
        assert_eq!(map.get(&key(1), later, |v| Some(*v)), Some(0));
        assert!(map.take_dirty(), "a use long after is saved");
    }

    #[test]
    fn a_zero_maximum_keeps_nothing() {
        let map: Shards<ScanKey, u32> = Shards::new(0);
        map.insert(key(1), 0, 1);
        assert_eq!(map.get(&key(1), 2, |v| Some(*v)), None);
    }
}
