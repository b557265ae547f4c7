//! `NamiTerminal`: one terminal driven directly, without the service's journal, with one typed
//! function per common operation and `NamiResult` for the outcome.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Arc;

use nami_sdk::service::parsed_transaction;
use nami_sdk::{
    Amount, ApprovalCode, CashRegisterNo, EcrReference, Original, OriginalDate, Parity, PaymentContext, PaymentRequest,
    PreviousEcrNo, Rrn, SerialSettings, Terminal, TerminalError, TerminalEvent, TxnResult,
};
use serde_json::Value;

use super::common::{
    EventSlot, Failure, NamiEventCallback, NamiStatus, give, guard, guard_void, optional_text, take, text,
};
use super::options;

/// One payment terminal over TCP/IP or a serial (USB COM) port, without the middleware's journal
/// (use `NamiClient` for idempotency and automatic recovery).
///
/// Opaque; made by `nami_terminal_tcp_new` / `nami_terminal_serial_new`, freed by
/// `nami_terminal_free`. Thread-safe: one transaction runs at a time (a second one gets
/// `NAMI_STATUS_BUSY`), and `nami_terminal_cancel` may be called from any thread while another
/// waits.
pub struct NamiTerminal {
    terminal: Terminal,
    events: Arc<EventSlot>,
}

/// The outcome of a typed terminal call. Every string is NUL-terminated UTF-8 owned by the
/// library-allocated result: free them all at once with `nami_result_free` (never with `free`
/// or `nami_string_free`). A string is NULL when it does not apply.
///
/// Every `nami_terminal_*` function taking a `NamiResult *out` first overwrites `*out` with an
/// empty result (it does not free what was there), then fills it -- also on failure. So: declare
/// it, call, read, and call `nami_result_free(&result)` after every call, whatever the status.
#[repr(C)]
#[derive(Debug)]
pub struct NamiResult {
    /// 1 when the terminal approved (by its response code), else 0.
    pub approved: i32,
    /// The transaction type, e.g. `"PURCHASE"`; NULL when the terminal did not answer.
    pub txn_type: *mut c_char,
    /// The terminal's response code as sent (`"000"`, `"116"`, `"800"`); NULL when the terminal
    /// did not answer.
    pub response_code: *mut c_char,
    /// The terminal's message (`"APPROVED"`), or on failure what went wrong (as
    /// `nami_last_error_message()`).
    pub message: *mut c_char,
    /// The ECR reference of the request.
    pub ecr_reference: *mut c_char,
    /// The terminal ID the request was signed with (for REGISTER: the one it returned).
    pub terminal_id: *mut c_char,
    /// The request's signature (64 hex digits).
    pub signature: *mut c_char,
    /// Retrieval reference number of the reply, for refunds.
    pub rrn: *mut c_char,
    /// Approval code of the reply.
    pub approval_code: *mut c_char,
    /// Card number, masked (first 6 and last 4 digits); a full card number never leaves the
    /// library.
    pub masked_pan: *mut c_char,
    /// Every named field of the reply as a JSON object (as the REST API's `parsedTransaction`,
    /// plus `approved`).
    pub raw_json: *mut c_char,
    /// When the call failed in a way that leaves a financial request's outcome unknown (it may
    /// have charged the card): the ECR reference to recover with `nami_terminal_duplicate`.
    /// Never resend such a request with a new reference before knowing its outcome.
    pub unknown_outcome_ecr_reference: *mut c_char,
}

impl NamiResult {
    const EMPTY: NamiResult = NamiResult {
        approved: 0,
        txn_type: ptr::null_mut(),
        response_code: ptr::null_mut(),
        message: ptr::null_mut(),
        ecr_reference: ptr::null_mut(),
        terminal_id: ptr::null_mut(),
        signature: ptr::null_mut(),
        rrn: ptr::null_mut(),
        approval_code: ptr::null_mut(),
        masked_pan: ptr::null_mut(),
        raw_json: ptr::null_mut(),
        unknown_outcome_ecr_reference: ptr::null_mut(),
    };

    fn strings(&mut self) -> [&mut *mut c_char; 11] {
        [
            &mut self.txn_type,
            &mut self.response_code,
            &mut self.message,
            &mut self.ecr_reference,
            &mut self.terminal_id,
            &mut self.signature,
            &mut self.rrn,
            &mut self.approval_code,
            &mut self.masked_pan,
            &mut self.raw_json,
            &mut self.unknown_outcome_ecr_reference,
        ]
    }
}

