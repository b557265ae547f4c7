//! The embedded simulated terminal (`--simulator`) and its control endpoints under
//! `/simulator/`, mirroring the JSON of nami-sim's own control API (README of nami-sim), plus the
//! path of the pseudo-terminal it serves. Without a simulator every `/simulator/` endpoint
//! answers 404 `{"error": ...}`. On Windows the simulator serves TCP only (no pseudo-terminals).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use crate::AppState;
#[allow(unused_imports)] // Named in the `utoipa::path` attributes only.
use crate::openapi::*;
use crate::routes::json_response;

pub use imp::Embedded;

mod imp {
    use serde_json::{Value, json};

    use nami_sim::{Fault, FaultScope, SimConfig, Simulator};

    use crate::config::SimulatorSettings;

    /// A running simulator and the pty it serves (Unix; on Windows it serves TCP only).
    pub struct Embedded {
        pub sim: Simulator,
        #[cfg(unix)]
        pub pty: Option<nami_sim::SimPty>,
    }

    impl Embedded {
        pub fn start(settings: &SimulatorSettings) -> std::io::Result<Embedded> {
            let sim = Simulator::start(SimConfig {
                listen: settings.listen,
                card_tap: settings.card_tap,
                ..SimConfig::default()
            })?;
            #[cfg(unix)]
            let pty = match sim.open_pty() {
                Ok(pty) => Some(pty),
                Err(error) => {
                    tracing::warn!(%error, "the simulator's pseudo-terminal could not be opened; TCP only");
                    None
                }
            };
            Ok(Embedded {
                sim,
                #[cfg(unix)]
                pty,
            })
        }

        pub fn summary(&self) -> Value {
            json!({"listen": self.sim.addr().to_string(), "pty": self.pty_path()})
        }

        /// The pty to open as the COM port; none on Windows.
        pub fn pty_path(&self) -> Option<String> {
            #[cfg(unix)]
            return self.pty.as_ref().map(|p| p.path().display().to_string());
            #[cfg(not(unix))]
            None
        }

        pub fn shutdown(&self) {
            self.sim.shutdown();
        }

