//! The transaction journal: every financial request is written, durably, before its frame is
//! sent, and updated with its outcome. It is what makes a retry safe (the same request is
//! answered from it, see [`request_key`]) and what recovery works from after a crash.
//!
//! Row life: `pending` (written before sending) → `approved` | `declined` (the terminal answered)
//! | `error` (it surely did not process the request: nothing sent, or it refused it) | `unknown`
//! (it may have: the link broke after sending, the call was cancelled or timed out, the process
//! died). Recovery turns `unknown` into `approved` / `declined`, or `not_found` when the terminal
//! has no record of it. `error` and `not_found` are the only states after which the same ECR
//! reference may be sent again.
//!
//! Writes go through one writer thread (`nami-journal`) that group-commits them: it takes every
//! write queued while the previous commit ran, applies them in one transaction with one fsync,
//! and answers each caller once its own write is committed. So a row is still on disk before its
//! frame is sent, and a waiting write costs its caller no thread: a tokio task awaits its answer
//! (`begin_async`, `finish_async`), a blocking caller (the COM path, the C ABI, recovery) waits on
//! a channel. One commit can take hundreds of terminals' writes. If a write of a group fails, the
//! group is rolled back and each write is applied on its own, so one bad write fails only itself.
//! Reads use a connection of their own and do not wait for a commit's fsync (WAL).
//!
//! Closing (or dropping) the journal commits every write already queued; a write after that
//! fails at once.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;

use super::db::{self, StoreError, now_text};
use crate::protocol::request::Request;
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::{Amount, CashRegisterNo, EcrReference};

/// The journal could not be read or written. It says what SQLite said; SQLite's error is kept as
/// its source.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct JournalError {
    source: rusqlite::Error,
}

impl JournalError {
    pub(crate) fn new(source: rusqlite::Error) -> Self {
        JournalError { source }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal TEXT NOT NULL,
    device TEXT,
    terminal_id TEXT,
    txn_type INTEGER NOT NULL,
    txn_name TEXT NOT NULL,
    ecr_reference TEXT NOT NULL,
    amount_halalas INTEGER,
    txn_date TEXT NOT NULL,
    input_req_data TEXT,
    requested_at TEXT NOT NULL,
    state TEXT NOT NULL,
    status_code TEXT,
    response_code TEXT,
    message TEXT,
    reply TEXT,
    rrn TEXT,
    approval_code TEXT,
    card_number TEXT,
    resolved_by TEXT,
    updated_at TEXT NOT NULL,
    replay_count INTEGER NOT NULL DEFAULT 0,
    recovery_attempts INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS journal_by_reference;
-- A terminal's rows newest first: its last reference, its refund lookups, `?terminal=`.
CREATE INDEX IF NOT EXISTS journal_by_terminal ON journal (terminal, id);
CREATE INDEX IF NOT EXISTS journal_by_time ON journal (requested_at);
CREATE INDEX IF NOT EXISTS journal_by_state ON journal (state);
-- The unknown outcomes of a terminal: a few rows, looked up on every DUPLICATE the POS sends.
CREATE INDEX IF NOT EXISTS journal_unknown_by_terminal ON journal (terminal, id) WHERE state = 'unknown';
CREATE TABLE IF NOT EXISTS ecr_sequence (
    cash_register_no TEXT PRIMARY KEY,
    counter INTEGER NOT NULL
);
";

/// The journal's schema changes, in order: migration `n` (from 1) brings a file from
/// `PRAGMA user_version` n-1 to n. A journal written before versioning is version 0 (the table
/// of [`SCHEMA`]). Never edit a migration that has shipped: add the next one.
const MIGRATIONS: &[&str] = &[
    // 1: the replay key is the whole request, not its ECR reference (a POS may send a static
    // reference, as the seeds allow); an explicit idempotency key when the POS sends one. Rows
    // written before carry their request as `inputReqData`, the date as it was sent.
    "ALTER TABLE journal ADD COLUMN request_key TEXT;
     ALTER TABLE journal ADD COLUMN idempotency_key TEXT;
     UPDATE journal SET request_key = txn_type || '|' || COALESCE(input_req_data, '');
     -- By ECR reference first: the replay lookup (reference, terminal, request) and the check that
     -- a generated reference is unused (reference alone) are both searches, not scans.
     DROP INDEX IF EXISTS journal_by_ecr_reference;
     CREATE INDEX journal_by_request ON journal (ecr_reference, terminal, request_key);
     CREATE INDEX journal_by_idempotency_key ON journal (idempotency_key) WHERE idempotency_key IS NOT NULL;
     -- The requests of a reference still in flight or in doubt: a few rows, even when a POS sends
     -- one static reference for every sale.
     CREATE INDEX journal_open_by_reference ON journal (ecr_reference, terminal)
         WHERE state IN ('pending', 'unknown');",
];

/// Where a journaled request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EntryState {
    /// Written; being sent, or the terminal is working on it.
    Pending,
    Approved,
    Declined,
    /// Surely not processed (nothing sent, or refused).
    Error,
    /// May have been processed; recovery asks the terminal with DUPLICATE.
    Unknown,
    /// The terminal has no record of it: never processed.
    NotFound,
}

impl EntryState {
    /// Every state, in the order the REST API lists them.
    pub const ALL: [EntryState; 6] = [
        EntryState::Pending,
        EntryState::Approved,
        EntryState::Declined,
        EntryState::Error,
        EntryState::Unknown,
        EntryState::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Approved => "approved",
            EntryState::Declined => "declined",
            EntryState::Error => "error",
            EntryState::Unknown => "unknown",
            EntryState::NotFound => "not_found",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// Whether the terminal gave a result that a retry must get back instead of a new charge.
    pub fn is_final(self) -> bool {
        matches!(self, EntryState::Approved | EntryState::Declined)
    }

    /// Whether the row's request is over, one way or the other (not in flight, not in doubt).
    pub fn is_settled(self) -> bool {
        !matches!(self, EntryState::Pending | EntryState::Unknown)
    }
}

/// One journal entry. Card numbers are masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalEntry {
    pub id: i64,
    /// `ip:port`, or `COM`.
    pub terminal: String,
    /// The serial device, for COM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The terminal ID the request was signed with.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub terminal_id: Option<String>,
    /// The REST enum name, e.g. `PURCHASE`.
    pub txn_type: String,
    /// The numeric type, e.g. 0.
    pub txn_type_code: u8,
    pub ecr_reference_no: String,
    /// Decimal SAR, e.g. `10.00`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub amount: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub amount_halalas: Option<u64>,
    /// The request's `date` (ddMMyyHHmmss, terminal time).
    pub date: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub input_req_data: Option<String>,
    /// When the entry was written, before the request was sent (RFC 3339, UTC).
    pub requested_at: String,
    pub state: EntryState,
    /// The middleware status code of the outcome (`200` when the terminal answered).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub status_code: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub response_code: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<String>,
    /// The terminal's reply, `;`-joined, card number masked.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reply: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub rrn: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub approval_code: Option<String>,
    /// Masked card number.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub card_number: Option<String>,
    /// ECR reference of the DUPLICATE that resolved an unknown outcome.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub resolved_by: Option<String>,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// How often a retry got this entry's result back instead of a new charge.
    pub replay_count: u32,
    pub recovery_attempts: u32,
    /// Present (true) when the outcome is unknown and recovery has asked about it
    /// `recovery_attention_after` times without an answer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub needs_attention: bool,
    /// The POS's `Idempotency-Key` (or body `idempotencyKey`), when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// What makes two requests the same one (see `journal::request_key`, crate-private).
    #[serde(skip)]
    pub request_key: Option<String>,
    #[serde(skip)]
    pub reply_fields: Option<Vec<String>>,
}

impl JournalEntry {
    pub fn txn(&self) -> Option<TxnType> {
        TxnType::from_code(self.txn_type_code).ok()
    }

