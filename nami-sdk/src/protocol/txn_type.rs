//! The transaction-type table (docs/protocol.md §1.1, §2.2, D1, D4, D9): for each type its numeric
//! code, REST names, wire command, request fields, response class and how long to wait for it.
//! This is the only place these facts are written down.

use crate::status::StatusCode;
use std::fmt;
use std::str::FromStr;

use super::field::Field;
use crate::error::ValidationError;

/// A transaction type the terminal understands. The discriminant is the numeric code of the
/// SDK enum and of the REST `txnType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TxnType {
    Purchase = 0,
    PurchaseCashback = 1,
    Refund = 2,
    PreAuthorization = 3,
    PreAuthCompletion = 4,
    PreAuthExtension = 5,
    PreAuthVoid = 6,
    CashAdvance = 8,
    Reversal = 9,
    Reconciliation = 10,
    ParameterDownload = 11,
    SetParameter = 12,
    GetParameter = 13,
    SetTerminalLanguage = 14,
    Register = 17,
    StartSession = 18,
    EndSession = 19,
    BillPayment = 20,
    DetailReport = 21,
    SummaryReport = 22,
    Duplicate = 23,
    CheckStatus = 24,
    PartialDownload = 25,
    SnapshotTotal = 26,
}

/// How a reply is laid out and which response codes approve it (D9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// Card transactions in the §5.2 layout; approved by 000-099.
    Financial,
    /// Purchase with cashback: the §5.2 layout with cashback and total after the amount.
    FinancialCashback,
    /// Reversal: the §5.2 layout, approved by 400.
    Reversal,
    /// Reconciliation totals per scheme; approved by 500 (in balance) or 501 (out of balance).
    Reconciliation,
    /// Parameter download, set parameters, set language: an acknowledgement; approved by 300.
    FileAction,
    /// Get parameters: the terminal's vendor and key settings.
    Parameters,
    /// Register: the terminal ID in field [3]; approved by 800 or 1004 (D8).
    Register,
    /// Start and end session: just a response code.
    Session,
    /// Detail report (running total) and snapshot total: totals blocks; approved by 00.
    Report,
    /// Summary report: a page of transaction records; approved by 00.
    SummaryReport,
    /// Duplicate: wraps the earlier transaction's reply.
    Repeat,
    /// Check status: date/time and the ECR reference.
    Status,
}

/// How long a call may wait for the terminal (D4); the durations are settings of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitClass {
    /// The cardholder has to present a card: 150 s by default.
    CardPresent,
    /// Reversal, reconciliation, reports and duplicates: 60 s by default.
    Settlement,
    /// Register, sessions, status and parameters: 30 s by default.
    Admin,
}

/// What a transaction does to money, which decides how carefully it is journaled (D11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnKind {
    /// Moves or reserves money: never sent twice on the SDK's own initiative.
    Financial,
    /// Closes the day's batch.
    Settlement,
    /// Reads or sets terminal state without moving money.
    Query,
    /// Register and sessions: no ECR reference, no signature.
    Setup,
}

/// One row of the table.
#[derive(Debug)]
pub struct TxnSpec {
    pub txn_type: TxnType,
    /// Canonical REST enum name.
    pub name: &'static str,
    /// Other names integrators send for the same type (case-insensitive).
    pub aliases: &'static [&'static str],
    /// The two-character wire command.
    pub command: &'static str,
    /// Fields of Nami's `inputReqData` string, in its order.
    pub input_fields: &'static [Field],
    /// Fields between the command and the "120" field, in wire order.
    pub wire_fields: &'static [Field],
    pub response: ResponseClass,
    pub wait: WaitClass,
    pub kind: TxnKind,
}

impl TxnSpec {
    /// Whether the frame carries the print flag.
    pub fn has_print_flag(&self) -> bool {
        self.wire_fields.contains(&Field::Print)
    }

    /// Whether the frame carries a signature, i.e. whether the terminal must be registered.
    pub fn is_signed(&self) -> bool {
        self.wire_fields.contains(&Field::Signature)
    }

    /// Fields the caller must supply (the signature is computed, not supplied).
    pub fn required_fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.wire_fields.iter().copied().filter(|f| *f != Field::Signature)
    }
}

use Field::{
    Amount, ApprovalCode, BillNumber, BillerId, CashRegisterNo, CashbackAmount, Date, EcrReference, Language,
    OriginalDate, PartialFlag, PreviousEcrNo, Print, RequestAttemptNo, Rrn, SamaKeyIndex, Signature, TrsmId, VendorId,
    VendorKeyIndex, VendorTerminalType,
};
use ResponseClass as R;
use TxnKind as K;
use WaitClass as W;

