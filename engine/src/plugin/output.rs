//! Checks what a plugin returns before anything of it is trusted: descriptors at load, findings
//! after every call. Anything out of shape is a fault, never a detection.

use super::bindings::{self, Descriptor, Severity};
use super::{InputSize, Magic, PluginInfo, Prefilter};
use crate::config::PluginsConfig;
use crate::report::Finding;

/// Longest threat name accepted.
const MAX_THREAT_NAME: usize = 128;
/// Limits on a descriptor's fields.
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 1024;
const MAX_MAGICS: usize = 64;
const MAX_MAGIC_BYTES: usize = 64;
const MAX_MAGIC_OFFSET: u32 = 1024 * 1024;
const MAX_EXTENSIONS: usize = 64;
const MAX_EXTENSION: usize = 16;

/// Validates a plugin's descriptor.
pub fn descriptor(raw: Descriptor, origin: &str, digest: String) -> Result<PluginInfo, String> {
    let bad = |what: String| Err(format!("describe() returned {what}"));
    let simple = |text: &str, extra: &[char]| {
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    if raw.name.is_empty() || raw.name.len() > MAX_NAME || !simple(&raw.name, &['-', '_']) {
        return bad(format!(
            "the name {:?}: use 1 to {MAX_NAME} letters, digits, `-` or `_`",
            raw.name
        ));
    }
    if raw.version.is_empty()
        || raw.version.len() > MAX_NAME
        || !simple(&raw.version, &['.', '-', '+'])
    {
        return bad(format!("the version {:?}: not a version", raw.version));
    }
    if raw.description.len() > MAX_DESCRIPTION || raw.description.chars().any(char::is_control) {
        return bad(format!(
            "a description over {MAX_DESCRIPTION} bytes or with control characters"
        ));
    }
    if raw.magic.len() > MAX_MAGICS
        || raw.magic.iter().any(|m| {
            m.bytes.is_empty() || m.bytes.len() > MAX_MAGIC_BYTES || m.offset > MAX_MAGIC_OFFSET
        })
    {
        return bad(format!(
            "bad magic: at most {MAX_MAGICS}, each of 1 to {MAX_MAGIC_BYTES} bytes at an offset up to {MAX_MAGIC_OFFSET}"
        ));
    }
    if let Some(magic) = raw
        .magic
        .iter()
        .find(|m| !m.mask.is_empty() && m.mask.len() != m.bytes.len())
    {
        return bad(format!(
            "a magic mask of {} bytes for {} bytes: give none, or one mask byte per byte",
            magic.mask.len(),
            magic.bytes.len()
        ));
    }
    if raw.extensions.len() > MAX_EXTENSIONS
        || raw
            .extensions
            .iter()
            .any(|ext| ext.is_empty() || ext.len() > MAX_EXTENSION || !simple(ext, &['-', '_']))
    {
        return bad(format!(
            "bad extensions: at most {MAX_EXTENSIONS}, each of 1 to {MAX_EXTENSION} letters or digits, no dot"
        ));
    }
    let input = match raw.input {
        bindings::InputSize::Prefix(0) => return bad("a prefix of 0 bytes".into()),
        bindings::InputSize::Prefix(bytes) => InputSize::Prefix(bytes),
        bindings::InputSize::WholeFile => InputSize::WholeFile,
    };
    let prefilter =
        Prefilter::new(raw.prefilter).map_err(|what| format!("describe() returned {what}"))?;
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        description: raw.description,
        magic: raw
            .magic
            .into_iter()
            .map(|m| Magic {
                offset: m.offset as usize,
                bytes: m.bytes,
                mask: m.mask,
                anywhere: m.anywhere,
            })
            .collect(),
        extensions: raw
            .extensions
            .into_iter()
            .map(|ext| ext.to_ascii_lowercase())
            .collect(),
        min_size: raw.min_size,
        input,
        wants_name: raw.wants_name,
        prefilter,
        contract: "",
        origin: origin.to_string(),
        digest,
        from_cache: false,
    })
}

/// Validates one call's findings against the limits and turns them into detections.
pub fn check(
    raw: Vec<bindings::Finding>,
    plugin: &PluginInfo,
    file_size: u64,
    limits: &PluginsConfig,
) -> Result<Vec<Finding>, String> {
    if raw.len() > limits.max_findings as usize {
        return Err(format!(
            "returned {} findings, more than plugins.max_findings ({})",
            raw.len(),
            limits.max_findings
        ));
    }
    let text: usize = raw
        .iter()
        .map(|f| f.threat.len() + f.description.len())
        .sum();
    if text as u64 > limits.max_output_size {
        return Err(format!(
            "returned {text} bytes of text, more than plugins.max_output_size ({})",
            limits.max_output_size
        ));
    }
    raw.into_iter()
        .map(|finding| {
            if !is_threat_name(&finding.threat) {
                return Err(format!(
                    "returned a malformed threat name {:?} (expected Family:Platform/Name)",
                    finding.threat
                ));
            }
            if finding.offset.is_some_and(|offset| offset >= file_size) {
                return Err(format!(
                    "returned offset {} for a file of {file_size} bytes",
                    finding.offset.unwrap_or_default()
                ));
            }
            Ok(Finding {
                threat: finding.threat,
                detector: "plugin",
                rule: plugin.name.clone(),
                severity: severity(finding.severity).into(),
                description: finding
                    .description
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect(),
                offset: finding.offset,
                details: None,
                member: Vec::new(),
            })
        })
        .collect()
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// `Family:Platform/Name`, each part non-empty, of letters, digits and `-_.!`.
fn is_threat_name(name: &str) -> bool {
    let part = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.!".contains(c))
    };
    name.len() <= MAX_THREAT_NAME
        && name.split_once(':').is_some_and(|(family, rest)| {
            part(family)
                && rest
                    .split_once('/')
                    .is_some_and(|(platform, name)| part(platform) && part(name))
        })
}

