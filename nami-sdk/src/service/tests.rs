//! Service tests against a small scripted terminal on 127.0.0.1 (the full simulator is used by
//! the end-to-end tests of `nami-e2e`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::journal::{Begin, Journal, NewEntry};
use super::*;
use crate::protocol::decoder::FrameDecoder;
use crate::protocol::frame::{LrcMode, encode_fields};
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::{Signature, TerminalId};
use crate::session::config::TerminalConfig;
use crate::session::link::SerialSettings;
use crate::session::terminal::Terminal;

const TERMINAL_ID: &str = "8184000200000077";

/// How the fake answers the next financial request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    /// Processes the payment (it is in its journal) but closes the link instead of answering.
    CloseAfterRequest,
    /// Answers after this long.
    Delay(Duration),
}

/// A terminal that speaks just enough of the protocol: REGISTER, card transactions (approved
/// under 100 SAR, declined above) and DUPLICATE from its own journal.
struct Fake {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    mode: Arc<Mutex<Mode>>,
}

fn card_fields(command: &str, code: &str, message: &str, amount: &str, reference: &str) -> Vec<String> {
    let mut fields: Vec<String> = vec![command.into(), code.into(), message.into(), "5588123412341234".into()];
    fields.push(amount.into());
    fields.extend(["0000", "000123", "0609143000", "2812", "123456789012", "654321", TERMINAL_ID].map(String::from));
    // MID through merchant address (AR), then the echo of the ECR reference and a signature.
    fields.extend(std::iter::repeat_n("x".to_owned(), 22));
    fields.push(reference.into());
    fields.push("f".repeat(64));
    fields
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let mode = Arc::new(Mutex::new(Mode::Answer));
        let journal: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let (r, m) = (received.clone(), mode.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, m, j) = (r.clone(), m.clone(), journal.clone());
                std::thread::spawn(move || serve(stream, r, m, j));
            }
        });
        Fake { addr, received, mode }
    }

    fn target(&self) -> TcpTarget {
        TcpTarget { ip: "127.0.0.1".into(), port: self.addr.port() }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

fn serve(
    mut stream: TcpStream,
    received: Arc<AtomicU64>,
    mode: Arc<Mutex<Mode>>,
    journal: Arc<Mutex<HashMap<String, Vec<String>>>>,
) {
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            received.fetch_add(1, Ordering::SeqCst);
            let f = &frame.fields;
            let reply: Vec<String> = match frame.command() {
                "A0" => vec!["A0".into(), "800".into(), TERMINAL_ID.into()],
                "A1" => {
                    let halalas: u64 = f[2].parse().unwrap();
                    let reference = f[4].clone();
                    let (code, message) = if halalas <= 10_000 { ("000", "APPROVED") } else { ("116", "DECLINED") };
                    let fields = card_fields("A1", code, message, &f[2], &reference);
                    journal.lock().unwrap().insert(reference[8..].to_owned(), fields.clone());
                    let current = *mode.lock().unwrap();
                    match current {
                        Mode::CloseAfterRequest => {
                            *mode.lock().unwrap() = Mode::Answer;
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        Mode::Delay(pause) => std::thread::sleep(pause),
                        Mode::Answer => {}
                    }
                    fields
                }
                "C2" => {
                    let previous = f[3].clone();
                    let reference = f[4].clone();
                    match journal.lock().unwrap().get(&previous) {
                        Some(original) => {
                            let mut fields = vec!["C2".into(), original[1].clone(), original[2].clone()];
                            fields.extend(original.iter().cloned());
                            fields.push(reference);
                            fields.push("f".repeat(64));
                            fields
                        }
                        None => vec!["C2".into(), "100".into(), "NO DATA FOUND".into(), reference, "f".repeat(64)],
                    }
                }
                other => vec![other.to_owned(), "000".into(), "APPROVED".into()],
            };
            if stream.write_all(&encode_fields(&reply, LrcMode::Skyband)).is_err() {
                return;
            }
        }
    }
}

fn config(dir: &std::path::Path) -> ServiceConfig {
    let mut config = ServiceConfig::new(dir);
    config.terminal.card_present_timeout = Duration::from_secs(5);
    config.terminal.settlement_timeout = Duration::from_secs(5);
    config.terminal.admin_timeout = Duration::from_secs(5);
    config.recovery_interval = Duration::from_millis(100);
    config.recovery_grace = Duration::ZERO;
    config
}