// One argument per column keeps each row of the table on the page in column order.
#[allow(clippy::too_many_arguments)]
const fn row(
    txn_type: TxnType,
    name: &'static str,
    aliases: &'static [&'static str],
    command: &'static str,
    input_fields: &'static [Field],
    wire_fields: &'static [Field],
    response: ResponseClass,
    wait: WaitClass,
    kind: TxnKind,
) -> TxnSpec {
    TxnSpec { txn_type, name, aliases, command, input_fields, wire_fields, response, wait, kind }
}

const SIGNED_QUERY_INPUT: &[Field] = &[Date, EcrReference];
const SIGNED_QUERY_WIRE: &[Field] = &[Date, EcrReference, Signature];
const SETUP_FIELDS: &[Field] = &[Date, CashRegisterNo];
const CARD_INPUT: &[Field] = &[Date, Amount, Print, EcrReference];
const CARD_WIRE: &[Field] = &[Amount, Date, EcrReference, Print, Signature];

/// The transaction types, in code order.
pub const TXN_TYPES: &[TxnSpec] = &[
    row(TxnType::Purchase, "PURCHASE", &[], "A1", CARD_INPUT, CARD_WIRE, R::Financial, W::CardPresent, K::Financial),
    row(
        TxnType::PurchaseCashback,
        "PURCHASE_CASHBACK",
        &["PURCHASE_WITH_NAQD", "PURCHASE_WITH_CASHBACK"],
        "A2",
        &[Date, Amount, CashbackAmount, Print, EcrReference],
        &[Amount, CashbackAmount, Date, EcrReference, Print, Signature],
        R::FinancialCashback,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::Refund,
        "REFUND",
        &[],
        "A6",
        &[Date, Amount, Rrn, Print, OriginalDate, EcrReference],
        &[Date, Amount, Rrn, EcrReference, Print, Signature],
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::PreAuthorization,
        "PRE_AUTHORIZATION",
        &["AUTHORIZATION", "PRE_AUTHORISATION", "PREAUTH"],
        "A4",
        CARD_INPUT,
        CARD_WIRE,
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::PreAuthCompletion,
        "PRE_AUTH_COMPLETION",
        &["PURCHASE_ADVICE", "PURCHASE_ADVICE_FULL", "PRE_AUTHORIZATION_COMPLETION"],
        "A7",
        &[Date, Amount, Rrn, OriginalDate, ApprovalCode, PartialFlag, Print, EcrReference],
        &[Date, Amount, Rrn, OriginalDate, ApprovalCode, PartialFlag, EcrReference, Print, Signature],
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::PreAuthExtension,
        "PRE_AUTH_EXTENSION",
        &["AUTHORIZATION_EXTENSION"],
        "A8",
        &[Date, Rrn, OriginalDate, ApprovalCode, Print, EcrReference],
        &[Date, Rrn, OriginalDate, ApprovalCode, EcrReference, Print, Signature],
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::PreAuthVoid,
        "PRE_AUTH_VOID",
        &["AUTHORIZATION_VOID"],
        "A9",
        &[Date, Amount, Rrn, OriginalDate, ApprovalCode, Print, EcrReference],
        &[Date, Amount, Rrn, OriginalDate, ApprovalCode, EcrReference, Print, Signature],
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::CashAdvance,
        "CASH_ADVANCE",
        &[],
        "A3",
        CARD_INPUT,
        CARD_WIRE,
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::Reversal,
        "REVERSAL",
        &[],
        "A5",
        &[Date, Print, EcrReference],
        &[Date, EcrReference, Print, Signature],
        R::Reversal,
        W::Settlement,
        K::Financial,
    ),
    row(
        TxnType::Reconciliation,
        "RECONCILIATION",
        &["SETTLEMENT"],
        "B1",
        &[Date, Print, EcrReference],
        &[Date, EcrReference, Print, Signature],
        R::Reconciliation,
        W::Settlement,
        K::Settlement,
    ),
    row(
        TxnType::ParameterDownload,
        "PARAMETER_DOWNLOAD",
        &["FULL_DOWNLOAD"],
        "B2",
        SIGNED_QUERY_INPUT,
        SIGNED_QUERY_WIRE,
        R::FileAction,
        W::Admin,
        K::Query,
    ),
    row(
        TxnType::SetParameter,
        "SET_PARAMETER",
        &["SET_SETTINGS", "SET_PARAMETERS"],
        "B3",
        &[Date, VendorId, VendorTerminalType, TrsmId, VendorKeyIndex, SamaKeyIndex, EcrReference],
        &[Date, VendorId, VendorTerminalType, TrsmId, VendorKeyIndex, SamaKeyIndex, EcrReference, Signature],
        R::FileAction,
        W::Admin,
        K::Query,
    ),
    row(
        TxnType::GetParameter,
        "GET_PARAMETER",
        &["GET_SETTINGS", "GET_PARAMETERS"],
        "B4",
        SIGNED_QUERY_INPUT,
        SIGNED_QUERY_WIRE,
        R::Parameters,
        W::Admin,
        K::Query,
    ),
    row(
        TxnType::SetTerminalLanguage,
        "SET_TERMINAL_LANGUAGE",
        &[],
        "B5",
        &[Date, Language, EcrReference],
        &[Date, EcrReference, Language, Signature],
        R::FileAction,
        W::Admin,
        K::Query,
    ),
    row(TxnType::Register, "REGISTER", &[], "A0", SETUP_FIELDS, SETUP_FIELDS, R::Register, W::Admin, K::Setup),
    row(TxnType::StartSession, "START_SESSION", &[], "B6", SETUP_FIELDS, SETUP_FIELDS, R::Session, W::Admin, K::Setup),
    row(TxnType::EndSession, "END_SESSION", &[], "B7", SETUP_FIELDS, SETUP_FIELDS, R::Session, W::Admin, K::Setup),
    row(
        TxnType::BillPayment,
        "BILL_PAYMENT",
        &[],
        "B8",
        &[Date, Amount, BillerId, BillNumber, Print, EcrReference],
        &[BillerId, BillNumber, Amount, Date, EcrReference, Print, Signature],
        R::Financial,
        W::CardPresent,
        K::Financial,
    ),
    row(
        TxnType::DetailReport,
        "DETAIL_REPORT",
        &["RUNNING_TOTAL", "PRINT_DETAIL_REPORT"],
        "B9",
        SIGNED_QUERY_INPUT,
        SIGNED_QUERY_WIRE,
        R::Report,
        W::Settlement,
        K::Query,
    ),
    row(
        TxnType::SummaryReport,
        "SUMMARY_REPORT",
        &["PRINT_SUMMARY_REPORT"],
        "C1",
        &[Date, RequestAttemptNo, EcrReference],
        &[Date, RequestAttemptNo, EcrReference, Signature],
        R::SummaryReport,
        W::Settlement,
        K::Query,
    ),
    row(
        TxnType::Duplicate,
        "DUPLICATE",
        &["REPEAT"],
        "C2",
        &[Date, PreviousEcrNo, EcrReference],
        &[Date, PreviousEcrNo, EcrReference, Signature],
        R::Repeat,
        W::Settlement,
        K::Query,
    ),
    row(
        TxnType::CheckStatus,
        "CHECK_STATUS",
        &[],
        "C3",
        SIGNED_QUERY_INPUT,
        SIGNED_QUERY_WIRE,
        R::Status,
        W::Admin,
        K::Query,
    ),
    row(
        TxnType::PartialDownload,
        "PARTIAL_DOWNLOAD",
        &[],
        "C4",
        SIGNED_QUERY_INPUT,
        SIGNED_QUERY_WIRE,
        R::FileAction,
        W::Admin,
        K::Query,
    ),
    row(
        TxnType::SnapshotTotal,
        "SNAPSHOT_TOTAL",
        &[],
        "C5",
        SIGNED_QUERY_INPUT,
        SIGNED_QUERY_WIRE,
        R::Report,
        W::Settlement,
        K::Query,
    ),
];

