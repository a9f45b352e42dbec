//! Public rule sets, unmodified: signature-base (vendored in `tests/rulesets/`, all 741 files,
//! external variables included) builds into a drop, installs and scans with exactly the results
//! of the yara-x library's own scan; each per-file external variable and `--define` match
//! exactly the files they should; `vigil rules check` shows warnings with their locations; SARIF
//! output validates against the official schema.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Sandbox, stderr, text};
use serde_json::Value;
use vigil_engine::detect::externals::{FileValues, Owners};
use vigil_engine::yara_x;

fn signature_base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rulesets/signature-base/yara")
}

/// The rule files of a folder, sorted.
fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yar" || ext == "yara")
        })
        .collect();
    files.sort();
    files
}

/// (file, rule identifier) for every match of the rule files over the corpus files, by the
/// yara-x library itself: one namespace per file, the five per-file variables set per file.
fn yara_x_matches(rules: &[PathBuf], corpus: &[PathBuf]) -> BTreeSet<(String, String)> {
    let mut compiler = yara_x::Compiler::new();
    for name in ["filename", "filepath", "extension", "filetype", "owner"] {
        compiler.define_global(name, "").unwrap();
    }
    for file in rules {
        compiler.new_namespace(text(file));
        let source = std::fs::read_to_string(file).unwrap();
        compiler
            .add_source(yara_x::SourceCode::from(source.as_str()).with_origin(text(file)))
            .unwrap();
    }
    let rules = compiler.build();
    let mut scanner = yara_x::Scanner::new(&rules);
    let mut owners = Owners::default();
    let mut found = BTreeSet::new();
    for file in corpus {
        let data = std::fs::read(file).unwrap();
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(file).unwrap());
        let values = FileValues::of(file, Some(uid), &data, &mut owners);
        scanner
            .set_global("filename", values.filename.as_str())
            .unwrap();
        scanner
            .set_global("filepath", values.filepath.as_str())
            .unwrap();
        scanner
            .set_global("extension", values.extension.as_str())
            .unwrap();
        scanner.set_global("filetype", values.filetype).unwrap();
        scanner.set_global("owner", values.owner.as_str()).unwrap();
        for rule in scanner.scan(&data).unwrap().matching_rules() {
            found.insert((text(file).to_string(), rule.identifier().to_string()));
        }
    }
    found
}

/// (file, rule identifier) of every detection of a scan (Vigil names rules `namespace.rule`).
fn vigil_matches(scan: &common::Scan) -> BTreeSet<(String, String)> {
    scan.of_type("detection")
        .iter()
        .map(|record| {
            let rule = record["rule"].as_str().unwrap();
            let (_, identifier) = rule.split_once('.').unwrap();
            (
                record["path"].as_str().unwrap().to_string(),
                identifier.to_string(),
            )
        })
        .collect()
}

