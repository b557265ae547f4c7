//! Every scripted fault, card-tap mode, busy refusals and reboot, over real TCP sockets.

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::{Pos, REPLY_TIMEOUT, duplicate, ecr, plain, purchase, start, start_registered, wait_until};
use nami_sdk::{FrameDecoder, LrcMode, Response, TxnType, encode_fields};
use nami_sim::{Fault, FaultScope, SimConfig};

/// The exact bytes the simulator sends for a reply with these fields.
fn frame_bytes(response: &Response) -> Vec<u8> {
    encode_fields(&response.fields[1..], LrcMode::Skyband)
}

#[test]
fn delay_holds_the_reply_back_for_the_given_time() {
    let sim = start_registered();
    sim.set_fault(Fault::Delay(Duration::from_millis(500)), FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    let started = Instant::now();
    assert!(pos.exchange(&purchase(1, 1_000)).approved());
    assert!(started.elapsed() >= Duration::from_millis(500));
    let started = Instant::now();
    pos.exchange(&purchase(2, 1_000));
    assert!(started.elapsed() < Duration::from_millis(450), "the fault held for one request only");
    sim.shutdown();
}

#[test]
fn never_answer_carries_out_the_request_but_sends_nothing() {
    let sim = start_registered();
    sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    let err = pos.read_frame(Duration::from_millis(400)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(pos.bytes.is_empty());
    assert_eq!(sim.journal().len(), 1, "the purchase happened");
    // The connection is still usable, and DUPLICATE resolves the unknown outcome (D11).
    let repeat = pos.exchange(&duplicate(2, &ecr(1)));
    assert!(repeat.approved());
    sim.shutdown();
}

#[test]
fn byte_by_byte_sends_the_reply_in_many_small_writes() {
    let sim = start_registered();
    sim.set_fault(Fault::ByteByByte(Duration::from_millis(1)), FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    let response = pos.exchange(&plain(TxnType::CheckStatus, 1));
    assert!(response.approved());
    assert!(pos.reads > 10, "arrived in {} reads", pos.reads);
    sim.shutdown();
}

#[test]
fn split_sends_the_reply_in_several_writes() {
    let sim = start_registered();
    sim.set_fault(Fault::Split(3), FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    assert!(pos.exchange(&purchase(1, 1_000)).approved());
    assert!(pos.reads >= 3, "arrived in {} reads", pos.reads);
    sim.shutdown();
}

#[test]
fn two_replies_arrive_in_one_write() {
    let sim = start_registered();
    sim.set_fault(Fault::TwoReplies, FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    let first = pos.exchange(&purchase(1, 1_000));
    let second = pos.read_response();
    assert_eq!(first.fields, second.fields);
    let mut expected = frame_bytes(&first);
    expected.extend(frame_bytes(&first));
    assert_eq!(pos.bytes, expected);
    assert_eq!(sim.journal().len(), 1, "one transaction, two replies");
    sim.shutdown();
}

#[test]
fn close_after_request_closes_without_a_byte_and_keeps_the_transaction() {
    let sim = start_registered();
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    let (bytes, eof) = pos.read_until_eof(Duration::from_secs(2));
    assert!(eof && bytes.is_empty(), "EOF without a reply, got {bytes:?}");
    let mut again = Pos::connect(sim.addr());
    assert!(again.exchange(&duplicate(2, &ecr(1))).approved(), "recoverable with DUPLICATE");
    sim.shutdown();
}

#[test]
fn close_mid_reply_sends_part_of_the_reply_then_closes() {
    let sim = start_registered();
    sim.set_fault(Fault::CloseMidReply, FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    let (bytes, eof) = pos.read_until_eof(Duration::from_secs(2));
    assert!(eof);
    assert!(!bytes.is_empty() && bytes[0] == 0x02, "a partial frame: {bytes:?}");
    assert!(!bytes.contains(&0x03), "no ETX: the frame is cut");
    let full = frame_bytes(&Response::from_fields(sim.journal()[0].reply.clone()));
    assert!(full.starts_with(&bytes), "the start of the real reply");
    sim.shutdown();
}

#[test]
fn garbage_comes_before_a_reply_that_still_decodes() {
    let sim = start_registered();
    sim.set_fault(Fault::Garbage, FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    let response = pos.exchange(&purchase(1, 1_000));
    assert!(response.approved());
    assert_ne!(pos.bytes[0], 0x02, "garbage first");
    assert!(pos.bytes.ends_with(&frame_bytes(&response)));
    sim.shutdown();
}

#[test]
fn garbage_only_sends_no_frame_and_the_link_stays_usable() {
    let sim = start_registered();
    sim.set_fault(Fault::GarbageOnly, FaultScope::Next(1));
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    let mut bytes = Vec::new();
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while bytes.is_empty() && Instant::now() < deadline {
        let (got, eof) = pos.read_until_eof(Duration::from_millis(200));
        assert!(!eof, "the connection stays open");
        bytes.extend(got);
    }
    assert!(!bytes.is_empty(), "garbage arrives");
    let mut decoder = FrameDecoder::new();
    decoder.push(&bytes);
    assert!(decoder.next_frame().is_none() && decoder.finish().is_none(), "no frame in {bytes:?}");
    assert!(pos.exchange(&plain(TxnType::CheckStatus, 2)).approved());
    sim.shutdown();
}

#[test]
fn busy_fault_refuses_with_923_at_once() {
    let sim = start_registered();
    sim.set_fault(Fault::Busy, FaultScope::Next(2));
    let mut pos = Pos::connect(sim.addr());
    for sequence in 1..=2 {
        let response = pos.exchange(&purchase(sequence, 1_000));
        assert_eq!((response.code(), response.message().as_str()), ("923", "REQUEST IN PROGRESS"));
    }
    assert!(sim.journal().is_empty());
    assert!(pos.exchange(&purchase(3, 1_000)).approved(), "the fault ran out");
    sim.shutdown();
}

#[test]
fn decline_fault_forces_the_response_code() {
    let sim = start_registered();
    sim.set_fault(Fault::Decline("100".into()), FaultScope::Always);
    let mut pos = Pos::connect(sim.addr());
    for sequence in 1..=2 {
        let response = pos.exchange(&purchase(sequence, 1_000));
        assert_eq!(response.code(), "100");
        assert!(!response.approved());
    }
    sim.clear_faults();
    assert!(pos.exchange(&purchase(3, 1_000)).approved());
    sim.shutdown();
}

#[test]
fn card_tap_mode_holds_the_purchase_until_the_tap_and_refuses_others_as_busy() {
    let sim = start(SimConfig { card_tap: true, registered: true, ..SimConfig::default() });
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    wait_until(REPLY_TIMEOUT, "the purchase to wait for a card", || sim.waiting_for_card());

    // A second connection, and a second request on the first, are refused at once.
    let mut other = Pos::connect(sim.addr());
    let started = Instant::now();
    assert_eq!(other.exchange(&plain(TxnType::CheckStatus, 2)).code(), "923");
    assert!(started.elapsed() < Duration::from_secs(1));
    pos.send(&plain(TxnType::CheckStatus, 3));
    let refused = pos.read_response();
    assert_eq!((refused.command(), refused.code()), ("C3", "923"));
    assert!(sim.journal().is_empty(), "nothing happens before the tap");

    sim.tap_card();
    let response = pos.read_response();
    assert_eq!(response.command(), "A1");
    assert!(response.approved());
    assert!(!sim.waiting_for_card());
    assert!(other.exchange(&plain(TxnType::CheckStatus, 4)).approved(), "free again");
    sim.shutdown();
}

#[test]
fn a_card_that_never_comes_declines_after_the_card_tap_timeout() {
    let sim = start(SimConfig {
        card_tap: true,
        registered: true,
        card_tap_timeout: Duration::from_millis(200),
        ..SimConfig::default()
    });
    let mut pos = Pos::connect(sim.addr());
    let response = pos.exchange(&purchase(1, 1_000));
    assert_eq!((response.code(), response.message().as_str()), ("100", "CARD READ TIMEOUT"));
    sim.set_card_tap(false);
    assert!(pos.exchange(&purchase(2, 1_000)).approved(), "card-tap mode off");
    sim.shutdown();
}

#[test]
fn reboot_forgets_the_registration_but_keeps_the_journal() {
    let sim = start(SimConfig::default());
    let mut pos = Pos::connect(sim.addr());
    pos.register();
    assert!(pos.exchange(&purchase(1, 1_000)).approved());
    sim.reboot();
    assert!(!sim.is_registered());
    assert_eq!(pos.exchange(&purchase(2, 1_000)).code(), "1003", "the same connection still works");
    pos.register();
    assert!(pos.exchange(&duplicate(3, &ecr(1))).approved(), "the journal survived");
    sim.shutdown();
}

#[test]
fn always_faults_hold_until_cleared_and_next_faults_run_out() {
    let sim = start_registered();
    sim.set_fault(Fault::Split(2), FaultScope::Always);
    sim.set_fault(Fault::Garbage, FaultScope::Next(1));
    assert_eq!(sim.faults().len(), 2);
    let mut pos = Pos::connect(sim.addr());
    pos.exchange(&purchase(1, 1_000));
    assert_eq!(sim.faults(), vec![(Fault::Split(2), None)]);
    pos.exchange(&purchase(2, 1_000));
    sim.clear_faults();
    assert!(sim.faults().is_empty());
    sim.shutdown();
}

#[test]
fn a_delayed_exchange_does_not_stop_shutdown() {
    let sim = start(SimConfig { card_tap: true, registered: true, ..SimConfig::default() });
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    wait_until(REPLY_TIMEOUT, "the card wait", || sim.waiting_for_card());
    let started = Instant::now();
    sim.shutdown();
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
}

#[test]
fn a_pos_that_hangs_up_during_the_card_wait_frees_the_terminal() {
    let sim = start(SimConfig { card_tap: true, registered: true, ..SimConfig::default() });
    let mut pos = Pos::connect(sim.addr());
    pos.send(&purchase(1, 1_000));
    wait_until(REPLY_TIMEOUT, "the card wait", || sim.waiting_for_card());
    drop(pos);
    wait_until(REPLY_TIMEOUT, "the wait to be abandoned", || !sim.waiting_for_card());
    let mut other = Pos::connect(sim.addr());
    assert!(other.exchange(&plain(TxnType::CheckStatus, 2)).approved(), "not busy any more");
    assert!(sim.journal().is_empty(), "the abandoned purchase never happened");
    sim.shutdown();
}
