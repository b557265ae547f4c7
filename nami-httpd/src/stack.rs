//! The layers every request goes through, around the router, as one stack of plain tower
//! services whose futures are held inline (none boxed): a purchase waiting for the card holds
//! its request's layers for as long as it waits, so each box and copy counts 1,000 times at
//! 1,000 waiting terminals (BENCHMARKS.md, issue 23, the card wait).
//!
//! Outside in ([`App`]):
//! 1. the request log line (tower-http's `TraceLayer`: method, path, status, latency; never
//!    bodies or query strings);
//! 2. [`Guard`]: the `Host`/`Origin` checks (`origin::Policy::check`), a 403 that reaches
//!    nothing else, not even CORS;
//! 3. CORS for the `allowed_origins` (tower-http's `CorsLayer`), when there are any;
//! 4. [`Checks`]: a panic becomes a JSON 500; a `Content-Length` over [`BODY_LIMIT`] a 413
//!    before anything reads the body; the bearer token (`auth::check_token`) on every path but
//!    the dashboard's public ones (`dashboard::PUBLIC_PATHS`); the extractors' body limit
//!    (`DefaultBodyLimit`); and every error answer that is not JSON (the extractors', 413, ...)
//!    rewritten as `{statusCode, statusMessage}`;
//! 5. the router (`lib.rs`, `app`), whose 405 answers are JSON already (`routes::method_not_allowed`).

use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use nami_sdk::StatusCode as Code;
use nami_sdk::service::ErrorBody;
use tower::util::Either;
use tower::{Layer, Service};
use tower_http::classify::{NeverClassifyEos, ServerErrorsAsFailures, ServerErrorsFailureClass, SharedClassifier};
use tower_http::cors::Cors;
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnResponse, Trace, TraceLayer};

use crate::{AppState, BODY_LIMIT, auth, dashboard, origin, routes};

/// The request log line's span: method and path only.
type MakeSpan = fn(&Request) -> tracing::Span;

type Logged<S> = Trace<S, SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), DefaultOnResponse>;

/// The body of every answer: the handler's, under the log line's wrapper.
pub type AppBody = tower_http::trace::ResponseBody<
    Body,
    NeverClassifyEos<ServerErrorsFailureClass>,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
>;

type Stack = Logged<Guard<Either<Cors<Checks>, Checks>>>;

/// The daemon's HTTP service: the router under its layers (module docs). One pointer: every
/// connection's task holds it, and hyper a copy per request (with CORS's settings inline, some
/// 300 bytes, each connection's task was 2.75 KB instead of 1.4 KB).
#[derive(Clone)]
pub struct App {
    stack: std::sync::Arc<Stack>,
}

impl App {
    pub(crate) fn new(state: AppState, router: Router) -> App {
        let checks = Checks { state: state.clone(), router };
        let inner = match state.origins().cors_layer() {
            Some(cors) => Either::Left(cors.layer(checks)),
            None => Either::Right(checks),
        };
        let make_span: MakeSpan =
            |request| tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
        let log = TraceLayer::new_for_http()
            .make_span_with(make_span)
            .on_request(())
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
        App { stack: std::sync::Arc::new(log.layer(Guard { state, inner })) }
    }
}

impl<B> Service<axum::http::Request<B>> for App
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::http::Response<AppBody>;
    type Error = Infallible;
    type Future = <Stack as Service<Request>>::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Every layer, and the router, is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        // The layers' services are shared handles (the state, the router; CORS's settings when
        // there are any): a copy per request, whose future owns what it needs. `Body::new` takes
        // an `axum` body as it is (the tests'), and boxes hyper's once, as the router would.
        Stack::clone(&self.stack).call(request.map(Body::new))
    }
}

/// A future that answers at once, or runs the inner service's (held inline: no box).
pub enum Answer<F> {
    Now(Option<Response>),
    Inner(F),
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(response) => Poll::Ready(Ok(response.take().expect("polled after completion"))),
            Answer::Inner(future) => Pin::new(future).poll(cx),
        }
    }
}

/// The `Host`/`Origin` checks (`origin::Policy::check`): a refused request gets a logged 403
/// with a JSON body and reaches nothing else.
#[derive(Clone)]
pub struct Guard<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let local = request.extensions().get::<origin::LocalAddr>().copied();
        let verdict = self.state.origins().check(request.method(), request.uri().path(), request.headers(), local);
        match verdict {
            Ok(()) => Answer::Inner(self.inner.call(request)),
            Err(refusal) => Answer::Now(Some(origin::refused(refusal))),
        }
    }
}

/// Inside CORS: panics, the body limits, the token, JSON errors (module docs).
#[derive(Clone)]
pub struct Checks {
    state: AppState,
    router: Router,
}

impl Service<Request> for Checks {
    type Response = Response;
    type Error = Infallible;
    type Future = Checked;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Checked {
        let answer =
            catch_unwind(AssertUnwindSafe(|| self.route(request))).unwrap_or_else(|_| Answer::Now(Some(panicked())));
        Checked(answer)
    }
}

impl Checks {
    fn route(&mut self, request: Request) -> Answer<axum::routing::future::RouteFuture<Infallible>> {
        let declared =
            request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|length| length > BODY_LIMIT) {
            return Answer::Now(Some(as_json(too_large())));
        }
        if !dashboard::PUBLIC_PATHS.contains(&request.uri().path())
            && let Err(refusal) = auth::check_token(&self.state, request.headers())
        {
            return Answer::Now(Some(refusal));
        }
        // The extractors' limit (`Bytes` and the like read at most this much of a chunked body).
        Answer::Inner(DefaultBodyLimit::max(BODY_LIMIT).layer(&mut self.router).call(request))
    }
}

/// The router's answer, a panic turned into a 500, and every error answer made JSON.
pub struct Checked(Answer<axum::routing::future::RouteFuture<Infallible>>);

impl Future for Checked {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = &mut self.get_mut().0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *answer).poll(cx))) {
            Ok(Poll::Ready(Ok(response))) => Poll::Ready(Ok(as_json(response))),
            Ok(pending_or_err) => pending_or_err,
            Err(_) => {
                *answer = Answer::Now(None);
                Poll::Ready(Ok(panicked()))
            }
        }
    }
}

/// A handler that panicked (tower-http's `CatchPanicLayer` did this before; its body is boxed).
fn panicked() -> Response {
    routes::error_response(StatusCode::INTERNAL_SERVER_ERROR, Code::Error, "Internal error; see the service log")
}

fn too_large() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
}

/// Every error answer is JSON: the extractors' plain-text or empty ones (413, 400, ...) are
/// rewritten as `{statusCode, statusMessage}`; their other headers stay.
fn as_json(response: Response) -> Response {
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
        StatusCode::PAYLOAD_TOO_LARGE => format!("The request body is over {} KiB", BODY_LIMIT / 1024),
        other => format!("{} {}", other.as_u16(), other.canonical_reason().unwrap_or("error")),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&ErrorBody::new(Code::Error, message)).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}
