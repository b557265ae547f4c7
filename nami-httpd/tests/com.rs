//! The real `nami-httpd` binary on the COM path: a `nami-sim` terminal behind a pseudo-terminal
//! in this test process. Alone in its file (its own process): no other test spawns a daemon
//! while the pty is open, so the pty is never inherited by a child and unplugging it is seen.

#![cfg(unix)]

mod schema;

use std::time::Duration;

use nami_sim::{SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, state_dir, wait_for};
use nami_test_kit::http::{Answer, client, get, post};
use schema::conforms;
use serde_json::{Value, json};

fn transaction(answer: &Answer) -> &Value {
    conforms("TransactionResponse", &answer.body);
    &answer.body
}

#[test]
fn the_com_path_runs_over_a_pty_and_reports_a_pulled_cable() {
    // The daemon first, so that nothing of the pty could reach the child process even if the
    // simulator's close-on-exec ever broke: a leaked master would hide the pulled cable.
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &[]);
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let pty = sim.open_pty().unwrap();
    let path = pty.path().display().to_string();
    let http = client();
    let com = |payment: Value| post(&http, &daemon.at("/performTransactionCOM"), &payment);

    let not_connected = com(json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000201"}));
    assert_eq!(transaction(&not_connected)["statusCode"], "UnableToConnect");
    let bad_port = post(&http, &daemon.at("/com/connect"), &json!({"baudRate": "115200"}));
    conforms("ComConnectResponse", &bad_port.body);
    assert_eq!((bad_port.status, bad_port.body["success"].as_bool()), (400, Some(false)));
    assert!(bad_port.body["message"].as_str().unwrap().contains("port"), "{:?}", bad_port.body);

    let connected = post(
        &http,
        &daemon.at("/com/connect"),
        &json!({"port": path, "baudRate": "115200", "parity": 0, "dataBits": 8, "stopBits": 1}),
    );
    assert_eq!(connected.body, json!({"success": true, "message": format!("Connected to {path} at 115200 baud")}));
    let register = com(json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": "12345678000202"}));
    assert_eq!(transaction(&register)["responseCode"], "800", "{:?}", register.body);
    let paid = com(
        json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000203", "jsonResponse": true}),
    );
    let body = transaction(&paid);
    assert_eq!((body["statusCode"].as_str(), body["approved"].as_bool()), (Some("200"), Some(true)), "{body}");
    assert!(body.get("ipAddress").is_none(), "no TCP fields on the COM path");

    let status = get(&http, &daemon.at("/registrationStatus?com=true"));
    assert_eq!(
        (status.body["registered"].as_bool(), status.body["comPort"].as_str()),
        (Some(true), Some(path.as_str()))
    );
    let health = get(&http, &daemon.at("/api/health-status"));
    conforms("HealthStatus", &health.body);
    assert_eq!(
        (health.body["comConnected"].as_bool(), health.body["activeComPort"].as_str()),
        (Some(true), Some(path.as_str()))
    );

    // The cable is pulled while the terminal waits for the card.
    sim.set_card_tap(true);
    let pulled = std::thread::scope(|scope| {
        let waiting =
            scope.spawn(|| com(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000204"})));
        wait_for("the card wait", Duration::from_secs(10), || sim.waiting_for_card());
        pty.unplug();
        waiting.join().unwrap()
    });
    let body = transaction(&pulled);
    assert_eq!(body["statusCode"], "CableDisconnected", "{body}");
    assert_eq!(body["outcomeUnknown"], true, "the request was sent: its outcome is unknown");

    assert_eq!(post(&http, &daemon.at("/com/disconnect"), &Value::Null).body, json!(0));
    assert_eq!(post(&http, &daemon.at("/com/disconnect"), &Value::Null).body, json!(1));
    sim.shutdown();
}
