//! Residency, recipients and transfers through HTTP (issue 5; R6, R17, R18, R21-R25, R28).

use crate::helpers::*;
use serde_json::{json, Value};
use tutela_core::{Region, Role, SubjectId};

async fn recipient(app: &TestApp, operator: &str, body: Value) -> String {
    let r = app.post("/v1/recipients", operator, body).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn transfer(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post("/v1/transfers", token, body).await
}

#[tokio::test]
async fn storage_outside_china_is_refused_for_china_only_categories_r6() {
    let app = spawn_app().await;
    let op = app.operator().await;
    let r = app
        .post("/v1/storage-locations", &op, json!({"name": "Frankfurt DC", "region": "overseas", "country": "DE", "categories": ["customer"]}))
        .await;
    assert_error(r, 403, "residency_violation", Some("R6")).await;
    let r = app
        .post("/v1/storage-locations", &op, json!({"name": "Beijing DC 2", "region": "cn", "country": "CN", "categories": ["customer", "payment"]}))
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "/v1/storage-locations",
            &op,
            json!({"name": "Lying DC", "region": "cn", "country": "US", "categories": ["support"]}),
        )
        .await;
    assert_error(r, 422, "region_mismatch", Some("R6")).await;
    let (_, _, admin) = app.tenant_with_admin("Any Co").await;
    let r = app
        .post(
            "/v1/storage-locations",
            &admin,
            json!({"name": "x", "region": "cn", "country": "CN", "categories": ["support"]}),
        )
        .await;
    assert_error(r, 403, "forbidden", None).await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let list: Value = app
        .get("/v1/storage-locations", &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "refused locations are not registered"
    );
    assert_eq!(list[0]["country"], "CN");

    // Using a location: only one registered for the record's category.
    let beijing = list[0]["id"].as_str().unwrap().to_owned();
    let (_, subject, tenant_admin) = app.tenant_with_admin("Located Co").await;
    let put = |location: &str, purpose: &str, fields: Value| json!({"purpose": purpose, "service": "azure", "fields": fields, "location": location});
    let path = |c: &str| format!("/v1/subjects/{subject}/records/{c}");
    let r = app
        .request(
            reqwest::Method::PUT,
            &path("administrator"),
            Some(&tenant_admin),
            Some(put(&beijing, "account_admin", json!({"name": "x"}))),
        )
        .await;
    assert_error(r, 422, "location_not_for_category", Some("R6")).await;
    let r = app
        .request(
            reqwest::Method::PUT,
            &path("administrator"),
            Some(&tenant_admin),
            Some(put("loc_unknown", "account_admin", json!({"name": "x"}))),
        )
        .await;
    assert_error(r, 422, "unknown_location", Some("R6")).await;
    let r = app
        .request(
            reqwest::Method::PUT,
            &path("payment"),
            Some(&tenant_admin),
            Some(put(&beijing, "transaction", json!({"holder_name": "x"}))),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    app.stop().await;
}

#[tokio::test]
async fn recipients_are_registered_only_within_the_statement_r21_r25() {
    let app = spawn_app().await;
    let op = app.operator().await;
    let cases = [
        (
            json!({"name": "Maps Inc", "kind": "third_party_offering", "country": "CN", "purposes": ["provide_service"], "categories": ["administrator"], "commitment_ref": "nda-7"}),
            "policy_ref_required",
            Some("R25"),
        ),
        (
            json!({"name": "Helpdesk Ltd", "kind": "subprocessor", "country": "CN", "purposes": ["support"], "categories": ["payment"], "commitment_ref": "dpa-1"}),
            "beyond_statement",
            Some("R22"),
        ),
        (
            json!({"name": "Foreign Police", "kind": "authority", "country": "US", "purposes": ["legal_obligation"], "categories": ["customer"]}),
            "recipient_kind_not_allowed_abroad",
            Some("R28"),
        ),
        (
            json!({"name": "Helpdesk Ltd", "kind": "subprocessor", "country": "CN", "purposes": ["support"], "categories": ["support"]}),
            "commitment_required",
            Some("R21"),
        ),
        (
            json!({"name": "Helpdesk Ltd", "kind": "gossip", "country": "CN", "purposes": ["support"], "categories": ["support"]}),
            "invalid_kind",
            None,
        ),
    ];
    for (body, code, clause) in cases {
        let r = app.post("/v1/recipients", &op, body.clone()).await;
        assert_error(r, 422, code, clause).await;
    }
    let id = recipient(&app, &op, json!({"name": "Maps Inc", "kind": "third_party_offering", "country": "CN", "purposes": ["provide_service"], "categories": ["administrator"], "commitment_ref": "nda-7", "policy_ref": "https://maps.example.cn/privacy", "webhook_url": "https://maps.example.cn/hooks/delete"})).await;
    let list: Value = app.get("/v1/recipients", &op).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["policy_ref"], "https://maps.example.cn/privacy");
    app.stop().await;
}

struct World {
    app: TestApp,
    operator: String,
    /// Disclosures to authorities on a legal ground are the privacy office's (R28).
    officer: String,
    service: String,
    admin: String,
    subject: SubjectId,
}

