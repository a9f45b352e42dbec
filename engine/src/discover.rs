//! Discovery: walks scan roots in parallel and hands regular files to the scan workers.
//!
//! Built on the `ignore` crate's parallel walker (ripgrep's), with all of its ignore-file filters
//! off. Exclusions are applied here, before anything is opened, and an excluded directory is not
//! descended into. Special files are reported as skipped from their directory entry, without being
//! opened, so a FIFO or a device can never block the walk. Symbolic links are not followed unless
//! configured, and then loops are detected and reported.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ignore::{WalkBuilder, WalkState};

use crate::exclusions::Exclusions;
use crate::object::describe_special;
use crate::report::ScanEvent;

/// What to walk and how.
#[derive(Debug, Clone)]
pub struct WalkPlan {
    /// Absolute, normalized roots (files or directories).
    pub roots: Vec<PathBuf>,
    /// Follow symbolic links below the roots.
    pub follow_symlinks: bool,
    /// Do not descend into another file system than the root's.
    pub same_file_system: bool,
    /// Directories never entered (mount points of pseudo file systems in a full scan).
    pub skip_directories: HashSet<PathBuf>,
    /// Walker threads.
    pub threads: usize,
}

/// Walks the plan, handing every regular file that passes the exclusions to `on_file` (on the
/// walker's thread), and reporting skipped and unreadable entries to `report`. Returns when the
/// walk is complete, when `cancelled` says so, or when `on_file` returns false.
pub fn walk(
    plan: &WalkPlan,
    exclusions: &Exclusions,
    report: &(dyn Fn(ScanEvent) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
    on_file: &(dyn Fn(PathBuf) -> bool + Sync),
) {
    let Some((first, rest)) = plan.roots.split_first() else {
        return;
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .standard_filters(false)
        .follow_links(plan.follow_symlinks)
        .same_file_system(plan.same_file_system)
        .threads(plan.threads.max(1));
    builder.build_parallel().run(|| {
        Box::new(move |entry| {
            if cancelled() {
                return WalkState::Quit;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    report(walk_error(err));
                    return WalkState::Continue;
                }
            };
            let path = entry.path();
            let Some(file_type) = entry.file_type() else {
                return WalkState::Continue;
            };
            if file_type.is_dir() {
                if exclusions.excludes_directory(path) || plan.skip_directories.contains(path) {
                    return WalkState::Skip;
                }
            } else if exclusions.excludes_file(path) {
                // Excluded files are neither scanned nor reported.
            } else if file_type.is_file() {
                if !on_file(path.to_path_buf()) {
                    return WalkState::Quit;
                }
            } else {
                report(ScanEvent::Skipped {
                    path: path.to_path_buf(),
                    reason: describe_special(&file_type),
                });
            }
            WalkState::Continue
        })
    });
}

/// Turns a walker error into an `error` event naming the path it concerns.
fn walk_error(err: ignore::Error) -> ScanEvent {
    let mut path = PathBuf::new();
    let mut current = &err;
    loop {
        match current {
            ignore::Error::WithPath { path: p, err } => {
                path = p.clone();
                current = err;
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                current = err;
            }
            ignore::Error::Loop { child, ancestor } => {
                return ScanEvent::Error {
                    path: child.clone(),
                    reason: format!("symbolic link loop back to {}", ancestor.display()),
                };
            }
            ignore::Error::Io(io) => {
                let reason = match io.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".to_string(),
                    Some(libc::ENOENT) => "vanished before it could be scanned".to_string(),
                    _ => io.to_string(),
                };
                return ScanEvent::Error { path, reason };
            }
            other => {
                return ScanEvent::Error {
                    path,
                    reason: other.to_string(),
                };
            }
        }
    }
}

/// Mount points of pseudo file systems (proc, sysfs, devices, cgroups...) below `root`, read from
/// `/proc/self/mountinfo`. A full scan never enters them.
pub fn pseudo_file_system_mounts(root: &Path) -> HashSet<PathBuf> {
    const PSEUDO: &[&str] = &[
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "cgroup",
        "cgroup2",
        "securityfs",
        "debugfs",
        "tracefs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "mqueue",
        "hugetlbfs",
        "autofs",
        "binfmt_misc",
        "efivarfs",
        "selinuxfs",
        "rpc_pipefs",
        "nsfs",
        "ramfs",
    ];
    let mut mounts: HashSet<PathBuf> = ["/proc", "/sys", "/dev"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in text.lines() {
            // Fields: id parent major:minor root mount-point options ... - fstype source options
            let mut halves = line.splitn(2, " - ");
            let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let Some(fs_type) = right.split(' ').next() else {
                continue;
            };
            if PSEUDO.contains(&fs_type) {
                mounts.insert(PathBuf::from(unescape_mount_path(mount_point)));
            }
        }
    }
    mounts.retain(|mount| mount.starts_with(root) && mount != root);
    mounts
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal (`\040`).
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(value) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount_path(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    #[test]
    fn proc_and_sys_are_pseudo() {
        let mounts = pseudo_file_system_mounts(Path::new("/"));
        assert!(mounts.contains(Path::new("/proc")));
        assert!(mounts.contains(Path::new("/sys")));
        assert!(!mounts.contains(Path::new("/")));
    }
}
