//! The middleware service against the simulator over TCP: nothing lost, nothing charged twice,
//! state that survives a restart (and a kill), and the JSON of the seed documents.

mod service_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use serde_json::{Value, json};
use service_support::{
    StateDir, assert_shape, call, charges, entry, open, pay_tcp, purchase, register_tcp, tcp_body, wait_for,
};

fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).expect("simulator starts")
}

#[test]
fn killing_the_process_mid_purchase_leaves_an_unknown_entry_that_is_recovered_as_approved_after_restart() {
    let sim = sim();
    let dir = StateDir::new();
    {
        let service = open(&dir);
        register_tcp(&service, &sim);
    }
    // The terminal carries the purchase out but its reply never comes: the process waits.
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let ecr = "12345678000101";
    let mut victim = Command::new(env!("CARGO_BIN_EXE_service_victim"))
        .args([dir.path().to_str().unwrap(), &sim.addr().to_string(), ecr, "10.00"])
        .stdout(Stdio::null())
        .spawn()
        .expect("victim starts");
    wait_for("the terminal to process the purchase", Duration::from_secs(15), || charges(&sim, ecr) == 1);
    victim.kill().expect("SIGKILL");
    victim.wait().unwrap();
    assert!(sim.journal().iter().any(|t| t.ecr_reference == ecr && t.approved));

    // The terminal was also reset while the service was down: recovery cannot ask it yet.
    sim.reboot();
    let service = open(&dir);
    let row = entry(&service, ecr);
    assert_eq!(row["state"], "unknown", "never shown as failed: {row}");
    assert_eq!(call(&service, "/api/health-status", Value::Null)["unknownOutcomes"], 1);
    // Recovery tried, the terminal asked for REGISTER (1003), which dropped the registration.
    let target = json!({"ip": "127.0.0.1", "port": sim.addr().port()});
    wait_for("recovery to meet REGISTER_REQUIRED", Duration::from_secs(10), || {
        call(&service, "/registrationStatus", target.clone())["registered"] == false
    });
    // A retry now must not charge again.
    let retry = pay_tcp(&service, &sim, ecr, "10.00");
    assert_eq!(retry["statusCode"], "OUTCOME_UNKNOWN", "{retry}");
    assert_eq!(retry["outcomeUnknown"], true);
    assert_eq!(entry(&service, ecr)["state"], "unknown");

    register_tcp(&service, &sim);
    wait_for("recovery with DUPLICATE", Duration::from_secs(10), || entry(&service, ecr)["state"] == "approved");
    let row = entry(&service, ecr);
    assert_eq!(row["responseCode"], "000");
    assert_eq!(row["cardNumber"], "588845******1234");
    assert!(row["resolvedBy"].is_string());
    let replay = pay_tcp(&service, &sim, ecr, "10.00");
    assert_eq!((replay["approved"].as_bool(), replay["replay"].as_bool()), (Some(true), Some(true)), "{replay}");
    assert_eq!(charges(&sim, ecr), 1, "charged exactly once");
    sim.shutdown();
}

#[test]
fn a_replayed_ecr_reference_sends_no_frame_to_the_terminal() {
    let sim = sim();
    let dir = StateDir::new();
    let service = open(&dir);
    register_tcp(&service, &sim);
    let first = pay_tcp(&service, &sim, "12345678000201", "10.00");
    assert_eq!(first["approved"], true, "{first}");
    let frames = sim.requests_received();
    let again = pay_tcp(&service, &sim, "12345678000201", "10.00");
    assert_eq!(sim.requests_received(), frames, "no frame was sent");
    assert_eq!(again["replay"], true);
    assert_eq!(again["transaction"], first["transaction"]);
    assert_eq!(again["signature"], first["signature"]);
    // A declined result is final too.
    let declined = pay_tcp(&service, &sim, "12345678000202", "10.51");
    assert_eq!((declined["approved"].as_bool(), declined["responseCode"].as_str()), (Some(false), Some("116")));
    let frames = sim.requests_received();
    let mut body = purchase("12345678000202", "10.51");
    body["jsonResponse"] = json!(true);
    let again = call(&service, "/performTransactionTCPIP", tcp_body(&sim, body));
    assert_eq!(sim.requests_received(), frames);
    assert_eq!(again["parsedTransaction"]["responseCode"], "116", "{again}");
    assert_eq!(charges(&sim, "12345678000201") + charges(&sim, "12345678000202"), 2);
    sim.shutdown();
}