async fn world() -> World {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let service = app.service_all().await;
    let (_, subject, admin) = app.tenant_with_admin("Transfer Co").await;
    World {
        app,
        operator,
        officer,
        service,
        admin,
        subject,
    }
}

#[tokio::test]
async fn a_transfer_abroad_is_refused_without_consent_then_allowed_after_it_r18_r22_r17() {
    let w = world().await;
    let helpdesk = recipient(&w.app, &w.operator, json!({"name": "Global Helpdesk Inc", "kind": "subprocessor", "country": "US", "purposes": ["support", "troubleshooting"], "categories": ["support", "diagnostic"], "commitment_ref": "dpa-2026-3"})).await;
    let body = json!({"subject": w.subject.to_string(), "recipient": helpdesk, "categories": ["support"], "purpose": "support"});
    let r = transfer(&w.app, &w.service, body.clone()).await;
    assert_error(r, 403, "cross_border_consent_required", Some("R22")).await;

    let r = w
        .app
        .post(&format!("/v1/subjects/{}/consents", w.subject), &w.admin, json!({"purpose": "cross_border", "granted": true, "statement_version": "2.0", "channel": "portal", "evidence": {"method": "signed_form", "reference": "scan-xb-1"}}))
        .await;
    assert_eq!(r.status(), 201);
    let r = transfer(&w.app, &w.service, body).await;
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["basis"], "consent");
    assert_eq!(t["country"], "US");
    assert_eq!(t["clause"], "R22");

    // R17: diagnostic data forwarded to the overseas supplier appears in the register.
    let r = transfer(&w.app, &w.service, json!({"subject": w.subject.to_string(), "recipient": helpdesk, "categories": ["diagnostic"], "purpose": "troubleshooting"})).await;
    assert_eq!(r.status(), 201);
    let po = w
        .app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let reg: Value = w
        .app
        .get("/v1/transfers?country=US", &po)
        .await
        .json()
        .await
        .unwrap();
    let rows = reg.as_array().unwrap();
    assert_eq!(rows.len(), 2, "refused transfers are not in the register");
    assert_eq!(rows[1]["categories"], json!(["diagnostic"]));
    assert_eq!(rows[1]["recipient"], helpdesk.as_str());

    // Withdrawing the consent stops the next transfer.
    w.app.clock.advance(time::Duration::minutes(1));
    w.app
        .post(&format!("/v1/subjects/{}/consents", w.subject), &w.admin, json!({"purpose": "cross_border", "granted": false, "statement_version": "2.0", "channel": "portal"}))
        .await;
    let r = transfer(&w.app, &w.service, json!({"subject": w.subject.to_string(), "recipient": helpdesk, "categories": ["support"], "purpose": "support"})).await;
    assert_error(r, 403, "cross_border_consent_required", Some("R22")).await;
    // Every decision, allow and deny, is audited.
    let audit = w
        .app
        .state
        .store
        .audit_for_subject(&w.subject.to_string())
        .await
        .unwrap();
    let decisions: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "transfer")
        .map(|e| e.decision.as_str())
        .collect();
    assert_eq!(decisions, vec!["deny", "allow", "allow", "deny"]);
    w.app.stop().await;
}

#[tokio::test]
async fn a_customer_data_disclosure_on_a_legal_ground_notifies_the_customer_first_r23_r28() {
    let w = world().await;
    let police = recipient(&w.app, &w.operator, json!({"name": "Municipal Public Security Bureau", "kind": "authority", "country": "CN", "purposes": ["legal_obligation"], "categories": ["customer", "administrator"]})).await;
    let body = json!({"subject": w.subject.to_string(), "recipient": police, "categories": ["customer"], "purpose": "legal_obligation"});
    assert_error(
        transfer(&w.app, &w.officer, body.clone()).await,
        403,
        "legal_ground_required",
        Some("R28"),
    )
    .await;
    let mut bad = body.clone();
    bad["basis"] = json!({"exception": "curiosity", "reference": "x"});
    assert_error(
        transfer(&w.app, &w.officer, bad).await,
        422,
        "invalid_exception",
        Some("R28"),
    )
    .await;

    let mut lawful = body.clone();
    lawful["basis"] = json!({"exception": "criminal_investigation", "reference": "PSB-2026-0815"});
    let r = transfer(&w.app, &w.officer, lawful.clone()).await;
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["basis"], "exception:criminal_investigation");
    assert_eq!(t["legal_ref"], "PSB-2026-0815");
    assert_eq!(t["clause"], "R28");
    let notice = t["notice_id"]
        .as_str()
        .expect("R23: a notice before the disclosure");
    let messages = w.app.state.store.messages_of(&w.subject).await.unwrap();
    let m = messages.iter().find(|m| m.id == notice).unwrap();
    assert_eq!(m.template, "customer-data-disclosure-notice");
    assert_eq!(m.status, "queued", "service notices cannot be turned off");

    // A recorded legal prohibition replaces the notice.
    lawful["legal_prohibition_ref"] = json!("court-order-77");
    let t: Value = transfer(&w.app, &w.officer, lawful)
        .await
        .json()
        .await
        .unwrap();
    assert!(t.get("notice_id").is_none());
    assert_eq!(t["prohibition_ref"], "court-order-77");
    w.app.stop().await;
}

