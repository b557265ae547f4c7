//! The real `nami-httpd` binary, driven over real sockets with a real HTTP client, against
//! `nami-sim` terminals started in this test process (TCP, and a pty for the COM path).

#![cfg(unix)]

mod schema;

use std::time::{Duration, Instant};

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, command, state_dir, wait_for};
use nami_test_kit::http::{Answer, answer, client, get, post, post_text, tcp_body};
use nami_test_kit::tls::pinned_client;
use schema::conforms;
use serde_json::{Value, json};

fn transaction(answer: &Answer) -> &Value {
    conforms("TransactionResponse", &answer.body);
    &answer.body
}

#[test]
fn the_mandatory_tcp_sequence_runs_through_the_daemon() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let port = sim.addr().port();
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let http = client();
    let tcp = |payment: Value| post(&http, &daemon.at("/performTransactionTCPIP"), &tcp_body(port, payment));

    let ports = get(&http, &daemon.at("/get-com-ports"));
    assert_eq!(ports.status, 200);
    for entry in ports.body.as_array().unwrap() {
        conforms("ComPortInfo", entry);
    }

    let unregistered = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000001"}));
    assert_eq!((unregistered.status, unregistered.body["statusCode"].as_str()), (200, Some("REGISTER_REQUIRED")));

    let register = tcp(json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": "12345678000002"}));
    let body = transaction(&register);
    assert_eq!((body["statusCode"].as_str(), body["responseCode"].as_str()), (Some("200"), Some("800")), "{body}");
    assert_eq!(body["transaction"], ";17;800;8184000200000077;");
    assert_eq!((body["ipAddress"].as_str(), body["portNumber"].as_u64()), (Some("127.0.0.1"), Some(port as u64)));

    let status = get(&http, &daemon.at(&format!("/registrationStatus?ip=127.0.0.1&port={port}")));
    conforms("RegistrationStatus", &status.body);
    assert_eq!(
        status.body,
        json!({"registered": true, "terminalId": "8184000200000077", "ip": "127.0.0.1", "port": port})
    );

    let paid = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "date": "090625143000",
        "ecrReferenceNo": "12345678000003", "jsonResponse": true}));
    let body = transaction(&paid);
    assert_eq!((body["statusCode"].as_str(), body["approved"].as_bool()), (Some("200"), Some(true)), "{body}");
    let parsed = &body["parsedTransaction"];
    assert_eq!((parsed["transactionType"].as_str(), parsed["amount"].as_str()), (Some("Purchase"), Some("SAR 10.00")));
    assert!(parsed["cardNumber"].as_str().unwrap().contains("******"), "masked: {parsed}");
    assert_eq!(body["signature"].as_str().unwrap().len(), 64);
    assert!(body.get("transaction").is_none(), "jsonResponse true leaves the raw reply out");

    let retried = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "date": "090625143000",
        "ecrReferenceNo": "12345678000003", "jsonResponse": true}));
    assert_eq!(transaction(&retried)["replay"], true, "a retry is answered from the journal");
    assert_eq!(sim.journal().len(), 1, "and charges nothing twice");

    let duplicate = tcp(json!({"txnType": "DUPLICATE", "ecrReferenceNo": "12345678000004",
        "prevEcrNo": "12345678000003", "jsonResponse": true}));
    assert_eq!(transaction(&duplicate)["statusCode"], "200", "{}", duplicate.body);

    let reversal = tcp(json!({"txnType": "REVERSAL", "ecrReferenceNo": "12345678000005", "jsonResponse": true}));
    let body = transaction(&reversal);
    assert_eq!((body["responseCode"].as_str(), body["approved"].as_bool()), (Some("400"), Some(true)), "{body}");

    let reconciliation = tcp(json!({"txnType": "RECONCILIATION", "ecrReferenceNo": "12345678000006"}));
    let body = transaction(&reconciliation);
    assert_eq!((body["responseCode"].as_str(), body["approved"].as_bool()), (Some("500"), Some(true)), "{body}");

    let key = format!("127.0.0.1:{port}");
    let connections = get(&http, &daemon.at("/getExistingConnections"));
    assert_eq!(connections.body, json!({ key.clone(): "Connected" }));

    let health = get(&http, &daemon.at("/api/health-status"));
    conforms("HealthStatus", &health.body);
    let h = &health.body;
    assert_eq!((h["status"].as_str(), h["port"].as_str()), (Some("UP"), Some(daemon.port.to_string().as_str())));
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["uptime"].as_str().unwrap().ends_with('m'), "{h}");
    assert!(h["memoryUsedMb"].as_u64().unwrap() > 0 && h["memoryMaxMb"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(h["tcpConnections"], json!({ key.clone(): "Connected" }));
    assert_eq!(
        h["registeredTerminals"],
        json!([{"terminalId": "8184000200000077", "ipAddress": "127.0.0.1", "portNumber": port}])
    );
    assert_eq!((h["scheme"].as_str(), h["authRequired"].as_bool()), (Some("http"), Some(false)));
    assert_eq!((h["tlsFingerprintSha256"].clone(), h["simulator"].clone()), (Value::Null, Value::Null));

    let journal = get(&http, &daemon.at("/transactions"));
    conforms("JournalList", &journal.body);
    let states: Vec<(&str, &str)> = journal.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["txnType"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&("PURCHASE", "approved")) && states.contains(&("REVERSAL", "approved")), "{states:?}");
    let one = get(&http, &daemon.at("/transactions/12345678000003"));
    assert_eq!((one.status, one.body["count"].as_u64()), (200, Some(1)));
    assert_eq!(one.body["transactions"][0]["cardNumber"], parsed["cardNumber"]);
    let filtered = get(&http, &daemon.at("/transactions?state=approved&limit=1"));
    assert_eq!(filtered.body["count"], 1);
    let none = get(&http, &daemon.at("/transactions/99999999999999"));
    assert_eq!((none.status, none.body["count"].as_u64()), (404, Some(0)));
    let bad_filter = get(&http, &daemon.at("/transactions?state=lost"));
    assert_eq!(bad_filter.status, 400);
    conforms("StatusResponse", &bad_filter.body);

    let next = post(&http, &daemon.at("/nextEcrReference"), &json!({"cashRegisterNo": "12345678"}));
    assert!(next.body["ecrReferenceNo"].as_str().unwrap().starts_with("12345678"), "{:?}", next.body);

    let cancel = post(&http, &daemon.at("/cancelTransaction"), &Value::Null);
    assert_eq!(cancel.body, json!({"status": "Info", "message": "No active transaction to cancel"}));

    let target = json!({"tcpipcomData": {"ip": "127.0.0.1", "port": port}});
    let disconnected = post(&http, &daemon.at("/tcp-ip/disconnect"), &target);
    conforms("TcpConnectionResponse", &disconnected.body);
    assert_eq!(
        disconnected.body,
        json!({"Ip": "127.0.0.1", "portNumber": port, "isConnected": "Connection Disconnected", "connectionStatus": false})
    );
    let connected = post(&http, &daemon.at("/tcp-ip/connect"), &target);
    assert_eq!(
        (connected.body["isConnected"].as_str(), connected.body["connectionStatus"].as_bool()),
        (Some("Connected"), Some(true))
    );

    let refused = post(&http, &daemon.at("/clearTerminalData"), &json!({}));
    assert_eq!((refused.status, refused.body["status"].as_str()), (200, Some("Error")));
    let cleared = post(&http, &daemon.at("/clearTerminalData"), &json!({"confirmClear": true}));
    assert_eq!(cleared.body, json!({"status": "Success", "message": "Terminal data map cleared Successfully"}));
    let status = get(&http, &daemon.at(&format!("/registrationStatus?ip=127.0.0.1&port={port}")));
    assert_eq!(status.body["registered"], false);
    sim.shutdown();
}

