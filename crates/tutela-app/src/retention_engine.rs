//! The retention engine (issue 7; R19, R20, R41): finds everything whose retention has
//! ended and executes it in batches. Used by the scheduler inside `tutela serve`, by
//! `POST /v1/retention/run` and by `tutela retention run [--dry-run]`.
//!
//! One run:
//! 1. trials past their end become `expired` (R41);
//! 2. for each closed or expired tenant, the categories whose period ended are removed
//!    (deleted, or anonymized into aggregates first), and once every period ended the
//!    tenant's subjects are erased whole and the tenant becomes `erased` (R19);
//! 3. subjects erased on request whose legal hold ended lose what was held (R19, R33);
//! 4. terminated services past their effective date lose their records (R20).
//!
//! Every batch is one transaction in the store (`apply_retention_batch`): the subject's
//! data key is shredded (or replaced by a fresh key under which what remains was
//! re-sealed), rows are removed, aggregates added, recipients' notices queued in the
//! outbox and audit entries appended, all or nothing. A run killed at any point leaves
//! each subject untouched or finished; the next run picks up the rest. Subjects are
//! leased while a batch is prepared, so replicas never process the same subject.

use crate::state::AppState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::{Duration, OffsetDateTime};
use tutela_core::anonymize;
use tutela_core::lifecycle::{TenantEvent, TenantLife};
use tutela_core::policy::RetentionAction;
use tutela_core::tenant::TenantState;
use tutela_core::{Category, Clause, SubjectId};
use tutela_store::deliveries::Delivery;
use tutela_store::retention::{Candidates, SubjectOutcome};
use tutela_store::tenants::Tenant;
use tutela_store::AuditEntry;
use tutela_store::StoreError;

/// How a run behaves.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Report what would happen; change nothing.
    pub dry_run: bool,
    /// Subjects per batch (one transaction each).
    pub batch: u32,
    /// How long a batch's subjects stay leased to this run.
    pub lease_secs: u32,
    /// Wait out other runs' leases on subjects still due and take over what is left
    /// (`tutela retention run`: an operator finishing the work after a run was killed
    /// between claiming and applying a batch, R19). Runs inside the server leave leased
    /// subjects to their holder, or to the next periodic run once the lease ends.
    pub wait_for_leases: bool,
}

/// One line of a run's plan: what happens (or would) to how many subjects.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    /// `tenant:<id>`, `service:<id>` or `ended_holds`.
    pub scope: String,
    /// e.g. `expire_trial`, `erase_subjects`, `remove:support,cookie`, `erase_tenant`.
    pub action: String,
    pub subjects: u64,
    pub clause: String,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub trials_expired: u64,
    pub tenants_erased: u64,
    /// Subjects whose data is now entirely gone (key shredded).
    pub subjects_erased: u64,
    /// Subjects that lost some categories and keep the rest under a fresh key.
    pub subjects_rekeyed: u64,
    pub records_deleted: u64,
    pub records_anonymized: u64,
    pub notices_queued: u64,
    pub services_finished: u64,
    /// Subjects with due work found (dry runs: would be processed).
    pub subjects_due: u64,
    pub plan: Vec<PlanItem>,
}

