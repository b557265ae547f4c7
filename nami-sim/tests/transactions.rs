//! The simulator as a terminal, over real TCP sockets, checked with the `nami-sdk` codec only:
//! every transaction type, registration, signatures, the journal and its totals, bad frames.

mod common;

use std::time::Duration;

use common::{
    Port, Pos, REPLY_TIMEOUT, bill_payment, card, cashback, duplicate, ecr, encode, field, plain, preauth_followup,
    purchase, refund, setup, start, start_registered, summary_page, tid,
};
use nami_sdk::protocol::response::{ResponseView, TotalsReport};
use nami_sdk::{Layout, LrcMode, Response, TerminalId, TxnType, encode_fields};
use nami_sim::{CARDS, MERCHANT_NAME, SimConfig};

fn totals(response: &Response) -> TotalsReport {
    match response.view(Layout::V35) {
        ResponseView::Totals(report) => report,
        other => panic!("not a totals reply: {other:?}"),
    }
}

/// (count, halalas) of one named pair of one scheme, or None for a "no transactions" block.
fn pair(report: &TotalsReport, scheme: &str, name: &str) -> Option<(u64, u64)> {
    let block = report.schemes.iter().find(|s| s.scheme == scheme).unwrap_or_else(|| panic!("no {scheme} block"));
    block.totals.iter().find(|t| t.name == name).map(|t| (t.count, t.amount.halalas()))
}

#[test]
fn every_transaction_type_gets_an_approving_reply_the_codec_parses() {
    let sim = start(SimConfig::default());
    let mut pos = Pos::connect(sim.addr());
    assert!(pos.register().approved());
    assert!(pos.exchange(&setup(TxnType::StartSession)).approved());

    let mut sequence = 0;
    let mut next = || {
        sequence += 1;
        sequence
    };
    let approved = |pos: &mut Pos<_>, request: nami_sdk::Request| -> Response {
        let response = pos.exchange(&request);
        assert!(response.approved(), "{:?} not approved: {:?}", request.txn_type, response.fields);
        if request.txn_type.spec().is_signed() {
            let reference = request.ecr_reference.as_ref().unwrap().as_str().to_owned();
            // Every signed reply ends with the request's ECR reference and signature (§5.1).
            let len = response.fields.len();
            assert_eq!(response.fields[len - 2], reference, "{:?}", request.txn_type);
            assert_eq!(response.fields[len - 1].len(), 64, "{:?}", request.txn_type);
        }
        response
    };

    let sale = approved(&mut pos, purchase(next(), 10_000));
    let sale_rrn = field(&sale, "rrn");
    approved(&mut pos, cashback(next(), 5_000, 1_000));
    approved(&mut pos, card(TxnType::CashAdvance, next(), 20_000));
    approved(&mut pos, bill_payment(next(), 7_500));
    approved(&mut pos, refund(next(), 2_500, &sale_rrn));
    let auth = approved(&mut pos, card(TxnType::PreAuthorization, next(), 30_000));
    let (auth_rrn, auth_code) = (field(&auth, "rrn"), field(&auth, "approvalCode"));
    for txn_type in [TxnType::PreAuthExtension, TxnType::PreAuthCompletion, TxnType::PreAuthVoid] {
        approved(&mut pos, preauth_followup(txn_type, next(), 30_000, &auth_rrn, &auth_code));
    }
    approved(&mut pos, purchase(next(), 1_000));
    approved(&mut pos, plain(TxnType::Reversal, next()));
    for txn_type in [
        TxnType::ParameterDownload,
        TxnType::SetParameter,
        TxnType::GetParameter,
        TxnType::SetTerminalLanguage,
        TxnType::DetailReport,
        TxnType::SummaryReport,
        TxnType::CheckStatus,
        TxnType::PartialDownload,
        TxnType::SnapshotTotal,
        TxnType::Reconciliation,
    ] {
        approved(&mut pos, plain(txn_type, next()));
    }
    let first = ecr(1);
    let repeat = approved(&mut pos, duplicate(next(), &first));
    assert_eq!(repeat.repeated().unwrap().command(), "A1");
    assert!(pos.exchange(&setup(TxnType::EndSession)).approved());

    // Every type of the table was exercised.
    let seen: std::collections::HashSet<Vec<u8>> = sim.received().iter().map(|raw| raw[2..4].to_vec()).collect();
    for txn_type in TxnType::all() {
        assert!(seen.contains(txn_type.command().as_bytes()), "{txn_type:?} never sent");
    }
    sim.shutdown();
}

