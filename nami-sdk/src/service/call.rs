//! `call(path, json) -> json`: the REST API without HTTP, for the daemon, the C ABI and the
//! bindings. The same bodies as the HTTP API; the method is not checked (a GET body and a query
//! string are both accepted: the query's parameters are merged into the body).
//!
//! | path | body | answer |
//! |---|---|---|
//! | `/get-com-ports` | none | `[ComPortInfo]` |
//! | `/com/connect` | `ComConnectRequest` | `{success, message}` |
//! | `/com/disconnect` | none | `0` or `1` |
//! | `/performTransactionCOM` | `paymentRequest` (bare or wrapped) | `TransactionResponse` |
//! | `/performTransactionTCPIP` | `{tcpipcomData, paymentRequest}` | `TransactionResponse` |
//! | `/tcp-ip/connect`, `/tcp-ip/disconnect` | `{tcpipcomData}` or `{ip, port}` | `{Ip, portNumber, isConnected, connectionStatus}` |
//! | `/cancelTransaction` | none, `{ip, port}` or `{com: true}` | `{status, message}` |
//! | `/getExistingConnections` | none | `{"ip:port": "Connected"}` |
//! | `/registrationStatus` | none, `{ip, port}` or `{com: true}` | `RegistrationStatus` |
//! | `/clearTerminalData` | `{confirmClear: true}` | `{status, message}` |
//! | `/api/health-status` | none | `HealthStatus` |
//! | `/transactions` | filters `terminal`, `ecrReferenceNo`, `from`, `to`, `state`, `limit` | `{count, transactions}` |
//! | `/transactions/{ecrReferenceNo}` | optional `terminal` | `{count, transactions}` (404 when none) |
//! | `/nextEcrReference` | `{cashRegisterNo}` | `{ecrReferenceNo}` |
//!
//! Paths match exactly, as the daemon routes them (`endpoints::Endpoint::find`): case, a trailing
//! slash and white space count.
//!
//! HTTP status: 200 whenever the endpoint answered with its documented body (also for
//! middleware status codes such as `TIMEOUT`, which are in the body); 400 for a body that is not
//! JSON or not of the endpoint's shape; 404 for an unknown path or no journal entry; 500 if the
//! service failed internally. The body is always JSON.

use crate::status::StatusCode;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::endpoints::{BadBodyShape, Endpoint, PERFORM_TRANSACTION_TCPIP};
use super::journal::JournalFilter;
use super::{
    CallOptions, ClearTerminalDataRequest, ComConnectRequest, ComConnectResponse, EntryStateFilter, ErrorBody,
    NextEcrReference, NextEcrReferenceRequest, Service, Target, TcpTarget, TcpTransactionRequest, TerminalSelector,
    TransactionResponse, TransactionsQuery,
};
use crate::payment_request::PaymentRequest;
use crate::protocol::values::CashRegisterNo;

/// What a call answers: the HTTP status a daemon should use and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct CallReply {
    pub status: u16,
    pub body: Value,
}

impl CallReply {
    fn ok(body: impl serde::Serialize) -> Self {
        CallReply { status: 200, body: serde_json::to_value(body).unwrap_or(Value::Null) }
    }

    fn with_status(status: u16, body: impl serde::Serialize) -> Self {
        CallReply { status, body: serde_json::to_value(body).unwrap_or(Value::Null) }
    }
}

/// Routes a call. Never panics: an internal failure is a 500 with a JSON body.
pub fn dispatch(service: &Service, path: &str, body: &str, options: &CallOptions) -> CallReply {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(service, path, body, options))) {
        Ok(reply) => reply,
        Err(_) => internal_error(path),
    }
}

/// [`dispatch`] on tokio: a TCP transaction waits for its terminal without holding a thread
/// ([`Service::perform_transaction_tcp_async`]); every other call, short, runs on tokio's
/// blocking pool. Never panics.
pub async fn dispatch_async(service: Arc<Service>, path: String, body: String, options: CallOptions) -> CallReply {
    let (route_path, query) = path.split_once('?').unwrap_or((&path, ""));
    if route_path == PERFORM_TRANSACTION_TCPIP.path
        && let Ok(request) = body_value(&body, query).map_err(|_| ()).and_then(|v| parse(v).map_err(|_| ()))
    {
        // A body that does not parse takes the blocking route, which answers its 400.
        return CallReply::ok(service.perform_transaction_tcp_async(request, options).await);
    }
    let blocking_path = path.clone();
    tokio::task::spawn_blocking(move || dispatch(&service, &blocking_path, &body, &options))
        .await
        .unwrap_or_else(|_| internal_error(&path))
}

