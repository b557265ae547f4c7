//! What every C function shares: the status codes, the thread-local error message, the panic
//! guard, reading C strings, handing strings out, and the event callback slot.

use nami_sdk::StatusCode;
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{RwLock, RwLockWriteGuard};

use nami_sdk::{TerminalError, ValidationError};

/// The version of the C ABI described by this header. It changes when a function, a struct or
/// a status code changes incompatibly; compare it with `nami_abi_version()` at start-up.
pub const NAMI_ABI_VERSION: u32 = 1;

/// The result of every fallible function (`int32_t` on the wire, on every platform).
///
/// `NAMI_STATUS_OK` means the call did its job; for a transaction that includes a *declined*
/// payment (the terminal answered): look at the response, not only at the status. For any other
/// value, `nami_last_error_message()` describes what went wrong on this thread.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamiStatus {
    /// Success. For `nami_call`: the service answered with its documented body (even when that
    /// body reports a middleware error such as `TIMEOUT`, like HTTP 200).
    Ok = 0,
    /// A NULL pointer where one is required, a string that is not UTF-8, JSON that does not
    /// parse or does not have the expected shape, an unknown option, or a value that is not
    /// valid (the message names the field).
    InvalidArgument = 1,
    /// `nami_call`: the endpoint does not exist, or `/transactions/{ecrReferenceNo}` has no entry
    /// (the response body says which).
    NotFound = 2,
    /// The terminal is processing another transaction (`TERMINAL_BUSY`); nothing was sent. Also
    /// returned by `nami_set_event_callback` when called from inside the event callback.
    Busy = 3,
    /// No reply within the deadline (`TIMEOUT`). The outcome may be unknown: see
    /// `NamiResult.unknown_outcome_ecr_reference`.
    Timeout = 4,
    /// A cancel ended the call (`CANCELLED`). The outcome may be unknown: see
    /// `NamiResult.unknown_outcome_ecr_reference`.
    Cancelled = 5,
    /// The link broke after a financial request may have reached the terminal
    /// (`OUTCOME_UNKNOWN`). It was not resent; recover it with DUPLICATE.
    OutcomeUnknown = 6,
    /// The terminal needs REGISTER first (`REGISTER_REQUIRED`).
    RegisterRequired = 7,
    /// The serial device vanished (`CableDisconnected`).
    CableDisconnected = 8,
    /// The terminal could not be reached (`UnableToConnect`); nothing was sent.
    UnableToConnect = 9,
    /// An amount is not a valid decimal SAR amount (`INVALID_AMOUNT`); the message names the
    /// field.
    InvalidAmount = 10,
    /// An ECR reference is not 14 digits or starts with 0 (`INVALID_ECR_REF`);
    /// the message names the field.
    InvalidEcrRef = 11,
    /// Any other failure: the link broke during a non-financial exchange, the terminal sent
    /// something that is not a reply, the state directory cannot be opened (`ERROR`).
    Error = 12,
    /// A bug in the library (a caught panic, or an internal failure of the service). Nothing
    /// unwinds into the caller; please report the message.
    Internal = 13,
}

/// A failure on its way to the caller: the status and the message for
/// `nami_last_error_message()`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: NamiStatus,
    pub message: String,
    /// The field or parameter the failure is about, for `nami_last_error_field()`.
    pub field: Option<String>,
}

