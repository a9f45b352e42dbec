//! Scan objects: what flows through the pipeline once a file has been opened.
//!
//! Discovery yields a path once. From the moment the file is opened, every later stage — reading,
//! detectors, decide, quarantine — works on the [`ScanObject`]: the open handle, its
//! [`FileIdentity`] from one `fstat`, and where it was found. Nothing downstream opens the path
//! again, so a file swapped or a folder replaced by a link after the open cannot redirect an
//! action to another file.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Who a file is, from one `fstat` of its open handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// Device of the file system holding it.
    pub dev: u64,
    /// Inode number on that device.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Last status change, nanoseconds since the Unix epoch (cannot be set back by a user).
    pub ctime_ns: i64,
    /// Last access, nanoseconds since the Unix epoch.
    pub atime_ns: i64,
    /// File type and permission bits, as `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl FileIdentity {
    /// The identity recorded in `metadata`.
    pub fn of(metadata: &Metadata) -> Self {
        let ns = |seconds: i64, nanos: i64| seconds * 1_000_000_000 + nanos;
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
            atime_ns: ns(metadata.atime(), metadata.atime_nsec()),
            mode: metadata.mode(),
            uid: metadata.uid(),
            gid: metadata.gid(),
        }
    }
}

/// One opened file on its way through the pipeline.
#[derive(Debug)]
pub struct ScanObject {
    file: File,
    identity: FileIdentity,
    path: PathBuf,
    /// The wall clock just before the `fstat` that gave `identity`, in ns since the epoch.
    observed_at_ns: i64,
}

/// Why a candidate produced no object or no bytes to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unscannable {
    /// Deliberately not scanned; the reason goes in a `skipped` event.
    Skipped(String),
    /// Could not be scanned; the reason goes in an `error` event.
    Error(String),
}

impl ScanObject {
    /// Opens the file at `path` without following a final link or blocking on a FIFO, and
    /// checks that it is a regular file.
    pub fn open(path: &Path) -> Result<Self, Unscannable> {
        let file = open_without_blocking(path).map_err(|err| open_failure(&err))?;
        Self::from_file(file, path.to_path_buf())
    }

    /// Takes an already open file (for example one a client passed); `path` is where it is said
    /// to be, used for reports, extension-based plugin selection and acting on it.
    pub fn from_file(file: File, path: PathBuf) -> Result<Self, Unscannable> {
        let observed_at_ns = unix_now_ns();
        let metadata = file
            .metadata()
            .map_err(|err| Unscannable::Error(format!("cannot stat: {err}")))?;
        if !metadata.is_file() {
            return Err(Unscannable::Skipped(describe_special(
                &metadata.file_type(),
            )));
        }
        Ok(Self {
            file,
            identity: FileIdentity::of(&metadata),
            path,
            observed_at_ns,
        })
    }

    /// The open handle.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Who the file was when it was opened.
    pub fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    /// Where the file was found.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The wall clock (ns since the epoch) just before the file's identity was taken: any write
    /// after it gets a newer timestamp, once the file system's granularity has passed.
    pub fn observed_at_ns(&self) -> i64 {
        self.observed_at_ns
    }

    /// Whether the file still has the size and times it had when it was opened (a fresh `fstat`
    /// of the handle); false when it was written to, or cannot be checked.
    pub(crate) fn unchanged(&self) -> bool {
        self.file.metadata().is_ok_and(|metadata| {
            let now = FileIdentity::of(&metadata);
            (now.size, now.mtime_ns, now.ctime_ns)
                == (
                    self.identity.size,
                    self.identity.mtime_ns,
                    self.identity.ctime_ns,
                )
        })
    }

    /// Reads the file's first `min(size, limit)` bytes (its size when it was opened) into the
    /// start of `buffer` and returns how many were read: fewer if it shrank since. Positioned
    /// reads leave the handle's offset alone (a caller's file may be shared). The buffer is only
    /// grown, never cleared, so a worker reusing it pays no zeroing per file.
    pub(crate) fn read_into(&self, buffer: &mut Vec<u8>, limit: u64) -> io::Result<usize> {
        let wanted = self.identity.size.min(limit) as usize;
        if buffer.len() < wanted {
            buffer.resize(wanted, 0);
        }
        let mut filled = 0;
        while filled < wanted {
            match self
                .file
                .read_at(&mut buffer[filled..wanted], filled as u64)
            {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(filled)
    }
}

/// The wall clock in nanoseconds since the Unix epoch.
fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

/// Opens read-only with `O_NONBLOCK` (a FIFO swapped in after the walk cannot block us),
/// `O_NOFOLLOW` (a link swapped in is not followed), `O_NOCTTY`, and `O_NOATIME` where permitted
/// (the owner or root), so scanning does not disturb access times that forensics rely on.
pub(crate) fn open_without_blocking(path: &Path) -> io::Result<File> {
    let open = |extra: libc::c_int| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY | extra)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    }
}

fn open_failure(err: &io::Error) -> Unscannable {
    match err.raw_os_error() {
        Some(libc::ENOENT) => Unscannable::Error("vanished before it could be scanned".into()),
        Some(libc::ELOOP) => Unscannable::Skipped("symbolic link (not followed)".into()),
        Some(libc::EACCES) | Some(libc::EPERM) => Unscannable::Error("permission denied".into()),
        _ => Unscannable::Error(format!("cannot open: {err}")),
    }
}

/// Names a non-regular file type for a `skipped` event.
pub(crate) fn describe_special(file_type: &std::fs::FileType) -> String {
    let kind = if file_type.is_fifo() {
        "named pipe (FIFO)"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_symlink() {
        return "symbolic link (not followed)".into();
    } else if file_type.is_dir() {
        "directory"
    } else {
        "unknown file type"
    };
    format!("not a regular file: {kind}")
}

/// A path's file name without its folder (invalid UTF-8 replaced by U+FFFD) and that name's
/// extension in lower case without the dot (empty when it has none): what plugins that want
/// names and the rules' `filename`/`extension` variables see.
pub(crate) fn name_and_extension(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = Path::new(&name)
        .extension()
        .map(|ext| ext.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    (name, extension)
}
