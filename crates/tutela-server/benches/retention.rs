//! Retention engine throughput (issue 7; R19): erase `SUBJECTS` subjects (default
//! 100,000) of a tenant whose retention has fully ended — each with an administrator
//! record (deleted) and a payment record (anonymized into aggregates, so it is opened
//! first) — and report subjects/s and the engine's peak memory.
//!
//!   cargo bench -p tutela-server --bench retention
//!   TUTELA_BENCH_SUBJECTS=25000 cargo bench -p tutela-server --bench retention
//!   TUTELA_BENCH_DB=postgres://postgres@127.0.0.1:5432/bench_ret cargo bench ... (PostgreSQL)
//!
//! Peak memory: the process's peak RSS is reset (`/proc/self/clear_refs`, 5) after
//! seeding, so `VmHWM` afterwards is the run's own peak.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark harness"
)]

use std::sync::Arc;
use std::time::Instant;
use tutela_app::retention_engine::{self as retention, RunOptions};
use tutela_app::seed::{self, SeedSpec};
use tutela_core::clock::SystemClock;
use tutela_core::tenant::TenantState;
use tutela_core::Category;
use tutela_server::Config;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let subjects: usize = std::env::var("TUTELA_BENCH_SUBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        database_url: std::env::var("TUTELA_BENCH_DB").ok(),
        policy: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/statement.toml").into()),
        ..Config::default()
    };
    let state = tutela_app::startup::open_state(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let now = state.clock.now();
    let closed = now - time::Duration::days(2000);
    let seeding = Instant::now();
    let spec = SeedSpec {
        subjects,
        state: TenantState::Closed,
        closed_at: Some(closed),
        frozen_until: Some(closed + time::Duration::days(1095)),
        records: vec![
            (
                Category::Administrator,
                "azure".into(),
                [
                    ("name".to_owned(), "张伟".to_owned()),
                    ("email".to_owned(), "zhang.wei@example.cn".to_owned()),
                ]
                .into(),
            ),
            (
                Category::Payment,
                "azure".into(),
                [
                    ("card_number".to_owned(), "6222021234567890".to_owned()),
                    ("holder_name".to_owned(), "张伟".to_owned()),
                ]
                .into(),
            ),
        ],
    };
    let (_, ids) = seed::tenant_with_subjects(&state, &spec).await.unwrap();
    drop(ids);
    println!(
        "backend: {}; seeded {subjects} subjects (2 records each) in {:.1} s",
        state.store.backend().as_str(),
        seeding.elapsed().as_secs_f64()
    );
    let rss_before = status_kib("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let summary = retention::run(
        &state,
        RunOptions {
            dry_run: false,
            batch: state.config.retention.batch,
            lease_secs: state.config.retention.lease_secs,
            wait_for_leases: false,
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.subjects_erased, subjects as u64);
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = subjects as f64 / secs;
    println!(
        "erased {} subjects ({} records deleted, {} anonymized) in {secs:.2} s: {rate:.0} subjects/s; RSS before {} MiB, run peak {} MiB",
        summary.subjects_erased,
        summary.records_deleted,
        summary.records_anonymized,
        rss_before / 1024,
        status_kib("VmHWM:") / 1024
    );
    state.store.close().await;
}
