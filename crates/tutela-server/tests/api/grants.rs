//! Just-in-time overseas support access through HTTP (issue 5; R7, R22): denied without
//! a grant, pending until the customer approves, reading within scope, every access
//! listed for the customer, cut off when the incident is resolved or time runs out.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Region, Role};

#[tokio::test]
async fn an_overseas_engineer_is_denied_granted_reads_and_is_cut_off_on_resolution_r7() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = app.tenant_with_admin("Support Co").await;
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/customer"),
            Some(&admin),
            Some(json!({"purpose": "provide_service", "service": "azure", "fields": {"object_ref": "vm-42"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let engineer = app.token(Role::Support, None, None, Region::Overseas).await;
    let read = format!("/v1/subjects/{subject}/records/customer?purpose=troubleshooting");
    assert_error(
        app.get(&read, &engineer).await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;

    let r = app
        .post("/v1/grants", &engineer, json!({"tenant": tenant.to_string(), "incident": "INC-1001", "categories": ["customer"], "reason": "VM fails to boot after patch", "minutes": 120}))
        .await;
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["status"], "pending");
    let id = g["id"].as_str().unwrap().to_owned();
    // Pending is not access.
    assert_error(
        app.get(&read, &engineer).await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;

    // Only this tenant's admin answers.
    let (_, _, other_admin) = app.tenant_with_admin("Other Co").await;
    assert_error(
        app.post(&format!("/v1/grants/{id}/approve"), &other_admin, json!({}))
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.post(&format!("/v1/grants/{id}/approve"), &engineer, json!({}))
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    let r = app
        .post(&format!("/v1/grants/{id}/approve"), &admin, json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["status"], "active");
    assert!(g["expires_at"].is_string());

    // Within scope: allowed. Outside (another category, a write): 403 citing R7.
    let r = app.get(&read, &engineer).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["object_ref"],
        "vm-42"
    );
    assert_error(
        app.get(
            &format!("/v1/subjects/{subject}/records/administrator?purpose=troubleshooting"),
            &engineer,
        )
        .await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;
    let r = app
        .request(Method::PUT, &format!("/v1/subjects/{subject}/records/customer"), Some(&engineer), Some(json!({"purpose": "troubleshooting", "service": "azure", "fields": {"object_ref": "x"}})))
        .await;
    assert_error(r, 403, "overseas_access_needs_grant", Some("R7")).await;

    // The customer sees the grant and every access made under it.
    let detail: Value = app
        .get(&format!("/v1/grants/{id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    let accesses = detail["accesses"].as_array().unwrap();
    assert_eq!(accesses.len(), 1, "{detail}");
    assert_eq!(accesses[0]["subject"], subject.to_string());
    assert_eq!(accesses[0]["category"], "customer");
    assert_eq!(accesses[0]["purpose"], "troubleshooting");
    let list: Value = app
        .get(&format!("/v1/tenants/{tenant}/grants"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_error(
        app.get(&format!("/v1/grants/{id}"), &other_admin).await,
        404,
        "not_found",
        None,
    )
    .await;

    // Resolving the incident ends access at once.
    let r = app
        .post(
            "/v1/incidents/INC-1001/resolve",
            &engineer,
            json!({"tenant": tenant.to_string()}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ended"][0], id.as_str());
    assert_error(
        app.get(&read, &engineer).await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;
    let r = app
        .post(&format!("/v1/grants/{id}/approve"), &admin, json!({}))
        .await;
    assert_error(r, 409, "grant_state", Some("R7")).await;
    let g: Value = app
        .get(&format!("/v1/grants/{id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(g["status"], "ended");
    app.stop().await;
}

#[tokio::test]
async fn grants_expire_and_unanswered_requests_lapse_r7() {
    let app = spawn_app().await;
    let (tenant, subject, admin) = app.tenant_with_admin("Clock Co").await;
    app.request(
        Method::PUT,
        &format!("/v1/subjects/{subject}/records/customer"),
        Some(&admin),
        Some(json!({"purpose": "provide_service", "service": "azure", "fields": {"content": "x"}})),
    )
    .await;
    let engineer = app.token(Role::Support, None, None, Region::Overseas).await;
    let ask = |minutes: u32| json!({"tenant": tenant.to_string(), "incident": "INC-2002", "categories": ["customer"], "reason": "slow disk", "minutes": minutes});
    let id = app
        .post("/v1/grants", &engineer, ask(30))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.post(&format!("/v1/grants/{id}/approve"), &admin, json!({}))
            .await
            .status(),
        200
    );
    let read = format!("/v1/subjects/{subject}/records/customer?purpose=troubleshooting");
    assert_eq!(app.get(&read, &engineer).await.status(), 200);
    app.clock.advance(time::Duration::minutes(31));
    assert_error(
        app.get(&read, &engineer).await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;
    let g: Value = app
        .get(&format!("/v1/grants/{id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(g["status"], "expired");

    // A request nobody answers lapses after the configured 4 days.
    let late = app
        .post("/v1/grants", &engineer, ask(60))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(time::Duration::days(4));
    assert_error(
        app.post(&format!("/v1/grants/{late}/approve"), &admin, json!({}))
            .await,
        409,
        "grant_state",
        Some("R7"),
    )
    .await;
    // Denied requests stay denied.
    let denied = app
        .post("/v1/grants", &engineer, ask(60))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(&format!("/v1/grants/{denied}/deny"), &admin, json!({}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "denied");
    assert_error(
        app.post(&format!("/v1/grants/{denied}/approve"), &admin, json!({}))
            .await,
        409,
        "grant_state",
        Some("R7"),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn grant_requests_are_validated_r7() {
    let app = spawn_app().await;
    let (tenant, _, admin) = app.tenant_with_admin("Strict Co").await;
    let engineer = app.token(Role::Support, None, None, Region::Overseas).await;
    let base = json!({"tenant": tenant.to_string(), "incident": "INC-1", "categories": ["customer"], "reason": "r", "minutes": 60});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, code, clause) in [
        (
            with("incident", json!("bad incident id")),
            "invalid_incident",
            None,
        ),
        (with("categories", json!([])), "invalid_categories", None),
        (
            with("categories", json!(["secrets"])),
            "invalid_categories",
            None,
        ),
        (with("minutes", json!(0)), "invalid_duration", Some("R7")),
        (with("minutes", json!(481)), "invalid_duration", Some("R7")),
        (with("reason", json!("  ")), "invalid_reason", None),
    ] {
        let r = app.post("/v1/grants", &engineer, body.clone()).await;
        assert_error(r, 422, code, clause).await;
    }
    let r = app
        .post(
            "/v1/grants",
            &engineer,
            with("tenant", json!("ten_00000000000000000000000000000000")),
        )
        .await;
    assert_error(r, 404, "not_found", None).await;
    assert_error(
        app.post("/v1/grants", &admin, base.clone()).await,
        403,
        "forbidden",
        None,
    )
    .await;
    // The operator does not end support access (issue 14: incidents are the tenant's,
    // ended by the engineer, the tenant's admin or the privacy officer).
    let operator = app.operator().await;
    assert_error(
        app.post(
            "/v1/incidents/INC-1/resolve",
            &operator,
            json!({"tenant": tenant.to_string()}),
        )
        .await,
        403,
        "forbidden",
        None,
    )
    .await;
    let r = app
        .post("/v1/incidents/INC-1/resolve", &admin, json!({}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["ended"], json!([]));
    let list: Value = app
        .get(&format!("/v1/tenants/{tenant}/grants"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list.as_array().unwrap().is_empty(),
        "refused requests store nothing"
    );
    app.stop().await;
}
