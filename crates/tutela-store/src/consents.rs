//! The consent ledger's rows (issue 4). Append-only: this module has no UPDATE or
//! DELETE. Each entry commits in one transaction with its audit entry.

use crate::audit::{insert_audit, AuditEntry};
use crate::db::Value;
use crate::{from_micros, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::consent::{Channel, ConsentMethod, ConsentScope};
use tutela_core::{Purpose, SubjectId};

/// One ledger entry: granted or withdrawn, for which scope, under which statement
/// version, through which channel, by whom (token and role), how (the provenance method)
/// and with what evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntry {
    pub id: String,
    pub subject: SubjectId,
    pub scope: ConsentScope,
    pub granted: bool,
    pub statement_version: String,
    pub channel: Channel,
    pub token_id: String,
    pub role: String,
    /// How the entry came to be recorded (issue 14): the subject's own token, cited
    /// evidence of its act, or `legacy_unrecorded` for rows older than schema 0018.
    pub method: ConsentMethod,
    /// For a guardian consent: the reference of the guardian's verified identity.
    pub guardian_ref: Option<String>,
    /// A reference to the evidence (form scan, e-mail message id); never the content.
    pub evidence_ref: Option<String>,
    pub at: OffsetDateTime,
}

/// A purpose changed by a successor controller (R27).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeChange {
    pub id: String,
    pub purpose: Purpose,
    /// The new controller's name (a company, not a person).
    pub controller: String,
    pub reason: String,
    /// Reference of the notice sent to subjects.
    pub notice_ref: Option<String>,
    pub at: OffsetDateTime,
}

