//! `vigil daemon`: the resident service.
//!
//! Loads the definitions once into an engine [`Generation`] and serves requests on a Unix socket
//! (thread per connection, at most `service.max_clients`). A reload (`SIGHUP`, or a `reload`
//! request, which `vigil definitions update`, `rollback`, `exclusion` and `quarantine restore`
//! send) builds a new generation beside the old one and swaps it in: requests in flight finish
//! on the generation they started with. A failed reload keeps the old one. `SIGTERM` or `SIGINT`
//! stop it: the socket is removed, the caches saved, and real-time protection's marks go with
//! its fanotify group (pending events are allowed by the kernel).

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result};
use vigil_engine::config::HowToCheck;
use vigil_engine::managed::{ManagedKey, ManagedSettings};
use vigil_engine::{Config, Engine, EngineBuilder, ScanEvent, ScanKind, ScanRequest, ScanSink};

use super::health::{self, ServiceInfo};
use super::peer::{PeerCredentials, is_admin, peer_credentials};
use super::protocol::{
    Envelope, ErrorCode, FrameError, OutputFormat, OutputOptions, PROTOCOL_VERSION, Reply, Request,
    ScanTarget, SettingKey, read_frame, write_frame,
};
use super::realtime::{RealTime, Settings};
use super::stats::Statistics;
use crate::cli::output::{Format, Printer};
use crate::cli::sarif::SarifSink;
use crate::cli::{Context, shown};

/// One loaded engine and the configuration it was built from.
pub struct Generation {
    /// 1 at start, one more per reload.
    pub number: u64,
    /// The engine.
    pub engine: Engine,
}

/// Writes a line to the service's log (stderr: the journal under systemd).
pub fn log(message: &str) {
    eprintln!("vigild: {message}");
}

/// Logs a detection, and sends it to syslog (the journal) at warning level.
pub fn alert(message: &str) {
    log(message);
    if let Ok(text) = std::ffi::CString::new(message.replace('\0', "?")) {
        // SAFETY: the format is a constant "%s" and the argument a NUL-terminated string.
        unsafe {
            libc::syslog(
                libc::LOG_WARNING | libc::LOG_DAEMON,
                c"%s".as_ptr(),
                text.as_ptr(),
            )
        };
    }
}

/// The running service.
struct Service {
    config_path: Option<PathBuf>,
    state_dir: PathBuf,
    current: RwLock<Arc<Generation>>,
    reloading: Mutex<()>,
    real_time: Mutex<RealTimeState>,
    stats: Arc<Statistics>,
    started_at: i64,
    stop: AtomicBool,
}

/// Real-time protection as it runs now.
#[derive(Default)]
struct RealTimeState {
    running: Option<(Settings, RealTime)>,
    /// Why it is not running although enabled.
    problem: Option<String>,
}

/// Runs the service until `SIGTERM`/`SIGINT`.
pub fn run(context: &Context) -> Result<ExitCode> {
    let signals = block_signals();
    let engine = build_engine(context)?;
    // Absolute, so clients started in other folders recognise them (the state dir exists now).
    let absolute = |path: PathBuf| std::fs::canonicalize(&path).unwrap_or(path);
    let config_path = context.config_file().map(absolute);
    let state_dir = absolute(context.state_dir());
    let service = Arc::new(Service {
        config_path,
        state_dir,
        current: RwLock::new(Arc::new(Generation { number: 1, engine })),
        reloading: Mutex::new(()),
        real_time: Mutex::default(),
        stats: Arc::new(Statistics::default()),
        started_at: unix_now(),
        stop: AtomicBool::new(false),
    });
    let config = service.current().engine.config().clone();
    let listener = bind(&config.service.socket)?;
    for warning in service.current().engine.warnings() {
        log(&format!("warning: {}", crate::cli::untrusted(warning)));
    }
    service.apply_real_time();
    if let Some(diagnostics) = service.current().engine.diagnostics() {
        let _ = diagnostics.snapshot_config(&config, Some("service_start"));
    }
    log(&format!(
        "listening on {} (definitions version {})",
        shown(&config.service.socket),
        service.current().engine.definitions().version
    ));
    {
        let service = service.clone();
        std::thread::Builder::new()
            .name("vigil-signals".into())
            .spawn(move || signal_loop(&service, &signals))?;
    }
    {
        let service = service.clone();
        std::thread::Builder::new()
            .name("vigil-housekeeping".into())
            .spawn(move || housekeeping(&service))?;
    }
    accept_loop(&service, &listener, &config);
    log("stopping");
    service
        .real_time
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .running = None;
    if let Err(err) = service.current().engine.save_cache() {
        log(&format!("cannot save the scan cache: {err}"));
    }
    let _ = std::fs::remove_file(&config.service.socket);
    Ok(ExitCode::SUCCESS)
}

