//! Website visitors' cookie choices (R16): signed visitor ids, and each choice recorded
//! against the statement in force (append-only; the latest choice decides).

use crate::error::Error;
use crate::state::AppState;
use tutela_core::Clause;
use tutela_store::cookies::CookieConsent;

/// A visitor's cookie choice, as the banner sends it.
#[derive(Debug)]
pub struct Choice {
    /// An id issued by [`issue_visitor`].
    pub visitor_id: String,
    /// Strictly necessary cookies: always on; `false` is refused.
    pub necessary: Option<bool>,
    pub preferences: bool,
    /// Site analytics, including third-party analytics.
    pub analytics: bool,
    pub fraud_prevention: bool,
    pub statement_version: String,
}

/// A fresh signed visitor id; issuing stores nothing.
pub fn issue_visitor(state: &AppState) -> anyhow::Result<String> {
    state.vault.issue_visitor_id()
}

/// Records a choice under an id this server issued, for the statement in force. Returns
/// the entry's id.
pub async fn record(state: &AppState, choice: Choice) -> Result<String, Error> {
    if !state.vault.visitor_id_valid(&choice.visitor_id) {
        return Err(Error::Invalid {
            code: "invalid_visitor_id",
            message: "visitor_id must be an id issued by POST /v1/cookie-consents/visitors".into(),
            clause: Some(Clause::r(16)),
        });
    }
    if choice.necessary == Some(false) {
        return Err(Error::Invalid {
            code: "necessary_cookies_required",
            message: "strictly necessary cookies are always on; they need no consent".into(),
            clause: Some(Clause::r(16)),
        });
    }
    if choice.statement_version != state.policy.statement.version {
        return Err(Error::Invalid {
            code: "statement_version_mismatch",
            message: format!(
                "the choice must refer to the statement in force (version {})",
                state.policy.statement.version
            ),
            clause: Some(Clause::r(44)),
        });
    }
    let row = CookieConsent {
        id: format!("ckc_{}", uuid::Uuid::now_v7().simple()),
        visitor_id: choice.visitor_id,
        preferences: choice.preferences,
        analytics: choice.analytics,
        fraud_prevention: choice.fraud_prevention,
        statement_version: choice.statement_version,
        at: state.clock.now(),
    };
    state.store.insert_cookie_consent(&row).await?;
    Ok(row.id)
}

/// A visitor's choices, oldest first; a visitor with none is not found.
pub async fn history(state: &AppState, visitor: &str) -> Result<Vec<CookieConsent>, Error> {
    let history = state.store.cookie_consents_of(visitor).await?;
    if history.is_empty() {
        return Err(Error::not_found("visitor"));
    }
    Ok(history)
}
