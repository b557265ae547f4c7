//! Settings of a terminal session, with the defaults of docs/protocol.md D3, D4, D8 and D10.

use std::time::Duration;

use crate::protocol::frame::LrcMode;
use crate::protocol::response::Layout;
use crate::protocol::txn_type::WaitClass;

#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// LRC of request frames (D3).
    pub lrc: LrcMode,
    /// Layout of financial replies (D9).
    pub layout: Layout,
    /// Deadline of card-present types (D4).
    pub card_present_timeout: Duration,
    /// Deadline of reversal, reconciliation, reports and duplicates.
    pub settlement_timeout: Duration,
    /// Deadline of register, sessions, status and parameters.
    pub admin_timeout: Duration,
    /// How long to wait for the LRC byte after ETX.
    pub lrc_grace: Duration,
    /// A silence this long after at least one complete field ends a reply that has no ETX.
    pub silence: Duration,
    /// Wait for a busy terminal instead of failing with TERMINAL_BUSY (D10).
    pub wait_when_busy: bool,
    /// Send START_SESSION right after a successful REGISTER (D8).
    pub auto_start_session: bool,
    /// Re-open a vanished serial device when it comes back and re-register silently.
    pub reconnect_serial: bool,
    /// How often the serial watchdog looks for a vanished or returned device.
    pub serial_poll: Duration,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            lrc: LrcMode::Skyband,
            layout: Layout::V35,
            card_present_timeout: Duration::from_secs(150),
            settlement_timeout: Duration::from_secs(60),
            admin_timeout: Duration::from_secs(30),
            lrc_grace: Duration::from_millis(200),
            silence: Duration::from_millis(500),
            wait_when_busy: false,
            auto_start_session: false,
            reconnect_serial: true,
            serial_poll: Duration::from_millis(200),
        }
    }
}

impl TerminalConfig {
    /// The deadline of a call of this class.
    pub fn timeout(&self, wait: WaitClass) -> Duration {
        match wait {
            WaitClass::CardPresent => self.card_present_timeout,
            WaitClass::Settlement => self.settlement_timeout,
            WaitClass::Admin => self.admin_timeout,
        }
    }
}