#[test]
fn every_middleware_status_code_is_reachable_over_http() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let port = sim.addr().port();
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &["--admin-timeout-secs", "1", "--card-present-timeout-secs", "20"]);
    let http = client();
    let url = daemon.at("/performTransactionTCPIP");
    let tcp = |payment: Value| post(&http, &url, &tcp_body(port, payment));
    let code = |answer: &Answer| transaction(answer)["statusCode"].as_str().unwrap().to_owned();

    // Refused before anything is sent.
    assert_eq!(
        code(&tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000101"}))),
        "REGISTER_REQUIRED"
    );
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let timed_out = tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000102"}));
    assert_eq!((timed_out.status, code(&timed_out)), (200, "TIMEOUT".to_owned()), "{:?}", timed_out.body);
    assert_eq!(code(&tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000103"}))), "200");
    let invalid_amount = tcp(json!({"txnType": "PURCHASE", "amount": "ten", "ecrReferenceNo": "12345678000104"}));
    assert_eq!((invalid_amount.status, code(&invalid_amount)), (200, "INVALID_AMOUNT".to_owned()));
    assert!(invalid_amount.body["statusMessage"].as_str().unwrap().contains("amount"), "{:?}", invalid_amount.body);
    let invalid_ref = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "123"}));
    assert_eq!(code(&invalid_ref), "INVALID_ECR_REF");
    assert!(invalid_ref.body["statusMessage"].as_str().unwrap().contains("ecrReferenceNo"), "{:?}", invalid_ref.body);

    // A closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable =
        post(&http, &url, &tcp_body(closed, json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000105"})));
    assert_eq!(code(&unreachable), "UnableToConnect");

    // A declined card is a terminal answer: statusCode 200, approved false.
    let declined = tcp(json!({"txnType": "PURCHASE", "amount": "10.51", "ecrReferenceNo": "12345678000106"}));
    let body = transaction(&declined);
    assert_eq!(
        (body["statusCode"].as_str(), body["responseCode"].as_str(), body["approved"].as_bool()),
        (Some("200"), Some("116"), Some(false))
    );

    // The terminal waits for a card: a second request is TERMINAL_BUSY, a cancel ends the first.
    sim.set_card_tap(true);
    let waiting = std::thread::scope(|scope| {
        let first =
            scope.spawn(|| tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000107"})));
        wait_for("the card wait", Duration::from_secs(10), || sim.waiting_for_card());
        let busy = tcp(json!({"txnType": "PURCHASE", "amount": "11.00", "ecrReferenceNo": "12345678000108"}));
        assert_eq!(code(&busy), "TERMINAL_BUSY", "{:?}", busy.body);
        let cancel = post(&http, &daemon.at("/cancelTransaction"), &json!({"ip": "127.0.0.1", "port": port}));
        assert_eq!(cancel.body, json!({"status": "Success", "message": "Transaction cancelled"}));
        first.join().unwrap()
    });
    assert_eq!(code(&waiting), "CANCELLED", "{:?}", waiting.body);
    sim.set_card_tap(false);

    // The link breaks after the request was sent: the outcome is unknown, never a plain failure.
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let unknown = tcp(json!({"txnType": "PURCHASE", "amount": "12.00", "ecrReferenceNo": "12345678000109"}));
    let body = transaction(&unknown);
    assert_eq!(body["outcomeUnknown"], true, "{body}");

    // Requests the API cannot parse: 400, statusCode ERROR, the field named.
    let wrong_type = tcp(
        json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000110", "jsonResponse": "yes"}),
    );
    assert_eq!((wrong_type.status, code(&wrong_type)), (400, "ERROR".to_owned()));
    assert!(
        wrong_type.body["statusMessage"].as_str().unwrap().contains("paymentRequest.jsonResponse"),
        "{:?}",
        wrong_type.body
    );
    let malformed = post_text(&http, &url, "{\"tcpipcomData\": ");
    assert_eq!((malformed.status, code(&malformed)), (400, "ERROR".to_owned()));
    let missing = post(&http, &url, &json!({"paymentRequest": {"txnType": "REGISTER"}}));
    assert_eq!(missing.status, 400);
    assert!(missing.body["statusMessage"].as_str().unwrap().contains("tcpipcomData"), "{:?}", missing.body);
    sim.shutdown();
}

#[test]
fn malformed_requests_get_json_errors_and_never_a_panic() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let http = client();

    let unknown = get(&http, &daemon.at("/no/such/endpoint"));
    assert_eq!((unknown.status, unknown.body["statusCode"].as_str()), (404, Some("ERROR")));
    let wrong_method = get(&http, &daemon.at("/performTransactionTCPIP"));
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.body["statusMessage"].as_str().unwrap().contains("GET"), "{:?}", wrong_method.body);

    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    // Their own clients: the daemon closes those connections, which must not hit a pooled one.
    let too_large = post_text(&client(), &daemon.at("/performTransactionCOM"), big.clone());
    assert_eq!((too_large.status, too_large.body["statusCode"].as_str()), (413, Some("ERROR")));
    // Without a length (chunked): refused as it is read. The daemon answers and closes while the
    // client may still be sending, so the client sees either the 413 or the connection cut.
    let chunked = client()
        .post(daemon.at("/performTransactionCOM"))
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(big.into_bytes())))
        .send();
    if let Ok(response) = chunked {
        assert_eq!(answer(response).status, 413);
    }

    let not_utf8 = answer(http.post(daemon.at("/clearTerminalData")).body(vec![0xff, 0xfe, b'{']).send().unwrap());
    assert_eq!((not_utf8.status, not_utf8.body["status"].as_str()), (400, Some("Error")));
    let clear_wrong_type = post(&http, &daemon.at("/clearTerminalData"), &json!({"confirmClear": "yes"}));
    assert_eq!(clear_wrong_type.status, 400);
    assert!(clear_wrong_type.body["message"].as_str().unwrap().contains("confirmClear"), "{:?}", clear_wrong_type.body);
    let bad_selector = get(&http, &daemon.at("/registrationStatus?ip=127.0.0.1&port=x"));
    assert_eq!(bad_selector.status, 400);
    let no_simulator = get(&http, &daemon.at("/simulator/state"));
    assert_eq!(no_simulator.status, 404);
    assert!(no_simulator.body["error"].as_str().unwrap().contains("--simulator"));

    // Every documented GET answers JSON that matches its schema, even on an empty daemon.
    let document = get(&http, &daemon.at("/openapi.json")).body;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(daemon.log().contains("request"), "requests are logged");
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}

