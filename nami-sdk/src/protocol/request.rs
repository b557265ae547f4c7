//! A request as typed values, and its two text forms: Nami's `inputReqData` string and the wire
//! fields. Which fields a type needs, and in which order, comes from the transaction-type table.

use super::field::Field;
use super::txn_type::TxnType;
use super::values::{
    Amount, ApprovalCode, BillNumber, BillerId, CashRegisterNo, EcrReference, Language, OriginalDate, PreviousEcrNo,
    Rrn, SamaKeyIndex, Signature, TrsmId, TxnDate, VendorId, VendorKeyIndex, VendorTerminalType, parse_flag,
    validate_field,
};
use crate::error::ValidationError;
use crate::status::StatusCode;

/// One request to the terminal. Fields a type does not use are ignored when it is encoded;
/// fields it needs and lacks are a [`ValidationError`] naming them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub txn_type: TxnType,
    pub date: TxnDate,
    /// Purchase, refund, pre-auth, completion, void (original amount), cash advance, bill amount.
    pub amount: Option<Amount>,
    /// Cashback part of PURCHASE_CASHBACK.
    pub cashback_amount: Option<Amount>,
    pub ecr_reference: Option<EcrReference>,
    /// Whether the terminal prints the cardholder receipt.
    pub print: Option<bool>,
    /// REGISTER, START_SESSION, END_SESSION.
    pub cash_register_no: Option<CashRegisterNo>,
    /// RRN of the original transaction (refund, completion, extension, void).
    pub rrn: Option<Rrn>,
    /// Date of the original transaction (completion, extension, void; refund input only).
    pub original_date: Option<OriginalDate>,
    /// Approval code of the original transaction.
    pub approval_code: Option<ApprovalCode>,
    /// The partial-capture flag of PRE_AUTH_COMPLETION (`capture` in REST).
    pub partial_flag: Option<bool>,
    pub biller_id: Option<BillerId>,
    pub bill_number: Option<BillNumber>,
    pub vendor_id: Option<VendorId>,
    pub vendor_terminal_type: Option<VendorTerminalType>,
    pub trsm_id: Option<TrsmId>,
    pub vendor_key_index: Option<VendorKeyIndex>,
    pub sama_key_index: Option<SamaKeyIndex>,
    pub language: Option<Language>,
    /// Page of SUMMARY_REPORT: 0 for the first call.
    pub request_attempt_no: Option<u16>,
    /// Which earlier transaction DUPLICATE asks for.
    pub previous_ecr_no: Option<PreviousEcrNo>,
}

impl Request {
    /// An empty request of `txn_type` dated `date`; set the fields the type needs.
    pub fn new(txn_type: TxnType, date: TxnDate) -> Self {
        Request {
            txn_type,
            date,
            amount: None,
            cashback_amount: None,
            ecr_reference: None,
            print: None,
            cash_register_no: None,
            rrn: None,
            original_date: None,
            approval_code: None,
            partial_flag: None,
            biller_id: None,
            bill_number: None,
            vendor_id: None,
            vendor_terminal_type: None,
            trsm_id: None,
            vendor_key_index: None,
            sama_key_index: None,
            language: None,
            request_attempt_no: None,
            previous_ecr_no: None,
        }
    }

    /// Sets one field from its text form: amounts as integer halalas (the inputReqData and wire
    /// form), flags as `0`/`1`, everything else as the field table says.
    pub fn set_text(&mut self, field: Field, text: &str) -> Result<(), ValidationError> {
        match field {
            Field::Date => self.date = TxnDate::parse(text)?,
            Field::Amount => self.amount = Some(Amount::from_halalas_text(text, field)?),
            Field::CashbackAmount => self.cashback_amount = Some(Amount::from_halalas_text(text, field)?),
            Field::EcrReference => self.ecr_reference = Some(EcrReference::parse(text)?),
            Field::Print => self.print = Some(parse_flag(field, text)?),
            // The signature is not part of the request: it is computed when the frame is made.
            Field::Signature => {
                Signature::parse(text)?;
            }
            Field::CashRegisterNo => self.cash_register_no = Some(CashRegisterNo::parse(text)?),
            Field::Rrn => self.rrn = Some(Rrn::parse(text)?),
            Field::OriginalDate => self.original_date = Some(OriginalDate::parse(text)?),
            Field::ApprovalCode => self.approval_code = Some(ApprovalCode::parse(text)?),
            Field::PartialFlag => self.partial_flag = Some(parse_flag(field, text)?),
            Field::BillerId => self.biller_id = Some(BillerId::parse(text)?),
            Field::BillNumber => self.bill_number = Some(BillNumber::parse(text)?),
            Field::VendorId => self.vendor_id = Some(VendorId::parse(text)?),
            Field::VendorTerminalType => self.vendor_terminal_type = Some(VendorTerminalType::parse(text)?),
            Field::TrsmId => self.trsm_id = Some(TrsmId::parse(text)?),
            Field::VendorKeyIndex => self.vendor_key_index = Some(VendorKeyIndex::parse(text)?),
            Field::SamaKeyIndex => self.sama_key_index = Some(SamaKeyIndex::parse(text)?),
            Field::Language => self.language = Some(Language::parse(text)?),
            Field::RequestAttemptNo => {
                let wire = validate_field(field, text)?;
                self.request_attempt_no = Some(wire.parse().map_err(|_| ValidationError::of(field, text))?);
            }
            Field::PreviousEcrNo => self.previous_ecr_no = Some(PreviousEcrNo::parse(text)?),
        }
        Ok(())
    }