#[test]
fn signature_base_installs_unmodified_and_scans_exactly_as_yara_x_does() {
    let sandbox = Sandbox::new();
    let (key, _) = common::trusted_publisher_key(&sandbox);
    let drop = sandbox.root().join("signature-base.drop");
    let built = sandbox.run(&[
        "definitions",
        "build",
        "--key",
        text(&key),
        "--version",
        "2",
        "--out",
        text(&drop),
        text(&signature_base()),
    ]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let installed = sandbox.run(&["definitions", "update", "--from", text(&drop)]);
    assert_eq!(installed.status.code(), Some(0), "{}", stderr(&installed));
    let status = sandbox.run(&["definitions", "status", "--format", "jsonl"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(status["rules"].as_u64().unwrap() > 5000, "{status}");

    // The stated corpus: the rule set's own files, whose text holds many rules' strings, and
    // each of them again behind `MZ`, so the rules that require a DOS header (the rule set
    // Vigil scans only for files starting with MZ) match too.
    let rules = rule_files(&signature_base());
    let corpus_dir = sandbox.corpus("");
    std::fs::create_dir_all(corpus_dir.join("mz")).unwrap();
    let mut corpus = Vec::new();
    for file in &rules {
        let name = file.file_name().unwrap();
        let copy = corpus_dir.join(name);
        std::fs::copy(file, &copy).unwrap();
        let behind_mz = corpus_dir.join("mz").join(name);
        let mut bytes = b"MZ".to_vec();
        bytes.extend(std::fs::read(file).unwrap());
        std::fs::write(&behind_mz, bytes).unwrap();
        corpus.extend([copy, behind_mz]);
    }
    let expected = yara_x_matches(&rules, &corpus);
    let mz_prefix = format!("{}/", text(&corpus_dir.join("mz")));
    let in_mz_files = expected
        .iter()
        .filter(|(path, _)| path.starts_with(&mz_prefix))
        .count();
    // More matches behind MZ than in the plain copies: the MZ-only rules matched there.
    let plain = expected.len() - in_mz_files;
    assert!(
        plain >= 40 && in_mz_files > plain + 40,
        "{plain} matches in the plain copies, {in_mz_files} in those starting with MZ"
    );

    for round in ["first scan", "rescan (from the caches)"] {
        let scan = sandbox.scan(&["custom", text(&corpus_dir)]);
        assert_eq!(scan.code, 1, "{round}: {}", scan.stderr);
        let found = vigil_matches(&scan);
        let missing: Vec<_> = expected.difference(&found).collect();
        let extra: Vec<_> = found.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{round}: {} expected, {} found; missing {missing:?}; extra {extra:?}",
            expected.len(),
            found.len()
        );
        // Details: the first match's offset, bounded matches, tags and metadata.
        let detection = scan.of_type("detection")[0].clone();
        assert!(detection["offset"].is_u64(), "{detection}");
        let matches = detection["matches"].as_array().unwrap();
        assert!(!matches.is_empty() && matches.len() <= 16, "{detection}");
        assert!(matches[0]["identifier"].as_str().unwrap().starts_with('$'));
        assert!(detection["metadata"]["author"].is_string(), "{detection}");
    }
}

/// A sandbox with the externals test's rules and corpus.
struct Externals {
    sandbox: Sandbox,
    rules: PathBuf,
}

impl Externals {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let rules = sandbox.write_outside(
            "externals.yar",
            r#"
rule by_name { condition: filename == "invoice.pdf.exe" }
rule by_path { condition: filepath endswith "/Temp" }
rule by_extension { condition: extension == ".hta" }
rule by_type_elf { condition: filetype == "ELF" }
rule by_type_php { condition: filetype == "PHP" }
rule by_owner { condition: owner == "nobody" }
"#,
        );
        sandbox.write("mail/invoice.pdf.exe", "same bytes");
        sandbox.write("mail/invoice.pdf", "same bytes");
        sandbox.write("Temp/note.txt", "a note");
        sandbox.write("Temporary/note.txt", "a note");
        sandbox.write("web/App.HTA", "<html>");
        sandbox.write("web/app.htm", "<html>");
        sandbox.write("bin/tool", b"\x7fELF\x02\x01\x01");
        sandbox.write("bin/tool.txt", "ELF");
        sandbox.write("web/shell.txt", "<?php echo 1;");
        let owned = sandbox.write("home/owned", "owned by nobody");
        sandbox.write("home/mine", "owned by nobody");
        // nobody is uid 65534 on Debian.
        std::os::unix::fs::chown(&owned, Some(65534), None).unwrap();
        Self { sandbox, rules }
    }

    /// (file relative to the corpus, rule) of each detection, with these extra arguments.
    fn detections(&self, extra: &[&str]) -> (BTreeSet<(String, String)>, common::Scan) {
        let corpus = self.sandbox.corpus("");
        let mut args = vec!["custom", text(&corpus), "--rules", text(&self.rules)];
        args.extend_from_slice(extra);
        let scan = self.sandbox.scan(&args);
        let prefix = format!("{}/", text(&corpus).trim_end_matches('/'));
        let found = vigil_matches(&scan)
            .into_iter()
            .filter(|(_, rule)| rule.starts_with("by_"))
            .map(|(path, rule)| (path.strip_prefix(&prefix).unwrap().to_string(), rule))
            .collect();
        (found, scan)
    }
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(path, rule)| (path.to_string(), rule.to_string()))
        .collect()
}

