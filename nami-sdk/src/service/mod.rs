//! The middleware service, in process: many terminals (TCP terminals keyed by `ip:port`, and the
//! COM connection), one operation per REST endpoint of Nami's Local API Middleware, a durable
//! transaction journal that answers a retry of the same request, persistence of registrations and
//! connections, and automatic recovery of payments whose outcome is unknown.
//!
//! The REST daemon and the C ABI are thin translations of this one service: they hand JSON to
//! [`Service::call`] (or use the typed methods) and return what it gives back.
//!
//! - [`api`]: the JSON bodies, field for field as the seed documents show them;
//! - [`endpoints`]: the REST surface, each endpoint declared once;
//! - [`call`]: the `call(path, json)` router;
//! - [`journal`]: the transaction journal (SQLite, WAL, `synchronous=FULL`);
//! - [`state`]: the registration keymap and the saved connections;
//! - [`recovery`]: resolving unknown outcomes with DUPLICATE.
//!
//! See `README.md` in this folder for the decisions taken where the seeds are silent.

pub mod api;
pub mod call;
mod db;
pub mod endpoints;
mod journal;
pub mod recovery;
mod state;

use crate::status::StatusCode;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use api::{
    ClearTerminalDataRequest, ComConnectRequest, ComConnectResponse, ComPort, ComPortInfo, ErrorBody,
    ExistingConnections, HealthComPort, HealthStatus, JournalList, RegisteredTerminal, RegistrationStatus,
    StatusResponse, TcpConnectionRequest, TcpConnectionResponse, TcpTarget, TcpTransactionRequest, TransactionResponse,
    display_name, masked_fields, parsed_transaction, reply_text,
};
pub use call::CallReply;
pub use db::StoreError;
pub use journal::{EntryState, JournalEntry, JournalError, JournalFilter};
pub use state::SavedConnection;

use journal::{Begin, Journal, NewEntry, Outcome};
use state::StateStore;

use crate::payment_request::{PaymentContext, PaymentRequest};
use crate::protocol::field::Field;
use crate::protocol::request::Request;
use crate::protocol::response::Response;
use crate::protocol::txn_type::{TxnKind, TxnType};
use crate::protocol::values::{CashRegisterNo, EcrReference, Rrn, Signature, TerminalId};
use crate::session::config::TerminalConfig;
use crate::session::error::TerminalError;
use crate::session::events::{EventListener, TerminalEvent};
use crate::session::link::{Parity, SerialSettings};
use crate::session::ports::{list_serial_ports, port_number};
use crate::session::terminal::{LinkState, Registration, Terminal, TxnResult};

/// The key of the COM connection in the journal, the keymap and events (TCP terminals are keyed
/// by `ip:port`). There is one COM connection at a time; the device path is kept beside it.
pub const COM_KEY: &str = "COM";

/// Settings of a [`Service`].
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
    fn caller_waits(&self) -> bool {
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

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("state directory {}: {source}", path.display())]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Invalid(#[from] crate::error::ValidationError),
}

/// Which terminal a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp(TcpTarget),
    Com,
}

/// The COM connection.
#[derive(Clone)]
struct ComConnection {
    terminal: Terminal,
    /// The device path opened.
    device: String,
    /// What the API calls it: `COM3` on Windows, the device path elsewhere.
    label: String,
    port_number: Option<u32>,
    /// Held while the connection re-registers silently; COM transactions wait for it.
    settling: Arc<Mutex<()>>,
}

pub(crate) struct Shared {
    config: ServiceConfig,
    journal: Journal,
    state: StateStore,
    tcp: Mutex<BTreeMap<String, Terminal>>,
    /// TCP keys already in the saved connections.
    saved_tcp: Mutex<HashSet<String>>,
    com: Mutex<Option<ComConnection>>,
    /// The registration keymap in memory (mirrors `state.sqlite`).
    keymap: Mutex<HashMap<String, Registration>>,
    listener: RwLock<Option<ServiceListener>>,
    started: Instant,
    warnings: Mutex<Vec<String>>,
    signal: Mutex<Signal>,
    wake: Condvar,
    shutting_down: AtomicBool,
}

