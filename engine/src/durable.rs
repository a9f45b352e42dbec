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
    Ok(random_bytes::<8>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
