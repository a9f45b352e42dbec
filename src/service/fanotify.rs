//! A thin, safe wrapper over Linux fanotify: a group, its marks, its events and the answers to
//! permission events.

use std::ffi::CString;
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

    /// Marks the whole mount `path` is the root of.
    pub fn mark_mount(&self, path: &Path, mask: u64) -> io::Result<()> {
        self.mark(path, libc::FAN_MARK_ADD | libc::FAN_MARK_MOUNT, mask)
    }

    /// Marks the folder `path` and the files directly in it (not following a link).
    pub fn mark_directory(&self, path: &Path, mask: u64) -> io::Result<()> {
        self.mark(
            path,
            libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR | libc::FAN_MARK_DONT_FOLLOW,
            mask | libc::FAN_EVENT_ON_CHILD,
        )
    }

    fn mark(&self, path: &Path, flags: u32, mask: u64) -> io::Result<()> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: the path is NUL-terminated and lives through the call.
        let result = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                flags,
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
            events.push(Event {
                mask: metadata.mask,
                file,
                pid: metadata.pid,
            });
            offset += (metadata.event_len as usize).max(header);
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