type ConsentRow = (
    String,
    String,
    String,
    bool,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

impl Store {
    /// Appends a consent entry and its audit entry in one transaction.
    pub async fn append_consent_audited(&self, c: &ConsentEntry, audit: &AuditEntry) -> Result<()> {
        let params: Vec<Value> = vec![
            (&c.id).into(),
            c.subject.as_str().into(),
            c.scope.to_string().into(),
            c.granted.into(),
            (&c.statement_version).into(),
            c.channel.as_str().into(),
            (&c.token_id).into(),
            (&c.role).into(),
            c.method.as_str().into(),
            c.guardian_ref.as_deref().into(),
            c.evidence_ref.as_deref().into(),
            to_micros(c.at).into(),
        ];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO consents (id, subject_id, scope, granted, statement_version, channel, \
                     token_id, role, method, guardian_ref, evidence_ref, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    &params,
                )
                .await?;
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    /// A subject's whole consent history, oldest first.
    pub async fn consents_of(&self, subject: &SubjectId) -> Result<Vec<ConsentEntry>> {
        let subject = subject.as_str().to_owned();
        let rows: Vec<ConsentRow> = self
            .scan(move |db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id, subject_id, scope, granted, statement_version, channel, token_id, role, \
                         method, guardian_ref, evidence_ref, at FROM consents WHERE subject_id = $1 ORDER BY at, id",
                        &[subject.into()],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(
                |(
                    id,
                    subject,
                    scope,
                    granted,
                    version,
                    channel,
                    token_id,
                    role,
                    method,
                    guardian_ref,
                    evidence_ref,
                    at,
                )| {
                    Ok(ConsentEntry {
                        id,
                        subject: parse_col("subject_id", &subject, SubjectId::parse)?,
                        scope: parse_col("scope", &scope, ConsentScope::parse)?,
                        granted,
                        statement_version: version,
                        channel: parse_col("channel", &channel, Channel::parse)?,
                        token_id,
                        role,
                        method: parse_col("method", &method, ConsentMethod::parse)?,
                        guardian_ref,
                        evidence_ref,
                        at: from_micros(at)?,
                    })
                },
            )
            .collect()
    }

    /// Records purpose changes and their audit entries in one transaction.
    pub async fn insert_purpose_changes_audited(
        &self,
        changes: &[(PurposeChange, AuditEntry)],
    ) -> Result<()> {
        let changes = changes.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                for (c, audit) in &changes {
                    db.execute(
                        "INSERT INTO purpose_changes (id, purpose, controller, reason, notice_ref, at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            (&c.id).into(),
                            c.purpose.as_str().into(),
                            (&c.controller).into(),
                            (&c.reason).into(),
                            c.notice_ref.as_deref().into(),
                            to_micros(c.at).into(),
                        ],
                    )
                    .await?;
                    insert_audit(db, audit).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Every purpose change, oldest first.
    pub async fn purpose_changes(&self) -> Result<Vec<PurposeChange>> {
        let rows: Vec<(String, String, String, String, Option<String>, i64)> = self
            .scan(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id, purpose, controller, reason, notice_ref, at FROM purpose_changes ORDER BY at, id",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id, purpose, controller, reason, notice_ref, at)| {
                Ok(PurposeChange {
                    id,
                    purpose: parse_col("purpose", &purpose, Purpose::parse)?,
                    controller,
                    reason,
                    notice_ref,
                    at: from_micros(at)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use tutela_core::TenantId;

    fn audit(n: u8) -> AuditEntry {
        AuditEntry {
            id: format!("aud_test_{n}"),
            at: OffsetDateTime::UNIX_EPOCH,
            token_id: "tok_test".into(),
            role: "service".into(),
            tenant: None,
            subject: None,
            category: None,
            purpose: Some("research".into()),
            action: "consent_grant".into(),
            decision: "allow".into(),
            reason: "test".into(),
            clause: None,
            seq: None,
        }
    }

    /// Schema 0018 (issue 14): a ledger written before provenance was kept upgrades in
    /// place and its rows read as `legacy_unrecorded`; new rows keep their method.
    #[tokio::test]
    async fn rows_older_than_provenance_read_as_legacy_unrecorded_r4() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let tenant = TenantId::from_bytes([1; 16]);
        let subject = SubjectId::from_bytes([2; 16]);
        let migrations = crate::db::dialect(crate::Backend::Sqlite).migrations;
        let (t, s) = (tenant.as_str().to_owned(), subject.as_str().to_owned());
        store
            .write(move |db| {
                Box::pin(async move {
                    // The version table as it was before checksums (issue 15), at 0017.
                    db.execute_script(
                        "CREATE TABLE tutela_schema (version BIGINT PRIMARY KEY, \
                         description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                    )
                    .await?;
                    for &(version, description, sql) in migrations.iter().filter(|m| m.0 < 18) {
                        db.execute_script(sql).await?;
                        db.execute(
                            "INSERT INTO tutela_schema (version, description, applied_at) VALUES ($1, $2, 0)",
                            &[version.into(), description.into()],
                        )
                        .await?;
                    }
                    // The tenant, subject and a consent row as the pre-0018 binary wrote
                    // them (raw SQL: today's store writes columns of later schemas).
                    db.execute(
                        "INSERT INTO tenants (id, name, kind, state, created_at) \
                         VALUES ($1, 'Legacy tenant', 'enterprise', 'active', 0)",
                        &[(&t).into()],
                    )
                    .await?;
                    db.execute(
                        "INSERT INTO subjects (id, tenant_id, kind, created_at) \
                         VALUES ($1, $2, 'contact', 0)",
                        &[(&s).into(), (&t).into()],
                    )
                    .await?;
                    db.execute(
                        "INSERT INTO consents (id, subject_id, scope, granted, statement_version, \
                         channel, token_id, role, guardian_ref, evidence_ref, at) \
                         VALUES ('con_old', $1, 'research', 1, '2.0', 'portal', 'tok_old', \
                         'service', NULL, NULL, 0)",
                        &[(&s).into()],
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();

        let status = store.migrate(now).await.unwrap();
        assert_eq!((status.from, status.to), (17, crate::SCHEMA_VERSION));
        let new = ConsentEntry {
            id: "con_new".into(),
            subject: subject.clone(),
            scope: ConsentScope::CrossBorder,
            granted: true,
            statement_version: "2.0".into(),
            channel: Channel::Paper,
            token_id: "tok_new".into(),
            role: "tenant_admin".into(),
            method: ConsentMethod::SignedForm,
            guardian_ref: None,
            evidence_ref: Some("scan-7".into()),
            at: now + time::Duration::SECOND,
        };
        store.append_consent_audited(&new, &audit(1)).await.unwrap();
        let ledger = store.consents_of(&subject).await.unwrap();
        let methods: Vec<(&str, ConsentMethod)> =
            ledger.iter().map(|c| (c.id.as_str(), c.method)).collect();
        assert_eq!(
            methods,
            vec![
                ("con_old", ConsentMethod::LegacyUnrecorded),
                ("con_new", ConsentMethod::SignedForm)
            ]
        );
        assert_eq!(ledger[1], new);
    }

    /// A consent entry and a purpose change each commit with their audit entry and read
    /// back as written, on both engines (R4, R27).
    #[tokio::test]
    async fn consents_and_purpose_changes_read_back_with_their_audit() {
        use crate::requests::tests::{actions, audit as audit_as, nonce, stores, subject_row};
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir).await {
            let n = nonce();
            let (tenant, subject) = (TenantId::from_bytes(n), SubjectId::from_bytes(n));
            let reason = format!("consent-test-{}", subject.as_str());
            let aid = |k: u8| format!("aud_{}_{k}", subject.as_str());
            subject_row(&store, &tenant, &subject).await;
            let at = OffsetDateTime::UNIX_EPOCH;
            let granted = ConsentEntry {
                id: format!("con_{}_1", subject.as_str()),
                subject: subject.clone(),
                scope: ConsentScope::ThirdPartyOffering("rcp_partner".into()),
                granted: true,
                statement_version: "3.1".into(),
                channel: Channel::Portal,
                token_id: "tok_subject".into(),
                role: "subject".into(),
                method: ConsentMethod::SubjectSelf,
                guardian_ref: Some("guardian-ref".into()),
                evidence_ref: None,
                at,
            };
            let withdrawn = ConsentEntry {
                id: format!("con_{}_2", subject.as_str()),
                granted: false,
                at: at + time::Duration::SECOND,
                ..granted.clone()
            };
            for (k, c) in [(1, &withdrawn), (2, &granted)] {
                store
                    .append_consent_audited(c, &audit_as(&aid(k), "consent.record", &reason))
                    .await
                    .unwrap();
            }
            assert_eq!(
                store.consents_of(&subject).await.unwrap(),
                [granted, withdrawn]
            );
            let change = PurposeChange {
                id: format!("pch_{}", subject.as_str()),
                purpose: Purpose::Marketing,
                controller: "Successor Ltd".into(),
                reason: "merger".into(),
                notice_ref: Some("notice-1".into()),
                at,
            };
            store
                .insert_purpose_changes_audited(&[(
                    change.clone(),
                    audit_as(&aid(3), "purpose.change", &reason),
                )])
                .await
                .unwrap();
            let changes = store.purpose_changes().await.unwrap();
            assert!(changes.contains(&change));
            assert_eq!(
                actions(&store, &reason).await,
                ["consent.record", "consent.record", "purpose.change"]
            );
        }
    }
}
