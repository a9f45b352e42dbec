//! A hostile plugin for the sandbox tests. It wants `*.hostile` files and misbehaves according to
//! the first word of each: `loop` (never returns), `alloc` (asks for 1 GiB), `recurse` (unbounded
//! recursion), `trap` (panics), `floodpanic` (spends its log budget, then panics), `findings` (returns 100 000 findings), `huge` (a 20 MiB
//! description), `badname` (a malformed threat name), `badutf8` (a string that is not UTF-8),
//! `log` (floods the log with terminal escapes), `leak` (reports what an earlier call left in
//! memory), `detect` (one proper finding). Anything else: no findings.

use std::hint::black_box;

use vigil_sdk::{Descriptor, Finding, InputSize, Level, Plugin, ScanInput, Severity};

struct Hostile;

/// Set by a call, read by the next one: a fresh instance per call must not see it.
static mut LEFT_BEHIND: u32 = 0;

impl Plugin for Hostile {
    fn describe() -> Descriptor {
        Descriptor {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "Misbehaves on purpose".into(),
            magic: Vec::new(),
            extensions: vec!["hostile".into()],
            min_size: 0,
            input: InputSize::WholeFile,
            wants_name: true,
            prefilter: Vec::new(),
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        let word = input
            .data
            .split(|b| b.is_ascii_whitespace())
            .next()
            .unwrap_or_default();
        // SAFETY: wasm32-unknown-unknown plugins are single-threaded.
        let left_behind = unsafe { LEFT_BEHIND };
        unsafe { LEFT_BEHIND = 0xdead };
        match word {
            b"loop" => loop {
                black_box(&input);
            },
            b"alloc" => {
                let block = black_box(vec![1u8; 1 << 30]);
                vec![found(&format!("allocated {}", block.len()))]
            }
            b"recurse" => vec![found(&format!("depth {}", recurse(black_box(1))))],
            b"trap" => panic!("hostile plugin panics"),
            b"floodpanic" => {
                for n in 0..1000 {
                    vigil_sdk::log!(Level::Warn, "flood {n}");
                }
                panic!("after the flood")
            }
            b"findings" => (0..100_000).map(|_| found("one of many")).collect(),
            b"huge" => vec![found(&"x".repeat(20 << 20))],
            b"badname" => vec![Finding::new("not a threat name", Severity::High, "bad")],
            b"badutf8" => {
                // SAFETY: deliberately not UTF-8; the host must refuse it, not trust it.
                let bad = unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, 0x41]) };
                vec![Finding::new("Test:Multi/Hostile", Severity::High, bad)]
            }
            b"log" => {
                for n in 0..1000 {
                    vigil_sdk::log(Level::Warn, &format!("line {n} \x1b[2J\x1b]0;owned\x07"));
                }
                Vec::new()
            }
            b"leak" if left_behind != 0 => vec![found("saw state from an earlier call")],
            b"detect" => vec![found("found on purpose").at(0)],
            b"name" => vec![found(&format!(
                "name {:?} extension {:?}",
                input.name, input.extension
            ))],
            _ => Vec::new(),
        }
    }
}

fn found(description: &str) -> Finding {
    Finding::new("Test:Multi/Hostile", Severity::High, description)
}

fn recurse(depth: u64) -> u64 {
    if black_box(depth) == 0 {
        return 0;
    }
    1 + recurse(black_box(depth + 1))
}

vigil_sdk::export_plugin!(Hostile);
