//! File input: opens a candidate without ever blocking or following a link, checks it is a regular
//! file within the size limit, and hands its bytes to the detectors.
//!
//! Small files are read into a buffer reused by the worker (faster than mapping: no page-fault and
//! map/unmap cost, see FIELD-NOTES); larger ones are memory-mapped under the SIGBUS guard of
//! [`crate::sigbus`], so a file truncated under the scan is reported, not a crash.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use memmap2::Mmap;

use crate::sigbus;

/// Why a candidate produced no bytes to scan.
#[derive(Debug)]
pub enum Unscannable {
    /// Deliberately not scanned; the reason goes in a `skipped` event.
    Skipped(String),
    /// Could not be scanned; the reason goes in an `error` event.
    Error(String),
}

/// How a worker reads files; one per worker thread, reused for every file.
pub struct FileReader {
    buffer: Vec<u8>,
    mmap_threshold: u64,
    max_file_size: u64,
    truncate_mapped_for_test: bool,
}

impl FileReader {
    /// A reader with the given limits (`max_file_size` 0 means none).
    pub fn new(mmap_threshold: u64, max_file_size: u64, truncate_mapped_for_test: bool) -> Self {
        Self {
            buffer: Vec::new(),
            mmap_threshold,
            max_file_size,
            truncate_mapped_for_test,
        }
    }

    /// Opens `path` and calls `scan` with its bytes. Returns the number of bytes scanned and the
    /// scan's result, or why the file could not be scanned.
    pub fn with_contents<R>(
        &mut self,
        path: &Path,
        scan: impl FnOnce(&[u8]) -> R,
    ) -> Result<(u64, R), Unscannable> {
        let file = open_without_blocking(path).map_err(|err| open_failure(&err))?;
        let metadata = file
            .metadata()
            .map_err(|err| Unscannable::Error(format!("cannot stat: {err}")))?;
        if !metadata.is_file() {
            return Err(Unscannable::Skipped(describe_special(
                &metadata.file_type(),
            )));
        }
        let size = metadata.len();
        if self.max_file_size != 0 && size > self.max_file_size {
            return Err(Unscannable::Skipped(format!(
                "larger than max_file_size ({size} > {} bytes)",
                self.max_file_size
            )));
        }
        if size <= self.mmap_threshold {
            self.read_into_buffer(file, size)?;
            let bytes = &self.buffer[..];
            return Ok((bytes.len() as u64, scan(bytes)));
        }
        // SAFETY: the mapping is read-only and private to this call; a concurrent truncation is
        // handled by the SIGBUS guard around every access.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|err| Unscannable::Error(format!("cannot map: {err}")))?;
        if self.truncate_mapped_for_test {
            truncate_for_test(path);
        }
        let (result, cut_short) = sigbus::guarded(&map, || scan(&map));
        if cut_short {
            return Err(Unscannable::Error(
                "file shrank while it was being scanned (truncated or rewritten); scan it again"
                    .into(),
            ));
        }
        Ok((map.len() as u64, result))
    }

    /// Reads the whole file (never more than the limit, even if it grew since it was checked).
    fn read_into_buffer(&mut self, file: File, size: u64) -> Result<(), Unscannable> {
        self.buffer.clear();
        let cap = if self.max_file_size == 0 {
            u64::MAX
        } else {
            self.max_file_size
        };
        self.buffer.reserve(size as usize);
        file.take(cap)
            .read_to_end(&mut self.buffer)
            .map_err(|err| Unscannable::Error(format!("cannot read: {err}")))?;
        Ok(())
    }
}

/// Opens read-only with `O_NONBLOCK` (a FIFO swapped in after the walk cannot block us),
/// `O_NOFOLLOW` (a link swapped in is not followed), `O_NOCTTY`, and `O_NOATIME` where permitted
/// (the owner or root), so scanning does not disturb access times that forensics rely on.
pub fn open_without_blocking(path: &Path) -> io::Result<File> {
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
pub fn describe_special(file_type: &std::fs::FileType) -> String {
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

/// Fault injection for the tests (`VIGIL_FAULT_TRUNCATE_MAPPED=1`): another process truncating a
/// file right after we mapped it.
fn truncate_for_test(path: &Path) {
    if let Ok(file) = OpenOptions::new().write(true).open(path) {
        let _ = file.set_len(0);
    }
}
