//! Archives and compressed files: their members, extracted in memory (never written anywhere)
//! and handed to the scan one by one, recursively, within the `[archives]` limits.
//!
//! Formats are recognised by content ([`sniff`]), never by extension: zip (and what is a zip:
//! Office Open XML, jar, apk, wheels), 7z, tar, ar (Debian packages), gzip, bzip2, xz and zstd. [`extract`] walks a file's
//! members depth first; each member's bytes go to [`Members::member`] with the chain of member
//! names from the outermost archive in. A limit stops what it bounds and is said once through
//! [`Members::limit`]: per member (its size, compression ratio, decoder memory, nesting depth,
//! encryption, damage) the walk goes on with the next member; per file (total bytes, member
//! count, time) it stops. The extractor is also the one place that decides what is a bomb:
//! a zip whose central directory shows overlapping entries or an absurd declared ratio is not
//! extracted; the file itself is reported through [`Members::bomb`], a member as a limit.

mod formats;

use std::io::Read;
use std::time::{Duration, Instant};

use crate::config::ArchivesConfig;

/// An archive or compressed format, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PKZIP, ZIP64; also Office Open XML, jar, apk, wheels.
    Zip,
    /// POSIX and GNU tar (`ustar` magic).
    Tar,
    /// ar: Debian packages (`.deb`), static libraries.
    Ar,
    /// gzip (one or more members, read as one stream).
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
    /// 7z.
    SevenZ,
}

/// The format of `data`, when it is one of [`Format`]'s.
pub fn sniff(data: &[u8]) -> Option<Format> {
    let starts = |magic: &[u8]| data.starts_with(magic);
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if starts(b"\x1f\x8b") {
        Some(Format::Gzip)
    } else if starts(b"BZh") && data.get(4..10) == Some(b"\x31\x41\x59\x26\x53\x59") {
        Some(Format::Bzip2)
    } else if starts(b"\xfd7zXZ\x00") {
        Some(Format::Xz)
    } else if starts(b"\x28\xb5\x2f\xfd") {
        Some(Format::Zstd)
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        Some(Format::SevenZ)
    } else if data.get(257..262) == Some(b"ustar") {
        Some(Format::Tar)
    } else if starts(b"!<arch>\n") {
        Some(Format::Ar)
    } else {
        None
    }
}

/// What stopped part of an extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `archives.max_total_size`: bytes extracted from one file on disk.
    TotalSize,
    /// `archives.max_member_size`: bytes of one member (its first bytes are scanned).
    MemberSize,
    /// `archives.max_depth`: nesting.
    Depth,
    /// `archives.max_members`: members of one file on disk.
    Members,
    /// `archives.max_ratio`: a member expands too much for its compressed size.
    Ratio,
    /// `archives.max_time_ms`: time spent on one file on disk.
    Time,
    /// `archives.max_decoder_memory`: a dictionary or window larger than allowed.
    DecoderMemory,
    /// An encrypted member, which cannot be read (`archives.alert_encrypted` makes it a detection).
    Encrypted,
    /// A damaged, truncated or unsupported archive or member: what came before it is scanned.
    Damaged,
    /// A ZIP bomb inside another archive: not extracted.
    Bomb,
}

