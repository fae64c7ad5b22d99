//! Contact preferences, the send gate and unsubscribe links (issue 4; R9, R15).
//!
//! - `PUT/GET /v1/subjects/{subject}/preferences`: marketing and surveys per channel;
//!   service communications cannot be turned off (422, R9).
//! - `POST /v1/messages`: every outgoing message passes the gate
//!   (`tutela_core::contact::may_send`); the decision is recorded and audited, and
//!   promotional e-mail gets a signed unsubscribe link.
//! - `GET/POST /u/{token}`: the link's bilingual confirmation page and the opt-out,
//!   without login. A forged or expired token changes nothing.

use super::views::{preferences_view, ChannelFlags, PreferencesView};
use crate::api::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::actor::ScopeAccess;
use tutela_core::contact::{ContactChannel, MessageKind, PreferenceTopic};
use tutela_core::{Actor, Clause, Role};
use tutela_crypto::link::LinkError;
use tutela_store::subjects::Subject;
use utoipa::ToSchema;

/// `true`/`false` for every channel, or per channel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChannelChoice {
    All(bool),
    PerChannel(ChannelFlags),
}

/// `PUT` body. Fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesUpdate {
    pub marketing: Option<ChannelChoice>,
    /// Surveys and feedback requests.
    pub surveys: Option<ChannelChoice>,
    /// Always `true` while the service is used; `false` is refused (R9).
    pub service_communications: Option<bool>,
}

fn wanted(
    topic: PreferenceTopic,
    choice: &ChannelChoice,
) -> Vec<(PreferenceTopic, ContactChannel, bool)> {
    match choice {
        ChannelChoice::All(on) => ContactChannel::ALL
            .iter()
            .map(|c| (topic, *c, *on))
            .collect(),
        ChannelChoice::PerChannel(f) => [
            (ContactChannel::Email, f.email),
            (ContactChannel::Phone, f.phone),
            (ContactChannel::Sms, f.sms),
        ]
        .into_iter()
        .filter_map(|(c, v)| v.map(|on| (topic, c, on)))
        .collect(),
    }
}

/// The subject, if the caller has one of `roles` and the subject is in its scope.
async fn subject_for(
    state: &AppState,
    actor: &Actor,
    raw: &str,
    roles: &[Role],
    what: &str,
) -> Result<Subject, ApiError> {
    tutela_app::subjects::subject_in_scope(
        state,
        raw,
        |s| {
            if roles.contains(&actor.role()) {
                actor.may_view_subject(&s.tenant, &s.id)
            } else {
                ScopeAccess::RoleDenied
            }
        },
        what,
    )
    .await
    .map_err(ApiError::from)
}

