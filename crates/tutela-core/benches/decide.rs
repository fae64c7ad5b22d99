//! The access decision on the hot path: target under 1 µs (issue 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark harness"
)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tutela_core::consent::{ConsentEvent, ConsentScope};
use tutela_core::decide::{decide, resolve_consent, Action, Outcome, Request, Target};
use tutela_core::tenant::TenantState;
use tutela_core::{Actor, Category, Purpose, Region, Role, SubjectId, TenantId, TokenId};

fn bench(c: &mut Criterion) {
    let policy = tutela_core::policy::load(
        "statement.toml",
        include_str!("../../../policy/statement.toml"),
    )
    .unwrap();
    let tenant = TenantId::from_bytes([1; 16]);
    let subject = SubjectId::from_bytes([2; 16]);
    let actor = Actor::new(
        TokenId::from_bytes([3; 16]),
        Role::TenantAdmin,
        Some(tenant.clone()),
        None,
        Region::Cn,
    )
    .unwrap();
    let now = time::macros::datetime!(2026-11-28 09:00 UTC);
    let req = |category, purpose| Request {
        actor: &actor,
        action: Action::Read(purpose),
        target: Target {
            tenant: &tenant,
            subject: &subject,
            tenant_state: TenantState::Active,
            hold: tutela_core::erasure::SubjectHold::None,
            minor: false,
        },
        category,
        purpose_changed_at: None,
        grants: &[],
        basis: None,
        now,
    };
    let allow = req(Category::Payment, Purpose::Transaction);
    let deny = req(Category::Customer, Purpose::Marketing);
    c.bench_function("decide/allow", |b| {
        b.iter(|| decide(black_box(&policy), black_box(&allow)))
    });
    c.bench_function("decide/deny", |b| {
        b.iter(|| decide(black_box(&policy), black_box(&deny)))
    });
    // A purpose customer data does not declare: the decision asks for the purpose's
    // consent entry, and resolving it is the whole second step of a consent-based read.
    let Outcome::NeedsConsent(question) =
        decide(&policy, &req(Category::Customer, Purpose::Support))
    else {
        panic!("support is undeclared for customer data");
    };
    let entry = [ConsentEvent {
        scope: ConsentScope::Purpose(Purpose::Support),
        granted: true,
        at: now,
    }];
    c.bench_function("decide/resolve_consent", |b| {
        b.iter(|| resolve_consent(black_box(&question), black_box(&entry)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