#[test]
fn card_replies_carry_realistic_values_in_the_3_5_layout() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let first = pos.exchange(&purchase(1, 10_000));
    let second = pos.exchange(&purchase(2, 100));
    let third = pos.exchange(&purchase(3, 250));
    assert_eq!(first.fields.len(), 37, "the 3.5 layout has fields [0]..[36]");
    let ResponseView::Card(card) = first.view(Layout::V35) else { panic!("not a card reply") };
    assert_eq!(card.amount.unwrap().halalas(), 10_000);
    assert_eq!(card.masked_pan.as_deref(), Some("588845******1234"));
    assert_eq!(card.scheme_label.as_deref(), Some("mada"));
    assert_eq!(card.terminal_id.as_deref(), Some(nami_sim::DEFAULT_TERMINAL_ID));
    assert_eq!(card.merchant_name.as_deref(), Some(MERCHANT_NAME));
    assert_eq!(card.merchant_name_arabic.as_deref(), Some("متجر نامي"));
    assert_eq!(card.approval_code.as_ref().map(String::len), Some(6));
    assert_eq!(card.signature.as_deref(), Some(nami_sdk::Signature::compute(&ecr(1), &tid()).as_str()));
    assert_eq!(field(&second, "schemeLabel"), "VISA");
    assert_eq!(field(&third, "schemeLabel"), "MASTERCARD");
    let stans: Vec<u64> = [&first, &second, &third].iter().map(|r| field(r, "stan").parse().unwrap()).collect();
    let rrns: Vec<u64> = [&first, &second, &third].iter().map(|r| field(r, "rrn").parse().unwrap()).collect();
    assert!(stans.windows(2).all(|w| w[0] < w[1]), "STANs increase: {stans:?}");
    assert!(rrns.windows(2).all(|w| w[0] < w[1]), "RRNs increase: {rrns:?}");
    for r in [&first, &second, &third] {
        assert_eq!(field(r, "rrn").len(), 12);
        assert!(CARDS.iter().any(|c| c.masked_pan == field(r, "pan")));
    }
    let with_cashback = pos.exchange(&cashback(4, 5_000, 1_000));
    assert_eq!(with_cashback.fields.len(), 39, "cashback adds two fields");
    let ResponseView::Card(card) = with_cashback.view(Layout::V35) else { panic!("not a card reply") };
    assert_eq!(card.cashback_amount.unwrap().halalas(), 1_000);
    assert_eq!(card.total_amount.unwrap().halalas(), 6_000);
    sim.shutdown();
}

#[test]
fn before_register_every_signed_request_gets_1003_and_nothing_is_journaled() {
    let sim = start(SimConfig::default());
    let mut pos = Pos::connect(sim.addr());
    for txn_type in TxnType::all().filter(|t| t.spec().is_signed()) {
        let request = match txn_type {
            TxnType::Purchase | TxnType::PreAuthorization | TxnType::CashAdvance => card(txn_type, 1, 1_000),
            TxnType::PurchaseCashback => cashback(1, 1_000, 100),
            TxnType::BillPayment => bill_payment(1, 1_000),
            TxnType::Refund => refund(1, 1_000, "000000000001"),
            TxnType::PreAuthCompletion | TxnType::PreAuthExtension | TxnType::PreAuthVoid => {
                preauth_followup(txn_type, 1, 1_000, "000000000001", "123456")
            }
            TxnType::Duplicate => duplicate(1, &ecr(1)),
            _ => plain(txn_type, 1),
        };
        let response = pos.exchange(&request);
        assert_eq!(response.code(), "1003", "{txn_type:?}");
        assert!(response.requires_registration());
    }
    assert!(sim.journal().is_empty());
    assert!(!sim.is_registered());
    sim.shutdown();
}

#[test]
fn register_returns_800_and_the_terminal_id_and_may_be_repeated() {
    let terminal_id = TerminalId::parse("1160000101300001").unwrap();
    let sim = start(SimConfig { terminal_id: terminal_id.clone(), ..SimConfig::default() });
    let mut pos = Pos::connect(sim.addr());
    for _ in 0..2 {
        let response = pos.register();
        assert_eq!(response.code(), "800");
        assert_eq!(response.fields[3], terminal_id.as_str());
        assert_eq!(response.view(Layout::V35), ResponseView::Register { terminal_id: Some(terminal_id.clone()) });
    }
    assert!(sim.is_registered());
    pos.terminal_id = terminal_id;
    assert!(pos.exchange(&purchase(1, 1_000)).approved());
    sim.shutdown();
}

