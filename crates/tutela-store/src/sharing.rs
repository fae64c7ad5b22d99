//! Storage locations, recipients and the transfer register (issue 5). List columns
//! (categories, purposes) are stored comma-separated: they are closed vocabulary.

use crate::audit::{insert_audit, AuditEntry};
use crate::db::Value;
use crate::{from_micros, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::policy::RecipientKind;
use tutela_core::{Category, Country, Purpose, Region, SubjectId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLocation {
    pub id: String,
    pub name: String,
    pub region: Region,
    pub country: Country,
    pub categories: Vec<Category>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: String,
    pub name: String,
    pub kind: RecipientKind,
    pub country: Country,
    pub purposes: Vec<Purpose>,
    pub categories: Vec<Category>,
    /// The confidentiality / protection commitment the recipient signed (R21).
    pub commitment_ref: Option<String>,
    /// The recipient's own privacy policy (R25).
    pub policy_ref: Option<String>,
    /// Where deletions are propagated (R34).
    pub webhook_url: Option<String>,
    /// The webhook signing secret, sealed under a master key (R34).
    pub webhook_secret: Option<SealedSecret>,
    pub created_at: OffsetDateTime,
}

/// A secret sealed under the master key `key_id`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: i64,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecret(key {})", self.key_id)
    }
}

/// One entry of the transfer register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub subject: SubjectId,
    pub tenant: TenantId,
    pub recipient: String,
    pub recipient_kind: RecipientKind,
    pub country: Country,
    pub categories: Vec<Category>,
    pub purpose: Purpose,
    /// `declared`, `consent`, `exception:<ground>` or `disclosed_abroad`.
    pub basis: String,
    /// The legal reference of an exception (R28).
    pub legal_ref: Option<String>,
    /// The third party's policy (R25).
    pub policy_ref: Option<String>,
    /// The notice sent to the customer first (R23).
    pub notice_id: Option<String>,
    /// A legal prohibition on notifying the customer (R23).
    pub prohibition_ref: Option<String>,
    pub clause: String,
    pub at: OffsetDateTime,
}

/// A third-party complaint redirected to the customer (R23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub id: String,
    pub tenant: TenantId,
    /// The ticket in the operator's complaint system; the content stays there.
    pub complaint_ref: String,
    /// The notices sent to the customer's administrators.
    pub notices: Vec<String>,
    /// Token id of who recorded it.
    pub received_by: String,
    pub at: OffsetDateTime,
}

/// Which register entries to list.
#[derive(Debug, Clone, Default)]
pub struct TransferFilter {
    pub subject: Option<SubjectId>,
    pub recipient: Option<String>,
    pub country: Option<Country>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub limit: i64,
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn split<T, E: std::fmt::Display>(
    column: &str,
    text: &str,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<Vec<T>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| parse_col(column, s, &parse))
        .collect()
}

type RecipientRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<i64>,
    i64,
);

fn decode_recipient(r: RecipientRow) -> Result<Recipient> {
    let (
        id,
        name,
        kind,
        country,
        purposes,
        categories,
        commitment_ref,
        policy_ref,
        webhook_url,
        webhook_secret,
        webhook_key_id,
        at,
    ) = r;
    Ok(Recipient {
        id,
        name,
        kind: parse_col("kind", &kind, RecipientKind::parse)?,
        country: parse_col("country", &country, Country::parse)?,
        purposes: split("purposes", &purposes, Purpose::parse)?,
        categories: split("categories", &categories, Category::parse)?,
        commitment_ref,
        policy_ref,
        webhook_url,
        webhook_secret: match (webhook_secret, webhook_key_id) {
            (Some(sealed), Some(key_id)) => Some(SealedSecret { key_id, sealed }),
            _ => None,
        },
        created_at: from_micros(at)?,
    })
}

type TransferRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
);

const RECIPIENT_COLUMNS: &str = "id, name, kind, country, purposes, categories, \
    commitment_ref, policy_ref, webhook_url, webhook_secret, webhook_key_id, created_at";

const LOCATION_COLUMNS: &str = "id, name, region, country, categories, created_at";

type LocationRow = (String, String, String, String, String, i64);

fn decode_location(
    (id, name, region, country, categories, at): LocationRow,
) -> Result<StorageLocation> {
    Ok(StorageLocation {
        id,
        name,
        region: parse_col("region", &region, Region::parse)?,
        country: parse_col("country", &country, Country::parse)?,
        categories: split("categories", &categories, Category::parse)?,
        created_at: from_micros(at)?,
    })
}

const TRANSFER_COLUMNS: &str = "id, subject_id, tenant_id, recipient_id, recipient_kind, country, \
    categories, purpose, basis, legal_ref, policy_ref, notice_id, prohibition_ref, clause, at";

