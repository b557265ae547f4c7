//! Configuration: a TOML file, `NAMI_*` environment variables and command-line flags.
//!
//! Precedence, highest first: flags, environment variables, the file, the defaults. clap reads a
//! flag or its environment variable (the flag wins); whatever neither gives falls back to the
//! file, then to [`Config::new`]'s defaults. The one setting also changed at run time, HTTPS
//! (`POST /api/tls`), is remembered in the state directory: it wins over the file, and a flag or
//! `NAMI_TLS` wins over it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// The settings the daemon runs with, all resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the REST API listens (`127.0.0.1:9099`). Port 0 takes a free port.
    pub listen: SocketAddr,
    /// `journal.sqlite`, `state.sqlite`, the generated certificate and `httpd-settings.json`.
    pub state_dir: PathBuf,
    /// The bearer token every request must carry, when set (always required on a non-loopback
    /// bind unless `no_auth`).
    pub token: Option<String>,
    /// Serve a non-loopback bind without a token: the operator's explicit choice.
    pub no_auth: bool,
    /// Web origins besides the dashboard's own that may call the API from a browser, with CORS
    /// answers (`https://pos.example`); none by default (see `origin.rs`).
    pub allowed_origins: Vec<String>,
    /// Names the daemon answers to in `Host` besides its own (`pos-pc.example`, `name:port`).
    pub allowed_hosts: Vec<String>,
    pub tls: TlsSettings,
    /// The embedded simulated terminal (`--simulator`), if any.
    pub simulator: Option<SimulatorSettings>,
    /// A `tracing` filter such as `info` or `nami_httpd=debug,info`; `None`: `RUST_LOG`, else
    /// `info`.
    pub log: Option<String>,
    pub timeouts: Timeouts,
    /// The service's settings beyond the deadlines: every one the C ABI's options set too.
    pub service: ServiceSettings,
    /// On SIGTERM / Ctrl-C, how long running exchanges may take to finish before they are
    /// cancelled (and their outcome recorded in the journal).
    pub shutdown_grace: Duration,
}

/// HTTPS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// From a flag or `NAMI_TLS`: wins over the persisted switch and the file.
    pub forced: Option<bool>,
    /// From the file's `[tls] enabled`.
    pub file_enabled: Option<bool>,
    /// The operator's own certificate chain and private key (PEM); without them a self-signed
    /// certificate is generated once in `<state_dir>/tls/`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The embedded simulator.
#[derive(Debug, Clone)]
pub struct SimulatorSettings {
    /// Where its TCP side listens (`127.0.0.1:8888`).
    pub listen: SocketAddr,
    /// Card transactions wait for `POST /simulator/tap`.
    pub card_tap: bool,
}

/// Per-call deadlines of the terminal sessions (docs/protocol.md D4).
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Purchase, refund, pre-authorisation, cash advance, bill payment: 150 s.
    pub card_present: Duration,
    /// Reversal, reconciliation, reports, duplicate: 60 s.
    pub settlement: Duration,
    /// Register, sessions, check status, parameters: 30 s.
    pub admin: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let defaults = nami_sdk::TerminalConfig::default();
        Timeouts {
            card_present: defaults.card_present_timeout,
            settlement: defaults.settlement_timeout,
            admin: defaults.admin_timeout,
        }
    }
}

