//! The serial cable pulled and plugged back, through the real daemon's COM path: the terminal
//! is a `nami-sim` behind a pseudo-terminal; unplugging removes the pty (the client's reads and
//! writes fail, the path disappears), plugging creates a new pair at the same path.
//!
//! `nami-httpd/tests/com.rs` proves the pull (CableDisconnected); `service_com.rs` the healing
//! through the library. Here: the whole cycle over HTTP, and nothing lost on the way.

#![cfg(unix)]

use std::time::{Duration, Instant};

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, ecr, temp_dir, wait_for};
use serde_json::{Value, json};

#[test]
fn a_pulled_cable_gives_cable_disconnected_and_the_daemon_heals_by_itself_when_it_is_plugged_back() {
    let dir = temp_dir("nami-reliability-serial-");
    let daemon = Daemon::start(dir.path(), &["--card-present-timeout-secs", "15", "--admin-timeout-secs", "5"]);
    let http = daemon.http();
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let pty = sim.open_pty().unwrap();
    let path = pty.path().display().to_string();
    let purchase =
        |reference: &str| http.com(json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": reference}));
    let state = |reference: &str| {
        http.journal_of(reference).first().and_then(|e| e["state"].as_str()).unwrap_or("none").to_owned()
    };

    let connected = http.post("/com/connect", &json!({"port": path}));
    assert_eq!(connected.body["success"], true, "{:?}", connected.body);
    let registered = http.com(json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
    assert_eq!(registered["responseCode"], "800", "{registered}");
    assert_eq!(purchase(&ecr())["approved"], true);

    // The cable is pulled while the terminal is working on a purchase it has already charged.
    sim.set_fault(Fault::Delay(Duration::from_millis(2000)), FaultScope::Next(1));
    let in_flight = ecr();
    let pulled = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| purchase(&in_flight));
        wait_for("the terminal to charge the purchase", Duration::from_secs(10), || {
            sim.journal().iter().any(|t| t.ecr_reference == in_flight)
        });
        pty.unplug();
        let started = Instant::now();
        let reply = waiting.join().unwrap();
        // Seen within about a second; the margin is for a loaded machine.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "seen at once, not at the deadline: {:?}",
            started.elapsed()
        );
        reply
    });
    assert_eq!(pulled["statusCode"], "CableDisconnected", "{pulled}");
    assert_eq!(pulled["outcomeUnknown"], true, "{pulled}");
    assert_eq!(state(&in_flight), "unknown", "never shown as failed");

    // While it is out: answers at once, nothing hangs.
    let started = Instant::now();
    let out = purchase(&ecr());
    assert!(matches!(out["statusCode"].as_str(), Some("CableDisconnected" | "UnableToConnect")), "{out}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let reconnecting = format!("Reconnecting to {path}...");
    wait_for("the reconnecting entry", Duration::from_secs(10), || {
        http.get("/get-com-ports")
            .body
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["description"] == reconnecting.as_str())
    });

    // Plugged back (a new pty at the same path, the terminal rebooted meanwhile): the daemon
    // reopens it and registers again silently; no /com/connect, no REGISTER from the POS.
    sim.reboot();
    pty.plug().unwrap();
    wait_for("the silent re-register", Duration::from_secs(15), || sim.is_registered());
    let after = ecr();
    let paid = purchase(&after);
    assert_eq!(paid["approved"], true, "works again by itself: {paid}");

    // The purchase in flight at the pull is found again (DUPLICATE), never charged twice.
    wait_for("recovery of the purchase in flight", Duration::from_secs(30), || {
        let again: Value = purchase(&in_flight);
        assert!(again["outcomeUnknown"] == true || again["replay"] == true, "answered from the journal: {again}");
        state(&in_flight) == "approved"
    });
    let charges = sim.journal().iter().filter(|t| t.ecr_reference == in_flight).count();
    assert_eq!(charges, 1, "charged once");
    assert_eq!(http.post("/com/disconnect", &Value::Null).body, json!(0));
    sim.shutdown();
}
