//! The fault matrix through the real daemon: `nami-httpd` (the binary) in front of a `nami-sim`
//! terminal that misbehaves on purpose, driven over HTTP as a POS would. One test per fault,
//! each named as the promise it checks. The simulator's journal is the truth of what was
//! charged.
//!
//! The same faults against the SDK's `Terminal` alone are in `terminal_tcp.rs`; these prove the
//! promise holds end to end (service, journal, recovery, HTTP).

use std::time::{Duration, Instant};

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, ecr, temp_dir, wait_for};
use nami_test_kit::http::Http;
use serde_json::{Value, json};

/// A daemon with short deadlines in front of a registered simulator.
struct Rig {
    sim: Simulator,
    port: u16,
    http: Http,
    _daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let sim = Simulator::start(SimConfig::default()).expect("simulator starts");
        let dir = temp_dir("nami-reliability-");
        let daemon = Daemon::start(
            dir.path(),
            &["--card-present-timeout-secs", "3", "--admin-timeout-secs", "3", "--settlement-timeout-secs", "3"],
        );
        let http = daemon.http();
        let port = sim.addr().port();
        let rig = Rig { sim, port, http, _daemon: daemon, _dir: dir };
        let registered = rig.tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
        assert_eq!(registered["statusCode"], "200", "REGISTER: {registered}");
        rig
    }

    fn tcp(&self, payment: Value) -> Value {
        self.http.tcp(self.port, payment)
    }

    fn purchase(&self, reference: &str, amount: &str) -> Value {
        self.tcp(json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference}))
    }

    /// How many purchases the terminal journaled under `reference`.
    fn charges(&self, reference: &str) -> usize {
        self.sim.journal().iter().filter(|t| t.ecr_reference == reference).count()
    }

    /// The daemon's latest journal state for `reference`.
    fn state(&self, reference: &str) -> String {
        self.http.journal_of(reference).first().and_then(|e| e["state"].as_str()).unwrap_or("none").to_owned()
    }

    /// Posts the same purchase again until recovery has made its row final; every answer must
    /// come from the journal (nothing sent: the terminal's charge count stays at one).
    fn resolved(&self, reference: &str, amount: &str) -> String {
        wait_for("recovery to resolve the outcome", Duration::from_secs(30), || {
            let again = self.purchase(reference, amount);
            assert!(
                again["outcomeUnknown"] == true || again["replay"] == true,
                "a retry is answered from the journal: {again}"
            );
            assert_eq!(self.charges(reference), 1, "a retry is never sent to the terminal");
            matches!(self.state(reference).as_str(), "approved" | "declined")
        });
        self.state(reference)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sim.shutdown();
    }
}

fn approved(reply: &Value) -> bool {
    reply["statusCode"] == "200" && reply["approved"] == true
}

#[test]
fn daemon_reports_unable_to_connect_when_the_terminal_refuses_the_connection() {
    let dir = temp_dir("nami-reliability-");
    let daemon = Daemon::start(dir.path(), &["--admin-timeout-secs", "3"]);
    let http = daemon.http();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let reply = http.tcp(closed, json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
    assert_eq!(reply["statusCode"], "UnableToConnect", "{reply}");
    assert!(reply.get("outcomeUnknown").is_none(), "nothing was sent: {reply}");
    assert!(started.elapsed() < Duration::from_secs(3), "refused at once, not after the deadline");

    // A registered terminal that goes away: the purchase fails as surely-not-processed.
    let rig = Rig::new();
    rig.sim.shutdown();
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    assert_eq!(reply["statusCode"], "UnableToConnect", "{reply}");
    assert_eq!(rig.state(&reference), "error", "journaled as surely not processed");
}

#[test]
fn daemon_reports_timeout_and_unknown_outcome_when_the_terminal_never_answers() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let reference = ecr();
    let started = Instant::now();
    let reply = rig.purchase(&reference, "10.00");
    let waited = started.elapsed();
    assert_eq!(reply["statusCode"], "TIMEOUT", "{reply}");
    assert_eq!((reply["outcomeUnknown"].as_bool(), reply["ecrReferenceNo"].as_str()), (Some(true), Some(&*reference)));
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(8), "answered after {waited:?}");
    assert_eq!(rig.state(&reference), "unknown");
    // The terminal did charge it: recovery finds it with DUPLICATE, never by sending it again.
    assert_eq!(rig.resolved(&reference, "10.00"), "approved");
    assert!(approved(&rig.purchase(&ecr(), "11.00")), "the terminal is usable again");
}

