//! The JSON bodies of the middleware API, field for field as Nami's API reference for the Local API
//! Middleware shows them (docs/protocol.md §7), plus the few fields this implementation adds
//! (listed in the README, "JSON decisions where the seeds are silent").
//!
//! With the `openapi` feature the types derive utoipa's `ToSchema`: their doc comments are the
//! descriptions of the daemon's OpenAPI document, written for the POS developer who reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::journal::{EntryState, JournalEntry};
use crate::payment_request::{PaymentRequest, json_number_text};
use crate::protocol::response::{Response, amount_in_sar, mask_pan};
use crate::protocol::txn_type::{ResponseClass, TxnType};
use crate::status::StatusCode;

// ---------------------------------------------------------------------------------------------
// Requests

/// Which TCP terminal: its address and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TcpTarget {
    /// Terminal IP address or host name.
    #[serde(deserialize_with = "host")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::host))]
    pub ip: String,
    /// Terminal port, 1-65535 (numeric text accepted).
    #[serde(deserialize_with = "tcp_port")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::tcp_port))]
    pub port: u16,
}

impl TcpTarget {
    /// `ip:port`, the terminal's key.
    pub fn key(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// `POST /performTransactionTCPIP`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TcpTransactionRequest {
    pub tcpipcom_data: TcpTarget,
    pub payment_request: PaymentRequest,
}

/// `POST /tcp-ip/connect` and `/tcp-ip/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpConnectionRequest {
    pub tcpipcom_data: TcpTarget,
}

/// The COM port of `/com/connect`: the number of the seeds (3 for COM3) or, as an extension,
/// a device path (`/dev/ttyACM0`, a pseudo-terminal) or a port name (`COM3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ComPort {
    Number(u32),
    Name(String),
}

impl<'de> Deserialize<'de> for ComPort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::String(name) => return Ok(ComPort::Name(name.clone())),
            Value::Number(n) => {
                if let Ok(number) = json_number_text(n).parse::<u32>() {
                    return Ok(ComPort::Number(number));
                }
            }
            _ => {}
        }
        Err(serde::de::Error::custom(format!("must be a COM port number such as 3, or a device path, got {value}")))
    }
}

/// `POST /com/connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComConnectRequest {
    /// The COM number (3 for COM3), or a device path / port name.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::com_port))]
    pub port: ComPort,
    /// One of "9600", "19200", "38400", "57600", "115200" (a number is accepted) [default 115200];
    /// another value is answered with `success: false`.
    #[serde(default, deserialize_with = "number_text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::number_or_text))]
    pub baud_rate: Option<String>,
    /// 0 = None, 1 = Odd, 2 = Even [default 0]; another value is answered with `success: false`.
    #[serde(default, deserialize_with = "whole_number")]
    pub parity: Option<i64>,
    /// 7 or 8 [default 8]; another value is answered with `success: false`.
    #[serde(default, deserialize_with = "whole_number")]
    pub data_bits: Option<i64>,
    /// 1 or 2 [default 1]; another value is answered with `success: false`.
    #[serde(default, deserialize_with = "whole_number")]
    pub stop_bits: Option<i64>,
}

/// `POST /clearTerminalData`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClearTerminalDataRequest {
    /// Must be true, or nothing is cleared.
    #[serde(default)]
    pub confirm_clear: Option<bool>,
}

fn host<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(serde::de::Error::custom(format!("must be an IP address or host name, got {text:?}")));
    }
    Ok(text.trim_start_matches('[').trim_end_matches(']').to_owned())
}

fn tcp_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let number = match &value {
        Value::Number(n) => json_number_text(n).parse::<u64>().ok(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match number {
        Some(n @ 1..=65535) => Ok(n as u16),
        _ => Err(serde::de::Error::custom(format!("must be a port number 1-65535, got {value}"))),
    }
}

/// A whole number, also written as a float that holds one (`8.0`), or null.
fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    match &value {
        Value::Number(n) => json_number_text(n).parse().map(Some).ok(),
        _ => None,
    }
    .ok_or_else(|| serde::de::Error::custom(format!("must be a whole number, got {value}")))
}

