//! The REST `paymentRequest` body and its mapping to a [`Request`] (docs/protocol.md D13). The
//! daemon, the C ABI and the bindings all hand their JSON to this one mapping.

use crate::status::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ValidationError;
use crate::protocol::field::Field;
use crate::protocol::request::Request;
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::{
    Amount, ApprovalCode, CashRegisterNo, EcrReference, OriginalDate, PreviousEcrNo, Rrn, TxnDate, parse_flag,
};

/// The `paymentRequest` (docs/protocol.md D13). Text fields also accept JSON numbers. Which fields a
/// type needs: REGISTER `date`, `ecrReferenceNo` (or `cashRegisterNo`); PURCHASE `amount`;
/// REFUND `amount`/`refundAmount`, `rrnNumber` or `origApproveCode`; REVERSAL nothing more;
/// DUPLICATE `prevEcrNo` (else the terminal's last transaction). A missing or malformed field
/// is answered with `INVALID_AMOUNT`, `INVALID_ECR_REF` or `ERROR` and a message naming it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentRequest {
    /// The transaction type: its enum name (`PURCHASE`, `REGISTER`, `REFUND`, `REVERSAL`,
    /// `RECONCILIATION`, `DUPLICATE`, `CHECK_STATUS`, ...) or its numeric code (0, 17, 2, 9, 10,
    /// 23, 24, ...), case-insensitive.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub txn_type: Option<String>,
    /// Amount in SAR, decimal (`"10.00"`); at most two decimals.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub amount: Option<String>,
    /// `ddMMyyHHmmss` (12 digits) [default: now].
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub date: Option<String>,
    /// Exactly 14 digits, the first non-zero: the cash register number (8) and a counter (6).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub ecr_reference_no: Option<String>,
    /// true: `parsedTransaction`; false (default): `transaction`, the raw reply.
    #[serde(default)]
    pub json_response: Option<bool>,
    /// Cashback amount in SAR (PURCHASE_CASHBACK).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub cash_back_amount: Option<String>,
    /// Pre-authorisation amount in SAR (spelled as in Nami's reference; `preAuthAmount` too).
    #[serde(default, deserialize_with = "text", rename = "preAuthAMount", alias = "preAuthAmount")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub pre_auth_amount: Option<String>,
    /// Refund amount in SAR (wins over `amount` for REFUND).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub refund_amount: Option<String>,
    /// Original transaction date (`ddMMyy`), for pre-auth completion / extension / void.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub orig_transaction_date: Option<String>,
    /// Original approval code (6 characters).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub orig_approve_code: Option<String>,
    /// Original transaction amount in SAR (wins over `amount` for PRE_AUTH_VOID).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub orig_transaction_amt: Option<String>,
    /// Cash advance amount in SAR.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub cash_advance_amt: Option<String>,
    /// Capture / partial flag of PRE_AUTH_COMPLETION.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub capture: Option<String>,
    /// Authorisation amount in SAR (wins over `amount` for PRE_AUTH_COMPLETION).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub auth_amount: Option<String>,
    /// ECR reference (14 digits, or its last 6) of the transaction DUPLICATE repeats.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub prev_ecr_no: Option<String>,
    /// Retrieval reference number (12 digits) of the original.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub rrn_number: Option<String>,
    /// Original refund date.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub original_refund_date: Option<String>,
    /// "1": the terminal prints the receipt, "0": it does not [default "1"].
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub print: Option<String>,
    /// Cash register number (8 digits) for REGISTER [default: the first 8 digits of
    /// `ecrReferenceNo`].
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub cash_register_no: Option<String>,
    /// Bill payment amount in SAR.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub bill_pay_amt: Option<String>,
    /// Biller ID (BILL_PAYMENT).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub biller_id: Option<String>,
    /// Bill number (BILL_PAYMENT; `billerNumber` too).
    #[serde(default, deserialize_with = "text", alias = "billerNumber")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub bill_number: Option<String>,
    /// Vendor ID (SET_PARAMETER).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub vendor_id: Option<String>,
    /// Vendor terminal type (SET_PARAMETER).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub vendor_terminal_type: Option<String>,
    /// TRSM ID (SET_PARAMETER).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub trsm_id: Option<String>,
    /// Vendor key index (SET_PARAMETER).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub vendor_key_index: Option<String>,
    /// SAMA key index (SET_PARAMETER).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub sama_key_index: Option<String>,
    /// Terminal language (SET_TERMINAL_LANGUAGE).
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub terminal_language: Option<String>,
    /// Page number of SUMMARY_REPORT [default 0].
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub request_attempt_no: Option<String>,
    /// Accepted for compatibility with the vendor's prototype; unused.
    #[serde(default, deserialize_with = "text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub reference_number: Option<String>,
    /// Extension: the POS's own key for this request, the same as the `Idempotency-Key` header
    /// (for callers without headers); when given, the only thing a retry is matched by.
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub idempotency_key: Option<String>,
}

