//! The middleware service's COM path against the simulator's pseudo-terminal: connect by device
//! path, transactions, a pulled cable that heals itself, and a restart that re-opens the port and
//! re-registers silently.

#![cfg(unix)]

mod service_support;

use std::time::Duration;

use nami_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use service_support::{StateDir, call, config, open, purchase, wait_for};

fn connect(service: &nami_sdk::Service, path: &str) -> Value {
    call(
        service,
        "/com/connect",
        json!({"port": path, "baudRate": "115200", "parity": 0, "dataBits": 8, "stopBits": 1}),
    )
}

fn com(service: &nami_sdk::Service, payment: Value) -> Value {
    call(service, "/performTransactionCOM", payment)
}

fn register(service: &nami_sdk::Service) {
    let reply = com(service, json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000000"}));
    assert_eq!(reply["statusCode"], "200", "{reply}");
}

#[test]
fn com_transactions_run_over_a_pty_after_connect_and_register() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let pty = sim.open_pty().unwrap();
    let path = pty.path().to_string_lossy().into_owned();
    let dir = StateDir::new();
    let service = open(&dir);
    let connected = connect(&service, &path);
    assert_eq!(connected, json!({"success": true, "message": format!("Connected to {path} at 115200 baud")}));
    let unregistered = com(&service, purchase("12345678000901", "10.00"));
    assert_eq!(unregistered["statusCode"], "REGISTER_REQUIRED");
    register(&service);
    let paid = com(&service, purchase("12345678000902", "10.00"));
    assert_eq!((paid["statusCode"].as_str(), paid["approved"].as_bool()), (Some("200"), Some(true)), "{paid}");
    assert!(paid.get("ipAddress").is_none(), "TCP fields only on the TCP path");
    let health = call(&service, "/api/health-status", Value::Null);
    assert_eq!((health["comConnected"].as_bool(), health["activeComPort"].as_str()), (Some(true), Some(path.as_str())));
    assert_eq!(call(&service, "/registrationStatus", json!({"com": true}))["registered"], true);
    assert_eq!(call(&service, "/com/disconnect", Value::Null), json!(0));
    assert_eq!(com(&service, purchase("12345678000903", "10.00"))["statusCode"], "UnableToConnect");
    sim.shutdown();
}

#[test]
fn a_pulled_cable_is_listed_as_reconnecting_and_heals_with_a_silent_register() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let pty = sim.open_pty().unwrap();
    let path = pty.path().to_string_lossy().into_owned();
    let dir = StateDir::new();
    let service = open(&dir);
    assert_eq!(connect(&service, &path)["success"], true);
    register(&service);
    // The terminal restarts while the cable is out: it forgets the registration.
    pty.unplug();
    sim.reboot();
    let reconnecting = format!("Reconnecting to {path}...");
    wait_for("the reconnecting entry", Duration::from_secs(10), || {
        call(&service, "/get-com-ports", Value::Null)
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["description"] == reconnecting.as_str() && e["device_id"] == path.as_str())
    });
    pty.plug().unwrap();
    wait_for("the silent re-register", Duration::from_secs(10), || sim.is_registered());
    let paid = com(&service, purchase("12345678001001", "10.00"));
    assert_eq!(paid["approved"], true, "no REGISTER_REQUIRED after a reconnect: {paid}");
    sim.shutdown();
}

#[test]
fn a_restart_reopens_the_com_port_and_re_registers_silently() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let pty = sim.open_pty().unwrap();
    let path = pty.path().to_string_lossy().into_owned();
    let dir = StateDir::new();
    {
        let service = open(&dir);
        assert_eq!(connect(&service, &path)["success"], true);
        register(&service);
    }
    sim.reboot();
    assert!(!sim.is_registered());
    let service = open(&dir);
    assert_eq!(call(&service, "/registrationStatus", json!({"com": true}))["registered"], true, "from the keymap");
    wait_for("the silent re-register", Duration::from_secs(10), || sim.is_registered());
    let paid = com(&service, purchase("12345678001101", "10.00"));
    assert_eq!(paid["approved"], true, "{paid}");
    let health = call(&service, "/api/health-status", Value::Null);
    assert_eq!(health["activeComPort"], path.as_str());
    sim.shutdown();
}

#[test]
fn a_device_gone_longer_than_the_reconnect_timeout_is_listed_as_last_seen() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let pty = sim.open_pty().unwrap();
    let path = pty.path().to_string_lossy().into_owned();
    let dir = StateDir::new();
    let mut config = config(&dir);
    config.com_reconnect_timeout = Duration::ZERO;
    let service = nami_sdk::Service::open(config).unwrap();
    assert_eq!(connect(&service, &path)["success"], true);
    pty.unplug();
    let expected = json!({
        "device_id": path,
        "description": format!("Disconnected \u{2014} last seen on {path}"),
        "port_number": null,
        "vendor_id": 0,
        "product_id": 0
    });
    wait_for("the last-seen entry", Duration::from_secs(10), || {
        call(&service, "/get-com-ports", Value::Null).as_array().unwrap().contains(&expected)
    });
    sim.shutdown();
}
