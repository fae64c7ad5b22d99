//! The HTTP API v1 (`API.md`): routes, extractors that turn rejections into the standard
//! error shape, the middleware stack, and the generated OpenAPI document.

pub mod audit;
pub mod consents;
pub mod contact;
pub mod cookies;
pub mod export;
pub mod fulfil;
pub mod grants;
pub(crate) mod input;
pub mod lifecycle;
pub mod policy;
pub mod records;
pub mod redact;
pub mod requests;
pub mod sharing;
pub mod system;
pub mod tenants;
pub mod views;

use crate::error::{error_response, ApiError};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use std::time::{Duration, Instant};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tutela_app::AppState;
use utoipa::OpenApi;

/// A JSON body whose rejections (syntax, unknown fields, size, content type) become
/// standard API errors. A string holding the NUL character (`\u0000`) is refused as well
/// (422 `invalid_body`): no field of this API means one, and PostgreSQL cannot store it,
/// so refusing it here keeps both backends answering alike (issue 14).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !input::is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        // The same mapping as axum's own JSON rejections (413 for an oversized body).
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(axum::extract::rejection::JsonRejection::from)?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        if input::has_nul_escape(&bytes) {
            return Err(ApiError::invalid(
                "invalid_body",
                "text in the body must not contain the NUL character (\\u0000)",
            ));
        }
        Ok(ApiJson(value))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string whose rejections become standard API errors. A NUL character
/// (`%00`) anywhere in it is refused (422 `invalid_query`), like one in a body.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(input::has_encoded_nul) {
            return Err(ApiError::invalid(
                "invalid_query",
                "the query string must not contain the NUL character (%00)",
            ));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// A path parameter whose rejections become standard API errors. No id or vocabulary
/// word contains the NUL character, so a path holding `%00` names nothing (404, like
/// any other malformed id).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if input::has_encoded_nul(parts.uri.path()) {
            return Err(ApiError::NotFound {
                code: "not_found",
                message: "no resource with this id: ids never contain the NUL character".to_owned(),
            });
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest {
            code: "invalid_path",
            message: r.body_text(),
        }
    }
}

