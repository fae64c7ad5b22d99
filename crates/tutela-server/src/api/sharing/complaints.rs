//! Third-party complaints (R23): a complaint about a customer's data is redirected to
//! the customer, whose administrators are notified and whose basic contact data is
//! read through the purpose-checked path.

use crate::api::ApiJson;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::Role;
use utoipa::ToSchema;

use super::require;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComplaint {
    /// The customer the complaint is about.
    pub tenant: String,
    /// The ticket in the operator's complaint system (its content stays there).
    pub complaint_ref: String,
}

/// Basic contact data of one of the customer's administrators: name and e-mail only.
#[derive(Debug, Serialize, ToSchema)]
pub struct BasicContact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintRedirected {
    pub id: String,
    pub tenant: String,
    pub tenant_name: String,
    /// Notices sent to the customer's administrators about the complaint.
    pub notices: Vec<String>,
    /// What the third party may be given: the customer's basic contact data.
    pub contacts: Vec<BasicContact>,
}

/// Redirects a third party's complaint about a customer's data to the customer: the
/// customer's administrators are notified, and the third party gets only their basic
/// contact data (name, e-mail), read through the purpose-checked path (R23).
#[utoipa::path(
    post, path = "/v1/third-party-complaints", tag = "sharing", security(("bearer" = [])),
    request_body = NewComplaint,
    responses((status = 201, body = ComplaintRedirected), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn redirect_complaint(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewComplaint>,
) -> Result<(StatusCode, ApiJson<ComplaintRedirected>), ApiError> {
    require(
        &actor,
        &[Role::Operator, Role::PrivacyOfficer],
        "redirect third-party complaints",
    )?;
    let complaint_ref =
        crate::api::input::reference("complaint_ref", Some(&body.complaint_ref), 256)?
            .unwrap_or_default();
    let r = tutela_app::sharing::redirect_complaint(&state, &actor, &body.tenant, complaint_ref)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ComplaintRedirected {
            id: r.id,
            tenant: r.tenant.to_string(),
            tenant_name: r.tenant_name,
            notices: r.notices,
            contacts: r
                .contacts
                .into_iter()
                .map(|c| BasicContact {
                    name: c.name,
                    email: c.email,
                })
                .collect(),
        }),
    ))
}
