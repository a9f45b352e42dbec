//! The YARA-X detector: rule sources, compilation with located errors, and per-thread scanners.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::EngineError;
use crate::report::Finding;

/// One rule file's text and where it came from (shown in compile errors).
#[derive(Debug, Clone)]
pub struct RuleSource {
    /// A file path, or a path inside definitions such as `rules/eicar.yar`.
    pub origin: String,
    /// The YARA source text.
    pub text: String,
}

/// Reads a `.yar`/`.yara` file, or every such file below a directory (sorted, so rule order and
/// error order are stable).
pub fn load_sources(path: &Path) -> Result<Vec<RuleSource>, EngineError> {
    let metadata = std::fs::metadata(path).map_err(|err| EngineError::RulesPath {
        path: path.to_path_buf(),
        why: err.to_string(),
    })?;
    let files = if metadata.is_dir() {
        let mut files = Vec::new();
        collect_rule_files(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(EngineError::RulesPath {
                path: path.to_path_buf(),
                why: "the directory holds no .yar or .yara files".into(),
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).map_err(|err| EngineError::RulesPath {
                path: file.clone(),
                why: err.to_string(),
            })?;
            Ok(RuleSource {
                origin: file.display().to_string(),
                text,
            })
        })
        .collect()
}

fn collect_rule_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EngineError> {
    let entries = std::fs::read_dir(dir).map_err(|err| EngineError::RulesPath {
        path: dir.to_path_buf(),
        why: err.to_string(),
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            collect_rule_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yar" || ext == "yara")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// A compiled rule set, shared by every worker.
pub struct YaraRules {
    rules: yara_x::Rules,
}

impl YaraRules {
    /// Compiles the sources; every error is reported with its file, line and column.
    pub fn compile(sources: &[RuleSource]) -> Result<Self, EngineError> {
        let mut compiler = yara_x::Compiler::new();
        for source in sources {
            // Each file gets its own namespace so two files may use the same rule name.
            compiler.new_namespace(&namespace_for(&source.origin));
            // Errors are collected by the compiler and rendered together below.
            let _ = compiler.add_source(
                yara_x::SourceCode::from(source.text.as_str()).with_origin(source.origin.as_str()),
            );
        }
        let errors = compiler.errors();
        if !errors.is_empty() {
            let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(EngineError::Rules(rendered.join("\n")));
        }
        Ok(Self {
            rules: compiler.build(),
        })
    }

    /// The compiled rules as bytes (with native code), to store beside installed definitions.
    pub fn serialize(&self) -> Result<Vec<u8>, EngineError> {
        self.rules.serialize().map_err(|err| {
            EngineError::Definitions(format!("cannot serialize compiled rules: {err}"))
        })
    }

    /// Loads rules serialized by [`YaraRules::serialize`] with the same yara-x version.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, EngineError> {
        let rules = yara_x::Rules::deserialize(bytes).map_err(|err| {
            EngineError::Definitions(format!("cannot load compiled rules: {err}"))
        })?;
        Ok(Self { rules })
    }

    /// How many rules the set holds.
    pub fn rule_count(&self) -> usize {
        self.rules.iter().len()
    }

    /// A scanner for one worker thread, with the per-file timeout.
    pub fn scanner(&self, timeout: Duration) -> YaraScanner<'_> {
        let mut scanner = yara_x::Scanner::new(&self.rules);
        scanner.set_timeout(timeout);
        YaraScanner { scanner }
    }
}

/// A namespace name derived from a source's origin (its file stem).
fn namespace_for(origin: &str) -> String {
    let stem = Path::new(origin)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with(|c: char| c.is_ascii_digit()) {
        format!("ns_{cleaned}")
    } else {
        cleaned
    }
}

/// One worker's YARA-X scanner (not `Send`: it lives and dies on its worker thread).
pub struct YaraScanner<'r> {
    scanner: yara_x::Scanner<'r>,
}

impl YaraScanner<'_> {
    /// Scans `data`, appending a finding per matching rule.
    pub fn scan(&mut self, data: &[u8], out: &mut Vec<Finding>) -> Result<(), String> {
        let results = self.scanner.scan(data).map_err(|err| match err {
            yara_x::ScanError::Timeout => {
                "YARA scan timed out (antivirus_engine.scan_timeout)".to_string()
            }
            other => format!("YARA scan failed: {other}"),
        })?;
        for rule in results.matching_rules() {
            out.push(finding_for(&rule));
        }
        Ok(())
    }
}

/// Turns a matching rule into a finding using its `threat`, `severity` and `description` metadata.
fn finding_for(rule: &yara_x::Rule) -> Finding {
    let mut threat = None;
    let mut severity = None;
    let mut description = None;
    for (key, value) in rule.metadata() {
        let text = match value {
            yara_x::MetaValue::String(text) => text.to_string(),
            yara_x::MetaValue::Bytes(bytes) => bytes.to_string(),
            yara_x::MetaValue::Integer(n) => n.to_string(),
            yara_x::MetaValue::Float(n) => n.to_string(),
            yara_x::MetaValue::Bool(b) => b.to_string(),
        };
        match key {
            "threat" => threat = Some(text),
            "severity" => severity = Some(text),
            "description" => description = Some(text),
            _ => {}
        }
    }
    let rule_name = format!("{}.{}", rule.namespace(), rule.identifier());
    Finding {
        threat: threat.unwrap_or_else(|| rule_name.clone()),
        detector: "yara",
        rule: rule_name,
        severity: severity.unwrap_or_else(|| "unknown".into()),
        description: description.unwrap_or_default(),
        offset: None,
    }
}
