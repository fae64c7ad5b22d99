//! Least privilege on the operator's side (issue 14; R7, R9, R12, R16, R29): each role
//! uses only the purposes and categories the policy's access rules give it, support
//! engineers act only under grants they asked for themselves, incidents belong to their
//! tenant, and conditions are checked where data is read.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Category, Purpose, Region, Role, SubjectId, TenantId};

const CONTENT: &str = "LP-CUSTOMER-CONTENT-4471";
const ID_NUMBER: &str = "11010519491231002X";
const CARD: &str = "4111111111111111";

/// A tenant whose administrator has customer content, real-name, payment and support
/// records.
async fn tenant_with_data(app: &TestApp, name: &str) -> (TenantId, SubjectId, String) {
    let (tenant, subject, admin) = app.tenant_with_admin(name).await;
    for (category, purpose, fields) in [
        (
            "customer",
            "provide_service",
            json!({"object_ref": "vm-1", "content": CONTENT}),
        ),
        (
            "real_name",
            "real_name_verification",
            json!({"legal_name": "张伟", "id_number": ID_NUMBER}),
        ),
        (
            "payment",
            "transaction",
            json!({"card_number": CARD, "holder_name": "Zhang Wei"}),
        ),
        (
            "support",
            "support",
            json!({"description": "VM will not boot", "contact": "zhang.wei@example.com"}),
        ),
        (
            "administrator",
            "account_admin",
            json!({"name": "Zhang Wei", "email": "zhang.wei@example.com"}),
        ),
    ] {
        let r = app
            .request(
                Method::PUT,
                &format!("/v1/subjects/{subject}/records/{category}"),
                Some(&admin),
                Some(json!({"purpose": purpose, "service": "azure", "fields": fields})),
            )
            .await;
        assert_eq!(r.status(), 200, "{category}: {}", r.text().await.unwrap());
    }
    (tenant, subject, admin)
}

async fn read(app: &TestApp, subject: &SubjectId, query: &str, token: &str) -> reqwest::Response {
    app.get(&format!("/v1/subjects/{subject}/records/{query}"), token)
        .await
}

async fn support(app: &TestApp, region: Region) -> String {
    app.token(Role::Support, None, None, region).await
}

