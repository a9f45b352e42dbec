//! A thin, safe wrapper over Linux fanotify: a group, its marks, its events and the answers to
//! permission events.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Events on a file being opened (the opener waits for an answer).
pub const OPEN_PERM: u64 = libc::FAN_OPEN_PERM;
/// Events on a file being opened to run (the exec waits for an answer).
pub const OPEN_EXEC_PERM: u64 = libc::FAN_OPEN_EXEC_PERM;
/// A file opened to run (notification only).
pub const OPEN_EXEC: u64 = libc::FAN_OPEN_EXEC;
/// A file written and closed.
pub const CLOSE_WRITE: u64 = libc::FAN_CLOSE_WRITE;
/// The kernel's queue overflowed: events were lost.
pub const QUEUE_OVERFLOW: u64 = libc::FAN_Q_OVERFLOW;
/// An entry was created in a watched folder.
pub const CREATE: u64 = libc::FAN_CREATE;
/// An entry was removed from a watched folder.
pub const DELETE: u64 = libc::FAN_DELETE;
/// An entry was moved out of a watched folder.
pub const MOVED_FROM: u64 = libc::FAN_MOVED_FROM;
/// An entry was moved into a watched folder.
pub const MOVED_TO: u64 = libc::FAN_MOVED_TO;
/// The entry is a folder.
pub const ON_DIR: u64 = libc::FAN_ONDIR;

/// An entry event: something created, removed or moved in a watched folder.
pub struct EntryEvent {
    /// `CREATE`, `DELETE`, `MOVED_FROM`, `MOVED_TO`, with `ON_DIR` for folders.
    pub mask: u64,
    /// The folder's file handle (a `struct file_handle`, as the kernel gave it).
    pub folder: Vec<u8>,
    /// The entry's name in that folder.
    pub name: Vec<u8>,
}

/// An fanotify group.
pub struct Group {
    fd: OwnedFd,
}

/// One event read from a group.
pub struct Event {
    /// What happened (`OPEN_PERM`, `CLOSE_WRITE`... possibly several).
    pub mask: u64,
    /// The file, opened read-only by the kernel for us (none for a queue overflow).
    pub file: Option<OwnedFd>,
    /// The process that caused it.
    pub pid: i32,
}