/// The service settings the daemon can set, each `None` for the service's default (the same set
/// as the C ABI's `nami_client_new` options). `[service]` in the file, a flag, or `NAMI_*`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// LRC of request frames: skyband, xor or none [default: skyband].
    #[arg(long, env = "NAMI_LRC", global = true)]
    pub lrc: Option<String>,
    /// The terminal's reply layout: 3.5 or 2020 [default: 3.5].
    #[arg(long, env = "NAMI_LAYOUT", global = true)]
    pub layout: Option<String>,
    /// How long a result is given back to a retry of the same request, seconds; 0 turns replay
    /// off [default: 86400].
    #[arg(long, env = "NAMI_IDEMPOTENCY_WINDOW_SECS", global = true)]
    pub idempotency_window_secs: Option<f64>,
    /// How often recovery asks the terminals about unknown outcomes, seconds [default: 30].
    #[arg(long, env = "NAMI_RECOVERY_INTERVAL_SECS", global = true)]
    pub recovery_interval_secs: Option<f64>,
    /// Recovery concludes "not processed" only for requests older than this, seconds [default: 150].
    #[arg(long, env = "NAMI_RECOVERY_GRACE_SECS", global = true)]
    pub recovery_grace_secs: Option<f64>,
    /// DUPLICATEs without an answer after which an unknown outcome needs attention [default: 10].
    #[arg(long, env = "NAMI_RECOVERY_ATTENTION_AFTER", global = true)]
    pub recovery_attention_after: Option<u32>,
    /// After this long a vanished COM device is listed as "Disconnected", seconds [default: 120].
    #[arg(long, env = "NAMI_COM_RECONNECT_TIMEOUT_SECS", global = true)]
    pub com_reconnect_timeout_secs: Option<f64>,
    /// The print flag of a request without one [default: true].
    #[arg(long, env = "NAMI_DEFAULT_PRINT", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub default_print: Option<bool>,
    /// A call for a busy terminal waits for it instead of TERMINAL_BUSY [default: false].
    #[arg(long, env = "NAMI_WAIT_WHEN_BUSY", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub wait_when_busy: Option<bool>,
    /// Send START_SESSION after every approved REGISTER [default: false].
    #[arg(long, env = "NAMI_AUTO_START_SESSION", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub auto_start_session: Option<bool>,
    /// Re-open a vanished serial device and re-register silently [default: true].
    #[arg(long, env = "NAMI_RECONNECT_SERIAL", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub reconnect_serial: Option<bool>,
    /// Re-open the saved connections at start [default: true].
    #[arg(long, env = "NAMI_RESTORE_CONNECTIONS", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub restore_connections: Option<bool>,
    /// `memoryMaxMb` of the health status [default: the machine's memory].
    #[arg(long, env = "NAMI_MEMORY_MAX_MB", global = true)]
    pub memory_max_mb: Option<u64>,
}

impl ServiceSettings {
    /// Each setting of `self`, else of `file`.
    fn or(self, file: ServiceSettings) -> ServiceSettings {
        ServiceSettings {
            lrc: self.lrc.or(file.lrc),
            layout: self.layout.or(file.layout),
            idempotency_window_secs: self.idempotency_window_secs.or(file.idempotency_window_secs),
            recovery_interval_secs: self.recovery_interval_secs.or(file.recovery_interval_secs),
            recovery_grace_secs: self.recovery_grace_secs.or(file.recovery_grace_secs),
            recovery_attention_after: self.recovery_attention_after.or(file.recovery_attention_after),
            com_reconnect_timeout_secs: self.com_reconnect_timeout_secs.or(file.com_reconnect_timeout_secs),
            default_print: self.default_print.or(file.default_print),
            wait_when_busy: self.wait_when_busy.or(file.wait_when_busy),
            auto_start_session: self.auto_start_session.or(file.auto_start_session),
            reconnect_serial: self.reconnect_serial.or(file.reconnect_serial),
            restore_connections: self.restore_connections.or(file.restore_connections),
            memory_max_mb: self.memory_max_mb.or(file.memory_max_mb),
        }
    }

    /// Sets what is given on `config`; a bad value is refused naming its setting.
    pub fn apply(&self, config: &mut nami_sdk::ServiceConfig) -> Result<(), ConfigError> {
        let invalid = |name: &str, reason: String| ConfigError::Invalid(format!("{name} {reason}"));
        if let Some(text) = &self.lrc {
            config.terminal.lrc = text.parse().map_err(|e: nami_sdk::ValidationError| invalid("lrc", e.reason))?;
        }
        if let Some(text) = &self.layout {
            config.terminal.layout =
                text.parse().map_err(|e: nami_sdk::ValidationError| invalid("layout", e.reason))?;
        }
        let seconds = |value: Option<f64>, name: &str, slot: &mut Duration| -> Result<(), ConfigError> {
            if let Some(secs) = value {
                *slot = Duration::try_from_secs_f64(secs)
                    .map_err(|_| invalid(name, format!("must be 0 or more seconds, got {secs}")))?;
            }
            Ok(())
        };
        seconds(self.idempotency_window_secs, "idempotency_window_secs", &mut config.idempotency_window)?;
        seconds(self.recovery_grace_secs, "recovery_grace_secs", &mut config.recovery_grace)?;
        seconds(self.com_reconnect_timeout_secs, "com_reconnect_timeout_secs", &mut config.com_reconnect_timeout)?;
        if let Some(secs) = self.recovery_interval_secs {
            config.recovery_interval = duration(secs).ok_or_else(|| {
                invalid("recovery_interval_secs", format!("must be a positive number of seconds, got {secs}"))
            })?;
        }
        if let Some(attempts) = self.recovery_attention_after {
            config.recovery_attention_after = attempts;
        }
        if let Some(flag) = self.default_print {
            config.default_print = flag;
        }
        if let Some(flag) = self.wait_when_busy {
            config.terminal.wait_when_busy = flag;
        }
        if let Some(flag) = self.auto_start_session {
            config.terminal.auto_start_session = flag;
        }
        if let Some(flag) = self.reconnect_serial {
            config.terminal.reconnect_serial = flag;
        }
        if let Some(flag) = self.restore_connections {
            config.restore_connections = flag;
        }
        if self.memory_max_mb.is_some() {
            config.memory_max_mb = self.memory_max_mb;
        }
        Ok(())
    }
}

