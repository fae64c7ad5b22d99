//! `GET /v1/policy`: the loaded statement as JSON, in the shape `API.md` fixes.

use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use tutela_app::AppState;
use tutela_core::policy::{Ground, Policy};

/// The loaded policy: services, categories (with `sensitive`), purposes per category,
/// retention, recipients' rules, legal grounds, clause ids.
#[utoipa::path(
    get, path = "/v1/policy", tag = "policy",
    security(("bearer" = [])),
    responses((status = 200, description = "The loaded policy", body = Object), (status = 401, body = crate::error::ErrorBody))
)]
pub async fn get_policy(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(policy_json(&state.policy)))
}

fn grounds<K: serde::Serialize>(gs: &[Ground<K>]) -> Value {
    Value::Array(
        gs.iter()
            .map(|g| json!({"id": g.id, "zh": g.text.zh, "en": g.text.en, "clause": g.clause}))
            .collect(),
    )
}

/// Renders a policy as the JSON of `API.md` ("Shapes that verifiers rely on").
pub fn policy_json(p: &Policy) -> Value {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    json!({
        "version": p.statement.version,
        "updated": p.statement.updated.format(&fmt).unwrap_or_default(),
        "title": p.statement.title,
        "controller": p.statement.controller,
        "contact": p.statement.contact,
        "services": p.services.iter().map(|s| json!({
            "id": s.id, "name_zh": s.name.zh, "name_en": s.name.en, "preview": s.preview,
            "third_party": s.third_party, "clause": s.clause,
            // R42: previews say that security measures may differ.
            "security_note": s.preview.then_some("security measures in previews may differ from those of typical online services / 预览中的安全措施可能与典型在线服务不同"),
        })).collect::<Vec<_>>(),
        "purposes": p.purposes.iter().map(|(id, name)| json!({"id": id, "name_zh": name.zh, "name_en": name.en})).collect::<Vec<_>>(),
        "categories": p.categories.iter().map(|c| json!({
            "id": c.category,
            "name_zh": c.name.zh,
            "name_en": c.name.en,
            "sensitive": c.sensitive,
            "fields": c.fields,
            "never_store": c.never_store,
            "never_store_clause": c.never_store_clause,
            "purposes": c.purposes.iter().map(|r| r.purpose).collect::<Vec<_>>(),
            "purpose_rules": c.purposes.iter().map(|r| json!({"purpose": r.purpose, "clause": r.clause, "requires": r.condition})).collect::<Vec<_>>(),
            "prohibited": c.prohibited.iter().map(|x| json!({"purpose": x.purpose, "clause": x.clause})).collect::<Vec<_>>(),
            "residency": c.residency,
            "overseas": {"rule": c.overseas, "clause": c.overseas_clause},
            "retention": &c.retention,
            "clause": c.clause,
        })).collect::<Vec<_>>(),
        "recipient_kinds": p.recipient_kinds.iter().map(|k| json!({
            "id": k.kind, "name_zh": k.name.zh, "name_en": k.name.en, "categories": k.categories,
            "purposes": k.purposes, "overseas_allowed": k.overseas_allowed,
            "overseas_needs_consent": k.overseas_needs_consent, "requires_policy_ref": k.requires_policy_ref,
            "clause": k.clause,
        })).collect::<Vec<_>>(),
        "consent_exceptions": grounds(&p.consent_exceptions),
        "refusal_grounds": grounds(&p.refusal_grounds),
        "trial": {"retain_after_expiry_days": p.trial.retain_after_expiry_days, "action": p.trial.action, "clause": p.trial.clause},
        "requests": {"answer_within_days": p.requests.answer_within_days, "clause": p.requests.clause},
        // Who may use which purposes on which categories (issue 14, R29).
        "access": &p.access_rules,
        "clauses": p.clause_index().into_iter().filter(|(_, at)| !at.is_empty()).map(|(c, at)| json!({"id": c, "encoded_at": at})).collect::<Vec<_>>(),
    })
}
