//! The SDK's `Terminal` against the simulated terminal over real TCP sockets. Each test is named
//! as the promise it checks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cash_register, ecr, fast_config, sim, tcp_terminal, wait_until};
use nami_sdk::{
    Amount, BillNumber, BillerId, Original, OriginalDate, PreviousEcrNo, ResponseView, Rrn, Signature, TerminalError,
    TerminalEvent, TerminalParameters, TxnResult,
};
use nami_sim::{Fault, FaultScope};

fn sar(text: &str) -> Amount {
    Amount::from_sar(text).unwrap()
}

fn original_of(result: &TxnResult) -> Original {
    Original {
        rrn: Rrn::parse(&result.field("rrn").expect("an RRN")).unwrap(),
        date: Some(OriginalDate::parse(&chrono_free_today()).unwrap()),
        approval_code: Some(
            nami_sdk::ApprovalCode::parse(&result.field("approvalCode").expect("an approval code")).unwrap(),
        ),
    }
}

/// Today's date as ddMMyy, taken from a fresh request date.
fn chrono_free_today() -> String {
    nami_sdk::TxnDate::now().as_str()[..6].to_owned()
}

#[test]
fn the_mandatory_sequence_register_session_purchase_end_session_works() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.connect().unwrap();
    let registered = terminal.register(&cash_register()).unwrap();
    assert!(registered.approved, "{registered:?}");
    assert_eq!(registered.terminal_id.as_ref(), Some(&sim.terminal_id()));
    assert!(terminal.start_session().unwrap().approved);
    let reference = ecr();
    let purchase = terminal.purchase(sar("10.00"), &reference, true).unwrap();
    assert!(purchase.approved, "{purchase:?}");
    assert_eq!(purchase.response_code, "000");
    assert_eq!(purchase.view(), purchase.response.view(nami_sdk::Layout::V35));
    let ResponseView::Card(card) = purchase.view() else { panic!("a card reply") };
    assert_eq!(card.amount, Some(sar("10.00")));
    assert_eq!(card.ecr_reference.as_deref(), Some(reference.as_str()));
    assert!(card.masked_pan.unwrap().contains('*'), "the PAN is masked");
    assert!(terminal.end_session().unwrap().approved);
    terminal.disconnect();
}

#[test]
fn the_result_carries_the_terminal_id_and_the_signature_of_the_request() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    let reference = ecr();
    let result = terminal.check_status(&reference).unwrap();
    let terminal_id = sim.terminal_id();
    assert_eq!(result.terminal_id.as_ref(), Some(&terminal_id));
    assert_eq!(result.signature, Some(Signature::compute(&reference, &terminal_id)));
    assert_eq!(result.ecr_reference.as_ref(), Some(&reference));
    assert!(!result.raw.is_empty());
}

