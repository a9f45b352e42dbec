//! Start-up cost of definitions with several thousand rules: loading the serialized rules of an
//! installed drop against compiling the same rules from source, measured in one run, rounds
//! alternating. Reported twice: in-process (`YaraRules::deserialize` vs `YaraRules::compile`) and as
//! the wall time of `vigil scan custom` on one small file (installed drop vs `--rules` sources).
//!
//! Environment: `VIGIL_BENCH_RULES` (3000), `VIGIL_BENCH_ROUNDS` (5).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_engine::detect::yara::{RuleSource, YaraRules};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `count` distinct rules in the styles public rule sets use: text and hex strings, regular
/// expressions, counts, offsets and file-size conditions.
fn synthetic_rules(count: usize) -> String {
    let mut text = String::new();
    for n in 0..count {
        let body = match n % 4 {
            0 => format!(
                "strings:\n    $a = \"suspicious-marker-{n:05}\"\n    $b = \"payload_{n}_stage\" nocase\n  condition:\n    any of them"
            ),
            1 => format!(
                "strings:\n    $h = {{ 4D 5A 90 00 {:02X} {:02X} ?? ?? 50 45 }}\n    $s = \"dropper{n}.exe\" wide ascii\n  condition:\n    $h at 0 and $s",
                n % 256,
                (n / 256) % 256
            ),
            2 => format!(
                "strings:\n    $r = /evil-{n}-[a-z]{{4,8}}\\.(com|net)/\n  condition:\n    #r > 1 and filesize < 10MB"
            ),
            _ => format!(
                "strings:\n    $x = \"campaign-{n}-key\" xor\n    $y = \"c2-{n}.example\"\n  condition:\n    $x or ($y and uint16(0) == 0x457f)"
            ),
        };
        text.push_str(&format!(
            "rule Synthetic_{n} {{\n  meta:\n    threat = \"Test:Any/Synthetic.{n}\"\n    severity = \"low\"\n  {body}\n}}\n\n"
        ));
    }
    text
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed_scan(command: &mut Command) -> Duration {
    let started = Instant::now();
    // Loading is measured, not the result caches.
    let status = command
        .arg("--no-cache")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.code() == Some(0) || status.code() == Some(1),
        "vigil failed: {status}"
    );
    started.elapsed()
}

fn main() {
    let rules = env_or("VIGIL_BENCH_RULES", 3000);
    let rounds = env_or("VIGIL_BENCH_ROUNDS", 5);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = synthetic_rules(rules);
    let rules_dir = dir.join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("synthetic.yar"), &source).unwrap();
    let sources = vec![RuleSource {
        origin: "rules/synthetic.yar".into(),
        text: source.clone(),
    }];

    // Publish and install the rules as a drop, as a user would.
    let key = vigil_drop::generate_key().unwrap();
    let drop = vigil_drop::build(
        &[("rules/synthetic.yar".into(), source.into_bytes())],
        100,
        "0.1.0",
        0,
        &key,
    )
    .unwrap();
    std::fs::write(dir.join("synthetic.drop"), drop).unwrap();
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[definitions]\ntrusted_keys = [\"{}\"]\n",
            vigil_drop::public_key_line(&key.verifying_key())
        ),
    )
    .unwrap();
    let vigil = |state: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
        command
            .env("VIGIL_STATE_DIR", state)
            .env("VIGIL_CONFIG", &config);
        command
    };
    let installed_state = dir.join("installed");
    let started = Instant::now();
    let status = vigil(&installed_state)
        .args(["definitions", "update", "--from"])
        .arg(dir.join("synthetic.drop"))
        .status()
        .unwrap();
    assert!(status.success());
    println!(
        "{rules} rules installed in {:.2?} (verify + compile + serialize + atomic switch)",
        started.elapsed()
    );
    let small = dir.join("small.txt");
    std::fs::write(&small, "just a small clean file\n").unwrap();
    let serialized = YaraRules::compile(&sources, &Default::default())
        .unwrap()
        .serialize()
        .unwrap();

    let (mut compile, mut load, mut scan_compile, mut scan_load) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let started = Instant::now();
        let compiled = YaraRules::compile(&sources, &Default::default()).unwrap();
        compile.push(started.elapsed());
        assert_eq!(compiled.rule_count(), rules);
        let started = Instant::now();
        let loaded = YaraRules::deserialize(&serialized, &sources).unwrap();
        load.push(started.elapsed());
        assert_eq!(loaded.rule_count(), rules);
        scan_compile.push(timed_scan(
            vigil(&dir.join("builtin-state"))
                .args(["scan", "custom"])
                .arg(&small)
                .arg("--rules")
                .arg(&rules_dir),
        ));
        scan_load.push(timed_scan(
            vigil(&installed_state).args(["scan", "custom"]).arg(&small),
        ));
        println!(
            "round {round}: compile {:.1?}  load {:.1?}  scan(compile) {:.1?}  scan(load) {:.1?}",
            compile[round], load[round], scan_compile[round], scan_load[round]
        );
    }
    let (compile, load, scan_compile, scan_load) = (
        median(compile),
        median(load),
        median(scan_compile),
        median(scan_load),
    );
    println!("\n{rules} rules, medians of {rounds} rounds:");
    println!(
        "  in-process: compile {compile:.1?}, load serialized {load:.1?}: load/compile = {:.3} (target <= 0.1)",
        load.as_secs_f64() / compile.as_secs_f64()
    );
    println!(
        "  vigil scan of one small file: from sources {scan_compile:.1?}, installed drop {scan_load:.1?}: ratio {:.3}",
        scan_load.as_secs_f64() / scan_compile.as_secs_f64()
    );
}
