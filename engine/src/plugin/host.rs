//! The sandbox: one wasmtime engine for plugins, its only import (`host.log`), the limits every
//! call runs under, and the calls themselves.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};

use super::bindings::{self, Contract};
use super::cache::CompileCache;
use crate::config::PluginsConfig;

/// How often the epoch advances; a call's deadline is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Core instances, memories and tables one plugin component may hold. A component made by
/// `wit-bindgen` from Rust has one module and a few small adapter modules.
const CORE_INSTANCES_PER_PLUGIN: u32 = 8;
const MEMORIES_PER_PLUGIN: u32 = 2;
const TABLES_PER_PLUGIN: u32 = 4;

/// Bytes of a plugin's memory (and tables) reset in place rather than given back between calls.
const KEEP_RESIDENT: usize = 4 * 1024 * 1024;

/// WebAssembly headers: a core module, and a component (layer 1).
const MODULE_HEADER: &[u8] = b"\0asm\x01\0\0\0";
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";

/// The plugin sandbox: a wasmtime engine of its own (not yara-x's), configured for untrusted
/// code, and a linker that offers nothing but `host.log`.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    limits: PluginsConfig,
    cache: Option<CompileCache>,
    ticker: EpochTicker,
    slots: CallSlots,
}

impl PluginHost {
    /// A host for up to `concurrency` simultaneous calls, caching compiled plugins in
    /// `cache_dir` when given. More callers than that (several scans at once, or more threads
    /// than the engine was built for) wait for a free instance; they never fault for want of one.
    pub fn new(
        limits: &PluginsConfig,
        concurrency: usize,
        cache_dir: Option<&Path>,
    ) -> Result<Self, String> {
        let slots = u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX / 64) + 1;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * CORE_INSTANCES_PER_PLUGIN)
            .max_core_instances_per_component(CORE_INSTANCES_PER_PLUGIN)
            .total_memories(slots * MEMORIES_PER_PLUGIN)
            .max_memories_per_component(MEMORIES_PER_PLUGIN)
            .total_tables(slots * TABLES_PER_PLUGIN)
            .max_tables_per_component(TABLES_PER_PLUGIN)
            .max_memory_size(limits.memory_limit as usize)
            .table_elements(limits.max_table_elements as usize)
            // Reset the first pages of a used memory with memset instead of madvise: a plugin
            // built with the SDK (64 KiB stack, 256 KiB arena) lives in those for a small file,
            // and madvise and mprotect cost a TLB shootdown on every core per call. Larger
            // inputs still give their pages back.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only the pages a call
            // dirtied rather than memset the whole kept part: on 94,676 real files the plugins'
            // cost over YARA alone fell from 1.31x to 1.20x. Elsewhere, the memset as before.
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.max_stack as usize)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|err| format!("plugin engine: {err}"))?;
        let mut linker = Linker::new(&engine);
        bindings::current::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )
        .and_then(|()| {
            bindings::v0_2::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )
        })
        .and_then(|()| {
            bindings::v0_1::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )
        })
        .map_err(|err| format!("plugin linker: {err}"))?;
        let cache = cache_dir.map(|dir| CompileCache::new(dir, &engine));
        let ticker = EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            limits: limits.clone(),
            cache,
            ticker,
            slots: CallSlots::new(slots),
        })
    }

    /// The limits calls run under.
    pub fn limits(&self) -> &PluginsConfig {
        &self.limits
    }

    /// Compiles a plugin (or takes it from the cache), refuses imports outside the WIT world,
    /// and links it. `digest` is the BLAKE3 of `bytes`. Also says whether the compiled code came
    /// from the cache.
    pub fn prepare(&self, bytes: &[u8], digest: &str) -> Result<(Prepared, bool), String> {
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, digest));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, as_component(bytes)?)
                    .map_err(|err| format!("does not compile: {}", root_cause(&err)))?;
                if let Some(cache) = &self.cache {
                    cache.put(digest, &component);
                }
                component
            }
        };
        let component_type = component.component_type();
        let imports: Vec<&str> = Contract::ALL.iter().map(|c| c.host_import()).collect();
        if let Some((name, _)) = component_type
            .imports(&self.engine)
            .find(|(name, _)| !imports.contains(name))
        {
            let fix = if name.starts_with("wasi") {
                format!(" (WASI): {WASI_FIX}")
            } else {
                format!(
                    " (the only import allowed is `{}`: plugins get no files, network, clock, \
                     environment or randomness)",
                    Contract::V0_3.host_import()
                )
            };
            return Err(format!("imports `{name}`, which plugins may not use{fix}"));
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|err| format!("cannot be linked: {}", root_cause(&err)))?;
        let exported = Contract::ALL.into_iter().find_map(|contract| {
            let detector = component.get_export_index(None, contract.detector_export())?;
            let describe = component.get_export_index(Some(&detector), "describe")?;
            let scan = component.get_export_index(Some(&detector), "scan")?;
            Some((contract, describe, scan))
        });
        let (contract, describe, scan) = exported.ok_or_else(|| {
            format!(
                "does not export the {} interface (with `describe` and `scan`): build it with \
                 vigil_sdk::export_plugin!",
                Contract::V0_3.detector_export()
            )
        })?;
        let prepared = Prepared {
            contract,
            pre,
            describe,
            scan,
        };
        Ok((prepared, from_cache))
    }

    /// Calls `describe` in a fresh instance; an older descriptor comes back in the current shape.
    pub fn describe(&self, plugin: &Prepared, name: &str) -> Result<bindings::Descriptor, String> {
        self.call(name, |store| {
            let instance = plugin.pre.instantiate(&mut *store)?;
            Ok(match plugin.contract {
                Contract::V0_3 => {
                    let describe = instance.get_typed_func::<(), (bindings::Descriptor,)>(
                        &mut *store,
                        &plugin.describe,
                    )?;
                    describe.call(store, ())?.0
                }
                Contract::V0_2 => {
                    type OldDescriptor =
                        bindings::v0_2::exports::vigil::plugin::detector::Descriptor;
                    let describe = instance
                        .get_typed_func::<(), (OldDescriptor,)>(&mut *store, &plugin.describe)?;
                    describe.call(store, ())?.0.into()
                }
                Contract::V0_1 => {
                    type OldDescriptor =
                        bindings::v0_1::exports::vigil::plugin::detector::Descriptor;
                    type NextDescriptor =
                        bindings::v0_2::exports::vigil::plugin::detector::Descriptor;
                    let describe = instance
                        .get_typed_func::<(), (OldDescriptor,)>(&mut *store, &plugin.describe)?;
                    NextDescriptor::from(describe.call(store, ())?.0).into()
                }
            })
        })
    }

    /// Calls `scan` on `input` in a fresh instance, so nothing a previous file left in the
    /// plugin's memory is visible to this one. A 0.1.0 plugin is given no name.
    pub fn scan(
        &self,
        plugin: &Prepared,
        name: &str,
        input: bindings::ScanInputRef<'_>,
    ) -> Result<Vec<bindings::Finding>, String> {
        self.call(name, |store| {
            let instance = plugin.pre.instantiate(&mut *store)?;
            Ok(match plugin.contract {
                // The two share the `scan-input` record.
                Contract::V0_3 | Contract::V0_2 => {
                    let scan = instance
                        .get_typed_func::<(bindings::ScanInputRef<'_>,), (Vec<bindings::Finding>,)>(
                            &mut *store,
                            &plugin.scan,
                        )?;
                    scan.call(store, (input,))?.0
                }
                Contract::V0_1 => {
                    let old = bindings::ScanInputRefV0_1 {
                        data: input.data,
                        file_size: input.file_size,
                        complete: input.complete,
                    };
                    let scan = instance.get_typed_func::<
                        (bindings::ScanInputRefV0_1<'_>,),
                        (Vec<bindings::Finding>,),
                    >(&mut *store, &plugin.scan)?;
                    scan.call(store, (old,))?.0
                }
            })
        })
    }

    /// Runs `body` in a new store bounded by the limits; a trap or a limit becomes a reason for
    /// people.
    fn call<R>(
        &self,
        name: &str,
        body: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, String> {
        let _slot = self.slots.take();
        let mut store = Store::new(&self.engine, CallState::new(name, &self.limits));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(
            self.ticker
                .ticks(Duration::from_millis(self.limits.timeout_ms)),
        );
        store.epoch_deadline_trap();
        body(&mut store).map_err(|err| self.fault_reason(store.data(), &err))
    }

    /// Says why a call failed, naming the limit (and its config key) when one was hit.
    fn fault_reason(&self, state: &CallState, err: &wasmtime::Error) -> String {
        let limits = &self.limits;
        if state.limiter.memory_exceeded {
            return format!(
                "exceeded the memory limit ({} bytes, plugins.memory_limit)",
                limits.memory_limit
            );
        }
        if state.limiter.table_exceeded {
            return format!(
                "exceeded the table limit ({} elements, plugins.max_table_elements)",
                limits.max_table_elements
            );
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "exceeded the time limit ({} ms, plugins.timeout_ms)",
                limits.timeout_ms
            ),
            Some(Trap::StackOverflow) => format!(
                "overflowed its stack ({} bytes, plugins.max_stack)",
                limits.max_stack
            ),
            Some(Trap::MemoryOutOfBounds) => "trapped: out of bounds memory access (its own \
                 stack overflowed, or a bad pointer)"
                .into(),
            Some(Trap::UnreachableCodeReached) => match &state.panic {
                Some(panic) => format!("{panic} (trapped: unreachable code reached)"),
                None => {
                    "trapped: unreachable code reached (a panic or an abort in the plugin)".into()
                }
            },
            Some(trap) => format!("trapped: {trap}"),
            None => format!("failed: {}", root_cause(err)),
        }
    }
}

