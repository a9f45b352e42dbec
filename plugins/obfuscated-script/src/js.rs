//! JavaScript obfuscators by the structure their output always has: javascript-obfuscator
//! renames identifiers to `_0x` + hex digits (`_0x4ae948`) around its string array and rotation
//! function; js-confuser indexes its constant tables with hex literals (`QUzu_OO[0xc]`). Plain
//! and minified code does neither (minifiers print numbers in decimal, their shortest form).

/// What every mark starts with (the plugin's prefilter, ignoring case).
pub const MARKS: &[&str] = &["_0x", "[0x"];

/// Fewest `_0x` hex identifiers, or hex-indexed table reads, that mark an obfuscator's output.
const MIN_MARKS: usize = 20;

/// What was found: (offset of the first mark, description).
pub fn find(text: &[u8]) -> Option<(usize, &'static str)> {
    let (mut identifiers, mut indexes) = (0, 0);
    let (mut first_identifier, mut first_index) = (0, 0);
    // Every mark contains `0x`: look at each `x` only (rare in text), one pass.
    let mut at = 1;
    while let Some(found) = text
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'x'))
    {
        let x = at + found;
        at = x + 1;
        if x < 2 || text[x - 1] != b'0' {
            continue;
        }
        let digits = text[x + 1..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        match text[x - 2] {
            b'_' if digits >= 4 => {
                // `_0x` starting an identifier, not the middle of one (`a_0x1234`).
                let starts = x < 3 || !(text[x - 3].is_ascii_alphanumeric() || text[x - 3] == b'$');
                if starts {
                    if identifiers == 0 {
                        first_identifier = x - 2;
                    }
                    identifiers += 1;
                }
            }
            b'[' if digits >= 1 && text.get(x + 1 + digits) == Some(&b']') => {
                if indexes == 0 {
                    first_index = x - 2;
                }
                indexes += 1;
            }
            _ => {}
        }
        if identifiers >= MIN_MARKS {
            return Some((
                first_identifier,
                "identifiers renamed to _0x-hex names (javascript-obfuscator)",
            ));
        }
        if indexes >= MIN_MARKS {
            return Some((
                first_index,
                "constant tables read at hex indexes (js-confuser)",
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obfuscator_output_is_found_and_plain_code_is_not() {
        let obfuscated: String = (0..30)
            .map(|i| format!("const _0x{:04x}a=_0x4ae9({i:#x});", 4096 + i))
            .collect();
        assert!(
            find(obfuscated.as_bytes())
                .unwrap()
                .1
                .contains("javascript-obfuscator")
        );
        let confused: String = (0..30).map(|i| format!("f(T[{i:#x}],")).collect();
        assert!(find(confused.as_bytes()).unwrap().1.contains("js-confuser"));
        let plain = "var m = 0xff, a_0x1234 = 1; t[0x1] = 2;".repeat(10);
        assert_eq!(find(plain.as_bytes()), None);
    }
}