fn internal_error(path: &str) -> CallReply {
    tracing::error!(path, "internal error while handling a call");
    CallReply::with_status(500, ErrorBody::new(StatusCode::Error, "Internal error; see the service log"))
}

/// A body that did not have the endpoint's shape: the path of the bad field and what is wrong.
#[derive(Debug)]
struct BadBody {
    path: String,
    message: String,
}

impl BadBody {
    fn text(&self) -> String {
        if self.path.is_empty() || self.path == "." {
            format!("request body: {}", self.message)
        } else {
            format!("`{}` {}", self.path, self.message)
        }
    }

    /// The middleware status code for a transaction body with this fault.
    fn code(&self) -> StatusCode {
        let field = self.path.rsplit('.').next().unwrap_or("");
        match field {
            "amount" | "refundAmount" | "cashBackAmount" | "authAmount" | "origTransactionAmt" | "cashAdvanceAmt"
            | "billPayAmt" | "preAuthAMount" | "preAuthAmount" => StatusCode::InvalidAmount,
            "ecrReferenceNo" => StatusCode::InvalidEcrRef,
            "txnType" => StatusCode::InvalidTxnType,
            _ => StatusCode::Error,
        }
    }
}

fn parse<T: DeserializeOwned>(value: Value) -> Result<T, BadBody> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        BadBody { path, message: e.into_inner().to_string() }
    })
}

/// One call as an endpoint's operation gets it: the body (the query string's parameters merged
/// in), the path parameter, the caller's options.
pub(super) struct Call<'a> {
    body: Value,
    parameter: Option<&'a str>,
    options: &'a CallOptions,
}

/// The endpoint of `path` (exactly, as the daemon routes it: [`Endpoint::find`]) serves the call;
/// any other path is a 404.
fn route(service: &Service, path: &str, body: &str, options: &CallOptions) -> CallReply {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let Some((endpoint, parameter)) = Endpoint::find(path) else {
        return CallReply::with_status(404, ErrorBody::new(StatusCode::Error, format!("Unknown endpoint {path:?}")));
    };
    let body = match body_value(body, query) {
        Ok(body) => body,
        Err(message) => return bad_request(endpoint.bad_body, message),
    };
    endpoint.serve(service, Call { body, parameter, options })
}

// The endpoints' operations (see `endpoints.rs`).

pub(super) fn get_com_ports(service: &Service, _: Call<'_>) -> CallReply {
    CallReply::ok(service.get_com_ports())
}

pub(super) fn com_connect(service: &Service, call: Call<'_>) -> CallReply {
    match parse::<ComConnectRequest>(call.body) {
        Ok(request) => CallReply::ok(service.com_connect(&request)),
        Err(bad) => bad_request(BadBodyShape::ComConnect, bad.text()),
    }
}

pub(super) fn com_disconnect(service: &Service, _: Call<'_>) -> CallReply {
    CallReply::ok(service.com_disconnect())
}

pub(super) fn perform_transaction_com(service: &Service, call: Call<'_>) -> CallReply {
    // The seeds post a bare paymentRequest; a wrapped one is accepted too.
    let inner = match call.body {
        Value::Object(mut map) if map.contains_key("paymentRequest") => {
            map.remove("paymentRequest").unwrap_or_default()
        }
        other => other,
    };
    match parse::<PaymentRequest>(inner) {
        Ok(request) => CallReply::ok(service.perform_transaction_com_with(&request, call.options)),
        Err(bad) => transaction_bad_body(bad, "paymentRequest"),
    }
}

pub(super) fn perform_transaction_tcp(service: &Service, call: Call<'_>) -> CallReply {
    match parse::<TcpTransactionRequest>(call.body) {
        Ok(request) => CallReply::ok(service.perform_transaction_tcp_with(&request, call.options)),
        Err(bad) => transaction_bad_body(bad, ""),
    }
}

