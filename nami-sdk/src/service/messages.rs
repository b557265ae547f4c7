//! The JSON layer of the calls that go to a terminal: a typed [`Transaction`] becomes the REST
//! body ([`TransactionResponse`]), a COM or TCP connect's result its body, with every message
//! the API gives for them. Nothing here decides or sends anything.

use super::api::{
    ComConnectResponse, TcpConnectionResponse, TcpTarget, TransactionResponse, masked_fields, parsed_transaction,
    reply_text,
};
use super::com::{ComConnectError, ComConnected};
use super::journal::{EntryState, JournalEntry};
use super::transact::{Exchanged, Performed, Refusal, Transaction};
use crate::protocol::response::{Layout, Response};
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::{Signature, TerminalId};
use crate::session::error::TerminalError;
use crate::session::terminal::{LinkState, TxnResult};
use crate::status::StatusCode;

/// `Connected` / `Disconnected` / `Reconnecting`, as `isConnected` and `/getExistingConnections`
/// spell a link's state.
pub(crate) fn link_text(state: LinkState) -> &'static str {
    match state {
        LinkState::Connected => "Connected",
        LinkState::Disconnected => "Disconnected",
        LinkState::Reconnecting { .. } => "Reconnecting",
    }
}

/// `/com/connect`'s body.
pub(crate) fn com_connect_response(connected: Result<ComConnected, ComConnectError>) -> ComConnectResponse {
    let (success, message) = match connected {
        Ok(ComConnected { label, baud_rate }) => (true, format!("Connected to {label} at {baud_rate} baud")),
        Err(ComConnectError::Settings(e)) => (false, format!("{}: {}", e.field, e.reason)),
        Err(ComConnectError::NoPort) => (false, "port: give a COM port number such as 3, or a device path".into()),
        Err(ComConnectError::NoPortNumbered { number, available }) => (
            false,
            format!(
                "Could not open COM{number}: no serial port with number {number} is connected (available: {})",
                if available.is_empty() { "none".to_owned() } else { available.join(", ") }
            ),
        ),
        Err(ComConnectError::Open { label, error }) => (false, format!("Could not open {label}: {}", error.message())),
    };
    ComConnectResponse { success, message }
}

/// `/tcp-ip/connect`'s body: `isConnected` is `Connected` or why not.
pub(crate) fn tcp_connect_response(target: &TcpTarget, connected: Result<(), TerminalError>) -> TcpConnectionResponse {
    let (is_connected, connection_status) = match connected {
        Ok(()) => ("Connected".to_owned(), true),
        Err(e) => (format!("{}: {}", e.status_code(), e.message()), false),
    };
    TcpConnectionResponse { ip: target.ip.clone(), port_number: target.port, is_connected, connection_status }
}

/// `/tcp-ip/disconnect`'s body.
pub(crate) fn tcp_disconnect_response(target: &TcpTarget) -> TcpConnectionResponse {
    TcpConnectionResponse {
        ip: target.ip.clone(),
        port_number: target.port,
        is_connected: "Connection Disconnected".into(),
        connection_status: false,
    }
}

/// The REST body of a transaction; `layout` names the reply's fields.
pub(crate) fn transaction_response(transaction: Transaction, layout: Layout) -> TransactionResponse {
    let mut response = match transaction.performed {
        Performed::Exchanged(exchanged) => exchanged_response(*exchanged, layout),
        Performed::Refused(refusal) => refusal_response(*refusal, layout),
        Performed::Internal => internal_error_response(),
    };
    if let Some((target, state)) = transaction.link {
        response.ip_address = Some(target.ip);
        response.port_number = Some(target.port);
        response.connection_status = Some(state == LinkState::Connected);
        response.is_connected = Some(link_text(state).to_owned());
    }
    response
}

/// The answer when a call failed inside the service (a panic on the blocking pool).
fn internal_error_response() -> TransactionResponse {
    TransactionResponse::error(StatusCode::Error, "Internal error; see the service log")
}

fn exchanged_response(exchanged: Exchanged, layout: Layout) -> TransactionResponse {
    let Exchanged { ready, result } = exchanged;
    let request = &ready.request;
    match result {
        Ok(result) => {
            let mut response = answered_response(&result, ready.json, layout);
            if request.txn_type == TxnType::Duplicate {
                response.duplicate_of = ready.duplicate_of.clone();
                response.duplicate_of_source = Some(ready.duplicate_source.to_owned());
            }
            response.input_req_data = Some(request.to_input_req_data());
            response
        }
        Err(e) => {
            let mut response = TransactionResponse::error(e.status_code(), e.message());
            response.ecr_reference_no = request.ecr_reference.as_ref().map(|r| r.to_string());
            response.input_req_data = Some(request.to_input_req_data());
            if let Some(unknown) = e.unknown_outcome() {
                response.outcome_unknown = Some(true);
                response.ecr_reference_no = Some(unknown.ecr_reference.to_string());
                if ready.journaled {
                    response.status_message.push_str(
                        ". The service resolves it with DUPLICATE; a retry with the same ECR reference is never sent twice",
                    );
                }
            }
            response
        }
    }
}

