//! Property tests of the drop parser on hostile bytes: whatever the archive, `open` returns a
//! verified drop or an error, never panics, and never accepts a drop that was changed after
//! signing. `PROPTEST_CASES=20000 cargo test -p vigil-drop proptests` runs them longer.

use proptest::prelude::*;

use super::*;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn good() -> Vec<u8> {
    let files = vec![
        (
            "rules/a.yar".to_string(),
            b"rule a { condition: false }".to_vec(),
        ),
        ("hashes/bad.txt".to_string(), b"# none\n".to_vec()),
    ];
    build(&files, 5, "0.1.0", 1_700_000_000, &key()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(open(&bytes, &[key().verifying_key()], 1 << 20).is_err());
    }

    #[test]
    fn a_changed_byte_is_refused_or_changes_nothing_that_was_signed(
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = good();
        let at = position.index(bytes.len());
        bytes[at] ^= flip;
        // A flip in tar padding or in an unused header field may leave the content intact; then
        // the drop must be exactly the signed one.
        if let Ok(drop) = open(&bytes, &[key().verifying_key()], 1 << 20) {
            let original = open(&good(), &[key().verifying_key()], 1 << 20).unwrap();
            prop_assert_eq!(drop.manifest_bytes, original.manifest_bytes);
            prop_assert_eq!(drop.files, original.files);
        }
    }

    #[test]
    fn truncated_drops_are_refused(cut in 0usize..2048) {
        let bytes = good();
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(open(&bytes[..cut], &[key().verifying_key()], 1 << 20).is_err());
    }

    #[test]
    fn manifest_text_never_panics(text in "\\PC{0,300}") {
        let _ = serde_json::from_str::<Manifest>(&text);
        let _ = parse_public_key(&text);
        let _ = kind_of(&text);
    }
}
