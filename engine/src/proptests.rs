//! Property tests of the engine's parsers of untrusted text: configuration files and hash lists
//! never panic, and their errors name where the problem is. (Plugin output checks and vault
//! metadata have theirs beside their code.) `PROPTEST_CASES=20000 cargo test -p vigil-engine
//! proptests` runs them longer.

use std::path::Path;

use proptest::prelude::*;

use crate::config::Config;
use crate::detect::hash::HashLists;
use crate::error::EngineError;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_configuration_text_parses_or_is_refused_without_panicking(text in "\\PC{0,400}") {
        let _ = Config::parse(&text, Path::new("vigil.toml"));
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it_and_its_line(
        section in prop::sample::select(vec!["antivirus_engine", "plugins", "quarantine", "definitions", "filesystem_scanner"]),
        key in "[a-z]{3,12}_zz",
        blank_lines in 0usize..5,
    ) {
        let text = format!("{}[{section}]\n{key} = 1\n", "\n".repeat(blank_lines));
        match Config::parse(&text, Path::new("vigil.toml")) {
            Err(EngineError::Config { message, .. }) => {
                prop_assert!(message.contains(&key), "{}", message);
                let line = format!("line {}", blank_lines + 2);
                prop_assert!(message.contains(&line), "{}", message);
            }
            other => prop_assert!(false, "accepted: {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn any_hash_list_parses_or_names_its_line(lines in proptest::collection::vec("\\PC{0,80}", 0..20)) {
        let mut lists = HashLists::default();
        match lists.add("hashes/list.txt", &lines.join("\n")) {
            Ok(()) => prop_assert!(lists.len() <= lines.len()),
            Err(EngineError::HashList { line, .. }) => prop_assert!(line >= 1 && line <= lines.len()),
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }

    #[test]
    fn well_formed_hash_lines_are_all_kept(digests in proptest::collection::hash_set("[0-9a-f]{64}", 1..20)) {
        let text: String = digests.iter().map(|d| format!("{d} Test:Multi/Item # note\n")).collect();
        let mut lists = HashLists::default();
        lists.add("hashes/list.txt", &text).unwrap();
        prop_assert_eq!(lists.len(), digests.len());
    }
}
