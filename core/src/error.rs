//! The error kinds of E1 that every adapter maps its failures to, and the error an MDM port
//! returns.

use crate::provider::Provider;
use serde::{Deserialize, Serialize};
use std::fmt;

/// E1: the six user-facing error kinds. Every adapter failure is exactly one of these (P3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Credentials invalid or expired (HTTP 401).
    Unauthorized,
    /// Credentials lack a permission (HTTP 403).
    Forbidden,
    /// Host or endpoint is not an API (HTTP 404, wrong path).
    NotFound,
    /// DNS, connection refused or reset, timeout.
    ConnectionFailed,
    /// TLS certificate validation failed.
    SslError,
    /// 5xx, 429 after retries, or a response not of the documented shape.
    ServerError,
}

impl ErrorKind {
    /// All kinds, in E1 order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::ConnectionFailed,
        ErrorKind::SslError,
        ErrorKind::ServerError,
    ];

    /// The snake-case name used by the CLI and the admin API (`connection_failed`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ConnectionFailed => "connection_failed",
            ErrorKind::SslError => "ssl_error",
            ErrorKind::ServerError => "server_error",
        }
    }

    /// What the operator should do about an error of this kind.
    pub const fn advice(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => {
                "check the credentials; they may be wrong, revoked or expired"
            }
            ErrorKind::Forbidden => {
                "grant the API credential the permissions listed in the provider's docs"
            }
            ErrorKind::NotFound => {
                "check the host or base URL: it does not answer as this provider's API"
            }
            ErrorKind::ConnectionFailed => "check the host name and the network path to the MDM",
            ErrorKind::SslError => {
                "the MDM's TLS certificate is not trusted: add its CA certificate"
            }
            ErrorKind::ServerError => {
                "the MDM failed or answered unexpectedly; the next sync retries"
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an MDM port call can fail with. The message names the provider, the operation and the
/// HTTP status, and never contains a credential (P3, C2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MdmError {
    /// A failure of one of the E1 kinds.
    #[error("{kind}: {message}")]
    Failed {
        /// The E1 kind.
        kind: ErrorKind,
        /// Provider, operation and status; no secret.
        message: String,
    },
    /// The provider has no API for this operation (A1: JumpCloud has no force sync).
    #[error("{operation} is not supported by {}", provider.display_name())]
    Unsupported {
        /// The provider.
        provider: Provider,
        /// The operation, in words (`force sync`).
        operation: &'static str,
    },
}

impl MdmError {
    /// Builds a failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        MdmError::Failed {
            kind,
            message: message.into(),
        }
    }

    /// The E1 kind, or `None` for an unsupported operation.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            MdmError::Failed { kind, .. } => Some(*kind),
            MdmError::Unsupported { .. } => None,
        }
    }

    /// The kind as recorded in a failed sync: an unsupported operation counts as a server error.
    pub fn kind_or_server_error(&self) -> ErrorKind {
        self.kind().unwrap_or(ErrorKind::ServerError)
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> String {
        match self {
            MdmError::Failed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}
