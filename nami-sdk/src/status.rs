//! The middleware status codes (REST `statusCode`, `ValidationError::code`,
//! `TerminalError::status`): one enum with each code's wire spelling. The C ABI maps it with an
//! exhaustive `match` (C#'s mapping is checked against [`StatusCode::ALL`] by a test in
//! `nami-ffi/src/capi/common.rs`), and Python and Kotlin get this enum itself through uniffi
//! (`nami-ffi/src/uniffi_api/status.rs`, an exhaustive declaration), so a new code cannot be
//! missed by any of them.

/// Declares the enum, its wire spellings and the list of all codes from one table.
macro_rules! status_codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// A middleware status code. Its wire spelling ([`StatusCode::as_str`]) is what the REST
        /// API, the C ABI's response bodies and the bindings' `code` carry; a few keep the mixed
        /// case of the original middleware (`CableDisconnected`, `UnableToConnect`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StatusCode {
            $($(#[$doc])* $variant,)*
        }

        impl StatusCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [StatusCode] = &[$(StatusCode::$variant,)*];

            /// The wire spelling (`"TERMINAL_BUSY"`, `"CableDisconnected"`, ...).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(StatusCode::$variant => $wire,)*
                }
            }
        }
    };
}

status_codes! {
    /// The terminal is processing another transaction; nothing was sent.
    TerminalBusy => "TERMINAL_BUSY",
    /// No reply within the deadline.
    Timeout => "TIMEOUT",
    /// A cancel ended the call, or the caller stopped waiting.
    Cancelled => "CANCELLED",
    /// The link broke after a financial request may have been written.
    OutcomeUnknown => "OUTCOME_UNKNOWN",
    /// The terminal needs REGISTER first.
    RegisterRequired => "REGISTER_REQUIRED",
    /// A signed type without a terminal ID or signature.
    SignatureRequired => "SIGNATURE_REQUIRED",
    /// The serial device vanished.
    CableDisconnected => "CableDisconnected",
    /// The terminal could not be reached; nothing was sent.
    UnableToConnect => "UnableToConnect",
    /// The journal has no entry for the reference asked about.
    NotFound => "NOT_FOUND",
    /// Any other failure.
    Error => "ERROR",
    /// The daemon refused a request without its API token.
    Unauthorized => "UNAUTHORIZED",
    /// The daemon refused a request from an origin it does not trust.
    Forbidden => "FORBIDDEN",
    /// A bindings' own argument is not valid.
    InvalidArgument => "INVALID_ARGUMENT",
    InvalidAmount => "INVALID_AMOUNT",
    InvalidEcrRef => "INVALID_ECR_REF",
    InvalidTxnType => "INVALID_TXN_TYPE",
    InvalidInputReqData => "INVALID_INPUT_REQ_DATA",
    InvalidFrame => "INVALID_FRAME",
    InvalidLayout => "INVALID_LAYOUT",
    InvalidLrcMode => "INVALID_LRC_MODE",
    InvalidDate => "INVALID_DATE",
    InvalidPrint => "INVALID_PRINT",
    InvalidSignature => "INVALID_SIGNATURE",
    InvalidTerminalId => "INVALID_TERMINAL_ID",
    InvalidCashRegisterNo => "INVALID_CASH_REGISTER_NO",
    InvalidRrn => "INVALID_RRN",
    InvalidOrigDate => "INVALID_ORIG_DATE",
    InvalidApprovalCode => "INVALID_APPROVAL_CODE",
    InvalidCapture => "INVALID_CAPTURE",
    InvalidBillerId => "INVALID_BILLER_ID",
    InvalidBillNumber => "INVALID_BILL_NUMBER",
    InvalidVendorId => "INVALID_VENDOR_ID",
    InvalidVendorTerminalType => "INVALID_VENDOR_TERMINAL_TYPE",
    InvalidTrsmId => "INVALID_TRSM_ID",
    InvalidVendorKeyIndex => "INVALID_VENDOR_KEY_INDEX",
    InvalidSamaKeyIndex => "INVALID_SAMA_KEY_INDEX",
    InvalidTerminalLanguage => "INVALID_TERMINAL_LANGUAGE",
    InvalidRequestAttemptNo => "INVALID_REQUEST_ATTEMPT_NO",
    InvalidPrevEcrNo => "INVALID_PREV_ECR_NO",
    InvalidAddress => "INVALID_ADDRESS",
    InvalidBaudRate => "INVALID_BAUD_RATE",
    InvalidDataBits => "INVALID_DATA_BITS",
    InvalidStopBits => "INVALID_STOP_BITS",
    InvalidParity => "INVALID_PARITY",
}

impl StatusCode {
    /// The code of a wire spelling (exact case: the daemon's codes are case-sensitive).
    pub fn parse(wire: &str) -> Option<StatusCode> {
        StatusCode::ALL.iter().copied().find(|code| code.as_str() == wire)
    }

    /// Whether the code reports bad input (nothing was sent).
    pub fn is_invalid_input(self) -> bool {
        self.as_str().starts_with("INVALID_")
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<StatusCode> for String {
    fn from(code: StatusCode) -> String {
        code.as_str().to_owned()
    }
}

impl PartialEq<&str> for StatusCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<StatusCode> for &str {
    fn eq(&self, other: &StatusCode) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<StatusCode> for String {
    fn eq(&self, other: &StatusCode) -> bool {
        self == other.as_str()
    }
}

impl serde::Serialize for StatusCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::StatusCode;

    #[test]
    fn each_code_has_its_own_spelling_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for &code in StatusCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} is spelled twice");
            assert_eq!(StatusCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(StatusCode::parse("terminal_busy"), None, "case matters on the wire");
        assert_eq!(serde_json::to_string(&StatusCode::CableDisconnected).unwrap(), "\"CableDisconnected\"");
        assert!(StatusCode::InvalidAmount.is_invalid_input() && !StatusCode::Timeout.is_invalid_input());
    }
}
