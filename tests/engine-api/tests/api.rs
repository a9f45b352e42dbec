//! `vigil-engine` embedded by another program, through its documented API only: build an engine,
//! scan a tree into a sink of our own, scan an open `File` and bytes in memory, cancel a running
//! scan, and run more scans at once than the engine has plugin instances.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use vigil_engine::{
    Config, Engine, EngineBuilder, ScanEvent, ScanKind, ScanRequest, ScanSink, ScanStart,
    ScanSummary,
};

/// The EICAR test string, assembled at run time so no source file holds it whole.
fn eicar() -> Vec<u8> {
    let mut bytes = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-".to_vec();
    bytes.extend_from_slice(b"ANTIVIRUS-TEST-FILE!$H+H*");
    bytes
}

const EICAR_THREAT: &str = "Virus:DOS/EICAR_Test_File";

fn engine(state: &Path) -> Engine {
    EngineBuilder::new(Config::default())
        .state_dir(state)
        .build()
        .expect("the default definitions load")
}

/// A sink that keeps everything and can ask for a cancel after some files.
#[derive(Default)]
struct Recorder {
    began: AtomicBool,
    finished: Mutex<Option<ScanSummary>>,
    events: Mutex<Vec<ScanEvent>>,
    files: AtomicU64,
    cancel_after: Option<u64>,
}

impl ScanSink for Recorder {
    fn begin(&self, _scan: &ScanStart) {
        self.began.store(true, Ordering::SeqCst);
    }
    fn event(&self, event: &ScanEvent) {
        self.events.lock().unwrap().push(event.clone());
    }
    fn file_scanned(&self, _path: &Path, _bytes: u64) {
        self.files.fetch_add(1, Ordering::SeqCst);
    }
    fn finish(&self, summary: &ScanSummary) {
        *self.finished.lock().unwrap() = Some(summary.clone());
    }
    fn cancelled(&self) -> bool {
        self.cancel_after
            .is_some_and(|after| self.files.load(Ordering::SeqCst) >= after)
    }
}

fn tree(files: usize, extension: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..files {
        let sub = dir.path().join(format!("d{}", n % 16));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("f{n}.{extension}")),
            // Long enough for the script plugin (it wants 32 bytes and more).
            format!("var x{n} = {n}; // an ordinary line of an ordinary script file\n"),
        )
        .unwrap();
    }
    let planted = dir.path().join("d3/planted.com");
    std::fs::create_dir_all(dir.path().join("d3")).unwrap();
    std::fs::write(&planted, eicar()).unwrap();
    (dir, planted)
}

