//! The channel index: a small signed file telling clients which drop a channel offers now.
//!
//! ```text
//! <server>/<channel>/index.json
//! {"index": "<the ChannelIndex as JSON text>", "signer": "vigil-ed25519 <hex>", "signature": "<hex>"}
//! ```
//!
//! The signature covers the exact bytes of the `index` string, so no re-serialisation can change
//! what was signed. A publisher signs with the key that signs its drops; a client trusts the
//! same `definitions.trusted_keys`. Freshness (issued-at against the newest index seen, expiry)
//! is the client's to check: this crate only says what the signed index holds.

use ed25519_dalek::{Signature, Signer, Verifier};
use serde::{Deserialize, Serialize};

use crate::{DropError, SigningKey, VerifyingKey, hex, parse_public_key, public_key_line, unhex};

/// The index format this crate reads and writes.
pub const INDEX_FORMAT: u32 = 1;
/// The index's file name in a channel's folder.
pub const INDEX_FILE: &str = "index.json";
/// The largest index file read, in bytes.
pub const MAX_INDEX_SIZE: usize = 64 * 1024;

/// What a channel offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelIndex {
    /// [`INDEX_FORMAT`].
    pub format: u32,
    /// The channel's name (must be the one the client follows).
    pub channel: String,
    /// The drop's definitions version.
    pub version: u64,
    /// Where the drop is: a URL, or a path relative to the index's URL.
    pub drop: String,
    /// The drop's size in bytes.
    pub size: u64,
    /// The drop's SHA-256, hex.
    pub sha256: String,
    /// When the index was signed (Unix seconds).
    pub issued_at: i64,
    /// When it stops being valid (Unix seconds).
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedIndex {
    index: String,
    signer: String,
    signature: String,
}

/// Signs `index` with `key`: the bytes of an `index.json`.
pub fn sign_index(index: &ChannelIndex, key: &SigningKey) -> Vec<u8> {
    let text = serde_json::to_string(index).expect("indexes serialize");
    let signature = key.sign(text.as_bytes());
    let signed = SignedIndex {
        index: text,
        signer: public_key_line(&key.verifying_key()),
        signature: hex(&signature.to_bytes()),
    };
    let mut bytes = serde_json::to_vec_pretty(&signed).expect("indexes serialize");
    bytes.push(b'\n');
    bytes
}

/// Reads an `index.json`: checks its size, that it is signed by one of `trusted` and that the
/// signature verifies, then parses what was signed.
pub fn open_index(bytes: &[u8], trusted: &[VerifyingKey]) -> Result<ChannelIndex, DropError> {
    if bytes.len() > MAX_INDEX_SIZE {
        return Err(DropError::TooLarge(format!(
            "the index is {} bytes, over the limit of {MAX_INDEX_SIZE}",
            bytes.len()
        )));
    }
    let signed: SignedIndex = serde_json::from_slice(bytes)
        .map_err(|err| DropError::Manifest(format!("index.json: {err}")))?;
    let signer = parse_public_key(&signed.signer)?;
    if !trusted.contains(&signer) {
        return Err(DropError::UntrustedKey(signed.signer));
    }
    let signature: [u8; 64] = unhex(&signed.signature)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| DropError::Signature("the index signature is not 128 hex digits".into()))?;
    signer
        .verify(signed.index.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| DropError::Signature("it does not verify against the index".into()))?;
    let index: ChannelIndex = serde_json::from_str(&signed.index)
        .map_err(|err| DropError::Manifest(format!("index.json: {err}")))?;
    if index.format != INDEX_FORMAT {
        return Err(DropError::Manifest(format!(
            "index format {} is not {INDEX_FORMAT}",
            index.format
        )));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ChannelIndex {
        ChannelIndex {
            format: INDEX_FORMAT,
            channel: "production".into(),
            version: 4,
            drop: "drops/vigil-4.drop".into(),
            size: 10,
            sha256: "00".repeat(32),
            issued_at: 100,
            expires_at: 200,
        }
    }

    #[test]
    fn a_signed_index_opens_only_with_its_key_and_unaltered() {
        let key = crate::generate_key().unwrap();
        let other = crate::generate_key().unwrap();
        let bytes = sign_index(&index(), &key);
        assert_eq!(open_index(&bytes, &[key.verifying_key()]).unwrap(), index());
        assert!(matches!(
            open_index(&bytes, &[other.verifying_key()]),
            Err(DropError::UntrustedKey(_))
        ));
        let tampered = String::from_utf8(bytes)
            .unwrap()
            .replace("\\\"version\\\":4", "\\\"version\\\":5");
        assert!(matches!(
            open_index(tampered.as_bytes(), &[key.verifying_key()]),
            Err(DropError::Signature(_))
        ));
    }
}
