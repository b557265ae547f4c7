//! The JSON bodies of the middleware API, field for field as Nami's API reference for the Local API
//! Middleware shows them (docs/protocol.md §7), plus the few fields this
//! implementation adds (each marked "added" below and in the README).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::journal::JournalEntry;
use crate::payment_request::PaymentRequest;
use crate::protocol::response::{Response, amount_in_sar, mask_pan};
use crate::protocol::txn_type::{ResponseClass, TxnType};
use crate::status::StatusCode;

// ---------------------------------------------------------------------------------------------
// Requests

/// `tcpipcomData`: which TCP terminal. `port` is an integer (a numeric string is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpTarget {
    #[serde(deserialize_with = "host")]
    pub ip: String,
    #[serde(deserialize_with = "tcp_port")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ComPort {
    Number(u32),
    Name(String),
}

/// `POST /com/connect`. The settings default to 115200 8-N-1 (D12) when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComConnectRequest {
    pub port: ComPort,
    #[serde(default, deserialize_with = "number_text")]
    pub baud_rate: Option<String>,
    #[serde(default)]
    pub parity: Option<i64>,
    #[serde(default)]
    pub data_bits: Option<i64>,
    #[serde(default)]
    pub stop_bits: Option<i64>,
}

/// `POST /clearTerminalData`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearTerminalDataRequest {
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
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match number {
        Some(n @ 1..=65535) => Ok(n as u16),
        _ => Err(serde::de::Error::custom(format!("must be a port number 1-65535, got {value}"))),
    }
}

fn number_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!("must be a string such as \"115200\", got {other}")));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Responses

/// One entry of `GET /get-com-ports` (snake_case, as the seeds spell it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComPortInfo {
    pub device_id: Option<String>,
    pub description: String,
    pub port_number: Option<String>,
    pub vendor_id: u16,
    pub product_id: u16,
}

/// `POST /com/connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComConnectResponse {
    pub success: bool,
    pub message: String,
}

/// Every transaction response (both paths). Fields that do not apply are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionResponse {
    /// `"200"` when the terminal answered (approved or not); a middleware code otherwise.
    pub status_code: String,
    /// The terminal's message, or what went wrong.
    pub status_message: String,
    /// Added: the terminal's response code as it sent it (`"000"`, `"116"`, `"800"`), null when
    /// the terminal did not answer.
    pub response_code: Option<String>,
    /// Added: whether the terminal approved (decided by the response code, D9).
    pub approved: bool,
    /// The raw reply, `;`-joined, the command replaced by the numeric type (jsonResponse false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The reply's named fields (jsonResponse true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed_transaction: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    /// The request in Nami's `inputReqData` form (amounts in halalas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_req_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_reference_no: Option<String>,
    /// TCP path only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_connected: Option<String>,
    /// Added: the request may have reached the terminal and its outcome is not known; it was not
    /// and will not be resent; the service resolves it with DUPLICATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_unknown: Option<bool>,
    /// Added: this is the stored result of an earlier request with the same ECR reference;
    /// nothing was sent to the terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<bool>,
    /// Added, for DUPLICATE: the transaction asked for (the last 6 digits go to the terminal)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// …and where it came from: `prevEcrNo`, `ecrReferenceNo` (no `prevEcrNo`, and the journal
    /// knows this reference on the terminal) or `lastTransaction` (the terminal's last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of_source: Option<String>,
}

impl TransactionResponse {
    /// A middleware error (the terminal did not answer).
    pub fn error(status_code: impl Into<String>, message: impl Into<String>) -> Self {
        TransactionResponse { status_code: status_code.into(), status_message: message.into(), ..Self::default() }
    }
}

/// An error that is no endpoint's own answer: an unknown path (404) or an internal failure
/// (500) of the service, and the daemon's own (401, 403, 405, 413). The one shape of them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `ERROR`, or `UNAUTHORIZED` (401), `FORBIDDEN` (403).
    pub status_code: StatusCode,
    /// What went wrong.
    pub status_message: String,
}

impl ErrorBody {
    pub fn new(status_code: StatusCode, message: impl Into<String>) -> Self {
        ErrorBody { status_code, status_message: message.into() }
    }
}

/// `POST /tcp-ip/connect` and `/tcp-ip/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpConnectionResponse {
    #[serde(rename = "Ip")]
    pub ip: String,
    pub port_number: u16,
    /// `"Connected"`, `"Connection Disconnected"`, or why the connection failed.
    pub is_connected: String,
    pub connection_status: bool,
}

/// `POST /cancelTransaction`, `POST /clearTerminalData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// `Success`, `Info` or `Error`.
    pub status: String,
    pub message: String,
}

/// `GET /getExistingConnections`: `ip:port` → `Connected` / `Disconnected`.
pub type ExistingConnections = BTreeMap<String, String>;

/// `GET /registrationStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatus {
    // The documented fields are always there (null where they do not apply, e.g. `ip` of the
    // COM connection): a POS reads them whatever the terminal; COM details are added beside.
    pub registered: bool,
    pub terminal_id: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Added: the serial device, when the status is the COM connection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub com_port: Option<String>,
    /// Added, when no terminal was named: the status of every known terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminals: Option<Vec<RegistrationStatus>>,
}

/// An entry of the health status' `availableComPorts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthComPort {
    pub system_name: String,
    pub description: String,
    pub vendor_id: u16,
    pub product_id: u16,
}

/// An entry of the health status' `registeredTerminals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTerminal {
    pub terminal_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<u16>,
    /// Added: the serial device, for the COM connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub com_port: Option<String>,
}

/// `GET /api/health-status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    pub status: String,
    pub version: String,
    /// `2h 14m`.
    pub uptime: String,
    /// The HTTP port, as a string.
    pub port: String,
    /// The process's resident memory, MiB.
    pub memory_used_mb: u64,
    /// Kept for compatibility (the original's Java heap limit): `ServiceConfig::memory_max_mb`,
    /// reported and not enforced, else the machine's memory, MiB.
    pub memory_max_mb: u64,
    /// Kept for compatibility (the original's Java serial library loaded): always true, serial
    /// support is built in.
    #[serde(rename = "jSerialCommAvailable")]
    pub j_serial_comm_available: bool,
    pub available_com_ports: Vec<HealthComPort>,
    pub com_connected: bool,
    pub active_com_port: Option<String>,
    pub tcp_connections: ExistingConnections,
    pub registered_terminals: Vec<RegisteredTerminal>,
    /// Added: journal entries whose outcome is still unknown.
    pub unknown_outcomes: u64,
    /// Added: those of them that recovery has asked about `recovery_attention_after` times
    /// without an answer: a person should look at the terminal.
    pub needs_attention: u64,
    /// Added: state files that had to be rebuilt, and persistence failures since start.
    pub state_warnings: Vec<String>,
}

/// Added: `GET /transactions` and `GET /transactions/{ecrReferenceNo}`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalList {
    pub count: usize,
    pub transactions: Vec<JournalEntry>,
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