#[test]
fn a_second_request_for_a_reference_in_flight_gets_terminal_busy_and_sends_nothing() {
    let sim = Simulator::start(SimConfig { card_tap: true, ..SimConfig::default() }).unwrap();
    let dir = StateDir::new();
    let service = std::sync::Arc::new(open(&dir));
    register_tcp(&service, &sim);
    let first = {
        let (service, sim) = (service.clone(), sim.clone());
        std::thread::spawn(move || pay_tcp(&service, &sim, "12345678000301", "10.00"))
    };
    wait_for("the card wait", Duration::from_secs(10), || sim.waiting_for_card());
    let frames = sim.requests_received();
    let busy = pay_tcp(&service, &sim, "12345678000301", "10.00");
    assert_eq!(busy["statusCode"], "TERMINAL_BUSY", "{busy}");
    assert_eq!(sim.requests_received(), frames, "nothing was sent");
    assert_eq!(entry(&service, "12345678000301")["state"], "pending");
    sim.tap_card();
    let first = first.join().unwrap();
    assert_eq!(first["approved"], true, "{first}");
    assert_eq!(charges(&sim, "12345678000301"), 1);
    sim.shutdown();
}

#[test]
fn a_reply_lost_after_the_request_is_unknown_then_resolved_without_a_second_charge() {
    let sim = sim();
    let dir = StateDir::new();
    let service = open(&dir);
    register_tcp(&service, &sim);
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let lost = pay_tcp(&service, &sim, "12345678000401", "25.00");
    assert_eq!(lost["outcomeUnknown"], true, "{lost}");
    assert_eq!(lost["ecrReferenceNo"], "12345678000401");
    assert_eq!(lost["approved"], false);
    wait_for("recovery", Duration::from_secs(10), || entry(&service, "12345678000401")["state"] == "approved");
    let replay = pay_tcp(&service, &sim, "12345678000401", "25.00");
    assert_eq!(replay["replay"], true);
    assert_eq!(charges(&sim, "12345678000401"), 1);
    sim.shutdown();
}

#[test]
fn a_restart_restores_registrations_and_connections_without_a_new_register() {
    let sim = sim();
    let dir = StateDir::new();
    let key = format!("127.0.0.1:{}", sim.addr().port());
    {
        let service = open(&dir);
        register_tcp(&service, &sim);
        assert_eq!(pay_tcp(&service, &sim, "12345678000501", "10.00")["approved"], true);
    }
    let frames = sim.requests_received();
    let service = open(&dir);
    let status = call(&service, &format!("/registrationStatus?ip=127.0.0.1&port={}", sim.addr().port()), Value::Null);
    assert_eq!(
        status,
        json!({"registered": true, "terminalId": "8184000200000077", "ip": "127.0.0.1", "port": sim.addr().port()})
    );
    wait_for("the restored connection", Duration::from_secs(10), || {
        call(&service, "/getExistingConnections", Value::Null)[&key] == "Connected"
    });
    let health = call(&service, "/api/health-status", Value::Null);
    assert_eq!(health["registeredTerminals"][0]["terminalId"], "8184000200000077");
    assert_eq!(health["tcpConnections"][&key], "Connected");
    assert_eq!(sim.requests_received(), frames, "no REGISTER was sent");
    let paid = pay_tcp(&service, &sim, "12345678000502", "10.00");
    assert_eq!(paid["approved"], true, "{paid}");
    assert_eq!(sim.requests_received(), frames + 1);
    sim.shutdown();
}

