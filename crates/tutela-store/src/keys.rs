//! Wrapped keys: each tenant's key (under a master key) and each subject's data key
//! (under its tenant's key). Deleting a subject's key crypto-shreds its records.

use crate::db::Value;
use crate::{parse_col, Result, Store, StoreError};
use tutela_core::{SubjectId, TenantId};

/// The wrapped key chain of one subject: the tenant key (under master key
/// `master_key_id`) and the subject's data key (under the tenant key).
#[derive(Debug, Clone)]
pub struct WrappedKeys {
    pub master_key_id: i64,
    pub tenant_key: Vec<u8>,
    pub subject_key: Vec<u8>,
}

impl Store {
    /// The wrapped key of a tenant and the id of the master key that wraps it.
    pub async fn tenant_key(&self, tenant: &TenantId) -> Result<Option<(i64, Vec<u8>)>> {
        self.read(|db| {
            Box::pin(async move {
                db.fetch_optional(
                    "SELECT master_key_id, wrapped FROM tenant_keys WHERE tenant_id = $1",
                    &[tenant.as_str().into()],
                )
                .await
            })
        })
        .await
    }

    /// Stores a tenant key unless one exists; returns the one in force (first writer wins).
    pub async fn insert_tenant_key(
        &self,
        tenant: &TenantId,
        master_key_id: i64,
        wrapped: &[u8],
    ) -> Result<(i64, Vec<u8>)> {
        let id = Value::from(tenant.as_str());
        let params = vec![id.clone(), master_key_id.into(), wrapped.into()];
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO tenant_keys (tenant_id, master_key_id, wrapped) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO NOTHING",
                    &params,
                )
                .await?;
                db.fetch_optional(
                    "SELECT master_key_id, wrapped FROM tenant_keys WHERE tenant_id = $1",
                    &[id],
                )
                .await?
                .ok_or_else(|| StoreError::Corrupt("tenant key vanished".into()))
            })
        })
        .await
    }

    /// Every tenant key with the id of the master key wrapping it.
    pub async fn all_tenant_keys(&self) -> Result<Vec<(TenantId, i64, Vec<u8>)>> {
        let rows: Vec<(String, i64, Vec<u8>)> = self
            .scan(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT tenant_id, master_key_id, wrapped FROM tenant_keys ORDER BY tenant_id",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(t, id, w)| {
                Ok((
                    parse_col("tenant_keys.tenant_id", &t, TenantId::parse)?,
                    id,
                    w,
                ))
            })
            .collect()
    }

    /// Replaces a tenant key's wrapping if it is still wrapped by `old_master` (safe to
    /// run twice, or beside another rotation).
    pub async fn rewrap_tenant_key(
        &self,
        tenant: &TenantId,
        old_master: i64,
        new_master: i64,
        wrapped: &[u8],
    ) -> Result<bool> {
        let params = vec![
            new_master.into(),
            wrapped.into(),
            tenant.as_str().into(),
            old_master.into(),
        ];
        let n = self
            .write(move |db| {
                Box::pin(async move {
                    db.execute(
                        "UPDATE tenant_keys SET master_key_id = $1, wrapped = $2 \
                         WHERE tenant_id = $3 AND master_key_id = $4",
                        &params,
                    )
                    .await
                })
            })
            .await?;
        Ok(n > 0)
    }

    pub async fn subject_key(&self, subject: &SubjectId) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT wrapped FROM subject_keys WHERE subject_id = $1",
                        &[subject.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Stores a subject key unless one exists; returns the one in force.
    pub async fn insert_subject_key(&self, subject: &SubjectId, wrapped: &[u8]) -> Result<Vec<u8>> {
        let id = Value::from(subject.as_str());
        let params = vec![id.clone(), wrapped.into()];
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO subject_keys (subject_id, wrapped) VALUES ($1, $2) \
                     ON CONFLICT (subject_id) DO NOTHING",
                    &params,
                )
                .await?;
                let (wrapped,): (Vec<u8>,) = db
                    .fetch_optional(
                        "SELECT wrapped FROM subject_keys WHERE subject_id = $1",
                        &[id],
                    )
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("subject key vanished".into()))?;
                Ok(wrapped)
            })
        })
        .await
    }

    /// Crypto-shreds a subject: deletes its data key, so every sealed copy of its fields
    /// (including backups) becomes unreadable. Returns whether a key existed.
    pub async fn shred_subject_key(&self, subject: &SubjectId) -> Result<bool> {
        let id = subject.as_str().to_owned();
        let n = self
            .write(move |db| {
                Box::pin(async move {
                    db.execute(
                        "DELETE FROM subject_keys WHERE subject_id = $1",
                        &[id.into()],
                    )
                    .await
                })
            })
            .await?;
        Ok(n > 0)
    }
}