#[test]
fn daemon_assembles_a_reply_sent_byte_by_byte() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::ByteByByte(Duration::from_millis(2)), FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    assert!(approved(&reply), "{reply}");
    assert_eq!((rig.charges(&reference), rig.state(&reference).as_str()), (1, "approved"));
}

#[test]
fn daemon_assembles_a_reply_split_over_several_writes() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::Split(7), FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.51");
    assert_eq!((reply["statusCode"].as_str(), reply["responseCode"].as_str()), (Some("200"), Some("116")), "{reply}");
    assert_eq!(rig.state(&reference), "declined");
}

#[test]
fn daemon_gives_each_request_its_own_reply_when_two_replies_arrive_in_one_read() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::TwoReplies, FaultScope::Next(1));
    let (first, second) = (ecr(), ecr());
    let reply = rig.purchase(&first, "10.00");
    assert!(approved(&reply), "{reply}");
    assert_eq!(reply["ecrReferenceNo"], first.as_str());
    // The copy still buffered must not be taken as the answer to the next request.
    let reply = rig.purchase(&second, "11.00");
    assert!(approved(&reply), "{reply}");
    assert_eq!(reply["ecrReferenceNo"], second.as_str());
    let transaction = reply["transaction"].as_str().unwrap_or_default();
    assert!(transaction.contains(&second) && !transaction.contains(&first), "{transaction}");
    assert_eq!((rig.charges(&first), rig.charges(&second)), (1, 1));
}

#[test]
fn daemon_skips_garbage_before_the_reply() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::Garbage, FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    assert!(approved(&reply), "{reply}");
    assert_eq!(rig.state(&reference), "approved");
}

#[test]
fn daemon_times_out_on_garbage_instead_of_a_reply_and_keeps_serving() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::GarbageOnly, FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    assert_eq!(reply["statusCode"], "TIMEOUT", "{reply}");
    assert_eq!(reply["outcomeUnknown"], true, "{reply}");
    assert_eq!(rig.resolved(&reference, "10.00"), "approved");
    assert!(approved(&rig.purchase(&ecr(), "12.00")));
}

#[test]
fn daemon_reports_an_unknown_outcome_when_the_link_closes_after_the_request_and_never_resends() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    assert_eq!((reply["outcomeUnknown"].as_bool(), reply["approved"].as_bool()), (Some(true), Some(false)), "{reply}");
    assert_eq!(rig.state(&reference), "unknown");
    assert_eq!(rig.resolved(&reference, "10.00"), "approved");
    assert_eq!(rig.charges(&reference), 1, "charged once");
}

#[test]
fn daemon_never_reads_a_reply_cut_half_way_as_a_decline() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::CloseMidReply, FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    // Either the response code arrived whole (and says approved: docs/protocol.md D4 takes a frame
    // without ETX), or the outcome is unknown and recovery finds the approval.
    if reply["outcomeUnknown"] == true {
        assert_eq!(rig.resolved(&reference, "10.00"), "approved");
    } else {
        assert!(approved(&reply), "half a reply is never a decline: {reply}");
        assert_eq!(rig.state(&reference), "approved");
    }
    assert_eq!(rig.charges(&reference), 1);
}