pub(super) fn tcp_connect(service: &Service, call: Call<'_>) -> CallReply {
    with_tcp_target(call.body, |target| CallReply::ok(service.tcp_connect(target)))
}

pub(super) fn tcp_disconnect(service: &Service, call: Call<'_>) -> CallReply {
    with_tcp_target(call.body, |target| CallReply::ok(service.tcp_disconnect(target)))
}

fn with_tcp_target(body: Value, f: impl FnOnce(&TcpTarget) -> CallReply) -> CallReply {
    match selector(body).and_then(tcp_target) {
        Ok(Some(target)) => f(&target),
        Ok(None) => status_error(400, "request body: `tcpipcomData` with `ip` and `port` is required".into()),
        Err(bad) => status_error(400, bad.text()),
    }
}

pub(super) fn cancel_transaction(service: &Service, call: Call<'_>) -> CallReply {
    match target(call.body) {
        Ok(target) => CallReply::ok(service.cancel_transaction(target.as_ref())),
        Err(bad) => status_error(400, bad.text()),
    }
}

pub(super) fn get_existing_connections(service: &Service, _: Call<'_>) -> CallReply {
    CallReply::ok(service.existing_connections())
}

pub(super) fn registration_status(service: &Service, call: Call<'_>) -> CallReply {
    match target(call.body) {
        Ok(target) => CallReply::ok(service.registration_status(target.as_ref())),
        Err(bad) => status_error(400, bad.text()),
    }
}

pub(super) fn clear_terminal_data(service: &Service, call: Call<'_>) -> CallReply {
    match parse::<ClearTerminalDataRequest>(call.body) {
        Ok(request) => CallReply::ok(service.clear_terminal_data(&request)),
        Err(bad) => status_error(400, bad.text()),
    }
}

pub(super) fn health_status(service: &Service, _: Call<'_>) -> CallReply {
    CallReply::ok(service.health_status())
}

pub(super) fn transactions(service: &Service, call: Call<'_>) -> CallReply {
    journal_entries(service, call.body, None)
}

pub(super) fn transaction(service: &Service, call: Call<'_>) -> CallReply {
    // The reference keeps its spelling (digits anyway).
    journal_entries(service, call.body, call.parameter.map(str::to_owned))
}

/// The body as JSON (empty means `{}`), with the query string's parameters added.
fn body_value(body: &str, query: &str) -> Result<Value, String> {
    let mut value = if body.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(body).map_err(|e| format!("request body is not valid JSON: {e}"))?
    };
    if let Value::Object(map) = &mut value {
        for (name, text) in form_urlencoded::parse(query.as_bytes()) {
            map.entry(name.into_owned()).or_insert(Value::String(text.into_owned()));
        }
    }
    Ok(value)
}

/// A 400 in the endpoint's own answer shape.
pub(super) fn bad_request(shape: BadBodyShape, message: String) -> CallReply {
    match shape {
        BadBodyShape::Transaction => {
            CallReply::with_status(400, TransactionResponse::error(StatusCode::Error, message))
        }
        BadBodyShape::ComConnect => CallReply::with_status(400, ComConnectResponse { success: false, message }),
        BadBodyShape::Status => status_error(400, message),
    }
}

fn status_error(status: u16, message: String) -> CallReply {
    CallReply::with_status(status, json!({"status": "Error", "message": message}))
}

fn transaction_bad_body(bad: BadBody, prefix: &str) -> CallReply {
    let bad = if prefix.is_empty() || bad.path.is_empty() || bad.path == "." {
        bad
    } else {
        BadBody { path: format!("{prefix}.{}", bad.path), message: bad.message }
    };
    CallReply::with_status(400, TransactionResponse::error(bad.code(), bad.text()))
}

/// The body as a [`TerminalSelector`] (a JSON object whose parts stay JSON).
fn selector(body: Value) -> Result<TerminalSelector, BadBody> {
    if !body.is_object() {
        return Err(BadBody { path: String::new(), message: "must be a JSON object".into() });
    }
    parse(body)
}