fn number_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(json_number_text(&n)),
        Some(other) => {
            return Err(serde::de::Error::custom(format!("must be a string such as \"115200\", got {other}")));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Responses

/// One entry of `GET /get-com-ports` (snake_case, as Nami's middleware spells it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComPortInfo {
    /// `COM3` on Windows, the device path elsewhere; null in the "No devices connected" entry.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub device_id: Option<String>,
    /// `USB Serial Device (COM3)`, `No devices connected`, `Reconnecting to COM3...` or
    /// `Disconnected — last seen on COM3`.
    pub description: String,
    /// `3` for COM3; null when the port has no number.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub port_number: Option<String>,
    /// USB vendor ID (0 when unknown).
    pub vendor_id: u16,
    /// USB product ID (0 when unknown).
    pub product_id: u16,
}

/// `POST /com/connect`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComConnectResponse {
    /// True if connected, false if the port could not be opened or the body was malformed.
    pub success: bool,
    /// `Connected to COM3 at 115200 baud`, or the error (naming the field for a bad body).
    pub message: String,
}

/// Every transaction answer, both paths. Fields that do not apply are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionResponse {
    /// `"200"` when the terminal answered (approved or declined), else a middleware code
    /// (`nami_sdk::StatusCode`): `TERMINAL_BUSY`, `TIMEOUT`, `CANCELLED`, `ERROR`,
    /// `CableDisconnected`, `UnableToConnect`, `REGISTER_REQUIRED`, `OUTCOME_UNKNOWN`, or an
    /// `INVALID_*` code naming the bad field (`INVALID_AMOUNT`, `INVALID_ECR_REF`, ...).
    pub status_code: String,
    /// The terminal's message, or what went wrong (naming the field for a bad request).
    pub status_message: String,
    /// The terminal's response code as sent (`"000"`, `"116"`, `"800"`); null when it did not
    /// answer.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub response_code: Option<String>,
    /// Whether the terminal approved (by the response code).
    pub approved: bool,
    /// The raw reply, `;`-joined, the command replaced by the numeric type, card number masked
    /// (when `jsonResponse` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The reply's named fields: `transactionType`, `responseCode`, `responseMessage`,
    /// `cardNumber` (masked), `amount` (`SAR 10.00`), `approvalCode`, `rrn`, `terminalId`, ...
    /// (when `jsonResponse` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub parsed_transaction: Option<Map<String, Value>>,
    /// Lowercase hex SHA-256 of (last 6 digits of the ECR reference + terminal ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The terminal ID (16 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    /// The request in Nami's `inputReqData` form (amounts in halalas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_req_data: Option<String>,
    /// The request's ECR reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_reference_no: Option<String>,
    /// TCP path: the terminal's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// TCP path: the terminal's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<u16>,
    /// TCP path: whether the connection is still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<bool>,
    /// TCP path: `Connected` / `Disconnected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_connected: Option<String>,
    /// The request may have reached the terminal and its outcome is unknown: it was not and will
    /// not be resent; the middleware resolves it with DUPLICATE (see `/transactions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_unknown: Option<bool>,
    /// The stored result of an earlier request with this ECR reference; nothing was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<bool>,
    /// DUPLICATE: the transaction asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// DUPLICATE: where `duplicateOf` came from: `prevEcrNo`; `ecrReferenceNo` (no `prevEcrNo`,
    /// and the journal knows that reference on this terminal); `lastTransaction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of_source: Option<String>,
}

impl TransactionResponse {
    /// A middleware error (the terminal did not answer).
    pub fn error(status_code: impl Into<String>, message: impl Into<String>) -> Self {
        TransactionResponse { status_code: status_code.into(), status_message: message.into(), ..Self::default() }
    }
}

/// A daemon-level error: unknown path (404), wrong method (405), body over 64 KiB (413), missing
/// or wrong bearer token (401, `statusCode` `UNAUTHORIZED`), a web page that may not call the
/// daemon (403, `FORBIDDEN`), internal failure (500). The same shape as the service's own errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// `ERROR`, or `UNAUTHORIZED` for 401, `FORBIDDEN` for 403.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status_code: StatusCode,
    /// What went wrong.
    pub status_message: String,
}

