//! `GET /api/events`: the dashboard's live feed, as server-sent events.
//!
//! - `terminal`: each event of the service (`Service::set_listener`), as it comes, e.g.
//!   `{"event":"waitingForCard","terminal":"127.0.0.1:2345"}` or `outcomeResolved`.
//! - `snapshot`: what the page shows (see [`super::snapshot`]) at once, then every second when it
//!   changed (at least every 15 s, which also keeps idle proxies from closing the stream), and
//!   0.2 s after a terminal event.
//!
//! The [`Hub`] is the service's one listener; it fans the events out to every open stream through
//! a broadcast channel (a slow page skips events, never blocks a terminal). A stream ends when
//! the daemon shuts down ([`Hub::close`]) or the scheme switches (the page reconnects with the new
//! one), so neither waits for an endless response.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use nami_sdk::Service;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::AppState;

/// How often a stream looks for changes.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// An unchanged snapshot is sent again after this long.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How soon after a terminal event the next snapshot is taken (the journal row is written just
/// after the terminal's answer arrives).
const AFTER_EVENT: Duration = Duration::from_millis(200);
/// Events a slow stream may fall behind before it skips some.
const BACKLOG: usize = 256;

/// The service's listener, fanned out to the event streams.
pub struct Hub {
    events: broadcast::Sender<String>,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("streams", &self.events.receiver_count()).finish()
    }
}

impl Hub {
    /// Becomes `service`'s listener (replacing any other).
    pub fn install(service: &Service) -> Hub {
        let (events, _) = broadcast::channel(BACKLOG);
        let sender = events.clone();
        service.set_listener(Some(Arc::new(move |json: &str| {
            // No stream open: nobody to tell.
            let _ = sender.send(json.to_owned());
        })));
        let (closed, _) = watch::channel(false);
        Hub { events, closed }
    }

    /// The events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }

    /// How many event streams are open.
    pub fn streams(&self) -> usize {
        self.events.receiver_count()
    }

    /// Ends every stream (at shutdown: a graceful shutdown waits for open responses).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// `GET /api/events`. The token comes in the `Authorization` header or, since `EventSource`
/// cannot send headers, as `?token=`.
pub async fn stream(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(token) = state.token() {
        let presented = bearer(&headers).or_else(|| super::query_param(&uri, "token"));
        match presented {
            Some(value) if token.matches(&value) => {}
            Some(_) => return unauthorized("the token is not the configured one"),
            None => {
                return unauthorized(
                    "this daemon requires `Authorization: Bearer <token>` (or `?token=` on /api/events)",
                );
            }
        }
    }
    let (chunks, body) = mpsc::channel::<Bytes>(8);
    tokio::spawn(feed(state, chunks));
    let mut response = Response::new(axum::body::Body::new(EventBody { chunks: body }));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, value)| value.trim().to_owned())
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        crate::routes::error_response(StatusCode::UNAUTHORIZED, nami_sdk::StatusCode::Unauthorized, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// One event in the `text/event-stream` format. `data` is one line of JSON.
pub fn event(name: &str, data: &str) -> Bytes {
    debug_assert!(!data.contains('\n'));
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Writes the stream's events until the page goes away, the daemon shuts down or the scheme
/// switches.
async fn feed(state: AppState, chunks: mpsc::Sender<Bytes>) {
    let hub = state.dashboard();
    let mut events = hub.subscribe();
    let mut closed = hub.closed();
    let mut scheme = state.tls().subscribe();
    let https = *scheme.borrow_and_update();
    let hello = json!({"scheme": if https { "https" } else { "http" }}).to_string();
    // `retry`: how soon the browser reconnects once the stream ends.
    let first = format!("retry: 2000\nevent: hello\ndata: {hello}\n\n");
    if chunks.send(Bytes::from(first)).await.is_err() {
        return;
    }
    let mut next_snapshot = Instant::now();
    let mut last_snapshot: Option<String> = None;
    let mut last_sent = Instant::now();
    loop {
        if *closed.borrow() || *scheme.borrow() != https {
            return;
        }
        let chunk = tokio::select! {
            () = chunks.closed() => return,
            changed = closed.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            changed = scheme.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            received = events.recv() => match received {
                Ok(text) => {
                    next_snapshot = next_snapshot.min(Instant::now() + AFTER_EVENT);
                    event("terminal", &text)
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "a dashboard stream fell behind");
                    next_snapshot = Instant::now();
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(next_snapshot) => {
                next_snapshot = Instant::now() + SNAPSHOT_INTERVAL;
                let Some(value) = super::snapshot(&state).await else { continue };
                let text = value.to_string();
                if last_snapshot.as_deref() == Some(text.as_str()) && last_sent.elapsed() < KEEP_ALIVE {
                    continue;
                }
                last_sent = Instant::now();
                let chunk = event("snapshot", &text);
                last_snapshot = Some(text);
                chunk
            }
        };
        if chunks.send(chunk).await.is_err() {
            return;
        }
    }
}

/// The response body: the chunks [`feed`] writes; it ends when `feed` returns.
struct EventBody {
    chunks: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.chunks.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}
