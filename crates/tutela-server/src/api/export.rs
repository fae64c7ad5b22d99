//! Access requests fulfilled (issue 6; R33, R35): a complete export of the subject's
//! data across categories, consents, preferences, transfers and the audit entries about
//! them, as JSON or as a readable page, behind a signed download link.
//!
//! The link is short-lived (`links.export_valid_minutes`, default 15) and single use
//! (issue 14): the first successful download consumes it in the same transaction that
//! audits the download, so a second one (or a crash between) can never hand the data out
//! twice; a used link answers 410 `export_link_used`. When the caller presents a bearer
//! token it must be the requester's (403 otherwise). Every download and every refused
//! attempt on a genuine link is audited; a forged link (its MAC does not verify) names
//! no subject and is only logged.
//!
//! Nothing is written to disk: the export is assembled when the link is opened, so no
//! plaintext copy outlives the response. This is the one reader of personal data besides
//! `records::read_record`: it serves the subject's own right of access, not a purpose.

use super::input::rfc3339;
use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::{Authenticated, MaybeAuthenticated};
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::Duration;
use tutela_app::AppState;
use tutela_core::request::{RequestStatus, RequestType};
use tutela_core::{Actor, Clause, Role};
use tutela_store::requests::{ExportLink as StoredLink, StoredRequest};
use tutela_store::sharing::TransferFilter;
use tutela_store::vault::AuditEntry;
use utoipa::ToSchema;

const EXPORT: &str = "export";

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportLink {
    /// Works once: the first download consumes it.
    pub download_url: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize)]
