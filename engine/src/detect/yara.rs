//! The YARA-X detector: rule sources, compilation with located errors, and per-thread scanners.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::externals::{self, Defines, FileValues, Owners};
use super::split::{self, Split, split_mz};
use crate::config::YaraConfig;
use crate::error::EngineError;
use crate::report::{Finding, PatternMatch, RuleDetails};

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

/// A compiled rule set, shared by every worker: the rules any file may match, and those only a
/// file starting with `MZ` may match (see [`super::split`]), compiled apart.
pub struct YaraRules {
    general: yara_x::Rules,
    mz: Option<yara_x::Rules>,
    /// Whether the sources may use the per-file external variables (then each file sets them,
    /// and a result depends on the file's name, folder and owner).
    file_externals: bool,
    /// Most pattern matches listed per detection (`yara.max_match_details`).
    max_match_details: usize,
}

/// What compiling rules said besides the rules: yara-x's warnings, with their locations.
pub struct Compiled {
    /// The rules.
    pub rules: YaraRules,
    /// Each warning as yara-x renders it (`warning[...]: ...` with file, line and column).
    pub warnings: Vec<String>,
}

/// The start of serialized rules in Vigil's layout (two sets), followed by the two lengths.
const SERIALIZED_MAGIC: &[u8; 8] = b"VIGILRS2";

impl YaraRules {
    /// Compiles the sources with the per-file external variables and the constants `defines`
    /// declared; every error is reported with its file, line and column.
    pub fn compile(sources: &[RuleSource], defines: &Defines) -> Result<Self, EngineError> {
        Ok(Self::compile_with_warnings(sources, defines)?.rules)
    }

    /// Like [`YaraRules::compile`], keeping yara-x's warnings.
    pub fn compile_with_warnings(
        sources: &[RuleSource],
        defines: &Defines,
    ) -> Result<Compiled, EngineError> {
        let parts: Vec<Split> = sources
            .iter()
            .map(|source| split_mz(&source.text))
            .collect();
        let mut warnings = Vec::new();
        let general = compile_set(
            sources
                .iter()
                .zip(&parts)
                .map(|(source, part)| (source, part.general.as_str())),
            defines,
            &mut warnings,
        )?;
        let mz_parts = sources
            .iter()
            .zip(&parts)
            .filter_map(|(source, part)| Some((source, part.mz.as_deref()?)));
        let mz = if parts.iter().any(|part| part.mz.is_some()) {
            Some(compile_set(mz_parts, defines, &mut warnings)?)
        } else {
            None
        };
        Ok(Compiled {
            rules: Self {
                general,
                mz,
                file_externals: uses_file_externals(sources),
                max_match_details: YaraConfig::default().max_match_details,
            },
            warnings,
        })
    }

    /// The compiled rules as bytes (with native code), to store beside installed definitions:
    /// [`SERIALIZED_MAGIC`], then each set's length (`u64` little-endian, 0 for no MZ set) and
    /// bytes.
    pub fn serialize(&self) -> Result<Vec<u8>, EngineError> {
        let failed = |err: yara_x::errors::SerializationError| {
            EngineError::Definitions(format!("cannot serialize compiled rules: {err}"))
        };
        let general = self.general.serialize().map_err(failed)?;
        let mz = match &self.mz {
            Some(rules) => rules.serialize().map_err(failed)?,
            None => Vec::new(),
        };
        let mut out = SERIALIZED_MAGIC.to_vec();
        for set in [&general, &mz] {
            out.extend_from_slice(&(set.len() as u64).to_le_bytes());
            out.extend_from_slice(set);
        }
        Ok(out)
    }