impl Limit {
    /// The record's `limit` value.
    pub fn name(self) -> &'static str {
        match self {
            Limit::TotalSize => "max_total_size",
            Limit::MemberSize => "max_member_size",
            Limit::Depth => "max_depth",
            Limit::Members => "max_members",
            Limit::Ratio => "max_ratio",
            Limit::Time => "max_time_ms",
            Limit::DecoderMemory => "max_decoder_memory",
            Limit::Encrypted => "encrypted",
            Limit::Damaged => "damaged",
            Limit::Bomb => "bomb",
        }
    }

    /// The configuration key that sets it, when one does.
    pub fn key(self) -> Option<&'static str> {
        match self {
            Limit::TotalSize => Some("archives.max_total_size"),
            Limit::MemberSize => Some("archives.max_member_size"),
            Limit::Depth => Some("archives.max_depth"),
            Limit::Members => Some("archives.max_members"),
            Limit::Ratio => Some("archives.max_ratio"),
            Limit::Time => Some("archives.max_time_ms"),
            Limit::DecoderMemory => Some("archives.max_decoder_memory"),
            Limit::Encrypted => Some("archives.alert_encrypted"),
            Limit::Damaged | Limit::Bomb => None,
        }
    }

    /// Whether it stops the whole file on disk (else only the member or archive it is about).
    fn stops_file(self) -> bool {
        matches!(self, Limit::TotalSize | Limit::Members | Limit::Time)
    }
}

/// One limit reached: which, where (the member chain, outer to inner), and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// The limit.
    pub limit: Limit,
    /// The member it is about (empty: the file itself).
    pub member: Vec<Vec<u8>>,
    /// What happened, for people.
    pub reason: String,
}

/// A file on disk the extractor will not open because it is a bomb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bomb {
    /// `Bomb:Multi/Zip.Overlap` or `Bomb:Multi/Zip.Ratio`.
    pub threat: &'static str,
    /// Why, for people.
    pub reason: String,
    /// Where the evidence starts in it, when there is one place.
    pub offset: Option<u64>,
}

/// Receives what an extraction finds.
pub trait Members {
    /// A member's bytes (its first `max_member_size` when larger); `chain` names it, from the
    /// outermost archive's member to this one.
    fn member(&mut self, chain: &[Vec<u8>], data: &[u8]);
    /// A limit was reached.
    fn limit(&mut self, hit: LimitHit);
    /// The file itself is a bomb (it is not extracted).
    fn bomb(&mut self, bomb: Bomb);
}

/// Extracts the members of `data` (a file named `name`) recursively and hands them to `sink`;
/// returns how many members were extracted. Data that is no archive yields none.
pub fn extract(config: &ArchivesConfig, data: &[u8], name: &[u8], sink: &mut dyn Members) -> u64 {
    let Some(format) = sniff(data) else {
        return 0;
    };
    let mut walk = Walk {
        config,
        deadline: Instant::now() + Duration::from_millis(config.max_time_ms),
        extracted: 0,
        members: 0,
        stopped: false,
        chain: Vec::new(),
        last_hit: None,
    };
    walk.archive(format, data, name, 1, sink);
    walk.members
}

/// Bytes read from a decoder at a time (between checks of the limits).
const CHUNK: usize = 64 * 1024;
/// Output below which the compression ratio is not checked (small files compress well too).
const RATIO_FLOOR: u64 = 1024 * 1024;
/// Bytes read first from every member, to see whether it is a tar (its magic is at 257).
const TAR_HEAD: usize = 512;

/// A member's decoder, watched: it fails, saying which limit, once its output passes the ratio
/// (`archives.max_ratio` past [`RATIO_FLOOR`]), the total (`archives.max_total_size` of decoded
/// bytes, counting those a reader skips), or the time.
struct Meter<'r> {
    inner: &'r mut dyn Read,
    out: u64,
    compressed: u64,
    config: &'r ArchivesConfig,
    deadline: Instant,
    /// The limit that stopped it.
    stopped: Option<(Limit, String)>,
    /// An error met while peeking, given to the next read (a decoder does not say it twice).
    pending: Option<std::io::Error>,
}

impl<'r> Meter<'r> {
    fn new(
        inner: &'r mut dyn Read,
        compressed: u64,
        config: &'r ArchivesConfig,
        deadline: Instant,
    ) -> Self {
        Self {
            inner,
            out: 0,
            compressed,
            config,
            deadline,
            stopped: None,
            pending: None,
        }
    }

