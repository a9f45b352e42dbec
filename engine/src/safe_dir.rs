//! Folders opened without following symbolic links, and the file operations Vigil makes relative
//! to them.
//!
//! Vigil runs as root over folders that other users can write. A path resolved twice — once to
//! check, once to act — is a race an attacker can win by swapping a folder for a link between the
//! two (`/tmp/x/d` → `/etc`). So every action on a user's file (quarantine's unlink, restore's
//! create and rename, recovery) first opens the file's folder with [`SafeDir::open`], which
//! refuses a symbolic link in *any* component (`openat2` with `RESOLVE_NO_SYMLINKS`, or a walk of
//! `O_NOFOLLOW | O_DIRECTORY` opens on kernels without it), and then names the file only relative
//! to that open folder. Whatever happens to the path afterwards, the folder handle stays the
//! folder that was checked.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags, ResolveFlags, Stat};

/// An open folder reached without following any symbolic link.
#[derive(Debug)]
pub(crate) struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl SafeDir {
    /// Opens the folder at `path` (absolute, or relative to the working folder), refusing a
    /// symbolic link in any component with `ELOOP`.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat2(CWD, path, flags, Mode::empty(), no_links()) {
            Err(rustix::io::Errno::NOSYS) => walk_without_links(path)?,
            other => other?,
        };
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this folder was opened by (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `lstat` of an entry: what the name refers to now, without following a link.
    pub(crate) fn stat(&self, name: &OsStr) -> io::Result<Stat> {
        Ok(rustix::fs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Whether the entry exists (as anything, a dangling link included).
    pub(crate) fn contains(&self, name: &OsStr) -> io::Result<bool> {
        match self.stat(name) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Opens an entry for reading without following a link or blocking on a FIFO.
    pub(crate) fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::openat(
            &self.fd,
            name,
            flags,
            Mode::empty(),
        )?))
    }

    /// Creates a new file (0600) for writing; fails if the name exists, as anything.
    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::openat(
            &self.fd,
            name,
            flags,
            Mode::from_raw_mode(0o600),
        )?))
    }

    /// Removes an entry (not a folder).
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Removes an entry; one that is already gone is not an error.
    pub(crate) fn remove_if_present(&self, name: &OsStr) -> io::Result<()> {
        match self.remove(name) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Renames `from` to `to` inside this folder, replacing `to`.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// Gives the file `from` a second name `to` inside this folder; never replaces `to`.
    pub(crate) fn link(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &self.fd,
            from,
            &self.fd,
            to,
            AtFlags::empty(),
        )?)
    }

    /// Makes the folder's entries durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

/// Splits a path into its folder and final name. A bare name's folder is the working folder;
/// a path ending in `/`, `.` or `..` has no final name.
pub(crate) fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    let name = match path.components().next_back()? {
        Component::Normal(name) => name,
        _ => return None,
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    Some((parent.unwrap_or(Path::new(".")), name))
}

/// Whether `stat` describes the same file as `(dev, ino)`.
pub(crate) fn is_file(stat: &Stat, dev: u64, ino: u64) -> bool {
    stat.st_dev == dev && stat.st_ino == ino
}

fn no_links() -> ResolveFlags {
    ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// For kernels before 5.6: one `O_NOFOLLOW | O_DIRECTORY` open per component, each relative to
/// the folder opened before it.
fn walk_without_links(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = rustix::fs::openat(CWD, start, flags, Mode::empty())?;
    for component in path.components() {
        let name: &OsStr = match component {
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir => OsStr::new(".."),
            Component::Normal(name) => name,
            Component::Prefix(_) => return Err(io::ErrorKind::InvalidInput.into()),
        };
        dir = rustix::fs::openat(dir.as_fd(), name, flags, Mode::empty())?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_anywhere_in_the_path_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real/inner");
        std::fs::create_dir_all(&real).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("link")).unwrap();
        assert!(SafeDir::open(&real).is_ok());
        for through_link in [root.path().join("link"), root.path().join("link/inner")] {
            let err = SafeDir::open(&through_link).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{through_link:?}");
        }
    }

    #[test]
    fn the_fallback_walk_refuses_links_too() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("real/inner")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("link")).unwrap();
        assert!(walk_without_links(&root.path().join("real/inner")).is_ok());
        assert!(walk_without_links(&root.path().join("link/inner")).is_err());
    }

    #[test]
    fn operations_stay_inside_the_opened_folder() {
        let root = tempfile::tempdir().unwrap();
        let dir = SafeDir::open(root.path()).unwrap();
        let name = OsStr::new("a");
        std::io::Write::write_all(&mut dir.create_new(name).unwrap(), b"x").unwrap();
        assert!(dir.create_new(name).is_err(), "create_new never replaces");
        dir.link(name, OsStr::new("b")).unwrap();
        assert!(
            dir.link(name, OsStr::new("b")).is_err(),
            "link never replaces"
        );
        dir.rename(OsStr::new("b"), OsStr::new("c")).unwrap();
        assert!(dir.contains(OsStr::new("c")).unwrap());
        dir.remove(OsStr::new("c")).unwrap();
        dir.remove_if_present(OsStr::new("c")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("l")).unwrap();
        assert!(
            dir.open_file(OsStr::new("l")).is_err(),
            "links are not followed"
        );
        dir.sync().unwrap();
    }

    #[test]
    fn split_names_the_folder_and_the_file() {
        assert_eq!(
            split(Path::new("/a/b")),
            Some((Path::new("/a"), OsStr::new("b")))
        );
        assert_eq!(
            split(Path::new("b")),
            Some((Path::new("."), OsStr::new("b")))
        );
        assert_eq!(split(Path::new("/a/..")), None);
        assert_eq!(split(Path::new("/")), None);
    }
}
