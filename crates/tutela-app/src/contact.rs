//! The send gate (issue 4; R9, R15): every outgoing message is decided by
//! `tutela_core::contact::may_send`, recorded (queued or suppressed) and audited. Other
//! workflows send the service notices they owe a subject through here.

use crate::error::Error;
use crate::state::AppState;
use tutela_core::contact::{self, ContactChannel, MessageKind};
use tutela_core::{Actor, Clause};
use tutela_store::contact::Message;
use tutela_store::subjects::Subject;
use tutela_store::vault::AuditEntry;

/// Sends a service notice (R9: never turned off while the service is used) to a subject
/// through the send gate, and records and audits it. Returns the message id. Used for
/// the notices other workflows owe the subject: disclosures (R23), complaints, request
/// extensions (R35).
pub async fn send_service_notice(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    template: &str,
    clause: Clause,
) -> Result<String, Error> {
    let tenant = state
        .cache
        .tenant(&state.store, &subject.tenant)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("subject without tenant")))?;
    let message = pass_gate(
        state,
        actor,
        subject,
        tenant.state,
        (MessageKind::Service, ContactChannel::Email),
        template,
        Some((template, clause)),
    )
    .await?;
    Ok(message.id)
}

/// The send gate itself: decides one message with `contact::may_send`, stores it
/// (queued or suppressed) and its audit entry together. `notice` = (audit reason,
/// clause) for notices another workflow owes the subject; `None` records the gate's own.
pub async fn pass_gate(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    tenant_state: tutela_core::tenant::TenantState,
    kind_channel: (MessageKind, ContactChannel),
    template: &str,
    notice: Option<(&str, Clause)>,
) -> Result<Message, Error> {
    let (message, audit) = gate(
        state,
        actor,
        subject,
        tenant_state,
        kind_channel,
        template,
        notice,
    )
    .await?;
    state.store.insert_message_audited(&message, &audit).await?;
    Ok(message)
}

/// The gate's decision on one message, as the message row and its audit entry, for a
/// caller that stores them with something else (a one-time code's challenge).
pub async fn gate(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    tenant_state: tutela_core::tenant::TenantState,
    (kind, channel): (MessageKind, ContactChannel),
    template: &str,
    notice: Option<(&str, Clause)>,
) -> Result<(Message, AuditEntry), Error> {
    let prefs = state.store.preferences_of(&subject.id).await?;
    let d = contact::may_send(kind, channel, &prefs, tenant_state);
    let (reason, clause) = notice.unwrap_or((d.reason, d.clause));
    let now = state.clock.now();
    let message = Message {
        id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
        subject: subject.id.clone(),
        kind,
        channel,
        template: template.to_owned(),
        status: if d.send { "queued" } else { "suppressed" }.to_owned(),
        reason: d.reason.to_owned(),
        clause: clause.to_string(),
        created_at: now,
    };
    let audit = AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at: now,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(subject.tenant.to_string()),
        subject: Some(subject.id.to_string()),
        category: None,
        purpose: Some(format!("{kind}:{channel}")),
        action: "send_message".to_owned(),
        decision: if d.send { "allow" } else { "deny" }.to_owned(),
        reason: reason.to_owned(),
        clause: Some(clause.to_string()),
        seq: None,
    };
    Ok((message, audit))
}
