//! The dashboard, against the real binary: the page and its files (content types, the CSP, no
//! other origin named), the event stream (a transaction's events and journal row, its end at the
//! HTTPS switch and at shutdown), `/api/recover`, and the token on a non-loopback bind.
//! The page itself runs in a real Chromium in `tests/browser/` (run.sh).

#![cfg(unix)]

mod schema;

use std::io::{BufRead, BufReader};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nami_test_kit::daemon::{Daemon, command, state_dir};
use nami_test_kit::http::{answer, client, get, post, tcp_body};
use nami_test_kit::tls::pinned_client;
use schema::conforms;
use serde_json::{Value, json};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

#[test]
fn the_page_and_its_files_are_served_with_a_self_only_csp_and_name_no_other_origin() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let http = client();
    assert_eq!(nami_httpd::dashboard::CONTENT_SECURITY_POLICY, CSP);
    for (path, content_type) in
        [("/", "text/html"), ("/dashboard.css", "text/css"), ("/dashboard.js", "text/javascript")]
    {
        let response = http.get(daemon.at(path)).send().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            header(&response, "content-type").starts_with(content_type),
            "{path}: {}",
            header(&response, "content-type")
        );
        assert_eq!(header(&response, "content-security-policy"), CSP, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{path}");
        let body = response.text().unwrap();
        assert!(body.len() > 1000, "{path} is served in full");
        // Nothing from elsewhere: no absolute URL at all (the page builds its https:// address
        // from its own location).
        for needle in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(!body.contains(needle), "{path} contains {needle:?}");
        }
        if path == "/" {
            assert!(body.contains(r#"<script src="/dashboard.js" defer></script>"#));
            assert!(body.contains(r#"<link rel="stylesheet" href="/dashboard.css">"#));
            // The CSP refuses inline code: there is none.
            assert!(!body.contains("<script>") && !body.contains("<style") && !body.contains(" style="));
            assert!(!body.contains(" onclick=") && !body.contains("javascript:"));
            // Every address in the page is of this origin (or the empty data: icon).
            for attribute in ["src=\"", "href=\""] {
                for (index, _) in body.match_indices(attribute) {
                    let value = &body[index + attribute.len()..];
                    assert!(
                        value.starts_with('/') || value.starts_with('#') || value.starts_with("data:,\""),
                        "{attribute}{}",
                        &value[..value.len().min(40)]
                    );
                }
            }
            // The page's landmarks and the live region.
            for landmark in ["<main", "<header", "<nav", "aria-live=\"polite\"", "lang=\"en\"", "name=\"viewport\""] {
                assert!(body.contains(landmark), "{landmark}");
            }
        }
    }
    assert_eq!(http.get(daemon.at("/index.html")).send().unwrap().status(), 200);
    // Other methods get the API's JSON error.
    let posted = answer(http.post(daemon.at("/")).send().unwrap());
    assert_eq!(posted.status, 405);
}

/// The events of a `text/event-stream`, read on a thread: `(event name, JSON data)`; the
/// channel closes when the stream ends.
fn events(response: reqwest::blocking::Response) -> Receiver<(String, Value)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut name = String::new();
        let mut data = String::new();
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { break };
            if let Some(value) = line.strip_prefix("event: ") {
                name = value.to_owned();
            } else if let Some(value) = line.strip_prefix("data: ") {
                data.push_str(value);
            } else if line.is_empty() && !data.is_empty() {
                let value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("event data is JSON ({e}): {data}"));
                if tx.send((std::mem::take(&mut name), value)).is_err() {
                    break;
                }
                data.clear();
            }
        }
    });
    rx
}

/// The first event within `within` that `matches`.
fn wait_event(
    rx: &Receiver<(String, Value)>,
    within: Duration,
    what: &str,
    matches: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((name, value)) if matches(&name, &value) => return value,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no {what} within {within:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the stream ended before {what}"),
        }
    }
}

/// Whether the stream ends within `within`.
fn ends(rx: &Receiver<(String, Value)>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => return false,
        }
    }
}

fn open_stream(daemon: &Daemon, path: &str) -> reqwest::blocking::Response {
    // Longer than any test here: the default client gives up after 30 s.
    let http = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().unwrap();
    let response = http.get(daemon.at(path)).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "cache-control"), "no-cache");
    response
}