impl ErrorBody {
    pub fn new(status_code: StatusCode, message: impl Into<String>) -> Self {
        ErrorBody { status_code, status_message: message.into() }
    }
}

/// `/tcp-ip/connect` and `/tcp-ip/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TcpConnectionResponse {
    /// The terminal's address.
    #[serde(rename = "Ip")]
    pub ip: String,
    pub port_number: u16,
    /// `Connected`, `Connection Disconnected`, or why the connection failed.
    pub is_connected: String,
    /// True while connected.
    pub connection_status: bool,
}

/// `{status, message}`: `/cancelTransaction`, `/clearTerminalData`, and the 400 answers of the
/// endpoints that answer in this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    /// `Success`, `Info` or `Error`.
    pub status: String,
    /// Human-readable result; for a malformed request it names the field.
    pub message: String,
}

/// `GET /getExistingConnections`: `ip:port` → `Connected` / `Disconnected`.
pub type ExistingConnections = BTreeMap<String, String>;

/// `GET /registrationStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationStatus {
    // The documented fields are always there (null where they do not apply, e.g. `ip` of the
    // COM connection): a POS reads them whatever the terminal; COM details are added beside.
    /// Whether REGISTER has completed for this terminal (in this session, or restored).
    pub registered: bool,
    /// The terminal ID from REGISTER; null when not registered.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub terminal_id: Option<String>,
    /// TCP terminals: the address; null for the COM connection or when no terminal is known.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ip: Option<String>,
    /// TCP terminals: the port; null for the COM connection or when no terminal is known.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub port: Option<u16>,
    /// The COM connection: its device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub com_port: Option<String>,
    /// Without a selector: every known terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub terminals: Option<Vec<RegistrationStatus>>,
}

/// An entry of `availableComPorts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthComPort {
    /// `COM3`, or the short device name.
    pub system_name: String,
    pub description: String,
    pub vendor_id: u16,
    pub product_id: u16,
}

/// An entry of `registeredTerminals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredTerminal {
    pub terminal_id: String,
    /// TCP terminals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// TCP terminals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<u16>,
    /// The COM connection's device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub com_port: Option<String>,
}

/// `GET /api/health-status`: every field of Nami's example, plus the daemon's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    /// `UP`.
    pub status: String,
    /// The daemon's version.
    pub version: String,
    /// Since start, e.g. `2h 14m`.
    pub uptime: String,
    /// The port the API listens on, as text.
    pub port: String,
    /// Resident memory of the process, MiB.
    pub memory_used_mb: u64,
    /// Kept for compatibility: the original middleware reported its Java heap limit here. The
    /// daemon has no such limit: this is the machine's memory, MiB (an embedding application
    /// may set the value, `memoryMaxMb` of the C ABI's options; it is reported, not enforced).
    pub memory_max_mb: u64,
    /// Kept for compatibility: the original middleware said here whether its Java serial library
    /// (jSerialComm) loaded. Always true: serial support is built into the daemon; whether a
    /// port is there is `availableComPorts`.
    #[serde(rename = "jSerialCommAvailable")]
    pub j_serial_comm_available: bool,
    pub available_com_ports: Vec<HealthComPort>,
    pub com_connected: bool,
    /// The COM connection's port; null when none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub active_com_port: Option<String>,
    /// `ip:port` → `Connected` / `Disconnected`.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub tcp_connections: ExistingConnections,
    pub registered_terminals: Vec<RegisteredTerminal>,
    /// Journal entries whose outcome is still unknown.
    pub unknown_outcomes: u64,
    /// Unknown outcomes that recovery's DUPLICATEs have not settled after the configured number
    /// of attempts (`recovery_attention_after`): a person should look at the terminal.
    pub needs_attention: u64,
    /// State files that had to be rebuilt, and persistence failures since start.
    pub state_warnings: Vec<String>,
}

/// `GET /transactions`, `GET /transactions/{ecrReferenceNo}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalList {
    pub count: usize,
    /// Newest first.
    pub transactions: Vec<JournalEntry>,
}

