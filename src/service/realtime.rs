//! Real-time protection: fanotify events on watched files, scanned as they happen.
//!
//! One thread reads the kernel's events; a pool of `real_time.threads` scans them, each with a
//! [`FileScanner`](vigil_engine::FileScanner) kept between files (a file the scan cache knows is
//! a lookup). In blocking mode every open and exec is a permission event: a detected file is
//! denied (`EACCES` for the opener). A deadline thread answers, with allow, every permission
//! event still pending when `real_time.deadline_ms` has passed, so no process ever waits longer
//! on the service, whatever a scan does. Passive mode uses a notification group: nothing is ever
//! blocked or acted on; detections are reported.
//!
//! Never scanned: the service's own accesses (answered at once by the reader, so the service
//! cannot wait on itself), processes in `real_time.process_exclusions` (by executable path),
//! excluded paths, files over `real_time.max_file_size`, and events past a full queue.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_engine::config::RealTimeConfig;

use super::fanotify::{self, Group};
use super::server::{Generation, log};
use super::stats::{EventKind, Statistics};

/// Supplies the engine generation in force.
pub type CurrentGeneration = Arc<dyn Fn() -> Arc<Generation> + Send + Sync>;

/// Real-time protection while it runs; stopped (and every pending event allowed) on drop.
pub struct RealTime {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pending: Arc<PendingQueue>,
}

/// A permission event waiting for its answer.
struct Pending {
    group: Arc<Group>,
    file: OwnedFd,
    kind: EventKind,
    arrived: Instant,
    deadline: Instant,
    answered: AtomicBool,
}

impl Pending {
    /// Answers the event unless it was answered already; true when this call answered it.
    fn answer(&self, allow: bool) -> bool {
        if self.answered.swap(true, Ordering::AcqRel) {
            return false;
        }
        if let Err(err) = self.group.respond(self.file.as_raw_fd(), allow) {
            log(&format!("real-time: cannot answer an event: {err}"));
        }
        true
    }
}

/// Permission events in arrival order (deadlines are arrival plus a constant, so the front is
/// always the next to expire).
#[derive(Default)]
struct PendingQueue {
    events: Mutex<VecDeque<Arc<Pending>>>,
    changed: Condvar,
}

/// One event for a scan thread.
struct Job {
    file: File,
    /// Where the kernel says the file is.
    path: PathBuf,
    kind: EventKind,
    arrived: Instant,
    pending: Option<Arc<Pending>>,
}

/// How protection runs; fixed for its lifetime (a change restarts it).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Passive mode: notifications only, never block or act.
    pub passive: bool,
    /// `[real_time]`.
    pub config: RealTimeConfig,
    /// The scan threads' stack ([`vigil_engine::Engine::scan_thread_stack`]).
    pub stack: usize,
}

