//! The service layer's error: what went wrong in a use case, in terms a caller can act on
//! (a stable `code`, a message without personal data, the policy clause that decided it),
//! and nothing about transport. `tutela-server` maps each kind to one HTTP status.

use tutela_core::Clause;

/// A use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The role or the policy forbids it.
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// No such resource, or one the caller may not know exists (R2).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The resource is in a state that does not allow this.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// Well-formed but invalid input.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// A link or resource that existed and has expired.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// The data is frozen (closed account under retention, R19).
    #[error("{message}")]
    Locked {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// A bug or an outage (store, keys, audit log); the cause is for the log only.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
            clause: None,
        }
    }

    pub fn forbidden_role(what: &str) -> Self {
        Error::Forbidden {
            code: "forbidden",
            message: format!("your role may not {what}"),
            clause: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Error::NotFound {
            code: "not_found",
            message: format!("no {what} with this id"),
        }
    }
}

impl From<tutela_store::StoreError> for Error {
    fn from(e: tutela_store::StoreError) -> Self {
        Error::Internal(anyhow::Error::new(e))
    }
}

impl From<crate::audit_writer::AuditWriteFailed> for Error {
    fn from(e: crate::audit_writer::AuditWriteFailed) -> Self {
        Error::Internal(anyhow::Error::new(e))
    }
}
