//! The `Terminal` object: one terminal driven directly (no journal), one method per operation of
//! `nami_sdk::Terminal`, and the records its calls take and return.
//!
//! Every method blocks until the terminal answers, its deadline passes or `cancel()` is called
//! from another thread. Amounts are decimal SAR strings (`"10.00"`), ECR references 14 digits.

use std::collections::HashMap;
use std::sync::Arc;

use nami_sdk as sdk;
use nami_sdk::protocol::redact::frame_hex_for_log;
use nami_sdk::service::masked_fields;
use nami_sdk::{
    Amount, ApprovalCode, BillNumber, BillerId, CashRegisterNo, EcrReference, Field, OriginalDate, PaymentContext,
    PreviousEcrNo, Rrn, SamaKeyIndex, TerminalEvent, TrsmId, VendorId, VendorKeyIndex, VendorTerminalType,
};

use super::callbacks::{EventListener, deliver};
use super::config::{SerialSettings, TerminalConfig};
use super::error::NamiError;

/// The outcome of a call the terminal answered, approved or declined (`approved`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxnResult {
    /// The transaction type, e.g. `PURCHASE`.
    pub txn_type: String,
    /// The terminal's response code as sent (`000`, `116`, `800`).
    pub response_code: String,
    /// The terminal's message, or the code's meaning when the reply carries none.
    pub message: String,
    /// Decided by the response code and the transaction type (D9).
    pub approved: bool,
    /// The ECR reference of the request.
    pub ecr_reference: Option<String>,
    /// The terminal ID the request was signed with (for REGISTER: the one it returned).
    pub terminal_id: Option<String>,
    /// The request's signature (64 hex digits).
    pub signature: Option<String>,
    /// Retrieval reference number, for refunds.
    pub rrn: Option<String>,
    pub approval_code: Option<String>,
    /// First 6 and last 4 digits; a full card number never leaves the library.
    pub masked_pan: Option<String>,
    /// The amount of the reply, decimal SAR (`10.00`).
    pub amount: Option<String>,
    /// The named fields of the reply (`rrn`, `stan`, `schemeLabel`, ...; amounts in halalas as
    /// sent, card number masked, Arabic decoded). A DUPLICATE has the repeated transaction's.
    pub parsed: HashMap<String, String>,
    /// The raw reply, field by field as received: [0] the STX slot, [1] the command, [2] the
    /// response code (card number masked).
    pub fields: Vec<String>,
    /// The reply bytes as received, in hex (card number masked).
    pub raw_hex: String,
}

impl From<&sdk::TxnResult> for TxnResult {
    fn from(result: &sdk::TxnResult) -> Self {
        let parsed = result.parsed();
        let get = |name: &str| {
            parsed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty())
        };
        let amount = get("amount")
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|h| Amount::from_halalas(h).ok())
            .map(|a| a.to_string());
        TxnResult {
            txn_type: result.txn_type.name().to_owned(),
            response_code: result.response_code.clone(),
            message: result.message.clone(),
            approved: result.approved,
            ecr_reference: result.ecr_reference.as_ref().map(|r| r.as_str().to_owned()),
            terminal_id: result.terminal_id.as_ref().map(|t| t.as_str().to_owned()),
            signature: result.signature.as_ref().map(|s| s.as_str().to_owned()),
            rrn: get("rrn"),
            approval_code: get("approvalCode"),
            masked_pan: get("pan"),
            amount,
            fields: masked_fields(&result.response),
            raw_hex: frame_hex_for_log(&result.raw),
            parsed: parsed.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
        }
    }
}

/// The original transaction a refund or a pre-authorisation follow-up refers to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Original {
    /// The original's retrieval reference number (12 characters).
    pub rrn: String,
    /// `ddMMyy` of the original (pre-authorisation follow-ups).
    #[uniffi(default = None)]
    pub date: Option<String>,
    /// The original's 6-character approval code.
    #[uniffi(default = None)]
    pub approval_code: Option<String>,
}

