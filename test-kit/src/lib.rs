//! The test kit of nami's daemon tests (`nami-httpd/tests/`) and end-to-end tests (`tests/`):
//! one harness for both (it is not published).
//!
//! - [`daemon`]: the real `nami-httpd` binary, started on a free loopback port with a temporary
//!   state directory and an empty config file, ready once it printed `listening on …`; stopped
//!   with SIGTERM on drop, its log then scanned for card numbers;
//! - [`http`]: a real HTTP client (reqwest over rustls), answers as status and JSON (every answer
//!   must be JSON, with a JSON content type), by URL or by path of one daemon ([`http::Http`]);
//! - [`tls`]: an HTTPS client that trusts exactly one certificate, by its SHA-256 fingerprint;
//! - [`pan`]: finding card numbers in logs.

pub mod daemon;
pub mod http;
pub mod pan;
pub mod tls;

/// The cash register number of the tests' ECR references.
pub const CASH_REGISTER: &str = "12345678";
