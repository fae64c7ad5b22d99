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
use tutela_app::records::{authorize, Authorized, CheckedBasis};
use tutela_app::AppState;
use tutela_core::decide::{Action, NamedBasis};
use tutela_core::request::RequestStatus;
use tutela_core::{Actor, Category, Clause, Purpose, Region, Role};
use tutela_store::vault::{AuditEntry, RecordExtras, SealedRecord};
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
        // The request must be the subject's own (or its controller's): one the privacy
        // office filed itself is no independent basis for reading (R29).
        let usable = state.store.request(&id).await?.filter(|r| {
            r.subject.as_str() == raw_subject
                && matches!(r.filed_role.as_str(), "end_user" | "tenant_admin")
                && matches!(
                    r.status,
                    RequestStatus::IdentityVerified | RequestStatus::InProgress
                )
        });
        return match usable {
            Some(r) => Ok(Some(CheckedBasis {
                basis: NamedBasis::Request,
                note: format!("request:{}", r.id),
            })),
            None => {
                // A refused basis is an attempt to read personal data: audited like any
                // denial (the subject hidden from view answers 404 instead).
                let (subject, _) =
                    tutela_app::subjects::subject_and_tenant(state, raw_subject).await?;
                state
                    .audit_writer
                    .append(AuditEntry {
                        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
                        at: state.clock.now(),
                        token_id: actor.token().to_string(),
                        role: actor.role().to_string(),
                        tenant: Some(subject.tenant.to_string()),
                        subject: Some(subject.id.to_string()),
                        category: None,
                        purpose: None,
                        action: "read".to_owned(),
                        decision: "deny".to_owned(),
                        reason: "basis_not_open".to_owned(),
                        clause: Some(Clause::r(35).to_string()),
                        seq: None,
                    })
                    .await?;
                Err(ApiError::Forbidden {
                    code: "basis_not_open",
                    message: "the request is not an open, identity-verified request filed by or for this subject"
                        .into(),
                    clause: Some(Clause::r(35)),
                })
            }
        };
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