impl Original {
    fn to_sdk(&self) -> Result<sdk::Original, NamiError> {
        Ok(sdk::Original {
            rrn: Rrn::parse(&self.rrn)?,
            date: self.date.as_deref().map(OriginalDate::parse).transpose()?,
            approval_code: self.approval_code.as_deref().map(ApprovalCode::parse).transpose()?,
        })
    }
}

/// SET_PARAMETER values.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TerminalParameters {
    pub vendor_id: String,
    pub vendor_terminal_type: String,
    pub trsm_id: String,
    pub vendor_key_index: String,
    pub sama_key_index: String,
}

/// What REGISTER established.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Registration {
    pub terminal_id: String,
    pub cash_register_no: String,
}

/// Any request, as the REST API's `paymentRequest` body names its fields (all text; see the
/// middleware's documentation). `txn_type` is a name (`PURCHASE`) or a numeric code.
/// Validation errors name the REST field (`refundAmount`, `prevEcrNo`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct PaymentRequest {
    pub txn_type: String,
    #[uniffi(default = None)]
    pub amount: Option<String>,
    /// `ddMMyyHHmmss`; now when absent.
    #[uniffi(default = None)]
    pub date: Option<String>,
    #[uniffi(default = None)]
    pub ecr_reference_no: Option<String>,
    #[uniffi(default = None)]
    pub cash_back_amount: Option<String>,
    #[uniffi(default = None)]
    pub pre_auth_amount: Option<String>,
    #[uniffi(default = None)]
    pub refund_amount: Option<String>,
    #[uniffi(default = None)]
    pub orig_transaction_date: Option<String>,
    #[uniffi(default = None)]
    pub orig_approve_code: Option<String>,
    #[uniffi(default = None)]
    pub orig_transaction_amt: Option<String>,
    #[uniffi(default = None)]
    pub cash_advance_amt: Option<String>,
    #[uniffi(default = None)]
    pub capture: Option<String>,
    #[uniffi(default = None)]
    pub auth_amount: Option<String>,
    #[uniffi(default = None)]
    pub prev_ecr_no: Option<String>,
    #[uniffi(default = None)]
    pub rrn_number: Option<String>,
    #[uniffi(default = None)]
    pub original_refund_date: Option<String>,
    /// `1` print the receipt (the default), `0` not.
    #[uniffi(default = None)]
    pub print: Option<String>,
    #[uniffi(default = None)]
    pub cash_register_no: Option<String>,
    #[uniffi(default = None)]
    pub bill_pay_amt: Option<String>,
    #[uniffi(default = None)]
    pub biller_id: Option<String>,
    #[uniffi(default = None)]
    pub bill_number: Option<String>,
    #[uniffi(default = None)]
    pub vendor_id: Option<String>,
    #[uniffi(default = None)]
    pub vendor_terminal_type: Option<String>,
    #[uniffi(default = None)]
    pub trsm_id: Option<String>,
    #[uniffi(default = None)]
    pub vendor_key_index: Option<String>,
    #[uniffi(default = None)]
    pub sama_key_index: Option<String>,
    #[uniffi(default = None)]
    pub terminal_language: Option<String>,
    #[uniffi(default = None)]
    pub request_attempt_no: Option<String>,
    #[uniffi(default = None)]
    pub reference_number: Option<String>,
}

