//! `PUT/GET/DELETE /v1/subjects/{subject}/records/{category}`: the purpose-checked path
//! of `DESIGN.md`. authenticate -> parse -> decide (pure) -> vault -> audit -> respond.
//! Every decision, allow or deny, leaves an audit entry; a write's entry commits with
//! the write, a read's entry is durable before the data leaves, and a failed audit write
//! fails the access.

use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tutela_app::records::{CheckedBasis, RecordInput};
use tutela_app::AppState;
use tutela_core::decide::NamedBasis;
use tutela_core::{Actor, Category, Clause, Purpose, Role};
use utoipa::ToSchema;

/// `PUT` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordWrite {
    /// The purpose of collecting this data (a purpose id of the policy).
    pub purpose: String,
    /// The online service the data belongs to (R1).
    pub service: String,
    /// Field name -> value; names must be declared for the category (R3).
    pub fields: BTreeMap<String, String>,
    /// A registered storage location for this record (R6); default: the default one.
    pub location: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordWritten {
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub category: String,
    pub service: String,
    pub version: i64,
    pub fields: BTreeMap<String, String>,
    /// The clause that allowed this read.
    pub clause: String,
}

impl From<tutela_app::records::Record> for RecordView {
    fn from(r: tutela_app::records::Record) -> Self {
        RecordView {
            category: r.category.to_string(),
            service: r.service,
            version: r.version,
            fields: r.fields,
            clause: r.clause.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    pub purpose: Option<String>,
    /// The privacy officer's basis: an open, identity-verified request about this
    /// subject (R29, R35). The purpose may then be omitted.
    pub request: Option<String>,
    /// The privacy officer's basis: the reference of a legal obligation, with
    /// `purpose=legal_obligation` (R29).
    pub legal_ref: Option<String>,
}

/// Checks what a caller named as its basis. Only the privacy officer names one; a request
/// counts only while it is about this subject and its requester's identity is verified
/// and it is not finished (R35).
async fn named_basis(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    q: &PurposeQuery,
) -> Result<Option<CheckedBasis>, ApiError> {
    if q.request.is_none() && q.legal_ref.is_none() {
        return Ok(None);
    }
    if actor.role() != Role::PrivacyOfficer {
        return Err(ApiError::Invalid {
            code: "basis_not_applicable",
            message: "only the privacy officer names a request or legal reference as a basis"
                .into(),
            clause: Some(Clause::r(29)),
        });
    }
    if let Some(id) = q.request.as_deref() {
        let id = super::input::reference("request", Some(id), 64)?.unwrap_or_default();
        if q.purpose.is_some() {
            return Err(ApiError::Invalid {
                code: "purpose_with_request",
                message: "a read to fulfil a request names no purpose: the request is the basis"
                    .into(),
                clause: Some(Clause::r(35)),
            });
        }
        return Ok(Some(
            tutela_app::records::request_basis(state, actor, raw_subject, &id).await?,
        ));
    }
    let reference =
        super::input::reference("legal_ref", q.legal_ref.as_deref(), 200)?.unwrap_or_default();
    Ok(Some(CheckedBasis::legal(&reference)))
}

fn parse_category(raw: &str) -> Result<Category, ApiError> {
    Category::parse(raw).map_err(|e| ApiError::Invalid {
        code: "invalid_category",
        message: e.to_string(),
        clause: Some(Clause::r(3)),
    })
}

fn parse_purpose(raw: Option<&str>) -> Result<Purpose, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Invalid {
        code: "purpose_required",
        message: "declare a purpose (`?purpose=` for reads, `purpose` in the body for writes)"
            .into(),
        clause: Some(Clause::r(4)),
    })?;
    Purpose::parse(raw).map_err(|e| ApiError::Invalid {
        code: "invalid_purpose",
        message: e.to_string(),
        clause: Some(Clause::r(4)),
    })
}

/// Stores a record, sealed under the subject's data key.
#[utoipa::path(
    put, path = "/v1/subjects/{subject}/records/{category}", tag = "records", security(("bearer" = [])),
    params(("subject" = String, Path), ("category" = String, Path)),
    request_body = RecordWrite,
    responses((status = 200, body = RecordWritten), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 423, body = crate::error::ErrorBody))
)]
pub async fn put_record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((raw_subject, raw_category)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RecordWrite>,
) -> Result<ApiJson<RecordWritten>, ApiError> {
    let category = parse_category(&raw_category)?;
    let purpose = parse_purpose(Some(&body.purpose))?;
    let version = tutela_app::records::write_record(
        &state,
        &actor,
        &raw_subject,
        category,
        purpose,
        RecordInput {
            service: body.service,
            fields: body.fields,
            location: body.location,
        },
    )
    .await?;
    Ok(ApiJson(RecordWritten { version }))
}

/// Reads a record for a declared purpose.
#[utoipa::path(
    get, path = "/v1/subjects/{subject}/records/{category}", tag = "records", security(("bearer" = [])),
    params(
        ("subject" = String, Path),
        ("category" = String, Path),
        ("purpose" = Option<String>, Query, description = "The purpose of the read; required unless `request` names the basis"),
        ("request" = Option<String>, Query, description = "Privacy officer only: an open, identity-verified request about this subject (R29, R35)"),
        ("legal_ref" = Option<String>, Query, description = "Privacy officer only, with purpose=legal_obligation: the legal obligation's reference (R29)"),
    ),
    responses((status = 200, body = RecordView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 423, body = crate::error::ErrorBody))
)]
pub async fn get_record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((raw_subject, raw_category)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<ApiJson<RecordView>, ApiError> {
    let category = parse_category(&raw_category)?;
    let basis = named_basis(&state, &actor, &raw_subject, &q).await?;
    // A read for a named request needs no purpose: the right of access is not a use.
    // (`named_basis` refused a purpose beside a request; the placeholder keeps card
    // numbers masked, R12, and is not logged.)
    let purpose = match &basis {
        Some(b) if b.basis == NamedBasis::Request => Purpose::LegalObligation,
        _ => parse_purpose(q.purpose.as_deref())?,
    };
    Ok(ApiJson(
        tutela_app::records::read_record(
            &state,
            &actor,
            &raw_subject,
            category,
            purpose,
            basis.as_ref(),
        )
        .await?
        .into(),
    ))
}

/// Deletes a record (R33: erasure needs no purpose, only scope and an unfrozen account).
#[utoipa::path(
    delete, path = "/v1/subjects/{subject}/records/{category}", tag = "records", security(("bearer" = [])),
    params(("subject" = String, Path), ("category" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 423, body = crate::error::ErrorBody))
)]
pub async fn delete_record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((raw_subject, raw_category)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let category = parse_category(&raw_category)?;
    tutela_app::records::delete_record(&state, &actor, &raw_subject, category).await?;
    Ok(StatusCode::NO_CONTENT)
}
