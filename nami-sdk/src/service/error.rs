//! Why the service could not start, or could not read its journal.

use std::path::PathBuf;

use super::db::StoreError;
use super::journal::JournalError;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("state directory {}: {source}", path.display())]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Invalid(#[from] crate::error::ValidationError),
}