/// A JSON number as the text a field of digits expects: an integer as itself, and a float that
/// holds an integer (`8888.0`, `1e3`: what a POS whose JSON library writes every number as a
/// double sends, and what JSON Schema's `integer` allows) as that integer, exactly when it is
/// below 2^53; any other float as serde_json prints it (`10.5`).
pub(crate) fn json_number_text(number: &serde_json::Number) -> String {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below it is exact in an f64
    match number.as_f64() {
        Some(float) if !number.is_i64() && !number.is_u64() && float.fract() == 0.0 && float.abs() < EXACT => {
            format!("{}", float as i64)
        }
        _ => number.to_string(),
    }
}

/// A string, a number (taken as its decimal text, [`json_number_text`]) or null; anything else
/// is refused with a message a POS developer understands (the caller adds the field's path).
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Number(n) => Ok(Some(json_number_text(&n))),
        other => Err(serde::de::Error::custom(format!(
            "must be a string (or a number), got {}",
            match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Array(_) => "an array",
                _ => "an object",
            }
        ))),
    }
}

/// What the mapping needs to know beyond the body.
pub struct PaymentContext<'a> {
    /// The print flag when the body has none (the service's `default_print`, "1" by default).
    pub default_print: bool,
    /// DUPLICATE without `prevEcrNo` repeats this terminal's last transaction.
    pub last_ecr_reference: Option<EcrReference>,
    /// A REFUND without `rrnNumber` looks its original up by approval code (and date).
    pub find_original_rrn: &'a dyn Fn(&ApprovalCode, Option<&OriginalDate>) -> Option<Rrn>,
}

