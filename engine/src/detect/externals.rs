//! External variables of YARA rules: the five that THOR and Loki set for every file (`filename`,
//! `filepath`, `extension`, `filetype`, `owner`), which public rule sets such as signature-base
//! use, and constants defined by the administrator (`[yara] defines`, `--define NAME=VALUE`).
//!
//! Semantics follow THOR's documentation: `filename` is the name without its folder
//! (`cmd.exe`), `filepath` the folder without the name (`/usr/bin`), `extension` the extension
//! with its dot, in lower case (`.exe`, empty when there is none), `filetype` a type sniffed from
//! the content ([`filetype`]), `owner` the name of the file's owner (its numeric id when the
//! user database has no name for it).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// The per-file external variables, in the order they are declared.
pub const PER_FILE: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// The value of a constant defined for the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DefineValue {
    /// `true` or `false`.
    Bool(bool),
    /// A 64-bit integer.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// Any other text.
    String(String),
}

impl DefineValue {
    /// Reads a `--define` value as `yr` does: `true`/`false`, an integer, a float, else text
    /// (surrounding double quotes removed).
    pub fn parse(text: &str) -> Self {
        match text {
            "true" => return Self::Bool(true),
            "false" => return Self::Bool(false),
            _ => {}
        }
        if let Ok(integer) = text.parse() {
            return Self::Integer(integer);
        }
        if let Ok(float) = text.parse::<f64>()
            && float.is_finite()
        {
            return Self::Float(float);
        }
        let unquoted = text
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(text);
        Self::String(unquoted.to_string())
    }
}

/// Constants defined for the rules, by name.
pub type Defines = BTreeMap<String, DefineValue>;

/// Checks that the constants can be declared: identifiers, and not one of the per-file names.
pub fn check_defines(defines: &Defines) -> Result<(), String> {
    for name in defines.keys() {
        let mut chars = name.chars();
        let identifier = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(format!(
                "the external variable name {name:?} is not an identifier (letters, digits, `_`)"
            ));
        }
        if PER_FILE.contains(&name.as_str()) {
            return Err(format!(
                "`{name}` is set by Vigil for every file and cannot be defined"
            ));
        }
    }
    Ok(())
}

/// Declares the per-file variables (empty text until a file sets them) and the constants.
pub fn declare(compiler: &mut yara_x::Compiler, defines: &Defines) -> Result<(), EngineError> {
    let failed = |name: &str, err: yara_x::errors::VariableError| {
        EngineError::Rules(format!(
            "cannot define the external variable `{name}`: {err}"
        ))
    };
    for name in PER_FILE {
        compiler
            .define_global(name, "")
            .map_err(|err| failed(name, err))?;
    }
    for (name, value) in defines {
        let defined = match value {
            DefineValue::Bool(value) => compiler.define_global(name, *value),
            DefineValue::Integer(value) => compiler.define_global(name, *value),
            DefineValue::Float(value) => compiler.define_global(name, *value),
            DefineValue::String(value) => compiler.define_global(name, value.as_str()),
        };
        defined.map_err(|err| failed(name, err))?;
    }
    Ok(())
}

/// Whether any of the sources may use a per-file variable: one of the names appears as a word.
/// It may be in a comment or a string too; the cost of a false yes is only a less shared cache.
pub fn used_in(text: &str) -> bool {
    PER_FILE.iter().any(|name| {
        text.match_indices(name).any(|(at, _)| {
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            let before = text[..at].chars().next_back().is_none_or(|c| !word(c));
            let after = text[at + name.len()..]
                .chars()
                .next()
                .is_none_or(|c| !word(c));
            before && after
        })
    })
}

/// The per-file values for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileValues {
    /// The name without its folder.
    pub filename: String,
    /// The folder, without the name.
    pub filepath: String,
    /// `.ext` in lower case, or empty.
    pub extension: String,
    /// The sniffed type.
    pub filetype: &'static str,
    /// The owner's user name.
    pub owner: String,
}

impl FileValues {
    /// The values for the file at `path` owned by `uid` (none for bytes that are not a file),
    /// with content `data`; user names are looked up once per worker in `owners`.
    pub fn of(path: &Path, uid: Option<u32>, data: &[u8], owners: &mut Owners) -> Self {
        let (filename, extension) = crate::object::name_and_extension(path);
        let filepath = path
            .parent()
            .map(|folder| folder.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = if extension.is_empty() {
            extension
        } else {
            format!(".{extension}")
        };
        Self {
            filename,
            filepath,
            extension,
            filetype: filetype(data),
            owner: uid.map(|uid| owners.name(uid)).unwrap_or_default(),
        }
    }
}

/// User names by id, looked up in the user database once each.
#[derive(Default)]
pub struct Owners {
    names: HashMap<u32, String>,
}

impl Owners {
    /// The user name of `uid`, or the number as text when the database has none.
    pub fn name(&mut self, uid: u32) -> String {
        self.names
            .entry(uid)
            .or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string()))
            .clone()
    }
}

