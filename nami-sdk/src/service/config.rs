//! What a [`Service`](super::Service) is opened with, and what a caller adds to a call: the
//! settings, the event listener, the idempotency key and whether the caller still waits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::session::config::TerminalConfig;

/// Settings of a [`Service`](super::Service).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where `journal.sqlite` and `state.sqlite` live.
    pub state_dir: PathBuf,
    /// Timeouts and behaviour of every terminal session.
    pub terminal: TerminalConfig,
    /// The print flag when a request has none (D13): true, the terminal prints the receipt.
    pub default_print: bool,
    /// Shown by the health status.
    pub version: String,
    /// The HTTP port the daemon serves on, shown by the health status.
    pub http_port: u16,
    /// How often recovery looks at unknown outcomes (it also runs at start and when a retry
    /// hits an unknown outcome).
    pub recovery_interval: Duration,
    /// Recovery concludes "not processed" (`not_found`) only for requests older than this: until
    /// then the terminal may still be working on the original, whose own timeout is 120 s.
    pub recovery_grace: Duration,
    /// After this many DUPLICATEs that did not settle an unknown outcome, it is shown as needing
    /// attention (health `needsAttention`, `/transactions?state=attention`, the dashboard): a
    /// person should look at the terminal. Recovery keeps asking.
    pub recovery_attention_after: u32,
    /// How long an ECR reference's result is given back instead of sending again (24 h).
    /// Zero turns idempotency off, for POS systems that send a static ECR reference; requests
    /// in flight and unknown outcomes still block a second send.
    pub idempotency_window: Duration,
    /// `com.reconnect.timeout.minutes`: after this long a vanished COM device is listed as
    /// "Disconnected — last seen on …" instead of "Reconnecting to …".
    pub com_reconnect_timeout: Duration,
    /// `memoryMaxMb` of the health status; the machine's memory when absent.
    pub memory_max_mb: Option<u64>,
    /// Re-open the saved connections at start.
    pub restore_connections: bool,
}

impl ServiceConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            state_dir: state_dir.into(),
            terminal: TerminalConfig::default(),
            default_print: true,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            http_port: 9099,
            recovery_interval: Duration::from_secs(30),
            recovery_grace: Duration::from_secs(150),
            recovery_attention_after: 10,
            idempotency_window: Duration::from_secs(24 * 3600),
            com_reconnect_timeout: Duration::from_secs(120),
            memory_max_mb: None,
            restore_connections: true,
        }
    }

    /// The platform's data directory for the service: `%PROGRAMDATA%\Nami` on Windows,
    /// `~/Library/Application Support/Nami` on macOS, `$XDG_DATA_HOME/nami` (or
    /// `~/.local/share/nami`) elsewhere.
    pub fn default_state_dir() -> PathBuf {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if cfg!(windows) {
            return env("PROGRAMDATA").unwrap_or_else(|| PathBuf::from(r"C:\ProgramData")).join("Nami");
        }
        let home = env("HOME").unwrap_or_else(|| PathBuf::from("."));
        if cfg!(target_os = "macos") {
            return home.join("Library/Application Support/Nami");
        }
        env("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share")).join("nami")
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self::new(Self::default_state_dir())
    }
}

/// Receives the service's events as JSON, each tagged with its terminal, e.g.
/// `{"event":"waitingForCard","terminal":"192.168.1.100:2345"}`. Called on the session's
/// thread; keep it short.
pub type ServiceListener = Arc<dyn Fn(&str) + Send + Sync>;

/// What a caller adds to a call besides its path and body.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// The POS's own key for a transaction (the `Idempotency-Key` HTTP header; in process also
    /// `idempotencyKey` in the body): when given, the only thing a retry is matched by.
    pub idempotency_key: Option<String>,
    /// Whether the caller still waits for the answer (false once an HTTP client disconnected or
    /// an FFI caller gave up). A request whose caller has gone is never sent.
    pub still_waiting: Option<StillWaiting>,
}

/// See [`CallOptions::still_waiting`].
pub type StillWaiting = Arc<dyn Fn() -> bool + Send + Sync>;

impl CallOptions {
    pub(crate) fn caller_waits(&self) -> bool {
        self.still_waiting.as_ref().is_none_or(|still| still())
    }
}

/// The calls of one in-process caller that it can give up on all at once (the C ABI's
/// `nami_cancel`, the bindings' `cancel()`): each call takes [`CallerCancel::options`], and after
/// [`CallerCancel::cancel`] a call that began before it and has not been sent yet never is.
#[derive(Debug, Clone, Default)]
pub struct CallerCancel(Arc<std::sync::atomic::AtomicU64>);

impl CallerCancel {
    /// The options of a call beginning now.
    pub fn options(&self) -> CallOptions {
        let cancels = self.0.clone();
        let began = cancels.load(Ordering::SeqCst);
        CallOptions {
            idempotency_key: None,
            still_waiting: Some(Arc::new(move || cancels.load(Ordering::SeqCst) == began)),
        }
    }

    /// Every call begun so far has been given up by its caller.
    pub fn cancel(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
