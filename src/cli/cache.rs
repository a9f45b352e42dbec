//! `vigil cache status|clear`: the result caches in the state directory.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use vigil_engine::cache;

use super::output::Format;
use super::{Context, format_time, print_line, shown, untrusted};

/// `vigil cache ...`
#[derive(Subcommand)]
pub enum CacheCommand {
    /// Entries, size on disk and the last scan's hit rate of each cache file (one per engine
    /// configuration), most recently saved first.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Remove every cache file: the next scan reads and matches every file.
    Clear,
}

/// Runs a `cache` command.
pub fn run(context: &Context, command: CacheCommand) -> Result<ExitCode> {
    let state_dir = context.state_dir();
    match command {
        CacheCommand::Status { format } => {
            let files = cache::status(&state_dir)?;
            if files.is_empty() && format == Format::Text {
                print_line("No result caches yet (they are saved at the end of each scan).");
            }
            for file in files {
                let entries = file.entries();
                let last_scan = file.last_scan();
                match format {
                    Format::Jsonl => {
                        let mut record = json!({
                            "type": "cache",
                            "path": vigil_engine::report::path_lossy(&file.path),
                            "size": file.size,
                        });
                        match &entries {
                            Ok((scan, hashes)) => {
                                record["scan_cache_entries"] = json!(scan);
                                record["file_hash_cache_entries"] = json!(hashes);
                            }
                            Err(why) => record["damaged"] = json!(why),
                        }
                        if let Some((saved_at, stats)) = last_scan {
                            record["saved_at"] = json!(saved_at);
                            record["last_scan"] = json!({
                                "files": stats.files,
                                "cache_hits": stats.scan_hits,
                                "file_hash_hits": stats.hash_hits,
                            });
                        }
                        print_line(&record.to_string());
                    }
                    Format::Text => {
                        print_line(&shown(&file.path).to_string());
                        print_line(&format!("  size on disk: {} bytes", file.size));
                        match entries {
                            Ok((scan, hashes)) => print_line(&format!(
                                "  entries: {scan} in the scan cache, {hashes} in the file-hash cache"
                            )),
                            Err(why) => print_line(&format!(
                                "  damaged ({}): the next scan discards it",
                                untrusted(&why)
                            )),
                        }
                        if let Some((saved_at, stats)) = last_scan {
                            let hits = stats.scan_hits + stats.hash_hits;
                            let rate = if stats.files == 0 {
                                0.0
                            } else {
                                100.0 * hits as f64 / stats.files as f64
                            };
                            print_line(&format!(
                                "  last scan (saved {}): {} files, hit rate {rate:.1}% ({} unchanged files, {} known contents)",
                                format_time(saved_at),
                                stats.files,
                                stats.scan_hits,
                                stats.hash_hits
                            ));
                        }
                    }
                }
            }
        }
        CacheCommand::Clear => {
            let removed = cache::clear(&state_dir)?;
            print_line(&format!("Removed {removed} cache files."));
        }
    }
    Ok(ExitCode::SUCCESS)
}