#[derive(Default)]
struct Signal {
    kick: bool,
    shutdown: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The middleware service. `Send + Sync`; every method takes `&self`, calls for different
/// terminals run in parallel. Dropping it stops recovery and cancels running calls.
pub struct Service {
    shared: Arc<Shared>,
    recovery: Mutex<Option<JoinHandle<()>>>,
}

impl Service {
    /// Opens the state directory (rebuilding unreadable state files, which the health status then
    /// reports), marks requests a killed process left pending as unknown, restores the keymap and
    /// the saved connections, and starts recovery.
    pub fn open(config: ServiceConfig) -> Result<Service, ServiceError> {
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
        let recovery = recovery::start(&shared);
        Ok(Service { shared, recovery: Mutex::new(recovery) })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// Receives every terminal event as JSON (see [`ServiceListener`]).
    pub fn set_listener(&self, listener: Option<ServiceListener>) {
        *self.shared.listener.write().unwrap_or_else(|p| p.into_inner()) = listener;
    }

    // -- COM path ------------------------------------------------------------------------------

    /// `GET /get-com-ports`.
    pub fn get_com_ports(&self) -> Vec<ComPortInfo> {
        self.shared.get_com_ports()
    }

    /// `POST /com/connect`.
    pub fn com_connect(&self, request: &ComConnectRequest) -> ComConnectResponse {
        self.shared.com_connect(request)
    }

    /// `POST /com/disconnect`: 0 on success, 1 when there was no COM connection.
    pub fn com_disconnect(&self) -> i32 {
        self.shared.com_disconnect()
    }

    /// `POST /performTransactionCOM`.
    pub fn perform_transaction_com(&self, request: &PaymentRequest) -> TransactionResponse {
        self.perform_transaction_com_with(request, &CallOptions::default())
    }

    /// [`Service::perform_transaction_com`] with the caller's options.
    pub fn perform_transaction_com_with(&self, request: &PaymentRequest, options: &CallOptions) -> TransactionResponse {
        self.shared.perform(&Target::Com, request, options)
    }

    // -- TCP path ------------------------------------------------------------------------------

    /// `POST /performTransactionTCPIP`: connects or reuses the connection, then transacts.
    pub fn perform_transaction_tcp(&self, request: &TcpTransactionRequest) -> TransactionResponse {
        self.perform_transaction_tcp_with(request, &CallOptions::default())
    }

    /// [`Service::perform_transaction_tcp`] with the caller's options.
    pub fn perform_transaction_tcp_with(
        &self,
        request: &TcpTransactionRequest,
        options: &CallOptions,
    ) -> TransactionResponse {
        self.shared.perform(&Target::Tcp(request.tcpipcom_data.clone()), &request.payment_request, options)
    }

    /// [`Service::perform_transaction_tcp_with`] on tokio: the wait for the terminal holds no
    /// thread (the SDK's tokio driver, [`Terminal::transact_async_for`]); the journal's reads and
    /// writes, which wait for the disk, run on tokio's blocking pool. A thousand terminals waiting
    /// for their cards cost a few kilobytes each, not a thread each.
    pub async fn perform_transaction_tcp_async(
        &self,
        request: TcpTransactionRequest,
        options: CallOptions,
    ) -> TransactionResponse {
        self.shared.perform_tcp_async(request, options).await
    }

    /// `POST /tcp-ip/connect`.
    pub fn tcp_connect(&self, target: &TcpTarget) -> TcpConnectionResponse {
        self.shared.tcp_connect(target)
    }

    /// `POST /tcp-ip/disconnect`.
    pub fn tcp_disconnect(&self, target: &TcpTarget) -> TcpConnectionResponse {
        self.shared.tcp_disconnect(target)
    }

    // -- Utilities -----------------------------------------------------------------------------

    /// `POST /cancelTransaction`: the named terminal's call, or every running call.
    pub fn cancel_transaction(&self, target: Option<&Target>) -> StatusResponse {
        self.shared.cancel(target)
    }

    /// `GET /getExistingConnections`.
    pub fn existing_connections(&self) -> ExistingConnections {
        self.shared.existing_connections()
    }

    /// `GET /registrationStatus`, for one terminal or (none named) all of them.
    pub fn registration_status(&self, target: Option<&Target>) -> RegistrationStatus {
        self.shared.registration_status(target)
    }

    /// `POST /clearTerminalData`: clears the keymap in memory and on disk (never the journal).
    pub fn clear_terminal_data(&self, request: &ClearTerminalDataRequest) -> StatusResponse {
        self.shared.clear_terminal_data(request)
    }

    /// `GET /api/health-status`.
    pub fn health_status(&self) -> HealthStatus {
        self.shared.health_status()
    }

    /// The journal, newest first.
    pub fn transactions(&self, filter: &JournalFilter) -> Result<JournalList, ServiceError> {
        let attention_after = self.shared.config.recovery_attention_after;
        let mut transactions = self.shared.journal.list(filter, attention_after).map_err(JournalError::new)?;
        for row in &mut transactions {
            row.needs_attention = row.state == EntryState::Unknown && row.recovery_attempts >= attention_after;
        }
        Ok(JournalList { count: transactions.len(), transactions })
    }

    /// A fresh ECR reference for `register` (D7): the cash register number and a persisted
    /// 6-digit counter that never repeats a reference the journal holds.
    pub fn next_ecr_reference(&self, register: &CashRegisterNo) -> Result<EcrReference, ServiceError> {
        self.shared.journal.next_reference(register).map_err(JournalError::new)?.ok_or_else(|| {
            ServiceError::Invalid(crate::error::ValidationError::other(
                StatusCode::InvalidEcrRef,
                "cashRegisterNo",
                "no unused ECR reference is left for this cash register number",
            ))
        })
    }

    /// Runs one recovery pass now; returns how many unknown outcomes it resolved.
    pub fn recover_now(&self) -> usize {
        self.shared.recover_once()
    }

    /// Routes a REST call (see [`call`]): `path` like `/performTransactionTCPIP` (a query string
    /// is merged into the body), `body` the JSON text (empty for none). Always returns JSON.
    pub fn call(&self, path: &str, body: &str) -> String {
        // Straight into a buffer: `Value`'s `Display` writes through `fmt` piece by piece.
        let reply = self.dispatch(path, body).body;
        serde_json::to_string(&reply).unwrap_or_else(|_| reply.to_string())
    }

    /// [`Service::call`] with the HTTP status the daemon should answer with.
    pub fn dispatch(&self, path: &str, body: &str) -> CallReply {
        call::dispatch(self, path, body, &CallOptions::default())
    }

    /// [`Service::dispatch`] with the caller's options (the daemon: the `Idempotency-Key` header,
    /// and whether the HTTP client is still connected).
    pub fn dispatch_with(&self, path: &str, body: &str, options: &CallOptions) -> CallReply {
        call::dispatch(self, path, body, options)
    }

    /// [`Service::dispatch_with`] on tokio, for a daemon: a TCP transaction's wait for its
    /// terminal holds no thread; the other calls run on tokio's blocking pool.
    pub async fn dispatch_async(self: Arc<Self>, path: String, body: String, options: CallOptions) -> CallReply {
        call::dispatch_async(self, path, body, options).await
    }

    /// Stops recovery and cancels running calls (also done on drop).
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        {
            let mut signal = lock(&self.shared.signal);
            signal.shutdown = true;
        }
        self.shared.wake.notify_all();
        self.shared.cancel(None);
        if let Some(handle) = lock(&self.recovery).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------

/// A transaction that passed validation and the journal's decision, ready to be sent.
struct Ready {
    request: Request,
    /// Its journal row (financial requests and settlements).
    row: Option<i64>,
    /// Whether the answer carries the parsed reply (`jsonResponse`).
    json: bool,
    journaled: bool,
    /// For DUPLICATE: the reference it repeats and where that came from (`duplicateOf`,
    /// `duplicateOfSource`).
    duplicate_of: Option<String>,
    duplicate_source: &'static str,
}

/// The answer when a call failed inside the service (a panic on the blocking pool).
fn internal_error_response() -> TransactionResponse {
    TransactionResponse::error(StatusCode::Error, "Internal error; see the service log")
}

/// A pending journal row that becomes `unknown` if the exchange never reports back (a panic, or
/// the tokio task of a call dropped while the terminal worked).
struct PendingRow {
    shared: Arc<Shared>,
    id: Option<i64>,
}

impl PendingRow {
    fn finish(mut self, outcome: &Outcome) {
        if let Some(id) = self.id.take()
            && let Err(e) = self.shared.journal.finish(id, outcome)
        {
            tracing::error!(id, error = %e, "journal update failed; the row stays pending and becomes unknown at the next start");
        }
    }
}

impl Drop for PendingRow {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let outcome = Outcome {
                state: Some(EntryState::Unknown),
                status_code: StatusCode::OutcomeUnknown.into(),
                message: "the exchange was interrupted by an internal error".into(),
                ..Outcome::default()
            };
            let _ = self.shared.journal.finish(id, &outcome);
        }
    }
}

/// `CODE: text` → `text` (the status code is already in `statusCode`).
fn message_of(error: &TerminalError) -> String {
    let text = error.to_string();
    let code = error.status_code();
    text.strip_prefix(code.as_str()).and_then(|t| t.strip_prefix(": ")).map(str::to_owned).unwrap_or(text)
}

fn parse_key(key: &str) -> Option<TcpTarget> {
    let (host, port) = crate::session::link::split_host_port(key).ok().filter(|(_, port)| *port != 0)?;
    Some(TcpTarget { ip: host.to_owned(), port })
}

fn link_text(state: LinkState) -> &'static str {
    match state {
        LinkState::Connected => "Connected",
        LinkState::Disconnected => "Disconnected",
        LinkState::Reconnecting { .. } => "Reconnecting",
    }
}

