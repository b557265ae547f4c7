//! No web page can drive the terminal: the real binary over real HTTP, against a `nami-sim`
//! terminal, with the headers a browser sends (`Origin`, `Sec-Fetch-*`, a rebound `Host`).
//! Every refusal is a 403 JSON answer, and nothing refused reaches the service: the simulator
//! counts no frame, the journal, the registrations and the connections stay as they were.

#![cfg(unix)]

mod schema;

use nami_sim::{SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, binary, command, state_dir};
use nami_test_kit::http::{answer, client, get, post, tcp_body};
use nami_test_kit::tls::pinned_client;
use reqwest::blocking::{Client, RequestBuilder};
use schema::conforms;
use serde_json::{Value, json};

/// A REGISTER of the simulator at `sim_port` through the daemon, as a POS program sends it.
fn register_body(sim_port: u16) -> Value {
    tcp_body(sim_port, json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": "12345678000001"}))
}

fn purchase_body(sim_port: u16) -> Value {
    tcp_body(sim_port, json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000002"}))
}

/// What a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    frames: u64,
    registration: Value,
    connections: Value,
    journal: Value,
    tls: Value,
}

fn observe(http: &Client, daemon: &Daemon, sim: &Simulator) -> Observed {
    let port = sim.addr().port();
    Observed {
        frames: sim.requests_received(),
        registration: get(http, &daemon.at(&format!("/registrationStatus?ip=127.0.0.1&port={port}"))).body,
        connections: get(http, &daemon.at("/getExistingConnections")).body,
        journal: get(http, &daemon.at("/transactions")).body,
        tls: get(http, &daemon.at("/api/tls")).body["enabled"].clone(),
    }
}

/// A browser-like POST with a text/plain body (a "simple" request: no preflight).
fn simple_post(http: &Client, url: &str, body: &Value) -> RequestBuilder {
    http.post(url).header("content-type", "text/plain;charset=UTF-8").body(body.to_string())
}

fn refused(request: RequestBuilder, what: &str) -> String {
    let answer = answer(request.send().unwrap_or_else(|e| panic!("{what}: {e}")));
    assert_eq!((answer.status, answer.body["statusCode"].as_str()), (403, Some("FORBIDDEN")), "{what}: {answer:?}");
    conforms("ErrorBody", &answer.body);
    answer.body["statusMessage"].as_str().unwrap().to_owned()
}

#[test]
fn a_web_page_cannot_drive_the_terminal_and_nothing_it_sends_reaches_it() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let sim_port = sim.addr().port();
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let http = client();
    let port = daemon.port;

    // A POS program: no Origin, the daemon named by address or by `localhost`.
    let registered = post(&http, &daemon.at("/performTransactionTCPIP"), &register_body(sim_port));
    assert_eq!(registered.body["responseCode"], "800", "{:?}", registered.body);
    let by_name = get(&http, &format!("http://localhost:{port}/registrationStatus?ip=127.0.0.1&port={sim_port}"));
    assert_eq!((by_name.status, by_name.body["registered"].as_bool()), (200, Some(true)));
    for host in [format!("[::1]:{port}"), format!("LOCALHOST:{port}")] {
        let answer = answer(http.get(daemon.at("/api/health-status")).header("host", &host).send().unwrap());
        assert_eq!(answer.status, 200, "Host {host}");
    }
    let before = observe(&http, &daemon, &sim);
    assert_eq!(before.frames, 1, "the REGISTER");

    let targets = [
        ("/clearTerminalData", json!({"confirmClear": true})),
        ("/performTransactionTCPIP", purchase_body(sim_port)),
        ("/tcp-ip/disconnect", json!({"ip": "127.0.0.1", "port": sim_port})),
        ("/tcp-ip/connect", json!({"ip": "127.0.0.1", "port": sim_port})),
        ("/api/tls", json!({"enabled": true})),
        ("/api/recover", json!({})),
    ];
    for (path, body) in &targets {
        let url = daemon.at(path);
        // A page on another site, on another port of this machine, a sandboxed frame or a file.
        for origin in ["http://evil.example", &format!("http://127.0.0.1:{}", port ^ 1), "null"] {
            let message = refused(simple_post(&http, &url, body).header("origin", origin), &format!("{path} {origin}"));
            assert!(message.contains("Origin"), "{message}");
        }
        // A browser that says where the request comes from without an Origin.
        refused(simple_post(&http, &url, body).header("sec-fetch-site", "cross-site"), path);
        // DNS rebinding: a page of evil.example, whose name now points at 127.0.0.1.
        let message = refused(
            simple_post(&http, &url, body)
                .header("host", format!("evil.example:{port}"))
                .header("origin", "http://evil.example:{port}"),
            &format!("{path} rebound"),
        );
        assert!(message.contains("Host") && message.contains("allowed_hosts"), "{message}");
        // Two Origin headers, one of them the daemon's own.
        refused(
            simple_post(&http, &url, body)
                .header("origin", format!("http://127.0.0.1:{port}"))
                .header("origin", "http://evil.example"),
            &format!("{path} two origins"),
        );
        // A CORS preflight from a page that is not allowed.
        refused(
            http.request(reqwest::Method::OPTIONS, &url)
                .header("origin", "http://evil.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type"),
            &format!("{path} preflight"),
        );
    }
    // What a rebound page would read.
    for path in ["/transactions", "/api/health-status", "/api/dashboard", "/api/events", "/"] {
        refused(http.get(daemon.at(path)).header("host", format!("evil.example:{port}")), path);
    }
    // Nothing reached the service or the terminal.
    assert_eq!(observe(&http, &daemon, &sim), before);

    // The daemon's own page (the dashboard) on every name it answers to, and same-origin fetches.
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let answer = answer(
            http.post(daemon.at("/nextEcrReference"))
                .header("origin", &origin)
                .header("sec-fetch-site", "same-origin")
                .json(&json!({"cashRegisterNo": "12345678"}))
                .send()
                .unwrap(),
        );
        assert_eq!(answer.status, 200, "{origin}: {:?}", answer.body);
    }
    // Typed into the address bar, or a link from another site to the dashboard: a navigation.
    let typed = http.get(daemon.at("/transactions")).header("sec-fetch-site", "none").send().unwrap();
    assert_eq!(typed.status(), 200);
    let link = http
        .get(daemon.at("/"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .unwrap();
    assert_eq!(link.status(), 200);
    // The dashboard's own action from its own page works.
    let cleared = answer(
        simple_post(&http, &daemon.at("/clearTerminalData"), &json!({"confirmClear": true}))
            .header("origin", format!("http://127.0.0.1:{port}"))
            .send()
            .unwrap(),
    );
    assert_eq!(cleared.status, 200, "{:?}", cleared.body);
    let after = get(&http, &daemon.at(&format!("/registrationStatus?ip=127.0.0.1&port={sim_port}")));
    assert_eq!(after.body["registered"], false);
    assert!(daemon.log().contains("refused"), "refusals are logged");
}

#[test]
fn an_allowed_origin_gets_cors_answers_and_may_drive_the_terminal_but_not_the_dashboards_actions() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let sim_port = sim.addr().port();
    let pos = "http://pos.example:3000";
    let dir = state_dir();
    // The setting from the file, the environment and the flag.
    let file_dir = state_dir();
    std::fs::write(file_dir.path().join("allowed.toml"), format!("allowed_origins = [\"{pos}/\"]\n")).unwrap();
    let mut with_file = std::process::Command::new(binary());
    with_file
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(file_dir.path())
        .arg("--config")
        .arg(file_dir.path().join("allowed.toml"));
    let from_file = Daemon::spawn(file_dir.path(), with_file);
    let mut with_env = command(dir.path(), &["--listen", "127.0.0.1:0"]);
    with_env.env("NAMI_ALLOWED_ORIGINS", format!("https://other.example,{pos}"));
    let from_env = Daemon::spawn(dir.path(), with_env);
    let from_flag = Daemon::start(dir.path(), &["--allowed-origin", pos]);
    let http = client();
    for daemon in [&from_file, &from_env, &from_flag] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, daemon.at("/performTransactionTCPIP"))
            .header("origin", pos)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,idempotency-key")
            .header("access-control-request-private-network", "true")
            .send()
            .unwrap();
        assert!(preflight.status().is_success(), "{}", preflight.status());
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], pos);
        let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(allowed.contains("content-type") && allowed.contains("idempotency-key"), "{allowed}");
        assert_eq!(headers["access-control-allow-private-network"], "true");
    }
    let daemon = &from_flag;
    let before = sim.requests_received();
    let response = http
        .post(daemon.at("/performTransactionTCPIP"))
        .header("origin", pos)
        .header("sec-fetch-site", "cross-site")
        .json(&register_body(sim_port))
        .send()
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], pos);
    assert_eq!(answer(response).body["responseCode"], "800");
    assert_eq!(sim.requests_received(), before + 1, "the allowed page's REGISTER reached the terminal");
    // Not the dashboard's own actions, and no other origin.
    let message = refused(
        simple_post(&http, &daemon.at("/api/tls"), &json!({"enabled": true})).header("origin", pos),
        "POST /api/tls from the POS origin",
    );
    assert!(message.contains("dashboard"), "{message}");
    refused(
        simple_post(&http, &daemon.at("/clearTerminalData"), &json!({"confirmClear": true}))
            .header("origin", "http://pos.example:3001"),
        "another port",
    );
    assert_eq!(get(&http, &daemon.at("/api/tls")).body["enabled"], false);
    assert_eq!(sim.requests_received(), before + 1);

    // `*` would let any page drive the terminal: the daemon refuses to start, saying why.
    for args in [&["--allowed-origin", "*"][..], &["--allowed-origin", "pos.example"], &["--allowed-host", "a/b"]] {
        let output = command(dir.path(), args).output().unwrap();
        assert!(!output.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("allowed_origins") || stderr.contains("allowed_hosts"), "{stderr}");
    }
}

