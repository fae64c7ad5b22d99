//! Validation of the raw TOML into a [`Policy`]. Every error names the file, the line and
//! the key, so an operator editing the statement finds the mistake at once.

use super::raw::{RawCategory, RawGround, RawPolicy, S};
use super::*;
use crate::clause::Clause;
use crate::vocab::{Category, Purpose, Region, ServiceId};
use std::fmt;
use std::ops::Range;

/// Why a policy file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The dotted key the problem is at, e.g. `categories.payment.purposes`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> PolicyError {
        let start = span.start.min(self.text.len());
        let before = self.text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        PolicyError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    /// Parses a spanned string with a vocabulary parser, pointing at it on failure.
    fn parse<T, E: fmt::Display>(
        &self,
        s: &S,
        key: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, PolicyError> {
        f(s.get_ref()).map_err(|e| self.err(s.span(), key, e.to_string()))
    }

    fn clause(&self, s: &S, key: &str) -> Result<Clause, PolicyError> {
        self.parse(s, key, Clause::parse)
    }

    fn days(&self, v: &toml::Spanned<i64>, key: &str) -> Result<u32, PolicyError> {
        u32::try_from(*v.get_ref())
            .ok()
            .filter(|d| *d <= 36_500)
            .ok_or_else(|| self.err(v.span(), key, "expected a number of days from 0 to 36500"))
    }

    fn text(&self, s: &str, span: Range<usize>, key: &str) -> Result<String, PolicyError> {
        if s.trim().is_empty() {
            Err(self.err(span, key, "must not be empty"))
        } else {
            Ok(s.to_owned())
        }
    }
}

