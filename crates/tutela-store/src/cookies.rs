//! Cookie consent rows (issue 4, R16). Append-only.

use crate::db::Value;
use crate::{from_micros, to_micros, Result, Store};
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
        let params: Vec<Value> = vec![
            (&c.id).into(),
            (&c.visitor_id).into(),
            c.preferences.into(),
            c.analytics.into(),
            c.fraud_prevention.into(),
            (&c.statement_version).into(),
            to_micros(c.at).into(),
        ];
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO cookie_consents (id, visitor_id, preferences, analytics, fraud_prevention, statement_version, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &params,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// A visitor's choices, oldest first.
    pub async fn cookie_consents_of(&self, visitor_id: &str) -> Result<Vec<CookieConsent>> {
        let visitor_id = visitor_id.to_owned();
        let rows: Vec<Row> = self
            .scan(move |db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id, visitor_id, preferences, analytics, fraud_prevention, statement_version, at \
                         FROM cookie_consents WHERE visitor_id = $1 ORDER BY at, id",
                        &[visitor_id.into()],
                    )
                    .await
                })
            })
            .await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::requests::tests::{nonce, stores};

    /// A visitor's choices are kept, none replaced, and read back oldest first (R16).
    #[tokio::test]
    async fn cookie_choices_append_and_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir).await {
            let visitor = format!(
                "vis_{}",
                tutela_core::SubjectId::from_bytes(nonce()).as_str()
            );
            let first = CookieConsent {
                id: format!("{visitor}_1"),
                visitor_id: visitor.clone(),
                preferences: true,
                analytics: true,
                fraud_prevention: false,
                statement_version: "1.0".into(),
                at: OffsetDateTime::UNIX_EPOCH + time::Duration::SECOND,
            };
            let second = CookieConsent {
                id: format!("{visitor}_2"),
                analytics: false,
                fraud_prevention: true,
                at: OffsetDateTime::UNIX_EPOCH + time::Duration::MINUTE,
                ..first.clone()
            };
            store.insert_cookie_consent(&second).await.unwrap();
            store.insert_cookie_consent(&first).await.unwrap();
            assert_eq!(
                store.cookie_consents_of(&visitor).await.unwrap(),
                [first, second]
            );
            assert!(store
                .cookie_consents_of("vis_nobody")
                .await
                .unwrap()
                .is_empty());
        }
    }
}
