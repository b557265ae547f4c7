//! The COM connection's endpoints: `/com/connect` (the port and its settings, opened without
//! disturbing a working connection), `/com/disconnect`, `/get-com-ports`, and the silent
//! re-register of a connection (re)opened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::{ComConnectRequest, ComPort, ComPortInfo};
use super::shared::{Shared, lock, spawn};
use super::state::SavedConnection;
use super::targets::{COM_KEY, ComConnection};
use crate::error::ValidationError;
use crate::session::error::TerminalError;
use crate::session::link::{Parity, SerialSettings};
use crate::session::ports::{list_serial_ports, port_number};
use crate::session::terminal::{LinkState, Terminal};
use crate::status::StatusCode;

/// A COM port opened by `/com/connect`.
pub(crate) struct ComConnected {
    /// What the API calls it: `COM3` on Windows, the device path elsewhere.
    pub(crate) label: String,
    pub(crate) baud_rate: u32,
}

/// Why `/com/connect` opened nothing (the working COM connection is kept).
pub(crate) enum ComConnectError {
    /// A setting (baud rate, parity, data or stop bits) is not valid.
    Settings(ValidationError),
    /// `port` is empty.
    NoPort,
    /// No listed serial port has this number (not Windows, where a number is `COMn`).
    NoPortNumbered { number: u32, available: Vec<String> },
    /// The device did not open.
    Open { label: String, error: TerminalError },
}

impl Shared {
    pub(crate) fn open_com(
        self: &Arc<Self>,
        device: String,
        label: String,
        port_number: Option<u32>,
        settings: SerialSettings,
    ) -> ComConnection {
        let terminal = Terminal::serial(device.clone(), settings, self.config.terminal.clone());
        terminal.restore_registration(lock(&self.keymap).get(COM_KEY).cloned());
        terminal.set_listener(Some(self.terminal_listener(COM_KEY.to_owned())));
        ComConnection { terminal, device, label, port_number, settling: Arc::new(Mutex::new(())) }
    }

    /// Installs the COM connection and, in the background, opens it (when `open` is set) and
    /// re-registers silently with the remembered cash register number.
    pub(crate) fn start_com(self: &Arc<Self>, connection: ComConnection, open: bool) {
        let old = lock(&self.com).replace(connection.clone());
        if let Some(old) = old {
            old.terminal.disconnect();
        }
        let weak = Arc::downgrade(self);
        let settling = connection.settling.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        spawn(format!("nami-com {}", connection.device), move || {
            let _settling = lock(&settling);
            let _ = ready_tx.send(());
            let terminal = connection.terminal;
            if open && let Err(e) = terminal.connect() {
                tracing::info!(device = %connection.device, error = %e, "COM port not open yet; it is re-opened when the device is back");
                return;
            }
            let Some(previous) = terminal.registration() else { return };
            match terminal.register(&previous.cash_register_no) {
                Ok(result) if result.approved => tracing::info!(device = %connection.device, "re-registered silently"),
                Ok(result) => {
                    tracing::warn!(device = %connection.device, code = %result.response_code, "silent re-register declined; the previous registration is kept");
                    terminal.restore_registration(Some(previous));
                }
                Err(e) => {
                    tracing::warn!(device = %connection.device, error = %e, "silent re-register failed; the previous registration is kept");
                    terminal.restore_registration(Some(previous));
                }
            }
            if let Some(shared) = weak.upgrade() {
                shared.sync_registration(COM_KEY, &terminal);
                shared.kick_recovery();
            }
        });
        // The background thread holds the settling lock before COM transactions can look at it.
        let _ = ready_rx.recv_timeout(Duration::from_secs(1));
    }

    /// Opens the COM port with its settings and installs it as the COM connection (saved, and
    /// re-registered silently in the background): the label and baud rate it was opened with.
    pub(crate) fn com_connect(self: &Arc<Self>, request: &ComConnectRequest) -> Result<ComConnected, ComConnectError> {
        let settings = com_settings(request).map_err(ComConnectError::Settings)?;
        let (device, label, number) = resolve_com_port(&request.port)?;
        // A connect that fails leaves the working connection as it was. Only a connect to the
        // device the current connection holds must release it first; if that fails, the current
        // connection opens it again.
        let current = self.com_connection().filter(|c| c.device == device);
        if let Some(current) = &current {
            current.terminal.disconnect();
        }
        let entry = list_serial_ports().into_iter().find(|p| p.device_id == device);
        let (vendor_id, product_id) = entry.map(|p| (p.vendor_id, p.product_id)).unwrap_or((0, 0));
        let connection = self.open_com(device.clone(), label.clone(), number, settings);
        if let Err(error) = connection.terminal.connect() {
            if let Some(current) = current
                && let Err(again) = current.terminal.connect()
            {
                tracing::warn!(device = %current.device, error = %again, "the COM connection could not be opened again");
            }
            return Err(ComConnectError::Open { label, error });
        }
        self.remember(&SavedConnection::Com { device, port_number: number, settings, vendor_id, product_id });
        self.start_com(connection, false);
        Ok(ComConnected { label, baud_rate: settings.baud_rate })
    }