#[test]
fn every_operation_gets_an_answer_from_the_terminal() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();

    let purchase = terminal.purchase(sar("25.00"), &ecr(), false).unwrap();
    assert!(purchase.approved, "purchase {purchase:?}");
    let refund = terminal.refund(sar("5.00"), &original_of(&purchase), &ecr(), false).unwrap();
    assert!(refund.approved, "refund {refund:?}");

    let cashback = terminal.purchase_with_cashback(sar("20.00"), sar("5.00"), &ecr(), false).unwrap();
    assert!(cashback.approved, "cashback {cashback:?}");
    let ResponseView::Card(card) = cashback.view() else { panic!("a card reply") };
    assert_eq!(card.cashback_amount, Some(sar("5.00")));

    let auth = terminal.pre_authorization(sar("100.00"), &ecr(), false).unwrap();
    assert!(auth.approved, "pre-auth {auth:?}");
    let original = original_of(&auth);
    let extension = terminal.pre_auth_extension(&original, &ecr(), false).unwrap();
    assert!(extension.approved, "extension {extension:?}");
    let completion = terminal.pre_auth_completion(sar("80.00"), &original, true, &ecr(), false).unwrap();
    assert!(completion.approved, "completion {completion:?}");
    let auth2 = terminal.pre_authorization(sar("50.00"), &ecr(), false).unwrap();
    let void = terminal.pre_auth_void(sar("50.00"), &original_of(&auth2), &ecr(), false).unwrap();
    assert!(void.approved, "void {void:?}");

    let advance = terminal.cash_advance(sar("300.00"), &ecr(), false).unwrap();
    assert!(advance.approved, "cash advance {advance:?}");
    let bill = terminal
        .bill_payment(
            sar("42.00"),
            &BillerId::parse("123").unwrap(),
            &BillNumber::parse("654321").unwrap(),
            &ecr(),
            false,
        )
        .unwrap();
    assert!(bill.approved, "bill payment {bill:?}");

    let last = ecr();
    let purchase = terminal.purchase(sar("7.00"), &last, false).unwrap();
    assert!(purchase.approved);
    let reversal = terminal.reversal(&ecr(), false).unwrap();
    assert!(reversal.approved, "reversal {reversal:?}");
    assert_eq!(reversal.response_code, "400");

    let duplicate = terminal.duplicate(&PreviousEcrNo::from(&last), &ecr()).unwrap();
    let ResponseView::Repeat(repeated) = duplicate.view() else { panic!("a repeat: {duplicate:?}") };
    assert_eq!(repeated.command(), "A1");
    assert_eq!(repeated.ecr_reference().as_deref(), Some(last.as_str()));

    for (name, result) in [
        ("check status", terminal.check_status(&ecr())),
        ("detail report", terminal.detail_report(&ecr())),
        ("summary report", terminal.summary_report(0, &ecr())),
        ("snapshot total", terminal.snapshot_total(&ecr())),
        ("parameter download", terminal.parameter_download(&ecr())),
        ("partial download", terminal.partial_download(&ecr())),
        ("get parameters", terminal.get_parameters(&ecr())),
        (
            "set parameters",
            terminal.set_parameters(
                &TerminalParameters {
                    vendor_id: "01".parse().unwrap(),
                    vendor_terminal_type: "02".parse().unwrap(),
                    trsm_id: "123456".parse().unwrap(),
                    vendor_key_index: "03".parse().unwrap(),
                    sama_key_index: "04".parse().unwrap(),
                },
                &ecr(),
            ),
        ),
        ("reconciliation", terminal.reconciliation(&ecr(), false)),
    ] {
        let result = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(result.approved, "{name}: {result:?}");
    }
}

#[test]
fn a_financial_request_before_register_is_refused_locally_and_nothing_is_sent() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    let error = terminal.purchase(sar("1.00"), &ecr(), false).unwrap_err();
    assert!(matches!(error, TerminalError::RegisterRequired { .. }), "{error}");
    assert_eq!(error.status_code(), "REGISTER_REQUIRED");
    assert_eq!(sim.requests_received(), 0);
}

#[test]
fn a_rebooted_terminal_yields_register_required_and_works_again_after_register() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    assert!(terminal.purchase(sar("1.00"), &ecr(), false).unwrap().approved);
    sim.reboot();
    let error = terminal.purchase(sar("1.00"), &ecr(), false).unwrap_err();
    assert_eq!(error.status_code(), "REGISTER_REQUIRED", "{error}");
    assert!(terminal.registration().is_none(), "the cached registration is dropped");
    terminal.register(&cash_register()).unwrap();
    assert!(terminal.purchase(sar("1.00"), &ecr(), false).unwrap().approved);
}

#[test]
fn declines_are_results_not_errors() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    let declined = terminal.purchase(sar("10.51"), &ecr(), false).unwrap();
    assert!(!declined.approved);
    assert_eq!(declined.response_code, "116");
    let wrong_pin = terminal.purchase(sar("10.05"), &ecr(), false).unwrap();
    assert_eq!((wrong_pin.response_code.as_str(), wrong_pin.approved), ("117", false));
}

#[test]
fn a_second_call_while_the_terminal_is_busy_gets_terminal_busy_at_once() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_card_tap(true);
    let waiting = {
        let terminal = terminal.clone();
        std::thread::spawn(move || terminal.purchase(sar("3.00"), &ecr(), false))
    };
    assert!(wait_until(Duration::from_secs(5), || terminal.is_busy()));
    let started = Instant::now();
    let error = terminal.check_status(&ecr()).unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(100), "refused at once");
    assert!(matches!(error, TerminalError::Busy { .. }), "{error}");
    assert_eq!(error.status_code(), "TERMINAL_BUSY");
    sim.tap_card();
    assert!(waiting.join().unwrap().unwrap().approved);
}

