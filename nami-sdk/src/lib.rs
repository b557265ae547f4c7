//! `nami-sdk`: drive Nami (mada) payment terminals from a point-of-sale application.
//!
//! This release holds the protocol codec (see [`protocol`]); terminal sessions, the middleware
//! service and persistence are built on it.

pub mod error;
pub mod protocol;

pub use error::{EncodeError, ValidationError};
pub use protocol::codes::{RESPONSE_CODES, meaning as response_code_meaning};
pub use protocol::decoder::{Frame, FrameDecoder, Separator};
pub use protocol::field::{FIELDS, Field};
pub use protocol::frame::{LrcMode, Signing, encode_fields, encode_request};
pub use protocol::request::Request;
pub use protocol::response::{Layout, Response, ResponseView, mask_pan};
pub use protocol::txn_type::{ResponseClass, TXN_TYPES, TxnKind, TxnType, WaitClass};
pub use protocol::values::{
    Amount, ApprovalCode, CashRegisterNo, EcrReference, OriginalDate, PreviousEcrNo, Rrn, Signature, TerminalId,
    TxnDate,
};
