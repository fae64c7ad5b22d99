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
    // A readable page, with values escaped.
    let html = anonymous
        .get(format!("{}{path}?format=html", app.base))
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
    // Each opening is audited per category.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "export").count(), 2);
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
    app.clock.advance(time::Duration::days(8));
    let r = anonymous
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_error(r, 410, "link_expired", None).await;
    app.stop().await;
}