/// What to remove from each claimed subject.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// Everything (the subject is erased).
    All { action: Option<RetentionAction> },
    /// These categories, each with its action.
    Categories(&'a [(Category, RetentionAction)]),
    /// The records of one service, each category by its own action.
    Service(&'a str),
}

/// Runs once. `progress` is called after every batch with the totals so far.
pub async fn run(
    state: &AppState,
    opts: RunOptions,
    progress: &mut (dyn FnMut(&Summary) + Send),
) -> anyhow::Result<Summary> {
    let now = state.clock.now();
    let owner = format!("retention-{}", uuid::Uuid::now_v7().simple());
    let mut sum = Summary {
        dry_run: opts.dry_run,
        ..Summary::default()
    };

    // 1. Trials that ended (R41).
    for t in state.store.tenants_in(&[TenantState::Trial]).await? {
        if !t.life().trial_has_ended(now) {
            continue;
        }
        sum.plan.push(PlanItem {
            scope: format!("tenant:{}", t.id),
            action: "expire_trial".into(),
            subjects: 0,
            clause: Clause::r(41).to_string(),
        });
        if !opts.dry_run {
            transition(state, &t, TenantEvent::ExpireTrial, now).await?;
        }
        sum.trials_expired += 1;
    }

    // 2. Closed and expired tenants (R19, R41).
    for t in state
        .store
        .tenants_in(&[TenantState::Closed, TenantState::Expired])
        .await?
    {
        let life = t.life();
        let clause = Clause::r(if t.state == TenantState::Expired {
            41
        } else {
            19
        });
        if life.fully_due(now) {
            let action = (t.state == TenantState::Expired).then_some(state.policy.trial.action);
            let scope = format!("tenant:{}", t.id);
            work(
                state,
                opts,
                &owner,
                now,
                Candidates::WholeTenant(&t.id),
                Scope::All { action },
                (&scope, "erase_subjects", clause),
                &mut sum,
                progress,
            )
            .await?;
            let live = state.store.tenant_has_live_subjects(&t.id).await?;
            sum.plan.push(PlanItem {
                scope,
                action: "erase_tenant".into(),
                subjects: 0,
                clause: clause.to_string(),
            });
            if !opts.dry_run && !live {
                transition(state, &t, TenantEvent::Erase, now).await?;
                sum.tenants_erased += 1;
            }
        } else {
            let due = life.due_categories(&state.policy, now);
            if due.is_empty() {
                continue;
            }
            let cats: Vec<Category> = due.iter().map(|(c, _)| *c).collect();
            let action = format!(
                "remove:{}",
                cats.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            work(
                state,
                opts,
                &owner,
                now,
                Candidates::TenantCategories(&t.id, &cats),
                Scope::Categories(&due),
                (&format!("tenant:{}", t.id), &action, clause),
                &mut sum,
                progress,
            )
            .await?;
        }
    }

    // 3. Legal holds of erased subjects that ended (R19, R33).
    work(
        state,
        opts,
        &owner,
        now,
        Candidates::EndedHolds,
        Scope::All { action: None },
        ("ended_holds", "erase_subjects", Clause::r(19)),
        &mut sum,
        progress,
    )
    .await?;

    // 4. Terminated services (R20).
    for term in state.store.terminations().await? {
        if term.finished_at.is_some() || now < term.effective_at {
            continue;
        }
        let scope = format!("service:{}", term.service);
        work(
            state,
            opts,
            &owner,
            now,
            Candidates::Service(&term.service),
            Scope::Service(&term.service),
            (&scope, "remove_service_data", Clause::r(20)),
            &mut sum,
            progress,
        )
        .await?;
        if !opts.dry_run {
            let audit = system_audit(
                None,
                None,
                "service_data_removed",
                &scope,
                Clause::r(20),
                now,
            );
            state
                .store
                .finish_termination_audited(&term.service, now, &audit)
                .await?;
            sum.services_finished += 1;
        }
    }
    if opts.dry_run {
        state.store.release_leases(&owner).await?;
    }
    Ok(sum)
}

async fn transition(
    state: &AppState,
    t: &Tenant,
    event: TenantEvent,
    now: OffsetDateTime,
) -> anyhow::Result<TenantLife> {
    let next = t.life().apply(event, now, &state.policy)?;
    let (action, clause) = match event {
        TenantEvent::ExpireTrial => ("tenant_trial_expired", Clause::r(41)),
        TenantEvent::Erase => ("tenant_erased", Clause::r(19)),
        TenantEvent::Close => ("tenant_closed", Clause::r(19)),
        TenantEvent::Activate => ("tenant_activated", Clause::r(41)),
    };
    let audit = system_audit(
        Some(t.id.to_string()),
        None,
        action,
        &format!("tenant:{}", t.id),
        clause,
        now,
    );
    match state
        .store
        .update_tenant_life_audited(&t.id, t.state, &next, &audit)
        .await
    {
        // Another replica made the same transition first: nothing to do.
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    state.cache.forget_tenant(&t.id);
    Ok(next)
}

fn system_audit(
    tenant: Option<String>,
    subject: Option<String>,
    action: &str,
    reason: &str,
    clause: Clause,
    at: OffsetDateTime,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: "system:retention".into(),
        role: "system".into(),
        tenant,
        subject,
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: "allow".into(),
        reason: reason.to_owned(),
        clause: Some(clause.to_string()),
        seq: None,
    }
}

/// Processes every candidate of one scope in leased batches.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per scope; a struct would only rename them"
)]
async fn work(
    state: &AppState,
    opts: RunOptions,
    owner: &str,
    now: OffsetDateTime,
    candidates: Candidates<'_>,
    scope: Scope<'_>,
    (label, action, clause): (&str, &str, Clause),
    sum: &mut Summary,
    progress: &mut (dyn FnMut(&Summary) + Send),
) -> anyhow::Result<()> {
    let due = state.store.count_candidates(candidates, now).await?;
    if due == 0 {
        return Ok(());
    }
    sum.subjects_due += due;
    sum.plan.push(PlanItem {
        scope: label.to_owned(),
        action: action.to_owned(),
        subjects: due,
        clause: clause.to_string(),
    });
    if opts.dry_run {
        progress(sum);
        return Ok(());
    }
    let lease = Duration::seconds(i64::from(opts.lease_secs.max(10)));
    let mut now = now;
    let mut waits = 0;
    loop {
        let ids = state
            .store
            .claim_candidates(candidates, now, now + lease, owner, opts.batch.max(1))
            .await?;
        if ids.is_empty() {
            // Subjects still due may be leased by another run: a replica's, or one killed
            // between claiming a batch and applying it (R19: a killed run must not leave
            // work behind). Wait for those leases to end, then take over what is left.
            if !opts.wait_for_leases {
                return Ok(());
            }
            let Some(until) = state
                .store
                .earliest_foreign_lease(candidates, now, owner)
                .await?
            else {
                return Ok(());
            };
            waits += 1;
            if waits > MAX_LEASE_WAITS {
                tracing::warn!(
                    scope = label,
                    "subjects due are still leased by another retention run; leaving them to it"
                );
                return Ok(());
            }
            let wait = until - state.clock.now();
            tracing::info!(
                scope = label,
                wait_ms = wait.whole_milliseconds(),
                "subjects due are leased by another retention run; waiting for the lease to end"
            );
            if wait.is_positive() {
                tokio::time::sleep(wait.unsigned_abs()).await;
            }
            let later = state.clock.now();
            if later < until {
                // A clock that does not move with real time (tests): nothing to take over.
                return Ok(());
            }
            now = later;
            continue;
        }
        batch(state, owner, now, &ids, scope, (label, clause), sum).await?;
        progress(sum);
    }
}

