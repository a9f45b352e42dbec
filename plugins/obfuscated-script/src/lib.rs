//! Obfuscated scripts: the tricks droppers use to hide what they run from signatures.
//!
//! Obfuscation says that a script hides what it runs, not that what it runs is malicious (packed
//! JavaScript bundles and licence checkers do it too), so no finding here is rated high: the
//! default severity settings report them without quarantining.
//!
//! - `Obfuscated:Script/EncodedExec` (medium): a long base64 or hex blob, or a run of `\xNN`
//!   escapes, that decodes to text, near an execution sink (`eval(atob(...))`, `iex ...
//!   FromBase64String`, `-EncodedCommand`, `base64 -d | sh`, `exec(b64decode(...))`).
//! - `Obfuscated:Script/CharCodes` (medium): code built from character codes, in any form
//!   ([`charcodes`]).
//! - `Obfuscated:Script/StringSplitting` (medium): one line gluing together dozens of tiny string
//!   pieces, near a sink.
//! - `Obfuscated:JS/ObfuscatorOutput` (low): the structure javascript-obfuscator and js-confuser
//!   leave in JavaScript ([`js`]).
//! - `Obfuscated:Shell/SplitEval` and `Obfuscated:Shell/SymbolOnly` (medium): bash-obfuscate's
//!   and bashsmash's shell ([`shell`]).
//!
//! Each check is one pass over the script, and the checks for one language run only on that
//! language's files (by extension or shebang).

mod charcodes;
mod encoded;
mod js;
mod shell;
mod split;
mod triggers;

use vigil_sdk::{Descriptor, Finding, InputSize, Magic, Plugin, ScanInput, Severity};

/// Bytes of a script the plugin reads (droppers are small; minified libraries can be large).
const PREFIX: u32 = 1024 * 1024;

/// Extensions of the scripts the plugin reads.
const EXTENSIONS: &[&str] = &[
    "js", "mjs", "cjs", "jse", "vbs", "vbe", "ps1", "psm1", "psd1", "sh", "bash", "zsh", "ksh",
    "hta", "wsf", "bat", "cmd", "py", "pl", "php",
];
/// Extensions of JavaScript (and containers of it).
const JAVASCRIPT: &[&str] = &["js", "mjs", "cjs", "jse", "hta", "wsf"];
/// Extensions of shell scripts.
const SHELL: &[&str] = &["sh", "bash", "zsh", "ksh"];

struct ObfuscatedScript;

impl Plugin for ObfuscatedScript {
    fn describe() -> Descriptor {
        Descriptor {
            name: "obfuscated-script".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Obfuscated scripts: encoded payloads fed to eval/exec, char codes, split strings, JavaScript obfuscators' output, symbol-only and split-and-eval shell".into(),
            magic: vec![Magic::at(0, b"#!")],
            extensions: EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            min_size: 32,
            input: InputSize::Prefix(PREFIX),
            wants_name: true,
            ..Descriptor::default()
        }
        // Every check starts from one of these: the host skips the many scripts with none.
        .prefilter(
            encoded::SINKS
                .iter()
                .chain(charcodes::MARKERS)
                .chain(js::MARKS)
                .chain(shell::MARKS),
        )
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        // Every search ignores ASCII case itself where case does not matter: no lower-cased copy.
        let text = &input.data[..];
        let extension = input.extension.as_str();
        let mut findings = Vec::new();
        let triggers = triggers::Triggers::find(text);
        let sinks = &triggers.sinks;
        if !sinks.is_empty() {
            if let Some((at, len, kind)) = encoded::near_sink(text, sinks) {
                findings.push(
                    Finding::new(
                        "Obfuscated:Script/EncodedExec",
                        Severity::Medium,
                        format!("a {len}-byte {kind} payload that decodes to text is executed by the script"),
                    )
                    .at(at),
                );
            }
            if let Some((at, pieces)) = split::near_sink(text, sinks) {
                findings.push(
                    Finding::new(
                        "Obfuscated:Script/StringSplitting",
                        Severity::Medium,
                        format!("one line joins {pieces} tiny string pieces"),
                    )
                    .at(at),
                );
            }
        }
        if let Some(at) = charcodes::find(text, &triggers.char_markers) {
            findings.push(
                Finding::new(
                    "Obfuscated:Script/CharCodes",
                    Severity::Medium,
                    "text is assembled from character codes",
                )
                .at(at),
            );
        }
        let javascript = JAVASCRIPT.contains(&extension) || shebang_names(text, b"node");
        if javascript && let Some((at, what)) = js::find(text) {
            findings
                .push(Finding::new("Obfuscated:JS/ObfuscatorOutput", Severity::Low, what).at(at));
        }
        let shell = SHELL.contains(&extension) || shebang_names(text, b"sh");
        if shell && let Some(found) = shell::find(text) {
            findings.push(Finding::new(found.threat, Severity::Medium, found.what).at(found.at));
        }
        findings
    }
}

/// Whether the script's `#!` line names `interpreter` (`sh` also matches `bash`, `dash`...).
fn shebang_names(text: &[u8], interpreter: &[u8]) -> bool {
    if !text.starts_with(b"#!") {
        return false;
    }
    let line = &text[..text
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(text.len())
        .min(128)];
    line.windows(interpreter.len()).any(|w| w == interpreter)
}

vigil_sdk::export_plugin!(ObfuscatedScript);
