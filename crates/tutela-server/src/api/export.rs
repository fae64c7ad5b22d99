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
//! plaintext copy outlives the response. Preparing and opening the link are
//! `tutela_app::exports`; this module maps the result to JSON or the page.

use super::input::rfc3339;
use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::{Authenticated, MaybeAuthenticated};
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tutela_app::AppState;
use utoipa::ToSchema;

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
    let (token, expires) = tutela_app::exports::prepare(&state, &actor, &id).await?;
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
    let tutela_app::exports::Opened {
        request: r,
        now,
        subject,
        records: opened,
        consents,
        preferences: prefs,
        transfers,
        audit,
    } = tutela_app::exports::open(&state, actor.as_ref(), &token).await?;
    let records = opened
        .into_iter()
        .map(|(record, fields)| ExportedRecord {
            category: record.category.to_string(),
            service: record.service,
            version: record.version,
            updated_at: rfc3339(record.updated_at),
            fields,
        })
        .collect();
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