/// The generated OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "tutela", description = "Personal-information protection engine: the privacy statement, enforced."),
    paths(
        system::healthz,
        system::readyz,
        system::metrics,
        system::openapi_json,
        policy::get_policy,
        tenants::create_tenant,
        tenants::get_tenant,
        tenants::create_subject,
        tenants::list_subjects,
        tenants::get_subject,
        tenants::lookup_subjects,
        consents::record_consent,
        contact::put_preferences,
        contact::get_preferences,
        contact::send_gate,
        cookies::record_cookie_consent,
        cookies::issue_visitor,
        sharing::locations::register_location,
        sharing::locations::list_locations,
        sharing::recipients::register_recipient,
        sharing::recipients::list_recipients,
        sharing::recipients::rotate_webhook_secret,
        sharing::transfers::transfer,
        sharing::transfers::register,
        sharing::complaints::redirect_complaint,
        requests::file_request,
        requests::list_requests,
        requests::get_request,
        requests::confirm,
        requests::verify,
        requests::instruct,
        requests::start,
        requests::extend,
        requests::complete,
        requests::refuse,
        export::prepare_export,
        fulfil::erase,
        fulfil::acknowledge,
        fulfil::acknowledge_any,
        fulfil::waive,
        fulfil::send_identity_code,
        contact::get_message,
        lifecycle::close_tenant,
        lifecycle::activate_tenant,
        lifecycle::terminate_service,
        lifecycle::announcements,
        lifecycle::run_retention,
        redact::redact,
        redact::detokenize,
        grants::request_grant,
        grants::get_grant,
        grants::approve_grant,
        grants::deny_grant,
        grants::end_grant,
        grants::tenant_grants,
        grants::resolve_incident,
        cookies::cookie_consent_history,
        consents::list_consents,
        consents::record_purpose_change,
        consents::list_purpose_changes,
        records::put_record,
        records::get_record,
        records::delete_record,
        audit::head,
        audit::entries,
        audit::proof,
        audit::consistency,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorDetail,
        system::Health,
        tenants::NewTenant,
        tenants::TenantCreated,
        views::TenantView,
        tenants::NewSubject,
        tenants::SubjectCreated,
        views::SubjectView,
        tenants::SubjectPage,
        tenants::LookupRequest,
        tenants::LookupResult,
        sharing::locations::NewStorageLocation,
        sharing::locations::StorageLocationView,
        sharing::recipients::NewRecipient,
        sharing::recipients::RecipientInfo,
        sharing::transfers::LegalBasis,
        sharing::transfers::NewTransfer,
        views::TransferView,
        sharing::complaints::NewComplaint,
        sharing::complaints::BasicContact,
        sharing::complaints::ComplaintRedirected,
        requests::NewRequest,
        views::Consequence,
        views::RequestView,
        requests::Verification,
        requests::Instruction,
        requests::Extension,
        requests::Completion,
        requests::Refusal,
        export::ExportLink,
        views::DeliveryView,
        views::ErasureView,
        fulfil::DeletionNotice,
        fulfil::Ack,
        fulfil::AckResult,
        fulfil::Waiver,
        fulfil::CodeRequest,
        fulfil::CodeSent,
        contact::QueuedMessage,
        lifecycle::NewTermination,
        lifecycle::TerminationView,
        lifecycle::AnnouncementView,
        redact::RedactRequest,
        redact::FoundSpan,
        redact::Redacted,
        redact::TokenRef,
        redact::DetokenizeRequest,
        redact::Detokenized,
        lifecycle::Summary,
        lifecycle::PlanItem,
        grants::GrantRequest,
        grants::IncidentResolve,
        grants::GrantView,
        grants::GrantAccess,
        grants::GrantDetail,
        grants::IncidentResolved,
        cookies::CookieChoice,
        cookies::CookieConsentCreated,
        cookies::VisitorIssued,
        cookies::CookieConsentView,
        cookies::CookieConsentHistory,
        contact::ChannelChoice,
        views::ChannelFlags,
        contact::PreferencesUpdate,
        views::PreferencesView,
        contact::MessageRequest,
        contact::MessageDecision,
        consents::NewConsent,
        consents::EvidenceBody,
        consents::ConsentCreated,
        views::ConsentView,
        consents::ConsentLedger,
        consents::NewPurposeChange,
        consents::PurposeChangeView,
        records::RecordWrite,
        records::RecordWritten,
        records::RecordView,
        audit::HeadView,
        audit::EntryView,
        audit::ProofView,
        audit::ConsistencyView,
    )),
    modifiers(&BearerAuth),
    tags((name = "system"), (name = "policy"), (name = "tenants"), (name = "records"), (name = "audit"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tutela token")
                    .build(),
            ),
        );
    }
}

