//! The `options_json` of `nami_client_new` and `nami_terminal_*_new`, mapped onto
//! `ServiceConfig` / `TerminalConfig`, and the process's logging. Unknown keys are refused with a
//! message that names them.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use nami_sdk::{Layout, LrcMode, ServiceConfig, TerminalConfig};
use serde::Deserialize;
use tracing_subscriber::filter::LevelFilter;

use super::common::Failure;

/// Deadlines, in seconds (fractions allowed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Timeouts {
    card_present_seconds: Option<f64>,
    settlement_seconds: Option<f64>,
    admin_seconds: Option<f64>,
}

/// Settings of every terminal session (both option sets have them).
#[derive(Debug, Default)]
struct Session {
    timeouts: Option<Timeouts>,
    lrc: Option<String>,
    layout: Option<String>,
    wait_when_busy: Option<bool>,
    auto_start_session: Option<bool>,
    reconnect_serial: Option<bool>,
}

/// `nami_client_new` options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClientOptions {
    state_dir: Option<String>,
    log_level: Option<String>,
    log_file: Option<String>,
    default_print: Option<bool>,
    timeouts: Option<Timeouts>,
    lrc: Option<String>,
    layout: Option<String>,
    wait_when_busy: Option<bool>,
    auto_start_session: Option<bool>,
    reconnect_serial: Option<bool>,
    recovery_interval_seconds: Option<f64>,
    recovery_grace_seconds: Option<f64>,
    idempotency_window_seconds: Option<f64>,
    com_reconnect_timeout_seconds: Option<f64>,
    restore_connections: Option<bool>,
    memory_max_mb: Option<u64>,
}

/// `nami_terminal_tcp_new` / `nami_terminal_serial_new` options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TerminalOptions {
    log_level: Option<String>,
    log_file: Option<String>,
    timeouts: Option<Timeouts>,
    lrc: Option<String>,
    layout: Option<String>,
    wait_when_busy: Option<bool>,
    auto_start_session: Option<bool>,
    reconnect_serial: Option<bool>,
}

/// Parses the options text: NULL, empty or `{}` means every default.
fn parse<T: for<'de> Deserialize<'de> + Default>(json: Option<&str>) -> Result<T, Failure> {
    let Some(json) = json.filter(|j| !j.trim().is_empty()) else { return Ok(T::default()) };
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            Failure::invalid(format!("options_json: {inner}"))
        } else {
            Failure::invalid(format!("options_json: `{path}`: {inner}"))
        }
    })
}

fn seconds(value: Option<f64>, name: &str, zero_allowed: bool) -> Result<Option<Duration>, Failure> {
    let Some(value) = value else { return Ok(None) };
    let ok = value.is_finite() && (value > 0.0 || (zero_allowed && value == 0.0));
    let duration = if ok { Duration::try_from_secs_f64(value).ok() } else { None };
    match duration {
        Some(d) => Ok(Some(d)),
        None => Err(Failure::invalid(format!(
            "options_json: `{name}` must be a number of seconds {}, got {value}",
            if zero_allowed { "of zero or more" } else { "above zero" }
        ))),
    }
}

fn terminal_config(session: Session) -> Result<TerminalConfig, Failure> {
    let mut config = TerminalConfig::default();
    let timeouts = session.timeouts.unwrap_or_default();
    if let Some(d) = seconds(timeouts.card_present_seconds, "timeouts.cardPresentSeconds", false)? {
        config.card_present_timeout = d;
    }
    if let Some(d) = seconds(timeouts.settlement_seconds, "timeouts.settlementSeconds", false)? {
        config.settlement_timeout = d;
    }
    if let Some(d) = seconds(timeouts.admin_seconds, "timeouts.adminSeconds", false)? {
        config.admin_timeout = d;
    }
    if let Some(text) = session.lrc {
        config.lrc = text
            .parse::<LrcMode>()
            .map_err(|e| Failure::invalid(format!("options_json: `lrc`: {e} (skyband, xor or none)")))?;
    }
    if let Some(text) = session.layout {
        config.layout = text.parse::<Layout>().map_err(|e| Failure::invalid(format!("options_json: `layout`: {e}")))?;
    }
    if let Some(flag) = session.wait_when_busy {
        config.wait_when_busy = flag;
    }
    if let Some(flag) = session.auto_start_session {
        config.auto_start_session = flag;
    }
    if let Some(flag) = session.reconnect_serial {
        config.reconnect_serial = flag;
    }
    Ok(config)
}

