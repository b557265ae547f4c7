//! The tokio driver of a terminal session (`Terminal::transact_async`) against the simulated
//! terminal over real TCP sockets: the same promises as the blocking driver (`terminal_tcp.rs`),
//! and the one it exists for: a call waiting for a card holds no thread.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{cash_register, ecr, fast_config, sim, tcp_terminal};
use nami_sdk::{Amount, EcrReference, Request, Terminal, TerminalError, TerminalEvent, TxnDate, TxnType};
use nami_sim::{Fault, FaultScope, Simulator};

fn purchase(amount: &str, reference: &EcrReference) -> Request {
    let mut request = Request::new(TxnType::Purchase, TxnDate::now());
    request.amount = Some(Amount::from_sar(amount).unwrap());
    request.ecr_reference = Some(reference.clone());
    request.print = Some(false);
    request
}

fn check_status() -> Request {
    let mut request = Request::new(TxnType::CheckStatus, TxnDate::now());
    request.ecr_reference = Some(ecr());
    request
}

/// A registered terminal (REGISTER through the blocking driver: the two share the link).
fn registered(sim: &Simulator) -> Terminal {
    let terminal = tcp_terminal(sim, fast_config());
    terminal.register(&cash_register()).unwrap();
    terminal
}

async fn wait_busy(terminal: &Terminal) {
    let started = Instant::now();
    while !terminal.is_busy() {
        assert!(started.elapsed() < Duration::from_secs(5), "the call never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_purchase_is_answered_and_the_blocking_driver_shares_the_link_after_it() {
    let sim = sim();
    let terminal = registered(&sim);
    let reference = ecr();
    let result = terminal.transact_async(&purchase("4.00", &reference)).await.unwrap();
    assert!(result.approved, "{result:?}");
    assert_eq!(result.response.ecr_reference().as_deref(), Some(reference.as_str()));
    assert!(result.signature.is_some());
    // The socket went back to the blocking form: the next calls, blocking and async, reuse it.
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = opened.clone();
    terminal.set_listener(Some(Arc::new(move |_: &str, event: &TerminalEvent| {
        if *event == TerminalEvent::Connecting {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    })));
    assert!(terminal.check_status(&ecr()).unwrap().approved);
    assert!(terminal.transact_async(&check_status()).await.unwrap().approved);
    assert!(terminal.check_status(&ecr()).unwrap().approved);
    assert_eq!(opened.load(Ordering::SeqCst), 0, "the link was re-opened");
    sim.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn a_hundred_purchases_wait_for_their_cards_at_once_on_a_single_thread() {
    // Each terminal takes a second to answer. On one thread, a driver that held its thread while
    // waiting would take a hundred seconds; this one waits for all of them at once.
    let terminals: Vec<(Simulator, Terminal)> = (0..100)
        .map(|_| {
            let sim = common::sim();
            let terminal = tcp_terminal(&sim, fast_config());
            (sim, terminal)
        })
        .collect();
    for (sim, terminal) in &terminals {
        terminal.transact_async(&register_request()).await.unwrap();
        sim.set_fault(Fault::Delay(Duration::from_secs(1)), FaultScope::Next(1));
    }
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for (_, terminal) in &terminals {
        let terminal = terminal.clone();
        calls.spawn(async move {
            let reference = ecr();
            let result = terminal.transact_async(&purchase("4.00", &reference)).await;
            (reference, result)
        });
    }
    let results = calls.join_all().await;
    let took = started.elapsed();
    assert_eq!(results.len(), 100);
    for (reference, result) in results {
        let result = result.unwrap();
        assert!(result.approved);
        assert_eq!(result.response.ecr_reference().as_deref(), Some(reference.as_str()));
    }
    assert!(took < Duration::from_secs(8), "100 one-second waits took {took:?} on one thread");
    for (sim, _) in terminals {
        sim.shutdown();
    }
}

fn register_request() -> Request {
    let mut request = Request::new(TxnType::Register, TxnDate::now());
    request.cash_register_no = Some(cash_register());
    request
}

#[tokio::test(flavor = "current_thread")]
async fn cancel_ends_a_waiting_async_purchase_at_once_and_leaves_it_unknown() {
    let sim = sim();
    let terminal = registered(&sim);
    sim.set_card_tap(true);
    let reference = ecr();
    let request = purchase("3.00", &reference);
    let waiting = terminal.transact_async(&request);
    let canceller = async {
        wait_busy(&terminal).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let asked = Instant::now();
        assert!(terminal.cancel());
        asked
    };
    let (error, asked) = tokio::join!(waiting, canceller);
    let took = asked.elapsed();
    let error = error.unwrap_err();
    assert!(took < Duration::from_millis(100), "cancel took {took:?}");
    assert_eq!(error.status_code(), "CANCELLED", "{error}");
    assert_eq!(error.unknown_outcome().unwrap().ecr_reference, reference);
    assert!(!terminal.is_busy());
    sim.set_card_tap(false);
    let started = Instant::now();
    loop {
        // The terminal may answer 923 for a moment while it lets go of the abandoned purchase.
        if terminal.transact_async(&check_status()).await.is_ok_and(|r| r.approved) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "the link did not recover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_async_call_while_one_waits_gets_terminal_busy_at_once() {
    let sim = sim();
    let terminal = registered(&sim);
    sim.set_card_tap(true);
    let request = purchase("3.00", &ecr());
    let waiting = terminal.transact_async(&request);
    let second = async {
        wait_busy(&terminal).await;
        let started = Instant::now();
        let error = terminal.transact_async(&check_status()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(matches!(error, TerminalError::Busy { .. }), "{error}");
        sim.tap_card();
    };
    let (result, ()) = tokio::join!(waiting, second);
    assert!(result.unwrap().approved);
    sim.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_closed_after_an_async_request_leaves_the_outcome_unknown_and_nothing_is_resent() {
    let sim = sim();
    let terminal = registered(&sim);
    let before = sim.requests_received();
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let reference = ecr();
    let error = terminal.transact_async(&purchase("9.00", &reference)).await.unwrap_err();
    assert_eq!(error.status_code(), "OUTCOME_UNKNOWN", "{error}");
    assert_eq!(error.unknown_outcome().unwrap().ecr_reference, reference);
    assert_eq!(sim.requests_received(), before + 1, "the purchase was sent exactly once");
    assert!(terminal.transact_async(&check_status()).await.unwrap().approved, "the link is re-opened");
    sim.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_call_the_terminal_never_answers_times_out_in_doubt() {
    let sim = sim();
    let config = nami_sdk::TerminalConfig { card_present_timeout: Duration::from_millis(600), ..fast_config() };
    let terminal = tcp_terminal(&sim, config);
    terminal.register(&cash_register()).unwrap();
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let started = Instant::now();
    let error = terminal.transact_async(&purchase("2.00", &ecr())).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.status_code(), "TIMEOUT", "{error}");
    assert!(error.unknown_outcome().is_some());
    assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(3), "{took:?}");
    sim.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn strays_and_a_second_reply_do_not_leak_into_the_next_async_call() {
    let sim = sim();
    let terminal = registered(&sim);
    sim.set_fault(Fault::TwoReplies, FaultScope::Next(1));
    let first = ecr();
    let result = terminal.transact_async(&purchase("4.00", &first)).await.unwrap();
    assert_eq!(result.response.ecr_reference().as_deref(), Some(first.as_str()));
    let second = ecr();
    let result = terminal.transact_async(&purchase("5.00", &second)).await.unwrap();
    assert_eq!(result.response.ecr_reference().as_deref(), Some(second.as_str()));
    sim.set_fault(Fault::Garbage, FaultScope::Next(1));
    assert!(terminal.transact_async(&purchase("4.00", &ecr())).await.unwrap().approved);
    sim.set_fault(Fault::ByteByByte(Duration::from_millis(1)), FaultScope::Next(1));
    assert!(terminal.transact_async(&purchase("4.00", &ecr())).await.unwrap().approved);
    sim.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_async_call_leaves_the_terminal_free_and_its_late_reply_unread() {
    let sim = sim();
    let terminal = registered(&sim);
    sim.set_fault(Fault::Delay(Duration::from_millis(300)), FaultScope::Next(1));
    let abandoned = ecr();
    let request = purchase("4.00", &abandoned);
    let dropped = tokio::time::timeout(Duration::from_millis(100), terminal.transact_async(&request)).await;
    assert!(dropped.is_err(), "the call should still have been waiting");
    assert!(!terminal.is_busy(), "a dropped call must not leave the terminal busy");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let next = ecr();
    let result = terminal.transact_async(&purchase("5.00", &next)).await.unwrap();
    assert_eq!(result.response.ecr_reference().as_deref(), Some(next.as_str()));
    sim.shutdown();
}
