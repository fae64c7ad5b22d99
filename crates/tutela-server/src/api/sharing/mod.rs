//! Residency, recipients and transfers (issue 5; R6, R17, R18, R21-R25, R28).
//!
//! - `POST/GET /v1/storage-locations`: a location outside mainland China for a category
//!   that must stay there is refused (R6).
//! - `POST/GET /v1/recipients`: only registered recipients receive personal information,
//!   and only what their kind may receive (R21); a third-party offering names its own
//!   policy (R25).
//! - `POST /v1/transfers`: every disclosure is decided by `tutela_core::transfer`; the
//!   register (`GET /v1/transfers`, CSV export) keeps what went ahead and on what basis;
//!   customer data disclosures notify the customer first unless a legal prohibition is
//!   recorded (R23). Every decision, allow or deny, is audited.
//!
//! One module per noun; this one holds the input rules they share. What they do is
//! `tutela_app::sharing`.

pub mod complaints;
pub mod locations;
pub mod recipients;
pub mod transfers;

use crate::error::ApiError;
use tutela_core::{Actor, Category, Country, Role};

pub(super) fn require(actor: &Actor, roles: &[Role], what: &str) -> Result<(), ApiError> {
    if roles.contains(&actor.role()) {
        Ok(())
    } else {
        Err(ApiError::forbidden_role(what))
    }
}

pub(super) fn categories(raw: &[String]) -> Result<Vec<Category>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            "invalid_categories",
            "name at least one category",
        ));
    }
    let mut out = raw
        .iter()
        .map(|c| Category::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("invalid_categories", e.to_string()))?;
    out.sort();
    out.dedup();
    Ok(out)
}

pub(super) fn country(raw: &str) -> Result<Country, ApiError> {
    Country::parse(raw).map_err(|e| ApiError::invalid("invalid_country", e.to_string()))
}
