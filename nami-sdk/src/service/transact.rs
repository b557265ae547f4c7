//! One transaction, typed: [`Shared::perform`] takes a target and a [`PaymentRequest`] and
//! gives back a [`Transaction`] — what was sent and how the terminal answered, or why nothing
//! was sent — with no JSON in it; `messages.rs` writes it as the REST body.
//!
//! The steps: validation (`PaymentRequest::to_request`), the journal's idempotency decision
//! (written as pending *before* the frame is sent), one exchange (`Terminal::transact_for`, or
//! `transact_async_for` on tokio), the outcome written back, the keymap kept in step. On tokio
//! (`perform_tcp_async`) the journal's writes are awaited and nothing holds a thread while a
//! commit or the terminal is waited for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::{TcpTarget, TcpTransactionRequest};
use super::config::CallOptions;
use super::journal::{self, Begin, EntryState, JournalEntry, JournalError, NewEntry, Outcome};
use super::shared::Shared;
use super::targets::{COM_KEY, Target};
use crate::error::ValidationError;
use crate::payment_request::{PaymentContext, PaymentRequest};
use crate::protocol::field::Field;
use crate::protocol::request::Request;
use crate::protocol::response::{ParsedFields, Response, mask_pan};
use crate::protocol::txn_type::{TxnKind, TxnType};
use crate::protocol::values::{EcrReference, Rrn};
use crate::session::error::TerminalError;
use crate::session::terminal::{LinkState, Terminal, TxnResult};
use crate::status::StatusCode;

/// What became of a transaction, and for a TCP terminal its link afterwards.
pub(crate) struct Transaction {
    pub(crate) performed: Performed,
    /// TCP only: the terminal and its link's state after the call.
    pub(crate) link: Option<(TcpTarget, LinkState)>,
}

pub(crate) enum Performed {
    /// Passed validation and the journal, and went to the session: the terminal's answer, or
    /// why the exchange failed (which may leave an unknown outcome).
    Exchanged(Box<Exchanged>),
    /// Answered without sending anything.
    Refused(Box<Refusal>),
    /// The service failed internally (a panic on tokio's blocking pool); a journaled request
    /// left pending becomes unknown.
    Internal,
}

/// A request that went to the session, and how that ended.
pub(crate) struct Exchanged {
    pub(crate) ready: Ready,
    pub(crate) result: Result<TxnResult, TerminalError>,
}

/// Why nothing was sent.
pub(crate) enum Refusal {
    /// `/performTransactionCOM` without a COM connection.
    NoComConnection { ecr_reference_no: Option<String> },
    /// Bad input (a field, or the idempotency key).
    Invalid { error: ValidationError, ecr_reference_no: Option<String> },
    /// The same request is in flight on `terminal`.
    InFlight { terminal: String, row: JournalEntry },
    /// The same request has a final result within the idempotency window: that result again.
    Replay { row: JournalEntry, json: bool },
    /// The same request's outcome is unknown (recovery was woken).
    Unknown(JournalEntry),
    /// Another request with this ECR reference is in doubt on `terminal` (recovery was woken).
    InDoubt { terminal: String, row: JournalEntry },
    /// The idempotency key was used for another request.
    KeyReused(JournalEntry),
    /// The journal could not record the request.
    JournalFailed { error: JournalError, ecr_reference: EcrReference },
}

/// A transaction that passed validation and the journal's decision, ready to be sent.
pub(crate) struct Ready {
    pub(crate) request: Request,
    /// Its journal row (financial requests and settlements).
    row: Option<i64>,
    /// Whether the answer carries the parsed reply (`jsonResponse`).
    pub(crate) json: bool,
    pub(crate) journaled: bool,
    /// For DUPLICATE: the reference it repeats and where that came from (`duplicateOf`,
    /// `duplicateOfSource`).
    pub(crate) duplicate_of: Option<String>,
    pub(crate) duplicate_source: &'static str,
}

impl Performed {
    /// Whether the terminal answered this request, now or (a replay) before: `statusCode` 200.
    fn terminal_answered(&self) -> bool {
        match self {
            Performed::Exchanged(exchanged) => exchanged.result.is_ok(),
            Performed::Refused(refusal) => match refusal.as_ref() {
                Refusal::Replay { row, .. } => row.status_code.as_deref().is_none_or(|c| c == "200"),
                _ => false,
            },
            Performed::Internal => false,
        }
    }
}

