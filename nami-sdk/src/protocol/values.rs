//! Typed request values. Each is validated once, when it is made, against the field table; after
//! that it is always fit to be sent.

use crate::status::StatusCode;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::field::{Charset, Field};
use crate::error::ValidationError;

/// Checks `text` against the width and charset of `field` and returns its wire form (zero-padded
/// for [`Charset::PaddedDigits`]).
pub fn validate_field(field: Field, text: &str) -> Result<String, ValidationError> {
    let spec = field.spec();
    let width = spec.width;
    if text.is_empty() {
        return Err(ValidationError::of(field, "is empty"));
    }
    match spec.charset {
        Charset::Digits | Charset::PaddedDigits => {
            if !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ValidationError::of(field, format!("must be digits only, got {text:?}")));
            }
        }
        Charset::Alphanumeric => {
            if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ValidationError::of(field, format!("must be ASCII letters and digits only, got {text:?}")));
            }
        }
        Charset::LowerHex => {
            if !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(ValidationError::of(field, format!("must be lowercase hexadecimal, got {text:?}")));
            }
        }
    }
    match spec.charset {
        Charset::PaddedDigits if text.len() <= width => Ok(format!("{text:0>width$}")),
        Charset::PaddedDigits => {
            Err(ValidationError::of(field, format!("must be at most {width} digits, got {} ({text:?})", text.len())))
        }
        _ if text.len() == width => Ok(text.to_owned()),
        _ => Err(ValidationError::of(
            field,
            format!("must be exactly {width} characters, got {} ({text:?})", text.len()),
        )),
    }
}

