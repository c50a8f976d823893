//! Typed errors of the core. Each has one [`ErrorKind`]; the API maps kinds to JSON-RPC codes.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a client can see. `Display` is the human message; no secret ever goes in one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    InvalidParams { field: String, message: String },
    #[error("{what} '{id}' not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} '{id}' already exists")]
    Conflict { what: &'static str, id: String },
    #[error("{what} is {state}; this needs one of: {}", allowed.join(", "))]
    InvalidState {
        what: String,
        state: String,
        allowed: Vec<String>,
    },
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("docker: {0}")]
    Docker(String),
    #[error("nginx: {0}")]
    Nginx(String),
    #[error("database: {0}")]
    Database(String),
    #[error("git: {0}")]
    Git(String),
    /// The backup target failed (a full disk, say), or a backup failed to verify.
    #[error("backup: {0}")]
    Backup(String),
    /// The ACME server or the certificate files failed; the stage keeps serving.
    #[error("tls: {0}")]
    Tls(String),
    /// The update or readiness after a deploy failed; code and database were rolled back.
    #[error("deploy failed: {message}")]
    DeployFailed {
        message: String,
        /// The update's last log lines (at most 50).
        log_tail: Vec<String>,
    },
    #[error("{context}: {source}")]
    Internal {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The stable error categories of the API contract (DESIGN.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidParams,
    NotFound,
    Conflict,
    InvalidState,
    LimitExceeded,
    Forbidden,
    Docker,
    Nginx,
    Database,
    Git,
    Backup,
    Tls,
    DeployFailed,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidParams,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::InvalidState,
        ErrorKind::LimitExceeded,
        ErrorKind::Forbidden,
        ErrorKind::Docker,
        ErrorKind::Nginx,
        ErrorKind::Database,
        ErrorKind::Git,
        ErrorKind::Backup,
        ErrorKind::Tls,
        ErrorKind::DeployFailed,
        ErrorKind::Internal,
    ];

    /// The `data.kind` string of the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidParams => "invalid_params",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Docker => "docker",
            ErrorKind::Nginx => "nginx",
            ErrorKind::Database => "database",
            ErrorKind::Git => "git",
            ErrorKind::Backup => "backup",
            ErrorKind::Tls => "tls",
            ErrorKind::DeployFailed => "deploy_failed",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn from_str_opt(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidParams { .. } => ErrorKind::InvalidParams,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::InvalidState { .. } => ErrorKind::InvalidState,
            Error::LimitExceeded(_) => ErrorKind::LimitExceeded,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Docker(_) => ErrorKind::Docker,
            Error::Nginx(_) => ErrorKind::Nginx,
            Error::Database(_) => ErrorKind::Database,
            Error::Git(_) => ErrorKind::Git,
            Error::Backup(_) => ErrorKind::Backup,
            Error::Tls(_) => ErrorKind::Tls,
            Error::DeployFailed { .. } => ErrorKind::DeployFailed,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidParams {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Wraps an unexpected failure with what was being done when it happened.
    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: source.into(),
        }
    }
}