impl Transaction {
    fn internal() -> Self {
        Transaction { performed: Performed::Internal, link: None }
    }
}

/// A pending journal row that becomes `unknown` if the exchange never reports back (a panic, or
/// the tokio task of a call dropped while the terminal worked).
struct PendingRow {
    shared: Arc<Shared>,
    id: Option<i64>,
}

impl PendingRow {
    fn finish(mut self, outcome: &Outcome) {
        if let Some(id) = self.id.take() {
            finish_failed(id, self.shared.journal.finish(id, outcome));
        }
    }

    /// [`PendingRow::finish`] on tokio: the wait for the commit holds no thread.
    async fn finish_async(mut self, outcome: &Outcome) {
        if let Some(id) = self.id.take() {
            finish_failed(id, self.shared.journal.finish_async(id, outcome).await);
        }
    }
}

fn finish_failed(id: i64, result: Result<(), rusqlite::Error>) {
    if let Err(e) = result {
        tracing::error!(id, error = %e, "journal update failed; the row stays pending and becomes unknown at the next start");
    }
}

impl Drop for PendingRow {
    /// Not waited for: a tokio task may be dropped on a worker thread.
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let outcome = Outcome {
                state: Some(EntryState::Unknown),
                status_code: StatusCode::OutcomeUnknown.into(),
                message: "the exchange was interrupted by an internal error".into(),
                ..Outcome::default()
            };
            self.shared.journal.finish_unwaited(id, &outcome);
        }
    }
}

impl Shared {
    /// One transaction by the blocking driver: validation, the journal's idempotency decision,
    /// one exchange, the outcome written back.
    pub(crate) fn perform(
        self: &Arc<Self>,
        target: &Target,
        body: &PaymentRequest,
        options: &CallOptions,
    ) -> Transaction {
        let (key, terminal, device, settling) = match target {
            Target::Tcp(t) => (t.key(), self.tcp_terminal(t), None, None),
            Target::Com => match self.com_connection() {
                Some(c) => (COM_KEY.to_owned(), c.terminal, Some(c.device), Some(c.settling)),
                None => {
                    let refusal = Refusal::NoComConnection { ecr_reference_no: body.ecr_reference_no.clone() };
                    return Transaction { performed: Performed::Refused(Box::new(refusal)), link: None };
                }
            },
        };
        let performed = self.transact(&key, &terminal, device, settling, body, options);
        match target {
            Target::Tcp(t) => self.with_link(t, &terminal, performed),
            Target::Com => Transaction { performed, link: None },
        }
    }

    /// A TCP transaction with its link's state; a link that works is remembered.
    fn with_link(&self, target: &TcpTarget, terminal: &Terminal, performed: Performed) -> Transaction {
        let state = terminal.link_state();
        if state == LinkState::Connected || performed.terminal_answered() {
            self.remember_tcp(target);
        }
        Transaction { performed, link: Some((target.clone(), state)) }
    }

    /// [`Shared::perform`] of a TCP transaction on tokio: the same three steps as
    /// [`Shared::transact`], with no thread held while the journal commits or the terminal works.
    /// Validation runs on the task; when it needs the journal's reads (a DUPLICATE's default, a
    /// REFUND's original), it runs on tokio's blocking pool. The journal's writes are awaited.
    /// The state file is written (on the blocking pool) only when a link or a registration is new.
    pub(crate) async fn perform_tcp_async(
        self: &Arc<Self>,
        request: Box<TcpTransactionRequest>,
        options: CallOptions,
    ) -> Transaction {
        let target = request.tcpipcom_data.clone();
        let terminal = self.tcp_terminal(&target);
        let key = target.key();
        // Boxed: what validation and the journal's decision keep is not held while the terminal
        // works (a waiting call's future stays small).
        let ready = match Box::pin(self.ready_to_send_async(&key, &target, &terminal, request, &options)).await {
            Ok(ready) => ready,
            Err(transaction) => return transaction,
        };
        let pending = PendingRow { shared: self.clone(), id: ready.row };
        let still_waiting = move || options.caller_waits();
        let result = match self.refused_locally(&key, &terminal, &ready.request) {
            Some(refusal) => Err(refusal),
            None => terminal.transact_async_for(&ready.request, &still_waiting).await,
        };
        Box::pin(pending.finish_async(&exchange_outcome(&result))).await;
        // The keymap's file is written only when the registration changed; a DUPLICATE's answer
        // may settle an unknown outcome (reads and a write of the journal): both on the blocking
        // pool.
        let exchanged = if ready.request.txn_type == TxnType::Duplicate || !self.registration_in_step(&key, &terminal) {
            let (shared, answered_terminal, answered_key) = (self.clone(), terminal.clone(), key.clone());
            match tokio::task::spawn_blocking(move || {
                shared.after_exchange(&answered_key, &answered_terminal, ready, result)
            })
            .await
            {
                Ok(exchanged) => exchanged,
                Err(_) => return Transaction::internal(),
            }
        } else {
            Exchanged { ready, result }
        };
        Box::pin(self.with_link_async(target, terminal, Performed::Exchanged(Box::new(exchanged)))).await
    }

