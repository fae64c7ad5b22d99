//! Contact preferences and the message outbox (issue 4; R9, R15). Each change commits
//! with its audit entry.

use crate::vault::{audit_and_commit, bind_audit, AuditEntry, INSERT_AUDIT};
use crate::{from_micros, on_pool, on_writer, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::contact::{ContactChannel, MessageKind, PreferenceTopic, Preferences};
use tutela_core::SubjectId;

/// One message that passed the send gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub subject: SubjectId,
    pub kind: MessageKind,
    pub channel: ContactChannel,
    pub template: String,
    /// `queued` or `suppressed`.
    pub status: String,
    pub reason: String,
    pub clause: String,
    pub created_at: OffsetDateTime,
}

type MessageRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
);

fn decode_message(
    (id, subject, kind, channel, template, status, reason, clause, at): MessageRow,
) -> Result<Message> {
    Ok(Message {
        id,
        subject: parse_col("subject_id", &subject, SubjectId::parse)?,
        kind: parse_col("kind", &kind, MessageKind::parse)?,
        channel: parse_col("channel", &channel, ContactChannel::parse)?,
        template,
        status,
        reason,
        clause,
        created_at: from_micros(at)?,
    })
}

/// Inserts a gated message (and its sealed parameters, if any) in an open transaction.
macro_rules! insert_message {
    ($tx:ident, $m:expr, $params:expr) => {{
        let m = $m;
        sqlx::query(
            "INSERT INTO messages (id, subject_id, kind, channel, template, status, reason, clause, created_at, sealed_params) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&m.id)
        .bind(m.subject.as_str())
        .bind(m.kind.as_str())
        .bind(m.channel.as_str())
        .bind(&m.template)
        .bind(&m.status)
        .bind(&m.reason)
        .bind(&m.clause)
        .bind($crate::to_micros(m.created_at))
        .bind($params)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use insert_message;

impl Store {
    pub async fn preferences_of(&self, subject: &SubjectId) -> Result<Preferences> {
        let rows: Vec<(String, String, bool)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT topic, channel, allowed FROM contact_preferences WHERE subject_id = $1",
            )
            .bind(subject.as_str())
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(|(topic, channel, allowed)| {
                Ok((
                    (
                        parse_col("topic", &topic, PreferenceTopic::parse)?,
                        parse_col("channel", &channel, ContactChannel::parse)?,
                    ),
                    allowed,
                ))
            })
            .collect()
    }

    /// Sets preferences and appends one audit entry per change, in one transaction.
    pub async fn set_preferences_audited(
        &self,
        subject: &SubjectId,
        changes: &[(PreferenceTopic, ContactChannel, bool, AuditEntry)],
        source: &str,
        at: OffsetDateTime,
    ) -> Result<()> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            for (topic, channel, allowed, audit) in changes {
                sqlx::query(
                    "INSERT INTO contact_preferences (subject_id, topic, channel, allowed, source, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (subject_id, topic, channel) \
                     DO UPDATE SET allowed = excluded.allowed, source = excluded.source, updated_at = excluded.updated_at",
                )
                .bind(subject.as_str())
                .bind(topic.as_str())
                .bind(channel.as_str())
                .bind(*allowed)
                .bind(source)
                .bind(to_micros(at))
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

    /// Records a gated message and the gate's audit entry in one transaction.
    pub async fn insert_message_audited(&self, m: &Message, audit: &AuditEntry) -> Result<()> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            insert_message!(tx, m, None::<&[u8]>);
            audit_and_commit!(tx, audit)
        })?;
        Ok(())
    }

    /// A message with its sealed parameters (for the delivery system that renders it).
    pub async fn message_with_params(
        &self,
        id: &str,
    ) -> Result<Option<(Message, Option<Vec<u8>>)>> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<Vec<u8>>,
        );
        let row: Option<Row> = on_pool!(self, |p| {
            sqlx::query_as(
                    "SELECT id, subject_id, kind, channel, template, status, reason, clause, created_at, sealed_params \
                     FROM messages WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(p)
                .await
        })?;
        row.map(
            |(id, subject, kind, channel, template, status, reason, clause, at, params)| {
                Ok((
                    decode_message((
                        id, subject, kind, channel, template, status, reason, clause, at,
                    ))?,
                    params,
                ))
            },
        )
        .transpose()
    }

    /// Messages of a subject, oldest first.
    pub async fn messages_of(&self, subject: &SubjectId) -> Result<Vec<Message>> {
        let rows: Vec<MessageRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, subject_id, kind, channel, template, status, reason, clause, created_at \
                 FROM messages WHERE subject_id = $1 ORDER BY created_at, id",
            )
            .bind(subject.as_str())
            .fetch_all(p)
            .await
        })?;
        rows.into_iter().map(decode_message).collect()
    }
}