impl RealTime {
    /// Places the marks and starts the threads.
    pub fn start(
        settings: &Settings,
        current: CurrentGeneration,
        stats: Arc<Statistics>,
    ) -> std::io::Result<Self> {
        let config = &settings.config;
        let group = Arc::new(Group::new(!settings.passive)?);
        let mask = if settings.passive {
            fanotify::CLOSE_WRITE | fanotify::OPEN_EXEC
        } else {
            fanotify::CLOSE_WRITE | fanotify::OPEN_PERM | fanotify::OPEN_EXEC_PERM
        };
        // Entry events (created, moved, removed) come from a second group, which also lets new
        // folders under a watched tree be marked as they appear. Optional: older kernels lack it.
        let entries = match Group::new_entries() {
            Ok(entries) => Some(entries),
            Err(err) => {
                log(&format!(
                    "real-time: entry events unavailable ({err}); new folders are watched after a reload"
                ));
                None
            }
        };
        let trees = place_marks(
            &group,
            entries.as_ref(),
            &config.paths,
            mask,
            config.max_directory_marks,
        )?;
        let counters = &stats.real_time;
        counters.marks.store(trees.marks, Ordering::Relaxed);
        counters.passive.store(settings.passive, Ordering::Relaxed);
        counters.active.store(true, Ordering::Relaxed);

        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(PendingQueue::default());
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(config.queue_depth);
        let mut threads = Vec::new();
        let stack = settings.stack;
        for _ in 0..config.threads {
            let (receiver, current) = (receiver.clone(), current.clone());
            let stats = stats.clone();
            let (passive, max_size) = (settings.passive, config.max_file_size);
            let scanner = std::thread::Builder::new()
                .name("vigil-rt-scan".into())
                .stack_size(stack)
                .spawn(move || scan_loop(&receiver, &current, &stats, passive, max_size))?;
            threads.push(scanner);
        }
        let deadline = Duration::from_millis(config.deadline_ms);
        {
            let (pending, stop, stats) = (pending.clone(), stop.clone(), stats.clone());
            threads.push(spawn("vigil-rt-deadline", move || {
                deadline_loop(&pending, &stop, &stats)
            }));
        }
        if let Some(entries) = entries {
            let watcher = EntryWatcher {
                entries,
                group: group.clone(),
                mask,
                roots: trees.roots,
                max_marks: config.max_directory_marks as u64,
                stats: stats.clone(),
            };
            let stop = stop.clone();
            threads.push(spawn("vigil-rt-entries", move || watcher.run(&stop)));
        }
        {
            let excluded: HashSet<PathBuf> = config.process_exclusions.iter().cloned().collect();
            let (pending, stop) = (pending.clone(), stop.clone());
            threads.push(spawn("vigil-rt-read", move || {
                let reader = Reader {
                    current,
                    group,
                    sender,
                    pending,
                    stats,
                    excluded,
                    deadline,
                };
                reader.run(&stop)
            }));
        }
        Ok(Self {
            stop,
            threads,
            pending,
        })
    }
}

impl Drop for RealTime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.pending.changed.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .expect("cannot start a real-time thread")
}

/// What [`place_marks`] placed.
struct Trees {
    /// Marks placed (mounts and folders).
    marks: u64,
    /// The roots of the folder trees (not mounts), open, to resolve folder handles on their
    /// file systems.
    roots: Vec<OwnedFd>,
}

/// The entry events watched in folder trees.
const ENTRY_MASK: u64 = fanotify::CREATE
    | fanotify::DELETE
    | fanotify::MOVED_FROM
    | fanotify::MOVED_TO
    | fanotify::ON_DIR;

/// Marks each path: a mount point whole, another folder with the folders under it (same file
/// system, links not followed), at most `max_directories` of those, in `group` and (for entry
/// events) in `entries`.
fn place_marks(
    group: &Group,
    entries: Option<&Group>,
    paths: &[PathBuf],
    mask: u64,
    max_directories: usize,
) -> std::io::Result<Trees> {
    let mounts = mount_points();
    let mut trees = Trees {
        marks: 0,
        roots: Vec::new(),
    };
    let mut directories = 0usize;
    for path in paths {
        if mounts.contains(path) {
            group.mark_mount(path, mask).map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("cannot watch {}: {err}", crate::cli::shown(path)),
                )
            })?;
            trees.marks += 1;
            continue;
        }
        let cannot_watch = |err: std::io::Error| {
            std::io::Error::new(
                err.kind(),
                format!("cannot watch {}: {err}", crate::cli::shown(path)),
            )
        };
        let root = File::open(path).map_err(cannot_watch)?;
        // Kept open: folder handles from entry events are resolved on its file system.
        trees
            .roots
            .push(OwnedFd::from(root.try_clone().map_err(cannot_watch)?));
        let budget = max_directories.saturating_sub(directories);
        let placed = mark_tree(group, entries, root, mask, budget);
        directories += placed;
        trees.marks += placed as u64;
        if placed == budget {
            log(&format!(
                "real-time: real_time.max_directory_marks ({max_directories}) reached; folders under {} may not all be watched",
                crate::cli::shown(path)
            ));
        }
    }
    Ok(trees)
}