    /// [`Shared::transact`]'s validation and journal decision on tokio: validation on the task (on the blocking pool when it
    /// reads the journal), the journal's decision awaited; a refusal comes with the link's state.
    async fn ready_to_send_async(
        self: &Arc<Self>,
        key: &str,
        target: &TcpTarget,
        terminal: &Terminal,
        request: Box<TcpTransactionRequest>,
        options: &CallOptions,
    ) -> Result<Ready, Transaction> {
        let prepared = match self.prepare(key, terminal, None, &request.payment_request, options, false) {
            Ok(Some(prepared)) => Ok(prepared),
            Ok(None) => {
                let (shared, checked_terminal, checked_key, checked_options) =
                    (self.clone(), terminal.clone(), key.to_owned(), options.clone());
                let prepared = tokio::task::spawn_blocking(move || {
                    shared.prepare(
                        &checked_key,
                        &checked_terminal,
                        None,
                        &request.payment_request,
                        &checked_options,
                        true,
                    )
                })
                .await;
                match prepared {
                    Ok(Ok(Some(prepared))) => Ok(prepared),
                    Ok(Err(refusal)) => Err(refusal),
                    Ok(Ok(None)) | Err(_) => return Err(Transaction::internal()),
                }
            }
            Err(refusal) => Err(refusal),
        };
        let refusal = match prepared {
            Ok((ready, None)) => return Ok(ready),
            Ok((mut ready, Some(new))) => match self.begin_async(key, &new, ready.json).await {
                Ok(id) => {
                    ready.row = Some(id);
                    return Ok(ready);
                }
                Err(refusal) => refusal,
            },
            Err(refusal) => refusal,
        };
        Err(self.with_link_async(target.clone(), terminal.clone(), Performed::Refused(refusal)).await)
    }

