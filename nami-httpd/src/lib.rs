//! `nami-httpd`: Nami's Local API Middleware as a REST daemon — the REST API of the vendor's
//! middleware (port 9099), endpoint by endpoint and field by field, over the in-process
//! middleware service of `nami_sdk::service`. Thin: each route hands its path and body to
//! `Service::dispatch` and returns what it answers.
//!
//! - [`app`] builds the router under its layers ([`App`], `stack.rs`: origin and host checks, auth,
//!   body limit, JSON errors, CORS, tracing; no future boxed) over an [`AppState`]; tests drive it in-process with `tower::ServiceExt::oneshot`.
//! - [`Server::start`] binds, opens the service (and the embedded simulator), and serves
//!   HTTP or HTTPS on the same port; [`Server::shutdown`] stops gracefully. [`serve`] is both, for
//!   the binary.
//!
//! Files: `config.rs` (file, env, flags), `routes.rs` (the handlers: one for every service
//! endpoint of `nami_sdk::service::endpoints`), `openapi.rs` (the OpenAPI document, from that
//! table and the SDK's types), `server.rs` (accept loop, connections, shutdown), `tls.rs`
//! (certificate, fingerprint, the HTTPS switch), `auth.rs` (bearer token), `origin.rs` (which
//! browser requests may reach the service: `Host`, `Origin`, CORS), `sim.rs` (the embedded
//! simulator and `/simulator/*`). See README.md.

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod openapi;
pub mod origin;
pub mod routes;
mod server;
pub mod sim;
mod stack;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use nami_sdk::Service;

pub use config::Config;
pub use server::{Server, StartError, serve};
pub use stack::{App, AppBody};

/// Request bodies above this are refused with 413 (the API's bodies are a few hundred bytes).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The parts of an [`AppState`].
pub struct AppParts {
    pub service: Arc<Service>,
    pub tls: Arc<tls::TlsSwitch>,
    /// The bearer token to require (see `auth::policy`).
    pub token: Option<auth::Token>,
    /// The port the API listens on (shown by `/api/tls`).
    pub port: u16,
    pub simulator: Option<Arc<sim::Embedded>>,
    /// Which browser requests may reach the service (`Host`, `Origin`), and CORS.
    pub origins: origin::Policy,
}

struct Inner {
    parts: AppParts,
    /// The service's event listener, fanned out to the dashboard's event streams.
    dashboard: dashboard::Hub,
}

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        let dashboard = dashboard::Hub::install(&parts.service);
        AppState { inner: Arc::new(Inner { parts, dashboard }) }
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.inner.parts.service
    }

    pub fn tls(&self) -> &Arc<tls::TlsSwitch> {
        &self.inner.parts.tls
    }

    pub fn token(&self) -> Option<&auth::Token> {
        self.inner.parts.token.as_ref()
    }

    pub fn port(&self) -> u16 {
        self.inner.parts.port
    }

    pub fn simulator(&self) -> Option<Arc<sim::Embedded>> {
        self.inner.parts.simulator.clone()
    }

    /// `{listen, pty}` of the embedded simulator, or null.
    pub fn simulator_summary(&self) -> Option<nami_sim::SimSummary> {
        self.inner.parts.simulator.as_ref().map(|s| s.summary())
    }

    /// The dashboard's event fan-out (see `dashboard::events`).
    pub fn dashboard(&self) -> &dashboard::Hub {
        &self.inner.dashboard
    }

    /// The `Host` and `Origin` checks (see `origin`).
    pub fn origins(&self) -> &origin::Policy {
        &self.inner.parts.origins
    }
}

/// The REST API over `state`: the router under its layers (origin and host checks, CORS, auth,
/// body limits, JSON errors, the request log line; `stack.rs`).
pub fn app(state: AppState) -> App {
    // The service's endpoints, from its table; then the daemon's own.
    let router = nami_sdk::service::endpoints::ENDPOINTS
        .iter()
        .fold(Router::new(), |router, endpoint| router.route(endpoint.path, routes::service_route(endpoint)));
    let router = router
        .route("/api/tls", get(routes::tls_status).post(routes::tls_switch))
        .route("/openapi.json", get(routes::openapi_json))
        .route("/simulator/state", get(sim::state))
        .route("/simulator/journal", get(sim::journal))
        .route("/simulator/fault", post(sim::fault))
        .route("/simulator/faults/clear", post(sim::clear_faults))
        .route("/simulator/tap", post(sim::tap))
        .route("/simulator/card-tap", post(sim::card_tap))
        .route("/simulator/reboot", post(sim::reboot))
        // The dashboard's own endpoints (/api/dashboard, /api/recover).
        .merge(dashboard::api_routes())
        .fallback(routes::not_found)
        .with_state(state.clone())
        // The dashboard's page (static, no data) and its event stream (which checks the token
        // itself: EventSource cannot send a header): `stack::Checks` does not ask them for it.
        .merge(dashboard::public_routes(state.clone()))
        // After every route is in: a JSON 405 (the router adds `Allow`).
        .method_not_allowed_fallback(routes::method_not_allowed);
    // Not `Router::layer`: that wraps every route in a box of its own per layer, per request.
    App::new(state, router)
}