/// Builds an engine from the configuration and state the context names.
fn build_engine(context: &Context) -> Result<Engine> {
    let (config, _) = context.load_config()?;
    let threads = config.scan_threads() + config.real_time.threads;
    EngineBuilder::new(config)
        .state_dir(context.state_dir())
        .concurrency(threads)
        .build()
        .context("cannot load the engine")
}

impl Service {
    fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn context(&self) -> Context {
        Context {
            config_path: self.config_path.clone(),
            state_dir: Some(self.state_dir.clone()),
            no_daemon: true,
        }
    }

    /// Loads configuration, definitions and state again; on failure the old generation stays.
    fn reload(self: &Arc<Self>) -> Result<u64> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(err) = self.current().engine.save_cache() {
            log(&format!("cannot save the scan cache: {err}"));
        }
        let engine = build_engine(&self.context())?;
        // One reload at a time (the lock above), so the next number follows the current one.
        let number = self.current().number + 1;
        for warning in engine.warnings() {
            log(&format!("warning: {}", crate::cli::untrusted(warning)));
        }
        let version = engine.definitions().version;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Arc::new(Generation { number, engine });
        self.apply_real_time();
        log(&format!(
            "reloaded: generation {number}, definitions version {version}"
        ));
        Ok(number)
    }

    /// Starts, stops or restarts real-time protection to match the configuration in force.
    fn apply_real_time(self: &Arc<Self>) {
        let generation = self.current();
        let config = generation.engine.config();
        let wanted = config
            .antivirus_engine
            .enable_real_time_protection
            .then(|| Settings {
                passive: config.antivirus_engine.passive_mode,
                config: config.real_time.clone(),
                stack: generation.engine.scan_thread_stack(),
            });
        let mut state = self
            .real_time
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.running.as_ref().map(|(settings, _)| settings) == wanted.as_ref() {
            return;
        }
        // Stop the old one first: two groups would scan every event twice.
        state.running = None;
        state.problem = None;
        let Some(settings) = wanted else {
            log("real-time protection off");
            return;
        };
        let service = Arc::downgrade(self);
        let current: super::realtime::CurrentGeneration = Arc::new(move || {
            service
                .upgrade()
                .map(|service| service.current())
                .expect("real-time protection stops before the service")
        });
        match RealTime::start(&settings, current, self.stats.clone()) {
            Ok(real_time) => {
                log(&format!(
                    "real-time protection on ({} mode, {} marks)",
                    if settings.passive {
                        "passive"
                    } else {
                        "blocking"
                    },
                    self.stats.real_time.marks.load(Ordering::Relaxed)
                ));
                state.running = Some((settings, real_time));
            }
            Err(err) => {
                log(&format!("real-time protection unavailable: {err}"));
                state.problem = Some(err.to_string());
            }
        }
    }

    fn info(&self) -> ServiceInfo {
        let state = self
            .real_time
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ServiceInfo {
            up_since: self.started_at,
            real_time_running: state.running.is_some(),
            real_time_problem: state.problem.clone(),
        }
    }
}

