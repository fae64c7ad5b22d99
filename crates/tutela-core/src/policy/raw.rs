//! The TOML shape of `policy/statement.toml`, exactly as written. Strings that name
//! vocabulary ids stay `Spanned` so validation can point at the line that is wrong.

use serde::Deserialize;
use toml::Spanned;

pub type S = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub statement: RawStatement,
    #[serde(default)]
    pub services: Vec<RawService>,
    #[serde(default)]
    pub purposes: Vec<RawPurpose>,
    #[serde(default)]
    pub categories: Vec<RawCategory>,
    #[serde(default)]
    pub recipient_kinds: Vec<RawRecipientKind>,
    #[serde(default)]
    pub consent_exceptions: Vec<RawGround>,
    #[serde(default)]
    pub refusal_grounds: Vec<RawGround>,
    pub trial: RawTrial,
    pub requests: RawRequests,
    #[serde(default)]
    pub access: Vec<RawAccessRule>,
}

/// `[[access]]`: which role may use which purposes on which categories (R29).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessRule {
    pub role: S,
    /// Category ids, or `["*"]` for all.
    pub categories: Spanned<Vec<S>>,
    /// Purpose ids, or `["*"]` for all.
    pub purposes: Spanned<Vec<S>>,
    pub actions: Spanned<Vec<S>>,
    #[serde(default)]
    pub requires: Option<S>,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatement {
    pub version: S,
    pub updated: S,
    pub title_zh: String,
    pub title_en: String,
    pub controller_zh: String,
    pub controller_en: String,
    pub contact: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub id: S,
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub preview: bool,
    #[serde(default)]
    pub third_party: bool,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPurpose {
    pub id: S,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    pub id: S,
    pub name_zh: String,
    pub name_en: String,
    pub sensitive: bool,
    pub clause: S,
    pub fields: Vec<S>,
    #[serde(default)]
    pub never_store: Option<RawNeverStore>,
    pub residency: S,
    pub overseas: RawOverseas,
    pub purposes: Vec<RawPurposeRule>,
    #[serde(default)]
    pub prohibited: Vec<RawProhibition>,
    pub retention: RawRetention,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNeverStore {
    pub fields: Vec<S>,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverseas {
    pub rule: S,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPurposeRule {
    pub id: S,
    pub clause: S,
    #[serde(default)]
    pub requires: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProhibition {
    pub id: S,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub after_closure_days: Spanned<i64>,
    pub action: S,
    pub clause: S,
    pub legal_hold: Option<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipientKind {
    pub id: S,
    pub name_zh: String,
    pub name_en: String,
    pub categories: Vec<S>,
    pub purposes: Vec<S>,
    pub overseas_allowed: bool,
    pub overseas_needs_consent: bool,
    #[serde(default)]
    pub requires_policy_ref: bool,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGround {
    pub id: S,
    pub zh: String,
    pub en: String,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrial {
    pub retain_after_expiry_days: Spanned<i64>,
    pub action: S,
    pub clause: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequests {
    pub answer_within_days: Spanned<i64>,
    pub clause: S,
}