/// The default listen address: Nami's middleware port, loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9099";
/// The default address of the embedded simulator (the vendor's Postman collection uses 8888).
pub const DEFAULT_SIMULATOR_LISTEN: &str = "127.0.0.1:8888";

impl Config {
    /// The defaults, with this state directory.
    pub fn new(state_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
            state_dir: state_dir.into(),
            token: None,
            no_auth: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            tls: TlsSettings::default(),
            simulator: None,
            log: None,
            timeouts: Timeouts::default(),
            service: ServiceSettings::default(),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// The platform's data directory (see `ServiceConfig::default_state_dir`).
    pub fn default_state_dir() -> PathBuf {
        nami_sdk::ServiceConfig::default_state_dir()
    }

    /// The config file read when none is named: `nami-httpd.toml` in the default state directory.
    pub fn default_file() -> PathBuf {
        Self::default_state_dir().join("nami-httpd.toml")
    }

    /// Resolves the command line (flags and their environment variables) over the file over the
    /// defaults.
    pub fn resolve(cli: &RunArgs) -> Result<Config, ConfigError> {
        let (file, file_path) = match &cli.config {
            Some(path) => (FileConfig::read(path)?, Some(path.clone())),
            None => {
                let path = Self::default_file();
                if path.is_file() { (FileConfig::read(&path)?, Some(path)) } else { (FileConfig::default(), None) }
            }
        };
        let origin = |name: &str| match &file_path {
            Some(path) => format!("`{name}` in {}", path.display()),
            None => format!("`{name}`"),
        };
        let state_dir = cli.state_dir.clone().or(file.state_dir.clone()).unwrap_or_else(Self::default_state_dir);
        let mut config = Config::new(state_dir);
        if let Some(text) = cli.listen.as_deref() {
            config.listen =
                parse_addr(text).map_err(|e| ConfigError::Invalid(format!("--listen / NAMI_LISTEN: {e}")))?;
        } else if let Some(text) = file.listen.as_deref() {
            config.listen = parse_addr(text).map_err(|e| ConfigError::Invalid(format!("{}: {e}", origin("listen"))))?;
        }
        config.token = cli.token.clone().or(file.token.clone()).filter(|t| !t.trim().is_empty());
        config.no_auth = cli.no_auth.or(file.no_auth).unwrap_or(false);
        // Checked (and blank entries dropped) by `origin::Policy::new` at start.
        let list = |flag: &Option<Vec<String>>, file: &Option<Vec<String>>| {
            flag.clone().or_else(|| file.clone()).unwrap_or_default()
        };
        config.allowed_origins = list(&cli.allowed_origins, &file.allowed_origins);
        config.allowed_hosts = list(&cli.allowed_hosts, &file.allowed_hosts);
        let file_tls = file.tls.clone().unwrap_or_default();
        config.tls = TlsSettings {
            forced: cli.tls,
            file_enabled: file_tls.enabled,
            cert: cli.tls_cert.clone().or(file_tls.cert),
            key: cli.tls_key.clone().or(file_tls.key),
        };
        if config.tls.cert.is_some() != config.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "a TLS certificate and its key go together: give both (--tls-cert and --tls-key) or neither".into(),
            ));
        }
        let file_sim = file.simulator.clone().unwrap_or_default();
        if cli.simulator.or(file_sim.enabled).unwrap_or(false) {
            let listen = match (cli.simulator_listen.as_deref(), file_sim.listen.as_deref()) {
                (Some(text), _) => parse_addr(text)
                    .map_err(|e| ConfigError::Invalid(format!("--simulator-listen / NAMI_SIMULATOR_LISTEN: {e}")))?,
                (None, Some(text)) => parse_addr(text)
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", origin("simulator.listen"))))?,
                (None, None) => DEFAULT_SIMULATOR_LISTEN.parse().expect("a valid default address"),
            };
            let card_tap = cli.simulator_card_tap.or(file_sim.card_tap).unwrap_or(false);
            config.simulator = Some(SimulatorSettings { listen, card_tap });
        }
        config.log = cli.log.clone().or(file.log.clone());
        let file_timeouts = file.timeouts.clone().unwrap_or_default();
        let seconds =
            |flag: Option<f64>, file: Option<f64>, name: &str, slot: &mut Duration| -> Result<(), ConfigError> {
                if let Some(secs) = flag.or(file) {
                    *slot = duration(secs).ok_or_else(|| {
                        ConfigError::Invalid(format!("{name} must be a positive number of seconds, got {secs}"))
                    })?;
                }
                Ok(())
            };
        seconds(
            cli.card_present_timeout_secs,
            file_timeouts.card_present_secs,
            "card_present_secs",
            &mut config.timeouts.card_present,
        )?;
        seconds(
            cli.settlement_timeout_secs,
            file_timeouts.settlement_secs,
            "settlement_secs",
            &mut config.timeouts.settlement,
        )?;
        seconds(cli.admin_timeout_secs, file_timeouts.admin_secs, "admin_secs", &mut config.timeouts.admin)?;
        config.service = cli.service.clone().or(file.service.clone().unwrap_or_default());
        // Checked now, so that a bad value stops the daemon before it listens.
        config.service.apply(&mut nami_sdk::ServiceConfig::new(&config.state_dir))?;
        if let Some(secs) = cli.shutdown_grace_secs.or(file.shutdown_grace_secs) {
            config.shutdown_grace = Duration::try_from_secs_f64(secs)
                .map_err(|_| ConfigError::Invalid(format!("shutdown_grace_secs must be 0 or more, got {secs}")))?;
        }
        Ok(config)
    }
}