        /// nami-sim's `GET /state`, plus `pty`.
        pub fn state(&self) -> Value {
            let sim = &self.sim;
            let faults: Vec<Value> = sim
                .faults()
                .into_iter()
                .map(|(fault, remaining)| {
                    let mut value = fault.to_json();
                    if let Value::Object(map) = &mut value {
                        match remaining {
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
            json!({
                "registered": sim.is_registered(),
                "sessionOpen": sim.session_open(),
                "terminalId": sim.terminal_id().as_str(),
                "listen": sim.addr().to_string(),
                "pty": self.pty_path(),
                "requestsReceived": sim.requests_received(),
                "faults": faults,
                "cardTap": sim.card_tap(),
                "waitingForCard": sim.waiting_for_card(),
                "journalLength": sim.journal().len(),
            })
        }

        /// `{"fault":"delay","ms":500,"scope":"next","count":1}`, as nami-sim's control API
        /// takes it, except that each fault reads only its own argument (`ms` for delay and
        /// byte-by-byte, `writes` for split, `code` for decline).
        pub fn set_fault(&self, body: &Value) -> Result<(), String> {
            let name = body
                .get("fault")
                .and_then(Value::as_str)
                .ok_or_else(|| "the body needs a \"fault\" name, e.g. {\"fault\":\"never-answer\"}".to_owned())?;
            let key = match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "delay" | "byte-by-byte" | "slow" => Some("ms"),
                "split" => Some("writes"),
                "decline" => Some("code"),
                _ => None,
            };
            // Every argument present must be well-formed, whichever fault reads it.
            for name in ["ms", "writes", "code"] {
                let well_formed = match body.get(name) {
                    None | Some(Value::Null) => true,
                    Some(Value::Number(n)) => n.is_u64(),
                    Some(Value::String(text)) => !text.is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()),
                    Some(_) => false,
                };
                if !well_formed {
                    return Err(format!("`{name}` must be a whole number or its digits, got {}", body[name]));
                }
            }
            let argument = match key.and_then(|key| body.get(key)) {
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Number(number)) => Some(number.to_string()),
                _ => None,
            };
            let fault = Fault::from_parts(name, argument.as_deref()).map_err(|e| e.0)?;
            let scope = match body.get("scope").and_then(Value::as_str).unwrap_or("next") {
                "always" => FaultScope::Always,
                "next" => {
                    let count = match body.get("count") {
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
            self.sim.set_fault(fault, scope);
            Ok(())
        }

        pub fn journal(&self) -> Value {
            json!(self.sim.journal())
        }

        pub fn clear_faults(&self) {
            self.sim.clear_faults();
        }

        /// Taps the card; says whether a card transaction was waiting.
        pub fn tap(&self) -> bool {
            let was_waiting = self.sim.waiting_for_card();
            self.sim.tap_card();
            was_waiting
        }

        pub fn set_card_tap(&self, enabled: bool) {
            self.sim.set_card_tap(enabled);
        }

        pub fn reboot(&self) {
            self.sim.reboot();
        }
    }
}

fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// Runs `f` with the simulator on a blocking thread (its calls take locks the terminal holds
/// during an exchange); 404 when none runs.
async fn with_sim(state: &AppState, f: impl FnOnce(&Embedded) -> Response + Send + 'static) -> Response {
    let Some(embedded) = state.simulator() else {
        return error(404, "no simulator is running: start nami-httpd with --simulator");
    };
    tokio::task::spawn_blocking(move || f(&embedded)).await.unwrap_or_else(|_| error(500, "internal error"))
}

fn parse(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// The simulated terminal's state.
#[utoipa::path(get, path = "/simulator/state", tag = "Simulator",
    responses((status = 200, description = "The state", body = SimStateDoc),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn state(State(state): State<AppState>) -> Response {
    with_sim(&state, |sim| json_response(200, &sim.state())).await
}

/// The simulated terminal's journal, oldest first.
#[utoipa::path(get, path = "/simulator/journal", tag = "Simulator",
    responses((status = 200, description = "The journal", body = Vec<SimTransactionDoc>),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn journal(State(state): State<AppState>) -> Response {
    with_sim(&state, |sim| json_response(200, &sim.journal())).await
}

/// Sets a fault for the next `count` requests or always.
#[utoipa::path(post, path = "/simulator/fault", tag = "Simulator",
    request_body = SimFaultRequestDoc,
    responses((status = 200, description = "The state", body = SimStateDoc),
        (status = 400, description = "An unknown fault or a bad argument", body = SimErrorDoc),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn fault(State(state): State<AppState>, body: Bytes) -> Response {
    with_sim(&state, move |sim| match parse(&body).and_then(|v| sim.set_fault(&v)) {
        Ok(()) => json_response(200, &sim.state()),
        Err(message) => error(400, &message),
    })
    .await
}

/// Clears every fault.
#[utoipa::path(post, path = "/simulator/faults/clear", tag = "Simulator",
    responses((status = 200, description = "The state", body = SimStateDoc),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn clear_faults(State(state): State<AppState>) -> Response {
    with_sim(&state, |sim| {
        sim.clear_faults();
        json_response(200, &sim.state())
    })
    .await
}

/// Taps the card: a waiting card transaction goes on; with none waiting, the card stays on the
/// reader for the next.
#[utoipa::path(post, path = "/simulator/tap", tag = "Simulator",
    responses((status = 200, description = "Tapped", body = SimTapDoc),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn tap(State(state): State<AppState>) -> Response {
    with_sim(&state, |sim| {
        let was_waiting = sim.tap();
        json_response(200, &json!({"tapped": true, "purchaseWasWaiting": was_waiting}))
    })
    .await
}

/// Card-tap mode: card transactions wait for `POST /simulator/tap`.
#[utoipa::path(post, path = "/simulator/card-tap", tag = "Simulator",
    request_body = SimCardTapRequestDoc,
    responses((status = 200, description = "The state", body = SimStateDoc),
        (status = 400, description = "`enabled` missing or not a boolean", body = SimErrorDoc),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn card_tap(State(state): State<AppState>, body: Bytes) -> Response {
    with_sim(&state, move |sim| {
        let enabled = parse(&body).and_then(|v| {
            v.get("enabled")
                .and_then(Value::as_bool)
                .ok_or_else(|| "the body must be {\"enabled\": true} or {\"enabled\": false}".to_owned())
        });
        match enabled {
            Ok(enabled) => {
                sim.set_card_tap(enabled);
                json_response(200, &sim.state())
            }
            Err(message) => error(400, &message),
        }
    })
    .await
}

/// Reboots the terminal: it forgets its registration and session (journal and batch stay).
#[utoipa::path(post, path = "/simulator/reboot", tag = "Simulator",
    responses((status = 200, description = "The state", body = SimStateDoc),
        (status = 404, description = "No simulator runs", body = SimErrorDoc)))]
pub async fn reboot(State(state): State<AppState>) -> Response {
    with_sim(&state, |sim| {
        sim.reboot();
        json_response(200, &sim.state())
    })
    .await
}
