//! The outbox sender (issue 6; R34): sends due deletion notices to recipients as signed
//! webhooks and records each attempt's outcome, retrying with backoff until the
//! recipient acknowledges. Rows live in the database (`deliveries`), so a restart loses
//! nothing; each row's id is the idempotency key of every attempt, so a notice resent
//! after a crash (sent, but the outcome not yet recorded) is recognisable as the same one.
//!
//! Claims are leased, so several replicas can run a sender each without sending one
//! notice twice at the same time. Times come from the injected clock: tests move it to
//! make retries due.

use crate::state::AppState;
use anyhow::Context as _;
use std::time::Duration;
use tutela_core::delivery::{self, AttemptOutcome, DeliveryStatus};
use tutela_core::Clause;
use tutela_crypto::webhook::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use tutela_store::deliveries::{Delivery, DeliveryUpdate};
use tutela_store::AuditEntry;

/// The largest acknowledgement body read from a recipient.
const MAX_ACK_BODY: usize = 16 * 1024;

/// Runs until `stop` fires: wakes on new notices or every `outbox.poll_ms`.
pub async fn run(state: AppState, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let client = match client(&state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot build the webhook client; deletion notices are not sent"
            );
            return;
        }
    };
    let poll = Duration::from_millis(state.config.outbox.poll_ms.max(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = state.outbox_wake.notified() => {}
            _ = &mut stop => return,
        }
        loop {
            match send_due(&state, &client).await {
                Ok(n) if n >= usize::try_from(state.config.outbox.batch).unwrap_or(usize::MAX) => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "sending deletion notices failed; will retry"
                    );
                    break;
                }
            }
        }
    }
}

/// The HTTP client for webhooks (HTTPS through rustls with the process's ring provider).
pub fn client(state: &AppState) -> anyhow::Result<reqwest::Client> {
    http_client(Duration::from_millis(
        state.config.outbox.timeout_ms.max(100),
    ))
}

/// tutela's outgoing HTTP client (webhooks: deletion notices, the audit witness): the
/// process's ring TLS provider, no redirects, a bounded time per request.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tutela/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the webhook client")
}

/// Claims the notices due now and sends them concurrently; returns how many it claimed.
pub async fn send_due(state: &AppState, client: &reqwest::Client) -> anyhow::Result<usize> {
    let now = state.clock.now();
    // The lease outlives one attempt (timeout) with a wide margin.
    let lease = time::Duration::milliseconds(
        i64::try_from(state.config.outbox.timeout_ms).unwrap_or(i64::MAX / 4) * 3 + 60_000,
    );
    let claimed = state
        .store
        .claim_due_deliveries(now, now + lease, state.config.outbox.batch.max(1))
        .await?;
    let n = claimed.len();
    let mut set = tokio::task::JoinSet::new();
    for d in claimed {
        let (state, client) = (state.clone(), client.clone());
        set.spawn(async move {
            let id = d.id.clone();
            let r = attempt(&state, &client, d).await;
            if let Err(e) = &r {
                tracing::error!(delivery = %id, error = format!("{e:#}"), "a deletion notice attempt failed");
            }
            r.ok()
        });
    }
    // Every outcome of the round is recorded in one transaction.
    let mut updates = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        if let Ok(Some(u)) = r {
            updates.push(u);
        }
    }
    state.store.update_deliveries_audited(&updates).await?;
    Ok(n)
}

/// Whether a 2xx body acknowledges this delivery: JSON with `"acknowledged": true` and,
/// if it names one, the same idempotency key.
pub fn is_ack(body: &[u8], delivery: &str) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    v.get("acknowledged") == Some(&serde_json::Value::Bool(true))
        && v.get("idempotency_key")
            .is_none_or(|k| k.as_str() == Some(delivery))
}

