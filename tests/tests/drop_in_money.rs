//! Drop-in money safety over TCP: a POS written to the letter of Nami's REST documentation (the
//! static ECR reference `12345678901234`, `txnType` as a name or a number, fresh `date`s) talks
//! to the real `nami-httpd` binary in front of a `nami-sim` terminal, and is never charged
//! wrongly. The simulator's journal is the truth of what was charged. Each test is named as the
//! promise it keeps. (The COM path's promises are in `drop_in_money_com.rs`.)

use std::time::Duration;

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, temp_dir, wait_for};
use nami_test_kit::http::Http;
use serde_json::{Value, json};

/// The documented static ECR reference.
const STATIC_REFERENCE: &str = "12345678901234";

/// A daemon with short deadlines in front of a registered simulator.
struct Rig {
    sim: Simulator,
    port: u16,
    http: Http,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
        let dir = temp_dir("nami-drop-in-");
        let daemon = Daemon::start(
            dir.path(),
            &["--card-present-timeout-secs", "3", "--admin-timeout-secs", "5", "--settlement-timeout-secs", "5"],
        );
        let http = daemon.http();
        let port = sim.addr().port();
        let rig = Rig { sim, port, http, daemon, _dir: dir };
        let registered =
            rig.tcp(json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE}));
        assert_eq!(registered["statusCode"], "200", "REGISTER: {registered}");
        rig
    }

    fn tcp(&self, payment: Value) -> Value {
        self.http.tcp(self.port, payment)
    }

    /// `POST /performTransactionTCPIP` with an `Idempotency-Key` header.
    fn tcp_with_key(&self, key: &str, payment: Value) -> Value {
        let body = nami_test_kit::http::tcp_body(self.port, payment);
        let response = self
            .http
            .client
            .post(self.daemon.at("/performTransactionTCPIP"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", key)
            .body(body.to_string())
            .send()
            .expect("the daemon answers");
        response.json().expect("JSON")
    }

    /// The documented PURCHASE body with the static reference.
    fn purchase(&self, amount: &str, date: &str) -> Value {
        self.tcp(purchase_body(amount, date))
    }

    /// What the terminal carried out under `reference` (approved or not).
    fn charges(&self, reference: &str) -> Vec<nami_sim::SimTransaction> {
        self.sim.journal().into_iter().filter(|t| t.ecr_reference == reference).collect()
    }
}

fn purchase_body(amount: &str, date: &str) -> Value {
    json!({"txnType": "PURCHASE", "amount": amount, "date": date, "ecrReferenceNo": STATIC_REFERENCE, "jsonResponse": true})
}

fn approved(answer: &Value) -> bool {
    answer["statusCode"] == "200" && answer["approved"] == true
}

#[test]
fn a_static_ecr_reference_charges_every_new_sale_and_replays_only_the_same_request() {
    let rig = Rig::new();
    let dates = ["090625143000", "090625143100", "090625143200"];
    for date in dates {
        let answer = rig.purchase("10.00", date);
        assert!(approved(&answer), "{answer}");
        assert_eq!(answer.get("replay"), None, "a new sale is sent, not replayed: {answer}");
    }
    assert_eq!(rig.charges(STATIC_REFERENCE).len(), 3, "three sales, three charges");

    // The second sale again, as a POS retries after a lost answer: its own result, nothing sent.
    let sent = rig.sim.requests_received();
    let retry = rig.purchase("10.00", dates[1]);
    assert_eq!((approved(&retry), retry["replay"].as_bool()), (true, Some(true)), "{retry}");
    assert_eq!(rig.sim.requests_received(), sent, "a replay sends nothing");

    // Another amount or a type given by number with the same reference and date: new requests.
    let other_amount = rig.purchase("12.00", dates[2]);
    assert!(approved(&other_amount) && other_amount.get("replay").is_none(), "{other_amount}");
    let by_number =
        rig.tcp(json!({"txnType": 8, "amount": "10.00", "date": dates[2], "ecrReferenceNo": STATIC_REFERENCE}));
    assert!(approved(&by_number) && by_number.get("replay").is_none(), "CASH_ADVANCE: {by_number}");
    assert_eq!(rig.charges(STATIC_REFERENCE).len(), 5);

    // The day's end with the same reference is a reconciliation, not INVALID_ECR_REF.
    let reconciliation =
        rig.tcp(json!({"txnType": "RECONCILIATION", "date": "090625235900", "ecrReferenceNo": STATIC_REFERENCE}));
    assert!(approved(&reconciliation), "{reconciliation}");
}

#[test]
fn an_idempotency_key_header_is_the_only_replay_key_when_a_pos_sends_one() {
    let rig = Rig::new();
    let body = purchase_body("10.00", "090625143000");
    let first = rig.tcp_with_key("pos-7-sale-1", body.clone());
    assert!(approved(&first) && first.get("replay").is_none(), "{first}");
    let retry = rig.tcp_with_key("pos-7-sale-1", body.clone());
    assert_eq!(retry["replay"], true, "{retry}");
    assert_eq!(rig.charges(STATIC_REFERENCE).len(), 1);

    // The same body under a new key is a new sale (two customers, same amount, same second).
    let second = rig.tcp_with_key("pos-7-sale-2", body.clone());
    assert!(approved(&second) && second.get("replay").is_none(), "{second}");
    assert_eq!(rig.charges(STATIC_REFERENCE).len(), 2);

    // A used key for another request is refused, naming the header; nothing is sent.
    let sent = rig.sim.requests_received();
    let reused = rig.tcp_with_key("pos-7-sale-1", purchase_body("99.00", "090625150000"));
    assert_eq!(reused["statusCode"], "ERROR", "{reused}");
    assert!(reused["statusMessage"].as_str().unwrap().contains("Idempotency-Key"), "{reused}");
    assert_eq!(rig.sim.requests_received(), sent);

    // In process (nami_call, the bindings) the key travels in the body.
    let mut keyed = purchase_body("10.00", "090625143000");
    keyed["idempotencyKey"] = json!("pos-7-sale-2");
    let replayed = rig.tcp(keyed);
    assert_eq!(replayed["replay"], true, "{replayed}");
    assert_eq!(rig.charges(STATIC_REFERENCE).len(), 2);
    let row = &rig.http.journal(1)[0];
    assert_eq!(row["idempotencyKey"], "pos-7-sale-2", "{row}");
}

#[test]
fn a_reference_in_doubt_holds_back_new_requests_with_it_until_recovery_settles_it() {
    let rig = Rig::new();
    // The terminal charges the card but its answer never comes.
    rig.sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let lost = rig.purchase("10.00", "090625143000");
    assert_eq!(
        (lost["statusCode"].as_str(), lost["outcomeUnknown"].as_bool()),
        (Some("TIMEOUT"), Some(true)),
        "{lost}"
    );
    assert_eq!(rig.charges(STATIC_REFERENCE).len(), 1);

    // The next sale with the same static reference is not sent while that one is in doubt, and
    // the answer says why. (Recovery may settle it in between: then the sale goes through.)
    let sent = rig.sim.requests_received();
    let next = rig.purchase("20.00", "090625143500");
    if next["statusCode"] == "TERMINAL_BUSY" {
        let message = next["statusMessage"].as_str().unwrap();
        assert!(message.contains("not known yet") && message.contains("nothing was sent"), "{next}");
        assert!(rig.sim.requests_received() <= sent + 1, "at most recovery's DUPLICATE went out");
        assert!(rig.charges(STATIC_REFERENCE).iter().all(|t| t.amount_halalas == Some(1000)), "no new sale");
    } else {
        assert!(approved(&next), "{next}");
    }
    // Recovery asks the terminal (DUPLICATE) and finds the first sale approved; then the new one
    // goes through, and the lost one's retry is answered from the journal.
    wait_for("recovery to settle the lost sale", Duration::from_secs(20), || {
        rig.http.journal(10).iter().all(|row| row["state"] != "unknown")
    });
    let next = rig.purchase("20.00", "090625143500");
    assert!(approved(&next), "{next}");
    let retry = rig.purchase("10.00", "090625143000");
    assert_eq!((approved(&retry), retry["replay"].as_bool()), (true, Some(true)), "{retry}");
    let amounts: Vec<Option<u64>> = rig.charges(STATIC_REFERENCE).iter().map(|t| t.amount_halalas).collect();
    assert_eq!(amounts, [Some(1000), Some(2000)], "each sale charged once");
}

#[test]
fn a_pos_whose_json_writes_every_number_as_a_double_is_charged_as_one_that_writes_integers() {
    let rig = Rig::new();
    // As a JSON library that keeps every number as a double writes the documented body.
    let body = json!({
        "tcpipcomData": {"ip": "127.0.0.1", "port": f64::from(rig.port)},
        "paymentRequest": {"txnType": 0.0, "amount": 10.0, "date": "090625150000", "ecrReferenceNo": 12345678000777.0_f64},
    });
    assert_eq!(body["tcpipcomData"]["port"].to_string(), format!("{}.0", rig.port));
    let answer = rig.http.post("/performTransactionTCPIP", &body).body;
    assert!(approved(&answer), "{answer}");
    let charged = rig.charges("12345678000777");
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].amount_halalas, Some(1000), "10.0 is SAR 10.00");
    // The same request written with integers and text is the same request: replayed, not sent.
    let retry = rig.tcp(
        json!({"txnType": "PURCHASE", "amount": "10.00", "date": "090625150000", "ecrReferenceNo": "12345678000777"}),
    );
    assert_eq!((approved(&retry), retry["replay"].as_bool()), (true, Some(true)), "{retry}");
    assert_eq!(rig.charges("12345678000777").len(), 1);
}