/// Binds the socket: a stale one (no service answers on it) is replaced, a live one is an error.
fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the socket's folder {}", shown(parent)))?;
    }
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        anyhow::ensure!(
            metadata.file_type().is_socket(),
            "{} exists and is not a socket",
            shown(path)
        );
        anyhow::ensure!(
            UnixStream::connect(path).is_err(),
            "another service is already listening on {}",
            shown(path)
        );
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", shown(path)))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", shown(path)))?;
    // Anyone may connect: what a caller may do is decided by its credentials.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot set the mode of {}", shown(path)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn accept_loop(service: &Arc<Service>, listener: &UnixListener, config: &Config) {
    let max_clients = u64::from(config.service.max_clients);
    let ipc = &service.stats.ipc;
    while !service.stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                wait_readable(listener, 200);
                continue;
            }
            Err(err) => {
                log(&format!("accept failed: {err}"));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_nonblocking(false);
        if ipc.connected.load(Ordering::Relaxed) >= max_clients {
            ipc.refused_busy.fetch_add(1, Ordering::Relaxed);
            let mut stream = stream;
            let _ = write_frame(
                &mut stream,
                &Reply::Error {
                    code: ErrorCode::Busy,
                    message: format!("too many clients (service.max_clients = {max_clients})"),
                },
            );
            continue;
        }
        ipc.connections.fetch_add(1, Ordering::Relaxed);
        ipc.connected.fetch_add(1, Ordering::Relaxed);
        // Descriptor scans run plugins on this thread: give it a scan thread's stack.
        let stack = service.current().engine.scan_thread_stack();
        let service = service.clone();
        let spawned = std::thread::Builder::new()
            .name("vigil-client".into())
            .stack_size(stack)
            .spawn(move || {
                Connection::serve(&service, stream);
                service.stats.ipc.connected.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(err) = spawned {
            ipc.connected.fetch_sub(1, Ordering::Relaxed);
            log(&format!("cannot start a client thread: {err}"));
        }
    }
}

fn wait_readable(listener: &UnixListener, timeout_ms: i32) {
    let mut poll = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(listener),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, alive through the call.
    unsafe { libc::poll(&mut poll, 1, timeout_ms) };
}

/// One client's connection.
struct Connection<'s> {
    service: &'s Arc<Service>,
    stream: UnixStream,
    peer: PeerCredentials,
    admin: bool,
    limit: u32,
}

