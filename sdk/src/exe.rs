//! Section tables of ELF and PE executables, parsed defensively: every offset and size is
//! checked against the data, so a malformed or hostile file yields an error or fewer regions,
//! never a panic.

/// A region of an executable file: a section, or an ELF segment when there are no sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Section name (empty for segments and unnamed sections).
    pub name: String,
    /// Where its bytes start in the file.
    pub offset: usize,
    /// How many of its bytes are in the file (clipped to the data given).
    pub size: usize,
    /// Whether it holds code (executable flag).
    pub executable: bool,
    /// Whether it is writable.
    pub writable: bool,
}

impl Region {
    /// Its bytes.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.offset..self.offset + self.size]
    }
}

/// Why a file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// A reader of fixed-size integers in one byte order, with every access bounds-checked.
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let slice = self.data.get(offset..offset.checked_add(N)?)?;
        let mut out: [u8; N] = slice.try_into().ok()?;
        if !self.big_endian {
            out.reverse();
        }
        Some(out)
    }
    fn u16(&self, offset: usize) -> Option<u64> {
        self.bytes::<2>(offset)
            .map(|b| u16::from_be_bytes(b).into())
    }
    fn u32(&self, offset: usize) -> Option<u64> {
        self.bytes::<4>(offset)
            .map(|b| u32::from_be_bytes(b).into())
    }
    fn u64(&self, offset: usize) -> Option<u64> {
        self.bytes::<8>(offset).map(u64::from_be_bytes)
    }
}

/// Clips a region to the data; `None` when it starts beyond it.
fn region(
    data: &[u8],
    name: String,
    offset: u64,
    size: u64,
    executable: bool,
    writable: bool,
) -> Option<Region> {
    let offset = usize::try_from(offset).ok().filter(|&o| o < data.len())?;
    let size = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .min(data.len() - offset);
    Some(Region {
        name,
        offset,
        size,
        executable,
        writable,
    })
}

/// Most sections or segments read from one file.
const MAX_ENTRIES: usize = 4096;

/// Where a header table starts and how many of its entries are wholly inside `data`: none when
/// the entry size is not the format's (a corrupt or hostile header), so garbage costs nothing.
fn table(data: &[u8], offset: u64, entry_size: u64, count: u64, expected: usize) -> (usize, usize) {
    let Ok(offset) = usize::try_from(offset) else {
        return (0, 0);
    };
    if entry_size != expected as u64 || offset > data.len() {
        return (0, 0);
    }
    let fitting = (data.len() - offset) / expected;
    (offset, fitting.min(count as usize).min(MAX_ENTRIES))
}

