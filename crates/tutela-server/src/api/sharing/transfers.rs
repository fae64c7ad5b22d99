//! Transfers and disclosures (R17, R18, R21-R24, R28): every disclosure is decided by
//! `tutela_core::transfer`; the register (`GET /v1/transfers`, CSV export) keeps what
//! went ahead and on what basis; customer data disclosures notify the customer first
//! unless a legal prohibition is recorded (R23). Every decision, allow or deny, is
//! audited.

use crate::api::views::{transfer_view, TransferView};
use crate::api::{ApiJson, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tutela_app::sharing::TransferInput;
use tutela_app::AppState;
use tutela_core::policy::ConsentException;
use tutela_core::{Clause, Purpose, Role, SubjectId};
use tutela_store::sharing::TransferFilter;
use utoipa::ToSchema;

use super::{categories, country, require};

/// A legal exception claimed instead of consent (R28).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalBasis {
    /// One of the six consent exceptions.
    pub exception: String,
    /// The legal reference (order number, statute).
    pub reference: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub subject: String,
    pub recipient: String,
    pub categories: Vec<String>,
    pub purpose: String,
    pub basis: Option<LegalBasis>,
    /// A legal prohibition on notifying the customer of a customer-data disclosure (R23).
    pub legal_prohibition_ref: Option<String>,
}

/// Decides one disclosure or transfer; records it in the register when it goes ahead.
#[utoipa::path(
    post, path = "/v1/transfers", tag = "sharing", security(("bearer" = [])),
    request_body = NewTransfer,
    responses((status = 201, body = TransferView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn transfer(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewTransfer>,
) -> Result<(StatusCode, ApiJson<TransferView>), ApiError> {
    require(
        &actor,
        // Integrated systems transfer; disclosures to authorities on a legal ground are
        // the privacy office's (R28). The operator's administrators transfer nothing.
        &[Role::Service, Role::PrivacyOfficer],
        "transfer personal information",
    )?;
    let categories = categories(&body.categories)?;
    let purpose = Purpose::parse(&body.purpose)
        .map_err(|e| ApiError::invalid("invalid_purpose", e.to_string()))?;
    // A service discloses only what its token was created for (issue 14, R29).
    if actor.role() == Role::Service {
        if let Some(c) = categories
            .iter()
            .find(|c| !actor.scope().covers(**c, Some(purpose)))
        {
            return Err(ApiError::Forbidden {
                code: "token_scope",
                message: format!("this service token is not scoped to {c} data for {purpose}"),
                clause: Some(Clause::r(29)),
            });
        }
    }
    let (exception, legal_ref) = match &body.basis {
        None => (None, None),
        Some(b) => {
            let e = ConsentException::parse(&b.exception).map_err(|e| ApiError::Invalid {
                code: "invalid_exception",
                message: e.to_string(),
                clause: Some(Clause::r(28)),
            })?;
            let r = crate::api::input::reference("basis.reference", Some(&b.reference), 256)?;
            (Some(e), r)
        }
    };
    let prohibition_ref = crate::api::input::reference(
        "legal_prohibition_ref",
        body.legal_prohibition_ref.as_deref(),
        256,
    )?;
    let record = tutela_app::sharing::transfer(
        &state,
        &actor,
        TransferInput {
            subject: &body.subject,
            recipient: &body.recipient,
            categories,
            purpose,
            exception,
            legal_ref,
            prohibition_ref,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(transfer_view(&record))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    pub subject: Option<String>,
    pub recipient: Option<String>,
    pub country: Option<String>,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    pub limit: Option<u32>,
}

fn time_param(name: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|t| {
        OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
            ApiError::invalid(
                "invalid_query",
                format!("`{name}` must be an RFC 3339 time"),
            )
        })
    })
    .transpose()
}

/// The transfer register, filtered by subject, recipient, country and time; JSON or CSV.
#[utoipa::path(
    get, path = "/v1/transfers", tag = "sharing", security(("bearer" = [])),
    params(
        ("subject" = Option<String>, Query), ("recipient" = Option<String>, Query),
        ("country" = Option<String>, Query), ("from" = Option<String>, Query),
        ("to" = Option<String>, Query), ("format" = Option<String>, Query, description = "json or csv"),
        ("limit" = Option<u32>, Query, description = "1 to 10000, default 1000"),
    ),
    responses((status = 200, body = [TransferView]), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn register(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<RegisterQuery>,
) -> Result<Response, ApiError> {
    require(
        &actor,
        &[Role::PrivacyOfficer, Role::Auditor],
        "read the transfer register",
    )?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 10000",
        ));
    }
    let filter = TransferFilter {
        subject: q
            .subject
            .as_deref()
            .map(SubjectId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("invalid_query", e.to_string()))?,
        recipient: q.recipient.clone(),
        country: q.country.as_deref().map(country).transpose()?,
        from: time_param("from", q.from.as_deref())?,
        to: time_param("to", q.to.as_deref())?,
        limit: i64::from(limit),
    };
    let rows = state.store.transfers(&filter).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(ApiJson(rows.iter().map(transfer_view).collect::<Vec<_>>()).into_response()),
        "csv" => {
            let mut out = String::from(
                "id,at,subject,recipient,recipient_kind,country,categories,purpose,basis,clause,legal_ref,policy_ref,notice_id,prohibition_ref\n",
            );
            for t in &rows {
                let v = transfer_view(t);
                // Every field is an id, vocabulary or reference without commas or quotes
                // except categories, which are quoted.
                out.push_str(&format!(
                    "{},{},{},{},{},{},\"{}\",{},{},{},{},{},{},{}\n",
                    v.id,
                    v.at,
                    v.subject,
                    v.recipient,
                    v.recipient_kind,
                    v.country,
                    v.categories.join(","),
                    v.purpose,
                    v.basis,
                    v.clause,
                    v.legal_ref.unwrap_or_default().replace([',', '"'], " "),
                    v.policy_ref.unwrap_or_default().replace([',', '"'], " "),
                    v.notice_id.unwrap_or_default(),
                    v.prohibition_ref
                        .unwrap_or_default()
                        .replace([',', '"'], " "),
                ));
            }
            let mut r = out.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"transfers.csv\""),
            );
            Ok(r)
        }
        _ => Err(ApiError::invalid(
            "invalid_query",
            "format must be `json` or `csv`",
        )),
    }
}
