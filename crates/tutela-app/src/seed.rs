//! Bulk seeding through the store's import path, for benchmarks and crash tests: a tenant
//! with many subjects, each with sealed records under its own key and an audit entry per
//! record. Nothing here bypasses encryption or auditing; it only batches the writes.

use crate::state::AppState;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tutela_core::tenant::{SubjectKind, TenantKind, TenantName, TenantState};
use tutela_core::{Category, SubjectId, TenantId};
use tutela_store::subjects::Subject;
use tutela_store::tenants::{StoredName, Tenant};
use tutela_store::{AuditEntry, SealedRecord};

/// Subjects per import transaction.
const CHUNK: usize = 5_000;

/// What to create.
#[derive(Debug, Clone)]
pub struct SeedSpec {
    pub subjects: usize,
    /// The tenant's lifecycle state and dates.
    pub state: TenantState,
    pub closed_at: Option<OffsetDateTime>,
    pub frozen_until: Option<OffsetDateTime>,
    /// Records every subject gets: (category, service, fields).
    pub records: Vec<(Category, String, BTreeMap<String, String>)>,
}

/// Creates the tenant and its subjects; returns the tenant and the subject ids.
pub async fn tenant_with_subjects(
    state: &AppState,
    spec: &SeedSpec,
) -> anyhow::Result<(TenantId, Vec<SubjectId>)> {
    let now = state.clock.now();
    let tenant = Tenant {
        id: crate::ids::tenant(),
        name: StoredName::Clear(TenantName::parse("Seeded Co")?),
        kind: TenantKind::Enterprise,
        state: spec.state,
        created_at: now,
        frozen_until: spec.frozen_until,
        trial_ends_at: None,
        closed_at: spec.closed_at,
    };
    let tenant = state
        .vault
        .insert_tenant(&state.store, tenant, None)
        .await?;
    let mut ids = Vec::with_capacity(spec.subjects);
    let mut left = spec.subjects;
    while left > 0 {
        let n = left.min(CHUNK);
        left -= n;
        let subjects: Vec<Subject> = (0..n)
            .map(|_| Subject {
                id: crate::ids::subject(),
                tenant: tenant.id.clone(),
                kind: SubjectKind::EndUser,
                adult_on: None,
                created_at: now,
                erased_at: None,
                frozen_until: None,
                frozen_ground: None,
            })
            .collect();
        state.store.insert_subjects(&subjects).await?;
        let mut keys = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n * spec.records.len());
        let mut audit = Vec::with_capacity(n * spec.records.len());
        for s in &subjects {
            let (key, wrapped) = state
                .vault
                .fresh_subject_key(&state.store, &tenant.id, &s.id)
                .await?;
            keys.push((s.id.clone(), wrapped));
            for (category, service, fields) in &spec.records {
                records.push(SealedRecord {
                    subject: s.id.clone(),
                    category: *category,
                    version: 1,
                    service: service.clone(),
                    fields: state.vault.seal_fields(&key, &s.id, *category, 1, fields)?,
                    updated_at: now,
                });
                audit.push(AuditEntry {
                    id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
                    at: now,
                    token_id: "system:import".into(),
                    role: "system".into(),
                    tenant: Some(tenant.id.to_string()),
                    subject: Some(s.id.to_string()),
                    category: Some(category.to_string()),
                    purpose: None,
                    action: "import".into(),
                    decision: "allow".into(),
                    reason: "seed".into(),
                    clause: Some("R29".into()),
                    seq: None,
                });
            }
        }
        state.store.import_records(&keys, &records, &audit).await?;
        ids.extend(subjects.into_iter().map(|s| s.id));
    }
    Ok((tenant.id, ids))
}