impl Failure {
    pub fn new(status: NamiStatus, message: impl Into<String>) -> Self {
        Failure { status, message: message.into(), field: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(NamiStatus::InvalidArgument, message)
    }

    /// The same failure, about `field`.
    pub fn about(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// The status of a middleware status code (`TerminalError::status_code`, `ValidationError::code`).
/// The match lists every code, so a new one needs a decision here; `bindings/csharp`'s
/// `StatusOfCode` is checked against this function by the test below.
pub(crate) fn status_of_code(code: StatusCode) -> NamiStatus {
    match code {
        StatusCode::InvalidAmount => NamiStatus::InvalidAmount,
        StatusCode::InvalidEcrRef => NamiStatus::InvalidEcrRef,
        StatusCode::RegisterRequired => NamiStatus::RegisterRequired,
        StatusCode::TerminalBusy => NamiStatus::Busy,
        StatusCode::Timeout => NamiStatus::Timeout,
        StatusCode::Cancelled => NamiStatus::Cancelled,
        StatusCode::OutcomeUnknown => NamiStatus::OutcomeUnknown,
        StatusCode::CableDisconnected => NamiStatus::CableDisconnected,
        StatusCode::UnableToConnect => NamiStatus::UnableToConnect,
        StatusCode::InvalidArgument
        | StatusCode::InvalidTxnType
        | StatusCode::InvalidInputReqData
        | StatusCode::InvalidFrame
        | StatusCode::InvalidLayout
        | StatusCode::InvalidLrcMode
        | StatusCode::InvalidDate
        | StatusCode::InvalidPrint
        | StatusCode::InvalidSignature
        | StatusCode::InvalidTerminalId
        | StatusCode::InvalidCashRegisterNo
        | StatusCode::InvalidRrn
        | StatusCode::InvalidOrigDate
        | StatusCode::InvalidApprovalCode
        | StatusCode::InvalidCapture
        | StatusCode::InvalidBillerId
        | StatusCode::InvalidBillNumber
        | StatusCode::InvalidVendorId
        | StatusCode::InvalidVendorTerminalType
        | StatusCode::InvalidTrsmId
        | StatusCode::InvalidVendorKeyIndex
        | StatusCode::InvalidSamaKeyIndex
        | StatusCode::InvalidTerminalLanguage
        | StatusCode::InvalidRequestAttemptNo
        | StatusCode::InvalidPrevEcrNo
        | StatusCode::InvalidAddress
        | StatusCode::InvalidBaudRate
        | StatusCode::InvalidDataBits
        | StatusCode::InvalidStopBits
        | StatusCode::InvalidParity => NamiStatus::InvalidArgument,
        StatusCode::SignatureRequired
        | StatusCode::NotFound
        | StatusCode::Error
        | StatusCode::Unauthorized
        | StatusCode::Forbidden => NamiStatus::Error,
    }
}

impl From<ValidationError> for Failure {
    fn from(error: ValidationError) -> Self {
        Failure::new(status_of_code(error.code), error.to_string()).about(error.field)
    }
}

impl From<&TerminalError> for Failure {
    fn from(error: &TerminalError) -> Self {
        let failure = Failure::new(status_of_code(error.status_code()), error.to_string());
        match error {
            TerminalError::Invalid(invalid) => failure.about(invalid.field.clone()),
            _ => failure,
        }
    }
}

thread_local! {
    /// The message of the last failure on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// The field the last failure on this thread is about, if it names one.
    static LAST_ERROR_FIELD: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// Set while this thread runs an event callback.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn set_last_error(message: &str) {
    set_last_failure(message, None);
}

/// Records the last failure of this thread: its message and the field it names, if any.
pub(crate) fn set_last_failure(message: &str, field: Option<&str>) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let field = field.map(|f| CString::new(f.replace('\0', " ")).unwrap_or_default());
    // A thread being torn down has no storage left; the message is then dropped.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
    let _ = LAST_ERROR_FIELD.try_with(|slot| *slot.borrow_mut() = field);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs a C function's body: a panic becomes `NAMI_STATUS_INTERNAL`, a failure sets the
/// thread's error message.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> Result<(), Failure>) -> NamiStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => NamiStatus::Ok,
        Ok(Err(failure)) => {
            set_last_failure(&failure.message, failure.field.as_deref());
            failure.status
        }
        Err(payload) => {
            set_last_error(&format!("{function}: internal error ({}); please report it", panic_text(&*payload)));
            NamiStatus::Internal
        }
    }
}

/// Runs a function that returns nothing (the `*_free` functions): a panic is swallowed.
pub(crate) fn guard_void(function: &str, body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        set_last_error(&format!("{function}: internal error ({}); please report it", panic_text(&*payload)));
    }
}

/// A required string parameter.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    unsafe { optional_text(ptr, name) }?.ok_or_else(|| Failure::invalid(format!("`{name}` is NULL")).about(name))
}

/// A string parameter that may be NULL.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn optional_text<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map(Some).map_err(|e| {
        Failure::invalid(format!("`{name}` is not valid UTF-8 (bad byte at offset {})", e.valid_up_to())).about(name)
    })
}

/// A string handed to the caller, who frees it with `nami_string_free` (or `nami_result_free`).
/// NUL bytes cannot cross; they become spaces (JSON text never has any).
pub(crate) fn give(text: &str) -> *mut c_char {
    match CString::new(text) {
        Ok(s) => s.into_raw(),
        Err(_) => CString::new(text.replace('\0', " ")).unwrap_or_default().into_raw(),
    }
}

