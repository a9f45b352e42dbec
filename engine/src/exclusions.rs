//! Exclusions: paths, directories, extensions and file-name globs that are never scanned.
//!
//! They are applied by the walker before anything is opened, and an excluded directory is not
//! descended into at all.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::config::ExclusionConfig;
use crate::error::EngineError;

/// The compiled form of every exclusion in force for a scan.
#[derive(Debug, Clone)]
pub struct Exclusions {
    files: HashSet<PathBuf>,
    directories: HashSet<PathBuf>,
    /// Extensions without the dot; few, so a case-insensitive scan beats lower-casing (and
    /// allocating) for every file.
    extensions: Vec<String>,
    names: GlobSet,
}

impl Exclusions {
    /// Compiles exclusion entries (from the configuration and the state dir alike).
    pub fn new<'a>(
        entries: impl IntoIterator<Item = &'a ExclusionConfig>,
    ) -> Result<Self, EngineError> {
        let mut files = HashSet::new();
        let mut directories = HashSet::new();
        let mut extensions = Vec::new();
        let mut names = GlobSetBuilder::new();
        for entry in entries {
            entry.validate().map_err(EngineError::Exclusion)?;
            if let Some(path) = &entry.path {
                let path = normalize(path);
                if entry.is_directory {
                    directories.insert(path);
                } else {
                    files.insert(path);
                }
            } else if let Some(extension) = &entry.extension {
                extensions.push(bare_extension(extension).to_string());
            } else if let Some(name) = &entry.name {
                let glob = GlobBuilder::new(name)
                    .literal_separator(true)
                    .build()
                    .map_err(|err| EngineError::Exclusion(format!("name {name:?}: {err}")))?;
                names.add(glob);
            }
        }
        let names = names
            .build()
            .map_err(|err| EngineError::Exclusion(err.to_string()))?;
        Ok(Self {
            files,
            directories,
            extensions,
            names,
        })
    }

    /// Whether the walker must not descend into this directory.
    pub fn excludes_directory(&self, path: &Path) -> bool {
        self.directories.contains(path)
    }

    /// Whether this file is excluded by its path, extension or name. Directory exclusions are
    /// applied by the walker (and by [`Exclusions::excludes_target`] for scan roots).
    pub fn excludes_file(&self, path: &Path) -> bool {
        if self.files.contains(path) {
            return true;
        }
        if !self.extensions.is_empty()
            && let Some(extension) = path.extension().and_then(OsStr::to_str)
            && self
                .extensions
                .iter()
                .any(|excluded| excluded.eq_ignore_ascii_case(extension))
        {
            return true;
        }
        !self.names.is_empty()
            && path
                .file_name()
                .is_some_and(|name| self.names.is_match(name))
    }

    /// Whether a scan root lies inside an excluded directory or is itself excluded.
    pub fn excludes_target(&self, path: &Path, is_directory: bool) -> bool {
        if path
            .ancestors()
            .any(|ancestor| self.directories.contains(ancestor))
        {
            return true;
        }
        !is_directory && self.excludes_file(path)
    }
}

/// An extension as the user wrote it, without a leading dot.
pub fn bare_extension(extension: &str) -> &str {
    extension.strip_prefix('.').unwrap_or(extension)
}

/// Makes a path absolute and removes `.`, `..` and trailing slashes without touching the file
/// system (symbolic links are not resolved), so paths compare as the walker produces them.
pub fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exclusion(
        path: Option<&str>,
        dir: bool,
        ext: Option<&str>,
        name: Option<&str>,
    ) -> ExclusionConfig {
        ExclusionConfig {
            path: path.map(PathBuf::from),
            is_directory: dir,
            extension: ext.map(String::from),
            name: name.map(String::from),
        }
    }

    #[test]
    fn each_kind_matches_what_it_names_and_nothing_else() {
        let set = Exclusions::new(&[
            exclusion(Some("/srv/data/"), true, None, None),
            exclusion(Some("/etc/./passwd"), false, None, None),
            exclusion(None, false, Some(".ISO"), None),
            exclusion(None, false, None, Some("*.log")),
        ])
        .unwrap();
        assert!(set.excludes_directory(Path::new("/srv/data")));
        assert!(!set.excludes_directory(Path::new("/srv")));
        assert!(set.excludes_file(Path::new("/etc/passwd")));
        assert!(!set.excludes_file(Path::new("/etc/passwd2")));
        assert!(set.excludes_file(Path::new("/a/b.iso")));
        assert!(set.excludes_file(Path::new("/a/b.Iso")));
        assert!(!set.excludes_file(Path::new("/a/iso")));
        assert!(set.excludes_file(Path::new("/a/x.log")));
        assert!(!set.excludes_file(Path::new("/a.log/x")));
        assert!(set.excludes_target(Path::new("/srv/data/deep/file"), false));
        assert!(!set.excludes_target(Path::new("/srv/other"), true));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
    }
}