#[test]
fn a_tree_scan_streams_to_our_sink_from_begin_to_finish() {
    let state = tempfile::tempdir().unwrap();
    let engine = engine(state.path());
    let (corpus, planted) = tree(200, "txt");
    let sink = Recorder::default();
    let request = ScanRequest {
        kind: ScanKind::Custom(vec![corpus.path().to_path_buf()]),
        threads: 2,
    };
    let summary = engine.scan(&request, &sink).unwrap();
    assert!(sink.began.load(Ordering::SeqCst));
    assert_eq!(sink.finished.lock().unwrap().as_ref(), Some(&summary));
    assert_eq!(summary.files_scanned, 201);
    assert_eq!(summary.detections, 1);
    assert!(!summary.cancelled);
    let events = sink.events.lock().unwrap();
    let detected: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            ScanEvent::Detection { path, finding, .. } => {
                Some((path.clone(), finding.threat.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(detected, vec![(planted, EICAR_THREAT.to_string())]);
}

#[test]
fn an_open_file_and_bytes_in_memory_are_scanned_without_a_path_walk() {
    let state = tempfile::tempdir().unwrap();
    let engine = engine(state.path());
    let (_corpus, planted) = tree(1, "txt");
    let file = std::fs::File::open(&planted).unwrap();
    // The name the caller gives is what the report says, whatever the file is called on disk.
    let report = engine
        .scan_file(&file, Path::new("/client/said/this.com"))
        .unwrap();
    assert_eq!(report.threats(), vec![EICAR_THREAT]);
    assert_eq!(report.bytes_scanned, eicar().len() as u64);
    assert_eq!(report.events[0].path(), Path::new("/client/said/this.com"));
    assert!(planted.exists(), "scan_file never acts on the file");

    let report = engine.scan_bytes(&eicar(), Path::new("memory.bin"));
    assert_eq!(report.threats(), vec![EICAR_THREAT]);
    let clean = engine.scan_bytes(b"hello, world\n", Path::new("memory.txt"));
    assert!(clean.events.is_empty(), "{:?}", clean.events);
    assert_eq!(clean.bytes_scanned, 13);

    // A directory handle is not scanned, and the report says why.
    let dir = std::fs::File::open(state.path()).unwrap();
    let report = engine.scan_file(&dir, state.path()).unwrap();
    assert!(matches!(report.events[..], [ScanEvent::Skipped { .. }]));
}

#[test]
fn a_running_scan_stops_when_the_sink_cancels() {
    let state = tempfile::tempdir().unwrap();
    let engine = engine(state.path());
    let (corpus, _) = tree(5000, "txt");
    let sink = Recorder {
        cancel_after: Some(100),
        ..Recorder::default()
    };
    let request = ScanRequest {
        kind: ScanKind::Custom(vec![corpus.path().to_path_buf()]),
        threads: 2,
    };
    let summary = engine.scan(&request, &sink).unwrap();
    assert!(summary.cancelled);
    assert!(summary.files_scanned >= 100, "{summary:?}");
    // Each worker finishes at most the file in hand (plus what was already queued to it).
    assert!(summary.files_scanned < 1000, "{summary:?}");
    assert_eq!(sink.finished.lock().unwrap().as_ref(), Some(&summary));
}

#[test]
fn more_callers_than_plugin_instances_wait_instead_of_faulting() {
    let state = tempfile::tempdir().unwrap();
    // One plugin instance for two scans of four threads each, over files the default plugins
    // want (scripts): every call must wait its turn, none may fault.
    let engine = EngineBuilder::new(Config::default())
        .state_dir(state.path())
        .concurrency(1)
        .build()
        .unwrap();
    assert!(
        !engine.plugins().plugins().is_empty(),
        "default plugins load"
    );
    let (corpus, _) = tree(300, "js");
    let request = ScanRequest {
        kind: ScanKind::Custom(vec![corpus.path().to_path_buf()]),
        threads: 4,
    };
    let (a, b) = (Recorder::default(), Recorder::default());
    std::thread::scope(|scope| {
        scope.spawn(|| engine.scan(&request, &a).unwrap());
        scope.spawn(|| engine.scan(&request, &b).unwrap());
    });
    for sink in [&a, &b] {
        let summary = sink.finished.lock().unwrap().clone().unwrap();
        assert_eq!(
            summary.plugin_faults,
            0,
            "{:?}",
            sink.events.lock().unwrap()
        );
        assert_eq!(summary.files_scanned, 301);
        assert_eq!(summary.detections, 1);
    }
}

#[test]
fn plugin_faults_are_counted_per_scan_not_per_engine() {
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hostile-plugin");
    let wasm =
        vigil_plugin_build::build(&hostile, &vigil_plugin_build::default_target_dir(&hostile))
            .expect("the hostile plugin builds");
    let state = tempfile::tempdir().unwrap();
    let engine = EngineBuilder::new(Config::default())
        .state_dir(state.path())
        .extra_plugin(wasm)
        .build()
        .unwrap();
    let corpus = tempfile::tempdir().unwrap();
    for n in 0..5 {
        std::fs::write(corpus.path().join(format!("t{n}.hostile")), "trap").unwrap();
    }
    let request = ScanRequest {
        kind: ScanKind::Custom(vec![corpus.path().to_path_buf()]),
        threads: 1,
    };
    // Each scan starts with a clean slate: three faults, then the plugin is disabled for the
    // rest of that scan only.
    for scan in 0..2 {
        let sink = Recorder::default();
        let summary = engine.scan(&request, &sink).unwrap();
        assert_eq!(summary.plugin_faults, 3, "scan {scan}");
        let disabled = sink
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, ScanEvent::PluginDisabled { .. }))
            .count();
        assert_eq!(disabled, 1, "scan {scan}");
    }
}