#[test]
fn clear_terminal_data_forgets_registrations_but_keeps_the_journal() {
    let sim = sim();
    let dir = StateDir::new();
    {
        let service = open(&dir);
        register_tcp(&service, &sim);
        pay_tcp(&service, &sim, "12345678000601", "10.00");
        let cleared = call(&service, "/clearTerminalData", json!({"confirmClear": true}));
        assert_eq!(cleared, json!({"status": "Success", "message": "Terminal data map cleared Successfully"}));
        let frames = sim.requests_received();
        let refused = pay_tcp(&service, &sim, "12345678000602", "10.00");
        assert_eq!(refused["statusCode"], "REGISTER_REQUIRED", "{refused}");
        assert_eq!(sim.requests_received(), frames, "refused before sending");
    }
    let service = open(&dir);
    let status = call(&service, "/registrationStatus", json!({"ip": "127.0.0.1", "port": sim.addr().port()}));
    assert_eq!(status["registered"], false, "cleared on disk too");
    assert_eq!(entry(&service, "12345678000601")["state"], "approved", "the journal is kept");
    sim.shutdown();
}

#[test]
fn corrupt_state_files_are_reported_moved_aside_and_rebuilt() {
    let sim = sim();
    let dir = StateDir::new();
    {
        let service = open(&dir);
        register_tcp(&service, &sim);
        pay_tcp(&service, &sim, "12345678000701", "10.00");
    }
    for name in ["journal.sqlite", "state.sqlite"] {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("{name}{suffix}")));
        }
        std::fs::write(dir.path().join(name), b"garbage, not a database ".repeat(400)).unwrap();
    }
    let service = open(&dir);
    let health = call(&service, "/api/health-status", Value::Null);
    assert_eq!(health["status"], "UP");
    let warnings = health["stateWarnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{health}");
    assert!(warnings.iter().all(|w| w.as_str().unwrap().contains("moved aside")));
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(aside, 2, "both kept for forensics");
    // Rebuilt empty, and working.
    assert_eq!(call(&service, "/transactions", Value::Null)["count"], 0);
    register_tcp(&service, &sim);
    assert_eq!(pay_tcp(&service, &sim, "12345678000702", "10.00")["approved"], true);
    sim.shutdown();
}

