//! Access requests fulfilled (issue 6; R33, R35): the signed, short-lived, single-use
//! download link, and opening it: the subject's data across categories, consents,
//! preferences, transfers and the audit entries about them. The link is consumed in the
//! same transaction that audits the download, before anything leaves; every refused
//! attempt on a genuine link is audited. This is the one reader of personal data besides
//! `records::read_record`: it serves the subject's own right of access, not a purpose.

use crate::error::Error;
use crate::state::AppState;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use tutela_core::contact::Preferences;
use tutela_core::request::{RequestStatus, RequestType};
use tutela_core::{Actor, Clause, Role};
use tutela_store::consents::ConsentEntry;
use tutela_store::requests::{ExportLink as StoredLink, StoredRequest};
use tutela_store::sharing::{Transfer, TransferFilter};
use tutela_store::subjects::Subject;
use tutela_store::{AuditEntry, SealedRecord};

/// The purpose export links are signed for.
const EXPORT: &str = "export";

/// Prepares the download link of an access request in progress (privacy officer only,
/// R35) and tells the subject it is ready. Returns the signed token and its expiry.
pub async fn prepare(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(String, OffsetDateTime), Error> {
    if actor.role() != Role::PrivacyOfficer {
        return Err(Error::forbidden_role("prepare access exports"));
    }
    let r = state
        .store
        .request(id)
        .await?
        .ok_or_else(|| Error::not_found("request"))?;
    if r.kind != RequestType::Access || r.status != RequestStatus::InProgress {
        return Err(Error::Conflict {
            code: "request_state",
            message:
                "an export is prepared for an access request in progress (identity verified, R35)"
                    .into(),
            clause: Some(Clause::r(35)),
        });
    }
    let now = state.clock.now();
    let expires =
        now + Duration::minutes(i64::from(state.config.links.export_valid_minutes.max(1)));
    let link = StoredLink {
        id: format!("exl_{}", uuid::Uuid::now_v7().simple()),
        request_id: r.id.clone(),
        created_by: actor.token().to_string(),
        created_at: now,
        expires_at: expires,
        used_at: None,
        used_by: None,
    };
    let token = state.vault.sign_link(
        EXPORT,
        &[r.id.as_str(), link.id.as_str()],
        expires.unix_timestamp(),
    )?;
    state.store.insert_export_link(&link).await?;
    let subject = state
        .cache
        .subject(&state.store, &r.subject)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("request without subject")))?;
    crate::contact::send_service_notice(
        state,
        actor,
        &subject,
        "access-export-ready",
        Clause::r(33),
    )
    .await?;
    Ok((token, expires))
}

/// What an opened download link hands out, assembled now (nothing is written to disk).
#[derive(Debug)]
pub struct Opened {
    pub request: StoredRequest,
    pub now: OffsetDateTime,
    pub subject: Subject,
    /// Each record with its opened fields.
    pub records: Vec<(SealedRecord, BTreeMap<String, String>)>,
    pub consents: Vec<ConsentEntry>,
    pub preferences: Preferences,
    pub transfers: Vec<Transfer>,
    pub audit: Vec<AuditEntry>,
}

