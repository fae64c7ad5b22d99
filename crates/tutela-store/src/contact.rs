//! Contact preferences and the message outbox (issue 4; R9, R15). Each change commits
//! with its audit entry.

use crate::audit::{insert_audit, AuditEntry};
use crate::db::Db;
use crate::{from_micros, parse_col, to_micros, Result, Store};
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

/// Inserts a gated message (and its sealed parameters, if any) in the caller's
/// transaction.
pub(crate) async fn insert_message(
    db: &mut Db<'_>,
    m: &Message,
    sealed_params: Option<&[u8]>,
) -> Result<()> {
    db.execute(
        "INSERT INTO messages (id, subject_id, kind, channel, template, status, reason, clause, created_at, sealed_params) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            (&m.id).into(),
            m.subject.as_str().into(),
            m.kind.as_str().into(),
            m.channel.as_str().into(),
            (&m.template).into(),
            (&m.status).into(),
            (&m.reason).into(),
            (&m.clause).into(),
            to_micros(m.created_at).into(),
            sealed_params.into(),
        ],
    )
    .await?;
    Ok(())
}

impl Store {
    pub async fn preferences_of(&self, subject: &SubjectId) -> Result<Preferences> {
        let rows: Vec<(String, String, bool)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT topic, channel, allowed FROM contact_preferences WHERE subject_id = $1",
                        &[subject.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
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
        let subject = subject.as_str().to_owned();
        let changes = changes.to_vec();
        let source = source.to_owned();
        let at = to_micros(at);
        self.write(move |db| {
            Box::pin(async move {
                for (topic, channel, allowed, audit) in &changes {
                    db.execute(
                        "INSERT INTO contact_preferences (subject_id, topic, channel, allowed, source, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (subject_id, topic, channel) \
                         DO UPDATE SET allowed = excluded.allowed, source = excluded.source, updated_at = excluded.updated_at",
                        &[
                            (&subject).into(),
                            topic.as_str().into(),
                            channel.as_str().into(),
                            (*allowed).into(),
                            (&source).into(),
                            at.into(),
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

    /// Records a gated message and the gate's audit entry in one transaction.
    pub async fn insert_message_audited(&self, m: &Message, audit: &AuditEntry) -> Result<()> {
        let m = m.clone();
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                insert_message(db, &m, None).await?;
                insert_audit(db, &audit).await
            })
        })
        .await
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
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT id, subject_id, kind, channel, template, status, reason, clause, created_at, sealed_params \
                         FROM messages WHERE id = $1",
                        &[id.into()],
                    )
                    .await
                })
            })
            .await?;
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
        let subject = subject.as_str().to_owned();
        let rows: Vec<MessageRow> = self
            .scan(move |db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id, subject_id, kind, channel, template, status, reason, clause, created_at \
                         FROM messages WHERE subject_id = $1 ORDER BY created_at, id",
                        &[subject.into()],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter().map(decode_message).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::requests::tests::{actions, audit, nonce, stores, subject_row};
    use tutela_core::TenantId;

    /// A preference change replaces the earlier choice for its (topic, channel), each with
    /// its audit entry; a gated message reads back without parameters (R9, R15).
    #[tokio::test]
    async fn preferences_are_upserted_and_messages_recorded_with_their_audit() {
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir).await {
            let n = nonce();
            let (tenant, subject) = (TenantId::from_bytes(n), SubjectId::from_bytes(n));
            let reason = format!("contact-test-{}", subject.as_str());
            let aid = |k: u8| format!("aud_{}_{k}", subject.as_str());
            subject_row(&store, &tenant, &subject).await;
            let at = OffsetDateTime::UNIX_EPOCH;
            store
                .set_preferences_audited(
                    &subject,
                    &[
                        (
                            PreferenceTopic::Marketing,
                            ContactChannel::Email,
                            true,
                            audit(&aid(1), "preference.set", &reason),
                        ),
                        (
                            PreferenceTopic::Surveys,
                            ContactChannel::Sms,
                            true,
                            audit(&aid(2), "preference.set", &reason),
                        ),
                    ],
                    "portal",
                    at,
                )
                .await
                .unwrap();
            store
                .set_preferences_audited(
                    &subject,
                    &[(
                        PreferenceTopic::Marketing,
                        ContactChannel::Email,
                        false,
                        audit(&aid(3), "preference.set", &reason),
                    )],
                    "portal",
                    at,
                )
                .await
                .unwrap();
            let prefs = store.preferences_of(&subject).await.unwrap();
            assert_eq!(prefs.len(), 2);
            assert_eq!(
                prefs.get(&(PreferenceTopic::Marketing, ContactChannel::Email)),
                Some(&false)
            );
            assert_eq!(
                prefs.get(&(PreferenceTopic::Surveys, ContactChannel::Sms)),
                Some(&true)
            );
            let m = Message {
                id: format!("msg_{}", subject.as_str()),
                subject: subject.clone(),
                kind: MessageKind::Marketing,
                channel: ContactChannel::Email,
                template: "newsletter".into(),
                status: "suppressed".into(),
                reason: "preference".into(),
                clause: "R15".into(),
                created_at: at,
            };
            store
                .insert_message_audited(&m, &audit(&aid(4), "message.suppressed", &reason))
                .await
                .unwrap();
            assert_eq!(
                store.message_with_params(&m.id).await.unwrap(),
                Some((m.clone(), None))
            );
            assert_eq!(
                store.message_with_params("msg_missing").await.unwrap(),
                None
            );
            assert_eq!(store.messages_of(&subject).await.unwrap(), [m]);
            assert_eq!(
                actions(&store, &reason).await,
                [
                    "preference.set",
                    "preference.set",
                    "preference.set",
                    "message.suppressed"
                ]
            );
        }
    }
}
