//! The service's counters (`vigil statistics`): connections and requests on the socket, and
//! real-time events by kind with how their deadlines went, with latency percentiles.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Counters of the local socket.
#[derive(Default)]
pub struct IpcCounters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused because `service.max_clients` were connected.
    pub refused_busy: AtomicU64,
    /// Clients connected now.
    pub connected: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests refused because the caller is not an administrator.
    pub unauthorized: AtomicU64,
    /// Frames that were not a valid request (bad JSON, unknown op, too large, other version).
    pub bad_messages: AtomicU64,
}

/// The kinds of file events real-time protection handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A file opened (a permission event in blocking mode).
    Open,
    /// A file opened to be run.
    Exec,
    /// A file closed after it was written.
    CloseModified,
    /// An entry created in a watched folder (counted, not scanned: its content comes with its
    /// close-after-write).
    Create,
    /// An entry moved into or out of a watched folder.
    Move,
    /// An entry removed from a watched folder.
    Remove,
}

impl EventKind {
    const ALL: [EventKind; 6] = [
        EventKind::Open,
        EventKind::Exec,
        EventKind::CloseModified,
        EventKind::Create,
        EventKind::Move,
        EventKind::Remove,
    ];

    fn name(self) -> &'static str {
        match self {
            EventKind::Open => "open",
            EventKind::Exec => "exec",
            EventKind::CloseModified => "close_modified",
            EventKind::Create => "create",
            EventKind::Move => "move",
            EventKind::Remove => "remove",
        }
    }
}

/// What became of the events of one kind.
#[derive(Default)]
pub struct KindCounters {
    /// Events read from the kernel.
    pub received: AtomicU64,
    /// Files scanned (or found in the cache).
    pub scanned: AtomicU64,
    /// Of those, answered from the scan cache.
    pub cache_hits: AtomicU64,
    /// Let through unscanned: the service's own accesses, excluded paths and processes, files
    /// over `real_time.max_file_size`, a full queue.
    pub not_scanned: AtomicU64,
    /// Permission events answered before their deadline.
    pub answered_in_time: AtomicU64,
    /// Permission events allowed because their deadline passed first.
    pub missed_deadline: AtomicU64,
    /// Permission events denied (the file was detected).
    pub denied: AtomicU64,
    /// Files with a threat.
    pub detections: AtomicU64,
}

/// Counters of real-time protection.
#[derive(Default)]
pub struct RealTimeCounters {
    /// Whether protection is running now.
    pub active: AtomicBool,
    /// Whether it runs in passive mode (never blocks).
    pub passive: AtomicBool,
    /// Marks placed (mounts and folders).
    pub marks: AtomicU64,
    /// Times the kernel's event queue overflowed (events lost).
    pub overflows: AtomicU64,
    kinds: [KindCounters; 6],
    /// Time from an event's arrival to its answer (permission events) or to its scan's end.
    pub latency: Latency,
}

impl RealTimeCounters {
    /// The counters of one kind.
    pub fn kind(&self, kind: EventKind) -> &KindCounters {
        &self.kinds[kind as usize]
    }
}

/// All the service's counters.
#[derive(Default)]
pub struct Statistics {
    /// The socket's.
    pub ipc: IpcCounters,
    /// Real-time protection's.
    pub real_time: RealTimeCounters,
}

/// Microsecond latencies in buckets: exact below 1 ms, then by 100 µs up to 100 ms, then by
/// 10 ms up to 10 s (and one bucket past it). Recording is one atomic add.
pub struct Latency {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    max: AtomicU64,
}

const FINE: u64 = 1_000;
const MEDIUM: u64 = 100_000;
const COARSE: u64 = 10_000_000;
const BUCKETS: usize = (FINE + (MEDIUM - FINE) / 100 + (COARSE - MEDIUM) / 10_000 + 1) as usize;

impl Default for Latency {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl Latency {
    fn bucket(micros: u64) -> usize {
        let index = if micros < FINE {
            micros
        } else if micros < MEDIUM {
            FINE + (micros - FINE) / 100
        } else if micros < COARSE {
            FINE + (MEDIUM - FINE) / 100 + (micros - MEDIUM) / 10_000
        } else {
            BUCKETS as u64 - 1
        };
        index as usize
    }

    /// The smallest latency a bucket holds.
    fn floor(bucket: usize) -> u64 {
        let bucket = bucket as u64;
        let medium_start = FINE;
        let coarse_start = FINE + (MEDIUM - FINE) / 100;
        if bucket < medium_start {
            bucket
        } else if bucket < coarse_start {
            FINE + (bucket - medium_start) * 100
        } else {
            MEDIUM + (bucket - coarse_start) * 10_000
        }
    }

