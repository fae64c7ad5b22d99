//! Personal information in support text (issue 8; R7, R13, R22, R29): redaction with
//! the tenant-keyed operators (`hash`, reversible `token`), the issued tokens recorded
//! with their sealed originals, and their audited reversal.

use crate::error::Error;
use crate::state::AppState;
use tutela_core::{Actor, Clause, Purpose, Role, TenantId};
use tutela_pii::{Operator, Redactor};
use tutela_store::AuditEntry;

/// A span of personal information found (offsets and type, never the value).
#[derive(Debug, Clone)]
pub struct Span {
    /// 1-based line.
    pub line: usize,
    pub start: usize,
    pub end: usize,
    pub kind: String,
}

/// Redacts `text` with `operator` (`mask`, `tag` by default, `hash` or `token`; the last
/// two keyed per `tenant`, which a tenant admin may name only as its own). Tokens issued
/// are recorded with their sealed originals before the text leaves; the redaction is
/// audited with the count found. Returns the text and the spans.
pub async fn redact(
    state: &AppState,
    actor: &Actor,
    tenant: Option<&str>,
    operator: Option<&str>,
    text: &str,
) -> Result<(String, Vec<Span>), Error> {
    let tenant = match tenant {
        None => None,
        Some(raw) => {
            let id = TenantId::parse(raw).map_err(|_| Error::not_found("tenant"))?;
            // A tenant admin redacts only for its own tenant; support systems for any.
            let own = actor.role() != Role::TenantAdmin || actor.tenant() == Some(&id);
            if !own || state.cache.tenant(&state.store, &id).await?.is_none() {
                return Err(Error::not_found("tenant"));
            }
            Some(id)
        }
    };
    let op_name = operator.unwrap_or("tag");
    let mut token_keys = None;
    let op = match (op_name, &tenant) {
        ("hash", Some(t)) => Operator::Hash {
            key: state.vault.pii_hash_key(&state.store, t).await?,
        },
        ("token", Some(t)) => {
            let keys = state.vault.pii_token_keys(&state.store, t).await?;
            let key = keys.0;
            token_keys = Some(keys);
            Operator::Token { key }
        }
        ("hash" | "token", None) => {
            return Err(Error::Invalid {
                code: "tenant_required",
                message: "hash and token are keyed per tenant: name the `tenant`".into(),
                clause: Some(Clause::r(13)),
            })
        }
        (name, _) => Operator::parse(name, None).ok_or_else(|| {
            Error::invalid(
                "invalid_operator",
                "operator must be mask, tag, hash or token",
            )
        })?,
    };
    let redactor = Redactor::new(op);
    let mut out = String::with_capacity(text.len());
    let mut spans = Vec::new();
    let mut found = Vec::new();
    let mut issued = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        spans.clear();
        tutela_pii::scan_line(line, &mut spans);
        redactor.redact_line_with(line, &spans, &mut out, &mut |kind, value, token| {
            if token_keys.is_some() {
                issued.push((kind, value.to_owned(), token.to_owned()));
            }
        });
        found.extend(spans.iter().map(|s| Span {
            line: n + 1,
            start: s.start,
            end: s.end,
            kind: s.kind.to_string(),
        }));
    }
    let now = state.clock.now();
    let entry = AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at: now,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: tenant.as_ref().map(ToString::to_string),
        subject: None,
        category: Some("support".into()),
        purpose: None,
        action: "redact".into(),
        decision: "allow".into(),
        reason: format!("redact:{op_name}:{}", found.len()),
        clause: Some(Clause::r(13).to_string()),
        seq: None,
    };
    match (token_keys, &tenant) {
        // Tokens are recorded (sealed originals) before they leave, with the audit entry.
        (Some((_, digest_key, tenant_key)), Some(t)) => {
            let mut rows = Vec::with_capacity(issued.len());
            for (kind, value, token) in &issued {
                rows.push(tutela_store::retention::PiiToken {
                    tenant: t.clone(),
                    token_digest: state.vault.token_digest(&digest_key, kind.as_str(), token),
                    kind: kind.to_string(),
                    sealed_value: state.vault.seal_token_value(
                        &tenant_key,
                        t,
                        kind.as_str(),
                        value,
                    )?,
                    created_at: now,
                });
            }
            state.store.insert_pii_tokens_audited(&rows, &entry).await?;
        }
        _ => state.audit_writer.append(entry).await?,
    }
    Ok((out, found))
}

/// Reverses PII tokens of `tenant` (the caller checked role, basis and purpose, R13,
/// R29): each `(kind, token)` opens to its original, or `None` if unknown. Audited with
/// the count reversed and the officer's legal reference.
pub async fn detokenize(
    state: &AppState,
    actor: &Actor,
    tenant: &TenantId,
    purpose: Purpose,
    basis: Option<String>,
    tokens: &[(&str, &str)],
) -> Result<Vec<Option<String>>, Error> {
    let (_, digest_key, tenant_key) = state.vault.pii_token_keys(&state.store, tenant).await?;
    let mut values = Vec::with_capacity(tokens.len());
    for (kind, token) in tokens {
        let digest = state.vault.token_digest(&digest_key, kind, token);
        values.push(match state.store.pii_token(tenant, &digest).await? {
            Some((kind, sealed)) => Some(state.vault.open_token_value(
                &tenant_key,
                tenant,
                &kind,
                &sealed,
            )?),
            None => None,
        });
    }
    let now = state.clock.now();
    state
        .audit_writer
        .append(AuditEntry {
            id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
            at: now,
            token_id: actor.token().to_string(),
            role: actor.role().to_string(),
            tenant: Some(tenant.to_string()),
            subject: None,
            category: Some("support".into()),
            purpose: Some(purpose.to_string()),
            action: "detokenize".into(),
            decision: "allow".into(),
            reason: match &basis {
                Some(r) => format!(
                    "detokenize:{}:legal_ref:{r}",
                    values.iter().filter(|v| v.is_some()).count()
                ),
                None => format!(
                    "detokenize:{}",
                    values.iter().filter(|v| v.is_some()).count()
                ),
            },
            clause: Some(Clause::r(13).to_string()),
            seq: None,
        })
        .await?;
    Ok(values)
}
