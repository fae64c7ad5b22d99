//! Deletion requests end to end (issue 6; R33, R34): the real server on a loopback port,
//! a store of `SUBJECTS` subjects (default 100,000) each holding a support record that
//! two registered recipients receive, and a local receiver that acknowledges every
//! signed notice. Then `DELETIONS` (default 1,000) deletion requests run over HTTP with
//! 16 concurrent clients: file, verify identity, confirm consequences, start, erase (shred,
//! notices queued), wait until both recipients acknowledged, complete. Reported:
//! requests/s from the first filing to the last completion, and per-request latency.
//!
//!   cargo bench -p tutela-server --bench deletions
//!   TUTELA_BENCH_DB=postgres://postgres@127.0.0.1:5432/bench_del cargo bench ... (PostgreSQL)
//!
//! Setup (seeding) is timed separately and not part of the figure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark harness"
)]

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tutela_app::tokens::{self, TokenRequest};
use tutela_core::clock::SystemClock;
use tutela_core::tenant::TenantState;
use tutela_core::{Category, Region, Role};
use tutela_server::{Application, Config};

/// One request's total time and its phases (to erased, waiting for acks, completing).
type Timing = (Duration, [Duration; 3]);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let subjects = env_usize("TUTELA_BENCH_SUBJECTS", 100_000);
    let deletions = env_usize("TUTELA_BENCH_DELETIONS", 1_000).min(subjects);
    let concurrency = env_usize("TUTELA_BENCH_CONCURRENCY", 16);
    let _ = rustls::crypto::ring::default_provider().install_default();

    // A local receiver acknowledging every notice in its 2xx answer.
    let acks = Arc::new(AtomicUsize::new(0));
    let receiver_url = {
        let acks = acks.clone();
        let app = axum::Router::new().route(
            "/hook/{name}",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let acks = acks.clone();
                async move {
                    acks.fetch_add(1, Ordering::Relaxed);
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    axum::Json(json!({"acknowledged": true, "idempotency_key": key}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    };

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        database_url: std::env::var("TUTELA_BENCH_DB").ok(),
        policy: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/statement.toml").into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.outbox.poll_ms = 50;
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    println!(
        "backend: {}; subjects: {subjects}; deletions: {deletions}; concurrency: {concurrency}",
        state.store.backend().as_str()
    );

    // --- Seeding (not timed in the figure) ---
    let seeding = Instant::now();
    let spec = tutela_app::seed::SeedSpec {
        subjects,
        state: TenantState::Active,
        closed_at: None,
        frozen_until: None,
        records: vec![(
            Category::Support,
            "azure".into(),
            [("description".to_owned(), "VM will not boot".to_owned())].into(),
        )],
    };
    let (tenant_id, all) = tutela_app::seed::tenant_with_subjects(&state, &spec)
        .await
        .unwrap();
    let mint = |role, tenant: Option<&tutela_core::TenantId>| {
        let state = state.clone();
        let tenant = tenant.cloned();
        async move {
            tokens::create(
                &state.store,
                state.clock.as_ref(),
                TokenRequest::new(role, tenant, None, Region::Cn, "bench"),
            )
            .await
            .unwrap()
            .1
        }
    };
    let admin = mint(Role::TenantAdmin, Some(&tenant_id)).await;
    let officer = mint(Role::PrivacyOfficer, None).await;
    let operator = mint(Role::Operator, None).await;
    let client = reqwest::Client::new();
    for (name, kind) in [("helpdesk", "subprocessor"), ("sister", "affiliate")] {
        let r = client
            .post(format!("{base}/v1/recipients"))
            .bearer_auth(&operator)
            .json(&json!({"name": name, "kind": kind, "country": "CN", "purposes": ["support"], "categories": ["support"], "commitment_ref": "dpa-bench", "webhook_url": format!("{receiver_url}/hook/{name}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    println!(
        "seeded {} subjects with records in {:.1} s",
        all.len(),
        seeding.elapsed().as_secs_f64()
    );

    // Let the audit sealer catch up with the seed entries first.
    while !state.store.unsealed_audit(1).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "audit sealed after {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    // --- The measured part ---
    let targets: Vec<String> = all
        .iter()
        .step_by((subjects / deletions).max(1))
        .take(deletions)
        .map(ToString::to_string)
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(targets));
    let latencies: Arc<std::sync::Mutex<Vec<Timing>>> =
        Arc::new(std::sync::Mutex::new(Vec::with_capacity(deletions)));
    let syncs_before = state.store.durable_syncs();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, base, admin, officer) =
            (client.clone(), base.clone(), admin.clone(), officer.clone());
        let (queue, latencies) = (queue.clone(), latencies.clone());
        workers.spawn(async move {
            loop {
                let Some(subject) = queue.lock().unwrap().pop() else {
                    return;
                };
                let t = Instant::now();
                let phases = delete_one(&client, &base, &admin, &officer, &subject).await;
                latencies.lock().unwrap().push((t.elapsed(), phases));
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let elapsed = started.elapsed();
    let syncs = state.store.durable_syncs() - syncs_before;
    let cpu = cpu_seconds();
    let all_lat = latencies.lock().unwrap().clone();
    let mean_ms = |f: &dyn Fn(&Timing) -> Duration| {
        let total: Duration = all_lat.iter().map(f).sum();
        total.as_secs_f64() * 1000.0 / all_lat.len().max(1) as f64
    };
    println!(
        "mean per request: workflow to erased {:.1} ms, waiting for acknowledgements {:.1} ms, completing {:.1} ms",
        mean_ms(&|l| l.1[0]),
        mean_ms(&|l| l.1[1]),
        mean_ms(&|l| l.1[2])
    );
    let mut lat: Vec<Duration> = all_lat.iter().map(|l| l.0).collect();
    lat.sort();
    let pct = |p: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a short vector"
        )]
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i].as_secs_f64() * 1000.0
    };
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = deletions as f64 / elapsed.as_secs_f64();
    println!(
        "{deletions} deletions end to end (filed → erased → {} notices acknowledged → completed) in {:.2} s: {rate:.0} requests/s; latency p50 {:.1} ms, p99 {:.1} ms",
        acks.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    println!(
        "CPU of the whole process (server, clients, receiver): {:.1} s user, {:.1} s system over {:.1} s ({:.2} cores busy)",
        cpu.0 - cpu_before.0,
        cpu.1 - cpu_before.1,
        elapsed.as_secs_f64(),
        (cpu.0 - cpu_before.0 + cpu.1 - cpu_before.1) / elapsed.as_secs_f64()
    );
    if state.store.backend() == tutela_store::Backend::Sqlite {
        println!("{syncs} WAL syncs (group commit) for the measured part");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// User and system CPU seconds of this process so far (Linux `/proc/self/stat`, in the
/// kernel's 100 Hz clock ticks).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let tick = |i: usize| fields.get(i).copied().unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

async fn call(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let r = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {v}");
    v
}

async fn delete_one(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    officer: &str,
    subject: &str,
) -> [Duration; 3] {
    let t0 = Instant::now();
    let v = call(
        client,
        format!("{base}/v1/requests"),
        admin,
        json!({"subject": subject, "type": "delete"}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let step = |s: &str| format!("{base}/v1/requests/{id}/{s}");
    call(
        client,
        step("verify"),
        officer,
        json!({"method": "document", "evidence": "bench"}),
    )
    .await;
    call(client, step("confirm"), admin, json!({})).await;
    call(client, step("start"), officer, json!({})).await;
    let v = call(client, step("erase"), officer, json!({})).await;
    assert_eq!(v["deliveries"].as_array().map(Vec::len), Some(2), "{v}");
    let t1 = Instant::now();
    // Both recipients acknowledge through the outbox; poll the request until they have.
    loop {
        let v: Value = client
            .get(format!("{base}/v1/requests/{id}"))
            .bearer_auth(officer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let done = v["deliveries"]
            .as_array()
            .is_some_and(|ds| ds.iter().all(|d| d["status"] == "acknowledged"));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t2 = Instant::now();
    call(
        client,
        step("complete"),
        officer,
        json!({"response": "deleted"}),
    )
    .await;
    [t1 - t0, t2 - t1, t2.elapsed()]
}
