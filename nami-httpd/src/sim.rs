//! The embedded simulated terminal (`--simulator`) and its control endpoints under
//! `/simulator/`: each hands its method, path and body to nami-sim's control API
//! (`Simulator::control`, the function behind nami-sim's own `--control` server too), so both
//! answer alike. Without a simulator every `/simulator/` endpoint answers 404 `{"error": ...}`.
//! On Windows the simulator serves TCP only (no pseudo-terminals).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use crate::AppState;
use crate::routes::json_response;
#[allow(unused_imports)] // Named in the `utoipa::path` attributes only.
use nami_sim::{CardTapRequest, ControlError, FaultRequest, SimState, SimTransaction, Tapped};

pub use imp::Embedded;

mod imp {
    use serde_json::{Value, json};

    use nami_sim::{SimConfig, Simulator};

    use crate::config::SimulatorSettings;

    /// A running simulator and the pty it serves (Unix; on Windows it serves TCP only).
    pub struct Embedded {
        pub sim: Simulator,
        /// Held for the daemon's life: dropping it would close the pty and remove its path.
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

        pub fn summary(&self) -> nami_sim::SimSummary {
            self.sim.summary()
        }

        /// The pty to open as the COM port; none on Windows.
        pub fn pty_path(&self) -> Option<String> {
            self.sim.pty_path().map(|p| p.display().to_string())
        }

        pub fn shutdown(&self) {
            self.sim.shutdown();
        }

        /// nami-sim's `GET /state`.
        pub fn state(&self) -> Value {
            json!(self.sim.state())
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

/// nami-sim's answer to `method` `path` (relative to `/simulator`) with `body`.
async fn control(state: &AppState, method: &'static str, path: &'static str, body: Bytes) -> Response {
    with_sim(state, move |embedded| {
        let answer = embedded.sim.control(method, path, &body);
        json_response(answer.status, &answer.body)
    })
    .await
}

/// The simulated terminal's state.
#[utoipa::path(get, path = "/simulator/state", tag = "Simulator",
    responses((status = 200, description = "The state", body = SimState),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn state(State(state): State<AppState>) -> Response {
    control(&state, "GET", "/state", Bytes::new()).await
}

/// The simulated terminal's journal, oldest first.
#[utoipa::path(get, path = "/simulator/journal", tag = "Simulator",
    responses((status = 200, description = "The journal", body = Vec<SimTransaction>),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn journal(State(state): State<AppState>) -> Response {
    control(&state, "GET", "/journal", Bytes::new()).await
}

/// Sets a fault for the next `count` requests or always.
#[utoipa::path(post, path = "/simulator/fault", tag = "Simulator",
    request_body = FaultRequest,
    responses((status = 200, description = "The state", body = SimState),
        (status = 400, description = "An unknown fault or a bad argument", body = ControlError),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn fault(State(state): State<AppState>, body: Bytes) -> Response {
    control(&state, "POST", "/fault", body).await
}

/// Clears every fault.
#[utoipa::path(post, path = "/simulator/faults/clear", tag = "Simulator",
    responses((status = 200, description = "The state", body = SimState),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn clear_faults(State(state): State<AppState>, body: Bytes) -> Response {
    control(&state, "POST", "/faults/clear", body).await
}

/// Taps the card: a waiting card transaction goes on; with none waiting, the card stays on the
/// reader for the next.
#[utoipa::path(post, path = "/simulator/tap", tag = "Simulator",
    responses((status = 200, description = "Tapped", body = Tapped),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn tap(State(state): State<AppState>, body: Bytes) -> Response {
    control(&state, "POST", "/tap", body).await
}

/// Card-tap mode: card transactions wait for `POST /simulator/tap`.
#[utoipa::path(post, path = "/simulator/card-tap", tag = "Simulator",
    request_body = CardTapRequest,
    responses((status = 200, description = "The state", body = SimState),
        (status = 400, description = "`enabled` missing or not a boolean", body = ControlError),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn card_tap(State(state): State<AppState>, body: Bytes) -> Response {
    control(&state, "POST", "/card-tap", body).await
}

/// Reboots the terminal: it forgets its registration and session (journal and batch stay).
#[utoipa::path(post, path = "/simulator/reboot", tag = "Simulator",
    responses((status = 200, description = "The state", body = SimState),
        (status = 404, description = "No simulator runs", body = ControlError)))]
pub async fn reboot(State(state): State<AppState>, body: Bytes) -> Response {
    control(&state, "POST", "/reboot", body).await
}
