//! API tokens: only the hash of each token's secret is stored.

use crate::db::Value;
use crate::{from_micros, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::actor::DataScope;
use tutela_core::{Category, Purpose, Region, Role, SubjectId, TenantId, TokenId};

/// A stored token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: TokenId,
    pub secret_hash: Vec<u8>,
    pub role: Role,
    pub tenant: Option<TenantId>,
    pub subject: Option<SubjectId>,
    pub region: Region,
    pub label: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// A service token's purposes and categories (issue 14, R29); empty otherwise.
    pub scope: DataScope,
}

type Row = (
    String,
    Vec<u8>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

const TOKEN_COLUMNS: &str = "id, secret_hash, role, tenant_id, subject_id, region, label, \
    created_at, revoked_at, scope_purposes, scope_categories";

fn ids_text<T: Copy + Into<&'static str>>(ids: &[T]) -> Option<String> {
    (!ids.is_empty()).then(|| {
        ids.iter()
            .map(|v| (*v).into())
            .collect::<Vec<&str>>()
            .join(",")
    })
}

fn parse_ids<T, E: std::fmt::Display>(
    column: &'static str,
    text: Option<String>,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<Vec<T>> {
    text.filter(|t| !t.is_empty())
        .map(|t| t.split(',').map(|v| parse_col(column, v, &parse)).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn decode(
    (
        id,
        secret_hash,
        role,
        tenant,
        subject,
        region,
        label,
        created_at,
        revoked_at,
        scope_purposes,
        scope_categories,
    ): Row,
) -> Result<Token> {
    Ok(Token {
        id: parse_col("api_tokens.id", &id, TokenId::parse)?,
        secret_hash,
        role: parse_col("api_tokens.role", &role, Role::parse)?,
        tenant: tenant
            .map(|t| parse_col("api_tokens.tenant_id", &t, TenantId::parse))
            .transpose()?,
        subject: subject
            .map(|s| parse_col("api_tokens.subject_id", &s, SubjectId::parse))
            .transpose()?,
        region: parse_col("api_tokens.region", &region, Region::parse)?,
        label,
        created_at: from_micros(created_at)?,
        revoked_at: revoked_at.map(from_micros).transpose()?,
        scope: DataScope::new(
            parse_ids("api_tokens.scope_purposes", scope_purposes, Purpose::parse)?,
            parse_ids(
                "api_tokens.scope_categories",
                scope_categories,
                Category::parse,
            )?,
        ),
    })
}

impl Store {
    pub async fn insert_token(&self, t: &Token) -> Result<()> {
        let sql = format!(
            "INSERT INTO api_tokens ({TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let params: Vec<Value> = vec![
            t.id.as_str().into(),
            (&t.secret_hash).into(),
            t.role.as_str().into(),
            t.tenant.as_ref().map(TenantId::as_str).into(),
            t.subject.as_ref().map(SubjectId::as_str).into(),
            t.region.as_str().into(),
            (&t.label).into(),
            to_micros(t.created_at).into(),
            t.revoked_at.map(to_micros).into(),
            ids_text(t.scope.purposes()).into(),
            ids_text(t.scope.categories()).into(),
        ];
        self.write(move |db| {
            Box::pin(async move {
                db.execute(&sql, &params).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn token(&self, id: &TokenId) -> Result<Option<Token>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move { db.fetch_optional(&sql, &[id.as_str().into()]).await })
            })
            .await?;
        row.map(decode).transpose()
    }

    /// Revokes a token; returns whether it existed and was active.
    pub async fn revoke_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<bool> {
        let params: Vec<Value> = vec![to_micros(at).into(), id.as_str().into()];
        let done = self
            .write(move |db| {
                Box::pin(async move {
                    db.execute(
                        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                        &params,
                    )
                    .await
                })
            })
            .await?;
        Ok(done > 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::tenants::testing::{at, fresh, stores, test_tenant};

    fn token(tenant: Option<TenantId>, role: Role, scope: DataScope) -> Token {
        Token {
            id: TokenId::from_bytes(fresh()),
            secret_hash: vec![0xab; 32],
            role,
            tenant,
            subject: None,
            region: Region::Cn,
            label: "test token".into(),
            created_at: at(0),
            revoked_at: None,
            scope,
        }
    }

    /// A service token's scope survives the round trip; an empty scope is stored as no
    /// scope at all (issue 14; R29).
    #[tokio::test]
    async fn scope_columns_round_trip() {
        for store in stores().await {
            let tenant = test_tenant(&store).await;
            let scoped = token(
                Some(tenant),
                Role::Service,
                DataScope::new(
                    vec![Purpose::Support, Purpose::ProvideService],
                    vec![Category::Support],
                ),
            );
            let plain = token(None, Role::Operator, DataScope::default());
            store.insert_token(&scoped).await.unwrap();
            store.insert_token(&plain).await.unwrap();
            assert_eq!(store.token(&scoped.id).await.unwrap(), Some(scoped.clone()));
            assert_eq!(store.token(&plain.id).await.unwrap(), Some(plain));
            assert_eq!(
                store.token(&TokenId::from_bytes(fresh())).await.unwrap(),
                None
            );
        }
    }

    /// Revoking is one-way: the second revocation reports that nothing was active.
    #[tokio::test]
    async fn a_token_is_revoked_once() {
        for store in stores().await {
            let t = token(None, Role::Auditor, DataScope::default());
            store.insert_token(&t).await.unwrap();
            assert!(store.revoke_token(&t.id, at(10)).await.unwrap());
            assert!(!store.revoke_token(&t.id, at(20)).await.unwrap());
            let stored = store.token(&t.id).await.unwrap().unwrap();
            assert_eq!(stored.revoked_at, Some(at(10)));
        }
    }
}
