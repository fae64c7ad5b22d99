//! Contact preferences, the send gate and unsubscribe links through HTTP (issue 4; R9,
//! R15).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Region, Role, SubjectId};

async fn prefs(app: &TestApp, token: &str, subject: &SubjectId, body: Value) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("/v1/subjects/{subject}/preferences"),
        Some(token),
        Some(body),
    )
    .await
}

async fn send(app: &TestApp, token: &str, subject: &SubjectId, kind: &str, channel: &str) -> Value {
    let r = app
        .post(
            "/v1/messages",
            token,
            json!({"subject": subject.to_string(), "kind": kind, "channel": channel, "template": "monthly-news"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

#[tokio::test]
async fn service_communications_cannot_be_turned_off_and_preferences_are_per_channel_r9() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Prefs Co").await;
    let r = prefs(
        &app,
        &admin,
        &subject,
        json!({"service_communications": false}),
    )
    .await;
    assert_error(r, 422, "service_communications_required", Some("R9")).await;

    let r = prefs(
        &app,
        &admin,
        &subject,
        json!({"marketing": {"email": true}, "surveys": false}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["marketing"],
        json!({"email": true, "phone": false, "sms": false})
    );
    assert_eq!(
        v["surveys"],
        json!({"email": false, "phone": false, "sms": false})
    );
    assert_eq!(v["service_communications"], true);
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let v: Value = app
        .get(&format!("/v1/subjects/{subject}/preferences"), &po)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["marketing"]["email"], true);

    // Bad input and scope.
    let r = prefs(&app, &admin, &subject, json!({"marketing": "yes"})).await;
    assert_eq!(r.status(), 422);
    let r = prefs(&app, &admin, &subject, json!({"marketing": {"fax": true}})).await;
    assert_eq!(r.status(), 422);
    let (_, _, other_admin) = app.tenant_with_admin("Other Co").await;
    let r = prefs(&app, &other_admin, &subject, json!({"marketing": true})).await;
    assert_error(r, 404, "not_found", None).await;
    let service = app.token(Role::Service, None, None, Region::Cn).await;
    let r = prefs(&app, &service, &subject, json!({"marketing": true})).await;
    assert_error(r, 403, "forbidden", None).await;

    // Each change is an audit entry; unchanged values write nothing.
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let changes = audit
        .iter()
        .filter(|e| e.action.starts_with("preference_"))
        .count();
    assert_eq!(changes, 1, "only marketing/email changed");
    app.stop().await;
}

#[tokio::test]
async fn the_send_gate_honours_preferences_and_audits_every_decision_r9_r15() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Mail Co").await;
    let mailer = app.token(Role::Service, None, None, Region::Cn).await;
    let v = send(&app, &mailer, &subject, "service", "email").await;
    assert_eq!(v["status"], "queued");
    assert_eq!(v["clause"], "R9");
    assert!(
        v.get("unsubscribe_url").is_none(),
        "service mail carries no unsubscribe link"
    );
    // Promotional kinds are off until the subject opts in.
    for kind in ["marketing", "survey", "feedback"] {
        let v = send(&app, &mailer, &subject, kind, "email").await;
        assert_eq!(v["status"], "suppressed", "{kind}");
        assert_eq!(v["reason"], "preference_off");
    }
    prefs(
        &app,
        &admin,
        &subject,
        json!({"marketing": {"email": true}, "surveys": {"sms": true}}),
    )
    .await;
    assert_eq!(
        send(&app, &mailer, &subject, "marketing", "email").await["status"],
        "queued"
    );
    assert_eq!(
        send(&app, &mailer, &subject, "marketing", "sms").await["status"],
        "suppressed"
    );
    let survey = send(&app, &mailer, &subject, "survey", "sms").await;
    assert_eq!(survey["status"], "queued");
    assert_eq!(survey["clause"], "R15");

    // Bad input; only integrated systems and operators may send.
    let r = app
        .post("/v1/messages", &mailer, json!({"subject": subject.to_string(), "kind": "spam", "channel": "email", "template": "t"}))
        .await;
    assert_error(r, 422, "invalid_kind", None).await;
    let r = app
        .post("/v1/messages", &mailer, json!({"subject": subject.to_string(), "kind": "service", "channel": "email", "template": "<b>hi</b>"}))
        .await;
    assert_error(r, 422, "invalid_template", None).await;
    let r = app
        .post("/v1/messages", &admin, json!({"subject": subject.to_string(), "kind": "service", "channel": "email", "template": "t"}))
        .await;
    assert_error(r, 403, "forbidden", None).await;

    let stored = app.state.store.messages_of(&subject).await.unwrap();
    assert_eq!(stored.len(), 7);
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    let gate: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "send_message")
        .collect();
    assert_eq!(gate.len(), 7);
    assert_eq!(gate.iter().filter(|e| e.decision == "deny").count(), 4);
    app.stop().await;
}

/// The token part of an unsubscribe URL.
fn link_path(url: &str) -> String {
    format!("/u/{}", url.rsplit("/u/").next().unwrap())
}

#[tokio::test]
async fn a_signed_unsubscribe_link_opts_out_without_login_and_forgeries_change_nothing_r15() {
    let app = spawn_app().await;
    let (_, subject, admin) = app.tenant_with_admin("Link Co").await;
    let mailer = app.token(Role::Service, None, None, Region::Cn).await;
    prefs(
        &app,
        &admin,
        &subject,
        json!({"marketing": true, "surveys": true}),
    )
    .await;
    let v = send(&app, &mailer, &subject, "marketing", "email").await;
    let path = link_path(v["unsubscribe_url"].as_str().unwrap());
    let anonymous = reqwest::Client::new();

    // Forged: one character of the signature changed. Nothing changes.
    let mut forged = path.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let r = anonymous
        .post(format!("{}{forged}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("链接无效"));
    // Repurposed: the same signature on another topic.
    let other_topic = path.replacen(".marketing.", ".surveys.", 1);
    let r = anonymous
        .post(format!("{}{other_topic}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        send(&app, &mailer, &subject, "marketing", "email").await["status"],
        "queued"
    );

    // The page explains in Chinese and English and changes nothing by itself.
    let r = anonymous
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("退订确认") && html.contains("Confirm unsubscribe"),
        "{html}"
    );
    assert!(html.contains("<form method=\"post\""));
    assert_eq!(
        send(&app, &mailer, &subject, "marketing", "email").await["status"],
        "queued"
    );

    // Confirming opts out of marketing by e-mail only.
    let r = anonymous
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are unsubscribed"));
    assert_eq!(
        send(&app, &mailer, &subject, "marketing", "email").await["status"],
        "suppressed"
    );
    assert_eq!(
        send(&app, &mailer, &subject, "survey", "email").await["status"],
        "queued"
    );
    let audit = app
        .state
        .store
        .audit_for_subject(&subject.to_string())
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "preference_off"
        && e.role == "subject_link"
        && e.purpose.as_deref() == Some("marketing:email")));

    // Expired after the configured validity (60 days): refused, nothing changes.
    let survey_link = link_path(
        send(&app, &mailer, &subject, "survey", "email").await["unsubscribe_url"]
            .as_str()
            .unwrap(),
    );
    app.clock.advance(time::Duration::days(61));
    let r = anonymous
        .post(format!("{}{survey_link}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("This link has expired"));
    assert_eq!(
        send(&app, &mailer, &subject, "survey", "email").await["status"],
        "queued"
    );
    app.stop().await;
}
