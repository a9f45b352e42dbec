// The noop plugin's code, shared by `noop-plugin` (exported as every plugin is) and
// `noop-plugin-bare` (exported without the SDK's per-call panic hook).

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
            wants_name: false,
            prefilter: Vec::new(),
        }
    }

    fn scan(input: ScanInput) -> Vec<Finding> {
        std::hint::black_box(&input.data);
        Vec::new()
    }
}