fn call(service: &Service, path: &str, body: Value) -> Value {
    serde_json::from_str(&service.call(path, &body.to_string())).unwrap()
}

fn tcp(fake: &Fake, payment: Value) -> Value {
    json!({"tcpipcomData": {"ip": "127.0.0.1", "port": fake.addr.port()}, "paymentRequest": payment})
}

fn register(service: &Service, fake: &Fake) -> Value {
    call(
        service,
        "/performTransactionTCPIP",
        tcp(fake, json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": "12345678000000"})),
    )
}

fn purchase(ecr: &str, amount: &str) -> Value {
    json!({"txnType": "PURCHASE", "amount": amount, "date": "090625143000", "ecrReferenceNo": ecr})
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_purchase_answers_with_the_seed_fields_plus_response_code_and_approval() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    let service = Service::open(config(dir.path())).unwrap();
    let registered = register(&service, &fake);
    assert_eq!(registered["statusCode"], "200", "{registered}");
    assert_eq!(registered["transaction"], format!(";17;800;{TERMINAL_ID};"));
    assert_eq!(registered["terminalId"], TERMINAL_ID);
    assert_eq!(registered["portNumber"], fake.addr.port());
    assert_eq!(registered["connectionStatus"], true);

    let raw = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000001", "10.00")));
    assert_eq!(raw["statusCode"], "200");
    assert_eq!(raw["statusMessage"], "APPROVED");
    assert_eq!(raw["responseCode"], "000");
    assert_eq!(raw["approved"], true);
    assert_eq!(raw["ipAddress"], "127.0.0.1");
    assert_eq!(raw["isConnected"], "Connected");
    assert_eq!(raw["inputReqData"], "090625143000;000000001000;1;12345678000001!");
    let transaction = raw["transaction"].as_str().unwrap();
    assert!(transaction.starts_with(";0;000;APPROVED;558812******1234;"), "{transaction}");
    assert!(!transaction.contains("5588123412341234"), "card numbers are masked");
    assert_eq!(
        raw["signature"],
        Signature::compute(&EcrReference::parse("12345678000001").unwrap(), &TerminalId::parse(TERMINAL_ID).unwrap())
            .as_str()
    );
    assert!(raw.get("parsedTransaction").is_none());

    let mut body = purchase("12345678000002", "99.50");
    body["jsonResponse"] = json!(true);
    let parsed = call(&service, "/performTransactionTCPIP", tcp(&fake, body));
    let p = &parsed["parsedTransaction"];
    assert_eq!(p["transactionType"], "Purchase");
    assert_eq!(p["amount"], "SAR 99.50");
    assert_eq!(p["cardNumber"], "558812******1234");
    assert_eq!(p["approvalCode"], "654321");
    assert_eq!(p["terminalId"], TERMINAL_ID);
    assert!(parsed.get("transaction").is_none());

    let declined = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000003", "250")));
    assert_eq!((declined["statusCode"].as_str(), declined["approved"].as_bool()), (Some("200"), Some(false)));
    assert_eq!(declined["responseCode"], "116");

    let list = call(&service, "/transactions", json!({}));
    assert_eq!(list["count"], 3);
    let states: Vec<&str> =
        list["transactions"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["declined", "approved", "approved"]);
}

#[test]
fn a_replayed_ecr_reference_sends_no_frame_and_returns_the_stored_result() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    let service = Service::open(config(dir.path())).unwrap();
    register(&service, &fake);
    let first = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000011", "10")));
    assert_eq!(first["approved"], true);
    let sent = fake.received();

    let again = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000011", "10")));
    assert_eq!(fake.received(), sent, "nothing was sent");
    assert_eq!(again["replay"], true);
    for field in ["statusCode", "statusMessage", "responseCode", "approved", "transaction", "signature", "terminalId"] {
        assert_eq!(again[field], first[field], "{field}");
    }
    // The same stored result in the other format.
    let mut body = purchase("12345678000011", "10");
    body["jsonResponse"] = json!(true);
    let parsed = call(&service, "/performTransactionTCPIP", tcp(&fake, body));
    assert_eq!(parsed["parsedTransaction"]["approvalCode"], "654321");

    let row = &call(&service, "/transactions/12345678000011", json!({}))["transactions"][0];
    assert_eq!(row["replayCount"], 2);
    // The same reference for another amount is another request (the seeds allow a static
    // reference): sent, as a new transaction.
    let other = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000011", "12")));
    assert_eq!((other["approved"].as_bool(), other.get("replay")), (Some(true), None), "{other}");
    assert_eq!(fake.received(), sent + 1);
}