#[test]
fn daemon_recovers_from_a_terminal_reboot_with_register_required_then_register() {
    let rig = Rig::new();
    assert!(approved(&rig.purchase(&ecr(), "10.00")));
    rig.sim.reboot();
    let lost = rig.purchase(&ecr(), "10.00");
    assert_eq!(lost["statusCode"], "REGISTER_REQUIRED", "the terminal's 1003 drops the registration: {lost}");
    let status = rig.http.get(&format!("/registrationStatus?ip=127.0.0.1&port={}", rig.port));
    assert_eq!(status.body["registered"], false, "{:?}", status.body);
    // Refused locally now: nothing reaches the terminal until REGISTER.
    let sent = rig.sim.requests_received();
    let refused = rig.purchase(&ecr(), "10.00");
    assert_eq!(refused["statusCode"], "REGISTER_REQUIRED");
    assert_eq!(rig.sim.requests_received(), sent, "nothing was sent");
    let registered = rig.tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
    assert_eq!(registered["statusCode"], "200", "{registered}");
    let reference = ecr();
    assert!(approved(&rig.purchase(&reference, "13.00")), "works again after REGISTER");
    assert_eq!(rig.charges(&reference), 1);
}

#[test]
fn daemon_waits_for_a_slow_terminal_within_its_deadline() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::Delay(Duration::from_millis(1500)), FaultScope::Next(1));
    let reply = rig.purchase(&ecr(), "10.00");
    assert!(approved(&reply), "{reply}");
}

#[test]
fn daemon_passes_a_busy_terminal_reply_on_as_a_result_and_charges_nothing() {
    let rig = Rig::new();
    rig.sim.set_fault(Fault::Busy, FaultScope::Next(1));
    let reference = ecr();
    let reply = rig.purchase(&reference, "10.00");
    assert_eq!((reply["statusCode"].as_str(), reply["responseCode"].as_str()), (Some("200"), Some("923")), "{reply}");
    assert_eq!(reply["approved"], false);
    assert_eq!(rig.charges(&reference), 0);
}

#[test]
fn daemon_serves_other_terminals_while_one_never_answers() {
    let stuck = Rig::new();
    let other = Simulator::start(SimConfig { registered: true, ..SimConfig::default() }).unwrap();
    let registered = stuck.http.tcp(other.addr().port(), json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
    assert_eq!(registered["statusCode"], "200");
    stuck.sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| stuck.purchase(&ecr(), "10.00"));
        wait_for("the stuck purchase to be sent", Duration::from_secs(5), || stuck.sim.journal().len() == 1);
        let started = Instant::now();
        let reply = stuck
            .http
            .tcp(other.addr().port(), json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": ecr()}));
        assert!(approved(&reply), "{reply}");
        assert!(started.elapsed() < Duration::from_secs(2), "not queued behind the stuck terminal");
        assert_eq!(waiting.join().unwrap()["statusCode"], "TIMEOUT");
    });
    other.shutdown();
}

#[test]
fn daemon_reports_a_lost_reconciliation_reply_as_unknown_and_never_closes_the_batch_twice() {
    // A fresh daemon per fault: recovery (woken by the retry) keeps the terminal busy a moment.
    for fault in [Fault::CloseAfterRequest, Fault::NeverAnswer] {
        let rig = Rig::new();
        assert!(approved(&rig.purchase(&ecr(), "10.00")));
        let reconciliations = || rig.sim.received().iter().filter(|f| f.windows(4).any(|w| w == b"\xfcB1\xfc")).count();
        rig.sim.set_fault(fault.clone(), FaultScope::Next(1));
        let reference = ecr();
        let reply = rig.tcp(json!({"txnType": "RECONCILIATION", "ecrReferenceNo": reference}));
        assert_eq!(reply["outcomeUnknown"], true, "{fault:?}: the terminal may have closed the batch: {reply}");
        assert_eq!(rig.state(&reference), "unknown", "{fault:?}: never journaled as surely failed");
        let sent = reconciliations();
        let again = rig.tcp(json!({"txnType": "RECONCILIATION", "ecrReferenceNo": reference}));
        assert_eq!(again["statusCode"], "OUTCOME_UNKNOWN", "{fault:?}: {again}");
        assert_eq!(reconciliations(), sent, "{fault:?}: a retry is not sent: the batch is not closed twice");
    }
}
