//! `nami-httpd`: Nami's Local API Middleware as a REST daemon — the REST API of the vendor's
//! middleware (port 9099), endpoint by endpoint and field by field, over the in-process
//! middleware service of `nami_sdk::service`. Thin: each route hands its path and body to
//! `Service::dispatch` and returns what it answers.
//!
//! - [`app`] builds the router (the API, its layers: origin and host checks, auth, body limit,
//!   JSON errors, CORS, tracing) over an [`AppState`]; tests drive it in-process with `tower::ServiceExt::oneshot`.
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
pub mod tls;

use nami_sdk::StatusCode as Code;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use nami_sdk::Service;
use nami_sdk::service::ErrorBody;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::Config;
pub use server::{Server, StartError, serve};

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

/// The REST API over `state`.
pub fn app(state: AppState) -> Router {
    let cors = state.origins().cors_layer();
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
        // The dashboard's own endpoints (/api/dashboard, /api/recover), behind the auth layer.
        .merge(dashboard::api_routes())
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state.clone())
        // The dashboard's page (static, no data) and its event stream (which checks the token
        // itself: EventSource cannot send a header), outside the auth layer.
        .merge(dashboard::public_routes(state.clone()))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(json_errors))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            routes::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Error,
                "Internal error; see the service log",
            )
        }));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Outside everything but the log line: a refused request reaches nothing (not even CORS).
    let router = router.layer(middleware::from_fn_with_state(state, origin::guard));
    // Method, path and status only: bodies (and query strings) are never logged.
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
    )
}

/// Every error answer is JSON: the extractors' and the router's plain-text or empty ones (405,
/// 413, ...) are rewritten as `{statusCode, statusMessage}`; their other headers (`Allow`) stay.
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let message = match status {
        // The router adds the `Allow` header after this layer: it stays, the body says the rest.
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
        StatusCode::PAYLOAD_TOO_LARGE => format!("The request body is over {} KiB", BODY_LIMIT / 1024),
        other => format!("{} {}", other.as_u16(), other.canonical_reason().unwrap_or("error")),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&ErrorBody::new(Code::Error, message)).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}
