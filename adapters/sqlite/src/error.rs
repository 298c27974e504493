//! The crate's error type. Messages say what went wrong and what to do; none carries a secret.

use mdmsync_core::{StoreError, VaultError};

/// What a call into the SQLite store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite itself failed (disk full, permissions, a locked file past the busy timeout).
    #[error(
        "the SQLite database failed: {0}; check the file, its permissions, free disk space, and that no other program holds a write lock"
    )]
    Sqlite(#[from] rusqlite::Error),
    /// An event-store outcome the caller must handle (a conflict, a damaged event).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The credential vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The database was written by a newer mdmsync.
    #[error(
        "the database schema is at version {found}, newer than this mdmsync knows ({known}); upgrade mdmsync"
    )]
    SchemaTooNew {
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A file could not be read or written.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key is missing or malformed.
    #[error("{0}")]
    Key(String),
    /// A query argument is wrong (an unknown workspace, a malformed time).
    #[error("{0}")]
    Invalid(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s,
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl From<Error> for VaultError {
    fn from(e: Error) -> Self {
        match e {
            Error::Vault(v) => v,
            other => VaultError::Backend(other.to_string()),
        }
    }
}
