//! The consent ledger through HTTP (issue 4): express consent lifts an undeclared
//! purpose (R4) and its withdrawal stops it at once; marketing on customer data stays
//! denied whatever is consented (R5); a guardian's consent unlocks a minor's data (R43);
//! the ledger is append-only, returns the full history and is audited.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Region, Role, SubjectId};

fn consent(purpose: &str, granted: bool) -> Value {
    json!({"purpose": purpose, "granted": granted, "statement_version": "2.0", "channel": "portal"})
}

async fn give(app: &TestApp, token: &str, subject: &SubjectId, body: Value) -> reqwest::Response {
    app.post(&format!("/v1/subjects/{subject}/consents"), token, body)
        .await
}

#[tokio::test]
async fn express_consent_allows_an_undeclared_purpose_and_withdrawal_stops_it_r4() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Consent Co").await;
    let path = format!("/v1/subjects/{subject}/records/administrator");
    let r = app
        .request(
            Method::PUT,
            &path,
            Some(&admin),
            Some(
                json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "王芳"}}),
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let research = format!("{path}?purpose=research");
    assert_error(
        app.get(&research, &admin).await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;

    let r = give(&app, &admin, &subject, consent("research", true)).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("con_"));
    let r = app.get(&research, &admin).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["clause"], "R4");

    // Allowed by consent but nothing stored in that category: 404, not data.
    let payment_research = format!("/v1/subjects/{subject}/records/registration?purpose=research");
    let r = app.get(&payment_research, &admin).await;
    assert_error(r, 404, "not_found", None).await;

    // Withdrawal takes effect on the very next access.
    assert_eq!(
        give(&app, &admin, &subject, consent("research", false))
            .await
            .status(),
        201
    );
    assert_error(
        app.get(&research, &admin).await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;

    // The ledger keeps both entries; the current state is the withdrawal.
    let ledger: Value = app
        .get(&format!("/v1/subjects/{subject}/consents"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["history"].as_array().unwrap().len(), 2);
    let current = ledger["current"].as_array().unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["purpose"], "research");
    assert_eq!(current[0]["granted"], false);
    assert_eq!(current[0]["statement_version"], "2.0");
    assert_eq!(current[0]["channel"], "portal");
    assert_eq!(current[0]["recorded_by"], "tenant_admin");

    // Each entry is also an audit entry, naming the scope, never a value.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"consent_grant") && actions.contains(&"consent_withdraw"),
        "{actions:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn customer_data_is_never_used_for_marketing_whatever_is_consented_r5() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Marketing Co").await;
    let path = format!("/v1/subjects/{subject}/records/customer");
    let r = app
        .request(Method::PUT, &path, Some(&admin), Some(json!({"purpose": "provide_service", "service": "azure", "fields": {"content": "x"}})))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        give(&app, &admin, &subject, consent("marketing", true))
            .await
            .status(),
        201
    );
    assert_error(
        app.get(&format!("{path}?purpose=marketing"), &admin).await,
        403,
        "purpose_prohibited",
        Some("R5"),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_guardian_consent_with_the_guardians_reference_unlocks_a_minors_data_r43() {
    let app = spawn_app().await;
    let (tenant, adult, admin) = app.tenant_with_admin("Family Co").await;
    let minor = app
        .create_subject(
            &tenant,
            json!({"kind": "end_user", "birth_date": "2014-03-04"}),
        )
        .await;
    let path = format!("/v1/subjects/{minor}/records/registration");
    let write = json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "小明"}});
    let r = app
        .request(Method::PUT, &path, Some(&admin), Some(write.clone()))
        .await;
    assert_error(r, 403, "minor_needs_guardian_consent", Some("R43")).await;

    // Without the guardian's identity reference: refused, nothing recorded.
    let r = give(&app, &admin, &minor, consent("guardian", true)).await;
    assert_error(r, 422, "guardian_ref_required", Some("R43")).await;
    // Guardian consent is for minors only.
    let mut for_adult = consent("guardian", true);
    for_adult["guardian_ref"] = json!("idv_guardian_001");
    assert_error(
        give(&app, &admin, &adult, for_adult).await,
        422,
        "not_a_minor",
        Some("R43"),
    )
    .await;

    let mut body = consent("guardian", true);
    body["guardian"] = json!(true);
    body["guardian_ref"] = json!("idv_guardian_001");
    body["channel"] = json!("paper");
    body["evidence_ref"] = json!("scan-2026-0042");
    assert_eq!(give(&app, &admin, &minor, body).await.status(), 201);
    let r = app
        .request(Method::PUT, &path, Some(&admin), Some(write))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let ledger: Value = app
        .get(&format!("/v1/subjects/{minor}/consents"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ledger["history"].as_array().unwrap().len(),
        1,
        "refused attempts leave nothing"
    );
    assert_eq!(ledger["current"][0]["guardian_ref"], "idv_guardian_001");
    assert_eq!(ledger["current"][0]["evidence_ref"], "scan-2026-0042");
    app.stop().await;
}

