//! Data-subject requests through HTTP (issue 6; R26, R32, R33, R35, R36, R45): the
//! workflow, its guards, the 30-day clock. Fulfilment (export, deletion, propagation)
//! is not built yet.

use crate::helpers::*;
use serde_json::{json, Value};
use tutela_core::{Region, Role};

async fn act(app: &TestApp, token: &str, id: &str, step: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/v1/requests/{id}/{step}"), token, body)
        .await
}

#[tokio::test]
async fn a_deletion_request_shows_its_consequences_and_needs_verification_and_confirmation_r33_r35()
{
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Request Co").await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let r = app
        .post("/v1/requests", &admin, json!({"subject": subject.to_string(), "type": "delete", "details": "please delete everything about 王小二"}))
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "received");
    assert!(v["consequences"][0]["en"]
        .as_str()
        .unwrap()
        .contains("stops online payments"));
    assert_eq!(v["confirmed"], false);
    let id = v["id"].as_str().unwrap().to_owned();
    // due_at = received + 30 days.
    let received = time::OffsetDateTime::parse(
        v["received_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let due = time::OffsetDateTime::parse(
        v["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(due - received, time::Duration::days(30));
    // The details are sealed, shown only to who may see the request.
    assert_eq!(
        v["notes"]["details"],
        "please delete everything about 王小二"
    );

    // Nothing is answered before identity is verified (R35).
    let r = act(&app, &po, &id, "complete", json!({"response": "done"})).await;
    assert_error(r, 409, "request_state", Some("R35")).await;
    let r = act(
        &app,
        &po,
        &id,
        "verify",
        json!({"method": "document", "evidence": "scan-42"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Not before the requester confirmed the consequences (R33).
    let r = act(&app, &po, &id, "start", json!({})).await;
    assert_error(r, 409, "request_state", Some("R33")).await;
    assert_error(
        act(&app, &po, &id, "confirm", json!({})).await,
        403,
        "forbidden",
        None,
    )
    .await;
    let r = act(&app, &admin, &id, "confirm", json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["confirmed"], true);
    assert_eq!(act(&app, &po, &id, "start", json!({})).await.status(), 200);
    assert_error(
        act(&app, &po, &id, "complete", json!({"response": "  "})).await,
        422,
        "invalid_text",
        None,
    )
    .await;
    // Not complete before the data is erased (R33).
    assert_error(
        act(&app, &po, &id, "complete", json!({"response": "done"})).await,
        409,
        "not_erased",
        Some("R33"),
    )
    .await;
    assert_eq!(act(&app, &po, &id, "erase", json!({})).await.status(), 200);
    let r = act(
        &app,
        &po,
        &id,
        "complete",
        json!({"response": "Your data was deleted."}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["notes"]["response"], "Your data was deleted.");
    // Every step is audited, without the free text.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let steps: Vec<&str> = audit
        .iter()
        .filter(|e| e.action.starts_with("request_"))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        steps,
        vec![
            "request_file_delete",
            "request_verify",
            "request_confirm",
            "request_start",
            "request_complete"
        ]
    );
    assert!(!format!("{audit:?}").contains("王小二"));
    app.stop().await;
}

#[tokio::test]
async fn an_end_users_request_waits_for_the_tenants_instruction_r26() {
    let app = spawn_app().await;
    let (tenant, _, admin) = app.tenant_with_admin("Controller Co").await;
    let user = app
        .create_subject(&tenant, json!({"kind": "end_user"}))
        .await;
    let me = app
        .token(Role::EndUser, Some(&tenant), Some(&user), Region::Cn)
        .await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let v: Value = app
        .post(
            "/v1/requests",
            &me,
            json!({"subject": user.to_string(), "type": "access"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "awaiting_controller");
    let id = v["id"].as_str().unwrap().to_owned();
    // No substantive step before the instruction.
    assert_error(
        act(
            &app,
            &po,
            &id,
            "verify",
            json!({"method": "document", "evidence": "x"}),
        )
        .await,
        409,
        "request_state",
        Some("R35"),
    )
    .await;
    assert_error(
        act(
            &app,
            &po,
            &id,
            "refuse",
            json!({"ground": "abuse", "response": "no"}),
        )
        .await,
        409,
        "request_state",
        Some("R35"),
    )
    .await;
    // Another tenant's admin cannot see it; the end user can.
    let (_, _, other_admin) = app.tenant_with_admin("Other Co").await;
    assert_error(
        app.get(&format!("/v1/requests/{id}"), &other_admin).await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_eq!(
        app.get(&format!("/v1/requests/{id}"), &me).await.status(),
        200
    );
    let r = act(
        &app,
        &admin,
        &id,
        "instruct",
        json!({"instruction": "Provide the export; we approve."}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "received");
    assert_eq!(v["notes"]["instruction"], "Provide the export; we approve.");
    app.stop().await;
}

#[tokio::test]
async fn an_administrators_own_request_goes_to_the_operator_and_an_end_users_to_the_tenant_r26() {
    let app = spawn_app().await;
    let (tenant, administrator, admin) = app.tenant_with_admin("Routing Co").await;
    let user = app
        .create_subject(&tenant, json!({"kind": "end_user"}))
        .await;
    let contact = app
        .create_subject(&tenant, json!({"kind": "contact"}))
        .await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let file = |token: String, subject: String| {
        let app = &app;
        async move {
            let r = app
                .post(
                    "/v1/requests",
                    &token,
                    json!({"subject": subject, "type": "access"}),
                )
                .await;
            assert_eq!(r.status(), 201);
            let v: Value = r.json().await.unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        }
    };
    // The administrator signs in as itself: its own request is the operator's to answer
    // (the operator controls administrator data), it does not wait for the tenant.
    let as_administrator = app
        .token(
            Role::EndUser,
            Some(&tenant),
            Some(&administrator),
            Region::Cn,
        )
        .await;
    let (id, status) = file(as_administrator, administrator.to_string()).await;
    assert_eq!(status, "received");
    let r = act(
        &app,
        &po,
        &id,
        "verify",
        json!({"method": "document", "evidence": "id-scan-1"}),
    )
    .await;
    assert_eq!(r.status(), 200, "no tenant instruction needed");
    // A contact's request, filed by the privacy office, neither.
    let (_, status) = file(po.clone(), contact.to_string()).await;
    assert_eq!(status, "received");
    // An end user's request waits for the tenant, whoever files it but the tenant.
    let as_user = app
        .token(Role::EndUser, Some(&tenant), Some(&user), Region::Cn)
        .await;
    let (_, status) = file(as_user, user.to_string()).await;
    assert_eq!(status, "awaiting_controller");
    let (id, status) = file(po.clone(), user.to_string()).await;
    assert_eq!(status, "awaiting_controller");
    assert_error(
        act(
            &app,
            &po,
            &id,
            "verify",
            json!({"method": "document", "evidence": "x"}),
        )
        .await,
        409,
        "request_state",
        Some("R35"),
    )
    .await;
    // The tenant's own filing for its end user is its instruction.
    let (_, status) = file(admin, user.to_string()).await;
    assert_eq!(status, "received");
    app.stop().await;
}

#[tokio::test]
async fn refusals_cite_one_of_eight_grounds_with_dispute_channels_r36_and_overdue_requests_are_listed_r35(
) {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Refuse Co").await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let file = |kind: &'static str| {
        let app = &app;
        let admin = admin.clone();
        let subject = subject.clone();
        async move {
            let v: Value = app
                .post(
                    "/v1/requests",
                    &admin,
                    json!({"subject": subject.to_string(), "type": kind}),
                )
                .await
                .json()
                .await
                .unwrap();
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let complaint = file("complaint").await;
    act(
        &app,
        &po,
        &complaint,
        "verify",
        json!({"method": "callback", "evidence": "call-7"}),
    )
    .await;
    assert_error(
        act(
            &app,
            &po,
            &complaint,
            "refuse",
            json!({"ground": "too_busy", "response": "no"}),
        )
        .await,
        422,
        "invalid_ground",
        Some("R36"),
    )
    .await;
    let v: Value = act(&app, &po, &complaint, "refuse", json!({"ground": "trade_secret", "response": "The log reveals another customer's secrets."}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "refused");
    assert_eq!(v["refusal_ground"], "trade_secret");
    assert!(v["dispute_channels"].as_array().unwrap().len() >= 2);

    // R32: real-name data cannot be corrected.
    let r = app
        .post(
            "/v1/requests",
            &admin,
            json!({"subject": subject.to_string(), "type": "correct", "categories": ["real_name"]}),
        )
        .await;
    assert_error(r, 422, "real_name_not_correctable", Some("R32")).await;

    // The 30-day clock: past it, the open request is overdue and counted.
    let open = file("access").await;
    let listed: Value = app
        .get("/v1/requests?overdue=true", &po)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.as_array().unwrap().is_empty());
    app.clock.advance(time::Duration::days(31));
    let listed: Value = app
        .get("/v1/requests?overdue=true", &po)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![open.as_str()],
        "refused requests are never overdue"
    );
    assert_eq!(listed[0]["overdue"], true);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tutela_requests_overdue 1"), "{metrics}");

    // One extension with a reason; the subject is told.
    let r = act(
        &app,
        &po,
        &open,
        "extend",
        json!({"reason": "Backups must be searched", "days": 15}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["overdue"], false);
    assert_error(
        act(
            &app,
            &po,
            &open,
            "extend",
            json!({"reason": "again", "days": 5}),
        )
        .await,
        409,
        "request_state",
        Some("R35"),
    )
    .await;
    let messages = app.state.store.messages_of(&subject).await.unwrap();
    assert!(messages.iter().any(|m| m.template == "request-extended"));
    assert_error(
        app.get("/v1/requests", &admin).await,
        403,
        "forbidden",
        None,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_access_request_is_fulfilled_by_an_expiring_export_of_everything_r33_r35() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Export Co").await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let r = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/subjects/{subject}/records/administrator"),
            Some(&admin),
            Some(json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "<b>李四</b>", "email": "li.si@example.cn"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.post(
        &format!("/v1/subjects/{subject}/consents"),
        &admin,
        json!({"purpose": "research", "granted": true, "statement_version": "2.0", "channel": "portal", "evidence": {"method": "portal_session", "reference": "sess-1"}}),
    )
    .await;
    let v: Value = app
        .post(
            "/v1/requests",
            &admin,
            json!({"subject": subject.to_string(), "type": "access"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    // Not before identity is verified and work started.
    assert_error(
        act(&app, &po, &id, "export", json!({})).await,
        409,
        "request_state",
        Some("R35"),
    )
    .await;
    act(
        &app,
        &po,
        &id,
        "verify",
        json!({"method": "video_call", "evidence": "vc-9"}),
    )
    .await;
    act(&app, &po, &id, "start", json!({})).await;
    let r = act(&app, &po, &id, "export", json!({})).await;
    assert_eq!(r.status(), 201);
    let link: Value = r.json().await.unwrap();
    let url = link["download_url"].as_str().unwrap();
    let path = format!("/d/{}", url.rsplit("/d/").next().unwrap());

    // The link works without login and carries everything.
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["subject"]["id"], subject.to_string());
    assert_eq!(export["records"][0]["category"], "administrator");
    assert_eq!(export["records"][0]["fields"]["email"], "li.si@example.cn");
    assert_eq!(export["consents"][0]["purpose"], "research");
    // The export shows how each consent was recorded, not the recorder's token id.
    assert_eq!(export["consents"][0]["method"], "portal_session");
    assert_eq!(export["consents"][0]["evidence_ref"], "sess-1");
    assert!(export["consents"][0].get("recorded_by_token").is_none());
    assert!(export["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "write"));
    // The link works once (issue 14): a second download gets nothing.
    let r = anonymous
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_error(r, 410, "export_link_used", None).await;
    // A readable page, with values escaped, from a fresh link.
    let fresh: Value = act(&app, &po, &id, "export", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let fresh = fresh["download_url"].as_str().unwrap();
    let html_path = format!("/d/{}", fresh.rsplit("/d/").next().unwrap());
    let html = anonymous
        .get(format!("{}{html_path}?format=html", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;b&gt;李四&lt;/b&gt;") && !html.contains("<b>李四</b>"),
        "{html}"
    );
    // Each download is audited per category; the refused second attempt too.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let exports: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "export")
        .map(|e| e.decision.as_str())
        .collect();
    assert_eq!(exports, vec!["allow", "deny", "allow"]);
    // Forged and expired links give nothing.
    let mut forged = path.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let r = anonymous
        .get(format!("{}{forged}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let unused: Value = act(&app, &po, &id, "export", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let unused = unused["download_url"].as_str().unwrap();
    let path = format!("/d/{}", unused.rsplit("/d/").next().unwrap());
    // Short-lived: 15 minutes by default.
    app.clock.advance(time::Duration::minutes(16));
    let r = anonymous
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_error(r, 410, "link_expired", None).await;
    app.stop().await;
}

#[tokio::test]
async fn an_export_link_is_short_lived_single_use_and_only_the_requesters_r29_r33() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Link Co").await;
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let r = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/subjects/{subject}/records/administrator"),
            Some(&admin),
            Some(json!({"purpose": "account_admin", "service": "azure", "fields": {"email": "wang.wu@example.cn"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = app
        .post(
            "/v1/requests",
            &admin,
            json!({"subject": subject.to_string(), "type": "access"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    act(
        &app,
        &po,
        &id,
        "verify",
        json!({"method": "document", "evidence": "scan-5"}),
    )
    .await;
    act(&app, &po, &id, "start", json!({})).await;
    let link: Value = act(&app, &po, &id, "export", json!({}))
        .await
        .json()
        .await
        .unwrap();
    // Fifteen minutes, not days.
    let expires = time::OffsetDateTime::parse(
        link["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - T0, time::Duration::minutes(15));
    let url = link["download_url"].as_str().unwrap();
    let path = format!("{}/d/{}", app.base, url.rsplit("/d/").next().unwrap());
    let client = reqwest::Client::new();
    // Signed in as someone else: refused, and the link is not spent.
    let (_, _, stranger) = app.tenant_with_admin("Stranger Co").await;
    for other in [stranger.as_str(), po.as_str()] {
        let r = client.get(&path).bearer_auth(other).send().await.unwrap();
        assert_error(r, 403, "not_requester", Some("R29")).await;
    }
    // A bad token is not the absence of one.
    let r = client
        .get(&path)
        .bearer_auth("tutela_nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The requester, signed in, downloads it once.
    let r = client.get(&path).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let export: Value = r.json().await.unwrap();
    assert_eq!(
        export["records"][0]["fields"]["email"],
        "wang.wu@example.cn"
    );
    for token in [Some(admin.as_str()), None] {
        let mut req = client.get(&path);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_error(req.send().await.unwrap(), 410, "export_link_used", None).await;
    }
    // The consumption survives a restart: it is in the store, not in memory.
    let app = app.restart().await;
    let path = format!("{}/d/{}", app.base, url.rsplit("/d/").next().unwrap());
    let r = client.get(&path).send().await.unwrap();
    assert_error(r, 410, "export_link_used", None).await;
    // Every attempt is on record: two strangers, one download, three reuses.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let attempts: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.action == "export")
        .map(|e| (e.decision.as_str(), e.reason.rsplit(' ').next().unwrap()))
        .collect();
    assert_eq!(
        attempts,
        vec![
            ("deny", "not_requester"),
            ("deny", "not_requester"),
            ("allow", "download"),
            ("deny", "link_used"),
            ("deny", "link_used"),
            ("deny", "link_used"),
        ]
    );
    app.stop().await;
}