/// Opens a download link, once: verifies it, checks that a signed-in caller is the
/// requester (R29), refuses an expired or used link (audited), opens the records, and
/// consumes the link with the per-category audit entries in one transaction before
/// returning the data.
pub async fn open(state: &AppState, actor: Option<&Actor>, token: &str) -> Result<Opened, Error> {
    let now = state.clock.now();
    // The signature alone (expiry aside) says which request and link this is.
    let fields = match state.vault.verify_link(EXPORT, token, i64::MIN)? {
        Ok(f) => f,
        Err(_) => {
            tracing::warn!("a download link that does not verify was presented");
            return Err(Error::not_found("download"));
        }
    };
    let [request_id, link_id] = fields.as_slice() else {
        return Err(Error::not_found("download"));
    };
    let r = state
        .store
        .request(request_id)
        .await?
        .ok_or_else(|| Error::not_found("download"))?;
    if let Some(a) = actor {
        if !crate::requests::is_requester(a, &r) {
            return refuse(
                state,
                actor,
                &r,
                link_id,
                "not_requester",
                Error::Forbidden {
                    code: "not_requester",
                    message: "signed in, this link works only for who asked for the export".into(),
                    clause: Some(Clause::r(29)),
                },
            )
            .await;
        }
    }
    // A genuine link always has its row (stored before the URL was handed out); the row
    // knows the expiry the token signs, so the token is checked once.
    let Some(link) = state.store.export_link(link_id).await? else {
        return Err(Error::not_found("download"));
    };
    if now.unix_timestamp() > link.expires_at.unix_timestamp() {
        return refuse(
            state,
            actor,
            &r,
            link_id,
            "link_expired",
            Error::Gone {
                code: "link_expired",
                message: "this download link has expired; ask for a new one".into(),
            },
        )
        .await;
    }
    if link.used_at.is_some() {
        return refuse(state, actor, &r, link_id, "link_used", link_used()).await;
    }
    let subject = state
        .store
        .subject(&r.subject)
        .await?
        .ok_or_else(|| Error::not_found("download"))?;
    let mut records = Vec::new();
    let sealed = state.store.records_with_keys_of(&subject.id).await?;
    for (record, chain) in &sealed {
        let key = state
            .vault
            .open_key_chain(&subject.tenant, &subject.id, chain)?;
        let fields = state.vault.open_fields(
            &key,
            &subject.id,
            record.category,
            record.version,
            &record.fields,
        )?;
        records.push((record.clone(), fields));
    }
    // The link is spent and each category read is on record, together, before anything
    // leaves; with no records the download itself is still audited.
    let mut entries: Vec<AuditEntry> = records
        .iter()
        .map(|rec| {
            link_audit(
                actor,
                &r,
                link_id,
                Some(rec.0.category.to_string()),
                "allow",
                "download",
                now,
            )
        })
        .collect();
    if entries.is_empty() {
        entries.push(link_audit(
            actor, &r, link_id, None, "allow", "download", now,
        ));
    }
    let used_by = actor.map_or_else(|| "link".to_owned(), |a| a.token().to_string());
    if !state
        .store
        .consume_export_link_audited(link_id, now, &used_by, &entries)
        .await?
    {
        return refuse(state, actor, &r, link_id, "link_used", link_used()).await;
    }
    let consents = state.store.consents_of(&subject.id).await?;
    let prefs = state.store.preferences_of(&subject.id).await?;
    let transfers = state
        .store
        .transfers(&TransferFilter {
            subject: Some(subject.id.clone()),
            limit: 100_000,
            ..TransferFilter::default()
        })
        .await?;
    let audit = state.store.audit_for_subject(subject.id.as_str()).await?;
    Ok(Opened {
        request: r,
        now,
        subject,
        records,
        consents,
        preferences: prefs,
        transfers,
        audit,
    })
}

/// One audit entry about a download (or a refused attempt) of `link`.
fn link_audit(
    actor: Option<&Actor>,
    r: &StoredRequest,
    link_id: &str,
    category: Option<String>,
    decision: &str,
    why: &str,
    at: time::OffsetDateTime,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor.map_or_else(|| format!("link:{link_id}"), |a| a.token().to_string()),
        role: actor.map_or_else(|| "subject_link".to_owned(), |a| a.role().to_string()),
        tenant: Some(r.tenant.to_string()),
        subject: Some(r.subject.to_string()),
        category,
        purpose: None,
        action: "export".to_owned(),
        decision: decision.to_owned(),
        reason: format!("request:{} {why}", r.id),
        clause: Some(Clause::r(33).to_string()),
        seq: None,
    }
}

/// Audits a refused download attempt (durable before the answer leaves), then returns
/// the error to answer with.
async fn refuse(
    state: &AppState,
    actor: Option<&Actor>,
    r: &StoredRequest,
    link_id: &str,
    why: &str,
    error: Error,
) -> Result<Opened, Error> {
    let now = state.clock.now();
    state
        .audit_writer
        .append(link_audit(actor, r, link_id, None, "deny", why, now))
        .await?;
    Err(error)
}

fn link_used() -> Error {
    Error::Gone {
        code: "export_link_used",
        message: "this download link was already used; ask for a new one".into(),
    }
}
