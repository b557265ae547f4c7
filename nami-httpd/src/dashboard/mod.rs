//! The dashboard: the middleware's web page at `/` (the seeds' "Diagnostics → Service Health",
//! "Switch to HTTPS"), plain HTML, CSS and JavaScript embedded in the binary (no CDN, no build
//! step, works offline), and the two endpoints it needs beyond the REST API.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /`, `/dashboard.css`, `/dashboard.js` | none (static, no data) | the page, with a `Content-Security-Policy` that allows only this origin |
//! | `GET /api/events` | bearer header, or `?token=` | server-sent events: `terminal` (each service event) and `snapshot` (see [`snapshot`]) |
//! | `GET /api/dashboard` | bearer header | one snapshot |
//! | `POST /api/recover` | bearer header | one recovery pass over the unknown outcomes now |
//!
//! Everything else the page does goes through the REST API itself (`/tcp-ip/connect`,
//! `/performTransactionTCPIP`, `/simulator/*`, `/api/tls`, ...), with `Authorization: Bearer`
//! when the daemon has a token (the page asks for it on the first 401 and keeps it in the tab's
//! `sessionStorage`). `EventSource` cannot send headers, so `/api/events` alone also takes the
//! token as the query parameter `token`, compared in constant time like the header (see
//! `auth::Token::matches`); query strings are never logged.
//!
//! The static files are served without the token: they hold no data, and a browser's address
//! bar cannot send a bearer header. Every call that reads or changes anything needs it.

pub mod events;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nami_sdk::StatusCode as Code;
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::routes::json_response;

pub use events::Hub;

/// The page's files: path, content type, contents.
pub const ASSETS: [(&str, &str, &str); 3] = [
    ("/", "text/html; charset=utf-8", include_str!("../../assets/index.html")),
    ("/dashboard.css", "text/css; charset=utf-8", include_str!("../../assets/dashboard.css")),
    ("/dashboard.js", "text/javascript; charset=utf-8", include_str!("../../assets/dashboard.js")),
];

/// Scripts, styles and connections from this origin only; no inline script or style, no frames,
/// no plugins, no form posts elsewhere. `data:` images for the empty favicon.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How many journal rows a snapshot carries.
pub const JOURNAL_ROWS: usize = 25;

/// The paths served without the bearer header (any method; `stack::Checks` skips the token
/// check on exactly these): the static page, and `/api/events` (which checks the token itself,
/// from the header or the query). [`public_routes`] routes them.
pub const PUBLIC_PATHS: [&str; 5] = ["/", "/index.html", "/dashboard.css", "/dashboard.js", "/api/events"];

/// The routes of [`PUBLIC_PATHS`].
pub fn public_routes(state: AppState) -> Router {
    let [root, index_html, css_path, js_path, events_path] = PUBLIC_PATHS;
    Router::new()
        .route(root, get(index))
        .route(index_html, get(index))
        .route(css_path, get(css))
        .route(js_path, get(js))
        .route(events_path, get(events::stream))
        .with_state(state)
}

/// Routes behind the API's bearer auth (every path but [`PUBLIC_PATHS`]).
pub fn api_routes() -> Router<AppState> {
    Router::new().route("/api/dashboard", get(dashboard_snapshot)).route("/api/recover", post(recover))
}

fn asset(index: usize) -> Response {
    let (_, content_type, body) = ASSETS[index];
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    security_headers(headers);
    response
}

/// The page's security headers (also on the event stream).
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change with the binary: revalidate rather than keep an old page after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

async fn index() -> Response {
    asset(0)
}

async fn css() -> Response {
    asset(1)
}

async fn js() -> Response {
    asset(2)
}

/// `GET /api/dashboard`: one snapshot (the page's first paint, and tests).
#[utoipa::path(get, path = "/api/dashboard", tag = "Dashboard",
    responses((status = 200, description = "What the dashboard shows: `{health, tls, comPorts, registration, journal, \
        simulator}`, each the body of its own endpoint (`simulator` null without `--simulator`)", body = Object)))]
pub async fn dashboard_snapshot(State(state): State<AppState>) -> Response {
    match snapshot(&state).await {
        Some(value) => json_response(200, &value),
        None => crate::routes::error_response(StatusCode::INTERNAL_SERVER_ERROR, Code::Error, "Internal error"),
    }
}

