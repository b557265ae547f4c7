//! The REST API: the service's endpoints (`nami_sdk::service::endpoints`) share one handler, a
//! thin translation ([`service_route`], [`forward`]). The path (with its query
//! string) and the raw body go to [`nami_sdk::Service::dispatch_async`] (a purchase waiting for
//! the card holds no thread; the service's short blocking calls run on tokio's blocking pool);
//! its status and JSON come back as they are. The service parses every body itself, so a malformed one gets the
//! service's JSON error naming the field, never an extractor's plain-text rejection.
//!
//! The daemon's own endpoints (`/api/tls`, `/openapi.json`) have their `#[utoipa::path]`
//! attributes here; the service's operations come from the endpoint table (see `openapi.rs`).

use nami_sdk::StatusCode as Code;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use nami_sdk::service::endpoints::{self, Endpoint, Method};
use nami_sdk::service::{CallOptions, ErrorBody};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AppState;
#[allow(unused_imports)] // The schema types are named in the `utoipa::path` attributes only.
use crate::openapi::TlsSwitchRequestDoc;
#[allow(unused_imports)]
use nami_sdk::service::StatusResponse;

/// A JSON body with its content type.
pub fn json_body(value: &impl serde::Serialize) -> impl IntoResponse {
    // `to_vec` serialises straight into the buffer; `Value`'s `Display` (`to_string`) goes
    // through `fmt::Write` piece by piece, at twice the cost (callgrind). Same bytes.
    let body = serde_json::to_vec(value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

pub fn json_response(status: u16, value: &impl Serialize) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, json_body(value)).into_response()
}

/// A daemon-level error (`{statusCode, statusMessage}`, the service's error shape).
pub fn error_response(status: StatusCode, code: Code, message: impl Into<String>) -> Response {
    (status, json_body(&ErrorBody::new(code, message))).into_response()
}

