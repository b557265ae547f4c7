//! Settings records: `TerminalConfig`, `SerialSettings`, `MiddlewareOptions`, and their mapping
//! onto the SDK's. Every field is optional; an absent one keeps the SDK's default (docs/protocol.md
//! D3, D4, D8, D10, D12), so `TerminalConfig()` in Python or Kotlin is the SDK's default.

use std::time::Duration;

use nami_sdk as sdk;

use super::error::NamiError;

/// The LRC of request frames (D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LrcMode {
    /// The vendor SDKs' variant (the default).
    Skyband,
    /// Plain XOR of STX..=ETX.
    Xor,
    /// No LRC byte.
    None,
}

/// The layout of financial replies (D9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Layout {
    /// SDK 3.5 (the default).
    V35,
    /// The older 2020 layout.
    V2020,
}

/// Settings of a terminal session. Timeouts are durations (`datetime.timedelta` in Python,
/// `java.time.Duration` in Kotlin).
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct TerminalConfig {
    /// Deadline of card-present types (purchase, refund, ...): 150 s.
    #[uniffi(default = None)]
    pub card_present_timeout: Option<Duration>,
    /// Deadline of reversal, reconciliation, reports and duplicates: 60 s.
    #[uniffi(default = None)]
    pub settlement_timeout: Option<Duration>,
    /// Deadline of register, sessions, status and parameters: 30 s.
    #[uniffi(default = None)]
    pub admin_timeout: Option<Duration>,
    /// Skyband.
    #[uniffi(default = None)]
    pub lrc: Option<LrcMode>,
    /// 3.5.
    #[uniffi(default = None)]
    pub layout: Option<Layout>,
    /// Wait for a busy terminal instead of raising `Busy`: false.
    #[uniffi(default = None)]
    pub wait_when_busy: Option<bool>,
    /// Send START_SESSION right after a successful REGISTER: false.
    #[uniffi(default = None)]
    pub auto_start_session: Option<bool>,
    /// Re-open a vanished serial device when it comes back and re-register silently: true.
    #[uniffi(default = None)]
    pub reconnect_serial: Option<bool>,
}

fn positive(value: Option<Duration>, field: &str) -> Result<Option<Duration>, NamiError> {
    match value {
        Some(d) if d.is_zero() => Err(NamiError::argument(field, format!("`{field}` must be above zero"))),
        other => Ok(other),
    }
}

impl TerminalConfig {
    pub(crate) fn to_sdk(&self) -> Result<sdk::TerminalConfig, NamiError> {
        let mut config = sdk::TerminalConfig::default();
        if let Some(d) = positive(self.card_present_timeout, "card_present_timeout")? {
            config.card_present_timeout = d;
        }
        if let Some(d) = positive(self.settlement_timeout, "settlement_timeout")? {
            config.settlement_timeout = d;
        }
        if let Some(d) = positive(self.admin_timeout, "admin_timeout")? {
            config.admin_timeout = d;
        }
        if let Some(lrc) = self.lrc {
            config.lrc = match lrc {
                LrcMode::Skyband => sdk::LrcMode::Skyband,
                LrcMode::Xor => sdk::LrcMode::Xor,
                LrcMode::None => sdk::LrcMode::None,
            };
        }
        if let Some(layout) = self.layout {
            config.layout = match layout {
                Layout::V35 => sdk::Layout::V35,
                Layout::V2020 => sdk::Layout::V2020,
            };
        }
        if let Some(flag) = self.wait_when_busy {
            config.wait_when_busy = flag;
        }
        if let Some(flag) = self.auto_start_session {
            config.auto_start_session = flag;
        }
        if let Some(flag) = self.reconnect_serial {
            config.reconnect_serial = flag;
        }
        Ok(config)
    }
}

/// Parity of a serial link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Parity {
    None,
    Odd,
    Even,
}

/// Serial line settings; the defaults are the terminals' 115200 8-N-1.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SerialSettings {
    /// 9600, 19200, 38400, 57600 or 115200.
    #[uniffi(default = 115200)]
    pub baud_rate: u32,
    /// 7 or 8.
    #[uniffi(default = 8)]
    pub data_bits: u8,
    #[uniffi(default = None)]
    pub parity: Option<Parity>,
    /// 1 or 2.
    #[uniffi(default = 1)]
    pub stop_bits: u8,
}