#[test]
fn a_second_request_for_a_reference_in_flight_is_terminal_busy() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    let service = Arc::new(Service::open(config(dir.path())).unwrap());
    register(&service, &fake);
    fake.set_mode(Mode::Delay(Duration::from_millis(800)));
    let background = {
        let (service, body) = (service.clone(), tcp(&fake, purchase("12345678000021", "10")));
        std::thread::spawn(move || call(&service, "/performTransactionTCPIP", body))
    };
    wait_for("the purchase to be sent", Duration::from_secs(5), || fake.received() >= 2);
    let sent = fake.received();
    let busy = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000021", "10")));
    assert_eq!(busy["statusCode"], "TERMINAL_BUSY", "{busy}");
    let other = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000022", "10")));
    assert_eq!(other["statusCode"], "TERMINAL_BUSY", "the terminal is single-threaded");
    assert_eq!(fake.received(), sent, "nothing was sent");
    assert_eq!(background.join().unwrap()["approved"], true);
    // The busy refusal of the other reference did not block it for later.
    fake.set_mode(Mode::Answer);
    let later = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000022", "10")));
    assert_eq!(later["approved"], true, "{later}");
}

#[test]
fn a_lost_reply_is_unknown_never_resent_and_recovered_with_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    let mut config = config(dir.path());
    // Recovery only when asked, so that the unknown state can be observed first.
    config.recovery_interval = Duration::from_secs(3600);
    let service = Service::open(config).unwrap();
    register(&service, &fake);
    fake.set_mode(Mode::CloseAfterRequest);
    let lost = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000031", "10")));
    assert_eq!(lost["outcomeUnknown"], true, "{lost}");
    assert_eq!(lost["ecrReferenceNo"], "12345678000031");
    let row = &call(&service, "/transactions/12345678000031", json!({}))["transactions"][0];
    assert_eq!(row["state"], "unknown");
    assert_eq!(service.health_status().unknown_outcomes, 1);

    // A retry while unknown sends nothing (the recovery kick may send a DUPLICATE, never a
    // second purchase).
    let sent = fake.received();
    let retry = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000031", "10")));
    assert_eq!(retry["statusCode"], "OUTCOME_UNKNOWN");
    assert_eq!(retry["outcomeUnknown"], true);
    wait_for("recovery", Duration::from_secs(5), || {
        call(&service, "/transactions/12345678000031", json!({}))["transactions"][0]["state"] == "approved"
    });
    assert!(fake.received() <= sent + 1, "at most the DUPLICATE was sent");
    let row = &call(&service, "/transactions/12345678000031", json!({}))["transactions"][0];
    assert_eq!(row["responseCode"], "000");
    assert_eq!(row["approvalCode"], "654321");
    assert!(row["resolvedBy"].as_str().unwrap().starts_with("12345678"));
    let replay = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000031", "10")));
    assert_eq!((replay["approved"].as_bool(), replay["replay"].as_bool()), (Some(true), Some(true)));
}

#[test]
fn an_unknown_outcome_the_terminal_never_saw_becomes_not_found_and_may_be_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    {
        let service = Service::open(config(dir.path())).unwrap();
        register(&service, &fake);
    }
    // A row left pending by a process that died before the frame left.
    {
        let (journal, _) = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
        let new = NewEntry {
            terminal: fake.target().key(),
            device: None,
            terminal_id: Some(TERMINAL_ID.into()),
            txn_type: TxnType::Purchase,
            ecr_reference: EcrReference::parse("12345678000041").unwrap(),
            amount: Some(crate::protocol::values::Amount::from_halalas(1000).unwrap()),
            date: "090625143000".into(),
            input_req_data: None,
            request_key: "0|090625143000;000000001000;1;12345678000041!".into(),
            idempotency_key: None,
        };
        assert!(matches!(journal.begin(&new, Duration::from_secs(60)).unwrap(), Begin::Started(_)));
    }
    let service = Service::open(config(dir.path())).unwrap();
    wait_for("recovery", Duration::from_secs(5), || {
        call(&service, "/transactions/12345678000041", json!({}))["transactions"][0]["state"] == "not_found"
    });
    let sent = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000041", "10")));
    assert_eq!(sent["approved"], true, "{sent}");
}