impl Shared {
    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Logs a persistence problem and keeps it for the health status.
    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        let mut warnings = lock(&self.warnings);
        if warnings.len() >= 50 {
            warnings.remove(0);
        }
        warnings.push(message);
    }

    fn emit(&self, value: Value) {
        let listener = self.listener.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(listener) = listener {
            let text = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&text)));
        }
    }

    /// Wakes recovery (a retry hit an unknown outcome, a terminal came back).
    fn kick_recovery(&self) {
        lock(&self.signal).kick = true;
        self.wake.notify_all();
    }

    /// The listener of one terminal's session: forwards events as JSON and keeps the keymap in
    /// step with silent re-registers.
    fn terminal_listener(self: &Arc<Self>, key: String) -> EventListener {
        let weak = Arc::downgrade(self);
        Arc::new(move |_device: &str, event: &TerminalEvent| {
            let Some(shared) = weak.upgrade() else { return };
            if let TerminalEvent::Registered { terminal_id } = event
                && let Ok(terminal_id) = TerminalId::parse(terminal_id)
            {
                let known = lock(&shared.keymap).get_mut(&key).map(|r| r.terminal_id = terminal_id.clone()).is_some();
                if known && let Err(e) = shared.state.update_terminal_id(&key, terminal_id.as_str()) {
                    shared.warn(format!("the keymap could not be saved: {e}"));
                }
            }
            // No one listening (the SDK and FFI without a listener): no JSON to build.
            if shared.listener.read().unwrap_or_else(|p| p.into_inner()).is_none() {
                return;
            }
            let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("terminal".into(), Value::String(key.clone()));
            }
            shared.emit(value);
        })
    }

    /// The session of a TCP terminal, created (with its remembered registration) on first use.
    fn tcp_terminal(self: &Arc<Self>, target: &TcpTarget) -> Terminal {
        let key = target.key();
        let mut map = lock(&self.tcp);
        if let Some(terminal) = map.get(&key) {
            return terminal.clone();
        }
        let terminal = Terminal::tcp(target.ip.clone(), target.port, self.config.terminal.clone());
        terminal.restore_registration(lock(&self.keymap).get(&key).cloned());
        terminal.set_listener(Some(self.terminal_listener(key.clone())));
        map.insert(key, terminal.clone());
        terminal
    }

    fn com_connection(&self) -> Option<ComConnection> {
        lock(&self.com).clone()
    }

    /// The registration of a terminal: its session's, or the keymap's when it has no session.
    fn registration_of(&self, key: &str) -> Option<Registration> {
        let session =
            if key == COM_KEY { self.com_connection().map(|c| c.terminal) } else { lock(&self.tcp).get(key).cloned() };
        match session {
            Some(terminal) => terminal.registration(),
            None => lock(&self.keymap).get(key).cloned(),
        }
    }

    /// Brings the keymap (memory and disk) in step with a session's registration after a call:
    /// a REGISTER adds it, a 1003/1008 reply drops it.
    fn sync_registration(&self, key: &str, terminal: &Terminal) {
        let current = terminal.registration();
        let mut keymap = lock(&self.keymap);
        if keymap.get(key) == current.as_ref() {
            return;
        }
        let saved = match &current {
            Some(registration) => {
                keymap.insert(key.to_owned(), registration.clone());
                self.state.put_registration(key, registration)
            }
            None => {
                keymap.remove(key);
                self.state.remove_registration(key)
            }
        };
        drop(keymap);
        if let Err(e) = saved {
            self.warn(format!("the keymap could not be saved: {e}"));
        }
    }

    fn remember(&self, saved: &SavedConnection) {
        if let Err(e) = self.state.save_connection(saved) {
            self.warn(format!("connection {} could not be saved: {e}", saved.key()));
        }
    }

    fn remember_tcp(&self, target: &TcpTarget) {
        let key = target.key();
        if lock(&self.saved_tcp).insert(key) {
            self.remember(&SavedConnection::Tcp { host: target.ip.clone(), port: target.port });
        }
    }

    // -- Start ---------------------------------------------------------------------------------

    /// Re-opens the saved connections in the background: TCP sockets (no REGISTER is sent: the
    /// keymap's registration is used as it is), and the COM port, which then re-registers
    /// silently.
    fn restore_connections(self: &Arc<Self>) {
        let saved = match self.state.load_connections() {
            Ok(saved) => saved,
            Err(e) => {
                self.warn(format!("the saved connections could not be read: {e}"));
                return;
            }
        };
        for connection in saved {
            match connection {
                SavedConnection::Tcp { host, port } => {
                    let target = TcpTarget { ip: host, port };
                    lock(&self.saved_tcp).insert(target.key());
                    let terminal = self.tcp_terminal(&target);
                    let weak = Arc::downgrade(self);
                    spawn(format!("nami-restore {}", target.key()), move || {
                        match terminal.connect() {
                            Ok(()) => tracing::info!(terminal = %target.key(), "TCP connection restored"),
                            Err(e) => {
                                tracing::info!(terminal = %target.key(), error = %e, "TCP connection not restored yet; it is opened on the next call")
                            }
                        }
                        if let Some(shared) = weak.upgrade() {
                            shared.kick_recovery();
                        }
                    });
                }
                SavedConnection::Com { device, port_number, settings, vendor_id, product_id } => {
                    // The device may have come back under another name: find it by VID/PID.
                    let device = if std::path::Path::new(&device).exists() || cfg!(windows) || vendor_id == 0 {
                        device
                    } else {
                        list_serial_ports()
                            .into_iter()
                            .find(|p| p.vendor_id == vendor_id && p.product_id == product_id)
                            .map(|p| p.device_id)
                            .unwrap_or(device)
                    };
                    let label = device.clone();
                    let connection = self.open_com(device, label, port_number, settings);
                    tracing::info!(device = %connection.device, "restoring the COM connection");
                    self.start_com(connection, true);
                }
            }
        }
    }

    // -- COM -----------------------------------------------------------------------------------

    fn open_com(
        self: &Arc<Self>,
        device: String,
        label: String,
        port_number: Option<u32>,
        settings: SerialSettings,
    ) -> ComConnection {
        let terminal = Terminal::serial(device.clone(), settings, self.config.terminal.clone());
        terminal.restore_registration(lock(&self.keymap).get(COM_KEY).cloned());
        terminal.set_listener(Some(self.terminal_listener(COM_KEY.to_owned())));
        ComConnection { terminal, device, label, port_number, settling: Arc::new(Mutex::new(())) }
    }

    /// Installs the COM connection and, in the background, opens it (when `open` is set) and
    /// re-registers silently with the remembered cash register number.
    fn start_com(self: &Arc<Self>, connection: ComConnection, open: bool) {
        let old = lock(&self.com).replace(connection.clone());
        if let Some(old) = old {
            old.terminal.disconnect();
        }
        let weak = Arc::downgrade(self);
        let settling = connection.settling.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        spawn(format!("nami-com {}", connection.device), move || {
            let _settling = lock(&settling);
            let _ = ready_tx.send(());
            let terminal = connection.terminal;
            if open && let Err(e) = terminal.connect() {
                tracing::info!(device = %connection.device, error = %e, "COM port not open yet; it is re-opened when the device is back");
                return;
            }
            let Some(previous) = terminal.registration() else { return };
            match terminal.register(&previous.cash_register_no) {
                Ok(result) if result.approved => tracing::info!(device = %connection.device, "re-registered silently"),
                Ok(result) => {
                    tracing::warn!(device = %connection.device, code = %result.response_code, "silent re-register declined; the previous registration is kept");
                    terminal.restore_registration(Some(previous));
                }
                Err(e) => {
                    tracing::warn!(device = %connection.device, error = %e, "silent re-register failed; the previous registration is kept");
                    terminal.restore_registration(Some(previous));
                }
            }
            if let Some(shared) = weak.upgrade() {
                shared.sync_registration(COM_KEY, &terminal);
                shared.kick_recovery();
            }
        });
        // The background thread holds the settling lock before COM transactions can look at it.
        let _ = ready_rx.recv_timeout(Duration::from_secs(1));
    }

    fn com_connect(self: &Arc<Self>, request: &ComConnectRequest) -> ComConnectResponse {
        let failed = |message: String| ComConnectResponse { success: false, message };
        let settings = match com_settings(request) {
            Ok(settings) => settings,
            Err(e) => return failed(format!("{}: {}", e.field, e.reason)),
        };
        let (device, label, number) = match resolve_com_port(&request.port) {
            Ok(found) => found,
            Err(message) => return failed(message),
        };
        // A connect that fails leaves the working connection as it was. Only a connect to the
        // device the current connection holds must release it first; if that fails, the current
        // connection opens it again.
        let current = self.com_connection().filter(|c| c.device == device);
        if let Some(current) = &current {
            current.terminal.disconnect();
        }
        let entry = list_serial_ports().into_iter().find(|p| p.device_id == device);
        let (vendor_id, product_id) = entry.map(|p| (p.vendor_id, p.product_id)).unwrap_or((0, 0));
        let connection = self.open_com(device.clone(), label.clone(), number, settings);
        if let Err(e) = connection.terminal.connect() {
            if let Some(current) = current
                && let Err(again) = current.terminal.connect()
            {
                tracing::warn!(device = %current.device, error = %again, "the COM connection could not be opened again");
            }
            return failed(format!("Could not open {label}: {}", message_of(&e)));
        }
        self.remember(&SavedConnection::Com { device, port_number: number, settings, vendor_id, product_id });
        self.start_com(connection, false);
        ComConnectResponse { success: true, message: format!("Connected to {label} at {} baud", settings.baud_rate) }
    }

    fn com_disconnect(&self) -> i32 {
        let Some(connection) = lock(&self.com).take() else { return 1 };
        connection.terminal.disconnect();
        if let Err(e) = self.state.remove_connection(COM_KEY) {
            self.warn(format!("the COM connection could not be forgotten: {e}"));
        }
        0
    }

    fn get_com_ports(&self) -> Vec<ComPortInfo> {
        let mut entries: Vec<ComPortInfo> = list_serial_ports()
            .into_iter()
            .map(|p| ComPortInfo {
                device_id: Some(p.device_id),
                description: p.description,
                port_number: p.port_number,
                vendor_id: p.vendor_id,
                product_id: p.product_id,
            })
            .collect();
        if let Some(com) = self.com_connection()
            && let LinkState::Reconnecting { since } = com.terminal.link_state()
            && !entries.iter().any(|e| e.device_id.as_deref() == Some(com.device.as_str()))
        {
            let description = if since.elapsed() < self.config.com_reconnect_timeout {
                format!("Reconnecting to {}...", com.label)
            } else {
                format!("Disconnected \u{2014} last seen on {}", com.label)
            };
            entries.push(ComPortInfo {
                device_id: Some(com.label.clone()),
                description,
                port_number: com.port_number.map(|n| n.to_string()).or_else(|| port_number(&com.device)),
                vendor_id: 0,
                product_id: 0,
            });
        }
        if entries.is_empty() {
            entries.push(ComPortInfo {
                device_id: None,
                description: "No devices connected".into(),
                port_number: None,
                vendor_id: 0,
                product_id: 0,
            });
        }
        entries
    }

    // -- TCP -----------------------------------------------------------------------------------

    fn tcp_connect(self: &Arc<Self>, target: &TcpTarget) -> TcpConnectionResponse {
        let terminal = self.tcp_terminal(target);
        let (is_connected, status) = match terminal.connect() {
            Ok(()) => ("Connected".to_owned(), true),
            // Busy means connected and working.
            Err(TerminalError::Busy { .. }) => ("Connected".to_owned(), true),
            Err(e) => (format!("{}: {}", e.status_code(), message_of(&e)), false),
        };
        if status {
            self.remember_tcp(target);
        }
        TcpConnectionResponse {
            ip: target.ip.clone(),
            port_number: target.port,
            is_connected,
            connection_status: status,
        }
    }

    fn tcp_disconnect(&self, target: &TcpTarget) -> TcpConnectionResponse {
        let key = target.key();
        let terminal = lock(&self.tcp).remove(&key);
        if let Some(terminal) = terminal {
            terminal.disconnect();
        }
        lock(&self.saved_tcp).remove(&key);
        if let Err(e) = self.state.remove_connection(&key) {
            self.warn(format!("connection {key} could not be forgotten: {e}"));
        }
        TcpConnectionResponse {
            ip: target.ip.clone(),
            port_number: target.port,
            is_connected: "Connection Disconnected".into(),
            connection_status: false,
        }
    }

    /// The known TCP connections, with their link state: those connected now or once
    /// (remembered, restored at start). A target that never connected (a typo, a terminal that
    /// was off) is no connection: listing it as "Disconnected" for as long as the service ran
    /// misled the dashboard's readers.
    fn known_tcp(&self) -> Vec<(String, LinkState)> {
        let remembered = lock(&self.saved_tcp).clone();
        lock(&self.tcp)
            .iter()
            .map(|(key, t)| (key.clone(), t.link_state()))
            .filter(|(key, state)| *state == LinkState::Connected || remembered.contains(key))
            .collect()
    }

    fn existing_connections(&self) -> ExistingConnections {
        self.known_tcp().into_iter().map(|(key, state)| (key, link_text(state).to_owned())).collect()
    }

    // -- Transactions --------------------------------------------------------------------------

    /// One transaction: validation, the journal's idempotency decision, one exchange, the
    /// outcome written back, the response.
    fn perform(self: &Arc<Self>, target: &Target, body: &PaymentRequest, options: &CallOptions) -> TransactionResponse {
        let (key, terminal, device, settling) = match target {
            Target::Tcp(t) => (t.key(), self.tcp_terminal(t), None, None),
            Target::Com => match self.com_connection() {
                Some(c) => (COM_KEY.to_owned(), c.terminal, Some(c.device), Some(c.settling)),
                None => {
                    let mut response = TransactionResponse::error(
                        StatusCode::UnableToConnect,
                        "There is no COM connection: call /com/connect first",
                    );
                    response.ecr_reference_no = body.ecr_reference_no.clone();
                    return response;
                }
            },
        };
        let response = self.transact(&key, &terminal, device, settling, body, options);
        match target {
            Target::Tcp(t) => self.with_link_state(t, &terminal, response),
            Target::Com => response,
        }
    }

    /// A TCP transaction's response with the link's state; a link that works is remembered.
    fn with_link_state(
        &self,
        target: &TcpTarget,
        terminal: &Terminal,
        mut response: TransactionResponse,
    ) -> TransactionResponse {
        let state = terminal.link_state();
        response.ip_address = Some(target.ip.clone());
        response.port_number = Some(target.port);
        response.connection_status = Some(state == LinkState::Connected);
        response.is_connected = Some(link_text(state).to_owned());
        if state == LinkState::Connected || response.status_code == "200" {
            self.remember_tcp(target);
        }
        response
    }

    /// [`Shared::perform`] of a TCP transaction on tokio: the same three steps as
    /// [`Shared::transact`], the journal's on tokio's blocking pool, the exchange awaited.
    async fn perform_tcp_async(
        self: &Arc<Self>,
        request: TcpTransactionRequest,
        options: CallOptions,
    ) -> TransactionResponse {
        let target = request.tcpipcom_data;
        let body = request.payment_request;
        let terminal = self.tcp_terminal(&target);
        let key = target.key();
        // Each blocking step answers with the link's state itself: remembering a new connection
        // writes the state file.
        let (shared, checked_terminal, checked_key, checked_target, checked_options) =
            (self.clone(), terminal.clone(), key.clone(), target.clone(), options.clone());
        let checked = tokio::task::spawn_blocking(move || {
            shared
                .ready_to_send(&checked_key, &checked_terminal, None, &body, &checked_options)
                .map_err(|response| Box::new(shared.with_link_state(&checked_target, &checked_terminal, *response)))
        })
        .await;
        let ready = match checked {
            Ok(Ok(ready)) => ready,
            Ok(Err(response)) => return *response,
            Err(_) => return internal_error_response(),
        };
        let pending = PendingRow { shared: self.clone(), id: ready.row };
        let still_waiting = move || options.caller_waits();
        let result = match self.refused_locally(&key, &terminal, &ready.request) {
            Some(refusal) => Err(refusal),
            None => terminal.transact_async_for(&ready.request, &still_waiting).await,
        };
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let response = shared.answered(&key, &terminal, &ready, pending, result);
            shared.with_link_state(&target, &terminal, response)
        })
        .await
        .unwrap_or_else(|_| internal_error_response())
    }

    /// Validation and the journal's decision: the request to send, or the answer without
    /// sending (a replay, a request in flight or in doubt, bad input, a journal that failed).
    fn ready_to_send(
        self: &Arc<Self>,
        key: &str,
        terminal: &Terminal,
        device: Option<String>,
        body: &PaymentRequest,
        options: &CallOptions,
    ) -> Result<Ready, Box<TransactionResponse>> {
        let json = body.json_response.unwrap_or(false);
        // DUPLICATE's default (the last financial request) costs a journal query: only asked for
        // when the request is a type with that field and does not name it itself.
        let needs_last_reference = body.prev_ecr_no.as_deref().is_none_or(|t| t.trim().is_empty())
            && body.txn_type().is_ok_and(|t| {
                let spec = t.spec();
                spec.wire_fields.contains(&Field::PreviousEcrNo) || spec.input_fields.contains(&Field::PreviousEcrNo)
            });
        // Without `prevEcrNo`, DUPLICATE repeats the transaction of its own `ecrReferenceNo` when
        // the journal knows that reference on this terminal (Nami's reference ties the reference
        // to "the Duplicate (Last Transaction) API"), else the terminal's last transaction.
        let (last_reference, duplicate_source) = if needs_last_reference {
            let own = body
                .ecr_reference_no
                .as_deref()
                .and_then(|text| EcrReference::parse(text.trim()).ok())
                .filter(|reference| self.journal.knows_reference(key, reference).unwrap_or(false));
            match own {
                Some(reference) => (Some(reference), "ecrReferenceNo"),
                None => (
                    terminal.last_ecr_reference().or_else(|| self.journal.last_reference(key).ok().flatten()),
                    "lastTransaction",
                ),
            }
        } else {
            (None, "prevEcrNo")
        };
        let find_rrn = |code: &crate::protocol::values::ApprovalCode,
                        date: Option<&crate::protocol::values::OriginalDate>| {
            let rrn = self.journal.find_rrn(key, code.as_str(), date.map(|d| d.as_str())).ok().flatten()?;
            Rrn::parse(&rrn).ok()
        };
        let context = PaymentContext {
            default_print: self.config.default_print,
            last_ecr_reference: last_reference,
            find_original_rrn: &find_rrn,
        };
        let request = body.to_request(&context).and_then(|request| {
            let key = idempotency_key(options.idempotency_key.as_deref(), body.idempotency_key.as_deref())?;
            Ok((request, key))
        });
        let (request, idempotency_key) = match request {
            Ok(request) => request,
            Err(e) => {
                let mut response = TransactionResponse::error(e.code, format!("`{}` {}", e.field, e.reason));
                response.ecr_reference_no = body.ecr_reference_no.clone();
                return Err(Box::new(response));
            }
        };
        let duplicate_of = match (duplicate_source, &context.last_ecr_reference) {
            ("prevEcrNo", _) | (_, None) => body.prev_ecr_no.as_deref().map(|t| t.trim().to_owned()),
            (_, Some(reference)) => Some(reference.to_string()),
        };
        let spec = request.txn_type.spec();
        let journaled = matches!(spec.kind, TxnKind::Financial | TxnKind::Settlement);
        let row = match (&request.ecr_reference, journaled) {
            (Some(reference), true) => {
                let new = NewEntry {
                    terminal: key.to_owned(),
                    device: device.clone(),
                    terminal_id: terminal.registration().map(|r| r.terminal_id.to_string()),
                    txn_type: request.txn_type,
                    ecr_reference: reference.clone(),
                    amount: request.amount,
                    date: request.date.as_str().to_owned(),
                    input_req_data: Some(request.to_input_req_data()),
                    request_key: journal::request_key(
                        &request,
                        body.date.as_deref().is_some_and(|d| !d.trim().is_empty()),
                    ),
                    idempotency_key: idempotency_key.clone(),
                };
                match self.journal.begin(&new, self.config.idempotency_window) {
                    Ok(Begin::Started(id)) => Some(id),
                    Ok(Begin::InFlight(row)) => {
                        let mut response = TransactionResponse::error(
                            StatusCode::TerminalBusy,
                            format!(
                                "A request with ECR reference {} is already in progress on {key} (since {}); nothing was sent",
                                row.ecr_reference_no, row.requested_at
                            ),
                        );
                        response.ecr_reference_no = Some(row.ecr_reference_no);
                        return Err(Box::new(response));
                    }
                    Ok(Begin::Final(row)) => {
                        if let Err(e) = self.journal.note_replay(row.id) {
                            tracing::warn!(error = %e, "replay count not updated");
                        }
                        tracing::info!(terminal = key, ecr = %row.ecr_reference_no, "replayed a stored result; nothing sent");
                        let mut response = self.stored_response(&row, json);
                        response.replay = Some(true);
                        return Err(Box::new(response));
                    }
                    Ok(Begin::Unknown(row)) => {
                        self.kick_recovery();
                        return Err(Box::new(unknown_response(&row)));
                    }
                    Ok(Begin::InDoubt(row)) => {
                        self.kick_recovery();
                        let mut response = TransactionResponse::error(
                            StatusCode::TerminalBusy,
                            format!(
                                "The outcome of {} {} (sent at {}) on {key} is not known yet, so nothing new with ECR reference {} is sent to it until the service has asked the terminal (DUPLICATE); nothing was sent. Query /transactions/{} and retry once it is settled",
                                row.txn_type,
                                row.ecr_reference_no,
                                row.requested_at,
                                row.ecr_reference_no,
                                row.ecr_reference_no
                            ),
                        );
                        response.ecr_reference_no = Some(row.ecr_reference_no);
                        return Err(Box::new(response));
                    }
                    Ok(Begin::KeyReused(row)) => {
                        let mut response = TransactionResponse::error(
                            StatusCode::Error,
                            format!(
                                "`Idempotency-Key` was already used on {} for another request ({} {} ECR reference {} at {}, {}); a retry must repeat the same request, a new one needs a new key. Nothing was sent",
                                row.terminal,
                                row.txn_type,
                                row.amount.as_deref().map(|a| format!("SAR {a}")).unwrap_or_default(),
                                row.ecr_reference_no,
                                row.requested_at,
                                row.state.as_str(),
                            ),
                        );
                        response.ecr_reference_no = Some(row.ecr_reference_no);
                        return Err(Box::new(response));
                    }
                    Err(e) => {
                        let mut response = TransactionResponse::error(
                            StatusCode::Error,
                            format!("The journal could not record the request, so it was not sent: {e}"),
                        );
                        response.ecr_reference_no = Some(reference.to_string());
                        self.warn(format!("journal write failed: {e}"));
                        return Err(Box::new(response));
                    }
                }
            }
            _ => None,
        };
        Ok(Ready { request, row, json, journaled, duplicate_of, duplicate_source })
    }

    /// One transaction by the blocking driver: validation, the journal's idempotency decision,
    /// one exchange, the outcome written back, the response.
    fn transact(
        self: &Arc<Self>,
        key: &str,
        terminal: &Terminal,
        device: Option<String>,
        settling: Option<Arc<Mutex<()>>>,
        body: &PaymentRequest,
        options: &CallOptions,
    ) -> TransactionResponse {
        let ready = match self.ready_to_send(key, terminal, device, body, options) {
            Ok(ready) => ready,
            Err(response) => return *response,
        };
        let pending = PendingRow { shared: self.clone(), id: ready.row };

        // A COM connection that is re-registering silently finishes that first. Its lock is only
        // waited for, never held across the exchange: a second request then finds the session
        // busy and gets TERMINAL_BUSY at once, as on TCP, instead of queueing behind the first.
        let caller_left = settling.as_ref().is_some_and(|settling| !wait_until_free(settling, options));
        let still_waiting = || options.caller_waits();
        let result = if caller_left {
            tracing::info!(terminal = key, "the caller stopped waiting for the silent re-register; nothing was sent");
            Err(TerminalError::CallerGone)
        } else if let Some(refusal) = self.refused_locally(key, terminal, &ready.request) {
            Err(refusal)
        } else {
            terminal.transact_for(&ready.request, &still_waiting)
        };
        self.answered(key, terminal, &ready, pending, result)
    }

    /// A signed request to a terminal never registered is refused before anything is sent (D8).
    fn refused_locally(&self, key: &str, terminal: &Terminal, request: &Request) -> Option<TerminalError> {
        (request.txn_type.spec().is_signed() && terminal.registration().is_none())
            .then(|| TerminalError::RegisterRequired { terminal: key.to_owned() })
    }

    /// The outcome of a sent (or locally refused) request, written to the journal, and the
    /// response.
    fn answered(
        &self,
        key: &str,
        terminal: &Terminal,
        ready: &Ready,
        pending: PendingRow,
        result: Result<TxnResult, TerminalError>,
    ) -> TransactionResponse {
        let Ready { request, json, journaled, .. } = ready;
        let (json, journaled) = (*json, *journaled);

        let outcome = match &result {
            Ok(result) => answered_outcome(result),
            Err(e) => Outcome {
                state: Some(if e.unknown_outcome().is_some() { EntryState::Unknown } else { EntryState::Error }),
                status_code: e.status_code().into(),
                message: message_of(e),
                ..Outcome::default()
            },
        };
        pending.finish(&outcome);
        self.sync_registration(key, terminal);

        match result {
            Ok(result) => {
                let mut response = answered_response(&result, json, self.config.terminal.layout);
                if request.txn_type == TxnType::Duplicate {
                    self.resolve_from_duplicate(key, request, &result);
                    response.duplicate_of = ready.duplicate_of.clone();
                    response.duplicate_of_source = Some(ready.duplicate_source.to_owned());
                }
                response.input_req_data = Some(request.to_input_req_data());
                response
            }
            Err(e) => {
                let mut response = TransactionResponse::error(e.status_code(), message_of(&e));
                response.ecr_reference_no = request.ecr_reference.as_ref().map(|r| r.to_string());
                response.input_req_data = Some(request.to_input_req_data());
                if let Some(unknown) = e.unknown_outcome() {
                    response.outcome_unknown = Some(true);
                    response.ecr_reference_no = Some(unknown.ecr_reference.to_string());
                    if journaled {
                        response.status_message.push_str(
                            ". The service resolves it with DUPLICATE; a retry with the same ECR reference is never sent twice",
                        );
                    }
                }
                response
            }
        }
    }

    /// The response a journal row stands for (replays, resolved outcomes).
    fn stored_response(&self, row: &JournalEntry, json: bool) -> TransactionResponse {
        let txn_type = row.txn().unwrap_or(TxnType::Purchase);
        let mut response = TransactionResponse {
            status_code: row.status_code.clone().unwrap_or_else(|| "200".into()),
            status_message: row.message.clone().unwrap_or_default(),
            response_code: row.response_code.clone(),
            approved: row.state == EntryState::Approved,
            terminal_id: row.terminal_id.clone(),
            input_req_data: row.input_req_data.clone(),
            ecr_reference_no: Some(row.ecr_reference_no.clone()),
            ..TransactionResponse::default()
        };
        if let Some(fields) = &row.reply_fields {
            let reply = Response::from_fields(fields.clone());
            if json {
                response.parsed_transaction = Some(parsed_transaction(txn_type, &reply, self.config.terminal.layout));
            } else {
                response.transaction = Some(reply_text(fields));
            }
        }
        if txn_type.spec().is_signed()
            && let (Some(reference), Some(terminal_id)) =
                (row.ecr_reference(), row.terminal_id.as_deref().and_then(|t| TerminalId::parse(t).ok()))
        {
            response.signature = Some(Signature::compute(&reference, &terminal_id).to_string());
        }
        response
    }

    // -- Utilities -----------------------------------------------------------------------------

    fn cancel(&self, target: Option<&Target>) -> StatusResponse {
        let terminals: Vec<Terminal> = match target {
            Some(Target::Tcp(t)) => lock(&self.tcp).get(&t.key()).cloned().into_iter().collect(),
            Some(Target::Com) => self.com_connection().map(|c| c.terminal).into_iter().collect(),
            None => {
                let mut all: Vec<Terminal> = lock(&self.tcp).values().cloned().collect();
                all.extend(self.com_connection().map(|c| c.terminal));
                all
            }
        };
        let cancelled = terminals.iter().filter(|t| t.cancel()).count();
        if cancelled > 0 {
            StatusResponse { status: "Success".into(), message: "Transaction cancelled".into() }
        } else {
            StatusResponse { status: "Info".into(), message: "No active transaction to cancel".into() }
        }
    }

    fn registration_status(&self, target: Option<&Target>) -> RegistrationStatus {
        let tcp_status = |key: &str| {
            let registration = self.registration_of(key);
            let target = parse_key(key);
            RegistrationStatus {
                registered: registration.is_some(),
                terminal_id: registration.map(|r| r.terminal_id.to_string()),
                ip: target.as_ref().map(|t| t.ip.clone()),
                port: target.map(|t| t.port),
                com_port: None,
                terminals: None,
            }
        };
        let com_status = || {
            let registration = self.registration_of(COM_KEY);
            RegistrationStatus {
                registered: registration.is_some(),
                terminal_id: registration.map(|r| r.terminal_id.to_string()),
                ip: None,
                port: None,
                com_port: Some(self.com_connection().map(|c| c.label).unwrap_or_else(|| COM_KEY.to_owned())),
                terminals: None,
            }
        };
        match target {
            Some(Target::Tcp(t)) => tcp_status(&t.key()),
            Some(Target::Com) => com_status(),
            None => {
                let mut keys: Vec<String> = self.known_tcp().into_iter().map(|(key, _)| key).collect();
                for key in lock(&self.keymap).keys() {
                    if key != COM_KEY && !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                keys.sort();
                let mut all: Vec<RegistrationStatus> = keys.iter().map(|k| tcp_status(k)).collect();
                if self.com_connection().is_some() || lock(&self.keymap).contains_key(COM_KEY) {
                    all.insert(0, com_status());
                }
                let mut primary =
                    all.iter().find(|s| s.registered).or(all.first()).cloned().unwrap_or(RegistrationStatus {
                        registered: false,
                        terminal_id: None,
                        ip: None,
                        port: None,
                        com_port: None,
                        terminals: None,
                    });
                primary.terminals = Some(all);
                primary
            }
        }
    }

    fn clear_terminal_data(&self, request: &ClearTerminalDataRequest) -> StatusResponse {
        if request.confirm_clear != Some(true) {
            return StatusResponse {
                status: "Error".into(),
                message: "Nothing cleared: send {\"confirmClear\": true} to clear the terminal data map".into(),
            };
        }
        lock(&self.keymap).clear();
        let terminals: Vec<Terminal> = lock(&self.tcp).values().cloned().collect();
        for terminal in terminals.iter().chain(self.com_connection().map(|c| c.terminal).as_ref()) {
            terminal.restore_registration(None);
        }
        if let Err(e) = self.state.clear_keymap() {
            self.warn(format!("the keymap could not be cleared on disk: {e}"));
            return StatusResponse {
                status: "Error".into(),
                message: format!("Cleared in memory, but the saved keymap could not be cleared: {e}"),
            };
        }
        tracing::info!("terminal data map cleared");
        StatusResponse { status: "Success".into(), message: "Terminal data map cleared Successfully".into() }
    }

    fn health_status(&self) -> HealthStatus {
        let com = self.com_connection();
        let mut registered: Vec<RegisteredTerminal> = Vec::new();
        if let Some(registration) = self.registration_of(COM_KEY) {
            registered.push(RegisteredTerminal {
                terminal_id: registration.terminal_id.to_string(),
                ip_address: None,
                port_number: None,
                com_port: Some(com.as_ref().map(|c| c.label.clone()).unwrap_or_else(|| COM_KEY.to_owned())),
            });
        }
        let mut keys: Vec<String> = lock(&self.tcp).keys().cloned().collect();
        keys.extend(lock(&self.keymap).keys().filter(|k| *k != COM_KEY).cloned());
        keys.sort();
        keys.dedup();
        for key in keys {
            if let (Some(registration), Some(target)) = (self.registration_of(&key), parse_key(&key)) {
                registered.push(RegisteredTerminal {
                    terminal_id: registration.terminal_id.to_string(),
                    ip_address: Some(target.ip),
                    port_number: Some(target.port),
                    com_port: None,
                });
            }
        }
        HealthStatus {
            status: "UP".into(),
            version: self.config.version.clone(),
            uptime: uptime_text(self.started.elapsed()),
            port: self.config.http_port.to_string(),
            memory_used_mb: memory_used_mb(),
            memory_max_mb: self.config.memory_max_mb.unwrap_or_else(memory_total_mb),
            j_serial_comm_available: true,
            // At most two seconds old: the health status is polled (dashboards, monitors) and
            // listing walks the device tree.
            available_com_ports: crate::session::ports::recent_serial_ports()
                .into_iter()
                .map(|p| HealthComPort {
                    system_name: p.device_id.rsplit('/').next().unwrap_or(&p.device_id).to_owned(),
                    description: p.description,
                    vendor_id: p.vendor_id,
                    product_id: p.product_id,
                })
                .collect(),
            com_connected: com.as_ref().is_some_and(|c| c.terminal.link_state() == LinkState::Connected),
            active_com_port: com.map(|c| c.label),
            tcp_connections: self.existing_connections(),
            registered_terminals: registered,
            unknown_outcomes: self.journal.count_in_state(EntryState::Unknown).unwrap_or(0),
            needs_attention: self.journal.count_needing_attention(self.config.recovery_attention_after).unwrap_or(0),
            state_warnings: lock(&self.warnings).clone(),
        }
    }
}