#[test]
fn a_signature_made_with_another_terminal_id_is_refused_with_916() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    pos.terminal_id = TerminalId::parse("1160000101300001").unwrap();
    let response = pos.exchange(&purchase(1, 1_000));
    assert_eq!((response.code(), response.message().as_str()), ("916", "MAC INCORRECT"));
    assert!(sim.journal().is_empty(), "a refused request is not a transaction");
    sim.shutdown();
}

#[test]
fn duplicate_returns_the_transaction_with_those_last_six_digits() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let original = pos.exchange(&purchase(41, 1_051));
    assert_eq!(original.code(), "116");
    pos.exchange(&purchase(42, 1_000));
    let response = pos.exchange(&duplicate(43, &ecr(41)));
    let inner = response.repeated().expect("the earlier reply is embedded");
    assert_eq!(inner.fields, original.fields, "the earlier reply, unchanged");
    assert!(!response.approved(), "judged by the repeated transaction");
    assert_eq!(response.fields[response.fields.len() - 2], ecr(43).as_str(), "the DUPLICATE's own reference last");

    let missing = pos.exchange(&duplicate(44, &ecr(999)));
    assert_eq!((missing.code(), missing.message().as_str()), ("187", "NO DATA FOUND"));
    assert_eq!(missing.view(Layout::V35), ResponseView::NothingToRepeat);
    sim.shutdown();
}

#[test]
fn reversal_reverses_the_last_transaction_once() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let sale = pos.exchange(&purchase(1, 4_200));
    let reversal = pos.exchange(&plain(TxnType::Reversal, 2));
    assert_eq!(reversal.code(), "400");
    assert!(reversal.approved());
    assert_eq!(field(&reversal, "rrn"), field(&sale, "rrn"));
    assert_eq!(field(&reversal, "amount"), "000000004200");
    let journal = sim.journal();
    assert!(journal[0].reversed);
    assert_eq!(journal[1].txn_type, TxnType::Reversal);

    let again = pos.exchange(&plain(TxnType::Reversal, 3));
    assert_eq!(again.code(), "480", "nothing left to reverse");
    assert!(!again.approved());
    sim.shutdown();
}

#[test]
fn refund_and_preauth_follow_ups_must_name_an_approved_original() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let unknown = pos.exchange(&refund(1, 1_000, "999999999999"));
    assert_eq!(unknown.code(), "187");
    let sale = pos.exchange(&purchase(2, 1_000));
    let too_much = pos.exchange(&refund(3, 5_000, &field(&sale, "rrn")));
    assert_eq!(too_much.code(), "198", "refund exceeds the original");
    assert!(pos.exchange(&refund(4, 1_000, &field(&sale, "rrn"))).approved());

    let auth = pos.exchange(&card(TxnType::PreAuthorization, 5, 3_000));
    let rrn = field(&auth, "rrn");
    let wrong_code = pos.exchange(&preauth_followup(TxnType::PreAuthCompletion, 6, 3_000, &rrn, "ZZZ999"));
    assert_eq!(wrong_code.code(), "187", "the approval code must match too");
    let refund_of_auth = pos.exchange(&refund(7, 1_000, &rrn));
    assert_eq!(refund_of_auth.code(), "187", "a pre-authorisation is not refundable");
    let code = field(&auth, "approvalCode");
    assert!(pos.exchange(&preauth_followup(TxnType::PreAuthVoid, 8, 3_000, &rrn, &code)).approved());
    let after_void = pos.exchange(&preauth_followup(TxnType::PreAuthCompletion, 9, 3_000, &rrn, &code));
    assert_eq!(after_void.code(), "187", "a voided pre-authorisation cannot be completed");
    sim.shutdown();
}

#[test]
fn amounts_choose_the_outcome_51_declines_116_and_05_asks_pin_then_declines_117() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let declined = pos.exchange(&purchase(1, 1_051));
    assert_eq!((declined.code(), declined.message().as_str()), ("116", "DECLINED"));
    assert!(!declined.approved());
    assert_eq!(field(&declined, "approvalCode"), "");
    let pin = pos.exchange(&purchase(2, 2_005));
    assert_eq!((pin.code(), pin.message().as_str()), ("117", "INCORRECT PIN"));
    assert!(field(&pin, "disclaimer").contains("PIN"));
    let expired = pos.exchange(&purchase(3, 354));
    assert_eq!(expired.code(), "101");
    let fine = pos.exchange(&purchase(4, 1_050));
    assert_eq!((fine.code(), fine.message().as_str()), ("000", "APPROVED"));
    let journal = sim.journal();
    assert_eq!(journal.iter().map(|t| t.approved).collect::<Vec<_>>(), [false, false, false, true]);
    sim.shutdown();
}