#[tokio::test]
async fn payment_processing_abroad_is_recorded_with_the_country_and_unregistered_recipients_get_nothing_r21_r24(
) {
    let w = world().await;
    let processor = recipient(&w.app, &w.operator, json!({"name": "Card Network LLC", "kind": "payment_processor", "country": "US", "purposes": ["transaction"], "categories": ["payment", "administrator"], "commitment_ref": "pci-2026"})).await;
    let r = transfer(&w.app, &w.service, json!({"subject": w.subject.to_string(), "recipient": processor, "categories": ["payment"], "purpose": "transaction"})).await;
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        (
            t["basis"].as_str(),
            t["country"].as_str(),
            t["clause"].as_str()
        ),
        (Some("disclosed_abroad"), Some("US"), Some("R24"))
    );
    let r = transfer(&w.app, &w.service, json!({"subject": w.subject.to_string(), "recipient": processor, "categories": ["payment"], "purpose": "marketing"})).await;
    assert_error(r, 403, "not_shared_with_this_kind", Some("R24")).await;
    let r = transfer(&w.app, &w.service, json!({"subject": w.subject.to_string(), "recipient": "rcp_nobody", "categories": ["payment"], "purpose": "transaction"})).await;
    assert_error(r, 403, "recipient_not_registered", Some("R21")).await;
    assert_error(transfer(&w.app, &w.admin, json!({"subject": w.subject.to_string(), "recipient": processor, "categories": ["payment"], "purpose": "transaction"})).await, 403, "forbidden", None).await;

    // The register filters and exports.
    let po = w
        .app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let by_subject: Value = w
        .app
        .get(&format!("/v1/transfers?subject={}", w.subject), &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_subject.as_array().unwrap().len(), 1);
    let none: Value = w
        .app
        .get("/v1/transfers?country=CN", &po)
        .await
        .json()
        .await
        .unwrap();
    assert!(none.as_array().unwrap().is_empty());
    let later: Value = w
        .app
        .get("/v1/transfers?from=2030-01-01T00:00:00Z", &po)
        .await
        .json()
        .await
        .unwrap();
    assert!(later.as_array().unwrap().is_empty());
    let r = w
        .app
        .get(
            &format!("/v1/transfers?recipient={processor}&format=csv"),
            &po,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("id,at,subject,recipient"));
    assert!(
        lines[1].contains(",US,\"payment\",transaction,disclosed_abroad,R24,"),
        "{csv}"
    );
    assert_error(
        w.app.get("/v1/transfers?country=usa", &po).await,
        422,
        "invalid_country",
        None,
    )
    .await;
    assert_error(
        w.app.get("/v1/transfers", &w.admin).await,
        403,
        "forbidden",
        None,
    )
    .await;
    w.app.stop().await;
}

#[tokio::test]
async fn a_third_party_complaint_is_redirected_with_basic_contact_data_only_r23() {
    let w = world().await;
    let r = w
        .app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/subjects/{}/records/administrator", w.subject),
            Some(&w.admin),
            Some(json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "韩梅梅", "email": "han.meimei@example.cn", "phone": "13700001111", "address": "Haidian 1"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let po = w
        .app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let tenant = w
        .app
        .state
        .store
        .subject(&w.subject)
        .await
        .unwrap()
        .unwrap()
        .tenant;
    let r = w
        .app
        .post(
            "/v1/third-party-complaints",
            &po,
            json!({"tenant": tenant.to_string(), "complaint_ref": "CMP-2026-0042"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tenant_name"], "Transfer Co");
    assert_eq!(
        v["contacts"],
        json!([{"name": "韩梅梅", "email": "han.meimei@example.cn"}]),
        "name and e-mail only"
    );
    // The customer was told, through a service notice.
    let notice = v["notices"][0].as_str().unwrap();
    let messages = w.app.state.store.messages_of(&w.subject).await.unwrap();
    let m = messages.iter().find(|m| m.id == notice).unwrap();
    assert_eq!(m.template, "third-party-complaint-redirect");
    // The contact data was read through the audited, purpose-checked path.
    let audit = w
        .app
        .state
        .store
        .audit_for_subject(&w.subject.to_string())
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "read"
        && e.purpose.as_deref() == Some("legal_obligation")
        && e.decision == "allow"));
    // Scope and input.
    assert_error(
        w.app
            .post(
                "/v1/third-party-complaints",
                &w.admin,
                json!({"tenant": tenant.to_string(), "complaint_ref": "x"}),
            )
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    assert_error(
        w.app
            .post(
                "/v1/third-party-complaints",
                &po,
                json!({"tenant": "ten_00000000000000000000000000000000", "complaint_ref": "x"}),
            )
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_error(
        w.app
            .post(
                "/v1/third-party-complaints",
                &po,
                json!({"tenant": tenant.to_string(), "complaint_ref": "has spaces"}),
            )
            .await,
        422,
        "invalid_reference",
        None,
    )
    .await;
    w.app.stop().await;
}