/// The response to an exchange the terminal answered: statusCode "200" and its message.
fn answered_response(result: &TxnResult, json: bool, layout: Layout) -> TransactionResponse {
    TransactionResponse {
        status_code: "200".into(),
        status_message: result.message.clone(),
        response_code: Some(result.response_code.clone()),
        approved: result.approved,
        transaction: (!json).then(|| reply_text(&masked_fields(&result.response))),
        parsed_transaction: json.then(|| parsed_transaction(result.txn_type, &result.response, layout)),
        signature: result.signature.as_ref().map(|s| s.to_string()),
        terminal_id: result.terminal_id.as_ref().map(|t| t.to_string()),
        input_req_data: None,
        ecr_reference_no: result.ecr_reference.as_ref().map(|r| r.to_string()),
        ..TransactionResponse::default()
    }
}

fn refusal_response(refusal: Refusal, layout: Layout) -> TransactionResponse {
    match refusal {
        Refusal::NoComConnection { ecr_reference_no } => {
            let mut response = TransactionResponse::error(
                StatusCode::UnableToConnect,
                "There is no COM connection: call /com/connect first",
            );
            response.ecr_reference_no = ecr_reference_no;
            response
        }
        Refusal::Invalid { error, ecr_reference_no } => {
            let mut response = TransactionResponse::error(error.code, format!("`{}` {}", error.field, error.reason));
            response.ecr_reference_no = ecr_reference_no;
            response
        }
        Refusal::InFlight { terminal, row } => {
            let mut response = TransactionResponse::error(
                StatusCode::TerminalBusy,
                format!(
                    "A request with ECR reference {} is already in progress on {terminal} (since {}); nothing was sent",
                    row.ecr_reference_no, row.requested_at
                ),
            );
            response.ecr_reference_no = Some(row.ecr_reference_no);
            response
        }
        Refusal::Replay { row, json } => {
            let mut response = stored_response(&row, json, layout);
            response.replay = Some(true);
            response
        }
        Refusal::Unknown(row) => unknown_response(&row),
        Refusal::InDoubt { terminal, row } => {
            let mut response = TransactionResponse::error(
                StatusCode::TerminalBusy,
                format!(
                    "The outcome of {} {} (sent at {}) on {terminal} is not known yet, so nothing new with ECR reference {} is sent to it until the service has asked the terminal (DUPLICATE); nothing was sent. Query /transactions/{} and retry once it is settled",
                    row.txn_type, row.ecr_reference_no, row.requested_at, row.ecr_reference_no, row.ecr_reference_no
                ),
            );
            response.ecr_reference_no = Some(row.ecr_reference_no);
            response
        }
        Refusal::KeyReused(row) => {
            let mut response = TransactionResponse::error(
                StatusCode::Error,
                format!(
                    "`Idempotency-Key` was already used on {} for another request ({} {} ECR reference {} at {}, {}); a retry must repeat the same request, a new one needs a new key. Nothing was sent",
                    row.terminal,
                    row.txn_type,
                    row.amount.as_deref().map(|a| format!("SAR {a}")).unwrap_or_default(),
                    row.ecr_reference_no,
                    row.requested_at,
                    row.state.as_str(),
                ),
            );
            response.ecr_reference_no = Some(row.ecr_reference_no);
            response
        }
        Refusal::JournalFailed { error, ecr_reference } => {
            let mut response = TransactionResponse::error(
                StatusCode::Error,
                format!("The journal could not record the request, so it was not sent: {error}"),
            );
            response.ecr_reference_no = Some(ecr_reference.to_string());
            response
        }
    }
}

/// A retry of a request whose outcome is still unknown: nothing is sent.
fn unknown_response(row: &JournalEntry) -> TransactionResponse {
    let mut response = TransactionResponse::error(
        StatusCode::OutcomeUnknown,
        format!(
            "The outcome of {} {} (sent at {}) is not known yet and it was not sent again. The service is asking the terminal (DUPLICATE); query /transactions/{} or retry later",
            row.txn_type, row.ecr_reference_no, row.requested_at, row.ecr_reference_no
        ),
    );
    response.outcome_unknown = Some(true);
    response.ecr_reference_no = Some(row.ecr_reference_no.clone());
    response.input_req_data = row.input_req_data.clone();
    response
}

/// The response a journal row stands for (replays).
fn stored_response(row: &JournalEntry, json: bool, layout: Layout) -> TransactionResponse {
    let txn_type = row.txn().unwrap_or(TxnType::Purchase);
    let mut response = TransactionResponse {
        status_code: row.status_code.clone().unwrap_or_else(|| "200".into()),
        status_message: row.message.clone().unwrap_or_default(),
        response_code: row.response_code.clone(),
        approved: row.state == EntryState::Approved,
        terminal_id: row.terminal_id.clone(),
        input_req_data: row.input_req_data.clone(),
        ecr_reference_no: Some(row.ecr_reference_no.clone()),
        ..TransactionResponse::default()
    };
    if let Some(fields) = &row.reply_fields {
        let reply = Response::from_fields(fields.clone());
        if json {
            response.parsed_transaction = Some(parsed_transaction(txn_type, &reply, layout));
        } else {
            response.transaction = Some(reply_text(fields));
        }
    }
    if txn_type.spec().is_signed()
        && let (Some(reference), Some(terminal_id)) =
            (row.ecr_reference(), row.terminal_id.as_deref().and_then(|t| TerminalId::parse(t).ok()))
    {
        response.signature = Some(Signature::compute(&reference, &terminal_id).to_string());
    }
    response
}