/// A string for a result field: NULL for none or empty.
fn give_opt(value: Option<&str>) -> *mut c_char {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => give(v),
        None => ptr::null_mut(),
    }
}

fn fill_from_reply(out: &mut NamiResult, result: &TxnResult) {
    let mut parsed = parsed_transaction(result.txn_type, &result.response, result.layout);
    parsed.insert("approved".into(), Value::Bool(result.approved));
    let field = |name: &str| result.field(name);
    *out = NamiResult {
        approved: i32::from(result.approved),
        txn_type: give(result.txn_type.name()),
        response_code: give(&result.response_code),
        message: give(&result.message),
        ecr_reference: give_opt(result.ecr_reference.as_ref().map(|r| r.as_str())),
        terminal_id: give_opt(result.terminal_id.as_ref().map(|t| t.as_str())),
        signature: give_opt(result.signature.as_ref().map(|s| s.as_str())),
        rrn: give_opt(field("rrn").as_deref()),
        approval_code: give_opt(field("approvalCode").as_deref()),
        masked_pan: give_opt(field("pan").as_deref()),
        raw_json: give(&Value::Object(parsed).to_string()),
        unknown_outcome_ecr_reference: ptr::null_mut(),
    };
}

fn fill_from_error(out: &mut NamiResult, error: &TerminalError) {
    *out = NamiResult {
        message: give(&error.to_string()),
        unknown_outcome_ecr_reference: give_opt(error.unknown_outcome().map(|u| u.ecr_reference.as_str())),
        ..NamiResult::EMPTY
    };
}

/// Runs one typed operation: checks the handle and `out`, clears `*out`, parses the arguments
/// (`args`), runs the call and reports its outcome in `*out` and the status.
fn operation<A>(
    function: &str,
    terminal: *const NamiTerminal,
    out: *mut NamiResult,
    args: impl FnOnce() -> Result<A, Failure>,
    call: impl FnOnce(&Terminal, A) -> Result<TxnResult, TerminalError>,
) -> NamiStatus {
    guard(function, || {
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::invalid("`out` is NULL"))?;
        *out = NamiResult::EMPTY;
        let result = (|| {
            let terminal = unsafe { terminal.as_ref() }.ok_or_else(|| Failure::invalid("`terminal` is NULL"))?;
            let args = args()?;
            match call(&terminal.terminal, args) {
                Ok(reply) => {
                    fill_from_reply(out, &reply);
                    Ok(())
                }
                Err(error) => {
                    fill_from_error(out, &error);
                    Err(Failure::from(&error))
                }
            }
        })();
        if let Err(failure) = &result
            && out.message.is_null()
        {
            out.message = give(&failure.message);
        }
        result
    })
}

fn new_terminal(out: *mut *mut NamiTerminal, make: impl FnOnce() -> Result<Terminal, Failure>) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid("`out` is NULL"));
    }
    unsafe { *out = ptr::null_mut() };
    let terminal = make()?;
    let events = Arc::new(EventSlot::default());
    let slot = events.clone();
    terminal.set_listener(Some(Arc::new(move |key: &str, event: &TerminalEvent| {
        let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("terminal".into(), Value::String(key.to_owned()));
        }
        slot.deliver(&value.to_string());
    })));
    unsafe { *out = Box::into_raw(Box::new(NamiTerminal { terminal, events })) };
    Ok(())
}

/// A terminal at `host:port` (`host` borrowed: an IP address or a host name). The link opens
/// on the first call (or `nami_terminal_connect`). `options_json` (borrowed, NULL for defaults):
/// `timeouts`, `lrc`, `layout`, `waitWhenBusy`, `autoStartSession`, `reconnectSerial`,
/// `logLevel`, `logFile`, as for `nami_client_new`. `*out` receives the handle, owned by the
/// caller until `nami_terminal_free` (NULL on failure).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_tcp_new(
    host: *const c_char,
    port: u16,
    options_json: *const c_char,
    out: *mut *mut NamiTerminal,
) -> NamiStatus {
    guard("nami_terminal_tcp_new", || {
        new_terminal(out, || {
            let host = unsafe { text(host, "host") }?.trim();
            if host.is_empty() {
                return Err(Failure::invalid("`host` is empty"));
            }
            if port == 0 {
                return Err(Failure::invalid("`port` must be 1-65535, got 0"));
            }
            let config = options::terminal_options(unsafe { optional_text(options_json, "options_json") }?)?;
            Ok(Terminal::tcp(host, port, config))
        })
    })
}