// ---------------------------------------------------------------------------------------------
// The request shapes with several forms in one body, and query strings: `call.rs` reads each
// through serde into these types (the query's parameters merged into the body), so what the
// OpenAPI document says and what is parsed are one declaration. The fields are lenient where the
// API has always been (text or number, blanks ignored); each fault names its field.

// The parts stay JSON until the one meant (`com` first, then `tcpipcomData`, then `ip`/`port`) is
// read as a `TcpTarget` (`call.rs`), so that a part not used is not judged; `ip`, `port` and
// `tcpipcomData` count when null too (a fault then, named).
/// A terminal: `{ip, port}`, `{tcpipcomData: {ip, port}}`, or `{com: true}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalSelector {
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::tcp_target_ref))]
    pub tcpipcom_data: Option<Value>,
    /// A TCP terminal's address (with `port`).
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::optional_host))]
    pub ip: Option<Value>,
    /// A TCP terminal's port (with `ip`).
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::optional_tcp_port))]
    pub port: Option<Value>,
    /// The COM connection: `true` or its name (`"COM3"`); `false`, `null`, `""`, `"0"` and
    /// `"false"` do not select it.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::any))]
    pub com: Option<Value>,
}

impl TerminalSelector {
    /// Whether `com` picks the COM connection (it wins over a TCP terminal in the same body).
    pub fn selects_com(&self) -> bool {
        match &self.com {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) => !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "false" | "0"),
            Some(_) => true,
        }
    }
}

/// A field that is there, null included (`Option`'s own reading makes null absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Text or a number, trimmed; blank text and other values are no value.
fn lenient_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(json_number_text(&n)),
        _ => None,
    })
}

/// A time bound as the journal stores times (RFC 3339 or `YYYY-MM-DD`, in UTC).
fn time_bound<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(text) = lenient_text(deserializer)? else { return Ok(None) };
    match super::db::parse_time(&text) {
        Some(time) => Ok(Some(time)),
        None => Err(serde::de::Error::custom(format!("must be an RFC 3339 time or a date YYYY-MM-DD, got {text:?}"))),
    }
}

fn state_filter<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<EntryStateFilter>, D::Error> {
    let Some(text) = lenient_text(deserializer)? else { return Ok(None) };
    match EntryStateFilter::parse(&text) {
        Some(filter) => Ok(Some(filter)),
        None => {
            let names: Vec<&str> = EntryStateFilter::names().collect();
            let (last, others) = names.split_last().expect("at least one name");
            Err(serde::de::Error::custom(format!("must be {} or {last}, got {text:?}", others.join(", "))))
        }
    }
}

fn limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(text) = lenient_text(deserializer)? else { return Ok(None) };
    text.parse::<u32>()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("must be a positive number, got {text:?}")))
}

/// The terminal `/registrationStatus` describes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct RegistrationQuery {
    /// A TCP terminal's address (with `port`).
    #[cfg_attr(feature = "openapi", param(pattern = r"^\S+$"))]
    pub ip: Option<String>,
    /// A TCP terminal's port (with `ip`).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 65535))]
    pub port: Option<u16>,
    /// The COM connection: `true` or its name (`COM3`).
    pub com: Option<String>,
}

/// Filters of `GET /transactions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct TransactionsQuery {
    /// `ip:port`, or `COM`.
    #[serde(default, deserialize_with = "lenient_text")]
    pub terminal: Option<String>,
    /// One ECR reference.
    #[serde(default, deserialize_with = "lenient_text")]
    pub ecr_reference_no: Option<String>,
    /// From this time (inclusive): RFC 3339 or `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "time_bound")]
    #[cfg_attr(feature = "openapi", param(schema_with = crate::schema::time_bound))]
    pub from: Option<String>,
    /// Before this time (exclusive): RFC 3339 or `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "time_bound")]
    #[cfg_attr(feature = "openapi", param(schema_with = crate::schema::time_bound))]
    pub to: Option<String>,
    /// Only entries in this state; `attention`: the unknown outcomes that recovery has not settled
    /// after `recovery_attention_after` attempts.
    #[serde(default, deserialize_with = "state_filter")]
    #[cfg_attr(feature = "openapi", param(schema_with = crate::schema::entry_state_filter))]
    pub state: Option<EntryStateFilter>,
    /// At most this many entries.
    #[serde(default, deserialize_with = "limit")]
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 4294967295_u64))]
    pub limit: Option<u32>,
}