    /// Up to `len` first bytes (fewer at the end, or on an error, which the next read returns).
    fn peek(&mut self, len: usize) -> Vec<u8> {
        let mut head = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) => {
                    self.pending = Some(err);
                    break;
                }
            }
        }
        head.truncate(filled);
        head
    }

    /// The limit the output so far breaks, if any.
    fn limit(&self) -> Option<(Limit, String)> {
        let config = self.config;
        if self.out > RATIO_FLOOR && self.out / self.compressed.max(1) > config.max_ratio {
            let reason = format!(
                "expands more than {} times ({} bytes from {}): its first bytes are scanned",
                config.max_ratio, self.out, self.compressed
            );
            return Some((Limit::Ratio, reason));
        }
        if self.out > config.max_total_size {
            let reason = format!("more than {} bytes decoded", config.max_total_size);
            return Some((Limit::TotalSize, reason));
        }
        if Instant::now() >= self.deadline {
            let reason = format!("extraction took over {} ms", config.max_time_ms);
            return Some((Limit::Time, reason));
        }
        None
    }
}

impl Read for Meter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(err) = self.pending.take() {
            return Err(err);
        }
        if let Some((limit, reason)) = &self.stopped {
            return Err(std::io::Error::other(LimitError(*limit, reason.clone())));
        }
        let len = buf.len().min(CHUNK);
        let n = self.inner.read(&mut buf[..len])?;
        self.out += n as u64;
        if let Some((limit, reason)) = self.limit() {
            self.stopped = Some((limit, reason.clone()));
            return Err(std::io::Error::other(LimitError(limit, reason)));
        }
        Ok(n)
    }
}

/// The error a [`Meter`] fails with: a limit, which readers above it (a tar member's) pass on.
#[derive(Debug)]
struct LimitError(Limit, String);

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for LimitError {}

/// One member as a format reader offers it.
pub(crate) struct Entry<'r> {
    /// Its name, as the archive gives it.
    pub name: Vec<u8>,
    /// Its bytes, decoded (`None` when encrypted).
    pub reader: Option<&'r mut dyn Read>,
    /// Its compressed size (for the ratio), when known.
    pub compressed: u64,
}

/// What a format reader reports besides members.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// A decoder needs more memory than `max_decoder_memory`.
    DecoderMemory(String),
    /// The archive (or a member's header) is damaged or unsupported.
    Damaged(String),
    /// The archive (its names, or a block of members) is encrypted.
    Encrypted(String),
    /// A limit stopped the format reader itself (the rest of a 7z solid block after a member
    /// over the size limit, which would have to be decoded to be skipped).
    Limited(Limit, String),
    /// The archive is a bomb: not extracted, reported as a detection.
    Bomb {
        /// `Bomb:Multi/Zip.Overlap` or `Bomb:Multi/Zip.Ratio`.
        threat: &'static str,
        /// Why, for people.
        reason: String,
        /// Where the evidence starts in the archive, when there is one place.
        offset: Option<u64>,
    },
}

impl Trouble {
    /// The same trouble, its reason naming the member it is about.
    pub(crate) fn about(self, member: &[u8]) -> Self {
        let name = String::from_utf8_lossy(member);
        let named = |reason: String| format!("member {name:?}: {reason}");
        match self {
            Trouble::DecoderMemory(reason) => Trouble::DecoderMemory(named(reason)),
            Trouble::Damaged(reason) => Trouble::Damaged(named(reason)),
            Trouble::Encrypted(reason) => Trouble::Encrypted(named(reason)),
            Trouble::Limited(limit, reason) => Trouble::Limited(limit, named(reason)),
            bomb @ Trouble::Bomb { .. } => bomb,
        }
    }
}

/// Whether a format reader should go on to the next member.
pub(crate) type Flow = std::ops::ControlFlow<()>;

/// One file's extraction: its budget and where it is.
struct Walk<'c> {
    config: &'c ArchivesConfig,
    deadline: Instant,
    /// Bytes extracted so far, at every depth.
    extracted: u64,
    /// Members extracted so far, at every depth.
    members: u64,
    /// A limit stopped the whole file.
    stopped: bool,
    /// Names of the members being extracted, outer to inner.
    chain: Vec<Vec<u8>>,
    /// The last limit said, so one reached through nested readers is said once.
    last_hit: Option<(Limit, String)>,
}