/// Counts the pool's component instances in use; a call waits for one to be free.
struct CallSlots {
    free: Mutex<u32>,
    freed: Condvar,
}

/// One instance slot, given back when dropped.
struct CallSlot<'s>(&'s CallSlots);

impl CallSlots {
    fn new(slots: u32) -> Self {
        Self {
            free: Mutex::new(slots),
            freed: Condvar::new(),
        }
    }

    fn take(&self) -> CallSlot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        CallSlot(self)
    }
}

impl Drop for CallSlot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// A compiled, linked plugin: instantiated afresh for every call.
pub struct Prepared {
    /// The version of the contract it was built against.
    contract: Contract,
    pre: wasmtime::component::InstancePre<CallState>,
    describe: wasmtime::component::ComponentExportIndex,
    scan: wasmtime::component::ComponentExportIndex,
}

impl Prepared {
    /// The version of the contract the plugin was built against.
    pub fn contract(&self) -> &'static str {
        self.contract.version()
    }
}

/// What to do about a WASI import, said with every refusal of one.
const WASI_FIX: &str = "build for wasm32-unknown-unknown, not a WASI target, and do not use \
     std::fs, std::env, std::net, std::time::SystemTime or std::process (the only import allowed \
     is vigil:plugin/host)";

/// The first import of a (valid) core module from a WASI module, as `module::name`.
fn wasi_import(bytes: &[u8]) -> Option<String> {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .filter_map(Result::ok)
        .find_map(|payload| match payload {
            wasmparser::Payload::ImportSection(imports) => imports
                .into_imports()
                .filter_map(Result::ok)
                .find(|import| import.module.starts_with("wasi"))
                .map(|import| format!("{}::{}", import.module, import.name)),
            _ => None,
        })
}

