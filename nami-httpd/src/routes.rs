//! The REST API: one handler per endpoint, each a thin translation. The path (with its query
//! string) and the raw body go to [`nami_sdk::Service::dispatch_async`] (a purchase waiting for
//! the card holds no thread; the service's short blocking calls run on tokio's blocking pool);
//! its status and JSON come back as they are. The service parses every body itself, so a malformed one gets the
//! service's JSON error naming the field, never an extractor's plain-text rejection.
//!
//! The `#[utoipa::path]` attributes here are the OpenAPI document (see `openapi.rs`).

use nami_sdk::StatusCode as Code;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use nami_sdk::service::endpoints::Endpoint;
use nami_sdk::service::{CallOptions, ErrorBody};
use serde_json::{Value, json};

use crate::AppState;
#[allow(unused_imports)] // The schema types are named in the `utoipa::path` attributes only.
use crate::openapi::*;

/// A JSON body with its content type.
pub fn json_body(value: &impl serde::Serialize) -> impl IntoResponse {
    // `to_vec` serialises straight into the buffer; `Value`'s `Display` (`to_string`) goes
    // through `fmt::Write` piece by piece, at twice the cost (callgrind). Same bytes.
    let body = serde_json::to_vec(value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

pub fn json_response(status: u16, value: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, json_body(value)).into_response()
}

/// A daemon-level error (`{statusCode, statusMessage}`, the service's error shape).
pub fn error_response(status: StatusCode, code: Code, message: impl Into<String>) -> Response {
    (status, json_body(&ErrorBody::new(code, message))).into_response()
}

/// Hands the call to the service and returns its answer.
pub async fn forward(state: &AppState, uri: &Uri, body: Bytes) -> Response {
    forward_transaction(state, uri, &HeaderMap::new(), body).await
}

/// [`forward`] for a transaction: the `Idempotency-Key` header goes with it, and the service
/// learns when the client is gone (see [`ClientWaiting`]).
pub async fn forward_transaction(state: &AppState, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    match call(state, uri, headers, body).await {
        Ok((status, value)) => json_response(status, &value),
        Err(response) => response,
    }
}

/// Whether the HTTP client still waits for this call's answer. When the client disconnects,
/// hyper drops the handler's future, and with it this guard: the service then sends nothing for
/// the request (it may be waiting for a silent re-register, or for the link).
struct ClientWaiting(Arc<AtomicBool>);

impl Drop for ClientWaiting {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The service's status and body for this call.
async fn call(state: &AppState, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Result<(u16, Value), Response> {
    let path = uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| uri.path().to_owned());
    let text = match String::from_utf8(body.to_vec()) {
        Ok(text) => text,
        Err(_) => return Err(not_utf8(uri.path())),
    };
    let idempotency_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) => Some(key.to_owned()),
        Some(Err(_)) => {
            let reply = nami_sdk::service::endpoints::PERFORM_TRANSACTION_TCPIP
                .bad_request("`Idempotency-Key` must be printable ASCII");
            return Err(json_response(reply.status, &reply.body));
        }
    };
    let waiting = ClientWaiting(Arc::new(AtomicBool::new(true)));
    let flag = waiting.0.clone();
    let options = CallOptions { idempotency_key, still_waiting: Some(Arc::new(move || flag.load(Ordering::SeqCst))) };
    // The call runs as a task of its own: a client that disconnects while its purchase waits for
    // the card drops this handler, not the exchange, whose outcome is still journaled (and a
    // request not yet written is then not sent: `waiting` is lowered).
    let answer = tokio::spawn(state.service().clone().dispatch_async(path, text, options)).await;
    drop(waiting);
    match answer {
        Ok(reply) => Ok((reply.status, reply.body)),
        Err(error) => {
            tracing::error!(path = uri.path(), %error, "the call failed internally");
            Err(error_response(StatusCode::INTERNAL_SERVER_ERROR, Code::Error, "Internal error; see the service log"))
        }
    }
}

/// A body that is not UTF-8, answered in the endpoint's own error shape (as the service does
/// for a body that is not JSON).
fn not_utf8(path: &str) -> Response {
    let message = "request body is not valid JSON: it is not UTF-8 text";
    let reply = match Endpoint::find(path) {
        Some((endpoint, _)) => endpoint.bad_request(message),
        None => return error_response(StatusCode::NOT_FOUND, Code::Error, format!("Unknown endpoint {path}")),
    };
    json_response(reply.status, &reply.body)
}

// ---------------------------------------------------------------------------------------------
// COM path

/// Lists the serial ports detected on this machine (real hardware ports only), or the seeds'
/// special entries: "No devices connected", "Reconnecting to COM3...", "Disconnected — last seen
/// on COM3".
#[utoipa::path(get, path = "/get-com-ports", tag = "COM path",
    responses((status = 200, description = "Detected ports", body = Vec<ComPortInfoDoc>)))]
