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

/// A consent recorded on the subject's behalf, citing the subject's signed form.
fn evidenced(purpose: &str, granted: bool) -> Value {
    let mut body = consent(purpose, granted);
    body["evidence"] = json!({"method": "signed_form", "reference": "scan-2026-0001"});
    body
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

    let r = give(&app, &admin, &subject, evidenced("research", true)).await;
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
    // The withdrawal cited nothing: recorded as such (issue 14).
    assert_eq!(current[0]["method"], "unevidenced");
    assert_eq!(ledger["history"][0]["method"], "signed_form");

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
        give(&app, &admin, &subject, evidenced("marketing", true))
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
    // A bare reference does not say how the guardian consented (R43).
    body["evidence_ref"] = json!("scan-2026-0042");
    assert_error(
        give(&app, &admin, &minor, body.clone()).await,
        422,
        "consent_evidence_required",
        Some("R43"),
    )
    .await;
    body["evidence"] = json!({"method": "signed_form", "reference": "scan-2026-0042"});
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
    // The guardian's act is named with how it was given.
    assert_eq!(ledger["current"][0]["method"], "signed_form");
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
    by_link["evidence"] =
        json!({"method": "email_confirmation", "reference": "msg-8812@mail.example"});
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
        give(
            &app,
            &admin,
            &subject,
            evidenced("service_improvement", true)
        )
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
        give(
            &app,
            &admin,
            &subject,
            evidenced("service_improvement", true)
        )
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

/// Stores an administrator record so that purpose decisions can be read over HTTP.
async fn store_admin_record(app: &TestApp, admin: &str, subject: &SubjectId) -> String {
    let path = format!("/v1/subjects/{subject}/records/administrator");
    let r = app
        .request(
            Method::PUT,
            &path,
            Some(admin),
            Some(
                json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "张伟"}}),
            ),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    path
}

