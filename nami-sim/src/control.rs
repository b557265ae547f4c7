//! The control API: tests and integrators change faults, tap the card and reboot the terminal
//! while it runs. [`Simulator::control`] answers one request, whatever carries it: nami-sim's own
//! HTTP server ([`serve`], `--control`) and the daemon's `/simulator/*` routes (nami-httpd's
//! `sim.rs`) both hand it the method, the path and the body, so the two answer alike. Every answer
//! is JSON; errors are `{"error": "..."}` with a 4xx status.
//!
//! | Method and path     | Body                                                   | Does                          |
//! |---------------------|--------------------------------------------------------|-------------------------------|
//! | `GET /state`        |                                                        | registration, faults, counters |
//! | `GET /journal`      |                                                        | the journal, oldest first     |
//! | `POST /fault`       | `{"fault":"delay","ms":500,"scope":"next","count":1}`  | sets a fault                  |
//! | `POST /faults/clear`|                                                        | clears every fault            |
//! | `POST /tap`         |                                                        | taps the card                 |
//! | `POST /card-tap`    | `{"enabled":true}`                                     | card-tap mode on or off       |
//! | `POST /reboot`      |                                                        | forgets registration, session |

use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tiny_http::{Header, Request, Response};

use crate::Simulator;
use crate::fault::{Fault, FaultScope};

/// Bodies beyond this are refused; the API's bodies are a few dozen bytes.
const MAX_BODY: u64 = 64 * 1024;

/// The paths of the control API (relative: the daemon serves them under `/simulator`).
pub const CONTROL_PATHS: &[&str] = &["/state", "/journal", "/fault", "/faults/clear", "/tap", "/card-tap", "/reboot"];

/// The answer to one control request: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlAnswer {
    pub status: u16,
    pub body: Value,
}

impl ControlAnswer {
    fn ok(body: Value) -> ControlAnswer {
        ControlAnswer { status: 200, body }
    }

    fn error(status: u16, message: &str) -> ControlAnswer {
        ControlAnswer { status, body: json!(ControlError { error: message.to_owned() }) }
    }
}

/// A simulator error: no simulator runs (404), a bad body (400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorError))]
pub struct ControlError {
    pub error: String,
}

/// `POST /tap` (the daemon's `/simulator/tap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorTap))]
pub struct Tapped {
    pub tapped: bool,
    /// Whether a card transaction was waiting (else the tap stays on the reader for the next).
    pub purchase_was_waiting: bool,
}

/// `POST /card-tap` (the daemon's `/simulator/card-tap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorCardTapRequest))]
pub struct CardTapRequest {
    pub enabled: bool,
}

// The control API reads this body by hand (`Fault::from_json`, for its own error texts); the type
// says its shape, and a test (fault.rs) checks that `FaultName` has every name the parser takes.
/// `POST /fault` (the daemon's `/simulator/fault`). Each fault reads only its own argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorFaultRequest))]
pub struct FaultRequest {
    pub fault: FaultName,
    /// `delay` [default 1000], `byte-by-byte` [default 10]: milliseconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 86400000))]
    pub ms: Option<u64>,
    /// `split`: number of writes [default 3].
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 4096))]
    pub writes: Option<u32>,
    /// `decline`: the response code, 1 to 4 digits [default 116].
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{1,4}$"))]
    pub code: Option<String>,
    pub scope: Option<FaultScopeName>,
    /// `next`: for how many requests [default 1].
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 4294967295_u64))]
    pub count: Option<u32>,
}

/// A fault's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorFaultName))]
pub enum FaultName {
    /// Reply after `ms`.
    Delay,
    /// Carry out the request but never reply.
    NeverAnswer,
    /// Write the reply one byte every `ms`.
    ByteByByte,
    /// Write the reply in `writes` writes.
    Split,
    /// Write the reply twice.
    TwoReplies,
    /// Carry out the request, then close the connection without replying.
    CloseAfterRequest,
    /// Write half the reply, then close the connection.
    CloseMidReply,
    /// Garbage bytes, then the reply.
    Garbage,
    /// Only garbage bytes.
    GarbageOnly,
    /// `923 REQUEST IN PROGRESS` at once.
    Busy,
    /// This response `code` instead of the amount rules'.
    Decline,
}

/// For how many requests a fault holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorFaultScope))]
pub enum FaultScopeName {
    /// The next `count` requests (default).
    Next,
    /// Until `POST /simulator/faults/clear`.
    Always,
}

/// A fault in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorFault))]
pub struct FaultInForce {
    /// `delay`, `never-answer`, `byte-by-byte`, `split`, `two-replies`, `close-after-request`,
    /// `close-mid-reply`, `garbage`, `garbage-only`, `busy`, `decline`.
    pub fault: String,
    /// `delay`, `byte-by-byte`: milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// `split`: number of writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<u64>,
    /// `decline`: the response code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `next` or `always`.
    pub scope: String,
    /// `next`: requests left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
}

/// The simulated terminal's state (the control API's `GET /state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorState))]
pub struct SimState {
    pub registered: bool,
    pub session_open: bool,
    pub terminal_id: String,
    /// Its TCP address.
    pub listen: String,
    /// Its pseudo-terminal path (the first one opened that is still open), if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub pty: Option<String>,
    /// Frames received so far, on every link.
    pub requests_received: u64,
    pub faults: Vec<FaultInForce>,
    /// Whether card transactions wait for `POST /simulator/tap`.
    pub card_tap: bool,
    pub waiting_for_card: bool,
    /// Whether an exchange runs (a request now would get `923`).
    pub exchange_in_progress: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub journal_length: usize,
}