    pub fn ecr_reference(&self) -> Option<EcrReference> {
        EcrReference::parse(&self.ecr_reference_no).ok()
    }
}

/// A request about to be sent.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub terminal: String,
    pub device: Option<String>,
    pub terminal_id: Option<String>,
    pub txn_type: TxnType,
    pub ecr_reference: EcrReference,
    pub amount: Option<Amount>,
    pub date: String,
    pub input_req_data: Option<String>,
    /// What makes a later request the same one again ([`request_key`]).
    pub request_key: String,
    /// The POS's own key: when given, the only thing a later request is matched by.
    pub idempotency_key: Option<String>,
}

/// What makes two requests the same request, so that the second is answered from the journal
/// instead of being sent: the transaction type and every field of Nami's `inputReqData` (every
/// amount, the date, the ECR reference, the RRN, the original date and approval code, the flags),
/// with the date as the POS sent it (empty when it sent none and the service dated the request).
/// A request that differs in any of them is a new transaction, even with the same ECR reference:
/// the seeds allow a static reference.
pub fn request_key(request: &Request, date_given: bool) -> String {
    let data = request.to_input_req_data();
    // The date is the first field of every type's inputReqData.
    let data = if date_given { data } else { data.replacen(request.date.as_str(), "", 1) };
    format!("{}|{data}", request.txn_type.code())
}

/// What the journal says about a request before it is sent.
#[derive(Debug, Clone)]
pub enum Begin {
    /// Written as pending (row id): send it.
    Started(i64),
    /// The same ECR reference is being processed right now.
    InFlight(JournalEntry),
    /// It already has a result: give that back, send nothing.
    Final(JournalEntry),
    /// Its outcome is unknown: send nothing until recovery knows.
    Unknown(JournalEntry),
    /// Another request with this ECR reference is in doubt on this terminal: nothing new with
    /// that reference is sent until recovery settles it.
    InDoubt(JournalEntry),
    /// The idempotency key was used for another request (another terminal or other fields).
    KeyReused(JournalEntry),
}

/// How an exchange ended, for the row.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub state: Option<EntryState>,
    pub status_code: String,
    pub response_code: Option<String>,
    pub message: String,
    pub reply: Option<Vec<String>>,
    pub rrn: Option<String>,
    pub approval_code: Option<String>,
    pub card_number: Option<String>,
    pub terminal_id: Option<String>,
    pub resolved_by: Option<String>,
}

/// Filters of `GET /transactions`.
#[derive(Debug, Clone, Default)]
pub struct JournalFilter {
    pub terminal: Option<String>,
    pub ecr_reference: Option<String>,
    /// RFC 3339 UTC bounds on `requestedAt` (inclusive from, exclusive to).
    pub from: Option<String>,
    pub to: Option<String>,
    pub state: Option<EntryState>,
    /// Only the unknown outcomes that need attention (`state=attention`).
    pub needs_attention: bool,
    pub limit: Option<u32>,
}

pub struct Journal {
    /// The reads' connection (`query_only`): WAL lets it read while the writer commits, so a read
    /// never waits for a commit's fsync, and it sees every commit that completed before it began
    /// (a caller's own write included, since the caller is answered after its commit).
    reader: Mutex<Connection>,
    /// The queue to the writer thread; `None` once closed (a write then fails at once).
    writes: RwLock<Option<mpsc::Sender<Queued>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    #[cfg_attr(not(test), allow(dead_code))]
    stats: Arc<WriteStats>,
}

/// The writer thread's name.
const WRITER_THREAD: &str = "nami-journal";

/// At most this many writes go into one commit (one transaction): a backlog larger than this is
/// committed in several, so that no caller waits for an unbounded transaction.
const MOST_WRITES_PER_COMMIT: usize = 4096;

/// What the writer has committed: how many commits, how many writes, and the largest batch (the
/// tests read it; the daemon's tests read the size of each commit from its debug log).
#[derive(Debug, Default)]
struct WriteStats {
    commits: AtomicU64,
    writes: AtomicU64,
    largest_batch: AtomicUsize,
}

/// A snapshot of [`Journal::write_stats`].
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalWriteStats {
    /// Group commits (one transaction each; a batch applied write by write counts once).
    pub commits: u64,
    pub writes: u64,
    /// The most writes one commit took.
    pub largest_batch: usize,
}

/// A write waiting in the queue, and where its result goes.
struct Queued {
    write: Write,
    reply: Reply,
}

/// A blocking caller waits on a channel of the standard library (so it may also wait inside a
/// tokio context, as the old condition variable did); a tokio caller awaits a oneshot and holds
/// no thread; a write nobody waits for (a pending row marked unknown on drop) has no reply.
enum Reply {
    Blocking(mpsc::SyncSender<rusqlite::Result<Written>>),
    Async(tokio::sync::oneshot::Sender<rusqlite::Result<Written>>),
    Unwaited,
}

impl Reply {
    fn send(self, result: rusqlite::Result<Written>) {
        let _ = match self {
            Reply::Blocking(sender) => sender.send(result).map_err(drop),
            Reply::Async(sender) => sender.send(result).map_err(drop),
            Reply::Unwaited => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "a journal write nobody waited for failed");
                }
                Ok(())
            }
        };
    }
}

enum Write {
    Begin(NewEntry, Duration),
    Finish(i64, Outcome),
    MarkInterrupted,
    NoteReplay(i64),
    NoteRecoveryAttempt(i64),
    NextReference(CashRegisterNo),
    /// Fails on purpose (tests: one bad write in a group).
    #[cfg(test)]
    Fail,
    /// Holds the writer until its sender sends or is dropped (tests: what queues meanwhile goes
    /// into the next commit, whatever the speed of the machine's fsync).
    #[cfg(test)]
    Hold(mpsc::Receiver<()>),
}

enum Written {
    Begin(Box<Begin>),
    Count(usize),
    Reference(Option<EcrReference>),
}

/// The journal was closed (the service is shutting down): nothing more is written.
fn closed_error() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some("the journal is closed (the service is shutting down); nothing was written".into()),
    )
}

/// The same error again, for every caller of a batch whose commit failed.
fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(e, message) => rusqlite::Error::SqliteFailure(*e, message.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("journal commit failed: {other}")),
        ),
    }
}

/// SQLite's page cache for the journal (see `db::SQLITE_HEAP_LIMIT`): the B-trees' upper levels
/// and the recent rows, which is what requests touch; older pages are read again from the
/// operating system's cache.
const JOURNAL_CACHE_KIB: u32 = 1536;

// The lookups made for every request or on a path a POS uses daily: each is a search of an index
// (a test reads their query plans), so their cost does not grow with the journal.
const LAST_REFERENCE: &str =
    "SELECT ecr_reference FROM journal WHERE terminal = ?1 AND txn_type != ?2 ORDER BY id DESC LIMIT 1";
const FIND_RRN: &str = "SELECT rrn FROM journal WHERE terminal = ?1 AND approval_code = ?2 AND state = 'approved' \
                 AND rrn IS NOT NULL AND rrn != '' AND (?3 IS NULL OR substr(txn_date, 1, 6) = ?3) \
                 ORDER BY id DESC LIMIT 1";
const SAME_REQUEST: &str = "FROM journal WHERE ecr_reference = ?2 AND terminal = ?1 AND request_key = ?3 \
                            ORDER BY id DESC LIMIT 1";
