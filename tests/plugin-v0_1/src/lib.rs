//! A plugin of the first contract, `vigil:plugin@0.1.0`: magic at a fixed offset, no file name.
//! It finds `MARKER` in `.old` files or files starting with `OLD-CONTRACT`, and says how much
//! of the file it was given.

wit_bindgen::generate!({
    path: "../../engine/wit/plugin-0.1.0.wit",
    world: "plugin",
});

use exports::vigil::plugin::detector::{
    Descriptor, Finding, Guest, InputSize, Magic, ScanInput, Severity,
};

struct OldContract;

impl Guest for OldContract {
    fn describe() -> Descriptor {
        Descriptor {
            name: "old-contract".into(),
            version: "0.1.0".into(),
            description: "Built against vigil:plugin@0.1.0".into(),
            magic: vec![Magic {
                offset: 0,
                bytes: b"OLD-CONTRACT".to_vec(),
            }],
            extensions: vec!["old".into()],
            min_size: 6,
            input: InputSize::Prefix(4096),
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        let Some(at) = input.data.windows(6).position(|w| w == b"MARKER") else {
            return Vec::new();
        };
        vec![Finding {
            threat: "Test:Any/OldContract".into(),
            severity: Severity::Medium,
            description: format!("given {} of {} bytes", input.data.len(), input.file_size),
            offset: Some(at as u64),
        }]
    }
}

export!(OldContract);