/// `{tcpipcomData: {ip, port}}` or `{ip, port}`; `None` when neither is there.
fn tcp_target(selector: TerminalSelector) -> Result<Option<TcpTarget>, BadBody> {
    if let Some(inner) = selector.tcpipcom_data {
        return parse::<TcpTarget>(inner)
            .map(Some)
            .map_err(|bad| BadBody { path: format!("tcpipcomData.{}", bad.path.trim_start_matches('.')), ..bad });
    }
    if selector.ip.is_some() || selector.port.is_some() {
        let ip = selector.ip.unwrap_or(Value::Null);
        let port = selector.port.unwrap_or(Value::Null);
        return parse::<TcpTarget>(json!({"ip": ip, "port": port})).map(Some);
    }
    Ok(None)
}

/// A TCP terminal, the COM connection (`{"com": true}`, `{"com": "COM3"}`), or none.
fn target(body: Value) -> Result<Option<Target>, BadBody> {
    let selector = selector(body)?;
    if selector.selects_com() {
        return Ok(Some(Target::Com));
    }
    Ok(tcp_target(selector)?.map(Target::Tcp))
}

fn journal_entries(service: &Service, body: Value, reference: Option<String>) -> CallReply {
    if !body.is_object() {
        return status_error(400, "request body: must be a JSON object".into());
    }
    let query = match parse::<TransactionsQuery>(body) {
        Ok(query) => query,
        Err(bad) => return status_error(400, bad.text()),
    };
    let mut filter = JournalFilter {
        terminal: query.terminal,
        ecr_reference: reference.clone().or(query.ecr_reference_no),
        from: query.from,
        to: query.to,
        limit: query.limit,
        ..JournalFilter::default()
    };
    match query.state {
        None => {}
        // The unknown outcomes recovery has not settled after its attempts.
        Some(EntryStateFilter::Attention) => filter.needs_attention = true,
        Some(EntryStateFilter::State(state)) => filter.state = Some(state),
    }
    match service.transactions(&filter) {
        Ok(list) if reference.is_some() && list.count == 0 => CallReply::with_status(404, list),
        Ok(list) => CallReply::ok(list),
        Err(e) => CallReply::with_status(500, json!({"status": "Error", "message": format!("journal: {e}")})),
    }
}

pub(super) fn next_ecr_reference(service: &Service, call: Call<'_>) -> CallReply {
    // A body that is not an object has no register number either.
    let request = match call.body {
        body @ Value::Object(_) => parse::<NextEcrReferenceRequest>(body).unwrap_or_default(),
        _ => NextEcrReferenceRequest::default(),
    };
    let Some(register) = request.cash_register_no else {
        return status_error(400, "`cashRegisterNo` (8 digits) is required".into());
    };
    let register = match CashRegisterNo::parse(&register) {
        Ok(register) => register,
        Err(e) => return status_error(400, format!("`{}` {}", e.field, e.reason)),
    };
    // An ECR reference must not start with 0, so neither may the register number it begins with.
    if register.as_str().starts_with('0') {
        return status_error(400, "`cashRegisterNo` must not start with 0: ECR references begin with it".into());
    }
    match service.next_ecr_reference(&register) {
        Ok(reference) => CallReply::ok(NextEcrReference { ecr_reference_no: reference.as_str().to_owned() }),
        Err(super::ServiceError::Invalid(e)) => status_error(400, format!("`{}` {}", e.field, e.reason)),
        Err(e) => status_error(500, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_merge_into_the_body() {
        let value = body_value("", "ip=192.168.1.100&port=2345&name=a%20b+c").unwrap();
        assert_eq!(value["ip"], "192.168.1.100");
        assert_eq!(value["port"], "2345");
        assert_eq!(value["name"], "a b c");
        assert!(body_value("{nope", "").is_err());
    }

    #[test]
    fn targets_are_read_from_either_shape() {
        let t = target(json!({"tcpipcomData": {"ip": "10.0.0.1", "port": 8888}})).unwrap();
        assert_eq!(t, Some(Target::Tcp(TcpTarget { ip: "10.0.0.1".into(), port: 8888 })));
        let t = target(json!({"ip": "10.0.0.1", "port": "8888"})).unwrap();
        assert!(matches!(t, Some(Target::Tcp(_))));
        assert_eq!(target(json!({"com": true})).unwrap(), Some(Target::Com));
        assert_eq!(target(json!({})).unwrap(), None);
        let bad = target(json!({"tcpipcomData": {"ip": "10.0.0.1", "port": "x"}})).unwrap_err();
        assert!(bad.text().contains("tcpipcomData.port"), "{}", bad.text());
    }
}