/// Where the simulator serves: its TCP address and its pseudo-terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorSummary))]
pub struct SimSummary {
    /// Its TCP address (use as `tcpipcomData`).
    pub listen: String,
    /// Its pseudo-terminal (use as `/com/connect`'s `port`); null on Windows, which has none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub pty: Option<String>,
}

impl Simulator {
    /// Answers one control request: `method` (`GET`, `POST`), `path` relative to the API's root
    /// (`/state`, `/fault`, ...; a trailing `/` and a query string are ignored) and the body. It
    /// takes the terminal's locks: from async code, call it on a blocking thread.
    pub fn control(&self, method: &str, path: &str, body: &[u8]) -> ControlAnswer {
        let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
        match (method, path) {
            ("GET", "/state" | "") => ControlAnswer::ok(json!(self.state())),
            ("GET", "/journal") => ControlAnswer::ok(json!(self.journal())),
            ("POST", "/fault") => match parse_body(body).and_then(|v| fault_request(&v)) {
                Ok((fault, scope)) => {
                    self.set_fault(fault, scope);
                    ControlAnswer::ok(json!(self.state()))
                }
                Err(message) => ControlAnswer::error(400, &message),
            },
            ("POST", "/faults/clear") => {
                self.clear_faults();
                ControlAnswer::ok(json!(self.state()))
            }
            ("POST", "/tap") => {
                let was_waiting = self.waiting_for_card();
                self.tap_card();
                ControlAnswer::ok(json!(Tapped { tapped: true, purchase_was_waiting: was_waiting }))
            }
            ("POST", "/card-tap") => match parse_body(body).and_then(|v| {
                // An object only: serde would read `[true]` as the struct's fields in order.
                v.is_object()
                    .then(|| serde_json::from_value::<CardTapRequest>(v).ok())
                    .flatten()
                    .map(|request| request.enabled)
                    .ok_or_else(|| "the body must be {\"enabled\": true} or {\"enabled\": false}".to_owned())
            }) {
                Ok(enabled) => {
                    self.set_card_tap(enabled);
                    ControlAnswer::ok(json!(self.state()))
                }
                Err(message) => ControlAnswer::error(400, &message),
            },
            ("POST", "/reboot") => {
                self.reboot();
                ControlAnswer::ok(json!(self.state()))
            }
            (_, path) if CONTROL_PATHS.contains(&path) => {
                ControlAnswer::error(405, &format!("{method} is not allowed on {path}"))
            }
            _ => ControlAnswer::error(404, &format!("no such endpoint: {method} {path}")),
        }
    }

    /// What `GET /state` answers.
    pub fn state(&self) -> SimState {
        let faults = self.faults().into_iter().map(|(fault, remaining)| fault.in_force(remaining)).collect();
        let (registered, session_open, journal_length) = {
            let terminal = self.shared.terminal();
            (terminal.is_registered(), terminal.session_open(), terminal.journal().len())
        };
        SimState {
            registered,
            session_open,
            terminal_id: self.terminal_id().as_str().to_owned(),
            listen: self.addr().to_string(),
            pty: self.pty_path().map(|p| p.display().to_string()),
            requests_received: self.requests_received(),
            faults,
            card_tap: self.card_tap(),
            waiting_for_card: self.waiting_for_card(),
            exchange_in_progress: self.exchange_in_progress(),
            journal_length,
        }
    }

    /// Where it serves: its TCP address and its pseudo-terminal, if one is open.
    pub fn summary(&self) -> SimSummary {
        SimSummary { listen: self.addr().to_string(), pty: self.pty_path().map(|p| p.display().to_string()) }
    }
}

/// Serves nami-sim's own HTTP control API until the server is unblocked at shutdown.
pub(crate) fn serve(sim: Simulator, server: Arc<tiny_http::Server>) {
    for request in server.incoming_requests() {
        if sim.shared.is_shut_down() {
            break;
        }
        handle(&sim, request);
    }
    tracing::debug!("control API closed");
}

fn handle(sim: &Simulator, mut request: Request) {
    let method = request.method().as_str().to_owned();
    let path = request.url().to_owned();
    let mut body = Vec::new();
    let answer = match request.as_reader().take(MAX_BODY + 1).read_to_end(&mut body) {
        Err(error) => ControlAnswer::error(400, &format!("the body could not be read: {error}")),
        Ok(_) if body.len() as u64 > MAX_BODY => {
            ControlAnswer::error(413, &format!("the body is over {} KiB", MAX_BODY / 1024))
        }
        Ok(_) => sim.control(&method, &path, &body),
    };
    tracing::debug!(method, path, status = answer.status, "control request");
    let content_type = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]);
    let mut response = Response::from_string(answer.body.to_string()).with_status_code(answer.status);
    if let Ok(header) = content_type {
        response = response.with_header(header);
    }
    let _ = request.respond(response);
}

fn parse_body(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// `{"fault":"delay","ms":500,"scope":"next","count":1}`; scope defaults to `next`, count to 1.
fn fault_request(value: &Value) -> Result<(Fault, FaultScope), String> {
    let fault = Fault::from_json(value).map_err(|e| e.0)?;
    let scope = match value.get("scope").and_then(Value::as_str).unwrap_or("next") {
        "always" => FaultScope::Always,
        "next" => {
            let count = match value.get("count") {
                None | Some(Value::Null) => 1,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("count must be a whole number, got {v}"))?,
            };
            FaultScope::Next(count)
        }
        other => return Err(format!("scope must be \"next\" or \"always\", got {other:?}")),
    };
    Ok((fault, scope))
}