/// Marks the open folder `root` and the folders under it (same file system), at most `budget`
/// of them, in `group` and `entries`; returns how many were marked. Never by path: each folder is
/// opened relative to its parent's descriptor without following a link, and marked through its
/// own descriptor, so a folder swapped for a link meanwhile cannot redirect a mark elsewhere.
fn mark_tree(
    group: &Group,
    entries: Option<&Group>,
    root: File,
    mask: u64,
    budget: usize,
) -> usize {
    let Ok(metadata) = root.metadata() else {
        return 0;
    };
    let device = std::os::unix::fs::MetadataExt::dev(&metadata);
    let mut marked = 0;
    // Depth first: the open folders from the root down, each with the subfolders still to visit
    // (so open descriptors are bounded by the depth, not the width, of the tree).
    let mut path: Vec<(File, Vec<std::ffi::OsString>)> = Vec::new();
    let mut next = Some(root);
    loop {
        if let Some(dir) = next.take() {
            if marked >= budget {
                break;
            }
            if let Err(err) = group.mark_directory(&dir, mask) {
                log(&format!(
                    "real-time: cannot watch {}: {err}",
                    crate::cli::shown(&fd_path(&dir))
                ));
            } else {
                if let Some(entries) = entries
                    && let Err(err) = entries.mark_directory(&dir, ENTRY_MASK)
                {
                    log(&format!(
                        "real-time: cannot watch entries of {}: {err}",
                        crate::cli::shown(&fd_path(&dir))
                    ));
                }
                marked += 1;
                let children = subfolder_names(&dir);
                path.push((dir, children));
            }
        }
        let Some((parent, names)) = path.last_mut() else {
            break;
        };
        match names.pop() {
            Some(name) => next = fanotify::open_subfolder(parent, &name, device),
            None => {
                path.pop();
            }
        }
    }
    marked
}

/// The names of the folders in the open folder `dir` (by their directory entries; links are
/// not folders here).
fn subfolder_names(dir: &File) -> Vec<std::ffi::OsString> {
    // The descriptor's own entry in /proc reaches this very folder, whatever its name now.
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name())
        .collect()
}

/// Counts entry events, and marks folders created in (or moved into) a watched tree.
struct EntryWatcher {
    entries: Group,
    group: Arc<Group>,
    mask: u64,
    roots: Vec<OwnedFd>,
    max_marks: u64,
    stats: Arc<Statistics>,
}

impl EntryWatcher {
    fn run(self, stop: &AtomicBool) {
        let mut buffer = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            match self.entries.wait(100) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let Ok(events) = self.entries.read_entries(&mut buffer) else {
                return;
            };
            for event in events {
                self.handle(&event);
            }
        }
    }

    fn handle(&self, event: &fanotify::EntryEvent) {
        let real_time = &self.stats.real_time;
        let kind = if event.mask & fanotify::CREATE != 0 {
            EventKind::Create
        } else if event.mask & fanotify::DELETE != 0 {
            EventKind::Remove
        } else {
            EventKind::Move
        };
        real_time
            .kind(kind)
            .received
            .fetch_add(1, Ordering::Relaxed);
        let new_folder = event.mask & fanotify::ON_DIR != 0
            && event.mask & (fanotify::CREATE | fanotify::MOVED_TO) != 0;
        if !new_folder || real_time.marks.load(Ordering::Relaxed) >= self.max_marks {
            return;
        }
        // The parent, by the handle the kernel gave; the new folder opened inside it without
        // following a link, and marked with what it already holds (a tree moved in, or
        // `mkdir -p` racing the mark). No path is resolved.
        let Some(parent) = self
            .roots
            .iter()
            .find_map(|root| fanotify::open_folder(root, &event.folder).ok())
            .map(File::from)
        else {
            return;
        };
        let Ok(device) = parent
            .metadata()
            .map(|m| std::os::unix::fs::MetadataExt::dev(&m))
        else {
            return;
        };
        let name = std::ffi::OsStr::from_bytes(&event.name);
        let Some(folder) = fanotify::open_subfolder(&parent, name, device) else {
            return;
        };
        let budget = self
            .max_marks
            .saturating_sub(real_time.marks.load(Ordering::Relaxed)) as usize;
        let placed = mark_tree(&self.group, Some(&self.entries), folder, self.mask, budget);
        real_time.marks.fetch_add(placed as u64, Ordering::Relaxed);
    }
}