impl Connection<'_> {
    fn serve(service: &Arc<Service>, stream: UnixStream) {
        let peer = match peer_credentials(&stream) {
            Ok(peer) => peer,
            Err(err) => {
                log(&format!("cannot read a client's credentials: {err}"));
                return;
            }
        };
        let generation = service.current();
        let config = &generation.engine.config().service;
        let admin = is_admin(&peer, &config.admin_group);
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let _ = stream.set_read_timeout(Some(timeout));
        let mut connection = Connection {
            service,
            stream,
            peer,
            admin,
            limit: config.max_message_size,
        };
        drop(generation);
        while let Some((request, fd)) = connection.next_request() {
            drop(fd);
            if connection.handle(request).is_err() {
                break;
            }
        }
    }

    /// The next valid request; bad ones are answered and counted here. None when the
    /// connection is over.
    fn next_request(&mut self) -> Option<(Request, Option<OwnedFd>)> {
        loop {
            let (body, fd) = match read_frame(&self.stream, self.limit) {
                Ok(frame) => frame,
                Err(FrameError::Closed) => return None,
                Err(err @ FrameError::TooLarge { .. }) => {
                    self.bad(ErrorCode::TooLarge, err.to_string());
                    return None;
                }
                Err(FrameError::Io(_)) => return None,
            };
            let envelope: Envelope = match serde_json::from_slice(&body) {
                Ok(envelope) => envelope,
                Err(err) => {
                    self.bad(ErrorCode::BadRequest, format!("not a request: {err}"));
                    continue;
                }
            };
            if envelope.protocol != PROTOCOL_VERSION {
                self.bad(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "protocol {} is not spoken here (this service speaks {PROTOCOL_VERSION})",
                        envelope.protocol
                    ),
                );
                continue;
            }
            self.service
                .stats
                .ipc
                .requests
                .fetch_add(1, Ordering::Relaxed);
            return Some((envelope.request, fd));
        }
    }

    fn bad(&mut self, code: ErrorCode, message: String) {
        self.service
            .stats
            .ipc
            .bad_messages
            .fetch_add(1, Ordering::Relaxed);
        let _ = write_frame(&mut self.stream, &Reply::Error { code, message });
    }

    fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        write_frame(&mut self.stream, reply)
    }

    /// Refuses an administrator request to someone who is not one.
    fn refuse(&mut self, what: &str) -> io::Result<()> {
        self.service
            .stats
            .ipc
            .unauthorized
            .fetch_add(1, Ordering::Relaxed);
        log(&format!(
            "refused {what} to uid {} (pid {}): not root or in the admin group",
            self.peer.uid, self.peer.pid
        ));
        self.reply(&Reply::Error {
            code: ErrorCode::Unauthorized,
            message: format!(
                "{what} needs root or membership of the service's admin group; other users may scan files they pass as descriptors"
            ),
        })
    }

    fn handle(&mut self, request: Request) -> io::Result<()> {
        match request {
            Request::Hello => {
                let generation = self.service.current();
                let reply = Reply::Hello {
                    protocol: PROTOCOL_VERSION,
                    version: env!("CARGO_PKG_VERSION").into(),
                    config: self.service.config_path.as_deref().map(path_text),
                    state_dir: path_text(&self.service.state_dir),
                    admin: self.admin,
                    generation: generation.number,
                };
                self.reply(&reply)
            }
            Request::Scan { .. } if !self.admin => self.refuse("scanning paths"),
            Request::Scan {
                kind,
                paths,
                output,
                threads,
            } => self.scan_paths(kind, paths, output, threads),
            Request::ScanDescriptors { output } => self.scan_descriptors(output),
            Request::Descriptor { .. } | Request::EndOfDescriptors => self.reply(&Reply::Error {
                code: ErrorCode::BadRequest,
                message: "descriptors come after scan_descriptors".into(),
            }),
            Request::Reload if !self.admin => self.refuse("reloading"),
            Request::Reload => {
                let reply = match self.service.reload() {
                    Ok(number) => Reply::Ok {
                        message: format!("reloaded (generation {number})"),
                    },
                    Err(err) => failed(&err),
                };
                self.reply(&reply)
            }
            Request::SetSetting { .. } if !self.admin => self.refuse("changing settings"),
            Request::SetSetting { key, enabled } => {
                let reply = match self.set_setting(key, enabled) {
                    Ok(message) => Reply::Ok { message },
                    Err(err) => failed(&err),
                };
                self.reply(&reply)
            }
            Request::Health => {
                let generation = self.service.current();
                let engine = &generation.engine;
                let report = health::report(
                    engine.config(),
                    engine.definitions(),
                    engine.state(),
                    Some(&self.service.info()),
                );
                self.reply(&Reply::Health {
                    health: serde_json::to_value(report).expect("health serializes"),
                })
            }
            Request::Statistics => {
                let snapshot = self.service.stats.snapshot();
                self.reply(&Reply::Statistics {
                    statistics: serde_json::to_value(snapshot).expect("statistics serialize"),
                })
            }
        }
    }

    fn set_setting(&self, key: SettingKey, enabled: bool) -> Result<String> {
        let mut managed = ManagedSettings::load(&self.service.state_dir)?;
        let key = match key {
            SettingKey::RealTimeProtection => ManagedKey::RealTimeProtection,
            SettingKey::PassiveMode => ManagedKey::PassiveMode,
        };
        managed.set(key, enabled);
        managed.save(&self.service.state_dir)?;
        self.service.reload()?;
        Ok("setting saved and applied".into())
    }

    fn scan_paths(
        &mut self,
        target: ScanTarget,
        paths: Vec<String>,
        output: OutputOptions,
        threads: Option<usize>,
    ) -> io::Result<()> {
        let generation = self.service.current();
        let engine = &generation.engine;
        let kind = match target {
            ScanTarget::Quick => ScanKind::Quick,
            ScanTarget::Full => ScanKind::Full,
            ScanTarget::Custom => ScanKind::Custom(paths.into_iter().map(PathBuf::from).collect()),
        };
        let threads = threads
            .unwrap_or_else(|| engine.config().scan_threads())
            .max(1);
        let request = ScanRequest { kind, threads };
        let sink = RemoteSink::new(&self.stream, output)?;
        let reply = match engine.scan(&request, &sink) {
            Ok(summary) => Reply::Done {
                exit: u8::from(summary.detections > 0),
            },
            Err(err) => failed(&anyhow::Error::new(err).context("scan not started")),
        };
        self.reply(&reply)
    }

    fn scan_descriptors(&mut self, output: OutputOptions) -> io::Result<()> {
        let generation = self.service.current();
        let engine = &generation.engine;
        let sink = RemoteSink::new(&self.stream, output)?;
        let started = std::time::Instant::now();
        let mut summary = vigil_engine::ScanSummary::default();
        let finished = engine.with_file_scanner(|scanner| -> io::Result<()> {
            loop {
                let Some((request, fd)) = self.next_request() else {
                    return Err(io::ErrorKind::ConnectionAborted.into());
                };
                match request {
                    Request::Descriptor { name, error } => {
                        let path = PathBuf::from(name);
                        let report = match fd {
                            _ if error.is_some() => error_report(path, error.unwrap_or_default()),
                            // As in a tree scan: excluded files are neither scanned nor
                            // reported.
                            Some(_) if engine.excludes(&path) => Default::default(),
                            Some(fd) => {
                                match scanner.scan(&std::fs::File::from(fd), &path, false) {
                                    Ok(report) => report,
                                    Err(err) => error_report(path, err.to_string()),
                                }
                            }
                            None => error_report(path, "no descriptor was passed".into()),
                        };
                        for event in &report.events {
                            sink.event(event);
                        }
                        report.add_to(&mut summary);
                        self.reply(&Reply::FileDone)?;
                    }
                    Request::EndOfDescriptors => return Ok(()),
                    _ => {
                        self.reply(&Reply::Error {
                            code: ErrorCode::BadRequest,
                            message:
                                "only descriptor and end_of_descriptors may follow scan_descriptors"
                                    .into(),
                        })?;
                    }
                }
            }
        });
        finished?;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        sink.finish(&summary);
        self.reply(&Reply::Done {
            exit: u8::from(summary.detections > 0),
        })
    }
}