/// Builds the router with its middleware stack.
pub fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi_json))
        .route("/v1/policy", get(policy::get_policy))
        .route("/v1/tenants", post(tenants::create_tenant))
        .route("/v1/tenants/{tenant}", get(tenants::get_tenant))
        .route(
            "/v1/tenants/{tenant}/subjects",
            post(tenants::create_subject).get(tenants::list_subjects),
        )
        .route(
            "/v1/tenants/{tenant}/subjects/lookup",
            post(tenants::lookup_subjects),
        )
        .route("/v1/subjects/{subject}", get(tenants::get_subject))
        .route(
            "/v1/subjects/{subject}/preferences",
            put(contact::put_preferences).get(contact::get_preferences),
        )
        .route("/v1/messages", post(contact::send_gate))
        .route(
            "/v1/storage-locations",
            post(sharing::locations::register_location).get(sharing::locations::list_locations),
        )
        .route(
            "/v1/recipients",
            post(sharing::recipients::register_recipient).get(sharing::recipients::list_recipients),
        )
        .route(
            "/v1/recipients/{recipient}/webhook-secret",
            post(sharing::recipients::rotate_webhook_secret),
        )
        .route(
            "/v1/transfers",
            post(sharing::transfers::transfer).get(sharing::transfers::register),
        )
        .route(
            "/v1/third-party-complaints",
            post(sharing::complaints::redirect_complaint),
        )
        .route(
            "/v1/requests",
            post(requests::file_request).get(requests::list_requests),
        )
        .route("/v1/requests/{request}", get(requests::get_request))
        .route("/v1/requests/{request}/confirm", post(requests::confirm))
        .route("/v1/requests/{request}/verify", post(requests::verify))
        .route("/v1/requests/{request}/instruct", post(requests::instruct))
        .route("/v1/requests/{request}/start", post(requests::start))
        .route("/v1/requests/{request}/extend", post(requests::extend))
        .route("/v1/requests/{request}/complete", post(requests::complete))
        .route("/v1/requests/{request}/refuse", post(requests::refuse))
        .route(
            "/v1/requests/{request}/export",
            post(export::prepare_export),
        )
        .route("/v1/requests/{request}/erase", post(fulfil::erase))
        .route("/v1/requests/{request}/acks", post(fulfil::acknowledge))
        .route("/v1/acks", post(fulfil::acknowledge_any))
        .route(
            "/v1/requests/{request}/deliveries/{recipient}/waive",
            post(fulfil::waive),
        )
        .route(
            "/v1/requests/{request}/identity-code",
            post(fulfil::send_identity_code),
        )
        .route("/v1/messages/{message}", get(contact::get_message))
        .route("/v1/tenants/{tenant}/close", post(lifecycle::close_tenant))
        .route(
            "/v1/tenants/{tenant}/activate",
            post(lifecycle::activate_tenant),
        )
        .route(
            "/v1/tenants/{tenant}/announcements",
            get(lifecycle::announcements),
        )
        .route(
            "/v1/services/{service}/terminate",
            post(lifecycle::terminate_service),
        )
        .route("/v1/retention/run", post(lifecycle::run_retention))
        .route("/v1/redact", post(redact::redact))
        .route("/v1/detokenize", post(redact::detokenize))
        .route("/d/{token}", get(export::download))
        .route("/v1/grants", post(grants::request_grant))
        .route("/v1/grants/{grant}", get(grants::get_grant))
        .route("/v1/grants/{grant}/approve", post(grants::approve_grant))
        .route("/v1/grants/{grant}/deny", post(grants::deny_grant))
        .route("/v1/grants/{grant}/end", post(grants::end_grant))
        .route("/v1/tenants/{tenant}/grants", get(grants::tenant_grants))
        .route(
            "/v1/incidents/{incident}/resolve",
            post(grants::resolve_incident),
        )
        .route(
            "/v1/purpose-changes",
            post(consents::record_purpose_change).get(consents::list_purpose_changes),
        )
        .route(
            "/v1/cookie-consents",
            post(cookies::record_cookie_consent).options(cookies::cookie_consent_preflight),
        )
        .route(
            "/v1/cookie-consents/visitors",
            post(cookies::issue_visitor).options(cookies::cookie_consent_preflight),
        )
        .route(
            "/v1/cookie-consents/{visitor}",
            get(cookies::cookie_consent_history),
        )
        .route("/consent.js", get(cookies::consent_js))
        .route(
            "/u/{token}",
            get(contact::unsubscribe_page).post(contact::unsubscribe),
        )
        .route(
            "/v1/subjects/{subject}/consents",
            post(consents::record_consent).get(consents::list_consents),
        )
        .route(
            "/v1/subjects/{subject}/records/{category}",
            axum::routing::put(records::put_record)
                .get(records::get_record)
                .delete(records::delete_record),
        )
        .route("/v1/audit/head", get(audit::head))
        .route("/v1/audit/entries", get(audit::entries))
        .route("/v1/audit/proof", get(audit::proof))
        .route("/v1/audit/consistency", get(audit::consistency))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        .layer(
            // Span fields: method and path only. Query strings and bodies are never logged,
            // and paths that carry a secret (download and unsubscribe links) are logged as
            // their route template.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let path = match req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                {
                    Some(template @ ("/d/{token}" | "/u/{token}")) => template,
                    _ => req.uri().path(),
                };
                tracing::info_span!("http", method = %req.method(), path = %path)
            }),
        )
        // Outermost, so that responses made by the layers above also get the shape.
        .layer(middleware::from_fn(standard_error_shape))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: "no such route".to_owned(),
    }
}

/// Gives every error response the standard JSON shape, including those produced by the
/// framework itself (405, 408 from the timeout, 413 from the body limit).
async fn standard_error_shape(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    // Our own JSON errors and the pages made for people (unsubscribe links) pass as
    // they are; bare framework errors get the API's shape.
    let shaped = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !status.is_client_error() && !status.is_server_error() || shaped {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "the request took longer than the configured limit",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the configured limit",
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request was not understood"),
    };
    let mut out = error_response(status, code, message, None);
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let labels = tutela_app::metrics::RouteLabels {
        method: method.clone(),
        route: route.clone(),
    };
    state
        .metrics
        .http_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .http_requests
        .get_or_create(&tutela_app::metrics::RequestLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
