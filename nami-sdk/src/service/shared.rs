//! The service's state, shared by the calls and the background threads: the stores, the
//! terminals, the listener, the persistence warnings and the recovery signal. The terminals are
//! looked after in `targets.rs`, `com.rs` and `tcp.rs`; this file holds what every part uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use serde_json::Value;

use super::config::{ServiceConfig, ServiceListener};
use super::error::ServiceError;
use super::journal::{Journal, JournalError};
use super::state::StateStore;
use super::targets::ComConnection;
use crate::session::terminal::{Registration, Terminal};

pub(crate) struct Shared {
    pub(crate) config: ServiceConfig,
    pub(crate) journal: Journal,
    pub(crate) state: StateStore,
    pub(crate) tcp: Mutex<BTreeMap<String, Terminal>>,
    /// TCP keys already in the saved connections.
    pub(crate) saved_tcp: Mutex<HashSet<String>>,
    pub(crate) com: Mutex<Option<ComConnection>>,
    /// The registration keymap in memory (mirrors `state.sqlite`).
    pub(crate) keymap: Mutex<HashMap<String, Registration>>,
    pub(crate) listener: RwLock<Option<ServiceListener>>,
    pub(crate) started: Instant,
    pub(crate) warnings: Mutex<Vec<String>>,
    pub(crate) signal: Mutex<Signal>,
    pub(crate) wake: Condvar,
    shutting_down: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Signal {
    pub(crate) kick: bool,
    pub(crate) shutdown: bool,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Opens the state directory (rebuilding unreadable state files, which the health status then
    /// reports), marks requests a killed process left pending as unknown and restores the keymap
    /// and, if configured, the saved connections.
    pub(crate) fn open(config: ServiceConfig) -> Result<Arc<Shared>, ServiceError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|source| ServiceError::StateDir { path: config.state_dir.clone(), source })?;
        let (journal, journal_warning) = Journal::open(&config.state_dir.join("journal.sqlite"))?;
        let (state, state_warning) = StateStore::open(&config.state_dir.join("state.sqlite"))?;
        let interrupted = journal.mark_interrupted().map_err(JournalError::new)?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "requests were in flight when the service last stopped: their outcome is unknown until recovery resolves it"
            );
        }
        let mut warnings: Vec<String> = journal_warning.into_iter().chain(state_warning).collect();
        let keymap = match state.load_keymap() {
            Ok(rows) => rows.into_iter().collect(),
            Err(e) => {
                warnings.push(format!("the registration keymap could not be read: {e}"));
                HashMap::new()
            }
        };
        let shared = Arc::new(Shared {
            config,
            journal,
            state,
            tcp: Mutex::new(BTreeMap::new()),
            saved_tcp: Mutex::new(HashSet::new()),
            com: Mutex::new(None),
            keymap: Mutex::new(keymap),
            listener: RwLock::new(None),
            started: Instant::now(),
            warnings: Mutex::new(warnings),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            shutting_down: AtomicBool::new(false),
        });
        if shared.config.restore_connections {
            shared.restore_connections();
        }
        Ok(shared)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Stops recovery's waits and cancels running calls.
    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        {
            let mut signal = lock(&self.signal);
            signal.shutdown = true;
        }
        self.wake.notify_all();
        self.cancel(None);
    }

    /// Logs a persistence problem and keeps it for the health status.
    pub(crate) fn warn(&self, message: String) {
        tracing::warn!("{message}");
        let mut warnings = lock(&self.warnings);
        if warnings.len() >= 50 {
            warnings.remove(0);
        }
        warnings.push(message);
    }

    pub(crate) fn emit(&self, value: Value) {
        let listener = self.listener.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(listener) = listener {
            let text = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&text)));
        }
    }

    /// Wakes recovery (a retry hit an unknown outcome, a terminal came back).
    pub(crate) fn kick_recovery(&self) {
        lock(&self.signal).kick = true;
        self.wake.notify_all();
    }
}

pub(crate) fn spawn(name: String, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = crate::session::named_thread(name).spawn(work) {
        tracing::error!(error = %e, "could not start a background thread");
    }
}
