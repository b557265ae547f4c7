//! A purchase waiting for the card holds its request's layers for as long as it waits (1,000
//! waiting terminals hold 1,000 of them): the layers around the router (`stack.rs`) allocate
//! nothing of their own per request (a static file: 19 allocations, 60 when each layer was a
//! `Router::layer`, `axum::middleware::from_fn` among them, boxing a future and a copy of the
//! route per layer per request), and their future stays small (BENCHMARKS.md, issue 23, the
//! card wait).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use nami_httpd::config::TlsSettings;
use nami_httpd::tls::TlsSwitch;
use nami_httpd::{AppParts, AppState, app, auth};
use nami_sdk::{Service, ServiceConfig};
use tower::{Service as _, ServiceExt};

/// Counts the allocations of the thread that set `COUNTING`.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|counting| {
            if counting.get() {
                ALLOCATIONS.with(|a| a.set((a.get().0 + 1, a.get().1 + layout.size())));
            }
        });
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `f` makes on this thread: count and bytes.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    ALLOCATIONS.with(|a| a.set((0, 0)));
    COUNTING.with(|c| c.set(true));
    let value = f();
    COUNTING.with(|c| c.set(false));
    let (count, bytes) = ALLOCATIONS.with(Cell::get);
    (value, count, bytes)
}

#[test]
fn the_layers_around_the_router_add_no_allocation_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(ServiceConfig::new(dir.path())).unwrap();
    let tls = TlsSwitch::start(TlsSettings::default(), dir.path(), vec!["localhost".into()]).unwrap();
    let state = AppState::new(AppParts {
        service: Arc::new(service),
        tls: Arc::new(tls),
        token: Some(auth::Token::new("t0ken")),
        port: 9099,
        simulator: None,
        origins: nami_httpd::origin::Policy::new("127.0.0.1:9099".parse().unwrap(), &[], &[]).unwrap(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut app = app(state);
    // A request through every layer (host check, token, the router) to a handler that allocates
    // nothing but its answer: the dashboard's style sheet is a static string.
    let request = || {
        Request::get("/dashboard.css")
            .header("host", "127.0.0.1:9099")
            .header("authorization", "Bearer t0ken")
            .body(Body::empty())
            .unwrap()
    };
    // Every connection's task holds the service (and hyper a copy per request).
    let app_size = std::mem::size_of_val(&app);
    assert!(app_size <= 16, "App is {app_size} bytes");
    let future = app.call(request());
    let size = std::mem::size_of_val(&future);
    drop(future);
    runtime.block_on(async {
        // Warm up: the tracing's and the router's first-use allocations.
        assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
        let request = request();
        let (response, count, bytes) = allocations(|| {
            let mut app = app.clone();
            let mut future = std::pin::pin!(app.call(request));
            let waker = std::task::Waker::noop();
            match future.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
                std::task::Poll::Ready(response) => response.unwrap(),
                std::task::Poll::Pending => panic!("a static file is answered at once"),
            }
        });
        assert_eq!(response.status(), StatusCode::OK);
        eprintln!(
            "one request: {count} allocations, {bytes} bytes; the layers' future: {size} bytes; App: {app_size} bytes"
        );
        // 19 allocations, 2,690 bytes in a debug build: the router's (the matched path's
        // extensions, the route's and the handler's boxes) and the answer's (its headers, the
        // body's box). 60 allocations, 7,112 bytes with a `Router::layer` or a `from_fn` per layer.
        assert!(count <= 22, "one request: {count} allocations ({bytes} bytes)");
        assert!(bytes < 4096, "one request: {count} allocations ({bytes} bytes)");
        // 608 bytes in a debug build (the log line's, the host check's, the JSON errors' states).
        assert!(size < 2048, "the layers' future is {size} bytes");
    });
}