/// The user database's name for `uid` (`getpwuid_r`).
fn user_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; zeroed is a valid (empty) value for getpwuid_r to fill.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and the buffer's length is passed with it.
    let status = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated string in `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The file type `filetype` holds, sniffed from the first bytes, with the names THOR uses
/// (`EXE`, `ELF`, `MACH-O`, `ZIP`, `PDF`, `RTF`, `MDMP`...; scripts by their first line); empty
/// when none fits.
pub fn filetype(data: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"MZ", "EXE"),
        (b"\x7fELF", "ELF"),
        (b"\xfe\xed\xfa\xce", "MACH-O"),
        (b"\xfe\xed\xfa\xcf", "MACH-O"),
        (b"\xce\xfa\xed\xfe", "MACH-O"),
        (b"\xcf\xfa\xed\xfe", "MACH-O"),
        (b"\xca\xfe\xba\xbe", "MACH-O"),
        (b"PK\x03\x04", "ZIP"),
        (b"%PDF", "PDF"),
        (b"{\\rtf", "RTF"),
        (b"MDMP", "MDMP"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE"),
        (b"\x1f\x8b", "GZIP"),
        (b"Rar!\x1a\x07", "RAR"),
        (b"7z\xbc\xaf\x27\x1c", "7Z"),
        (b"\x89PNG", "PNG"),
        (b"\xff\xd8\xff", "JPEG"),
        (b"GIF8", "GIF"),
        (b"<?php", "PHP"),
        (b"<%@", "JSP"),
    ];
    if let Some((_, kind)) = MAGIC.iter().find(|(magic, _)| data.starts_with(magic)) {
        return kind;
    }
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let first_line = first_line.to_ascii_lowercase();
    let has = |needle: &[u8]| first_line.windows(needle.len()).any(|w| w == needle);
    if first_line.starts_with(b"#!") {
        if has(b"python") {
            return "Python";
        }
        if has(b"perl") {
            return "Perl";
        }
        if has(b"sh") {
            return "SHELL";
        }
        return "SCRIPT";
    }
    if first_line.starts_with(b"@echo off") {
        return "BATCH";
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_thor_semantics() {
        let mut owners = Owners::default();
        let values = FileValues::of(
            Path::new("/srv/www/Shell.PHP"),
            Some(0),
            b"<?php eval($_POST['x']);",
            &mut owners,
        );
        assert_eq!(
            values,
            FileValues {
                filename: "Shell.PHP".into(),
                filepath: "/srv/www".into(),
                extension: ".php".into(),
                filetype: "PHP",
                owner: "root".into(),
            }
        );
        let values = FileValues::of(Path::new("README"), None, b"text", &mut owners);
        assert_eq!(
            (
                values.extension.as_str(),
                values.filetype,
                values.owner.as_str()
            ),
            ("", "", "")
        );
        assert_eq!(owners.name(4_000_000), "4000000", "no such user");
    }

    #[test]
    fn defines_parse_like_yr_and_bad_names_are_refused() {
        assert_eq!(DefineValue::parse("true"), DefineValue::Bool(true));
        assert_eq!(DefineValue::parse("-12"), DefineValue::Integer(-12));
        assert_eq!(DefineValue::parse("1.5"), DefineValue::Float(1.5));
        assert_eq!(
            DefineValue::parse("\"x y\""),
            DefineValue::String("x y".into())
        );
        assert_eq!(DefineValue::parse("nan"), DefineValue::String("nan".into()));
        let one = |name: &str| Defines::from([(name.to_string(), DefineValue::Bool(true))]);
        assert!(check_defines(&one("is_server")).is_ok());
        assert!(
            check_defines(&one("9x"))
                .unwrap_err()
                .contains("not an identifier")
        );
        assert!(
            check_defines(&one("owner"))
                .unwrap_err()
                .contains("set by Vigil")
        );
    }

    #[test]
    fn use_of_a_per_file_variable_is_found_as_a_word() {
        assert!(used_in("condition: filename == \"a\""));
        assert!(used_in("condition: $a and\n\towner == \"x\""));
        assert!(!used_in("condition: $filename_string and my_filepath_x"));
    }
}
