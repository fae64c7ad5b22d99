//! One-time identity codes (R35): a six-digit code sent to the subject's own contact
//! through the send gate, checked once, with a bounded number of wrong attempts.

use crate::error::Error;
use crate::requests::entry;
use crate::state::AppState;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tutela_core::contact::{ContactChannel, MessageKind};
use tutela_core::request::{RequestEvent, RequestStatus};
use tutela_core::{Actor, Clause};
use tutela_store::requests::StoredRequest;

/// How long a code works.
const CODE_VALID_MINUTES: i64 = 10;
/// Wrong codes allowed before the challenge is spent.
pub const CODE_MAX_ATTEMPTS: u32 = 5;

/// Sends a one-time code for request `r` to its subject through the send gate (R35), on
/// `channel`; stores the code's digest (the code itself only sealed in the message) and
/// audits both. Returns the message's id and when the code expires.
pub async fn issue(
    state: &AppState,
    actor: &Actor,
    r: &StoredRequest,
    channel: ContactChannel,
) -> Result<(String, OffsetDateTime), Error> {
    let (subject, tenant) = crate::subjects::subject_and_tenant(state, r.subject.as_str()).await?;
    let code = one_time_code()?;
    let message = crate::contact::gate(
        state,
        actor,
        &subject,
        tenant.state,
        (MessageKind::Service, channel),
        "identity-code",
        Some(("identity_code", Clause::r(35))),
    )
    .await?;
    if message.0.status != "queued" {
        return Err(Error::Conflict {
            code: "cannot_send",
            message: format!("the send gate refused the code ({})", message.0.reason),
            clause: Some(Clause::r(35)),
        });
    }
    let key = state
        .vault
        .subject_key(&state.store, &subject.tenant, &subject.id, true)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no data key after create")))?;
    let mut params = BTreeMap::new();
    params.insert("code".to_owned(), code.clone());
    let sealed = state.vault.seal_notes(
        &key,
        &subject.id,
        &format!("message:{}", message.0.id),
        &params,
    )?;
    let now = state.clock.now();
    let expires_at = now + time::Duration::minutes(CODE_VALID_MINUTES);
    let challenge = tutela_store::requests::Challenge {
        request: r.id.clone(),
        channel: channel.to_string(),
        code_digest: state.vault.code_digest(&r.id, &code)?,
        message: message.0.id.clone(),
        attempts: 0,
        expires_at,
        created_at: now,
    };
    let issued = entry(actor, r, "identity_code_sent", None, Clause::r(35), now);
    state
        .store
        .insert_challenge_audited(&challenge, &message.0, &sealed, &[message.1, issued])
        .await?;
    Ok((message.0.id, expires_at))
}

/// Six random digits, uniformly (rejection sampling over a random u32).
fn one_time_code() -> Result<String, Error> {
    loop {
        let bytes: [u8; 4] =
            tutela_crypto::random_bytes().map_err(|e| Error::Internal(e.into()))?;
        let n = u32::from_be_bytes(bytes);
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Checks a presented code (R35): `Ok(message id)` when it matches; a wrong, expired or
/// exhausted code is an error that says which, and counts the attempt.
pub async fn check(
    state: &AppState,
    actor: &Actor,
    r: &StoredRequest,
    code: &str,
) -> Result<String, Error> {
    let challenge = state
        .store
        .challenge(&r.id)
        .await?
        .ok_or_else(|| Error::Conflict {
            code: "no_identity_code",
            message: "no identity code was sent for this request; ask for one first".into(),
            clause: Some(Clause::r(35)),
        })?;
    let now = state.clock.now();
    if now >= challenge.expires_at {
        state.store.delete_challenge(&r.id).await?;
        return Err(Error::Gone {
            code: "identity_code_expired",
            message: "the identity code has expired; ask for a new one".into(),
        });
    }
    if challenge.attempts >= CODE_MAX_ATTEMPTS {
        state.store.delete_challenge(&r.id).await?;
        return Err(too_many());
    }
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    if well_formed
        && state
            .vault
            .code_matches(&r.id, code, &challenge.code_digest)
    {
        state.store.delete_challenge(&r.id).await?;
        return Ok(challenge.message);
    }
    let mut a = entry(actor, r, "identity_code_wrong", None, Clause::r(35), now);
    a.decision = "deny".into();
    let attempts = state.store.count_challenge_attempt(&r.id, &a).await?;
    if attempts >= CODE_MAX_ATTEMPTS {
        state.store.delete_challenge(&r.id).await?;
        return Err(too_many());
    }
    Err(Error::Invalid {
        code: "wrong_identity_code",
        message: format!(
            "the identity code does not match; {} attempt(s) left",
            CODE_MAX_ATTEMPTS - attempts
        ),
        clause: Some(Clause::r(35)),
    })
}

fn too_many() -> Error {
    Error::Conflict {
        code: "identity_code_exhausted",
        message: "too many wrong codes; ask for a new one".into(),
        clause: Some(Clause::r(35)),
    }
}

/// The requester presents the code it received (R35): a match verifies its identity and
/// moves the request on; a wrong, expired or exhausted code says which. Returns the
/// request as stored afterwards.
pub async fn verify(
    state: &AppState,
    actor: &Actor,
    id: &str,
    code: &str,
) -> Result<StoredRequest, Error> {
    let r = crate::requests::visible(state, actor, id).await?;
    if !crate::requests::is_requester(actor, &r) {
        return Err(Error::forbidden_role(
            "present another person's identity code",
        ));
    }
    if r.status != RequestStatus::Received {
        return Err(Error::Conflict {
            code: "request_state",
            message: format!("a request that is {} cannot be verified", r.status),
            clause: Some(Clause::r(35)),
        });
    }
    let message = check(state, actor, &r, code).await?;
    let r = crate::requests::step(
        state,
        actor,
        r,
        RequestEvent::VerifyIdentity,
        "request_verify",
        |u, _| {
            u.verification_method = Some("one_time_code".to_owned());
            u.verification_ref = Some(message);
        },
    )
    .await?;
    Ok(r)
}