const SAME_KEY: &str = "FROM journal WHERE idempotency_key = ?1 ORDER BY id DESC LIMIT 1";
// The same condition as the partial index's, word for word: SQLite uses it only then.
const OPEN_FOR_REFERENCE: &str = "FROM journal WHERE ecr_reference = ?2 AND terminal = ?1 \
                                  AND state IN ('pending', 'unknown') ORDER BY id DESC LIMIT 1";
const REFERENCE_USED: &str = "SELECT EXISTS (SELECT 1 FROM journal WHERE ecr_reference = ?1)";
const REFERENCE_KNOWN: &str = "SELECT EXISTS (SELECT 1 FROM journal WHERE ecr_reference = ?2 AND terminal = ?1)";
// Not one query over every unknown outcome per call: under faults the backlog holds hundreds,
// and reading all of them for each DUPLICATE was the daemon's largest source of allocations
// (RELIABILITY.md, the soak).
const UNKNOWN_PAGE: &str = "FROM journal WHERE state = 'unknown' AND id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3";
// Named: without statistics SQLite would take the index on state and read every unknown row.
const UNKNOWN_OF_TERMINAL: &str =
    "FROM journal INDEXED BY journal_unknown_by_terminal WHERE state = 'unknown' AND terminal = ?1 ORDER BY id";

const COLUMNS: &str = "id, terminal, device, terminal_id, txn_type, txn_name, ecr_reference, amount_halalas, txn_date, \
     input_req_data, requested_at, state, status_code, response_code, message, reply, rrn, approval_code, card_number, \
     resolved_by, updated_at, replay_count, recovery_attempts, idempotency_key, request_key";

fn entry(row: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    let code: u8 = row.get(4)?;
    let amount_halalas: Option<i64> = row.get(7)?;
    let amount_halalas = amount_halalas.and_then(|a| u64::try_from(a).ok());
    let reply: Option<String> = row.get(15)?;
    let reply_fields: Option<Vec<String>> = reply.as_deref().and_then(|r| serde_json::from_str(r).ok());
    let state: String = row.get(11)?;
    Ok(JournalEntry {
        id: row.get(0)?,
        terminal: row.get(1)?,
        device: row.get(2)?,
        terminal_id: row.get(3)?,
        txn_type_code: code,
        txn_type: row.get(5)?,
        ecr_reference_no: row.get(6)?,
        amount: amount_halalas.and_then(|h| Amount::from_halalas(h).ok()).map(|a| a.to_string()),
        amount_halalas,
        date: row.get(8)?,
        input_req_data: row.get(9)?,
        requested_at: row.get(10)?,
        // A state this version does not know is shown as unknown, never as failed.
        state: EntryState::parse(&state).unwrap_or(EntryState::Unknown),
        status_code: row.get(12)?,
        response_code: row.get(13)?,
        message: row.get(14)?,
        reply: reply_fields.as_ref().map(|f| super::api::reply_text(f)),
        rrn: row.get(16)?,
        approval_code: row.get(17)?,
        card_number: row.get(18)?,
        resolved_by: row.get(19)?,
        updated_at: row.get(20)?,
        replay_count: row.get(21)?,
        recovery_attempts: row.get(22)?,
        needs_attention: false,
        idempotency_key: row.get(23)?,
        request_key: row.get(24)?,
        reply_fields,
    })
}

impl Journal {
    /// Opens (or creates, or rebuilds) the journal at `path` and starts its writer thread; the
    /// warning says what was rebuilt.
    pub fn open(path: &Path) -> Result<(Journal, Option<String>), StoreError> {
        let opened = db::open(path, SCHEMA, MIGRATIONS, JOURNAL_CACHE_KIB)?;
        let reader = db::open_reader(path, JOURNAL_CACHE_KIB)?;
        let (sender, queue) = mpsc::channel();
        let stats = Arc::new(WriteStats::default());
        let writer_stats = Arc::clone(&stats);
        let connection = opened.connection;
        let writer = crate::session::named_thread(WRITER_THREAD.into())
            .spawn(move || run_writer(connection, queue, &writer_stats))
            .map_err(|e| db::thread_error(path, e))?;
        let journal = Journal {
            reader: Mutex::new(reader),
            writes: RwLock::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            stats,
        };
        Ok((journal, opened.warning))
    }

    /// The reads' connection.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops taking writes, commits every write already queued and waits for the writer thread
    /// to end. A write after this fails at once (never hangs). Also done on drop.
    pub fn close(&self) {
        drop(self.writes.write().unwrap_or_else(|p| p.into_inner()).take());
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer
            && writer.thread().id() != std::thread::current().id()
        {
            let _ = writer.join();
        }
    }

    /// What the writer has committed so far.
    #[cfg(test)]
    pub fn write_stats(&self) -> JournalWriteStats {
        JournalWriteStats {
            commits: self.stats.commits.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
            largest_batch: self.stats.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Decides what to do with a request and, if it is to be sent, writes it as pending. The
    /// decision and the write are one step of the writer (inside its transaction), so two calls
    /// with the same request cannot both be sent. `window` bounds idempotency: a row older than
    /// it does not count (zero turns idempotency off, for POS systems that send a static ECR
    /// reference). Returns once the row is committed.
    pub fn begin(&self, new: &NewEntry, window: Duration) -> rusqlite::Result<Begin> {
        began(self.write(Write::Begin(new.clone(), window)))
    }

    /// [`Journal::begin`] for a tokio task: the wait for the commit holds no thread.
    pub async fn begin_async(&self, new: &NewEntry, window: Duration) -> rusqlite::Result<Begin> {
        began(self.write_async(Write::Begin(new.clone(), window)).await)
    }

    /// Records how the exchange of row `id` ended; returns once it is committed.
    pub fn finish(&self, id: i64, outcome: &Outcome) -> rusqlite::Result<()> {
        self.write(Write::Finish(id, outcome.clone())).map(drop)
    }

    /// [`Journal::finish`] for a tokio task.
    pub async fn finish_async(&self, id: i64, outcome: &Outcome) -> rusqlite::Result<()> {
        self.write_async(Write::Finish(id, outcome.clone())).await.map(drop)
    }

    /// [`Journal::finish`] without waiting for the commit (a pending row marked unknown where
    /// nobody can wait: a dropped tokio task). A failure is logged; the row then stays pending
    /// and becomes unknown at the next start anyway.
    pub(crate) fn finish_unwaited(&self, id: i64, outcome: &Outcome) {
        if let Err(e) = self.enqueue(Write::Finish(id, outcome.clone()), Reply::Unwaited) {
            tracing::error!(id, error = %e, "journal update not queued; the row stays pending and becomes unknown at the next start");
        }
    }

    /// Hands `write` to the writer thread, or fails at once if the journal is closed.
    fn enqueue(&self, write: Write, reply: Reply) -> rusqlite::Result<()> {
        let writes = self.writes.read().unwrap_or_else(|p| p.into_inner());
        let sender = writes.as_ref().ok_or_else(closed_error)?;
        sender.send(Queued { write, reply }).map_err(|_| closed_error())
    }

    /// Queues `write` and waits, blocking this thread, until it is committed.
    fn write(&self, write: Write) -> rusqlite::Result<Written> {
        let (reply, result) = mpsc::sync_channel(1);
        self.enqueue(write, Reply::Blocking(reply))?;
        result.recv().unwrap_or_else(|_| Err(closed_error()))
    }

    /// Queues `write` and awaits its commit.
    async fn write_async(&self, write: Write) -> rusqlite::Result<Written> {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.enqueue(write, Reply::Async(reply))?;
        result.await.unwrap_or_else(|_| Err(closed_error()))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn began(written: rusqlite::Result<Written>) -> rusqlite::Result<Begin> {
    match written? {
        Written::Begin(begin) => Ok(*begin),
        _ => unreachable!("a begin is answered with a begin"),
    }
}

fn counted(written: rusqlite::Result<Written>) -> rusqlite::Result<usize> {
    match written? {
        Written::Count(count) => Ok(count),
        _ => unreachable!("a count is answered with a count"),
    }
}

/// The writer thread: it takes every write queued (up to [`MOST_WRITES_PER_COMMIT`]), commits
/// them in one transaction and one fsync, and answers each. It ends when the journal is closed
/// and the queue is empty, so no write that was accepted is lost.
fn run_writer(mut connection: Connection, queue: mpsc::Receiver<Queued>, stats: &WriteStats) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MOST_WRITES_PER_COMMIT
            && let Ok(next) = queue.try_recv()
        {
            batch.push(next);
        }
        let (writes, replies): (Vec<Write>, Vec<Reply>) = batch.into_iter().map(|q| (q.write, q.reply)).unzip();
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit(&mut connection, &writes)))
            .unwrap_or_else(|_| {
                tracing::error!(writes = writes.len(), "a journal commit panicked; its writes failed");
                writes
                    .iter()
                    .map(|_| {
                        Err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                            Some("the journal write failed internally".into()),
                        ))
                    })
                    .collect()
            });
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(writes.len() as u64, Ordering::Relaxed);
        stats.largest_batch.fetch_max(writes.len(), Ordering::Relaxed);
        tracing::debug!(writes = writes.len(), "journal commit");
        for (reply, result) in replies.into_iter().zip(results) {
            reply.send(result);
        }
    }
}