#[test]
fn a_restart_restores_registrations_and_connections_but_not_the_cleared_keymap() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    let key = fake.target().key();
    {
        let service = Service::open(config(dir.path())).unwrap();
        register(&service, &fake);
        call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000051", "10")));
    }
    let service = Service::open(config(dir.path())).unwrap();
    let status = call(&service, &format!("/registrationStatus?ip=127.0.0.1&port={}", fake.addr.port()), json!({}));
    assert_eq!(
        status,
        json!({"registered": true, "terminalId": TERMINAL_ID, "ip": "127.0.0.1", "port": fake.addr.port()})
    );
    wait_for("the restored connection", Duration::from_secs(5), || {
        call(&service, "/getExistingConnections", json!({}))[&key] == "Connected"
    });
    // No REGISTER needed: a purchase goes straight through.
    let sent = fake.received();
    let paid = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000052", "10")));
    assert_eq!(paid["approved"], true);
    assert_eq!(fake.received(), sent + 1);

    let refused = call(&service, "/clearTerminalData", json!({}));
    assert_eq!(refused["status"], "Error");
    let cleared = call(&service, "/clearTerminalData", json!({"confirmClear": true}));
    assert_eq!(cleared, json!({"status": "Success", "message": "Terminal data map cleared Successfully"}));
    let sent = fake.received();
    let unregistered = call(&service, "/performTransactionTCPIP", tcp(&fake, purchase("12345678000053", "10")));
    assert_eq!(unregistered["statusCode"], "REGISTER_REQUIRED");
    assert_eq!(fake.received(), sent, "refused before sending");
    drop(service);
    let service = Service::open(config(dir.path())).unwrap();
    assert_eq!(
        call(&service, "/registrationStatus", json!({"ip": "127.0.0.1", "port": fake.addr.port()}))["registered"],
        false
    );
    assert_eq!(call(&service, "/transactions", json!({}))["count"], 3, "the journal is kept");

    let gone =
        call(&service, "/tcp-ip/disconnect", json!({"tcpipcomData": {"ip": "127.0.0.1", "port": fake.addr.port()}}));
    assert_eq!(
        gone,
        json!({"Ip": "127.0.0.1", "portNumber": fake.addr.port(), "isConnected": "Connection Disconnected", "connectionStatus": false})
    );
    drop(service);
    let service = Service::open(config(dir.path())).unwrap();
    assert_eq!(call(&service, "/getExistingConnections", json!({})), json!({}));
}

#[test]
fn a_target_that_never_connected_is_not_listed_as_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    // A port where nothing listens (bound, then freed).
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = json!({"ip": "127.0.0.1", "port": port});
    let failed = call(
        &service,
        "/performTransactionTCPIP",
        json!({"tcpipcomData": nowhere, "paymentRequest": {"txnType": "REGISTER", "ecrReferenceNo": "12345678000001"}}),
    );
    assert_eq!(failed["statusCode"], "UnableToConnect", "{failed}");
    let connect = call(&service, "/tcp-ip/connect", json!({"tcpipcomData": nowhere}));
    assert_eq!(connect["connectionStatus"], false, "{connect}");
    assert_eq!(call(&service, "/getExistingConnections", json!({})), json!({}));
    assert_eq!(call(&service, "/api/health-status", json!({}))["tcpConnections"], json!({}));
    let all = call(&service, "/registrationStatus", json!({}));
    assert!(!all.to_string().contains(&format!("{port}")), "{all}");
    // One that connected is a known connection.
    let fake = Fake::start();
    register(&service, &fake);
    let connections = call(&service, "/getExistingConnections", json!({}));
    assert_eq!(connections, json!({fake.target().key(): "Connected"}));
}