impl Default for PaymentContext<'_> {
    fn default() -> Self {
        PaymentContext { default_print: true, last_ecr_reference: None, find_original_rrn: &|_, _| None }
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl PaymentRequest {
    /// The transaction type (`txnType` as a name or a numeric code). The codes follow Nami's API
    /// reference: 14 is not assigned there, so by number it is refused (SET_TERMINAL_LANGUAGE is
    /// sent when asked for by name); 27 (Partial Reversal) is listed there but has no wire
    /// command, so it is refused saying so.
    pub fn txn_type(&self) -> Result<TxnType, ValidationError> {
        let Some(text) = present(&self.txn_type) else {
            return Err(ValidationError::other(StatusCode::InvalidTxnType, "txnType", "is required"));
        };
        let refused = |reason: String| Err(ValidationError::other(StatusCode::InvalidTxnType, "txnType", reason));
        match text.parse::<u8>() {
            Ok(14) => refused(
                "14 is not assigned in Nami's API reference, so it is not taken by number; to set the terminal's \
                 language send \"SET_TERMINAL_LANGUAGE\" by name. Nothing was sent"
                    .into(),
            ),
            Ok(27) => refused(
                "27 (Partial Reversal) is listed in Nami's API reference, but the terminal protocol has no command \
                 for it (no Nami packer or SDK sends one), so it cannot be sent; REVERSAL (9) reverses the last \
                 transaction in full. Nothing was sent"
                    .into(),
            ),
            _ => TxnType::parse(text),
        }
    }

    /// The money fields of the body, by REST name, each with its value when given.
    fn money_fields(&self) -> [(&'static str, &Option<String>); 8] {
        [
            ("amount", &self.amount),
            ("cashBackAmount", &self.cash_back_amount),
            ("preAuthAMount", &self.pre_auth_amount),
            ("refundAmount", &self.refund_amount),
            ("origTransactionAmt", &self.orig_transaction_amt),
            ("cashAdvanceAmt", &self.cash_advance_amt),
            ("authAmount", &self.auth_amount),
            ("billPayAmt", &self.bill_pay_amt),
        ]
    }

    /// The transaction type the body asks for: `txnType`, except that a PURCHASE with a cashback
    /// amount (more than zero) is a purchase with cashback (type 1, both amounts on the wire): the
    /// cashier hands over the cash, so the card must be charged for it.
    pub fn effective_txn_type(&self) -> Result<TxnType, ValidationError> {
        let txn_type = self.txn_type()?;
        if txn_type == TxnType::Purchase
            && let Some(text) = present(&self.cash_back_amount)
            && !Amount::from_sar_named(text, Field::CashbackAmount, "cashBackAmount")?.is_zero()
        {
            return Ok(TxnType::PurchaseCashback);
        }
        Ok(txn_type)
    }

    /// Maps the body to a validated request (D13). Errors name the REST field.
    pub fn to_request(&self, context: &PaymentContext<'_>) -> Result<Request, ValidationError> {
        let txn_type = self.effective_txn_type()?;
        let spec = txn_type.spec();
        let needs = |field: Field| spec.wire_fields.contains(&field) || spec.input_fields.contains(&field);
        let date = match present(&self.date) {
            Some(text) => TxnDate::parse(text)?,
            None => TxnDate::now(),
        };
        let mut request = Request::new(txn_type, date);

        if let Some(text) = present(&self.ecr_reference_no) {
            request.ecr_reference = Some(EcrReference::parse(text)?);
        }
        if needs(Field::Amount) {
            // Which REST field carries the amount of this type, most specific first.
            let candidates: &[(&str, &Option<String>)] = match txn_type {
                TxnType::Refund => &[("refundAmount", &self.refund_amount), ("amount", &self.amount)],
                TxnType::PreAuthVoid => &[("origTransactionAmt", &self.orig_transaction_amt), ("amount", &self.amount)],
                TxnType::PreAuthCompletion => &[("authAmount", &self.auth_amount), ("amount", &self.amount)],
                TxnType::PreAuthorization => &[("amount", &self.amount), ("preAuthAMount", &self.pre_auth_amount)],
                TxnType::CashAdvance => &[("amount", &self.amount), ("cashAdvanceAmt", &self.cash_advance_amt)],
                TxnType::BillPayment => &[("amount", &self.amount), ("billPayAmt", &self.bill_pay_amt)],
                _ => &[("amount", &self.amount)],
            };
            let (name, text) =
                candidates.iter().find_map(|(name, value)| present(value).map(|text| (*name, text))).ok_or_else(
                    || ValidationError::named(Field::Amount, "amount", format!("is required for {}", spec.name)),
                )?;
            let amount = positive(Amount::from_sar_named(text, Field::Amount, name)?, name)?;
            // Both spellings given: they must say the same, or one of them would be ignored.
            for (other, value) in candidates.iter().filter(|(other, _)| *other != name) {
                if let Some(text) = present(value)
                    && Amount::from_sar_named(text, Field::Amount, other)? != amount
                {
                    return Err(ValidationError::named(
                        Field::Amount,
                        *other,
                        format!("({text}) differs from `{name}` ({amount}): give the amount once"),
                    ));
                }
            }
            request.amount = Some(amount);
        }
        // A money field this type does not send would be dropped silently: refused, naming it.
        let used: &[&str] = match txn_type {
            TxnType::Purchase => &["amount"],
            TxnType::PurchaseCashback => &["amount", "cashBackAmount"],
            TxnType::Refund => &["refundAmount", "amount"],
            TxnType::PreAuthVoid => &["origTransactionAmt", "amount"],
            TxnType::PreAuthCompletion => &["authAmount", "amount"],
            TxnType::PreAuthorization => &["amount", "preAuthAMount"],
            TxnType::CashAdvance => &["amount", "cashAdvanceAmt"],
            TxnType::BillPayment => &["amount", "billPayAmt"],
            _ => &[],
        };
        for (name, value) in self.money_fields() {
            if let Some(text) = present(value)
                && !used.contains(&name)
                && !Amount::from_sar_named(text, Field::Amount, name)?.is_zero()
            {
                return Err(ValidationError::named(
                    Field::Amount,
                    name,
                    format!("is not an amount of {}: it would not be sent to the terminal", spec.name),
                ));
            }
        }
        if needs(Field::CashbackAmount) {
            let text = require(&self.cash_back_amount, Field::CashbackAmount, "cashBackAmount", spec.name)?;
            request.cashback_amount = Some(positive(
                Amount::from_sar_named(text, Field::CashbackAmount, "cashBackAmount")?,
                "cashBackAmount",
            )?);
        }
        if needs(Field::Print) {
            request.print = Some(match present(&self.print) {
                Some(text) => parse_flag(Field::Print, text)?,
                None => context.default_print,
            });
        }
        if needs(Field::CashRegisterNo) {
            request.cash_register_no = Some(match present(&self.cash_register_no) {
                Some(text) => CashRegisterNo::parse(text)?,
                None => match &request.ecr_reference {
                    Some(reference) => reference.cash_register_no(),
                    None => {
                        return Err(ValidationError::of(
                            Field::CashRegisterNo,
                            format!(
                                "is required for {} (or give ecrReferenceNo, whose first 8 digits are used)",
                                spec.name
                            ),
                        ));
                    }
                },
            });
        }
        if needs(Field::OriginalDate) && txn_type != TxnType::Refund {
            request.original_date = Some(OriginalDate::parse(require(
                &self.orig_transaction_date,
                Field::OriginalDate,
                "origTransactionDate",
                spec.name,
            )?)?);
        } else if let Some(text) = present(&self.orig_transaction_date) {
            // Accepted and checked for REFUND, though its frame has no such field.
            request.original_date = Some(OriginalDate::parse(text)?);
        }
        if needs(Field::ApprovalCode) {
            request.approval_code = Some(ApprovalCode::parse(require(
                &self.orig_approve_code,
                Field::ApprovalCode,
                "origApproveCode",
                spec.name,
            )?)?);
        } else if txn_type == TxnType::Refund
            && let Some(text) = present(&self.orig_approve_code)
        {
            request.approval_code = Some(ApprovalCode::parse(text)?);
        }
        if needs(Field::Rrn) {
            request.rrn = Some(match present(&self.rrn_number) {
                Some(text) => Rrn::parse(text)?,
                None => request
                    .approval_code
                    .as_ref()
                    .and_then(|code| (context.find_original_rrn)(code, request.original_date.as_ref()))
                    .ok_or_else(|| {
                        ValidationError::of(
                            Field::Rrn,
                            format!(
                                "is required for {} (no original transaction with that approval code in the journal)",
                                spec.name
                            ),
                        )
                    })?,
            });
        }
        if needs(Field::PartialFlag) {
            request.partial_flag = Some(parse_flag(
                Field::PartialFlag,
                require(&self.capture, Field::PartialFlag, "capture", spec.name)?,
            )?);
        }
        if needs(Field::PreviousEcrNo) {
            request.previous_ecr_no = Some(match present(&self.prev_ecr_no) {
                Some(text) => PreviousEcrNo::parse(text)?,
                None => context.last_ecr_reference.as_ref().map(PreviousEcrNo::from).ok_or_else(|| {
                    ValidationError::of(
                        Field::PreviousEcrNo,
                        "is required: this terminal has no earlier transaction to repeat",
                    )
                })?,
            });
        }
        if needs(Field::RequestAttemptNo) {
            request.set_text(Field::RequestAttemptNo, present(&self.request_attempt_no).unwrap_or("0"))?;
        }
        let plain: [(Field, &str, &Option<String>); 8] = [
            (Field::BillerId, "billerId", &self.biller_id),
            (Field::BillNumber, "billNumber", &self.bill_number),
            (Field::VendorId, "vendorId", &self.vendor_id),
            (Field::VendorTerminalType, "vendorTerminalType", &self.vendor_terminal_type),
            (Field::TrsmId, "trsmId", &self.trsm_id),
            (Field::VendorKeyIndex, "vendorKeyIndex", &self.vendor_key_index),
            (Field::SamaKeyIndex, "samaKeyIndex", &self.sama_key_index),
            (Field::Language, "terminalLanguage", &self.terminal_language),
        ];
        for (field, name, value) in plain {
            if needs(field) {
                request.set_text(field, require(value, field, name, spec.name)?)?;
            }
        }
        if spec.wire_fields.contains(&Field::EcrReference) && request.ecr_reference.is_none() {
            return Err(ValidationError::of(Field::EcrReference, format!("is required for {}", spec.name)));
        }
        request.validate()?;
        Ok(request)
    }
}

fn require<'v>(value: &'v Option<String>, field: Field, name: &str, txn: &str) -> Result<&'v str, ValidationError> {
    present(value).ok_or_else(|| ValidationError::named(field, name, format!("is required for {txn}")))
}

