//! Packed or encrypted executables: code that looks random.
//!
//! Machine code has an entropy of about 5 to 6.5 bits per byte. A packer (UPX and its many
//! modified forks, custom crypters) compresses or encrypts the real code and leaves a small stub
//! that unpacks it at run time, so the executable region holding it is close to 8 bits per byte.
//! The plugin parses the section table of ELF and PE files (ELF segments when sections are
//! stripped) and flags an executable region of at least 4 KiB above 7.2 bits per byte. Packed
//! files are not all malicious, hence a medium severity, but they hide their code from every
//! signature.

use vigil_sdk::exe::{Region, elf_regions, pe_regions};
use vigil_sdk::sniff::{FileType, sniff};
use vigil_sdk::{Descriptor, Finding, InputSize, Magic, Plugin, ScanInput, Severity};

/// Executable regions smaller than this are too small for entropy to mean much.
const MIN_REGION: usize = 4096;
/// Bits per byte above which code is taken for compressed or encrypted data.
const PACKED_ENTROPY: f64 = 7.2;
/// Entropy is measured on this many blocks of [`SAMPLE_BLOCK`] bytes spread over a region (the
/// whole region when smaller): packed code is random all through, and the cost stays flat for
/// the tens of megabytes of code in a large library.
const SAMPLE_BLOCKS: usize = 16;
/// Bytes per sampled block.
const SAMPLE_BLOCK: usize = 4096;

struct PackedExe;

impl Plugin for PackedExe {
    fn describe() -> Descriptor {
        Descriptor {
            name: "packed-exe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Packed or encrypted ELF and PE executables (high-entropy code)".into(),
            magic: vec![Magic::at(0, b"\x7fELF"), Magic::at(0, b"MZ")],
            min_size: MIN_REGION as u64,
            input: InputSize::WholeFile,
            ..Descriptor::default()
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        let data = &input.data;
        let (regions, platform) = match sniff(data) {
            FileType::Elf => (elf_regions(data), "Linux"),
            FileType::Pe => (pe_regions(data), "Win32"),
            _ => return Vec::new(),
        };
        let Ok(regions) = regions else {
            return Vec::new();
        };
        packed_region(data, &regions)
            .map(|(region, entropy)| {
                let name = if region.name.is_empty() { "a segment" } else { &region.name };
                Finding::new(
                    &format!("Packed:{platform}/HighEntropyCode"),
                    Severity::Medium,
                    format!(
                        "executable {name} of {} bytes has entropy {entropy:.2} bits/byte: compressed or encrypted code",
                        region.size
                    ),
                )
                .at(region.offset)
            })
            .into_iter()
            .collect()
    }
}

/// The first executable region large enough and random enough to be packed code.
fn packed_region<'r>(data: &[u8], regions: &'r [Region]) -> Option<(&'r Region, f64)> {
    regions
        .iter()
        .filter(|region| region.executable && region.size >= MIN_REGION)
        .map(|region| {
            let entropy = vigil_sdk::entropy::shannon_sampled(
                region.bytes(data),
                SAMPLE_BLOCKS,
                SAMPLE_BLOCK,
            );
            (region, entropy)
        })
        .find(|(_, entropy)| *entropy > PACKED_ENTROPY)
}

vigil_sdk::export_plugin!(PackedExe);