/// Codes that exist in Nami's numbering but have no wire command (D1): refused, never sent.
pub const UNSUPPORTED_TXN_TYPES: &[(u8, &str)] =
    &[(7, "ADVICE"), (15, "TERMINAL_STATUS"), (16, "PREVIOUS_TRANSACTION_DETAILS"), (27, "PARTIAL_REVERSAL")];

impl TxnType {
    /// Every type, in code order.
    pub fn all() -> impl Iterator<Item = TxnType> {
        TXN_TYPES.iter().map(|s| s.txn_type)
    }

    /// The row of [`TXN_TYPES`] for this type.
    pub fn spec(self) -> &'static TxnSpec {
        TXN_TYPES.iter().find(|s| s.txn_type == self).expect("every TxnType has a row in TXN_TYPES (checked by a test)")
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn command(self) -> &'static str {
        self.spec().command
    }

    pub fn from_code(code: u8) -> Result<Self, ValidationError> {
        if let Some(spec) = TXN_TYPES.iter().find(|s| s.txn_type.code() == code) {
            return Ok(spec.txn_type);
        }
        Err(unsupported(&code.to_string(), UNSUPPORTED_TXN_TYPES.iter().find(|(c, _)| *c == code)))
    }

    /// The type a wire command (e.g. `A1`) stands for.
    pub fn from_command(command: &str) -> Option<Self> {
        TXN_TYPES.iter().find(|s| s.command.eq_ignore_ascii_case(command.trim())).map(|s| s.txn_type)
    }

    /// Accepts a numeric code (`0`, `"17"`) or a REST enum name or alias, case-insensitively.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u8>() {
                Ok(code) => Self::from_code(code),
                Err(_) => Err(unsupported(text, None)),
            };
        }
        let wanted = text.replace(['-', ' '], "_");
        if let Some(spec) = TXN_TYPES
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&wanted) || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(&wanted)))
        {
            return Ok(spec.txn_type);
        }
        Err(unsupported(text, UNSUPPORTED_TXN_TYPES.iter().find(|(_, n)| n.eq_ignore_ascii_case(&wanted))))
    }
}