impl SerialSettings {
    pub(crate) fn to_sdk(&self) -> Result<sdk::SerialSettings, NamiError> {
        let parity = match self.parity.unwrap_or(Parity::None) {
            Parity::None => sdk::Parity::None,
            Parity::Odd => sdk::Parity::Odd,
            Parity::Even => sdk::Parity::Even,
        };
        Ok(sdk::SerialSettings::new(self.baud_rate, self.data_bits, parity, self.stop_bits)?)
    }
}

/// Settings of a `Middleware` beyond its state directory.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct MiddlewareOptions {
    /// Settings of every terminal session.
    #[uniffi(default = None)]
    pub terminal: Option<TerminalConfig>,
    /// The print flag when a request has none: true (the terminal prints the receipt).
    #[uniffi(default = None)]
    pub default_print: Option<bool>,
    /// How long an ECR reference's result is given back instead of sending again: 24 h. Zero
    /// turns replay off (for POS systems that send a static reference).
    #[uniffi(default = None)]
    pub idempotency_window: Option<Duration>,
    /// How often recovery looks at unknown outcomes: 30 s.
    #[uniffi(default = None)]
    pub recovery_interval: Option<Duration>,
    /// Recovery concludes "never processed" only for requests older than this: 150 s.
    #[uniffi(default = None)]
    pub recovery_grace: Option<Duration>,
    /// Re-open the saved connections when the middleware opens: true.
    #[uniffi(default = None)]
    pub restore_connections: Option<bool>,
}

impl MiddlewareOptions {
    pub(crate) fn to_sdk(&self, state_dir: &str) -> Result<sdk::ServiceConfig, NamiError> {
        let mut config = sdk::ServiceConfig::new(state_dir);
        if let Some(terminal) = &self.terminal {
            config.terminal = terminal.to_sdk()?;
        }
        if let Some(flag) = self.default_print {
            config.default_print = flag;
        }
        if let Some(d) = self.idempotency_window {
            config.idempotency_window = d;
        }
        if let Some(d) = positive(self.recovery_interval, "recovery_interval")? {
            config.recovery_interval = d;
        }
        if let Some(d) = self.recovery_grace {
            config.recovery_grace = d;
        }
        if let Some(flag) = self.restore_connections {
            config.restore_connections = flag;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_is_the_sdk_default() {
        let config = TerminalConfig::default().to_sdk().unwrap();
        let default = sdk::TerminalConfig::default();
        assert_eq!(config.card_present_timeout, default.card_present_timeout);
        assert_eq!(config.lrc, default.lrc);
        assert_eq!(config.wait_when_busy, default.wait_when_busy);
    }

    #[test]
    fn settings_map_onto_the_sdk() {
        let config = TerminalConfig {
            card_present_timeout: Some(Duration::from_millis(1500)),
            lrc: Some(LrcMode::Xor),
            layout: Some(Layout::V2020),
            auto_start_session: Some(true),
            ..TerminalConfig::default()
        }
        .to_sdk()
        .unwrap();
        assert_eq!(config.card_present_timeout, Duration::from_millis(1500));
        assert_eq!(config.lrc, sdk::LrcMode::Xor);
        assert_eq!(config.layout, sdk::Layout::V2020);
        assert!(config.auto_start_session);
    }

    #[test]
    fn a_zero_timeout_is_refused_by_name() {
        let config = TerminalConfig { admin_timeout: Some(Duration::ZERO), ..TerminalConfig::default() };
        assert!(matches!(config.to_sdk(), Err(NamiError::InvalidInput { field, .. }) if field == "admin_timeout"));
    }

    #[test]
    fn bad_serial_settings_name_their_field() {
        let settings = SerialSettings { baud_rate: 1234, data_bits: 8, parity: None, stop_bits: 1 };
        assert!(matches!(settings.to_sdk(), Err(NamiError::InvalidInput { field, .. }) if field == "baudRate"));
    }
}
