//! One physical terminal: its link, its registration and the rules of an exchange (D8, D10, D11).
//!
//! A [`Terminal`] is a cheap handle (clone it to another thread to call [`Terminal::cancel`]).
//! Calls block until the terminal answers, the deadline passes or the call is cancelled;
//! [`Terminal::transact_async`] is the same call on tokio, which holds no thread while the
//! terminal waits for the card. Both drive the same rules ([`super::exchange`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use super::config::TerminalConfig;
use super::error::{TerminalError, UnknownOutcome};
use super::events::{EventListener, TerminalEvent};
use super::exchange::{Exchange, Failure, Step};
use super::link::{
    Link, OpenError, SerialLink, SerialSettings, TcpLink, Transport, is_serial_port_gone, tcp_transport_from_tokio,
};
use crate::protocol::decoder::Frame;
use crate::protocol::frame::{Signing, encode_request};
use crate::protocol::redact::frame_hex_for_log;
use crate::protocol::request::Request;
use crate::protocol::response::{Layout, ParsedFields, Response, ResponseView};
use crate::protocol::txn_type::{TxnKind, TxnType, WaitClass};
use crate::protocol::values::{CashRegisterNo, EcrReference, Signature, TerminalId, TxnDate};

/// The outcome of an exchange the terminal answered. Its `Debug` form masks card numbers (in
/// `response` and in `raw`, shown as hex as the logs show frames).
#[derive(Clone, PartialEq, Eq)]
pub struct TxnResult {
    pub txn_type: TxnType,
    /// The terminal's response code ([2]).
    pub response_code: String,
    /// The terminal's message, or the code's meaning when the reply carries none.
    pub message: String,
    /// Decided by the code and the response class (D9).
    pub approved: bool,
    /// Every field of the reply.
    pub response: Response,
    /// The reply bytes as received.
    pub raw: Vec<u8>,
    /// The terminal ID the request was signed with (for REGISTER: the one it returned).
    pub terminal_id: Option<TerminalId>,
    /// SHA-256 of the ECR reference's last six digits and the terminal ID (D5).
    pub signature: Option<Signature>,
    pub ecr_reference: Option<EcrReference>,
    /// The layout the typed fields were read with.
    pub layout: Layout,
}

impl std::fmt::Debug for TxnResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnResult")
            .field("txn_type", &self.txn_type)
            .field("response_code", &self.response_code)
            .field("message", &self.message)
            .field("approved", &self.approved)
            .field("response", &self.response)
            .field("raw_hex", &crate::protocol::redact::frame_hex_for_log(&self.raw))
            .field("terminal_id", &self.terminal_id)
            .field("signature", &self.signature)
            .field("ecr_reference", &self.ecr_reference)
            .field("layout", &self.layout)
            .finish()
    }
}

impl TxnResult {
    /// The named fields of the reply (card numbers masked).
    pub fn parsed(&self) -> ParsedFields {
        self.response.parsed(self.layout)
    }

    /// The typed view of the reply.
    pub fn view(&self) -> ResponseView {
        self.response.view(self.layout)
    }

    /// One named field of the reply.
    pub fn field(&self, name: &str) -> Option<String> {
        self.parsed().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// What REGISTER established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub terminal_id: TerminalId,
    pub cash_register_no: CashRegisterNo,
}

/// The state of the link, for status pages (`/get-com-ports`, `/getExistingConnections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Disconnected,
    Connected,
    /// A serial device vanished and is being waited for; `since` is when it went.
    Reconnecting {
        since: Instant,
    },
}

#[derive(Clone)]
pub struct Terminal {
    inner: Arc<Inner>,
}