impl Walk<'_> {
    /// Extracts the members of one archive (whose own name is `name`) at `depth`.
    fn archive(
        &mut self,
        format: Format,
        data: &[u8],
        name: &[u8],
        depth: u32,
        sink: &mut dyn Members,
    ) {
        let limits = formats::Decoding {
            max_decoder_memory: self.config.max_decoder_memory,
        };
        let result = formats::each_member(format, data, name, &limits, &mut |entry| {
            self.entry(entry, depth, sink)
        });
        for trouble in result {
            if self.trouble(trouble, sink).is_break() {
                break;
            }
        }
    }

    /// Extracts one member, hands it over and descends into it.
    fn entry(&mut self, entry: Entry<'_>, depth: u32, sink: &mut dyn Members) -> Flow {
        if self.stopped {
            return Flow::Break(());
        }
        self.chain.push(entry.name);
        let flow = self.member(entry.reader, entry.compressed, depth, sink);
        self.chain.pop();
        flow
    }

    fn member(
        &mut self,
        reader: Option<&mut dyn Read>,
        compressed: u64,
        depth: u32,
        sink: &mut dyn Members,
    ) -> Flow {
        if self.members >= self.config.max_members {
            let reason = format!("more than {} members", self.config.max_members);
            return self.hit(Limit::Members, reason, sink);
        }
        if Instant::now() >= self.deadline {
            let reason = format!("extraction took over {} ms", self.config.max_time_ms);
            return self.hit(Limit::Time, reason, sink);
        }
        let Some(reader) = reader else {
            return self.hit(Limit::Encrypted, "encrypted: not scanned".into(), sink);
        };
        let mut meter = Meter::new(reader, compressed, self.config, self.deadline);
        // A tar (as in a .tar.gz) is read as it is decoded, never held whole: its members are
        // what is scanned.
        let head = meter.peek(TAR_HEAD);
        if sniff(&head) == Some(Format::Tar) {
            return self.streamed_tar(head, &mut meter, depth, sink);
        }
        self.members += 1;
        let (data, stop) = self.read(head, &mut meter);
        self.extracted += data.len() as u64;
        sink.member(&self.chain, &data);
        if let Some((limit, reason)) = stop {
            self.hit(limit, reason, sink)?;
        }
        if let Some(inner) = sniff(&data) {
            if depth >= self.config.max_depth {
                let reason = format!("nested deeper than {}", self.config.max_depth);
                return self.hit(Limit::Depth, reason, sink);
            }
            let name = self.chain.last().cloned().unwrap_or_default();
            self.archive(inner, &data, &name, depth + 1, sink);
        }
        self.flow()
    }

    /// The members of a tar read straight from its decoder.
    fn streamed_tar(
        &mut self,
        head: Vec<u8>,
        meter: &mut Meter<'_>,
        depth: u32,
        sink: &mut dyn Members,
    ) -> Flow {
        if depth >= self.config.max_depth {
            let reason = format!("nested deeper than {}", self.config.max_depth);
            return self.hit(Limit::Depth, reason, sink);
        }
        let mut stream = std::io::Cursor::new(head).chain(meter.by_ref());
        let troubles = formats::tar(&mut stream, &mut |entry| self.entry(entry, depth + 1, sink));
        // The decoder's limits first: the tar reader only saw them as read errors.
        if let Some((limit, reason)) = meter.stopped.take() {
            self.hit(limit, reason, sink)?;
        } else {
            for trouble in troubles {
                self.trouble(trouble, sink)?;
            }
        }
        self.flow()
    }

    /// Reads a member (whose first bytes, `head`, are read already) within the limits: its
    /// bytes, and the limit that cut them short.
    fn read(&self, head: Vec<u8>, meter: &mut Meter<'_>) -> (Vec<u8>, Option<(Limit, String)>) {
        let config = self.config;
        let room = config.max_total_size.saturating_sub(self.extracted);
        let cap = config.max_member_size.min(room) as usize;
        let mut data = head;
        data.truncate(cap);
        loop {
            let want = (cap - data.len()).min(CHUNK);
            if want == 0 {
                // Full: one more byte says whether the member goes on.
                if !matches!(meter.read(&mut [0u8; 1]), Ok(n) if n > 0) {
                    return (data, meter.stopped.take());
                }
                return (
                    data,
                    Some(if (cap as u64) < config.max_member_size {
                        let reason = format!("more than {} bytes extracted", config.max_total_size);
                        (Limit::TotalSize, reason)
                    } else {
                        let reason =
                            format!("larger than {cap} bytes: its first bytes are scanned");
                        (Limit::MemberSize, reason)
                    }),
                );
            }
            // Decoded straight into the member's buffer: no staging chunk per member.
            let filled = data.len();
            data.resize(filled + want, 0);
            let read = meter.read(&mut data[filled..]);
            data.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return (data, None),
                Ok(_) => {}
                Err(err) => {
                    return (
                        data,
                        Some(meter.stopped.take().unwrap_or_else(|| read_error(&err))),
                    );
                }
            }
        }
    }

    /// Says a format reader's trouble.
    fn trouble(&mut self, trouble: Trouble, sink: &mut dyn Members) -> Flow {
        let (limit, reason) = match trouble {
            Trouble::DecoderMemory(reason) => (Limit::DecoderMemory, reason),
            Trouble::Damaged(reason) => (Limit::Damaged, reason),
            Trouble::Encrypted(reason) => (Limit::Encrypted, reason),
            Trouble::Limited(limit, reason) => (limit, reason),
            // A bomb on disk is a detection, as other products report it. Inside another
            // archive (a parser's test fixtures in a source package, say) it is a limit: not
            // extracted, said, and a detection only with `alert_on_limit`.
            Trouble::Bomb {
                threat,
                reason,
                offset,
            } if self.chain.is_empty() => {
                sink.bomb(Bomb {
                    threat,
                    reason,
                    offset,
                });
                return Flow::Continue(());
            }
            Trouble::Bomb { threat, reason, .. } => (Limit::Bomb, format!("{threat}: {reason}")),
        };
        self.hit(limit, reason, sink)
    }

    /// Whether to go on: not once a per-file limit stopped the walk.
    fn flow(&self) -> Flow {
        if self.stopped {
            Flow::Break(())
        } else {
            Flow::Continue(())
        }
    }

    /// Says a limit was reached; stops the walk when the limit is per file.
    fn hit(&mut self, limit: Limit, reason: String, sink: &mut dyn Members) -> Flow {
        // A decoder's limit reaches both the member being read and the stream around it: once.
        if self.last_hit.as_ref() != Some(&(limit, reason.clone())) {
            self.last_hit = Some((limit, reason.clone()));
            sink.limit(LimitHit {
                limit,
                member: self.chain.clone(),
                reason,
            });
        }
        if limit.stops_file() {
            self.stopped = true;
            Flow::Break(())
        } else {
            Flow::Continue(())
        }
    }
}

/// The limit a decoder's error means: a limit a [`Meter`] below reached; memory, when the
/// decoder refused a dictionary or window over the limit; else damage.
fn read_error(err: &std::io::Error) -> (Limit, String) {
    if let Some(LimitError(limit, reason)) = err.get_ref().and_then(|e| e.downcast_ref()) {
        return (*limit, reason.clone());
    }
    let text = err.to_string();
    if formats::is_memory_refusal(&text) {
        (Limit::DecoderMemory, format!("decoder memory: {text}"))
    } else {
        (Limit::Damaged, format!("cannot be read to the end: {text}"))
    }
}