/// A path as protocol text (bytes that are not UTF-8 replaced).
pub fn path_text(path: &Path) -> String {
    String::from_utf8_lossy(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())).into_owned()
}

fn error_report(path: PathBuf, reason: String) -> vigil_engine::ObjectReport {
    vigil_engine::ObjectReport {
        events: vec![ScanEvent::Error { path, reason }],
        ..Default::default()
    }
}

fn failed(err: &anyhow::Error) -> Reply {
    Reply::Error {
        code: ErrorCode::Failed,
        message: format!("{err:#}"),
    }
}

/// A scan's output rendered as `vigil scan` renders it, sent as `output` frames; the scan is
/// cancelled once the client has gone.
struct RemoteSink {
    inner: Box<dyn ScanSink>,
    gone: Arc<AtomicBool>,
}

impl RemoteSink {
    fn new(stream: &UnixStream, output: OutputOptions) -> io::Result<Self> {
        let gone = Arc::new(AtomicBool::new(false));
        let writer = Box::new(FrameWriter {
            stream: stream.try_clone()?,
            buffer: Vec::new(),
            gone: gone.clone(),
        });
        let inner: Box<dyn ScanSink> = match output.format {
            OutputFormat::Sarif => Box::new(SarifSink::to_writer(writer)),
            OutputFormat::Text | OutputFormat::Jsonl => {
                let format = if output.format == OutputFormat::Text {
                    Format::Text
                } else {
                    Format::Jsonl
                };
                Box::new(Printer::to_writer(
                    format,
                    output.verbose,
                    output.print_strings,
                    writer,
                ))
            }
        };
        Ok(Self { inner, gone })
    }
}