#[test]
fn corrupt_state_files_are_reported_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let service = Service::open(config(dir.path())).unwrap();
        assert!(service.health_status().state_warnings.is_empty());
    }
    for name in ["journal.sqlite", "state.sqlite"] {
        let path = dir.path().join(name);
        let _ = std::fs::remove_file(dir.path().join(format!("{name}-wal")));
        let _ = std::fs::remove_file(dir.path().join(format!("{name}-shm")));
        std::fs::write(&path, vec![0x5Au8; 8192]).unwrap();
    }
    let service = Service::open(config(dir.path())).unwrap();
    let health = call(&service, "/api/health-status", json!({}));
    assert_eq!(health["status"], "UP");
    assert_eq!(health["stateWarnings"].as_array().unwrap().len(), 2, "{health}");
    assert_eq!(call(&service, "/transactions", json!({}))["count"], 0);
}

#[test]
fn every_endpoint_answers_json_in_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let ports = call(&service, "/get-com-ports", json!({}));
    for entry in ports.as_array().unwrap() {
        for field in ["device_id", "description", "port_number", "vendor_id", "product_id"] {
            assert!(entry.get(field).is_some(), "{field} in {entry}");
        }
    }
    let health = call(&service, "/api/health-status", json!({}));
    for field in [
        "status",
        "version",
        "uptime",
        "port",
        "memoryUsedMb",
        "memoryMaxMb",
        "jSerialCommAvailable",
        "availableComPorts",
        "comConnected",
        "activeComPort",
        "tcpConnections",
        "registeredTerminals",
    ] {
        assert!(health.get(field).is_some(), "{field} in {health}");
    }
    assert_eq!(health["port"], "9099");
    assert!(health["uptime"].as_str().unwrap().ends_with('m'));
    assert_eq!(
        call(&service, "/cancelTransaction", json!({})),
        json!({"status": "Info", "message": "No active transaction to cancel"})
    );
    assert_eq!(call(&service, "/com/disconnect", json!({})), json!(1));
    let no_com = call(&service, "/performTransactionCOM", purchase("12345678000061", "10"));
    assert_eq!(no_com["statusCode"], "UnableToConnect");
    let connect = call(
        &service,
        "/com/connect",
        json!({"port": "/nonexistent/tty", "baudRate": "115200", "parity": 0, "dataBits": 8, "stopBits": 1}),
    );
    assert_eq!(connect["success"], false);
    let bad = call(&service, "/com/connect", json!({"port": 3, "baudRate": "1200"}));
    assert!(bad["message"].as_str().unwrap().contains("baudRate"), "{bad}");
    let bad = call(&service, "/com/connect", json!({"port": 3, "parity": 7}));
    assert!(bad["message"].as_str().unwrap().contains("parity"), "{bad}");
    // A POS whose JSON writes every number as a double: the same settings, the same answer.
    let as_doubles = call(
        &service,
        "/com/connect",
        json!({"port": "/nonexistent/tty", "baudRate": 115200.0, "parity": 0.0, "dataBits": 8.0, "stopBits": 1.0}),
    );
    assert_eq!(as_doubles, connect, "{as_doubles}");
    let bad = call(&service, "/com/connect", json!({"port": 3, "dataBits": 7.5}));
    assert!(bad["message"].as_str().unwrap().contains("`dataBits` must be a whole number, got 7.5"), "{bad}");
    let bad = call(&service, "/com/connect", json!({"port": 3.5}));
    assert!(bad["message"].as_str().unwrap().contains("`port` must be a COM port number such as 3"), "{bad}");
    let status = call(&service, "/registrationStatus", json!({}));
    assert_eq!(status["registered"], false);
    assert!(status.get("terminalId").is_some());

    // Bad bodies name the field and use the middleware's codes.
    let r = service.dispatch(
        "/performTransactionTCPIP",
        r#"{"tcpipcomData":{"ip":"127.0.0.1","port":1},"paymentRequest":{"txnType":"PURCHASE","amount":{"x":1}}}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["statusCode"], "INVALID_AMOUNT");
    assert!(r.body["statusMessage"].as_str().unwrap().contains("paymentRequest.amount"), "{}", r.body);
    let r = call(&service, "/performTransactionTCPIP", tcp(&Fake::start(), purchase("0234", "10")));
    assert_eq!(r["statusCode"], "INVALID_ECR_REF");
    let r = call(&service, "/performTransactionTCPIP", tcp(&Fake::start(), purchase("12345678000062", "1.005")));
    assert_eq!(r["statusCode"], "INVALID_AMOUNT");
    let r = service.dispatch("/performTransactionTCPIP", "{not json");
    assert_eq!((r.status, r.body["statusCode"].as_str()), (400, Some("ERROR")));
    let r = service.dispatch("/performTransactionTCPIP", r#"{"paymentRequest":{}}"#);
    assert!(r.body["statusMessage"].as_str().unwrap().contains("tcpipcomData"), "{}", r.body);
    let r = service.dispatch("/nope", "");
    assert_eq!(r.status, 404);
    let r = service.dispatch("/transactions/12345678000099", "");
    assert_eq!((r.status, &r.body["count"]), (404, &json!(0)));
    let r = service.dispatch("/transactions?state=weird", "");
    assert_eq!(r.status, 400);
    let r = call(&service, "/nextEcrReference", json!({"cashRegisterNo": "12345678"}));
    assert_eq!(r["ecrReferenceNo"], "12345678000001");
    // A register number that no ECR reference can start with is bad input, not a failure.
    let r = service.dispatch("/nextEcrReference", r#"{"cashRegisterNo":"00000000"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn events_reach_the_listener_as_json_tagged_with_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::start();
    let service = Service::open(config(dir.path())).unwrap();
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = seen.clone();
    service
        .set_listener(Some(Arc::new(move |text: &str| sink.lock().unwrap().push(serde_json::from_str(text).unwrap()))));
    register(&service, &fake);
    let events = seen.lock().unwrap().clone();
    assert!(events.iter().any(|e| e["event"] == "registered" && e["terminal"] == fake.target().key()), "{events:?}");
    assert!(events.iter().all(|e| e["terminal"] == fake.target().key()));
}

#[test]
fn service_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Service>();
}

#[test]
fn errors_keep_their_source_and_their_message() {
    use std::error::Error as _;
    // A state directory that is a file: the I/O error itself is the source.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let error = Service::open(config(&file)).err().expect("a file is no state directory");
    assert!(matches!(error, ServiceError::StateDir { .. }), "{error:?}");
    let io = error.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the I/O error is the source");
    assert_eq!(error.to_string(), format!("state directory {}: {io}", file.display()));

    // The journal's errors say what SQLite said, and keep SQLite's error as their source.
    let sqlite = rusqlite::Error::InvalidQuery;
    let text = sqlite.to_string();
    let error = ServiceError::from(JournalError::new(sqlite));
    assert_eq!(error.to_string(), format!("journal: {text}"));
    let journal = error.source().expect("the journal error is the source");
    assert!(journal.is::<JournalError>());
    assert!(journal.source().is_some_and(|s| s.is::<rusqlite::Error>()));
}

#[test]
fn a_com_connect_that_opens_nothing_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let connect = |body: Value| call(&service, "/com/connect", body);
    assert_eq!(
        connect(json!({"port": " "})),
        json!({"success": false, "message": "port: give a COM port number such as 3, or a device path"})
    );
    assert_eq!(
        connect(json!({"port": 3, "baudRate": "fast"})),
        json!({"success": false, "message": "baudRate: must be a number such as \"115200\", got \"fast\""})
    );
    let missing = dir.path().join("no-such-device");
    assert_eq!(
        connect(json!({"port": missing.to_str().unwrap()}))["message"].as_str().unwrap(),
        format!("Could not open {}: {}", missing.display(), {
            let error =
                Terminal::serial(missing.display().to_string(), SerialSettings::default(), TerminalConfig::default())
                    .connect()
                    .unwrap_err();
            error.message()
        })
    );
    if !cfg!(windows) {
        let reply = connect(json!({"port": 4242}));
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.starts_with("Could not open COM4242: no serial port with number 4242 is connected (available: "),
            "{message}"
        );
        assert_eq!(reply["success"], false);
    }
    // Nothing opened: no COM connection.
    assert_eq!(
        call(&service, "/performTransactionCOM", purchase("12345678000001", "10.00"))["statusCode"],
        "UnableToConnect"
    );
}