/// Mount points, from `/proc/self/mountinfo` (field 5, with its octal escapes decoded).
fn mount_points() -> HashSet<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| {
            let mut bytes = Vec::new();
            let raw = field.as_bytes();
            let mut index = 0;
            while index < raw.len() {
                if raw[index] == b'\\'
                    && index + 3 < raw.len()
                    && let Ok(value) = u8::from_str_radix(&field[index + 1..index + 4], 8)
                {
                    bytes.push(value);
                    index += 4;
                    continue;
                }
                bytes.push(raw[index]);
                index += 1;
            }
            PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
        })
        .collect()
}

/// Reads events, answers those it can at once (the service's own accesses, excluded processes
/// and paths, files the scan cache knows to be clean) and hands the rest to the scan threads.
struct Reader {
    current: CurrentGeneration,
    group: Arc<Group>,
    sender: crossbeam_channel::Sender<Job>,
    pending: Arc<PendingQueue>,
    stats: Arc<Statistics>,
    excluded: HashSet<PathBuf>,
    deadline: Duration,
}

impl Reader {
    fn run(self, stop: &AtomicBool) {
        let own_pid = std::process::id() as i32;
        let mut buffer = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            match self.group.wait(100) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(err) => {
                    log(&format!("real-time: cannot wait for events: {err}"));
                    break;
                }
            }
            let events = match self.group.read(&mut buffer) {
                Ok(events) => events,
                Err(err) => {
                    log(&format!("real-time: cannot read events: {err}"));
                    break;
                }
            };
            for event in events {
                self.dispatch(event, own_pid);
            }
        }
        self.stats.real_time.active.store(false, Ordering::Relaxed);
    }

    fn dispatch(&self, event: fanotify::Event, own_pid: i32) {
        let arrived = Instant::now();
        let counters = &self.stats.real_time;
        if event.mask & fanotify::QUEUE_OVERFLOW != 0 {
            counters.overflows.fetch_add(1, Ordering::Relaxed);
        }
        let Some(file) = event.file else { return };
        let kind = if event.mask & (fanotify::OPEN_EXEC_PERM | fanotify::OPEN_EXEC) != 0 {
            EventKind::Exec
        } else if event.mask & fanotify::OPEN_PERM != 0 {
            EventKind::Open
        } else {
            EventKind::CloseModified
        };
        let kind_counters = counters.kind(kind);
        kind_counters.received.fetch_add(1, Ordering::Relaxed);
        let permission = event.mask & (fanotify::OPEN_PERM | fanotify::OPEN_EXEC_PERM) != 0;
        // The answer names the event's own descriptor, so the pending event keeps it and the
        // scan gets a duplicate.
        let (file, pending) = if permission {
            let scanned = match file.try_clone() {
                Ok(scanned) => scanned,
                Err(err) => {
                    log(&format!(
                        "real-time: cannot duplicate an event descriptor: {err}"
                    ));
                    let _ = self.group.respond(file.as_raw_fd(), true);
                    return;
                }
            };
            let pending = Arc::new(Pending {
                group: self.group.clone(),
                file,
                kind,
                arrived,
                deadline: arrived + self.deadline,
                answered: AtomicBool::new(false),
            });
            (scanned, Some(pending))
        } else {
            (file, None)
        };
        let let_through = |pending: Option<Arc<Pending>>| {
            kind_counters.not_scanned.fetch_add(1, Ordering::Relaxed);
            if let Some(pending) = pending
                && pending.answer(true)
            {
                kind_counters
                    .answered_in_time
                    .fetch_add(1, Ordering::Relaxed);
            }
        };
        if event.pid == own_pid || self.process_excluded(event.pid) {
            return let_through(pending);
        }
        let file = File::from(file);
        let path = fd_path(&file);
        let generation = (self.current)();
        let engine = &generation.engine;
        if engine.excludes(&path) {
            return let_through(pending);
        }
        if engine.cached_clean(&file, &path) {
            kind_counters.scanned.fetch_add(1, Ordering::Relaxed);
            kind_counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            if let Some(pending) = pending
                && pending.answer(true)
            {
                kind_counters
                    .answered_in_time
                    .fetch_add(1, Ordering::Relaxed);
                counters
                    .latency
                    .record(arrived.elapsed().as_micros() as u64);
            }
            return;
        }
        if let Some(pending) = &pending {
            let mut queue = self
                .pending
                .events
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.push_back(pending.clone());
            drop(queue);
            self.pending.changed.notify_one();
        }
        let job = Job {
            file,
            path,
            kind,
            arrived,
            pending: pending.clone(),
        };
        if self.sender.try_send(job).is_err() {
            let_through(pending);
        }
    }

    fn process_excluded(&self, pid: i32) -> bool {
        !self.excluded.is_empty()
            && std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| self.excluded.contains(&exe))
    }
}

