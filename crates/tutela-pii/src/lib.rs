//! tutela-pii: finds and removes personal information in Chinese and English support
//! text (logs, traces, chats, tickets; R7, R13, R22).
//!
//! - [`scan_line`]: one pass over a line, recognizers that validate what they find
//!   (check characters, Luhn, region and birth date, address parsers, name cues), spans
//!   as UTF-8 byte offsets that never overlap and always fall on character boundaries.
//! - [`Redactor`]: replaces each span by an operator's output (mask, type tag, keyed
//!   hash); the original value never reaches the output.
//! - [`stream`]: line-by-line over any reader with one reused buffer (constant memory),
//!   failing clearly on invalid UTF-8.

mod names;
mod redact;
mod scan;
mod security_code;
pub mod stream;
pub mod validate;

pub use redact::{Operator, Redactor};
pub use scan::scan_line;
pub use security_code::mentions_security_code;

/// The kinds of personal information the scanner recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiType {
    CnResidentId,
    CnMobile,
    CnLandline,
    Email,
    BankCard,
    CnUscc,
    Ipv4,
    Ipv6,
    CnPassport,
    PersonZh,
    PersonEn,
}

impl PiiType {
    pub const ALL: [PiiType; 11] = [
        PiiType::CnResidentId,
        PiiType::CnMobile,
        PiiType::CnLandline,
        PiiType::Email,
        PiiType::BankCard,
        PiiType::CnUscc,
        PiiType::Ipv4,
        PiiType::Ipv6,
        PiiType::CnPassport,
        PiiType::PersonZh,
        PiiType::PersonEn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiType::CnResidentId => "CN_RESIDENT_ID",
            PiiType::CnMobile => "CN_MOBILE",
            PiiType::CnLandline => "CN_LANDLINE",
            PiiType::Email => "EMAIL",
            PiiType::BankCard => "BANK_CARD",
            PiiType::CnUscc => "CN_USCC",
            PiiType::Ipv4 => "IPV4",
            PiiType::Ipv6 => "IPV6",
            PiiType::CnPassport => "CN_PASSPORT",
            PiiType::PersonZh => "PERSON_ZH",
            PiiType::PersonEn => "PERSON_EN",
        }
    }
}

impl std::fmt::Display for PiiType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: byte offsets into the line, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: PiiType,
}

/// Scans a whole text (several lines) and returns spans as offsets into it.
pub fn scan_text(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        let from = out.len();
        scan_line(line, &mut out);
        for s in out.iter_mut().skip(from) {
            s.start += offset;
            s.end += offset;
        }
        offset += line.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests;
