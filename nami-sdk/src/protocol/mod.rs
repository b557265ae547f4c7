//! The wire protocol, without I/O: values, requests, frames, replies (docs/protocol.md).
//!
//! - [`field`]: the request-field table (widths, charsets, error codes);
//! - [`txn_type`]: the transaction-type table (codes, names, commands, fields, reply classes);
//! - [`values`]: typed, validated request values (amounts, references, dates, signature);
//! - [`request`]: a request and its `inputReqData` and wire forms;
//! - [`frame`]: frame encoding and the LRC;
//! - [`decoder`]: the incremental frame decoder;
//! - [`response`]: replies, layouts and typed views;
//! - [`codes`]: response codes and approval rules.

pub mod codes;
pub mod decoder;
pub mod field;
pub mod frame;
pub mod redact;
pub mod request;
pub mod response;
pub mod txn_type;
pub mod values;