#[tokio::test]
async fn consent_input_is_validated_and_scoped_r2_r4() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = app.tenant_with_admin("Strict Co").await;
    let cases = [
        (consent("nonsense", true), 422, "invalid_purpose"),
        (
            json!({"purpose": "research", "granted": true, "statement_version": "1.0", "channel": "portal"}),
            422,
            "statement_version_mismatch",
        ),
        (
            json!({"purpose": "research", "granted": true, "statement_version": "2.0", "channel": "fax"}),
            422,
            "invalid_channel",
        ),
        (
            json!({"purpose": "research", "granted": true, "statement_version": "2.0", "channel": "api", "guardian_ref": "x"}),
            422,
            "unexpected_guardian_ref",
        ),
        (
            json!({"purpose": "research", "granted": true, "statement_version": "2.0", "channel": "api", "evidence_ref": "has space"}),
            422,
            "invalid_reference",
        ),
        (
            json!({"purpose": "research", "statement_version": "2.0", "channel": "api"}),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let r = give(&app, &admin, &subject, body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // Another tenant's admin: 404; roles that may not record: 403.
    let (_, _, other_admin) = app.tenant_with_admin("Other Co").await;
    assert_error(
        give(&app, &other_admin, &subject, consent("research", true)).await,
        404,
        "not_found",
        None,
    )
    .await;
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    assert_error(
        give(&app, &auditor, &subject, consent("research", true)).await,
        403,
        "forbidden",
        None,
    )
    .await;
    // The subject itself and integrated systems may record; the privacy officer may read.
    let me = app
        .token(Role::EndUser, Some(&tenant), Some(&subject), Region::Cn)
        .await;
    assert_eq!(
        give(&app, &me, &subject, consent("cross_border", true))
            .await
            .status(),
        201
    );
    let service = app.token(Role::Service, None, None, Region::Cn).await;
    let mut by_link = consent("third_party_offering:acme-maps", true);
    by_link["channel"] = json!("email_link");
    assert_eq!(give(&app, &service, &subject, by_link).await.status(), 201);
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let ledger: Value = app
        .get(&format!("/v1/subjects/{subject}/consents"), &po)
        .await
        .json()
        .await
        .unwrap();
    let scopes: Vec<&str> = ledger["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        vec!["cross_border", "third_party_offering:acme-maps"],
        "validation failures recorded nothing"
    );
    assert_error(
        app.get(&format!("/v1/subjects/{subject}/consents"), &service)
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_successors_purpose_change_blocks_use_until_the_subject_consents_again_r27() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = app.tenant_with_admin("Merged Co").await;
    let other = app
        .create_subject(&tenant, json!({"kind": "administrator"}))
        .await;
    let write = json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "李雷"}});
    for s in [&subject, &other] {
        let r = app
            .request(
                Method::PUT,
                &format!("/v1/subjects/{s}/records/administrator"),
                Some(&admin),
                Some(write.clone()),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let read = |s: &SubjectId, purpose: &str| {
        format!("/v1/subjects/{s}/records/administrator?purpose={purpose}")
    };
    assert_eq!(
        app.get(&read(&subject, "service_improvement"), &admin)
            .await
            .status(),
        200
    );
    // A consent given before the change does not carry over.
    assert_eq!(
        give(&app, &admin, &subject, consent("service_improvement", true))
            .await
            .status(),
        201
    );
    app.clock.advance(time::Duration::minutes(1));

    let operator = app.operator().await;
    let change = json!({"purposes": ["service_improvement"], "controller": "Successor Cloud Co., Ltd.", "reason": "service improvement now includes model training", "notice_ref": "notice-2026-11"});
    assert_error(
        app.post("/v1/purpose-changes", &admin, change.clone())
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    let r = app.post("/v1/purpose-changes", &operator, change).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["purpose"], "service_improvement");
    assert_eq!(v[0]["controller"], "Successor Cloud Co., Ltd.");

    for s in [&subject, &other] {
        let r = app.get(&read(s, "service_improvement"), &admin).await;
        assert_error(r, 403, "purpose_changed_needs_reconsent", Some("R27")).await;
    }
    // Unchanged purposes are unaffected.
    assert_eq!(
        app.get(&read(&subject, "account_admin"), &admin)
            .await
            .status(),
        200
    );

    // The subject consents again after the change: usable for that subject only.
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(
        give(&app, &admin, &subject, consent("service_improvement", true))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.get(&read(&subject, "service_improvement"), &admin)
            .await
            .status(),
        200
    );
    assert_error(
        app.get(&read(&other, "service_improvement"), &admin).await,
        403,
        "purpose_changed_needs_reconsent",
        Some("R27"),
    )
    .await;
    // Withdrawing again blocks it again.
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(
        give(
            &app,
            &admin,
            &subject,
            consent("service_improvement", false)
        )
        .await
        .status(),
        201
    );
    assert_error(
        app.get(&read(&subject, "service_improvement"), &admin)
            .await,
        403,
        "purpose_changed_needs_reconsent",
        Some("R27"),
    )
    .await;

    // Bad input; the register is readable by the auditor.
    let r = app
        .post(
            "/v1/purpose-changes",
            &operator,
            json!({"purposes": ["nonsense"], "controller": "X", "reason": "y"}),
        )
        .await;
    assert_error(r, 422, "invalid_purpose", Some("R27")).await;
    let r = app
        .post(
            "/v1/purpose-changes",
            &operator,
            json!({"purposes": [], "controller": "X", "reason": "y"}),
        )
        .await;
    assert_error(r, 422, "invalid_purpose_change", None).await;
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    let list: Value = app
        .get("/v1/purpose-changes", &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    app.stop().await;
}
