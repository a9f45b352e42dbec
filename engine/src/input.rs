//! File input: hands an opened [`ScanObject`]'s bytes to the detectors, within the size limit.
//!
//! Small files are read into a buffer reused by the worker (faster than mapping: no page-fault and
//! map/unmap cost); larger ones are memory-mapped under the SIGBUS guard of [`crate::sigbus`], so
//! a file truncated under the scan is reported, not a crash. Both read through the object's
//! handle; the path is never opened again.

use memmap2::Mmap;

use crate::object::{ScanObject, Unscannable};
use crate::sigbus;

/// How a worker reads files; one per worker thread, reused for every file.
pub(crate) struct FileReader {
    buffer: Vec<u8>,
    mmap_threshold: u64,
    max_file_size: u64,
}

impl FileReader {
    /// A reader with the given limits (`max_file_size` 0 means none).
    pub(crate) fn new(mmap_threshold: u64, max_file_size: u64) -> Self {
        Self {
            buffer: Vec::new(),
            mmap_threshold,
            max_file_size,
        }
    }

    /// Calls `scan` with the object's bytes and whether they are a private copy (read into the
    /// buffer; `false` for a mapping, which another process writing the file can change under
    /// the scan). Returns the number of bytes scanned and the scan's
    /// result (with `cut_short` set if the file shrank under a mapped scan), or why the file could
    /// not be read.
    pub(crate) fn with_contents<R>(
        &mut self,
        object: &ScanObject,
        scan: impl FnOnce(&[u8], bool) -> R,
    ) -> Result<Contents<R>, Unscannable> {
        let size = object.identity().size;
        if self.max_file_size != 0 && size > self.max_file_size {
            return Err(Unscannable::Skipped(format!(
                "larger than max_file_size ({size} > {} bytes)",
                self.max_file_size
            )));
        }
        if size <= self.mmap_threshold {
            let read = object
                .read_into(&mut self.buffer, size)
                .map_err(|err| Unscannable::Error(format!("cannot read: {err}")))?;
            let bytes = &self.buffer[..read];
            return Ok(Contents {
                bytes: read as u64,
                result: scan(bytes, true),
                cut_short: false,
            });
        }
        // SAFETY: the mapping is read-only and private to this call; a concurrent truncation is
        // handled by the SIGBUS guard around every access.
        let map = unsafe { Mmap::map(object.file()) }
            .map_err(|err| Unscannable::Error(format!("cannot map: {err}")))?;
        crate::fault::truncate_mapped(object.file());
        let (result, cut_short) = sigbus::guarded(&map, || scan(&map, false));
        Ok(Contents {
            bytes: map.len() as u64,
            result,
            cut_short,
        })
    }
}

/// What [`FileReader::with_contents`] read and what the scan of it returned.
pub(crate) struct Contents<R> {
    /// Bytes given to the scan.
    pub(crate) bytes: u64,
    /// The scan's result.
    pub(crate) result: R,
    /// The file shrank while it was mapped: the pages past its new end read as zeros, and the
    /// file is not what was scanned any more.
    pub(crate) cut_short: bool,
}

/// The reason reported for a file that shrank under the scan.
pub(crate) const CUT_SHORT: &str =
    "file shrank while it was being scanned (truncated or rewritten); scan it again";