struct ExportedRecord {
    category: String,
    service: String,
    version: i64,
    updated_at: String,
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct ExportedAudit {
    at: String,
    role: String,
    action: String,
    category: Option<String>,
    purpose: Option<String>,
    decision: String,
    clause: Option<String>,
}

#[derive(Debug, Serialize)]
struct Export {
    request: String,
    generated_at: String,
    subject: super::views::SubjectView,
    records: Vec<ExportedRecord>,
    consents: Vec<super::views::ConsentView>,
    preferences: super::views::PreferencesView,
    transfers: Vec<super::views::TransferView>,
    audit: Vec<ExportedAudit>,
}

/// The privacy officer prepares the download link of an access request in progress.
#[utoipa::path(
    post, path = "/v1/requests/{request}/export", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)),
    responses((status = 201, body = ExportLink), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody))
)]
pub async fn prepare_export(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, ApiJson<ExportLink>), ApiError> {
    if actor.role() != Role::PrivacyOfficer {
        return Err(ApiError::forbidden_role("prepare access exports"));
    }
    let r = state
        .store
        .request(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("request"))?;
    if r.kind != RequestType::Access || r.status != RequestStatus::InProgress {
        return Err(ApiError::Conflict {
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
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("request without subject")))?;
    tutela_app::contact::send_service_notice(
        &state,
        &actor,
        &subject,
        "access-export-ready",
        Clause::r(33),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ExportLink {
            download_url: format!("{}/d/{token}", state.config.links_base_url()),
            expires_at: rfc3339(expires),
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (default) or `html`.
    pub format: Option<String>,
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
    error: ApiError,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    state
        .audit_writer
        .append(link_audit(actor, r, link_id, None, "deny", why, now))
        .await?;
    Err(error)
}

fn link_used() -> ApiError {
    ApiError::Gone {
        code: "export_link_used",
        message: "this download link was already used; ask for a new one".into(),
    }
}

/// Opens a download link, once: the export, assembled now; the link is consumed and the
/// download audited per category in one transaction before anything leaves.
pub async fn download(
    State(state): State<AppState>,
    MaybeAuthenticated(actor): MaybeAuthenticated,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    let html = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "html" => true,
        _ => {
            return Err(ApiError::invalid(
                "invalid_query",
                "format must be `json` or `html`",
            ))
        }
    };
    let now = state.clock.now();
    // The signature alone (expiry aside) says which request and link this is.
    let fields = match state.vault.verify_link(EXPORT, &token, i64::MIN)? {
        Ok(f) => f,
        Err(_) => {
            tracing::warn!("a download link that does not verify was presented");
            return Err(ApiError::not_found("download"));
        }
    };
    let [request_id, link_id] = fields.as_slice() else {
        return Err(ApiError::not_found("download"));
    };
    let r = state
        .store
        .request(request_id)
        .await?
        .ok_or_else(|| ApiError::not_found("download"))?;
    let actor = actor.as_ref();
    if let Some(a) = actor {
        if !tutela_app::requests::is_requester(a, &r) {
            return refuse(
                &state,
                actor,
                &r,
                link_id,
                "not_requester",
                ApiError::Forbidden {
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
        return Err(ApiError::not_found("download"));
    };
    if now.unix_timestamp() > link.expires_at.unix_timestamp() {
        return refuse(
            &state,
            actor,
            &r,
            link_id,
            "link_expired",
            ApiError::Gone {
                code: "link_expired",
                message: "this download link has expired; ask for a new one".into(),
            },
        )
        .await;
    }
    if link.used_at.is_some() {
        return refuse(&state, actor, &r, link_id, "link_used", link_used()).await;
    }
    let subject = state
        .store
        .subject(&r.subject)
        .await?
        .ok_or_else(|| ApiError::not_found("download"))?;
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
        records.push(ExportedRecord {
            category: record.category.to_string(),
            service: record.service.clone(),
            version: record.version,
            updated_at: rfc3339(record.updated_at),
            fields,
        });
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
                Some(rec.category.clone()),
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
        return refuse(&state, actor, &r, link_id, "link_used", link_used()).await;
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
    let export = Export {
        request: r.id.clone(),
        generated_at: rfc3339(now),
        subject: super::views::subject_view(subject, now.date()),
        records,
        consents: consents
            .iter()
            .map(|c| super::views::consent_view(c, false))
            .collect(),
        preferences: super::views::preferences_view(&prefs),
        transfers: transfers.iter().map(super::views::transfer_view).collect(),
        audit: audit
            .into_iter()
            .map(|e| ExportedAudit {
                at: rfc3339(e.at),
                role: e.role,
                action: e.action,
                category: e.category,
                purpose: e.purpose,
                decision: e.decision,
                clause: e.clause,
            })
            .collect(),
    };
    let mut response = if html {
        Html(page(&export)).into_response()
    } else {
        ApiJson(export).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

/// Escapes text for HTML: every value on the page is the subject's data.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(e: &Export) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>个人信息副本 / Your personal information</title>\
         <style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}\
         table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}</style>\
         </head><body><h1>个人信息副本</h1><p lang=\"en\"><strong>Your personal information</strong></p>",
    );
    out.push_str(&format!(
        "<p>Subject {} · generated {}</p>",
        esc(&e.subject.id),
        esc(&e.generated_at)
    ));
    out.push_str("<h2>数据 / Data</h2>");
    for r in &e.records {
        out.push_str(&format!(
            "<h3>{} ({}, v{})</h3><table>",
            esc(&r.category),
            esc(&r.service),
            r.version
        ));
        for (k, v) in &r.fields {
            out.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v)));
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>同意 / Consents</h2><table><tr><th>purpose</th><th>granted</th><th>channel</th><th>at</th></tr>");
    for c in &e.consents {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.purpose),
            c.granted,
            esc(&c.channel),
            esc(&c.at)
        ));
    }
    out.push_str("</table><h2>提供与转移 / Transfers</h2><table><tr><th>recipient</th><th>country</th><th>categories</th><th>basis</th><th>at</th></tr>");
    for t in &e.transfers {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.recipient),
            esc(&t.country),
            esc(&t.categories.join(", ")),
            esc(&t.basis),
            esc(&t.at)
        ));
    }
    out.push_str("</table><h2>访问记录 / Access log</h2><table><tr><th>at</th><th>who</th><th>action</th><th>category</th><th>purpose</th><th>decision</th></tr>");
    for a in &e.audit {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.at),
            esc(&a.role),
            esc(&a.action),
            esc(a.category.as_deref().unwrap_or("")),
            esc(a.purpose.as_deref().unwrap_or("")),
            esc(&a.decision)
        ));
    }
    out.push_str("</table></body></html>");
    out
}
