//! Redaction operators. Each replaces a span's text; none lets the original through.

use crate::{PiiType, Span};

/// How a finding is replaced.
#[derive(Debug, Clone)]
pub enum Operator {
    /// Every character but the last four ASCII letters/digits becomes `*`
    /// (separators kept, so the shape stays recognizable).
    Mask,
    /// `<TYPE>`.
    Tag,
    /// `<TYPE:16 hex>`: HMAC-SHA256 under a per-tenant key, so equal values still join
    /// across records without revealing them.
    Hash { key: [u8; 32] },
}

impl Operator {
    /// Parses `mask`, `tag` or `hash` (with `key` for `hash`).
    pub fn parse(name: &str, key: Option<[u8; 32]>) -> Option<Self> {
        match (name, key) {
            ("mask", _) => Some(Operator::Mask),
            ("tag", _) => Some(Operator::Tag),
            ("hash", Some(key)) => Some(Operator::Hash { key }),
            _ => None,
        }
    }
}

/// Applies an operator to spans found in a line.
#[derive(Debug, Clone)]
pub struct Redactor {
    op: Operator,
    hmac: Option<ring::hmac::Key>,
}

impl Redactor {
    pub fn new(op: Operator) -> Self {
        let hmac = match &op {
            Operator::Hash { key } => Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key)),
            _ => None,
        };
        Self { op, hmac }
    }

    fn replacement(&self, kind: PiiType, value: &str, out: &mut String) {
        match (&self.op, &self.hmac) {
            (Operator::Tag, _) | (Operator::Hash { .. }, None) => {
                out.push('<');
                out.push_str(kind.as_str());
                out.push('>');
            }
            (Operator::Hash { .. }, Some(k)) => {
                let mut ctx = ring::hmac::Context::with_key(k);
                ctx.update(kind.as_str().as_bytes());
                ctx.update(b"\0");
                ctx.update(value.as_bytes());
                let tag = ctx.sign();
                out.push('<');
                out.push_str(kind.as_str());
                out.push(':');
                out.push_str(&hex::encode(tag.as_ref().get(..8).unwrap_or_default()));
                out.push('>');
            }
            (Operator::Mask, _) => {
                let keep_from = value
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_alphanumeric())
                    .map(|(i, _)| i)
                    .rev()
                    .nth(3)
                    .unwrap_or(value.len());
                // Names and short values are masked whole.
                let whole = matches!(kind, PiiType::PersonZh | PiiType::PersonEn | PiiType::Email)
                    || keep_from == value.len();
                for (i, c) in value.char_indices() {
                    if !whole && i >= keep_from {
                        out.push(c);
                    } else if c.is_ascii_alphanumeric() || !c.is_ascii() {
                        out.push('*');
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    /// Writes `line` with every span replaced into `out`.
    pub fn redact_line(&self, line: &str, spans: &[Span], out: &mut String) {
        let mut at = 0;
        for s in spans {
            out.push_str(line.get(at..s.start).unwrap_or_default());
            self.replacement(s.kind, line.get(s.start..s.end).unwrap_or_default(), out);
            at = s.end;
        }
        out.push_str(line.get(at..).unwrap_or_default());
    }
}
