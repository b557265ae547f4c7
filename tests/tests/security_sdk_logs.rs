//! No card number in the SDK's own logs, at any level: every `tracing` event of this process
//! (the SDK's `Terminal` and `Service`, and the simulator) goes at trace level into a buffer,
//! while the terminal sends whole card numbers; then the buffer is scanned. Alone in its file:
//! it installs the process's global subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nami_sdk::{Amount, CashRegisterNo, EcrReference, PreviousEcrNo, Service, ServiceConfig, Terminal, TerminalConfig};
use nami_sim::{CARDS, Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{ecr, temp_dir};
use nami_test_kit::pan::{card_numbers_in, full_numbers_in};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sar(text: &str) -> Amount {
    Amount::from_sar(text).unwrap()
}

#[test]
fn no_card_number_reaches_the_sdk_log_at_any_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = Simulator::start(SimConfig::default()).unwrap();
    sim.set_full_pan(true);
    let config = TerminalConfig {
        card_present_timeout: Duration::from_secs(3),
        admin_timeout: Duration::from_secs(3),
        settlement_timeout: Duration::from_secs(3),
        ..TerminalConfig::default()
    };
    let terminal = Terminal::tcp("127.0.0.1", sim.addr().port(), config.clone());
    let register = CashRegisterNo::parse(nami_test_kit::CASH_REGISTER).unwrap();
    terminal.register(&register).unwrap();
    let mut results = Vec::new();
    let mut last = String::new();
    for amount in ["10.00", "1.00", "2.00", "20.51"] {
        last = ecr();
        let result = terminal.purchase(sar(amount), &EcrReference::parse(&last).unwrap(), true).unwrap();
        results.push(format!("{result:?}"));
    }
    let cashback =
        terminal.purchase_with_cashback(sar("10.00"), sar("5.00"), &EcrReference::parse(&ecr()).unwrap(), true);
    results.push(format!("{cashback:?}"));
    let repeat = terminal.duplicate(&PreviousEcrNo::parse(&last).unwrap(), &EcrReference::parse(&ecr()).unwrap());
    results.push(format!("{repeat:?}"));
    for fault in [Fault::Split(3), Fault::TwoReplies, Fault::CloseMidReply, Fault::Garbage] {
        sim.set_fault(fault, FaultScope::Next(1));
        let outcome = terminal.purchase(sar("11.00"), &EcrReference::parse(&ecr()).unwrap(), true);
        results.push(format!("{outcome:?}"));
    }
    terminal.disconnect();

    // The service too (journal, recovery), with a lost reply that recovery repeats.
    let dir = temp_dir("nami-sdk-logs-");
    let mut service_config = ServiceConfig::new(dir.path());
    service_config.terminal = config;
    service_config.recovery_interval = Duration::from_millis(200);
    let service = Service::open(service_config).unwrap();
    let tcp = |payment: serde_json::Value| {
        service.call(
            "/performTransactionTCPIP",
            &json!({"tcpipcomData": {"ip": "127.0.0.1", "port": sim.addr().port()}, "paymentRequest": payment})
                .to_string(),
        )
    };
    results.push(tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()})));
    results.push(tcp(json!({"txnType": "PURCHASE", "amount": "2.00", "ecrReferenceNo": ecr(), "jsonResponse": true})));
    sim.set_fault(Fault::CloseAfterRequest, FaultScope::Next(1));
    let lost = ecr();
    results.push(tcp(json!({"txnType": "PURCHASE", "amount": "1.00", "ecrReferenceNo": lost})));
    let start = std::time::Instant::now();
    while !service.call(&format!("/transactions/{lost}"), "").contains("\"approved\"") {
        assert!(start.elapsed() < Duration::from_secs(20), "recovery resolves the lost reply");
        let _ = tcp(json!({"txnType": "PURCHASE", "amount": "1.00", "ecrReferenceNo": lost}));
        std::thread::sleep(Duration::from_millis(100));
    }
    results.push(service.call("/transactions", ""));
    service.shutdown();
    sim.shutdown();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("TRACE"), "trace events were captured");
    let pans: Vec<&str> = CARDS.iter().map(|c| c.pan).collect();
    assert!(sim.received().len() >= 10);
    for (what, text) in [("the SDK's log", log.as_str()), ("results and answers", &results.join("\n"))] {
        assert_eq!(full_numbers_in(text, &pans), Vec::<String>::new(), "{what}");
        assert_eq!(card_numbers_in(text), Vec::<String>::new(), "{what}");
    }
}
