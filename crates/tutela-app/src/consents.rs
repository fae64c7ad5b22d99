//! Consent as the decision reads it (R4, R27, R43).

use crate::error::Error;
use crate::state::AppState;
use tutela_core::consent::ConsentEvent;
use tutela_store::subjects::Subject;

/// A subject's ledger as the decision needs it.
pub async fn consent_events(
    state: &AppState,
    subject: &Subject,
) -> Result<Vec<ConsentEvent>, Error> {
    Ok(state
        .store
        .consents_of(&subject.id)
        .await?
        .into_iter()
        .map(|c| ConsentEvent {
            scope: c.scope,
            granted: c.granted,
            at: c.at,
        })
        .collect())
}