/// Sets marketing and survey preferences by channel.
#[utoipa::path(
    put, path = "/v1/subjects/{subject}/preferences", tag = "contact", security(("bearer" = [])),
    params(("subject" = String, Path)),
    request_body = PreferencesUpdate,
    responses((status = 200, body = PreferencesView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn put_preferences(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<PreferencesUpdate>,
) -> Result<ApiJson<PreferencesView>, ApiError> {
    let subject = subject_for(
        &state,
        &actor,
        &raw,
        &[Role::EndUser, Role::TenantAdmin],
        "change contact preferences",
    )
    .await?;
    if body.service_communications == Some(false) {
        return Err(ApiError::Invalid {
            code: "service_communications_required",
            message: "subscription, billing, important-update and security messages cannot be turned off while the service is used".into(),
            clause: Some(Clause::r(9)),
        });
    }
    let mut changes = Vec::new();
    if let Some(c) = &body.marketing {
        changes.extend(wanted(PreferenceTopic::Marketing, c));
    }
    if let Some(c) = &body.surveys {
        changes.extend(wanted(PreferenceTopic::Surveys, c));
    }
    let current = tutela_app::contact::set_preferences(&state, &actor, &subject, changes).await?;
    Ok(ApiJson(preferences_view(&current)))
}

/// A subject's contact preferences.
#[utoipa::path(
    get, path = "/v1/subjects/{subject}/preferences", tag = "contact", security(("bearer" = [])),
    params(("subject" = String, Path)),
    responses((status = 200, body = PreferencesView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn get_preferences(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<PreferencesView>, ApiError> {
    let subject = subject_for(
        &state,
        &actor,
        &raw,
        &[Role::EndUser, Role::TenantAdmin, Role::PrivacyOfficer],
        "read contact preferences",
    )
    .await?;
    let prefs = state.store.preferences_of(&subject.id).await?;
    Ok(ApiJson(preferences_view(&prefs)))
}

/// `POST /v1/messages` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    pub subject: String,
    /// `service`, `marketing`, `survey` or `feedback`.
    pub kind: String,
    /// `email`, `phone` or `sms`.
    pub channel: String,
    /// The template id the delivery system will render (never content).
    pub template: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDecision {
    pub id: String,
    /// `queued` (may be sent) or `suppressed`.
    pub status: String,
    pub reason: String,
    pub clause: String,
    /// For promotional e-mail: the signed link to put in the footer (R15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

/// The send gate: decides, records and audits one outgoing message.
#[utoipa::path(
    post, path = "/v1/messages", tag = "contact", security(("bearer" = [])),
    request_body = MessageRequest,
    responses((status = 201, body = MessageDecision), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn send_gate(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<MessageRequest>,
) -> Result<(StatusCode, ApiJson<MessageDecision>), ApiError> {
    // Integrated systems send; the operator's staff do not message subjects (R29).
    if actor.role() != Role::Service {
        return Err(ApiError::forbidden_role("send messages"));
    }
    let kind = MessageKind::parse(&body.kind)
        .map_err(|e| ApiError::invalid("invalid_kind", e.to_string()))?;
    let channel = ContactChannel::parse(&body.channel)
        .map_err(|e| ApiError::invalid("invalid_channel", e.to_string()))?;
    let template_ok = (1..=64).contains(&body.template.len())
        && body
            .template
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !template_ok {
        return Err(ApiError::invalid(
            "invalid_template",
            "template must be an id: 1 to 64 letters, digits, `_` or `-`",
        ));
    }
    let (message, unsubscribe_url) =
        tutela_app::contact::send(&state, &actor, &body.subject, kind, channel, &body.template)
            .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(MessageDecision {
            id: message.id,
            status: message.status,
            reason: message.reason,
            clause: message.clause,
            unsubscribe_url,
        }),
    ))
}

/// A queued message as the delivery system sees it: what to render and the parameters
/// (e.g. a one-time code), opened for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedMessage {
    pub id: String,
    pub subject: String,
    pub kind: String,
    pub channel: String,
    pub template: String,
    pub status: String,
    pub params: std::collections::BTreeMap<String, String>,
}

/// The delivery system fetches a message to render it (service accounts only); opening
/// its parameters is audited.
#[utoipa::path(
    get, path = "/v1/messages/{message}", tag = "contact", security(("bearer" = [])),
    params(("message" = String, Path)),
    responses((status = 200, body = QueuedMessage), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn get_message(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    crate::api::ApiPath(id): crate::api::ApiPath<String>,
) -> Result<ApiJson<QueuedMessage>, ApiError> {
    if actor.role() != Role::Service {
        return Err(ApiError::forbidden_role("read messages for delivery"));
    }
    // The delivery system: a service scoped to service communications (R9, R29). A
    // message's parameters may hold a one-time identity code (R35).
    if !actor
        .scope()
        .purposes()
        .contains(&tutela_core::Purpose::ServiceCommunication)
    {
        return Err(ApiError::Forbidden {
            code: "token_scope",
            message: "only a service scoped to service_communication delivers messages".into(),
            clause: Some(Clause::r(29)),
        });
    }
    let (message, params) = tutela_app::contact::message_for_delivery(&state, &actor, &id).await?;
    Ok(ApiJson(QueuedMessage {
        id: message.id,
        subject: message.subject.to_string(),
        kind: message.kind.to_string(),
        channel: message.channel.to_string(),
        template: message.template,
        status: message.status,
        params,
    }))
}

fn topic_names(topic: PreferenceTopic) -> (&'static str, &'static str) {
    match topic {
        PreferenceTopic::Marketing => ("营销信息", "marketing messages"),
        PreferenceTopic::Surveys => ("调查与反馈邀请", "surveys and feedback requests"),
    }
}

fn page(status: StatusCode, title_zh: &str, title_en: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title_zh} / {title_en}</title>\
         <style>body{{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5}}\
         button{{font-size:1em;padding:.5em 1.2em}}</style></head><body>\
         <h1>{title_zh}</h1><p lang=\"en\"><strong>{title_en}</strong></p>{body}</body></html>"
    );
    let mut r = (status, Html(html)).into_response();
    // The token is in the URL: keep it out of other sites' Referer headers and caches.
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn bad_link(e: LinkError) -> Response {
    match e {
        LinkError::Expired => page(
            StatusCode::GONE,
            "链接已过期",
            "This link has expired",
            "<p>请在管理门户中修改联系偏好。</p><p lang=\"en\">Change your contact preferences in the portal instead.</p>",
        ),
        LinkError::Invalid => page(
            StatusCode::BAD_REQUEST,
            "链接无效",
            "This link is not valid",
            "<p>未做任何更改。</p><p lang=\"en\">Nothing was changed.</p>",
        ),
    }
}

/// The unsubscribe confirmation page (zh/en). Changes nothing by itself: mail scanners
/// that follow links must not unsubscribe anyone.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let link = match tutela_app::contact::read_link(&state, &token).await? {
        Ok(l) => l,
        Err(e) => return Ok(bad_link(e)),
    };
    let (zh, en) = topic_names(link.topic);
    let channel = link.channel;
    Ok(page(
        StatusCode::OK,
        "退订确认",
        "Confirm unsubscribe",
        &format!(
            "<p>不再通过 {channel} 接收{zh}。服务通知（订阅、账单、重要更新、安全）仍会发送。</p>\
             <p lang=\"en\">Stop receiving {en} by {channel}. Service notices (subscription, billing, \
             important updates, security) will still be sent.</p>\
             <form method=\"post\"><button type=\"submit\">确认退订 / Unsubscribe</button></form>"
        ),
    ))
}

/// Records the opt-out named by the link, without login.
pub async fn unsubscribe(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let link = match tutela_app::contact::read_link(&state, &token).await? {
        Ok(l) => l,
        Err(e) => return Ok(bad_link(e)),
    };
    tutela_app::contact::opt_out(&state, &link).await?;
    let (zh, en) = topic_names(link.topic);
    let channel = link.channel;
    Ok(page(
        StatusCode::OK,
        "已退订",
        "You are unsubscribed",
        &format!(
            "<p>已停止通过 {channel} 发送{zh}。</p><p lang=\"en\">We will no longer send you {en} by {channel}.</p>"
        ),
    ))
}
