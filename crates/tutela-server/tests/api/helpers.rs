//! `spawn_app()` and friends.

use reqwest::{Client, Method, Response};
use serde_json::Value;
use std::sync::Arc;
use tutela_app::config::Config;
use tutela_app::tokens::{self, TokenRequest};
use tutela_core::actor::DataScope;
use tutela_core::clock::ManualClock;
use tutela_core::{Category, Purpose, Region, Role, SubjectId, TenantId};
use tutela_server::{AppState, Application};

/// The start of every test's world: 2026-11-28 09:00 UTC.
pub const T0: time::OffsetDateTime = time::macros::datetime!(2026-11-28 09:00 UTC);

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub data_dir: tempfile::TempDir,
    /// Holds the audit witness file (`audit.witness_file`), outside the data directory.
    pub witness_dir: tempfile::TempDir,
    /// The master key's directory, apart from the data (as in production).
    pub key_dir: Arc<tempfile::TempDir>,
    config: Config,
    pg_db: Option<PgDatabase>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A throwaway PostgreSQL database, dropped with the test.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; use a fresh one on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn backend_is_postgres() -> bool {
    std::env::var("TUTELA_TEST_DB").is_ok_and(|v| v == "postgres")
}

fn pg_admin_url() -> String {
    std::env::var("TUTELA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub async fn fresh_pg_database() -> PgDatabase {
    use sqlx::Connection as _;
    let admin_url = pg_admin_url();
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("TUTELA_TEST_DB=postgres but PostgreSQL is not reachable (set TUTELA_TEST_PG_URL)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    // CI asserts that the PostgreSQL run really used PostgreSQL.
    if let Ok(marker) = std::env::var("TUTELA_TEST_PG_MARKER") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(marker)
        {
            let _ = writeln!(f, "{name}");
        }
    }
    PgDatabase { admin_url, name }
}

impl PgDatabase {
    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

/// Starts the server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server after `tweak` adjusts the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let key_dir = Arc::new(tempfile::tempdir().unwrap());
    let pg_db = if backend_is_postgres() {
        Some(fresh_pg_database().await)
    } else {
        None
    };
    let mut config = Config {
        data_dir: data_dir.path().to_owned(),
        database_url: pg_db.as_ref().map(PgDatabase::url),
        policy: Some(std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policy/statement.toml"
        ))),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let witness_dir = tempfile::tempdir().unwrap();
    config.audit.witness_file = Some(witness_dir.path().join("audit.heads"));
    config.crypto.key_file = Some(key_dir.path().join("master.key"));
    tweak(&mut config);
    start(
        config,
        Arc::new(ManualClock::new(T0)),
        data_dir,
        witness_dir,
        key_dir,
        pg_db,
    )
    .await
}

