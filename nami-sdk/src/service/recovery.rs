//! Resolving unknown outcomes (D11): a payment whose reply was lost (the link broke after the
//! frame was written, the call timed out or was cancelled, the process was killed) is never sent
//! again. A background thread asks the terminal about it with DUPLICATE (23) for that ECR
//! reference, signed with the remembered registration, and writes the answer into the journal.
//!
//! - The terminal repeats the transaction (same command; its ECR reference echo, if any, is the
//!   one asked for): the entry becomes `approved` or `declined` by the repeated response code.
//! - The terminal has no record of it (`NO DATA FOUND`, 187, 480): the entry becomes
//!   `not_found` — but only once the request is older than `recovery_grace`, since before that
//!   the terminal may still be working on it. A `not_found` entry was never processed, so the
//!   POS may send the same ECR reference again.
//! - Anything else (a different transaction repeated, the terminal unreachable or busy, no
//!   registration yet): the entry stays `unknown` and is tried again later.
//!
//! An entry is only asked about on the terminal that holds it, and not when that terminal now
//! reports another terminal ID than the one the request was signed with.

use crate::status::StatusCode;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::json;

use super::journal::{EntryState, JournalEntry, Outcome};
use super::shared::{Shared, lock};
use super::targets::{COM_KEY, parse_key};
use super::transact::reply_outcome;
use crate::protocol::request::Request;
use crate::protocol::response::Response;
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::{EcrReference, PreviousEcrNo, TxnDate};
use crate::session::terminal::{Terminal, TxnResult};

/// What a DUPLICATE reply says about the transaction asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The terminal repeated it: its reply.
    Found(Response),
    /// The terminal has no record of it.
    NotFound(String),
    /// The reply does not settle it.
    Undecided(String),
}

/// Reads a DUPLICATE reply about the transaction of `txn_type` with ECR reference `reference`.
/// The repeated reply is found by its command code (§5.7); a reply that repeats it without one
/// (the layout the iOS SDK reads) is read with `txn_type`, the type the journal recorded, but
/// only if the repeated fields carry `reference` itself.
pub fn classify(txn_type: TxnType, reference: &EcrReference, reply: &Response) -> Resolution {
    if let Some(inner) = reply.repeated().or_else(|| repeated_without_command(txn_type, reference, reply)) {
        if inner.txn_type != Some(txn_type) {
            return Resolution::Undecided(format!(
                "the terminal repeated a {} instead of a {}",
                inner.txn_type.map(|t| t.name()).unwrap_or("reply of an unknown type"),
                txn_type.name()
            ));
        }
        let exact = inner.fields.iter().any(|f| f.trim() == reference.as_str());
        let other_echo = inner
            .ecr_reference()
            .map(|e| e.trim().to_owned())
            .filter(|e| e.len() == 14 && e.bytes().all(|b| b.is_ascii_digit()) && e != reference.as_str());
        if !exact && let Some(other) = other_echo {
            return Resolution::Undecided(format!("the terminal repeated the transaction {other}, not {reference}"));
        }
        return Resolution::Found(inner);
    }
    let code = reply.code();
    let says_nothing_found = reply.fields.iter().skip(2).any(|f| {
        let upper = f.to_ascii_uppercase();
        upper.contains("NO DATA") || upper.contains("NOT FOUND")
    });
    if says_nothing_found || matches!(code, "187" | "480") {
        return Resolution::NotFound(format!(
            "the terminal has no record of it (code {code:?}, {:?})",
            reply.message()
        ));
    }
    Resolution::Undecided(format!("DUPLICATE answered {code:?} {:?} without the transaction", reply.message()))
}

/// The repeated reply of a DUPLICATE reply that has no command code of its own: its fields after
/// the DUPLICATE's code and message (without the DUPLICATE's own ECR reference and signature),
/// read as a reply of `txn_type`. Only when the DUPLICATE itself succeeded, the repeated fields
/// start with a response code, and one of them is `reference`: no guess settles a payment.
fn repeated_without_command(txn_type: TxnType, reference: &EcrReference, reply: &Response) -> Option<Response> {
    let fields = &reply.fields;
    let end = fields.len().checked_sub(2)?;
    let repeated = fields.get(4..end)?;
    let looks_like_code = |f: &str| (2..=4).contains(&f.trim().len()) && f.trim().bytes().all(|b| b.is_ascii_digit());
    let duplicate_ok = reply.code().trim().starts_with('0');
    if !duplicate_ok || !repeated.first().is_some_and(|f| looks_like_code(f)) {
        return None;
    }
    if !repeated.iter().any(|f| f.trim() == reference.as_str()) {
        return None;
    }
    let mut inner = vec![String::new(), txn_type.command().to_owned()];
    inner.extend_from_slice(repeated);
    Some(Response::from_fields(inner))
}

/// How many unknown outcomes a recovery pass reads at a time.
const RECOVERY_PAGE: usize = 64;

