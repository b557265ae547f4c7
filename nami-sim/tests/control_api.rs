//! The HTTP control API and the `nami-sim` binary, driven as an integrator would: plain HTTP/1.1
//! over a socket, and the binary's own flags and output.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{Pos, REPLY_TIMEOUT, ecr, plain, purchase, start, wait_until};
use nami_sdk::TxnType;
use nami_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

/// One HTTP/1.1 request; returns the status and the JSON body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

fn start_with_control() -> (Simulator, SocketAddr) {
    let sim = start(SimConfig {
        control_listen: Some("127.0.0.1:0".parse().unwrap()),
        registered: true,
        ..SimConfig::default()
    });
    let control = sim.control_addr().expect("control API address");
    (sim, control)
}

#[test]
fn state_reports_registration_faults_and_counters() {
    let (sim, control) = start_with_control();
    let mut pos = Pos::connect(sim.addr());
    pos.exchange(&purchase(1, 1_000));
    let (status, state) = http(control, "GET", "/state", "");
    assert_eq!(status, 200);
    assert_eq!(state["registered"], json!(true));
    assert_eq!(state["terminalId"], json!(nami_sim::DEFAULT_TERMINAL_ID));
    assert_eq!(state["requestsReceived"], json!(1));
    assert_eq!(state["journalLength"], json!(1));
    assert_eq!(state["cardTap"], json!(false));
    assert_eq!(state["faults"], json!([]));
    let (status, journal) = http(control, "GET", "/journal", "");
    assert_eq!(status, 200);
    assert_eq!(journal[0]["txnType"], json!("PURCHASE"));
    assert_eq!(journal[0]["responseCode"], json!("000"));
    assert_eq!(journal[0]["ecrReference"], json!(ecr(1).as_str()));
    sim.shutdown();
}

#[test]
fn faults_are_set_and_cleared_at_run_time() {
    let (sim, control) = start_with_control();
    let (status, state) = http(control, "POST", "/fault", r#"{"fault":"never-answer","scope":"next","count":1}"#);
    assert_eq!(status, 200);
    assert_eq!(state["faults"], json!([{"fault": "never-answer", "scope": "next", "remaining": 1}]));
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    assert!(pos.read_frame(Duration::from_millis(300)).is_err(), "never answered");
    assert!(pos.exchange(&purchase(2, 1_000)).approved(), "the fault ran out");

    http(control, "POST", "/fault", r#"{"fault":"decline","code":"117","scope":"always"}"#);
    assert_eq!(pos.exchange(&purchase(3, 1_000)).code(), "117");
    assert_eq!(pos.exchange(&purchase(4, 1_000)).code(), "117");
    let (status, state) = http(control, "POST", "/faults/clear", "");
    assert_eq!(status, 200);
    assert_eq!(state["faults"], json!([]));
    assert!(pos.exchange(&purchase(5, 1_000)).approved());

    http(control, "POST", "/fault", r#"{"fault":"delay","ms":200}"#);
    let started = std::time::Instant::now();
    pos.exchange(&plain(TxnType::CheckStatus, 6));
    assert!(started.elapsed() >= Duration::from_millis(200));
    sim.shutdown();
}

#[test]
fn card_tap_and_reboot_are_driven_over_http() {
    let (sim, control) = start_with_control();
    let (_, state) = http(control, "POST", "/card-tap", r#"{"enabled":true}"#);
    assert_eq!(state["cardTap"], json!(true));
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    wait_until(REPLY_TIMEOUT, "the card wait", || {
        http(control, "GET", "/state", "").1["waitingForCard"] == json!(true)
    });
    let (status, tap) = http(control, "POST", "/tap", "");
    assert_eq!(status, 200);
    assert_eq!(tap["purchaseWasWaiting"], json!(true));
    assert!(pos.read_response().approved());

    let (_, state) = http(control, "POST", "/reboot", "");
    assert_eq!(state["registered"], json!(false));
    assert_eq!(pos.exchange(&purchase(2, 1_000)).code(), "1003");
    sim.shutdown();
}

#[test]
fn bad_control_requests_get_json_errors() {
    let (sim, control) = start_with_control();
    for (method, path, body, expected) in [
        ("POST", "/fault", "not json", 400),
        ("POST", "/fault", r#"{"fault":"explode"}"#, 400),
        ("POST", "/fault", r#"{"fault":"delay","ms":"soon"}"#, 400),
        ("POST", "/fault", r#"{"fault":"busy","scope":"sometimes"}"#, 400),
        ("POST", "/card-tap", r#"{"enabled":"yes"}"#, 400),
        ("GET", "/nowhere", "", 404),
        ("DELETE", "/state", "", 405),
    ] {
        let (status, value) = http(control, method, path, body);
        assert_eq!(status, expected, "{method} {path} {body}");
        assert!(value["error"].as_str().is_some_and(|m| !m.is_empty()), "{value}");
    }
    assert!(sim.faults().is_empty());
    sim.shutdown();
}

/// The binary with a pty and SIGTERM: Unix only (on Windows, scripts/windows.sh runs nami-sim.exe
/// over TCP and stops it with Ctrl-C).
#[cfg(unix)]
mod binary {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Stdio};

    use super::*;

    /// Kills the child even when an assertion fails.
    struct Killed(Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn the_binary_prints_its_addresses_and_applies_its_flags() {
        let child = Command::new(env!("CARGO_BIN_EXE_nami-sim"))
            .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--pty", "--registered"])
            .args(["--fault", "decline:117", "--terminal-id", "1160000101300001"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = Killed(child);
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        let (mut pty, mut control, mut listen) = (None, None, None);
        while listen.is_none() {
            let line = lines.next().expect("the binary prints its addresses").unwrap();
            if let Some(path) = line.strip_prefix("pty: ") {
                pty = Some(path.to_owned());
            } else if let Some(addr) = line.strip_prefix("control on http://") {
                control = Some(addr.parse::<SocketAddr>().unwrap());
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                listen = Some(addr.parse::<SocketAddr>().unwrap());
            }
        }
        let mut pos = Pos::connect(listen.unwrap());
        pos.terminal_id = nami_sdk::TerminalId::parse("1160000101300001").unwrap();
        assert_eq!(pos.exchange(&purchase(1, 1_000)).code(), "117", "--fault applies to every request");
        let (_, state) = http(control.unwrap(), "GET", "/state", "");
        assert_eq!(state["terminalId"], json!("1160000101300001"));
        let pty = pty.unwrap();
        assert!(std::path::Path::new(&pty).exists());

        // SIGTERM stops it cleanly: exit status 0, the pty path removed.
        let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = child.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
        assert!(!std::path::Path::new(&pty).exists());
    }
}

#[test]
fn the_binary_refuses_bad_flags_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_nami-sim"))
        .args(["--listen", "127.0.0.1:0", "--fault", "explode"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown fault"));
    let output = Command::new(env!("CARGO_BIN_EXE_nami-sim")).args(["--terminal-id", "123"]).output().unwrap();
    assert!(!output.status.success());
}
