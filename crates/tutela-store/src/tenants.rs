//! Tenants: the operator's customers (R2).

use crate::{from_micros, on_pool, on_writer, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::tenant::{TenantKind, TenantName, TenantState};
use tutela_core::TenantId;

/// A stored tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub kind: TenantKind,
    pub state: TenantState,
    pub created_at: OffsetDateTime,
    pub frozen_until: Option<OffsetDateTime>,
}

type Row = (String, String, String, String, i64, Option<i64>);
const COLUMNS: &str = "id, name, kind, state, created_at, frozen_until";

fn decode((id, name, kind, state, created_at, frozen_until): Row) -> Result<Tenant> {
    Ok(Tenant {
        id: parse_col("tenants.id", &id, TenantId::parse)?,
        name: parse_col("tenants.name", &name, TenantName::parse)?,
        kind: parse_col("tenants.kind", &kind, TenantKind::parse)?,
        state: parse_col("tenants.state", &state, TenantState::parse)?,
        created_at: from_micros(created_at)?,
        frozen_until: frozen_until.map(from_micros).transpose()?,
    })
}

impl Store {
    /// Inserts a tenant. `demo_key` marks the idempotent demo tenant.
    pub async fn insert_tenant(&self, t: &Tenant, demo_key: Option<&str>) -> Result<()> {
        on_writer!(self, |p| {
            sqlx::query(
                "INSERT INTO tenants (id, name, kind, state, created_at, frozen_until, demo_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(t.id.as_str())
            .bind(t.name.as_str())
            .bind(t.kind.as_str())
            .bind(t.state.as_str())
            .bind(to_micros(t.created_at))
            .bind(t.frozen_until.map(to_micros))
            .bind(demo_key)
            .execute(p)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await)?;
        row.map(decode).transpose()
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
