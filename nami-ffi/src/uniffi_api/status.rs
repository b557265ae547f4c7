//! The middleware status codes for Python and Kotlin: nami-sdk's `StatusCode` itself, exported as
//! an enum (`nami.StatusCode.TERMINAL_BUSY`, `StatusCode.TERMINAL_BUSY`), with its wire
//! spelling. uniffi's `remote` declaration below matches the SDK's enum exhaustively, so a code
//! added to the SDK does not compile here until it is added, and the Python and Kotlin suites
//! check that the enum they were generated with is the library's whole list
//! ([`status_codes`]).

use nami_sdk::StatusCode;

/// A middleware status code, as in the REST `statusCode` and `NamiError.InvalidInput.code`.
#[uniffi::remote(Enum)]
pub enum StatusCode {
    TerminalBusy,
    Timeout,
    Cancelled,
    OutcomeUnknown,
    RegisterRequired,
    SignatureRequired,
    CableDisconnected,
    UnableToConnect,
    NotFound,
    Error,
    Unauthorized,
    Forbidden,
    InvalidArgument,
    InvalidAmount,
    InvalidEcrRef,
    InvalidTxnType,
    InvalidInputReqData,
    InvalidFrame,
    InvalidLayout,
    InvalidLrcMode,
    InvalidDate,
    InvalidPrint,
    InvalidSignature,
    InvalidTerminalId,
    InvalidCashRegisterNo,
    InvalidRrn,
    InvalidOrigDate,
    InvalidApprovalCode,
    InvalidCapture,
    InvalidBillerId,
    InvalidBillNumber,
    InvalidVendorId,
    InvalidVendorTerminalType,
    InvalidTrsmId,
    InvalidVendorKeyIndex,
    InvalidSamaKeyIndex,
    InvalidTerminalLanguage,
    InvalidRequestAttemptNo,
    InvalidPrevEcrNo,
    InvalidAddress,
    InvalidBaudRate,
    InvalidDataBits,
    InvalidStopBits,
    InvalidParity,
}

/// Every status code the library knows, in the SDK's order.
#[uniffi::export]
pub fn status_codes() -> Vec<StatusCode> {
    StatusCode::ALL.to_vec()
}

/// The wire spelling of `code` (`"TERMINAL_BUSY"`, `"CableDisconnected"`): what a REST body's
/// `statusCode` and `NamiError.InvalidInput.code` carry.
#[uniffi::export]
pub fn status_code_wire(code: StatusCode) -> String {
    code.as_str().to_owned()
}

/// The code of a wire spelling (case matters, as on the wire); none for an unknown one.
#[uniffi::export]
pub fn status_code_of(wire: String) -> Option<StatusCode> {
    StatusCode::parse(&wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_exported_with_its_wire_spelling() {
        assert_eq!(status_codes(), StatusCode::ALL);
        for code in status_codes() {
            assert_eq!(status_code_of(status_code_wire(code)), Some(code));
        }
        assert_eq!(status_code_of("terminal_busy".into()), None);
    }
}
