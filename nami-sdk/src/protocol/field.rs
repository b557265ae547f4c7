//! The request fields of the wire protocol: one row per field with its width, its character set
//! and the error code a bad value earns (docs/protocol.md §2.1, §2.2, D2).
//!
//! Every other module asks this table; no width or error code is written down anywhere else.

use crate::status::StatusCode;
use std::fmt;

/// What characters a field may hold and how a short value is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// ASCII digits, exactly `width` of them.
    Digits,
    /// ASCII digits, at most `width`; shorter values are zero-padded on the left, as the vendor's
    /// packer does with `%0Nlld`.
    PaddedDigits,
    /// ASCII letters and digits, exactly `width` of them.
    Alphanumeric,
    /// Lowercase hexadecimal digits, exactly `width` of them.
    LowerHex,
}

/// A request field, named for what it means rather than where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Transaction date and time, `ddMMyyHHmmss`.
    Date,
    /// The amount in halalas (purchase, refund, pre-auth, original amount of a void, ...).
    Amount,
    /// The cashback part of a purchase with cashback, in halalas.
    CashbackAmount,
    /// ECR reference: cash register number (8) + sequence (6).
    EcrReference,
    /// Whether the terminal prints the cardholder receipt (`0`/`1`).
    Print,
    /// SHA-256 signature (docs/protocol.md D5).
    Signature,
    /// Cash register number used by register and sessions.
    CashRegisterNo,
    /// Retrieval reference number of the original transaction.
    Rrn,
    /// Date of the original transaction, `ddMMyy`.
    OriginalDate,
    /// Approval code of the original transaction.
    ApprovalCode,
    /// Partial (`0`) or full (`1`) completion of a pre-authorisation.
    PartialFlag,
    /// Biller of a bill payment.
    BillerId,
    /// Bill number of a bill payment.
    BillNumber,
    VendorId,
    VendorTerminalType,
    TrsmId,
    VendorKeyIndex,
    SamaKeyIndex,
    /// Terminal language of SET_TERMINAL_LANGUAGE.
    Language,
    /// Page of the summary report: 0 first, then 1..N.
    RequestAttemptNo,
    /// Last 6 digits of the ECR reference a DUPLICATE asks for.
    PreviousEcrNo,
}

/// The static facts of one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub field: Field,
    /// Name used in JSON bodies and error messages (the REST `paymentRequest` spelling).
    pub name: &'static str,
    /// Width on the wire, in bytes.
    pub width: usize,
    pub charset: Charset,
    /// Middleware status code of a bad value.
    pub error_code: StatusCode,
}

const fn spec(field: Field, name: &'static str, width: usize, charset: Charset, error_code: StatusCode) -> FieldSpec {
    FieldSpec { field, name, width, charset, error_code }
}

use Charset::{Alphanumeric, Digits, LowerHex, PaddedDigits};

/// The field table. Amounts are validated by [`crate::Amount`]; their charset here describes
/// their wire form.
pub const FIELDS: &[FieldSpec] = &[
    spec(Field::Date, "date", 12, Digits, StatusCode::InvalidDate),
    spec(Field::Amount, "amount", 12, PaddedDigits, StatusCode::InvalidAmount),
    spec(Field::CashbackAmount, "cashBackAmount", 12, PaddedDigits, StatusCode::InvalidAmount),
    spec(Field::EcrReference, "ecrReferenceNo", 14, Digits, StatusCode::InvalidEcrRef),
    spec(Field::Print, "print", 1, Digits, StatusCode::InvalidPrint),
    spec(Field::Signature, "signature", 64, LowerHex, StatusCode::InvalidSignature),
    spec(Field::CashRegisterNo, "cashRegisterNo", 8, Digits, StatusCode::InvalidCashRegisterNo),
    spec(Field::Rrn, "rrnNumber", 12, Alphanumeric, StatusCode::InvalidRrn),
    spec(Field::OriginalDate, "origTransactionDate", 6, Digits, StatusCode::InvalidOrigDate),
    spec(Field::ApprovalCode, "origApproveCode", 6, Alphanumeric, StatusCode::InvalidApprovalCode),
    spec(Field::PartialFlag, "capture", 1, Digits, StatusCode::InvalidCapture),
    spec(Field::BillerId, "billerId", 6, PaddedDigits, StatusCode::InvalidBillerId),
    spec(Field::BillNumber, "billNumber", 6, PaddedDigits, StatusCode::InvalidBillNumber),
    spec(Field::VendorId, "vendorId", 2, Alphanumeric, StatusCode::InvalidVendorId),
    spec(Field::VendorTerminalType, "vendorTerminalType", 2, Alphanumeric, StatusCode::InvalidVendorTerminalType),
    spec(Field::TrsmId, "trsmId", 6, Alphanumeric, StatusCode::InvalidTrsmId),
    spec(Field::VendorKeyIndex, "vendorKeyIndex", 2, PaddedDigits, StatusCode::InvalidVendorKeyIndex),
    spec(Field::SamaKeyIndex, "samaKeyIndex", 2, PaddedDigits, StatusCode::InvalidSamaKeyIndex),
    spec(Field::Language, "terminalLanguage", 1, Digits, StatusCode::InvalidTerminalLanguage),
    spec(Field::RequestAttemptNo, "requestAttemptNo", 3, PaddedDigits, StatusCode::InvalidRequestAttemptNo),
    spec(Field::PreviousEcrNo, "prevEcrNo", 6, Digits, StatusCode::InvalidPrevEcrNo),
];

impl Field {
    /// The row of [`FIELDS`] for this field.
    pub fn spec(self) -> &'static FieldSpec {
        // The table is in declaration order; the assertion in the tests keeps it so.
        &FIELDS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn width(self) -> usize {
        self.spec().width
    }

    pub fn error_code(self) -> StatusCode {
        self.spec().error_code
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_table_is_in_declaration_order() {
        for (index, spec) in FIELDS.iter().enumerate() {
            assert_eq!(spec.field as usize, index, "{:?} is out of place", spec.field);
        }
    }
}
