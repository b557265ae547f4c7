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
    // The SDK's sequence: it starts at 1 (never 000000) and moves on by one.
    assert_eq!(reference(&first), "87654321000001");
    assert_eq!(reference(&second), "87654321000002", "references never repeat");
}

#[test]
fn a_state_file_of_the_older_counter_goes_on_from_it() {
    let bench = Bench::new();
    assert!(bench.tcp(&["register", "--cash-register", "87654321"]).status.success());
    let path = bench.state.path().join("cli-state.json");
    let mut state: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // As the CLI wrote it before: one counter for the day.
    state["sequence_day"] = "041226".into();
    state["sequence"] = 41.into();
    state.as_object_mut().unwrap().remove("sequences");
    std::fs::write(&path, state.to_string()).unwrap();
    let purchase = bench.tcp(&["--json", "purchase", "--amount", "1.00"]);
    let reference = serde_json::from_str::<Value>(&stdout(&purchase)).unwrap()["ecrReferenceNo"].clone();
    assert_eq!(reference, "87654321000042");
}

#[test]
fn a_decline_is_printed_like_an_approval_on_stdout_and_exits_with_status_3() {
    let bench = Bench::new();
    bench.tcp(&["register", "--cash-register", "12345678"]);
    let approved = bench.tcp(&["purchase", "--amount", "10.00", "--ecr-ref", "12345678000001"]);
    let declined = bench.tcp(&["purchase", "--amount", "10.51", "--ecr-ref", "12345678000002"]);
    assert_eq!((approved.status.code(), declined.status.code()), (Some(0), Some(3)));
    assert_eq!(stderr(&declined), "", "nothing on stderr");
    let (approved, declined) = (stdout(&approved), stdout(&declined));
    assert!(declined.starts_with("NOT APPROVED: 116"), "{declined}");
    assert!(approved.starts_with("APPROVED: 000"), "{approved}");
    // The same layout: one line per named field in reply order (a decline has no approval code).
    let names = |text: &str| text.lines().skip(1).map(|l| l.split(':').next().unwrap().to_owned()).collect::<Vec<_>>();
    let mut expected = names(&approved);
    expected.retain(|name| name != "  approvalCode");
    assert!(expected.len() > 20, "{approved}");
    assert_eq!(names(&declined), expected);
}

#[test]
fn amounts_are_shown_in_sar() {
    let bench = Bench::new();
    bench.tcp(&["register", "--cash-register", "12345678"]);
    let purchase = stdout(&bench.tcp(&["purchase", "--amount", "10.00", "--ecr-ref", "12345678000001"]));
    assert!(purchase.lines().any(|l| l == "  amount: SAR 10.00"), "{purchase}");
    assert!(!purchase.contains("000000001000"), "{purchase}");
    // JSON keeps the terminal's own value, for scripts.
    let json = stdout(&bench.tcp(&["--json", "purchase", "--amount", "10.00", "--ecr-ref", "12345678000002"]));
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["parsed"]["amount"], "000000001000");
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
    // Also when no registration is kept and no ECR reference given: the unreachable terminal is
    // what the user needs to hear about, not a missing reference.
    let failed = bench.nami(&["--tcp", &format!("127.0.0.1:{port}")], &["purchase", "--amount", "10.00"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(stderr(&failed).contains("UnableToConnect"), "{}", stderr(&failed));
    assert!(!stderr(&failed).contains("ecr-ref"), "{}", stderr(&failed));
}

#[test]
fn a_purchase_without_a_kept_registration_says_to_register_first() {
    let bench = Bench::new();
    let refused = bench.tcp(&["purchase", "--amount", "10.00"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("REGISTER_REQUIRED"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("register --cash-register"), "{}", stderr(&refused));
    assert_eq!(bench.sim.requests_received(), 0);
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

/// Every card number the simulator can answer with, whole.
fn card_numbers() -> Vec<&'static str> {
    nami_sim::CARDS.iter().map(|card| card.pan).collect()
}

#[test]
fn no_output_shows_a_whole_card_number_not_even_a_repeated_reply_inside_a_duplicate() {
    let bench = Bench::new();
    // A terminal that sends the whole card number, as some do.
    bench.sim.set_full_pan(true);
    assert!(bench.tcp(&["register", "--cash-register", "12345678"]).status.success());
    let mut outputs = vec![
        bench.tcp(&["--json", "purchase", "--amount", "10.00", "--ecr-ref", "12345678000001"]),
        bench.tcp(&["purchase", "--amount", "10.00", "--ecr-ref", "12345678000002"]),
    ];
    outputs.push(bench.tcp(&["--json", "duplicate", "--of", "12345678000001", "--ecr-ref", "12345678000003"]));
    outputs.push(bench.tcp(&["duplicate", "--of", "12345678000002", "--ecr-ref", "12345678000004"]));
    let duplicate: Value = serde_json::from_str(&stdout(&outputs[2])).unwrap();
    assert!(duplicate["fields"].as_array().unwrap().len() > 8, "the repeated reply is in the fields: {duplicate}");
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
        let printed = format!("{}{}", stdout(output), stderr(output));
        for pan in card_numbers() {
            assert!(!printed.contains(pan), "a whole card number in: {printed}");
        }
        assert!(printed.contains("******"), "the masked number is shown: {printed}");
    }
}

#[test]
fn ports_lists_without_failing() {
    let bench = Bench::new();
    let ports = bench.nami(&[], &["--json", "ports"]);
    assert!(ports.status.success());
    assert!(serde_json::from_str::<Value>(&stdout(&ports)).unwrap().is_array());
}