/// The `state` filter of `GET /transactions`: a journal state, or `attention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStateFilter {
    State(EntryState),
    /// Unknown, and not settled by recovery after its attempts: a person should look.
    Attention,
}

impl EntryStateFilter {
    const ATTENTION: &str = "attention";

    /// Every name the filter takes: the journal's states, then `attention`.
    pub fn names() -> impl Iterator<Item = &'static str> {
        EntryState::ALL.into_iter().map(EntryState::as_str).chain([Self::ATTENTION])
    }

    /// A name of [`EntryStateFilter::names`], in any case.
    pub fn parse(text: &str) -> Option<Self> {
        if text.trim().eq_ignore_ascii_case(Self::ATTENTION) {
            return Some(EntryStateFilter::Attention);
        }
        EntryState::parse(text).map(EntryStateFilter::State)
    }
}

/// `GET /transactions/{ecrReferenceNo}`: the reference in the path, and one filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransactionParameters;

#[cfg(feature = "openapi")]
impl utoipa::IntoParams for TransactionParameters {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![
            ParameterBuilder::new()
                .name("ecrReferenceNo")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The 14-digit ECR reference"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
            ParameterBuilder::new()
                .name("terminal")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Only this terminal: `ip:port` or `COM`"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ]
    }
}

/// `POST /nextEcrReference`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NextEcrReferenceRequest {
    /// The cash register number, 8 digits (numeric JSON accepted).
    #[serde(default, deserialize_with = "lenient_text")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::cash_register_no, required = true))]
    pub cash_register_no: Option<String>,
}

/// A fresh ECR reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NextEcrReference {
    /// 14 digits: the cash register number and a counter.
    pub ecr_reference_no: String,
}

// The schema of `ExistingConnections`, which as a map has no name of its own.
/// `ip:port` → `Connected` / `Disconnected`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ExistingConnections))]
pub struct ExistingConnectionsSchema(pub BTreeMap<String, String>);

/// `{tcpipcomData: {ip, port}}` or `{ip, port}` (`tcpipcomData` wins when both are there). The
/// schema is written by hand: derives cannot say "one of these two sets of required fields".
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TcpConnectionRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
        let wrapped = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("tcpipcomData", utoipa::openapi::Ref::from_schema_name("TcpTarget"))
            .required("tcpipcomData");
        let bare = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("ip", crate::schema::host().description(Some("The terminal's address")))
            .property("port", crate::schema::tcp_port())
            .required("ip")
            .required("port");
        Schema::AnyOf(
            AnyOfBuilder::new()
                .item(wrapped)
                .item(bare)
                .description(Some("`{tcpipcomData: {ip, port}}` or `{ip, port}`"))
                .build(),
        )
        .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TcpConnectionRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push(("TcpTarget".into(), <TcpTarget as utoipa::PartialSchema>::schema()));
    }
}

// ---------------------------------------------------------------------------------------------
// Building transaction responses from replies

/// The raw reply as the original middleware returns it: fields joined by `;`, the command
/// replaced by the numeric type, e.g. `;17;800;8184000200000077;`.
pub fn reply_text(fields: &[String]) -> String {
    let mut out = String::new();
    for (index, field) in fields.iter().enumerate() {
        if index == 1
            && let Some(txn_type) = TxnType::from_command(field)
        {
            out.push_str(&txn_type.code().to_string());
        } else {
            out.push_str(field);
        }
        out.push(';');
    }
    if fields.first().is_none_or(|f| !f.is_empty()) {
        out.insert(0, ';');
    }
    out
}

