//! Errors of the codec. Each names the field or the code it is about, so a POS developer can fix
//! the input without reading the protocol.

use crate::protocol::field::Field;
use crate::status::StatusCode;

/// A request value that cannot be sent. `code` is the middleware status code
/// (`INVALID_AMOUNT`, `INVALID_ECR_REF`, ...), `field` the name of the offending field as the
/// caller spelled it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: `{field}` {reason}")]
pub struct ValidationError {
    pub code: StatusCode,
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    /// A bad value of a protocol field, reported under the field's own name.
    pub fn of(field: Field, reason: impl Into<String>) -> Self {
        Self::named(field, field.name(), reason)
    }

    /// A bad value of a protocol field that the caller knows under another name (for example
    /// `refundAmount` for the amount of a refund).
    pub fn named(field: Field, name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { code: field.error_code(), field: name.into(), reason: reason.into() }
    }

    /// An error about something that is not a wire field (`txnType`, `inputReqData`, ...).
    pub fn other(code: StatusCode, name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { code, field: name.into(), reason: reason.into() }
    }
}

/// Why a request could not be turned into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The type carries a signature but neither a terminal ID nor a signature was given.
    #[error(
        "SIGNATURE_REQUIRED: {txn_type} is signed with the terminal ID from REGISTER; give a terminal ID or a signature"
    )]
    SignatureRequired { txn_type: &'static str },
}

impl EncodeError {
    /// The middleware status code of this error.
    pub fn code(&self) -> StatusCode {
        match self {
            EncodeError::Invalid(e) => e.code,
            EncodeError::SignatureRequired { .. } => StatusCode::SignatureRequired,
        }
    }
}
