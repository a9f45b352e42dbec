//! The built plugin, run through Vigil's real host on generated executables.

use std::sync::OnceLock;

use vigil_sdk::harness::Harness;
use vigil_sdk::samples::{code_like_bytes, elf64, pe, random_bytes};

fn plugin() -> &'static Harness {
    static PLUGIN: OnceLock<Harness> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        Harness::build_with(
            concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/packed-exe"),
            env!("CARGO_BIN_EXE_vigil"),
        )
        .expect("plugin builds and loads")
    })
}

#[test]
fn describes_itself_and_wants_only_executables() {
    assert_eq!(plugin().name(), "packed-exe");
    let elf = elf64(&[(".text", &code_like_bytes(8192, 1), true)]);
    assert!(plugin().wants("a.out", &elf));
    assert!(plugin().wants(
        "setup.exe",
        &pe(&[(".text", &code_like_bytes(8192, 2), true)])
    ));
    assert!(!plugin().wants("notes.txt", &[b'a'; 8192]));
    assert!(
        !plugin().wants("tiny", &elf[..1024]),
        "too small to hold packed code"
    );
}

#[test]
fn packed_elf_and_pe_code_is_detected_with_its_offset() {
    let packed = random_bytes(64 * 1024, 7);
    let elf = elf64(&[
        (".text", &code_like_bytes(2048, 1), true),
        ("UPX1", &packed, true),
    ]);
    let findings = plugin().scan("packed", &elf).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].threat, "Packed:Linux/HighEntropyCode");
    assert_eq!(findings[0].offset, Some(64 + 2048));
    assert!(findings[0].description.contains("UPX1"));

    let exe = pe(&[(".text", &packed, true), (".rdata", b"strings", false)]);
    assert_eq!(
        plugin().threats("packed.exe", &exe),
        ["Packed:Win32/HighEntropyCode"]
    );
}

#[test]
fn ordinary_executables_and_compressed_data_are_clean() {
    let code = code_like_bytes(64 * 1024, 3);
    let elf = elf64(&[(".text", &code, true)]);
    assert!(plugin().threats("ls", &elf).is_empty());
    // High entropy outside code (compressed resources) is normal.
    let exe = pe(&[
        (".text", &code, true),
        (".rsrc", &random_bytes(64 * 1024, 9), false),
    ]);
    assert!(plugin().threats("app.exe", &exe).is_empty());
    // Small random code regions are too small to judge.
    let tiny = elf64(&[(".text", &random_bytes(1024, 5), true)]);
    assert!(plugin().threats("tiny", &tiny).is_empty());
    // Malformed headers are not findings (nor faults).
    assert!(plugin().threats("broken", &elf[..100]).is_empty());
}