/// Loads and validates a policy from TOML text. `file` is only used in error messages.
pub fn load(file: &str, text: &str) -> Result<Policy, PolicyError> {
    let cx = Ctx { file, text };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        // The TOML parser leaves some syntax errors without a message (a control
        // character in a comment, a file ending after `=`): never print an empty one.
        let message = match e.message().trim_end() {
            "" => "invalid TOML syntax".to_owned(),
            m => m.to_owned(),
        };
        cx.err(e.span().unwrap_or(0..0), "", message)
    })?;

    let statement = StatementInfo {
        version: cx.text(
            raw.statement.version.get_ref(),
            raw.statement.version.span(),
            "statement.version",
        )?,
        updated: cx.parse(&raw.statement.updated, "statement.updated", |s| {
            Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| "expected a date YYYY-MM-DD")
        })?,
        title: Bilingual {
            zh: raw.statement.title_zh,
            en: raw.statement.title_en,
        },
        controller: Bilingual {
            zh: raw.statement.controller_zh,
            en: raw.statement.controller_en,
        },
        contact: raw.statement.contact,
    };

    // R1, R42: services.
    let mut services: Vec<Service> = Vec::new();
    for s in &raw.services {
        let id = cx.parse(&s.id, "services.id", ServiceId::parse)?;
        if services.iter().any(|x| x.id == id) {
            return Err(cx.err(
                s.id.span(),
                "services.id",
                format!("duplicate service `{id}`"),
            ));
        }
        let key = format!("services.{id}");
        services.push(Service {
            clause: cx.clause(&s.clause, &format!("{key}.clause"))?,
            name: Bilingual {
                zh: s.name_zh.clone(),
                en: s.name_en.clone(),
            },
            preview: s.preview,
            third_party: s.third_party,
            id,
        });
    }
    if services.is_empty() {
        return Err(cx.err(
            0..0,
            "services",
            "the policy must register at least one service (R1)",
        ));
    }

    // Purposes: every purpose of the vocabulary needs its bilingual name.
    let mut purposes: Vec<(Purpose, Bilingual)> = Vec::new();
    for p in &raw.purposes {
        let id = cx.parse(&p.id, "purposes.id", Purpose::parse)?;
        if purposes.iter().any(|(x, _)| *x == id) {
            return Err(cx.err(
                p.id.span(),
                "purposes.id",
                format!("duplicate purpose `{id}`"),
            ));
        }
        purposes.push((
            id,
            Bilingual {
                zh: p.name_zh.clone(),
                en: p.name_en.clone(),
            },
        ));
    }
    if let Some(missing) = Purpose::ALL
        .iter()
        .find(|p| !purposes.iter().any(|(x, _)| x == *p))
    {
        return Err(cx.err(
            0..0,
            "purposes",
            format!("purpose `{missing}` is not described"),
        ));
    }
    purposes.sort_by_key(|(p, _)| p.index());

    // R3: categories.
    let mut categories: Vec<CategoryPolicy> = Vec::new();
    for c in &raw.categories {
        let cat = category(&cx, c)?;
        if categories.iter().any(|x| x.category == cat.category) {
            return Err(cx.err(
                c.id.span(),
                "categories.id",
                format!("duplicate category `{}`", cat.category),
            ));
        }
        categories.push(cat);
    }
    if let Some(missing) = Category::ALL
        .iter()
        .find(|c| !categories.iter().any(|x| x.category == **c))
    {
        return Err(cx.err(
            0..0,
            "categories",
            format!("category `{missing}` is not classified (R3)"),
        ));
    }
    categories.sort_by_key(|c| c.category.index());

    // R21-R25, R28: recipient kinds.
    let mut recipient_kinds: Vec<RecipientKindPolicy> = Vec::new();
    for r in &raw.recipient_kinds {
        let kind = cx.parse(&r.id, "recipient_kinds.id", RecipientKind::parse)?;
        let key = format!("recipient_kinds.{kind}");
        if recipient_kinds.iter().any(|x| x.kind == kind) {
            return Err(cx.err(r.id.span(), key, "duplicate recipient kind"));
        }
        let cats = r
            .categories
            .iter()
            .map(|s| cx.parse(s, &format!("{key}.categories"), Category::parse))
            .collect::<Result<Vec<_>, _>>()?;
        let purps = r
            .purposes
            .iter()
            .map(|s| cx.parse(s, &format!("{key}.purposes"), Purpose::parse))
            .collect::<Result<Vec<_>, _>>()?;
        if !r.overseas_allowed && r.overseas_needs_consent {
            return Err(cx.err(
                r.id.span(),
                key,
                "overseas_needs_consent is meaningless when overseas_allowed = false",
            ));
        }
        recipient_kinds.push(RecipientKindPolicy {
            kind,
            name: Bilingual {
                zh: r.name_zh.clone(),
                en: r.name_en.clone(),
            },
            categories: cats,
            purposes: purps,
            overseas_allowed: r.overseas_allowed,
            overseas_needs_consent: r.overseas_needs_consent,
            requires_policy_ref: r.requires_policy_ref,
            clause: cx.clause(&r.clause, &format!("{key}.clause"))?,
        });
    }
    if let Some(missing) = RecipientKind::ALL
        .iter()
        .find(|k| !recipient_kinds.iter().any(|x| x.kind == **k))
    {
        return Err(cx.err(
            0..0,
            "recipient_kinds",
            format!("recipient kind `{missing}` is not described"),
        ));
    }
    recipient_kinds.sort_by_key(|k| k.kind.index());

    let consent_exceptions = grounds(
        &cx,
        &raw.consent_exceptions,
        "consent_exceptions",
        ConsentException::parse,
        ConsentException::ALL,
    )?;
    let refusal_grounds = grounds(
        &cx,
        &raw.refusal_grounds,
        "refusal_grounds",
        RefusalGround::parse,
        RefusalGround::ALL,
    )?;

    let trial = TrialPolicy {
        retain_after_expiry_days: cx.days(
            &raw.trial.retain_after_expiry_days,
            "trial.retain_after_expiry_days",
        )?,
        action: cx.parse(&raw.trial.action, "trial.action", RetentionAction::parse)?,
        clause: cx.clause(&raw.trial.clause, "trial.clause")?,
    };
    let answer_days = cx.days(
        &raw.requests.answer_within_days,
        "requests.answer_within_days",
    )?;
    // R35: 30 days or the legal limit; a longer period would break the statement's promise.
    if !(1..=30).contains(&answer_days) {
        return Err(cx.err(
            raw.requests.answer_within_days.span(),
            "requests.answer_within_days",
            "the statement promises an answer within 30 days (R35): expected 1 to 30",
        ));
    }
    let requests = RequestPolicy {
        answer_within_days: answer_days,
        clause: cx.clause(&raw.requests.clause, "requests.clause")?,
    };

    let mut table = vec![PurposeVerdict::Undeclared; Category::COUNT * Purpose::COUNT];
    for c in &categories {
        for r in &c.purposes {
            if let Some(slot) =
                table.get_mut(c.category.index() * Purpose::COUNT + r.purpose.index())
            {
                *slot = PurposeVerdict::Declared(*r);
            }
        }
        for p in &c.prohibited {
            if let Some(slot) =
                table.get_mut(c.category.index() * Purpose::COUNT + p.purpose.index())
            {
                *slot = PurposeVerdict::Prohibited(*p);
            }
        }
    }

    let access_rules = access_rules(&cx, &raw.access)?;
    let access = AccessTable::compile(&access_rules);

    Ok(Policy {
        statement,
        services,
        purposes,
        categories,
        recipient_kinds,
        consent_exceptions,
        refusal_grounds,
        trial,
        requests,
        access_rules,
        access,
        table,
    })
}

