//! `nami` driving the simulated terminal over TCP and a pty, as a technician would.

use std::process::{Command, Output};

use nami_sim::{SimConfig, Simulator};
use serde_json::Value;

struct Bench {
    sim: Simulator,
    state: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        Bench { sim: Simulator::start(SimConfig::default()).unwrap(), state: tempfile::tempdir().unwrap() }
    }

    fn nami(&self, link: &[&str], args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nami"))
            .args(link)
            .args(args)
            .env("NAMI_CLI_STATE", self.state.path().join("cli-state.json"))
            .output()
            .unwrap()
    }

    fn tcp(&self, args: &[&str]) -> Output {
        let address = self.sim.addr().to_string();
        self.nami(&["--tcp", &address], args)
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn register_keeps_the_terminal_id_so_a_later_purchase_is_signed() {
    let bench = Bench::new();
    let register = bench.tcp(&["register", "--cash-register", "12345678"]);
    assert!(register.status.success(), "{}", stderr(&register));
    assert!(stdout(&register).contains(bench.sim.terminal_id().as_str()), "{}", stdout(&register));

    let purchase = bench.tcp(&["--json", "purchase", "--amount", "10.00", "--ecr-ref", "12345678000001", "--print"]);
    assert!(purchase.status.success(), "{}", stderr(&purchase));
    let result: Value = serde_json::from_str(&stdout(&purchase)).unwrap();
    assert_eq!(result["approved"], true);
    assert_eq!(result["responseCode"], "000");
    assert_eq!(result["ecrReferenceNo"], "12345678000001");
    assert!(result["parsed"]["pan"].as_str().unwrap().contains('*'), "the card number is masked");
    assert!(result["fields"][4].as_str().unwrap().contains('*'), "also in the raw fields");
}

#[test]
fn a_purchase_without_a_reference_gets_a_fresh_one_from_the_cash_register() {
    let bench = Bench::new();
    assert!(bench.tcp(&["register", "--cash-register", "87654321"]).status.success());
    let first = bench.tcp(&["--json", "purchase", "--amount", "1.00"]);
    let second = bench.tcp(&["--json", "purchase", "--amount", "1.00"]);
    let reference = |o: &Output| serde_json::from_str::<Value>(&stdout(o)).unwrap()["ecrReferenceNo"].clone();
    assert!(reference(&first).as_str().unwrap().starts_with("87654321"));
    assert_ne!(reference(&first), reference(&second), "references never repeat");
}

#[test]
fn a_decline_exits_with_status_3_and_says_so() {
    let bench = Bench::new();
    bench.tcp(&["register", "--cash-register", "12345678"]);
    let declined = bench.tcp(&["purchase", "--amount", "10.51", "--ecr-ref", "12345678000002"]);
    assert_eq!(declined.status.code(), Some(3));
    assert!(stderr(&declined).contains("116"), "{}", stderr(&declined));
}

#[test]
fn bad_input_exits_with_status_2_naming_the_field_and_nothing_is_sent() {
    let bench = Bench::new();
    bench.tcp(&["register", "--cash-register", "12345678"]);
    let before = bench.sim.requests_received();
    let bad = bench.tcp(&["purchase", "--amount", "1.234", "--ecr-ref", "12345678000003"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("INVALID_AMOUNT"), "{}", stderr(&bad));
    let bad = bench.tcp(&["purchase", "--amount", "1.00", "--ecr-ref", "02345678000003"]);
    assert!(stderr(&bad).contains("INVALID_ECR_REF"), "{}", stderr(&bad));
    let bad = bench.tcp(&["transact", "--txn-type", "REFUND", "--field", "amont=1.00"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("amont"));
    assert_eq!(bench.sim.requests_received(), before);
}

#[test]
fn transact_takes_any_type_with_payment_request_fields() {
    let bench = Bench::new();
    bench.tcp(&["register", "--cash-register", "12345678"]);
    let purchase = bench.tcp(&["--json", "purchase", "--amount", "20.00", "--ecr-ref", "12345678000010"]);
    let purchase: Value = serde_json::from_str(&stdout(&purchase)).unwrap();
    let rrn = purchase["parsed"]["rrn"].as_str().unwrap().to_owned();
    let refund = bench.tcp(&[
        "--json",
        "transact",
        "--txn-type",
        "REFUND",
        "--field",
        "refundAmount=5.00",
        "--field",
        &format!("rrnNumber={rrn}"),
        "--field",
        "ecrReferenceNo=12345678000011",
    ]);
    assert!(refund.status.success(), "{}", stderr(&refund));
    let duplicate = bench.tcp(&["--json", "duplicate", "--of", "12345678000010"]);
    assert!(duplicate.status.success(), "{}", stderr(&duplicate));
    let status = bench.tcp(&["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
}

#[test]
fn an_unregistered_terminal_is_refused_before_anything_is_sent() {
    let bench = Bench::new();
    let refused = bench.tcp(&["purchase", "--amount", "1.00", "--ecr-ref", "12345678000001"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("REGISTER_REQUIRED"), "{}", stderr(&refused));
    assert_eq!(bench.sim.requests_received(), 0);
}

#[test]
fn an_unreachable_terminal_exits_with_status_1() {
    let bench = Bench::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let failed = bench.nami(&["--tcp", &format!("127.0.0.1:{port}")], &["register", "--cash-register", "12345678"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(stderr(&failed).contains("UnableToConnect"), "{}", stderr(&failed));
}

#[test]
fn the_same_commands_work_over_a_serial_port() {
    let bench = Bench::new();
    let pty = bench.sim.open_pty().unwrap();
    let path = pty.path().to_string_lossy().into_owned();
    let link = ["--serial", path.as_str(), "--baud", "115200"];
    let register = bench.nami(&link, &["register", "--cash-register", "12345678"]);
    assert!(register.status.success(), "{}", stderr(&register));
    let purchase = bench.nami(&link, &["purchase", "--amount", "3.00", "--ecr-ref", "12345678000020"]);
    assert!(purchase.status.success(), "{}", stderr(&purchase));
    assert!(stdout(&purchase).starts_with("APPROVED"), "{}", stdout(&purchase));
}

#[test]
fn ports_lists_without_failing() {
    let bench = Bench::new();
    let ports = bench.nami(&[], &["--json", "ports"]);
    assert!(ports.status.success());
    assert!(serde_json::from_str::<Value>(&stdout(&ports)).unwrap().is_array());
}
