//! The rules of one exchange, apart from any socket (sans-IO, after rumqttc's `state.rs`): the
//! request is written, then the reply is waited for until its deadline; strays and late replies
//! to earlier requests are discarded; a reply without ETX ends after a silence; a cancel ends the
//! wait; a broken link after the write leaves a payment's outcome unknown (D11).
//!
//! An [`Exchange`] does no I/O and reads no clock: a driver tells it what happened (the frame was
//! written, bytes arrived, the peer closed, the read failed) with the time, and asks it what to do
//! next ([`Exchange::poll`]): take the reply, give up with a [`Failure`], or wait for bytes until a
//! given instant. Two drivers use it: the blocking one of [`Terminal`](super::terminal::Terminal)
//! (a thread per call: the C ABI, the bindings, the CLI) and the tokio one
//! ([`Terminal::transact_async`](super::terminal::Terminal::transact_async): a waiting card costs
//! no thread, for the daemon). Each rule lives here once, so both drivers behave alike, and the
//! tests below check the rules with a fake clock.

use std::time::{Duration, Instant};

use super::config::TerminalConfig;
use super::error::UnknownOutcome;
use crate::protocol::decoder::{Frame, FrameDecoder};
use crate::protocol::redact::frame_hex_for_log;
use crate::protocol::request::Request;
use crate::protocol::response::Response;
use crate::protocol::txn_type::TxnKind;

/// What the driver does next.
#[derive(Debug)]
pub enum Step {
    /// The terminal's reply to this request.
    Reply(Frame),
    /// Wait for bytes (or a cancel) until this instant, then poll again.
    Wait(Instant),
    /// The exchange is over without a reply.
    Failed(Failure),
}

/// Why an exchange ended without a reply. `unknown` is set when the request may have been carried
/// out by the terminal (a financial request or a settlement that was written): it is never resent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The caller cancelled while the terminal worked. The terminal may still answer: the driver
    /// abandons the link (see [`Failure::abandons_link`]).
    Cancelled { unknown: Option<UnknownOutcome> },
    /// No reply before the deadline; the terminal may still answer (the link is abandoned).
    Timeout { timeout: Duration, unknown: Option<UnknownOutcome> },
    /// The link broke: the write failed, the read failed or the peer closed without a reply.
    LinkBroken { reason: String, unknown: Option<UnknownOutcome>, during_write: bool },
}

impl Failure {
    /// Whether a late reply may still come on this link, so that it must be closed (TCP) or its
    /// input discarded (serial) before the next request.
    pub fn abandons_link(&self) -> bool {
        matches!(self, Failure::Cancelled { .. } | Failure::Timeout { .. })
    }
}

/// One request and the wait for its reply.
pub struct Exchange<'a> {
    /// The terminal's key, for the logs.
    key: &'a str,
    request: &'a Request,
    config: &'a TerminalConfig,
    decoder: FrameDecoder,
    /// Set once the frame is written: the deadline runs from then.
    deadline: Option<Instant>,
    last_byte: Instant,
}

impl<'a> Exchange<'a> {
    /// An exchange for `request`, whose frame the driver writes next. `now` is when it starts.
    pub fn new(key: &'a str, request: &'a Request, config: &'a TerminalConfig, now: Instant) -> Self {
        Exchange { key, request, config, decoder: FrameDecoder::new(), deadline: None, last_byte: now }
    }

    /// How long the terminal has to answer (by the type's wait class).
    pub fn timeout(&self) -> Duration {
        self.config.timeout(self.request.txn_type.spec().wait)
    }

    /// The frame was written at `now`: the deadline starts.
    pub fn sent(&mut self, now: Instant) {
        self.deadline = Some(now + self.timeout());
        self.last_byte = now;
    }

    /// The frame could not be written. What was written of it may still have reached the
    /// terminal, so a payment's outcome is unknown.
    pub fn write_failed(&self, reason: String) -> Failure {
        Failure::LinkBroken { reason, unknown: self.unknown(), during_write: true }
    }

