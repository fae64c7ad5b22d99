//! Anonymization (issue 7; R19): what survives of a record whose retention action is
//! `anonymize`. Irreversible by construction: a record becomes one count in an aggregate
//! keyed by (category, service, month, attribute, value), where the attribute value is
//! chosen from a closed list (e.g. the card brand derived from the card number's first
//! digits). No identifier, free text or exact time can pass through: the output type
//! holds only `&'static str` values and the month. Billing statistics survive; no row
//! can be tied to a person, because no row is about one person.

use crate::vocab::Category;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One count to add to the anonymized aggregates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Aggregate {
    pub category: Category,
    /// The service id (one of the statement's services, not a personal value).
    pub service: String,
    /// `YYYY-MM` of the record's last update.
    pub period: String,
    pub attribute: &'static str,
    pub value: &'static str,
}

/// The card brand of a card number, from its leading digits (closed list).
fn card_brand(number: &str) -> &'static str {
    let digits: String = number
        .chars()
        .filter(char::is_ascii_digit)
        .take(2)
        .collect();
    match digits.as_bytes() {
        [b'4', ..] => "visa",
        [b'5', b'1'..=b'5'] | [b'2', ..] => "mastercard",
        [b'6', b'2'] => "unionpay",
        [b'3', b'4' | b'7'] => "amex",
        [b'3', b'5'] => "jcb",
        [] => "none",
        _ => "other",
    }
}

/// The aggregate a record contributes to. `service` must be a policy service id.
pub fn aggregate(
    category: Category,
    service: &str,
    updated_at: OffsetDateTime,
    fields: &BTreeMap<String, String>,
) -> Aggregate {
    let period = format!(
        "{:04}-{:02}",
        updated_at.year(),
        u8::from(updated_at.month())
    );
    let (attribute, value) = match category {
        Category::Payment => (
            "card_brand",
            fields.get("card_number").map_or("none", |n| card_brand(n)),
        ),
        _ => ("records", "all"),
    };
    Aggregate {
        category,
        service: service.to_owned(),
        period,
        attribute,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_payment_record_becomes_a_count_by_brand_and_month_r19() {
        let fields: BTreeMap<String, String> = [
            ("card_number", "6222 0212 3456 7890"),
            ("holder_name", "欧阳娜娜"),
            ("billing_address", "北京市朝阳区某路1号"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let a = aggregate(
            Category::Payment,
            "azure",
            datetime!(2026-03-14 10:11 UTC),
            &fields,
        );
        assert_eq!(a.period, "2026-03");
        assert_eq!((a.attribute, a.value), ("card_brand", "unionpay"));
        let text = format!("{a:?}");
        for planted in ["欧阳娜娜", "北京市", "6222", "7890", "14"] {
            assert!(!text.contains(planted), "{planted} survived: {text}");
        }
    }

    #[test]
    fn brands_come_from_a_closed_list() {
        assert_eq!(card_brand("4111111111111111"), "visa");
        assert_eq!(card_brand("5500000000000004"), "mastercard");
        assert_eq!(card_brand("378282246310005"), "amex");
        assert_eq!(card_brand("3530111333300000"), "jcb");
        assert_eq!(card_brand("9999"), "other");
        assert_eq!(card_brand(""), "none");
    }

    #[test]
    fn other_categories_keep_only_a_count() {
        let fields: BTreeMap<String, String> =
            [("agent".to_owned(), "host-zhang-laptop 10.1.2.3".to_owned())].into();
        let a = aggregate(
            Category::Diagnostic,
            "azure",
            datetime!(2026-11-01 0:00 UTC),
            &fields,
        );
        assert_eq!((a.attribute, a.value), ("records", "all"));
    }
}
