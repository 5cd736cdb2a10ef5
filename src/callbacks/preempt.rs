//! Catching SIGTERM and SIGINT while a fit with `save_before_preemption` runs.
//!
//! The handlers are installed once per process. While at least one [`PreemptGuard`] lives, a
//! signal only records its number; otherwise the signal's default action (terminate) runs, so
//! outside `fit` the process behaves as if wgfit had installed nothing. Where the process
//! had a handler of its own (Python's, raising KeyboardInterrupt), that handler runs after
//! wgfit's instead, always, and no default is imposed on it.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const SIGNALS: [i32; 2] = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT];

struct Handlers {
    /// The last signal caught (0: none).
    caught: Arc<AtomicUsize>,
    /// True while nobody listens: the signal then terminates as by default.
    run_default: Arc<AtomicBool>,
    listeners: Mutex<usize>,
}

static HANDLERS: OnceLock<std::result::Result<Handlers, String>> = OnceLock::new();

fn handlers() -> Result<&'static Handlers> {
    HANDLERS
        .get_or_init(|| {
            let h = Handlers {
                caught: Arc::new(AtomicUsize::new(0)),
                run_default: Arc::new(AtomicBool::new(true)),
                listeners: Mutex::new(0),
            };
            for sig in SIGNALS {
                // Asked before registering: signal-hook then chains to this handler.
                let default = has_default_action(sig)?;
                signal_hook::flag::register_usize(sig, h.caught.clone(), sig as usize)
                    .map_err(|e| e.to_string())?;
                if default {
                    signal_hook::flag::register_conditional_default(sig, h.run_default.clone())
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(h)
        })
        .as_ref()
        .map_err(|e| {
            Error::config(
                "preemption handling",
                format!("cannot install signal handlers: {e}"),
            )
        })
}

/// Whether `sig` has its default action now (no handler, not ignored).
fn has_default_action(sig: i32) -> std::result::Result<bool, String> {
    // SAFETY: a null new action only reads the current one into `old`, which is plain data.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(old.sa_sigaction == libc::SIG_DFL)
}

/// The signal caught while a [`PreemptGuard`] lived, if any (a distributed step sends it to
/// the other ranks so that all stop at the same batch).
pub(crate) fn caught_signal() -> Option<i32> {
    let handlers = HANDLERS.get()?.as_ref().ok()?;
    match handlers.caught.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s as i32),
    }
}

/// While alive, SIGTERM and SIGINT are caught instead of terminating the process.
pub(crate) struct PreemptGuard {
    handlers: &'static Handlers,
}

impl PreemptGuard {
    pub fn new() -> Result<Self> {
        let handlers = handlers()?;
        let mut n = handlers
            .listeners
            .lock()
            .map_err(|_| Error::config("preemption handling", "lock poisoned"))?;
        if *n == 0 {
            handlers.caught.store(0, Ordering::SeqCst);
        }
        *n += 1;
        handlers.run_default.store(false, Ordering::SeqCst);
        Ok(PreemptGuard { handlers })
    }

    /// The signal that arrived since the guard was made, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.handlers.caught.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

impl Drop for PreemptGuard {
    fn drop(&mut self) {
        if let Ok(mut n) = self.handlers.listeners.lock() {
            *n -= 1;
            if *n == 0 {
                self.handlers.run_default.store(true, Ordering::SeqCst);
            }
        }
    }
}