/// Asks for and approves a grant; returns its id.
async fn approved_grant(
    app: &TestApp,
    engineer: &str,
    admin: &str,
    tenant: &TenantId,
    incident: &str,
    categories: &[&str],
) -> String {
    let r = app
        .post(
            "/v1/grants",
            engineer,
            json!({"tenant": tenant.to_string(), "incident": incident, "categories": categories, "reason": "boot failure after patch", "minutes": 60}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(&format!("/v1/grants/{id}/approve"), admin, json!({}))
        .await;
    assert_eq!(r.status(), 200);
    id
}

#[tokio::test]
async fn support_in_china_reads_writes_and_deletes_nothing_without_a_grant_of_its_own_r7_r29() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = tenant_with_data(&app, "LP China Co").await;
    let engineer = support(&app, Region::Cn).await;
    for query in [
        "customer?purpose=troubleshooting",
        "support?purpose=support",
    ] {
        assert_error(
            read(&app, &subject, query, &engineer).await,
            403,
            "grant_required",
            Some("R7"),
        )
        .await;
    }
    // Real-name and payment data are never a support engineer's, grant or not.
    for query in [
        "real_name?purpose=account_admin",
        "payment?purpose=transaction",
    ] {
        let r = read(&app, &subject, query, &engineer).await;
        let body = assert_error(r, 403, "role_not_permitted", Some("R29")).await;
        assert!(!body.to_string().contains(ID_NUMBER) && !body.to_string().contains(CARD));
    }
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/customer"),
            Some(&engineer),
            Some(json!({"purpose": "troubleshooting", "service": "azure", "fields": {"content": "overwritten"}})),
        )
        .await;
    assert_error(r, 403, "role_not_permitted", Some("R29")).await;
    let r = app
        .request(
            Method::DELETE,
            &format!("/v1/subjects/{subject}/records/support"),
            Some(&engineer),
            None,
        )
        .await;
    assert_error(r, 403, "role_not_permitted", Some("R29")).await;
    // Nothing changed: the customer still reads its own content and support record.
    let r = read(&app, &subject, "customer?purpose=provide_service", &admin).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["content"],
        CONTENT
    );
    assert_eq!(
        read(&app, &subject, "support?purpose=support", &admin)
            .await
            .status(),
        200
    );

    // With a grant the customer approved, the engineer who asked reads; nobody else.
    let grant = approved_grant(
        &app,
        &engineer,
        &admin,
        &tenant,
        "INC-7",
        &["customer", "support"],
    )
    .await;
    let r = read(
        &app,
        &subject,
        "customer?purpose=troubleshooting",
        &engineer,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["content"],
        CONTENT
    );
    let colleague = support(&app, Region::Cn).await;
    assert_error(
        read(
            &app,
            &subject,
            "customer?purpose=troubleshooting",
            &colleague,
        )
        .await,
        403,
        "grant_required",
        Some("R7"),
    )
    .await;
    let overseas = support(&app, Region::Overseas).await;
    assert_error(
        read(
            &app,
            &subject,
            "customer?purpose=troubleshooting",
            &overseas,
        )
        .await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;
    // The engineer adds to the support record; nothing the customer wrote is lost.
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/support"),
            Some(&engineer),
            Some(json!({"purpose": "support", "service": "azure", "fields": {"description": "ENGINEER-NOTE: reimaged the boot disk"}})),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let fields = read(&app, &subject, "support?purpose=support", &admin)
        .await
        .json::<Value>()
        .await
        .unwrap()["fields"]
        .clone();
    assert_eq!(fields["contact"], "zhang.wei@example.com");
    assert_eq!(
        fields["description"],
        "VM will not boot\nENGINEER-NOTE: reimaged the boot disk"
    );
    // Another engineer does not even see the grant.
    assert_error(
        app.get(&format!("/v1/grants/{grant}"), &colleague).await,
        404,
        "not_found",
        None,
    )
    .await;
    // The grant lists the read and the write, both by the engineer who holds it.
    let detail: Value = app
        .get(&format!("/v1/grants/{grant}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    let accesses = detail["accesses"].as_array().unwrap();
    assert_eq!(accesses.len(), 2, "{detail}");
    assert!(accesses
        .iter()
        .all(|a| a["token"] == detail["requested_by"]));
}

#[tokio::test]
async fn an_overseas_engineer_never_acts_under_a_grant_another_engineer_asked_for_r7() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = tenant_with_data(&app, "LP Overseas Co").await;
    let asked = support(&app, Region::Overseas).await;
    let other = support(&app, Region::Overseas).await;
    approved_grant(&app, &asked, &admin, &tenant, "INC-9", &["customer"]).await;
    assert_eq!(
        read(&app, &subject, "customer?purpose=troubleshooting", &asked)
            .await
            .status(),
        200
    );
    let r = read(&app, &subject, "customer?purpose=troubleshooting", &other).await;
    let body = assert_error(r, 403, "overseas_access_needs_grant", Some("R7")).await;
    assert!(!body.to_string().contains(CONTENT));
}

#[tokio::test]
async fn incidents_belong_to_their_tenant_and_only_the_grants_holders_end_them_r7() {
    let app = spawn_app().await;
    let (t1, s1, admin1) = tenant_with_data(&app, "LP Incident One").await;
    let (t2, s2, admin2) = tenant_with_data(&app, "LP Incident Two").await;
    let a = support(&app, Region::Overseas).await;
    let b = support(&app, Region::Overseas).await;
    let intruder = support(&app, Region::Overseas).await;
    // The same ticket number at two tenants is two incidents.
    let ga = approved_grant(&app, &a, &admin1, &t1, "INC-42", &["customer"]).await;
    let gb = approved_grant(&app, &b, &admin2, &t2, "INC-42", &["customer"]).await;
    let resolve = |tenant: &TenantId| json!({"tenant": tenant.to_string()});
    // Another engineer cannot end them: the incident does not exist for it.
    for t in [&t1, &t2] {
        assert_error(
            app.post("/v1/incidents/INC-42/resolve", &intruder, resolve(t))
                .await,
            404,
            "not_found",
            None,
        )
        .await;
    }
    assert_error(
        app.post(&format!("/v1/grants/{ga}/end"), &intruder, json!({}))
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    // Support must name the tenant.
    assert_error(
        app.post("/v1/incidents/INC-42/resolve", &a, json!({}))
            .await,
        422,
        "tenant_required",
        Some("R7"),
    )
    .await;
    // A's resolution at tenant 1 ends A's grant only.
    let r = app
        .post("/v1/incidents/INC-42/resolve", &a, resolve(&t1))
        .await;
    assert_eq!(r.status(), 200);
    let ended: Value = r.json().await.unwrap();
    assert_eq!(ended["ended"], json!([ga]));
    assert_eq!(
        read(&app, &s1, "customer?purpose=troubleshooting", &a)
            .await
            .status(),
        403
    );
    assert_eq!(
        read(&app, &s2, "customer?purpose=troubleshooting", &b)
            .await
            .status(),
        200
    );
    // Tenant 1's admin cannot touch tenant 2's incident; tenant 2's admin ends it.
    assert_error(
        app.post("/v1/incidents/INC-42/resolve", &admin1, resolve(&t2))
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    let r = app
        .post("/v1/incidents/INC-42/resolve", &admin2, json!({}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["ended"], json!([gb]));
    assert_eq!(
        read(&app, &s2, "customer?purpose=troubleshooting", &b)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn a_grant_is_ended_by_its_engineer_the_customer_or_the_privacy_officer_r7() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = tenant_with_data(&app, "LP End Co").await;
    let engineer = support(&app, Region::Cn).await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    for ender in [&engineer, &admin, &officer] {
        let g = approved_grant(&app, &engineer, &admin, &tenant, "INC-5", &["support"]).await;
        assert_eq!(
            read(&app, &subject, "support?purpose=support", &engineer)
                .await
                .status(),
            200
        );
        let r = app
            .post(&format!("/v1/grants/{g}/end"), ender, json!({}))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "ended");
        assert_eq!(
            read(&app, &subject, "support?purpose=support", &engineer)
                .await
                .status(),
            403
        );
        // Ending twice is a conflict, not a success.
        let r = app
            .post(&format!("/v1/grants/{g}/end"), ender, json!({}))
            .await;
        assert_error(r, 409, "grant_state", Some("R7")).await;
    }
}

#[tokio::test]
async fn operator_officer_auditor_and_services_use_only_what_their_rules_give_them_r29() {
    let app = spawn_app().await;
    let (_, subject, _admin) = tenant_with_data(&app, "LP Roles Co").await;
    let operator = app.operator().await;
    // The operator administers accounts but reads no customer content or payment.
    for (query, code) in [
        ("customer?purpose=provide_service", "role_not_permitted"),
        ("customer?purpose=troubleshooting", "role_not_permitted"),
        ("payment?purpose=transaction", "role_not_permitted"),
        ("payment?purpose=fraud_prevention", "role_not_permitted"),
        ("support?purpose=support", "role_not_permitted"),
    ] {
        let body = assert_error(
            read(&app, &subject, query, &operator).await,
            403,
            code,
            Some("R29"),
        )
        .await;
        assert!(!body.to_string().contains(CONTENT) && !body.to_string().contains("1111"));
    }
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/customer"),
            Some(&operator),
            Some(json!({"purpose": "provide_service", "service": "azure", "fields": {"content": "overwritten"}})),
        )
        .await;
    assert_error(r, 403, "role_not_permitted", Some("R29")).await;
    assert_eq!(
        read(
            &app,
            &subject,
            "administrator?purpose=account_admin",
            &operator
        )
        .await
        .status(),
        200
    );

    // The privacy officer reads only naming a request or a legal obligation.
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    for query in [
        "customer?purpose=provide_service",
        "payment?purpose=transaction",
        "administrator?purpose=legal_obligation",
    ] {
        assert_error(
            read(&app, &subject, query, &officer).await,
            403,
            "basis_required",
            Some("R29"),
        )
        .await;
    }
    let r = read(
        &app,
        &subject,
        "administrator?purpose=legal_obligation&legal_ref=PSB-2026-118",
        &officer,
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/customer"),
            Some(&officer),
            Some(json!({"purpose": "provide_service", "service": "azure", "fields": {"content": "overwritten"}})),
        )
        .await;
    assert_error(r, 403, "role_not_permitted", Some("R29")).await;
    // Only the officer names a basis.
    assert_error(
        read(
            &app,
            &subject,
            "administrator?purpose=legal_obligation&legal_ref=X-1",
            &operator,
        )
        .await,
        422,
        "basis_not_applicable",
        Some("R29"),
    )
    .await;
    // The audit trail names the basis.
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    let entries: Value = app
        .get(&format!("/v1/audit/entries?subject={subject}"), &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        entries.to_string().contains("legal_ref:PSB-2026-118"),
        "{entries}"
    );
    // The auditor reads nothing personal.
    assert_error(
        read(
            &app,
            &subject,
            "administrator?purpose=account_admin",
            &auditor,
        )
        .await,
        403,
        "role_reads_no_personal_data",
        Some("R29"),
    )
    .await;

    // An unscoped service reads and writes nothing personal; a scoped one its scope.
    let unscoped = app.token(Role::Service, None, None, Region::Cn).await;
    for query in [
        "customer?purpose=provide_service",
        "payment?purpose=transaction",
        "administrator?purpose=account_admin",
    ] {
        assert_error(
            read(&app, &subject, query, &unscoped).await,
            403,
            "token_scope",
            Some("R29"),
        )
        .await;
    }
    let billing = app
        .service_token(&[Purpose::Transaction], &[Category::Payment])
        .await;
    let r = read(&app, &subject, "payment?purpose=transaction", &billing).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["card_number"],
        CARD
    );
    for query in [
        "payment?purpose=fraud_prevention",
        "customer?purpose=provide_service",
    ] {
        assert_error(
            read(&app, &subject, query, &billing).await,
            403,
            "token_scope",
            Some("R29"),
        )
        .await;
    }
}

#[tokio::test]
async fn the_privacy_officer_reads_for_an_open_verified_request_about_that_subject_only_r29_r35() {
    let app = spawn_app().await;
    let (_, subject, admin) = tenant_with_data(&app, "LP Request Co").await;
    let (_, other_subject, _) = tenant_with_data(&app, "LP Request Other").await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let r = app
        .post(
            "/v1/requests",
            &admin,
            json!({"subject": subject.to_string(), "type": "access"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not verified yet: not a basis.
    assert_error(
        read(&app, &subject, &format!("customer?request={id}"), &officer).await,
        403,
        "basis_not_open",
        Some("R35"),
    )
    .await;
    let r = app
        .post(
            &format!("/v1/requests/{id}/verify"),
            &officer,
            json!({"method": "document", "evidence": "ID-CHECK-77"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = read(&app, &subject, &format!("customer?request={id}"), &officer).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["content"],
        CONTENT
    );
    // The request is the basis: no purpose beside it (so none can unmask a card, R12).
    assert_error(
        read(
            &app,
            &subject,
            &format!("payment?request={id}&purpose=transaction"),
            &officer,
        )
        .await,
        422,
        "purpose_with_request",
        Some("R35"),
    )
    .await;
    let r = read(&app, &subject, &format!("payment?request={id}"), &officer).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["card_number"],
        "************1111"
    );
    // A request the privacy office filed and verified itself is no basis.
    let own = app
        .post(
            "/v1/requests",
            &officer,
            json!({"subject": subject.to_string(), "type": "correct"}),
        )
        .await;
    let own = own.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = app
        .post(
            &format!("/v1/requests/{own}/verify"),
            &officer,
            json!({"method": "document", "evidence": "SELF-1"}),
        )
        .await;
    assert_error(
        read(&app, &subject, &format!("customer?request={own}"), &officer).await,
        403,
        "basis_not_open",
        Some("R35"),
    )
    .await;
    // Refused attempts are audited like any denial.
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    let entries: Value = app
        .get(&format!("/v1/audit/entries?subject={subject}"), &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert!(entries.to_string().contains("basis_not_open"), "{entries}");
    // The request is about one subject only.
    assert_error(
        read(
            &app,
            &other_subject,
            &format!("customer?request={id}"),
            &officer,
        )
        .await,
        403,
        "basis_not_open",
        Some("R35"),
    )
    .await;
}

#[tokio::test]
async fn marketing_and_feedback_reads_follow_the_subjects_contact_preferences_r9() {
    let app = spawn_app().await;
    let (_, subject, admin) = tenant_with_data(&app, "LP Prefs Co").await;
    let crm = app
        .service_token(
            &[Purpose::Marketing, Purpose::Feedback],
            &[Category::Administrator],
        )
        .await;
    for (purpose, topic) in [("marketing", "marketing"), ("feedback", "surveys")] {
        let query = format!("administrator?purpose={purpose}");
        assert_error(
            read(&app, &subject, &query, &crm).await,
            403,
            "contact_preference_off",
            Some("R9"),
        )
        .await;
        let r = app
            .request(
                Method::PUT,
                &format!("/v1/subjects/{subject}/preferences"),
                Some(&admin),
                Some(json!({ topic: {"email": true} })),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(read(&app, &subject, &query, &crm).await.status(), 200);
    }
}

#[tokio::test]
async fn a_security_code_typed_into_payment_free_text_is_refused_and_never_stored_r12() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("LP CVV Co").await;
    for text in [
        "cvv=7391",
        "CVV2: 7391",
        "安全码：7391",
        "security code is 7391",
    ] {
        let r = app
            .request(
                Method::PUT,
                &format!("/v1/subjects/{subject}/records/payment"),
                Some(&admin),
                Some(json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": CARD, "financial_data": text}})),
            )
            .await;
        let body = assert_error(r, 422, "security_code_in_text", Some("R12")).await;
        assert!(!body.to_string().contains("7391"), "{body}");
    }
    assert_eq!(
        read(&app, &subject, "payment?purpose=transaction", &admin)
            .await
            .status(),
        404
    );
    // Ordinary financial notes are kept.
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/payment"),
            Some(&admin),
            Some(json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": CARD, "financial_data": "invoice 2026-118, net 30"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(grep_dir(app.data_dir.path(), b"cvv=7391").is_empty());
}

#[tokio::test]
async fn a_grants_reason_is_sealed_at_rest_and_shown_to_those_who_see_the_grant_r29() {
    let app = spawn_app().await;
    let (tenant, _, admin) = app.tenant_with_admin("LP Reason Co").await;
    let engineer = support(&app, Region::Cn).await;
    let reason = "Customer Wang Fang reports GRANT-REASON-PLANTED-9931";
    let r = app
        .post(
            "/v1/grants",
            &engineer,
            json!({"tenant": tenant.to_string(), "incident": "INC-3", "categories": ["support"], "reason": reason}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["reason"], reason);
    let detail: Value = app
        .get(&format!("/v1/grants/{}", g["id"].as_str().unwrap()), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["reason"], reason);
    assert!(grep_dir(app.data_dir.path(), b"GRANT-REASON-PLANTED-9931").is_empty());
}

/// Records a visitor's cookie choice the way the banner does.
async fn cookie_choice(app: &TestApp, visitor: &str, analytics: bool) {
    let body = json!({"visitor_id": visitor, "preferences": true, "analytics": analytics, "fraud_prevention": true, "statement_version": "2.0"});
    let r = post_choice(app, &body.to_string(), "application/json").await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn cookie_data_is_read_for_analytics_only_while_the_visitor_consents_r16() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("LP Cookie Co").await;
    // A visitor id the server issued (R16).
    let visitor = issued_visitor(&app).await;
    let visitor = visitor.as_str();
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/cookie"),
            Some(&admin),
            Some(json!({"purpose": "preferences", "service": "azure", "fields": {"visitor_id": visitor, "preferences": "lang=zh"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let analytics = app
        .service_token(&[Purpose::Analytics], &[Category::Cookie])
        .await;
    let query = "cookie?purpose=analytics";
    // Never asked: no analytics use.
    assert_error(
        read(&app, &subject, query, &analytics).await,
        403,
        "cookie_consent_missing",
        Some("R16"),
    )
    .await;
    cookie_choice(&app, visitor, true).await;
    assert_eq!(read(&app, &subject, query, &analytics).await.status(), 200);
    // Refusal is honoured from then on.
    cookie_choice(&app, visitor, false).await;
    assert_error(
        read(&app, &subject, query, &analytics).await,
        403,
        "cookie_consent_missing",
        Some("R16"),
    )
    .await;
    // Other cookie purposes do not depend on the analytics choice.
    assert_eq!(
        read(&app, &subject, "cookie?purpose=preferences", &admin)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_service_discloses_only_what_its_token_is_scoped_to_r29() {
    let app = spawn_app().await;
    let (_, subject, _) = tenant_with_data(&app, "LP Transfer Co").await;
    let operator = app.operator().await;
    let r = app
        .post(
            "/v1/recipients",
            &operator,
            json!({"name": "Card Processor Co", "kind": "payment_processor", "country": "CN", "purposes": ["transaction"], "categories": ["administrator", "payment"], "commitment_ref": "dpa-lp-1"}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let recipient = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let transfer = |categories: Value| json!({"subject": subject.to_string(), "recipient": recipient, "categories": categories, "purpose": "transaction"});
    let billing = app
        .service_token(&[Purpose::Transaction], &[Category::Payment])
        .await;
    let unscoped = app.token(Role::Service, None, None, Region::Cn).await;
    for (token, categories) in [
        (&unscoped, json!(["payment"])),
        (&billing, json!(["administrator"])),
        (&billing, json!(["payment", "administrator"])),
    ] {
        assert_error(
            app.post("/v1/transfers", token, transfer(categories)).await,
            403,
            "token_scope",
            Some("R29"),
        )
        .await;
    }
    let r = app
        .post("/v1/transfers", &billing, transfer(json!(["payment"])))
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn cookie_records_name_issued_visitors_and_analytics_collection_needs_consent_r16() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("LP Cookie Write Co").await;
    let put = |fields: Value, purpose: &'static str, token: String| {
        let (app, path) = (&app, format!("/v1/subjects/{subject}/records/cookie"));
        async move {
            app.request(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({"purpose": purpose, "service": "azure", "fields": fields})),
            )
            .await
        }
    };
    // A visitor id the writer made up is refused, so no condition reads a stranger's choice.
    assert_error(
        put(
            json!({"visitor_id": "vis_fake"}),
            "preferences",
            admin.clone(),
        )
        .await,
        422,
        "invalid_visitor_id",
        Some("R16"),
    )
    .await;
    let visitor = issued_visitor(&app).await;
    let upper = {
        let (signed, tag) = visitor.rsplit_once('.').unwrap();
        format!("{signed}.{}", tag.to_uppercase())
    };
    assert_error(
        put(json!({"visitor_id": upper}), "preferences", admin.clone()).await,
        422,
        "invalid_visitor_id",
        Some("R16"),
    )
    .await;
    // Collecting for analytics needs the visitor's consent to analytics.
    assert_error(
        put(json!({"visitor_id": visitor}), "analytics", admin.clone()).await,
        403,
        "cookie_consent_missing",
        Some("R16"),
    )
    .await;
    cookie_choice(&app, &visitor, true).await;
    assert_eq!(
        put(json!({"visitor_id": visitor}), "analytics", admin.clone())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn services_delete_nothing_and_only_the_delivery_system_reads_messages_r29_r33() {
    let app = spawn_app().await;
    let (_, subject, _) = tenant_with_data(&app, "LP Service Co").await;
    let marketing = app
        .service_token(
            &[Purpose::Marketing, Purpose::Feedback],
            &[Category::Administrator, Category::Support],
        )
        .await;
    for category in ["administrator", "support"] {
        let r = app
            .request(
                Method::DELETE,
                &format!("/v1/subjects/{subject}/records/{category}"),
                Some(&marketing),
                None,
            )
            .await;
        assert_error(r, 403, "role_not_permitted", Some("R29")).await;
    }
    // A message (here a service notice) is read back only by a service scoped to
    // service communications.
    let mailer = app
        .service_token(&[Purpose::ServiceCommunication], &[Category::Administrator])
        .await;
    let r = app
        .post(
            "/v1/messages",
            &mailer,
            json!({"subject": subject.to_string(), "kind": "service", "channel": "email", "template": "invoice"}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(&format!("/v1/messages/{id}"), &mailer)
            .await
            .status(),
        200
    );
    assert_error(
        app.get(&format!("/v1/messages/{id}"), &marketing).await,
        403,
        "token_scope",
        Some("R29"),
    )
    .await;
}

#[tokio::test]
async fn a_security_code_pasted_into_a_support_case_is_refused_r12() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("LP Support CVV Co").await;
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/support"),
            Some(&admin),
            Some(json!({"purpose": "support", "service": "azure", "fields": {"description": "payment fails, card 6222021988000001 cvv=739"}})),
        )
        .await;
    assert_error(r, 422, "security_code_in_text", Some("R12")).await;
}
