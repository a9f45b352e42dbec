//! The format readers: each offers an archive's members, decoded as they are read, to a visitor,
//! and reports what it could not read. Everything is read from memory; nothing is written.

use std::io::{Cursor, Read};

use super::{Entry, Flow, Format, Trouble};

/// Bounds on decoders, from `[archives]`.
pub(crate) struct Decoding {
    /// `archives.max_decoder_memory`, in bytes.
    pub max_decoder_memory: u64,
}

impl Decoding {
    /// The limit in KiB, as lzma-rust2 takes it.
    fn kib(&self) -> u32 {
        u32::try_from(self.max_decoder_memory / 1024).unwrap_or(u32::MAX)
    }

    /// The largest zstd window, as a power of two.
    fn zstd_window_log(&self) -> u32 {
        (63 - self.max_decoder_memory.max(1).leading_zeros()).clamp(10, 31)
    }
}

/// Offers every member of `data` (an archive of `format` whose own name is `name`) to `visit`
/// until it breaks; returns what could not be read.
pub(crate) fn each_member(
    format: Format,
    data: &[u8],
    name: &[u8],
    limits: &Decoding,
    visit: &mut dyn FnMut(Entry<'_>) -> Flow,
) -> Vec<Trouble> {
    match format {
        Format::Zip => zip(data, limits, visit),
        Format::Tar => tar(&mut { data }, visit),
        Format::Ar => ar(data, visit),
        Format::SevenZ => seven_z(data, limits, visit),
        Format::Gzip => {
            let mut reader = flate2::read::MultiGzDecoder::new(data);
            stream(&mut reader, data, name, visit)
        }
        Format::Bzip2 => {
            let mut reader = bzip2::read::MultiBzDecoder::new(data);
            stream(&mut reader, data, name, visit)
        }
        Format::Xz => {
            let mut reader = lzma_rust2::XzReader::new_mem_limit(data, true, limits.kib());
            stream(&mut reader, data, name, visit)
        }
        Format::Zstd => match zstd_reader(data, limits) {
            Ok(mut reader) => stream(&mut reader, data, name, visit),
            Err(trouble) => vec![trouble],
        },
    }
}

/// Whether a decoder's error says it refused the memory a dictionary or window needs.
pub(crate) fn is_memory_refusal(text: &str) -> bool {
    // lzma-rust2: "needed memory too big for mem_limit_kb"; zstd: "Frame requires too much
    // memory for decoding".
    text.contains("mem_limit") || text.contains("too much memory")
}

/// A compressed stream: one member, named after the file without its compression suffix.
fn stream(
    reader: &mut dyn Read,
    data: &[u8],
    name: &[u8],
    visit: &mut dyn FnMut(Entry<'_>) -> Flow,
) -> Vec<Trouble> {
    let _ = visit(Entry {
        name: decompressed_name(name),
        reader: Some(reader),
        compressed: data.len() as u64,
    });
    Vec::new()
}

/// `x.tar.gz` -> `x.tar`, `x.tgz` -> `x.tar`, `x.gz` -> `x`; other names unchanged.
fn decompressed_name(name: &[u8]) -> Vec<u8> {
    let lower = name.to_ascii_lowercase();
    for (suffix, replacement) in [
        (&b".tgz"[..], &b".tar"[..]),
        (b".tbz2", b".tar"),
        (b".tbz", b".tar"),
        (b".txz", b".tar"),
        (b".tzst", b".tar"),
        (b".gz", b""),
        (b".bz2", b""),
        (b".xz", b""),
        (b".zst", b""),
    ] {
        if lower.ends_with(suffix) && lower.len() > suffix.len() {
            let mut out = name[..name.len() - suffix.len()].to_vec();
            out.extend_from_slice(replacement);
            return out;
        }
    }
    name.to_vec()
}

/// 7z: files in order, decoded block by block. The library checks every coder's dictionary
/// against the decoder-memory limit before allocating it. Entries have no compressed size of
/// their own (a solid block holds many), so the ratio is the archive's. A member cut short by a
/// limit ends its block: the rest of it would have to be decoded only to be skipped (said, for a
/// solid archive, as one more record).
fn seven_z(
    data: &[u8],
    limits: &Decoding,
    visit: &mut dyn FnMut(Entry<'_>) -> Flow,
) -> Vec<Trouble> {
    use sevenz_rust2::{ArchiveReader, Error, Password};
    let kib = usize::try_from(limits.max_decoder_memory / 1024).unwrap_or(usize::MAX);
    let trouble = |err: Error| match err {
        Error::MaxMemLimited { .. } => Trouble::DecoderMemory(format!("7z: {err}")),
        Error::PasswordRequired | Error::MaybeBadPassword(_) => {
            Trouble::Encrypted(format!("7z: encrypted ({err}): not scanned"))
        }
        Error::UnsupportedCompressionMethod(ref method) if method.contains("AES") => {
            Trouble::Encrypted(format!("7z: encrypted ({err}): not scanned"))
        }
        _ => Trouble::Damaged(format!("7z: {err}")),
    };
    let mut reader =
        match ArchiveReader::new_with_memory_limit(Cursor::new(data), Password::empty(), kib) {
            Ok(reader) => reader,
            Err(err) => return vec![trouble(err)],
        };
    let solid = reader.archive().is_solid;
    let (mut stopped, mut troubles) = (false, Vec::new());
    let result = reader.for_each_entries(|entry, member| {
        if stopped || entry.is_directory || !entry.has_stream {
            return Ok(!stopped);
        }
        let mut counted = Counted {
            inner: member,
            read: 0,
        };
        let flow = visit(Entry {
            name: entry.name.as_bytes().to_vec(),
            reader: Some(&mut counted),
            compressed: data.len() as u64,
        });
        stopped = flow.is_break();
        if !stopped && counted.read < entry.size && solid {
            troubles.push(Trouble::Limited(
                super::Limit::MemberSize,
                "7z: the rest of a solid block after a member cut short is not scanned".into(),
            ));
            return Ok(false);
        }
        Ok(!stopped)
    });
    if let Err(err) = result {
        troubles.push(trouble(err));
    }
    troubles
}

/// A reader that counts what was read from it.
struct Counted<'r> {
    inner: &'r mut dyn Read,
    read: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// ar (Debian packages, static libraries): members in order. GNU long names (`/N` into the `//`
/// table) and BSD ones (`#1/N`, the name before the data) are resolved; the symbol tables are
/// skipped.
fn ar(data: &[u8], visit: &mut dyn FnMut(Entry<'_>) -> Flow) -> Vec<Trouble> {
    const HEADER: usize = 60;
    let mut at = 8; // "!<arch>\n"
    let mut long_names: &[u8] = &[];
    while at < data.len() {
        let Some(header) = data.get(at..at + HEADER).filter(|h| &h[58..60] == b"`\n") else {
            return vec![Trouble::Damaged(format!("ar: bad member header at {at}"))];
        };
        let field = |range: std::ops::Range<usize>| {
            let text = &header[range];
            let end = text.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            &text[..end]
        };
        let size = std::str::from_utf8(field(48..58))
            .ok()
            .and_then(|text| text.parse::<usize>().ok());
        let body = size.and_then(|size| data.get(at + HEADER..at + HEADER + size));
        let Some(mut body) = body else {
            return vec![Trouble::Damaged(format!(
                "ar: member at {at} runs past the end"
            ))];
        };
        at += HEADER + body.len() + body.len() % 2;
        let raw_name = field(0..16);
        let name = match raw_name {
            b"/" | b"/SYM64/" | b"__.SYMDEF" | b"__.SYMDEF SORTED" => continue,
            b"//" => {
                long_names = body;
                continue;
            }
            _ if raw_name.starts_with(b"#1/") => {
                let len = std::str::from_utf8(&raw_name[3..])
                    .ok()
                    .and_then(|text| text.parse::<usize>().ok())
                    .filter(|&len| len <= body.len());
                let Some(len) = len else {
                    return vec![Trouble::Damaged("ar: bad BSD long name".into())];
                };
                let name = body[..len].split(|&b| b == 0).next().unwrap_or_default();
                body = &body[len..];
                name.to_vec()
            }
            _ if raw_name.len() > 1 && raw_name[0] == b'/' => {
                let offset = std::str::from_utf8(&raw_name[1..])
                    .ok()
                    .and_then(|text| text.parse::<usize>().ok());
                let name = offset
                    .and_then(|offset| long_names.get(offset..))
                    .map(|rest| {
                        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                        rest[..end].strip_suffix(b"/").unwrap_or(&rest[..end])
                    });
                let Some(name) = name else {
                    return vec![Trouble::Damaged("ar: bad GNU long name".into())];
                };
                name.to_vec()
            }
            _ => raw_name.strip_suffix(b"/").unwrap_or(raw_name).to_vec(),
        };
        let compressed = body.len() as u64;
        if visit(Entry {
            name,
            reader: Some(&mut { body }),
            compressed,
        })
        .is_break()
        {
            break;
        }
    }
    Vec::new()
}

/// A zstd decoder that refuses windows over the limit.
fn zstd_reader<'d>(
    data: &'d [u8],
    limits: &Decoding,
) -> Result<zstd::stream::read::Decoder<'static, std::io::BufReader<&'d [u8]>>, Trouble> {
    let mut reader = zstd::stream::read::Decoder::new(data)
        .map_err(|err| Trouble::Damaged(format!("zstd: {err}")))?;
    reader
        .window_log_max(limits.zstd_window_log())
        .map_err(|err| Trouble::Damaged(format!("zstd: {err}")))?;
    Ok(reader)
}

/// tar: regular files, in order, read as `reader` gives them (a decoder, for a .tar.gz).
pub(crate) fn tar(reader: &mut dyn Read, visit: &mut dyn FnMut(Entry<'_>) -> Flow) -> Vec<Trouble> {
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(err) => return vec![Trouble::Damaged(format!("tar: {err}"))],
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(err) => return vec![Trouble::Damaged(format!("tar: {err}"))],
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path_bytes().into_owned();
        let compressed = entry.size();
        let flow = visit(Entry {
            name,
            reader: Some(&mut entry),
            compressed,
        });
        if flow.is_break() {
            break;
        }
    }
    Vec::new()
}

/// zip: files in central-directory order. LZMA, xz and zstd members are decoded here, under the
/// decoder-memory limit; the other methods by the `zip` crate.
fn zip(data: &[u8], limits: &Decoding, visit: &mut dyn FnMut(Entry<'_>) -> Flow) -> Vec<Trouble> {
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(archive) => archive,
        Err(err) => return vec![Trouble::Damaged(format!("zip: {err}"))],
    };
    if let Some(bomb) = zip_bomb(&mut archive, data.len() as u64) {
        return vec![bomb];
    }
    let mut troubles = Vec::new();
    for index in 0..archive.len() {
        let (name, encrypted, method, compressed, raw) = match archive.by_index_raw(index) {
            Ok(file) if !file.is_file() => continue,
            Ok(file) => {
                let raw = file.data_start().and_then(|start| {
                    let start = usize::try_from(start).ok()?;
                    let end = start.checked_add(usize::try_from(file.compressed_size()).ok()?)?;
                    data.get(start..end)
                });
                (
                    file.name_raw().to_vec(),
                    file.encrypted(),
                    file.compression(),
                    file.compressed_size(),
                    raw,
                )
            }
            Err(err) => {
                troubles.push(Trouble::Damaged(format!("zip entry {index}: {err}")));
                continue;
            }
        };
        if encrypted {
            if visit(Entry {
                name,
                reader: None,
                compressed,
            })
            .is_break()
            {
                break;
            }
            continue;
        }
        let own = matches!(
            method,
            zip::CompressionMethod::Lzma
                | zip::CompressionMethod::Xz
                | zip::CompressionMethod::Zstd
        );
        let flow = match raw.filter(|_| own) {
            // Never the zip crate's own decoders for these: they take no memory limit.
            None if own => {
                troubles.push(Trouble::Damaged("zip: data out of the archive".into()).about(&name));
                continue;
            }
            Some(raw) => match own_decoder(method, raw, limits) {
                Ok(mut reader) => visit(Entry {
                    name,
                    reader: Some(&mut *reader),
                    compressed,
                }),
                Err(trouble) => {
                    troubles.push(trouble.about(&name));
                    continue;
                }
            },
            None => match archive.by_index(index) {
                Ok(mut file) => visit(Entry {
                    name,
                    reader: Some(&mut file),
                    compressed,
                }),
                Err(err) => {
                    troubles.push(Trouble::Damaged(format!("zip: {err}")).about(&name));
                    continue;
                }
            },
        };
        if flow.is_break() {
            break;
        }
    }
    troubles
}

/// Uncompressed size, declared by all entries together, from which a ratio is suspicious.
const BOMB_MIN_SIZE: u64 = 1 << 30;
/// Declared-uncompressed-to-archive size ratio that no real content reaches (deflate cannot
/// exceed about 1032:1 for one stream, so only degenerate content gets there).
const BOMB_RATIO: u64 = 1000;

/// A ZIP bomb, told by its central directory before anything is decompressed: entries whose
/// data overlaps another's (the "non-recursive" bombs that reuse one compressed stream for
/// thousands of files), or entries that declare at least 1 GiB and over 1000 times the
/// archive's size (ZIP64 sizes included).
fn zip_bomb(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, archive_size: u64) -> Option<Trouble> {
    let mut spans = Vec::new();
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let Ok(file) = archive.by_index_raw(index) else {
            continue;
        };
        declared = declared.saturating_add(file.size());
        if let Some(start) = file.data_start() {
            spans.push((
                start,
                start.saturating_add(file.compressed_size()),
                file.header_start(),
            ));
        }
    }
    spans.sort_unstable();
    let overlap = spans
        .windows(2)
        .find(|pair| pair[1].0 < pair[0].1 || pair[1].0 == pair[0].0);
    if let Some(pair) = overlap {
        return Some(Trouble::Bomb {
            threat: "Bomb:Multi/Zip.Overlap",
            reason: "entries share or overlap their compressed data (non-recursive ZIP bomb)"
                .into(),
            offset: Some(pair[0].2),
        });
    }
    let size = archive_size.max(1);
    if declared >= BOMB_MIN_SIZE && declared / size > BOMB_RATIO {
        return Some(Trouble::Bomb {
            threat: "Bomb:Multi/Zip.Ratio",
            reason: format!(
                "{} entries expand to {declared} bytes from a {size}-byte archive ({}:1)",
                archive.len(),
                declared / size
            ),
            offset: None,
        });
    }
    None
}

/// A decoder for a zip member compressed with LZMA, xz or zstd, bounded in memory.
fn own_decoder<'d>(
    method: zip::CompressionMethod,
    raw: &'d [u8],
    limits: &Decoding,
) -> Result<Box<dyn Read + 'd>, Trouble> {
    match method {
        zip::CompressionMethod::Xz => Ok(Box::new(lzma_rust2::XzReader::new_mem_limit(
            raw,
            true,
            limits.kib(),
        ))),
        zip::CompressionMethod::Zstd => Ok(Box::new(zstd_reader(raw, limits)?)),
        _ => {
            // PKWARE's LZMA: version (2 bytes), properties size (2), properties (5: lc/lp/pb,
            // dictionary size), then the stream, ended by its end marker.
            let damaged = || Trouble::Damaged("zip LZMA member: short header".into());
            let props = *raw.get(4).ok_or_else(damaged)?;
            let dict = raw.get(5..9).ok_or_else(damaged)?;
            let dict_size = u32::from_le_bytes(dict.try_into().expect("four bytes"));
            if u64::from(dict_size) > limits.max_decoder_memory {
                return Err(Trouble::DecoderMemory(format!(
                    "an LZMA dictionary of {dict_size} bytes, over {}",
                    limits.max_decoder_memory
                )));
            }
            lzma_rust2::LzmaReader::new_with_props(&raw[9..], u64::MAX, props, dict_size, None)
                .map(|reader| Box::new(reader) as Box<dyn Read + 'd>)
                .map_err(|err| Trouble::Damaged(format!("zip LZMA member: {err}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_names_lose_their_suffix() {
        assert_eq!(decompressed_name(b"x.tar.gz"), b"x.tar");
        assert_eq!(decompressed_name(b"X.TGZ"), b"X.tar");
        assert_eq!(decompressed_name(b"a.sh.xz"), b"a.sh");
        assert_eq!(decompressed_name(b"data"), b"data");
        assert_eq!(decompressed_name(b".gz"), b".gz");
    }
}
