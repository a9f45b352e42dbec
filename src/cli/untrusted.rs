//! Text that came from outside — file names, archive member names, rule metadata, threat names,
//! reasons quoting them — rendered for people so that it cannot forge lines or drive the terminal.
//!
//! Every human-facing output goes through [`Untrusted`]: control characters (C0, DEL, C1), and so
//! every ANSI escape sequence, and the bidirectional controls that make a name read backwards
//! (U+202E `exe.txt` shown as `txt.exe`) are shown escaped (`\n`, `\x1b`, `\u{202e}`); bytes that
//! are not UTF-8 are shown as `\xNN`; a backslash is doubled so an escape in a name cannot pass
//! for one of ours; very long values are cut with a marker. Machine output (JSON Lines) stays
//! exact instead: it carries `path_hex` for names that are not UTF-8.
//!
//! Clippy's `disallowed-methods` (`clippy.toml`) forbids `Path::display` and `to_string_lossy` in
//! the CLI, so a path cannot reach people any other way.

use std::fmt::{self, Display, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Values longer than this many bytes are cut, with a marker saying how much was left out.
const MAX_SHOWN: usize = 4096;

/// Untrusted bytes, shown safely with `{}`.
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(&'a [u8]);

/// A path for people.
pub fn shown(path: &Path) -> Untrusted<'_> {
    Untrusted(path.as_os_str().as_bytes())
}

/// Untrusted bytes for people (not UTF-8 shown as `\xNN`).
pub fn untrusted_bytes(bytes: &[u8]) -> Untrusted<'_> {
    Untrusted(bytes)
}

/// Untrusted text for people.
pub fn untrusted(text: &str) -> Untrusted<'_> {
    Untrusted(text.as_bytes())
}

impl Display for Untrusted<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = &self.0[..self.0.len().min(MAX_SHOWN)];
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                escape_char(c, out)?;
            }
            for byte in chunk.invalid() {
                write!(out, "\\x{byte:02x}")?;
            }
        }
        if self.0.len() > MAX_SHOWN {
            write!(out, "…[{} more bytes]", self.0.len() - MAX_SHOWN)?;
        }
        Ok(())
    }
}

fn escape_char(c: char, out: &mut fmt::Formatter<'_>) -> fmt::Result {
    match c {
        '\\' => out.write_str("\\\\"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if (c as u32) < 0x20 || c == '\x7f' => write!(out, "\\x{:02x}", c as u32),
        c if is_c1(c) || is_bidi_control(c) => write!(out, "\\u{{{:x}}}", c as u32),
        c => out.write_char(c),
    }
}

/// C1 control characters (U+0080 to U+009F): some terminals act on them (U+009B is CSI).
fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// Characters that change the direction text is shown in, or mark it invisibly.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    fn render(bytes: &[u8]) -> String {
        Untrusted(bytes).to_string()
    }

    #[test]
    fn controls_escapes_and_bidi_are_escaped() {
        assert_eq!(render(b"a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(render(b"\x1b[2Jclear"), "\\x1b[2Jclear");
        assert_eq!(render(b"del\x7f"), "del\\x7f");
        assert_eq!(render("csi\u{9b}".as_bytes()), "csi\\u{9b}");
        assert_eq!(
            render("exe\u{202e}txt.exe".as_bytes()),
            "exe\\u{202e}txt.exe"
        );
        assert_eq!(
            render("\u{2066}x\u{2069}".as_bytes()),
            "\\u{2066}x\\u{2069}"
        );
        assert_eq!(render(b"back\\slash"), "back\\\\slash");
    }

    #[test]
    fn ordinary_text_and_other_scripts_are_unchanged() {
        assert_eq!(
            render("/home/ana/Documents/été 2026.pdf".as_bytes()),
            "/home/ana/Documents/été 2026.pdf"
        );
        assert_eq!(
            render("/srv/данные/文件.txt".as_bytes()),
            "/srv/данные/文件.txt"
        );
    }

    #[test]
    fn invalid_utf8_is_shown_as_bytes() {
        let path = Path::new(OsStr::from_bytes(b"inv\xe9-oice \xff.com"));
        assert_eq!(shown(path).to_string(), "inv\\xe9-oice \\xff.com");
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let long = vec![b'a'; MAX_SHOWN + 10];
        let shown = render(&long);
        assert!(shown.ends_with("…[10 more bytes]"), "{shown}");
        assert_eq!(shown.len(), MAX_SHOWN + "…[10 more bytes]".len());
    }

    #[test]
    fn nothing_shown_holds_a_control_or_bidi_character() {
        let all: Vec<u8> = (0u8..=255).collect();
        let hostile = [&all[..], "\u{202e}\u{200f}\u{9b}".as_bytes()].concat();
        let shown = render(&hostile);
        assert!(
            !shown.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{shown:?}"
        );
    }
}