#[test]
fn the_embedded_simulator_serves_every_endpoint_at_once() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &["--simulator", "--simulator-listen", "127.0.0.1:0"]);
    let sim_addr = daemon.banner_value("simulator listening on ").expect("the simulator's address is printed");
    let pty_path = daemon.banner_value("simulator pty: ").expect("the pty is printed");
    let sim_port: u16 = sim_addr.rsplit(':').next().unwrap().parse().unwrap();
    let http = client();
    let tcp = |payment: Value| post(&http, &daemon.at("/performTransactionTCPIP"), &tcp_body(sim_port, payment));
    let sim_post = |path: &str, body: Value| post(&http, &daemon.at(path), &body);

    let state = get(&http, &daemon.at("/simulator/state"));
    conforms("SimulatorState", &state.body);
    assert_eq!(
        (state.body["listen"].as_str(), state.body["pty"].as_str()),
        (Some(sim_addr.as_str()), Some(pty_path.as_str()))
    );
    let health = get(&http, &daemon.at("/api/health-status"));
    assert_eq!(health.body["simulator"], json!({"listen": sim_addr, "pty": pty_path}));

    assert_eq!(
        transaction(&tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000301"})))["statusCode"],
        "200"
    );
    let faulted = sim_post("/simulator/fault", json!({"fault": "decline", "code": "117", "scope": "always"}));
    assert_eq!(faulted.body["faults"], json!([{"fault": "decline", "code": "117", "scope": "always"}]));
    let declined = tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000302"}));
    assert_eq!(transaction(&declined)["responseCode"], "117");
    assert_eq!(sim_post("/simulator/faults/clear", Value::Null).body["faults"], json!([]));
    let bad_fault = sim_post("/simulator/fault", json!({"fault": "meteor"}));
    assert_eq!(bad_fault.status, 400);

    assert_eq!(sim_post("/simulator/card-tap", json!({"enabled": true})).body["cardTap"], true);
    assert_eq!(sim_post("/simulator/card-tap", json!({"enabled": "yes"})).status, 400);
    let tapped = std::thread::scope(|scope| {
        let waiting =
            scope.spawn(|| tcp(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000303"})));
        wait_for("the card wait", Duration::from_secs(10), || {
            get(&http, &daemon.at("/simulator/state")).body["waitingForCard"] == true
        });
        assert_eq!(sim_post("/simulator/tap", Value::Null).body, json!({"tapped": true, "purchaseWasWaiting": true}));
        waiting.join().unwrap()
    });
    assert_eq!(transaction(&tapped)["approved"], true);
    let journal = get(&http, &daemon.at("/simulator/journal"));
    for entry in journal.body.as_array().unwrap() {
        conforms("SimulatorTransaction", entry);
    }
    assert_eq!(journal.body.as_array().unwrap().len(), 2);
    assert_eq!(sim_post("/simulator/reboot", Value::Null).body["registered"], false);

    // The COM path through the embedded simulator's pty.
    let connected = post(&http, &daemon.at("/com/connect"), &json!({"port": pty_path}));
    assert_eq!(connected.body["success"], true, "{:?}", connected.body);
    let register = post(
        &http,
        &daemon.at("/performTransactionCOM"),
        &json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000304"}),
    );
    assert_eq!(transaction(&register)["responseCode"], "800");
}

#[test]
fn sigterm_stops_promptly_with_exit_0_and_records_the_exchange_in_flight() {
    let sim = Simulator::start(SimConfig { card_tap: true, ..SimConfig::default() }).unwrap();
    let port = sim.addr().port();
    let dir = state_dir();
    let mut daemon = Daemon::start(dir.path(), &["--shutdown-grace-secs", "0.5"]);
    let http = client();
    let url = daemon.at("/performTransactionTCPIP");
    assert_eq!(
        post(&http, &url, &tcp_body(port, json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000401"}))).body["statusCode"],
        "200"
    );
    let (in_flight, stopped_in) = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            post(
                &http,
                &url,
                &tcp_body(port, json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000402"})),
            )
        });
        wait_for("the card wait", Duration::from_secs(10), || sim.waiting_for_card());
        let start = Instant::now();
        let status = daemon.terminate(Duration::from_secs(8));
        assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
        (waiting.join().unwrap(), start.elapsed())
    });
    assert!(stopped_in < Duration::from_secs(5), "stopped in {stopped_in:?}");
    let body = transaction(&in_flight);
    assert_eq!(body["statusCode"], "CANCELLED", "the client got an answer before the exit: {body}");

    // Restarted on the same state: the purchase is in the journal, not lost and not pending.
    let again = Daemon::start(dir.path(), &[]);
    let entry = get(&http, &again.at("/transactions/12345678000402"));
    let state = entry.body["transactions"][0]["state"].as_str().unwrap().to_owned();
    assert!(state == "unknown" || state == "not_found" || state == "error", "{state}: {:?}", entry.body);
    sim.shutdown();
}

#[test]
fn https_is_switched_on_at_run_time_on_the_same_port_and_verified_by_fingerprint() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let http = client();
    let before = get(&http, &daemon.at("/api/tls"));
    assert_eq!((before.body["enabled"].as_bool(), before.body["scheme"].as_str()), (Some(false), Some("http")));
    let bad = post(&http, &daemon.at("/api/tls"), &json!({"enabled": "yes"}));
    assert_eq!((bad.status, bad.body["status"].as_str()), (400, Some("Error")));

    let switched = post(&http, &daemon.at("/api/tls"), &json!({"enabled": true}));
    conforms("TlsStatus", &switched.body);
    assert_eq!((switched.status, switched.body["scheme"].as_str()), (200, Some("https")), "{:?}", switched.body);
    let fingerprint = switched.body["tlsFingerprintSha256"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 95, "AB:CD:… (32 bytes): {fingerprint}");

    // The same port now speaks TLS; the pinned client verifies the certificate.
    let https = pinned_client(&fingerprint);
    let health = get(&https, &daemon.https_at("/api/health-status"));
    conforms("HealthStatus", &health.body);
    assert_eq!(
        (health.body["scheme"].as_str(), health.body["tlsFingerprintSha256"].as_str()),
        (Some("https"), Some(fingerprint.as_str()))
    );
    // Another certificate is refused by the pin.
    let wrong = pinned_client(&format!("{}00", "00:".repeat(31)));
    assert!(wrong.get(daemon.https_at("/api/health-status")).send().is_err());
    // A plain HTTP client gets a clear JSON answer instead of a broken handshake.
    let plain = answer(client().get(daemon.at("/api/health-status")).send().unwrap());
    assert_eq!(plain.status, 400);
    assert!(plain.body["statusMessage"].as_str().unwrap().contains("https://"), "{:?}", plain.body);

    // The certificate and key are private files in the state directory.
    use std::os::unix::fs::PermissionsExt;
    for file in ["tls/cert.pem", "tls/key.pem"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    drop(daemon);

    // Remembered across a restart, with the same certificate; and switched back.
    let restarted = Daemon::start(dir.path(), &[]);
    assert!(restarted.url.starts_with("https://"), "{}", restarted.url);
    let https = pinned_client(&fingerprint);
    let back = post(&https, &restarted.https_at("/api/tls"), &json!({"enabled": false}));
    assert_eq!(back.body["scheme"], "http");
    let health = get(&client(), &restarted.at("/api/health-status"));
    assert_eq!(health.body["scheme"], "http");
    assert_eq!(health.body["tlsFingerprintSha256"], fingerprint.as_str(), "the fingerprint stays known");
}

#[test]
fn https_from_the_command_line_serves_tls_from_the_first_request() {
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &["--tls"]);
    assert!(daemon.url.starts_with("https://127.0.0.1:"), "{}", daemon.url);
    let cert = std::fs::read_to_string(dir.path().join("tls/cert.pem")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let fingerprint = nami_httpd::tls::fingerprint(der.as_ref());
    let health =
        get(&pinned_client(&fingerprint.to_ascii_lowercase().replace(':', "")), &daemon.https_at("/api/health-status"));
    assert_eq!(health.body["tlsFingerprintSha256"], fingerprint.as_str());
    drop(daemon);

    // The operator's own certificate and key instead of the generated pair.
    let own = state_dir();
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(dir.path().join("tls").join(file), own.path().join(file)).unwrap();
    }
    let (cert, key) = (own.path().join("cert.pem"), own.path().join("key.pem"));
    let other = state_dir();
    let daemon = Daemon::start(
        other.path(),
        &["--tls", "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    let status = get(&pinned_client(&fingerprint), &daemon.https_at("/api/tls"));
    assert_eq!(
        (status.body["selfSigned"].as_bool(), status.body["certificate"].as_str()),
        (Some(false), cert.to_str())
    );
    assert!(!other.path().join("tls").exists(), "nothing generated");
}

#[test]
fn a_non_loopback_bind_requires_the_bearer_token() {
    let dir = state_dir();
    // Neither a token nor --no-auth: refused, with a message that says what to do.
    let output = command(dir.path(), &["--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("--no-auth") && message.contains("NAMI_TOKEN"), "{message}");

    let port = std::net::TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let listen = format!("0.0.0.0:{port}");
    let mut with_token = command(dir.path(), &["--listen", &listen]);
    with_token.env("NAMI_TOKEN", "s3cret-token");
    let daemon = Daemon::spawn(dir.path(), with_token);
    let http = client();
    let url = daemon.at("/api/health-status");
    let missing = answer(http.get(&url).send().unwrap());
    assert_eq!((missing.status, missing.body["statusCode"].as_str()), (401, Some("UNAUTHORIZED")));
    let wrong = answer(http.get(&url).bearer_auth("s3cret-tokem").send().unwrap());
    assert_eq!(wrong.status, 401);
    let unknown_path = answer(http.get(daemon.at("/nope")).send().unwrap());
    assert_eq!(unknown_path.status, 401, "nothing is revealed without the token");
    let right = answer(http.get(&url).bearer_auth("s3cret-token").send().unwrap());
    assert_eq!((right.status, right.body["authRequired"].as_bool()), (200, Some(true)));
    drop(daemon);

    let open = Daemon::start(dir.path(), &["--listen", "0.0.0.0:0", "--no-auth"]);
    assert_eq!(get(&client(), &open.at("/api/health-status")).status, 200);
}

#[test]
fn cors_allows_only_the_configured_origins() {
    let dir = state_dir();
    // `--cors-origin`: the former name of `--allowed-origin` (tests/origin.rs), still accepted.
    let daemon = Daemon::start(dir.path(), &["--cors-origin", "http://dashboard.local:3000"]);
    let http = client();
    let allowed =
        http.get(daemon.at("/api/health-status")).header("origin", "http://dashboard.local:3000").send().unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://dashboard.local:3000");
    let other = http.get(daemon.at("/api/health-status")).header("origin", "http://evil.example").send().unwrap();
    assert_eq!(other.status(), 403);
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let preflight = http
        .request(reqwest::Method::OPTIONS, daemon.at("/performTransactionTCPIP"))
        .header("origin", "http://dashboard.local:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
}

#[test]
fn sigterm_right_after_the_readiness_line_is_not_missed() {
    let dir = state_dir();
    for _ in 0..3 {
        let started = Instant::now();
        let mut daemon = Daemon::start(dir.path(), &[]);
        let ready_in = started.elapsed();
        assert!(ready_in < Duration::from_secs(3), "ready in {ready_in:?}");
        let status = daemon.terminate(Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{status:?}; log:\n{}", daemon.log());
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_daemon_runs_as_started_with_the_environment_it_was_given() {
    // The daemon used to set glibc's malloc tunables and execute itself again; with its own
    // allocator it runs as started: the environment is the caller's, glibc's settings untouched.
    let dir = state_dir();
    let mut command = command(dir.path(), &["--listen", "127.0.0.1:0"]);
    command.env_remove("GLIBC_TUNABLES").env_remove("NAMI_HTTPD_MALLOC_TUNED");
    let daemon = Daemon::spawn(dir.path(), command);
    assert_eq!(get(&client(), &daemon.at("/api/health-status")).status, 200);
    let environ = std::fs::read(format!("/proc/{}/environ", daemon.child.id())).unwrap();
    let environ = String::from_utf8_lossy(&environ).replace('\0', " ");
    assert!(!environ.contains("GLIBC_TUNABLES") && !environ.contains("NAMI_HTTPD_MALLOC_TUNED"), "{environ}");
}

/// `conforms` can fail: a field the schema lacks, a required field missing, a wrong type, also
/// inside a nested object.
#[test]
fn the_schema_check_sees_undocumented_missing_and_mistyped_fields() {
    conforms("StatusResponse", &json!({"status": "Success", "message": "ok"}));
    let bad = [
        ("StatusResponse", json!({"status": "Success", "message": "ok", "extra": 1})),
        ("StatusResponse", json!({"status": "Success"})),
        ("StatusResponse", json!({"status": 1, "message": "ok"})),
        (
            "TransactionResponse",
            json!({"statusCode": "200", "statusMessage": "", "responseCode": null, "approved": true,
                   "parsedTransaction": {"amount": 1}}),
        ),
        ("JournalList", json!({"count": 1, "transactions": [{"id": 1}]})),
    ];
    for (name, body) in bad {
        let outcome = std::panic::catch_unwind(|| conforms(name, &body));
        assert!(outcome.is_err(), "{body} passed as {name}");
    }
}
