//! Fault injection for the crash and race tests; compiled only with the `fault-injection`
//! feature, so a release build has no hook an environment variable could reach.
//!
//! * `VIGIL_FAULT_KILL_AT=N`: the process sends itself SIGKILL at the N-th [`point`] it passes
//!   (counting from 1), exactly as a crash or `kill -9` would stop it there.
//! * `VIGIL_FAULT_PAUSE_AT=NAME` with `VIGIL_FAULT_PAUSE_DIR=DIR`: at each [`pause`] named NAME,
//!   creates `DIR/paused` and waits (at most 60 s) until a test creates `DIR/resume`, which it
//!   then removes. A race test swaps files or folders in that window, deterministically.
//! * `VIGIL_FAULT_PANIC=1`: [`crash_point`] panics (the crash-report test).
//! * `VIGIL_FAULT_TRUNCATE_MAPPED=1`: every memory-mapped file is truncated to zero right after
//!   it is mapped, as another process could ([`truncate_mapped`]).
//!
//! Without the feature every function here is empty and the variables are ignored.

use std::fs::File;

/// Marks a point where a crash must leave the state recoverable.
#[inline]
pub(crate) fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    enabled::point(name);
    let _ = name;
}

/// Marks a window between a check and an action that a race test may hold open.
#[inline]
pub(crate) fn pause(name: &str) {
    #[cfg(feature = "fault-injection")]
    enabled::pause(name);
    let _ = name;
}

/// Panics when the tests ask for it (`VIGIL_FAULT_PANIC`), to check crash reports.
#[inline]
pub(crate) fn crash_point() {
    #[cfg(feature = "fault-injection")]
    if std::env::var_os("VIGIL_FAULT_PANIC").is_some() {
        panic!("forced by VIGIL_FAULT_PANIC (a test hook)");
    }
}

/// Truncates a file the engine has just mapped, when the tests ask for it.
#[inline]
pub(crate) fn truncate_mapped(file: &File) {
    #[cfg(feature = "fault-injection")]
    enabled::truncate_mapped(file);
    let _ = file;
}

#[cfg(feature = "fault-injection")]
mod enabled {
    use std::fs::File;
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    static PASSED: AtomicU64 = AtomicU64::new(0);

    fn setting<T: Send + Sync>(
        cell: &'static OnceLock<Option<T>>,
        read: impl FnOnce() -> Option<T>,
    ) -> Option<&'static T> {
        cell.get_or_init(read).as_ref()
    }

    pub(super) fn point(_name: &str) {
        static KILL_AT: OnceLock<Option<u64>> = OnceLock::new();
        let kill_at = setting(&KILL_AT, || {
            std::env::var("VIGIL_FAULT_KILL_AT").ok()?.parse().ok()
        });
        if let Some(kill_at) = kill_at
            && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *kill_at
        {
            // SAFETY: kill and getpid have no preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }

    pub(super) fn pause(name: &str) {
        static PAUSE: OnceLock<Option<(String, PathBuf)>> = OnceLock::new();
        let Some((at, dir)) = setting(&PAUSE, || {
            Some((
                std::env::var("VIGIL_FAULT_PAUSE_AT").ok()?,
                std::env::var_os("VIGIL_FAULT_PAUSE_DIR")?.into(),
            ))
        }) else {
            return;
        };
        if at != name {
            return;
        }
        let resume = dir.join("resume");
        let _ = std::fs::write(dir.join("paused"), name);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !resume.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = std::fs::remove_file(resume);
        let _ = std::fs::remove_file(dir.join("paused"));
    }

    pub(super) fn truncate_mapped(file: &File) {
        static TRUNCATE: OnceLock<Option<()>> = OnceLock::new();
        if setting(&TRUNCATE, || {
            std::env::var_os("VIGIL_FAULT_TRUNCATE_MAPPED").map(|_| ())
        })
        .is_none()
        {
            return;
        }
        use std::os::fd::AsRawFd;
        // Another process truncating the file: open the same inode for writing.
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        if let Ok(writer) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = writer.set_len(0);
        }
    }
}
