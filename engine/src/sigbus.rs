//! Survives files that shrink while they are memory-mapped.
//!
//! Touching a mapped page past the new end of a truncated file raises SIGBUS. While a worker scans a
//! mapping it registers the mapping's range in a thread-local; the handler recognises a fault inside
//! that range, maps a zero page over the faulting page (`MAP_FIXED`) so the access completes, and
//! records that the file changed. Any other SIGBUS (or one on another thread) goes to the handler
//! installed before ours, for example wasmtime's, which in turn forwards faults outside wasm code.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// Start and length of the mapping this thread is scanning; length 0 when none.
    static GUARDED: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Set by the handler when it patched a page of the guarded mapping.
    static FAULTED: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// The handler that was installed before ours; written once, before ours can run.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// Installs the SIGBUS handler once per process. Call it after anything else that installs one
/// (the wasmtime engine inside yara-x is created when rules are compiled or loaded).
pub fn install() {
    INSTALL.call_once(|| unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        // Save the previous handler before ours is installed, so ours can always forward.
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous);
        PREVIOUS = Some(previous);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    });
}

/// Runs `scan` with `bytes` (a mapping) guarded; returns its result and whether the mapping was
/// cut short under the scan (its missing pages read as zeros).
pub fn guarded<R>(bytes: &[u8], scan: impl FnOnce() -> R) -> (R, bool) {
    FAULTED.with(|faulted| faulted.set(false));
    GUARDED.with(|guard| guard.set((bytes.as_ptr() as usize, bytes.len())));
    let result = scan();
    GUARDED.with(|guard| guard.set((0, 0)));
    (result, FAULTED.with(Cell::get))
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; the thread-locals are
    // const-initialised (no lazy allocation), and mmap is async-signal-safe.
    unsafe {
        let address = (*info).si_addr() as usize;
        let (start, len) = GUARDED.try_with(Cell::get).unwrap_or((0, 0));
        if len != 0 && address >= start && address < start + len {
            let page = address & !(PAGE_SIZE.load(Ordering::Relaxed) - 1);
            let patched = libc::mmap(
                page as *mut libc::c_void,
                PAGE_SIZE.load(Ordering::Relaxed),
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            if patched != libc::MAP_FAILED {
                let _ = FAULTED.try_with(|faulted| faulted.set(true));
                return;
            }
        }
        forward(signal, info, context);
    }
}

/// Hands a fault that is not ours to the previous handler, or to the default action.
unsafe fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: PREVIOUS is written once in `install`, before this handler is installed.
    let previous = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    match previous {
        Some(previous)
            if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN =>
        {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(previous.sa_sigaction) };
                handler(signal, info, context);
            } else {
                let handler: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(previous.sa_sigaction) };
                handler(signal);
            }
        }
        _ => unsafe {
            // Restore the default action; returning re-executes the access, which then kills the
            // process with SIGBUS as it would have without us.
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, std::ptr::null_mut());
        },
    }
}
