//! Scan targets: turns quick, full and custom requests into the roots and walk settings of a plan.

use std::path::{Component, Path, PathBuf};

use crate::config::Config;
use crate::discover::{WalkPlan, pseudo_file_system_mounts};
use crate::error::EngineError;
use crate::exclusions::{Exclusions, normalize};
use crate::report::ScanEvent;

/// The kind of on-demand scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanKind {
    /// The configured high-risk folders (`filesystem_scanner.quick_scan_directories`).
    Quick,
    /// The configured root (`filesystem_scanner.full_scan_directory`), minus pseudo file systems.
    Full,
    /// The files and folders given.
    Custom(Vec<PathBuf>),
}

/// Builds the walk plan for a scan. Paths given by the user must exist (an error otherwise);
/// configured quick-scan folders that do not exist are passed over. Targets that lie inside an
/// exclusion are reported as skipped rather than silently ignored.
pub fn plan(
    kind: &ScanKind,
    config: &Config,
    exclusions: &Exclusions,
    threads: usize,
    report: &dyn Fn(ScanEvent),
) -> Result<WalkPlan, EngineError> {
    let scanner = &config.filesystem_scanner;
    let mut plan = WalkPlan {
        roots: Vec::new(),
        follow_symlinks: scanner.follow_symlinks,
        same_file_system: false,
        skip_directories: Default::default(),
        threads,
    };
    let candidates = match kind {
        ScanKind::Quick => scanner
            .quick_scan_directories
            .iter()
            .flat_map(|pattern| expand_pattern(pattern))
            .collect(),
        ScanKind::Full => {
            let root = normalize(&scanner.full_scan_directory);
            plan.same_file_system = !scanner.full_scan_cross_file_systems;
            plan.skip_directories = pseudo_file_system_mounts(&root);
            vec![root]
        }
        ScanKind::Custom(paths) => paths.clone(),
    };
    for candidate in candidates {
        let metadata =
            std::fs::symlink_metadata(&candidate).map_err(|err| EngineError::Target {
                path: candidate.clone(),
                why: err.to_string(),
            })?;
        // A link named explicitly is followed (as `find -H` does); links met below it are not.
        // Links in the folders above a target are resolved too, now, while the administrator's
        // path is what counts: every later action opens folders without following links, so a
        // root like `/bin/x` (with `/bin -> usr/bin`) must become `/usr/bin/x` here.
        let root = if metadata.file_type().is_symlink() {
            std::fs::canonicalize(&candidate).map_err(|err| EngineError::Target {
                path: candidate.clone(),
                why: format!("symbolic link cannot be resolved: {err}"),
            })?
        } else {
            resolve_folder(&normalize(&candidate))
        };
        let is_directory = std::fs::metadata(&root).is_ok_and(|m| m.is_dir());
        if exclusions.excludes_target(&root, is_directory) {
            report(ScanEvent::Skipped {
                path: root,
                reason: "excluded".into(),
            });
        } else if !plan.roots.contains(&root) {
            plan.roots.push(root);
        }
    }
    Ok(plan)
}

/// `path` with the links in its folder resolved (its last component is kept as it is). For paths
/// the administrator names (scan targets, `restore --to`), resolved once, when they are given.
pub(crate) fn resolve_folder(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|parent| parent.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// Expands `*`, `?` and `[...]` in the components of a configured folder, keeping what exists.
fn expand_pattern(pattern: &Path) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        let is_glob = matches!(component, Component::Normal(_)) && text.contains(['*', '?', '[']);
        if !is_glob {
            for path in &mut current {
                path.push(component);
            }
            continue;
        }
        let Ok(glob) = globset::Glob::new(&text) else {
            return Vec::new();
        };
        let matcher = glob.compile_matcher();
        current = current
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .filter(|entry| matcher.is_match(entry.file_name()))
            .map(|entry| entry.path())
            .collect();
        current.sort();
    }
    current.retain(|path| path.symlink_metadata().is_ok());
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_expand_to_existing_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        for user in ["alice", "bob"] {
            std::fs::create_dir_all(dir.path().join(user).join("Downloads")).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("carol")).unwrap();
        let found = expand_pattern(&dir.path().join("*/Downloads"));
        assert_eq!(
            found,
            vec![
                dir.path().join("alice/Downloads"),
                dir.path().join("bob/Downloads")
            ]
        );
        assert!(expand_pattern(&dir.path().join("nobody")).is_empty());
    }
}
