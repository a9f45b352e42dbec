//! The definitions drop format: one tar archive holding a signed manifest and the files it lists.
//!
//! ```text
//! manifest.json   {"format":1,"version":N,"min_engine_version":"X.Y.Z","created":UNIX,"files":[{"path","size","blake3"}]}
//! manifest.sig    "<public key line>\n<ed25519 signature of manifest.json, hex>\n"
//! rules/*.yar     YARA rule sources (.yar or .yara)
//! hashes/*.txt    hash lists: "<sha256 hex> <threat name>" per line, '#' comments
//! plugins/*.wasm  WebAssembly detection plugins
//! ```
//!
//! [`open`] checks everything before returning anything: entry names (relative, no `..`, no links,
//! no duplicates, only the layout above), the signature against trusted keys, every size and digest,
//! and that the archive holds exactly the files of the manifest. [`build`] writes a drop that passes.
//! The crate is small on purpose: the engine uses it to install drops and the engine's build script
//! uses it to build the project's default drop, with the same code.

pub mod channel;

use std::collections::BTreeMap;
use std::io::Read;

use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The manifest's file name inside a drop.
pub const MANIFEST: &str = "manifest.json";
/// The signature's file name inside a drop.
pub const SIGNATURE: &str = "manifest.sig";
/// The manifest format this crate reads and writes.
pub const FORMAT: u32 = 1;
/// The prefix of a public key line (`vigil-ed25519 <64 hex digits>`).
pub const KEY_PREFIX: &str = "vigil-ed25519";

/// The signed description of a drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format of this manifest ([`FORMAT`]).
    pub format: u32,
    /// The definitions version; an update must raise it.
    pub version: u64,
    /// The oldest engine (`major.minor.patch`) that can use these definitions.
    pub min_engine_version: String,
    /// When the drop was built (Unix seconds).
    pub created: i64,
    /// Every file of the drop besides the manifest and its signature.
    pub files: Vec<FileEntry>,
}

/// One file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path inside the drop, e.g. `rules/eicar.yar`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
}

/// What is wrong with a drop (or a key); each names the entry or field concerned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DropError {
    /// The archive cannot be read (truncated, not a tar).
    #[error("the archive is damaged or truncated: {0}")]
    Archive(String),
    /// An entry name is absolute, has `..`, or is outside the layout.
    #[error("entry {name:?} is not allowed: {why}")]
    EntryName {
        /// The entry's name as stored.
        name: String,
        /// Why it is refused.
        why: String,
    },
    /// An entry is a link, device or directory rather than a regular file.
    #[error("entry {0:?} is not a regular file (links and special entries are refused)")]
    NotAFile(String),
    /// Two entries have the same name.
    #[error("entry {0:?} appears twice")]
    Duplicate(String),
    /// The drop exceeds a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// `manifest.json` or `manifest.sig` is missing.
    #[error("the drop has no {0}")]
    Missing(&'static str),
    /// The manifest does not parse or holds an unknown field.
    #[error("manifest.json is invalid: {0}")]
    Manifest(String),
    /// The signature file is malformed or the signature does not verify.
    #[error("bad signature: {0}")]
    Signature(String),
    /// The manifest is signed by a key that is not in `definitions.trusted_keys`.
    #[error("signed by an untrusted key ({0}); add it to definitions.trusted_keys to accept it")]
    UntrustedKey(String),
    /// A listed file is not in the archive.
    #[error("{0} is listed in the manifest but missing from the archive")]
    MissingFile(String),
    /// The archive holds a file the manifest does not list.
    #[error("{0} is in the archive but not in the manifest")]
    Unlisted(String),
    /// A file's size or digest differs from the manifest.
    #[error("{path} does not match the manifest ({what} differs): tampered or damaged")]
    Mismatch {
        /// The file.
        path: String,
        /// `size` or `blake3`.
        what: &'static str,
    },
    /// A key line or key file is malformed.
    #[error("invalid key: {0}")]
    Key(String),
}

/// A drop whose signature, names, sizes and digests have all been checked.
#[derive(Debug, Clone)]
pub struct VerifiedDrop {
    /// The signed manifest.
    pub manifest: Manifest,
    /// The public key line that signed it.
    pub signer: String,
    /// `manifest.json` exactly as signed.
    pub manifest_bytes: Vec<u8>,
    /// `manifest.sig` as found.
    pub signature_bytes: Vec<u8>,
    /// Every listed file's content, by path.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Which folder a drop file belongs to, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `rules/*.yar` and `rules/*.yara`.
    Rules,
    /// `hashes/*.txt`.
    Hashes,
    /// `plugins/*.wasm`.
    Plugin,
}

