//! Erasure of a data subject for a delete request (issue 6; R19, R33, R34): the pure plan
//! (`tutela_core::erasure`) keeps only what the law holds, frozen; the kept records and
//! the request's notes are re-sealed under a fresh key, the old key is shredded, and a
//! signed notice is queued for every recipient, all in one transaction
//! (`tutela_store::erasure`). The outbox (`crate::outbox`) delivers the notices.

use crate::error::Error;
use crate::outbox::delivery_audit;
use crate::requests::{entry, visible};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use tutela_core::delivery::{recipients_to_notify, RecipientScope};
use tutela_core::request::{RequestStatus, RequestType};
use tutela_core::{erasure, Actor, Category, Clause, Role};
use tutela_store::deliveries::Delivery;
use tutela_store::erasure::Erasure;
use tutela_store::requests::StoredRequest;
use tutela_store::StoreError;

/// The body of a deletion notice: ids and vocabulary, never a personal data value.
/// (`tutela-server` documents the same shape in its OpenAPI document.)
#[derive(Debug, Serialize, Deserialize)]
pub struct DeletionNotice {
    /// Always `deletion`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The delivery id, also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub request: String,
    pub tenant: String,
    pub subject: String,
    /// The subject's categories this recipient is registered for.
    pub categories: Vec<String>,
    pub erased_at: String,
    /// Where to acknowledge (or answer 2xx with `{"acknowledged": true}`).
    pub ack_url: String,
    pub clause: String,
}

/// Erases the subject of delete request `id` (privacy officer only; the request must be
/// in progress: identity verified, consequences confirmed, started). Returns the request
/// as stored afterwards (its notes re-sealed under the new key).
pub async fn erase(state: &AppState, actor: &Actor, id: &str) -> Result<StoredRequest, Error> {
    if actor.role() != Role::PrivacyOfficer {
        return Err(Error::forbidden_role("erase a subject's data"));
    }
    let r = visible(state, actor, id).await?;
    if r.kind != RequestType::Delete || r.status != RequestStatus::InProgress {
        return Err(Error::Conflict {
            code: "request_state",
            message: "only a delete request in progress (identity verified, consequences confirmed, started) is erased".into(),
            clause: Some(Clause::r(33)),
        });
    }
    let subject = state
        .cache
        .subject(&state.store, &r.subject)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("request without subject")))?;
    if subject.erased_at.is_some() {
        return Err(already_erased());
    }
    let now = state.clock.now();
    let records = state.store.records_with_keys_of(&subject.id).await?;
    let present: Vec<Category> = records.iter().map(|(rec, _)| rec.category).collect();
    let plan = erasure::plan(&state.policy, &present, now);

    // What is kept is re-sealed under a fresh key; the old key is then shredded.
    let (new_key, wrapped) = state
        .vault
        .fresh_subject_key(&state.store, &subject.tenant, &subject.id)
        .await?;
    let mut resealed = Vec::new();
    for (rec, chain) in &records {
        if plan.keep.iter().any(|h| h.category == rec.category) {
            let old = state
                .vault
                .open_key_chain(&subject.tenant, &subject.id, chain)?;
            let fields = state.vault.open_fields(
                &old,
                &subject.id,
                rec.category,
                rec.version,
                &rec.fields,
            )?;
            let sealed = state.vault.seal_fields(
                &new_key,
                &subject.id,
                rec.category,
                rec.version,
                &fields,
            )?;
            resealed.push((rec.category, rec.version, sealed));
        }
    }
    // The request's own correspondence follows the new key.
    let notes = crate::requests::open_notes(state, &r).await?;
    let request_notes = if notes.is_empty() {
        None
    } else {
        Some(state.vault.seal_notes(
            &new_key,
            &subject.id,
            &crate::requests::scope_of(&r),
            &notes,
        )?)
    };

    // Who must hear of it: the register, and processors configured for the categories.
    let transferred = state.store.transfer_recipients_of(&subject.id).await?;
    let recipients = state.store.recipients().await?;
    let scopes: Vec<RecipientScope<'_>> = recipients
        .iter()
        .map(|x| RecipientScope {
            id: &x.id,
            categories: &x.categories,
        })
        .collect();
    let notify = recipients_to_notify(transferred.iter().map(String::as_str), &scopes, &present);
    let ack_url = format!(
        "{}/v1/requests/{}/acks",
        state.config.links_base_url(),
        r.id
    );
    let mut deliveries = Vec::new();
    for rid in notify {
        let Some(rcp) = recipients.iter().find(|x| x.id == rid) else {
            continue;
        };
        let delivery_id = format!("dlv_{}", uuid::Uuid::now_v7().simple());
        let mut categories: Vec<String> = present
            .iter()
            .filter(|c| rcp.categories.contains(c))
            .map(ToString::to_string)
            .collect();
        if categories.is_empty() {
            categories = present.iter().map(ToString::to_string).collect();
        }
        let body = serde_json::to_string(&DeletionNotice {
            kind: "deletion".into(),
            idempotency_key: delivery_id.clone(),
            request: r.id.clone(),
            tenant: subject.tenant.to_string(),
            subject: subject.id.to_string(),
            categories,
            erased_at: crate::rfc3339(now),
            ack_url: ack_url.clone(),
            clause: Clause::r(34).to_string(),
        })
        .map_err(|e| Error::Internal(e.into()))?;
        let sendable = rcp.webhook_url.is_some() && rcp.webhook_secret.is_some();
        deliveries.push(Delivery::queued(
            delivery_id,
            Some(r.id.clone()),
            &rcp.id,
            sendable,
            Some(subject.id.to_string()),
            body,
            now,
        ));
    }

    let mut audit = vec![entry(actor, &r, "erase_subject", None, Clause::r(33), now)];
    for c in &plan.delete {
        audit.push(entry(
            actor,
            &r,
            "erase_category",
            Some(*c),
            Clause::r(33),
            now,
        ));
    }
    for h in &plan.keep {
        audit.push(entry(
            actor,
            &r,
            "freeze_category",
            Some(h.category),
            Clause::r(19),
            now,
        ));
    }
    for d in &deliveries {
        audit.push(delivery_audit(
            d,
            &actor.token().to_string(),
            actor.role().as_str(),
            "deletion_notice_queued",
            d.status.as_str(),
            now,
        ));
    }
    let ground = plan.ground();
    let result = state
        .store
        .erase_subject(&Erasure {
            subject: &subject.id,
            delete: &plan.delete,
            resealed: &resealed,
            new_key: &wrapped,
            request_notes: request_notes
                .as_deref()
                .map(|sealed| (r.id.as_str(), sealed)),
            erased_at: now,
            frozen_until: plan.frozen_until(),
            frozen_ground: ground.as_deref(),
            deliveries: &deliveries,
            audit: &audit,
        })
        .await;
    match result {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(already_erased()),
        Err(e) => return Err(e.into()),
    }
    state.cache.forget_subject(&subject.id);
    state.outbox_wake.notify_one();
    tracing::info!(request = %r.id, deleted = plan.delete.len(), kept = plan.keep.len(), recipients = deliveries.len(), "subject erased");
    // Its notes were re-sealed under the new key: the row as stored now.
    visible(state, actor, id).await
}

/// The subject's data is already gone (R33).
pub fn already_erased() -> Error {
    Error::Conflict {
        code: "already_erased",
        message: "this subject's data was already erased".into(),
        clause: Some(Clause::r(33)),
    }
}
