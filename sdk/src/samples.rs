//! Test samples made on the fly, so plugin tests need no binary fixtures (and no live malware):
//! minimal but well-formed ELF and PE files with the sections you give, and random bytes.

/// A 64-bit little-endian ELF file with the given sections (name, bytes, executable) and a
/// section-name table.
pub fn elf64(sections: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut names = vec![0u8];
    let mut out = vec![0u8; 64];
    let mut headers = vec![0u8; 64]; // the null section
    let mut header = |name: usize, kind: u32, flags: u64, offset: usize, size: usize| {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&(name as u32).to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&flags.to_le_bytes());
        h[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
        h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
        headers.extend_from_slice(&h);
    };
    for (name, bytes, executable) in sections {
        let flags = if *executable { 6 } else { 3 }; // ALLOC|EXECINSTR, or ALLOC|WRITE
        header(names.len(), 1, flags, out.len(), bytes.len());
        names.extend_from_slice(name.as_bytes());
        names.push(0);
        out.extend_from_slice(bytes);
    }
    let table_name = names.len();
    names.extend_from_slice(b".shstrtab\0");
    header(table_name, 3, 0, out.len(), names.len());
    out.extend_from_slice(&names);
    let shoff = out.len();
    out.extend_from_slice(&headers);
    out[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    out[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    out[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
    out[0x3C..0x3E].copy_from_slice(&((sections.len() + 2) as u16).to_le_bytes());
    out[0x3E..0x40].copy_from_slice(&((sections.len() + 1) as u16).to_le_bytes());
    out
}

/// A PE (Windows) file with the given sections (name of up to 8 bytes, bytes, executable).
pub fn pe(sections: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let pe_at = 0x80usize;
    let optional = 0xF0usize;
    let table = pe_at + 24 + optional;
    let mut offset = (table + 40 * sections.len()).next_multiple_of(0x200);
    let mut out = vec![0u8; offset];
    out[..2].copy_from_slice(b"MZ");
    out[0x3C..0x40].copy_from_slice(&(pe_at as u32).to_le_bytes());
    out[pe_at..pe_at + 4].copy_from_slice(b"PE\0\0");
    out[pe_at + 4..pe_at + 6].copy_from_slice(&0x8664u16.to_le_bytes());
    out[pe_at + 6..pe_at + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    out[pe_at + 20..pe_at + 22].copy_from_slice(&(optional as u16).to_le_bytes());
    for (index, (name, bytes, executable)) in sections.iter().enumerate() {
        let at = table + 40 * index;
        let name = name.as_bytes();
        out[at..at + name.len().min(8)].copy_from_slice(&name[..name.len().min(8)]);
        out[at + 8..at + 12].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        out[at + 16..at + 20].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        out[at + 20..at + 24].copy_from_slice(&(offset as u32).to_le_bytes());
        let flags: u32 = if *executable {
            0x6000_0020
        } else {
            0xC000_0040
        };
        out[at + 36..at + 40].copy_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(bytes);
        offset += bytes.len();
    }
    out
}

/// `len` bytes that look random (a fixed xorshift sequence: the same bytes every run).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// `len` bytes that look like machine code: short instruction-like patterns with a limited
/// alphabet (entropy about 5 bits per byte).
pub fn code_like_bytes(len: usize, seed: u64) -> Vec<u8> {
    const OPCODES: &[u8] = &[
        0x48, 0x89, 0x8b, 0xe8, 0xc3, 0x55, 0x5d, 0x31, 0xc0, 0x83, 0xec, 0x0f, 0x84, 0x85, 0x74,
        0x75, 0xff, 0x00, 0x01, 0x24, 0x44, 0x8d, 0x45, 0xf8, 0x10, 0x20, 0x08, 0xe5, 0x90, 0xcc,
        0x41, 0x39,
    ];
    random_bytes(len, seed)
        .into_iter()
        .map(|byte| OPCODES[byte as usize % OPCODES.len()])
        .collect()
}
