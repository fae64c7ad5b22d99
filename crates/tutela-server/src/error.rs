//! The one place errors become HTTP responses. Every error has the shape of `API.md`:
//! `{"error": {"code", "message", "clause"?}}`. Internal causes are logged with their
//! chain and answered with an opaque 500; messages never contain personal data.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tutela_core::Clause;

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is not well-formed (bad JSON syntax, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no token, or a token that is malformed, unknown or revoked.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 403: the role or the policy forbids it.
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// 404: no such resource, or one the caller may not know exists (R2).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 409: the resource is in a state that does not allow this.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// 413: the body is larger than the configured limit.
    #[error("the request body is larger than the configured limit")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("expected a JSON body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 422: well-formed but invalid input.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// 410: a link or resource that existed and has expired.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// 423: the data is frozen (closed account under retention, R19).
    #[error("{message}")]
    Locked {
        code: &'static str,
        message: String,
        clause: Option<Clause>,
    },
    /// 500: a bug or an outage; details go to the log only.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
            clause: None,
        }
    }

    pub fn forbidden_role(what: &str) -> Self {
        ApiError::Forbidden {
            code: "forbidden",
            message: format!("your role may not {what}"),
            clause: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound {
            code: "not_found",
            message: format!("no {what} with this id"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Locked { .. } => StatusCode::LOCKED,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::Locked { code, .. }
            | ApiError::Gone { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Internal(_) => "internal",
        }
    }

    fn clause(&self) -> Option<Clause> {
        match self {
            ApiError::Forbidden { clause, .. }
            | ApiError::Conflict { clause, .. }
            | ApiError::Invalid { clause, .. }
            | ApiError::Locked { clause, .. } => *clause,
            _ => None,
        }
    }
}

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// One error: a stable snake_case code, a human message, and the clause that decided it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clause: Option<String>,
}

/// Builds an error response of the standard shape.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    clause: Option<Clause>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            clause: clause.map(|c| c.to_string()),
        },
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        error_response(self.status(), self.code(), &self.to_string(), self.clause())
    }
}

impl From<tutela_store::StoreError> for ApiError {
    fn from(e: tutela_store::StoreError) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

/// Each kind of service-layer error is one status; code, message and clause pass through.
impl From<tutela_app::Error> for ApiError {
    fn from(e: tutela_app::Error) -> Self {
        use tutela_app::Error as E;
        match e {
            E::Forbidden {
                code,
                message,
                clause,
            } => ApiError::Forbidden {
                code,
                message,
                clause,
            },
            E::NotFound { code, message } => ApiError::NotFound { code, message },
            E::Conflict {
                code,
                message,
                clause,
            } => ApiError::Conflict {
                code,
                message,
                clause,
            },
            E::Invalid {
                code,
                message,
                clause,
            } => ApiError::Invalid {
                code,
                message,
                clause,
            },
            E::Gone { code, message } => ApiError::Gone { code, message },
            E::Locked {
                code,
                message,
                clause,
            } => ApiError::Locked {
                code,
                message,
                clause,
            },
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<tutela_app::audit_writer::AuditWriteFailed> for ApiError {
    fn from(e: tutela_app::audit_writer::AuditWriteFailed) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                ApiError::invalid("invalid_body", body_error_text(&e.body_text()))
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
                code: "malformed_json",
                message: body_error_text(&e.body_text()),
            },
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest {
                code: "bad_request",
                message: other.body_text(),
            },
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::invalid("invalid_query", body_error_text(&r.body_text()))
    }
}

/// Serde's messages can quote the offending input; keep them short so a large or
/// sensitive value never travels back whole.
fn body_error_text(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        text.chars().take(MAX).chain("…".chars()).collect()
    }
}