/// Commits a batch in one transaction. If any write of it fails, the transaction is rolled back
/// and each write is done on its own, so that one bad write (or a full disk) is reported to its
/// caller only.
fn commit(connection: &mut Connection, writes: &[Write]) -> Vec<rusqlite::Result<Written>> {
    if writes.len() > 1
        && let Ok(tx) = connection.transaction_with_behavior(TransactionBehavior::Immediate)
    {
        let results: Vec<rusqlite::Result<Written>> = writes.iter().map(|w| apply(&tx, w)).collect();
        if results.iter().all(Result::is_ok) {
            return match tx.commit() {
                Ok(()) => results,
                Err(e) => writes.iter().map(|_| Err(copy_error(&e))).collect(),
            };
        }
        drop(tx); // rolls back
    }
    writes.iter().map(|w| apply(connection, w)).collect()
}

/// One write, on the writer's connection or inside a group transaction.
fn apply(connection: &Connection, write: &Write) -> rusqlite::Result<Written> {
    match write {
        Write::Begin(new, window) => begin_on(connection, new, *window).map(|b| Written::Begin(Box::new(b))),
        Write::Finish(id, outcome) => finish_on(connection, *id, outcome).map(|()| Written::Count(1)),
        Write::MarkInterrupted => connection
            .execute(
                "UPDATE journal SET state = 'unknown', status_code = 'OUTCOME_UNKNOWN', \
                 message = 'the service stopped while the terminal was processing this request', updated_at = ?1 \
                 WHERE state = 'pending'",
                params![now_text()],
            )
            .map(Written::Count),
        Write::NoteReplay(id) => connection
            .prepare_cached("UPDATE journal SET replay_count = replay_count + 1 WHERE id = ?1")?
            .execute(params![id])
            .map(Written::Count),
        Write::NoteRecoveryAttempt(id) => connection
            .prepare_cached(
                "UPDATE journal SET recovery_attempts = recovery_attempts + 1, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, now_text()])
            .map(Written::Count),
        Write::NextReference(register) => next_reference_on(connection, register).map(Written::Reference),
        #[cfg(test)]
        Write::Fail => connection.execute("INSERT INTO no_such_table VALUES (1)", []).map(Written::Count),
        #[cfg(test)]
        Write::Hold(released) => {
            let _ = released.recv();
            Ok(Written::Count(0))
        }
    }
}

/// [`Journal::begin`]'s decision and insert.
fn begin_on(connection: &Connection, new: &NewEntry, window: Duration) -> rusqlite::Result<Begin> {
    let query = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<Option<JournalEntry>> {
        connection.prepare_cached(&format!("SELECT {COLUMNS} {sql}"))?.query_row(params, entry).optional()
    };
    let terminal = &new.terminal;
    let reference = new.ecr_reference.as_str();
    // The same request again: by the POS's key when it sent one, else by the request itself.
    let same = match &new.idempotency_key {
        Some(key) => query(SAME_KEY, &[key])?,
        None => query(SAME_REQUEST, &[terminal, &reference, &new.request_key])?,
    };
    if let Some(row) = same {
        // A window too long to subtract from now covers every row.
        let since = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| chrono::Utc::now().checked_sub_signed(w))
            .map(db::time_text)
            .unwrap_or_default();
        let recent = !window.is_zero() && row.requested_at >= since;
        let reused = new.idempotency_key.is_some()
            && (row.terminal != new.terminal || row.request_key.as_deref() != Some(new.request_key.as_str()));
        match row.state {
            _ if reused && (recent || !row.state.is_settled()) => return Ok(Begin::KeyReused(row)),
            EntryState::Pending => return Ok(Begin::InFlight(row)),
            EntryState::Unknown => return Ok(Begin::Unknown(row)),
            EntryState::Approved | EntryState::Declined if recent => return Ok(Begin::Final(row)),
            _ => {}
        }
    }
    // Another request with this reference in flight or in doubt: nothing new with it is sent.
    if let Some(row) = query(OPEN_FOR_REFERENCE, &[terminal, &reference])? {
        return Ok(if row.state == EntryState::Pending { Begin::InFlight(row) } else { Begin::InDoubt(row) });
    }
    let now = now_text();
    connection
        .prepare_cached(
            "INSERT INTO journal (terminal, device, terminal_id, txn_type, txn_name, ecr_reference, amount_halalas, \
             txn_date, input_req_data, requested_at, state, updated_at, request_key, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?10, ?11, ?12)",
        )?
        .execute(params![
            new.terminal,
            new.device,
            new.terminal_id,
            new.txn_type.code(),
            new.txn_type.name(),
            new.ecr_reference.as_str(),
            new.amount.map(|a| a.halalas() as i64),
            new.date,
            new.input_req_data,
            now,
            new.request_key,
            new.idempotency_key,
        ])?;
    Ok(Begin::Started(connection.last_insert_rowid()))
}

/// [`Journal::finish`]'s update.
fn finish_on(connection: &Connection, id: i64, outcome: &Outcome) -> rusqlite::Result<()> {
    let state = outcome.state.unwrap_or(EntryState::Unknown);
    let reply = outcome.reply.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default());
    connection
        .prepare_cached(
            "UPDATE journal SET state = ?2, status_code = ?3, response_code = ?4, message = ?5, \
             reply = COALESCE(?6, reply), rrn = COALESCE(?7, rrn), approval_code = COALESCE(?8, approval_code), \
             card_number = COALESCE(?9, card_number), terminal_id = COALESCE(?10, terminal_id), \
             resolved_by = COALESCE(?11, resolved_by), updated_at = ?12 WHERE id = ?1",
        )?
        .execute(params![
            id,
            state.as_str(),
            outcome.status_code,
            outcome.response_code,
            outcome.message,
            reply,
            outcome.rrn,
            outcome.approval_code,
            outcome.card_number,
            outcome.terminal_id,
            outcome.resolved_by,
            now_text(),
        ])?;
    Ok(())
}

impl Journal {
    /// At start: rows still pending belong to a process that died while waiting for the
    /// terminal. Their outcome is unknown. Returns how many there were.
    pub fn mark_interrupted(&self) -> rusqlite::Result<usize> {
        counted(self.write(Write::MarkInterrupted))
    }