fn positive(amount: Amount, name: &str) -> Result<Amount, ValidationError> {
    if amount.is_zero() {
        Err(ValidationError::named(Field::Amount, name, "must be more than zero"))
    } else {
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> PaymentRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_purchase_body_maps_to_a_purchase() {
        let r = body(r#"{"txnType":"PURCHASE","amount":"10.00","date":"090625143000","ecrReferenceNo":"12345678901234","jsonResponse":true}"#)
            .to_request(&PaymentContext::default())
            .unwrap();
        assert_eq!(r.txn_type, TxnType::Purchase);
        assert_eq!(r.amount.unwrap().halalas(), 1000);
        assert_eq!(r.print, Some(true), "default print applies");
    }

    #[test]
    fn txn_type_is_accepted_as_a_number() {
        let r = body(r#"{"txnType":17,"date":"090625143000","ecrReferenceNo":"12345678901234"}"#)
            .to_request(&PaymentContext::default())
            .unwrap();
        assert_eq!(r.txn_type, TxnType::Register);
        assert_eq!(r.cash_register_no.unwrap().as_str(), "12345678", "CRN from the ECR reference");
    }

    #[test]
    fn refund_amount_is_the_refunds_amount_and_errors_name_the_rest_field() {
        let b = body(
            r#"{"txnType":"REFUND","refundAmount":"2.50","rrnNumber":"123456789012","ecrReferenceNo":"12345678901234","origTransactionDate":"080625120000"}"#,
        );
        let r = b.to_request(&PaymentContext::default()).unwrap();
        assert_eq!(r.amount.unwrap().halalas(), 250);
        // Both spellings: the same amount is fine, two amounts would drop one of them.
        let same = body(
            r#"{"txnType":"REFUND","amount":"2.5","refundAmount":"2.50","rrnNumber":"123456789012","ecrReferenceNo":"12345678901234"}"#,
        );
        assert_eq!(same.to_request(&PaymentContext::default()).unwrap().amount.unwrap().halalas(), 250);
        let two = body(
            r#"{"txnType":"REFUND","amount":"1","refundAmount":"2.50","rrnNumber":"123456789012","ecrReferenceNo":"12345678901234"}"#,
        );
        let e = two.to_request(&PaymentContext::default()).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (StatusCode::InvalidAmount, "amount"), "{e}");
        let b = body(
            r#"{"txnType":"REFUND","refundAmount":"2.505","rrnNumber":"123456789012","ecrReferenceNo":"12345678901234"}"#,
        );
        let e = b.to_request(&PaymentContext::default()).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (StatusCode::InvalidAmount, "refundAmount"));
    }

    #[test]
    fn a_refund_without_rrn_finds_it_by_approval_code() {
        let b = body(
            r#"{"txnType":"REFUND","amount":"10.00","ecrReferenceNo":"12345678901234","origApproveCode":"123456"}"#,
        );
        let lookup = |code: &ApprovalCode, _: Option<&OriginalDate>| {
            (code.as_str() == "123456").then(|| Rrn::parse("000011112222").unwrap())
        };
        let context = PaymentContext { find_original_rrn: &lookup, ..PaymentContext::default() };
        assert_eq!(b.to_request(&context).unwrap().rrn.unwrap().as_str(), "000011112222");
        let e = b.to_request(&PaymentContext::default()).unwrap_err();
        assert_eq!(e.field, "rrnNumber");
    }

    #[test]
    fn duplicate_defaults_to_the_last_transaction() {
        let b = body(r#"{"txnType":"DUPLICATE","ecrReferenceNo":"12345678901234"}"#);
        assert_eq!(b.to_request(&PaymentContext::default()).unwrap_err().field, "prevEcrNo");
        let context = PaymentContext {
            last_ecr_reference: Some(EcrReference::parse("12345678000077").unwrap()),
            ..PaymentContext::default()
        };
        assert_eq!(b.to_request(&context).unwrap().previous_ecr_no.unwrap().as_str(), "000077");
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let ctx = PaymentContext::default();
        assert_eq!(body(r#"{"amount":"1"}"#).to_request(&ctx).unwrap_err().field, "txnType");
        assert_eq!(
            body(r#"{"txnType":"PURCHASE","ecrReferenceNo":"12345678901234"}"#).to_request(&ctx).unwrap_err().code,
            StatusCode::InvalidAmount
        );
        let e = body(r#"{"txnType":"PURCHASE","amount":"1","ecrReferenceNo":"1234"}"#).to_request(&ctx).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (StatusCode::InvalidEcrRef, "ecrReferenceNo"));
        let e = body(r#"{"txnType":"PURCHASE","amount":"1"}"#).to_request(&ctx).unwrap_err();
        assert_eq!(e.code, StatusCode::InvalidEcrRef);
        let e = body(r#"{"txnType":"PURCHASE","amount":"0.00","ecrReferenceNo":"12345678901234"}"#)
            .to_request(&ctx)
            .unwrap_err();
        assert_eq!(e.code, StatusCode::InvalidAmount);
        let e = body(r#"{"txnType":7,"amount":"1","ecrReferenceNo":"12345678901234"}"#).to_request(&ctx).unwrap_err();
        assert!(e.reason.contains("unsupported"));
        let e = body(r#"{"txnType":"PRE_AUTH_COMPLETION","amount":"1","ecrReferenceNo":"12345678901234","rrnNumber":"123456789012","origTransactionDate":"080625","origApproveCode":"123456"}"#)
            .to_request(&ctx)
            .unwrap_err();
        assert_eq!(e.field, "capture");
    }

    #[test]
    fn a_money_field_is_never_dropped() {
        let ctx = PaymentContext::default();
        // A PURCHASE with cashback is a purchase with cashback: both amounts go out.
        let r = body(
            r#"{"txnType":"PURCHASE","amount":"10.00","cashBackAmount":"5.00","ecrReferenceNo":"12345678901234"}"#,
        )
        .to_request(&ctx)
        .unwrap();
        assert_eq!(r.txn_type, TxnType::PurchaseCashback);
        assert_eq!((r.amount.unwrap().halalas(), r.cashback_amount.unwrap().halalas()), (1000, 500));
        // A zero cashback is no cashback: a plain purchase.
        let r = body(
            r#"{"txnType":"PURCHASE","amount":"10.00","cashBackAmount":"0.00","ecrReferenceNo":"12345678901234"}"#,
        )
        .to_request(&ctx)
        .unwrap();
        assert_eq!((r.txn_type, r.cashback_amount), (TxnType::Purchase, None));
        // A money field the type does not send is refused, naming it.
        for (json, field) in [
            (
                r#"{"txnType":"REFUND","refundAmount":"1","cashBackAmount":"5","rrnNumber":"123456789012","ecrReferenceNo":"12345678901234"}"#,
                "cashBackAmount",
            ),
            (
                r#"{"txnType":"CASH_ADVANCE","amount":"1","refundAmount":"5","ecrReferenceNo":"12345678901234"}"#,
                "refundAmount",
            ),
            (r#"{"txnType":"REVERSAL","amount":"1","ecrReferenceNo":"12345678901234"}"#, "amount"),
            (r#"{"txnType":"RECONCILIATION","authAmount":"1","ecrReferenceNo":"12345678901234"}"#, "authAmount"),
            (
                r#"{"txnType":"PURCHASE","amount":"1","cashAdvanceAmt":"x","ecrReferenceNo":"12345678901234"}"#,
                "cashAdvanceAmt",
            ),
        ] {
            let e = body(json).to_request(&ctx).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (StatusCode::InvalidAmount, field), "{json}: {e}");
        }
    }

    #[test]
    fn a_wrong_type_is_refused_in_plain_words() {
        let error = serde_json::from_str::<PaymentRequest>(r#"{"txnType":"PURCHASE","amount":true}"#).unwrap_err();
        assert!(error.to_string().contains("must be a string (or a number), got a boolean"), "{error}");
    }

    #[test]
    fn a_float_that_holds_an_integer_is_that_integer() {
        let text = |json: &str| json_number_text(&serde_json::from_str(json).unwrap());
        assert_eq!(text("8888"), "8888");
        assert_eq!(text("8888.0"), "8888");
        assert_eq!(text("1e3"), "1000");
        assert_eq!(text("12345678000001.0"), "12345678000001");
        assert_eq!(text("-0.0"), "0");
        assert_eq!(text("10.5"), "10.5");
        assert_eq!(text("1e300"), "1e+300", "beyond 2^53 a float is not an exact integer");
        // A POS whose JSON writes every number as a double: the same request as with integers.
        let r = body(r#"{"txnType":0.0,"amount":10.0,"ecrReferenceNo":12345678901234.0}"#)
            .to_request(&PaymentContext::default())
            .unwrap();
        assert_eq!(r.amount.unwrap().halalas(), 1000);
        assert_eq!(r.ecr_reference.unwrap().as_str(), "12345678901234");
        assert!(
            body(r#"{"txnType":"PURCHASE","amount":10.0,"ecrReferenceNo":12345678901234.5}"#)
                .to_request(&PaymentContext::default())
                .is_err()
        );
    }

    #[test]
    fn numbers_are_taken_as_text() {
        let r = body(r#"{"txnType":"0","amount":10.5,"ecrReferenceNo":12345678901234}"#)
            .to_request(&PaymentContext::default())
            .unwrap();
        assert_eq!(r.amount.unwrap().halalas(), 1050);
    }
}
