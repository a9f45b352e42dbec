//! The on-disk cache of compiled plugins, so a plugin is compiled once per version, not per run.
//!
//! Entries are named by the plugin's BLAKE3 digest and a hash of everything in the wasmtime
//! engine that affects machine code, so a new Vigil build or other limits miss the cache instead
//! of loading code made for another engine. Each entry starts with the BLAKE3 of the code after
//! it, checked before the code is loaded, and is written to a temporary file and renamed, so a
//! reader never loads half an entry or a damaged one. The cache lives in the state dir (mode 0700): code in it
//! is trusted as much as the Vigil binary, since only its owner can write there.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

/// A folder of compiled plugins.
pub struct CompileCache {
    dir: PathBuf,
    engine_tag: String,
}

impl CompileCache {
    /// A cache in `dir` (created on first write) for code compiled by `engine`.
    pub fn new(dir: &Path, engine: &wasmtime::Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: dir.to_path_buf(),
            engine_tag: format!("{:016x}", hasher.finish()),
        }
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_tag))
    }

    /// The cached compiled form of the plugin with this digest, if there is a usable one.
    pub fn get(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let bytes = std::fs::read(self.entry(digest)).ok()?;
        let (checksum, code) = bytes.split_at_checked(blake3::OUT_LEN)?;
        if blake3::hash(code).as_bytes() != checksum {
            return None; // damaged: compile again, and the new entry replaces it
        }
        // SAFETY: the code is exactly what `put` below wrote from `Component::serialize` with
        // this engine configuration (the name carries its compatibility hash, the checksum its
        // integrity), in a directory only the owner of the state can write; wasmtime checks its
        // header and version again.
        unsafe { Component::deserialize(engine, code) }.ok()
    }

    /// Stores a compiled plugin. Failing to cache is not an error: the next run compiles again.
    pub fn put(&self, digest: &str, component: &Component) {
        let Ok(bytes) = component.serialize() else {
            return;
        };
        let temp = self
            .dir
            .join(format!(".tmp-{}-{digest}", std::process::id()));
        let write = || -> std::io::Result<()> {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(blake3::hash(&bytes).as_bytes())?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, self.entry(digest))
        };
        if write().is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
}
