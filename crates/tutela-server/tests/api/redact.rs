//! `POST /v1/redact` through HTTP (issue 8; R13): support text comes back without the
//! personal information, with spans (never values), hashing keyed per tenant.

use crate::helpers::*;
use serde_json::{json, Value};
use tutela_core::{Region, Role};

const TEXT: &str = "2026-11-28 INFO 联系人：欧阳娜娜，手机13912345678，ip=148.100.110.84\nDear Emily Clark, card 6222 0212 3456 7890 128 is blocked. uuid 550e8400-e29b-41d4-a716-446655440000";

#[tokio::test]
async fn support_text_is_returned_without_personal_information_r13() {
    let app = spawn_app().await;
    let service = app.service_all().await;
    let r = app
        .post("/v1/redact", &service, json!({"text": TEXT}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["text"].as_str().unwrap();
    for planted in [
        "欧阳娜娜",
        "13912345678",
        "148.100.110.84",
        "Emily Clark",
        "6222 0212",
    ] {
        assert!(!text.contains(planted), "{planted} in {text}");
    }
    assert!(
        text.contains("<PERSON_ZH>")
            && text.contains("<CN_MOBILE>")
            && text.contains("<BANK_CARD>")
    );
    assert!(
        text.contains("550e8400-e29b-41d4-a716-446655440000"),
        "a UUID is not personal"
    );
    let spans = v["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 5);
    let first_line = TEXT.split('\n').next().unwrap();
    let s = &spans[1];
    assert_eq!(s["line"], 1);
    assert_eq!(
        &first_line[s["start"].as_u64().unwrap() as usize..s["end"].as_u64().unwrap() as usize],
        "13912345678"
    );
    assert!(
        !v["spans"].to_string().contains("13912345678"),
        "spans carry no values"
    );
    let r = app
        .post(
            "/v1/redact",
            &service,
            json!({"text": TEXT, "operator": "mask"}),
        )
        .await;
    let masked: Value = r.json().await.unwrap();
    assert!(masked["text"].as_str().unwrap().contains("*******5678"));

    // Hashing is keyed per tenant: stable inside one, different across tenants.
    let (t1, t2) = (app.create_tenant("A").await, app.create_tenant("B").await);
    let hash = |tenant: String| {
        let (app, service) = (&app, service.clone());
        async move {
            let r = app
                .post(
                    "/v1/redact",
                    &service,
                    json!({"text": "手机13912345678", "operator": "hash", "tenant": tenant}),
                )
                .await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (a1, a2, b1) = (
        hash(t1.to_string()).await,
        hash(t1.to_string()).await,
        hash(t2.to_string()).await,
    );
    assert_eq!(a1, a2);
    assert_ne!(a1, b1);
    assert!(a1.starts_with("手机<CN_MOBILE:"), "{a1}");
    assert_error(
        app.post(
            "/v1/redact",
            &service,
            json!({"text": "x", "operator": "hash"}),
        )
        .await,
        422,
        "tenant_required",
        Some("R13"),
    )
    .await;
    assert_error(
        app.post(
            "/v1/redact",
            &service,
            json!({"text": "x", "operator": "rot13"}),
        )
        .await,
        422,
        "invalid_operator",
        None,
    )
    .await;
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    assert_error(
        app.post("/v1/redact", &auditor, json!({"text": "x"})).await,
        403,
        "forbidden",
        None,
    )
    .await;

    // The audit trail records the redaction, not the text.
    let entries = app
        .state
        .store
        .audit_by_reason("redact:tag:5")
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(!format!("{entries:?}").contains("13912345678"));
    app.stop().await;
}

#[tokio::test]
async fn training_and_overseas_support_get_support_data_without_personal_information_r7_r13_r22() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = app.tenant_with_admin("Helpdesk Co").await;
    let record = format!("/v1/subjects/{subject}/records/support");
    let r = app
        .request(
            reqwest::Method::PUT,
            &record,
            Some(&admin),
            Some(json!({"purpose": "support", "service": "azure", "fields": {
                "contact": "王小明 13800138000",
                "description": "客户王小明反馈无法登录，手机13800138000，来源IP 148.100.110.84",
                "trace": "at c.a.u.UserService.login(UserService.java:42)"
            }})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let service = app.service_all().await;
    let read = |purpose: &'static str, token: String| {
        let (app, record) = (&app, record.clone());
        async move {
            let r = app
                .get(&format!("{record}?purpose={purpose}"), &token)
                .await;
            assert_eq!(r.status(), 200, "{purpose}");
            r.json::<Value>().await.unwrap()["fields"].clone()
        }
    };
    // Support itself sees the data; training only the redacted view (R13).
    let full = read("support", service.clone()).await;
    assert_eq!(full["contact"], "王小明 13800138000");
    let training = read("training", service.clone()).await;
    assert_eq!(training["contact"], "<REDACTED>");
    let d = training["description"].as_str().unwrap();
    assert!(
        !d.contains("王小明") && !d.contains("13800138000") && !d.contains("148.100.110.84"),
        "{d}"
    );
    assert!(d.contains("<CN_MOBILE>") && d.contains("无法登录"), "{d}");
    assert_eq!(
        training["trace"], full["trace"],
        "no personal information, nothing removed"
    );

    // An overseas engineer under a grant sees it redacted, unless the customer approved
    // personal information explicitly (R7, R22).
    let engineer = app.token(Role::Support, None, None, Region::Overseas).await;
    let grant = |pi: bool| {
        let (app, engineer, admin, tenant) =
            (&app, engineer.clone(), admin.clone(), tenant.to_string());
        async move {
            let r = app.post("/v1/grants", &engineer, json!({"tenant": tenant, "incident": "INC-7", "categories": ["support"], "reason": "login failure", "minutes": 60, "personal_information": pi})).await;
            assert_eq!(r.status(), 201);
            let g: Value = r.json().await.unwrap();
            assert_eq!(g["personal_information"], pi);
            let id = g["id"].as_str().unwrap().to_owned();
            assert_eq!(
                app.post(&format!("/v1/grants/{id}/approve"), &admin, json!({}))
                    .await
                    .status(),
                200
            );
            id
        }
    };
    let first = grant(false).await;
    let seen = read("troubleshooting", engineer.clone()).await;
    assert_eq!(seen["contact"], "<REDACTED>");
    assert!(!seen["description"]
        .as_str()
        .unwrap()
        .contains("13800138000"));
    assert_eq!(
        app.post(
            "/v1/incidents/INC-7/resolve",
            &engineer,
            json!({"tenant": tenant.to_string()})
        )
        .await
        .status(),
        200,
        "{first}"
    );
    grant(true).await;
    let seen = read("troubleshooting", engineer.clone()).await;
    assert_eq!(seen["contact"], "王小明 13800138000");
    app.stop().await;
}

#[tokio::test]
async fn format_preserving_tokens_are_reversed_only_for_an_allowed_purpose_r13() {
    let app = spawn_app().await;
    let (tenant, _, admin) = app.tenant_with_admin("Token Co").await;
    let service = app.service_all().await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let text = "手机 139-1234-5678 卡号 6222021234567890128";
    let r = app
        .post(
            "/v1/redact",
            &service,
            json!({"text": text, "operator": "token", "tenant": tenant.to_string()}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let out = v["text"].as_str().unwrap();
    assert!(
        !out.contains("139-1234-5678") && !out.contains("6222021234567890128"),
        "{out}"
    );
    assert_eq!(out.len(), text.len(), "format preserved: {out}");
    let mobile_token = &out[v["spans"][0]["start"].as_u64().unwrap() as usize
        ..v["spans"][0]["end"].as_u64().unwrap() as usize];
    assert_eq!(&mobile_token[3..4], "-");
    // Deterministic: the same value gives the same token (joins still work).
    let again: Value = app
        .post(
            "/v1/redact",
            &service,
            json!({"text": text, "operator": "token", "tenant": tenant.to_string()}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["text"], v["text"]);

    let ask = |token: String, purpose: &'static str, who: String| {
        let (app, tenant) = (&app, tenant.to_string());
        async move {
            app.post("/v1/detokenize", &who, json!({"tenant": tenant, "purpose": purpose, "legal_ref": "CASE-2026-77", "tokens": [{"type": "CN_MOBILE", "token": token}, {"type": "CN_MOBILE", "token": "000-0000-0000"}]})).await
        }
    };
    // The privacy officer names its basis (issue 14, R29).
    let r = app
        .post("/v1/detokenize", &officer, json!({"tenant": tenant.to_string(), "purpose": "support", "tokens": [{"type": "CN_MOBILE", "token": mobile_token}]}))
        .await;
    assert_error(r, 403, "basis_required", Some("R29")).await;
    let r = ask(mobile_token.to_owned(), "support", officer.clone()).await;
    assert_eq!(r.status(), 200);
    let back: Value = r.json().await.unwrap();
    assert_eq!(back["values"], json!(["139-1234-5678", null]));
    assert_eq!(
        ask(mobile_token.to_owned(), "troubleshooting", admin.clone())
            .await
            .status(),
        200
    );
    assert_error(
        ask(mobile_token.to_owned(), "training", officer.clone()).await,
        403,
        "purpose_not_allowed",
        Some("R13"),
    )
    .await;
    assert_error(
        ask(mobile_token.to_owned(), "support", service.clone()).await,
        403,
        "forbidden",
        None,
    )
    .await;
    // Another tenant's tokens do not exist for this admin (R2).
    let (_, _, other_admin) = app.tenant_with_admin("Other Co").await;
    assert_error(
        ask(mobile_token.to_owned(), "support", other_admin).await,
        404,
        "not_found",
        None,
    )
    .await;
    // The vault keeps no token in clear and no original in clear.
    let db = std::fs::read(app.data_dir.path().join("tutela.db")).unwrap_or_default();
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains("139-1234-5678"));
    app.stop().await;
}