fn decode_transfer(r: TransferRow) -> Result<Transfer> {
    let (
        id,
        subject,
        tenant,
        recipient,
        kind,
        country,
        categories,
        purpose,
        basis,
        legal_ref,
        policy_ref,
        notice_id,
        prohibition_ref,
        clause,
        at,
    ) = r;
    Ok(Transfer {
        id,
        subject: parse_col("subject_id", &subject, SubjectId::parse)?,
        tenant: parse_col("tenant_id", &tenant, TenantId::parse)?,
        recipient,
        recipient_kind: parse_col("recipient_kind", &kind, RecipientKind::parse)?,
        country: parse_col("country", &country, Country::parse)?,
        categories: split("categories", &categories, Category::parse)?,
        purpose: parse_col("purpose", &purpose, Purpose::parse)?,
        basis,
        legal_ref,
        policy_ref,
        notice_id,
        prohibition_ref,
        clause,
        at: from_micros(at)?,
    })
}

impl Store {
    /// Runs one insert and its audit entry in one transaction.
    async fn insert_sharing_row_audited(
        &self,
        sql: String,
        params: Vec<Value>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(&sql, &params).await?;
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    pub async fn insert_storage_location(
        &self,
        l: &StorageLocation,
        audit: &AuditEntry,
    ) -> Result<()> {
        let params: Vec<Value> = vec![
            (&l.id).into(),
            (&l.name).into(),
            l.region.as_str().into(),
            l.country.as_str().into(),
            join(l.categories.iter().map(|c| c.as_str())).into(),
            to_micros(l.created_at).into(),
        ];
        self.insert_sharing_row_audited(
            "INSERT INTO storage_locations (id, name, region, country, categories, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
                .to_owned(),
            params,
            audit,
        )
        .await
    }

    pub async fn storage_locations(&self) -> Result<Vec<StorageLocation>> {
        let sql =
            format!("SELECT {LOCATION_COLUMNS} FROM storage_locations ORDER BY created_at, id");
        let rows: Vec<LocationRow> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &[]).await }))
            .await?;
        rows.into_iter().map(decode_location).collect()
    }

    pub async fn storage_location(&self, id: &str) -> Result<Option<StorageLocation>> {
        let sql = format!("SELECT {LOCATION_COLUMNS} FROM storage_locations WHERE id = $1");
        let row: Option<LocationRow> = self
            .read(|db| Box::pin(async move { db.fetch_optional(&sql, &[id.into()]).await }))
            .await?;
        row.map(decode_location).transpose()
    }

    pub async fn insert_recipient(&self, r: &Recipient, audit: &AuditEntry) -> Result<()> {
        let params: Vec<Value> = vec![
            (&r.id).into(),
            (&r.name).into(),
            r.kind.as_str().into(),
            r.country.as_str().into(),
            join(r.purposes.iter().map(|p| p.as_str())).into(),
            join(r.categories.iter().map(|c| c.as_str())).into(),
            r.commitment_ref.as_deref().into(),
            r.policy_ref.as_deref().into(),
            r.webhook_url.as_deref().into(),
            r.webhook_secret
                .as_ref()
                .map(|s| s.sealed.as_slice())
                .into(),
            r.webhook_secret.as_ref().map(|s| s.key_id).into(),
            to_micros(r.created_at).into(),
        ];
        self.insert_sharing_row_audited(
            format!(
                "INSERT INTO recipients ({RECIPIENT_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            params,
            audit,
        )
        .await
    }

    /// Replaces a recipient's webhook secret, with the audit entry. Returns whether the
    /// recipient exists and has a webhook.
    pub async fn set_webhook_secret_audited(
        &self,
        id: &str,
        secret: &SealedSecret,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let params: Vec<Value> = vec![
            secret.sealed.as_slice().into(),
            secret.key_id.into(),
            id.into(),
        ];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                let n = db
                    .execute(
                        "UPDATE recipients SET webhook_secret = $1, webhook_key_id = $2 \
                         WHERE id = $3 AND webhook_url IS NOT NULL",
                        &params,
                    )
                    .await?;
                if n == 0 {
                    // No such recipient, or no webhook: nothing was written (the
                    // transaction commits empty) and nothing is audited.
                    return Ok(false);
                }
                insert_audit(db, &audit).await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn recipient(&self, id: &str) -> Result<Option<Recipient>> {
        let sql = format!("SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE id = $1");
        let row: Option<RecipientRow> = self
            .read(|db| Box::pin(async move { db.fetch_optional(&sql, &[id.into()]).await }))
            .await?;
        row.map(decode_recipient).transpose()
    }

    pub async fn recipients(&self) -> Result<Vec<Recipient>> {
        let sql = format!("SELECT {RECIPIENT_COLUMNS} FROM recipients ORDER BY created_at, id");
        let rows: Vec<RecipientRow> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &[]).await }))
            .await?;
        rows.into_iter().map(decode_recipient).collect()
    }

    /// Records a transfer that went ahead, with its audit entry.
    pub async fn insert_transfer_audited(&self, t: &Transfer, audit: &AuditEntry) -> Result<()> {
        let params: Vec<Value> = vec![
            (&t.id).into(),
            t.subject.as_str().into(),
            t.tenant.as_str().into(),
            (&t.recipient).into(),
            t.recipient_kind.as_str().into(),
            t.country.as_str().into(),
            join(t.categories.iter().map(|c| c.as_str())).into(),
            t.purpose.as_str().into(),
            (&t.basis).into(),
            t.legal_ref.as_deref().into(),
            t.policy_ref.as_deref().into(),
            t.notice_id.as_deref().into(),
            t.prohibition_ref.as_deref().into(),
            (&t.clause).into(),
            to_micros(t.at).into(),
        ];
        self.insert_sharing_row_audited(
            format!(
                "INSERT INTO transfers ({TRANSFER_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            params,
            audit,
        )
        .await
    }

    /// The register, oldest first, filtered. Unset filters match everything.
    pub async fn transfers(&self, f: &TransferFilter) -> Result<Vec<Transfer>> {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers \
             WHERE ($1 IS NULL OR subject_id = $1) AND ($2 IS NULL OR recipient_id = $2) \
               AND ($3 IS NULL OR country = $3) AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) \
             ORDER BY at, id LIMIT $6"
        );
        // Unset filters are typed NULLs (text, text, text, integer, integer): PostgreSQL
        // must know each parameter's type even when it is NULL.
        let params: Vec<Value> = vec![
            f.subject.as_ref().map(SubjectId::as_str).into(),
            f.recipient.as_deref().into(),
            f.country.as_ref().map(Country::as_str).into(),
            f.from.map(to_micros).into(),
            f.to.map(to_micros).into(),
            f.limit.into(),
        ];
        let rows: Vec<TransferRow> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await?;
        rows.into_iter().map(decode_transfer).collect()
    }

    /// Records a third-party complaint's redirection (R23) with its audit entry.
    pub async fn insert_complaint_audited(&self, c: &Complaint, audit: &AuditEntry) -> Result<()> {
        let params: Vec<Value> = vec![
            (&c.id).into(),
            c.tenant.as_str().into(),
            (&c.complaint_ref).into(),
            join(&c.notices).into(),
            (&c.received_by).into(),
            to_micros(c.at).into(),
        ];
        self.insert_sharing_row_audited(
            "INSERT INTO third_party_complaints (id, tenant_id, complaint_ref, notices, received_by, at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
                .to_owned(),
            params,
            audit,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::subjects::Subject;
    use crate::tenants::testing::{at, audit, audited, fresh, stores, test_tenant};
    use tutela_core::tenant::SubjectKind;

    fn fresh_id(prefix: &str) -> String {
        format!("{prefix}_{}", hex::encode(fresh()))
    }

    fn recipient(webhook: bool) -> Recipient {
        Recipient {
            id: fresh_id("rcp"),
            name: "Payments Ltd".into(),
            kind: RecipientKind::PaymentProcessor,
            country: Country::parse("SG").unwrap(),
            purposes: vec![Purpose::Transaction, Purpose::FraudPrevention],
            categories: vec![Category::Payment],
            commitment_ref: Some("DPA-7".into()),
            policy_ref: None,
            webhook_url: webhook.then(|| "https://hooks.example/erase".into()),
            webhook_secret: webhook.then(|| SealedSecret {
                key_id: 1,
                sealed: vec![1; 8],
            }),
            created_at: at(0),
        }
    }

    /// Locations and recipients read back as written; a webhook secret is replaced only
    /// on a recipient that has a webhook, and only then audited (R21, R34).
    #[tokio::test]
    async fn recipients_and_webhook_secrets() {
        for store in stores().await {
            let loc = StorageLocation {
                id: fresh_id("loc"),
                name: "Shanghai".into(),
                region: Region::Cn,
                country: Country::parse("CN").unwrap(),
                categories: vec![Category::Customer, Category::Support],
                created_at: at(0),
            };
            store
                .insert_storage_location(&loc, &audit("test", "location.created", 1))
                .await
                .unwrap();
            assert_eq!(
                store.storage_location(&loc.id).await.unwrap(),
                Some(loc.clone())
            );
            assert!(store.storage_locations().await.unwrap().contains(&loc));

            let with = recipient(true);
            let without = recipient(false);
            for r in [&with, &without] {
                store
                    .insert_recipient(r, &audit("test", "recipient.created", 1))
                    .await
                    .unwrap();
                assert_eq!(store.recipient(&r.id).await.unwrap().as_ref(), Some(r));
            }
            let all = store.recipients().await.unwrap();
            assert!(all.contains(&with) && all.contains(&without));

            let secret = SealedSecret {
                key_id: 2,
                sealed: vec![2; 8],
            };
            let reason = format!("webhook:{}", without.id);
            let set = store
                .set_webhook_secret_audited(
                    &without.id,
                    &secret,
                    &audit(&reason, "webhook.rotated", 2),
                )
                .await
                .unwrap();
            assert!(!set);
            assert!(audited(&store, &reason).await.is_empty());
            let reason = format!("webhook:{}", with.id);
            let set = store
                .set_webhook_secret_audited(
                    &with.id,
                    &secret,
                    &audit(&reason, "webhook.rotated", 2),
                )
                .await
                .unwrap();
            assert!(set);
            assert_eq!(audited(&store, &reason).await, ["webhook.rotated"]);
            let stored = store.recipient(&with.id).await.unwrap().unwrap();
            assert_eq!(stored.webhook_secret, Some(secret));
        }
    }

    /// The transfer register filters on any combination of its criteria; an unset one
    /// is a typed NULL that matches everything on both engines (R21, R24). A complaint
    /// is recorded with its audit entry (R23).
    #[tokio::test]
    async fn the_transfer_register_filters_with_unset_criteria() {
        for store in stores().await {
            let tenant = test_tenant(&store).await;
            let subject = SubjectId::from_bytes(fresh());
            store
                .insert_subject(&Subject {
                    id: subject.clone(),
                    tenant: tenant.clone(),
                    kind: SubjectKind::Contact,
                    adult_on: None,
                    created_at: at(0),
                    erased_at: None,
                    frozen_until: None,
                    frozen_ground: None,
                })
                .await
                .unwrap();
            let r = recipient(false);
            store
                .insert_recipient(&r, &audit("test", "recipient.created", 1))
                .await
                .unwrap();
            let transfer = |n: i64| Transfer {
                id: fresh_id("trf"),
                subject: subject.clone(),
                tenant: tenant.clone(),
                recipient: r.id.clone(),
                recipient_kind: r.kind,
                country: r.country,
                categories: vec![Category::Payment],
                purpose: Purpose::Transaction,
                basis: "declared".into(),
                legal_ref: None,
                policy_ref: Some("https://payments.example/privacy".into()),
                notice_id: None,
                prohibition_ref: None,
                clause: "R21".into(),
                at: at(n),
            };
            let (early, late) = (transfer(100), transfer(200));
            let reason = format!("transfer:{subject}", subject = subject.as_str());
            for t in [&early, &late] {
                store
                    .insert_transfer_audited(
                        t,
                        &audit(&reason, "transfer.made", t.at.unix_timestamp()),
                    )
                    .await
                    .unwrap();
            }
            assert_eq!(
                audited(&store, &reason).await,
                ["transfer.made", "transfer.made"]
            );

            let by_subject = TransferFilter {
                subject: Some(subject.clone()),
                limit: 10,
                ..TransferFilter::default()
            };
            assert_eq!(
                store.transfers(&by_subject).await.unwrap(),
                [early.clone(), late.clone()]
            );
            let window = TransferFilter {
                recipient: Some(r.id.clone()),
                country: Some(r.country),
                from: Some(at(150)),
                to: Some(at(250)),
                ..by_subject.clone()
            };
            assert_eq!(store.transfers(&window).await.unwrap(), [late]);
            let elsewhere = TransferFilter {
                country: Some(Country::parse("US").unwrap()),
                ..by_subject.clone()
            };
            assert!(store.transfers(&elsewhere).await.unwrap().is_empty());
            let first = TransferFilter {
                limit: 1,
                ..by_subject
            };
            assert_eq!(store.transfers(&first).await.unwrap(), [early]);

            let complaint = Complaint {
                id: fresh_id("cmp"),
                tenant,
                complaint_ref: "TICKET-9".into(),
                notices: vec!["ntc_a".into(), "ntc_b".into()],
                received_by: "tok_officer".into(),
                at: at(300),
            };
            let reason = format!("complaint:{}", complaint.id);
            store
                .insert_complaint_audited(&complaint, &audit(&reason, "complaint.redirected", 3))
                .await
                .unwrap();
            assert_eq!(audited(&store, &reason).await, ["complaint.redirected"]);
            // A complaint id is recorded once; the second attempt audits nothing.
            let again = store
                .insert_complaint_audited(&complaint, &audit(&reason, "complaint.redirected", 4))
                .await;
            assert!(
                matches!(again, Err(crate::StoreError::Conflict)),
                "{again:?}"
            );
            assert_eq!(audited(&store, &reason).await, ["complaint.redirected"]);
        }
    }
}
