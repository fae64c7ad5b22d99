//! Bad input of every class gets a 4xx of the standard shape: never a 500, never a panic.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let op = app.operator().await;
    let r = app
        .client
        .post(format!("{}/v1/tenants", app.base))
        .bearer_auth(&op)
        .header("content-type", "application/json")
        .body("{\"name\": \"x\", ")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "malformed_json", None).await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_and_missing_fields_are_422() {
    let app = spawn_app().await;
    let op = app.operator().await;
    let r = app
        .post(
            "/v1/tenants",
            &op,
            json!({"name": "x", "kind": "enterprise", "colour": "blue"}),
        )
        .await;
    let v = assert_error(r, 422, "invalid_body", None).await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("colour"),
        "{v}"
    );
    let r = app
        .post("/v1/tenants", &op, json!({"kind": "enterprise"}))
        .await;
    assert_error(r, 422, "invalid_body", None).await;
    let r = app
        .post(
            "/v1/tenants",
            &op,
            json!({"name": "x", "kind": "government"}),
        )
        .await;
    let v = assert_error(r, 422, "invalid_kind", None).await;
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("enterprise, individual"));
    let r = app
        .post(
            "/v1/tenants",
            &op,
            json!({"name": "   ", "kind": "enterprise"}),
        )
        .await;
    assert_error(r, 422, "invalid_name", None).await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_birth_dates_are_422_citing_r43() {
    let app = spawn_app().await;
    let t = app.create_tenant("A").await;
    let op = app.operator().await;
    for bad in ["2010-13-01", "yesterday", "2030-01-01"] {
        let r = app
            .post(
                &format!("/v1/tenants/{t}/subjects"),
                &op,
                json!({"kind": "end_user", "birth_date": bad}),
            )
            .await;
        assert_error(r, 422, "invalid_birth_date", Some("R43")).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let app = spawn_app_with(|c| c.limits.body_bytes = 1024).await;
    let op = app.operator().await;
    let r = app
        .post(
            "/v1/tenants",
            &op,
            json!({"name": "x".repeat(4096), "kind": "enterprise"}),
        )
        .await;
    assert_error(r, 413, "payload_too_large", None).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_ids_are_404_with_the_expected_shape() {
    let app = spawn_app().await;
    let op = app.operator().await;
    for path in [
        "/v1/tenants/nope",
        "/v1/tenants/sub_00000000000000000000000000000000",
        "/v1/subjects/ten_00000000000000000000000000000000",
        "/v1/subjects/%00",
    ] {
        let v = assert_error(app.get(path, &op).await, 404, "not_found", None).await;
        assert!(
            v["error"]["message"].as_str().unwrap().contains("id"),
            "{v}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_content_type_is_415() {
    let app = spawn_app().await;
    let op = app.operator().await;
    let r = app
        .client
        .post(format!("{}/v1/tenants", app.base))
        .bearer_auth(&op)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "unsupported_media_type", None).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let app = spawn_app().await;
    for header in [
        "",
        "Bearer",
        "Bearer nonsense",
        "Basic dXNlcjpwdw==",
        "Bearer tutela_zz_zz",
    ] {
        let r = app
            .client
            .get(format!("{}/v1/policy", app.base))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_error(r, 401, "unauthorized", None).await;
    }
    let unknown = format!("tutela_{}_{}", "0".repeat(32), "0".repeat(64));
    assert_error(
        app.get("/v1/policy", &unknown).await,
        401,
        "unauthorized",
        None,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_have_the_error_shape() {
    let app = spawn_app().await;
    let op = app.operator().await;
    assert_error(
        app.get("/v1/nothing-here", &op).await,
        404,
        "not_found",
        None,
    )
    .await;
    let r = app
        .request(Method::DELETE, "/v1/policy", Some(&op), None)
        .await;
    assert_eq!(
        r.headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().contains("GET")),
        Some(true)
    );
    assert_error(r, 405, "method_not_allowed", None).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_query_strings_are_422() {
    let app = spawn_app().await;
    let t = app.create_tenant("A").await;
    let op = app.operator().await;
    assert_error(
        app.get(&format!("/v1/tenants/{t}/subjects?limit=abc"), &op)
            .await,
        422,
        "invalid_query",
        None,
    )
    .await;
    assert_error(
        app.get(&format!("/v1/tenants/{t}/subjects?limit=0"), &op)
            .await,
        422,
        "invalid_query",
        None,
    )
    .await;
    assert_error(
        app.get(&format!("/v1/tenants/{t}/subjects?after=bogus"), &op)
            .await,
        422,
        "invalid_query",
        None,
    )
    .await;
    assert_error(
        app.get(&format!("/v1/tenants/{t}/subjects?colour=red"), &op)
            .await,
        422,
        "invalid_query",
        None,
    )
    .await;
    app.stop().await;
}