    /// Bytes arrived at `now`.
    pub fn received(&mut self, bytes: &[u8], now: Instant) {
        if !bytes.is_empty() {
            self.decoder.push(bytes);
            self.last_byte = now;
        }
    }

    /// The peer closed the link: what it sent is all there is, the reply or a broken link.
    pub fn peer_closed(&mut self) -> Result<Frame, Failure> {
        self.take_reply(true).ok_or_else(|| Failure::LinkBroken {
            reason: "the terminal closed the connection".into(),
            unknown: self.unknown(),
            during_write: false,
        })
    }

    /// Reading failed.
    pub fn read_failed(&self, reason: String) -> Failure {
        Failure::LinkBroken { reason, unknown: self.unknown(), during_write: false }
    }

    /// What to do at `now`: a reply that arrived wins over a cancel or the deadline passing at the
    /// same moment. `cancel_requested`: the caller asked to cancel.
    pub fn poll(&mut self, now: Instant, cancel_requested: bool) -> Step {
        let deadline = self.deadline.expect("poll is called after `sent`");
        let quiet = now.saturating_duration_since(self.last_byte);
        let frame_ended = (self.decoder.awaiting_lrc() && quiet >= self.config.lrc_grace)
            || (self.decoder.has_complete_field() && quiet >= self.config.silence);
        if let Some(reply) = self.take_reply(frame_ended) {
            return Step::Reply(reply);
        }
        let spec = self.request.txn_type.spec();
        if cancel_requested {
            tracing::info!(terminal = %self.key, txn = spec.name, "cancelled while waiting for the terminal");
            return Step::Failed(Failure::Cancelled { unknown: self.unknown() });
        }
        if now >= deadline {
            tracing::warn!(terminal = %self.key, txn = spec.name, "no reply before the deadline");
            return Step::Failed(Failure::Timeout { timeout: self.timeout(), unknown: self.unknown() });
        }
        // Wake when a frame without ETX (or still without its LRC byte) would end, else at the
        // deadline.
        let mut wake = deadline;
        if self.decoder.awaiting_lrc() {
            wake = wake.min(self.last_byte + self.config.lrc_grace);
        }
        if self.decoder.has_complete_field() {
            wake = wake.min(self.last_byte + self.config.silence);
        }
        Step::Wait(wake.max(now))
    }

    /// The first buffered frame that is this request's reply; with `frame_ended`, what is buffered
    /// counts as a frame too (a silence or a closed link ended it).
    fn take_reply(&mut self, frame_ended: bool) -> Option<Frame> {
        while let Some(frame) = self.decoder.next_frame() {
            if let Some(reply) = self.accept_reply(frame) {
                return Some(reply);
            }
        }
        if frame_ended {
            return self.decoder.finish().and_then(|frame| self.accept_reply(frame));
        }
        None
    }

    /// A frame is the reply if it echoes the request's command; anything else is a stray.
    fn accept_reply(&self, mut frame: Frame) -> Option<Frame> {
        tracing::trace!(terminal = %self.key, frame = %frame_hex_for_log(&frame.raw), "receive");
        if frame.lrc.is_some() && frame.lrc_matches(self.config.lrc) == Some(false) {
            tracing::debug!(terminal = %self.key, "reply LRC does not match (not enforced, D3)");
        }
        if !frame.command().trim().eq_ignore_ascii_case(self.request.txn_type.command()) {
            tracing::debug!(terminal = %self.key, command = frame.command(), "stray frame discarded");
            return None;
        }
        // A reply cut short (no ETX) counts only if its response code is whole, i.e. a separator
        // followed it; otherwise a truncated "000" could read as a decline.
        if !frame.terminated && frame.fields.len() < 4 {
            tracing::warn!(terminal = %self.key, "reply cut short before its response code");
            return None;
        }
        if !frame.terminated {
            tracing::warn!(terminal = %self.key, "reply without ETX accepted on its response code");
        }
        // A late reply to an earlier request with the same command echoes another ECR reference.
        // (The fields are lent to a Response and taken back: no copy of a 37-field reply.)
        let response = Response::from_fields(std::mem::take(&mut frame.fields));
        let echoed = response.ecr_reference();
        frame.fields = response.fields;
        if let (Some(echoed), Some(sent)) = (echoed, &self.request.ecr_reference)
            && echoed.len() == 14
            && echoed != sent.as_str()
        {
            tracing::debug!(terminal = %self.key, %echoed, "reply to another ECR reference discarded");
            return None;
        }
        Some(frame)
    }