/// The answers to malformed selectors, journal filters and ECR-reference requests, pinned whole:
/// `call.rs` reads these bodies through serde (`TerminalSelector`, `TransactionsQuery`,
/// `NextEcrReferenceRequest`), and these are the texts it has always answered.
#[test]
fn selectors_filters_and_register_numbers_answer_their_pinned_errors() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let error = |message: &str| json!({"status": "Error", "message": message});
    let nothing_to_cancel = json!({"status": "Info", "message": "No active transaction to cancel"});
    let cases: Vec<(&str, &str, u16, Value)> = vec![
        // Journal filters, in the query string or the body; text is trimmed, blanks and
        // non-text values are no filter.
        ("/transactions?limit=x", "", 400, error("`limit` must be a positive number, got \"x\"")),
        ("/transactions", r#"{"limit":-1}"#, 400, error("`limit` must be a positive number, got \"-1\"")),
        (
            "/transactions?from=nope",
            "",
            400,
            error("`from` must be an RFC 3339 time or a date YYYY-MM-DD, got \"nope\""),
        ),
        (
            "/transactions?to=2026-02-31",
            "",
            400,
            error("`to` must be an RFC 3339 time or a date YYYY-MM-DD, got \"2026-02-31\""),
        ),
        (
            "/transactions?state=weird",
            "",
            400,
            error("`state` must be pending, approved, declined, error, unknown, not_found or attention, got \"weird\""),
        ),
        ("/transactions", "[1]", 400, error("request body: must be a JSON object")),
        ("/transactions/12345678000099?limit=x", "", 400, error("`limit` must be a positive number, got \"x\"")),
        ("/transactions?state=%20Attention%20&limit=%205%20", "", 200, json!({"count": 0, "transactions": []})),
        (
            "/transactions?from=2026-01-01&to=2026-01-02T00:00:00Z&state=APPROVED&terminal=COM&ecrReferenceNo=1",
            "",
            200,
            json!({"count": 0, "transactions": []}),
        ),
        (
            "/transactions",
            r#"{"limit":true,"state":"  ","from":null,"to":[1],"terminal":{}}"#,
            200,
            json!({"count": 0, "transactions": []}),
        ),
        (
            "/transactions",
            r#"{"limit":3,"ecrReferenceNo":12345678000001}"#,
            200,
            json!({"count": 0, "transactions": []}),
        ),
        // The next ECR reference.
        ("/nextEcrReference", "{}", 400, error("`cashRegisterNo` (8 digits) is required")),
        ("/nextEcrReference", r#"{"cashRegisterNo":" "}"#, 400, error("`cashRegisterNo` (8 digits) is required")),
        ("/nextEcrReference", r#"{"cashRegisterNo":true}"#, 400, error("`cashRegisterNo` (8 digits) is required")),
        ("/nextEcrReference", "[1]", 400, error("`cashRegisterNo` (8 digits) is required")),
        (
            "/nextEcrReference",
            r#"{"cashRegisterNo":"1234"}"#,
            400,
            error("`cashRegisterNo` must be exactly 8 characters, got 4 (\"1234\")"),
        ),
        (
            "/nextEcrReference",
            r#"{"cashRegisterNo":"00000000"}"#,
            400,
            error("`cashRegisterNo` must not start with 0: ECR references begin with it"),
        ),
        ("/nextEcrReference", r#"{"cashRegisterNo":12345678}"#, 200, json!({"ecrReferenceNo": "12345678000001"})),
        ("/nextEcrReference?cashRegisterNo=%2012345678", "", 200, json!({"ecrReferenceNo": "12345678000002"})),
        // A POS whose JSON writes every number as a double.
        ("/nextEcrReference", r#"{"cashRegisterNo":12345678.0}"#, 200, json!({"ecrReferenceNo": "12345678000003"})),
        // Terminal selectors.
        ("/tcp-ip/connect", "{}", 400, error("request body: `tcpipcomData` with `ip` and `port` is required")),
        ("/tcp-ip/disconnect", "[1]", 400, error("request body: must be a JSON object")),
        (
            "/tcp-ip/connect",
            r#"{"tcpipcomData":{"ip":"127.0.0.1","port":"x"}}"#,
            400,
            error("`tcpipcomData.port` must be a port number 1-65535, got \"x\""),
        ),
        (
            "/tcp-ip/connect",
            r#"{"tcpipcomData":{"ip":"127.0.0.1","port":0}}"#,
            400,
            error("`tcpipcomData.port` must be a port number 1-65535, got 0"),
        ),
        (
            "/tcp-ip/connect",
            r#"{"tcpipcomData":{"ip":"127.0.0.1","port":8888.5}}"#,
            400,
            error("`tcpipcomData.port` must be a port number 1-65535, got 8888.5"),
        ),
        (
            "/tcp-ip/connect",
            r#"{"tcpipcomData":{"ip":" ","port":1}}"#,
            400,
            error("`tcpipcomData.ip` must be an IP address or host name, got \"\""),
        ),
        ("/tcp-ip/connect", r#"{"tcpipcomData":{"port":1}}"#, 400, error("`tcpipcomData.` missing field `ip`")),
        (
            "/tcp-ip/connect",
            r#"{"tcpipcomData":"x"}"#,
            400,
            error("`tcpipcomData.` invalid type: string \"x\", expected struct TcpTarget"),
        ),
        ("/tcp-ip/connect", r#"{"ip":"127.0.0.1"}"#, 400, error("`port` must be a port number 1-65535, got null")),
        ("/tcp-ip/connect", r#"{"port":5}"#, 400, error("`ip` invalid type: null, expected a string")),
        ("/tcp-ip/connect", r#"{"ip":null}"#, 400, error("`ip` invalid type: null, expected a string")),
        ("/cancelTransaction", "5", 400, error("request body: must be a JSON object")),
        (
            "/cancelTransaction",
            r#"{"port":"x","com":"false"}"#,
            400,
            error("`ip` invalid type: null, expected a string"),
        ),
        ("/cancelTransaction", r#"{"com":"false"}"#, 200, nothing_to_cancel.clone()),
        ("/cancelTransaction", r#"{"com":0,"port":"x"}"#, 200, nothing_to_cancel.clone()),
        (
            "/cancelTransaction",
            r#"{"com":" COM3 ","tcpipcomData":{"ip":"127.0.0.1","port":"x"}}"#,
            200,
            nothing_to_cancel,
        ),
        ("/registrationStatus?port=x&ip=127.0.0.1", "", 400, error("`port` must be a port number 1-65535, got \"x\"")),
        (
            "/registrationStatus?com=0",
            "",
            200,
            json!({"ip": null, "port": null, "registered": false, "terminalId": null, "terminals": []}),
        ),
    ];
    let mut wrong = Vec::new();
    for (path, body, status, answer) in cases {
        let reply = service.dispatch(path, body);
        if (reply.status, &reply.body) != (status, &answer) {
            wrong.push(format!("{path} {body}: {} {}", reply.status, reply.body));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `RegistrationQuery` and `TransactionParameters` document query parameters that `call.rs`
/// reads as a `TerminalSelector` and a `TransactionsQuery` (the query merged into the body):
/// each documented parameter is a field of the type that reads it. (`cargo test --workspace`
/// has the feature, through workspace-hack.)
#[cfg(feature = "openapi")]
#[test]
fn documented_query_parameters_are_fields_of_the_types_that_read_them() {
    use utoipa::IntoParams;
    use utoipa::openapi::path::ParameterIn;
    fn query_names<T: IntoParams>() -> Vec<String> {
        T::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .filter(|p| p.parameter_in == ParameterIn::Query)
            .map(|p| p.name)
            .collect()
    }
    let selector = serde_json::to_value(<TerminalSelector as utoipa::PartialSchema>::schema()).unwrap();
    for name in query_names::<RegistrationQuery>() {
        assert!(selector["properties"].get(&name).is_some(), "TerminalSelector has no {name}: {selector}");
    }
    let filters = query_names::<TransactionsQuery>();
    let parameters = query_names::<TransactionParameters>();
    assert!(!parameters.is_empty());
    for name in parameters {
        assert!(filters.contains(&name), "TransactionsQuery has no {name}: {filters:?}");
    }
}
