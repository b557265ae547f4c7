//! `nami-ffi`: `nami-sdk` for applications that are not written in Rust.
//!
//! - [`capi`]: the C ABI (`nami.dll`, `libnami.so`, `libnami.a`), described for C by
//!   `include/nami.h`, which cbindgen generates from that module alone (see `build.rs`).
//!
//! This layer translates; every protocol and middleware rule lives in `nami-sdk`. See
//! `README.md` for what is where, the ownership rules and the status codes.

pub mod capi;
