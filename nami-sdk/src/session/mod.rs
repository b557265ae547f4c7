//! Terminal sessions on top of the codec: links, the exchange rules, operations, events.
//!
//! - [`link`]: the `Transport`/`Link` traits, TCP and serial;
//! - [`exchange`]: the rules of one exchange without I/O (deadline, strays, cancel, D11);
//! - [`terminal`]: a `Terminal`, its registration, and the exchange's two drivers: blocking and
//!   tokio (`transact_async`);
//! - [`operations`]: one method per operation;
//! - [`error`]: `TerminalError` and its middleware status codes;
//! - [`events`]: state changes for cashier screens;
//! - [`config`]: timeouts and behaviour flags;
//! - [`ports`]: serial port discovery.

pub mod config;
pub mod error;
pub mod events;
pub mod exchange;
pub mod link;
pub mod operations;
pub mod ports;
pub mod terminal;

/// A thread builder named `name`. Names carry caller-chosen keys (device paths, addresses), and a
/// thread name cannot hold a NUL byte (std panics on one): such a byte becomes `?`.
pub(crate) fn named_thread(name: String) -> std::thread::Builder {
    std::thread::Builder::new().name(name.replace('\0', "?"))
}
