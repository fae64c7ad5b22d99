//! Tenants: the operator's customers (R2).

use crate::vault::{audit_and_commit, AuditEntry};
use crate::{from_micros, on_pool, on_writer, parse_col, to_micros, Result, Store, StoreError};
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
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO tenants (id, name, name_sealed, kind, state, created_at, frozen_until, demo_key, trial_ends_at, closed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t.id.as_str())
            .bind(clear)
            .bind(sealed)
            .bind(t.kind.as_str())
            .bind(t.state.as_str())
            .bind(to_micros(t.created_at))
            .bind(t.frozen_until.map(to_micros))
            .bind(demo_key)
            .bind(t.trial_ends_at.map(to_micros))
            .bind(t.closed_at.map(to_micros))
            .execute(&mut *tx)
            .await?;
            if let Some((master_key_id, wrapped)) = key {
                sqlx::query(
                    "INSERT INTO tenant_keys (tenant_id, master_key_id, wrapped) VALUES ($1, $2, $3)",
                )
                .bind(t.id.as_str())
                .bind(master_key_id)
                .bind(wrapped)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Tenants whose name is still stored in clear (written before schema 19).
    pub async fn tenants_with_clear_names(&self) -> Result<Vec<(TenantId, TenantName)>> {
        let rows: Vec<(String, String)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT id, name FROM tenants WHERE name_sealed IS NULL ORDER BY id"
        )
        .fetch_all(p)
        .await)?;
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
        let n = on_writer!(self, |p| {
            sqlx::query(
            "UPDATE tenants SET name_sealed = $1, name = '' WHERE id = $2 AND name_sealed IS NULL"
        )
        .bind(sealed)
        .bind(id.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await)?;
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
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE tenants SET state = $1, trial_ends_at = $2, closed_at = $3, frozen_until = $4 \
                 WHERE id = $5 AND state = $6",
            )
            .bind(life.state.as_str())
            .bind(life.trial_ends_at.map(to_micros))
            .bind(life.closed_at.map(to_micros))
            .bind(life.frozen_until.map(to_micros))
            .bind(id.as_str())
            .bind(expected.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict);
            }
            audit_and_commit!(tx, audit)
        })?;
        Ok(())
    }

    /// Tenants in any of `states` (the retention engine's work list), by id.
    pub async fn tenants_in(&self, states: &[TenantState]) -> Result<Vec<Tenant>> {
        let list = states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE state IN ({list}) ORDER BY id");
        let rows: Vec<Row> = on_pool!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter().map(decode).collect()
    }

    /// The tenant created under a demo key, if any.
    pub async fn tenant_by_demo_key(&self, key: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE demo_key = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(key)
            .fetch_optional(p)
            .await)?;
        row.map(decode).transpose()
    }
}