/// The regions of an ELF file: its sections that have bytes in the file, or, when it has no
/// section table (stripped or packed files often do not), its loadable segments.
pub fn elf_regions(data: &[u8]) -> Result<Vec<Region>, ParseError> {
    if !data.starts_with(b"\x7fELF") {
        return Err(ParseError("not an ELF file"));
    }
    let wide = match data.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(ParseError("unknown ELF class")),
    };
    let big_endian = match data.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(ParseError("unknown ELF byte order")),
    };
    let r = Reader { data, big_endian };
    let truncated = ParseError("truncated ELF header");
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (r.u64(0x28), r.u16(0x3A), r.u16(0x3C), r.u16(0x3E))
    } else {
        (r.u32(0x20), r.u16(0x2E), r.u16(0x30), r.u16(0x32))
    };
    let (shoff, shentsize, shnum, shstrndx) = (
        shoff.ok_or(truncated.clone())?,
        shentsize.ok_or(truncated.clone())?,
        shnum.ok_or(truncated.clone())?,
        shstrndx.ok_or(truncated.clone())?,
    );
    let (shoff, shnum) = table(data, shoff, shentsize, shnum, if wide { 64 } else { 40 });
    // (name offset, type, flags, offset, size) of section `index`.
    let section = |index: usize| -> Option<(u64, u64, u64, u64, u64)> {
        let at = shoff + index.checked_mul(if wide { 64 } else { 40 })?;
        Some(if wide {
            (
                r.u32(at)?,
                r.u32(at + 4)?,
                r.u64(at + 8)?,
                r.u64(at + 24)?,
                r.u64(at + 32)?,
            )
        } else {
            (
                r.u32(at)?,
                r.u32(at + 4)?,
                r.u32(at + 8)?,
                r.u32(at + 16)?,
                r.u32(at + 20)?,
            )
        })
    };
    const SHT_NOBITS: u64 = 8;
    const SHF_WRITE: u64 = 1;
    const SHF_EXECINSTR: u64 = 4;
    let names = usize::try_from(shstrndx)
        .ok()
        .filter(|&index| index < shnum)
        .and_then(section)
        .map(|(_, _, _, offset, size)| (offset, size));
    let name_of = |name: u64| -> String {
        let Some((offset, size)) = names else {
            return String::new();
        };
        let Some(start) = offset.checked_add(name).filter(|_| name < size) else {
            return String::new();
        };
        let Some(rest) = usize::try_from(start).ok().and_then(|s| data.get(s..)) else {
            return String::new();
        };
        let end = rest.iter().take(64).position(|&b| b == 0).unwrap_or(0);
        String::from_utf8_lossy(&rest[..end]).into_owned()
    };
    let mut regions: Vec<Region> = (0..shnum)
        .filter_map(section)
        .filter(|&(_, kind, _, _, size)| kind != SHT_NOBITS && kind != 0 && size > 0)
        .filter_map(|(name, _, flags, offset, size)| {
            region(
                data,
                name_of(name),
                offset,
                size,
                flags & SHF_EXECINSTR != 0,
                flags & SHF_WRITE != 0,
            )
        })
        .collect();
    if regions.is_empty() {
        regions = elf_segments(r, wide)?;
    }
    Ok(regions)
}

/// The loadable segments (`PT_LOAD`) of an ELF file.
fn elf_segments(r: Reader<'_>, wide: bool) -> Result<Vec<Region>, ParseError> {
    let truncated = ParseError("truncated ELF header");
    let (phoff, phentsize, phnum) = if wide {
        (r.u64(0x20), r.u16(0x36), r.u16(0x38))
    } else {
        (r.u32(0x1C), r.u16(0x2A), r.u16(0x2C))
    };
    let (phoff, phentsize, phnum) = (
        phoff.ok_or(truncated.clone())?,
        phentsize.ok_or(truncated.clone())?,
        phnum.ok_or(truncated)?,
    );
    let entry_size = if wide { 56 } else { 32 };
    let (phoff, phnum) = table(r.data, phoff, phentsize, phnum, entry_size);
    const PT_LOAD: u64 = 1;
    const PF_X: u64 = 1;
    const PF_W: u64 = 2;
    Ok((0..phnum)
        .filter_map(|index| {
            let at = phoff + index * entry_size;
            // (type, flags, offset, size in file)
            let (kind, flags, offset, size) = if wide {
                (r.u32(at)?, r.u32(at + 4)?, r.u64(at + 8)?, r.u64(at + 32)?)
            } else {
                (r.u32(at)?, r.u32(at + 24)?, r.u32(at + 4)?, r.u32(at + 16)?)
            };
            (kind == PT_LOAD && size > 0).then_some(())?;
            region(
                r.data,
                String::new(),
                offset,
                size,
                flags & PF_X != 0,
                flags & PF_W != 0,
            )
        })
        .collect())
}