    /// [`Shared::with_link`] on tokio: on the blocking pool only when the link is to be saved.
    async fn with_link_async(
        self: &Arc<Self>,
        target: TcpTarget,
        terminal: Terminal,
        performed: Performed,
    ) -> Transaction {
        if self.tcp_remembered(&target) {
            return self.with_link(&target, &terminal, performed);
        }
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.with_link(&target, &terminal, performed))
            .await
            .unwrap_or_else(|_| Transaction::internal())
    }

    /// Validation: the request to send and, when it is to be journaled, its journal row (not yet
    /// written); or why nothing is sent. Without `may_read` it reads nothing from the journal and
    /// answers `None` where it would have to (a DUPLICATE's default, a REFUND's original RRN).
    fn prepare(
        self: &Arc<Self>,
        key: &str,
        terminal: &Terminal,
        device: Option<String>,
        body: &PaymentRequest,
        options: &CallOptions,
        may_read: bool,
    ) -> Result<Option<(Ready, Option<NewEntry>)>, Box<Refusal>> {
        let json = body.json_response.unwrap_or(false);
        // DUPLICATE's default (the last financial request) costs a journal query: only asked for
        // when the request is a type with that field and does not name it itself.
        let needs_last_reference = body.prev_ecr_no.as_deref().is_none_or(|t| t.trim().is_empty())
            && body.txn_type().is_ok_and(|t| {
                let spec = t.spec();
                spec.wire_fields.contains(&Field::PreviousEcrNo) || spec.input_fields.contains(&Field::PreviousEcrNo)
            });
        if needs_last_reference && !may_read {
            return Ok(None);
        }
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
        let read_refused = std::cell::Cell::new(false);
        let find_rrn = |code: &crate::protocol::values::ApprovalCode,
                        date: Option<&crate::protocol::values::OriginalDate>| {
            if !may_read {
                read_refused.set(true);
                return None;
            }
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
        if read_refused.get() {
            return Ok(None);
        }
        let (request, idempotency_key) = match request {
            Ok(request) => request,
            Err(error) => {
                return Err(Box::new(Refusal::Invalid { error, ecr_reference_no: body.ecr_reference_no.clone() }));
            }
        };
        let duplicate_of = match (duplicate_source, &context.last_ecr_reference) {
            ("prevEcrNo", _) | (_, None) => body.prev_ecr_no.as_deref().map(|t| t.trim().to_owned()),
            (_, Some(reference)) => Some(reference.to_string()),
        };
        let spec = request.txn_type.spec();
        let journaled = matches!(spec.kind, TxnKind::Financial | TxnKind::Settlement);
        let new = match (&request.ecr_reference, journaled) {
            (Some(reference), true) => Some(NewEntry {
                terminal: key.to_owned(),
                device,
                terminal_id: terminal.registration().map(|r| r.terminal_id.to_string()),
                txn_type: request.txn_type,
                ecr_reference: reference.clone(),
                amount: request.amount,
                date: request.date.as_str().to_owned(),
                input_req_data: Some(request.to_input_req_data()),
                request_key: journal::request_key(&request, body.date.as_deref().is_some_and(|d| !d.trim().is_empty())),
                idempotency_key,
            }),
            _ => None,
        };
        Ok(Some((Ready { request, row: None, json, journaled, duplicate_of, duplicate_source }, new)))
    }

    /// The journal's decision on a request to be journaled: its row, written as pending; or,
    /// when the same request is in flight, answered, in doubt or unknown, or the journal failed,
    /// why nothing is sent.
    fn begin(&self, key: &str, new: &NewEntry, json: bool) -> Result<i64, Box<Refusal>> {
        let decided = self.decided(key, new, json, self.journal.begin(new, self.config.idempotency_window));
        if let Some(id) = replayed(&decided) {
            replay_noted(self.journal.note_replay(id));
        }
        decided
    }

    /// [`Shared::begin`] on tokio: the commit is awaited.
    async fn begin_async(&self, key: &str, new: &NewEntry, json: bool) -> Result<i64, Box<Refusal>> {
        let begun = self.journal.begin_async(new, self.config.idempotency_window).await;
        let decided = self.decided(key, new, json, begun);
        if let Some(id) = replayed(&decided) {
            replay_noted(self.journal.note_replay_async(id).await);
        }
        decided
    }

    /// What the journal's answer to a begin means for the request.
    fn decided(
        &self,
        key: &str,
        new: &NewEntry,
        json: bool,
        begun: rusqlite::Result<Begin>,
    ) -> Result<i64, Box<Refusal>> {
        let refusal = match begun {
            Ok(Begin::Started(id)) => return Ok(id),
            Ok(Begin::InFlight(row)) => Refusal::InFlight { terminal: key.to_owned(), row },
            Ok(Begin::Final(row)) => {
                tracing::info!(terminal = key, ecr = %row.ecr_reference_no, "replayed a stored result; nothing sent");
                Refusal::Replay { row, json }
            }
            Ok(Begin::Unknown(row)) => {
                self.kick_recovery();
                Refusal::Unknown(row)
            }
            Ok(Begin::InDoubt(row)) => {
                self.kick_recovery();
                Refusal::InDoubt { terminal: key.to_owned(), row }
            }
            Ok(Begin::KeyReused(row)) => Refusal::KeyReused(row),
            Err(e) => {
                self.warn(format!("journal write failed: {e}"));
                Refusal::JournalFailed { error: JournalError::new(e), ecr_reference: new.ecr_reference.clone() }
            }
        };
        Err(Box::new(refusal))
    }

    /// One transaction by the blocking driver: the journal's decision, then the exchange.
    fn transact(
        self: &Arc<Self>,
        key: &str,
        terminal: &Terminal,
        device: Option<String>,
        settling: Option<Arc<Mutex<()>>>,
        body: &PaymentRequest,
        options: &CallOptions,
    ) -> Performed {
        let ready = match self.prepare(key, terminal, device, body, options, true).and_then(|prepared| {
            let Some((mut ready, new)) = prepared else { unreachable!("prepare with reads allowed always decides") };
            if let Some(new) = new {
                ready.row = Some(self.begin(key, &new, ready.json)?);
            }
            Ok(ready)
        }) {
            Ok(ready) => ready,
            Err(refusal) => return Performed::Refused(refusal),
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
        Performed::Exchanged(Box::new(self.answered(key, terminal, ready, pending, result)))
    }

    /// A signed request to a terminal never registered is refused before anything is sent (D8).
    fn refused_locally(&self, key: &str, terminal: &Terminal, request: &Request) -> Option<TerminalError> {
        (request.txn_type.spec().is_signed() && terminal.registration().is_none())
            .then(|| TerminalError::RegisterRequired { terminal: key.to_owned() })
    }

    /// The outcome of a sent (or locally refused) request, written to the journal; then
    /// [`Shared::after_exchange`].
    fn answered(
        &self,
        key: &str,
        terminal: &Terminal,
        ready: Ready,
        pending: PendingRow,
        result: Result<TxnResult, TerminalError>,
    ) -> Exchanged {
        pending.finish(&exchange_outcome(&result));
        self.after_exchange(key, terminal, ready, result)
    }

    /// After the outcome is written: the keymap in step with the session; a DUPLICATE's answer
    /// settles the unknown outcome it repeats.
    fn after_exchange(
        &self,
        key: &str,
        terminal: &Terminal,
        ready: Ready,
        result: Result<TxnResult, TerminalError>,
    ) -> Exchanged {
        self.sync_registration(key, terminal);
        if let Ok(result) = &result
            && ready.request.txn_type == TxnType::Duplicate
        {
            self.resolve_from_duplicate(key, &ready.request, result);
        }
        Exchanged { ready, result }
    }
}

/// The row whose stored result a decision replays (its replay count goes up).
fn replayed(decided: &Result<i64, Box<Refusal>>) -> Option<i64> {
    match decided {
        Err(refusal) => match refusal.as_ref() {
            Refusal::Replay { row, .. } => Some(row.id),
            _ => None,
        },
        Ok(_) => None,
    }
}

fn replay_noted(result: Result<(), rusqlite::Error>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "replay count not updated");
    }
}

