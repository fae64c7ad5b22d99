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
    /// A format-preserving token: each digit, letter and CJK character replaced by one
    /// of its own class derived from HMAC-SHA256 under a per-tenant key, separators kept.
    /// Deterministic (joins work); reversible only through the vault, which keeps the
    /// sealed original of every token it hands out.
    Token { key: [u8; 32] },
}

impl Operator {
    /// Parses `mask`, `tag` or `hash` (with `key` for `hash`).
    pub fn parse(name: &str, key: Option<[u8; 32]>) -> Option<Self> {
        match (name, key) {
            ("mask", _) => Some(Operator::Mask),
            ("tag", _) => Some(Operator::Tag),
            ("hash", Some(key)) => Some(Operator::Hash { key }),
            ("token", Some(key)) => Some(Operator::Token { key }),
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
            Operator::Hash { key } | Operator::Token { key } => {
                Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key))
            }
            _ => None,
        };
        Self { op, hmac }
    }

    fn replacement(&self, kind: PiiType, value: &str, out: &mut String) {
        match (&self.op, &self.hmac) {
            (Operator::Token { .. }, Some(k)) => format_preserving(k, kind, value, out),
            (Operator::Tag, _) | (Operator::Hash { .. } | Operator::Token { .. }, None) => {
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
        self.redact_line_with(line, spans, out, &mut |_, _, _| {});
    }

    /// Like [`Redactor::redact_line`], telling `each(kind, value, replacement)` about
    /// every replacement (the vault records tokens this way so it can reverse them).
    pub fn redact_line_with(
        &self,
        line: &str,
        spans: &[Span],
        out: &mut String,
        each: &mut dyn FnMut(PiiType, &str, &str),
    ) {
        let mut at = 0;
        for s in spans {
            out.push_str(line.get(at..s.start).unwrap_or_default());
            let value = line.get(s.start..s.end).unwrap_or_default();
            let from = out.len();
            self.replacement(s.kind, value, out);
            each(s.kind, value, out.get(from..).unwrap_or_default());
            at = s.end;
        }
        out.push_str(line.get(at..).unwrap_or_default());
    }
}

/// The format-preserving token of `value`: a keystream from HMAC-SHA256(key, kind, value,
/// block) picks, for each character, one of the same class (digit, lower, upper, CJK);
/// everything else is kept.
fn format_preserving(key: &ring::hmac::Key, kind: PiiType, value: &str, out: &mut String) {
    let mut block = 0u32;
    let mut stream: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut next = |n: usize| -> u32 {
        let mut v = 0u32;
        for _ in 0..n {
            if pos == stream.len() {
                let mut ctx = ring::hmac::Context::with_key(key);
                ctx.update(kind.as_str().as_bytes());
                ctx.update(b"\0");
                ctx.update(value.as_bytes());
                ctx.update(&block.to_be_bytes());
                stream = ctx.sign().as_ref().to_vec();
                block += 1;
                pos = 0;
            }
            v = (v << 8) | u32::from(stream.get(pos).copied().unwrap_or(0));
            pos += 1;
        }
        v
    };
    for c in value.chars() {
        let mapped = match c {
            '0'..='9' => char::from_digit(next(1) % 10, 10),
            'a'..='z' => char::from_u32(u32::from(b'a') + next(1) % 26),
            'A'..='Z' => char::from_u32(u32::from(b'A') + next(1) % 26),
            '\u{4E00}'..='\u{9FA5}' => char::from_u32(0x4E00 + next(2) % 0x51A6),
            other => Some(other),
        };
        out.push(mapped.unwrap_or(c));
    }
}
