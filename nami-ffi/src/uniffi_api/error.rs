//! The errors the bindings raise: Python `nami.NamiError.<Variant>`, Kotlin
//! `NamiException.<Variant>`.
//!
//! One variant per thing a POS does differently, mapped one to one from `TerminalError` (plus
//! the middleware's start-up failure). Every variant carries `detail`, the SDK's own message.
//! (It is not called `message`: Kotlin exceptions already have a `message`.)

use nami_sdk::StatusCode;
use nami_sdk::{ServiceError, TerminalError, ValidationError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum NamiError {
    /// Bad input; nothing was sent. `code` is the middleware status code (`INVALID_AMOUNT`,
    /// `INVALID_ECR_REF`, ...), `field` the name of the offending field as the SDK and the REST
    /// API call it (`amount`, `ecrReferenceNo`, `rrnNumber`, ...), or the argument's name for the
    /// bindings' own arguments (`host`, `port`).
    #[error("{detail}")]
    InvalidInput { code: String, field: String, detail: String },
    /// The terminal needs REGISTER first (never registered, or it asked again with 1003/1008).
    #[error("{detail}")]
    RegisterRequired { terminal: String, detail: String },
    /// Another call on this terminal is running; nothing was sent.
    #[error("{detail}")]
    Busy { terminal: String, detail: String },
    /// No reply within the deadline. `ecr_reference` is set when a financial request may have
    /// been processed: recover it with `duplicate` before anything else.
    #[error("{detail}")]
    Timeout { terminal: String, seconds: u64, ecr_reference: Option<String>, detail: String },
    /// `cancel()` ended the call. `ecr_reference` as for `Timeout`.
    #[error("{detail}")]
    Cancelled { ecr_reference: Option<String>, detail: String },
    /// The link broke after a financial request may have been written: the outcome of
    /// `ecr_reference` is unknown. It was not resent; recover it with `duplicate`.
    #[error("{detail}")]
    OutcomeUnknown { txn_type: String, ecr_reference: String, detail: String },
    /// The serial device vanished (cable pulled). `ecr_reference` as for `Timeout`.
    #[error("{detail}")]
    CableDisconnected { port: String, ecr_reference: Option<String>, detail: String },
    /// The terminal could not be reached; nothing was sent.
    #[error("{detail}")]
    UnableToConnect { detail: String },
    /// The link broke during a non-financial exchange, or the terminal sent something that is not
    /// a reply (middleware status `ERROR`).
    #[error("{detail}")]
    Connection { detail: String },
    /// The middleware's state directory or journal could not be used.
    #[error("{detail}")]
    Storage { detail: String },
}

impl NamiError {
    /// An error about one of the bindings' own arguments.
    pub(crate) fn argument(field: &str, detail: impl Into<String>) -> Self {
        NamiError::InvalidInput { code: StatusCode::InvalidArgument.into(), field: field.into(), detail: detail.into() }
    }
}

impl From<ValidationError> for NamiError {
    fn from(error: ValidationError) -> Self {
        let detail = error.to_string();
        NamiError::InvalidInput { code: error.code.into(), field: error.field, detail }
    }
}

impl From<TerminalError> for NamiError {
    fn from(error: TerminalError) -> Self {
        let detail = error.to_string();
        let unknown = error.unknown_outcome().map(|u| u.ecr_reference.as_str().to_owned());
        match error {
            TerminalError::Invalid(e) => e.into(),
            TerminalError::RegisterRequired { terminal } => NamiError::RegisterRequired { terminal, detail },
            TerminalError::Busy { terminal } => NamiError::Busy { terminal, detail },
            TerminalError::UnableToConnect { .. } => NamiError::UnableToConnect { detail },
            TerminalError::CableDisconnected { port, .. } => {
                NamiError::CableDisconnected { port, ecr_reference: unknown, detail }
            }
            TerminalError::Timeout { terminal, seconds, .. } => {
                NamiError::Timeout { terminal, seconds, ecr_reference: unknown, detail }
            }
            TerminalError::Cancelled { .. } | TerminalError::CallerGone => {
                NamiError::Cancelled { ecr_reference: unknown, detail }
            }
            TerminalError::OutcomeUnknown { unknown: u, .. } => NamiError::OutcomeUnknown {
                txn_type: u.txn_type.name().to_owned(),
                ecr_reference: u.ecr_reference.as_str().to_owned(),
                detail,
            },
            TerminalError::Link { .. } => NamiError::Connection { detail },
        }
    }
}

impl From<ServiceError> for NamiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(e) => e.into(),
            other => NamiError::Storage { detail: other.to_string() },
        }
    }
}

/// What a listener or log sink implemented in Python or Kotlin raised. The library ignores it
/// (a failing listener never breaks a payment); it exists so that an exception in a callback is
/// reported to Rust as an error instead of aborting the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum CallbackError {
    #[error("{detail}")]
    Failed { detail: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Failed { detail: error.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nami_sdk::{Amount, EcrReference, TxnType, UnknownOutcome};

    #[test]
    fn a_validation_error_keeps_its_code_and_field() {
        let error: NamiError = TerminalError::from(Amount::from_sar("10.001").unwrap_err()).into();
        match error {
            NamiError::InvalidInput { code, field, detail } => {
                assert_eq!(code, StatusCode::InvalidAmount);
                assert_eq!(field, "amount");
                assert!(detail.contains("two decimals"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_outcomes_carry_their_ecr_reference() {
        let unknown = UnknownOutcome {
            txn_type: TxnType::Purchase,
            ecr_reference: EcrReference::parse("12345678000001").unwrap(),
        };
        let timeout = TerminalError::Timeout { terminal: "t".into(), seconds: 2, unknown: Some(unknown.clone()) };
        assert!(matches!(
            NamiError::from(timeout),
            NamiError::Timeout { ecr_reference: Some(r), seconds: 2, .. } if r == "12345678000001"
        ));
        let broken = TerminalError::OutcomeUnknown { reason: "closed".into(), unknown };
        assert!(matches!(
            NamiError::from(broken),
            NamiError::OutcomeUnknown { ecr_reference, txn_type, .. } if ecr_reference == "12345678000001" && txn_type == "PURCHASE"
        ));
        assert!(matches!(
            NamiError::from(TerminalError::Cancelled { unknown: None }),
            NamiError::Cancelled { ecr_reference: None, .. }
        ));
    }
}