/// The journal outcome of an exchange: the terminal's answer, or how it failed (`unknown` when
/// the request may have been processed, else `error`).
fn exchange_outcome(result: &Result<TxnResult, TerminalError>) -> Outcome {
    match result {
        Ok(result) => answered_outcome(result),
        Err(e) => Outcome {
            state: Some(if e.unknown_outcome().is_some() { EntryState::Unknown } else { EntryState::Error }),
            status_code: e.status_code().into(),
            message: e.message(),
            ..Outcome::default()
        },
    }
}

/// The journal outcome of an exchange the terminal answered.
fn answered_outcome(result: &TxnResult) -> Outcome {
    let mut outcome = reply_outcome(&result.response, &result.parsed(), result.approved, &result.message);
    outcome.response_code = Some(result.response_code.clone());
    outcome.terminal_id = result.terminal_id.as_ref().map(|t| t.to_string());
    outcome
}

/// The journal outcome of a terminal's reply (an exchange's, or the one a DUPLICATE repeated):
/// approved or declined, the reply and card number masked, its RRN and approval code.
pub(crate) fn reply_outcome(reply: &Response, parsed: &ParsedFields, approved: bool, message: &str) -> Outcome {
    let get = |name: &str| parsed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    Outcome {
        state: Some(if approved { EntryState::Approved } else { EntryState::Declined }),
        status_code: "200".into(),
        response_code: Some(reply.code().to_owned()),
        message: message.to_owned(),
        reply: Some(super::api::masked_fields(reply)),
        rrn: get("rrn"),
        approval_code: get("approvalCode"),
        card_number: get("pan").map(|p| mask_pan(&p)),
        terminal_id: None,
        resolved_by: None,
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
fn idempotency_key(option: Option<&str>, body: Option<&str>) -> Result<Option<String>, ValidationError> {
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
