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
use tutela_core::{Category, Clause, Purpose, Role};
use utoipa::ToSchema;

use super::{audit, require};

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
    let tenant_id =
        tutela_core::TenantId::parse(&body.tenant).map_err(|_| ApiError::not_found("tenant"))?;
    let tenant = state
        .cache
        .tenant(&state.store, &tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let now = state.clock.now();
    let admins: Vec<_> = state
        .store
        .subjects_of(&tenant_id, None, 50)
        .await?
        .into_iter()
        .filter(|s| s.kind == tutela_core::tenant::SubjectKind::Administrator)
        .collect();
    let mut notices = Vec::new();
    let mut contacts = Vec::new();
    // Redirecting a third party's complaint to the customer is the statement's own
    // obligation (R23): the reads name it as their basis.
    let complaint_basis =
        tutela_app::records::CheckedBasis::legal(&format!("third_party_complaint:{complaint_ref}"));
    for admin in &admins {
        // The customer hears of the complaint (a service notice, R9/R23).
        notices.push(
            tutela_app::contact::send_service_notice(
                &state,
                &actor,
                admin,
                "third-party-complaint-redirect",
                Clause::r(23),
            )
            .await?,
        );
        // Basic contact data only, through the purpose-checked, audited read.
        match tutela_app::records::read_record(
            &state,
            &actor,
            admin.id.as_str(),
            Category::Administrator,
            Purpose::LegalObligation,
            Some(&complaint_basis),
        )
        .await
        {
            Ok(view) => contacts.push(BasicContact {
                name: view.fields.get("name").cloned(),
                email: view.fields.get("email").cloned(),
            }),
            Err(tutela_app::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let complaint = tutela_store::sharing::Complaint {
        id: format!("cmp_{}", uuid::Uuid::now_v7().simple()),
        tenant: tenant_id.clone(),
        complaint_ref,
        notices: notices.clone(),
        received_by: actor.token().to_string(),
        at: now,
    };
    let mut a = audit(
        &actor,
        now,
        "third_party_complaint",
        true,
        "redirected_to_customer",
        Clause::r(23),
    );
    a.tenant = Some(tenant_id.to_string());
    state.store.insert_complaint_audited(&complaint, &a).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ComplaintRedirected {
            id: complaint.id,
            tenant: tenant_id.to_string(),
            tenant_name: state
                .vault
                .tenant_name(&state.store, &tenant)
                .await?
                .as_str()
                .to_owned(),
            notices,
            contacts,
        }),
    ))
}
