//! Shell obfuscation by structure: a command cut into variables and run by `eval` of their
//! concatenation (bash-obfuscate: `Az='curl';Bz=' -s '...;eval "$Az$Bz..."`), and symbol-only
//! shell that spells commands with globs and `printf` of octal codes (bashsmash:
//! `__() {/???/??n/???n?f ${#};}; $(...)`).

/// What each check starts from (the plugin's prefilter, ignoring case): `eval` followed by
/// what may come before the first glued variable, and command substitution.
pub const MARKS: &[&str] = &["eval ", "eval\t", "eval\"", "eval$", "$("];

/// Fewest variables glued together in one `eval`.
const MIN_GLUED: usize = 5;
/// Shortest line considered for symbol-only code.
const MIN_SYMBOL_LINE: usize = 256;
/// Most letters and digits, in percent of a line, in symbol-only code.
const MAX_ALNUM_PERCENT: usize = 8;

/// Obfuscated shell found in a script.
#[derive(Debug, PartialEq)]
pub struct Found {
    /// `Obfuscated:Shell/SplitEval` or `Obfuscated:Shell/SymbolOnly`.
    pub threat: &'static str,
    /// Where.
    pub at: usize,
    /// What, for the finding's description.
    pub what: String,
}

/// The first obfuscated shell in the script.
pub fn find(text: &[u8]) -> Option<Found> {
    split_and_eval(text).or_else(|| symbol_only(text))
}

/// `eval` of at least [`MIN_GLUED`] variables written back to back.
fn split_and_eval(text: &[u8]) -> Option<Found> {
    let mut from = 0;
    while let Some(found) = vigil_sdk::bytes::find_from(text, b"eval", from) {
        from = found + 4;
        let mut at = from;
        while matches!(text.get(at), Some(b' ' | b'\t' | b'"')) {
            at += 1;
        }
        let mut glued = 0;
        while text.get(at) == Some(&b'$') {
            let braced = text.get(at + 1) == Some(&b'{');
            let name_at = at + 1 + usize::from(braced);
            let len = text[name_at..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if len == 0 || (braced && text.get(name_at + len) != Some(&b'}')) {
                break;
            }
            glued += 1;
            at = name_at + len + usize::from(braced);
        }
        if glued >= MIN_GLUED {
            return Some(Found {
                threat: "Obfuscated:Shell/SplitEval",
                at: found,
                what: format!("eval runs {glued} variables glued together"),
            });
        }
    }
    None
}

/// A long line made almost only of symbols, with command substitution (`$(`).
fn symbol_only(text: &[u8]) -> Option<Found> {
    let mut start = 0;
    for line in text.split(|&b| b == b'\n') {
        if line.len() >= MIN_SYMBOL_LINE {
            let alnum = line.iter().filter(|b| b.is_ascii_alphanumeric()).count();
            let substitutes = line.windows(2).any(|w| w == b"$(");
            if alnum * 100 <= line.len() * MAX_ALNUM_PERCENT && substitutes {
                return Some(Found {
                    threat: "Obfuscated:Shell/SymbolOnly",
                    at: start,
                    what: format!("a {}-byte line of symbol-only shell", line.len()),
                });
            }
        }
        start += line.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glued_eval_and_symbol_lines_are_found_and_plain_shell_is_not() {
        let glued = "Az='cu';Bz='rl';eval \"$Az$Bz$Cz$Dz$Ez$Fz$Gz$Hz$Iz\"";
        assert!(find(glued.as_bytes()).is_some());
        let symbols = format!(
            "__() {{/???/??n/???n?f ${{#}};}}; $({})",
            "\"\\\\`__ \"\" ``__ `\";".repeat(20)
        );
        assert!(find(symbols.as_bytes()).is_some());
        let plain = "#!/bin/sh\neval \"$cmd $args\"\nfor f in *; do echo \"$f\"; done\n";
        assert_eq!(find(plain.as_bytes()), None);
        let separators = format!("# {}\n", "-=".repeat(200));
        assert_eq!(find(separators.as_bytes()), None);
    }
}