/// Declares a newtype over a validated wire string of one field.
macro_rules! wire_text {
    ($(#[$doc:meta])* $name:ident, $field:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `text` (see the field table).
            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                validate_field($field, text).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(text: &str) -> Result<Self, ValidationError> {
                Self::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

wire_text!(
    /// 8-digit cash register number (REGISTER and sessions; the first 8 digits of an ECR reference).
    CashRegisterNo,
    Field::CashRegisterNo
);
wire_text!(
    /// 12-character retrieval reference number of an earlier transaction.
    Rrn,
    Field::Rrn
);
wire_text!(
    /// 6-character approval code of an earlier transaction.
    ApprovalCode,
    Field::ApprovalCode
);
wire_text!(
    /// Biller of a bill payment (up to 6 digits, zero-padded).
    BillerId,
    Field::BillerId
);
wire_text!(
    /// Bill number of a bill payment (up to 6 digits, zero-padded).
    BillNumber,
    Field::BillNumber
);
wire_text!(VendorId, Field::VendorId);
wire_text!(VendorTerminalType, Field::VendorTerminalType);
wire_text!(TrsmId, Field::TrsmId);
wire_text!(VendorKeyIndex, Field::VendorKeyIndex);
wire_text!(SamaKeyIndex, Field::SamaKeyIndex);
wire_text!(
    /// Terminal language code (one digit).
    Language,
    Field::Language
);

/// An amount in halalas (1 SAR = 100 halalas), at most 12 digits as the wire allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(u64);

impl Amount {
    /// The largest amount a 12-digit field holds.
    pub const MAX_HALALAS: u64 = 999_999_999_999;

    pub fn from_halalas(halalas: u64) -> Result<Self, ValidationError> {
        if halalas > Self::MAX_HALALAS {
            return Err(ValidationError::of(
                Field::Amount,
                format!("is {halalas} halalas, more than the 12 digits the terminal accepts"),
            ));
        }
        Ok(Amount(halalas))
    }

    /// Parses a decimal SAR string such as `"10"`, `"10.5"` or `"10.00"` exactly (docs/protocol.md D6):
    /// no sign, no exponent, at most two decimals. Zero is accepted here; a request that needs a
    /// positive amount checks that itself.
    pub fn from_sar(text: &str) -> Result<Self, ValidationError> {
        Self::from_sar_named(text, Field::Amount, Field::Amount.name())
    }

    /// [`Amount::from_sar`] for a field the caller calls `name` (e.g. `refundAmount`).
    pub fn from_sar_named(text: &str, field: Field, name: &str) -> Result<Self, ValidationError> {
        let bad = |reason: String| ValidationError::named(field, name, reason);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("is empty; give a decimal SAR amount such as \"10.00\"".into()));
        }
        let (whole, fraction) = match trimmed.split_once('.') {
            Some((w, f)) => (w, f),
            None => (trimmed, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(bad(format!("must be a decimal SAR amount such as \"10.00\", got {text:?}")));
        }
        if trimmed.contains('.') && fraction.is_empty() {
            return Err(bad(format!("has a decimal point without decimals: {text:?}")));
        }
        if fraction.len() > 2 {
            return Err(bad(format!("has more than two decimals: {text:?}")));
        }
        let whole = whole.trim_start_matches('0');
        // Ten whole-SAR digits plus two decimals fill the 12 digits of halalas.
        if whole.len() > 10 {
            return Err(bad(format!("is more than the 12 digits of halalas the terminal accepts: {text:?}")));
        }
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad(format!("{text:?}")))? };
        let cents: u64 = format!("{fraction:0<2}").parse().map_err(|_| bad(format!("{text:?}")))?;
        let halalas = whole * 100 + cents;
        Amount::from_halalas(halalas).map_err(|e| bad(e.reason))
    }

    /// Parses integer halalas as Nami's inputReqData strings carry them (`"100"` = SAR 1.00).
    pub fn from_halalas_text(text: &str, field: Field) -> Result<Self, ValidationError> {
        let wire = validate_field(field, text)?;
        let halalas: u64 = wire.parse().map_err(|_| ValidationError::of(field, format!("{text:?}")))?;
        Ok(Amount(halalas))
    }

    pub fn halalas(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The 12-digit wire form.
    pub fn to_wire(self) -> String {
        format!("{:012}", self.0)
    }
}

impl fmt::Display for Amount {
    /// Decimal SAR with two decimals, e.g. `10.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Transaction date and time, `ddMMyyHHmmss` (12 digits, 24-hour clock).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnDate(String);

impl TxnDate {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let wire = validate_field(Field::Date, text)?;
        // chrono knows the length of each month and leap years (31 February is not a date).
        if chrono::NaiveDateTime::parse_from_str(&wire, "%d%m%y%H%M%S").is_err() {
            return Err(ValidationError::of(
                Field::Date,
                format!("must be a real date and time as ddMMyyHHmmss, got {text:?}"),
            ));
        }
        Ok(TxnDate(wire))
    }

    /// The current local time.
    pub fn now() -> Self {
        TxnDate(chrono::Local::now().format("%d%m%y%H%M%S").to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TxnDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ECR reference: exactly 14 digits, first non-zero (docs/protocol.md D7): the 8-digit cash register
/// number followed by a 6-digit sequence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EcrReference(String);

impl EcrReference {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let wire = validate_field(Field::EcrReference, text)?;
        if wire.starts_with('0') {
            return Err(ValidationError::of(Field::EcrReference, format!("must not start with 0, got {text:?}")));
        }
        Ok(EcrReference(wire))
    }

    /// The cash register number and a sequence number (0..=999999).
    pub fn from_parts(register: &CashRegisterNo, sequence: u32) -> Result<Self, ValidationError> {
        if sequence > 999_999 {
            return Err(ValidationError::of(Field::EcrReference, format!("sequence {sequence} exceeds 6 digits")));
        }
        Self::parse(&format!("{}{sequence:06}", register.as_str()))
    }

    /// The reference that follows sequence `previous` of `register`'s sequence of references
    /// (D7), with its sequence: 1 to 999999, then 1 again. Sequence 0 is never handed out, so a
    /// counter that starts at 0 (nothing sent yet) and one that wrapped behave alike.
    pub fn next_in_sequence(register: &CashRegisterNo, previous: u32) -> Result<(Self, u32), ValidationError> {
        let sequence = previous % 999_999 + 1;
        Ok((Self::from_parts(register, sequence)?, sequence))
    }

    /// The last six digits: what the signature and DUPLICATE use.
    pub fn last6(&self) -> &str {
        &self.0[8..]
    }

    /// The first eight digits: the cash register number.
    pub fn cash_register_no(&self) -> CashRegisterNo {
        CashRegisterNo(self.0[..8].to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EcrReference {
    type Err = ValidationError;
    fn from_str(text: &str) -> Result<Self, ValidationError> {
        Self::parse(text)
    }
}

impl fmt::Display for EcrReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The six digits that name an earlier transaction for DUPLICATE. Accepts the full 14-digit ECR
/// reference or its last six digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreviousEcrNo(String);

impl PreviousEcrNo {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let field = Field::PreviousEcrNo;
        if text.len() == 14 && text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(PreviousEcrNo(text[8..].to_owned()));
        }
        validate_field(field, text)
            .map(PreviousEcrNo)
            .map_err(|e| ValidationError::of(field, format!("{} (6 digits or a 14-digit ECR reference)", e.reason)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&EcrReference> for PreviousEcrNo {
    fn from(reference: &EcrReference) -> Self {
        PreviousEcrNo(reference.last6().to_owned())
    }
}

/// Date of the original transaction, `ddMMyy`. A full `ddMMyyHHmmss` is accepted and cut to its
/// date, since integrators often pass the original transaction's 12-digit date.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginalDate(String);

impl OriginalDate {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        if text.len() == 12 {
            return TxnDate::parse(text)
                .map(|d| OriginalDate(d.as_str()[..6].to_owned()))
                .map_err(|e| ValidationError::of(Field::OriginalDate, e.reason));
        }
        validate_field(Field::OriginalDate, text).map(OriginalDate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 16-digit terminal ID the terminal returns to REGISTER (field [3]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TerminalId(String);

impl TerminalId {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        if text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(TerminalId(text.to_owned()))
        } else {
            Err(ValidationError::other(
                StatusCode::InvalidTerminalId,
                "terminalId",
                format!("must be exactly 16 digits, got {text:?}"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TerminalId {
    type Err = ValidationError;
    fn from_str(text: &str) -> Result<Self, ValidationError> {
        Self::parse(text)
    }
}

impl fmt::Display for TerminalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request signature (docs/protocol.md D5): lowercase hex SHA-256 of the last six digits of the
/// ECR reference followed by the 16-digit terminal ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature(String);

impl Signature {
    pub fn compute(reference: &EcrReference, terminal_id: &TerminalId) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(reference.last6().as_bytes());
        hasher.update(terminal_id.as_str().as_bytes());
        Signature(hex::encode(hasher.finalize()))
    }

    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        validate_field(Field::Signature, text).map(Signature)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a one-digit `0`/`1` flag.
pub fn parse_flag(field: Field, text: &str) -> Result<bool, ValidationError> {
    match text {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(ValidationError::of(field, format!("must be \"0\" or \"1\", got {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sar_amounts_convert_exactly_to_halalas() {
        for (text, halalas) in [
            ("10", 1000),
            ("10.5", 1050),
            ("10.00", 1000),
            ("0.01", 1),
            ("0010.10", 1010),
            ("9999999999.99", 999_999_999_999),
        ] {
            assert_eq!(Amount::from_sar(text).unwrap().halalas(), halalas, "{text}");
        }
    }

    #[test]
    fn malformed_amounts_are_invalid_amount() {
        for text in ["", " ", "-1", "+1", "1e3", "1.234", "1.", ".5", "abc", "10,00", "10000000000.00", "١٠"] {
            let err = Amount::from_sar(text).unwrap_err();
            assert_eq!(err.code, StatusCode::InvalidAmount, "{text:?}");
            assert_eq!(err.field, "amount");
        }
    }

    #[test]
    fn amount_errors_name_the_callers_field() {
        let err = Amount::from_sar_named("x", Field::Amount, "refundAmount").unwrap_err();
        assert_eq!((err.code, err.field.as_str()), (StatusCode::InvalidAmount, "refundAmount"));
    }

    #[test]
    fn amounts_print_as_sar() {
        assert_eq!(Amount::from_halalas(1005).unwrap().to_string(), "10.05");
        assert_eq!(Amount::from_halalas(1005).unwrap().to_wire(), "000000001005");
        assert!(Amount::from_halalas(Amount::MAX_HALALAS + 1).is_err());
    }

    #[test]
    fn ecr_references_are_14_digits_not_starting_with_zero() {
        assert!(EcrReference::parse("12345678000001").is_ok());
        for bad in ["02345678000001", "1234567800000", "123456780000012", "1234567800000a", ""] {
            assert_eq!(EcrReference::parse(bad).unwrap_err().code, StatusCode::InvalidEcrRef, "{bad}");
        }
        let r = EcrReference::parse("12345678000042").unwrap();
        assert_eq!(r.last6(), "000042");
        assert_eq!(r.cash_register_no().as_str(), "12345678");
    }

    #[test]
    fn each_field_has_its_own_error_code() {
        assert_eq!(TxnDate::parse("320120101010").unwrap_err().code, StatusCode::InvalidDate);
        assert_eq!(TxnDate::parse("310225101010").unwrap_err().code, StatusCode::InvalidDate, "31 February");
        assert_eq!(TxnDate::parse("290225101010").unwrap_err().code, StatusCode::InvalidDate, "2025 is no leap year");
        assert!(TxnDate::parse("290224235959").is_ok(), "2024 is one");
        assert_eq!(TxnDate::parse("010125240000").unwrap_err().code, StatusCode::InvalidDate, "hour 24");
        assert_eq!(OriginalDate::parse("310425101010").unwrap_err().code, StatusCode::InvalidOrigDate, "31 April");
        assert_eq!(TxnDate::parse("0101201").unwrap_err().code, StatusCode::InvalidDate);
        assert_eq!(CashRegisterNo::parse("1234567").unwrap_err().code, StatusCode::InvalidCashRegisterNo);
        assert_eq!(Rrn::parse("12345678901").unwrap_err().code, StatusCode::InvalidRrn);
        assert_eq!(ApprovalCode::parse("12 456").unwrap_err().code, StatusCode::InvalidApprovalCode);
        assert_eq!(OriginalDate::parse("2003201").unwrap_err().code, StatusCode::InvalidOrigDate);
        assert_eq!(BillerId::parse("1234567").unwrap_err().code, StatusCode::InvalidBillerId);
        assert_eq!(BillNumber::parse("x").unwrap_err().code, StatusCode::InvalidBillNumber);
        assert_eq!(VendorId::parse("1").unwrap_err().code, StatusCode::InvalidVendorId);
        assert_eq!(VendorTerminalType::parse("123").unwrap_err().code, StatusCode::InvalidVendorTerminalType);
        assert_eq!(TrsmId::parse("12345").unwrap_err().code, StatusCode::InvalidTrsmId);
        assert_eq!(VendorKeyIndex::parse("123").unwrap_err().code, StatusCode::InvalidVendorKeyIndex);
        assert_eq!(SamaKeyIndex::parse("a").unwrap_err().code, StatusCode::InvalidSamaKeyIndex);
        assert_eq!(Language::parse("12").unwrap_err().code, StatusCode::InvalidTerminalLanguage);
        assert_eq!(PreviousEcrNo::parse("12345").unwrap_err().code, StatusCode::InvalidPrevEcrNo);
        assert_eq!(Signature::parse("ABC").unwrap_err().code, StatusCode::InvalidSignature);
        assert_eq!(TerminalId::parse("123").unwrap_err().code, StatusCode::InvalidTerminalId);
        assert_eq!(parse_flag(Field::Print, "2").unwrap_err().code, StatusCode::InvalidPrint);
        assert_eq!(parse_flag(Field::PartialFlag, "").unwrap_err().code, StatusCode::InvalidCapture);
    }

    #[test]
    fn padded_fields_are_zero_filled_like_the_vendor_packer() {
        assert_eq!(BillerId::parse("42").unwrap().as_str(), "000042");
        assert_eq!(VendorKeyIndex::parse("3").unwrap().as_str(), "03");
    }

    #[test]
    fn a_sequence_of_references_runs_from_1_to_999999_and_never_hands_out_0() {
        let register = CashRegisterNo::parse("12345678").unwrap();
        let next = |previous| EcrReference::next_in_sequence(&register, previous).unwrap();
        assert_eq!(next(0).0.as_str(), "12345678000001");
        assert_eq!(next(41), (EcrReference::parse("12345678000042").unwrap(), 42));
        assert_eq!(next(999_998).0.last6(), "999999");
        assert_eq!(next(999_999), (EcrReference::parse("12345678000001").unwrap(), 1), "wraps to 1, not 0");
        assert_eq!(next(1_000_000).1, 2, "a counter kept past the range stays in it");
    }

    #[test]
    fn previous_ecr_no_takes_the_last_six_digits_of_a_reference() {
        assert_eq!(PreviousEcrNo::parse("12345678000123").unwrap().as_str(), "000123");
        assert_eq!(PreviousEcrNo::parse("000123").unwrap().as_str(), "000123");
    }

    #[test]
    fn original_date_accepts_the_full_original_timestamp() {
        assert_eq!(OriginalDate::parse("080625120000").unwrap().as_str(), "080625");
        assert_eq!(OriginalDate::parse("200320").unwrap().as_str(), "200320");
    }

    #[test]
    fn signature_matches_the_vendor_example() {
        let r = EcrReference::parse("12345678000001").unwrap();
        let tid = TerminalId::parse("8184000200000077").unwrap();
        assert_eq!(
            Signature::compute(&r, &tid).as_str(),
            "e9a28f2886cd0b9b5a8f0dd5772d7a703ac26a5a12802e9fe108241856f31778"
        );
        let tid = TerminalId::parse("1160000101300001").unwrap();
        assert_eq!(
            Signature::compute(&r, &tid).as_str(),
            "52eb605ca4b3ccefad1290c5c78322e4119c253b6fae55b4644b9afb702577a6"
        );
    }
}