    /// Whether a lost reply could mean a lost payment or a closed batch (D11): a reconciliation
    /// the terminal carried out must not be reported as surely failed, or a retry would close the
    /// next (empty) batch and the day's totals would be lost.
    fn unknown(&self) -> Option<UnknownOutcome> {
        let request = self.request;
        matches!(request.txn_type.spec().kind, TxnKind::Financial | TxnKind::Settlement)
            .then(|| request.ecr_reference.clone())
            .flatten()
            .map(|ecr_reference| UnknownOutcome { txn_type: request.txn_type, ecr_reference })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{ETX, FS, STX};
    use crate::protocol::txn_type::TxnType;
    use crate::protocol::values::{Amount, EcrReference, TxnDate};

    const ECR: &str = "12345678000001";

    fn purchase() -> Request {
        let mut request = Request::new(TxnType::Purchase, TxnDate::parse("040126120000").unwrap());
        request.ecr_reference = Some(EcrReference::parse(ECR).unwrap());
        request.amount = Some(Amount::from_sar("10.00").unwrap());
        request.print = Some(false);
        request
    }

    fn check_status() -> Request {
        let mut request = Request::new(TxnType::CheckStatus, TxnDate::parse("040126120000").unwrap());
        request.ecr_reference = Some(EcrReference::parse(ECR).unwrap());
        request
    }

    /// A reply frame: STX, the fields separated by FS, ETX and an LRC byte when `etx`.
    fn reply(fields: &[&str], etx: bool) -> Vec<u8> {
        let mut bytes = vec![STX];
        for field in fields {
            bytes.push(FS);
            bytes.extend_from_slice(field.as_bytes());
        }
        bytes.push(FS);
        if etx {
            bytes.extend_from_slice(&[ETX, 0x41]);
        }
        bytes
    }

    fn purchase_reply(code: &str, ecr: &str) -> Vec<u8> {
        // [1] command, [2] code, [3] message, ..., the ECR echo in [35] (the 3.5 layout).
        let mut fields = vec![""; 36];
        (fields[0], fields[1], fields[2]) = ("A1", code, "APPROVED");
        fields[35 - 1] = ecr;
        reply(&fields, true)
    }

    fn waiting(step: &Step) -> Instant {
        match step {
            Step::Wait(until) => *until,
            other => panic!("expected to wait, got {other:?}"),
        }
    }

    #[test]
    fn the_deadline_runs_from_the_write_and_ends_in_a_timeout_that_leaves_the_payment_unknown() {
        let (request, config) = (purchase(), TerminalConfig::default());
        let t0 = Instant::now();
        let mut exchange = Exchange::new("t", &request, &config, t0);
        exchange.sent(t0);
        assert_eq!(waiting(&exchange.poll(t0, false)), t0 + config.card_present_timeout);
        assert!(matches!(
            exchange.poll(t0 + config.card_present_timeout - Duration::from_millis(1), false),
            Step::Wait(_)
        ));
        match exchange.poll(t0 + config.card_present_timeout, false) {
            Step::Failed(Failure::Timeout { timeout, unknown: Some(unknown) }) => {
                assert_eq!(timeout, Duration::from_secs(150));
                assert_eq!(unknown.ecr_reference.as_str(), ECR);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reply_is_taken_and_strays_and_late_replies_to_other_references_are_discarded() {
        let (request, config) = (purchase(), TerminalConfig::default());
        let t0 = Instant::now();
        let mut exchange = Exchange::new("t", &request, &config, t0);
        exchange.sent(t0);
        // A stray of another command, then a late reply to an earlier purchase, then ours.
        exchange.received(&reply(&["B1", "000"], true), t0);
        exchange.received(&purchase_reply("000", "12345678000000"), t0);
        exchange.received(&purchase_reply("000", ECR), t0);
        match exchange.poll(t0, false) {
            Step::Reply(frame) => {
                let response = Response::from_frame(frame);
                assert_eq!(response.code(), "000");
                assert_eq!(response.ecr_reference().as_deref(), Some(ECR));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reply_without_etx_ends_after_the_silence_and_one_cut_before_its_code_never_counts() {
        let (request, config) = (check_status(), TerminalConfig::default());
        let t0 = Instant::now();
        let mut exchange = Exchange::new("t", &request, &config, t0);
        exchange.sent(t0);
        exchange.received(&reply(&["C3", "000", "OK"], false), t0);
        // Before the silence: wait exactly until it would end the frame.
        assert_eq!(waiting(&exchange.poll(t0, false)), t0 + config.silence);
        assert!(matches!(exchange.poll(t0 + config.silence, false), Step::Reply(_)));

        let mut cut = Exchange::new("t", &request, &config, t0);
        cut.sent(t0);
        cut.received(&[STX, FS, b'C', b'3', FS, b'0', b'0'], t0);
        assert!(matches!(cut.poll(t0 + config.silence, false), Step::Wait(_)));
        assert!(matches!(cut.peer_closed(), Err(Failure::LinkBroken { unknown: None, .. })));
    }

    #[test]
    fn a_cancel_ends_the_wait_but_a_reply_already_received_wins() {
        let (request, config) = (purchase(), TerminalConfig::default());
        let t0 = Instant::now();
        let mut exchange = Exchange::new("t", &request, &config, t0);
        exchange.sent(t0);
        match exchange.poll(t0, true) {
            Step::Failed(failure @ Failure::Cancelled { unknown: Some(_) }) => assert!(failure.abandons_link()),
            other => panic!("{other:?}"),
        }
        let mut answered = Exchange::new("t", &request, &config, t0);
        answered.sent(t0);
        answered.received(&purchase_reply("000", ECR), t0);
        assert!(matches!(answered.poll(t0, true), Step::Reply(_)));
    }

    #[test]
    fn a_broken_link_after_the_write_leaves_a_payment_unknown_and_an_inquiry_plainly_failed() {
        let config = TerminalConfig::default();
        let (purchase, status) = (purchase(), check_status());
        let t0 = Instant::now();
        let mut exchange = Exchange::new("t", &purchase, &config, t0);
        exchange.sent(t0);
        match exchange.peer_closed() {
            Err(failure @ Failure::LinkBroken { unknown: Some(_), during_write: false, .. }) => {
                assert!(!failure.abandons_link())
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            exchange.write_failed("broken pipe".into()),
            Failure::LinkBroken { unknown: Some(_), during_write: true, .. }
        ));
        let inquiry = Exchange::new("t", &status, &config, t0);
        assert!(matches!(inquiry.read_failed("reset".into()), Failure::LinkBroken { unknown: None, .. }));
    }

    #[test]
    fn a_reply_the_peer_closed_on_is_still_the_reply() {
        let (request, config) = (check_status(), TerminalConfig::default());
        let t0 = Instant::now();
        let mut exchange = Exchange::new("t", &request, &config, t0);
        exchange.sent(t0);
        exchange.received(&reply(&["C3", "000", "OK"], false), t0);
        assert!(exchange.peer_closed().is_ok());
    }
}