#[test]
fn cancel_from_another_thread_ends_a_waiting_purchase_well_under_a_second() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_card_tap(true);
    let reference = ecr();
    let waiting = {
        let (terminal, reference) = (terminal.clone(), reference.clone());
        std::thread::spawn(move || terminal.purchase(sar("3.00"), &reference, false))
    };
    assert!(wait_until(Duration::from_secs(5), || terminal.is_busy()));
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    assert!(terminal.cancel());
    let error = waiting.join().unwrap().unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(300), "cancel took {took:?}");
    assert_eq!(error.status_code(), "CANCELLED", "{error}");
    let unknown = error.unknown_outcome().expect("a sent purchase is in doubt after a cancel");
    assert_eq!(unknown.ecr_reference, reference);

    // The link is usable again, once the terminal has let go of the abandoned purchase: for a
    // moment after the tap is released it may still answer 923 REQUEST IN PROGRESS (a request sent
    // at once, as the SDK now does, can land in that moment).
    sim.set_card_tap(false);
    assert!(wait_until(Duration::from_secs(2), || terminal.check_status(&ecr()).is_ok_and(|r| r.approved)));
    assert!(!terminal.cancel(), "nothing left to cancel");
}

#[test]
fn a_connection_closed_after_the_request_leaves_the_outcome_unknown_and_nothing_is_resent() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    let before = sim.requests_received();
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let reference = ecr();
    let error = terminal.purchase(sar("9.00"), &reference, false).unwrap_err();
    assert_eq!(error.status_code(), "OUTCOME_UNKNOWN", "{error}");
    assert_eq!(error.unknown_outcome().unwrap().ecr_reference, reference);
    assert_eq!(sim.requests_received(), before + 1, "the purchase was sent exactly once");
    // The next call re-opens the link.
    assert!(terminal.check_status(&ecr()).unwrap().approved);
}

#[test]
fn a_reply_cut_half_way_is_never_read_as_a_decline() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::CloseMidReply, FaultScope::Next(1));
    match terminal.purchase(sar("9.00"), &ecr(), false) {
        // Either the code arrived whole (and says approved), or the outcome is unknown.
        Ok(result) => assert!(result.approved, "{result:?}"),
        Err(error) => assert!(error.unknown_outcome().is_some(), "{error}"),
    }
    assert!(terminal.check_status(&ecr()).unwrap().approved);
}

#[test]
fn a_terminal_that_never_answers_times_out_and_the_purchase_is_in_doubt() {
    let sim = sim();
    let config = nami_sdk::TerminalConfig { card_present_timeout: Duration::from_millis(600), ..fast_config() };
    let terminal = tcp_terminal(&sim, config);
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let started = Instant::now();
    let error = terminal.purchase(sar("2.00"), &ecr(), false).unwrap_err();
    assert_eq!(error.status_code(), "TIMEOUT", "{error}");
    assert!(error.unknown_outcome().is_some());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_reply_sent_byte_by_byte_is_assembled() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::ByteByByte(Duration::from_millis(1)), FaultScope::Next(1));
    assert!(terminal.purchase(sar("4.00"), &ecr(), false).unwrap().approved);
}

#[test]
fn a_slow_terminal_is_waited_for_within_the_deadline() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::Delay(Duration::from_millis(700)), FaultScope::Next(1));
    let started = Instant::now();
    assert!(terminal.purchase(sar("4.00"), &ecr(), false).unwrap().approved);
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[test]
fn the_generic_transact_takes_the_rest_payment_request_fields() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    let reference = ecr();
    let body = format!(r#"{{"txnType":"PURCHASE","amount":"15.50","ecrReferenceNo":"{reference}","print":"0"}}"#);
    let payment: nami_sdk::PaymentRequest = serde_json::from_str(&body).unwrap();
    let result = terminal.transact_payment(&payment).unwrap();
    assert!(result.approved);
    assert_eq!(result.field("amount").as_deref(), Some("000000001550"));
    // DUPLICATE without prevEcrNo repeats the last transaction.
    let body = format!(r#"{{"txnType":23,"ecrReferenceNo":"{}"}}"#, ecr());
    let duplicate = terminal.transact_payment(&serde_json::from_str(&body).unwrap()).unwrap();
    let ResponseView::Repeat(repeated) = duplicate.view() else { panic!("a repeat") };
    assert_eq!(repeated.ecr_reference().as_deref(), Some(reference.as_str()));
    // A bad field is named and nothing is sent.
    let before = sim.requests_received();
    let bad: nami_sdk::PaymentRequest =
        serde_json::from_str(r#"{"txnType":"PURCHASE","amount":"abc","ecrReferenceNo":"12345678000999"}"#).unwrap();
    let error = terminal.transact_payment(&bad).unwrap_err();
    assert_eq!(error.status_code(), "INVALID_AMOUNT");
    assert_eq!(sim.requests_received(), before);
}

#[test]
fn a_reply_split_over_several_writes_is_assembled() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::Split(7), FaultScope::Next(1));
    assert!(terminal.purchase(sar("4.00"), &ecr(), false).unwrap().approved);
}