/// The sections of a PE (Windows) executable that have bytes in the file.
pub fn pe_regions(data: &[u8]) -> Result<Vec<Region>, ParseError> {
    if !data.starts_with(b"MZ") {
        return Err(ParseError("not an MZ executable"));
    }
    let r = Reader {
        data,
        big_endian: false,
    };
    let pe = r.u32(0x3C).ok_or(ParseError("truncated DOS header"))? as usize;
    if data.get(pe..pe.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(ParseError("no PE header"));
    }
    let coff = pe + 4;
    let count = r.u16(coff + 2).ok_or(ParseError("truncated COFF header"))?;
    let optional = r
        .u16(coff + 16)
        .ok_or(ParseError("truncated COFF header"))? as usize;
    let (table, count) = table(data, (coff + 20 + optional) as u64, 40, count, 40);
    const EXECUTE: u64 = 0x2000_0000;
    const CODE: u64 = 0x20;
    const WRITE: u64 = 0x8000_0000;
    Ok((0..count)
        .filter_map(|index| {
            let at = table + index * 40;
            let name = data.get(at..at + 8)?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(8);
            let (size, offset, flags) = (r.u32(at + 16)?, r.u32(at + 20)?, r.u32(at + 36)?);
            (size > 0).then_some(())?;
            region(
                data,
                String::from_utf8_lossy(&name[..end]).into_owned(),
                offset,
                size,
                flags & (EXECUTE | CODE) != 0,
                flags & WRITE != 0,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    #[test]
    fn elf_sections_are_named_and_flagged() {
        let file = samples::elf64(&[(".text", &[0x90; 100], true), (".data", b"xyz", false)]);
        let regions = elf_regions(&file).unwrap();
        let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, [".text", ".data", ".shstrtab"]);
        assert!(regions[0].executable && !regions[1].executable);
        assert_eq!(regions[0].bytes(&file), &[0x90; 100][..]);
        assert_eq!(regions[1].bytes(&file), b"xyz");
    }

    #[test]
    fn pe_sections_are_named_and_flagged() {
        let file = samples::pe(&[(".text", &[0xCC; 700], true), (".rdata", b"abc", false)]);
        let regions = pe_regions(&file).unwrap();
        let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, [".text", ".rdata"]);
        assert!(regions[0].executable && !regions[1].executable);
        assert_eq!(regions[0].bytes(&file), &[0xCC; 700][..]);
    }

    #[test]
    fn hostile_headers_never_panic() {
        let file = samples::elf64(&[(".text", &[0x90; 100], true)]);
        for cut in 0..file.len() {
            let _ = elf_regions(&file[..cut]);
        }
        let mut huge = file.clone();
        huge[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        huge[0x3C..0x3E].copy_from_slice(&u16::MAX.to_le_bytes());
        let _ = elf_regions(&huge);
        let mut pe = b"MZ".to_vec();
        pe.resize(0x40, 0);
        pe[0x3C..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(pe_regions(&pe).is_err());
        for cut in 0..pe.len() {
            let _ = pe_regions(&pe[..cut]);
        }
    }
}

/// Property tests: any bytes, and real tables with any byte changed, give an error or regions
/// inside the data — never a panic. `PROPTEST_CASES=20000 cargo test -p vigil-sdk proptests`
/// runs them longer.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::samples;

    fn regions_fit(data: &[u8]) -> Result<(), TestCaseError> {
        for parse in [elf_regions, pe_regions] {
            if let Ok(regions) = parse(data) {
                for region in regions {
                    prop_assert!(
                        region
                            .offset
                            .checked_add(region.size)
                            .is_some_and(|end| end <= data.len())
                    );
                    let _ = region.bytes(data);
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            regions_fit(&data)?;
        }

        #[test]
        fn real_tables_with_bytes_changed(
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            pe in any::<bool>(),
        ) {
            let sections: &[(&str, &[u8], bool)] = &[(".text", &[0x90; 300], true), (".data", &[1; 200], false)];
            let mut data = if pe { samples::pe(sections) } else { samples::elf64(sections) };
            for (at, byte) in changes {
                let at = at.index(data.len());
                data[at] = byte;
            }
            regions_fit(&data)?;
        }
    }
}
