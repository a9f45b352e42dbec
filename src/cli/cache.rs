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
            let status = cache::status(&state_dir)?;
            match format {
                Format::Jsonl => print_jsonl(&status),
                Format::Text => print_text(&status),
            }
        }
        CacheCommand::Clear => {
            let removed = cache::clear(&state_dir)?;
            print_line(&format!("Removed {removed} cache files."));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_jsonl(status: &cache::CacheStatus) {
    for file in &status.files {
        let mut record = json!({
            "type": "cache_file",
            "path": vigil_engine::report::path_lossy(&file.path),
            "size": file.size,
        });
        match file.entries() {
            Ok((scan, hashes)) => {
                record["scan_cache_entries"] = json!(scan);
                record["file_hash_cache_entries"] = json!(hashes);
                record["saved_at"] = json!(file.saved_at());
            }
            Err(why) => record["damaged"] = json!(why),
        }
        print_line(&record.to_string());
    }
    if let Some(last) = &status.last_scan {
        let mut record = serde_json::to_value(last).expect("stats serialize");
        record["type"] = json!("last_scan");
        record["hit_rate"] = json!(last.hit_rate());
        print_line(&record.to_string());
    }
}

fn print_text(status: &cache::CacheStatus) {
    if status.files.is_empty() {
        print_line("No result caches yet (they are saved at the end of each scan).");
    }
    for file in &status.files {
        print_line(&shown(&file.path).to_string());
        print_line(&format!("  size on disk: {} bytes", file.size));
        match file.entries() {
            Ok((scan, hashes)) => print_line(&format!(
                "  entries: {scan} in the scan cache, {hashes} in the file-hash cache; saved {}",
                file.saved_at().map_or_else(String::new, format_time)
            )),
            Err(why) => print_line(&format!(
                "  damaged ({}): the next scan discards it",
                untrusted(&why)
            )),
        }
    }
    if let Some(last) = &status.last_scan {
        print_line(&format!(
            "Last scan (ended {}): {} files, hit rate {:.1}% ({} unchanged files, {} known contents)",
            format_time(last.ended_at),
            last.files,
            last.hit_rate(),
            last.cache_hits,
            last.file_hash_hits
        ));
    }
}
