//! `nami-sdk`: drive Nami (mada) payment terminals from a point-of-sale application.
//!
//! This release holds the protocol codec (see [`protocol`]); terminal sessions, the middleware
//! service and persistence are built on it.

pub mod error;
pub mod payment_request;
pub mod protocol;
#[cfg(feature = "openapi")]
mod schema;
#[cfg(feature = "service")]
pub mod service;
pub mod session;
pub mod status;

pub use error::{EncodeError, ValidationError};
pub use payment_request::{PaymentContext, PaymentRequest};
pub use protocol::codes::{RESPONSE_CODES, meaning as response_code_meaning};
pub use protocol::decoder::{Frame, FrameDecoder, Separator};
pub use protocol::field::{FIELDS, Field};
pub use protocol::frame::{LrcMode, Signing, encode_fields, encode_request};
pub use protocol::request::Request;
pub use protocol::response::{AMOUNT_FIELDS, Layout, Response, ResponseView, amount_in_sar, mask_pan};
pub use protocol::txn_type::{ResponseClass, TXN_TYPES, TxnKind, TxnType, WaitClass};
pub use protocol::values::{
    Amount, ApprovalCode, BillNumber, BillerId, CashRegisterNo, EcrReference, Language, OriginalDate, PreviousEcrNo,
    Rrn, SamaKeyIndex, Signature, TerminalId, TrsmId, TxnDate, VendorId, VendorKeyIndex, VendorTerminalType,
};
#[cfg(feature = "service")]
pub use service::{COM_KEY, Service, ServiceConfig, ServiceError, ServiceListener};
pub use session::config::TerminalConfig;
pub use session::error::{TerminalError, UnknownOutcome};
pub use session::events::{EventListener, TerminalEvent};
pub use session::link::{Link, OpenError, Parity, SerialLink, SerialSettings, TcpLink, Transport};
pub use session::operations::{Original, TerminalParameters};
pub use session::ports::{SerialPortEntry, list_serial_ports};
pub use session::terminal::{LinkState, Registration, Terminal, TxnResult};
pub use status::StatusCode;