struct Inner {
    link: Box<dyn Link>,
    key: String,
    config: TerminalConfig,
    /// The open connection; held for the length of an exchange, so holding it means busy. A
    /// tokio mutex, so that the tokio driver can hold it across its waits; the blocking driver
    /// takes it with `try_lock`, or `blocking_lock` when it must wait (never on a tokio worker
    /// thread: tokio refuses, so the daemon runs blocking calls on its blocking pool).
    connection: tokio::sync::Mutex<Connection>,
    /// Whether an exchange is running (readable without the lock, for `cancel`).
    in_exchange: AtomicBool,
    cancel_requested: AtomicBool,
    /// Wakes the tokio driver's wait when `cancel` is called (the blocking one polls the flag).
    cancel_signal: tokio::sync::Notify,
    registration: RwLock<Option<Registration>>,
    last_ecr_reference: Mutex<Option<EcrReference>>,
    listener: RwLock<Option<EventListener>>,
    state: Mutex<LinkState>,
    /// Cleared by `disconnect`: the serial watchdog stops re-opening.
    wanted: AtomicBool,
    watchdog_started: AtomicBool,
    /// Set while the SDK itself holds the link (the silent re-register after a serial
    /// reconnect): a caller then waits for it instead of getting TERMINAL_BUSY for work it never
    /// asked for.
    background_exchange: AtomicBool,
}

#[derive(Default)]
struct Connection {
    transport: Option<Box<dyn Transport>>,
}

type ConnectionGuard<'a> = tokio::sync::MutexGuard<'a, Connection>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often a waiting blocking call looks at its cancel flag.
const POLL: Duration = Duration::from_millis(25);

/// Bytes read at a time. The tokio driver keeps this buffer in every waiting call's future, so it
/// is small: a reply is a few hundred bytes, a longer one takes two reads.
const READ_CHUNK: usize = 1024;

impl Terminal {
    /// A terminal behind any link.
    pub fn new(link: Box<dyn Link>, config: TerminalConfig) -> Self {
        let key = link.key();
        Terminal {
            inner: Arc::new(Inner {
                link,
                key,
                config,
                connection: tokio::sync::Mutex::new(Connection::default()),
                in_exchange: AtomicBool::new(false),
                cancel_requested: AtomicBool::new(false),
                cancel_signal: tokio::sync::Notify::new(),
                registration: RwLock::new(None),
                last_ecr_reference: Mutex::new(None),
                listener: RwLock::new(None),
                state: Mutex::new(LinkState::Disconnected),
                wanted: AtomicBool::new(false),
                watchdog_started: AtomicBool::new(false),
                background_exchange: AtomicBool::new(false),
            }),
        }
    }

    /// A terminal at `host:port`.
    pub fn tcp(host: impl Into<String>, port: u16, config: TerminalConfig) -> Self {
        Self::new(Box::new(TcpLink::new(host, port)), config)
    }

    /// A terminal on a serial port (`/dev/ttyACM0`, `COM3`).
    pub fn serial(path: impl Into<std::path::PathBuf>, settings: SerialSettings, config: TerminalConfig) -> Self {
        Self::new(Box::new(SerialLink::new(path, settings)), config)
    }