#[test]
fn every_endpoint_answers_in_the_shape_of_the_seed_examples() {
    let sim = sim();
    let dir = StateDir::new();
    let service = open(&dir);
    let port = sim.addr().port();

    // The examples of nami-local-api-middleware-api-reference.txt.
    // device_id and port_number are strings, or null in the "No devices connected" entry.
    let com_ports = json!([{"device_id": null, "description": "USB Serial Device (COM3)", "port_number": null, "vendor_id": 6018, "product_id": 36865}]);
    assert_shape(&call(&service, "/get-com-ports", Value::Null), &com_ports, "get-com-ports");
    let connect = call(
        &service,
        "/com/connect",
        json!({"port": "/nonexistent/ttyACM9", "baudRate": "115200", "parity": 0, "dataBits": 8, "stopBits": 1}),
    );
    assert_shape(&connect, &json!({"success": true, "message": "Connected to COM3 at 115200 baud"}), "com/connect");
    assert_eq!(call(&service, "/com/disconnect", Value::Null), json!(1));

    let registered = register_tcp(&service, &sim);
    assert_eq!(registered["transaction"], ";17;800;8184000200000077;");
    let mut body = purchase("12345678000801", "10.00");
    body["jsonResponse"] = json!(true);
    let paid = call(&service, "/performTransactionTCPIP", tcp_body(&sim, body));
    let seed_response = json!({
        "statusCode": "200",
        "statusMessage": "Approved",
        "parsedTransaction": {
            "transactionType": "Purchase",
            "approvalCode": "123456",
            "amount": "SAR 10.00",
            "cardNumber": "************1234",
            "terminalId": "8184000200000077"
        },
        "signature": "a3f9...",
        "terminalId": "8184000200000077",
        "ipAddress": "192.168.1.100",
        "portNumber": 2345,
        "connectionStatus": true,
        "responseCode": "000",
        "approved": true
    });
    assert_shape(&paid, &seed_response, "performTransactionTCPIP");
    assert_eq!(paid["parsedTransaction"]["transactionType"], "Purchase");
    assert_eq!(paid["parsedTransaction"]["amount"], "SAR 10.00");
    assert!(paid["parsedTransaction"]["cardNumber"].as_str().unwrap().ends_with("1234"));
    assert_eq!(paid["signature"].as_str().unwrap().len(), 64);
    let raw = pay_tcp(&service, &sim, "12345678000802", "10.00");
    assert!(raw["transaction"].as_str().unwrap().starts_with(";0;000;APPROVED;"), "{raw}");
    assert!(raw.get("parsedTransaction").is_none());

    let connections = call(&service, "/getExistingConnections", Value::Null);
    assert_eq!(connections, json!({format!("127.0.0.1:{port}"): "Connected"}));
    let status = call(&service, "/registrationStatus", json!({"ip": "127.0.0.1", "port": port}));
    assert_shape(
        &status,
        &json!({"registered": true, "terminalId": "8184000200000077", "ip": "192.168.1.100", "port": 2345}),
        "registrationStatus",
    );
    let cancel = call(&service, "/cancelTransaction", Value::Null);
    assert_eq!(cancel, json!({"status": "Info", "message": "No active transaction to cancel"}));

    let health = call(&service, "/api/health-status", Value::Null);
    let seed_health = json!({
        "status": "UP", "version": "1.7", "uptime": "2h 14m", "port": "9099", "memoryUsedMb": 145, "memoryMaxMb": 512,
        "jSerialCommAvailable": true,
        "availableComPorts": [{"systemName": "COM3", "description": "USB Serial Device (COM3)", "vendorId": 6018, "productId": 36865}],
        "comConnected": true, "activeComPort": null,
        // Keyed by ip:port: checked below.
        "tcpConnections": {},
        "registeredTerminals": [{"terminalId": "8184000200000077", "ipAddress": "192.168.1.100", "portNumber": 2345}]
    });
    assert_shape(&health, &seed_health, "health-status");
    assert_eq!(health["tcpConnections"], json!({format!("127.0.0.1:{port}"): "Connected"}));
    assert!(health["memoryUsedMb"].as_u64().unwrap() > 0, "{health}");

    let disconnect = call(&service, "/tcp-ip/disconnect", json!({"tcpipcomData": {"ip": "127.0.0.1", "port": port}}));
    assert_eq!(
        disconnect,
        json!({"Ip": "127.0.0.1", "portNumber": port, "isConnected": "Connection Disconnected", "connectionStatus": false})
    );
    let clear = call(&service, "/clearTerminalData", json!({"confirmClear": true}));
    assert_shape(
        &clear,
        &json!({"status": "Success", "message": "Terminal data map cleared Successfully"}),
        "clearTerminalData",
    );

    // txnType by number, middleware codes where the reference puts them.
    let by_number = call(
        &service,
        "/performTransactionTCPIP",
        tcp_body(&sim, json!({"txnType": 17, "ecrReferenceNo": "12345678000000"})),
    );
    assert_eq!(by_number["statusCode"], "200", "{by_number}");
    let bad_amount = pay_tcp(&service, &sim, "12345678000803", "ten");
    assert_eq!(bad_amount["statusCode"], "INVALID_AMOUNT");
    let bad_ref = pay_tcp(&service, &sim, "1234", "10.00");
    assert_eq!(bad_ref["statusCode"], "INVALID_ECR_REF");
    let list = call(&service, "/transactions", json!({"terminal": format!("127.0.0.1:{port}"), "state": "approved"}));
    assert_eq!(list["count"], 2);
    sim.shutdown();
}