/// `[[access]]` (R29). At least one rule must exist: a policy without any would deny every
/// access to personal data, which is never what an operator meant.
fn access_rules(
    cx: &Ctx<'_>,
    raw: &[super::raw::RawAccessRule],
) -> Result<Vec<AccessRule>, PolicyError> {
    if raw.is_empty() {
        return Err(cx.err(
            0..0,
            "access",
            "no [[access]] rules: say which role may use which purposes on which categories (R29)",
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let key = format!("access.{i}");
        let role = cx.parse(&r.role, &format!("{key}.role"), crate::actor::Role::parse)?;
        let categories = all_or_list(
            cx,
            &r.categories,
            &format!("{key}.categories"),
            Category::ALL,
            Category::parse,
        )?;
        let purposes = all_or_list(
            cx,
            &r.purposes,
            &format!("{key}.purposes"),
            Purpose::ALL,
            Purpose::parse,
        )?;
        let actions = all_or_list(
            cx,
            &r.actions,
            &format!("{key}.actions"),
            AccessAction::ALL,
            AccessAction::parse,
        )?;
        let requires = match &r.requires {
            Some(s) => {
                let c = cx.parse(s, &format!("{key}.requires"), AccessCondition::parse)?;
                if c.role() != role {
                    return Err(cx.err(
                        s.span(),
                        format!("{key}.requires"),
                        format!("`{c}` applies only to role `{}`, not `{role}`", c.role()),
                    ));
                }
                Some(c)
            }
            None => None,
        };
        out.push(AccessRule {
            role,
            categories,
            purposes,
            actions,
            requires,
            clause: cx.clause(&r.clause, &format!("{key}.clause"))?,
        });
    }
    Ok(out)
}

/// A non-empty list of vocabulary ids without duplicates, or `["*"]` for all of them.
fn all_or_list<T: Copy + PartialEq + fmt::Display, E: fmt::Display>(
    cx: &Ctx<'_>,
    spanned: &toml::Spanned<Vec<S>>,
    key: &str,
    all: &[T],
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, PolicyError> {
    let raw = spanned.get_ref();
    if let [only] = raw.as_slice() {
        if only.get_ref() == "*" {
            return Ok(all.to_vec());
        }
    }
    if raw.is_empty() {
        return Err(cx.err(
            spanned.span(),
            key,
            "must name at least one id, or \"*\" for all",
        ));
    }
    let mut out: Vec<T> = Vec::with_capacity(raw.len());
    for s in raw {
        let v = cx.parse(s, key, &parse)?;
        if out.contains(&v) {
            return Err(cx.err(s.span(), key, format!("`{v}` is listed twice")));
        }
        out.push(v);
    }
    Ok(out)
}

fn category(cx: &Ctx<'_>, c: &RawCategory) -> Result<CategoryPolicy, PolicyError> {
    let category = cx.parse(&c.id, "categories.id", Category::parse)?;
    let key = format!("categories.{category}");
    let field_name = |s: &S, k: &str| -> Result<String, PolicyError> {
        let v = s.get_ref();
        let ok = (1..=64).contains(&v.len())
            && v.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(v.clone())
        } else {
            Err(cx.err(
                s.span(),
                k,
                format!(
                    "invalid field name `{}`: expected snake_case",
                    v.chars().take(64).collect::<String>()
                ),
            ))
        }
    };
    let mut fields: Vec<String> = Vec::new();
    for f in &c.fields {
        let name = field_name(f, &format!("{key}.fields"))?;
        if fields.contains(&name) {
            return Err(cx.err(
                f.span(),
                format!("{key}.fields"),
                format!("duplicate field `{name}`"),
            ));
        }
        fields.push(name);
    }
    if fields.is_empty() {
        return Err(cx.err(
            c.id.span(),
            format!("{key}.fields"),
            "a category must declare the fields it may hold (R3)",
        ));
    }
    let (never_store, never_store_clause) = match &c.never_store {
        None => (Vec::new(), None),
        Some(n) => {
            let k = format!("{key}.never_store");
            let mut names = Vec::new();
            for f in &n.fields {
                let name = field_name(f, &k)?;
                if fields.contains(&name) {
                    return Err(cx.err(
                        f.span(),
                        k,
                        format!("`{name}` is both a stored field and a never-stored field"),
                    ));
                }
                names.push(name);
            }
            (names, Some(cx.clause(&n.clause, &format!("{k}.clause"))?))
        }
    };
    let mut purposes: Vec<PurposeRule> = Vec::new();
    for r in &c.purposes {
        let k = format!("{key}.purposes");
        let purpose = cx.parse(&r.id, &k, Purpose::parse)?;
        if purposes.iter().any(|x| x.purpose == purpose) {
            return Err(cx.err(r.id.span(), k, format!("duplicate purpose `{purpose}`")));
        }
        purposes.push(PurposeRule {
            purpose,
            clause: cx.clause(&r.clause, &k)?,
            condition: r
                .requires
                .as_ref()
                .map(|s| cx.parse(s, &k, PurposeCondition::parse))
                .transpose()?,
        });
    }
    let mut prohibited: Vec<Prohibition> = Vec::new();
    for p in &c.prohibited {
        let k = format!("{key}.prohibited");
        let purpose = cx.parse(&p.id, &k, Purpose::parse)?;
        if purposes.iter().any(|x| x.purpose == purpose) {
            return Err(cx.err(
                p.id.span(),
                k,
                format!("purpose `{purpose}` is both allowed and prohibited"),
            ));
        }
        prohibited.push(Prohibition {
            purpose,
            clause: cx.clause(&p.clause, &k)?,
        });
    }
    let residency = cx.parse(&c.residency, &format!("{key}.residency"), Region::parse)?;
    let overseas = cx.parse(
        &c.overseas.rule,
        &format!("{key}.overseas.rule"),
        OverseasRule::parse,
    )?;
    Ok(CategoryPolicy {
        category,
        name: Bilingual {
            zh: c.name_zh.clone(),
            en: c.name_en.clone(),
        },
        sensitive: c.sensitive,
        clause: cx.clause(&c.clause, &format!("{key}.clause"))?,
        fields,
        never_store,
        never_store_clause,
        residency,
        overseas,
        overseas_clause: cx.clause(&c.overseas.clause, &format!("{key}.overseas.clause"))?,
        purposes,
        prohibited,
        retention: Retention {
            after_closure_days: cx.days(
                &c.retention.after_closure_days,
                &format!("{key}.retention.after_closure_days"),
            )?,
            action: cx.parse(
                &c.retention.action,
                &format!("{key}.retention.action"),
                RetentionAction::parse,
            )?,
            clause: cx.clause(&c.retention.clause, &format!("{key}.retention.clause"))?,
            legal_hold: c
                .retention
                .legal_hold
                .as_ref()
                .map(|h| {
                    cx.text(
                        h.get_ref(),
                        h.span(),
                        &format!("{key}.retention.legal_hold"),
                    )
                })
                .transpose()?,
        },
    })
}

fn grounds<K: Copy + PartialEq + fmt::Display>(
    cx: &Ctx<'_>,
    raw: &[RawGround],
    key: &str,
    parse: impl Fn(&str) -> Result<K, crate::macros::UnknownId>,
    all: &[K],
) -> Result<Vec<Ground<K>>, PolicyError> {
    let mut out: Vec<Ground<K>> = Vec::new();
    for g in raw {
        let id = cx.parse(&g.id, key, &parse)?;
        if out.iter().any(|x| x.id == id) {
            return Err(cx.err(g.id.span(), key, format!("duplicate `{id}`")));
        }
        out.push(Ground {
            id,
            text: Bilingual {
                zh: cx.text(&g.zh, g.id.span(), key)?,
                en: cx.text(&g.en, g.id.span(), key)?,
            },
            clause: cx.clause(&g.clause, key)?,
        });
    }
    if let Some(missing) = all.iter().find(|k| !out.iter().any(|x| x.id == **k)) {
        return Err(cx.err(0..0, key, format!("`{missing}` is not described")));
    }
    // Keep the statement's order (the vocabulary's order).
    out.sort_by_key(|g| all.iter().position(|k| *k == g.id));
    Ok(out)
}
