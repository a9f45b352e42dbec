//! A deterministic benchmark corpus: tens of thousands of files, about 1 GiB at scale 1, with the
//! size mix of a real system tree (85% of files under 10 KiB, a few large binaries) and a mix of
//! source-like text and binary content. The same scale always produces the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Files at scale 1.0.
const FILES_AT_SCALE_ONE: usize = 28_000;
/// Bumped when the generator changes, so an old corpus is regenerated.
const GENERATOR_VERSION: u32 = 1;

/// A small, fast, deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low)
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "return", "value", "count", "index", "buffer", "config", "self", "import",
    "def", "class", "for", "while", "if", "else", "match", "struct", "impl", "print", "result",
    "error", "path", "file", "open", "read", "write", "total", "string", "number", "list", "map",
    "=", "+", "-", "*", "(", ")", "{", "}", "[", "]", ";", ":", "->", "0", "1", "42", "\"text\"",
];

fn text(rng: &mut Rng, size: usize, out: &mut Vec<u8>) {
    while out.len() < size {
        let indent = rng.below(4) as usize * 4;
        out.extend(std::iter::repeat_n(b' ', indent));
        for _ in 0..rng.between(3, 12) {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
    out.truncate(size);
}

fn binary(rng: &mut Rng, size: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    while out.len() < size {
        match rng.below(4) {
            // Zero padding, as between sections.
            0 => out.extend(std::iter::repeat_n(0u8, rng.between(16, 512) as usize)),
            // Repeated structure, as in tables.
            1 => {
                let record = rng.next().to_le_bytes();
                for _ in 0..rng.between(4, 64) {
                    out.extend_from_slice(&record);
                }
            }
            // Code-like noise.
            _ => {
                for _ in 0..rng.between(32, 512) {
                    out.extend_from_slice(&rng.next().to_le_bytes());
                }
            }
        }
    }
    out.truncate(size);
}

/// Picks a file size: 85% under 10 KiB, 13% up to 200 KiB, 1.5% up to 2 MiB, 0.15% up to 16 MiB.
fn file_size(rng: &mut Rng) -> u64 {
    match rng.below(10_000) {
        0..8535 => rng.between(64, 10 * 1024),
        8535..9835 => rng.between(10 * 1024, 200 * 1024),
        9835..9985 => rng.between(256 * 1024, 2 * 1024 * 1024),
        _ => rng.between(2 * 1024 * 1024, 16 * 1024 * 1024),
    }
}

/// The corpus a benchmark scans: the real files named by `VIGIL_BENCH_CORPUS` (then `true`),
/// else the generated corpus for `scale` under `base` (then `false`).
pub fn real_or_generated(base: &Path, scale: f64) -> (PathBuf, bool) {
    match std::env::var_os("VIGIL_BENCH_CORPUS") {
        Some(dir) => (PathBuf::from(dir), true),
        None => (generate(base, scale), false),
    }
}

/// Makes (or reuses) the corpus for `scale` under `base`; returns its root, which holds two halves
/// `part0` and `part1` of equal file count.
pub fn generate(base: &Path, scale: f64) -> PathBuf {
    let root = base.join(format!("bench-corpus-{scale}"));
    let marker = root.join(".complete");
    let files = ((FILES_AT_SCALE_ONE as f64 * scale) as usize).max(100);
    let stamp = format!("{GENERATOR_VERSION} {files}");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buffer = Vec::new();
    for index in 0..files {
        let part = index % 2;
        let dir = root.join(format!(
            "part{part}/d{:03}/s{}",
            (index / 2) % 200,
            (index / 400) % 7
        ));
        let size = file_size(&mut rng) as usize;
        buffer.clear();
        let name = if rng.below(2) == 0 {
            text(&mut rng, size, &mut buffer);
            format!("f{index}.txt")
        } else {
            binary(&mut rng, size, &mut buffer);
            format!("f{index}.bin")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = std::fs::File::create(dir.join(name)).unwrap();
        file.write_all(&buffer).unwrap();
    }
    std::fs::write(&marker, stamp).unwrap();
    root
}
