//! `NamiClient`: the middleware service in process. `nami_call` takes the REST API's paths and
//! JSON bodies unchanged and returns the REST API's JSON, so an integration moves from HTTP to
//! in-process without touching its JSON.

use nami_sdk::StatusCode;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;

use nami_sdk::Service;
use nami_sdk::service::CallerCancel;
use serde_json::{Value, json};

use super::common::{
    EventSlot, Failure, NamiEventCallback, NamiStatus, give, guard, guard_void, optional_text, set_last_error, text,
};
use super::options;

/// A middleware service: terminals over TCP and COM, the transaction journal (a retry of the same
/// request is answered from it, recovery of unknown outcomes), registrations kept across restarts.
///
/// Opaque; made by `nami_client_new`, freed by `nami_client_free`. Every function taking it is
/// thread-safe: calls for different terminals run in parallel, and `nami_cancel` may be called
/// from any thread while another thread waits in `nami_call`. Only one client may use a state
/// directory at a time.
pub struct NamiClient {
    service: Service,
    events: Arc<EventSlot>,
    /// `nami_cancel` gives up every call begun before it: one not sent yet never is.
    cancels: CallerCancel,
}

/// Opens a client.
///
/// `options_json` (borrowed; NULL, `""` or `"{}"` means every default) is a JSON object with any
/// of: `stateDir` (where `journal.sqlite` and `state.sqlite` live; default: the platform's data
/// directory, `%PROGRAMDATA%\Nami` on Windows, `~/.local/share/nami` on Linux), `logLevel`
/// (`off` .. `trace`) and `logFile` (default: standard error), `defaultPrint` (bool, default
/// true), `timeouts` (`{"cardPresentSeconds":150, "settlementSeconds":60, "adminSeconds":30}`),
/// `lrc` (`skyband`, `xor`, `none`), `layout` (`"3.5"`, `"2020"`), `waitWhenBusy`,
/// `autoStartSession`, `reconnectSerial` (bools), `recoveryIntervalSeconds`,
/// `recoveryGraceSeconds`, `idempotencyWindowSeconds` (0 turns replay off),
/// `comReconnectTimeoutSeconds`, `restoreConnections` (bool), `memoryMaxMb`. An unknown key is
/// refused (`NAMI_STATUS_INVALID_ARGUMENT`, the message names it).
///
/// On success `*out` receives the client, owned by the caller until `nami_client_free`; on
/// failure `*out` is set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_client_new(options_json: *const c_char, out: *mut *mut NamiClient) -> NamiStatus {
    guard("nami_client_new", || {
        if out.is_null() {
            return Err(Failure::invalid("`out` is NULL"));
        }
        unsafe { *out = ptr::null_mut() };
        let options = unsafe { optional_text(options_json, "options_json") }?;
        let config = options::service_config(options)?;
        let service = Service::open(config)
            .map_err(|e| Failure::new(NamiStatus::Error, format!("the service cannot start: {e}")))?;
        let events = Arc::new(EventSlot::default());
        let slot = events.clone();
        service.set_listener(Some(Arc::new(move |json: &str| slot.deliver(json))));
        let cancels = CallerCancel::default();
        unsafe { *out = Box::into_raw(Box::new(NamiClient { service, events, cancels })) };
        Ok(())
    })
}

/// Frees a client: cancels its running calls, stops recovery, closes its terminals. NULL is
/// ignored. No other thread may be using the client; it must not be used afterwards. When it
/// returns, the event callback is no longer called.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_client_free(client: *mut NamiClient) {
    if client.is_null() {
        return;
    }
    guard_void("nami_client_free", || {
        let client = unsafe { Box::from_raw(client) };
        client.events.clear();
        client.service.set_listener(None);
        drop(client);
    });
}

/// The status `nami_call` returns for a reply's HTTP-like status.
fn status_of_http(status: u16) -> NamiStatus {
    match status {
        200..=299 => NamiStatus::Ok,
        400 => NamiStatus::InvalidArgument,
        404 => NamiStatus::NotFound,
        500..=599 => NamiStatus::Internal,
        _ => NamiStatus::Error,
    }
}

/// The message of a reply body that reports a failure.
fn body_message(body: &Value) -> String {
    ["statusMessage", "message", "error"]
        .iter()
        .find_map(|key| body.get(key).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.to_string())
}

