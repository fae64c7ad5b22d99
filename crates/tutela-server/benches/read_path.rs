//! One full purpose-checked read against SQLite (issue 3): decide + fetch the sealed
//! record with its key chain + unwrap keys + decrypt fields + append the audit entry
//! durably (group commit). HTTP parsing and JSON are left out; `bench/load.sh` measures
//! the whole server.
//!
//! Two figures: one reader alone (latency: each read waits for its own fsync), and 16
//! concurrent readers (throughput: their audit entries share commits).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tutela_core::clock::SystemClock;
use tutela_core::decide::{self, Action, ConsentView, Target};
use tutela_core::tenant::{SubjectKind, TenantKind, TenantName, TenantState};
use tutela_core::{Actor, Category, Purpose, Region, Role, TokenId};
use tutela_server::state::AppState;
use tutela_server::Config;
use tutela_store::subjects::Subject;
use tutela_store::tenants::Tenant;
use tutela_store::vault::{AuditEntry, RecordLookups, SealedRecord};

struct Fixture {
    state: AppState,
    actor: Actor,
    subject: Subject,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        policy: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/statement.toml").into()),
        ..Config::default()
    };
    let state = tutela_server::app::open_state(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let now = state.clock.now();
    let tenant = Tenant {
        id: tutela_server::ids::tenant(),
        name: TenantName::parse("Bench Co").unwrap(),
        kind: TenantKind::Enterprise,
        state: TenantState::Active,
        created_at: now,
        frozen_until: None,
    };
    state.store.insert_tenant(&tenant, None).await.unwrap();
    let subject = Subject {
        id: tutela_server::ids::subject(),
        tenant: tenant.id.clone(),
        kind: SubjectKind::Administrator,
        adult_on: None,
        created_at: now,
    };
    state.store.insert_subject(&subject).await.unwrap();
    let key = state
        .vault
        .subject_key(&state.store, &tenant.id, &subject.id, true)
        .await
        .unwrap()
        .unwrap();
    let fields: BTreeMap<String, String> = [
        ("name", "Bench Person"),
        ("email", "bench@example.cn"),
        ("phone", "13800138000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sealed = state
        .vault
        .seal_fields(&key, &subject.id, Category::Administrator, 1, &fields)
        .unwrap();
    let actor = Actor::new(
        TokenId::from_bytes([7; 16]),
        Role::TenantAdmin,
        Some(tenant.id.clone()),
        None,
        Region::Cn,
    )
    .unwrap();
    let record = SealedRecord {
        subject: subject.id.clone(),
        category: Category::Administrator,
        version: 1,
        service: "azure".into(),
        fields: sealed,
        updated_at: now,
    };
    let audit = entry(&state, &actor, &subject);
    let lookups = RecordLookups {
        tenant: &tenant.id,
        keys: &[],
    };
    assert!(state
        .store
        .put_record_audited(&record, 0, &audit, &lookups)
        .await
        .unwrap());
    Fixture {
        state,
        actor,
        subject,
        _dir: dir,
    }
}

fn entry(state: &AppState, actor: &Actor, subject: &Subject) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at: state.clock.now(),
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(subject.tenant.to_string()),
        subject: Some(subject.id.to_string()),
        category: Some("administrator".into()),
        purpose: Some("account_admin".into()),
        action: "read".into(),
        decision: "allow".into(),
        reason: "declared_purpose".into(),
        clause: Some("R8".into()),
        seq: None,
    }
}

async fn one_read(f: &Fixture) {
    let state = &f.state;
    let now = state.clock.now();
    let d = decide::decide(
        &state.policy,
        &decide::Request {
            actor: &f.actor,
            action: Action::Read,
            target: Target {
                tenant: &f.subject.tenant,
                subject: &f.subject.id,
                tenant_state: TenantState::Active,
                minor: false,
            },
            category: Category::Administrator,
            purpose: Purpose::AccountAdmin,
            consents: ConsentView::default(),
            grants: &[],
            now,
        },
    );
    assert!(d.is_allowed());
    let (record, chain) = state
        .store
        .record_with_keys(&f.subject.id, Category::Administrator)
        .await
        .unwrap()
        .unwrap();
    let key = state
        .vault
        .open_key_chain(&f.subject.tenant, &f.subject.id, &chain)
        .unwrap();
    let fields = state
        .vault
        .open_fields(
            &key,
            &f.subject.id,
            Category::Administrator,
            record.version,
            &record.fields,
        )
        .unwrap();
    state
        .audit_writer
        .append(entry(state, &f.actor, &f.subject))
        .await
        .unwrap();
    black_box(fields);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let f = Arc::new(rt.block_on(fixture()));
    let mut g = c.benchmark_group("read_path_sqlite");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("one_reader", |b| b.iter(|| rt.block_on(one_read(&f))));
    // Time per read with 16 readers in flight: throughput = 1 / this.
    g.bench_function("per_read_16_concurrent", |b| {
        b.iter_custom(|iters| {
            // 16 tasks share the `iters` reads; the elapsed time covers all of them.
            let per_task = iters.div_ceil(16).max(1);
            let started = Instant::now();
            rt.block_on(async {
                let tasks: Vec<_> = (0..16)
                    .map(|_| {
                        let f = f.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                one_read(&f).await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
            started
                .elapsed()
                .mul_f64(iters as f64 / (per_task * 16) as f64)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
