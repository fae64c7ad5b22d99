//! Foundation: health, OpenAPI, metrics, the policy endpoint, storage, demo, shutdown.

use crate::helpers::*;
use serde_json::Value;
use tutela_core::{Region, Role};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    let r = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = spawn_app().await;
    let v: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/healthz",
        "/metrics",
        "/v1/policy",
        "/v1/tenants",
        "/v1/tenants/{tenant}",
        "/v1/tenants/{tenant}/subjects",
        "/v1/subjects/{subject}",
    ] {
        assert!(
            v["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(v["components"]["schemas"].get("ErrorBody").is_some());
    assert!(v["components"]["securitySchemes"].get("bearer").is_some());
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app().await;
    app.client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "tutela_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("tutela_http_request_duration_seconds_bucket"));
    assert!(text.contains("tutela_policy_categories 8"));
    app.stop().await;
}

#[tokio::test]
async fn policy_endpoint_has_the_verifier_shape_r3() {
    let app = spawn_app().await;
    let r = app
        .request(reqwest::Method::GET, "/v1/policy", None, None)
        .await;
    assert_error(r, 401, "unauthorized", None).await;

    let token = app.token(Role::Auditor, None, None, Region::Cn).await;
    let v: Value = app.get("/v1/policy", &token).await.json().await.unwrap();
    assert_eq!(v["version"], "2.0");
    assert_eq!(v["updated"], "2020-12-01");
    let services = v["services"].as_array().unwrap();
    assert!(
        services
            .iter()
            .any(|s| s["id"] == "azure" && s["preview"] == false),
        "R1"
    );
    assert!(
        services
            .iter()
            .any(|s| s["preview"] == true && s["security_note"].is_string()),
        "R42"
    );
    let purposes = v["purposes"].as_array().unwrap();
    assert!(purposes
        .iter()
        .all(|p| p["id"].is_string() && p["name_zh"].is_string() && p["name_en"].is_string()));
    let cats = v["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 8);
    let payment = cats.iter().find(|c| c["id"] == "payment").unwrap();
    assert_eq!(payment["sensitive"], true);
    assert_eq!(
        payment["purposes"],
        serde_json::json!(["transaction", "fraud_prevention"])
    );
    assert_eq!(payment["residency"], "cn");
    assert_eq!(payment["retention"]["action"], "anonymize");
    assert!(payment["retention"]["after_closure_days"].is_u64());
    // The access rules are published with the statement (issue 14, R29).
    let access = v["access"].as_array().unwrap();
    assert!(access
        .iter()
        .any(|r| r["role"] == "support" && r["requires"] == "grant" && r["clause"] == "R7"));
    assert!(!access.iter().any(|r| r["role"] == "auditor"));
    assert_eq!(payment["clause"], "R11");
    assert!(payment["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "card_number"));
    assert!(
        !payment["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "security_code"),
        "R12"
    );
    let customer = cats.iter().find(|c| c["id"] == "customer").unwrap();
    assert!(
        !customer["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "marketing"),
        "R5"
    );
    assert_eq!(v["refusal_grounds"].as_array().unwrap().len(), 8);
    assert_eq!(v["consent_exceptions"].as_array().unwrap().len(), 6);
    app.stop().await;
}

#[tokio::test]
async fn invalid_policy_file_refuses_to_start() {
    let msg = startup_error(|c, dir| {
        let bad = dir.join("bad.toml");
        let text = tutela_app::startup::BUILTIN_POLICY.replacen(
            "{ id = \"transaction\", clause = \"R11\" }",
            "{ id = \"transactions\", clause = \"R11\" }",
            1,
        );
        std::fs::write(&bad, text).unwrap();
        c.policy = Some(bad);
    })
    .await;
    assert!(msg.contains("bad.toml:"), "{msg}");
    assert!(msg.contains("categories.payment.purposes"), "{msg}");
    assert!(msg.contains("unknown purpose `transactions`"), "{msg}");
}

#[tokio::test]
async fn demo_is_idempotent_and_its_tokens_work() {
    let app = spawn_app().await;
    let first = tutela_app::demo::ensure(&app.state).await.unwrap();
    let second = tutela_app::demo::ensure(&app.state).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.tenant, second.tenant);
    assert_eq!(first.subjects, second.subjects);
    assert!(
        first.subjects.iter().any(|(_, _, minor)| *minor),
        "the demo includes a minor (R43)"
    );
    let labels: Vec<&str> = second.tokens.iter().map(|(l, _)| l.as_str()).collect();
    for role in [
        "operator",
        "privacy_officer",
        "auditor",
        "service (billing)",
        "support (cn)",
        "support (overseas)",
        "tenant_admin",
        "end_user",
    ] {
        assert!(labels.contains(&role), "{role} token missing");
    }
    let admin = &second
        .tokens
        .iter()
        .find(|(l, _)| l == "tenant_admin")
        .unwrap()
        .1;
    let r = app
        .get(&format!("/v1/tenants/{}", second.tenant), admin)
        .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("Persisted Co").await;
    if !backend_is_postgres() {
        assert!(
            app.data_dir.path().join("tutela.db").exists(),
            "SQLite lives in the data directory"
        );
    }
    // Close the running store, then open the same database again, as a restart would.
    app.state.store.close().await;
    let reopened = tutela_app::startup::open_state((*app.state.config).clone(), app.clock.clone())
        .await
        .unwrap();
    let stored = reopened.store.tenant(&tenant).await.unwrap().unwrap();
    assert!(
        matches!(stored.name, tutela_store::tenants::StoredName::Sealed(_)),
        "the name is sealed at rest (R29)"
    );
    assert_eq!(
        reopened
            .vault
            .tenant_name(&reopened.store, &stored)
            .await
            .unwrap()
            .as_str(),
        "Persisted Co"
    );
    reopened.store.close().await;
}

/// Issue 15: both migration trees produce the same schema: every column with its
/// normalized type and nullability, and every index and unique constraint with its columns.
#[tokio::test]
async fn both_migration_trees_produce_the_same_schema() {
    // The SQLite tree always runs; under TUTELA_TEST_DB=postgres the PostgreSQL tree is
    // compared with it.
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        tutela_store::Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()), T0)
            .await
            .unwrap();
    let sqlite_shape = sqlite.schema_shape().await.unwrap();
    for table in [
        "tenants",
        "subjects",
        "api_tokens",
        "records",
        "audit_entries",
    ] {
        assert!(
            sqlite_shape.columns.iter().any(|(t, ..)| t == table),
            "{table} missing"
        );
    }
    // The shape really carries types, nullability and indexes.
    assert!(sqlite_shape
        .columns
        .iter()
        .any(|(t, c, ty, not_null)| t == "records" && c == "fields" && ty == "blob" && *not_null));
    assert!(
        sqlite_shape
            .indexes
            .iter()
            .any(|(t, ..)| t == "audit_entries"),
        "{:?}",
        sqlite_shape.indexes
    );
    if backend_is_postgres() {
        let app = spawn_app().await;
        assert_eq!(app.state.store.backend(), tutela_store::Backend::Postgres);
        let pg_shape = app.state.store.schema_shape().await.unwrap();
        assert_eq!(
            sqlite_shape.differences(&pg_shape),
            Vec::<String>::new(),
            "first: SQLite, second: PostgreSQL"
        );
        app.stop().await;
    }
    sqlite.close().await;
}

#[tokio::test]
async fn graceful_stop_finishes() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let base = app.base.clone();
    app.stop().await;
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the listener is closed after shutdown"
    );
}

/// A configuration on SQLite in `root/data`, with the master key where the defaults put it.
fn config_in(root: &std::path::Path) -> tutela_server::Config {
    tutela_server::Config {
        data_dir: root.join("data"),
        policy: Some(std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policy/statement.toml"
        ))),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..tutela_server::Config::default()
    }
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_master_key_file_inside_the_data_directory_is_refused_at_start_up_r29() {
    let msg = startup_error(|c, _| {
        c.crypto.key_file = Some(c.data_dir.join("keys/master.key"));
    })
    .await;
    assert!(msg.contains("inside the data directory"), "{msg}");
    assert!(msg.contains("allow_key_in_data_dir"), "{msg}");
    // The explicit opt-in for legacy layouts starts.
    let root = tempfile::tempdir().unwrap();
    let mut config = config_in(root.path());
    config.crypto.key_file = Some(config.data_dir.join("master.key"));
    config.crypto.allow_key_in_data_dir = true;
    let app = tutela_server::Application::build(
        config.clone(),
        std::sync::Arc::new(tutela_core::clock::ManualClock::new(T0)),
    )
    .await
    .unwrap();
    assert!(config.data_dir.join("master.key").exists());
    app.state().store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_start_keeps_the_master_key_outside_the_data_directory_and_the_data_private_r29() {
    let root = tempfile::tempdir().unwrap();
    let config = config_in(root.path());
    let app = tutela_server::Application::build(
        config.clone(),
        std::sync::Arc::new(tutela_core::clock::ManualClock::new(T0)),
    )
    .await
    .unwrap();
    let state = app.state().clone();
    // A write, so the WAL has content.
    let op = tutela_app::tokens::create(
        &state.store,
        &tutela_core::clock::ManualClock::new(T0),
        tutela_app::tokens::TokenRequest::new(Role::Operator, None, None, Region::Cn, "t"),
    )
    .await
    .unwrap();
    assert!(op.1.starts_with("tutela_"));
    // The key: beside the data directory, not in it; 0600 in a 0700 directory.
    let key = root.path().join("tutela-keys/data.master.key");
    assert!(key.exists(), "the key is at {}", key.display());
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert!(!config.data_dir.join("master.key").exists());
    // The data: the directory 0700, every file in it 0600 (database, WAL, shared memory,
    // audit signing key).
    assert_eq!(mode(&config.data_dir), 0o700);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&config.data_dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    for expected in ["tutela.db", "tutela.db-wal", "tutela.db-shm"] {
        assert!(files.iter().any(|f| f == expected), "{files:?}");
    }
    state.store.close().await;
}

#[tokio::test]
async fn an_older_installs_master_key_in_the_data_directory_is_still_used() {
    let root = tempfile::tempdir().unwrap();
    let config = config_in(root.path());
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let legacy = config.data_dir.join("master.key");
    let (created, _) = tutela_crypto::keys::LocalKeyFile::open_or_create(&legacy).unwrap();
    let app = tutela_server::Application::build(
        config.clone(),
        std::sync::Arc::new(tutela_core::clock::ManualClock::new(T0)),
    )
    .await
    .unwrap();
    assert!(
        !root.path().join("tutela-keys").exists(),
        "no second key is made beside the data"
    );
    assert_eq!(
        config.master_key_location().unwrap().path(),
        legacy.as_path()
    );
    let (reopened, _) = tutela_crypto::keys::LocalKeyFile::open_or_create(&legacy).unwrap();
    assert_eq!(
        created.read().unwrap().current(),
        reopened.read().unwrap().current()
    );
    app.state().store.close().await;
}