    /// Loads rules serialized by [`YaraRules::serialize`] with the same yara-x version, compiled
    /// from `sources`.
    pub fn deserialize(bytes: &[u8], sources: &[RuleSource]) -> Result<Self, EngineError> {
        let bad =
            |why: String| EngineError::Definitions(format!("cannot load compiled rules: {why}"));
        let mut rest = bytes
            .strip_prefix(SERIALIZED_MAGIC.as_slice())
            .ok_or_else(|| bad("not in Vigil's layout".into()))?;
        let mut take = || -> Result<&[u8], EngineError> {
            let (len, after) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("truncated".into()))?;
            let len = usize::try_from(u64::from_le_bytes(*len))
                .map_err(|_| bad("a set too large".into()))?;
            let set = after.get(..len).ok_or_else(|| bad("truncated".into()))?;
            rest = &after[len..];
            Ok(set)
        };
        let (general, mz) = (take()?, take()?);
        let load = |set: &[u8]| yara_x::Rules::deserialize(set).map_err(|err| bad(err.to_string()));
        Ok(Self {
            general: load(general)?,
            mz: if mz.is_empty() { None } else { Some(load(mz)?) },
            file_externals: uses_file_externals(sources),
            max_match_details: YaraConfig::default().max_match_details,
        })
    }

    /// Sets how many pattern matches a detection lists (`yara.max_match_details`).
    pub fn set_max_match_details(&mut self, limit: usize) {
        self.max_match_details = limit;
    }

    /// Whether a file's name, folder or owner may change the result (the rules may use the
    /// per-file external variables).
    pub fn uses_file_externals(&self) -> bool {
        self.file_externals
    }

    /// How many rules the set holds.
    pub fn rule_count(&self) -> usize {
        self.general.iter().len() + self.mz.as_ref().map_or(0, |mz| mz.iter().len())
    }

    /// A scanner for one worker thread, with the per-file timeout.
    pub fn scanner(&self, timeout: Duration) -> YaraScanner<'_> {
        let scanner = |rules| {
            let mut scanner = yara_x::Scanner::new(rules);
            scanner.set_timeout(timeout);
            scanner
        };
        YaraScanner {
            general: scanner(&self.general),
            mz: self.mz.as_ref().map(scanner),
            file_externals: self.file_externals,
            max_match_details: self.max_match_details,
            owners: Owners::default(),
        }
    }
}

/// Compiles one set: each source (with the text given for it) in a namespace named after its
/// file; errors rendered together, warnings appended to `warnings`.
fn compile_set<'a>(
    sources: impl Iterator<Item = (&'a RuleSource, &'a str)>,
    defines: &Defines,
    warnings: &mut Vec<String>,
) -> Result<yara_x::Rules, EngineError> {
    let mut compiler = yara_x::Compiler::new();
    externals::declare(&mut compiler, defines)?;
    for (source, text) in sources {
        // Each file gets its own namespace so two files may use the same rule name.
        compiler.new_namespace(&namespace_for(&source.origin));
        // Errors are collected by the compiler and rendered together below.
        let _ =
            compiler.add_source(yara_x::SourceCode::from(text).with_origin(source.origin.as_str()));
    }
    let errors = compiler.errors();
    if !errors.is_empty() {
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(EngineError::Rules(rendered.join("\n")));
    }
    warnings.extend(compiler.warnings().iter().map(ToString::to_string));
    Ok(compiler.build())
}

/// Whether any source may use a per-file external variable.
fn uses_file_externals(sources: &[RuleSource]) -> bool {
    sources
        .iter()
        .any(|source| externals::used_in(&source.text))
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

/// One worker's YARA-X scanners, one per rule set (not `Send`: they live and die on their worker
/// thread).
pub struct YaraScanner<'r> {
    general: yara_x::Scanner<'r>,
    mz: Option<yara_x::Scanner<'r>>,
    file_externals: bool,
    max_match_details: usize,
    owners: Owners,
}

impl YaraScanner<'_> {
    /// Scans `data`, the content of the file at `path` owned by `uid` (none for bytes that are
    /// not a file), appending a finding per matching rule.
    pub fn scan(
        &mut self,
        path: &Path,
        uid: Option<u32>,
        data: &[u8],
        out: &mut Vec<Finding>,
    ) -> Result<(), String> {
        let values = self
            .file_externals
            .then(|| FileValues::of(path, uid, data, &mut self.owners));
        let mz = self.mz.as_mut().filter(|_| data.starts_with(split::MZ));
        for scanner in std::iter::once(&mut self.general).chain(mz) {
            if let Some(values) = &values {
                set_file_values(scanner, values)?;
            }
            let results = scanner.scan(data).map_err(|err| match err {
                yara_x::ScanError::Timeout => {
                    "YARA scan timed out (antivirus_engine.scan_timeout)".to_string()
                }
                other => format!("YARA scan failed: {other}"),
            })?;
            out.extend(
                results
                    .matching_rules()
                    .map(|rule| finding_for(&rule, self.max_match_details)),
            );
        }
        Ok(())
    }
}