impl PaymentRequest {
    /// The SDK's body, field for field (a field added there fails to compile here until mapped).
    fn to_sdk(&self) -> sdk::PaymentRequest {
        let r = self.clone();
        sdk::PaymentRequest {
            txn_type: Some(r.txn_type),
            amount: r.amount,
            date: r.date,
            ecr_reference_no: r.ecr_reference_no,
            json_response: None,
            cash_back_amount: r.cash_back_amount,
            pre_auth_amount: r.pre_auth_amount,
            refund_amount: r.refund_amount,
            orig_transaction_date: r.orig_transaction_date,
            orig_approve_code: r.orig_approve_code,
            orig_transaction_amt: r.orig_transaction_amt,
            cash_advance_amt: r.cash_advance_amt,
            capture: r.capture,
            auth_amount: r.auth_amount,
            prev_ecr_no: r.prev_ecr_no,
            rrn_number: r.rrn_number,
            original_refund_date: r.original_refund_date,
            print: r.print,
            cash_register_no: r.cash_register_no,
            bill_pay_amt: r.bill_pay_amt,
            biller_id: r.biller_id,
            bill_number: r.bill_number,
            vendor_id: r.vendor_id,
            vendor_terminal_type: r.vendor_terminal_type,
            trsm_id: r.trsm_id,
            vendor_key_index: r.vendor_key_index,
            sama_key_index: r.sama_key_index,
            terminal_language: r.terminal_language,
            request_attempt_no: r.request_attempt_no,
            reference_number: r.reference_number,
            // A terminal alone has no journal to match a key against (`Middleware` has).
            idempotency_key: None,
        }
    }
}

/// One payment terminal over TCP/IP or a serial (USB COM) port, without the middleware's journal
/// (use `Middleware` for idempotency and automatic recovery). Thread-safe: one call runs at a
/// time (a second raises `Busy` unless `wait_when_busy`), and `cancel()` may be called from any
/// thread while another waits.
#[derive(uniffi::Object)]
pub struct Terminal {
    inner: sdk::Terminal,
}

fn amount(text: &str) -> Result<Amount, NamiError> {
    Ok(Amount::from_sar(text)?)
}

fn ecr(text: &str) -> Result<EcrReference, NamiError> {
    Ok(EcrReference::parse(text)?)
}

impl Terminal {
    fn run(
        &self,
        call: impl FnOnce(&sdk::Terminal) -> Result<sdk::TxnResult, sdk::TerminalError>,
    ) -> Result<TxnResult, NamiError> {
        Ok(TxnResult::from(&call(&self.inner)?))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.inner.set_listener(None);
        self.inner.disconnect();
    }
}

#[uniffi::export]
impl Terminal {
    /// A terminal at `host:port`. The link opens on the first call (or `connect()`).
    #[uniffi::constructor(default(config = None))]
    pub fn tcp(host: String, port: u16, config: Option<TerminalConfig>) -> Result<Arc<Self>, NamiError> {
        let host = host.trim();
        if host.is_empty() {
            return Err(NamiError::argument("host", "`host` is empty"));
        }
        if port == 0 {
            return Err(NamiError::argument("port", "`port` must be 1-65535, got 0"));
        }
        let config = config.unwrap_or_default().to_sdk()?;
        Ok(Arc::new(Terminal { inner: sdk::Terminal::tcp(host, port, config) }))
    }

    /// A terminal on a serial port (`/dev/ttyACM0`, `COM3`); `settings` default to 115200 8-N-1.
    #[uniffi::constructor(default(settings = None, config = None))]
    pub fn serial(
        path: String,
        settings: Option<SerialSettings>,
        config: Option<TerminalConfig>,
    ) -> Result<Arc<Self>, NamiError> {
        let path = path.trim();
        if path.is_empty() {
            return Err(NamiError::argument("path", "`path` is empty"));
        }
        let settings = match settings {
            Some(s) => s.to_sdk()?,
            None => sdk::SerialSettings::default(),
        };
        let config = config.unwrap_or_default().to_sdk()?;
        Ok(Arc::new(Terminal { inner: sdk::Terminal::serial(path, settings, config) }))
    }

    /// `ip:port` or the serial port path; the `terminal` of events.
    pub fn key(&self) -> String {
        self.inner.key().to_owned()
    }

