//! Tenants: the operator's customers (R2).

use crate::audit::{insert_audit, AuditEntry};
use crate::db::{list_placeholders, Value};
use crate::{from_micros, parse_col, to_micros, Result, Store, StoreError};
use time::OffsetDateTime;
use tutela_core::tenant::{TenantKind, TenantName, TenantState};
use tutela_core::TenantId;

/// How a tenant's display name is stored (an individual tenant's name is a person's
/// name, R29).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredName {
    /// Sealed under the tenant key (`Vault::seal_tenant_text`, scope `name`).
    Sealed(Vec<u8>),
    /// In clear: a row written before schema version 19, until the start-up re-seal
    /// (`Vault::reseal_legacy_tenant_names`) has run.
    Clear(TenantName),
}

/// A stored tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: StoredName,
    pub kind: TenantKind,
    pub state: TenantState,
    pub created_at: OffsetDateTime,
    pub frozen_until: Option<OffsetDateTime>,
    /// When a trial ends (R41).
    pub trial_ends_at: Option<OffsetDateTime>,
    /// When the account was closed (R19).
    pub closed_at: Option<OffsetDateTime>,
}

impl Tenant {
    pub fn life(&self) -> tutela_core::lifecycle::TenantLife {
        tutela_core::lifecycle::TenantLife {
            state: self.state,
            trial_ends_at: self.trial_ends_at,
            closed_at: self.closed_at,
            frozen_until: self.frozen_until,
        }
    }
}

type Row = (
    String,
    String,
    Option<Vec<u8>>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);
const COLUMNS: &str =
    "id, name, name_sealed, kind, state, created_at, frozen_until, trial_ends_at, closed_at";

fn decode(
    (id, name, name_sealed, kind, state, created_at, frozen_until, trial_ends_at, closed_at): Row,
) -> Result<Tenant> {
    Ok(Tenant {
        id: parse_col("tenants.id", &id, TenantId::parse)?,
        name: match name_sealed {
            Some(sealed) => StoredName::Sealed(sealed),
            None => StoredName::Clear(parse_col("tenants.name", &name, TenantName::parse)?),
        },
        kind: parse_col("tenants.kind", &kind, TenantKind::parse)?,
        state: parse_col("tenants.state", &state, TenantState::parse)?,
        created_at: from_micros(created_at)?,
        frozen_until: frozen_until.map(from_micros).transpose()?,
        trial_ends_at: trial_ends_at.map(from_micros).transpose()?,
        closed_at: closed_at.map(from_micros).transpose()?,
    })
}