impl Group {
    /// A new group: with `permissions`, it may receive permission events (the content class);
    /// otherwise notifications only.
    pub fn new(permissions: bool) -> io::Result<Self> {
        let class = if permissions {
            libc::FAN_CLASS_CONTENT
        } else {
            libc::FAN_CLASS_NOTIF
        };
        let flags = class | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
        let event_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32;
        // SAFETY: plain system call with flag arguments.
        let fd = unsafe { libc::fanotify_init(flags, event_flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fanotify_init returned a new descriptor that nothing else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// A notification group reporting entry events (created, removed, moved) by folder handle
    /// and name.
    pub fn new_entries() -> io::Result<Self> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME;
        // SAFETY: plain system call with flag arguments.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_CLOEXEC) as u32) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fanotify_init returned a new descriptor that nothing else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Reads the entry events waiting (a group made by [`Group::new_entries`]).
    pub fn read_entries(&self, buffer: &mut [u8]) -> io::Result<Vec<EntryEvent>> {
        Ok(self
            .read_raw(buffer)?
            .into_iter()
            .filter_map(|(metadata, records)| {
                let (folder, name) = folder_and_name(records)?;
                Some(EntryEvent {
                    mask: metadata.mask,
                    folder,
                    name,
                })
            })
            .collect())
    }

    /// Marks the open folder `dir` and the files directly in it (by its descriptor: no path is
    /// resolved).
    pub fn mark_directory(&self, dir: &File, mask: u64) -> io::Result<()> {
        // SAFETY: a null path makes the kernel mark the open folder itself.
        let result = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR,
                mask | libc::FAN_EVENT_ON_CHILD,
                dir.as_raw_fd(),
                std::ptr::null(),
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Marks the whole mount `path` is the root of.
    pub fn mark_mount(&self, path: &Path, mask: u64) -> io::Result<()> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: the path is NUL-terminated and lives through the call.
        let result = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_MOUNT,
                mask,
                libc::AT_FDCWD,
                path.as_ptr(),
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for events; true when some can be read.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, alive through the call.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
        match ready {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    /// Reads the events waiting (none if there are none), using `buffer` as scratch space.
    pub fn read(&self, buffer: &mut [u8]) -> io::Result<Vec<Event>> {
        self.read_raw(buffer)?
            .into_iter()
            .map(|(metadata, _)| {
                if metadata.vers != libc::FANOTIFY_METADATA_VERSION {
                    return Err(io::Error::other(format!(
                        "fanotify metadata version {} (expected {})",
                        metadata.vers,
                        libc::FANOTIFY_METADATA_VERSION
                    )));
                }
                let file = (metadata.fd >= 0).then(|| {
                    // SAFETY: the kernel opened this descriptor for us; nothing else owns it.
                    unsafe { OwnedFd::from_raw_fd(metadata.fd) }
                });
                Ok(Event {
                    mask: metadata.mask,
                    file,
                    pid: metadata.pid,
                })
            })
            .collect()
    }

    /// Reads what is waiting into `buffer`: each event's metadata with its information records.
    fn read_raw<'b>(
        &self,
        buffer: &'b mut [u8],
    ) -> io::Result<Vec<(libc::fanotify_event_metadata, &'b [u8])>> {
        // SAFETY: the pointer and length describe `buffer`.
        let read = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if read < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(Vec::new()),
                _ => Err(err),
            };
        }
        let bytes = &buffer[..read as usize];
        let header = std::mem::size_of::<libc::fanotify_event_metadata>();
        let mut events = Vec::new();
        let mut offset = 0;
        while offset + header <= bytes.len() {
            // SAFETY: at least `header` bytes remain; read_unaligned copes with any alignment.
            let metadata: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(bytes[offset..].as_ptr().cast()) };
            let length = (metadata.event_len as usize).max(header);
            let end = (offset + length).min(bytes.len());
            let records = &bytes[(offset + metadata.metadata_len as usize).min(end)..end];
            events.push((metadata, records));
            offset += length;
        }
        Ok(events)
    }

    /// Answers a permission event on `file` (the descriptor the event carried).
    pub fn respond(&self, file: RawFd, allow: bool) -> io::Result<()> {
        let response = libc::fanotify_response {
            fd: file,
            response: if allow {
                libc::FAN_ALLOW
            } else {
                libc::FAN_DENY
            },
        };
        let size = std::mem::size_of::<libc::fanotify_response>();
        // SAFETY: the pointer and size describe `response`.
        let written = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&response as *const libc::fanotify_response).cast(),
                size,
            )
        };
        if written != size as isize {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The folder handle and entry name of an event's first directory-fid-and-name record.
fn folder_and_name(info: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    // struct fanotify_event_info_header (4 bytes), __kernel_fsid_t (8), struct file_handle
    // (handle_bytes: u32, handle_type: i32, f_handle[handle_bytes]), then the NUL-terminated name.
    let record_type = *info.first()?;
    if record_type != libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
        return None;
    }
    let record_len = u16::from_ne_bytes([*info.get(2)?, *info.get(3)?]) as usize;
    let record = info.get(..record_len.min(info.len()))?;
    let handle = record.get(12..)?;
    let handle_bytes = u32::from_ne_bytes(handle.get(..4)?.try_into().ok()?) as usize;
    let handle_len = 8 + handle_bytes;
    let folder = handle.get(..handle_len)?.to_vec();
    let rest = handle.get(handle_len..)?;
    let name_end = rest.iter().position(|&b| b == 0)?;
    Some((folder, rest[..name_end].to_vec()))
}

/// Opens the folder a file handle names, on the file system `mount` is on (needs
/// `CAP_DAC_READ_SEARCH`).
pub fn open_folder(mount: &OwnedFd, handle: &[u8]) -> io::Result<OwnedFd> {
    // `struct file_handle` wants 4-byte alignment: copy into u32 words.
    let mut words = vec![0u32; handle.len().div_ceil(4)];
    // SAFETY: `words` holds at least `handle.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            handle.as_ptr(),
            words.as_mut_ptr().cast::<u8>(),
            handle.len(),
        );
    }
    // SAFETY: the buffer holds a whole file_handle as the kernel wrote it.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            words.as_mut_ptr().cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the folder `name` inside the open folder `parent` without following a link (`None` when
/// it is not a folder any more, or is on another file system than `device`).
pub fn open_subfolder(parent: &File, name: &std::ffi::OsStr, device: u64) -> Option<File> {
    let name = CString::new(name.as_bytes()).ok()?;
    // SAFETY: the name is NUL-terminated and lives through the call; the parent is open.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new descriptor that nothing else owns.
    let folder = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let metadata = folder.metadata().ok()?;
    (std::os::unix::fs::MetadataExt::dev(&metadata) == device).then_some(folder)
}