    /// `ip:port` or the serial port path.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    pub fn config(&self) -> &TerminalConfig {
        &self.inner.config
    }

    pub fn set_listener(&self, listener: Option<EventListener>) {
        *self.inner.listener.write().unwrap_or_else(|p| p.into_inner()) = listener;
    }

    pub fn registration(&self) -> Option<Registration> {
        self.inner.registration.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Restores a registration kept from an earlier run (the middleware's keymap).
    pub fn restore_registration(&self, registration: Option<Registration>) {
        *self.inner.registration.write().unwrap_or_else(|p| p.into_inner()) = registration;
    }

    pub fn link_state(&self) -> LinkState {
        *lock(&self.inner.state)
    }

    pub fn is_busy(&self) -> bool {
        self.inner.in_exchange.load(Ordering::SeqCst)
    }

    /// The ECR reference of the last financial request sent (DUPLICATE's default).
    pub fn last_ecr_reference(&self) -> Option<EcrReference> {
        lock(&self.inner.last_ecr_reference).clone()
    }

    /// Opens the link now (calls open it on demand anyway).
    pub fn connect(&self) -> Result<(), TerminalError> {
        let mut connection = self.acquire()?;
        self.inner.wanted.store(true, Ordering::SeqCst);
        self.ensure_open(&mut connection)?;
        Ok(())
    }

    /// Closes the link. The registration is kept; the next call re-opens the link.
    pub fn disconnect(&self) {
        self.inner.wanted.store(false, Ordering::SeqCst);
        self.cancel();
        let mut connection = self.inner.connection.blocking_lock();
        connection.transport = None;
        self.set_state(LinkState::Disconnected);
        self.emit(TerminalEvent::Disconnected { reason: "closed by the application".into() });
    }

    /// Ends a waiting call promptly with CANCELLED. Returns whether a call was running.
    pub fn cancel(&self) -> bool {
        if self.inner.in_exchange.load(Ordering::SeqCst) {
            self.inner.cancel_requested.store(true, Ordering::SeqCst);
            // A permit is stored if the call is not waiting yet; a stale one only makes a later
            // call look at its (lowered) flag once more.
            self.inner.cancel_signal.notify_one();
            true
        } else {
            false
        }
    }

    /// Sends any request: validation, registration gating, one exchange, the reply.
    pub fn transact(&self, request: &Request) -> Result<TxnResult, TerminalError> {
        self.transact_for(request, &|| true)
    }

    /// [`Terminal::transact`] for a caller that may give up while its request waits (an HTTP
    /// client that disconnects, an FFI caller that cancels): `still_waiting` is asked under the
    /// exchange lock immediately before the frame is written, and a request whose caller has gone
    /// is not sent at all ([`TerminalError::CallerGone`]).
    pub fn transact_for(
        &self,
        request: &Request,
        still_waiting: &dyn Fn() -> bool,
    ) -> Result<TxnResult, TerminalError> {
        request.validate()?;
        let mut connection = self.acquire()?;
        self.inner.wanted.store(true, Ordering::SeqCst);
        let result = self.exchange(&mut connection, request, still_waiting)?;
        if request.txn_type == TxnType::Register && result.approved && self.inner.config.auto_start_session {
            let mut start = Request::new(TxnType::StartSession, TxnDate::now());
            start.cash_register_no = request.cash_register_no.clone();
            self.exchange(&mut connection, &start, &|| true)?;
        }
        Ok(result)
    }

    /// Sends a request given as the REST `paymentRequest` body (the same fields as the daemon's
    /// API; docs/protocol.md D13). DUPLICATE without `prevEcrNo` repeats this terminal's last
    /// financial request.
    pub fn transact_payment(&self, payment: &crate::PaymentRequest) -> Result<TxnResult, TerminalError> {
        let context = crate::PaymentContext { last_ecr_reference: self.last_ecr_reference(), ..Default::default() };
        self.transact(&payment.to_request(&context)?)
    }

    /// REGISTER: keeps the terminal ID for signatures.
    pub fn register(&self, cash_register_no: &CashRegisterNo) -> Result<TxnResult, TerminalError> {
        let mut request = Request::new(TxnType::Register, TxnDate::now());
        request.cash_register_no = Some(cash_register_no.clone());
        self.transact(&request)
    }

    pub fn start_session(&self) -> Result<TxnResult, TerminalError> {
        self.session(TxnType::StartSession)
    }

    pub fn end_session(&self) -> Result<TxnResult, TerminalError> {
        self.session(TxnType::EndSession)
    }

    fn session(&self, txn_type: TxnType) -> Result<TxnResult, TerminalError> {
        let registration =
            self.registration().ok_or_else(|| TerminalError::RegisterRequired { terminal: self.inner.key.clone() })?;
        let mut request = Request::new(txn_type, TxnDate::now());
        request.cash_register_no = Some(registration.cash_register_no);
        self.transact(&request)
    }

    /// Sends any request on tokio: the same call as [`Terminal::transact`], but a TCP terminal's
    /// wait for its reply holds no thread (the socket waits in tokio's reactor), so thousands of
    /// terminals can each wait for a card at the cost of a few kilobytes each. A link without an
    /// async form (serial) runs the blocking call on tokio's blocking pool. Dropping the future
    /// closes the link: a reply that may still come is never taken for a later request.
    pub async fn transact_async(&self, request: &Request) -> Result<TxnResult, TerminalError> {
        self.transact_async_for(request, &|| true).await
    }

    /// [`Terminal::transact_async`] for a caller that may give up while its request waits, as
    /// [`Terminal::transact_for`]: a request whose caller has gone is not sent at all.
    pub async fn transact_async_for(
        &self,
        request: &Request,
        still_waiting: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<TxnResult, TerminalError> {
        request.validate()?;
        if self.inner.link.open_async().is_none() {
            // The blocking call runs on another thread and cannot borrow the caller's flag: it is
            // asked before the call starts.
            if !still_waiting() {
                return Err(self.caller_gone(request));
            }
            let (terminal, request) = (self.clone(), request.clone());
            return tokio::task::spawn_blocking(move || terminal.transact(&request))
                .await
                .unwrap_or_else(|error| Err(TerminalError::Link { reason: format!("the call failed: {error}") }));
        }
        let mut connection = self.acquire_async().await?;
        self.inner.wanted.store(true, Ordering::SeqCst);
        let result = self.exchange_async(&mut connection, request, still_waiting).await?;
        if request.txn_type == TxnType::Register && result.approved && self.inner.config.auto_start_session {
            let mut start = Request::new(TxnType::StartSession, TxnDate::now());
            start.cash_register_no = request.cash_register_no.clone();
            self.exchange_async(&mut connection, &start, &|| true).await?;
        }
        Ok(result)
    }

    /// Whether the link must be waited for rather than refused with TERMINAL_BUSY.
    fn waits_when_busy(&self) -> bool {
        self.inner.config.wait_when_busy || self.inner.background_exchange.load(Ordering::SeqCst)
    }

    fn acquire(&self) -> Result<ConnectionGuard<'_>, TerminalError> {
        match self.inner.connection.try_lock() {
            Ok(guard) => Ok(guard),
            Err(_) if self.waits_when_busy() => Ok(self.inner.connection.blocking_lock()),
            Err(_) => Err(TerminalError::Busy { terminal: self.inner.key.clone() }),
        }
    }

    async fn acquire_async(&self) -> Result<ConnectionGuard<'_>, TerminalError> {
        match self.inner.connection.try_lock() {
            Ok(guard) => Ok(guard),
            Err(_) if self.waits_when_busy() => Ok(self.inner.connection.lock().await),
            Err(_) => Err(TerminalError::Busy { terminal: self.inner.key.clone() }),
        }
    }

    fn emit(&self, event: TerminalEvent) {
        emit(&self.inner, event);
    }

    fn set_state(&self, state: LinkState) {
        *lock(&self.inner.state) = state;
    }

    /// Opens the link if it is closed or the peer dropped it while idle.
    fn ensure_open(&self, connection: &mut Connection) -> Result<(), TerminalError> {
        if self.is_open(connection) {
            return Ok(());
        }
        self.emit(TerminalEvent::Connecting);
        self.opened(connection, self.inner.link.open())
    }

    /// [`Terminal::ensure_open`] without blocking the thread while a TCP connection is made.
    async fn ensure_open_async(&self, connection: &mut Connection) -> Result<(), TerminalError> {
        if self.is_open(connection) {
            return Ok(());
        }
        self.emit(TerminalEvent::Connecting);
        let opened = match self.inner.link.open_async() {
            Some(open) => open.await,
            None => self.inner.link.open(),
        };
        self.opened(connection, opened)
    }

    /// Whether the link is open; one the peer closed while it sat idle is dropped.
    fn is_open(&self, connection: &mut Connection) -> bool {
        let stale = connection.transport.as_mut().is_some_and(|t| t.peer_closed());
        if stale {
            tracing::debug!(terminal = %self.inner.key, "peer closed the idle link; re-opening");
            connection.transport = None;
            self.emit(TerminalEvent::Reconnecting);
        }
        connection.transport.is_some()
    }

    /// Takes the result of opening the link.
    fn opened(
        &self,
        connection: &mut Connection,
        opened: Result<Box<dyn Transport>, OpenError>,
    ) -> Result<(), TerminalError> {
        match opened {
            Ok(transport) => {
                connection.transport = Some(transport);
                self.set_state(LinkState::Connected);
                self.emit(TerminalEvent::Connected);
                self.start_watchdog();
                Ok(())
            }
            Err(OpenError::Vanished(reason)) => {
                tracing::info!(terminal = %self.inner.key, %reason, "serial device is gone");
                self.start_watchdog();
                Err(TerminalError::CableDisconnected { port: self.inner.key.clone(), unknown: None })
            }
            Err(OpenError::Unreachable(reason)) => Err(TerminalError::UnableToConnect { reason }),
        }
    }

    /// One exchange on the locked connection, by the blocking driver.
    fn exchange(
        &self,
        connection: &mut Connection,
        request: &Request,
        still_waiting: &dyn Fn() -> bool,
    ) -> Result<TxnResult, TerminalError> {
        let prepared = self.prepare(request)?;
        let running = self.start_exchange();
        let outcome = self.send_and_receive(connection, request, &prepared.frame, still_waiting);
        drop(running);
        self.reply_to_result(request, prepared, outcome?)
    }

    /// One exchange on the locked connection, by the tokio driver.
    async fn exchange_async(
        &self,
        connection: &mut Connection,
        request: &Request,
        still_waiting: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<TxnResult, TerminalError> {
        let prepared = self.prepare(request)?;
        // Lowered on drop too: a dropped future must not leave the terminal looking busy.
        let running = self.start_exchange();
        let outcome = self.send_and_receive_async(connection, request, &prepared.frame, still_waiting).await;
        drop(running);
        self.reply_to_result(request, prepared, outcome?)
    }

    /// The frame of `request`, signed with the registration.
    fn prepare(&self, request: &Request) -> Result<Prepared, TerminalError> {
        let inner = &self.inner;
        let spec = request.txn_type.spec();
        let terminal_id = self.registration().map(|r| r.terminal_id);
        let signature = match (&request.ecr_reference, &terminal_id) {
            (Some(reference), Some(terminal_id)) if spec.is_signed() => {
                Some(Signature::compute(reference, terminal_id))
            }
            _ => None,
        };
        let signing = match (&terminal_id, spec.is_signed()) {
            (_, false) => Signing::Unsigned,
            // The frame carries the signature computed above (one SHA-256 per exchange, not two).
            (Some(terminal_id), true) => match &signature {
                Some(signature) => Signing::Signature(signature),
                None => Signing::TerminalId(terminal_id),
            },
            (None, true) => return Err(TerminalError::RegisterRequired { terminal: inner.key.clone() }),
        };
        let frame = encode_request(request, signing, inner.config.lrc)?;
        Ok(Prepared { frame, terminal_id, signature })
    }

    /// Marks an exchange as running (for `cancel`) until the guard drops.
    fn start_exchange(&self) -> ExchangeRunning<'_> {
        self.inner.cancel_requested.store(false, Ordering::SeqCst);
        self.inner.in_exchange.store(true, Ordering::SeqCst);
        ExchangeRunning(&self.inner)
    }

    /// The result of a reply: registration kept or dropped, events.
    fn reply_to_result(&self, request: &Request, prepared: Prepared, frame: Frame) -> Result<TxnResult, TerminalError> {
        let inner = &self.inner;
        let response = Response::from_frame(frame.clone());
        let approved = response.approved();
        self.emit(TerminalEvent::ResponseReceived { response_code: response.code().to_owned(), approved });
        if response.requires_registration() {
            tracing::info!(terminal = %inner.key, code = response.code(), "terminal asks to register; registration dropped");
            *inner.registration.write().unwrap_or_else(|p| p.into_inner()) = None;
            return Err(TerminalError::RegisterRequired { terminal: inner.key.clone() });
        }
        let mut terminal_id = prepared.terminal_id;
        if request.txn_type == TxnType::Register && approved {
            if let ResponseView::Register { terminal_id: Some(new_id) } = response.view(inner.config.layout) {
                let cash_register_no = request.cash_register_no.clone().expect("validated: REGISTER has a CRN");
                *inner.registration.write().unwrap_or_else(|p| p.into_inner()) =
                    Some(Registration { terminal_id: new_id.clone(), cash_register_no });
                self.emit(TerminalEvent::Registered { terminal_id: new_id.to_string() });
                terminal_id = Some(new_id);
            } else {
                tracing::warn!(terminal = %inner.key, "REGISTER approved without a 16-digit terminal ID in field [3]");
            }
        }
        Ok(TxnResult {
            txn_type: request.txn_type,
            response_code: response.code().to_owned(),
            message: response.message(),
            approved,
            raw: frame.raw,
            response,
            terminal_id,
            signature: prepared.signature,
            ecr_reference: request.ecr_reference.clone(),
            layout: inner.config.layout,
        })
    }

    /// The frame is on its way: the last reference and the events.
    fn request_sent(&self, request: &Request) {
        let spec = request.txn_type.spec();
        if matches!(spec.kind, TxnKind::Financial) {
            *lock(&self.inner.last_ecr_reference) = request.ecr_reference.clone();
        }
        self.emit(TerminalEvent::RequestSent {
            txn_type: spec.name.to_owned(),
            ecr_reference_no: request.ecr_reference.as_ref().map(|r| r.to_string()),
        });
        self.emit(if spec.wait == WaitClass::CardPresent {
            TerminalEvent::WaitingForCard
        } else {
            TerminalEvent::WaitingForTerminal
        });
    }

    /// Writes the frame and reads the matching reply, honouring cancel and the deadline: the
    /// blocking driver of [`Exchange`], one thread for the length of the call.
    fn send_and_receive(
        &self,
        connection: &mut Connection,
        request: &Request,
        frame: &[u8],
        still_waiting: &dyn Fn() -> bool,
    ) -> Result<Frame, TerminalError> {
        let inner = &self.inner;
        self.ensure_open(connection)?;
        let transport = connection.transport.as_mut().expect("opened above");
        // A late reply to an earlier, abandoned request must not be taken for this one.
        transport.discard_input();

        // The last moment to notice a caller that gave up while the request waited (for the link,
        // the lock, a silent re-register): after the write the terminal may charge a card.
        if !still_waiting() {
            return Err(self.caller_gone(request));
        }
        let mut exchange = Exchange::new(&inner.key, request, &inner.config, Instant::now());
        tracing::trace!(terminal = %inner.key, txn = request.txn_type.spec().name, frame = %frame_hex_for_log(frame), "send");
        if let Err(error) = transport.write_all(frame) {
            connection.transport = None;
            return Err(self.io_failure(exchange.write_failed(error.to_string()), &error));
        }
        exchange.sent(Instant::now());
        self.request_sent(request);

        let mut buf = [0u8; READ_CHUNK];
        loop {
            let now = Instant::now();
            let wake = match exchange.poll(now, inner.cancel_requested.load(Ordering::SeqCst)) {
                Step::Reply(reply) => return Ok(reply),
                Step::Failed(failure) => {
                    if failure.abandons_link() {
                        self.abandon(connection);
                    }
                    return Err(self.failure(failure));
                }
                Step::Wait(wake) => wake,
            };
            let slice = POLL.min(wake - now);
            let transport = connection.transport.as_mut().expect("open during the exchange");
            match transport.read(&mut buf, slice) {
                Ok(0) => {
                    connection.transport = None;
                    return exchange.peer_closed().map_err(|failure| self.failure(failure));
                }
                Ok(n) => exchange.received(&buf[..n], Instant::now()),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    connection.transport = None;
                    return Err(self.io_failure(exchange.read_failed(e.to_string()), &e));
                }
            }
        }
    }

    /// [`Terminal::send_and_receive`] on tokio: the socket is registered with tokio's reactor for
    /// the length of the exchange, and the wait for the reply, the deadline and a cancel are
    /// awaited together, so the call holds no thread while the terminal waits for the card. The
    /// link is a blocking socket again afterwards (the blocking calls, e.g. recovery, share it).
    async fn send_and_receive_async(
        &self,
        connection: &mut Connection,
        request: &Request,
        frame: &[u8],
        still_waiting: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Frame, TerminalError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let inner = &self.inner;
        self.ensure_open_async(connection).await?;
        let mut transport = connection.transport.take().expect("opened above");
        // A late reply to an earlier, abandoned request must not be taken for this one.
        transport.discard_input();
        // The last moment to notice a caller that gave up while the request waited.
        if !still_waiting() {
            connection.transport = Some(transport);
            return Err(self.caller_gone(request));
        }
        // From here the socket lives in this future: dropping the future closes it, and only a
        // reply puts it back.
        let mut stream = transport.into_tokio().map_err(|e| self.failure_before_write(e))?;

        let mut exchange = Exchange::new(&inner.key, request, &inner.config, Instant::now());
        tracing::trace!(terminal = %inner.key, txn = request.txn_type.spec().name, frame = %frame_hex_for_log(frame), "send");
        let written = async {
            stream.write_all(frame).await?;
            stream.flush().await
        };
        if let Err(error) = written.await {
            return Err(self.failure(exchange.write_failed(error.to_string())));
        }
        exchange.sent(Instant::now());
        self.request_sent(request);

        let mut buf = [0u8; READ_CHUNK];
        loop {
            let wake = match exchange.poll(Instant::now(), inner.cancel_requested.load(Ordering::SeqCst)) {
                Step::Reply(reply) => {
                    connection.transport = match tcp_transport_from_tokio(stream) {
                        Ok(transport) => Some(transport),
                        Err(error) => {
                            tracing::debug!(terminal = %inner.key, %error, "link closed after the reply");
                            None
                        }
                    };
                    return Ok(reply);
                }
                // Cancel and timeout abandon a TCP link: it is closed (dropped) here.
                Step::Failed(failure) => return Err(self.failure(failure)),
                Step::Wait(wake) => wake,
            };
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) => {
                        return exchange.peer_closed().map_err(|failure| self.failure(failure));
                    }
                    Ok(n) => exchange.received(&buf[..n], Instant::now()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.failure(exchange.read_failed(e.to_string()))),
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
                _ = inner.cancel_signal.notified() => {}
            }
        }
    }

    /// The caller stopped waiting before the frame was written: nothing is sent.
    fn caller_gone(&self, request: &Request) -> TerminalError {
        tracing::info!(terminal = %self.inner.key, txn = request.txn_type.spec().name, "the caller stopped waiting; nothing was sent");
        TerminalError::CallerGone
    }

    /// The link failed before anything was written: nothing was sent.
    fn failure_before_write(&self, error: std::io::Error) -> TerminalError {
        self.link_failure(error.to_string(), None, false, false)
    }

    /// The error an exchange ended by a failed read or write gives the caller: the transport's
    /// error may say that the serial device is gone (on Windows, by its code).
    fn io_failure(&self, failure: Failure, error: &std::io::Error) -> TerminalError {
        match failure {
            Failure::LinkBroken { reason, unknown, during_write } => {
                self.link_failure(reason, unknown, during_write, is_serial_port_gone(error))
            }
            other => self.failure(other),
        }
    }

    /// The error an ended exchange gives the caller.
    fn failure(&self, failure: Failure) -> TerminalError {
        match failure {
            Failure::Cancelled { unknown } => TerminalError::Cancelled { unknown },
            Failure::Timeout { timeout, unknown } => {
                TerminalError::Timeout { terminal: self.inner.key.clone(), seconds: timeout.as_secs(), unknown }
            }
            Failure::LinkBroken { reason, unknown, during_write } => {
                self.link_failure(reason, unknown, during_write, false)
            }
        }
    }

    /// After a cancel or a timeout the terminal may still answer later: a TCP link is closed (and
    /// re-opened on the next call); a serial link drops what arrives before the next request.
    fn abandon(&self, connection: &mut Connection) {
        if self.inner.link.is_serial() {
            if let Some(transport) = connection.transport.as_mut() {
                transport.discard_input();
            }
        } else {
            connection.transport = None;
        }
    }
    /// Classifies a broken link: a vanished serial device (the transport said so, `port_gone`, or
    /// the device is not there), a payment in doubt, or a plain error.
    fn link_failure(
        &self,
        reason: String,
        unknown: Option<UnknownOutcome>,
        during_write: bool,
        port_gone: bool,
    ) -> TerminalError {
        let inner = &self.inner;
        tracing::warn!(terminal = %inner.key, %reason, during_write, "link failed");
        if inner.link.is_serial() && (port_gone || !inner.link.device_present()) {
            self.set_state(LinkState::Reconnecting { since: Instant::now() });
            self.emit(TerminalEvent::CableDisconnected);
            self.start_watchdog();
            return TerminalError::CableDisconnected { port: inner.key.clone(), unknown };
        }
        self.set_state(LinkState::Disconnected);
        self.emit(TerminalEvent::Disconnected { reason: reason.clone() });
        match unknown {
            Some(unknown) => TerminalError::OutcomeUnknown { reason, unknown },
            None => TerminalError::Link { reason },
        }
    }

    /// For serial links: a thread that notices a vanished device, waits for it to come back,
    /// re-opens it and re-registers silently (the API reference's "self-healing").
    fn start_watchdog(&self) {
        let inner = &self.inner;
        if !inner.link.is_serial()
            || !inner.config.reconnect_serial
            || inner.watchdog_started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let weak = Arc::downgrade(inner);
        let spawned =
            super::named_thread(format!("nami-serial-watch {}", inner.key)).spawn(move || serial_watchdog(weak));
        if let Err(e) = spawned {
            inner.watchdog_started.store(false, Ordering::SeqCst);
            tracing::error!(error = %e, "could not start the serial watchdog");
        }
    }
}