impl Store {
    /// Inserts a tenant. `demo_key` marks the idempotent demo tenant. `key` is the
    /// tenant key (master key id, wrapped key) its name was sealed under, inserted in
    /// the same transaction (the key row refers to the tenant row).
    pub async fn insert_tenant(
        &self,
        t: &Tenant,
        demo_key: Option<&str>,
        key: Option<(i64, &[u8])>,
    ) -> Result<()> {
        let (clear, sealed) = match &t.name {
            StoredName::Sealed(s) => ("", Some(s.as_slice())),
            StoredName::Clear(n) => (n.as_str(), None),
        };
        let tenant: Vec<Value> = vec![
            t.id.as_str().into(),
            clear.into(),
            sealed.into(),
            t.kind.as_str().into(),
            t.state.as_str().into(),
            to_micros(t.created_at).into(),
            t.frozen_until.map(to_micros).into(),
            demo_key.into(),
            t.trial_ends_at.map(to_micros).into(),
            t.closed_at.map(to_micros).into(),
        ];
        let key: Option<Vec<Value>> = key.map(|(master_key_id, wrapped)| {
            vec![t.id.as_str().into(), master_key_id.into(), wrapped.into()]
        });
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO tenants (id, name, name_sealed, kind, state, created_at, frozen_until, demo_key, trial_ends_at, closed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &tenant,
                )
                .await?;
                if let Some(key) = &key {
                    db.execute(
                        "INSERT INTO tenant_keys (tenant_id, master_key_id, wrapped) VALUES ($1, $2, $3)",
                        key,
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Tenants whose name is still stored in clear (written before schema 19).
    pub async fn tenants_with_clear_names(&self) -> Result<Vec<(TenantId, TenantName)>> {
        let rows: Vec<(String, String)> = self
            .scan(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id, name FROM tenants WHERE name_sealed IS NULL ORDER BY id",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id, name)| {
                Ok((
                    parse_col("tenants.id", &id, TenantId::parse)?,
                    parse_col("tenants.name", &name, TenantName::parse)?,
                ))
            })
            .collect()
    }

    /// Replaces a clear name by its sealed form (the clear column is emptied). `false`
    /// when the row was sealed meanwhile.
    pub async fn seal_tenant_name(&self, id: &TenantId, sealed: &[u8]) -> Result<bool> {
        let params: Vec<Value> = vec![sealed.into(), id.as_str().into()];
        let n = self
            .write(move |db| {
                Box::pin(async move {
                    db.execute(
                        "UPDATE tenants SET name_sealed = $1, name = '' WHERE id = $2 AND name_sealed IS NULL",
                        &params,
                    )
                    .await
                })
            })
            .await?;
        Ok(n > 0)
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move { db.fetch_optional(&sql, &[id.as_str().into()]).await })
            })
            .await?;
        row.map(decode).transpose()
    }

    /// Writes a lifecycle transition if the tenant is still in `expected`, with its audit
    /// entry. `StoreError::Conflict` when it changed meanwhile.
    pub async fn update_tenant_life_audited(
        &self,
        id: &TenantId,
        expected: TenantState,
        life: &tutela_core::lifecycle::TenantLife,
        audit: &AuditEntry,
    ) -> Result<()> {
        let params: Vec<Value> = vec![
            life.state.as_str().into(),
            life.trial_ends_at.map(to_micros).into(),
            life.closed_at.map(to_micros).into(),
            life.frozen_until.map(to_micros).into(),
            id.as_str().into(),
            expected.as_str().into(),
        ];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                let n = db
                    .execute(
                        "UPDATE tenants SET state = $1, trial_ends_at = $2, closed_at = $3, frozen_until = $4 \
                         WHERE id = $5 AND state = $6",
                        &params,
                    )
                    .await?;
                if n == 0 {
                    // The tenant moved on meanwhile; nothing was written, and the error
                    // rolls the (empty) transaction back.
                    return Err(StoreError::Conflict);
                }
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    /// Tenants in any of `states` (the retention engine's work list), by id.
    pub async fn tenants_in(&self, states: &[TenantState]) -> Result<Vec<Tenant>> {
        if states.is_empty() {
            // `IN ()` matches nothing (and is a syntax error on PostgreSQL).
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM tenants WHERE state IN ({}) ORDER BY id",
            list_placeholders(states.len(), 1)
        );
        let params: Vec<Value> = states.iter().map(|s| s.as_str().into()).collect();
        let rows: Vec<Row> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// The tenant created under a demo key, if any.
    pub async fn tenant_by_demo_key(&self, key: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE demo_key = $1");
        let row: Option<Row> = self
            .read(|db| Box::pin(async move { db.fetch_optional(&sql, &[key.into()]).await }))
            .await?;
        row.map(decode).transpose()
    }
}

/// Stores and rows for the store modules' tests.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;
    use crate::audit::AuditEntry;

    /// A store under test, with the directory its SQLite file lives in.
    pub(crate) struct TestStore {
        pub(crate) store: Store,
        _dir: Option<tempfile::TempDir>,
    }

    impl std::ops::Deref for TestStore {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.store
        }
    }

    /// A fresh SQLite store, plus the PostgreSQL database of `TUTELA_TEST_PG_URL` under
    /// `TUTELA_TEST_DB=postgres`. That database may be shared by tests and runs, so
    /// every row a test writes is keyed by a fresh id ([`fresh`]).
    pub(crate) async fn stores() -> Vec<TestStore> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let mut out = vec![TestStore {
            store: Store::open(&url, OffsetDateTime::UNIX_EPOCH).await.unwrap(),
            _dir: Some(dir),
        }];
        if std::env::var("TUTELA_TEST_DB").is_ok_and(|v| v == "postgres") {
            let url = std::env::var("TUTELA_TEST_PG_URL")
                .expect("TUTELA_TEST_DB=postgres needs TUTELA_TEST_PG_URL");
            let store = Store::open(&url, OffsetDateTime::UNIX_EPOCH).await.unwrap();
            assert_eq!(store.backend(), crate::Backend::Postgres);
            out.push(TestStore { store, _dir: None });
        }
        out
    }

    /// 16 fresh bytes, for ids that no other test or run uses.
    pub(crate) fn fresh() -> [u8; 16] {
        *uuid::Uuid::now_v7().as_bytes()
    }

    /// A whole second (stored times keep microseconds; this compares equal after a
    /// round trip on both engines).
    pub(crate) fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
    }

    pub(crate) fn tenant_row(id: TenantId, state: TenantState) -> Tenant {
        Tenant {
            id,
            name: StoredName::Clear(TenantName::parse("Test tenant").unwrap()),
            kind: TenantKind::Enterprise,
            state,
            created_at: at(0),
            frozen_until: None,
            trial_ends_at: None,
            closed_at: None,
        }
    }

    /// Inserts an active tenant with a fresh id.
    pub(crate) async fn test_tenant(store: &Store) -> TenantId {
        let id = TenantId::from_bytes(fresh());
        store
            .insert_tenant(&tenant_row(id.clone(), TenantState::Active), None, None)
            .await
            .unwrap();
        id
    }

    /// An audit entry with a fresh id, at second `n`; tests find theirs by `reason`.
    pub(crate) fn audit(reason: &str, action: &str, n: i64) -> AuditEntry {
        AuditEntry {
            id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
            at: at(n),
            token_id: "tok_test".into(),
            role: "privacy_officer".into(),
            tenant: None,
            subject: None,
            category: None,
            purpose: None,
            action: action.into(),
            decision: "allow".into(),
            reason: reason.into(),
            clause: None,
            seq: None,
        }
    }

    /// The actions audited under `reason`, oldest first.
    pub(crate) async fn audited(store: &Store, reason: &str) -> Vec<String> {
        store
            .audit_by_reason(reason)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::testing::{at, audit, audited, fresh, stores, tenant_row, test_tenant};
    use super::*;
    use tutela_core::lifecycle::TenantLife;

    /// A tenant with a sealed name is inserted with its tenant key in one transaction
    /// and reads back as written (R2, R29).
    #[tokio::test]
    async fn a_tenant_and_its_key_are_inserted_together() {
        for store in stores().await {
            let id = TenantId::from_bytes(fresh());
            let t = Tenant {
                name: StoredName::Sealed(vec![1, 2, 3]),
                kind: TenantKind::Individual,
                frozen_until: Some(at(5)),
                trial_ends_at: Some(at(6)),
                ..tenant_row(id.clone(), TenantState::Trial)
            };
            store
                .insert_tenant(&t, None, Some((7, &[9, 9])))
                .await
                .unwrap();
            assert_eq!(store.tenant(&id).await.unwrap(), Some(t.clone()));
            assert_eq!(store.tenant_key(&id).await.unwrap(), Some((7, vec![9, 9])));
            // The same id again is a conflict, and writes no second key.
            let again = store.insert_tenant(&t, None, Some((8, &[1])));
            assert!(matches!(again.await, Err(StoreError::Conflict)));
            assert_eq!(store.tenant_key(&id).await.unwrap(), Some((7, vec![9, 9])));
        }
    }

    /// The demo tenant is found by its key; a clear name is listed until sealed, and
    /// sealing twice changes nothing the second time (R29).
    #[tokio::test]
    async fn a_clear_name_is_sealed_once() {
        for store in stores().await {
            let id = TenantId::from_bytes(fresh());
            let demo_key = format!("demo_{}", uuid::Uuid::now_v7().simple());
            let t = tenant_row(id.clone(), TenantState::Active);
            store
                .insert_tenant(&t, Some(&demo_key), None)
                .await
                .unwrap();
            assert_eq!(store.tenant_by_demo_key(&demo_key).await.unwrap(), Some(t));
            assert_eq!(store.tenant_by_demo_key("demo_none").await.unwrap(), None);
            let clear = store.tenants_with_clear_names().await.unwrap();
            assert!(clear
                .iter()
                .any(|(i, n)| *i == id && n.as_str() == "Test tenant"));
            assert!(store.seal_tenant_name(&id, &[4, 5]).await.unwrap());
            assert!(!store.seal_tenant_name(&id, &[6]).await.unwrap());
            let sealed = store.tenant(&id).await.unwrap().unwrap();
            assert_eq!(sealed.name, StoredName::Sealed(vec![4, 5]));
            let clear = store.tenants_with_clear_names().await.unwrap();
            assert!(!clear.iter().any(|(i, _)| *i == id));
        }
    }

    /// A lifecycle transition from a state the tenant has left is a conflict and
    /// audits nothing; the retention work list sees the new state (R19, R41).
    #[tokio::test]
    async fn a_stale_lifecycle_transition_is_a_conflict() {
        for store in stores().await {
            let id = test_tenant(&store).await;
            let reason = format!("life:{id}");
            let closed = TenantLife {
                state: TenantState::Closed,
                trial_ends_at: None,
                closed_at: Some(at(10)),
                frozen_until: Some(at(20)),
            };
            store
                .update_tenant_life_audited(
                    &id,
                    TenantState::Active,
                    &closed,
                    &audit(&reason, "tenant.closed", 1),
                )
                .await
                .unwrap();
            let expired = TenantLife {
                state: TenantState::Expired,
                ..closed
            };
            let stale = store
                .update_tenant_life_audited(
                    &id,
                    TenantState::Active,
                    &expired,
                    &audit(&reason, "tenant.expired", 2),
                )
                .await;
            assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
            assert_eq!(store.tenant(&id).await.unwrap().unwrap().life(), closed);
            assert_eq!(audited(&store, &reason).await, ["tenant.closed"]);
            let in_closed = store.tenants_in(&[TenantState::Closed]).await.unwrap();
            assert!(in_closed.iter().any(|t| t.id == id));
            let in_others = store
                .tenants_in(&[TenantState::Active, TenantState::Expired])
                .await
                .unwrap();
            assert!(!in_others.iter().any(|t| t.id == id));
            assert!(store.tenants_in(&[]).await.unwrap().is_empty());
        }
    }
}