/// Sends one notice; returns the update and audit entry to record.
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    d: Delivery,
) -> anyhow::Result<(String, DeliveryUpdate, AuditEntry)> {
    let recipient = state
        .store
        .recipient(&d.recipient)
        .await?
        .context("delivery names an unknown recipient")?;
    let (outcome, error) = match (&recipient.webhook_url, &recipient.webhook_secret) {
        (Some(url), Some(sealed)) => {
            let secret = state.vault.open_webhook_secret(&recipient.id, sealed)?;
            let ts = state.clock.now().unix_timestamp();
            let sent = client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, secret.sign(ts, d.body.as_bytes()))
                .header(IDEMPOTENCY_HEADER, &d.id)
                .body(d.body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    let acked = read_limited(resp)
                        .await
                        .is_some_and(|body| is_ack(&body, &d.id));
                    if acked {
                        (AttemptOutcome::Acknowledged, None)
                    } else {
                        (AttemptOutcome::Accepted, None)
                    }
                }
                Ok(resp) => (
                    AttemptOutcome::Failed,
                    Some(format!("http_{}", resp.status().as_u16())),
                ),
                Err(e) if e.is_timeout() => (AttemptOutcome::Failed, Some("timeout".to_owned())),
                Err(e) if e.is_connect() => (AttemptOutcome::Failed, Some("connect".to_owned())),
                Err(_) => (AttemptOutcome::Failed, Some("transport".to_owned())),
            }
        }
        // No endpoint (any more): the officer must settle it by hand.
        _ => (AttemptOutcome::Failed, Some("no_webhook".to_owned())),
    };
    let label = match outcome {
        AttemptOutcome::Acknowledged => "acknowledged",
        AttemptOutcome::Accepted => "accepted",
        AttemptOutcome::Failed => "failed",
    };
    state
        .metrics
        .webhook_attempts
        .get_or_create(&crate::metrics::OutcomeLabels { outcome: label })
        .inc();
    let now = state.clock.now();
    let after = delivery::after_attempt(
        d.status,
        d.attempts,
        outcome,
        now,
        state.config.outbox.backoff(),
    );
    let status = if error.as_deref() == Some("no_webhook") {
        DeliveryStatus::Manual
    } else {
        after.status
    };
    let update = DeliveryUpdate {
        status,
        attempts: after.attempts,
        next_attempt_at: after.next_attempt_at,
        last_error: error,
        acked_at: (status == DeliveryStatus::Acknowledged).then_some(now),
        waived_reason_sealed: None,
        at: now,
    };
    let audit = delivery_audit(
        &d,
        "system:outbox",
        "system",
        "deletion_notice_attempt",
        label,
        now,
    );
    Ok((d.id, update, audit))
}

async fn read_limited(mut resp: reqwest::Response) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        if out.len() + chunk.len() > MAX_ACK_BODY {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

/// The audit entry of something that happened to a delivery (ids only).
pub fn delivery_audit(
    d: &Delivery,
    token_id: &str,
    role: &str,
    action: &str,
    outcome: &str,
    at: time::OffsetDateTime,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: token_id.to_owned(),
        role: role.to_owned(),
        tenant: None,
        subject: d.subject.clone(),
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: if outcome == "failed" { "deny" } else { "allow" }.to_owned(),
        reason: format!("delivery:{}:{}:{outcome}", d.id, d.recipient),
        clause: Some(Clause::r(34).to_string()),
        seq: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_body_must_say_so_and_name_this_delivery() {
        assert!(is_ack(br#"{"acknowledged": true}"#, "dlv_1"));
        assert!(is_ack(
            br#"{"acknowledged": true, "idempotency_key": "dlv_1"}"#,
            "dlv_1"
        ));
        assert!(!is_ack(
            br#"{"acknowledged": true, "idempotency_key": "dlv_2"}"#,
            "dlv_1"
        ));
        assert!(!is_ack(br#"{"acknowledged": "yes"}"#, "dlv_1"));
        assert!(!is_ack(b"OK", "dlv_1"));
    }
}