/// Starts the recovery thread: a pass at once, then every `recovery_interval` or when kicked.
pub(crate) fn start(shared: &Arc<Shared>) -> Option<JoinHandle<()>> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("nami-recovery".into())
        .spawn(move || {
            loop {
                shared.recover_once();
                let mut signal = lock(&shared.signal);
                if !signal.shutdown && !signal.kick {
                    signal = shared
                        .wake
                        .wait_timeout(signal, shared.config.recovery_interval)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                if signal.shutdown {
                    return;
                }
                signal.kick = false;
            }
        })
        .map_err(|e| tracing::error!(error = %e, "could not start recovery"))
        .ok()
}

impl Shared {
    /// One pass over the unknown outcomes journaled before it began (those that come during it
    /// wait for the next one, so that a pass under steady faults ends and starts again from the
    /// oldest); returns how many were resolved.
    pub(crate) fn recover_once(self: &Arc<Self>) -> usize {
        let mut resolved = 0;
        if let Err(e) = self.recovery_pass(&mut resolved) {
            tracing::warn!(error = %e, "recovery could not read the journal");
        }
        resolved
    }

    fn recovery_pass(self: &Arc<Self>, resolved: &mut usize) -> rusqlite::Result<()> {
        let up_to_id = self.journal.newest_id()?;
        let mut after_id = 0;
        loop {
            let entries = self.journal.unknown_entries(after_id, up_to_id, RECOVERY_PAGE)?;
            let Some(last) = entries.last() else { return Ok(()) };
            after_id = last.id;
            for entry in &entries {
                if self.is_shutting_down() {
                    return Ok(());
                }
                if self.recover_entry(entry) {
                    *resolved += 1;
                }
            }
        }
    }

    fn terminal_of(self: &Arc<Self>, entry: &JournalEntry) -> Option<Terminal> {
        if entry.terminal == COM_KEY {
            return self.com_connection().map(|c| c.terminal);
        }
        parse_key(&entry.terminal).map(|target| self.tcp_terminal(&target))
    }