fn duration(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok().filter(|d| !d.is_zero())
}

/// `127.0.0.1:9099`, `[::1]:9099`, `0.0.0.0:9099` or `localhost:9099`.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let (host, port) = nami_sdk::session::link::split_host_port(text)
        .map_err(|e| format!("{text:?} is not an address such as 127.0.0.1:9099 ({e})"))?;
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{text:?} resolves to no address")),
        Err(e) => Err(format!("{text:?} is not an address such as 127.0.0.1:9099 ({e})")),
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

// ---------------------------------------------------------------------------------------------
// The file

/// `nami-httpd.toml`. Every key is optional; unknown keys are refused (a typo should not pass
/// silently).
///
/// ```toml
/// listen = "127.0.0.1:9099"
/// state_dir = "/var/lib/nami"
/// token = "change-me"
/// no_auth = false
/// allowed_origins = ["http://localhost:3000"]
/// allowed_hosts = ["pos-pc.example"]
/// log = "info"
/// shutdown_grace_secs = 5
///
/// [tls]
/// enabled = false
/// cert = "/etc/nami/cert.pem"
/// key = "/etc/nami/key.pem"
///
/// [simulator]
/// enabled = false
/// listen = "127.0.0.1:8888"
/// card_tap = false
///
/// [timeouts]
/// card_present_secs = 150
/// settlement_secs = 60
/// admin_secs = 30
///
/// [service]
/// lrc = "skyband"
/// layout = "3.5"
/// idempotency_window_secs = 86400
/// recovery_interval_secs = 30
/// recovery_grace_secs = 150
/// recovery_attention_after = 10
/// com_reconnect_timeout_secs = 120
/// default_print = true
/// wait_when_busy = false
/// auto_start_session = false
/// reconnect_serial = true
/// restore_connections = true
/// memory_max_mb = 512
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub token: Option<String>,
    pub no_auth: Option<bool>,
    /// Formerly `cors_origins`: the same list, which now also decides who may call at all.
    #[serde(alias = "cors_origins")]
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub log: Option<String>,
    pub shutdown_grace_secs: Option<f64>,
    pub tls: Option<FileTls>,
    pub simulator: Option<FileSimulator>,
    pub timeouts: Option<FileTimeouts>,
    pub service: Option<ServiceSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    pub enabled: Option<bool>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSimulator {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub card_tap: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    pub card_present_secs: Option<f64>,
    pub settlement_secs: Option<f64>,
    pub admin_secs: Option<f64>,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.to_owned(), reason: e.to_string() })?;
        Self::parse(&text).map_err(|reason| ConfigError::File { path: path.to_owned(), reason })
    }

    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The command line