/// Frees a string made by [`give`]; NULL is ignored.
///
/// # Safety
/// `s` must be NULL or come from [`give`], and not be used afterwards.
pub(crate) unsafe fn take(s: *mut c_char) {
    if !s.is_null() {
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Receives state-change events as JSON.
///
/// `event_json` is a NUL-terminated UTF-8 JSON object such as
/// `{"event":"waitingForCard","terminal":"192.168.1.100:2345"}`; it is owned by the library and
/// valid only until the callback returns (copy it to keep it). `user_data` is the pointer given
/// to `nami_set_event_callback` / `nami_terminal_set_event_callback`, passed through untouched.
///
/// The callback may run on any thread, including library threads and the thread blocked in a
/// transaction call. Return quickly; do not call `nami_set_event_callback`,
/// `nami_terminal_set_event_callback` or a `*_free` function of the same handle from inside it.
pub type NamiEventCallback = Option<unsafe extern "C" fn(event_json: *const c_char, user_data: *mut c_void)>;

/// The callback of one handle. Delivery holds the read lock, so replacing or clearing the
/// callback waits for a running delivery: once `set` returns, the old callback is never called
/// again and its `user_data` may be released.
#[derive(Default)]
pub(crate) struct EventSlot {
    /// The callback and its `user_data` (kept as an address: the pointer is the caller's).
    callback: RwLock<Option<(unsafe extern "C" fn(*const c_char, *mut c_void), usize)>>,
}

impl EventSlot {
    fn write(&self) -> RwLockWriteGuard<'_, Option<(unsafe extern "C" fn(*const c_char, *mut c_void), usize)>> {
        self.callback.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the callback; `None` removes it.
    pub fn set(&self, callback: NamiEventCallback, user_data: *mut c_void) -> Result<(), Failure> {
        if IN_CALLBACK.with(Cell::get) {
            return Err(Failure::new(
                NamiStatus::Busy,
                "the event callback cannot be replaced from inside the event callback",
            ));
        }
        *self.write() = callback.map(|cb| (cb, user_data as usize));
        Ok(())
    }

    /// Removes the callback, waiting for a delivery in progress on another thread.
    pub fn clear(&self) {
        if !IN_CALLBACK.with(Cell::get) {
            *self.write() = None;
        }
    }

    /// Calls the callback, if any, with `json`. Events raised by library calls made from inside
    /// the callback itself are not delivered (the read lock is not taken twice on one thread).
    pub fn deliver(&self, json: &str) {
        if IN_CALLBACK.with(Cell::get) {
            return;
        }
        let slot = self.callback.read().unwrap_or_else(|p| p.into_inner());
        let Some((callback, user_data)) = *slot else { return };
        let Ok(text) = CString::new(json) else { return };
        IN_CALLBACK.with(|flag| flag.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| unsafe { callback(text.as_ptr(), user_data as *mut c_void) }));
        IN_CALLBACK.with(|flag| flag.set(false));
        if outcome.is_err() {
            tracing::error!("the event callback panicked; the event was dropped");
        }
    }
}

/// The thread's last error message, owned by the thread-local slot.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.try_with(|slot| slot.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// The field of the thread's last failure, or NULL.
pub(crate) fn last_error_field_ptr() -> *const c_char {
    LAST_ERROR_FIELD
        .try_with(|slot| slot.borrow().as_ref().map_or(std::ptr::null(), |field| field.as_ptr()))
        .unwrap_or(std::ptr::null())
}

#[cfg(test)]
mod status_code_tests {
    use super::{NamiStatus, status_of_code};
    use nami_sdk::StatusCode;

    /// C#'s `StatusOfCode` (bindings/csharp/Nami/Exceptions.cs) as a table: its `case "CODE":
    /// return NamiStatus.Name;` lines and its fallback (`INVALID_*` is invalid input, else error).
    fn csharp_status_of_code(source: &str, code: &str) -> String {
        let cases = source.split("StatusOfCode(string code)").nth(1).expect("C# StatusOfCode is missing");
        let cases = &cases[..cases.find("default:").expect("StatusOfCode has a default")];
        let case = format!("case \"{code}\": return NamiStatus.");
        match cases.find(&case) {
            Some(at) => cases[at + case.len()..].split(';').next().unwrap().to_owned(),
            None if code.starts_with("INVALID_") => "InvalidArgument".into(),
            None => "Error".into(),
        }
    }

    #[test]
    fn every_status_code_has_the_same_status_in_c_and_csharp() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bindings/csharp/Nami/Exceptions.cs");
        let source = std::fs::read_to_string(path).unwrap();
        for &code in StatusCode::ALL {
            let c_status = format!("{:?}", status_of_code(code));
            assert_eq!(csharp_status_of_code(&source, code.as_str()), c_status, "C# maps {code} differently");
        }
        // Every status a code maps to exists in C# under the same name.
        for status in [NamiStatus::InvalidAmount, NamiStatus::Busy, NamiStatus::CableDisconnected] {
            assert!(source.contains(&format!("{status:?} = {},", status as i32)), "C# lacks {status:?}");
        }
    }
}
