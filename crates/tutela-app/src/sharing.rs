//! Sharing (issue 5; R6, R17, R18, R21-R25, R28): storage locations, recipients and their
//! webhook secrets, a disclosure or transfer decided by `tutela_core::transfer` and
//! recorded in the register when it goes ahead, and third-party complaints (R23).

use crate::error::Error;
use crate::state::AppState;
use time::OffsetDateTime;
use tutela_core::consent::{self, ConsentEvent, ConsentScope};
use tutela_core::policy::{ConsentException, RecipientKind};
use tutela_core::transfer::{self, RecipientView, TransferConsents, TransferRequest};
use tutela_core::{Actor, Category, Clause, Country, Purpose, Region, TenantId};
use tutela_crypto::webhook::WebhookSecret;
use tutela_store::sharing::{Recipient, StorageLocation, Transfer};
use tutela_store::AuditEntry;

/// A disclosure or transfer asked for, its input parsed and within the caller's scope.
#[derive(Debug)]
pub struct TransferInput<'a> {
    /// The subject id as given; an unknown or malformed one is not found.
    pub subject: &'a str,
    pub recipient: &'a str,
    pub categories: Vec<Category>,
    pub purpose: Purpose,
    /// A legal exception claimed instead of consent (R28), with its reference.
    pub exception: Option<ConsentException>,
    pub legal_ref: Option<String>,
    /// A legal prohibition on notifying the customer (R23).
    pub prohibition_ref: Option<String>,
}

/// Decides one disclosure or transfer (frozen or erased data never leaves, R19, R33, R41;
/// an unregistered recipient gets nothing, R21; then `decide_transfer`); notifies the
/// customer first where R23 requires it; records it in the register. Every decision,
/// allow or deny, is audited. Returns the register row.
pub async fn transfer(
    state: &AppState,
    actor: &Actor,
    input: TransferInput<'_>,
) -> Result<Transfer, Error> {
    let TransferInput {
        categories,
        purpose,
        exception,
        legal_ref,
        prohibition_ref,
        ..
    } = input;
    let (subject, tenant) = crate::subjects::subject_and_tenant(state, input.subject).await?;
    let now = state.clock.now();
    let mut entry = audit(actor, now, "transfer", false, "", Clause::r(21));
    entry.tenant = Some(subject.tenant.to_string());
    entry.subject = Some(subject.id.to_string());
    entry.category = categories.first().map(ToString::to_string);
    entry.purpose = Some(purpose.to_string());
    // R19, R41: a closed, expired or erased account's data is not disclosed.
    if !matches!(
        tenant.state,
        tutela_core::tenant::TenantState::Trial | tutela_core::tenant::TenantState::Active
    ) {
        let clause = Clause::r(
            if tenant.state == tutela_core::tenant::TenantState::Expired {
                41
            } else {
                19
            },
        );
        entry.reason = "account_frozen".into();
        entry.clause = Some(clause.to_string());
        state.audit_writer.append(entry).await?;
        return Err(Error::Locked {
            code: "frozen",
            message: format!("the account is {}; its data is not disclosed", tenant.state),
            clause: Some(clause),
        });
    }
    // R19, R33: nothing of an erased subject leaves, and what the law keeps is frozen.
    if let Some(clause) = subject.hold(now).clause() {
        entry.reason = "subject_erased".into();
        entry.clause = Some(clause.to_string());
        state.audit_writer.append(entry).await?;
        return Err(Error::Locked {
            code: "subject_erased",
            message:
                "this subject's data was erased; what the law keeps is frozen and is not disclosed"
                    .into(),
            clause: Some(clause),
        });
    }
    // R21: an unregistered recipient receives nothing.
    let Some(recipient) = state.store.recipient(input.recipient).await? else {
        entry.reason = "recipient_not_registered".into();
        state.audit_writer.append(entry).await?;
        return Err(Error::Forbidden {
            code: "recipient_not_registered",
            message: "only registered recipients receive personal information".into(),
            clause: Some(Clause::r(21)),
        });
    };
    // The subject's consents that matter: cross-border, and sharing with this offering.
    let events: Vec<ConsentEvent> = state
        .store
        .consents_of(&subject.id)
        .await?
        .into_iter()
        .map(|c| ConsentEvent {
            scope: c.scope,
            granted: c.granted,
            at: c.at,
        })
        .collect();
    let current = consent::current_state(&events);
    let granted = |scope: &ConsentScope| current.get(scope).is_some_and(|(g, _)| *g);
    let consents = TransferConsents {
        cross_border: granted(&ConsentScope::CrossBorder),
        third_party: granted(&ConsentScope::ThirdPartyOffering(recipient.id.clone())),
    };
    let d = transfer::decide_transfer(
        &state.policy,
        &TransferRequest {
            recipient: RecipientView {
                kind: recipient.kind,
                country: recipient.country,
                categories: &recipient.categories,
                purposes: &recipient.purposes,
                has_policy_ref: recipient.policy_ref.is_some(),
            },
            categories: &categories,
            purpose,
            consents,
            exception,
        },
    );
    entry.clause = Some(d.clause.to_string());
    entry.reason = d.reason.to_owned();
    let Some(basis) = d.basis else {
        state.audit_writer.append(entry).await?;
        return Err(Error::Forbidden {
            code: d.reason,
            message: format!(
                "transfer refused: {} ({})",
                d.reason.replace('_', " "),
                d.clause
            ),
            clause: Some(d.clause),
        });
    };
    // R23: the customer hears of a disclosure of its data before it completes, unless
    // the law forbids telling it (the prohibition's reference is recorded instead).
    let notice_id = if d.notice_required && prohibition_ref.is_none() {
        Some(
            crate::contact::send_service_notice(
                state,
                actor,
                &subject,
                "customer-data-disclosure-notice",
                Clause::r(23),
            )
            .await?,
        )
    } else {
        None
    };
    entry.decision = "allow".into();
    entry.reason = format!("{}:{}", d.reason, recipient.id);
    let record = Transfer {
        id: format!("trf_{}", uuid::Uuid::now_v7().simple()),
        subject: subject.id.clone(),
        tenant: subject.tenant.clone(),
        recipient: recipient.id.clone(),
        recipient_kind: recipient.kind,
        country: recipient.country,
        categories,
        purpose,
        basis: basis.label(),
        legal_ref: legal_ref.filter(|_| matches!(basis, transfer::Basis::Exception(_))),
        policy_ref: recipient
            .policy_ref
            .clone()
            .filter(|_| recipient.kind == RecipientKind::ThirdPartyOffering),
        notice_id,
        prohibition_ref: prohibition_ref.filter(|_| d.notice_required),
        clause: d.clause.to_string(),
        at: now,
    };
    state.store.insert_transfer_audited(&record, &entry).await?;
    Ok(record)
}

