//! Support grants (issue 5; R7, R22). Every change commits with its audit entry; state
//! changes are optimistic (`WHERE state = <expected>`), so two approvers cannot both win.

use crate::audit::{insert_audit, AuditEntry};
use crate::db::Value;
use crate::{from_micros, parse_col, to_micros, Result, Store, StoreError};
use time::OffsetDateTime;
use tutela_core::grant::GrantState;
use tutela_core::{Category, TenantId};

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub tenant: TenantId,
    pub incident: String,
    pub categories: Vec<Category>,
    /// The reason in clear: only rows written before schema 17, until re-sealed at start.
    pub reason: String,
    /// The reason sealed under the tenant's key (issue 14; R29).
    pub sealed_reason: Option<Vec<u8>>,
    pub duration_minutes: i64,
    /// Token id of the support engineer who asked.
    pub requested_by: String,
    pub requested_at: OffsetDateTime,
    pub pending_until: OffsetDateTime,
    pub state: GrantState,
    pub decided_by: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    /// The customer approved access to personal information too (R7, R22); otherwise
    /// support data is shown redacted.
    pub personal_information: bool,
}

const GRANT_COLUMNS: &str = "id, tenant_id, incident, categories, reason, duration_minutes, \
    requested_by, requested_at, pending_until, state, decided_by, decided_at, expires_at, ended_at, \
    personal_information, sealed_reason";

type GrantRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    bool,
    Option<Vec<u8>>,
);

fn opt_time(v: Option<i64>) -> Result<Option<OffsetDateTime>> {
    v.map(from_micros).transpose()
}

fn decode(r: GrantRow) -> Result<Grant> {
    let (
        id,
        tenant,
        incident,
        categories,
        reason,
        duration_minutes,
        requested_by,
        requested_at,
        pending_until,
        state,
        decided_by,
        decided_at,
        expires_at,
        ended_at,
        personal_information,
        sealed_reason,
    ) = r;
    Ok(Grant {
        id,
        tenant: parse_col("tenant_id", &tenant, TenantId::parse)?,
        incident,
        categories: categories
            .split(',')
            .map(|c| parse_col("categories", c, Category::parse))
            .collect::<Result<_>>()?,
        reason,
        sealed_reason,
        duration_minutes,
        requested_by,
        requested_at: from_micros(requested_at)?,
        pending_until: from_micros(pending_until)?,
        state: parse_col("state", &state, GrantState::parse)?,
        decided_by,
        decided_at: opt_time(decided_at)?,
        expires_at: opt_time(expires_at)?,
        ended_at: opt_time(ended_at)?,
        personal_information,
    })
}