    pub(crate) fn com_disconnect(&self) -> i32 {
        let Some(connection) = lock(&self.com).take() else { return 1 };
        connection.terminal.disconnect();
        if let Err(e) = self.state.remove_connection(COM_KEY) {
            self.warn(format!("the COM connection could not be forgotten: {e}"));
        }
        0
    }

    pub(crate) fn get_com_ports(&self) -> Vec<ComPortInfo> {
        let mut entries: Vec<ComPortInfo> = list_serial_ports()
            .into_iter()
            .map(|p| ComPortInfo {
                device_id: Some(p.device_id),
                description: p.description,
                port_number: p.port_number,
                vendor_id: p.vendor_id,
                product_id: p.product_id,
            })
            .collect();
        if let Some(com) = self.com_connection()
            && let LinkState::Reconnecting { since } = com.terminal.link_state()
            && !entries.iter().any(|e| e.device_id.as_deref() == Some(com.device.as_str()))
        {
            let description = if since.elapsed() < self.config.com_reconnect_timeout {
                format!("Reconnecting to {}...", com.label)
            } else {
                format!("Disconnected \u{2014} last seen on {}", com.label)
            };
            entries.push(ComPortInfo {
                device_id: Some(com.label.clone()),
                description,
                port_number: com.port_number.map(|n| n.to_string()).or_else(|| port_number(&com.device)),
                vendor_id: 0,
                product_id: 0,
            });
        }
        if entries.is_empty() {
            entries.push(ComPortInfo {
                device_id: None,
                description: "No devices connected".into(),
                port_number: None,
                vendor_id: 0,
                product_id: 0,
            });
        }
        entries
    }
}

fn com_settings(request: &ComConnectRequest) -> Result<SerialSettings, ValidationError> {
    let defaults = SerialSettings::default();
    let baud = match request.baud_rate.as_deref().map(str::trim) {
        None | Some("") => defaults.baud_rate,
        Some(text) => text.parse().map_err(|_| {
            ValidationError::other(
                StatusCode::InvalidBaudRate,
                "baudRate",
                format!("must be a number such as \"115200\", got {text:?}"),
            )
        })?,
    };
    let small = |value: Option<i64>, default: u8, code: StatusCode, field: &str| -> Result<u8, ValidationError> {
        match value {
            None => Ok(default),
            Some(v) => u8::try_from(v).map_err(|_| ValidationError::other(code, field, format!("got {v}"))),
        }
    };
    let parity = match request.parity {
        None => defaults.parity,
        Some(code) => Parity::from_code(code)?,
    };
    SerialSettings::new(
        baud,
        small(request.data_bits, defaults.data_bits, StatusCode::InvalidDataBits, "dataBits")?,
        parity,
        small(request.stop_bits, defaults.stop_bits, StatusCode::InvalidStopBits, "stopBits")?,
    )
}

/// The device to open for a `/com/connect` port: `(device, label, number)`. A number is `COMn`
/// on Windows and, elsewhere, the listed port with that number (`/dev/ttyACM3` for 3); a string
/// is a port name or a device path (an extension: tests use a pseudo-terminal path).
fn resolve_com_port(port: &ComPort) -> Result<(String, String, Option<u32>), ComConnectError> {
    let by_number = |number: u32| {
        if cfg!(windows) {
            let name = format!("COM{number}");
            return Ok((name.clone(), name, Some(number)));
        }
        let ports = list_serial_ports();
        match ports.iter().find(|p| p.port_number.as_deref() == Some(number.to_string().as_str())) {
            Some(found) => Ok((found.device_id.clone(), found.device_id.clone(), Some(number))),
            None => Err(ComConnectError::NoPortNumbered {
                number,
                available: ports.into_iter().map(|p| p.device_id).collect(),
            }),
        }
    };
    match port {
        ComPort::Number(number) => by_number(*number),
        ComPort::Name(name) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(ComConnectError::NoPort);
            }
            if let Ok(number) = name.parse::<u32>() {
                return by_number(number);
            }
            let upper = name.to_ascii_uppercase();
            if let Some(number) = upper.strip_prefix("COM").and_then(|n| n.parse::<u32>().ok())
                && !cfg!(windows)
            {
                return by_number(number);
            }
            Ok((name.to_owned(), name.to_owned(), port_number(name).and_then(|n| n.parse().ok())))
        }
    }
}