    /// Records one latency.
    pub fn record(&self, micros: u64) {
        self.buckets[Self::bucket(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The latency under which `fraction` of the recorded ones fall (bucket floor), in µs.
    pub fn percentile(&self, fraction: f64) -> u64 {
        let total = self.count.load(Ordering::Relaxed);
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64 * fraction).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.buckets.iter().enumerate() {
            seen += count.load(Ordering::Relaxed);
            if seen >= rank {
                return Self::floor(bucket);
            }
        }
        self.max.load(Ordering::Relaxed)
    }
}

/// A snapshot for `vigil statistics`.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The socket.
    pub ipc: IpcSnapshot,
    /// Real-time protection.
    pub real_time: RealTimeSnapshot,
}

/// The socket's counters.
#[derive(Debug, Serialize)]
pub struct IpcSnapshot {
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections refused (too many clients).
    pub connections_refused: u64,
    /// Clients connected now.
    pub clients_connected: u64,
    /// Requests answered.
    pub requests: u64,
    /// Requests refused to non-administrators.
    pub unauthorized: u64,
    /// Bad messages.
    pub bad_messages: u64,
}

/// Real-time protection's counters.
#[derive(Debug, Serialize)]
pub struct RealTimeSnapshot {
    /// Running now.
    pub active: bool,
    /// Passive mode.
    pub passive: bool,
    /// Marks placed.
    pub marks: u64,
    /// Kernel queue overflows.
    pub queue_overflows: u64,
    /// Per event kind.
    pub events: std::collections::BTreeMap<&'static str, KindSnapshot>,
    /// Latency percentiles in µs.
    pub latency_us: LatencySnapshot,
}

/// One kind's counters.
#[derive(Debug, Serialize)]
pub struct KindSnapshot {
    /// Received.
    pub received: u64,
    /// Scanned.
    pub scanned: u64,
    /// Answered from the scan cache.
    pub cache_hits: u64,
    /// Let through unscanned.
    pub not_scanned: u64,
    /// Answered before the deadline.
    pub answered_in_time: u64,
    /// Missed the deadline (allowed).
    pub missed_deadline: u64,
    /// Denied.
    pub denied: u64,
    /// Detected.
    pub detections: u64,
}

/// Latency percentiles.
#[derive(Debug, Serialize)]
pub struct LatencySnapshot {
    /// Events measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Statistics {
    /// The counters' values now.
    pub fn snapshot(&self) -> Snapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let ipc = &self.ipc;
        let real_time = &self.real_time;
        let latency = &real_time.latency;
        Snapshot {
            ipc: IpcSnapshot {
                connections_accepted: load(&ipc.connections),
                connections_refused: load(&ipc.refused_busy),
                clients_connected: load(&ipc.connected),
                requests: load(&ipc.requests),
                unauthorized: load(&ipc.unauthorized),
                bad_messages: load(&ipc.bad_messages),
            },
            real_time: RealTimeSnapshot {
                active: real_time.active.load(Ordering::Relaxed),
                passive: real_time.passive.load(Ordering::Relaxed),
                marks: load(&real_time.marks),
                queue_overflows: load(&real_time.overflows),
                events: EventKind::ALL
                    .iter()
                    .map(|&kind| {
                        let counters = real_time.kind(kind);
                        (
                            kind.name(),
                            KindSnapshot {
                                received: load(&counters.received),
                                scanned: load(&counters.scanned),
                                cache_hits: load(&counters.cache_hits),
                                not_scanned: load(&counters.not_scanned),
                                answered_in_time: load(&counters.answered_in_time),
                                missed_deadline: load(&counters.missed_deadline),
                                denied: load(&counters.denied),
                                detections: load(&counters.detections),
                            },
                        )
                    })
                    .collect(),
                latency_us: LatencySnapshot {
                    count: load(&latency.count),
                    p50: latency.percentile(0.5),
                    p90: latency.percentile(0.9),
                    p99: latency.percentile(0.99),
                    max: load(&latency.max),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let latency = Latency::default();
        for micros in 1..=100 {
            latency.record(micros);
        }
        latency.record(250_000);
        assert_eq!(latency.percentile(0.5), 51);
        assert_eq!(latency.percentile(0.99), 100);
        assert_eq!(latency.percentile(1.0), 250_000);
        assert_eq!(Latency::floor(Latency::bucket(12_345)), 12_300);
        assert_eq!(Latency::bucket(u64::MAX), BUCKETS - 1);
    }
}