/// The kind of a drop path, or why the path is not allowed.
pub fn kind_of(path: &str) -> Result<Kind, String> {
    let (folder, name) = path
        .split_once('/')
        .ok_or_else(|| "files live in rules/, hashes/ or plugins/".to_string())?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err("expected folder/name with a plain file name".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("file names use only letters, digits, '.', '_' and '-'".into());
    }
    let (kind, extensions): (Kind, &[&str]) = match folder {
        "rules" => (Kind::Rules, &[".yar", ".yara"]),
        "hashes" => (Kind::Hashes, &[".txt"]),
        "plugins" => (Kind::Plugin, &[".wasm"]),
        _ => return Err(format!("unknown folder {folder:?}")),
    };
    if !extensions.iter().any(|extension| name.ends_with(extension)) {
        return Err(format!(
            "files in {folder}/ end in {}",
            extensions.join(" or ")
        ));
    }
    Ok(kind)
}

/// A new random signing key.
pub fn generate_key() -> Result<SigningKey, DropError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .map_err(|err| DropError::Key(format!("no randomness: {err}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The text form of a secret key file: `vigil-ed25519-secret <hex seed>`.
pub fn secret_key_text(key: &SigningKey) -> String {
    format!("{KEY_PREFIX}-secret {}\n", hex(key.as_bytes()))
}

/// Parses a secret key file written by [`secret_key_text`].
pub fn parse_secret_key(text: &str) -> Result<SigningKey, DropError> {
    let hex_seed = text
        .trim()
        .strip_prefix(&format!("{KEY_PREFIX}-secret "))
        .ok_or_else(|| {
            DropError::Key(format!(
                "a secret key file starts with `{KEY_PREFIX}-secret`"
            ))
        })?;
    let seed: [u8; 32] = unhex(hex_seed.trim())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| DropError::Key("the secret key is not 64 hex digits".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The one-line text form of a public key (`definitions.trusted_keys` holds such lines).
pub fn public_key_line(key: &VerifyingKey) -> String {
    format!("{KEY_PREFIX} {}", hex(key.as_bytes()))
}

/// Parses a public key line; anything after the key (a comment) is ignored.
pub fn parse_public_key(line: &str) -> Result<VerifyingKey, DropError> {
    let mut words = line.split_whitespace();
    if words.next() != Some(KEY_PREFIX) {
        return Err(DropError::Key(format!(
            "{line:?} does not start with `{KEY_PREFIX}`"
        )));
    }
    let bytes: [u8; 32] = words
        .next()
        .and_then(unhex)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| DropError::Key(format!("{line:?}: the key is not 64 hex digits")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|err| DropError::Key(format!("{line:?}: {err}")))
}

/// Writes a drop holding `files` (path, content), signed with `key`.
pub fn build(
    files: &[(String, Vec<u8>)],
    version: u64,
    min_engine_version: &str,
    created: i64,
    key: &SigningKey,
) -> Result<Vec<u8>, DropError> {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for pair in sorted.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(DropError::Duplicate(pair[0].0.clone()));
        }
    }
    for (path, _) in &sorted {
        kind_of(path).map_err(|why| DropError::EntryName {
            name: path.clone(),
            why,
        })?;
    }
    let manifest = Manifest {
        format: FORMAT,
        version,
        min_engine_version: min_engine_version.to_string(),
        created,
        files: sorted
            .iter()
            .map(|(path, content)| FileEntry {
                path: path.clone(),
                size: content.len() as u64,
                blake3: blake3::hash(content).to_hex().to_string(),
            })
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
    let signature = key.sign(&manifest_bytes);
    let signature_text = format!(
        "{}\n{}\n",
        public_key_line(&key.verifying_key()),
        hex(&signature.to_bytes())
    );
    let mut archive = tar::Builder::new(Vec::new());
    let mut append = |path: &str, content: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(created.max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, path, content)
            .map_err(|err| DropError::Archive(err.to_string()))
    };
    append(MANIFEST, &manifest_bytes)?;
    append(SIGNATURE, signature_text.as_bytes())?;
    for (path, content) in sorted {
        append(path, content)?;
    }
    archive
        .into_inner()
        .map_err(|err| DropError::Archive(err.to_string()))
}

/// Reads and verifies a drop. `trusted` are the accepted public keys; `max_size` bounds the
/// archive and the sum of its entries.
pub fn open(
    archive: &[u8],
    trusted: &[VerifyingKey],
    max_size: u64,
) -> Result<VerifiedDrop, DropError> {
    if archive.len() as u64 > max_size {
        return Err(DropError::TooLarge(format!(
            "the drop is {} bytes, more than definitions.max_drop_size ({max_size})",
            archive.len()
        )));
    }
    let mut entries = read_entries(archive, max_size)?;
    let manifest_bytes = entries
        .remove(MANIFEST)
        .ok_or(DropError::Missing(MANIFEST))?;
    let signature_text = entries
        .remove(SIGNATURE)
        .ok_or(DropError::Missing(SIGNATURE))?;
    let signer = verify_signature(&manifest_bytes, &signature_text, trusted)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|err| DropError::Manifest(err.to_string()))?;
    if manifest.format != FORMAT {
        return Err(DropError::Manifest(format!(
            "format {} is not supported (this engine reads format {FORMAT})",
            manifest.format
        )));
    }
    let mut files = BTreeMap::new();
    for entry in &manifest.files {
        kind_of(&entry.path).map_err(|why| DropError::EntryName {
            name: entry.path.clone(),
            why,
        })?;
        let content = entries
            .remove(&entry.path)
            .ok_or_else(|| DropError::MissingFile(entry.path.clone()))?;
        if content.len() as u64 != entry.size {
            return Err(DropError::Mismatch {
                path: entry.path.clone(),
                what: "size",
            });
        }
        if blake3::hash(&content).to_hex().as_str() != entry.blake3 {
            return Err(DropError::Mismatch {
                path: entry.path.clone(),
                what: "blake3",
            });
        }
        if files.insert(entry.path.clone(), content).is_some() {
            return Err(DropError::Manifest(format!(
                "{} is listed twice",
                entry.path
            )));
        }
    }
    if let Some(extra) = entries.into_keys().next() {
        return Err(DropError::Unlisted(extra));
    }
    Ok(VerifiedDrop {
        manifest,
        signer,
        manifest_bytes,
        signature_bytes: signature_text,
        files,
    })
}

/// Reads every entry, refusing bad names, non-files, duplicates and oversize content.
fn read_entries(archive: &[u8], max_size: u64) -> Result<BTreeMap<String, Vec<u8>>, DropError> {
    let archive_error = |err: std::io::Error| DropError::Archive(err.to_string());
    let mut reader = tar::Archive::new(archive);
    let mut entries = BTreeMap::new();
    let mut total = 0u64;
    for entry in reader.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw_name).map_err(|err| DropError::EntryName {
            name: String::from_utf8_lossy(err.as_bytes()).into_owned(),
            why: "not UTF-8".into(),
        })?;
        check_entry_name(&name)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(DropError::NotAFile(name));
        }
        total = total.saturating_add(entry.size());
        if total > max_size {
            return Err(DropError::TooLarge(format!(
                "the drop's entries exceed definitions.max_drop_size ({max_size} bytes)"
            )));
        }
        let mut content = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut content).map_err(archive_error)?;
        if content.len() as u64 != entry.size() {
            return Err(DropError::Archive(format!("{name} is cut short")));
        }
        if entries.insert(name.clone(), content).is_some() {
            return Err(DropError::Duplicate(name));
        }
    }
    Ok(entries)
}

