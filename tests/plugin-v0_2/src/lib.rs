//! A plugin of the second contract, `vigil:plugin@0.2.0`: masked magic searched anywhere and the
//! file's name, no prefilter. It finds `MARKER` in files holding `V2` + any byte + `2` in their
//! first 4 KiB, and says which name it was given.

wit_bindgen::generate!({
    path: "../../engine/wit/plugin-0.2.0.wit",
    world: "plugin",
});

use exports::vigil::plugin::detector::{
    Descriptor, Finding, Guest, InputSize, Magic, ScanInput, Severity,
};

struct SecondContract;

impl Guest for SecondContract {
    fn describe() -> Descriptor {
        Descriptor {
            name: "second-contract".into(),
            version: "0.2.0".into(),
            description: "Built against vigil:plugin@0.2.0".into(),
            magic: vec![Magic {
                offset: 0,
                bytes: b"V2?2".to_vec(),
                mask: b"\xff\xff\x00\xff".to_vec(),
                anywhere: true,
            }],
            extensions: Vec::new(),
            min_size: 6,
            input: InputSize::Prefix(4096),
            wants_name: true,
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        let Some(at) = input.data.windows(6).position(|w| w == b"MARKER") else {
            return Vec::new();
        };
        vec![Finding {
            threat: "Test:Any/SecondContract".into(),
            severity: Severity::Medium,
            description: format!("named {:?}", input.name),
            offset: Some(at as u64),
        }]
    }
}

export!(SecondContract);