/// Sets the per-file external variables of one scanner.
fn set_file_values(scanner: &mut yara_x::Scanner<'_>, values: &FileValues) -> Result<(), String> {
    let set = [
        ("filename", values.filename.as_str()),
        ("filepath", values.filepath.as_str()),
        ("extension", values.extension.as_str()),
        ("filetype", values.filetype),
        ("owner", values.owner.as_str()),
    ];
    for (name, value) in set {
        scanner
            .set_global(name, value)
            .map_err(|err| format!("cannot set the external variable {name}: {err}"))?;
    }
    Ok(())
}

/// Turns a matching rule into a finding: the threat, severity and description from its `threat`,
/// `severity` (else from `score`, see [`severity_from_score`]) and `description` metadata, the
/// first match's offset, and the details (tags, metadata, matches; bounded).
fn finding_for(rule: &yara_x::Rule, max_matches: usize) -> Finding {
    let mut threat = None;
    let mut severity = None;
    let mut score = None;
    let mut description = None;
    let mut metadata = Vec::new();
    for (key, value) in rule.metadata() {
        let json = match value {
            yara_x::MetaValue::String(text) => serde_json::Value::from(cut(text)),
            yara_x::MetaValue::Bytes(bytes) => serde_json::Value::from(cut(&bytes.to_string())),
            yara_x::MetaValue::Integer(n) => serde_json::Value::from(n),
            yara_x::MetaValue::Float(n) => serde_json::Value::from(n),
            yara_x::MetaValue::Bool(b) => serde_json::Value::from(b),
        };
        let text = || match &json {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        match key {
            "threat" => threat = Some(text()),
            "severity" => severity = Some(text()),
            "description" => description = Some(text()),
            "score" => score = json.as_i64(),
            _ => {}
        }
        if metadata.len() < RuleDetails::MAX_METADATA {
            metadata.push((key.to_string(), json));
        }
    }
    // The first match of every pattern, then the others, up to the bound.
    let (mut matches, mut others) = (Vec::new(), Vec::new());
    let mut more_matches = 0u64;
    let mut first: Option<u64> = None;
    for pattern in rule.patterns() {
        for (index, found) in pattern.matches().enumerate() {
            let range = found.range();
            first = Some(first.map_or(range.start as u64, |at| at.min(range.start as u64)));
            let matched = PatternMatch {
                identifier: pattern.identifier().to_string(),
                offset: range.start as u64,
                length: range.len() as u64,
            };
            match index {
                0 => matches.push(matched),
                _ if others.len() < max_matches => others.push(matched),
                _ => more_matches += 1,
            }
        }
    }
    matches.extend(others);
    if matches.len() > max_matches {
        more_matches += (matches.len() - max_matches) as u64;
        matches.truncate(max_matches);
    }
    let rule_name = format!("{}.{}", rule.namespace(), rule.identifier());
    Finding {
        threat: threat.unwrap_or_else(|| rule_name.clone()),
        detector: "yara",
        rule: rule_name,
        severity: severity
            .or_else(|| score.map(|score| severity_from_score(score).to_string()))
            .unwrap_or_else(|| "unknown".into()),
        description: description.unwrap_or_default(),
        offset: first,
        details: Some(Box::new(RuleDetails {
            tags: rule
                .tags()
                .map(|tag| tag.identifier().to_string())
                .collect(),
            metadata,
            matches,
            more_matches,
        })),
        member: Vec::new(),
    }
}

/// The severity of a rule that gives a `score` (as signature-base's do) and no `severity`,
/// on THOR's scale: 100 and above `critical`, 80 and above `high` (THOR's alert), 60 and above
/// `medium` (warning), below that `low` (notice).
pub fn severity_from_score(score: i64) -> &'static str {
    match score {
        100.. => "critical",
        80..=99 => "high",
        60..=79 => "medium",
        _ => "low",
    }
}

/// A metadata text cut to [`RuleDetails::MAX_METADATA_TEXT`] bytes (at a character boundary).
fn cut(text: &str) -> String {
    let mut end = text.len().min(RuleDetails::MAX_METADATA_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