fn unsupported(text: &str, known: Option<&(u8, &str)>) -> ValidationError {
    let reason = match known {
        Some((code, name)) => {
            format!("{code} ({name}) is an unsupported transaction type: it has no wire command, so nothing is sent")
        }
        None => format!("{text:?} is not a transaction type (give a code such as 0 or a name such as PURCHASE)"),
    };
    ValidationError::other(StatusCode::InvalidTxnType, "txnType", reason)
}

impl FromStr for TxnType {
    type Err = ValidationError;
    fn from_str(text: &str) -> Result<Self, ValidationError> {
        Self::parse(text)
    }
}

impl fmt::Display for TxnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_exactly_one_row_and_a_unique_command() {
        for spec in TXN_TYPES {
            assert_eq!(TXN_TYPES.iter().filter(|s| s.txn_type == spec.txn_type).count(), 1);
            assert_eq!(TXN_TYPES.iter().filter(|s| s.command == spec.command).count(), 1);
            assert_eq!(spec.txn_type.spec().command, spec.command);
        }
        assert_eq!(TXN_TYPES.len(), 24);
    }

    #[test]
    fn names_codes_and_aliases_resolve_case_insensitively() {
        assert_eq!(TxnType::parse("purchase").unwrap(), TxnType::Purchase);
        assert_eq!(TxnType::parse("0").unwrap(), TxnType::Purchase);
        assert_eq!(TxnType::parse("PURCHASE_WITH_NAQD").unwrap(), TxnType::PurchaseCashback);
        assert_eq!(TxnType::parse("authorization").unwrap(), TxnType::PreAuthorization);
        assert_eq!(TxnType::parse("PURCHASE_ADVICE").unwrap(), TxnType::PreAuthCompletion);
        assert_eq!(TxnType::parse("running_total").unwrap(), TxnType::DetailReport);
        assert_eq!(TxnType::parse("Repeat").unwrap(), TxnType::Duplicate);
        assert_eq!(TxnType::parse("17").unwrap(), TxnType::Register);
        assert_eq!(TxnType::from_command("C3"), Some(TxnType::CheckStatus));
    }

    #[test]
    fn types_without_a_wire_command_are_refused_by_code() {
        for code in [7u8, 15, 16, 27] {
            let err = TxnType::from_code(code).unwrap_err();
            assert_eq!(err.code, StatusCode::InvalidTxnType);
            assert!(err.reason.contains(&code.to_string()), "{}", err.reason);
            assert!(err.reason.contains("unsupported"), "{}", err.reason);
        }
        assert!(TxnType::parse("ADVICE").unwrap_err().reason.contains("7"));
        assert!(TxnType::parse("300").is_err());
        assert!(TxnType::parse("BOGUS").is_err());
    }

    #[test]
    fn setup_types_are_the_only_unsigned_ones() {
        for spec in TXN_TYPES {
            assert_eq!(!spec.is_signed(), spec.kind == TxnKind::Setup, "{}", spec.name);
        }
    }
}
