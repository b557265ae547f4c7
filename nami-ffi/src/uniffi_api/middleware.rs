//! The `Middleware` object: the SDK's `Service` (terminals over TCP and COM, the transaction
//! journal with idempotency by request, recovery of unknown outcomes) in process, called
//! with the REST API's paths and JSON bodies.

use nami_sdk::StatusCode;
use std::sync::Arc;

use nami_sdk as sdk;
use nami_sdk::CashRegisterNo;

use super::callbacks::{EventListener, deliver};
use super::config::MiddlewareOptions;
use super::error::NamiError;

/// The answer of `Middleware.dispatch`: the HTTP status the REST daemon would send and the body.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CallReply {
    /// 200 for every documented body (middleware errors are in the body's `statusCode`), 400 for
    /// a body that is not JSON or not of the endpoint's shape, 404 for an unknown path or a
    /// journal entry that does not exist, 500 for an internal failure.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// A middleware service, as Nami's Local API Middleware, in process. Thread-safe: calls for
/// different terminals run in parallel, and `cancel()` may be called from any thread. One
/// `Middleware` per state directory at a time. `shutdown()` (or freeing it) stops recovery and
/// cancels running calls.
#[derive(uniffi::Object)]
pub struct Middleware {
    service: sdk::Service,
    /// `cancel()` gives up every call begun before it: one not sent yet never is.
    cancels: sdk::service::CallerCancel,
}

/// The message of an error body (`{"status":"Error","message":...}` or a middleware status).
fn body_message(body: &serde_json::Value) -> String {
    ["message", "statusMessage", "error"]
        .iter()
        .find_map(|key| body.get(*key).and_then(|v| v.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string())
}

#[uniffi::export]
impl Middleware {
    /// Opens the state directory (created if missing; `journal.sqlite` and `state.sqlite` live
    /// there), restores the registrations and saved connections, and starts recovery.
    #[uniffi::constructor(default(options = None))]
    pub fn open(state_dir: String, options: Option<MiddlewareOptions>) -> Result<Arc<Self>, NamiError> {
        if state_dir.trim().is_empty() {
            return Err(NamiError::argument("state_dir", "`state_dir` is empty"));
        }
        let config = options.unwrap_or_default().to_sdk(&state_dir)?;
        Ok(Arc::new(Middleware { service: sdk::Service::open(config)?, cancels: Default::default() }))
    }

    /// Calls one endpoint of the REST API: `endpoint` a path such as `/performTransactionTCPIP`,
    /// `/tcp-ip/connect`, `/registrationStatus`, `/transactions` (a query string is merged into
    /// the body), `request_json` the body. Returns the response body, always JSON, also when it
    /// reports a middleware error (`"statusCode":"TIMEOUT"`) or a declined payment. Blocks until
    /// the terminal answers, its deadline passes or `cancel()` is called.
    #[uniffi::method(default(request_json = None))]
    pub fn call(&self, endpoint: String, request_json: Option<String>) -> String {
        self.dispatch(endpoint, request_json).body
    }

    /// `call` with the HTTP status the REST daemon would answer with.
    #[uniffi::method(default(request_json = None))]
    pub fn dispatch(&self, endpoint: String, request_json: Option<String>) -> CallReply {
        let body = request_json.as_deref().unwrap_or("");
        let reply = self.service.dispatch_with(&endpoint, body, &self.cancels.options());
        CallReply { status: reply.status, body: reply.body.to_string() }
    }

    /// The journal, newest first, as `{"count":N,"transactions":[...]}`. `filter_json` has the
    /// filters of `GET /transactions`: `terminal`, `ecrReferenceNo`, `from`, `to` (RFC 3339 or
    /// `YYYY-MM-DD`), `state` (`approved`, `declined`, `unknown`, ...), `limit`. A bad filter
    /// raises `InvalidInput`.
    #[uniffi::method(default(filter_json = None))]
    pub fn transactions(&self, filter_json: Option<String>) -> Result<String, NamiError> {
        self.journal("/transactions".to_owned(), filter_json)
    }

    /// The journal entries of one ECR reference (`count` 0 when there are none).
    pub fn transaction(&self, ecr_reference: String) -> Result<String, NamiError> {
        self.journal(format!("/transactions/{}", ecr_reference.trim()), None)
    }

    /// A fresh ECR reference for the cash register (its number and a persisted counter that never
    /// repeats a reference the journal holds).
    pub fn next_ecr_reference(&self, cash_register_no: String) -> Result<String, NamiError> {
        let register = CashRegisterNo::parse(&cash_register_no)?;
        Ok(self.service.next_ecr_reference(&register)?.as_str().to_owned())
    }

    /// Cancels every call waiting for a terminal: each ends promptly with
    /// `"statusCode":"CANCELLED"` (a payment that may have reached the terminal is marked unknown
    /// and recovered automatically); a call whose request has not been sent yet (waiting for a
    /// busy terminal with `wait_when_busy`, or a silent COM re-register) is never sent. Returns
    /// whether a call was running.
    pub fn cancel(&self) -> bool {
        self.cancels.cancel();
        self.service.cancel_transaction(None).status == "Success"
    }

    /// Receives the middleware's events (`None` removes the listener).
    pub fn set_listener(&self, listener: Option<Arc<dyn EventListener>>) {
        let Some(listener) = listener else {
            self.service.set_listener(None);
            return;
        };
        self.service.set_listener(Some(Arc::new(move |json: &str| {
            let terminal = serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .and_then(|v| v.get("terminal").and_then(|t| t.as_str()).map(str::to_owned))
                .unwrap_or_default();
            deliver(listener.as_ref(), &terminal, json.to_owned());
        })));
    }

    /// Stops recovery and cancels running calls (also done when the object is freed: Kotlin
    /// `close()`, Python garbage collection). Not called `close`, which Kotlin objects already
    /// have.
    pub fn shutdown(&self) {
        self.service.set_listener(None);
        self.service.shutdown();
    }
}

impl Drop for Middleware {
    fn drop(&mut self) {
        // No events into Python or Kotlin while the service stops (it may be freed during their
        // garbage collection); the service's own drop then stops recovery and cancels calls.
        self.service.set_listener(None);
    }
}

impl Middleware {
    fn journal(&self, path: String, filter_json: Option<String>) -> Result<String, NamiError> {
        let reply = self.service.dispatch(&path, filter_json.as_deref().unwrap_or(""));
        match reply.status {
            400 => Err(NamiError::InvalidInput {
                code: StatusCode::InvalidArgument.into(),
                field: "filter_json".into(),
                detail: body_message(&reply.body),
            }),
            500 => Err(NamiError::Storage { detail: body_message(&reply.body) }),
            _ => Ok(reply.body.to_string()),
        }
    }
}
