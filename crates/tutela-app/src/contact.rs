//! The send gate (issue 4; R9, R15): every outgoing message is decided by
//! `tutela_core::contact::may_send`, recorded (queued or suppressed) and audited. Other
//! workflows send the service notices they owe a subject through here.

use crate::error::Error;
use crate::state::AppState;
use std::collections::BTreeMap;
use tutela_core::contact::{self, ContactChannel, MessageKind, PreferenceTopic, Preferences};
use tutela_core::{Actor, Clause};
use tutela_crypto::link::LinkError;
use tutela_store::contact::Message;
use tutela_store::subjects::Subject;
use tutela_store::AuditEntry;

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
async fn pass_gate(
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

/// The purpose an unsubscribe link is signed for.
pub const UNSUBSCRIBE: &str = "unsub";

/// Applies preference changes (topic, channel, on) for `subject`; only real changes are
/// written, each audited (R9, R15). Returns the preferences as stored now.
pub async fn set_preferences(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    changes: Vec<(PreferenceTopic, ContactChannel, bool)>,
) -> Result<Preferences, Error> {
    let now = state.clock.now();
    let mut current = state.store.preferences_of(&subject.id).await?;
    // Only real changes are written (and audited).
    let rows: Vec<_> = changes
        .into_iter()
        .filter(|(t, c, on)| current.get(&(*t, *c)).copied().unwrap_or(false) != *on)
        .map(|(t, c, on)| {
            let audit = preference_audit(
                actor.token().to_string(),
                actor.role().to_string(),
                subject,
                t,
                c,
                on,
                now,
            );
            (t, c, on, audit)
        })
        .collect();
    if !rows.is_empty() {
        state
            .store
            .set_preferences_audited(&subject.id, &rows, "api", now)
            .await?;
    }
    // The stored state now is the old one with these changes applied.
    for (t, c, on, _) in rows {
        current.insert((t, c), on);
    }
    Ok(current)
}

/// A service sends a message to a subject (R9, R15): the gate decides, the message and
/// its audit entry are stored, and promotional e-mail that goes out carries a signed
/// unsubscribe link. Returns the message and that link.
pub async fn send(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    kind: MessageKind,
    channel: ContactChannel,
    template: &str,
) -> Result<(Message, Option<String>), Error> {
    let (subject, tenant) = crate::subjects::subject_and_tenant(state, raw_subject).await?;
    let message = pass_gate(
        state,
        actor,
        &subject,
        tenant.state,
        (kind, channel),
        template,
        None,
    )
    .await?;
    let now = message.created_at;
    let unsubscribe_url = match (message.status == "queued", kind.topic(), channel) {
        (true, Some(topic), ContactChannel::Email) => {
            let days = i64::from(state.config.links.unsubscribe_valid_days);
            let expires = (now + time::Duration::days(days)).unix_timestamp();
            let token = state.vault.sign_link(
                UNSUBSCRIBE,
                &[subject.id.as_str(), topic.as_str(), channel.as_str()],
                expires,
            )?;
            Some(format!("{}/u/{token}", state.config.links_base_url()))
        }
        _ => None,
    };
    Ok((message, unsubscribe_url))
}

/// A message and its opened parameters for the delivery system: a service scoped to
/// service communications (the caller checked both, R9, R29). Reading parameters (a
/// one-time code, R35) is audited.
pub async fn message_for_delivery(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(Message, BTreeMap<String, String>), Error> {
    let (message, sealed) = state
        .store
        .message_with_params(id)
        .await?
        .ok_or_else(|| Error::not_found("message"))?;
    let subject = state
        .cache
        .subject(&state.store, &message.subject)
        .await?
        .ok_or_else(|| Error::not_found("message"))?;
    let mut params = BTreeMap::new();
    if let Some(sealed) = sealed {
        // A shredded key leaves nothing to open (the message died with the data).
        if let Some(key) = state
            .vault
            .subject_key(&state.store, &subject.tenant, &subject.id, false)
            .await?
        {
            params = state.vault.open_notes(
                &key,
                &subject.id,
                &format!("message:{}", message.id),
                &sealed,
            )?;
            let now = state.clock.now();
            state
                .audit_writer
                .append(AuditEntry {
                    id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
                    at: now,
                    token_id: actor.token().to_string(),
                    role: actor.role().to_string(),
                    tenant: Some(subject.tenant.to_string()),
                    subject: Some(subject.id.to_string()),
                    category: None,
                    purpose: Some(format!("{}:{}", message.kind, message.channel)),
                    action: "message_params_read".to_owned(),
                    decision: "allow".to_owned(),
                    reason: format!("message:{}", message.id),
                    clause: Some(message.clause.clone()),
                    seq: None,
                })
                .await?;
        }
    }
    Ok((message, params))
}

/// Records the opt-out an unsubscribe link names (without login), audited as the link's.
pub async fn opt_out(state: &AppState, link: &Unsubscribe) -> Result<(), Error> {
    let now = state.clock.now();
    let audit = preference_audit(
        "link".to_owned(),
        "subject_link".to_owned(),
        &link.subject,
        link.topic,
        link.channel,
        false,
        now,
    );
    state
        .store
        .set_preferences_audited(
            &link.subject.id,
            &[(link.topic, link.channel, false, audit)],
            "unsubscribe_link",
            now,
        )
        .await?;
    Ok(())
}

/// What a valid unsubscribe token names.
pub struct Unsubscribe {
    pub subject: Subject,
    pub topic: PreferenceTopic,
    pub channel: ContactChannel,
}

/// Reads an unsubscribe token: the inner result is the link's own verdict (forged,
/// expired, naming nothing), the outer one a failure to check it.
pub async fn read_link(
    state: &AppState,
    token: &str,
) -> Result<Result<Unsubscribe, LinkError>, Error> {
    let now = state.clock.now().unix_timestamp();
    let fields = match state.vault.verify_link(UNSUBSCRIBE, token, now)? {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let [subject, topic, channel] = fields.as_slice() else {
        return Ok(Err(LinkError::Invalid));
    };
    let parsed = (
        tutela_core::SubjectId::parse(subject),
        PreferenceTopic::parse(topic),
        ContactChannel::parse(channel),
    );
    let (Ok(id), Ok(topic), Ok(channel)) = parsed else {
        return Ok(Err(LinkError::Invalid));
    };
    match state.store.subject(&id).await? {
        Some(subject) => Ok(Ok(Unsubscribe {
            subject,
            topic,
            channel,
        })),
        None => Ok(Err(LinkError::Invalid)),
    }
}

fn preference_audit(
    actor_token: String,
    actor_role: String,
    subject: &Subject,
    topic: PreferenceTopic,
    channel: ContactChannel,
    on: bool,
    at: time::OffsetDateTime,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor_token,
        role: actor_role,
        tenant: Some(subject.tenant.to_string()),
        subject: Some(subject.id.to_string()),
        category: None,
        purpose: Some(format!("{topic}:{channel}")),
        action: if on {
            "preference_on"
        } else {
            "preference_off"
        }
        .to_owned(),
        decision: "allow".to_owned(),
        reason: "contact_preference".to_owned(),
        clause: Some(
            match topic {
                PreferenceTopic::Marketing => Clause::r(9),
                PreferenceTopic::Surveys => Clause::r(15),
            }
            .to_string(),
        ),
        seq: None,
    }
}