/// Calls one endpoint of the REST API in process.
///
/// - `endpoint` (borrowed): a REST path, e.g. `"/performTransactionTCPIP"`, `"/com/connect"`,
///   `"/get-com-ports"`, `"/registrationStatus"`, `"/cancelTransaction"`, `"/transactions"`; a
///   query string (`"/registrationStatus?ip=10.0.0.5&port=2345"`) is merged into the body.
/// - `request_json` (borrowed): the REST body, or NULL / `""` for none. A transaction body may
///   carry `"idempotencyKey"`, the daemon's `Idempotency-Key` header: when given, the only key a
///   retry is matched by (else: the same terminal, ECR reference, type, amounts and date).
/// - `response_json`: receives the response body, a NUL-terminated JSON string owned by the
///   caller, to be freed with `nami_string_free`. It is set on every return (also on failure,
///   then to `{"statusCode":"ERROR","statusMessage":"..."}` when the library itself refused the
///   call), so there is always a body to read; only when `response_json` itself is NULL is
///   nothing written.
///
/// Returns `NAMI_STATUS_OK` when the service answered with the endpoint's documented body, even
/// when that body reports a middleware error (`"statusCode":"TIMEOUT"`, a declined payment: read
/// the JSON, as with HTTP 200); `NAMI_STATUS_INVALID_ARGUMENT` for NULL or non-UTF-8 arguments
/// and for a body that is not JSON or not of the endpoint's shape (HTTP 400);
/// `NAMI_STATUS_NOT_FOUND` for an unknown endpoint or a journal entry that does not exist (404);
/// `NAMI_STATUS_INTERNAL` for an internal failure (500).
///
/// Blocks until the terminal answers, its deadline passes or `nami_cancel` is called.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_call(
    client: *const NamiClient,
    endpoint: *const c_char,
    request_json: *const c_char,
    response_json: *mut *mut c_char,
) -> NamiStatus {
    if response_json.is_null() {
        set_last_error("nami_call: `response_json` is NULL");
        return NamiStatus::InvalidArgument;
    }
    unsafe { *response_json = ptr::null_mut() };
    let run = || -> Result<(NamiStatus, Value), Failure> {
        let client = unsafe { client.as_ref() }.ok_or_else(|| Failure::invalid("`client` is NULL"))?;
        let endpoint = unsafe { text(endpoint, "endpoint") }?;
        let body = unsafe { optional_text(request_json, "request_json") }?.unwrap_or("");
        let reply = client.service.dispatch_with(endpoint, body, &client.cancels.options());
        Ok((status_of_http(reply.status), reply.body))
    };
    let (status, body, message) = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok((status, body))) => {
            let message = (status != NamiStatus::Ok).then(|| body_message(&body));
            (status, body, message)
        }
        Ok(Err(failure)) => {
            let message = format!("nami_call: {}", failure.message);
            (failure.status, json!({"statusCode": StatusCode::Error, "statusMessage": message}), Some(message))
        }
        Err(_) => {
            let message = "nami_call: internal error; please report it".to_owned();
            (NamiStatus::Internal, json!({"statusCode": StatusCode::Error, "statusMessage": message}), Some(message))
        }
    };
    if let Some(message) = message {
        set_last_error(&message);
    }
    unsafe { *response_json = give(&body.to_string()) };
    status
}

/// Cancels every call of this client that is waiting for a terminal: each ends promptly with
/// `"statusCode":"CANCELLED"` (a payment that may have reached the terminal is marked unknown and
/// recovered automatically). A call whose request has not been sent yet (it waits for a busy
/// terminal with `waitWhenBusy`, or for a COM connection's silent re-register) is never sent. Callable from any thread, including from the event callback.
/// Returns `NAMI_STATUS_OK` whether or not a call was running. (To cancel one terminal's call,
/// `nami_call` `/cancelTransaction` with `{"ip":..,"port":..}` or `{"com":true}`.)
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_cancel(client: *const NamiClient) -> NamiStatus {
    guard("nami_cancel", || {
        let client = unsafe { client.as_ref() }.ok_or_else(|| Failure::invalid("`client` is NULL"))?;
        client.cancels.cancel();
        client.service.cancel_transaction(None);
        Ok(())
    })
}

/// Sets the callback that receives the client's state-change events as JSON (see
/// `NamiEventCallback`), e.g. `{"event":"waitingForCard","terminal":"10.0.0.5:2345"}`,
/// `{"event":"responseReceived","responseCode":"000","approved":true,"terminal":...}`,
/// `{"event":"outcomeResolved","terminal":...,"ecrReferenceNo":...,"state":"approved",...}`.
///
/// `callback` NULL removes it. `user_data` is borrowed and passed back untouched; it must stay
/// valid until the callback is replaced or the client is freed. When this function returns, the
/// previous callback is no longer running and will not be called again. Returns
/// `NAMI_STATUS_BUSY` when called from inside the callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_set_event_callback(
    client: *const NamiClient,
    callback: NamiEventCallback,
    user_data: *mut c_void,
) -> NamiStatus {
    guard("nami_set_event_callback", || {
        let client = unsafe { client.as_ref() }.ok_or_else(|| Failure::invalid("`client` is NULL"))?;
        client.events.set(callback, user_data)
    })
}
