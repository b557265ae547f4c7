//! The bindings' `Middleware` (Python, Kotlin) called from Rust against the simulator: after
//! `cancel()`, a call whose request has not been sent yet is never sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nami::uniffi_api::{Middleware, MiddlewareOptions, TerminalConfig};
use nami_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

#[test]
fn cancel_means_a_call_still_waiting_to_be_sent_is_never_sent() {
    let sim = Simulator::start(SimConfig { card_tap: true, ..SimConfig::default() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // With wait_when_busy a second call waits for the terminal instead of TERMINAL_BUSY.
    let options = MiddlewareOptions {
        terminal: Some(TerminalConfig { wait_when_busy: Some(true), ..TerminalConfig::default() }),
        ..MiddlewareOptions::default()
    };
    let middleware: Arc<Middleware> = Middleware::open(dir.path().display().to_string(), Some(options)).unwrap();
    let tcp = |payment: Value| {
        json!({"tcpipcomData": {"ip": "127.0.0.1", "port": sim.addr().port()}, "paymentRequest": payment}).to_string()
    };
    let call = |payment: Value| -> Value {
        serde_json::from_str(&middleware.call("/performTransactionTCPIP".into(), Some(tcp(payment)))).unwrap()
    };
    assert_eq!(call(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000000"}))["statusCode"], "200");
    let purchase = |reference: &str| json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": reference});
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| call(purchase("12345678000901")));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sim.waiting_for_card() {
            assert!(Instant::now() < deadline, "the card wait");
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = scope.spawn(|| call(purchase("12345678000902")));
        std::thread::sleep(Duration::from_millis(300));
        assert!(middleware.cancel(), "a call was running");
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!((first["statusCode"].as_str(), second["statusCode"].as_str()), (Some("CANCELLED"), Some("CANCELLED")));
    std::thread::sleep(Duration::from_millis(300));
    assert!(sim.journal().iter().all(|t| t.ecr_reference != "12345678000902"), "the second purchase was never sent");
    // Calls after the cancel are served.
    let later = call(json!({"txnType": "CHECK_STATUS", "ecrReferenceNo": "12345678000903"}));
    assert_eq!(later["statusCode"], "200", "{later}");
}