/// How often one scope waits for another run's leases before leaving the rest to it.
const MAX_LEASE_WAITS: u32 = 3;

/// Prepares and applies one batch of claimed subjects.
async fn batch(
    state: &AppState,
    owner: &str,
    now: OffsetDateTime,
    ids: &[SubjectId],
    scope: Scope<'_>,
    (label, clause): (&str, Clause),
    sum: &mut Summary,
) -> anyhow::Result<()> {
    let rows = state.store.records_of_subjects(ids).await?;
    let mut by_subject: BTreeMap<&SubjectId, Vec<_>> = BTreeMap::new();
    for row in &rows {
        by_subject.entry(&row.1.subject).or_default().push(row);
    }
    let mut outcomes = Vec::with_capacity(ids.len());
    let mut aggregates: BTreeMap<anonymize::Aggregate, i64> = BTreeMap::new();
    let mut audit = Vec::with_capacity(ids.len());
    // recipient categories per subject, for the notices
    let mut removed_categories: BTreeMap<&SubjectId, BTreeSet<Category>> = BTreeMap::new();
    let (mut deleted, mut anonymized, mut erased, mut rekeyed) = (0u64, 0u64, 0u64, 0u64);
    for id in ids {
        let records = by_subject.get(id).cloned().unwrap_or_default();
        let mut remove = Vec::new();
        let mut keep = Vec::new();
        for row in &records {
            let (_, rec, _) = row;
            let action = match scope {
                Scope::All { action } => Some(action.unwrap_or_else(|| {
                    state
                        .policy
                        .category(rec.category)
                        .map_or(RetentionAction::Delete, |c| c.retention.action)
                })),
                Scope::Categories(due) => due
                    .iter()
                    .find(|(c, _)| *c == rec.category)
                    .map(|(_, a)| *a),
                Scope::Service(service) => (rec.service == service).then(|| {
                    state
                        .policy
                        .category(rec.category)
                        .map_or(RetentionAction::Delete, |c| c.retention.action)
                }),
            };
            match action {
                Some(a) => remove.push((*row, a)),
                None => keep.push(*row),
            }
        }
        for ((tenant, rec, chain), a) in &remove {
            if *a == RetentionAction::Anonymize {
                let key = state.vault.open_key_chain(tenant, &rec.subject, chain)?;
                let fields = state.vault.open_fields(
                    &key,
                    &rec.subject,
                    rec.category,
                    rec.version,
                    &rec.fields,
                )?;
                *aggregates
                    .entry(anonymize::aggregate(
                        rec.category,
                        &rec.service,
                        rec.updated_at,
                        &fields,
                    ))
                    .or_default() += 1;
                anonymized += 1;
            } else {
                deleted += 1;
            }
            removed_categories
                .entry(id)
                .or_default()
                .insert(rec.category);
        }
        let whole = matches!(scope, Scope::All { .. }) || keep.is_empty();
        let mut outcome = SubjectOutcome {
            subject: id.clone(),
            remove: remove.iter().map(|((_, r, _), _)| r.category).collect(),
            erase: whole,
            // Only when the subject itself is due; a service's or a category's data
            // going leaves a person who may still get new data (a new key then).
            mark_erased: matches!(scope, Scope::All { .. }),
            resealed: Vec::new(),
            new_key: None,
        };
        if whole {
            erased += 1;
        } else if let (false, Some((tenant, _, _))) = (remove.is_empty(), keep.first()) {
            // What remains moves to a fresh key; the old one is shredded with the batch.
            let (new_key, wrapped) = state
                .vault
                .fresh_subject_key(&state.store, tenant, id)
                .await?;
            for (tenant, rec, chain) in &keep {
                let old = state.vault.open_key_chain(tenant, &rec.subject, chain)?;
                let fields = state.vault.open_fields(
                    &old,
                    &rec.subject,
                    rec.category,
                    rec.version,
                    &rec.fields,
                )?;
                outcome.resealed.push((
                    rec.category,
                    rec.version,
                    state.vault.seal_fields(
                        &new_key,
                        &rec.subject,
                        rec.category,
                        rec.version,
                        &fields,
                    )?,
                ));
            }
            outcome.new_key = Some(wrapped);
            rekeyed += 1;
        }
        let tenant = records.first().map(|(t, _, _)| t.to_string());
        let mut a = system_audit(
            tenant,
            Some(id.to_string()),
            if whole {
                "retention_erase"
            } else {
                "retention_remove"
            },
            &format!("retention:{label}"),
            clause,
            now,
        );
        a.category = (outcome.remove.len() == 1)
            .then(|| outcome.remove.first().map(ToString::to_string))
            .flatten();
        audit.push(a);
        outcomes.push(outcome);
    }
    let deliveries = notices(state, now, ids, &removed_categories, label).await?;
    // Identical aggregates of the batch are one upsert.
    let aggregates: Vec<(anonymize::Aggregate, i64)> = aggregates.into_iter().collect();
    let applied = state
        .store
        .apply_retention_batch(owner, now, &outcomes, &aggregates, &deliveries, &audit)
        .await?;
    if applied == 0 {
        tracing::warn!(
            scope = label,
            "a retention batch lost its lease; another run has it"
        );
        return Ok(());
    }
    sum.records_deleted += deleted;
    sum.records_anonymized += anonymized;
    sum.subjects_erased += erased;
    sum.subjects_rekeyed += rekeyed;
    sum.notices_queued += u64::try_from(deliveries.len()).unwrap_or(0);
    if !deliveries.is_empty() {
        state.outbox_wake.notify_one();
    }
    for id in ids {
        state.cache.forget_subject(id);
    }
    Ok(())
}

