//! Renders scan results: text for people (with a progress bar on a terminal) or JSON Lines for
//! machines, written as they arrive.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vigil_engine::report::SummaryRecord;
use vigil_engine::{ScanEvent, ScanSink, ScanSummary};

use super::{shown, untrusted, untrusted_bytes};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Jsonl,
}

/// A sink that prints each event as it comes.
pub struct Printer {
    format: Format,
    verbose: bool,
    /// Text output lists each YARA detection's pattern matches (`--print-strings`).
    print_strings: bool,
    out: Mutex<Box<dyn Write + Send>>,
    progress: Option<ProgressBar>,
    files: AtomicU64,
}

impl Printer {
    /// A printer; the progress bar is shown only for text output on a terminal.
    pub fn new(format: Format, verbose: bool, print_strings: bool) -> Self {
        let progress = (format == Format::Text && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed} {bytes} scanned ({binary_bytes_per_sec}) {wide_msg}",
                )
                .expect("the template is valid"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            format,
            verbose,
            print_strings,
            out: Mutex::new(Box::new(std::io::stdout())),
            progress,
            files: AtomicU64::new(0),
        }
    }

    /// A printer writing to `out` (the service's reply stream), with no progress bar. Each line
    /// is written and flushed on its own.
    pub fn to_writer(
        format: Format,
        verbose: bool,
        print_strings: bool,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            format,
            verbose,
            print_strings,
            out: Mutex::new(out),
            progress: None,
            files: AtomicU64::new(0),
        }
    }

    fn write(&self, line: &str) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut write = || {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match &self.progress {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Prints the totals and clears the progress bar.
    fn print_summary(&self, summary: &ScanSummary) {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        match self.format {
            Format::Jsonl => {
                let record = SummaryRecord {
                    kind: "summary",
                    summary,
                };
                self.write(&serde_json::to_string(&record).expect("summaries serialize"));
            }
            Format::Text => {
                let seconds = summary.duration_ms as f64 / 1000.0;
                let megabytes = summary.bytes_scanned as f64 / 1_048_576.0;
                let hits = summary.cache_hits + summary.file_hash_hits;
                let cached = if hits > 0 {
                    format!(" ({hits} results from the caches)")
                } else {
                    String::new()
                };
                self.write(&format!(
                    "Scanned {} files{cached} ({megabytes:.1} MiB) in {seconds:.2} s: {} threats in {} files, {} quarantined, {} allowed, {} errors, {} skipped",
                    summary.files_scanned,
                    summary.detections,
                    summary.infected_files,
                    summary.quarantined,
                    summary.allowed,
                    summary.errors,
                    summary.skipped
                ));
                if summary.members_scanned > 0 || summary.limits > 0 {
                    self.write(&format!(
                        "{} archive members scanned, {} limits reached",
                        summary.members_scanned, summary.limits
                    ));
                }
                if summary.plugin_faults > 0 {
                    self.write(&format!(
                        "{} plugin calls failed (plugin_fault lines above)",
                        summary.plugin_faults
                    ));
                }
            }
        }
    }
}

impl ScanSink for Printer {
    fn finish(&self, summary: &ScanSummary) {
        self.print_summary(summary);
    }

    fn event(&self, event: &ScanEvent) {
        match self.format {
            Format::Jsonl => self.write(&serde_json::to_string(event).expect("events serialize")),
            Format::Text => match event {
                ScanEvent::Detection { path, finding, .. } => {
                    let at = finding
                        .offset
                        .map(|offset| format!(" at offset {offset}"))
                        .unwrap_or_default();
                    let mut text = format!(
                        "DETECTED {}: {} [{}] (rule {}){at}",
                        with_member(path, &finding.member),
                        untrusted(&finding.threat),
                        untrusted(&finding.severity),
                        untrusted(&finding.rule)
                    );
                    if let Some(details) = finding.details.as_ref().filter(|_| self.print_strings) {
                        for found in &details.matches {
                            text.push_str(&format!(
                                "\n    {} at offset {} ({} bytes)",
                                untrusted(&found.identifier),
                                found.offset,
                                found.length
                            ));
                        }
                        if details.more_matches > 0 {
                            text.push_str(&format!(
                                "\n    and {} more matches",
                                details.more_matches
                            ));
                        }
                    }
                    self.write(&text)
                }
                ScanEvent::Error { path, reason } => {
                    self.write(&format!("ERROR    {}: {}", shown(path), untrusted(reason)))
                }
                ScanEvent::Skipped { path, reason } if self.verbose => {
                    self.write(&format!("SKIPPED  {}: {}", shown(path), untrusted(reason)))
                }
                ScanEvent::Skipped { .. } => {}
                ScanEvent::Allowed {
                    path,
                    finding,
                    reason,
                } if self.verbose => self.write(&format!(
                    "ALLOWED  {}: {} ({})",
                    shown(path),
                    untrusted(&finding.threat),
                    untrusted(reason)
                )),
                ScanEvent::Allowed { .. } => {}
                ScanEvent::Quarantined { path, id } => {
                    self.write(&format!("QUARANTINED {} as {id}", shown(path)))
                }
                ScanEvent::PluginFault {
                    path,
                    member,
                    plugin,
                    reason,
                } => self.write(&format!(
                    "PLUGIN FAULT {} on {}: {}",
                    untrusted(plugin),
                    with_member(path, member),
                    untrusted(reason)
                )),
                ScanEvent::PluginDisabled { plugin, reason, .. } => self.write(&format!(
                    "PLUGIN DISABLED {}: {}",
                    untrusted(plugin),
                    untrusted(reason)
                )),
                ScanEvent::Limit {
                    path,
                    member,
                    limit,
                    key,
                    reason,
                } => self.write(&format!(
                    "LIMIT    {}: {limit}{}: {}",
                    with_member(path, member),
                    key.map(|key| format!(" ({key})")).unwrap_or_default(),
                    untrusted(reason)
                )),
            },
        }
    }

    fn file_scanned(&self, path: &Path, bytes: u64) {
        let Some(bar) = &self.progress else { return };
        bar.inc(bytes);
        let files = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        // Formatting a message per file would cost more than small files take to scan.
        if files % 32 == 1 {
            bar.set_message(format!("{files} files  {}", shown(path)));
        }
    }
}

/// A file, and the member inside it when there is one: `path!outer!inner`, every name shown as
/// untrusted text with `!` escaped as `\!` (a backslash in a name shows doubled), so the
/// rendering cannot be read two ways.
fn with_member(path: &Path, member: &[Vec<u8>]) -> String {
    if member.is_empty() {
        return shown(path).to_string();
    }
    let escape = |text: String| text.replace('!', "\\!");
    let mut out = escape(shown(path).to_string());
    for name in member {
        out.push('!');
        out.push_str(&escape(untrusted_bytes(name).to_string()));
    }
    out
}