/// What an exchange sends: the frame and the signing it was built with.
struct Prepared {
    frame: Vec<u8>,
    terminal_id: Option<TerminalId>,
    signature: Option<Signature>,
}

/// Lowers `in_exchange` (and a cancel asked for) when the exchange ends, however it ends.
struct ExchangeRunning<'a>(&'a Inner);

impl Drop for ExchangeRunning<'_> {
    fn drop(&mut self) {
        self.0.in_exchange.store(false, Ordering::SeqCst);
        self.0.cancel_requested.store(false, Ordering::SeqCst);
    }
}

fn emit(inner: &Inner, event: TerminalEvent) {
    tracing::debug!(terminal = %inner.key, ?event, "event");
    let listener = inner.listener.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(listener) = listener {
        // A panicking listener must not take the session down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&inner.key, &event)));
    }
}

/// Lowers a flag when dropped, whatever path the code takes out of its scope.
struct LowerOnDrop<'a>(&'a AtomicBool);

impl Drop for LowerOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn serial_watchdog(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let poll = inner.config.serial_poll;
        let terminal = Terminal { inner };
        terminal.watch_once();
        drop(terminal);
        std::thread::sleep(poll);
    }
}

impl Terminal {
    /// One look of the serial watchdog.
    fn watch_once(&self) {
        let inner = &self.inner;
        let present = inner.link.device_present();
        let state = self.link_state();
        match (state, present) {
            (LinkState::Connected, false) => {
                // Only when idle: a running exchange notices by itself and reports it.
                if let Ok(mut connection) = inner.connection.try_lock() {
                    connection.transport = None;
                    self.set_state(LinkState::Reconnecting { since: Instant::now() });
                    tracing::info!(terminal = %inner.key, "serial device vanished");
                    self.emit(TerminalEvent::CableDisconnected);
                }
            }
            (LinkState::Reconnecting { .. }, true) if inner.wanted.load(Ordering::SeqCst) => {
                // Raised before the lock is taken, so a caller never finds the link held by the
                // re-open without knowing to wait for it.
                // Declared before the guard, so it is lowered after the lock is released.
                inner.background_exchange.store(true, Ordering::SeqCst);
                let _lowered = LowerOnDrop(&inner.background_exchange);
                let Ok(mut connection) = inner.connection.try_lock() else { return };
                self.emit(TerminalEvent::Reconnecting);
                match inner.link.open() {
                    Ok(transport) => {
                        connection.transport = Some(transport);
                        self.set_state(LinkState::Connected);
                        self.emit(TerminalEvent::Connected);
                        self.silent_register(&mut connection);
                    }
                    Err(_) => tracing::debug!(terminal = %inner.key, "device back but not openable yet"),
                }
            }
            (LinkState::Disconnected, false) if inner.wanted.load(Ordering::SeqCst) => {
                self.set_state(LinkState::Reconnecting { since: Instant::now() });
            }
            _ => {}
        }
    }

    /// Re-registers after a serial reconnect so the POS never sees REGISTER_REQUIRED for it. A
    /// failure keeps the previous registration and is retried on the next reconnect.
    fn silent_register(&self, connection: &mut Connection) {
        let Some(registration) = self.registration() else { return };
        let mut request = Request::new(TxnType::Register, TxnDate::now());
        request.cash_register_no = Some(registration.cash_register_no.clone());
        match self.exchange(connection, &request, &|| true) {
            Ok(result) if result.approved => {
                tracing::info!(terminal = %self.inner.key, "re-registered after reconnect")
            }
            Ok(result) => {
                tracing::warn!(terminal = %self.inner.key, code = %result.response_code, "silent re-register declined")
            }
            Err(error) => {
                // Keep the cached registration (the API reference's caveat).
                self.restore_registration(Some(registration));
                tracing::warn!(terminal = %self.inner.key, %error, "silent re-register failed")
            }
        }
    }
}
