//! String splitting: one line gluing together dozens of tiny string pieces (`'Ne'+'w-O'+'bj'+...`), a
//! classic way to hide keywords from signatures.

/// Fewest tiny string pieces glued together on one line.
const MIN_PIECES: usize = 30;

/// How far from a sink a split line may be.
const SINK_WINDOW: usize = 2048;

/// A line within [`SINK_WINDOW`] of a sink joining at least [`MIN_PIECES`] string pieces of at
/// most four characters: (offset of the line, pieces).
pub fn near_sink(text: &[u8], sinks: &[usize]) -> Option<(usize, usize)> {
    crate::encoded::windows(text.len(), sinks, SINK_WINDOW).find_map(|(lo, hi)| {
        // Whole lines around the window, but at most SINK_WINDOW further each way: a minified
        // file is one long line, and walking all of it for every window would make the check
        // quadratic in its size.
        let floor = lo.saturating_sub(SINK_WINDOW);
        let lo = text[floor..lo]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(floor, |at| floor + at + 1);
        let ceiling = (hi + SINK_WINDOW).min(text.len());
        let hi = text[hi..ceiling]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(ceiling, |at| hi + at);
        find(&text[lo..hi]).map(|(at, pieces)| (lo + at, pieces))
    })
}

/// A line joining at least [`MIN_PIECES`] string pieces of at most four characters:
/// (offset of the line, pieces).
fn find(text: &[u8]) -> Option<(usize, usize)> {
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