/// Answers allow to every permission event whose deadline has passed.
fn deadline_loop(pending: &PendingQueue, stop: &AtomicBool, stats: &Statistics) {
    let mut queue = pending
        .events
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        while queue
            .front()
            .is_some_and(|event| event.answered.load(Ordering::Acquire))
        {
            queue.pop_front();
        }
        if stop.load(Ordering::Relaxed) {
            // Dropping the group (when the last thread lets go of it) allows whatever is left.
            for event in queue.drain(..) {
                event.answer(true);
            }
            return;
        }
        let now = Instant::now();
        let wait = match queue.front() {
            Some(event) if event.deadline <= now => {
                let event = queue.pop_front().expect("the front exists");
                if event.answer(true) {
                    let counters = stats.real_time.kind(event.kind);
                    counters.missed_deadline.fetch_add(1, Ordering::Relaxed);
                    stats
                        .real_time
                        .latency
                        .record(event.arrived.elapsed().as_micros() as u64);
                }
                continue;
            }
            Some(event) => event.deadline - now,
            None => Duration::from_millis(100),
        };
        queue = pending
            .changed
            .wait_timeout(queue, wait)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
}

/// A scan thread: takes jobs, scans with a scanner kept for the engine generation in force.
fn scan_loop(
    receiver: &crossbeam_channel::Receiver<Job>,
    current: &CurrentGeneration,
    stats: &Statistics,
    passive: bool,
    max_size: u64,
) {
    let mut carried: Option<Job> = None;
    loop {
        let generation = current();
        let next = generation.engine.with_file_scanner(|scanner| {
            let mut job = carried.take();
            loop {
                let job = match job.take() {
                    Some(job) => job,
                    None => match receiver.recv() {
                        Ok(job) => job,
                        Err(_) => return None,
                    },
                };
                if !Arc::ptr_eq(&current(), &generation) {
                    // Definitions were reloaded: scan this one with the new engine.
                    return Some(job);
                }
                handle(scanner, job, stats, passive, max_size);
            }
        });
        match next {
            Some(job) => carried = Some(job),
            None => return,
        }
    }
}

/// Scans one event's file and answers it.
fn handle(
    scanner: &mut vigil_engine::FileScanner<'_>,
    job: Job,
    stats: &Statistics,
    passive: bool,
    max_size: u64,
) {
    let counters = stats.real_time.kind(job.kind);
    let answer = |allow: bool| {
        if let Some(pending) = &job.pending
            && pending.answer(allow)
        {
            counters.answered_in_time.fetch_add(1, Ordering::Relaxed);
            if !allow {
                counters.denied.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let path = &job.path;
    let too_large = max_size > 0 && job.file.metadata().is_ok_and(|m| m.len() > max_size);
    if too_large {
        counters.not_scanned.fetch_add(1, Ordering::Relaxed);
        answer(true);
        return;
    }
    let report = match scanner.scan(&job.file, path, !passive) {
        Ok(report) => report,
        Err(err) => {
            log(&format!(
                "real-time: cannot scan {}: {err}",
                crate::cli::shown(path)
            ));
            answer(true);
            return;
        }
    };
    counters.scanned.fetch_add(1, Ordering::Relaxed);
    let threats = report.threats();
    if !threats.is_empty() {
        counters.detections.fetch_add(1, Ordering::Relaxed);
        let how = if passive {
            " (passive mode: not blocked)"
        } else {
            ""
        };
        super::server::alert(&format!(
            "real-time: threat {} in {}{how}",
            threats.join(", "),
            crate::cli::shown(path)
        ));
    }
    answer(threats.is_empty() || passive);
    stats
        .real_time
        .latency
        .record(job.arrived.elapsed().as_micros() as u64);
}

/// Where an event's file is, from the kernel's record of the descriptor.
fn fd_path(file: &File) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .unwrap_or_else(|_| Path::new("(unknown)").to_path_buf())
}