impl ScanSink for RemoteSink {
    fn begin(&self, scan: &vigil_engine::ScanStart) {
        self.inner.begin(scan);
    }

    fn event(&self, event: &ScanEvent) {
        self.inner.event(event);
    }

    fn file_scanned(&self, path: &Path, bytes: u64) {
        self.inner.file_scanned(path, bytes);
    }

    fn finish(&self, summary: &vigil_engine::ScanSummary) {
        self.inner.finish(summary);
    }

    fn cancelled(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }
}

/// Collects what a printer writes and sends it as one `output` frame per flush.
struct FrameWriter {
    stream: UnixStream,
    buffer: Vec<u8>,
    gone: Arc<AtomicBool>,
}

impl Write for FrameWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer).into_owned();
        self.buffer.clear();
        write_frame(&mut self.stream, &Reply::Output { text }).inspect_err(|_| {
            self.gone.store(true, Ordering::Relaxed);
        })
    }
}

/// Blocks the signals the service handles in every thread (threads inherit the mask), so only
/// [`signal_loop`] receives them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only read and write the set given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn signal_loop(service: &Arc<Service>, signals: &libc::sigset_t) {
    loop {
        let mut signal = 0;
        // SAFETY: the set is initialised and `signal` is a valid out pointer.
        if unsafe { libc::sigwait(signals, &mut signal) } != 0 {
            continue;
        }
        if signal == libc::SIGHUP {
            log("SIGHUP: reloading");
            if let Err(err) = service.reload() {
                log(&format!(
                    "reload failed, the loaded definitions stay: {err:#}"
                ));
            }
        } else {
            service.stop.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// Saves the caches now and then, so a crash loses little of them, and with
/// `updates.how_to_check = "automatic"` checks the channel every `check_interval_minutes`,
/// reloading when a newer drop was installed.
fn housekeeping(service: &Arc<Service>) {
    let mut last_check: Option<std::time::Instant> = None;
    let mut last_save = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let config = service.current().engine.config().clone();
        let updates = &config.updates;
        let interval = Duration::from_secs(updates.check_interval_minutes * 60);
        if updates.how_to_check == HowToCheck::Automatic
            && !updates.manifest_server.is_empty()
            && last_check.is_none_or(|at| at.elapsed() >= interval)
        {
            last_check = Some(std::time::Instant::now());
            check_for_update(service, &config);
        }
        if last_save.elapsed() >= Duration::from_secs(60) {
            last_save = std::time::Instant::now();
            if let Err(err) = service.current().engine.save_cache() {
                log(&format!("cannot save the scan cache: {err}"));
            }
        }
    }
}

/// Runs one automatic update and reloads when it installed something.
fn check_for_update(service: &Arc<Service>, config: &Config) {
    let state = match vigil_engine::State::open(&service.state_dir) {
        Ok(state) => Arc::new(state),
        Err(err) => {
            log(&format!("automatic update: {err}"));
            return;
        }
    };
    match vigil_engine::updates::update(config, &state) {
        Ok(record) if record.status == "installed" => {
            log(&format!(
                "automatic update: installed definitions version {}",
                record.to_version.unwrap_or_default()
            ));
            if let Err(err) = service.reload() {
                log(&format!("reload after the update failed: {err:#}"));
            }
        }
        Ok(_) => {}
        Err(err) => log(&format!("automatic update: {err}")),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}