/// A terminal on a serial port (`path` borrowed: `"COM3"`, `"/dev/ttyACM0"`). `baud_rate` one
/// of 9600, 19200, 38400, 57600, 115200; `parity` 0 none, 1 odd, 2 even; `data_bits` 7 or 8;
/// `stop_bits` 1 or 2 (the terminals use 115200 8-N-1). Options and ownership as for
/// `nami_terminal_tcp_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_serial_new(
    path: *const c_char,
    baud_rate: u32,
    parity: i32,
    data_bits: i32,
    stop_bits: i32,
    options_json: *const c_char,
    out: *mut *mut NamiTerminal,
) -> NamiStatus {
    guard("nami_terminal_serial_new", || {
        new_terminal(out, || {
            let path = unsafe { text(path, "path") }?.trim();
            if path.is_empty() {
                return Err(Failure::invalid("`path` is empty"));
            }
            let small = |value: i32, name: &str| {
                u8::try_from(value).map_err(|_| Failure::invalid(format!("`{name}` is out of range: {value}")))
            };
            let settings = SerialSettings::new(
                baud_rate,
                small(data_bits, "dataBits")?,
                Parity::from_code(i64::from(parity))?,
                small(stop_bits, "stopBits")?,
            )?;
            let config = options::terminal_options(unsafe { optional_text(options_json, "options_json") }?)?;
            Ok(Terminal::serial(path, settings, config))
        })
    })
}

/// Frees a terminal handle: cancels a running call and closes the link. NULL is ignored. No
/// other thread may be using it; it must not be used afterwards. When it returns, the event
/// callback is no longer called.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_free(terminal: *mut NamiTerminal) {
    if terminal.is_null() {
        return;
    }
    guard_void("nami_terminal_free", || {
        let handle = unsafe { Box::from_raw(terminal) };
        handle.events.clear();
        handle.terminal.set_listener(None);
        handle.terminal.disconnect();
        drop(handle);
    });
}

fn handle<'a>(terminal: *const NamiTerminal) -> Result<&'a NamiTerminal, Failure> {
    unsafe { terminal.as_ref() }.ok_or_else(|| Failure::invalid("`terminal` is NULL"))
}

/// Opens the link now (calls open it on demand anyway). `NAMI_STATUS_UNABLE_TO_CONNECT` when the
/// terminal cannot be reached.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_connect(terminal: *const NamiTerminal) -> NamiStatus {
    guard("nami_terminal_connect", || handle(terminal)?.terminal.connect().map_err(|e| Failure::from(&e)))
}

/// Closes the link (a running call ends with CANCELLED). The registration is kept; the next call
/// re-opens the link.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_disconnect(terminal: *const NamiTerminal) -> NamiStatus {
    guard("nami_terminal_disconnect", || {
        handle(terminal)?.terminal.disconnect();
        Ok(())
    })
}

/// Ends the call waiting on this terminal promptly with `NAMI_STATUS_CANCELLED`. Callable from
/// any thread, including from the event callback. `NAMI_STATUS_OK` whether or not a call was
/// running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_cancel(terminal: *const NamiTerminal) -> NamiStatus {
    guard("nami_terminal_cancel", || {
        handle(terminal)?.terminal.cancel();
        Ok(())
    })
}

/// Sets the callback of this terminal's events (see `NamiEventCallback` and
/// `nami_set_event_callback`; the same rules apply).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_set_event_callback(
    terminal: *const NamiTerminal,
    callback: NamiEventCallback,
    user_data: *mut c_void,
) -> NamiStatus {
    guard("nami_terminal_set_event_callback", || handle(terminal)?.events.set(callback, user_data))
}

fn ecr(ptr: *const c_char) -> Result<EcrReference, Failure> {
    Ok(EcrReference::parse(unsafe { text(ptr, "ecrReferenceNo") }?)?)
}

fn amount(ptr: *const c_char) -> Result<Amount, Failure> {
    Ok(Amount::from_sar(unsafe { text(ptr, "amount") }?)?)
}

/// REGISTER with the 8-digit `cash_register_no` (borrowed). The terminal ID it returns signs
/// every later request. `*out`: see `NamiResult`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_register(
    terminal: *const NamiTerminal,
    cash_register_no: *const c_char,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_register",
        terminal,
        out,
        || Ok(CashRegisterNo::parse(unsafe { text(cash_register_no, "cashRegisterNo") }?)?),
        |t, register| t.register(&register),
    )
}