pub async fn get_com_ports(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Opens the serial connection to the terminal. Must succeed before any COM transaction.
/// `port` is the COM number (3 for COM3; elsewhere the listed port with that number) or a device
/// path; the settings default to 115200 8-N-1.
#[utoipa::path(post, path = "/com/connect", tag = "COM path",
    request_body = ComConnectRequestDoc,
    responses(
        (status = 200, description = "Connected, or why not (`success: false`)", body = ComConnectResponseDoc),
        (status = 400, description = "The body is not JSON or not of this shape; `message` names the field", body = ComConnectResponseDoc)))]
pub async fn com_connect(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Closes the serial port and forgets the saved COM connection (not its registration). No body.
#[utoipa::path(post, path = "/com/disconnect", tag = "COM path",
    responses((status = 200, description = "`0` on success, `1` when there was no COM connection", body = i32,
        content_type = "application/json", example = json!(0))))]
pub async fn com_disconnect(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Runs any transaction type over the COM connection. The body is a bare `paymentRequest`
/// (a `{"paymentRequest": {...}}` wrapper is accepted too). `/com/connect` and a REGISTER must
/// come first.
#[utoipa::path(post, path = "/performTransactionCOM", tag = "COM path",
    request_body = PaymentRequestDoc,
    responses(
        (status = 200, description = "The terminal's answer (`statusCode` \"200\") or a middleware status code", body = TransactionResponseDoc),
        (status = 400, description = "The body is not JSON or a field has the wrong type; `statusMessage` names it", body = TransactionResponseDoc)))]
pub async fn perform_transaction_com(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward_transaction(&state, &uri, &headers, body).await
}

// ---------------------------------------------------------------------------------------------
// TCP/IP path

/// Connects to the terminal at `tcpipcomData` (or reuses the connection) and runs a transaction.
#[utoipa::path(post, path = "/performTransactionTCPIP", tag = "TCP/IP path",
    request_body = TcpTransactionRequestDoc,
    responses(
        (status = 200, description = "The terminal's answer (`statusCode` \"200\") or a middleware status code", body = TransactionResponseDoc),
        (status = 400, description = "The body is not JSON or a field has the wrong type; `statusMessage` names it", body = TransactionResponseDoc)))]
pub async fn perform_transaction_tcp(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward_transaction(&state, &uri, &headers, body).await
}

/// Opens (and remembers) the connection to a TCP terminal without a transaction.
#[utoipa::path(post, path = "/tcp-ip/connect", tag = "TCP/IP path",
    request_body = TcpConnectionRequestDoc,
    responses(
        (status = 200, description = "`connectionStatus` true when connected; `isConnected` says why not", body = TcpConnectionResponseDoc),
        (status = 400, description = "No or a malformed `tcpipcomData`", body = StatusResponseDoc)))]
pub async fn tcp_connect(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Closes the connection to a TCP terminal and forgets it. Idempotent.
#[utoipa::path(post, path = "/tcp-ip/disconnect", tag = "TCP/IP path",
    request_body = TcpConnectionRequestDoc,
    responses(
        (status = 200, description = "Disconnected", body = TcpConnectionResponseDoc),
        (status = 400, description = "No or a malformed `tcpipcomData`", body = StatusResponseDoc)))]
pub async fn tcp_disconnect(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

// ---------------------------------------------------------------------------------------------
// Utilities

/// Cancels the running transaction of one terminal (`{ip, port}`, `{tcpipcomData}` or
/// `{com: true}`), or of every terminal when the body is empty.
#[utoipa::path(post, path = "/cancelTransaction", tag = "Utilities",
    request_body = TargetDoc,
    responses(
        (status = 200, description = "`Success` (cancelled) or `Info` (nothing running)", body = StatusResponseDoc),
        (status = 400, description = "A malformed terminal selector", body = StatusResponseDoc)))]
pub async fn cancel_transaction(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// The known TCP connections and their state, keyed `ip:port`.
#[utoipa::path(get, path = "/getExistingConnections", tag = "Utilities",
    responses((status = 200, description = "`ip:port` → `Connected` / `Disconnected`", body = ExistingConnectionsDoc)))]
pub async fn get_existing_connections(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Whether REGISTER has been completed: for the terminal picked by `?ip=&port=` or `?com=`, or,
/// without a selector, the first registered terminal (COM first) plus `terminals`, every one.
#[utoipa::path(get, path = "/registrationStatus", tag = "Utilities",
    params(RegistrationQuery),
    responses(
        (status = 200, description = "The registration", body = RegistrationStatusDoc),
        (status = 400, description = "A malformed selector (e.g. a port that is not a number)", body = StatusResponseDoc)))]
pub async fn registration_status(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Clears the registration keymap (memory and disk). Requires `{"confirmClear": true}`; without
/// it nothing is cleared and `status` is `Error`. The journal and the connections stay.
#[utoipa::path(post, path = "/clearTerminalData", tag = "Utilities",
    request_body = ClearTerminalDataRequestDoc,
    responses(
        (status = 200, description = "`Success`, or `Error` without `confirmClear: true`", body = StatusResponseDoc),
        (status = 400, description = "The body is not JSON or `confirmClear` is not a boolean", body = StatusResponseDoc)))]
