//! File-type sniffing from the first bytes.

/// What a file looks like from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// An ELF executable, library or object (`\x7fELF`).
    Elf,
    /// A DOS/Windows executable (`MZ`; PE when it has a PE header).
    Pe,
    /// A Mach-O executable (either byte order, 32 or 64 bits, or a fat binary).
    MachO,
    /// A ZIP archive, including Office documents, JARs and APKs (`PK\x03\x04`).
    Zip,
    /// A gzip stream.
    Gzip,
    /// A PDF document.
    Pdf,
    /// An OLE2 compound file (legacy Office documents).
    Ole,
    /// A script with a `#!` line.
    Script,
    /// None of the above.
    Unknown,
}

/// Sniffs the type of a file from its first bytes.
pub fn sniff(data: &[u8]) -> FileType {
    const TYPES: &[(&[u8], FileType)] = &[
        (b"\x7fELF", FileType::Elf),
        (b"MZ", FileType::Pe),
        (b"\xfe\xed\xfa\xce", FileType::MachO),
        (b"\xfe\xed\xfa\xcf", FileType::MachO),
        (b"\xce\xfa\xed\xfe", FileType::MachO),
        (b"\xcf\xfa\xed\xfe", FileType::MachO),
        (b"\xca\xfe\xba\xbe", FileType::MachO),
        (b"PK\x03\x04", FileType::Zip),
        (b"PK\x05\x06", FileType::Zip),
        (b"\x1f\x8b", FileType::Gzip),
        (b"%PDF-", FileType::Pdf),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", FileType::Ole),
        (b"#!", FileType::Script),
    ];
    TYPES
        .iter()
        .find(|(magic, _)| data.starts_with(magic))
        .map_or(FileType::Unknown, |(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_are_recognised() {
        assert_eq!(sniff(b"\x7fELF\x02\x01"), FileType::Elf);
        assert_eq!(sniff(b"MZ\x90\0"), FileType::Pe);
        assert_eq!(sniff(b"PK\x03\x04rest"), FileType::Zip);
        assert_eq!(sniff(b"#!/bin/sh\n"), FileType::Script);
        assert_eq!(sniff(b"hello"), FileType::Unknown);
        assert_eq!(sniff(b""), FileType::Unknown);
    }
}