#[test]
fn two_replies_in_one_write_do_not_leak_into_the_next_call() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::TwoReplies, FaultScope::Next(1));
    let first = ecr();
    let result = terminal.purchase(sar("4.00"), &first, false).unwrap();
    assert_eq!(result.response.ecr_reference().as_deref(), Some(first.as_str()));
    let second = ecr();
    let result = terminal.purchase(sar("5.00"), &second, false).unwrap();
    assert_eq!(result.response.ecr_reference().as_deref(), Some(second.as_str()));
}

#[test]
fn garbage_before_the_reply_is_skipped() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::Garbage, FaultScope::Next(1));
    assert!(terminal.purchase(sar("4.00"), &ecr(), false).unwrap().approved);
}

#[test]
fn garbage_instead_of_a_reply_ends_in_a_timeout_not_a_crash() {
    let sim = sim();
    let config = nami_sdk::TerminalConfig { admin_timeout: Duration::from_millis(800), ..fast_config() };
    let terminal = tcp_terminal(&sim, config);
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::GarbageOnly, FaultScope::Next(1));
    let error = terminal.check_status(&ecr()).unwrap_err();
    assert!(matches!(error.status_code().as_str(), "TIMEOUT" | "ERROR"), "{error}");
    assert!(terminal.check_status(&ecr()).unwrap().approved);
}

#[test]
fn a_dropped_tcp_link_is_reopened_on_the_next_call() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let error = terminal.check_status(&ecr()).unwrap_err();
    assert_eq!(error.status_code(), "ERROR", "a status request is not a payment: {error}");
    assert!(error.unknown_outcome().is_none());
    assert!(terminal.purchase(sar("1.00"), &ecr(), false).unwrap().approved);
}

#[test]
fn an_unreachable_terminal_is_unable_to_connect() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let terminal = nami_sdk::Terminal::tcp("127.0.0.1", port, fast_config());
    let error = terminal.register(&cash_register()).unwrap_err();
    assert_eq!(error.status_code(), "UnableToConnect", "{error}");
}

#[test]
fn a_busy_terminal_reply_is_a_result_with_its_code() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::Busy, FaultScope::Next(1));
    let result = terminal.purchase(sar("1.00"), &ecr(), false).unwrap();
    assert!(!result.approved);
    assert_eq!(result.response_code, "923");
}

#[test]
fn events_follow_the_exchange_in_order() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    let events: Arc<Mutex<Vec<TerminalEvent>>> = Arc::default();
    let sink = events.clone();
    terminal.set_listener(Some(Arc::new(move |key: &str, event: &TerminalEvent| {
        assert!(key.starts_with("127.0.0.1:"));
        sink.lock().unwrap().push(event.clone());
    })));
    terminal.register(&cash_register()).unwrap();
    terminal.purchase(sar("1.00"), &ecr(), false).unwrap();
    let events = events.lock().unwrap().clone();
    let names: Vec<&str> = events
        .iter()
        .map(|e| match e {
            TerminalEvent::Connecting => "connecting",
            TerminalEvent::Connected => "connected",
            TerminalEvent::RequestSent { .. } => "sent",
            TerminalEvent::WaitingForCard => "card",
            TerminalEvent::WaitingForTerminal => "terminal",
            TerminalEvent::ResponseReceived { .. } => "received",
            TerminalEvent::Registered { .. } => "registered",
            _ => "other",
        })
        .collect();
    assert_eq!(
        names,
        ["connecting", "connected", "sent", "terminal", "received", "registered", "sent", "card", "received"]
    );
    let json = serde_json::to_string(&events[2]).unwrap();
    assert!(json.contains(r#""event":"requestSent""#) && json.contains(r#""txnType":"REGISTER""#), "{json}");
}

#[test]
fn a_request_whose_caller_has_gone_is_never_written() {
    let sim = sim();
    let terminal = tcp_terminal(&sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    let sent = sim.requests_received();
    let reference = ecr();
    let mut request = nami_sdk::Request::new(nami_sdk::TxnType::Purchase, nami_sdk::TxnDate::now());
    request.amount = Some(sar("10.00"));
    request.ecr_reference = Some(reference.clone());
    request.print = Some(true);
    let gone = terminal.transact_for(&request, &|| false);
    assert_eq!(gone.unwrap_err(), TerminalError::CallerGone);
    assert_eq!(sim.requests_received(), sent, "nothing was written");
    assert!(sim.journal().iter().all(|t| t.ecr_reference != reference.as_str()));
    // A caller that still waits is served.
    assert!(terminal.transact_for(&request, &|| true).unwrap().approved);
}
