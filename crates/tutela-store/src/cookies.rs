//! Cookie consent rows (issue 4, R16). Append-only.

use crate::{from_micros, on_pool, on_writer, to_micros, Result, Store};
use time::OffsetDateTime;

/// One recorded choice of a website visitor. `necessary` cookies are always on and not
/// recorded as a choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConsent {
    pub id: String,
    pub visitor_id: String,
    pub preferences: bool,
    /// Includes third-party site analytics.
    pub analytics: bool,
    pub fraud_prevention: bool,
    pub statement_version: String,
    pub at: OffsetDateTime,
}

type Row = (String, String, bool, bool, bool, String, i64);

impl Store {
    pub async fn insert_cookie_consent(&self, c: &CookieConsent) -> Result<()> {
        on_writer!(self, |p| {
            sqlx::query(
                "INSERT INTO cookie_consents (id, visitor_id, preferences, analytics, fraud_prevention, statement_version, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.id)
            .bind(&c.visitor_id)
            .bind(c.preferences)
            .bind(c.analytics)
            .bind(c.fraud_prevention)
            .bind(&c.statement_version)
            .bind(to_micros(c.at))
            .execute(p)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// A visitor's choices, oldest first.
    pub async fn cookie_consents_of(&self, visitor_id: &str) -> Result<Vec<CookieConsent>> {
        let rows: Vec<Row> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, visitor_id, preferences, analytics, fraud_prevention, statement_version, at \
                 FROM cookie_consents WHERE visitor_id = $1 ORDER BY at, id",
            )
            .bind(visitor_id)
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(
                |(
                    id,
                    visitor_id,
                    preferences,
                    analytics,
                    fraud_prevention,
                    statement_version,
                    at,
                )| {
                    Ok(CookieConsent {
                        id,
                        visitor_id,
                        preferences,
                        analytics,
                        fraud_prevention,
                        statement_version,
                        at: from_micros(at)?,
                    })
                },
            )
            .collect()
    }
}
