//! Rules grouped by the file type their conditions require: a rule whose condition is
//! `uint16(0) == 0x5a4d and ...` (a DOS/PE header, "MZ") cannot match a file that does not
//! start with `MZ`, so those rules go to a second rule set that is scanned only for such files.
//!
//! In signature-base, more than half of the rules are such; on a corpus of Linux system files
//! (few of them Windows executables) every other file skips evaluating them. Nothing else
//! changes: a file is scanned with the rules it could match, in the same namespaces.
//!
//! A source is split only when that is certainly safe: it parses without errors, has no
//! `global` rule (which would govern the rules in both parts) and no `include`, and no rule
//! refers to another rule of the file by name (the two parts are compiled separately). Rules
//! are removed by overwriting their text with spaces, newlines kept, so every line and column
//! in an error or warning stays where it was.

use yara_x_parser::Parser;
use yara_x_parser::ast::{AST, Expr, Item, Rule};
use yara_x_parser::cst::{CST, SyntaxKind};

/// The bytes a file must start with for an MZ-only rule to match it.
pub const MZ: &[u8] = b"MZ";

/// A source cut in two: the rules any file may match, and the MZ-only ones (when there are).
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// The source with the MZ-only rules blanked out.
    pub general: String,
    /// The source with every other rule blanked out, when it holds MZ-only rules.
    pub mz: Option<String>,
}

/// Splits one rule file's text; a text that cannot safely be split comes back whole.
pub fn split_mz(text: &str) -> Split {
    let whole = || Split {
        general: text.to_string(),
        mz: None,
    };
    let ast = AST::from(Parser::new(text.as_bytes()));
    if !ast.errors().is_empty() {
        return whole();
    }
    let mut rules = Vec::new();
    for item in &ast.items {
        match item {
            Item::Rule(rule) => rules.push(rule),
            Item::Include(_) => return whole(),
            Item::Import(_) => {}
        }
    }
    if rules.is_empty()
        || rules
            .iter()
            .any(|rule| rule.flags.contains(yara_x_parser::ast::RuleFlags::Global))
        || refers_to_a_rule(&rules)
    {
        return whole();
    }
    let mz_only: Vec<bool> = rules
        .iter()
        .map(|rule| requires_mz(&rule.condition))
        .collect();
    if !mz_only.contains(&true) {
        return whole();
    }
    let Ok(cst) = CST::try_from(Parser::new(text.as_bytes())) else {
        return whole();
    };
    let spans: Vec<std::ops::Range<usize>> = cst
        .root()
        .children()
        .filter(|node| node.kind() == SyntaxKind::RULE_DECL)
        .map(|node| node.span().range())
        .collect();
    if spans.len() != rules.len() {
        return whole();
    }
    let keep = |mz: bool| {
        let mut bytes = text.as_bytes().to_vec();
        for (span, &only) in spans.iter().zip(&mz_only) {
            if only != mz {
                blank(&mut bytes[span.clone()]);
            }
        }
        String::from_utf8(bytes).expect("blanking keeps UTF-8: whole characters become spaces")
    };
    Split {
        general: keep(false),
        mz: Some(keep(true)),
    }
}

/// Whether the condition is, or is a conjunction with, `uint16(0) == 0x5a4d` (either side).
fn requires_mz(condition: &Expr) -> bool {
    match condition {
        Expr::And(and) => and.operands().any(is_mz_check),
        other => is_mz_check(other),
    }
}

/// `uint16(0) == 0x5a4d` or `0x5a4d == uint16(0)`.
fn is_mz_check(expr: &Expr) -> bool {
    let Expr::Eq(eq) = expr else { return false };
    let reads_first_two_bytes = |expr: &Expr| match expr {
        Expr::FuncCall(call) => {
            call.object.is_none()
                && call.identifier.name == "uint16"
                && matches!(call.args.as_slice(), [Expr::LiteralInteger(at)] if at.value == 0)
        }
        _ => false,
    };
    let is_mz = |expr: &Expr| matches!(expr, Expr::LiteralInteger(n) if n.value == 0x5a4d);
    (reads_first_two_bytes(&eq.lhs) && is_mz(&eq.rhs))
        || (is_mz(&eq.lhs) && reads_first_two_bytes(&eq.rhs))
}

/// Whether any rule's condition names a rule of the file (the parts are compiled apart).
fn refers_to_a_rule(rules: &[&Rule]) -> bool {
    let names: Vec<&str> = rules.iter().map(|rule| rule.identifier.name).collect();
    rules
        .iter()
        .any(|rule| names_an_identifier(&rule.condition, &names))
}

fn names_an_identifier(expr: &Expr, names: &[&str]) -> bool {
    if let Expr::Ident(ident) = expr
        && names.contains(&ident.name)
    {
        return true;
    }
    expr.children()
        .any(|child| names_an_identifier(child, names))
}

/// Overwrites text with spaces, keeping line breaks (so positions after it do not move).
fn blank(bytes: &mut [u8]) {
    for byte in bytes {
        if *byte != b'\n' && *byte != b'\r' {
            *byte = b' ';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"import "pe"
// a comment
rule any_file { strings: $a = "x" condition: $a }
/* another */
private rule pe_only : tag {
  meta: author = "é"
  strings: $b = "y"
  condition: uint16(0) == 0x5a4d and filesize < 1MB and $b
}
rule also_pe { condition: 0x5a4d == uint16(0) }
rule not_pe { condition: uint16(0) == 0x5a4d or filesize > 0 }
"#;

    #[test]
    fn mz_only_rules_move_to_their_own_part_with_positions_kept() {
        let split = split_mz(SOURCE);
        let mz = split.mz.expect("the source has MZ-only rules");
        assert_eq!(split.general.len(), SOURCE.len(), "same length");
        assert_eq!(split.general.lines().count(), SOURCE.lines().count());
        assert!(split.general.contains("rule any_file") && split.general.contains("rule not_pe"));
        assert!(!split.general.contains("pe_only") && !split.general.contains("also_pe"));
        assert!(mz.contains("private rule pe_only") && mz.contains("rule also_pe"));
        assert!(!mz.contains("any_file") && !mz.contains("not_pe"));
        assert!(mz.starts_with("import \"pe\"") && split.general.starts_with("import \"pe\""));
        // The `rule pe_only` line is at the same line and column in the MZ part.
        let line = |text: &str| text.lines().position(|l| l.contains("pe_only")).unwrap();
        assert_eq!(line(&mz), line(SOURCE));
    }

    #[test]
    fn sources_that_are_not_safe_to_split_stay_whole() {
        let referenced = "rule a { condition: uint16(0) == 0x5a4d }\nrule b { condition: a }\n";
        let global = "global rule g { condition: filesize > 0 }\nrule a { condition: uint16(0) == 0x5a4d }\n";
        let broken = "rule a { condition: uint16(0) == 0x5a4d and }\n";
        let no_mz = "rule a { condition: uint16(0) == 0x457f }\n";
        for text in [referenced, global, broken, no_mz] {
            assert_eq!(
                split_mz(text),
                Split {
                    general: text.into(),
                    mz: None
                },
                "{text}"
            );
        }
    }
}