#[test]
fn each_per_file_external_matches_exactly_the_files_it_should() {
    let externals = Externals::new();
    let expected = pairs(&[
        ("mail/invoice.pdf.exe", "by_name"),
        ("Temp/note.txt", "by_path"),
        ("web/App.HTA", "by_extension"),
        ("bin/tool", "by_type_elf"),
        ("web/shell.txt", "by_type_php"),
        ("home/owned", "by_owner"),
    ]);
    // Twice: the second scan is served from the caches, which must keep results per name, folder
    // and owner (invoice.pdf holds the same bytes as invoice.pdf.exe).
    for round in ["first scan", "rescan"] {
        let (found, scan) = externals.detections(&[]);
        assert_eq!(found, expected, "{round}: {}", scan.stderr);
    }
}

#[test]
fn defines_set_constants_from_the_command_line_or_the_configuration() {
    let externals = Externals::new();
    let rules = externals.sandbox.write_outside(
        "defines.yar",
        "rule by_define { condition: is_server and region == \"eu\" and filename == \"owned\" }\n",
    );
    let corpus = externals.sandbox.corpus("");
    let scan = |extra: &[&str]| {
        let mut args = vec!["custom", text(&corpus), "--rules", text(&rules)];
        args.extend_from_slice(extra);
        externals.sandbox.scan(&args)
    };
    // Undefined: the rules do not compile, and the error names the identifier and where.
    let undefined = scan(&[]);
    assert_eq!(undefined.code, 2);
    assert!(
        undefined.stderr.contains("unknown identifier `is_server`")
            && undefined.stderr.contains("defines.yar:1:"),
        "{}",
        undefined.stderr
    );
    let defined = scan(&["--define", "is_server=true", "--define", "region=eu"]);
    assert_eq!(vigil_matches(&defined).len(), 1, "{}", defined.stderr);
    let other_region = scan(&["--define", "is_server=true", "--define", "region=us"]);
    assert!(vigil_matches(&other_region).is_empty());

    externals
        .sandbox
        .configure("[yara.defines]\nis_server = true\nregion = \"eu\"\n");
    assert_eq!(vigil_matches(&scan(&[])).len(), 1);
    let overridden = scan(&["--define", "region=us"]);
    assert!(vigil_matches(&overridden).is_empty(), "--define wins");
    let per_file = scan(&["--define", "owner=root"]);
    assert_eq!(per_file.code, 2);
    assert!(
        per_file.stderr.contains("--define")
            && per_file
                .stderr
                .contains("`owner` is set by Vigil for every file"),
        "{}",
        per_file.stderr
    );

    externals
        .sandbox
        .configure("[yara.defines]\nfilename = \"x\"\n");
    let refused = scan(&[]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("yara.defines")
            && refused
                .stderr
                .contains("`filename` is set by Vigil for every file"),
        "{}",
        refused.stderr
    );
}