pub async fn clear_terminal_data(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Service health: version, uptime, memory, COM ports, connections, registered terminals, and
/// the daemon's scheme and certificate fingerprint.
#[utoipa::path(get, path = "/api/health-status", tag = "Utilities",
    responses((status = 200, description = "Health", body = HealthStatusDoc)))]
pub async fn health_status(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    match call(&state, &uri, &HeaderMap::new(), body).await {
        Ok((status, mut value)) => {
            if let Value::Object(map) = &mut value {
                map.insert("scheme".into(), json!(state.tls().scheme()));
                map.insert("tlsFingerprintSha256".into(), json!(state.tls().fingerprint()));
                map.insert("authRequired".into(), json!(state.token().is_some()));
                map.insert("simulator".into(), state.simulator_summary());
            }
            json_response(status, &value)
        }
        Err(response) => response,
    }
}

// ---------------------------------------------------------------------------------------------
// Beyond the seeds

/// The transaction journal, newest first, with filters.
#[utoipa::path(get, path = "/transactions", tag = "Journal",
    params(TransactionsQuery),
    responses(
        (status = 200, description = "Matching journal entries", body = JournalListDoc),
        (status = 400, description = "A malformed filter, named", body = StatusResponseDoc),
        (status = 500, description = "The journal could not be read", body = StatusResponseDoc)))]
pub async fn transactions(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// The journal entries of one ECR reference (404 when there is none).
#[utoipa::path(get, path = "/transactions/{ecrReferenceNo}", tag = "Journal",
    params(
        ("ecrReferenceNo" = String, Path, description = "The 14-digit ECR reference"),
        ("terminal" = Option<String>, Query, description = "Only this terminal: `ip:port` or `COM`")),
    responses(
        (status = 200, description = "The entries", body = JournalListDoc),
        (status = 404, description = "No entry has this reference", body = JournalListDoc),
        (status = 400, description = "A malformed filter, named", body = StatusResponseDoc),
        (status = 500, description = "The journal could not be read", body = StatusResponseDoc)))]
pub async fn transaction(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// A fresh ECR reference for a cash register (docs/protocol.md D7): its 8-digit number and a
/// persisted 6-digit counter that skips every reference in the journal.
#[utoipa::path(post, path = "/nextEcrReference", tag = "Journal",
    request_body = NextEcrReferenceRequestDoc,
    responses(
        (status = 200, description = "The reference", body = NextEcrReferenceDoc),
        (status = 400, description = "`cashRegisterNo` missing or not 8 digits", body = StatusResponseDoc),
        (status = 500, description = "No unused reference is left, or the journal failed", body = StatusResponseDoc)))]
pub async fn next_ecr_reference(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    forward(&state, &uri, body).await
}

/// Whether the API is served over HTTPS, and the certificate's fingerprint.
#[utoipa::path(get, path = "/api/tls", tag = "HTTPS",
    responses((status = 200, description = "The HTTPS state", body = TlsStatusDoc)))]
pub async fn tls_status(State(state): State<AppState>) -> Response {
    json_response(200, &state.tls().status_json(state.port()))
}

/// The dashboard's "Switch to HTTPS" (or back): answers on the current connection, then new
/// connections on the same port use the new scheme; connections of the old scheme are closed
/// once idle. Remembered across restarts (a flag or `NAMI_TLS` still wins).
#[utoipa::path(post, path = "/api/tls", tag = "HTTPS",
    request_body = TlsSwitchRequestDoc,
    responses(
        (status = 200, description = "Switched; the new state", body = TlsStatusDoc),
        (status = 400, description = "`enabled` missing or not a boolean", body = StatusResponseDoc),
        (status = 500, description = "The certificate could not be loaded or generated", body = StatusResponseDoc)))]
pub async fn tls_switch(State(state): State<AppState>, body: Bytes) -> Response {
    let enabled = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("enabled").and_then(Value::as_bool));
    let Some(enabled) = enabled else {
        return json_response(400, &json!({"status": "Error", "message": "`enabled` must be true or false"}));
    };
    let tls = state.tls().clone();
    match tokio::task::spawn_blocking(move || tls.set(enabled)).await {
        Ok(Ok(())) => {
            let mut value = state.tls().status_json(state.port());
            value["status"] = json!("Success");
            value["message"] =
                json!(format!("New connections on port {} must use {}://", state.port(), state.tls().scheme()));
            json_response(200, &value)
        }
        Ok(Err(error)) => json_response(500, &json!({"status": "Error", "message": error.to_string()})),
        Err(_) => json_response(500, &json!({"status": "Error", "message": "internal error"})),
    }
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "Utilities",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    json_response(200, &crate::openapi::document())
}

/// Unknown paths.
pub async fn not_found(uri: Uri, method: axum::http::Method) -> Response {
    error_response(StatusCode::NOT_FOUND, Code::Error, format!("Unknown endpoint {method} {}", uri.path()))
}