/// The reply's fields with the card number masked (first 6, last 4) wherever a card reply or a
/// repeated card reply puts it. Only masked replies are stored or returned.
pub fn masked_fields(response: &Response) -> Vec<String> {
    let mut fields = response.fields.clone();
    let card = |class: Option<ResponseClass>| {
        matches!(class, Some(ResponseClass::Financial | ResponseClass::FinancialCashback | ResponseClass::Reversal))
    };
    if card(response.class()) {
        if let Some(pan) = fields.get_mut(4) {
            *pan = mask_pan(pan);
        }
    } else if response.class() == Some(ResponseClass::Repeat)
        && let Some(start) = (4..fields.len()).find(|i| TxnType::from_command(&fields[*i]).is_some())
        && card(TxnType::from_command(&fields[start]).map(|t| t.spec().response))
        && let Some(pan) = fields.get_mut(start + 3)
    {
        *pan = mask_pan(pan);
    }
    fields
}

/// `PURCHASE_CASHBACK` → `Purchase Cashback` (the seeds show `"transactionType": "Purchase"`).
pub fn display_name(txn_type: TxnType) -> String {
    txn_type
        .name()
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `parsedTransaction` object: `transactionType`, the response code and message, then the
/// reply's named fields (card number masked and named `cardNumber`, amounts as `SAR 10.00`).
pub fn parsed_transaction(
    txn_type: TxnType,
    response: &Response,
    layout: crate::protocol::response::Layout,
) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("transactionType".into(), Value::String(display_name(txn_type)));
    map.insert("responseCode".into(), Value::String(response.code().to_owned()));
    map.insert("responseMessage".into(), Value::String(response.message()));
    for (name, value) in response.parsed(layout) {
        if value.is_empty() || map.contains_key(name) {
            continue;
        }
        let (key, value) = match name {
            "pan" => ("cardNumber", mask_pan(&value)),
            // As the seeds show them.
            _ => match amount_in_sar(name, &value) {
                Some(shown) => (name, shown),
                None => (name, value),
            },
        };
        map.insert(key.into(), Value::String(value));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::response::Layout;

    fn fields(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_raw_reply_names_the_type_by_number() {
        assert_eq!(reply_text(&fields(&["", "A0", "800", "8184000200000077"])), ";17;800;8184000200000077;");
        assert_eq!(reply_text(&fields(&["", "ZZ", "1"])), ";ZZ;1;");
    }

    #[test]
    fn card_numbers_are_masked_in_replies_and_repeats() {
        let reply = Response::from_fields(fields(&["", "A1", "000", "APPROVED", "5588123412341234", "000000001000"]));
        assert_eq!(masked_fields(&reply)[4], "558812******1234");
        let repeat = Response::from_fields(fields(&[
            "",
            "C2",
            "000",
            "APPROVED",
            "A1",
            "000",
            "APPROVED",
            "5588123412341234",
            "000000001000",
            "12345678000002",
            "sig",
        ]));
        assert_eq!(masked_fields(&repeat)[7], "558812******1234");
    }

    #[test]
    fn parsed_transactions_follow_the_seed_example() {
        let reply = Response::from_fields(fields(&["", "A1", "000", "APPROVED", "5588123412341234", "000000001000"]));
        let map = parsed_transaction(TxnType::Purchase, &reply, Layout::V35);
        assert_eq!(map["transactionType"], "Purchase");
        assert_eq!(map["amount"], "SAR 10.00");
        assert_eq!(map["cardNumber"], "558812******1234");
        assert_eq!(display_name(TxnType::PurchaseCashback), "Purchase Cashback");
    }

    #[test]
    fn transaction_responses_leave_out_what_does_not_apply() {
        let json = serde_json::to_value(TransactionResponse::error(StatusCode::Timeout, "no reply")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"statusCode":"TIMEOUT","statusMessage":"no reply","responseCode":null,"approved":false})
        );
    }

    #[test]
    fn tcp_targets_take_a_port_number_or_numeric_text() {
        let t: TcpTarget = serde_json::from_str(r#"{"ip":"192.168.1.100","port":"2345"}"#).unwrap();
        assert_eq!(t.key(), "192.168.1.100:2345");
        assert!(serde_json::from_str::<TcpTarget>(r#"{"ip":"192.168.1.100","port":0}"#).is_err());
        assert!(serde_json::from_str::<TcpTarget>(r#"{"ip":"","port":1}"#).is_err());
    }
}