/// Hands the call to the service and returns its answer. A transaction's `Idempotency-Key`
/// header goes with it, and the service learns when the client is gone (see [`ClientWaiting`]).
///
/// The URI, the headers and the body are taken, not borrowed: they share the buffer hyper read
/// the request into (8 KiB), and are turned into the call's own text and dropped before it is
/// awaited, so that a purchase waiting for the card does not keep that buffer.
pub async fn forward(state: &AppState, endpoint: &Endpoint, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let headers = if endpoint.transaction {
        headers
    } else {
        drop(headers);
        HeaderMap::new()
    };
    match call(state, endpoint, uri, headers, body).await {
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
async fn call(
    state: &AppState,
    endpoint: &Endpoint,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(u16, Value), Response> {
    Call::new(endpoint, uri, headers, body)?.run(state).await
}

/// A call for the service, in text of its own (nothing borrowed from the HTTP request).
struct Call {
    /// The path with its query string.
    path: String,
    body: String,
    idempotency_key: Option<String>,
}

impl Call {
    #[expect(clippy::result_large_err, reason = "the error is the HTTP answer to a bad request, returned at once")]
    fn new(endpoint: &Endpoint, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Call, Response> {
        let path = uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| uri.path().to_owned());
        let body = match String::from_utf8(body.to_vec()) {
            Ok(text) => text,
            Err(_) => {
                // Answered in the endpoint's own error shape, as the service answers a body that
                // is not JSON.
                let reply = endpoint.bad_request("request body is not valid JSON: it is not UTF-8 text");
                return Err(json_response(reply.status, &reply.body));
            }
        };
        let idempotency_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
            None => None,
            Some(Ok(key)) => Some(key.to_owned()),
            Some(Err(_)) => {
                let reply = endpoint.bad_request("`Idempotency-Key` must be printable ASCII");
                return Err(json_response(reply.status, &reply.body));
            }
        };
        Ok(Call { path, body, idempotency_key })
    }

    async fn run(self, state: &AppState) -> Result<(u16, Value), Response> {
        let waiting = ClientWaiting(Arc::new(AtomicBool::new(true)));
        let flag = waiting.0.clone();
        let options = CallOptions {
            idempotency_key: self.idempotency_key,
            still_waiting: Some(Arc::new(move || flag.load(Ordering::SeqCst))),
        };
        let route = self.path.split('?').next().unwrap_or_default().to_owned();
        // The call runs as a task of its own: a client that disconnects while its purchase waits
        // for the card drops this handler, not the exchange, whose outcome is still journaled (and
        // a request not yet written is then not sent: `waiting` is lowered).
        let answer = tokio::spawn(state.service().clone().dispatch_async(self.path, self.body, options)).await;
        drop(waiting);
        match answer {
            Ok(reply) => Ok((reply.status, reply.body)),
            Err(error) => {
                tracing::error!(path = route, %error, "the call failed internally");
                Err(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::Error,
                    "Internal error; see the service log",
                ))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The service's endpoints (declared in `nami_sdk::service::endpoints`)

/// The route of a service endpoint: its method and one handler that hands the call to the
/// service ([`forward`]); `/api/health-status` adds the daemon's own fields ([`health_status`]).
pub fn service_route(endpoint: &'static Endpoint) -> MethodRouter<AppState> {
    if *endpoint == endpoints::HEALTH_STATUS {
        return get(health_status);
    }
    let handler = move |State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Bytes| async move {
        forward(&state, endpoint, uri, headers, body).await
    };
    match endpoint.method {
        Method::Get => get(handler),
        Method::Post => post(handler),
    }
}

/// The daemon's fields of `GET /api/health-status`, beside the service's (the OpenAPI document
/// adds them to the service's `HealthStatus`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaemonHealth {
    /// `http` or `https`: how the API is served now.
    pub scheme: &'static str,
    /// SHA-256 fingerprint of the TLS certificate (uppercase hex pairs joined by colons, as
    /// `openssl x509 -fingerprint -sha256` shows it), to pin instead of disabling verification;
    /// null until HTTPS has been enabled once.
    #[schema(required = true)]
    pub tls_fingerprint_sha256: Option<String>,
    /// Whether requests need `Authorization: Bearer <token>`.
    pub auth_required: bool,
    /// The embedded simulator; null when none runs.
    #[schema(required = true)]
    pub simulator: Option<nami_sim::SimSummary>,
}

/// Service health (the service's) and the daemon's scheme, certificate fingerprint, token and
/// simulator.
pub async fn health_status(State(state): State<AppState>, uri: Uri, body: Bytes) -> Response {
    match call(&state, &endpoints::HEALTH_STATUS, uri, HeaderMap::new(), body).await {
        Ok((status, mut value)) => {
            let daemon = DaemonHealth {
                scheme: state.tls().scheme(),
                tls_fingerprint_sha256: state.tls().fingerprint(),
                auth_required: state.token().is_some(),
                simulator: state.simulator_summary(),
            };
            if let (Value::Object(map), Ok(Value::Object(fields))) = (&mut value, serde_json::to_value(daemon)) {
                map.extend(fields);
            }
            json_response(status, &value)
        }
        Err(response) => response,
    }
}

/// Whether the API is served over HTTPS, and the certificate's fingerprint.
#[utoipa::path(get, path = "/api/tls", tag = "HTTPS",
    responses((status = 200, description = "The HTTPS state", body = crate::tls::TlsStatus)))]
pub async fn tls_status(State(state): State<AppState>) -> Response {
    json_response(200, &state.tls().status(state.port()))
}

/// The dashboard's "Switch to HTTPS" (or back): answers on the current connection, then new
/// connections on the same port use the new scheme; connections of the old scheme are closed
/// once idle. Remembered across restarts (a flag or `NAMI_TLS` still wins).
#[utoipa::path(post, path = "/api/tls", tag = "HTTPS",
    request_body = TlsSwitchRequestDoc,
    responses(
        (status = 200, description = "Switched; the new state", body = crate::tls::TlsStatus),
        (status = 400, description = "`enabled` missing or not a boolean", body = StatusResponse),
        (status = 500, description = "The certificate could not be loaded or generated", body = StatusResponse)))]
pub async fn tls_switch(State(state): State<AppState>, body: Bytes) -> Response {
    let enabled = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("enabled").and_then(Value::as_bool));
    let Some(enabled) = enabled else {
        return json_response(400, &json!({"status": "Error", "message": "`enabled` must be true or false"}));
    };
    let tls = state.tls().clone();
    match tokio::task::spawn_blocking(move || tls.set(enabled)).await {
        Ok(Ok(())) => {
            let mut status = state.tls().status(state.port());
            status.status = Some("Success".into());
            status.message =
                Some(format!("New connections on port {} must use {}://", state.port(), state.tls().scheme()));
            json_response(200, &status)
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

/// A method a path does not serve (the router adds the `Allow` header).
pub async fn method_not_allowed(uri: Uri, method: axum::http::Method) -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, Code::Error, format!("{method} is not allowed on {}", uri.path()))
}
