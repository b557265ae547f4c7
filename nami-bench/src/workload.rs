//! The workload: simulated terminals, the transaction driven through them, and fresh ECR
//! references, shared by the three ways of reaching a terminal (raw socket, SDK, daemon).

use std::sync::atomic::{AtomicU32, Ordering};

use nami_sdk::{
    Amount, CashRegisterNo, EcrReference, LrcMode, Request, Signing, TerminalId, TxnDate, TxnType, encode_request,
};
use nami_sim::{SimConfig, Simulator};

/// The transaction every worker repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Txn {
    /// A card purchase of SAR 10.00 (approved, mada). The daemon journals it durably before
    /// sending (two SQLite commits with `synchronous=FULL` per purchase).
    Purchase,
    /// CHECK STATUS: not journaled, so the daemon's figure is its transport overhead alone.
    CheckStatus,
}

impl Txn {
    pub fn txn_type(self) -> TxnType {
        match self {
            Txn::Purchase => TxnType::Purchase,
            Txn::CheckStatus => TxnType::CheckStatus,
        }
    }

    /// The REST `txnType`.
    pub fn rest_name(self) -> &'static str {
        self.txn_type().name()
    }

    pub fn label(self) -> &'static str {
        match self {
            Txn::Purchase => "purchase",
            Txn::CheckStatus => "check-status",
        }
    }

    /// The response code that counts as success.
    pub fn expected_code(self) -> &'static str {
        "000"
    }

    /// The request, as the SDK and the raw client build it.
    pub fn request(self, ecr_reference: &EcrReference) -> Request {
        let mut request = Request::new(self.txn_type(), TxnDate::now());
        request.ecr_reference = Some(ecr_reference.clone());
        if self == Txn::Purchase {
            request.amount = Some(amount());
            request.print = Some(false);
        }
        request
    }

    /// The daemon's `paymentRequest`.
    pub fn payment_json(self, ecr_reference: &EcrReference) -> serde_json::Value {
        match self {
            Txn::Purchase => serde_json::json!({
                "txnType": self.rest_name(), "amount": "10.00", "print": "0",
                "ecrReferenceNo": ecr_reference.as_str(),
            }),
            Txn::CheckStatus => {
                serde_json::json!({"txnType": self.rest_name(), "ecrReferenceNo": ecr_reference.as_str()})
            }
        }
    }
}

pub fn amount() -> Amount {
    Amount::from_halalas(1000).expect("SAR 10.00 is a valid amount")
}

/// One simulated terminal and its ECR reference sequence.
pub struct BenchTerminal {
    pub sim: Simulator,
    pub cash_register_no: CashRegisterNo,
    next_sequence: AtomicU32,
}

impl BenchTerminal {
    pub fn port(&self) -> u16 {
        self.sim.addr().port()
    }

    pub fn terminal_id(&self) -> TerminalId {
        self.sim.terminal_id()
    }

    /// A reference never used before on this terminal in this run (the daemon's idempotency
    /// would otherwise replay a stored result instead of sending).
    pub fn next_reference(&self) -> EcrReference {
        let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
        EcrReference::from_parts(&self.cash_register_no, sequence).expect("fewer than a million per terminal")
    }

    /// The frame of `txn`, signed with the simulator's terminal ID, ready to write.
    pub fn frame(&self, txn: Txn, ecr_reference: &EcrReference) -> Vec<u8> {
        let terminal_id = self.terminal_id();
        encode_request(&txn.request(ecr_reference), Signing::TerminalId(&terminal_id), LrcMode::Skyband)
            .expect("the bench's requests are valid")
    }
}

/// Starts `count` simulators on free loopback ports, already registered, with no think time.
pub fn start_terminals(count: usize) -> std::io::Result<Vec<BenchTerminal>> {
    (0..count)
        .map(|i| {
            let sim = Simulator::start(SimConfig { registered: true, ..SimConfig::default() })?;
            let cash_register_no =
                CashRegisterNo::parse(&format!("{:08}", 10_000_000 + i)).expect("8 digits, first non-zero");
            Ok(BenchTerminal { sim, cash_register_no, next_sequence: AtomicU32::new(1) })
        })
        .collect()
}

pub fn stop_terminals(terminals: &[BenchTerminal]) {
    for terminal in terminals {
        terminal.sim.shutdown();
    }
}

/// The response code of a raw reply frame (`STX FS cmd FS code FS … ETX LRC`).
pub fn reply_code(reply: &[u8]) -> Option<&str> {
    let start = reply.iter().position(|b| *b == nami_sdk::protocol::frame::STX)?;
    let mut fields = reply[start + 1..].split(|b| *b == nami_sdk::protocol::frame::FS);
    fields.next()?; // the empty slot before the first separator
    fields.next()?; // the command
    std::str::from_utf8(fields.next()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_fresh_and_frames_carry_them() {
        let terminals = start_terminals(1).unwrap();
        let terminal = &terminals[0];
        let (a, b) = (terminal.next_reference(), terminal.next_reference());
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "10000000000001");
        let frame = terminal.frame(Txn::Purchase, &a);
        assert!(frame.windows(14).any(|w| w == a.as_str().as_bytes()));
        stop_terminals(&terminals);
    }

    #[test]
    fn the_reply_code_is_field_two() {
        let reply = nami_sdk::encode_fields(&["A1", "000", "APPROVED"], LrcMode::Skyband);
        assert_eq!(reply_code(&reply), Some("000"));
        assert_eq!(reply_code(b"junk"), None);
    }
}
