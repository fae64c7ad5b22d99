//! Tenants and subjects through the API, with the role rules of API.md (R2).

use crate::helpers::*;
use serde_json::{json, Value};
use tutela_core::{Region, Role};

#[tokio::test]
async fn operator_creates_tenants_in_trial_or_active_r41() {
    let app = spawn_app().await;
    let op = app.operator().await;
    let r = app
        .post(
            "/v1/tenants",
            &op,
            json!({"name": "蓝云示例", "kind": "enterprise"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "active");
    assert!(v["id"].as_str().unwrap().starts_with("ten_"));
    let r = app
        .post(
            "/v1/tenants",
            &op,
            json!({"name": "Trial Co", "kind": "individual", "trial": true}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "trial");
    let got: Value = app
        .get(&format!("/v1/tenants/{}", v["id"].as_str().unwrap()), &op)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "Trial Co");
    assert_eq!(got["kind"], "individual");
    assert_eq!(got["state"], "trial");
    assert_eq!(got["created_at"], "2026-11-28T09:00:00Z");
    app.stop().await;
}

#[tokio::test]
async fn only_operators_create_tenants() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("A").await;
    let cases = [
        app.token(Role::PrivacyOfficer, None, None, Region::Cn)
            .await,
        app.token(Role::Auditor, None, None, Region::Cn).await,
        app.token(Role::Service, None, None, Region::Cn).await,
        app.token(Role::Support, None, None, Region::Overseas).await,
        app.token(Role::TenantAdmin, Some(&tenant), None, Region::Cn)
            .await,
    ];
    for token in cases {
        let r = app
            .post(
                "/v1/tenants",
                &token,
                json!({"name": "X", "kind": "enterprise"}),
            )
            .await;
        assert_error(r, 403, "forbidden", None).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn tenant_admin_sees_its_tenant_and_nothing_of_others_r2() {
    let app = spawn_app().await;
    let a = app.create_tenant("Tenant A").await;
    let b = app.create_tenant("Tenant B").await;
    let admin_a = app
        .token(Role::TenantAdmin, Some(&a), None, Region::Cn)
        .await;
    assert_eq!(
        app.get(&format!("/v1/tenants/{a}"), &admin_a)
            .await
            .status(),
        200
    );
    // Another tenant, and a tenant that does not exist, look the same: 404.
    let other = assert_error(
        app.get(&format!("/v1/tenants/{b}"), &admin_a).await,
        404,
        "not_found",
        None,
    )
    .await;
    let missing = assert_error(
        app.get("/v1/tenants/ten_00000000000000000000000000000000", &admin_a)
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_eq!(other, missing, "existence must not leak across tenants");
    // Subjects of another tenant: invisible, and cannot be registered.
    let sb = app.create_subject(&b, json!({"kind": "end_user"})).await;
    assert_error(
        app.get(&format!("/v1/subjects/{sb}"), &admin_a).await,
        404,
        "not_found",
        None,
    )
    .await;
    let r = app
        .post(
            &format!("/v1/tenants/{b}/subjects"),
            &admin_a,
            json!({"kind": "contact"}),
        )
        .await;
    assert_error(r, 404, "not_found", None).await;
    assert_error(
        app.get(&format!("/v1/tenants/{b}/subjects"), &admin_a)
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    // Privacy officer sees both; support and auditors may not read tenant profiles.
    let po = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    assert_eq!(
        app.get(&format!("/v1/tenants/{b}"), &po).await.status(),
        200
    );
    let support = app.token(Role::Support, None, None, Region::Cn).await;
    assert_error(
        app.get(&format!("/v1/tenants/{a}"), &support).await,
        403,
        "forbidden",
        None,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn subjects_are_registered_and_listed_per_tenant() {
    let app = spawn_app().await;
    let a = app.create_tenant("A").await;
    let admin = app
        .token(Role::TenantAdmin, Some(&a), None, Region::Cn)
        .await;
    let mut ids = Vec::new();
    for kind in ["administrator", "end_user", "contact"] {
        let r = app
            .post(
                &format!("/v1/tenants/{a}/subjects"),
                &admin,
                json!({"kind": kind}),
            )
            .await;
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page: Value = app
        .get(&format!("/v1/tenants/{a}/subjects?limit=2"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["subjects"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/v1/tenants/{a}/subjects?limit=2&after={next}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["subjects"].as_array().unwrap().len(), 1);
    assert!(rest.get("next").is_none());
    let mut listed: Vec<String> = page["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["subjects"].as_array().unwrap())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    app.stop().await;
}

#[tokio::test]
async fn minors_are_flagged_from_the_birth_date_r43() {
    let app = spawn_app().await;
    let a = app.create_tenant("A").await;
    let minor = app
        .create_subject(&a, json!({"kind": "end_user", "birth_date": "2010-05-01"}))
        .await;
    let adult = app
        .create_subject(&a, json!({"kind": "end_user", "birth_date": "1990-05-01"}))
        .await;
    let op = app.operator().await;
    let v: Value = app
        .get(&format!("/v1/subjects/{minor}"), &op)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["minor"], true);
    assert!(
        v.get("birth_date").is_none(),
        "the birth date itself is not echoed or kept"
    );
    let v: Value = app
        .get(&format!("/v1/subjects/{adult}"), &op)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["minor"], false);
    // Time moves: on their 18th birthday the minor becomes an adult.
    app.clock.set(time::macros::datetime!(2028-05-01 00:00 UTC));
    let v: Value = app
        .get(&format!("/v1/subjects/{minor}"), &op)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["minor"], false);
    app.stop().await;
}

#[tokio::test]
async fn end_user_sees_only_itself() {
    let app = spawn_app().await;
    let a = app.create_tenant("A").await;
    let me = app.create_subject(&a, json!({"kind": "end_user"})).await;
    let other = app.create_subject(&a, json!({"kind": "end_user"})).await;
    let token = app
        .token(Role::EndUser, Some(&a), Some(&me), Region::Cn)
        .await;
    assert_eq!(
        app.get(&format!("/v1/subjects/{me}"), &token)
            .await
            .status(),
        200
    );
    assert_error(
        app.get(&format!("/v1/subjects/{other}"), &token).await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.get(&format!("/v1/tenants/{a}"), &token).await,
        403,
        "forbidden",
        None,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn revoked_and_forged_tokens_are_refused() {
    let app = spawn_app().await;
    let op = app.operator().await;
    assert_eq!(app.get("/v1/policy", &op).await.status(), 200);
    // Same id, different secret.
    let forged = format!(
        "{}{}",
        &op[..op.len() - 4],
        if op.ends_with("0000") { "1111" } else { "0000" }
    );
    assert_error(
        app.get("/v1/policy", &forged).await,
        401,
        "unauthorized",
        None,
    )
    .await;
    let id = tutela_core::TokenId::parse(&format!("tok_{}", &op[7..39])).unwrap();
    assert!(tutela_app::tokens::revoke(&app.state, &id).await.unwrap());
    let r = app.get("/v1/policy", &op).await;
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_error(r, 401, "unauthorized", None).await;
    app.stop().await;
}