#[test]
fn the_event_stream_carries_a_transaction_s_terminal_events_and_its_journal_row() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &["--simulator", "--simulator-listen", "127.0.0.1:0"]);
    let sim_addr = daemon.banner_value("simulator listening on ").unwrap();
    let sim_port: u16 = sim_addr.rsplit(':').next().unwrap().parse().unwrap();
    let http = client();
    let stream = events(open_stream(&daemon, "/api/events"));
    let hello = wait_event(&stream, Duration::from_secs(5), "hello", |name, _| name == "hello");
    assert_eq!(hello, json!({"scheme": "http"}));
    // A snapshot at once: what the page shows.
    let first = wait_event(&stream, Duration::from_secs(5), "a snapshot", |name, _| name == "snapshot");
    assert_eq!(first["health"]["status"], "UP");
    assert_eq!(first["health"]["scheme"], "http");
    assert_eq!(first["health"]["simulator"]["listen"], sim_addr.as_str());
    assert_eq!(first["simulator"]["listen"], sim_addr.as_str());
    assert_eq!(first["tls"]["enabled"], false);
    assert_eq!(first["journal"]["count"], 0);
    assert!(first["comPorts"].is_array() && first["registration"].is_object(), "{first}");
    // /api/dashboard is the same snapshot.
    let snapshot = get(&http, &daemon.at("/api/dashboard"));
    assert_eq!(snapshot.body["simulator"]["listen"], sim_addr.as_str());

    let tcp = |payment: Value| post(&http, &daemon.at("/performTransactionTCPIP"), &tcp_body(sim_port, payment));
    let register = tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000401"}));
    assert_eq!(register.body["responseCode"], "800");
    let key = format!("127.0.0.1:{sim_port}");
    wait_event(&stream, Duration::from_secs(5), "the registered event", |name, value| {
        name == "terminal" && value["event"] == "registered" && value["terminal"] == key.as_str()
    });
    let started = Instant::now();
    let purchase = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000402"}));
    assert_eq!(purchase.body["approved"], true);
    let sent = wait_event(&stream, Duration::from_secs(5), "requestSent", |name, value| {
        name == "terminal" && value["event"] == "requestSent" && value["txnType"] == "PURCHASE"
    });
    assert_eq!(
        (sent["terminal"].as_str(), sent["ecrReferenceNo"].as_str()),
        (Some(key.as_str()), Some("12345678000402"))
    );
    wait_event(&stream, Duration::from_secs(5), "responseReceived", |name, value| {
        name == "terminal" && value["event"] == "responseReceived" && value["responseCode"] == "000"
    });
    // The journal row arrives in a snapshot within a second or so.
    let with_row = wait_event(&stream, Duration::from_secs(5), "a snapshot with the row", |name, value| {
        name == "snapshot"
            && value["journal"]["transactions"].as_array().is_some_and(|rows| {
                rows.iter().any(|r| r["ecrReferenceNo"] == "12345678000402" && r["state"] == "approved")
            })
    });
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(with_row["health"]["tcpConnections"][key.as_str()], "Connected");
    let terminals = with_row["registration"]["terminals"].as_array().unwrap();
    assert!(terminals.iter().any(|t| t["registered"] == true && t["port"] == sim_port), "{terminals:?}");
}

#[test]
fn event_streams_end_at_the_https_switch_and_do_not_hold_up_shutdown() {
    let dir = state_dir();
    let mut daemon = Daemon::start(dir.path(), &[]);
    let http = client();
    let first = events(open_stream(&daemon, "/api/events"));
    wait_event(&first, Duration::from_secs(5), "a snapshot", |name, _| name == "snapshot");
    let switched = post(&http, &daemon.at("/api/tls"), &json!({"enabled": true}));
    assert_eq!(switched.status, 200);
    assert!(ends(&first, Duration::from_secs(5)), "the HTTP stream ends once the port serves HTTPS");

    let fingerprint = switched.body["tlsFingerprintSha256"].as_str().unwrap().to_owned();
    let https = pinned_client(&fingerprint);
    let back = answer(https.post(daemon.https_at("/api/tls")).json(&json!({"enabled": false})).send().unwrap());
    assert_eq!(back.status, 200);
    // An open stream at SIGTERM: the daemon still stops at once (not after the grace period).
    let second = events(open_stream(&daemon, "/api/events"));
    wait_event(&second, Duration::from_secs(5), "a snapshot", |name, _| name == "snapshot");
    let started = Instant::now();
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
    assert!(ends(&second, Duration::from_secs(2)));
    assert!(!daemon.log().contains("still running after the grace period"), "{}", daemon.log());
}

