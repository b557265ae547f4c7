//! Serial port discovery, shaped like the REST `GET /get-com-ports` entries.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A serial port that is really there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerialPortEntry {
    /// `COM3` on Windows, `/dev/ttyACM0` elsewhere.
    pub device_id: String,
    /// A human description, e.g. `USB Serial Device (COM3)`.
    pub description: String,
    /// The number at the end of the name (`3` for COM3, `0` for ttyACM0).
    pub port_number: Option<String>,
    pub vendor_id: u16,
    pub product_id: u16,
}

/// Without the `serial` feature there is no port to list.
#[cfg(not(feature = "serial"))]
pub fn list_serial_ports() -> Vec<SerialPortEntry> {
    Vec::new()
}

/// The serial ports present now. Phantom entries (driver-only ports with no device behind them,
/// such as the legacy `ttyS*` of a machine without UARTs) are left out: only USB, PCI and
/// Bluetooth ports are listed.
#[cfg(feature = "serial")]
pub fn list_serial_ports() -> Vec<SerialPortEntry> {
    let ports = match serialport::available_ports() {
        Ok(ports) => ports,
        Err(error) => {
            tracing::warn!(%error, "serial ports could not be listed");
            return Vec::new();
        }
    };
    ports
        .into_iter()
        .filter_map(|port| {
            let (description, vendor_id, product_id) = match &port.port_type {
                serialport::SerialPortType::UsbPort(usb) => {
                    let what = usb
                        .product
                        .clone()
                        .or_else(|| usb.manufacturer.clone())
                        .unwrap_or_else(|| "USB Serial Device".into());
                    (format!("{what} ({})", short_name(&port.port_name)), usb.vid, usb.pid)
                }
                serialport::SerialPortType::PciPort => {
                    (format!("PCI Serial Port ({})", short_name(&port.port_name)), 0, 0)
                }
                serialport::SerialPortType::BluetoothPort => {
                    (format!("Bluetooth Serial Port ({})", short_name(&port.port_name)), 0, 0)
                }
                serialport::SerialPortType::Unknown => return None,
            };
            Some(SerialPortEntry {
                port_number: port_number(&port.port_name),
                device_id: port.port_name,
                description,
                vendor_id,
                product_id,
            })
        })
        .collect()
}

/// How old a listing the health status may show. Listing walks the system's device tree (the
/// health status's largest cost when it did so on every call); a device plugged in shows within
/// this. `GET /get-com-ports` and connecting still list afresh.
pub const RECENT_PORTS_MAX_AGE: Duration = Duration::from_secs(2);

/// [`list_serial_ports`], at most [`RECENT_PORTS_MAX_AGE`] old: one listing serves every caller
/// in that time (callers that arrive while it runs wait for it rather than list again).
pub fn recent_serial_ports() -> Vec<SerialPortEntry> {
    static RECENT: RecentPorts = RecentPorts::new(RECENT_PORTS_MAX_AGE);
    RECENT.get(Instant::now(), list_serial_ports)
}

/// A listing and when it was made.
struct RecentPorts {
    max_age: Duration,
    listed: Mutex<Option<(Instant, Vec<SerialPortEntry>)>>,
}

impl RecentPorts {
    const fn new(max_age: Duration) -> Self {
        RecentPorts { max_age, listed: Mutex::new(None) }
    }

    fn get(&self, now: Instant, list: impl FnOnce() -> Vec<SerialPortEntry>) -> Vec<SerialPortEntry> {
        let mut listed = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        match listed.as_ref() {
            Some((at, ports)) if now.saturating_duration_since(*at) < self.max_age => ports.clone(),
            _ => {
                let ports = list();
                *listed = Some((now, ports.clone()));
                ports
            }
        }
    }
}

#[cfg(feature = "serial")]
fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The trailing digits of a port name: `COM3` → `3`, `/dev/ttyACM0` → `0`.
pub fn port_number(name: &str) -> Option<String> {
    let digits: String = name.chars().rev().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| digits.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_numbers_come_from_the_name() {
        assert_eq!(port_number("COM3").as_deref(), Some("3"));
        assert_eq!(port_number("COM10").as_deref(), Some("10"));
        assert_eq!(port_number("/dev/ttyACM0").as_deref(), Some("0"));
        assert_eq!(port_number("/dev/pts/x"), None);
    }

    #[test]
    fn a_recent_listing_is_reused_until_it_is_older_than_its_limit() {
        let recent = RecentPorts::new(Duration::from_secs(2));
        let listings = std::cell::Cell::new(0);
        let list = || {
            listings.set(listings.get() + 1);
            vec![SerialPortEntry {
                device_id: format!("/dev/ttyACM{}", listings.get()),
                description: String::new(),
                port_number: None,
                vendor_id: 0,
                product_id: 0,
            }]
        };
        let t0 = Instant::now();
        assert_eq!(recent.get(t0, list)[0].device_id, "/dev/ttyACM1");
        assert_eq!(recent.get(t0 + Duration::from_millis(1999), list)[0].device_id, "/dev/ttyACM1");
        assert_eq!(listings.get(), 1, "listed again within the limit");
        assert_eq!(recent.get(t0 + Duration::from_secs(2), list)[0].device_id, "/dev/ttyACM2");
        assert_eq!(listings.get(), 2);
    }

    #[test]
    fn listing_ports_never_fails() {
        // Whatever the machine has, the call returns (possibly empty) without panicking.
        let _ = list_serial_ports();
    }
}
