//! Subjects: the natural persons whose personal information tutela holds, each under one
//! tenant (R2). Only non-identifying attributes live here; personal data values live in
//! the encrypted vault.

use crate::db::Value;
use crate::{from_micros, parse_col, to_micros, Result, Store, StoreError};
use time::{Date, OffsetDateTime};
use tutela_core::tenant::SubjectKind;
use tutela_core::{SubjectId, TenantId};

/// A stored subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: SubjectId,
    pub tenant: TenantId,
    pub kind: SubjectKind,
    /// The day the subject comes of age, when a birth date was given (R43).
    pub adult_on: Option<Date>,
    pub created_at: OffsetDateTime,
    /// When a deletion request erased the subject's data (R33).
    pub erased_at: Option<OffsetDateTime>,
    /// What the law keeps after erasure stays frozen until then (R19), on this ground.
    pub frozen_until: Option<OffsetDateTime>,
    pub frozen_ground: Option<String>,
}

impl Subject {
    /// The subject's hold at `now` (see `tutela_core::erasure::SubjectHold`).
    pub fn hold(&self, now: OffsetDateTime) -> tutela_core::erasure::SubjectHold {
        tutela_core::erasure::SubjectHold::at(self.erased_at.is_some(), self.frozen_until, now)
    }
}

type Row = (
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);
/// The columns an insert writes, and how many.
const INSERT_COLUMNS: &str = "id, tenant_id, kind, adult_on, created_at";
const INSERT_BINDS: usize = 5;
/// Rows per multi-row INSERT (5 binds each: far below both engines' bind limits).
const INSERT_BATCH_ROWS: usize = 500;

fn push_insert_params(out: &mut Vec<Value>, s: &Subject) {
    out.extend([
        Value::from(s.id.as_str()),
        Value::from(s.tenant.as_str()),
        Value::from(s.kind.as_str()),
        Value::from(s.adult_on.map(|d| i64::from(d.to_julian_day()))),
        Value::from(to_micros(s.created_at)),
    ]);
}

const COLUMNS: &str =
    "id, tenant_id, kind, adult_on, created_at, erased_at, frozen_until, frozen_ground";

fn decode(
    (id, tenant, kind, adult_on, created_at, erased_at, frozen_until, frozen_ground): Row,
) -> Result<Subject> {
    Ok(Subject {
        id: parse_col("subjects.id", &id, SubjectId::parse)?,
        tenant: parse_col("subjects.tenant_id", &tenant, TenantId::parse)?,
        kind: parse_col("subjects.kind", &kind, SubjectKind::parse)?,
        adult_on: adult_on
            .map(|d| {
                i32::try_from(d)
                    .ok()
                    .and_then(|d| Date::from_julian_day(d).ok())
                    .ok_or_else(|| StoreError::Corrupt("subjects.adult_on out of range".into()))
            })
            .transpose()?,
        created_at: from_micros(created_at)?,
        erased_at: erased_at.map(from_micros).transpose()?,
        frozen_until: frozen_until.map(from_micros).transpose()?,
        frozen_ground,
    })
}

impl Store {
    pub async fn insert_subject(&self, s: &Subject) -> Result<()> {
        let mut params = Vec::with_capacity(INSERT_BINDS);
        push_insert_params(&mut params, s);
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO subjects (id, tenant_id, kind, adult_on, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &params,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Inserts many subjects in one transaction (imports, benchmarks), up to 500 rows
    /// per statement (`Db::execute_rows`).
    pub async fn insert_subjects(&self, subjects: &[Subject]) -> Result<()> {
        let subjects = subjects.to_vec();
        let head = format!("INSERT INTO subjects ({INSERT_COLUMNS}) VALUES ");
        self.write(move |db| {
            Box::pin(async move {
                db.execute_rows(
                    (&head, ""),
                    &subjects,
                    (INSERT_BINDS, INSERT_BATCH_ROWS),
                    push_insert_params,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn subject(&self, id: &SubjectId) -> Result<Option<Subject>> {
        let sql = format!("SELECT {COLUMNS} FROM subjects WHERE id = $1");
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move { db.fetch_optional(&sql, &[id.as_str().into()]).await })
            })
            .await?;
        row.map(decode).transpose()
    }

    /// A page of a tenant's subjects in id order, after `after` (keyset pagination).
    pub async fn subjects_of(
        &self,
        tenant: &TenantId,
        after: Option<&SubjectId>,
        limit: u32,
    ) -> Result<Vec<Subject>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM subjects WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let params: Vec<Value> = vec![
            tenant.as_str().into(),
            after.map_or("", |a| a.as_str()).into(),
            i64::from(limit).into(),
        ];
        let rows: Vec<Row> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await?;
        rows.into_iter().map(decode).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::tenants::testing::{at, fresh, stores, test_tenant};

    fn subject(tenant: &TenantId, id: SubjectId) -> Subject {
        Subject {
            id,
            tenant: tenant.clone(),
            kind: SubjectKind::Contact,
            adult_on: Some(Date::from_calendar_date(2030, time::Month::March, 1).unwrap()),
            created_at: at(0),
            erased_at: None,
            frozen_until: None,
            frozen_ground: None,
        }
    }

    /// A bulk insert spanning two statements lands whole, and pages through in id
    /// order; a single insert reads back as written, its coming of age included (R43).
    #[tokio::test]
    async fn bulk_inserts_span_statements_and_page_in_id_order() {
        for store in stores().await {
            let tenant = test_tenant(&store).await;
            let mut all: Vec<Subject> = (0..INSERT_BATCH_ROWS + 1)
                .map(|_| subject(&tenant, SubjectId::from_bytes(fresh())))
                .collect();
            store.insert_subjects(&all).await.unwrap();
            let one = Subject {
                adult_on: None,
                kind: SubjectKind::EndUser,
                ..subject(&tenant, SubjectId::from_bytes(fresh()))
            };
            store.insert_subject(&one).await.unwrap();
            assert_eq!(store.subject(&one.id).await.unwrap(), Some(one.clone()));
            let again = store.insert_subject(&one).await;
            assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
            all.push(one);
            all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));

            let first = store.subjects_of(&tenant, None, 500).await.unwrap();
            let rest = store
                .subjects_of(&tenant, first.last().map(|s| &s.id), 500)
                .await
                .unwrap();
            assert_eq!((first.len(), rest.len()), (500, all.len() - 500));
            let paged: Vec<Subject> = first.into_iter().chain(rest).collect();
            assert_eq!(paged, all);
        }
    }
}