/// A third party's complaint redirected to the customer (R23), as answered.
#[derive(Debug)]
pub struct Redirected {
    pub id: String,
    pub tenant: TenantId,
    /// The customer's name, opened from its seal (R29).
    pub tenant_name: String,
    /// The service notices sent to the customer's administrators.
    pub notices: Vec<String>,
    /// The administrators' basic contact data, read through the purpose-checked path.
    pub contacts: Vec<BasicContact>,
}

/// An administrator's name and e-mail (nothing else leaves for a complaint).
#[derive(Debug)]
pub struct BasicContact {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Redirects a third party's complaint about `tenant`'s data to the customer (R23): its
/// administrators are told (a service notice) and their basic contact data is read
/// through the audited, purpose-checked path under the statement's own obligation.
pub async fn redirect_complaint(
    state: &AppState,
    actor: &Actor,
    tenant: &str,
    complaint_ref: String,
) -> Result<Redirected, Error> {
    let tenant_id = tutela_core::TenantId::parse(tenant).map_err(|_| Error::not_found("tenant"))?;
    let tenant = state
        .cache
        .tenant(&state.store, &tenant_id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    let now = state.clock.now();
    let admins: Vec<_> = state
        .store
        .subjects_of(&tenant_id, None, 50)
        .await?
        .into_iter()
        .filter(|s| s.kind == tutela_core::tenant::SubjectKind::Administrator)
        .collect();
    let mut notices = Vec::new();
    let mut contacts = Vec::new();
    // Redirecting a third party's complaint to the customer is the statement's own
    // obligation (R23): the reads name it as their basis.
    let complaint_basis =
        crate::records::CheckedBasis::legal(&format!("third_party_complaint:{complaint_ref}"));
    for admin in &admins {
        // The customer hears of the complaint (a service notice, R9/R23).
        notices.push(
            crate::contact::send_service_notice(
                state,
                actor,
                admin,
                "third-party-complaint-redirect",
                Clause::r(23),
            )
            .await?,
        );
        // Basic contact data only, through the purpose-checked, audited read.
        match crate::records::read_record(
            state,
            actor,
            admin.id.as_str(),
            Category::Administrator,
            Purpose::LegalObligation,
            Some(&complaint_basis),
        )
        .await
        {
            Ok(view) => contacts.push(BasicContact {
                name: view.fields.get("name").cloned(),
                email: view.fields.get("email").cloned(),
            }),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let complaint = tutela_store::sharing::Complaint {
        id: format!("cmp_{}", uuid::Uuid::now_v7().simple()),
        tenant: tenant_id.clone(),
        complaint_ref,
        notices: notices.clone(),
        received_by: actor.token().to_string(),
        at: now,
    };
    let mut a = audit(
        actor,
        now,
        "third_party_complaint",
        true,
        "redirected_to_customer",
        Clause::r(23),
    );
    a.tenant = Some(tenant_id.to_string());
    state.store.insert_complaint_audited(&complaint, &a).await?;
    Ok(Redirected {
        id: complaint.id,
        tenant_name: state
            .vault
            .tenant_name(&state.store, &tenant)
            .await?
            .as_str()
            .to_owned(),
        tenant: tenant_id,
        notices,
        contacts,
    })
}

/// Registers a storage location (the caller checked the operator's role and the input):
/// a location abroad for a category that must stay in mainland China is refused and the
/// refusal audited (R6).
pub async fn register_location(
    state: &AppState,
    actor: &Actor,
    name: String,
    region: Region,
    country: Country,
    categories: Vec<Category>,
) -> Result<StorageLocation, Error> {
    let now = state.clock.now();
    let outside: Vec<String> = categories
        .iter()
        .filter(|c| {
            state
                .policy
                .category(**c)
                .is_some_and(|cp| cp.residency == Region::Cn)
        })
        .map(ToString::to_string)
        .collect();
    if region == Region::Overseas && !outside.is_empty() {
        let mut a = audit(
            actor,
            now,
            "storage_location_register",
            false,
            "residency_violation",
            Clause::r(6),
        );
        a.category = outside.first().cloned();
        state.audit_writer.append(a).await?;
        return Err(Error::Forbidden {
            code: "residency_violation",
            message: format!(
                "{} must be stored in mainland China; {} is not",
                outside.join(", "),
                country.as_str()
            ),
            clause: Some(Clause::r(6)),
        });
    }
    let location = StorageLocation {
        id: format!("loc_{}", uuid::Uuid::now_v7().simple()),
        name,
        region,
        country,
        categories,
        created_at: now,
    };
    let a = audit(
        actor,
        now,
        "storage_location_register",
        true,
        "residency_ok",
        Clause::r(6),
    );
    state.store.insert_storage_location(&location, &a).await?;
    Ok(location)
}

/// Registers a recipient `new` (the caller checked it against the statement, R21, R25;
/// its `id` and `webhook_secret` are assigned here), with a fresh webhook secret, sealed
/// under the master key, when it has a webhook (R34). Returns it and the secret, shown
/// once.
pub async fn register_recipient(
    state: &AppState,
    actor: &Actor,
    new: Recipient,
    clause: Clause,
) -> Result<(Recipient, Option<WebhookSecret>), Error> {
    let now = new.created_at;
    let id = format!("rcp_{}", uuid::Uuid::now_v7().simple());
    let secret = match new.webhook_url {
        Some(_) => Some(WebhookSecret::generate().map_err(|e| Error::Internal(e.into()))?),
        None => None,
    };
    let webhook_secret = secret
        .as_ref()
        .map(|s| state.vault.seal_webhook_secret(&id, s))
        .transpose()?;
    let recipient = Recipient {
        id,
        webhook_secret,
        ..new
    };
    let a = audit(
        actor,
        now,
        "recipient_register",
        true,
        &format!("recipient:{}", recipient.id),
        clause,
    );
    state.store.insert_recipient(&recipient, &a).await?;
    Ok((recipient, secret))
}

/// Replaces a recipient's webhook secret (R34). Returns the recipient and the new secret,
/// shown once.
pub async fn rotate_webhook_secret(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(Recipient, WebhookSecret), Error> {
    let secret = WebhookSecret::generate().map_err(|e| Error::Internal(e.into()))?;
    let sealed = state.vault.seal_webhook_secret(id, &secret)?;
    let now = state.clock.now();
    let a = audit(
        actor,
        now,
        "recipient_secret_rotate",
        true,
        &format!("recipient:{id}"),
        Clause::r(34),
    );
    if !state
        .store
        .set_webhook_secret_audited(id, &sealed, &a)
        .await?
    {
        return Err(Error::not_found("recipient with a webhook"));
    }
    let recipient = state
        .store
        .recipient(id)
        .await?
        .ok_or_else(|| Error::not_found("recipient"))?;
    Ok((recipient, secret))
}

/// The audit entry of a sharing action (ids and vocabulary only).
fn audit(
    actor: &Actor,
    at: OffsetDateTime,
    action: &str,
    decision: bool,
    reason: &str,
    clause: Clause,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: None,
        subject: None,
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: if decision { "allow" } else { "deny" }.to_owned(),
        reason: reason.to_owned(),
        clause: Some(clause.to_string()),
        seq: None,
    }
}
