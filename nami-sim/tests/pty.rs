//! The serial side over a real pseudo-terminal pair, opened by path as a POS opens a COM port.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::{Pos, REPLY_TIMEOUT, duplicate, ecr, encode, field, plain, purchase, start, start_registered, tid};
use nami_sdk::TxnType;
use nami_sim::SimConfig;

fn open(path: &Path) -> serialport::Result<Box<dyn serialport::SerialPort>> {
    serialport::new(path.to_string_lossy(), 115_200).timeout(REPLY_TIMEOUT).open()
}

#[test]
fn a_pos_registers_and_buys_over_the_pty_path() {
    let sim = start(SimConfig::default());
    let pty = sim.open_pty().unwrap();
    let mut pos = Pos::new(open(&pty.path()).unwrap());
    let registered = pos.register();
    assert_eq!(registered.code(), "800");
    let sale = pos.exchange(&purchase(1, 12_300));
    assert!(sale.approved());
    assert_eq!(field(&sale, "amount"), "000000012300");
    assert!(pos.exchange(&plain(TxnType::Reconciliation, 2)).approved());
    sim.shutdown();
}

#[test]
fn a_child_process_started_while_the_pty_is_open_inherits_neither_end() {
    let sim = start(SimConfig::default());
    let pty = sim.open_pty().unwrap();
    let output = std::process::Command::new("ls").args(["-l", "/proc/self/fd/"]).output().unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(!listing.contains("/dev/ptmx") && !listing.contains("/dev/pts/"), "{listing}");
    // Unplugged, the path is gone even though a child ran meanwhile.
    pty.unplug();
    assert!(open(&pty.path()).is_err());
    sim.shutdown();
}

#[test]
fn the_pty_and_tcp_sides_are_the_same_terminal() {
    let sim = start(SimConfig::default());
    let pty = sim.open_pty().unwrap();
    let mut tcp = Pos::connect(sim.addr());
    tcp.register();
    let mut serial = Pos::new(open(&pty.path()).unwrap());
    assert!(serial.exchange(&purchase(1, 1_000)).approved(), "registered over TCP, usable over the pty");
    let repeat = tcp.exchange(&duplicate(2, &ecr(1)));
    assert!(repeat.approved(), "one journal");
    sim.shutdown();
}

#[test]
fn unplug_makes_io_fail_and_plug_restores_service_on_the_same_path() {
    let sim = start_registered();
    let pty = sim.open_pty().unwrap();
    let path = pty.path();
    let first_device = pty.device_path().unwrap();
    let mut pos = Pos::new(open(&path).unwrap());
    assert!(pos.exchange(&purchase(1, 1_000)).approved());

    pty.unplug();
    assert!(!pty.is_plugged());
    assert!(std::fs::symlink_metadata(&path).is_err(), "the path is gone");
    assert!(open(&path).is_err(), "opening the port fails");
    // The open handle is dead: a write fails, or the read that follows ends in an error or EOF.
    let frame = encode(&purchase(2, 1_000), &tid());
    let write = pos.port.write_all(&frame);
    if write.is_ok() {
        let mut buf = [0u8; 64];
        pos.port.set_timeout(Duration::from_millis(500)).unwrap();
        match pos.port.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("read {n} bytes from an unplugged port"),
        }
    }
    assert_eq!(sim.requests_received(), 1, "nothing reached the terminal");

    pty.plug().unwrap();
    assert_eq!(pty.path(), path, "the same path");
    assert!(pty.device_path().is_some());
    assert!(first_device.starts_with("/dev/pts"));
    let mut pos = Pos::new(open(&path).unwrap());
    assert!(pos.exchange(&purchase(3, 1_000)).approved());
    assert!(pos.exchange(&duplicate(4, &ecr(1))).approved(), "the terminal kept its journal");
    sim.shutdown();
}

#[test]
fn dropping_the_pty_or_shutting_down_removes_its_path() {
    let sim = start_registered();
    let pty = sim.open_pty().unwrap();
    let path = pty.path();
    assert!(path.exists());
    drop(pty);
    assert!(!path.exists());
    let pty = sim.open_pty().unwrap();
    let path = pty.path();
    sim.shutdown();
    assert!(!pty.is_plugged());
    assert!(std::fs::symlink_metadata(&path).is_err());
    assert!(pty.plug().is_err(), "no plugging into a stopped simulator");
}
