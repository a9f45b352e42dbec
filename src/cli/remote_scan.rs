//! `vigil scan` through the service: the service renders the output exactly as an in-process
//! scan would, and this side prints it and exits with the code it gives.
//!
//! Administrators ask the service to scan paths. Other users' custom scans open each file here,
//! with the user's own rights, and pass the descriptors (the service never opens a path for
//! them); their quick and full scans run in-process.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::scan::{KindArg, ScanFormat, ScanOptions};
use crate::service::client::Client;
use crate::service::protocol::{OutputFormat, OutputOptions, Reply, Request, ScanTarget};
use crate::service::server::path_text;

/// Runs the scan through the service; `None` when it must run in-process instead (a quick or
/// full scan by a non-administrator, or a path that is not UTF-8).
pub fn scan(mut client: Client, kind: &KindArg, options: &ScanOptions) -> Option<Result<ExitCode>> {
    let output = OutputOptions {
        format: match options.format {
            ScanFormat::Text => OutputFormat::Text,
            ScanFormat::Jsonl => OutputFormat::Jsonl,
            ScanFormat::Sarif => OutputFormat::Sarif,
        },
        verbose: options.verbose,
        print_strings: options.print_strings,
    };
    let (target, paths) = match kind {
        KindArg::Quick => (ScanTarget::Quick, &[][..]),
        KindArg::Full => (ScanTarget::Full, &[][..]),
        KindArg::Custom { paths } => (ScanTarget::Custom, &paths[..]),
    };
    if client.wait_indefinitely().is_err() {
        return None;
    }
    if client.admin {
        let paths: Option<Vec<String>> = paths
            .iter()
            .map(|path| path.to_str().map(str::to_owned))
            .collect();
        let request = Request::Scan {
            kind: target,
            paths: paths?,
            output,
            threads: options.threads,
        };
        return Some(
            client
                .send(&request)
                .and_then(|()| stream_output(&mut client)),
        );
    }
    if target != ScanTarget::Custom {
        return None;
    }
    Some(scan_descriptors(&mut client, paths, output))
}

/// Prints the service's output until it says the scan is done (its exit code) or, with
/// `one_file`, until it says one passed file is done (`None`).
fn print_output(client: &mut Client, one_file: bool) -> Result<Option<ExitCode>> {
    let mut stdout = std::io::stdout();
    loop {
        match client.reply()? {
            Reply::Output { text } => {
                // A closed pipe (`vigil scan ... | head`) ends nothing: the exit code still counts.
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            Reply::FileDone if one_file => return Ok(None),
            Reply::Done { exit } if !one_file => return Ok(Some(ExitCode::from(exit))),
            other => bail!("unexpected answer from the service: {other:?}"),
        }
    }
}

/// Prints the service's output until the scan is done; its exit code.
fn stream_output(client: &mut Client) -> Result<ExitCode> {
    Ok(print_output(client, false)?.expect("a scan ends with its exit code"))
}

/// Walks `paths` with this user's rights and passes each regular file's descriptor.
fn scan_descriptors(
    client: &mut Client,
    paths: &[std::path::PathBuf],
    output: OutputOptions,
) -> Result<ExitCode> {
    // The same message an in-process scan gives for a target that cannot be examined.
    for path in paths {
        if let Err(err) = std::fs::symlink_metadata(path) {
            bail!(
                "scan not started: cannot scan {}: {err}",
                super::shown(path)
            );
        }
    }
    client.send(&Request::ScanDescriptors { output })?;
    for path in paths {
        walk(path, &mut |path, opened| {
            let name = path_text(path);
            match opened {
                Ok(file) => client
                    .send_with_fd(&Request::Descriptor { name, error: None }, file.as_raw_fd())?,
                Err(error) => client.send(&Request::Descriptor {
                    name,
                    error: Some(error),
                })?,
            }
            // Output for the file, then `file_done`: one descriptor in flight at a time.
            print_output(client, true).map(drop)
        })?;
    }
    client.send(&Request::EndOfDescriptors)?;
    stream_output(client)
}

/// A regular file opened for the service, or why it could not be.
type Opened = std::result::Result<File, String>;

/// Calls `each` for every regular file under `path` (links not followed), opened read-only
/// without following a link or blocking, or with why it could not be opened.
fn walk(path: &Path, each: &mut dyn FnMut(&Path, Opened) -> Result<()>) -> Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) => return each(path, Err(format!("cannot stat: {err}"))),
    };
    if metadata.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(err) => return each(path, Err(format!("cannot read folder: {err}"))),
        };
        let mut children: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
        children.sort();
        for child in children {
            walk(&child, each)?;
        }
        return Ok(());
    }
    if !metadata.is_file() {
        return Ok(());
    }
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => format!("cannot open: {err}"),
        });
    each(path, opened)
}
