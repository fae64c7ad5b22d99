//! Look-up keys for finding a subject by e-mail address or phone number (issue 3).
//!
//! The vault never stores either in clear; it stores a keyed HMAC (a blind index) of the
//! normalised value. Normalisation is here, pure, so that the value written with a record
//! and the value typed into a search produce the same key.

/// What a look-up value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupKind {
    Email,
    Phone,
}

impl LookupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LookupKind::Email => "email",
            LookupKind::Phone => "phone",
        }
    }

    /// The kind a record field is looked up by, if any.
    pub fn of_field(field: &str) -> Option<Self> {
        match field {
            "email" => Some(LookupKind::Email),
            "phone" | "mobile" => Some(LookupKind::Phone),
            _ => None,
        }
    }
}

/// The canonical form of a look-up value, or `None` when it cannot be one.
///
/// - e-mail: trimmed and lower-cased; must have one `@` with text on both sides;
/// - phone: digits only (spaces, dashes, dots, brackets and a leading `+` dropped), the
///   mainland country code `86` removed from an 13-digit number; 5 to 15 digits (E.164).
pub fn normalize(kind: LookupKind, raw: &str) -> Option<String> {
    match kind {
        LookupKind::Email => {
            let v = raw.trim().to_lowercase();
            let (local, domain) = v.split_once('@')?;
            (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some(v)
        }
        LookupKind::Phone => {
            let trimmed = raw.trim();
            let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
            if body
                .chars()
                .any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')))
            {
                return None;
            }
            let digits: String = body.chars().filter(char::is_ascii_digit).collect();
            let national = match digits.strip_prefix("86") {
                Some(rest) if digits.len() == 13 => rest.to_owned(),
                _ => digits,
            };
            (5..=15).contains(&national.len()).then_some(national)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_addresses_normalise_equally() {
        assert_eq!(
            normalize(LookupKind::Email, "  Li.Na@Example.CN "),
            normalize(LookupKind::Email, "li.na@example.cn")
        );
        assert_eq!(normalize(LookupKind::Email, "no-at-sign"), None);
        assert_eq!(normalize(LookupKind::Email, "a@b@c"), None);
        assert_eq!(normalize(LookupKind::Email, "@example.cn"), None);
    }

    #[test]
    fn phone_numbers_with_and_without_country_code_match() {
        let plain = normalize(LookupKind::Phone, "13800138000");
        assert_eq!(plain.as_deref(), Some("13800138000"));
        assert_eq!(normalize(LookupKind::Phone, "+86 138-0013-8000"), plain);
        assert_eq!(normalize(LookupKind::Phone, "86 13800138000"), plain);
        assert_eq!(
            normalize(LookupKind::Phone, "(010) 6263-8800").as_deref(),
            Some("01062638800")
        );
        assert_eq!(normalize(LookupKind::Phone, "1380013800a"), None);
        assert_eq!(normalize(LookupKind::Phone, "123"), None);
    }

    #[test]
    fn only_contact_fields_are_looked_up() {
        assert_eq!(LookupKind::of_field("email"), Some(LookupKind::Email));
        assert_eq!(LookupKind::of_field("mobile"), Some(LookupKind::Phone));
        assert_eq!(LookupKind::of_field("name"), None);
    }
}