/// The journal outcome of an exchange the terminal answered.
fn answered_outcome(result: &TxnResult) -> Outcome {
    let parsed = result.parsed();
    let get = |name: &str| parsed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    Outcome {
        state: Some(if result.approved { EntryState::Approved } else { EntryState::Declined }),
        status_code: "200".into(),
        response_code: Some(result.response_code.clone()),
        message: result.message.clone(),
        reply: Some(masked_fields(&result.response)),
        rrn: get("rrn"),
        approval_code: get("approvalCode"),
        card_number: get("pan").map(|p| crate::protocol::response::mask_pan(&p)),
        terminal_id: result.terminal_id.as_ref().map(|t| t.to_string()),
        resolved_by: None,
    }
}

/// The response to an exchange the terminal answered: statusCode "200" and its message.
fn answered_response(result: &TxnResult, json: bool, layout: crate::protocol::response::Layout) -> TransactionResponse {
    TransactionResponse {
        status_code: "200".into(),
        status_message: result.message.clone(),
        response_code: Some(result.response_code.clone()),
        approved: result.approved,
        transaction: (!json).then(|| reply_text(&masked_fields(&result.response))),
        parsed_transaction: json.then(|| parsed_transaction(result.txn_type, &result.response, layout)),
        signature: result.signature.as_ref().map(|s| s.to_string()),
        terminal_id: result.terminal_id.as_ref().map(|t| t.to_string()),
        input_req_data: None,
        ecr_reference_no: result.ecr_reference.as_ref().map(|r| r.to_string()),
        ..TransactionResponse::default()
    }
}