    /// The wire text of one field, if the request has it. The signature is not stored here.
    pub fn wire_text(&self, field: Field) -> Option<String> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        match field {
            Field::Date => Some(self.date.as_str().to_owned()),
            Field::Amount => self.amount.map(Amount::to_wire),
            Field::CashbackAmount => self.cashback_amount.map(Amount::to_wire),
            Field::EcrReference => self.ecr_reference.as_ref().map(|v| v.as_str().to_owned()),
            Field::Print => self.print.map(flag),
            Field::Signature => None,
            Field::CashRegisterNo => self.cash_register_no.as_ref().map(|v| v.as_str().to_owned()),
            Field::Rrn => self.rrn.as_ref().map(|v| v.as_str().to_owned()),
            Field::OriginalDate => self.original_date.as_ref().map(|v| v.as_str().to_owned()),
            Field::ApprovalCode => self.approval_code.as_ref().map(|v| v.as_str().to_owned()),
            Field::PartialFlag => self.partial_flag.map(flag),
            Field::BillerId => self.biller_id.as_ref().map(|v| v.as_str().to_owned()),
            Field::BillNumber => self.bill_number.as_ref().map(|v| v.as_str().to_owned()),
            Field::VendorId => self.vendor_id.as_ref().map(|v| v.as_str().to_owned()),
            Field::VendorTerminalType => self.vendor_terminal_type.as_ref().map(|v| v.as_str().to_owned()),
            Field::TrsmId => self.trsm_id.as_ref().map(|v| v.as_str().to_owned()),
            Field::VendorKeyIndex => self.vendor_key_index.as_ref().map(|v| v.as_str().to_owned()),
            Field::SamaKeyIndex => self.sama_key_index.as_ref().map(|v| v.as_str().to_owned()),
            Field::Language => self.language.as_ref().map(|v| v.as_str().to_owned()),
            Field::RequestAttemptNo => self.request_attempt_no.map(|n| format!("{n:03}")),
            Field::PreviousEcrNo => self.previous_ecr_no.as_ref().map(|v| v.as_str().to_owned()),
        }
    }

    /// Checks that every field the type sends is present, that amounts are positive and that
    /// the attempt number fits its three digits.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let spec = self.txn_type.spec();
        for field in spec.required_fields() {
            if self.wire_text(field).is_none() {
                return Err(ValidationError::of(field, format!("is required for {}", spec.name)));
            }
        }
        for (field, amount) in [(Field::Amount, self.amount), (Field::CashbackAmount, self.cashback_amount)] {
            if spec.wire_fields.contains(&field) && amount.is_some_and(Amount::is_zero) {
                return Err(ValidationError::of(field, format!("must be more than zero for {}", spec.name)));
            }
        }
        if let Some(n) = self.request_attempt_no.filter(|n| *n > 999) {
            return Err(ValidationError::of(Field::RequestAttemptNo, format!("{n} exceeds 3 digits")));
        }
        Ok(())
    }

    /// Parses Nami's `inputReqData` form, e.g. `210320144000;100;0;12345678000001!` for a
    /// purchase: the type's input fields in order, separated by `;`, ending in `!`.
    pub fn from_input_req_data(txn_type: TxnType, input: &str) -> Result<Self, ValidationError> {
        let spec = txn_type.spec();
        let expected = spec.input_fields.iter().map(|f| f.name()).collect::<Vec<_>>().join(";");
        let bad = |reason: String| ValidationError::other(StatusCode::InvalidInputReqData, "inputReqData", reason);
        let body = input
            .trim()
            .strip_suffix('!')
            .ok_or_else(|| bad(format!("must end with '!' ({} takes \"{expected}!\")", spec.name)))?;
        let parts: Vec<&str> = body.split(';').collect();
        if parts.len() != spec.input_fields.len() {
            return Err(bad(format!(
                "{} takes {} fields \"{expected}!\", got {}",
                spec.name,
                spec.input_fields.len(),
                parts.len()
            )));
        }
        let mut request = Request::new(txn_type, TxnDate::parse(parts[0])?);
        for (field, text) in spec.input_fields.iter().zip(&parts) {
            request.set_text(*field, text)?;
        }
        request.validate()?;
        Ok(request)
    }

    /// The request in Nami's `inputReqData` form (amounts as integer halalas).
    pub fn to_input_req_data(&self) -> String {
        let spec = self.txn_type.spec();
        let parts: Vec<String> = spec.input_fields.iter().map(|f| self.wire_text(*f).unwrap_or_default()).collect();
        format!("{}!", parts.join(";"))
    }

    /// Rebuilds a request from the fields of a request frame (as a terminal reads it). Returns
    /// the request and the signature it carried, if the type is signed.
    pub fn from_wire_fields(
        txn_type: TxnType,
        wire_fields: &[String],
    ) -> Result<(Self, Option<Signature>), ValidationError> {
        let spec = txn_type.spec();
        if wire_fields.len() != spec.wire_fields.len() {
            return Err(ValidationError::other(
                StatusCode::InvalidFrame,
                "frame",
                format!("{} carries {} fields, got {}", spec.name, spec.wire_fields.len(), wire_fields.len()),
            ));
        }
        let date_at = spec.wire_fields.iter().position(|f| *f == Field::Date).unwrap_or(0);
        let mut request = Request::new(txn_type, TxnDate::parse(&wire_fields[date_at])?);
        let mut signature = None;
        for (field, text) in spec.wire_fields.iter().zip(wire_fields) {
            if *field == Field::Signature {
                signature = Some(Signature::parse(text)?);
            } else if matches!(field, Field::Amount | Field::CashbackAmount) && text.len() != 12 {
                // On the wire amounts always have their full width.
                return Err(ValidationError::of(*field, format!("must be 12 digits on the wire, got {text:?}")));
            } else {
                request.set_text(*field, text)?;
            }
        }
        request.validate()?;
        Ok((request, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_req_data_round_trips() {
        let input = "210320144000;100;123456789012;200320;A1B2C3;0;1;12345678000001!";
        let request = Request::from_input_req_data(TxnType::PreAuthCompletion, input).unwrap();
        assert_eq!(request.amount.unwrap().halalas(), 100);
        assert_eq!(request.approval_code.as_ref().unwrap().as_str(), "A1B2C3");
        assert_eq!(request.partial_flag, Some(false));
        assert_eq!(
            request.to_input_req_data(),
            "210320144000;000000000100;123456789012;200320;A1B2C3;0;1;12345678000001!"
        );
    }

    #[test]
    fn input_req_data_with_the_wrong_field_count_names_the_expected_layout() {
        let err = Request::from_input_req_data(TxnType::Purchase, "210320144000;100;12345678000001!").unwrap_err();
        assert_eq!(err.code, StatusCode::InvalidInputReqData);
        assert!(err.reason.contains("date;amount;print;ecrReferenceNo"), "{}", err.reason);
        let err = Request::from_input_req_data(TxnType::Purchase, "210320144000;100;0;12345678000001").unwrap_err();
        assert!(err.reason.contains("'!'"), "{}", err.reason);
    }

    #[test]
    fn bad_values_in_input_req_data_name_their_field() {
        let err = Request::from_input_req_data(TxnType::Purchase, "210320144000;1x0;0;12345678000001!").unwrap_err();
        assert_eq!((err.code, err.field.as_str()), (StatusCode::InvalidAmount, "amount"));
        let err = Request::from_input_req_data(TxnType::Purchase, "210320144000;100;0;02345678000001!").unwrap_err();
        assert_eq!((err.code, err.field.as_str()), (StatusCode::InvalidEcrRef, "ecrReferenceNo"));
        let err = Request::from_input_req_data(TxnType::Purchase, "210320144000;0;0;12345678000001!").unwrap_err();
        assert_eq!(err.code, StatusCode::InvalidAmount);
        let err = Request::from_input_req_data(TxnType::Purchase, "210320144000;100;2;12345678000001!").unwrap_err();
        assert_eq!(err.code, StatusCode::InvalidPrint);
        let err = Request::from_input_req_data(TxnType::Register, "210320144000;1234567!").unwrap_err();
        assert_eq!(err.code, StatusCode::InvalidCashRegisterNo);
    }

    #[test]
    fn missing_fields_are_named() {
        let request = Request::new(TxnType::Refund, TxnDate::parse("210320144000").unwrap());
        let err = request.validate().unwrap_err();
        assert_eq!(err.field, "amount");
        let mut request = request;
        request.amount = Some(Amount::from_halalas(5).unwrap());
        assert_eq!(request.validate().unwrap_err().field, "rrnNumber");
    }
}