#[test]
fn reconciliation_totals_the_journal_per_scheme_then_resets() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    pos.exchange(&purchase(1, 10_000)); // mada
    pos.exchange(&purchase(2, 20_000)); // mada
    let visa = pos.exchange(&purchase(3, 100)); // VISA
    pos.exchange(&purchase(4, 1_051)); // declined: not counted
    pos.exchange(&refund(5, 50, &field(&visa, "rrn")));
    pos.exchange(&cashback(6, 5_000, 1_000)); // mada, with NAQD
    pos.exchange(&purchase(7, 10_000));
    pos.exchange(&plain(TxnType::Reversal, 8)); // cancels the last purchase

    let snapshot = totals(&pos.exchange(&plain(TxnType::SnapshotTotal, 9)));
    assert_eq!(pair(&snapshot, "mada", "debit"), Some((3, 36_000)));

    let response = pos.exchange(&plain(TxnType::Reconciliation, 10));
    assert_eq!(response.code(), "500");
    assert!(response.approved());
    let report = totals(&response);
    assert_eq!(report.schemes.len(), 3);
    assert_eq!(pair(&report, "mada", "debit"), Some((3, 36_000)));
    assert_eq!(pair(&report, "mada", "naqd"), Some((1, 1_000)));
    assert_eq!(pair(&report, "VISA", "debit"), Some((1, 100)));
    assert_eq!(pair(&report, "VISA", "credit"), Some((1, 50)));
    assert_eq!(pair(&report, "VISA", "total"), Some((2, 150)));
    assert_eq!(pair(&report, "MASTERCARD", "debit"), None, "no transactions: a 2-field block");
    assert_eq!(response.ecr_reference().as_deref(), Some(ecr(10).as_str()));

    let after = totals(&pos.exchange(&plain(TxnType::Reconciliation, 11)));
    assert!(after.schemes.iter().all(|s| s.totals.is_empty()), "totals reset: {after:?}");
    assert_eq!(sim.journal().len(), 8, "the journal itself survives");
    sim.shutdown();
}

#[test]
fn summary_report_pages_the_open_batch() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    for sequence in 1..=12 {
        pos.exchange(&purchase(sequence, 1_000 + u64::from(sequence)));
    }
    let first = pos.exchange(&summary_page(20, 0));
    assert_eq!(first.code(), "00");
    let ResponseView::SummaryPage(page) = first.view(Layout::V35) else { panic!("not a summary page") };
    assert_eq!(page.total_transactions, Some(12));
    assert_eq!(page.records.len(), 10);
    assert_eq!(first.fields[5], "1", "one more page to ask for");
    let ResponseView::SummaryPage(second) = pos.exchange(&summary_page(21, 1)).view(Layout::V35) else {
        panic!("not a summary page")
    };
    assert_eq!(second.records.len(), 2);
    assert_eq!(second.records[1][3], "0000000010.12");
    sim.shutdown();
}

#[test]
fn sessions_and_parameters_behave_like_a_terminal() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    assert_eq!(pos.exchange(&setup(TxnType::StartSession)).code(), "000");
    assert!(sim.session_open());
    assert_eq!(pos.exchange(&setup(TxnType::EndSession)).code(), "000");
    assert!(!sim.session_open());
    assert_eq!(pos.exchange(&plain(TxnType::SetParameter, 1)).code(), "300");
    let params = pos.exchange(&plain(TxnType::GetParameter, 2));
    assert_eq!(
        params.view(Layout::V35),
        ResponseView::Parameters {
            vendor_id: Some("07".into()),
            vendor_terminal_type: Some("03".into()),
            trsm_id: Some("ABC123".into()),
            vendor_key_index: Some("04".into()),
            sama_key_index: Some("05".into()),
        }
    );
    let status = pos.exchange(&plain(TxnType::CheckStatus, 3));
    assert_eq!(status.code(), "000");
    assert_eq!(status.fields.len(), 7);
    sim.shutdown();
}

#[test]
fn a_bad_frame_gets_904_and_the_connection_stays_usable() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let bad_frames: Vec<Vec<u8>> = vec![
        encode_fields(&["Z9", "210320144000", "120"], LrcMode::Skyband), // unknown command
        encode_fields(&["A1", "000000001000", "120"], LrcMode::Skyband), // too few fields
        encode_fields(&["A0", "210320144000", "1234567", "120"], LrcMode::Skyband), // CRN too short
        encode_fields(&["A0", "210320144000", "12345678", "121"], LrcMode::Skyband), // not "120"
        b"\x02\xfc\xff\xfe\xfc\x03\x00".to_vec(),                        // binary command
    ];
    for (i, frame) in bad_frames.iter().enumerate() {
        pos.send_raw(frame);
        let response = pos.read_response();
        assert_eq!((response.code(), response.fields[3].as_str()), ("904", "FORMAT ERROR"), "frame {i}");
    }
    assert_eq!(pos.read_response_after(&purchase(1, 1_000)).code(), "000");
    assert_eq!(sim.requests_received(), 6);
    sim.shutdown();
}