/// Waits until `settling` is free (a silent re-register ended): true; or until the caller stops
/// waiting: false.
fn wait_until_free(settling: &Mutex<()>, options: &CallOptions) -> bool {
    loop {
        match settling.try_lock() {
            Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => return true,
            Err(std::sync::TryLockError::WouldBlock) if !options.caller_waits() => return false,
            Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

/// The request's idempotency key: the caller's (the HTTP header) or the body's `idempotencyKey`;
/// both given must agree. Printable ASCII, 1 to 255 characters.
fn idempotency_key(option: Option<&str>, body: Option<&str>) -> Result<Option<String>, crate::error::ValidationError> {
    use crate::error::ValidationError;
    let given = |text: Option<&str>| text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    let (option, body) = (given(option), given(body));
    let key = match (option, body) {
        (Some(a), Some(b)) if a != b => {
            return Err(ValidationError::other(
                StatusCode::Error,
                "idempotencyKey",
                format!("differs from the Idempotency-Key header ({b:?} and {a:?}): give one key"),
            ));
        }
        (a, b) => a.or(b),
    };
    if let Some(key) = &key
        && (key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
    {
        return Err(ValidationError::other(
            StatusCode::Error,
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(key)
}

/// A retry of a request whose outcome is still unknown: nothing is sent.
fn unknown_response(row: &JournalEntry) -> TransactionResponse {
    let mut response = TransactionResponse::error(
        StatusCode::OutcomeUnknown,
        format!(
            "The outcome of {} {} (sent at {}) is not known yet and it was not sent again. The service is asking the terminal (DUPLICATE); query /transactions/{} or retry later",
            row.txn_type, row.ecr_reference_no, row.requested_at, row.ecr_reference_no
        ),
    );
    response.outcome_unknown = Some(true);
    response.ecr_reference_no = Some(row.ecr_reference_no.clone());
    response.input_req_data = row.input_req_data.clone();
    response
}

fn com_settings(request: &ComConnectRequest) -> Result<SerialSettings, crate::error::ValidationError> {
    use crate::error::ValidationError;
    let defaults = SerialSettings::default();
    let baud = match request.baud_rate.as_deref().map(str::trim) {
        None | Some("") => defaults.baud_rate,
        Some(text) => text.parse().map_err(|_| {
            ValidationError::other(
                StatusCode::InvalidBaudRate,
                "baudRate",
                format!("must be a number such as \"115200\", got {text:?}"),
            )
        })?,
    };
    let small = |value: Option<i64>, default: u8, code: StatusCode, field: &str| -> Result<u8, ValidationError> {
        match value {
            None => Ok(default),
            Some(v) => u8::try_from(v).map_err(|_| ValidationError::other(code, field, format!("got {v}"))),
        }
    };
    let parity = match request.parity {
        None => defaults.parity,
        Some(code) => Parity::from_code(code)?,
    };
    SerialSettings::new(
        baud,
        small(request.data_bits, defaults.data_bits, StatusCode::InvalidDataBits, "dataBits")?,
        parity,
        small(request.stop_bits, defaults.stop_bits, StatusCode::InvalidStopBits, "stopBits")?,
    )
}

/// The device to open for a `/com/connect` port: `(device, label, number)`. A number is `COMn`
/// on Windows and, elsewhere, the listed port with that number (`/dev/ttyACM3` for 3); a string
/// is a port name or a device path (an extension: tests use a pseudo-terminal path).
fn resolve_com_port(port: &ComPort) -> Result<(String, String, Option<u32>), String> {
    let by_number = |number: u32| {
        if cfg!(windows) {
            let name = format!("COM{number}");
            return Ok((name.clone(), name, Some(number)));
        }
        let ports = list_serial_ports();
        match ports.iter().find(|p| p.port_number.as_deref() == Some(number.to_string().as_str())) {
            Some(found) => Ok((found.device_id.clone(), found.device_id.clone(), Some(number))),
            None => Err(format!(
                "Could not open COM{number}: no serial port with number {number} is connected (available: {})",
                if ports.is_empty() {
                    "none".to_owned()
                } else {
                    ports.iter().map(|p| p.device_id.as_str()).collect::<Vec<_>>().join(", ")
                }
            )),
        }
    };
    match port {
        ComPort::Number(number) => by_number(*number),
        ComPort::Name(name) => {
            let name = name.trim();
            if name.is_empty() {
                return Err("port: give a COM port number such as 3, or a device path".into());
            }
            if let Ok(number) = name.parse::<u32>() {
                return by_number(number);
            }
            let upper = name.to_ascii_uppercase();
            if let Some(number) = upper.strip_prefix("COM").and_then(|n| n.parse::<u32>().ok())
                && !cfg!(windows)
            {
                return by_number(number);
            }
            Ok((name.to_owned(), name.to_owned(), port_number(name).and_then(|n| n.parse().ok())))
        }
    }
}

fn spawn(name: String, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = crate::session::named_thread(name).spawn(work) {
        tracing::error!(error = %e, "could not start a background thread");
    }
}

/// `2h 14m`.
fn uptime_text(elapsed: Duration) -> String {
    let minutes = elapsed.as_secs() / 60;
    format!("{}h {}m", minutes / 60, minutes % 60)
}

/// Resident memory of this process (Linux: `/proc/self/status`; 0 where unknown).
fn memory_used_mb() -> u64 {
    proc_kb("/proc/self/status", "VmRSS:").map(|kb| kb / 1024).unwrap_or(0)
}

/// The machine's memory (Linux: `/proc/meminfo`; 0 where unknown).
fn memory_total_mb() -> u64 {
    proc_kb("/proc/meminfo", "MemTotal:").map(|kb| kb / 1024).unwrap_or(0)
}

fn proc_kb(path: &str, label: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests;