/// The service settings of `nami_client_new`; sets up logging if asked.
pub(crate) fn service_config(json: Option<&str>) -> Result<ServiceConfig, Failure> {
    let options: ClientOptions = parse(json)?;
    let terminal = terminal_config(Session {
        timeouts: options.timeouts,
        lrc: options.lrc,
        layout: options.layout,
        wait_when_busy: options.wait_when_busy,
        auto_start_session: options.auto_start_session,
        reconnect_serial: options.reconnect_serial,
    })?;
    let state_dir = match options.state_dir.filter(|d| !d.trim().is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => ServiceConfig::default_state_dir(),
    };
    let mut config = ServiceConfig::new(state_dir);
    config.terminal = terminal;
    if let Some(flag) = options.default_print {
        config.default_print = flag;
    }
    if let Some(d) = seconds(options.recovery_interval_seconds, "recoveryIntervalSeconds", false)? {
        config.recovery_interval = d;
    }
    if let Some(d) = seconds(options.recovery_grace_seconds, "recoveryGraceSeconds", true)? {
        config.recovery_grace = d;
    }
    if let Some(d) = seconds(options.idempotency_window_seconds, "idempotencyWindowSeconds", true)? {
        config.idempotency_window = d;
    }
    if let Some(d) = seconds(options.com_reconnect_timeout_seconds, "comReconnectTimeoutSeconds", true)? {
        config.com_reconnect_timeout = d;
    }
    if let Some(flag) = options.restore_connections {
        config.restore_connections = flag;
    }
    if options.memory_max_mb.is_some() {
        config.memory_max_mb = options.memory_max_mb;
    }
    init_logging(options.log_level.as_deref(), options.log_file.as_deref())?;
    Ok(config)
}

/// The session settings of `nami_terminal_*_new`; sets up logging if asked.
pub(crate) fn terminal_options(json: Option<&str>) -> Result<TerminalConfig, Failure> {
    let options: TerminalOptions = parse(json)?;
    let config = terminal_config(Session {
        timeouts: options.timeouts,
        lrc: options.lrc,
        layout: options.layout,
        wait_when_busy: options.wait_when_busy,
        auto_start_session: options.auto_start_session,
        reconnect_serial: options.reconnect_serial,
    })?;
    init_logging(options.log_level.as_deref(), options.log_file.as_deref())?;
    Ok(config)
}

/// Installs the process's log output once: `logLevel` (`off`, `error`, `warn`, `info`, `debug`,
/// `trace`; `info` when only `logFile` is given) to `logFile` (appended) or standard error.
/// Without either, the library logs nothing. The first handle that asks for logging decides for
/// the whole process; later settings are ignored. Card numbers are masked in every log line.
fn init_logging(level: Option<&str>, file: Option<&str>) -> Result<(), Failure> {
    if level.is_none() && file.is_none() {
        return Ok(());
    }
    let level = match level {
        None => LevelFilter::INFO,
        Some(text) => text.trim().parse::<LevelFilter>().map_err(|_| {
            Failure::invalid(format!(
                "options_json: `logLevel` must be off, error, warn, info, debug or trace, got {text:?}"
            ))
        })?,
    };
    if level == LevelFilter::OFF {
        return Ok(());
    }
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false).with_ansi(false);
    // `try_init` fails when a subscriber is already installed: then the first one stays.
    match file {
        Some(path) => {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Failure::invalid(format!("options_json: `logFile` {path:?} cannot be opened: {e}")))?;
            let _ = builder.with_writer(Mutex::new(out)).try_init();
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_options_means_the_defaults() {
        for json in [None, Some(""), Some("{}"), Some("  ")] {
            let config = service_config(json).unwrap();
            assert_eq!(config.state_dir, ServiceConfig::default_state_dir());
            assert_eq!(config.terminal.card_present_timeout, Duration::from_secs(150));
            assert!(config.default_print);
        }
    }

    #[test]
    fn options_map_onto_the_service_and_terminal_settings() {
        let config = service_config(Some(
            r#"{"stateDir":"/tmp/x","defaultPrint":false,"timeouts":{"cardPresentSeconds":2.5,"settlementSeconds":6,"adminSeconds":3},
               "lrc":"xor","layout":"2020","idempotencyWindowSeconds":0,"restoreConnections":false}"#,
        ))
        .unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/tmp/x"));
        assert!(!config.default_print);
        assert_eq!(config.terminal.card_present_timeout, Duration::from_millis(2500));
        assert_eq!(config.terminal.settlement_timeout, Duration::from_secs(6));
        assert_eq!(config.terminal.admin_timeout, Duration::from_secs(3));
        assert_eq!(config.terminal.layout, Layout::V2020);
        assert_eq!(config.idempotency_window, Duration::ZERO);
        assert!(!config.restore_connections);
    }

    #[test]
    fn an_unknown_option_is_refused_by_name() {
        let e = service_config(Some(r#"{"stateDirectory":"/tmp"}"#)).unwrap_err();
        assert!(e.message.contains("stateDirectory"), "{}", e.message);
        let e = service_config(Some(r#"{"timeouts":{"cardPresent":5}}"#)).unwrap_err();
        assert!(e.message.contains("timeouts") && e.message.contains("cardPresent"), "{}", e.message);
        let e = terminal_options(Some(r#"{"stateDir":"/tmp"}"#)).unwrap_err();
        assert!(e.message.contains("stateDir"), "{}", e.message);
    }

    #[test]
    fn bad_values_name_their_option() {
        let e = service_config(Some(r#"{"timeouts":{"adminSeconds":0}}"#)).unwrap_err();
        assert!(e.message.contains("timeouts.adminSeconds"), "{}", e.message);
        let e = service_config(Some(r#"{"logLevel":"loud"}"#)).unwrap_err();
        assert!(e.message.contains("logLevel"), "{}", e.message);
        let e = terminal_options(Some(r#"{"layout":"4"}"#)).unwrap_err();
        assert!(e.message.contains("layout"), "{}", e.message);
        let e = service_config(Some("{not json")).unwrap_err();
        assert!(e.message.starts_with("options_json"), "{}", e.message);
    }
}
