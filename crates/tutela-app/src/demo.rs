//! `serve --demo`: an idempotent demo tenant with subjects, and fresh tokens for every
//! role, so a newcomer sees tutela answer within a minute.

use crate::state::AppState;
use crate::tokens::{self, TokenRequest};
use anyhow::Context as _;
use tutela_core::actor::DataScope;
use tutela_core::tenant::{self, SubjectKind, TenantKind, TenantName, TenantState};
use tutela_core::{Category, Purpose, Region, Role, SubjectId, TenantId};
use tutela_store::subjects::Subject;
use tutela_store::tenants::{StoredName, Tenant};

const DEMO_KEY: &str = "demo";

/// What the demo set up.
#[derive(Debug)]
pub struct DemoReport {
    pub tenant: TenantId,
    pub created: bool,
    pub subjects: Vec<(SubjectKind, SubjectId, bool)>,
    /// (role label, bearer token): shown once.
    pub tokens: Vec<(String, String)>,
}

/// Creates the demo tenant and subjects if absent, and mints one token per role.
pub async fn ensure(state: &AppState) -> anyhow::Result<DemoReport> {
    let now = state.clock.now();
    let (tenant, created) = match state.store.tenant_by_demo_key(DEMO_KEY).await? {
        Some(t) => (t, false),
        None => {
            let t = Tenant {
                id: crate::ids::tenant(),
                name: StoredName::Clear(
                    TenantName::parse("示例科技有限公司 Demo Tech Co., Ltd.")
                        .context("demo tenant name")?,
                ),
                kind: TenantKind::Enterprise,
                state: TenantState::Active,
                created_at: now,
                frozen_until: None,
                trial_ends_at: None,
                closed_at: None,
            };
            let t = state
                .vault
                .insert_tenant(&state.store, t, Some(DEMO_KEY))
                .await?;
            let today = now.date();
            let adult_birth =
                tenant::parse_birth_date("1990-05-17", today).context("demo birth date")?;
            let minor_birth =
                time::Date::from_calendar_date(today.year() - 12, time::Month::June, 1)?;
            for (kind, adult_on) in [
                (
                    SubjectKind::Administrator,
                    Some(tenant::adult_on(adult_birth)),
                ),
                (SubjectKind::EndUser, None),
                (SubjectKind::EndUser, Some(tenant::adult_on(minor_birth))),
            ] {
                let s = Subject {
                    id: crate::ids::subject(),
                    tenant: t.id.clone(),
                    kind,
                    adult_on,
                    created_at: now,
                    erased_at: None,
                    frozen_until: None,
                    frozen_ground: None,
                };
                state.store.insert_subject(&s).await?;
            }
            (t, true)
        }
    };
    let subjects: Vec<(SubjectKind, SubjectId, bool)> = state
        .store
        .subjects_of(&tenant.id, None, 10)
        .await?
        .into_iter()
        .map(|s| (s.kind, s.id, tenant::is_minor(s.adult_on, now.date())))
        .collect();
    let end_user = subjects
        .iter()
        .find(|(k, _, minor)| *k == SubjectKind::EndUser && !minor)
        .map(|(_, id, _)| id.clone());

    let mut wanted: Vec<(String, TokenRequest)> = Vec::new();
    for role in [Role::Operator, Role::PrivacyOfficer, Role::Auditor] {
        wanted.push((role.to_string(), req(role, None, None, Region::Cn)));
    }
    // A billing system: the purposes and categories billing needs, nothing else (R29).
    let mut billing = req(Role::Service, None, None, Region::Cn);
    billing.label = "demo billing".to_owned();
    billing.scope = DataScope::new(
        vec![
            Purpose::Transaction,
            Purpose::FraudPrevention,
            Purpose::AccountAdmin,
            Purpose::ServiceCommunication,
        ],
        vec![Category::Administrator, Category::Payment],
    );
    wanted.push(("service (billing)".into(), billing));
    let mut cn = req(Role::Support, None, None, Region::Cn);
    cn.label = "demo engineer (cn)".to_owned();
    wanted.push(("support (cn)".into(), cn));
    let mut overseas = req(Role::Support, None, None, Region::Overseas);
    overseas.label = "demo engineer (overseas)".to_owned();
    wanted.push(("support (overseas)".into(), overseas));
    wanted.push((
        "tenant_admin".into(),
        req(Role::TenantAdmin, Some(tenant.id.clone()), None, Region::Cn),
    ));
    if let Some(s) = end_user {
        wanted.push((
            "end_user".into(),
            req(Role::EndUser, Some(tenant.id.clone()), Some(s), Region::Cn),
        ));
    }
    let mut tokens_out = Vec::new();
    for (label, r) in wanted {
        let (_, bearer) = tokens::create(&state.store, state.clock.as_ref(), r).await?;
        tokens_out.push((label, bearer));
    }
    Ok(DemoReport {
        tenant: tenant.id,
        created,
        subjects,
        tokens: tokens_out,
    })
}

fn req(
    role: Role,
    tenant: Option<TenantId>,
    subject: Option<SubjectId>,
    region: Region,
) -> TokenRequest {
    TokenRequest::new(role, tenant, subject, region, "demo")
}
