//! Errors of a terminal session. Each variant exists because the caller acts differently on it;
//! [`TerminalError::status_code`] gives the middleware status code of the REST API.

use crate::error::{EncodeError, ValidationError};
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::EcrReference;
use crate::status::StatusCode;

/// A request whose outcome the SDK cannot know: it may have reached the terminal, which may have
/// charged the card. It is never resent; recover it with DUPLICATE or CHECK_STATUS (D11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOutcome {
    pub txn_type: TxnType,
    pub ecr_reference: EcrReference,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminalError {
    /// Bad input; nothing was sent.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The terminal needs REGISTER first (no registration, or it answered 1003/1008).
    #[error("REGISTER_REQUIRED: terminal {terminal} is not registered; send REGISTER first")]
    RegisterRequired { terminal: String },
    /// Another exchange with this terminal is in progress; nothing was sent.
    #[error("TERMINAL_BUSY: terminal {terminal} is processing another transaction")]
    Busy { terminal: String },
    /// The terminal could not be reached; nothing was sent.
    #[error("UnableToConnect: {reason}")]
    UnableToConnect { reason: String },
    /// The serial device vanished (cable pulled). If it happened after a request was written,
    /// `unknown` says which one.
    #[error("CableDisconnected: {port} is gone{}", unknown_suffix(.unknown))]
    CableDisconnected { port: String, unknown: Option<UnknownOutcome> },
    /// No reply within the deadline.
    #[error("TIMEOUT: no reply from {terminal} within {seconds} s{}", unknown_suffix(.unknown))]
    Timeout { terminal: String, seconds: u64, unknown: Option<UnknownOutcome> },
    /// `cancel()` ended the call.
    #[error("CANCELLED: the call was cancelled{}", unknown_suffix(.unknown))]
    Cancelled { unknown: Option<UnknownOutcome> },
    /// The caller stopped waiting (an HTTP client disconnected, an FFI caller cancelled) before
    /// the request was written: nothing was sent.
    #[error("CANCELLED: the caller stopped waiting before the request was sent; nothing was sent")]
    CallerGone,
    /// The link broke after a financial request may have been written.
    #[error("OUTCOME_UNKNOWN: {reason}{}", unknown_suffix(&Some(.unknown.clone())))]
    OutcomeUnknown { reason: String, unknown: UnknownOutcome },
    /// The link broke during a non-financial exchange, or the terminal sent something that is
    /// not a reply.
    #[error("ERROR: {reason}")]
    Link { reason: String },
}

fn unknown_suffix(unknown: &Option<UnknownOutcome>) -> String {
    match unknown {
        Some(u) => format!(
            "; the outcome of {} {} is unknown: it was not resent, recover it with DUPLICATE",
            u.txn_type, u.ecr_reference
        ),
        None => String::new(),
    }
}

impl TerminalError {
    /// The middleware status code (REST `statusCode`).
    pub fn status_code(&self) -> StatusCode {
        match self {
            TerminalError::Invalid(e) => e.code,
            TerminalError::RegisterRequired { .. } => StatusCode::RegisterRequired,
            TerminalError::Busy { .. } => StatusCode::TerminalBusy,
            TerminalError::UnableToConnect { .. } => StatusCode::UnableToConnect,
            TerminalError::CableDisconnected { .. } => StatusCode::CableDisconnected,
            TerminalError::Timeout { .. } => StatusCode::Timeout,
            TerminalError::Cancelled { .. } | TerminalError::CallerGone => StatusCode::Cancelled,
            TerminalError::OutcomeUnknown { .. } => StatusCode::OutcomeUnknown,
            TerminalError::Link { .. } => StatusCode::Error,
        }
    }

    /// The text without the status code in front (`CODE: text` → `text`): the REST API puts
    /// the code in `statusCode` and this in `statusMessage`.
    pub fn message(&self) -> String {
        let text = self.to_string();
        let code = self.status_code();
        text.strip_prefix(code.as_str()).and_then(|t| t.strip_prefix(": ")).map(str::to_owned).unwrap_or(text)
    }

    /// The request whose outcome is unknown, if this error leaves one.
    pub fn unknown_outcome(&self) -> Option<&UnknownOutcome> {
        match self {
            TerminalError::CableDisconnected { unknown, .. }
            | TerminalError::Timeout { unknown, .. }
            | TerminalError::Cancelled { unknown } => unknown.as_ref(),
            TerminalError::OutcomeUnknown { unknown, .. } => Some(unknown),
            _ => None,
        }
    }
}

impl From<EncodeError> for TerminalError {
    fn from(error: EncodeError) -> Self {
        match error {
            EncodeError::Invalid(e) => TerminalError::Invalid(e),
            // Signed types need the terminal ID from REGISTER.
            EncodeError::SignatureRequired { .. } => TerminalError::RegisterRequired { terminal: String::new() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_text_without_its_status_code() {
        let busy = TerminalError::Busy { terminal: "10.0.0.1:2345".into() };
        assert_eq!(busy.to_string(), "TERMINAL_BUSY: terminal 10.0.0.1:2345 is processing another transaction");
        assert_eq!(busy.message(), "terminal 10.0.0.1:2345 is processing another transaction");
        let unreachable = TerminalError::UnableToConnect { reason: "connection refused".into() };
        assert_eq!(unreachable.message(), "connection refused");
    }
}