    /// One row by id (the tests read rows back by it).
    #[cfg(test)]
    pub fn get(&self, id: i64) -> rusqlite::Result<Option<JournalEntry>> {
        self.lock().query_row(&format!("SELECT {COLUMNS} FROM journal WHERE id = ?1"), params![id], entry).optional()
    }

    /// Up to `limit` unknown outcomes after the entry `after_id` and up to `up_to_id`, oldest
    /// first: recovery reads them a page at a time, so its memory does not grow with the backlog.
    pub fn unknown_entries(&self, after_id: i64, up_to_id: i64, limit: usize) -> rusqlite::Result<Vec<JournalEntry>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!("SELECT {COLUMNS} {UNKNOWN_PAGE}"))?;
        statement.query_map(params![after_id, up_to_id, i64::try_from(limit).unwrap_or(i64::MAX)], entry)?.collect()
    }

    /// The newest entry's id (0 for an empty journal).
    pub fn newest_id(&self) -> rusqlite::Result<i64> {
        self.lock().query_row("SELECT COALESCE(MAX(id), 0) FROM journal", [], |row| row.get(0))
    }

    /// The unknown outcomes of one terminal, oldest first.
    pub fn unknown_entries_of(&self, terminal: &str) -> rusqlite::Result<Vec<JournalEntry>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!("SELECT {COLUMNS} {UNKNOWN_OF_TERMINAL}"))?;
        statement.query_map(params![terminal], entry)?.collect()
    }

    /// Whether `terminal` has journaled a request with `reference`.
    pub fn knows_reference(&self, terminal: &str, reference: &EcrReference) -> rusqlite::Result<bool> {
        self.lock().query_row(REFERENCE_KNOWN, params![terminal, reference.as_str()], |r| r.get(0))
    }

    /// Unknown outcomes asked about `attention_after` times or more.
    pub fn count_needing_attention(&self, attention_after: u32) -> rusqlite::Result<u64> {
        self.lock().query_row(
            "SELECT COUNT(*) FROM journal WHERE state = 'unknown' AND recovery_attempts >= ?1",
            params![attention_after],
            |r| r.get(0),
        )
    }

    pub fn count_in_state(&self, state: EntryState) -> rusqlite::Result<u64> {
        self.lock().query_row("SELECT COUNT(*) FROM journal WHERE state = ?1", params![state.as_str()], |r| r.get(0))
    }

    /// Newest first.
    /// Newest first; `attention_after` is the service's `recovery_attention_after`.
    pub fn list(&self, filter: &JournalFilter, attention_after: u32) -> rusqlite::Result<Vec<JournalEntry>> {
        let mut sql = format!("SELECT {COLUMNS} FROM journal WHERE 1 = 1");
        let mut values: Vec<String> = Vec::new();
        let mut add = |clause: &str, value: &Option<String>| {
            if let Some(value) = value {
                values.push(value.clone());
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            }
        };
        add("terminal =", &filter.terminal);
        add("ecr_reference =", &filter.ecr_reference);
        add("requested_at >=", &filter.from);
        add("requested_at <", &filter.to);
        add("state =", &filter.state.map(|s| s.as_str().to_owned()));
        if filter.needs_attention {
            sql.push_str(&format!(" AND state = 'unknown' AND recovery_attempts >= {attention_after}"));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit.unwrap_or(100).clamp(1, 10_000)));
        let connection = self.lock();
        let mut statement = connection.prepare(&sql)?;
        statement.query_map(rusqlite::params_from_iter(values.iter()), entry)?.collect()
    }

    pub fn note_replay(&self, id: i64) -> rusqlite::Result<()> {
        self.write(Write::NoteReplay(id)).map(drop)
    }

    /// [`Journal::note_replay`] for a tokio task.
    pub async fn note_replay_async(&self, id: i64) -> rusqlite::Result<()> {
        self.write_async(Write::NoteReplay(id)).await.map(drop)
    }

    pub fn note_recovery_attempt(&self, id: i64) -> rusqlite::Result<()> {
        self.write(Write::NoteRecoveryAttempt(id)).map(drop)
    }

    /// The ECR reference of the terminal's last card transaction (DUPLICATE's default after a
    /// restart, when the session no longer remembers it).
    pub fn last_reference(&self, terminal: &str) -> rusqlite::Result<Option<EcrReference>> {
        let text: Option<String> = self
            .lock()
            .query_row(LAST_REFERENCE, params![terminal, TxnType::Reconciliation.code()], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| EcrReference::parse(&t).ok()))
    }

    /// The RRN of an approved transaction of `terminal` with this approval code (and original
    /// date `ddMMyy`, if given): what a REFUND without `rrnNumber` refers to.
    pub fn find_rrn(
        &self,
        terminal: &str,
        approval_code: &str,
        original_date: Option<&str>,
    ) -> rusqlite::Result<Option<String>> {
        self.lock().query_row(FIND_RRN, params![terminal, approval_code, original_date], |r| r.get(0)).optional()
    }

    /// The next ECR reference for `register`: its 6-digit counter is persisted and only moves
    /// forward (wrapping after 999999), and a value already in the journal is skipped, so a
    /// reference is not reused within a day (D7) nor across days until the counter wraps.
    pub fn next_reference(&self, register: &CashRegisterNo) -> rusqlite::Result<Option<EcrReference>> {
        match self.write(Write::NextReference(register.clone()))? {
            Written::Reference(reference) => Ok(reference),
            _ => unreachable!("a reference is answered with a reference"),
        }
    }
}