    /// Receives this terminal's events (`None` removes the listener).
    pub fn set_listener(&self, listener: Option<Arc<dyn EventListener>>) {
        let Some(listener) = listener else {
            self.inner.set_listener(None);
            return;
        };
        self.inner.set_listener(Some(Arc::new(move |key: &str, event: &TerminalEvent| {
            let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("terminal".into(), serde_json::Value::String(key.to_owned()));
            }
            deliver(listener.as_ref(), key, value.to_string());
        })));
    }

    /// What REGISTER established, if it has run.
    pub fn registration(&self) -> Option<Registration> {
        self.inner.registration().map(|r| Registration {
            terminal_id: r.terminal_id.as_str().to_owned(),
            cash_register_no: r.cash_register_no.as_str().to_owned(),
        })
    }

    /// Whether a call is running.
    pub fn is_busy(&self) -> bool {
        self.inner.is_busy()
    }

    /// The ECR reference of the last financial request sent.
    pub fn last_ecr_reference(&self) -> Option<String> {
        self.inner.last_ecr_reference().map(|r| r.as_str().to_owned())
    }

    /// Opens the link now (calls open it on demand anyway).
    pub fn connect(&self) -> Result<(), NamiError> {
        Ok(self.inner.connect()?)
    }

    /// Closes the link (a running call ends with `Cancelled`). The registration is kept.
    pub fn disconnect(&self) {
        self.inner.disconnect();
    }

    /// Ends the call waiting on this terminal promptly with `Cancelled`; callable from any
    /// thread. Returns whether a call was running.
    pub fn cancel(&self) -> bool {
        self.inner.cancel()
    }

    /// REGISTER with the 8-digit cash register number; the terminal ID it returns signs every
    /// later request.
    pub fn register(&self, cash_register_no: String) -> Result<TxnResult, NamiError> {
        let register = CashRegisterNo::parse(&cash_register_no)?;
        self.run(|t| t.register(&register))
    }

    pub fn start_session(&self) -> Result<TxnResult, NamiError> {
        self.run(|t| t.start_session())
    }

    pub fn end_session(&self) -> Result<TxnResult, NamiError> {
        self.run(|t| t.end_session())
    }

    #[uniffi::method(default(print = true))]
    pub fn purchase(&self, amount: String, ecr_reference: String, print: bool) -> Result<TxnResult, NamiError> {
        let (amount, reference) = (self::amount(&amount)?, ecr(&ecr_reference)?);
        self.run(|t| t.purchase(amount, &reference, print))
    }

    /// Purchase with cashback (NAQD): `amount` is the purchase part.
    #[uniffi::method(default(print = true))]
    pub fn purchase_with_cashback(
        &self,
        amount: String,
        cashback: String,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let amount = self::amount(&amount)?;
        let cashback = Amount::from_sar_named(&cashback, Field::CashbackAmount, Field::CashbackAmount.name())?;
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.purchase_with_cashback(amount, cashback, &reference, print))
    }

    #[uniffi::method(default(print = true))]
    pub fn refund(
        &self,
        amount: String,
        original: Original,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let (amount, original, reference) = (self::amount(&amount)?, original.to_sdk()?, ecr(&ecr_reference)?);
        self.run(|t| t.refund(amount, &original, &reference, print))
    }

    #[uniffi::method(default(print = true))]
    pub fn pre_authorization(
        &self,
        amount: String,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let (amount, reference) = (self::amount(&amount)?, ecr(&ecr_reference)?);
        self.run(|t| t.pre_authorization(amount, &reference, print))
    }

    /// Completes (captures) a pre-authorisation; `partial` marks a partial capture.
    #[uniffi::method(default(print = true))]
    pub fn pre_auth_completion(
        &self,
        amount: String,
        original: Original,
        partial: bool,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let (amount, original, reference) = (self::amount(&amount)?, original.to_sdk()?, ecr(&ecr_reference)?);
        self.run(|t| t.pre_auth_completion(amount, &original, partial, &reference, print))
    }

    #[uniffi::method(default(print = true))]
    pub fn pre_auth_extension(
        &self,
        original: Original,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let (original, reference) = (original.to_sdk()?, ecr(&ecr_reference)?);
        self.run(|t| t.pre_auth_extension(&original, &reference, print))
    }

    /// Voids a pre-authorisation of `original_amount`.
    #[uniffi::method(default(print = true))]
    pub fn pre_auth_void(
        &self,
        original_amount: String,
        original: Original,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let (amount, original, reference) = (self::amount(&original_amount)?, original.to_sdk()?, ecr(&ecr_reference)?);
        self.run(|t| t.pre_auth_void(amount, &original, &reference, print))
    }

    #[uniffi::method(default(print = true))]
    pub fn cash_advance(&self, amount: String, ecr_reference: String, print: bool) -> Result<TxnResult, NamiError> {
        let (amount, reference) = (self::amount(&amount)?, ecr(&ecr_reference)?);
        self.run(|t| t.cash_advance(amount, &reference, print))
    }

    #[uniffi::method(default(print = true))]
    pub fn bill_payment(
        &self,
        amount: String,
        biller_id: String,
        bill_number: String,
        ecr_reference: String,
        print: bool,
    ) -> Result<TxnResult, NamiError> {
        let amount = self::amount(&amount)?;
        let (biller, bill) = (BillerId::parse(&biller_id)?, BillNumber::parse(&bill_number)?);
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.bill_payment(amount, &biller, &bill, &reference, print))
    }

    /// Reverses the terminal's last transaction.
    #[uniffi::method(default(print = true))]
    pub fn reversal(&self, ecr_reference: String, print: bool) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.reversal(&reference, print))
    }

    /// End-of-day settlement; the totals are in `parsed` and `fields`.
    #[uniffi::method(default(print = true))]
    pub fn reconciliation(&self, ecr_reference: String, print: bool) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.reconciliation(&reference, print))
    }

    /// Asks the terminal for an earlier transaction by its ECR reference (14 digits or the last
    /// 6): the way to learn the outcome of a payment left unknown. `ecr_reference` is a new
    /// reference for this request.
    pub fn duplicate(&self, previous_ecr_reference: String, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let (previous, reference) = (PreviousEcrNo::parse(&previous_ecr_reference)?, ecr(&ecr_reference)?);
        self.run(|t| t.duplicate(&previous, &reference))
    }

    pub fn check_status(&self, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.check_status(&reference))
    }

    /// Detail report (running totals).
    pub fn detail_report(&self, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.detail_report(&reference))
    }

    /// One page of the summary report: `attempt` 0 first, then 1..N.
    pub fn summary_report(&self, attempt: u16, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.summary_report(attempt, &reference))
    }

    pub fn snapshot_total(&self, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.snapshot_total(&reference))
    }

    pub fn parameter_download(&self, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.parameter_download(&reference))
    }

    pub fn partial_download(&self, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.partial_download(&reference))
    }

    pub fn get_parameters(&self, ecr_reference: String) -> Result<TxnResult, NamiError> {
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.get_parameters(&reference))
    }

    pub fn set_parameters(
        &self,
        parameters: TerminalParameters,
        ecr_reference: String,
    ) -> Result<TxnResult, NamiError> {
        let parameters = sdk::TerminalParameters {
            vendor_id: VendorId::parse(&parameters.vendor_id)?,
            vendor_terminal_type: VendorTerminalType::parse(&parameters.vendor_terminal_type)?,
            trsm_id: TrsmId::parse(&parameters.trsm_id)?,
            vendor_key_index: VendorKeyIndex::parse(&parameters.vendor_key_index)?,
            sama_key_index: SamaKeyIndex::parse(&parameters.sama_key_index)?,
        };
        let reference = ecr(&ecr_reference)?;
        self.run(|t| t.set_parameters(&parameters, &reference))
    }

    /// Any transaction type, described as the REST API's `paymentRequest` (DUPLICATE without
    /// `prev_ecr_no` repeats this terminal's last transaction).
    pub fn transact(&self, request: PaymentRequest) -> Result<TxnResult, NamiError> {
        let context =
            PaymentContext { last_ecr_reference: self.inner.last_ecr_reference(), ..PaymentContext::default() };
        let request = request.to_sdk().to_request(&context)?;
        self.run(|t| t.transact(&request))
    }
}
