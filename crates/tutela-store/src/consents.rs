//! The consent ledger's rows (issue 4). Append-only: this module has no UPDATE or
//! DELETE. Each entry commits in one transaction with its audit entry.

use crate::vault::{audit_and_commit, bind_audit, AuditEntry, INSERT_AUDIT};
use crate::{from_micros, on_pool, on_writer, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::consent::{Channel, ConsentScope};
use tutela_core::{Purpose, SubjectId};

/// One ledger entry: granted or withdrawn, for which scope, under which statement
/// version, through which channel, by whom, with what evidence.
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
    Option<String>,
    Option<String>,
    i64,
);

impl Store {
    /// Appends a consent entry and its audit entry in one transaction.
    pub async fn append_consent_audited(&self, c: &ConsentEntry, audit: &AuditEntry) -> Result<()> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO consents (id, subject_id, scope, granted, statement_version, channel, \
                 token_id, role, guardian_ref, evidence_ref, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&c.id)
            .bind(c.subject.as_str())
            .bind(c.scope.to_string())
            .bind(c.granted)
            .bind(&c.statement_version)
            .bind(c.channel.as_str())
            .bind(&c.token_id)
            .bind(&c.role)
            .bind(c.guardian_ref.as_deref())
            .bind(c.evidence_ref.as_deref())
            .bind(to_micros(c.at))
            .execute(&mut *tx)
            .await?;
            audit_and_commit!(tx, audit)
        })?;
        Ok(())
    }

    /// A subject's whole consent history, oldest first.
    pub async fn consents_of(&self, subject: &SubjectId) -> Result<Vec<ConsentEntry>> {
        let rows: Vec<ConsentRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, subject_id, scope, granted, statement_version, channel, token_id, role, \
                 guardian_ref, evidence_ref, at FROM consents WHERE subject_id = $1 ORDER BY at, id",
            )
            .bind(subject.as_str())
            .fetch_all(p)
            .await
        })?;
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
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            for (c, audit) in changes {
                sqlx::query(
                    "INSERT INTO purpose_changes (id, purpose, controller, reason, notice_ref, at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&c.id)
                .bind(c.purpose.as_str())
                .bind(&c.controller)
                .bind(&c.reason)
                .bind(c.notice_ref.as_deref())
                .bind(to_micros(c.at))
                .execute(&mut *tx)
                .await?;
                bind_audit!(sqlx::query(INSERT_AUDIT), audit)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Every purpose change, oldest first.
    pub async fn purpose_changes(&self) -> Result<Vec<PurposeChange>> {
        let rows: Vec<(String, String, String, String, Option<String>, i64)> = on_pool!(
            self,
            |p| {
                sqlx::query_as(
                "SELECT id, purpose, controller, reason, notice_ref, at FROM purpose_changes ORDER BY at, id",
            )
            .fetch_all(p)
            .await
            }
        )?;
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
