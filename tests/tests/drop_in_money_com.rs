//! Drop-in money safety on the COM path: the real `nami-httpd` binary, a `nami-sim` terminal
//! behind a pseudo-terminal in this test process, a POS posting the documented bodies. The
//! simulator's journal is the truth of what was charged. The tests of this file run one at a
//! time, each daemon started before its pty is opened (see `nami-httpd/tests/com.rs`).

#![cfg(unix)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, temp_dir, wait_for};
use nami_test_kit::http::Http;
use serde_json::{Value, json};

/// One pty at a time in this process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A daemon connected over a pty to a registered simulator.
struct Rig {
    sim: Simulator,
    _pty: nami_sim::SimPty,
    path: String,
    http: Http,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = temp_dir("nami-drop-in-com-");
        let daemon = Daemon::start(dir.path(), &["--card-present-timeout-secs", "20", "--admin-timeout-secs", "20"]);
        let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
        let pty = sim.open_pty().expect("pty");
        let path = pty.path().display().to_string();
        let http = daemon.http();
        let rig = Rig { sim, _pty: pty, path, http, daemon, _dir: dir };
        rig.connect();
        let registered =
            rig.com(json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": "12345678901234"}));
        assert_eq!(registered["statusCode"], "200", "REGISTER: {registered}");
        rig
    }

    fn connect(&self) {
        let connected = self.http.post(
            "/com/connect",
            &json!({"port": self.path, "baudRate": "115200", "parity": 0, "dataBits": 8, "stopBits": 1}),
        );
        assert_eq!(connected.body["success"], true, "{:?}", connected.body);
    }

    fn com(&self, payment: Value) -> Value {
        self.http.com(payment)
    }

    fn charges(&self, reference: &str) -> usize {
        self.sim.journal().iter().filter(|t| t.ecr_reference == reference).count()
    }
}

fn purchase(reference: &str, date: &str) -> Value {
    json!({"txnType": "PURCHASE", "amount": "10.00", "date": date, "ecrReferenceNo": reference, "jsonResponse": true})
}

#[test]
fn a_second_com_purchase_while_one_runs_gets_terminal_busy_at_once_and_is_never_sent() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rig = Rig::new();
    rig.sim.set_card_tap(true);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| rig.com(purchase("12345678000101", "090625143000")));
        wait_for("the card wait", Duration::from_secs(10), || rig.sim.waiting_for_card());
        let sent = rig.sim.requests_received();
        let started = Instant::now();
        let second = rig.com(purchase("12345678000102", "090625143001"));
        assert_eq!(second["statusCode"], "TERMINAL_BUSY", "{second}");
        assert!(started.elapsed() < Duration::from_secs(2), "answered at once, took {:?}", started.elapsed());
        rig.sim.tap_card();
        let first = first.join().unwrap();
        assert_eq!(first["approved"], true, "{first}");
        // Long after the first one ended, the second was still never sent.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(rig.sim.requests_received(), sent, "only the first purchase reached the terminal");
    });
    assert_eq!((rig.charges("12345678000101"), rig.charges("12345678000102")), (1, 0));
}

#[test]
fn a_request_whose_client_hung_up_while_it_waited_is_never_sent() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rig = Rig::new();
    // Connecting again re-registers silently in the background; the terminal takes 3 s to
    // answer that REGISTER, and COM transactions wait for it.
    rig.sim.set_fault(Fault::Delay(Duration::from_secs(3)), FaultScope::Next(1));
    let sent = rig.sim.requests_received();
    rig.connect();
    // A POS that gives up after 300 ms and closes its socket.
    let impatient = Http::new(&format!("http://127.0.0.1:{}", rig.daemon.port), Duration::from_millis(300));
    let gave_up = impatient.try_post("/performTransactionCOM", &purchase("12345678000201", "090625150000"));
    assert!(gave_up.is_err(), "the client hung up before an answer: {gave_up:?}");
    wait_for("the silent re-register", Duration::from_secs(10), || rig.sim.requests_received() > sent);
    // Time for the abandoned request to have gone out, had it been sent.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(rig.charges("12345678000201"), 0, "the abandoned sale was never sent");
    assert_eq!(rig.sim.requests_received(), sent + 1, "only the silent REGISTER reached the terminal");
    let row = &rig.http.journal_of("12345678000201")[0];
    assert_eq!((row["state"].as_str(), row["statusCode"].as_str()), (Some("error"), Some("CANCELLED")), "{row}");
    // The terminal is free for the next sale.
    let next = rig.com(purchase("12345678000202", "090625150100"));
    assert_eq!(next["approved"], true, "{next}");
}

#[test]
fn a_failed_com_connect_leaves_the_working_connection_as_it_was() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rig = Rig::new();
    for bad_port in [json!("/dev/nami-no-such-device"), json!(97)] {
        let failed = rig.http.post(
            "/com/connect",
            &json!({"port": bad_port, "baudRate": "115200", "parity": 0, "dataBits": 8, "stopBits": 1}),
        );
        assert_eq!(failed.body["success"], false, "{bad_port}: {:?}", failed.body);
    }
    let health = rig.http.get("/api/health-status").body;
    assert_eq!(
        (health["comConnected"].as_bool(), health["activeComPort"].as_str()),
        (Some(true), Some(rig.path.as_str())),
        "{health}"
    );
    let paid = rig.com(purchase("12345678000301", "090625160000"));
    assert_eq!(paid["approved"], true, "the COM connection still works: {paid}");
}

#[test]
fn registration_status_keeps_the_documented_fields_for_the_com_connection() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rig = Rig::new();
    for path in ["/registrationStatus?com=true", "/registrationStatus"] {
        let status = rig.http.get(path).body;
        for field in ["registered", "terminalId", "ip", "port"] {
            assert!(status.get(field).is_some(), "{path}: `{field}` is documented: {status}");
        }
        assert_eq!(
            (status["registered"].as_bool(), status["terminalId"].as_str(), status["comPort"].as_str()),
            (Some(true), Some("8184000200000077"), Some(rig.path.as_str())),
            "{path}: {status}"
        );
    }
}
