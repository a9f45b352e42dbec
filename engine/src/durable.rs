//! Small helpers for crash-safe file-system changes: write new, fsync, rename, fsync the folder.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::EngineError;

/// Wraps an I/O error with what was being done.
pub fn io_error(context: String) -> impl FnOnce(io::Error) -> EngineError {
    move |cause| EngineError::Io { context, cause }
}

/// Creates a new file (0600), refusing to follow a link or replace anything.
pub fn create_exclusive(path: &Path) -> Result<File, EngineError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_error(format!("cannot create {}", path.display())))
}

/// Removes a file; one that is already gone is not an error.
pub fn remove_if_present(path: &Path) -> Result<(), EngineError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot remove {}", path.display()))(err))
        }
        _ => Ok(()),
    }
}

/// Makes a directory's entries (a rename, a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(format!(
            "cannot fsync directory {}",
            dir.display()
        )))
}

/// Bytes from the kernel's random generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], EngineError> {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled part of `bytes`.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(io_error("getrandom".into())(err));
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(bytes)
}

/// A random 16-hex-digit identifier.
pub fn random_id() -> Result<String, EngineError> {
    Ok(vigil_drop::hex(&random_bytes::<8>()?))
}

/// An advisory lock (`flock`) on a file, held until dropped. The kernel releases it when the
/// process dies, so a crashed holder never leaves it taken.
pub struct FileLock {
    _file: File,
}

/// How to take a [`FileLock`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Shared with other shared holders.
    Shared,
    /// Exclusive, waiting for other holders.
    Exclusive,
    /// Exclusive if nobody else holds the lock, else no lock.
    TryExclusive,
}

impl FileLock {
    /// Takes the lock on `path` (created if needed); `None` only for a `TryExclusive` that
    /// found the lock held.
    pub fn take(path: &Path, mode: LockMode) -> Result<Option<Self>, EngineError> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_error(format!("cannot open lock {}", path.display())))?;
        let operation = match mode {
            LockMode::Shared => libc::LOCK_SH,
            LockMode::Exclusive => libc::LOCK_EX,
            LockMode::TryExclusive => libc::LOCK_EX | libc::LOCK_NB,
        };
        loop {
            // SAFETY: the descriptor belongs to `file`, open for the duration of the call.
            if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
                return Ok(Some(Self { _file: file }));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if mode == LockMode::TryExclusive => return Ok(None),
                _ => return Err(io_error(format!("cannot lock {}", path.display()))(err)),
            }
        }
    }
}