/// [`Journal::next_reference`] on the writer (the writer is the only one that writes, so its
/// read and its update cannot interleave with another's).
fn next_reference_on(connection: &Connection, register: &CashRegisterNo) -> rusqlite::Result<Option<EcrReference>> {
    let mut counter: u32 = connection
        .query_row("SELECT counter FROM ecr_sequence WHERE cash_register_no = ?1", params![register.as_str()], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    let mut found = None;
    for _ in 0..10_000 {
        let Ok((candidate, next)) = EcrReference::next_in_sequence(register, counter) else { break };
        counter = next;
        let used: bool = connection.query_row(REFERENCE_USED, params![candidate.as_str()], |r| r.get(0))?;
        if !used {
            found = Some(candidate);
            break;
        }
    }
    connection.execute(
        "INSERT INTO ecr_sequence (cash_register_no, counter) VALUES (?1, ?2) \
         ON CONFLICT (cash_register_no) DO UPDATE SET counter = excluded.counter",
        params![register.as_str(), counter],
    )?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_lookups_search_an_index_instead_of_scanning_the_journal() {
        let (_dir, journal) = journal();
        let [same_request, same_key, open_for_reference, unknown_page, unknown_of_terminal] =
            [SAME_REQUEST, SAME_KEY, OPEN_FOR_REFERENCE, UNKNOWN_PAGE, UNKNOWN_OF_TERMINAL]
                .map(|rest| format!("SELECT {COLUMNS} {rest}"));
        for sql in [
            &same_request,
            &same_key,
            &open_for_reference,
            &unknown_page,
            &unknown_of_terminal,
            LAST_REFERENCE,
            FIND_RRN,
            REFERENCE_USED,
            REFERENCE_KNOWN,
        ] {
            let connection = journal.lock();
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = std::iter::repeat_n(rusqlite::types::Null, statement.parameter_count());
            let plan: Vec<String> = statement
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(plan.iter().any(|step| step.contains("USING") && step.contains("INDEX")), "{sql}: {plan:?}");
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN journal") || step.contains("TEMP B-TREE")),
                "{sql}: {plan:?}"
            );
            // A terminal's unknown outcomes come from the small partial index, not from all its rows.
            if sql == unknown_of_terminal {
                assert!(plan.iter().any(|step| step.contains("journal_unknown_by_terminal")), "{plan:?}");
            }
            // With one static reference for every sale, the rows in flight or in doubt of a
            // reference come from the small partial index, not from all of them.
            if sql == open_for_reference {
                assert!(plan.iter().any(|step| step.contains("journal_open_by_reference")), "{plan:?}");
            }
        }
    }

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let (journal, warning) = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
        assert!(warning.is_none());
        (dir, journal)
    }

    fn purchase(ecr: &str, halalas: u64) -> NewEntry {
        purchase_on("090625143000", ecr, halalas)
    }

    fn purchase_on(date: &str, ecr: &str, halalas: u64) -> NewEntry {
        let mut request = Request::new(TxnType::Purchase, crate::protocol::values::TxnDate::parse(date).unwrap());
        request.ecr_reference = Some(EcrReference::parse(ecr).unwrap());
        request.amount = Some(Amount::from_halalas(halalas).unwrap());
        request.print = Some(true);
        NewEntry {
            terminal: "127.0.0.1:8888".into(),
            device: None,
            terminal_id: Some("8184000200000077".into()),
            txn_type: TxnType::Purchase,
            ecr_reference: EcrReference::parse(ecr).unwrap(),
            amount: request.amount,
            date: date.into(),
            input_req_data: Some(request.to_input_req_data()),
            request_key: request_key(&request, true),
            idempotency_key: None,
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_pending_reference_is_in_flight_and_a_final_one_is_replayed() {
        let (_dir, journal) = journal();
        let Begin::Started(id) = journal.begin(&purchase("12345678000001", 1000), DAY).unwrap() else { panic!() };
        assert!(matches!(journal.begin(&purchase("12345678000001", 1000), DAY).unwrap(), Begin::InFlight(_)));
        journal
            .finish(
                id,
                &Outcome {
                    state: Some(EntryState::Approved),
                    status_code: "200".into(),
                    response_code: Some("000".into()),
                    message: "APPROVED".into(),
                    rrn: Some("123456789012".into()),
                    approval_code: Some("123456".into()),
                    ..Outcome::default()
                },
            )
            .unwrap();
        match journal.begin(&purchase("12345678000001", 1000), DAY).unwrap() {
            Begin::Final(row) => assert_eq!((row.id, row.state), (id, EntryState::Approved)),
            other => panic!("{other:?}"),
        }
        // Another amount, or another date, with the same reference is another request.
        let Begin::Started(other) = journal.begin(&purchase("12345678000001", 2000), DAY).unwrap() else { panic!() };
        let approved = Outcome { state: Some(EntryState::Approved), ..Outcome::default() };
        journal.finish(other, &approved).unwrap();
        let later = purchase_on("090625143500", "12345678000001", 1000);
        let Begin::Started(third) = journal.begin(&later, DAY).unwrap() else { panic!() };
        journal.finish(third, &approved).unwrap();
        // Each is replayed as itself, the first one too.
        assert!(
            matches!(journal.begin(&purchase("12345678000001", 1000), DAY).unwrap(), Begin::Final(r) if r.id == id)
        );
        assert!(matches!(journal.begin(&later, DAY).unwrap(), Begin::Final(r) if r.id == third));
        // Outside the window (here: idempotency off) the request is new again.
        assert!(matches!(journal.begin(&purchase("12345678000001", 1000), Duration::ZERO).unwrap(), Begin::Started(_)));
        assert_eq!(
            journal.find_rrn("127.0.0.1:8888", "123456", Some("090625")).unwrap().as_deref(),
            Some("123456789012")
        );
        assert_eq!(journal.find_rrn("127.0.0.1:8888", "123456", Some("080625")).unwrap(), None);
    }

    #[test]
    fn a_reference_in_doubt_lets_nothing_new_with_it_through_but_its_own_retry_is_unknown() {
        let (_dir, journal) = journal();
        let Begin::Started(_) = journal.begin(&purchase("12345678901234", 1000), DAY).unwrap() else { panic!() };
        assert_eq!(journal.mark_interrupted().unwrap(), 1);
        assert!(matches!(journal.begin(&purchase("12345678901234", 1000), DAY).unwrap(), Begin::Unknown(_)));
        let other = purchase_on("090625150000", "12345678901234", 1000);
        assert!(matches!(journal.begin(&other, DAY).unwrap(), Begin::InDoubt(_)));
        // Other references are not held up.
        assert!(matches!(journal.begin(&purchase("12345678901235", 1000), DAY).unwrap(), Begin::Started(_)));
    }

    #[test]
    fn an_idempotency_key_is_the_only_replay_key_when_given() {
        let (_dir, journal) = journal();
        let keyed = |key: &str, entry: NewEntry| NewEntry { idempotency_key: Some(key.into()), ..entry };
        let Begin::Started(id) = journal.begin(&keyed("sale-1", purchase("12345678901234", 1000)), DAY).unwrap() else {
            panic!()
        };
        journal.finish(id, &Outcome { state: Some(EntryState::Approved), ..Outcome::default() }).unwrap();
        // The same key and request: the stored result.
        let again = journal.begin(&keyed("sale-1", purchase("12345678901234", 1000)), DAY).unwrap();
        assert!(matches!(again, Begin::Final(r) if r.id == id));
        // A new key: a new sale, though every field is the same.
        assert!(matches!(
            journal.begin(&keyed("sale-2", purchase("12345678901234", 1000)), DAY).unwrap(),
            Begin::Started(_)
        ));
        // The first key for another request: refused.
        assert!(matches!(
            journal.begin(&keyed("sale-1", purchase("12345678901234", 2000)), DAY).unwrap(),
            Begin::KeyReused(_)
        ));
    }

    /// The journal as versions before schema versioning wrote it (`PRAGMA user_version` 0).
    const UNVERSIONED_JOURNAL: &str = "
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT, terminal TEXT NOT NULL, device TEXT, terminal_id TEXT,
            txn_type INTEGER NOT NULL, txn_name TEXT NOT NULL, ecr_reference TEXT NOT NULL, amount_halalas INTEGER,
            txn_date TEXT NOT NULL, input_req_data TEXT, requested_at TEXT NOT NULL, state TEXT NOT NULL,
            status_code TEXT, response_code TEXT, message TEXT, reply TEXT, rrn TEXT, approval_code TEXT,
            card_number TEXT, resolved_by TEXT, updated_at TEXT NOT NULL, replay_count INTEGER NOT NULL DEFAULT 0,
            recovery_attempts INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX journal_by_ecr_reference ON journal (ecr_reference, terminal);
        CREATE INDEX journal_by_terminal ON journal (terminal, id);
        CREATE INDEX journal_by_time ON journal (requested_at);
        CREATE INDEX journal_by_state ON journal (state);
        CREATE INDEX journal_unknown_by_terminal ON journal (terminal, id) WHERE state = 'unknown';
        CREATE TABLE ecr_sequence (cash_register_no TEXT PRIMARY KEY, counter INTEGER NOT NULL);
        INSERT INTO ecr_sequence VALUES ('12345678', 41);";

    #[test]
    fn an_unversioned_journal_is_upgraded_and_keeps_its_money_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(UNVERSIONED_JOURNAL).unwrap();
            let now = now_text();
            let insert = "INSERT INTO journal (terminal, terminal_id, txn_type, txn_name, ecr_reference, \
                          amount_halalas, txn_date, input_req_data, requested_at, state, updated_at, replay_count) \
                          VALUES ('127.0.0.1:8888', '8184000200000077', 0, 'PURCHASE', ?1, 1000, '090625143000', \
                          ?2, ?3, ?4, ?3, 3)";
            for (ecr, state) in [("12345678000001", "approved"), ("12345678000002", "unknown")] {
                old.execute(insert, params![ecr, format!("090625143000;000000001000;1;{ecr}!"), now, state]).unwrap();
            }
        }
        let (journal, warning) = Journal::open(&path).unwrap();
        assert!(warning.is_none(), "{warning:?}");
        let version: i64 = journal.lock().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        // The approved purchase is still replayed, not charged again; its counters are kept.
        match journal.begin(&purchase("12345678000001", 1000), DAY).unwrap() {
            Begin::Final(row) => assert_eq!((row.state, row.replay_count), (EntryState::Approved, 3)),
            other => panic!("{other:?}"),
        }
        // The unknown one still blocks its retry and anything new with its reference.
        assert!(matches!(journal.begin(&purchase("12345678000002", 1000), DAY).unwrap(), Begin::Unknown(_)));
        let other = purchase_on("090625150000", "12345678000002", 1000);
        assert!(matches!(journal.begin(&other, DAY).unwrap(), Begin::InDoubt(_)));
        // The generator's counter survived.
        let register = CashRegisterNo::parse("12345678").unwrap();
        assert_eq!(journal.next_reference(&register).unwrap().unwrap().as_str(), "12345678000042");
        drop(journal);
        // Opening it again changes nothing.
        let (journal, _) = Journal::open(&path).unwrap();
        assert_eq!(journal.count_in_state(EntryState::Unknown).unwrap(), 1);
    }

    #[test]
    fn an_error_allows_a_retry_and_pending_rows_become_unknown_at_start() {
        let (_dir, journal) = journal();
        let Begin::Started(id) = journal.begin(&purchase("12345678000002", 500), DAY).unwrap() else { panic!() };
        journal
            .finish(
                id,
                &Outcome { state: Some(EntryState::Error), status_code: "TERMINAL_BUSY".into(), ..Outcome::default() },
            )
            .unwrap();
        let Begin::Started(second) = journal.begin(&purchase("12345678000002", 500), DAY).unwrap() else { panic!() };
        assert_eq!(journal.mark_interrupted().unwrap(), 1);
        let row = journal.get(second).unwrap().unwrap();
        assert_eq!(row.state, EntryState::Unknown);
        assert!(matches!(journal.begin(&purchase("12345678000002", 500), DAY).unwrap(), Begin::Unknown(_)));
        assert_eq!(journal.unknown_entries(0, i64::MAX, 10).unwrap().len(), 1);
        assert_eq!(journal.unknown_entries(second, i64::MAX, 10).unwrap().len(), 0);
        assert_eq!(journal.unknown_entries_of("127.0.0.1:8888").unwrap()[0].id, second);
        assert!(journal.unknown_entries_of("127.0.0.1:8889").unwrap().is_empty());
    }

    #[test]
    fn unknown_outcomes_are_read_a_page_at_a_time_oldest_first() {
        let (_dir, journal) = journal();
        let mut ids = Vec::new();
        for n in 0..5u64 {
            let mut entry = purchase(&format!("1234567800001{n}"), 500);
            if n == 2 {
                entry.terminal = "127.0.0.1:9999".into();
            }
            let Begin::Started(id) = journal.begin(&entry, DAY).unwrap() else { panic!() };
            ids.push(id);
        }
        let Begin::Started(answered) = journal.begin(&purchase("12345678000020", 500), DAY).unwrap() else { panic!() };
        journal.finish(answered, &Outcome { state: Some(EntryState::Approved), ..Outcome::default() }).unwrap();
        assert_eq!(journal.mark_interrupted().unwrap(), 5);

        assert_eq!(journal.newest_id().unwrap(), answered);
        let page = |after, up_to, limit| -> Vec<i64> {
            journal.unknown_entries(after, up_to, limit).unwrap().iter().map(|e| e.id).collect()
        };
        assert_eq!(page(0, answered, 2), ids[..2]);
        assert_eq!(page(ids[1], answered, 2), ids[2..4]);
        assert_eq!(page(ids[3], answered, 2), ids[4..]);
        assert!(page(ids[4], answered, 2).is_empty());
        // A pass covers what was there when it began.
        assert_eq!(page(0, ids[2], 10), ids[..3]);
        let of =
            |terminal| -> Vec<i64> { journal.unknown_entries_of(terminal).unwrap().iter().map(|e| e.id).collect() };
        assert_eq!(of("127.0.0.1:9999"), [ids[2]]);
        assert_eq!(of("127.0.0.1:8888"), [ids[0], ids[1], ids[3], ids[4]]);
    }

    #[test]
    fn lists_filter_by_reference_terminal_state_and_time() {
        let (_dir, journal) = journal();
        for n in 1..=3 {
            journal.begin(&purchase(&format!("1234567800000{n}"), 100), DAY).unwrap();
        }
        assert_eq!(journal.list(&JournalFilter::default(), 10).unwrap().len(), 3);
        let one = JournalFilter { ecr_reference: Some("12345678000002".into()), ..JournalFilter::default() };
        assert_eq!(journal.list(&one, 10).unwrap().len(), 1);
        let other = JournalFilter { terminal: Some("10.0.0.1:1".into()), ..JournalFilter::default() };
        assert!(journal.list(&other, 10).unwrap().is_empty());
        let pending = JournalFilter { state: Some(EntryState::Pending), ..JournalFilter::default() };
        assert_eq!(journal.list(&pending, 10).unwrap().len(), 3);
        let future = JournalFilter { from: db::parse_time("2999-01-01"), ..JournalFilter::default() };
        assert!(journal.list(&future, 10).unwrap().is_empty());
        let past = JournalFilter { to: db::parse_time("2000-01-01"), ..JournalFilter::default() };
        assert!(journal.list(&past, 10).unwrap().is_empty());
    }

    #[test]
    fn concurrent_requests_are_each_committed_before_begin_returns() {
        let (dir, journal) = journal();
        let journal = std::sync::Arc::new(journal);
        let path = dir.path().join("journal.sqlite");
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let (journal, path) = (std::sync::Arc::clone(&journal), path.clone());
                std::thread::spawn(move || {
                    // Another connection, as after a crash: it sees only what was committed.
                    let reader = Connection::open(&path).unwrap();
                    for n in 0..20 {
                        let ecr = format!("1234{t:02}{n:02}000001");
                        let Begin::Started(id) = journal.begin(&purchase(&ecr, 100), DAY).unwrap() else { panic!() };
                        let state: String =
                            reader.query_row("SELECT state FROM journal WHERE id = ?1", [id], |r| r.get(0)).unwrap();
                        assert_eq!(state, "pending", "row {id} is on disk before begin returns");
                        let outcome = Outcome { state: Some(EntryState::Approved), ..Outcome::default() };
                        journal.finish(id, &outcome).unwrap();
                        let state: String =
                            reader.query_row("SELECT state FROM journal WHERE id = ?1", [id], |r| r.get(0)).unwrap();
                        assert_eq!(state, "approved", "outcome of {id} is on disk before finish returns");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(journal.count_in_state(EntryState::Approved).unwrap(), 16 * 20);
    }

    #[test]
    fn concurrent_requests_with_one_reference_send_it_once() {
        let (_dir, journal) = journal();
        let journal = std::sync::Arc::new(journal);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(12));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (journal, barrier) = (std::sync::Arc::clone(&journal), std::sync::Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    journal.begin(&purchase("12345678000009", 100), DAY).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Begin> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(outcomes.iter().filter(|b| matches!(b, Begin::Started(_))).count(), 1);
        assert_eq!(outcomes.iter().filter(|b| matches!(b, Begin::InFlight(_))).count(), 11);
    }

    /// Every row the journal file holds, read through a connection of its own (what a restart
    /// would find).
    fn rows_on_disk(path: &Path) -> Vec<(i64, String)> {
        let connection = Connection::open(path).unwrap();
        let mut statement = connection.prepare("SELECT id, state FROM journal ORDER BY id").unwrap();
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn waiting_writes_hold_no_thread_so_one_commit_takes_hundreds_of_them() {
        let (dir, journal) = journal();
        let journal = Arc::new(journal);
        // One thread for every caller: a write that held its thread while it waited would let
        // only one write into each commit (and the begin that waits for the others would never
        // return). The writer is held while the tasks queue their begins, then their finishes, so
        // each group is whole however fast this machine's fsync is (under Wine it can outrun the
        // tasks, and the groups came out small).
        let hold = |journal: &Journal| {
            let (release, held) = mpsc::channel();
            journal.enqueue(Write::Hold(held), Reply::Unwaited).unwrap();
            release
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ids = runtime.block_on(async {
            let (begun, finishing) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (go_finish, may_finish) = tokio::sync::watch::channel(false);
            let until = |count: &Arc<AtomicUsize>| {
                let count = Arc::clone(count);
                async move {
                    while count.load(Ordering::Relaxed) < 300 {
                        tokio::task::yield_now().await;
                    }
                }
            };
            let release_begins = hold(&journal);
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..300u32 {
                let (journal, begun, finishing) = (Arc::clone(&journal), Arc::clone(&begun), Arc::clone(&finishing));
                let mut may_finish = may_finish.clone();
                tasks.spawn(async move {
                    // Counted before the first poll of `begin_async`, which queues the write at once.
                    begun.fetch_add(1, Ordering::Relaxed);
                    let Begin::Started(id) =
                        journal.begin_async(&purchase(&format!("12345678{n:06}"), 100), DAY).await.unwrap()
                    else {
                        panic!()
                    };
                    // A read right after the commit sees the row (the reads' own connection).
                    assert_eq!(journal.get(id).unwrap().unwrap().state, EntryState::Pending);
                    may_finish.wait_for(|go| *go).await.unwrap();
                    finishing.fetch_add(1, Ordering::Relaxed);
                    let approved = Outcome { state: Some(EntryState::Approved), ..Outcome::default() };
                    journal.finish_async(id, &approved).await.unwrap();
                    assert_eq!(journal.get(id).unwrap().unwrap().state, EntryState::Approved);
                    id
                });
            }
            until(&begun).await;
            drop(release_begins);
            // Every begin answered (each task then waits for `go_finish`): hold the writer again
            // while the finishes queue.
            while journal.write_stats().writes < 301 {
                tokio::task::yield_now().await;
            }
            let release_finishes = hold(&journal);
            go_finish.send(true).unwrap();
            until(&finishing).await;
            drop(release_finishes);
            let mut ids = Vec::new();
            while let Some(id) = tasks.join_next().await {
                ids.push(id.unwrap());
            }
            ids
        });
        assert_eq!(ids.len(), 300);
        let stats = journal.write_stats();
        assert_eq!(stats.writes, 600 + 2, "each task's begin and finish, and the two holds");
        assert!(stats.largest_batch >= 100, "{stats:?}");
        assert!(stats.commits < 100, "{stats:?}");
        let on_disk = rows_on_disk(&dir.path().join("journal.sqlite"));
        assert_eq!(on_disk.len(), 300);
        assert!(on_disk.iter().all(|(_, state)| state == "approved"), "{on_disk:?}");
    }

    #[test]
    fn a_group_with_a_bad_write_is_rolled_back_and_each_write_done_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let mut connection = db::open(&path, SCHEMA, MIGRATIONS, JOURNAL_CACHE_KIB).unwrap().connection;
        let writes = [
            Write::Begin(purchase("12345678000001", 100), DAY),
            Write::Fail,
            Write::Begin(purchase("12345678000002", 100), DAY),
        ];
        let results = commit(&mut connection, &writes);
        assert!(matches!(results[0], Ok(Written::Begin(ref b)) if matches!(**b, Begin::Started(_))));
        assert!(results[1].is_err(), "the bad write fails");
        assert!(matches!(results[2], Ok(Written::Begin(ref b)) if matches!(**b, Begin::Started(_))));
        // The good writes are committed, once each (the rolled-back group left nothing behind).
        assert_eq!(rows_on_disk(&path).len(), 2);
        // Two requests of one batch with the same reference: the second sees the first's row.
        let same =
            [Write::Begin(purchase("12345678000003", 100), DAY), Write::Begin(purchase("12345678000003", 100), DAY)];
        let results = commit(&mut connection, &same);
        assert!(matches!(results[0], Ok(Written::Begin(ref b)) if matches!(**b, Begin::Started(_))));
        assert!(matches!(results[1], Ok(Written::Begin(ref b)) if matches!(**b, Begin::InFlight(_))));
    }

    #[test]
    fn closing_commits_every_write_already_queued_and_a_later_write_fails_at_once() {
        let (dir, journal) = journal();
        let journal = Arc::new(journal);
        // The writer is held, so what is queued before the close is known, whatever the speed of
        // this machine's fsync: 32 begins queued here, and 32 threads writing 20 begins each, one
        // after another, while the journal closes.
        let (release, held) = mpsc::channel();
        journal.enqueue(Write::Hold(held), Reply::Unwaited).unwrap();
        let queued: Vec<_> = (0..32)
            .map(|n| {
                let (reply, result) = mpsc::sync_channel(1);
                journal
                    .enqueue(Write::Begin(purchase(&format!("12349{n:02}0000001"), 100), DAY), Reply::Blocking(reply))
                    .unwrap();
                result
            })
            .collect();
        let writers: Vec<_> = (0..32)
            .map(|t| {
                let journal = Arc::clone(&journal);
                std::thread::spawn(move || {
                    (0..20)
                        .map(|n| journal.begin(&purchase(&format!("1234{t:02}{n:02}000001"), 100), DAY))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let closer = std::thread::spawn({
            let journal = Arc::clone(&journal);
            move || journal.close()
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while journal.writes.read().unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "close stops taking writes before it waits for the writer");
            std::thread::yield_now();
        }
        // Closed for new writes while the writer still holds: now let it commit what is queued.
        drop(release);
        closer.join().unwrap();
        let mut started: Vec<i64> = queued
            .into_iter()
            .map(|result| match began(result.recv().unwrap()) {
                Ok(Begin::Started(id)) => id,
                other => panic!("a write queued before the close is committed: {other:?}"),
            })
            .collect();
        let results: Vec<_> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.to_string().contains("closed"))).count();
        started.extend(results.iter().filter_map(|r| match r {
            Ok(Begin::Started(id)) => Some(*id),
            _ => None,
        }));
        assert_eq!(started.len() + refused, 32 + 640, "every write either committed or refused as closed");
        // Each thread queued at most its first begin before the close: the writer was held.
        assert!(refused >= 32 * 19, "{refused} refused");
        // Every write that was answered as written is on disk, and nothing else.
        let on_disk: Vec<i64> =
            rows_on_disk(&dir.path().join("journal.sqlite")).into_iter().map(|(id, _)| id).collect();
        started.sort();
        assert_eq!(on_disk, started);
        assert!(journal.finish(started[0], &Outcome::default()).is_err());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(runtime.block_on(journal.begin_async(&purchase("12345678999999", 100), DAY)).is_err());
    }

    #[test]
    fn generated_references_move_forward_and_skip_used_ones() {
        let (dir, journal) = journal();
        let register = CashRegisterNo::parse("12345678").unwrap();
        journal.begin(&purchase("12345678000002", 100), DAY).unwrap();
        assert_eq!(journal.next_reference(&register).unwrap().unwrap().as_str(), "12345678000001");
        assert_eq!(journal.next_reference(&register).unwrap().unwrap().as_str(), "12345678000003");
        drop(journal);
        let (journal, _) = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
        assert_eq!(journal.next_reference(&register).unwrap().unwrap().as_str(), "12345678000004", "persisted");
    }
}