#[test]
fn rules_check_prints_warnings_and_errors_with_their_locations() {
    let sandbox = Sandbox::new();
    let warned = sandbox.write_outside(
        "warned.yar",
        "rule warn_me {\n  strings:\n    $a = \"abc\"\n  condition:\n    $a and 2\n}\n",
    );
    let output = sandbox.run(&["rules", "check", text(&warned)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let messages = stderr(&output);
    assert!(
        messages.contains("warning[non_bool_expr]")
            && messages.contains(&format!("{}:5:12", text(&warned))),
        "{messages}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("1 rules from 1 files compile (1 warnings)")
    );

    let broken = sandbox.write_outside(
        "broken.yar",
        "rule broken {\n  condition:\n    nothing_here\n}\n",
    );
    let output = sandbox.run(&["rules", "check", text(&broken)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown identifier `nothing_here`")
            && stderr(&output).contains(&format!("{}:3:5", text(&broken))),
        "{}",
        stderr(&output)
    );

    // The whole of signature-base checks (its external variables are declared).
    let output = sandbox.run(&["rules", "check", text(&signature_base())]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Replaces the SARIF schema's malformed language-tag patterns; returns how many there were.
fn fix_language_patterns(value: &mut Value) -> usize {
    const MALFORMED: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    match value {
        Value::Object(map) => map
            .iter_mut()
            .map(|(key, child)| {
                if key == "pattern" && *child == MALFORMED {
                    *child = Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
                    1
                } else {
                    fix_language_patterns(child)
                }
            })
            .sum(),
        Value::Array(items) => items.iter_mut().map(fix_language_patterns).sum(),
        _ => 0,
    }
}

#[test]
fn sarif_output_validates_against_the_official_schema() {
    let externals = Externals::new();
    let corpus = externals.sandbox.corpus("");
    let output = externals.sandbox.run(&[
        "scan",
        "custom",
        text(&corpus),
        "--rules",
        text(&externals.rules),
        "--format",
        "sarif",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/sarif-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // The official schema's pattern for `language` properties has a stray `]` that the
    // validator's meta-schema check refuses as a regular expression; in memory only, they get the
    // pattern they mean (a language tag such as `en` or `en-US`). Vigil's output has no `language`.
    assert_eq!(fix_language_patterns(&mut schema), 2);
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut broken = document.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(
        !validator.is_valid(&broken),
        "the validator catches a level SARIF does not have"
    );

    let run = &document["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "Vigil");
    let results = run["results"].as_array().unwrap();
    let by_name = results
        .iter()
        .find(|result| result["ruleId"] == "externals.by_name")
        .unwrap();
    let uri = by_name["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        uri.starts_with("file:///") && uri.ends_with("/mail/invoice.pdf.exe"),
        "{uri}"
    );
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let index = by_name["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[index]["id"], "externals.by_name");
    let ours = results
        .iter()
        .filter(|result| {
            result["ruleId"]
                .as_str()
                .unwrap()
                .starts_with("externals.by_")
        })
        .count();
    assert_eq!(ours, 6, "{results:#?}");
}

#[test]
fn print_strings_lists_where_patterns_matched_in_text_output() {
    let sandbox = Sandbox::new();
    let rules = sandbox.write_outside(
        "strings.yar",
        "rule two_strings : demo {\n  meta:\n    score = 85\n  strings:\n    $a = \"abc\"\n    $b = \"zz\"\n  condition:\n    $a and $b\n}\n",
    );
    let file = sandbox.write("sample.txt", "xxabcabc zz");
    let output = sandbox.run(&[
        "scan",
        "custom",
        text(&file),
        "--rules",
        text(&rules),
        "--print-strings",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = String::from_utf8(output.stdout).unwrap();
    assert!(
        report.contains("strings.two_strings [high] (rule strings.two_strings) at offset 2\n    $a at offset 2 (3 bytes)\n    $b at offset 9 (2 bytes)\n    $a at offset 5 (3 bytes)\n"),
        "{report}"
    );
    // jsonl always carries them, with the tags and metadata; the score gave the severity.
    let scan = sandbox.scan(&["custom", text(&file), "--rules", text(&rules)]);
    let detection = scan
        .of_type("detection")
        .into_iter()
        .find(|d| d["rule"] == "strings.two_strings")
        .unwrap()
        .clone();
    assert_eq!(detection["severity"], "high");
    assert_eq!(detection["offset"], 2);
    assert_eq!(detection["tags"], serde_json::json!(["demo"]));
    assert_eq!(detection["metadata"]["score"], 85);
    assert_eq!(detection["matches"].as_array().unwrap().len(), 3);

    // yara.max_match_details bounds the list: the first match of each pattern is kept.
    sandbox.configure("[yara]\nmax_match_details = 2\n");
    let scan = sandbox.scan(&["custom", text(&file), "--rules", text(&rules)]);
    let detection = scan
        .of_type("detection")
        .into_iter()
        .find(|d| d["rule"] == "strings.two_strings")
        .unwrap()
        .clone();
    let identifiers: Vec<&str> = detection["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(identifiers, ["$a", "$b"], "{detection}");
    assert_eq!(detection["more_matches"], 1);
}
