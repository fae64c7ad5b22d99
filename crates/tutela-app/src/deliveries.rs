//! Deletion notices after they are queued (R34): a recipient's signed acknowledgement and
//! the privacy officer's waiver. Sending them is the outbox's (`crate::outbox`).

use crate::error::Error;
use crate::outbox::delivery_audit;
use crate::requests::{visible, waiver_scope};
use crate::state::AppState;
use tutela_core::delivery::DeliveryStatus;
use tutela_core::{Actor, Clause};
use tutela_store::deliveries::DeliveryUpdate;
use tutela_store::requests::StoredRequest;

/// Records a recipient's acknowledgement of delivery `idempotency_key` (of `request`,
/// when the route names one), authenticated by `signature` (the `Tutela-Signature`
/// header) over `body` under the recipient's webhook secret. Acknowledging twice is
/// fine; a waived notice is a conflict. Returns the delivery's id.
pub async fn acknowledge(
    state: &AppState,
    request: Option<&str>,
    recipient_id: &str,
    idempotency_key: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<String, Error> {
    let bad_signature = || Error::Forbidden {
        code: "invalid_signature",
        message:
            "the Tutela-Signature header does not verify under this recipient's webhook secret"
                .into(),
        clause: Some(Clause::r(34)),
    };
    // One answer for every unknown or mismatched id: nothing to learn by probing. No id
    // holds a NUL character (and PostgreSQL could not even compare one).
    if idempotency_key.contains('\0') || recipient_id.contains('\0') {
        return Err(Error::not_found("delivery"));
    }
    let d = state
        .store
        .delivery(idempotency_key)
        .await?
        .filter(|d| request.is_none_or(|r| d.request.as_deref() == Some(r)))
        .filter(|d| d.recipient == recipient_id)
        .ok_or_else(|| Error::not_found("delivery"))?;
    let recipient = state
        .store
        .recipient(&d.recipient)
        .await?
        .ok_or_else(|| Error::not_found("delivery"))?;
    let sealed = recipient
        .webhook_secret
        .as_ref()
        .ok_or_else(bad_signature)?;
    let secret = state.vault.open_webhook_secret(&recipient.id, sealed)?;
    let header = signature.ok_or_else(bad_signature)?;
    secret
        .verify(
            header,
            body,
            state.clock.now().unix_timestamp(),
            i64::from(state.config.outbox.ack_tolerance_secs),
        )
        .map_err(|_| bad_signature())?;
    if d.status != DeliveryStatus::Acknowledged {
        let now = state.clock.now();
        let update = DeliveryUpdate {
            status: DeliveryStatus::Acknowledged,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error.clone(),
            acked_at: Some(now),
            waived_reason_sealed: None,
            at: now,
        };
        let audit = delivery_audit(
            &d,
            &format!("recipient:{}", recipient.id),
            "recipient",
            "deletion_acknowledged",
            "acknowledged",
            now,
        );
        let changed = state
            .store
            .update_delivery_audited(&d.id, &update, &audit)
            .await?;
        if !changed && d.status == DeliveryStatus::Waived {
            return Err(Error::Conflict {
                code: "delivery_waived",
                message: "the privacy officer already closed this notice".into(),
                clause: Some(Clause::r(34)),
            });
        }
    }
    Ok(d.id)
}

/// The officer records why `recipient` cannot acknowledge request `id`'s notice (R34);
/// the reason is sealed under the tenant key (R29). Returns the request.
pub async fn waive(
    state: &AppState,
    actor: &Actor,
    id: &str,
    recipient: &str,
    reason: &str,
) -> Result<StoredRequest, Error> {
    let r = visible(state, actor, id).await?;
    let d = state
        .store
        .deliveries_of(&r.id)
        .await?
        .into_iter()
        .find(|d| d.recipient == recipient)
        .ok_or_else(|| Error::not_found("delivery for this recipient"))?;
    let now = state.clock.now();
    // Free text from the officer may name people: sealed under the tenant key (R29).
    let sealed = state
        .vault
        .seal_tenant_text(&state.store, &r.tenant, &waiver_scope(&d.id), reason)
        .await?;
    let update = DeliveryUpdate {
        status: DeliveryStatus::Waived,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_error: d.last_error.clone(),
        acked_at: None,
        waived_reason_sealed: Some(sealed),
        at: now,
    };
    let audit = delivery_audit(
        &d,
        &actor.token().to_string(),
        actor.role().as_str(),
        "deletion_notice_waived",
        "waived",
        now,
    );
    if !state
        .store
        .update_delivery_audited(&d.id, &update, &audit)
        .await?
    {
        return Err(Error::Conflict {
            code: "delivery_settled",
            message: format!("this recipient's notice is already {}", d.status),
            clause: Some(Clause::r(34)),
        });
    }
    Ok(r)
}
