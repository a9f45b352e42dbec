//! Obfuscated scripts: the tricks droppers use to hide what they run from signatures.
//!
//! Three patterns, each reported once per file, only when the script also executes text as code
//! (so data that merely looks encoded is not flagged):
//! Obfuscation says that a script hides what it runs, not that what it runs is malicious (packed
//! JavaScript bundles and licence checkers do it too), so no finding here is rated high: the
//! default severity settings report them without quarantining.
//!
//! - `Obfuscated:Script/EncodedExec` (medium): a long base64 or hex blob, or a run of `\xNN`
//!   escapes, near an execution sink (`eval(atob(...))`, `iex ... FromBase64String`,
//!   `-EncodedCommand`, `base64 -d | sh`, `exec(b64decode(...))`).
//! - `Obfuscated:Script/CharCodes` (medium): code built from character codes
//!   (`String.fromCharCode(118,97,...)`, `[char]105+[char]101...`, `Chr(67) & Chr(114)...`).
//! - `Obfuscated:Script/StringSplitting` (medium): one line gluing together dozens of tiny string
//!   pieces (`'Ne'+'w-O'+'bj'+...`), a classic way to hide keywords.

use vigil_sdk::bytes::Patterns;
use vigil_sdk::{Descriptor, Finding, InputSize, Magic, Plugin, ScanInput, Severity};

/// Bytes of a script the plugin reads (droppers are small; minified libraries can be large).
const PREFIX: u32 = 1024 * 1024;
/// Shortest base64 or hex blob considered an encoded payload.
const MIN_BLOB: usize = 200;
/// Fewest `\xNN` escapes in a row considered an encoded payload.
const MIN_ESCAPES: usize = 64;
/// How far from a blob a sink may be to count as executing it.
const SINK_WINDOW: usize = 2048;
/// Fewest character codes that make a string built from codes.
const MIN_CHAR_CODES: usize = 24;
/// Fewest tiny string pieces glued together on one line.
const MIN_PIECES: usize = 30;

/// Where text gets executed as code (lower case). Decoders alone (`atob`, `base64 -d`) are not
/// sinks: decoding an embedded image is normal, running decoded text is not.
const SINKS: &[&str] = &[
    "eval(",
    "eval (",
    "eval \"",
    "eval $(",
    "new function(",
    "execscript(",
    "settimeout(\"",
    "iex ",
    "iex(",
    "| iex",
    "|iex",
    "invoke-expression",
    "[scriptblock]::create(",
    "-encodedcommand",
    " -enc ",
    "powershell",
    "pwsh",
    "| sh",
    "|sh",
    "| bash",
    "|bash",
    "sh -c",
    "bash -c",
    "execute(",
    "executeglobal(",
    "exec(",
    "system(",
    "wscript.shell",
    "shell.application",
];

struct ObfuscatedScript;

impl Plugin for ObfuscatedScript {
    fn describe() -> Descriptor {
        let extensions = [
            "js", "mjs", "cjs", "jse", "vbs", "vbe", "ps1", "psm1", "psd1", "sh", "bash", "zsh",
            "ksh", "hta", "wsf", "bat", "cmd", "py", "pl", "php",
        ];
        Descriptor {
            name: "obfuscated-script".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Obfuscated scripts: encoded payloads fed to eval/exec, char-code strings, split strings".into(),
            magic: vec![Magic::at(0, b"#!")],
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
            min_size: 32,
            input: InputSize::Prefix(PREFIX),
            ..Descriptor::default()
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        // Every search below ignores ASCII case itself: no lower-cased copy of the input.
        let text = &input.data[..];
        let sinks = sink_offsets(text);
        if sinks.is_empty() {
            return Vec::new();
        }
        let near_sink = |at: usize, len: usize| {
            sinks
                .iter()
                .any(|&s| s + SINK_WINDOW >= at && s <= at + len + SINK_WINDOW)
        };
        let mut findings = Vec::new();
        if let Some((at, len, kind)) = blobs(text).find(|&(at, len, _)| near_sink(at, len)) {
            findings.push(
                Finding::new(
                    "Obfuscated:Script/EncodedExec",
                    Severity::Medium,
                    format!("a {len}-byte {kind} payload is decoded or executed by the script"),
                )
                .at(at),
            );
        }
        if let Some(at) = char_codes(text) {
            findings.push(
                Finding::new(
                    "Obfuscated:Script/CharCodes",
                    Severity::Medium,
                    "code is assembled from character codes",
                )
                .at(at),
            );
        }
        if let Some((at, pieces)) = split_strings(text) {
            findings.push(
                Finding::new(
                    "Obfuscated:Script/StringSplitting",
                    Severity::Medium,
                    format!("one line joins {pieces} tiny string pieces"),
                )
                .at(at),
            );
        }
        findings
    }
}

/// Offsets of every sink in the text (any case), in order: one pass for all of them.
fn sink_offsets(text: &[u8]) -> Vec<usize> {
    Patterns::ignore_ascii_case(SINKS)
        .find_iter(text)
        .map(|found| found.offset)
        .collect()
}

/// Long encoded runs: (offset, length, kind) of base64/hex blobs and `\xNN` escape runs.
fn blobs(text: &[u8]) -> impl Iterator<Item = (usize, usize, &'static str)> + '_ {
    let base64 = runs(text, |b| {
        b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
    })
    .filter(|&(_, len)| len >= MIN_BLOB)
    .map(|(at, len)| {
        let hex = text[at..at + len].iter().all(u8::is_ascii_hexdigit);
        (at, len, if hex { "hex" } else { "base64" })
    });
    let escapes = escape_runs(text)
        .filter(|&(_, count)| count >= MIN_ESCAPES)
        .map(|(at, count)| (at, count * 4, "\\x-escaped"));
    base64.chain(escapes)
}

/// Maximal runs of bytes for which `member` holds: (offset, length).
fn runs<'a>(
    text: &'a [u8],
    member: impl Fn(u8) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at + text.get(at..)?.iter().position(|&b| member(b))?;
        let len = text[start..].iter().take_while(|&&b| member(b)).count();
        at = start + len;
        Some((start, len))
    })
}

