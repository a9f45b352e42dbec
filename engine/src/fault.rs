//! Fault injection for crash-safety tests.
//!
//! Every step of a state change that could be interrupted calls [`point`]. With
//! `VIGIL_FAULT_KILL_AT=N` in the environment, the process sends itself SIGKILL at the N-th point it
//! passes (counting from 1), exactly as a crash or `kill -9` would stop it there. Unset, a point
//! costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PASSED: AtomicU64 = AtomicU64::new(0);
static KILL_AT: OnceLock<Option<u64>> = OnceLock::new();

/// Marks a point where a crash must leave the state recoverable.
pub fn point(_name: &str) {
    let kill_at = KILL_AT.get_or_init(|| {
        std::env::var("VIGIL_FAULT_KILL_AT")
            .ok()
            .and_then(|value| value.parse().ok())
    });
    if let Some(kill_at) = kill_at
        && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *kill_at
    {
        // SAFETY: kill and getpid have no preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