#[test]
fn a_non_loopback_bind_answers_to_its_own_names_and_keeps_the_bearer_token() {
    // IPv4, and dual-stack IPv6 (IPv4 clients arrive as ::ffff:a.b.c.d) where the machine has it.
    let dual_stack = std::net::TcpListener::bind("[::]:0").is_ok();
    for any in ["0.0.0.0", "[::]"].into_iter().filter(|any| *any == "0.0.0.0" || dual_stack) {
        non_loopback_bind(any);
    }
}

fn non_loopback_bind(any: &str) {
    let dir = state_dir();
    let port = std::net::TcpListener::bind(format!("{any}:0")).unwrap().local_addr().unwrap().port();
    let mut public = command(dir.path(), &["--listen", &format!("{any}:{port}"), "--allowed-host", "pos-pc.example"]);
    public.env("NAMI_TOKEN", "s3cret-token");
    let _daemon = Daemon::spawn(dir.path(), public);
    let http = client();
    let health = |address: &str, host: &str, token: Option<&str>| {
        let request = http.get(format!("http://{address}:{port}/api/health-status")).header("host", host);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        answer(request.send().unwrap())
    };
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    // The address the client connected to (Linux routes all of 127/8 to the loopback device), the
    // machine's name, an allowed host: answered, with the token only.
    for (address, host) in [
        ("127.0.0.1", format!("127.0.0.1:{port}")),
        ("127.0.0.2", format!("127.0.0.2:{port}")),
        ("127.0.0.1", format!("{hostname}:{port}")),
        ("127.0.0.1", format!("pos-pc.example:{port}")),
        ("127.0.0.1", "pos-pc.example".to_owned()),
    ] {
        assert_eq!(health(address, &host, Some("s3cret-token")).status, 200, "{any}: {address} as {host}");
        assert_eq!(health(address, &host, None).status, 401, "{any}: {address} as {host} without the token");
    }
    // Another name or address, even with the token.
    for (address, host) in [("127.0.0.1", format!("evil.example:{port}")), ("127.0.0.2", format!("127.0.0.3:{port}"))] {
        let answer = health(address, &host, Some("s3cret-token"));
        assert_eq!((answer.status, answer.body["statusCode"].as_str()), (403, Some("FORBIDDEN")), "{any}: {host}");
    }
    // A real non-loopback address of this machine, when it has one.
    if let Some(lan) = non_loopback_address() {
        assert_eq!(health(&lan, &format!("{lan}:{port}"), Some("s3cret-token")).status, 200, "{any}: {lan}");
    }
}

#[test]
fn with_https_the_daemons_own_https_origin_is_its_own() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let port = daemon.port;
    // The dashboard's "Switch to HTTPS", sent from its own page.
    let switched = answer(
        client()
            .post(daemon.at("/api/tls"))
            .header("origin", format!("http://localhost:{port}"))
            .json(&json!({"enabled": true}))
            .send()
            .unwrap(),
    );
    assert_eq!(switched.status, 200, "{:?}", switched.body);
    let https = pinned_client(switched.body["tlsFingerprintSha256"].as_str().unwrap());
    for (origin, status) in [(format!("https://127.0.0.1:{port}"), 200), ("https://evil.example".to_owned(), 403)] {
        let answer = answer(
            https
                .post(daemon.https_at("/nextEcrReference"))
                .header("origin", &origin)
                .json(&json!({"cashRegisterNo": "12345678"}))
                .send()
                .unwrap(),
        );
        assert_eq!(answer.status, status, "{origin}: {:?}", answer.body);
    }
}

/// An address of this machine outside 127/8, found by asking the routing table (nothing is sent).
fn non_loopback_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}