/// `nami-httpd`: Nami's Local API Middleware as a REST daemon (default `http://127.0.0.1:9099`).
#[derive(Debug, Parser)]
#[command(name = "nami-httpd", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Windows only: install, remove or run as the Windows service `NamiMiddleware`.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum ServiceCommand {
    /// Registers the service (automatic start) with this executable and the given options.
    Install,
    /// Stops and removes the service.
    Uninstall,
    /// What the service control manager starts; not for interactive use.
    Run,
}

fn boolish() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

/// The options of the daemon; each also reads a `NAMI_*` environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// The TOML config file [default: nami-httpd.toml in the platform's data directory, if there].
    #[arg(long, env = "NAMI_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address and port of the REST API [default: 127.0.0.1:9099].
    #[arg(long, env = "NAMI_LISTEN", global = true)]
    pub listen: Option<String>,
    /// Journal, registrations, connections, certificate [default: the platform's data directory].
    #[arg(long, env = "NAMI_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Bearer token required on every request (prefer NAMI_TOKEN or the file: flags show in `ps`).
    #[arg(long, env = "NAMI_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Allow a non-loopback bind without a token.
    #[arg(long, env = "NAMI_NO_AUTH", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub no_auth: Option<bool>,
    /// Web origins allowed to call the API from a browser (with CORS), comma-separated or
    /// repeated, e.g. https://pos.example [default: none; the dashboard's own origin always].
    #[arg(
        long = "allowed-origin",
        alias = "cors-origin",
        env = "NAMI_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// Names the daemon answers to in the Host header besides its own (`name` or `name:port`),
    /// comma-separated or repeated [default: none].
    #[arg(long = "allowed-host", env = "NAMI_ALLOWED_HOSTS", value_delimiter = ',', global = true)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Serve HTTPS on the same port (`--tls=false` forces HTTP).
    #[arg(long, env = "NAMI_TLS", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub tls: Option<bool>,
    /// Your certificate chain (PEM) instead of the generated self-signed one.
    #[arg(long, env = "NAMI_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "NAMI_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Start an embedded simulated terminal (TCP on --simulator-listen, and a pty on Unix).
    #[arg(long, env = "NAMI_SIMULATOR", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub simulator: Option<bool>,
    /// Where the embedded simulator listens [default: 127.0.0.1:8888].
    #[arg(long, env = "NAMI_SIMULATOR_LISTEN", global = true)]
    pub simulator_listen: Option<String>,
    /// The embedded simulator's card transactions wait for POST /simulator/tap.
    #[arg(long, env = "NAMI_SIMULATOR_CARD_TAP", num_args = 0..=1, default_missing_value = "true", value_parser = boolish(), global = true)]
    pub simulator_card_tap: Option<bool>,
    /// Log filter, e.g. `info` or `debug` [default: info; RUST_LOG also works].
    #[arg(long, env = "NAMI_LOG", global = true)]
    pub log: Option<String>,
    /// Deadline of card-present transactions, seconds [default: 150].
    #[arg(long, env = "NAMI_CARD_PRESENT_TIMEOUT_SECS", global = true)]
    pub card_present_timeout_secs: Option<f64>,
    /// Deadline of reversal, reconciliation, reports and duplicates, seconds [default: 60].
    #[arg(long, env = "NAMI_SETTLEMENT_TIMEOUT_SECS", global = true)]
    pub settlement_timeout_secs: Option<f64>,
    /// Deadline of register, sessions, status and parameters, seconds [default: 30].
    #[arg(long, env = "NAMI_ADMIN_TIMEOUT_SECS", global = true)]
    pub admin_timeout_secs: Option<f64>,
    /// On SIGTERM / Ctrl-C, seconds running exchanges get to finish before being cancelled [default: 5].
    #[arg(long, env = "NAMI_SHUTDOWN_GRACE_SECS", global = true)]
    pub shutdown_grace_secs: Option<f64>,
    #[command(flatten)]
    pub service: ServiceSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> RunArgs {
        let mut all = vec!["nami-httpd"];
        all.extend_from_slice(list);
        Cli::try_parse_from(all).unwrap().run
    }

    #[test]
    fn the_defaults_are_loopback_9099_plain_http_without_auth() {
        let config = Config::new("/tmp/x");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9099");
        assert!(config.token.is_none() && !config.no_auth && config.allowed_origins.is_empty());
        assert!(config.allowed_hosts.is_empty());
        assert!(config.tls.forced.is_none() && config.simulator.is_none());
    }

    #[test]
    fn every_service_setting_of_the_c_abi_is_set_by_the_file_a_flag_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nami-httpd.toml");
        std::fs::write(
            &file,
            "[service]\nlrc = \"xor\"\nlayout = \"2020\"\nidempotency_window_secs = 0\nrecovery_interval_secs = 2\n\
             recovery_grace_secs = 0\nrecovery_attention_after = 3\ncom_reconnect_timeout_secs = 5\n\
             default_print = false\nwait_when_busy = true\nauto_start_session = true\nreconnect_serial = false\n\
             restore_connections = false\nmemory_max_mb = 256\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let resolved =
            Config::resolve(&args(&["--config", path, "--layout", "3.5", "--recovery-attention-after", "7"])).unwrap();
        let mut service = nami_sdk::ServiceConfig::new("/tmp/s");
        resolved.service.apply(&mut service).unwrap();
        assert_eq!((service.terminal.lrc, service.terminal.layout), (nami_sdk::LrcMode::Xor, nami_sdk::Layout::V35));
        assert_eq!((service.idempotency_window, service.recovery_grace), (Duration::ZERO, Duration::ZERO));
        assert_eq!(
            (service.recovery_interval, service.com_reconnect_timeout),
            (Duration::from_secs(2), Duration::from_secs(5))
        );
        assert_eq!(service.recovery_attention_after, 7, "the flag wins");
        assert!(!service.default_print && !service.restore_connections && !service.terminal.reconnect_serial);
        assert!(service.terminal.wait_when_busy && service.terminal.auto_start_session);
        assert_eq!(service.memory_max_mb, Some(256));
        let bad = Config::resolve(&args(&["--config", path, "--lrc", "crc"])).unwrap_err();
        assert!(bad.to_string().contains("lrc"), "{bad}");
        std::fs::write(&file, "[service]\nlayot = \"2020\"\n").unwrap();
        assert!(Config::resolve(&args(&["--config", path])).unwrap_err().to_string().contains("layot"));
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nami-httpd.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\ntoken = \"from-file\"\nallowed_origins = [\"http://a\"]\n\
             allowed_hosts = [\"pos-pc\"]\n\
             [simulator]\nenabled = true\n[timeouts]\nadmin_secs = 2.5\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = Config::resolve(&args(&["--config", path, "--state-dir", "/tmp/s"])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.token.as_deref(), Some("from-file"));
        assert_eq!(config.allowed_origins, vec!["http://a".to_owned()]);
        assert_eq!(config.allowed_hosts, vec!["pos-pc".to_owned()]);
        assert_eq!(config.simulator.unwrap().listen.to_string(), "127.0.0.1:8888");
        assert_eq!(config.timeouts.admin, Duration::from_millis(2500));
        let config = Config::resolve(&args(&[
            "--config",
            path,
            "--listen",
            "127.0.0.1:7001",
            "--token",
            "from-flag",
            "--allowed-origin",
            "http://b,http://c",
            "--allowed-host",
            "x",
            "--simulator=false",
        ]))
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7001");
        assert_eq!(config.token.as_deref(), Some("from-flag"));
        assert_eq!(config.allowed_origins.len(), 2);
        assert_eq!(config.allowed_hosts, vec!["x".to_owned()]);
        assert!(config.simulator.is_none());
    }

    #[test]
    fn a_file_with_an_unknown_key_is_refused_naming_it() {
        let error = FileConfig::parse("listn = \"127.0.0.1:1\"").unwrap_err();
        assert!(error.contains("listn"), "{error}");
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let error = Config::resolve(&args(&["--state-dir", "/tmp/s", "--tls-cert", "/tmp/c.pem"])).unwrap_err();
        assert!(error.to_string().contains("--tls-key"), "{error}");
    }
}
