//! A plugin that wants every file and returns nothing, so a benchmark measures only what the
//! host costs per call: a fresh instance, copying the input in, the call, reading the result.

use vigil_sdk::{Descriptor, Finding, InputSize, Plugin, ScanInput};

struct Noop;

impl Plugin for Noop {
    fn describe() -> Descriptor {
        Descriptor {
            name: "noop".into(),
            version: "0.0.1".into(),
            description: "Finds nothing, on every file".into(),
            magic: Vec::new(),
            extensions: Vec::new(),
            min_size: 0,
            input: InputSize::WholeFile,
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        std::hint::black_box(&input.data);
        Vec::new()
    }
}

vigil_sdk::export_plugin!(Noop);