/// `POST /api/recover`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RecoverResponse)]
pub struct Recovered {
    /// `Success`.
    pub status: &'static str,
    /// Unknown outcomes resolved by this pass.
    pub resolved: u64,
    /// Unknown outcomes left.
    pub unknown_outcomes: u64,
    /// `"1 resolved, 0 still unknown"`.
    pub message: String,
}

/// `POST /api/recover`: asks every terminal about the unknown outcomes now (DUPLICATE), as the
/// background recovery does every `recovery_interval`. Answers how many it resolved and how many
/// remain unknown.
#[utoipa::path(post, path = "/api/recover", tag = "Dashboard",
    responses((status = 200, description = "How many unknown outcomes were resolved and how many remain",
        body = Recovered)))]
pub async fn recover(State(state): State<AppState>, _body: Bytes) -> Response {
    let service = state.service().clone();
    let done = tokio::task::spawn_blocking(move || {
        let resolved = service.recover_now();
        (resolved, service.health_status().unknown_outcomes)
    })
    .await;
    match done {
        Ok((resolved, remaining)) => json_response(
            200,
            &Recovered {
                status: "Success",
                resolved: resolved as u64,
                unknown_outcomes: remaining,
                message: format!("{resolved} resolved, {remaining} still unknown"),
            },
        ),
        Err(_) => crate::routes::error_response(StatusCode::INTERNAL_SERVER_ERROR, Code::Error, "Internal error"),
    }
}

/// What the page shows, in one JSON object:
/// `{health, tls, comPorts, registration, journal, simulator}` — the bodies of
/// `/api/health-status` (with `scheme`, `tlsFingerprintSha256`, `authRequired`, `simulator`),
/// `/api/tls`, `/get-com-ports`, `/registrationStatus`, `/transactions?limit=25` and
/// `/simulator/state` (null without the simulator). `None` if the blocking task panicked.
pub async fn snapshot(state: &AppState) -> Option<Value> {
    let shared = state.clone();
    tokio::task::spawn_blocking(move || {
        let state = &shared;
        let service = state.service();
        let body = |path: &str| service.dispatch(path, "").body;
        let mut health = body("/api/health-status");
        if let Value::Object(map) = &mut health {
            map.insert("scheme".into(), json!(state.tls().scheme()));
            map.insert("tlsFingerprintSha256".into(), json!(state.tls().fingerprint()));
            map.insert("authRequired".into(), json!(state.token().is_some()));
            map.insert("simulator".into(), json!(state.simulator_summary()));
        }
        json!({
            "health": health,
            "tls": state.tls().status(state.port()),
            "comPorts": body("/get-com-ports"),
            "registration": body("/registrationStatus"),
            "journal": body(&format!("/transactions?limit={JOURNAL_ROWS}")),
            "simulator": state.simulator().map(|sim| sim.state()).unwrap_or(Value::Null),
        })
    })
    .await
    .ok()
}

/// The value of `name` in the query string, percent-decoded (`+` is a space).
pub(crate) fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes()).find_map(|(key, value)| (key == name).then(|| value.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let uri: Uri = "/api/events?x=1&token=a%2Bb%20c+d&y".parse().unwrap();
        assert_eq!(query_param(&uri, "token").as_deref(), Some("a+b c d"));
        assert_eq!(query_param(&uri, "y").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "z"), None);
        let bad: Uri = "/api/events?token=%zz%4".parse().unwrap();
        assert_eq!(query_param(&bad, "token").as_deref(), Some("%zz%4"));
        assert_eq!(query_param(&"/api/events".parse().unwrap(), "token"), None);
        // An escape at the very end is decoded too (the hand-written decoder missed it).
        assert_eq!(query_param(&"/api/events?token=ab%41".parse().unwrap(), "token").as_deref(), Some("abA"));
    }

    #[test]
    fn the_assets_name_no_other_origin_and_no_inline_code() {
        for (path, _, body) in ASSETS {
            assert!(!body.contains("http://") && !body.contains("https://"), "{path} names another origin");
            assert!(!body.contains("//cdn") && !body.contains("@import"), "{path}");
        }
        let html = ASSETS[0].2;
        assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains("<style"), "inline code");
        assert!(!html.contains(" onclick="), "inline handlers are refused by the CSP");
    }
}