#[test]
fn a_purchase_with_a_cashback_amount_charges_the_cashback_too() {
    let rig = Rig::new();
    let mut body = purchase_body("10.00", "090625143000");
    body["cashBackAmount"] = json!("5.00");
    let answer = rig.tcp(body);
    assert!(approved(&answer), "{answer}");
    assert_eq!(answer["parsedTransaction"]["transactionType"], "Purchase Cashback", "{answer}");
    let charged = rig.charges(STATIC_REFERENCE);
    assert_eq!(charged.len(), 1);
    assert_eq!(
        (charged[0].txn_type, charged[0].amount_halalas, charged[0].cashback_halalas),
        (nami_sdk::TxnType::PurchaseCashback, Some(1000), Some(500)),
        "the card pays for the cash handed over"
    );

    // A money field the type does not send is refused, naming it; nothing reaches the terminal.
    let sent = rig.sim.requests_received();
    let refund = rig.tcp(json!({"txnType": "REFUND", "refundAmount": "1.00", "cashBackAmount": "5.00",
        "rrnNumber": "123456789012", "date": "090625150000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(refund["statusCode"], "INVALID_AMOUNT", "{refund}");
    assert!(refund["statusMessage"].as_str().unwrap().contains("`cashBackAmount`"), "{refund}");
    let two_amounts = rig.tcp(json!({"txnType": "REFUND", "amount": "3.00", "refundAmount": "1.00",
        "rrnNumber": "123456789012", "date": "090625150000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(two_amounts["statusCode"], "INVALID_AMOUNT", "{two_amounts}");
    assert!(two_amounts["statusMessage"].as_str().unwrap().contains("`amount`"), "{two_amounts}");
    assert_eq!(rig.sim.requests_received(), sent, "nothing was sent");
}

#[test]
fn txn_type_codes_follow_the_api_reference() {
    let rig = Rig::new();
    let sent = rig.sim.requests_received();
    let unassigned = rig.tcp(json!({"txnType": 14, "terminalLanguage": "0", "date": "090625143000",
        "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(unassigned["statusCode"], "INVALID_TXN_TYPE", "{unassigned}");
    assert!(unassigned["statusMessage"].as_str().unwrap().contains("not assigned"), "{unassigned}");
    for partial_reversal in [json!(27), json!("27"), json!("PARTIAL_REVERSAL")] {
        let refused = rig.tcp(json!({"txnType": partial_reversal, "date": "090625143000",
            "ecrReferenceNo": STATIC_REFERENCE}));
        assert_eq!(refused["statusCode"], "INVALID_TXN_TYPE", "{refused}");
        assert!(refused["statusMessage"].as_str().unwrap().contains("command"), "says why: {refused}");
    }
    assert_eq!(rig.sim.requests_received(), sent, "nothing was sent");
    // By name, the terminal's language is set.
    let by_name = rig.tcp(json!({"txnType": "SET_TERMINAL_LANGUAGE", "terminalLanguage": "0",
        "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(by_name["statusCode"], "200", "{by_name}");
    assert_eq!(rig.sim.requests_received(), sent + 1);
}

#[test]
fn registration_status_keeps_the_documented_fields_with_no_terminal_and_with_one() {
    let dir = temp_dir("nami-drop-in-");
    let daemon = Daemon::start(dir.path(), &[]);
    let empty = daemon.http().get("/registrationStatus").body;
    for field in ["registered", "terminalId", "ip", "port"] {
        assert!(empty.get(field).is_some(), "`{field}` is documented: {empty}");
    }
    drop(daemon);
    let rig = Rig::new();
    let status = rig.http.get(&format!("/registrationStatus?ip=127.0.0.1&port={}", rig.port)).body;
    assert_eq!(
        (status["registered"].as_bool(), status["ip"].as_str(), status["port"].as_u64()),
        (Some(true), Some("127.0.0.1"), Some(u64::from(rig.port))),
        "{status}"
    );
}

#[test]
fn an_unknown_outcome_that_recovery_cannot_settle_is_shown_as_needing_attention() {
    let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
    let dir = temp_dir("nami-drop-in-");
    let daemon = Daemon::start(
        dir.path(),
        &["--card-present-timeout-secs", "2", "--recovery-interval-secs", "0.2", "--recovery-attention-after", "3"],
    );
    let http = daemon.http();
    let port = sim.addr().port();
    let registered =
        http.tcp(port, json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(registered["statusCode"], "200", "{registered}");
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let lost = http.tcp(port, purchase_body("10.00", "090625143000"));
    assert_eq!(lost["outcomeUnknown"], true, "{lost}");
    // Every DUPLICATE of recovery is answered "923 REQUEST IN PROGRESS": nothing settles it.
    sim.set_fault(Fault::Busy, FaultScope::Always);
    wait_for("the outcome to need attention", Duration::from_secs(20), || {
        http.get("/api/health-status").body["needsAttention"] == 1
    });
    let listed = http.get("/transactions?state=attention").body;
    assert_eq!(listed["count"], 1, "{listed}");
    let row = &listed["transactions"][0];
    assert_eq!((row["state"].as_str(), row["needsAttention"].as_bool()), (Some("unknown"), Some(true)), "{row}");
    assert!(row["recoveryAttempts"].as_u64().unwrap() >= 3, "{row}");
    // Recovery goes on asking: once the terminal answers, the row is settled and off the list.
    sim.clear_faults();
    wait_for("recovery to settle it", Duration::from_secs(20), || {
        http.journal_of(STATIC_REFERENCE).first().is_some_and(|r| r["state"] == "approved")
    });
    assert_eq!(http.get("/api/health-status").body["needsAttention"], 0);
    assert_eq!(http.get("/transactions?state=attention").body["count"], 0);
}

#[test]
fn the_daemon_configuration_sets_the_service_settings_the_c_abi_sets() {
    let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
    let dir = temp_dir("nami-drop-in-");
    let mut command = nami_test_kit::daemon::command(dir.path(), &["--listen", "127.0.0.1:0", "--layout", "2020"]);
    command.env("NAMI_IDEMPOTENCY_WINDOW_SECS", "0").env("NAMI_DEFAULT_PRINT", "false");
    let daemon = Daemon::spawn(dir.path(), command);
    let http = daemon.http();
    let port = sim.addr().port();
    let registered =
        http.tcp(port, json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(registered["statusCode"], "200", "{registered}");
    let body =
        json!({"txnType": "PURCHASE", "amount": "10.00", "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE});
    let first = http.tcp(port, body.clone());
    assert_eq!(first["inputReqData"], "090625143000;000000001000;0;12345678901234!", "no receipt by default: {first}");
    // Replay off: the same request is sent again (the operator's explicit choice).
    let second = http.tcp(port, body);
    assert!(approved(&first) && approved(&second) && second.get("replay").is_none(), "{second}");
    assert_eq!(sim.journal().len(), 2);
    drop(daemon);
    // A bad value stops the daemon before it listens, naming the setting.
    let other = temp_dir("nami-drop-in-");
    let mut bad = nami_test_kit::daemon::command(other.path(), &["--listen", "127.0.0.1:0", "--lrc", "crc"]);
    let error = Daemon::try_spawn(other.path(), &mut bad, Duration::from_secs(10)).err().expect("refused");
    assert!(error.contains("lrc"), "{error}");
}

#[test]
fn recovery_reads_a_repeated_reply_without_its_command_with_the_journaled_type() {
    let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
    // This terminal repeats a transaction without the command code (PROTOCOL.md §5.7, iOS).
    sim.set_duplicate_without_command(true);
    let dir = temp_dir("nami-drop-in-");
    let daemon = Daemon::start(dir.path(), &["--card-present-timeout-secs", "2", "--recovery-interval-secs", "0.2"]);
    let http = daemon.http();
    let port = sim.addr().port();
    let registered =
        http.tcp(port, json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(registered["statusCode"], "200", "{registered}");
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let mut body = purchase_body("10.00", "090625143000");
    body["cashBackAmount"] = json!("2.00");
    let lost = http.tcp(port, body.clone());
    assert_eq!(lost["outcomeUnknown"], true, "{lost}");
    wait_for("recovery to settle the purchase", Duration::from_secs(20), || {
        http.journal_of(STATIC_REFERENCE).first().is_some_and(|r| r["state"] != "unknown")
    });
    let row = &http.journal_of(STATIC_REFERENCE)[0];
    let charged = &sim.journal()[0];
    assert_eq!(
        (row["state"].as_str(), row["responseCode"].as_str(), row["rrn"].as_str()),
        (Some("approved"), Some("000"), Some(charged.rrn.as_str())),
        "read as the PURCHASE_CASHBACK the journal recorded: {row}"
    );
    let retry = http.tcp(port, body);
    assert_eq!((approved(&retry), retry["replay"].as_bool()), (true, Some(true)), "{retry}");
    assert_eq!(sim.journal().len(), 1, "charged once");
}

#[test]
fn duplicate_repeats_the_transaction_of_its_own_ecr_reference_when_the_journal_knows_it() {
    let rig = Rig::new();
    let [first, second] = ["12345678000501", "12345678000502"];
    for (reference, amount) in [(first, "10.00"), (second, "20.00")] {
        let paid = rig
            .tcp(json!({"txnType": "PURCHASE", "amount": amount, "date": "090625143000", "ecrReferenceNo": reference}));
        assert!(approved(&paid), "{paid}");
    }
    // The seeds' DUPLICATE body: no prevEcrNo, the reference of the wanted transaction.
    let duplicate = |body: Value| {
        let answer = rig.tcp(body);
        assert_eq!(answer["statusCode"], "200", "{answer}");
        answer
    };
    let of_first = duplicate(json!({"txnType": "DUPLICATE", "date": "090625150000", "ecrReferenceNo": first}));
    assert_eq!(
        (of_first["duplicateOf"].as_str(), of_first["duplicateOfSource"].as_str()),
        (Some(first), Some("ecrReferenceNo")),
        "{of_first}"
    );
    let repeated = of_first["transaction"].as_str().unwrap();
    assert!(repeated.contains(first) && repeated.contains("000000001000"), "the first purchase repeated: {repeated}");
    // A reference the journal does not know: the terminal's last transaction.
    let of_last =
        duplicate(json!({"txnType": "DUPLICATE", "date": "090625150100", "ecrReferenceNo": "12345678000599"}));
    assert_eq!(
        (of_last["duplicateOf"].as_str(), of_last["duplicateOfSource"].as_str()),
        (Some(second), Some("lastTransaction")),
        "{of_last}"
    );
    assert!(of_last["transaction"].as_str().unwrap().contains(second), "{of_last}");
    // prevEcrNo, when given, names it.
    let named = duplicate(json!({"txnType": "DUPLICATE", "date": "090625150200", "ecrReferenceNo": second,
        "prevEcrNo": first}));
    assert_eq!(
        (named["duplicateOf"].as_str(), named["duplicateOfSource"].as_str()),
        (Some(first), Some("prevEcrNo")),
        "{named}"
    );
    assert!(named["transaction"].as_str().unwrap().contains(first), "{named}");
}

#[test]
fn a_request_whose_client_hung_up_while_it_waited_for_a_busy_terminal_is_never_sent() {
    // With --wait-when-busy a second request for a busy terminal waits for it (over TCP).
    let sim = Simulator::start(SimConfig { card_tap: true, ..SimConfig::default() }).expect("simulator starts");
    let dir = temp_dir("nami-drop-in-");
    let daemon = Daemon::start(dir.path(), &["--wait-when-busy"]);
    let http = daemon.http();
    let port = sim.addr().port();
    let registered =
        http.tcp(port, json!({"txnType": "REGISTER", "date": "090625143000", "ecrReferenceNo": STATIC_REFERENCE}));
    assert_eq!(registered["statusCode"], "200", "{registered}");
    let body = |reference: &str| json!({"txnType": "PURCHASE", "amount": "10.00", "date": "090625143000", "ecrReferenceNo": reference});
    std::thread::scope(|scope| {
        let first = scope.spawn(|| http.tcp(port, body("12345678000801")));
        wait_for("the card wait", Duration::from_secs(10), || sim.waiting_for_card());
        // A POS that gives up after 300 ms and closes its socket while its sale waits.
        let impatient = Http::new(&format!("http://127.0.0.1:{}", daemon.port), Duration::from_millis(300));
        let gave_up = impatient
            .try_post("/performTransactionTCPIP", &nami_test_kit::http::tcp_body(port, body("12345678000802")));
        assert!(gave_up.is_err(), "the client hung up: {gave_up:?}");
        std::thread::sleep(Duration::from_millis(200));
        sim.tap_card();
        assert!(approved(&first.join().unwrap()));
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(sim.journal().iter().all(|t| t.ecr_reference != "12345678000802"), "the abandoned sale was never sent");
    let row = &http.journal_of("12345678000802")[0];
    assert_eq!((row["state"].as_str(), row["statusCode"].as_str()), (Some("error"), Some("CANCELLED")), "{row}");
}