async fn ledger(app: &TestApp, token: &str, subject: &SubjectId) -> Value {
    let r = app
        .get(&format!("/v1/subjects/{subject}/consents"), token)
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_grant_on_the_subjects_behalf_without_evidence_is_refused_and_stores_nothing_r4_r18_r25()
{
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Evidence Co").await;
    let path = store_admin_record(&app, &admin, &subject).await;
    let service = app.token(Role::Service, None, None, Region::Cn).await;
    let cases = [
        (&admin, "research", "R4"),
        (&service, "research", "R4"),
        (&admin, "cross_border", "R18"),
        (&service, "cross_border", "R18"),
        (&service, "third_party_offering:acme-maps", "R25"),
    ];
    for (token, purpose, clause) in cases {
        let r = give(&app, token, &subject, consent(purpose, true)).await;
        let v = assert_error(r, 422, "consent_evidence_required", Some(clause)).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("subject's own act"),
            "{v}"
        );
    }
    // Evidence must be a citable method with a reference, and say one thing.
    let bad_evidence = [
        (
            json!({"method": "subject_self", "reference": "x-1"}),
            "invalid_evidence",
        ),
        (
            json!({"method": "unevidenced", "reference": "x-1"}),
            "invalid_evidence",
        ),
        (
            json!({"method": "legacy_unrecorded", "reference": "x-1"}),
            "invalid_evidence",
        ),
        (
            json!({"method": "fax", "reference": "x-1"}),
            "invalid_evidence",
        ),
        (
            json!({"method": "signed_form", "reference": "has space"}),
            "invalid_reference",
        ),
        (
            json!({"method": "signed_form", "reference": ""}),
            "invalid_reference",
        ),
        (json!({"method": "signed_form"}), "invalid_body"),
    ];
    for (evidence, code) in bad_evidence {
        let mut body = consent("research", true);
        body["evidence"] = evidence.clone();
        let r = give(&app, &service, &subject, body).await;
        assert_eq!(r.status(), 422, "{evidence}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{evidence}: {v}");
    }
    let mut two_refs = evidenced("research", true);
    two_refs["evidence_ref"] = json!("scan-other");
    assert_error(
        give(&app, &admin, &subject, two_refs).await,
        422,
        "invalid_evidence",
        None,
    )
    .await;
    let mut long_ref = consent("research", true);
    long_ref["evidence_ref"] = json!("x".repeat(129));
    assert_error(
        give(&app, &admin, &subject, long_ref).await,
        422,
        "invalid_reference",
        None,
    )
    .await;

    // Nothing was stored, nothing audited as a consent, and the decision still denies.
    let v = ledger(&app, &admin, &subject).await;
    assert_eq!(v["history"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["current"].as_array().unwrap().len(), 0, "{v}");
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    assert!(
        audit.iter().all(|e| !e.action.starts_with("consent_")),
        "{audit:?}"
    );
    assert_error(
        app.get(&format!("{path}?purpose=research"), &admin).await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_grant_citing_the_subjects_act_is_recorded_with_its_provenance_r4_r18() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Provenance Co").await;
    let path = store_admin_record(&app, &admin, &subject).await;
    let service = app.token(Role::Service, None, None, Region::Cn).await;

    let mut by_call = consent("research", true);
    by_call["channel"] = json!("api");
    by_call["evidence"] = json!({"method": "recorded_call", "reference": "call-2026-11-0042"});
    assert_eq!(give(&app, &service, &subject, by_call).await.status(), 201);
    assert_eq!(
        app.get(&format!("{path}?purpose=research"), &admin)
            .await
            .status(),
        200
    );
    // A bare `evidence_ref` still works: the act is cited by reference only.
    let mut by_scan = consent("cross_border", true);
    by_scan["channel"] = json!("paper");
    by_scan["evidence_ref"] = json!("scan-77");
    assert_eq!(give(&app, &admin, &subject, by_scan).await.status(), 201);
    // Both fields naming the same evidence are one citation.
    let mut both = evidenced("marketing", true);
    both["evidence_ref"] = json!("scan-2026-0001");
    assert_eq!(give(&app, &admin, &subject, both).await.status(), 201);

    let v = ledger(&app, &admin, &subject).await;
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{v}");
    assert_eq!(history[0]["purpose"], "research");
    assert_eq!(history[0]["method"], "recorded_call");
    assert_eq!(history[0]["evidence_ref"], "call-2026-11-0042");
    assert_eq!(history[0]["recorded_by"], "service");
    assert_eq!(history[1]["method"], "reference_only");
    assert_eq!(history[1]["evidence_ref"], "scan-77");
    assert_eq!(history[1]["recorded_by"], "tenant_admin");
    assert_eq!(history[2]["method"], "signed_form");
    assert_eq!(history[2]["evidence_ref"], "scan-2026-0001");
    // A tenant admin sees roles, not operator token ids.
    assert!(
        history.iter().all(|c| c.get("recorded_by_token").is_none()),
        "{v}"
    );

    // The audit entry names the method (a vocabulary value), never the reference; the
    // privacy officer sees the recording token, the same one the audit log names.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let grants: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "consent_grant")
        .collect();
    let reasons: Vec<&str> = grants.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec![
            "consent_via_api:recorded_call",
            "consent_via_paper:reference_only",
            "consent_via_portal:signed_form"
        ]
    );
    let audit_text = format!("{audit:?}");
    for reference in ["call-2026-11-0042", "scan-77", "scan-2026-0001"] {
        assert!(!audit_text.contains(reference), "{reference} in the audit");
    }
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let v = ledger(&app, &po, &subject).await;
    assert_eq!(v["history"][0]["recorded_by_token"], grants[0].token_id);
    assert_eq!(v["history"][1]["recorded_by_token"], grants[1].token_id);
    assert_ne!(grants[0].token_id, grants[1].token_id);
    app.stop().await;
}

#[tokio::test]
async fn the_subject_needs_no_evidence_and_a_withdrawal_always_works_r4_r18() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = app.tenant_with_admin("Self Co").await;
    let path = store_admin_record(&app, &admin, &subject).await;
    let research = format!("{path}?purpose=research");
    let me = app
        .token(Role::EndUser, Some(&tenant), Some(&subject), Region::Cn)
        .await;
    let service = app.token(Role::Service, None, None, Region::Cn).await;

    for purpose in ["research", "cross_border"] {
        assert_eq!(
            give(&app, &me, &subject, consent(purpose, true))
                .await
                .status(),
            201
        );
    }
    assert_eq!(app.get(&research, &me).await.status(), 200);
    // The subject withdraws without evidence; effective at once.
    assert_eq!(
        give(&app, &me, &subject, consent("research", false))
            .await
            .status(),
        201
    );
    assert_error(
        app.get(&research, &me).await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;
    // A service or tenant admin may withdraw without evidence too (it only narrows
    // processing); the entry says no act of the subject was cited.
    assert_eq!(
        give(&app, &service, &subject, consent("cross_border", false))
            .await
            .status(),
        201
    );
    let mut by_letter = consent("research", false);
    by_letter["evidence"] = json!({"method": "written_instruction", "reference": "ticket-5521"});
    assert_eq!(give(&app, &admin, &subject, by_letter).await.status(), 201);

    let v = ledger(&app, &me, &subject).await;
    let provenance: Vec<(&str, bool, &str, &str)> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["purpose"].as_str().unwrap(),
                c["granted"].as_bool().unwrap(),
                c["recorded_by"].as_str().unwrap(),
                c["method"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        provenance,
        vec![
            ("research", true, "end_user", "subject_self"),
            ("cross_border", true, "end_user", "subject_self"),
            ("research", false, "end_user", "subject_self"),
            ("cross_border", false, "service", "unevidenced"),
            ("research", false, "tenant_admin", "written_instruction"),
        ]
    );
    assert!(v["history"][0].get("recorded_by_token").is_none(), "{v}");
    let current: Vec<bool> = v["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["granted"].as_bool().unwrap())
        .collect();
    assert_eq!(current, vec![false, false]);
    app.stop().await;
}

#[tokio::test]
async fn a_guardian_consent_needs_evidence_of_the_guardians_act_whoever_records_it_r43() {
    let app = spawn_app().await;
    let (tenant, _, admin) = app.tenant_with_admin("Guardian Co").await;
    let minor = app
        .create_subject(
            &tenant,
            json!({"kind": "end_user", "birth_date": "2015-06-01"}),
        )
        .await;
    let minor_token = app
        .token(Role::EndUser, Some(&tenant), Some(&minor), Region::Cn)
        .await;
    let path = format!("/v1/subjects/{minor}/records/registration");
    let write = json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "小红"}});

    let mut guardian = consent("guardian", true);
    guardian["guardian_ref"] = json!("idv_guardian_007");
    // The tenant admin without the guardian's act; nor may the minor's own token stand
    // in for the guardian.
    for token in [&admin, &minor_token] {
        let v = assert_error(
            give(&app, token, &minor, guardian.clone()).await,
            422,
            "consent_evidence_required",
            Some("R43"),
        )
        .await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("guardian's own act"),
            "{v}"
        );
    }
    let mut self_cited = guardian.clone();
    self_cited["evidence"] = json!({"method": "subject_self", "reference": "sess-9"});
    assert_error(
        give(&app, &minor_token, &minor, self_cited).await,
        422,
        "invalid_evidence",
        None,
    )
    .await;
    // A guardian's consent to a purpose (`guardian: true`) is a guardian's act too.
    let mut for_research = consent("research", true);
    for_research["guardian"] = json!(true);
    for_research["guardian_ref"] = json!("idv_guardian_007");
    assert_error(
        give(&app, &admin, &minor, for_research).await,
        422,
        "consent_evidence_required",
        Some("R43"),
    )
    .await;
    assert_eq!(
        ledger(&app, &admin, &minor).await["history"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = app
        .request(Method::PUT, &path, Some(&admin), Some(write.clone()))
        .await;
    assert_error(r, 403, "minor_needs_guardian_consent", Some("R43")).await;

    let mut signed = guardian.clone();
    signed["channel"] = json!("paper");
    signed["evidence"] = json!({"method": "signed_form", "reference": "guardian-form-9"});
    assert_eq!(give(&app, &admin, &minor, signed).await.status(), 201);
    let r = app
        .request(Method::PUT, &path, Some(&admin), Some(write))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v = ledger(&app, &admin, &minor).await;
    assert_eq!(v["current"][0]["purpose"], "guardian");
    assert_eq!(v["current"][0]["method"], "signed_form");
    assert_eq!(v["current"][0]["evidence_ref"], "guardian-form-9");
    assert_eq!(v["current"][0]["guardian_ref"], "idv_guardian_007");
    app.stop().await;
}