/// Refuses absolute names, `..`, `.`, empty components and backslashes; the layout itself is
/// checked against the manifest.
fn check_entry_name(name: &str) -> Result<(), DropError> {
    let refuse = |why: &str| {
        Err(DropError::EntryName {
            name: name.to_string(),
            why: why.to_string(),
        })
    };
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    if name.contains('\\') || name.contains('\0') {
        return refuse("backslash or NUL in the name");
    }
    if name.split('/').any(|part| part == "..") {
        return refuse("`..` component");
    }
    if name.split('/').any(|part| part.is_empty() || part == ".") {
        return refuse("empty or `.` component");
    }
    if name != MANIFEST && name != SIGNATURE {
        kind_of(name).map_err(|why| DropError::EntryName {
            name: name.to_string(),
            why,
        })?;
    }
    Ok(())
}

/// Checks `manifest.sig` against the manifest and the trusted keys; returns the signer's line.
fn verify_signature(
    manifest: &[u8],
    signature_file: &[u8],
    trusted: &[VerifyingKey],
) -> Result<String, DropError> {
    let text = std::str::from_utf8(signature_file)
        .map_err(|_| DropError::Signature("manifest.sig is not text".into()))?;
    let mut lines = text.lines();
    let key_line = lines
        .next()
        .ok_or_else(|| DropError::Signature("manifest.sig is empty".into()))?;
    let key = parse_public_key(key_line).map_err(|err| DropError::Signature(err.to_string()))?;
    let signature: [u8; 64] = lines
        .next()
        .and_then(|line| unhex(line.trim()))
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| DropError::Signature("the signature is not 128 hex digits".into()))?;
    if !trusted.contains(&key) {
        return Err(DropError::UntrustedKey(public_key_line(&key)));
    }
    key.verify(manifest, &Signature::from_bytes(&signature))
        .map_err(|_| DropError::Signature("it does not verify against manifest.json".into()))?;
    Ok(public_key_line(&key))
}

/// Bytes in lower-case hex (digests, keys and signatures are written this way).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