/// One deletion notice per recipient for the batch (R34): the transfer register's
/// recipients of these subjects, and recipients configured for a removed category.
async fn notices(
    state: &AppState,
    now: OffsetDateTime,
    ids: &[SubjectId],
    removed: &BTreeMap<&SubjectId, BTreeSet<Category>>,
    label: &str,
) -> anyhow::Result<Vec<Delivery>> {
    let mut per_recipient: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (recipient, subject) in state.store.transfer_recipients_of_many(ids).await? {
        per_recipient.entry(recipient).or_default().insert(subject);
    }
    let recipients = state.store.recipients().await?;
    for r in &recipients {
        for (subject, cats) in removed {
            if r.categories.iter().any(|c| cats.contains(c)) {
                per_recipient
                    .entry(r.id.clone())
                    .or_default()
                    .insert(subject.to_string());
            }
        }
    }
    let ack_url = format!("{}/v1/acks", state.config.links_base_url());
    let mut out = Vec::new();
    for (rid, subjects) in per_recipient {
        let Some(r) = recipients.iter().find(|r| r.id == rid) else {
            continue;
        };
        let id = format!("dlv_{}", uuid::Uuid::now_v7().simple());
        let body = serde_json::json!({
            "type": "deletion",
            "cause": format!("retention:{label}"),
            "idempotency_key": id,
            "subjects": subjects,
            "erased_at": crate::rfc3339(now),
            "ack_url": ack_url,
            "clause": Clause::r(34).to_string(),
        })
        .to_string();
        let sendable = r.webhook_url.is_some() && r.webhook_secret.is_some();
        out.push(Delivery::queued(id, None, &r.id, sendable, None, body, now));
    }
    Ok(out)
}

/// The scheduler inside `tutela serve`: a run every `retention.interval_secs` (0: off).
pub async fn run_scheduler(state: AppState, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let secs = state.config.retention.interval_secs;
    if secs == 0 {
        return;
    }
    let opts = RunOptions {
        dry_run: false,
        batch: state.config.retention.batch,
        lease_secs: state.config.retention.lease_secs,
        wait_for_leases: false,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(secs)) => {}
            _ = &mut stop => return,
        }
        match run(&state, opts, &mut |_| {}).await {
            Ok(s) if s.subjects_due > 0 || s.trials_expired > 0 => tracing::info!(
                subjects_erased = s.subjects_erased,
                subjects_rekeyed = s.subjects_rekeyed,
                records_deleted = s.records_deleted,
                records_anonymized = s.records_anonymized,
                tenants_erased = s.tenants_erased,
                trials_expired = s.trials_expired,
                "retention run finished"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "retention run failed; the next run resumes"
            ),
        }
    }
}