#[cfg(test)]
mod tests {
    use super::bindings::{Descriptor, InputSize};
    use super::{descriptor, is_threat_name};
    use crate::plugin::bindings::current::exports::vigil::plugin::detector::Magic;

    #[test]
    fn a_magic_mask_must_cover_its_bytes_exactly() {
        let with_mask = |mask: &[u8]| Descriptor {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            magic: vec![Magic {
                offset: 0,
                bytes: b"MZ".to_vec(),
                mask: mask.to_vec(),
                anywhere: true,
            }],
            extensions: Vec::new(),
            min_size: 0,
            input: InputSize::WholeFile,
            wants_name: false,
            prefilter: Vec::new(),
        };
        assert!(descriptor(with_mask(b""), "o", String::new()).is_ok());
        let info = descriptor(with_mask(b"\xff\x0f"), "o", String::new()).unwrap();
        assert_eq!(
            (info.magic[0].anywhere, &info.magic[0].mask[..]),
            (true, &b"\xff\x0f"[..])
        );
        let err = descriptor(with_mask(b"\xff"), "o", String::new()).unwrap_err();
        assert_eq!(
            err,
            "describe() returned a magic mask of 1 bytes for 2 bytes: give none, or one mask \
             byte per byte"
        );
    }

    #[test]
    fn a_prefilter_of_empty_or_overlong_strings_is_refused_by_name() {
        let with_prefilter = |prefilter: Vec<Vec<u8>>| Descriptor {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            magic: Vec::new(),
            extensions: vec!["js".into()],
            min_size: 0,
            input: InputSize::WholeFile,
            wants_name: false,
            prefilter,
        };
        let info = descriptor(with_prefilter(vec![b"eval(".to_vec()]), "o", String::new());
        assert_eq!(info.unwrap().prefilter.literals(), [b"eval(".to_vec()]);
        for bad in [vec![Vec::new()], vec![vec![b'x'; 65]]] {
            let err = descriptor(with_prefilter(bad), "o", String::new()).unwrap_err();
            assert_eq!(
                err,
                "describe() returned a bad prefilter: at most 256 byte strings, each of 1 to 64 \
                 bytes"
            );
        }
    }

    #[test]
    fn threat_names_follow_family_platform_name() {
        for good in [
            "Packed:Linux/HighEntropy",
            "Bomb:Multi/Zip.Overlap",
            "A:B/C",
        ] {
            assert!(is_threat_name(good), "{good}");
        }
        for bad in [
            "",
            "Packed",
            "Packed:Linux",
            ":Linux/X",
            "A:/X",
            "A:B/",
            "A:B/C D",
            "A:B/\u{1b}[2J",
        ] {
            assert!(!is_threat_name(bad), "{bad:?}");
        }
    }
}

/// Property tests: whatever a plugin returns, `check` either refuses it or yields detections that
/// respect every limit (count, text, name shape, offset inside the file).
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    fn info() -> PluginInfo {
        PluginInfo::for_tests()
    }

    fn finding() -> impl Strategy<Value = bindings::Finding> {
        (
            prop_oneof!["\\PC{0,40}", "[A-Za-z]{1,8}:[A-Za-z]{1,8}/[A-Za-z.]{1,12}"],
            "\\PC{0,60}",
            proptest::option::of(0u64..2000),
        )
            .prop_map(|(threat, description, offset)| bindings::Finding {
                threat,
                severity: Severity::High,
                description,
                offset,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn accepted_output_respects_every_limit(
            raw in proptest::collection::vec(finding(), 0..12),
            file_size in 1u64..1500,
            max_findings in 0u32..10,
            max_output_size in 0u64..400,
        ) {
            let limits = PluginsConfig { max_findings, max_output_size, ..PluginsConfig::default() };
            if let Ok(found) = check(raw.clone(), &info(), file_size, &limits) {
                prop_assert!(found.len() <= max_findings as usize);
                let text: usize = raw.iter().map(|f| f.threat.len() + f.description.len()).sum();
                prop_assert!(text as u64 <= max_output_size);
                for finding in found {
                    prop_assert!(is_threat_name(&finding.threat));
                    prop_assert!(finding.offset.is_none_or(|o| o < file_size));
                    prop_assert!(!finding.description.chars().any(char::is_control));
                }
            }
        }
    }
}
