//! The HTTP control API: tests and integrators change faults, tap the card and reboot the
//! terminal while it runs. Every answer is JSON; errors are `{"error": "..."}` with a 4xx status.
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

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use crate::fault::{Fault, FaultScope};
use crate::{Simulator, lock};

/// Bodies beyond this are refused; the API's bodies are a few dozen bytes.
const MAX_BODY: u64 = 64 * 1024;

/// Serves requests until the server is unblocked at shutdown.
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
    let method = request.method().clone();
    let path = request.url().split('?').next().unwrap_or("").trim_end_matches('/').to_owned();
    let mut body = String::new();
    let read = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
    let (status, value) = match read {
        Err(_) => (400, error("the body must be UTF-8 text of at most 64 KiB")),
        Ok(_) => route(sim, &method, &path, &body),
    };
    tracing::debug!(%method, path, status, "control request");
    let content_type = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]);
    let mut response = Response::from_string(value.to_string()).with_status_code(status);
    if let Ok(header) = content_type {
        response = response.with_header(header);
    }
    let _ = request.respond(response);
}

fn route(sim: &Simulator, method: &Method, path: &str, body: &str) -> (u16, Value) {
    match (method, path) {
        (Method::Get, "/state" | "") => (200, state(sim)),
        (Method::Get, "/journal") => (200, json!(sim.journal())),
        (Method::Post, "/fault") => match parse_body(body).and_then(|v| fault_request(&v)) {
            Ok((fault, scope)) => {
                sim.set_fault(fault, scope);
                (200, state(sim))
            }
            Err(message) => (400, error(&message)),
        },
        (Method::Post, "/faults/clear") => {
            sim.clear_faults();
            (200, state(sim))
        }
        (Method::Post, "/tap") => {
            let was_waiting = sim.waiting_for_card();
            sim.tap_card();
            (200, json!({ "tapped": true, "purchaseWasWaiting": was_waiting }))
        }
        (Method::Post, "/card-tap") => {
            match parse_body(body).and_then(|v| {
                v.get("enabled")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| "the body must be {\"enabled\": true} or {\"enabled\": false}".to_owned())
            }) {
                Ok(enabled) => {
                    sim.set_card_tap(enabled);
                    (200, state(sim))
                }
                Err(message) => (400, error(&message)),
            }
        }
        (Method::Post, "/reboot") => {
            sim.reboot();
            (200, state(sim))
        }
        (_, "/state" | "/journal" | "/fault" | "/faults/clear" | "/tap" | "/card-tap" | "/reboot") => {
            (405, error(&format!("{method} is not allowed on {path}")))
        }
        _ => (404, error(&format!("no such endpoint: {method} {path}"))),
    }
}

fn parse_body(body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// `{"fault":"delay","ms":500,"scope":"next","count":1}`; scope defaults to `next`, count to 1.
fn fault_request(value: &Value) -> Result<(Fault, FaultScope), String> {
    let fault = Fault::from_json(value).map_err(|e| e.0)?;
    let scope = match value.get("scope").and_then(Value::as_str).unwrap_or("next") {
        "always" => FaultScope::Always,
        "next" => {
            let count = match value.get("count") {
                None => 1,
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

fn state(sim: &Simulator) -> Value {
    let faults: Vec<Value> = lock(&sim.shared.control)
        .faults
        .list()
        .iter()
        .map(|active| {
            let mut value = active.fault.to_json();
            if let Value::Object(map) = &mut value {
                match active.remaining {
                    Some(n) => {
                        map.insert("scope".into(), json!("next"));
                        map.insert("remaining".into(), json!(n));
                    }
                    None => {
                        map.insert("scope".into(), json!("always"));
                    }
                }
            }
            value
        })
        .collect();
    let (registered, session_open, journal_length) = {
        let terminal = sim.shared.terminal();
        (terminal.is_registered(), terminal.session_open(), terminal.journal().len())
    };
    json!({
        "registered": registered,
        "sessionOpen": session_open,
        "terminalId": sim.terminal_id().as_str(),
        "listen": sim.addr().to_string(),
        "requestsReceived": sim.requests_received(),
        "faults": faults,
        "cardTap": sim.card_tap(),
        "waitingForCard": sim.waiting_for_card(),
        "exchangeInProgress": sim.exchange_in_progress(),
        "journalLength": journal_length,
    })
}

fn error(message: &str) -> Value {
    json!({ "error": message })
}