trait SendAndRead {
    fn read_response_after(&mut self, request: &nami_sdk::Request) -> Response;
}

impl<P: Port> SendAndRead for Pos<P> {
    fn read_response_after(&mut self, request: &nami_sdk::Request) -> Response {
        self.send(request);
        self.read_response()
    }
}

#[test]
fn several_frames_in_one_write_are_answered_in_order() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    let mut bytes = encode(&purchase(1, 1_000), &tid());
    bytes.extend(encode(&plain(TxnType::CheckStatus, 2), &tid()));
    bytes.extend(encode(&purchase(3, 1_051), &tid()));
    pos.send_raw(&bytes);
    let codes: Vec<(String, String)> = (0..3)
        .map(|_| {
            let r = pos.read_response();
            (r.command().to_owned(), r.code().to_owned())
        })
        .collect();
    assert_eq!(codes, [("A1".into(), "000".into()), ("C3".into(), "000".into()), ("A1".into(), "116".into())]);
    sim.shutdown();
}

#[test]
fn replies_use_the_configured_lrc_and_requests_without_lrc_are_read() {
    for mode in [LrcMode::Skyband, LrcMode::Xor, LrcMode::None] {
        let sim = start(SimConfig { lrc: mode, registered: true, ..SimConfig::default() });
        let mut pos = Pos::connect(sim.addr());
        let request = encode(&purchase(1, 1_000), &tid());
        // Send it without its LRC byte: the simulator must take the frame after a short grace.
        pos.send_raw(&request[..request.len() - 1]);
        let frame = pos.read_frame(REPLY_TIMEOUT).unwrap();
        match mode {
            LrcMode::None => assert_eq!(frame.lrc, None),
            _ => assert_eq!(frame.lrc_matches(mode), Some(true), "{mode:?}"),
        }
        sim.shutdown();
    }
}

#[test]
fn many_connections_are_served_and_stay_open() {
    let sim = start_registered();
    let mut clients: Vec<_> = (0..8).map(|_| Pos::connect(sim.addr())).collect();
    for round in 0..2u32 {
        for (i, pos) in clients.iter_mut().enumerate() {
            let sequence = round * 100 + i as u32 + 1;
            assert!(pos.exchange(&purchase(sequence, 1_000)).approved());
        }
    }
    assert_eq!(sim.journal().len(), 16);
    sim.shutdown();
}

#[test]
fn shutdown_closes_connections_and_the_listener() {
    let sim = start_registered();
    let addr = sim.addr();
    let mut pos = Pos::connect(addr);
    assert!(pos.exchange(&purchase(1, 1_000)).approved());
    sim.shutdown();
    let (_, eof) = pos.read_until_eof(Duration::from_secs(2));
    assert!(eof, "the connection is closed");
    assert!(std::net::TcpStream::connect(addr).is_err(), "nobody listens any more");
    sim.shutdown(); // idempotent
}

#[test]
fn random_bytes_never_break_the_terminal() {
    let sim = start_registered();
    let mut pos = Pos::connect(sim.addr());
    // Deterministic noise, rich in the protocol's own bytes so that it forms broken frames.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut noise = Vec::new();
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let byte = match state % 8 {
            0 => 0x02,
            1 => 0x03,
            2 => 0xFC,
            3 => b';',
            4 => b'A' + (state >> 8) as u8 % 3,
            5 => b'0' + (state >> 8) as u8 % 10,
            _ => (state >> 16) as u8,
        };
        noise.push(byte);
    }
    for chunk in noise.chunks(997) {
        pos.send_raw(chunk);
    }
    // Close any frame the noise left open and let the terminal answer what it made of the noise
    // (904s, and 923s for frames that came while it was busy), until it falls quiet.
    pos.send_raw(b"\x03\x00");
    while pos.read_frame(Duration::from_millis(300)).is_ok() {}
    let response = pos.exchange(&plain(TxnType::CheckStatus, 777));
    assert!(response.approved());
    assert_eq!(response.fields[5], ecr(777).as_str());
    assert!(sim.requests_received() > 1);
    sim.shutdown();
}