/// Runs of `\xNN` escapes: (offset, number of escapes).
fn escape_runs(text: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let is_escape = |at: usize| {
        text.get(at..at + 4).is_some_and(|e| {
            e[0] == b'\\'
                && e[1].eq_ignore_ascii_case(&b'x')
                && e[2].is_ascii_hexdigit()
                && e[3].is_ascii_hexdigit()
        })
    };
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = vigil_sdk::bytes::find_from(text, b"\\", at)?;
        let mut end = start;
        while is_escape(end) {
            end += 4;
        }
        at = if end == start { start + 1 } else { end };
        Some((start, (end - start) / 4))
    })
}

/// Where code is built from at least [`MIN_CHAR_CODES`] character codes.
fn char_codes(text: &[u8]) -> Option<usize> {
    const FROM_CHAR_CODE: &str = "fromcharcode(";
    // [char]105+[char]101... (PowerShell) and Chr(67) & Chr(114)... (VBScript): counted per
    // line and per marker; String.fromCharCode(118, 97, 114, ...) by its arguments. One pass.
    let markers = Patterns::ignore_ascii_case([FROM_CHAR_CODE, "[char]", "chr(", "chrw("]);
    let (mut scanned, mut line) = (0, 0); // how far newlines are counted, and how many
    let mut counts = [(usize::MAX, 0usize, 0usize); 4]; // per marker: line, count, first offset
    for found in markers.find_iter(text) {
        if found.pattern == 0 {
            let args = &text[found.offset + FROM_CHAR_CODE.len()..];
            let end = args.iter().position(|&b| b == b')').unwrap_or(args.len());
            let numbers = args[..end]
                .split(|&b| b == b',')
                .filter(|n| {
                    let n = n.trim_ascii();
                    !n.is_empty() && n.iter().all(u8::is_ascii_digit)
                })
                .count();
            if numbers >= MIN_CHAR_CODES {
                return Some(found.offset);
            }
            continue;
        }
        line += text[scanned..found.offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        scanned = found.offset;
        let count = &mut counts[found.pattern];
        if count.0 != line {
            *count = (line, 0, found.offset);
        }
        count.1 += 1;
        if count.1 >= MIN_CHAR_CODES {
            return Some(count.2);
        }
    }
    None
}

/// A line joining at least [`MIN_PIECES`] string pieces of at most four characters:
/// (offset of the line, pieces).
fn split_strings(text: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    for line in text.split(|&b| b == b'\n') {
        let pieces = tiny_pieces(line);
        if pieces >= MIN_PIECES {
            return Some((line_start, pieces));
        }
        line_start += line.len() + 1;
    }
    None
}

/// Counts quoted pieces of 1 to 4 characters directly joined by `+`, `&` or `.` (with optional
/// spaces) to the next quoted piece, as in `'Ne'+'w-'`.
fn tiny_pieces(line: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 0;
    while at < line.len() {
        let quote = line[at];
        if quote != b'\'' && quote != b'"' {
            at += 1;
            continue;
        }
        let Some(len) = line[at + 1..].iter().position(|&b| b == quote) else {
            break;
        };
        let after = at + 1 + len + 1;
        let rest = &line[after..];
        let joined = rest.trim_ascii_start();
        let glued = matches!(joined.first(), Some(b'+' | b'&' | b'.'))
            && matches!(joined[1..].trim_ascii_start().first(), Some(b'\'' | b'"'));
        if (1..=4).contains(&len) && glued {
            count += 1;
        }
        at = after;
    }
    count
}

vigil_sdk::export_plugin!(ObfuscatedScript);