    fn recover_entry(self: &Arc<Self>, entry: &JournalEntry) -> bool {
        let (Some(txn_type), Some(original)) = (entry.txn(), entry.ecr_reference()) else { return false };
        let Some(terminal) = self.terminal_of(entry) else {
            tracing::debug!(terminal = %entry.terminal, ecr = %original, "unknown outcome waits for its terminal's connection");
            return false;
        };
        let Some(registration) = terminal.registration() else {
            tracing::debug!(terminal = %entry.terminal, ecr = %original, "unknown outcome waits for a REGISTER");
            return false;
        };
        if let Some(signed_with) = &entry.terminal_id
            && signed_with != registration.terminal_id.as_str()
        {
            tracing::warn!(
                terminal = %entry.terminal, ecr = %original, signed_with, now = %registration.terminal_id,
                "another terminal answers at this address now; the unknown outcome is not asked about there"
            );
            return false;
        }
        let reference = match self.journal.next_reference(&original.cash_register_no()) {
            Ok(Some(reference)) => reference,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "recovery could not draw an ECR reference");
                return false;
            }
        };
        let mut request = Request::new(TxnType::Duplicate, TxnDate::now());
        request.ecr_reference = Some(reference.clone());
        request.previous_ecr_no = Some(PreviousEcrNo::from(&original));
        if let Err(e) = self.journal.note_recovery_attempt(entry.id) {
            tracing::warn!(error = %e, "recovery attempt not counted");
        }
        if entry.recovery_attempts + 1 == self.config.recovery_attention_after {
            tracing::warn!(
                terminal = %entry.terminal, ecr = %original, attempts = entry.recovery_attempts + 1,
                "an unknown outcome is still not settled: it needs attention (recovery goes on asking)"
            );
            self.emit(json!({
                "event": "outcomeNeedsAttention",
                "terminal": entry.terminal,
                "ecrReferenceNo": entry.ecr_reference_no,
                "recoveryAttempts": entry.recovery_attempts + 1,
            }));
        }
        tracing::info!(terminal = %entry.terminal, ecr = %original, duplicate = %reference, "asking the terminal about an unknown outcome");
        let outcome = terminal.transact(&request);
        // A terminal that lost its registration (1003/1008) drops it here too.
        self.sync_registration(&entry.terminal, &terminal);
        match outcome {
            Ok(result) => self.apply_duplicate(entry, txn_type, &original, &result, &reference),
            Err(e) => {
                tracing::info!(terminal = %entry.terminal, ecr = %original, error = %e, "DUPLICATE failed; tried again later");
                false
            }
        }
    }

    /// After a DUPLICATE the POS sent itself: resolves the unknown outcome it asked about, if any.
    pub(crate) fn resolve_from_duplicate(&self, key: &str, request: &Request, result: &TxnResult) {
        let Some(previous) = &request.previous_ecr_no else { return };
        let Ok(entries) = self.journal.unknown_entries_of(key) else { return };
        for entry in entries.iter().filter(|e| e.ecr_reference_no.ends_with(previous.as_str())) {
            let (Some(txn_type), Some(original)) = (entry.txn(), entry.ecr_reference()) else { continue };
            let by = request.ecr_reference.clone().unwrap_or_else(|| original.clone());
            self.apply_duplicate(entry, txn_type, &original, result, &by);
        }
    }

    fn apply_duplicate(
        &self,
        entry: &JournalEntry,
        txn_type: TxnType,
        original: &EcrReference,
        result: &TxnResult,
        by: &EcrReference,
    ) -> bool {
        let outcome = match classify(txn_type, original, &result.response) {
            Resolution::Found(inner) => {
                let parsed = inner.parsed(self.config.terminal.layout);
                let mut outcome = reply_outcome(&inner, &parsed, inner.approved(), &inner.message());
                outcome.resolved_by = Some(by.to_string());
                outcome
            }
            Resolution::NotFound(reason) => {
                let age = chrono::DateTime::parse_from_rfc3339(&entry.requested_at)
                    .map(|t| chrono::Utc::now().signed_duration_since(t))
                    .ok()
                    .and_then(|d| d.to_std().ok())
                    .unwrap_or_default();
                if age < self.config.recovery_grace {
                    tracing::info!(ecr = %original, %reason, "not found yet, but the terminal may still be processing it; asked again later");
                    return false;
                }
                Outcome {
                    state: Some(EntryState::NotFound),
                    status_code: StatusCode::NotFound.into(),
                    message: format!("{reason}: it was not processed, and the same ECR reference may be sent again"),
                    resolved_by: Some(by.to_string()),
                    ..Outcome::default()
                }
            }
            Resolution::Undecided(reason) => {
                tracing::info!(ecr = %original, %reason, "DUPLICATE did not settle the unknown outcome");
                return false;
            }
        };
        if let Err(e) = self.journal.finish(entry.id, &outcome) {
            tracing::warn!(error = %e, "the resolved outcome could not be written; asked again later");
            return false;
        }
        let state = outcome.state.map(|s| s.as_str()).unwrap_or("unknown");
        tracing::info!(terminal = %entry.terminal, ecr = %original, state, "unknown outcome resolved");
        self.emit(json!({
            "event": "outcomeResolved",
            "terminal": entry.terminal,
            "ecrReferenceNo": entry.ecr_reference_no,
            "state": state,
            "responseCode": outcome.response_code,
        }));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(fields: &[&str]) -> Response {
        Response::from_fields(fields.iter().map(|s| s.to_string()).collect())
    }

    fn reference() -> EcrReference {
        EcrReference::parse("12345678000001").unwrap()
    }

    #[test]
    fn a_repeated_purchase_with_our_reference_is_found() {
        let r = reply(&[
            "",
            "C2",
            "000",
            "APPROVED",
            "A1",
            "000",
            "APPROVED",
            "558812******1234",
            "000000001000",
            "12345678000001",
            "sig",
            "12345678000009",
            "sig2",
        ]);
        match classify(TxnType::Purchase, &reference(), &r) {
            Resolution::Found(inner) => assert!(inner.approved()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_repeated_reply_without_a_command_is_read_with_the_journaled_type_when_it_carries_our_reference() {
        let headless = |reference: &str| {
            reply(&[
                "",
                "C2",
                "000",
                "APPROVED",
                "000",
                "APPROVED",
                "558812******1234",
                "000000001000",
                reference,
                "sig",
                "12345678000009",
                "sig2",
            ])
        };
        match classify(TxnType::Purchase, &reference(), &headless("12345678000001")) {
            Resolution::Found(inner) => assert_eq!((inner.command(), inner.approved()), ("A1", true)),
            other => panic!("{other:?}"),
        }
        // Without our reference in it, it is not taken for ours.
        assert!(matches!(
            classify(TxnType::Purchase, &reference(), &headless("12345678000002")),
            Resolution::Undecided(_)
        ));
    }

    #[test]
    fn another_type_repeated_settles_nothing() {
        let r = reply(&["", "C2", "000", "APPROVED", "A6", "000", "APPROVED", "x", "12345678000009", "sig2"]);
        assert!(matches!(classify(TxnType::Purchase, &reference(), &r), Resolution::Undecided(_)));
    }

    #[test]
    fn no_data_found_means_not_processed() {
        let r = reply(&["", "C2", "100", "NO DATA FOUND", "12345678000009", "sig2"]);
        assert!(matches!(classify(TxnType::Purchase, &reference(), &r), Resolution::NotFound(_)));
        let r = reply(&["", "C2", "909", "SYSTEM MALFUNCTION"]);
        assert!(matches!(classify(TxnType::Purchase, &reference(), &r), Resolution::Undecided(_)));
    }
}