/// Turns a core module built with wit-bindgen into a component; components pass unchanged.
fn as_component(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if bytes.starts_with(COMPONENT_HEADER) {
        Ok(Cow::Borrowed(bytes))
    } else if bytes.starts_with(MODULE_HEADER) {
        // Validate first: the encoder trusts its input (a truncated module made it panic).
        wasmparser::Validator::new()
            .validate_all(bytes)
            .map_err(|err| format!("is not a valid WebAssembly module: {err}"))?;
        if let Some(import) = wasi_import(bytes) {
            return Err(format!(
                "imports `{import}` (WASI), which plugins may not use: {WASI_FIX}"
            ));
        }
        let encode = || {
            wit_component::ComponentEncoder::default()
                .validate(true)
                .module(bytes)
                .and_then(|mut encoder| encoder.encode())
        };
        let encoded = std::panic::catch_unwind(encode)
            .map_err(|_| "cannot be made into a component: the encoder failed on it".to_string())?
            .map_err(|err| format!("cannot be made into a component: {err:#}"))?;
        Ok(Cow::Owned(encoded))
    } else if bytes.starts_with(b"\x7fELF") {
        Err(
            "is a native library (ELF), not WebAssembly: build it with `cargo build --release \
             --target wasm32-unknown-unknown` (or set that target in the crate's \
             .cargo/config.toml) and give the .wasm file"
                .into(),
        )
    } else if bytes.len() < MODULE_HEADER.len()
        && (MODULE_HEADER.starts_with(bytes) || COMPONENT_HEADER.starts_with(bytes))
    {
        Err("is truncated (shorter than a WebAssembly header)".into())
    } else {
        Err("is not a WebAssembly module or component".into())
    }
}

