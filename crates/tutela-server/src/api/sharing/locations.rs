//! Storage locations (R6): where a category's records may be kept; a location outside
//! mainland China for a category that must stay there is refused.

use crate::api::ApiJson;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::{Clause, Region, Role};
use tutela_store::sharing::StorageLocation;
use utoipa::ToSchema;

use super::{categories, country, require};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStorageLocation {
    pub name: String,
    /// `cn` or `overseas`; must agree with the country.
    pub region: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub categories: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageLocationView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub country: String,
    pub categories: Vec<String>,
}

fn location_view(l: &StorageLocation) -> StorageLocationView {
    StorageLocationView {
        id: l.id.clone(),
        name: l.name.clone(),
        region: l.region.to_string(),
        country: l.country.as_str().to_owned(),
        categories: l.categories.iter().map(ToString::to_string).collect(),
    }
}

/// Registers where data is stored; a non-CN place for a China-only category is refused.
#[utoipa::path(
    post, path = "/v1/storage-locations", tag = "sharing", security(("bearer" = [])),
    request_body = NewStorageLocation,
    responses((status = 201, body = StorageLocationView), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn register_location(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewStorageLocation>,
) -> Result<(StatusCode, ApiJson<StorageLocationView>), ApiError> {
    require(&actor, &[Role::Operator], "register storage locations")?;
    let name = crate::api::input::bounded_text("name", &body.name, 200, true, "invalid_name")?;
    let region = Region::parse(&body.region)
        .map_err(|e| ApiError::invalid("invalid_region", e.to_string()))?;
    let country = country(&body.country)?;
    if country.region() != region {
        return Err(ApiError::Invalid {
            code: "region_mismatch",
            message: format!("{} is not in region `{region}`", country.as_str()),
            clause: Some(Clause::r(6)),
        });
    }
    let categories = categories(&body.categories)?;
    let location =
        tutela_app::sharing::register_location(&state, &actor, name, region, country, categories)
            .await?;
    Ok((StatusCode::CREATED, ApiJson(location_view(&location))))
}

#[utoipa::path(
    get, path = "/v1/storage-locations", tag = "sharing", security(("bearer" = [])),
    responses((status = 200, body = [StorageLocationView]), (status = 403, body = crate::error::ErrorBody))
)]
pub async fn list_locations(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<ApiJson<Vec<StorageLocationView>>, ApiError> {
    require(
        &actor,
        &[Role::Operator, Role::PrivacyOfficer, Role::Auditor],
        "list storage locations",
    )?;
    let all = state.store.storage_locations().await?;
    Ok(ApiJson(all.iter().map(location_view).collect()))
}