/// Luhn check for payment card numbers (R11); spaces and dashes are ignored.
fn luhn_ok(number: &str) -> bool {
    let digits: Vec<u32> = number
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()
        .unwrap_or_default();
    if !(12..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
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
    let policy = &state.policy;
    if policy.service(&body.service).is_none() {
        return Err(ApiError::Invalid {
            code: "unknown_service",
            message: "the service is not registered in the policy".into(),
            clause: Some(Clause::r(1)),
        });
    }
    let cp = policy
        .category(category)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("category missing from policy")))?;
    if body.fields.is_empty() {
        return Err(ApiError::invalid(
            "no_fields",
            "a record needs at least one field",
        ));
    }
    for name in body.fields.keys() {
        if cp.never_store.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(ApiError::Invalid {
                code: "never_stored",
                message: format!(
                    "`{name}` is never stored (the security code of a payment instrument)"
                ),
                clause: cp.never_store_clause.or(Some(Clause::r(12))),
            });
        }
        if !cp.fields.contains(name) {
            return Err(ApiError::Invalid {
                code: "undeclared_field",
                message: format!(
                    "field `{}` is not declared for category `{category}` (declared: {})",
                    name.chars().take(64).collect::<String>(),
                    cp.fields.join(", ")
                ),
                clause: Some(Clause::r(3)),
            });
        }
    }
    // R12: a security code is never stored, not even written into a free-text field of
    // payment data or of a support case (where customers paste card details).
    if matches!(category, Category::Payment | Category::Support) {
        if let Some((name, _)) = body.fields.iter().find(|(name, value)| {
            *name != "card_number" && tutela_pii::mentions_security_code(value)
        }) {
            return Err(ApiError::Invalid {
                code: "security_code_in_text",
                message: format!(
                    "`{name}` contains what looks like a card security code; it is never stored"
                ),
                clause: cp.never_store_clause.or(Some(Clause::r(12))),
            });
        }
    }
    // R16: a cookie record names a visitor the server issued, so the analytics condition
    // reads that visitor's own choices.
    if let Some(visitor) = body
        .fields
        .get("visitor_id")
        .filter(|_| category == Category::Cookie)
    {
        if !state.vault.visitor_id_valid(visitor) {
            return Err(ApiError::Invalid {
                code: "invalid_visitor_id",
                message: "visitor_id must be an id issued by POST /v1/cookie-consents/visitors"
                    .into(),
                clause: Some(Clause::r(16)),
            });
        }
        // Collecting cookie data for analytics needs the visitor's consent too.
        if purpose == Purpose::Analytics
            && tutela_app::records::analytics_choice(&state, Some(visitor)).await? != Some(true)
        {
            return Err(ApiError::Forbidden {
                code: "cookie_consent_missing",
                message: "the visitor has not consented to analytics cookies".into(),
                clause: Some(Clause::r(16)),
            });
        }
    }
    if let Some(card) = body
        .fields
        .get("card_number")
        .filter(|_| category == Category::Payment)
    {
        if !luhn_ok(card) {
            return Err(ApiError::Invalid {
                code: "invalid_card_number",
                message: "card_number fails the Luhn check".into(),
                clause: Some(Clause::r(11)),
            });
        }
    }
    // R6: a record goes only to a location registered for its category, and a
    // China-only category never to a location abroad.
    if let Some(id) = body.location.as_deref() {
        let location =
            state
                .store
                .storage_location(id)
                .await?
                .ok_or_else(|| ApiError::Invalid {
                    code: "unknown_location",
                    message: "no storage location with this id".into(),
                    clause: Some(Clause::r(6)),
                })?;
        if location.region == Region::Overseas && cp.residency == Region::Cn {
            return Err(ApiError::Forbidden {
                code: "residency_violation",
                message: format!("{category} data must be stored in mainland China"),
                clause: Some(Clause::r(6)),
            });
        }
        if !location.categories.contains(&category) {
            return Err(ApiError::Invalid {
                code: "location_not_for_category",
                message: format!("this storage location is not registered for {category} data"),
                clause: Some(Clause::r(6)),
            });
        }
    }
    let Authorized { subject, audit, .. } = authorize(
        &state,
        &actor,
        &raw_subject,
        category,
        purpose,
        Action::Write,
        None,
    )
    .await?;
    let key = state
        .vault
        .subject_key(&state.store, &subject.tenant, &subject.id, true)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no data key after create")))?;
    // A support engineer adds to the customer's support record; it never replaces or
    // removes what is there (R13, R29): its fields are merged in, and text for a field
    // that already has some is appended on a new line.
    let mut fields = body.fields;
    let existing = if actor.role() == Role::Support {
        state.store.record_with_keys(&subject.id, category).await?
    } else {
        None
    };
    let current = match &existing {
        Some((record, _)) => record.version,
        None => state.store.record_version(&subject.id, category).await?,
    };
    if let Some((record, _)) = existing {
        // Sealed under the subject's key, which `key` already is.
        let mut merged =
            state
                .vault
                .open_fields(&key, &subject.id, category, record.version, &record.fields)?;
        for (name, value) in fields {
            match merged.get_mut(&name) {
                Some(old) => {
                    old.push('\n');
                    old.push_str(&value);
                }
                None => {
                    merged.insert(name, value);
                }
            }
        }
        fields = merged;
    }
    let version = current + 1;
    let sealed = state
        .vault
        .seal_fields(&key, &subject.id, category, version, &fields)?;
    let record = SealedRecord {
        subject: subject.id.clone(),
        category,
        version,
        service: body.service.clone(),
        fields: sealed,
        updated_at: state.clock.now(),
    };
    let lookup_keys = state
        .vault
        .lookup_keys(&state.store, &subject.tenant, &fields)
        .await?;
    let lookups = RecordExtras {
        tenant: &subject.tenant,
        keys: &lookup_keys,
        location: body.location.as_deref(),
    };
    if !state
        .store
        .put_record_audited(&record, current, &audit, &lookups)
        .await?
    {
        return Err(ApiError::Conflict {
            code: "concurrent_write",
            message: "the record changed while this write was prepared; retry".into(),
            clause: None,
        });
    }
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
    // Deletion declares no purpose (R33); the decision ignores it for `Action::Delete`.
    let Authorized { subject, audit, .. } = authorize(
        &state,
        &actor,
        &raw_subject,
        category,
        Purpose::AccountAdmin,
        Action::Delete,
        None,
    )
    .await?;
    if state
        .store
        .delete_record_audited(&subject.id, category, &audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound {
            code: "not_found",
            message: format!("no {category} record for this subject"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        for (n, ok) in [
            ("4111111111111111", true),
            ("4111 1111 1111 1111", true),
            ("4111111111111112", false),
            ("6212 2611 0000 0000 003", false),
            ("abc", false),
            ("4111", false),
        ] {
            assert_eq!(luhn_ok(n), ok, "{n}");
        }
    }
}