#[test]
fn recover_resolves_an_unknown_outcome_now() {
    let dir = state_dir();
    let daemon = Daemon::start(
        dir.path(),
        &["--simulator", "--simulator-listen", "127.0.0.1:0", "--card-present-timeout-secs", "2"],
    );
    let sim_port: u16 =
        daemon.banner_value("simulator listening on ").unwrap().rsplit(':').next().unwrap().parse().unwrap();
    let http = client();
    let tcp = |payment: Value| post(&http, &daemon.at("/performTransactionTCPIP"), &tcp_body(sim_port, payment));
    tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000501"}));
    // The dashboard's "Go offline": the simulator carries requests out and never answers.
    let offline = post(&http, &daemon.at("/simulator/fault"), &json!({"fault": "never-answer", "scope": "always"}));
    assert_eq!(offline.status, 200);
    let lost = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000502"}));
    assert_eq!(lost.body["outcomeUnknown"], true, "{:?}", lost.body);
    assert_eq!(get(&http, &daemon.at("/api/health-status")).body["unknownOutcomes"], 1);
    post(&http, &daemon.at("/simulator/faults/clear"), &Value::Null);

    let recovered = post(&http, &daemon.at("/api/recover"), &Value::Null);
    assert_eq!(recovered.status, 200);
    // The answer is what the OpenAPI document says, field for field.
    conforms("RecoverResponse", &recovered.body);
    assert_eq!((recovered.body["resolved"].as_u64(), recovered.body["unknownOutcomes"].as_u64()), (Some(1), Some(0)));
    let row = get(&http, &daemon.at("/transactions/12345678000502"));
    assert_eq!(row.body["transactions"][0]["state"], "approved");
    let again = post(&http, &daemon.at("/api/recover"), &Value::Null);
    assert_eq!(again.body["resolved"], 0);
}

#[test]
fn on_a_non_loopback_bind_the_page_is_public_and_its_data_needs_the_token() {
    let dir = state_dir();
    let port = std::net::TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let listen = format!("0.0.0.0:{port}");
    let mut with_token = command(dir.path(), &["--listen", &listen]);
    with_token.env("NAMI_TOKEN", "s3cret+token/=");
    let daemon = Daemon::spawn(dir.path(), with_token);
    let http = client();

    // The page holds no data: it loads, then asks for the token.
    for path in ["/", "/dashboard.css", "/dashboard.js"] {
        let response = http.get(daemon.at(path)).send().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-security-policy"), CSP);
    }
    // Everything the page reads or does needs it, like the rest of the API.
    for (method, path) in
        [("GET", "/api/dashboard"), ("POST", "/api/recover"), ("GET", "/api/health-status"), ("POST", "/api/tls")]
    {
        let request = if method == "GET" { http.get(daemon.at(path)) } else { http.post(daemon.at(path)) };
        let refused = answer(request.send().unwrap());
        assert_eq!((refused.status, refused.body["statusCode"].as_str()), (401, Some("UNAUTHORIZED")), "{path}");
    }
    let snapshot = answer(http.get(daemon.at("/api/dashboard")).bearer_auth("s3cret+token/=").send().unwrap());
    assert_eq!((snapshot.status, snapshot.body["health"]["authRequired"].as_bool()), (200, Some(true)));
    let recovered = answer(http.post(daemon.at("/api/recover")).bearer_auth("s3cret+token/=").send().unwrap());
    assert_eq!(recovered.status, 200);

    // The event stream: the header, or (EventSource cannot send one) `?token=`, percent-encoded.
    let refused = answer(http.get(daemon.at("/api/events")).send().unwrap());
    assert_eq!(refused.status, 401);
    let response = http.get(daemon.at("/api/events")).send().unwrap();
    assert_eq!(header(&response, "www-authenticate"), "Bearer");
    let wrong = answer(http.get(daemon.at("/api/events?token=s3cret%2Btoken%2F%3D%3D")).send().unwrap());
    assert_eq!(wrong.status, 401);
    let by_query = events(open_stream(&daemon, "/api/events?token=s3cret%2Btoken%2F%3D"));
    let first = wait_event(&by_query, Duration::from_secs(5), "a snapshot", |name, _| name == "snapshot");
    assert_eq!(first["health"]["authRequired"], true);
    let by_header = http.get(daemon.at("/api/events")).bearer_auth("s3cret+token/=").send().unwrap();
    assert_eq!(by_header.status(), 200);
    drop(by_header);
    // The query token is taken on /api/events only.
    let elsewhere = answer(http.get(daemon.at("/api/dashboard?token=s3cret%2Btoken%2F%3D")).send().unwrap());
    assert_eq!(elsewhere.status, 401);
}
