//! One full purpose-checked read against SQLite (issue 3): decide + fetch the sealed
//! record with its key chain + unwrap keys + decrypt fields + append the audit entry
//! durably (group commit). HTTP parsing and JSON are left out; `bench/load.sh` measures
//! the whole server.
//!
//! Figures: one reader alone (latency: each read waits for its own fsync); 16
//! concurrent readers (throughput: their audit entries share commits); the same for a
//! read whose purpose is allowed only by the subject's express consent, which reads the
//! consent ledger (issue 4: the consent check must cost at most 20% of the read path);
//! and consent writes (each durable on its own commit).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tutela_app::AppState;
use tutela_core::clock::SystemClock;
use tutela_core::consent::{Channel, ConsentEvent, ConsentMethod, ConsentScope};
use tutela_core::decide::{self, Action, Outcome, Target};
use tutela_core::tenant::{SubjectKind, TenantKind, TenantName, TenantState};
use tutela_core::{Actor, Category, Purpose, Region, Role, TokenId};
use tutela_server::Config;
use tutela_store::consents::ConsentEntry;
use tutela_store::subjects::Subject;
use tutela_store::tenants::{StoredName, Tenant};
use tutela_store::{AuditEntry, RecordExtras, SealedRecord};

struct Fixture {
    state: AppState,
    actor: Actor,
    subject: Subject,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        policy: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/statement.toml").into()),
        ..Config::default()
    };
    let state = tutela_app::startup::open_state(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let now = state.clock.now();
    let tenant = Tenant {
        id: tutela_app::ids::tenant(),
        name: StoredName::Clear(TenantName::parse("Bench Co").unwrap()),
        kind: TenantKind::Enterprise,
        state: TenantState::Active,
        created_at: now,
        frozen_until: None,
        trial_ends_at: None,
        closed_at: None,
    };
    let tenant = state
        .vault
        .insert_tenant(&state.store, tenant, None)
        .await
        .unwrap();
    let subject = Subject {
        id: tutela_app::ids::subject(),
        tenant: tenant.id.clone(),
        kind: SubjectKind::Administrator,
        adult_on: None,
        created_at: now,
        erased_at: None,
        frozen_until: None,
        frozen_ground: None,
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
    let lookups = RecordExtras {
        tenant: &tenant.id,
        keys: &[],
        location: None,
    };
    assert!(state
        .store
        .put_record_audited(&record, 0, &audit, &lookups)
        .await
        .unwrap());
    let consent = ConsentEntry {
        id: "con_bench".into(),
        subject: subject.id.clone(),
        scope: ConsentScope::Purpose(Purpose::Research),
        granted: true,
        statement_version: "2.0".into(),
        channel: Channel::Portal,
        token_id: actor.token().to_string(),
        role: "tenant_admin".into(),
        method: ConsentMethod::SignedForm,
        guardian_ref: None,
        evidence_ref: Some("scan-bench".into()),
        at: now,
    };
    state
        .store
        .append_consent_audited(&consent, &entry(&state, &actor, &subject))
        .await
        .unwrap();
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
    read_for(f, Purpose::AccountAdmin).await;
}

/// A read whose purpose (research) is undeclared for administrator data: allowed only by
/// the stored express consent. As `api/records.rs` does, the decision asks for the
/// purpose's consent entry, which arrives in the same query as the record and resolves it.
async fn consent_based_read(f: &Fixture) {
    read_for(f, Purpose::Research).await;
}

async fn read_for(f: &Fixture, purpose: Purpose) {
    let state = &f.state;
    let now = state.clock.now();
    let outcome = decide::decide(
        &state.policy,
        &decide::Request {
            actor: &f.actor,
            action: Action::Read(purpose),
            target: Target {
                tenant: &f.subject.tenant,
                subject: &f.subject.id,
                tenant_state: TenantState::Active,
                hold: tutela_core::erasure::SubjectHold::None,
                minor: false,
            },
            category: Category::Administrator,
            purpose_changed_at: None,
            grants: &[],
            basis: None,
            now,
        },
    );
    let mut prefetched = None;
    let d = match outcome {
        Outcome::Decided(d) => d,
        Outcome::NeedsConsent(q) => {
            let (record, chain, latest) = state
                .store
                .record_with_keys_and_consent(
                    &f.subject.id,
                    Category::Administrator,
                    q.purpose().as_str(),
                )
                .await
                .unwrap()
                .unwrap();
            let latest = latest.map(|(granted, at)| ConsentEvent {
                scope: ConsentScope::Purpose(q.purpose()),
                granted,
                at,
            });
            prefetched = Some((record, chain));
            decide::resolve_consent(&q, latest.as_slice())
        }
    };
    assert!(d.is_allowed());
    let (record, chain) = match prefetched {
        Some(p) => p,
        None => state
            .store
            .record_with_keys(&f.subject.id, Category::Administrator)
            .await
            .unwrap()
            .unwrap(),
    };
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
    concurrent(&mut g, &rt, &f, "per_read_16_concurrent", |f| async move {
        one_read(&f).await
    });
    concurrent(
        &mut g,
        &rt,
        &f,
        "per_consent_based_read_16_concurrent",
        |f| async move { consent_based_read(&f).await },
    );
    let n = std::sync::atomic::AtomicU64::new(0);
    let n = Arc::new(n);
    g.bench_function("consent_write_one_writer", |b| {
        b.iter(|| rt.block_on(write_consent(&f, &n)))
    });
    let n2 = n.clone();
    concurrent(
        &mut g,
        &rt,
        &f,
        "per_consent_write_16_concurrent",
        move |f| {
            let n = n2.clone();
            async move { write_consent(&f, &n).await }
        },
    );
    g.finish();
}

async fn write_consent(f: &Fixture, n: &std::sync::atomic::AtomicU64) {
    let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c = ConsentEntry {
        id: format!("con_bench_{i}"),
        subject: f.subject.id.clone(),
        scope: ConsentScope::Purpose(Purpose::Analytics),
        granted: i.is_multiple_of(2),
        statement_version: "2.0".into(),
        channel: Channel::Api,
        token_id: f.actor.token().to_string(),
        role: "tenant_admin".into(),
        method: ConsentMethod::SignedForm,
        guardian_ref: None,
        evidence_ref: Some("scan-bench".into()),
        at: f.state.clock.now(),
    };
    f.state
        .store
        .append_consent_audited(&c, &entry(&f.state, &f.actor, &f.subject))
        .await
        .unwrap();
}

/// Time per operation with 16 in flight: throughput = 1 / this.
fn concurrent<F, Fut>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    f: &Arc<Fixture>,
    name: &str,
    op: F,
) where
    F: Fn(Arc<Fixture>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            // 16 tasks share the `iters` operations; the elapsed time covers all of them.
            let per_task = iters.div_ceil(16).max(1);
            let started = Instant::now();
            rt.block_on(async {
                let tasks: Vec<_> = (0..16)
                    .map(|_| {
                        let f = f.clone();
                        let op = op.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                op(f.clone()).await;
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