async fn start(
    config: Config,
    clock: Arc<ManualClock>,
    data_dir: tempfile::TempDir,
    witness_dir: tempfile::TempDir,
    key_dir: Arc<tempfile::TempDir>,
    pg_db: Option<PgDatabase>,
) -> TestApp {
    // reqwest's rustls backend uses the process-wide provider (ring), as the server does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = Application::build(config.clone(), clock.clone())
        .await
        .expect("application builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: Client::new(),
        clock,
        state,
        data_dir,
        witness_dir,
        key_dir,
        config,
        pg_db,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Mints a token directly (as `tutela token create` does).
    pub async fn token(
        &self,
        role: Role,
        tenant: Option<&TenantId>,
        subject: Option<&SubjectId>,
        region: Region,
    ) -> String {
        let req = TokenRequest::new(role, tenant.cloned(), subject.cloned(), region, "test");
        tokens::create(&self.state.store, self.clock.as_ref(), req)
            .await
            .unwrap()
            .1
    }

    /// A `service` token scoped to the given purposes and categories (R29).
    pub async fn service_token(&self, purposes: &[Purpose], categories: &[Category]) -> String {
        let mut req = TokenRequest::new(Role::Service, None, None, Region::Cn, "test service");
        req.scope = DataScope::new(purposes.to_vec(), categories.to_vec());
        tokens::create(&self.state.store, self.clock.as_ref(), req)
            .await
            .unwrap()
            .1
    }

    /// A `service` token scoped to every purpose and category: for tests of later steps
    /// that are not about the token's scope.
    pub async fn service_all(&self) -> String {
        self.service_token(Purpose::ALL, Category::ALL).await
    }

    pub async fn operator(&self) -> String {
        self.token(Role::Operator, None, None, Region::Cn).await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    /// Creates a tenant through the API and returns its id.
    pub async fn create_tenant(&self, name: &str) -> TenantId {
        let op = self.operator().await;
        let r = self
            .post(
                "/v1/tenants",
                &op,
                serde_json::json!({"name": name, "kind": "enterprise"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        TenantId::parse(v["id"].as_str().unwrap()).unwrap()
    }

    /// Registers a subject through the API and returns its id.
    pub async fn create_subject(&self, tenant: &TenantId, body: Value) -> SubjectId {
        let op = self.operator().await;
        let r = self
            .post(&format!("/v1/tenants/{tenant}/subjects"), &op, body)
            .await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        SubjectId::parse(v["id"].as_str().unwrap()).unwrap()
    }

    /// A tenant with one administrator subject and a token for the tenant's admin.
    pub async fn tenant_with_admin(&self, name: &str) -> (TenantId, SubjectId, String) {
        let tenant = self.create_tenant(name).await;
        let subject = self
            .create_subject(&tenant, serde_json::json!({"kind": "administrator"}))
            .await;
        let admin = self
            .token(Role::TenantAdmin, Some(&tenant), None, Region::Cn)
            .await;
        (tenant, subject, admin)
    }

    /// Stops the server and starts a new one on the same data, configuration and clock
    /// (a new port): what a restart keeps is what the database kept.
    pub async fn restart(mut self) -> TestApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        let (config, clock) = (self.config.clone(), self.clock.clone());
        let pg_db = self.pg_db.take();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        let witness_dir = std::mem::replace(&mut self.witness_dir, tempfile::tempdir().unwrap());
        start(
            config,
            clock,
            data_dir,
            witness_dir,
            self.key_dir.clone(),
            pg_db,
        )
        .await
    }

    /// Stops the server (its final sealing pass included) but keeps its database, data
    /// directory and witness, for edits made while nothing runs.
    pub async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Polls `check` (real time, every 20 ms, up to 20 s) until it returns `Some`:
    /// for work a background task does (the outbox sender), never for timing.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        for _ in 0..1000 {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        drop(self.pg_db.take());
    }
}

/// Builds the application from a fresh configuration adjusted by `tweak` (which also
/// gets a scratch directory for files it needs) and returns the startup error with its
/// cause chain. Panics if startup succeeds.
pub async fn startup_error(tweak: impl FnOnce(&mut Config, &std::path::Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    tweak(&mut config, dir.path());
    match Application::build(config, Arc::new(ManualClock::new(T0))).await {
        Ok(_) => panic!("startup was expected to fail"),
        Err(e) => format!("{e:#}"),
    }
}

/// Asserts an error response: status, `error.code`, and (when given) `error.clause`.
pub async fn assert_error(resp: Response, status: u16, code: &str, clause: Option<&str>) -> Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "error bodies are JSON, got {ct:?}"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    match clause {
        Some(c) => assert_eq!(v["error"]["clause"], c, "{v}"),
        None => assert!(v["error"].get("clause").is_none(), "{v}"),
    }
    v
}

/// Files under `dir` (recursively) that contain `needle`: planted personal values must
/// never reach the data directory in clear (R29).
pub fn grep_dir(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(grep_dir(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

/// Cookie-consent helpers (R16): the banner's calls.
pub async fn post_choice(app: &TestApp, body: &str, content_type: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/cookie-consents", app.base))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// A visitor id issued by the server, as the banner obtains it.
pub async fn issued_visitor(app: &TestApp) -> String {
    let r = app
        .client
        .post(format!("{}/v1/cookie-consents/visitors", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let v: Value = r.json().await.unwrap();
    v["visitor_id"].as_str().unwrap().to_owned()
}