/// The innermost message of an error chain (wasmtime's outer layers repeat the context).
fn root_cause(err: &wasmtime::Error) -> String {
    err.root_cause().to_string()
}

/// Per-call state: the resource limiter, the log budget, and the panic the SDK reported.
pub struct CallState {
    limiter: Limiter,
    plugin: String,
    log_lines_left: u32,
    max_log_line: usize,
    /// The SDK's report of a panic (`panicked at FILE:LINE:COL: MESSAGE`), for the fault reason.
    panic: Option<String>,
}

/// How the SDK's panic hook starts its log line (`vigil_sdk::PANIC_PREFIX`).
const PANIC_PREFIX: &str = "panicked at ";

impl CallState {
    fn new(plugin: &str, limits: &PluginsConfig) -> Self {
        Self {
            limiter: Limiter {
                memory_limit: limits.memory_limit as usize,
                table_limit: limits.max_table_elements as usize,
                memory_exceeded: false,
                table_exceeded: false,
            },
            plugin: plugin.to_string(),
            log_lines_left: limits.max_log_lines,
            max_log_line: limits.max_log_line as usize,
            panic: None,
        }
    }
}

impl CallState {
    /// Writes a plugin's log line to stderr: cut to `plugins.max_log_line` bytes, control
    /// characters escaped (a plugin cannot drive the terminal), at most `plugins.max_log_lines`
    /// per call. The SDK's panic report is kept for the fault reason instead (the first one,
    /// whatever the budget: a plugin that logged its lines away still says why it panicked).
    fn log(&mut self, level: &str, message: String) {
        let mut cut = message.len().min(self.max_log_line);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let text: String = message[..cut].escape_debug().collect();
        if message.starts_with(PANIC_PREFIX) {
            self.panic.get_or_insert(text);
            return;
        }
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        eprintln!("vigil: plugin {}: {level}: {text}", self.plugin);
    }
}

/// `host.log` of each contract version: the same bounded log.
macro_rules! impl_host_log {
    ($($version:ident),+) => {$(
        impl bindings::$version::vigil::plugin::host::Host for CallState {
            fn log(&mut self, level: bindings::$version::vigil::plugin::host::Level, message: String) {
                use bindings::$version::vigil::plugin::host::Level;
                let level = match level {
                    Level::Debug => "debug",
                    Level::Info => "info",
                    Level::Warn => "warn",
                };
                CallState::log(self, level, message);
            }
        }
    )+};
}
impl_host_log!(current, v0_2, v0_1);

/// Enforces `plugins.memory_limit` and `plugins.max_table_elements`, remembering which was hit
/// so the fault says so.
struct Limiter {
    memory_limit: usize,
    table_limit: usize,
    memory_exceeded: bool,
    table_exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_limit {
            self.table_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }
}

/// A thread that advances the plugin engine's epoch every [`EPOCH_TICK`], so a call past its
/// deadline traps wherever it is looping. Stops when the host is dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("vigil-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("cannot start the plugin epoch thread");
        Self { stop }
    }

    /// The deadline, in ticks from now, for a call allowed to run `timeout`.
    fn ticks(&self, timeout: Duration) -> u64 {
        (timeout.as_micros() / EPOCH_TICK.as_micros()) as u64 + 1
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
