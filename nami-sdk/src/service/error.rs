//! The service's own error: why it could not start, or why the journal could not answer.

use std::path::PathBuf;

use super::db::StoreError;
use super::journal::JournalError;

/// Why the service could not start ([`Service::open`](super::Service::open)), or why a journal
/// query or an ECR reference could not be answered. Each variant keeps what caused it as its
/// source; no dependency's error type is part of it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The state directory could not be created.
    #[error("state directory {}: {source}", path.display())]
    StateDir { path: PathBuf, source: std::io::Error },
    /// A state file could not be opened or upgraded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal could not be read or written.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// Bad input (no unused ECR reference is left for a cash register number).
    #[error(transparent)]
    Invalid(#[from] crate::error::ValidationError),
}
