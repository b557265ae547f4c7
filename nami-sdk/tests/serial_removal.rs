//! A USB-serial adapter pulled out on Windows: the I/O of the open handle fails with a
//! device-removal error while the port's name may still open for a moment. The caller is told
//! CableDisconnected (and which payment is in doubt) from the transport's error, not from the port
//! list or the name. A terminal over a serial link whose transport fails as Windows' does; it runs
//! on every platform, and under Wine (scripts/windows.sh).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nami_sdk::session::link::windows_serial_io_error;
use nami_sdk::{
    Amount, CashRegisterNo, EcrReference, Link, LinkState, OpenError, Registration, StatusCode, Terminal,
    TerminalConfig, TerminalError, TerminalId, Transport, TxnType,
};

/// Where the fake port fails, with which Windows error.
#[derive(Clone, Copy)]
enum FailOn {
    Write(i32),
    Read(i32),
}

/// A serial link whose device name is still there (as a pulled adapter's may be while a handle
/// is open), so that only the transport's error can tell that the device is gone.
struct PulledPort {
    fail: FailOn,
    written: Arc<Mutex<usize>>,
}

struct PulledTransport {
    fail: FailOn,
    written: Arc<Mutex<usize>>,
}

impl Link for PulledPort {
    fn open(&self) -> Result<Box<dyn Transport>, OpenError> {
        Ok(Box::new(PulledTransport { fail: self.fail, written: self.written.clone() }))
    }
    fn key(&self) -> String {
        "COM7".into()
    }
    fn is_serial(&self) -> bool {
        true
    }
    fn device_present(&self) -> bool {
        true
    }
}

impl Transport for PulledTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.fail {
            FailOn::Write(code) => Err(windows_serial_io_error(io::Error::from_raw_os_error(code))),
            FailOn::Read(_) => {
                *self.written.lock().unwrap() += bytes.len();
                Ok(())
            }
        }
    }
    fn read(&mut self, _buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        match self.fail {
            FailOn::Read(code) => Err(windows_serial_io_error(io::Error::from_raw_os_error(code))),
            FailOn::Write(_) => {
                std::thread::sleep(timeout);
                Err(io::Error::new(io::ErrorKind::TimedOut, "no data"))
            }
        }
    }
    fn peer_closed(&mut self) -> bool {
        false
    }
    fn discard_input(&mut self) {}
}

fn terminal(fail: FailOn) -> (Terminal, Arc<Mutex<usize>>) {
    let written = Arc::new(Mutex::new(0));
    // No watchdog thread: the test looks at one call's error.
    let config = TerminalConfig { reconnect_serial: false, ..TerminalConfig::default() };
    (Terminal::new(Box::new(PulledPort { fail, written: written.clone() }), config), written)
}

fn register(terminal: &Terminal) -> TerminalError {
    terminal.register(&CashRegisterNo::parse("12345678").unwrap()).expect_err("the port is gone")
}

#[test]
fn device_removal_errors_on_the_open_handle_are_cable_disconnected() {
    // ERROR_DEVICE_REMOVED, ERROR_DEVICE_NOT_CONNECTED, ERROR_BAD_COMMAND, ERROR_GEN_FAILURE,
    // ERROR_OPERATION_ABORTED, ERROR_ACCESS_DENIED.
    for code in [1617, 1167, 22, 31, 995, 5] {
        for fail in [FailOn::Read(code), FailOn::Write(code)] {
            let (terminal, _) = terminal(fail);
            let error = register(&terminal);
            assert_eq!(error.status_code(), StatusCode::CableDisconnected, "Windows error {code}: {error}");
            assert!(matches!(error, TerminalError::CableDisconnected { ref port, unknown: None } if port == "COM7"));
            assert!(matches!(terminal.link_state(), LinkState::Reconnecting { .. }), "Windows error {code}");
        }
    }
}

#[test]
fn other_errors_of_a_present_port_stay_link_errors() {
    // ERROR_INVALID_HANDLE and ERROR_INVALID_PARAMETER: the port is there, the exchange failed.
    // (Not ERROR_SEM_TIMEOUT: on Windows it is a timeout, and the read is tried again.)
    for code in [6, 87] {
        let (terminal, _) = terminal(FailOn::Read(code));
        let error = register(&terminal);
        assert_eq!(error.status_code(), StatusCode::Error, "Windows error {code}: {error}");
        assert_eq!(terminal.link_state(), LinkState::Disconnected);
    }
}

#[test]
fn a_purchase_whose_port_went_after_the_write_is_said_to_be_in_doubt() {
    let (terminal, written) = terminal(FailOn::Read(1617));
    terminal.restore_registration(Some(Registration {
        terminal_id: TerminalId::parse("8184000200000077").unwrap(),
        cash_register_no: CashRegisterNo::parse("12345678").unwrap(),
    }));
    let reference = EcrReference::parse("12345678123456").unwrap();
    let error = terminal.purchase(Amount::from_sar("10.00").unwrap(), &reference, true).expect_err("the port is gone");
    assert!(*written.lock().unwrap() > 0, "the purchase was written before the port went");
    assert_eq!(error.status_code(), StatusCode::CableDisconnected, "{error}");
    let unknown = error.unknown_outcome().expect("a purchase written, then the port gone: its outcome is unknown");
    assert_eq!((unknown.txn_type, &unknown.ecr_reference), (TxnType::Purchase, &reference));
}