fn categories_text(categories: &[Category]) -> String {
    categories
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    pub async fn insert_grant_audited(&self, g: &Grant, audit: &AuditEntry) -> Result<()> {
        let sql = format!(
            "INSERT INTO grants ({GRANT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        let params: Vec<Value> = vec![
            (&g.id).into(),
            g.tenant.as_str().into(),
            (&g.incident).into(),
            categories_text(&g.categories).into(),
            (&g.reason).into(),
            g.duration_minutes.into(),
            (&g.requested_by).into(),
            to_micros(g.requested_at).into(),
            to_micros(g.pending_until).into(),
            g.state.as_str().into(),
            g.decided_by.as_deref().into(),
            g.decided_at.map(to_micros).into(),
            g.expires_at.map(to_micros).into(),
            g.ended_at.map(to_micros).into(),
            g.personal_information.into(),
            g.sealed_reason.as_deref().into(),
        ];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(&sql, &params).await?;
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
        let row: Option<GrantRow> = self
            .read(|db| Box::pin(async move { db.fetch_optional(&sql, &[id.into()]).await }))
            .await?;
        row.map(decode).transpose()
    }

    /// A tenant's grants, newest first.
    pub async fn grants_of_tenant(&self, tenant: &TenantId) -> Result<Vec<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE tenant_id = $1 ORDER BY requested_at DESC, id DESC"
        );
        let params: Vec<Value> = vec![tenant.as_str().into()];
        let rows: Vec<GrantRow> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// A tenant's grants in state `active` whose time has not run out.
    pub async fn active_grants(
        &self,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE tenant_id = $1 AND state = 'active' AND expires_at > $2"
        );
        // A point look-up on the support read path: a tenant has few active grants.
        let rows: Vec<GrantRow> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(&sql, &[tenant.as_str().into(), to_micros(now).into()])
                        .await
                })
            })
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// The grants of one tenant's incident that are still pending or active in the
    /// database. Incident ids are the tenant's own: the same id at another tenant is
    /// another incident (issue 14).
    pub async fn open_grants_of_incident(
        &self,
        tenant: &TenantId,
        incident: &str,
    ) -> Result<Vec<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE tenant_id = $1 AND incident = $2 \
             AND state IN ('pending', 'active') ORDER BY id"
        );
        // One incident's open grants: a handful of rows.
        let rows: Vec<GrantRow> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(&sql, &[tenant.as_str().into(), incident.into()])
                        .await
                })
            })
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Grants whose reason is still in clear (written before schema 17).
    pub async fn grants_with_clear_reason(&self, limit: i64) -> Result<Vec<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE sealed_reason IS NULL AND reason <> '' \
             ORDER BY id LIMIT $1"
        );
        let rows: Vec<GrantRow> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &[limit.into()]).await }))
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Replaces a grant's clear reason by its sealed form.
    pub async fn seal_grant_reason(&self, id: &str, sealed: &[u8]) -> Result<()> {
        let params: Vec<Value> = vec![sealed.into(), id.into()];
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "UPDATE grants SET sealed_reason = $1, reason = '' WHERE id = $2",
                    &params,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Writes a grant's new state if it is still in `expected` state, with its audit
    /// entry. `Err(StoreError::Conflict)` when someone else changed it first.
    pub async fn update_grant_audited(
        &self,
        g: &Grant,
        expected: GrantState,
        audit: &AuditEntry,
    ) -> Result<()> {
        let params: Vec<Value> = vec![
            g.state.as_str().into(),
            g.decided_by.as_deref().into(),
            g.decided_at.map(to_micros).into(),
            g.expires_at.map(to_micros).into(),
            g.ended_at.map(to_micros).into(),
            (&g.id).into(),
            expected.as_str().into(),
        ];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                let changed = db
                    .execute(
                        "UPDATE grants SET state = $1, decided_by = $2, decided_at = $3, expires_at = $4, ended_at = $5 \
                         WHERE id = $6 AND state = $7",
                        &params,
                    )
                    .await?;
                if changed == 0 {
                    // Someone else moved the grant first; nothing was written, and the
                    // error rolls the (empty) transaction back.
                    return Err(StoreError::Conflict);
                }
                insert_audit(db, &audit).await
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::tenants::testing::{at, audit, audited, fresh, stores, test_tenant};
    use time::Duration;

    fn pending(tenant: &TenantId, incident: &str) -> Grant {
        Grant {
            id: format!("grt_{}", hex::encode(fresh())),
            tenant: tenant.clone(),
            incident: incident.into(),
            categories: vec![Category::Support, Category::Customer],
            reason: String::new(),
            sealed_reason: Some(vec![1, 2, 3]),
            duration_minutes: 60,
            requested_by: "tok_support".into(),
            requested_at: at(0),
            pending_until: at(600),
            state: GrantState::Pending,
            decided_by: None,
            decided_at: None,
            expires_at: None,
            ended_at: None,
            personal_information: true,
        }
    }

    /// Two approvers race on one grant: the second, still expecting `pending`, gets a
    /// conflict, changes nothing and audits nothing; ending the grant closes it (R7, R22).
    #[tokio::test]
    async fn a_stale_grant_transition_is_a_conflict_and_audits_nothing() {
        for store in stores().await {
            let tenant = test_tenant(&store).await;
            let g = pending(&tenant, "INC-1");
            let reason = format!("grant:{}", g.id);
            store
                .insert_grant_audited(&g, &audit(&reason, "grant.requested", 1))
                .await
                .unwrap();
            assert_eq!(store.grant(&g.id).await.unwrap(), Some(g.clone()));
            let approved = Grant {
                state: GrantState::Active,
                decided_by: Some("tok_admin".into()),
                decided_at: Some(at(60)),
                expires_at: Some(at(60) + Duration::minutes(60)),
                ..g.clone()
            };
            store
                .update_grant_audited(
                    &approved,
                    GrantState::Pending,
                    &audit(&reason, "grant.approved", 2),
                )
                .await
                .unwrap();
            let denied = Grant {
                state: GrantState::Denied,
                decided_by: Some("tok_other_admin".into()),
                decided_at: Some(at(61)),
                ..g.clone()
            };
            let stale = store
                .update_grant_audited(
                    &denied,
                    GrantState::Pending,
                    &audit(&reason, "grant.denied", 3),
                )
                .await;
            assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
            assert_eq!(store.grant(&g.id).await.unwrap(), Some(approved.clone()));
            assert_eq!(
                audited(&store, &reason).await,
                ["grant.requested", "grant.approved"]
            );

            assert_eq!(
                store.active_grants(&tenant, at(120)).await.unwrap(),
                std::slice::from_ref(&approved)
            );
            assert!(store
                .active_grants(&tenant, at(7200))
                .await
                .unwrap()
                .is_empty());
            assert_eq!(
                store
                    .open_grants_of_incident(&tenant, "INC-1")
                    .await
                    .unwrap(),
                std::slice::from_ref(&approved)
            );
            // The same incident id at another tenant is another incident.
            let other = test_tenant(&store).await;
            assert!(store
                .open_grants_of_incident(&other, "INC-1")
                .await
                .unwrap()
                .is_empty());

            let ended = Grant {
                state: GrantState::Ended,
                ended_at: Some(at(300)),
                ..approved
            };
            store
                .update_grant_audited(
                    &ended,
                    GrantState::Active,
                    &audit(&reason, "grant.ended", 4),
                )
                .await
                .unwrap();
            assert!(store
                .open_grants_of_incident(&tenant, "INC-1")
                .await
                .unwrap()
                .is_empty());
            assert_eq!(store.grants_of_tenant(&tenant).await.unwrap(), [ended]);
        }
    }

    /// A reason written in clear (before schema 17) is listed until it is replaced by
    /// its sealed form, which empties the clear column (R29).
    #[tokio::test]
    async fn a_clear_reason_is_replaced_by_its_sealed_form() {
        for store in stores().await {
            let tenant = test_tenant(&store).await;
            let g = Grant {
                reason: "customer ticket".into(),
                sealed_reason: None,
                ..pending(&tenant, "INC-2")
            };
            store
                .insert_grant_audited(&g, &audit("test", "grant.requested", 1))
                .await
                .unwrap();
            let listed = store.grants_with_clear_reason(100_000).await.unwrap();
            assert!(listed.contains(&g));
            store.seal_grant_reason(&g.id, &[7, 7]).await.unwrap();
            let sealed = store.grant(&g.id).await.unwrap().unwrap();
            assert_eq!(
                (sealed.reason.as_str(), sealed.sealed_reason),
                ("", Some(vec![7, 7]))
            );
            let listed = store.grants_with_clear_reason(100_000).await.unwrap();
            assert!(!listed.iter().any(|l| l.id == g.id));
        }
    }
}
