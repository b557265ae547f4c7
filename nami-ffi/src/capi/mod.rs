//! The C ABI of `nami-sdk`. cbindgen generates `include/nami.h` from the files of this folder
//! only; the doc comments here are the header's comments.
//!
//! Rules every function follows: `extern "C"` (cdecl on 32-bit Windows), no panic crosses the
//! boundary (a caught panic is `NAMI_STATUS_INTERNAL`), a NULL pointer or a string that is not
//! UTF-8 is `NAMI_STATUS_INVALID_ARGUMENT`, and every handle is thread-safe.
//!
//! - `common.rs`: status codes, the thread-local error message, the panic guard, strings, the
//!   event callback slot;
//! - `options.rs`: the `options_json` of the constructors, logging;
//! - `client.rs`: `NamiClient`, the middleware service (`nami_call` with the REST paths and
//!   bodies);
//! - `terminal.rs`: `NamiTerminal`, one terminal with typed functions and `NamiResult`.

// Every `unsafe extern "C"` function has the same safety contract, stated once in the header's
// preamble (cbindgen.toml): pointers are NULL or valid for the documented use, handles come from
// this library and are not used after being freed. Repeating it per function adds nothing.
#![allow(clippy::missing_safety_doc)]

mod client;
mod common;
mod options;
mod terminal;

use std::ffi::c_char;

pub use client::{NamiClient, nami_call, nami_cancel, nami_client_free, nami_client_new, nami_set_event_callback};
pub use common::{NAMI_ABI_VERSION, NamiEventCallback, NamiStatus};
pub use terminal::{
    NamiResult, NamiTerminal, nami_result_free, nami_terminal_cancel, nami_terminal_connect, nami_terminal_disconnect,
    nami_terminal_duplicate, nami_terminal_free, nami_terminal_purchase, nami_terminal_reconciliation,
    nami_terminal_refund, nami_terminal_register, nami_terminal_reversal, nami_terminal_serial_new,
    nami_terminal_set_event_callback, nami_terminal_tcp_new, nami_terminal_transact,
};

/// The library's version, e.g. `"0.1.0"`: a static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn nami_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// `NAMI_ABI_VERSION` of the loaded library.
#[unsafe(no_mangle)]
pub extern "C" fn nami_abi_version() -> u32 {
    NAMI_ABI_VERSION
}

/// The message of the last failure on the calling thread (`""` when none yet). The string
/// belongs to the library: do not free it; it stays valid until the next failing call on this
/// thread (copy it to keep it).
#[unsafe(no_mangle)]
pub extern "C" fn nami_last_error_message() -> *const c_char {
    common::last_error_ptr()
}

/// The field or parameter the last failure on the calling thread is about, as the caller spells
/// it (`"amount"`, `"refundAmount"`, `"ecrReferenceNo"`, `"options_json"`, ...), or NULL when
/// it names none. Owned by the library like `nami_last_error_message()`: do not free it; valid
/// until the next failing call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn nami_last_error_field() -> *const c_char {
    common::last_error_field_ptr()
}

/// Frees a string returned by the library (`nami_call`'s `response_json`). NULL is ignored. Not
/// for `nami_version()`, `nami_last_error_message()`, the strings inside a `NamiResult` (use
/// `nami_result_free`), nor the `event_json` of a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nami_string_free(s: *mut c_char) {
    common::guard_void("nami_string_free", || unsafe { common::take(s) });
}
