//! Encoded payloads fed to an execution sink: a long base64 or hex blob, or a run of `\xNN`
//! escapes, that decodes to text, near `eval(`, `iex`, `| sh`, `exec(`...

use vigil_sdk::bytes::find_from;

/// Shortest base64 or hex blob considered an encoded payload.
const MIN_BLOB: usize = 200;
/// Fewest `\xNN` escapes in a row considered an encoded payload.
const MIN_ESCAPES: usize = 64;
/// How far from a blob a sink may be to count as executing it.
const SINK_WINDOW: usize = 2048;
/// Bytes of a blob decoded to see whether it is text (code) or binary data.
const SAMPLE: usize = 240;

/// Where text gets executed as code (matched ignoring case). Decoders alone (`atob`,
/// `base64 -d`) are not sinks: decoding an embedded image is normal, running decoded text is not.
pub const SINKS: &[&str] = &[
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

/// The first encoded payload within [`SINK_WINDOW`] of a sink: (offset, length, kind). Only
/// the windows around the sinks are searched (widened over a blob that crosses their edge).
pub fn near_sink(text: &[u8], sinks: &[usize]) -> Option<(usize, usize, &'static str)> {
    let encoded = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\\');
    windows(text.len(), sinks, SINK_WINDOW).find_map(|(lo, hi)| {
        let lo = lo - text[..lo].iter().rev().take_while(|&&b| encoded(b)).count();
        let hi = hi + text[hi..].iter().take_while(|&&b| encoded(b)).count();
        blobs(&text[lo..hi])
            .map(|(at, len, kind)| (lo + at, len, kind))
            .find(|&(at, len, _)| decodes_to_text(text, at, len))
    })
}

/// The ranges within `reach` bytes of the offsets (sorted), merged where they overlap.
pub fn windows(
    len: usize,
    offsets: &[usize],
    reach: usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut next = 0;
    std::iter::from_fn(move || {
        let &first = offsets.get(next)?;
        let lo = first.saturating_sub(reach);
        let mut hi = (first + reach).min(len);
        next += 1;
        while let Some(&more) = offsets
            .get(next)
            .filter(|&&more| more.saturating_sub(reach) <= hi)
        {
            hi = (more + reach).min(len);
            next += 1;
        }
        Some((lo, hi))
    })
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

/// Whether the start of a blob decodes to text (code, a command line, UTF-16 text as
/// PowerShell's `-EncodedCommand` takes) rather than binary data (an image, a font, a
/// WebAssembly module), which a sink nearby does not execute. A run of digits alone is a
/// number, not an encoding (hex of text has letters, as text has).
fn decodes_to_text(text: &[u8], at: usize, len: usize) -> bool {
    let blob = &text[at..at + len.min(SAMPLE * 2)];
    if !blob.starts_with(b"\\") && !blob.iter().any(u8::is_ascii_alphabetic) {
        return false;
    }
    let decoded: Vec<u8> = if blob.starts_with(b"\\") {
        blob.chunks_exact(4)
            .filter_map(|e| hex_byte(e[2], e[3]))
            .collect()
    } else if blob.iter().all(u8::is_ascii_hexdigit) {
        blob.chunks_exact(2)
            .filter_map(|h| hex_byte(h[0], h[1]))
            .collect()
    } else {
        base64_decode(&blob[..blob.len().min(SAMPLE * 4 / 3) / 4 * 4])
    };
    if decoded.len() < 16 {
        return false;
    }
    let utf16 = decoded.iter().skip(1).step_by(2).all(|&b| b == 0);
    let texty = decoded
        .iter()
        .enumerate()
        .filter(|&(i, &b)| {
            matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e) || (utf16 && i % 2 == 1 && b == 0)
        })
        .count();
    texty * 100 >= decoded.len() * 90
}

fn hex_byte(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(high)? * 16 + digit(low)?) as u8)
}

/// Decodes standard base64 (the input's length a multiple of 4; stops at `=` or a stray byte).
fn base64_decode(input: &[u8]) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    for quad in input.chunks_exact(4) {
        let Some(v) = quad.iter().map(|&c| value(c)).collect::<Option<Vec<u8>>>() else {
            break;
        };
        let n = (v[0] as u32) << 18 | (v[1] as u32) << 12 | (v[2] as u32) << 6 | v[3] as u32;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out
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
        let start = find_from(text, b"\\", at)?;
        let mut end = start;
        while is_escape(end) {
            end += 4;
        }
        at = if end == start { start + 1 } else { end };
        Some((start, (end - start) / 4))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_text_is_text_and_of_binary_is_not() {
        // "echo hello world; " repeated, in base64.
        let text = b"ZWNobyBoZWxsbyB3b3JsZDsg".repeat(12);
        assert!(decodes_to_text(&text, 0, text.len()));
        // Digits only (a long number in a test's expected output) are not hex of text.
        let digits = b"0123333333344444444444".repeat(12);
        assert!(!decodes_to_text(&digits, 0, digits.len()));
        let binary = b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g".repeat(6);
        assert!(!decodes_to_text(&binary, 0, binary.len()));
        // PowerShell -EncodedCommand: UTF-16LE text.
        let utf16 = b"SQBFAFgAIAAoAE4A".repeat(12);
        assert!(decodes_to_text(&utf16, 0, utf16.len()));
    }
}
