//! The SDK's `Terminal` over a serial link: a real pseudo-terminal pair served by the simulator.

mod common;

use std::time::{Duration, Instant};

use common::{cash_register, ecr, fast_config, sim, wait_until};
use nami_sdk::{Amount, LinkState, SerialSettings, Terminal, TerminalError};

fn sar(text: &str) -> Amount {
    Amount::from_sar(text).unwrap()
}

#[test]
fn the_mandatory_sequence_works_over_a_serial_port() {
    let sim = sim();
    let pty = sim.open_pty().unwrap();
    let terminal = Terminal::serial(pty.path(), SerialSettings::default(), fast_config());
    terminal.connect().unwrap();
    assert!(terminal.register(&cash_register()).unwrap().approved);
    assert!(terminal.start_session().unwrap().approved);
    assert!(terminal.purchase(sar("12.34"), &ecr(), true).unwrap().approved);
    assert!(terminal.end_session().unwrap().approved);
    terminal.disconnect();
}

#[test]
fn a_pulled_cable_yields_cable_disconnected_within_a_second() {
    let sim = sim();
    let pty = sim.open_pty().unwrap();
    let terminal = Terminal::serial(pty.path(), SerialSettings::default(), fast_config());
    terminal.register(&cash_register()).unwrap();
    sim.set_card_tap(true);
    let reference = ecr();
    let waiting = {
        let (terminal, reference) = (terminal.clone(), reference.clone());
        std::thread::spawn(move || terminal.purchase(sar("5.00"), &reference, false))
    };
    assert!(wait_until(Duration::from_secs(5), || terminal.is_busy()));
    std::thread::sleep(Duration::from_millis(50));
    let pulled = Instant::now();
    pty.unplug();
    let error = waiting.join().unwrap().unwrap_err();
    assert!(pulled.elapsed() < Duration::from_secs(1), "noticed after {:?}", pulled.elapsed());
    assert!(matches!(error, TerminalError::CableDisconnected { .. }), "{error}");
    assert_eq!(error.unknown_outcome().unwrap().ecr_reference, reference, "the purchase is in doubt");

    // While the cable is out, calls fail fast with the same code.
    let error = terminal.check_status(&ecr()).unwrap_err();
    assert_eq!(error.status_code(), "CableDisconnected", "{error}");
}

#[test]
fn a_cable_plugged_back_is_reopened_and_registered_again_silently() {
    let sim = sim();
    let pty = sim.open_pty().unwrap();
    let terminal = Terminal::serial(pty.path(), SerialSettings::default(), fast_config());
    terminal.register(&cash_register()).unwrap();
    pty.unplug();
    assert!(wait_until(Duration::from_secs(2), || matches!(terminal.link_state(), LinkState::Reconnecting { .. })));
    // The terminal lost its registration while unplugged (e.g. it rebooted).
    sim.reboot();
    pty.plug().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || terminal.link_state() == LinkState::Connected && sim.is_registered()),
        "re-opened and re-registered in the background"
    );
    // The POS never sees REGISTER_REQUIRED.
    assert!(terminal.purchase(sar("1.00"), &ecr(), false).unwrap().approved);
}