/// PURCHASE of `amount` (borrowed decimal SAR text, `"10.00"`) with the 14-digit
/// `ecr_reference` (borrowed). `print` non-zero: the terminal prints the receipt. Returns
/// `NAMI_STATUS_OK` when the terminal answered, approved or declined (`out->approved`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_purchase(
    terminal: *const NamiTerminal,
    amount_sar: *const c_char,
    ecr_reference: *const c_char,
    print: i32,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_purchase",
        terminal,
        out,
        || Ok((amount(amount_sar)?, ecr(ecr_reference)?)),
        |t, (amount, reference)| t.purchase(amount, &reference, print != 0),
    )
}

/// REFUND of `amount_sar` for the original sale `rrn` (12 characters). `original_date`
/// (`ddMMyy`) and `approval_code` (6 characters) may be NULL. All strings borrowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_refund(
    terminal: *const NamiTerminal,
    amount_sar: *const c_char,
    rrn: *const c_char,
    original_date: *const c_char,
    approval_code: *const c_char,
    ecr_reference: *const c_char,
    print: i32,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_refund",
        terminal,
        out,
        || {
            let amount = amount(amount_sar)?;
            let original = Original {
                rrn: Rrn::parse(unsafe { text(rrn, "rrnNumber") }?)?,
                date: unsafe { optional_text(original_date, "origTransactionDate") }?
                    .map(OriginalDate::parse)
                    .transpose()?,
                approval_code: unsafe { optional_text(approval_code, "origApproveCode") }?
                    .map(ApprovalCode::parse)
                    .transpose()?,
            };
            Ok((amount, original, ecr(ecr_reference)?))
        },
        |t, (amount, original, reference)| t.refund(amount, &original, &reference, print != 0),
    )
}

/// REVERSAL of the terminal's last transaction.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_reversal(
    terminal: *const NamiTerminal,
    ecr_reference: *const c_char,
    print: i32,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_reversal",
        terminal,
        out,
        || ecr(ecr_reference),
        |t, reference| t.reversal(&reference, print != 0),
    )
}

/// RECONCILIATION (end-of-day settlement); the totals are in `out->raw_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_reconciliation(
    terminal: *const NamiTerminal,
    ecr_reference: *const c_char,
    print: i32,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_reconciliation",
        terminal,
        out,
        || ecr(ecr_reference),
        |t, reference| t.reconciliation(&reference, print != 0),
    )
}

/// DUPLICATE: asks the terminal for an earlier transaction by its ECR reference
/// (`previous_ecr_reference`, 14 digits or the last 6; borrowed) -- the way to learn the outcome
/// of a payment left unknown. `ecr_reference` is a new reference for this request.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_duplicate(
    terminal: *const NamiTerminal,
    previous_ecr_reference: *const c_char,
    ecr_reference: *const c_char,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_duplicate",
        terminal,
        out,
        || {
            let previous = PreviousEcrNo::parse(unsafe { text(previous_ecr_reference, "prevEcrNo") }?)?;
            Ok((previous, ecr(ecr_reference)?))
        },
        |t, (previous, reference)| t.duplicate(&previous, &reference),
    )
}

/// Any transaction type, described by a REST `paymentRequest` body (borrowed JSON, e.g.
/// `{"txnType":"PRE_AUTHORIZATION","amount":"25.00","ecrReferenceNo":"12345678000042"}`), sent
/// straight to the terminal (no journal). Validation errors name the REST field.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_terminal_transact(
    terminal: *const NamiTerminal,
    payment_request_json: *const c_char,
    out: *mut NamiResult,
) -> NamiStatus {
    operation(
        "nami_terminal_transact",
        terminal,
        out,
        || {
            let last_reference = unsafe { terminal.as_ref() }.and_then(|t| t.terminal.last_ecr_reference());
            let json = unsafe { text(payment_request_json, "payment_request_json") }?;
            let mut deserializer = serde_json::Deserializer::from_str(json);
            let body: PaymentRequest = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                let path = e.path().to_string();
                Failure::invalid(format!("payment_request_json: `{path}`: {}", e.into_inner()))
            })?;
            let context = PaymentContext { last_ecr_reference: last_reference, ..PaymentContext::default() };
            Ok(body.to_request(&context)?)
        },
        |t, request| t.transact(&request),
    )
}

/// Frees the strings inside `*result` and sets them to NULL (the struct itself is the caller's).
/// NULL, and a result already freed or emptied, are fine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_result_free(result: *mut NamiResult) {
    let Some(result) = (unsafe { result.as_mut() }) else { return };
    guard_void("nami_result_free", || {
        for field in result.strings() {
            unsafe { take(std::mem::replace(field, ptr::null_mut())) };
        }
        result.approved = 0;
    });
}
