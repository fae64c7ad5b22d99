//! Property tests over every validator and parser of tutela-core (issue 14, "Proof").
//!
//! Two properties for each: arbitrary input (any Unicode, any bytes read as text, and
//! near-misses of the valid shape) never panics, and whatever parses prints back to the
//! same text and parses again to the same value (`parse(display(x)) == x`). The unit
//! tests beside each type hold the hand-picked cases; these hold the rest.
//! `PROPTEST_CASES` sets the number of cases (default 256).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation should panic with context"
)]

use proptest::prelude::*;

/// `PROPTEST_CASES` (default 256) cases; failures print their minimal input instead of
/// writing regression files beside the sources.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
use time::macros::date;
use time::{Date, Duration, OffsetDateTime};
use tutela_core::actor::Role;
use tutela_core::clause::MAX_CLAUSE;
use tutela_core::consent::{Channel, ConsentScope};
use tutela_core::contact::{ContactChannel, MessageKind, PreferenceTopic};
use tutela_core::delivery::DeliveryStatus;
use tutela_core::grant::GrantState;
use tutela_core::lookup::{normalize, LookupKind};
use tutela_core::policy::{
    ConsentException, OverseasRule, PurposeCondition, RecipientKind, RefusalGround, RetentionAction,
};
use tutela_core::request::{RequestEvent, RequestLife, RequestStatus, RequestType};
use tutela_core::tenant::{
    adult_on, is_minor, parse_birth_date, SubjectKind, TenantKind, TenantName, TenantState,
};
use tutela_core::{Category, Clause, Country, Purpose, Region, ServiceId};
use tutela_core::{SubjectId, TenantId, TokenId};

/// Any text: arbitrary Unicode (controls, NUL, surrogate-free scalars of every plane),
/// arbitrary bytes read as UTF-8 (as a body or path would arrive), and short runs of
/// the characters validators care about.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[ -~]{0,80}",
        "[a-zA-Z0-9_ .:@+()\u{0}\u{7f}\u{a0}\u{200b}\u{130}\u{fffd}-]{0,40}",
    ]
}

/// A valid text with one small edit: a character dropped, doubled, upper-cased, or one
/// inserted. Most edits make it invalid; some keep it valid (and must round-trip).
fn near(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(valid),
        0usize..8,
        any::<prop::sample::Index>(),
        any::<char>(),
    )
        .prop_map(|(v, how, at, c)| {
            let mut chars: Vec<char> = v.chars().collect();
            let i = at.index(chars.len() + 1);
            match how {
                0 if i < chars.len() => {
                    chars.remove(i);
                }
                1 if i < chars.len() => chars.insert(i, chars[i]),
                2 if i < chars.len() => chars[i] = chars[i].to_ascii_uppercase(),
                3 => chars.insert(i, c),
                4 => chars.push(' '),
                5 => chars.insert(0, '\u{0}'),
                _ => {}
            }
            chars.into_iter().collect()
        })
}

/// Every value of a closed vocabulary, as text.
macro_rules! ids_of {
    ($t:ty) => {{
        let v: Vec<&'static str> = <$t>::ALL.iter().map(|x| x.as_str()).collect();
        &*Box::leak(v.into_boxed_slice())
    }};
}

/// For one `closed_vocab!` type: parse never panics, a parsed value prints as its input
/// and parses back to itself, serde agrees with `parse`, and a refusal names the kind
/// and lists the valid ids without echoing more than 64 characters of the input.
macro_rules! vocab_props {
    ($name:ident, $t:ty) => {
        proptest! {
        #![proptest_config(config())]
                #[test]
                fn $name(s in prop_oneof![any_text(), near(ids_of!($t))]) {
                    match <$t>::parse(&s) {
                        Ok(v) => {
                            prop_assert_eq!(v.as_str(), s.as_str());
                            prop_assert_eq!(<$t>::parse(&v.to_string()), Ok(v));
                            prop_assert_eq!(s.parse::<$t>(), Ok(v));
                            prop_assert_eq!(<$t>::ALL[v.index()], v);
                            let json = serde_json::to_string(&v).unwrap();
                            prop_assert_eq!(serde_json::from_str::<$t>(&json).unwrap(), v);
                        }
                        Err(e) => {
                            prop_assert!(e.given.chars().count() <= 64);
                            prop_assert!(e.expected.contains(<$t>::ALL[0].as_str()));
                            let json = serde_json::to_string(&s).unwrap();
                            prop_assert!(serde_json::from_str::<$t>(&json).is_err());
                        }
                    }
                }
            }
    };
}

vocab_props!(category_r3, Category);
vocab_props!(purpose_r4, Purpose);
vocab_props!(region_r6, Region);
vocab_props!(role_r29, Role);
vocab_props!(tenant_kind_r2, TenantKind);
vocab_props!(tenant_state_r19, TenantState);
vocab_props!(subject_kind_r2, SubjectKind);
vocab_props!(consent_channel_r4, Channel);
vocab_props!(message_kind_r9, MessageKind);
vocab_props!(contact_channel_r9, ContactChannel);
vocab_props!(preference_topic_r9, PreferenceTopic);
vocab_props!(delivery_status_r34, DeliveryStatus);
vocab_props!(grant_state_r7, GrantState);
vocab_props!(request_type_r35, RequestType);
vocab_props!(request_status_r35, RequestStatus);
vocab_props!(retention_action_r19, RetentionAction);
vocab_props!(purpose_condition_r9, PurposeCondition);
vocab_props!(overseas_rule_r18, OverseasRule);
vocab_props!(recipient_kind_r21, RecipientKind);
vocab_props!(consent_exception_r28, ConsentException);
vocab_props!(refusal_ground_r36, RefusalGround);

/// For one opaque id type: the same properties, with ids of the other kinds, upper-case
/// hex and wrong lengths as near misses.
macro_rules! id_props {
    ($name:ident, $t:ty) => {
        proptest! {
        #![proptest_config(config())]
                #[test]
                fn $name(s in prop_oneof![
                    any_text(),
                    "(ten|sub|tok|TEN|xx)_[0-9a-fA-F]{30,34}",
                    "(ten|sub|tok)_[0-9a-f]{32}",
                ]) {
                    match <$t>::parse(&s) {
                        Ok(id) => {
                            prop_assert_eq!(id.as_str(), s.as_str());
                            prop_assert_eq!(<$t>::parse(&id.to_string()), Ok(id.clone()));
                            prop_assert!(s.starts_with(<$t>::PREFIX));
                            prop_assert_eq!(s.len(), <$t>::PREFIX.len() + 33);
                            let json = serde_json::to_string(&id).unwrap();
                            prop_assert_eq!(serde_json::from_str::<$t>(&json).unwrap(), id);
                        }
                        Err(e) => {
                            prop_assert_eq!(e.prefix, <$t>::PREFIX);
                            let json = serde_json::to_string(&s).unwrap();
                            prop_assert!(serde_json::from_str::<$t>(&json).is_err());
                        }
                    }
                }
            }
    };
}

id_props!(tenant_id_r2, TenantId);
id_props!(subject_id_r2, SubjectId);
id_props!(token_id_r29, TokenId);

proptest! {
    #![proptest_config(config())]
    #[test]
    fn clause_ids_round_trip_r1_to_r45(s in prop_oneof![any_text(), "[Rr]?[+-]?[0-9]{0,4}"]) {
        if let Ok(c) = Clause::parse(&s) {
            prop_assert_eq!(c.to_string(), s.clone());
            prop_assert!((1..=MAX_CLAUSE).contains(&c.number()));
            prop_assert_eq!(Clause::parse(&c.to_string()), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Clause>(&json).unwrap(), c);
        } else {
            prop_assert!(serde_json::from_str::<Clause>(&serde_json::to_string(&s).unwrap()).is_err());
        }
    }

    #[test]
    fn every_clause_number_prints_and_parses(n in any::<u8>()) {
        let c = Clause::r(n);
        prop_assert_eq!(Clause::parse(&c.to_string()), Ok(c));
        prop_assert_eq!(Clause::parse(&format!("R{n}")).is_ok(), (1..=MAX_CLAUSE).contains(&n));
    }

    #[test]
    fn countries_round_trip_r18(s in prop_oneof![any_text(), "[A-Za-z\u{130}]{0,3}"]) {
        if let Ok(c) = Country::parse(&s) {
            prop_assert_eq!(c.as_str(), s.as_str());
            prop_assert_eq!(Country::parse(&c.to_string()), Ok(c));
            prop_assert_eq!(c.region() == Region::Cn, s == "CN");
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Country>(&json).unwrap(), c);
        } else {
            prop_assert!(serde_json::from_str::<Country>(&serde_json::to_string(&s).unwrap()).is_err());
        }
    }

    #[test]
    fn service_ids_round_trip_r1(s in prop_oneof![any_text(), "[a-zA-Z0-9_ -]{0,66}"]) {
        if let Ok(id) = ServiceId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert_eq!(ServiceId::parse(&id.to_string()), Ok(id.clone()));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<ServiceId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn tenant_names_are_trimmed_bounded_and_stable_r2(s in prop_oneof![
        any_text(),
        "[ \t\n]{0,3}[a-z\u{4e00}-\u{4e10}]{0,210}[ \t\n]{0,3}",
    ]) {
        if let Ok(n) = TenantName::parse(&s) {
            let v = n.as_str();
            prop_assert_eq!(v, s.trim());
            prop_assert!((1..=200).contains(&v.chars().count()));
            prop_assert!(!v.chars().any(char::is_control));
            // What was accepted once is accepted again unchanged.
            let again = TenantName::parse(v).unwrap();
            prop_assert_eq!(again.as_str(), v);
            // The debug form never shows the name.
            prop_assert_eq!(format!("{n:?}"), format!("TenantName({} chars)", v.chars().count()));
        }
    }

    #[test]
    fn birth_dates_round_trip_and_minors_are_consistent_r43(
        s in prop_oneof![
            any_text(),
            "[+-]?[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}",
            "(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
        ],
        today_offset in -400_000i32..400_000,
    ) {
        let today = date!(2026-11-28) + Duration::days(i64::from(today_offset) / 10);
        if let Ok(d) = parse_birth_date(&s, today) {
            prop_assert_eq!(d.to_string(), s.clone());
            prop_assert_eq!(parse_birth_date(&d.to_string(), today), Ok(d));
            prop_assert!(d <= today);
            let adult = adult_on(d);
            prop_assert!(adult > d);
            prop_assert_eq!(is_minor(Some(adult), today), today < adult);
            prop_assert!(!is_minor(None, today));
        }
    }

    #[test]
    fn adult_on_never_panics_at_the_calendar_edges_r43(
        day in Date::MIN.to_julian_day()..=Date::MAX.to_julian_day(),
    ) {
        let d = Date::from_julian_day(day).unwrap();
        let a = adult_on(d);
        prop_assert!(a >= d);
    }

    #[test]
    fn email_lookup_keys_are_canonical(s in prop_oneof![
        any_text(),
        "[ ]{0,2}[a-zA-Z0-9.+\u{130}\u{3a3}]{0,10}@{0,2}[a-zA-Z0-9.\u{130}]{0,10}[ ]{0,2}",
    ]) {
        if let Some(k) = normalize(LookupKind::Email, &s) {
            // The key of a key is itself: a stored value and a typed one meet.
            prop_assert_eq!(normalize(LookupKind::Email, &k), Some(k.clone()));
            prop_assert_eq!(k.matches('@').count(), 1);
            prop_assert_eq!(k.clone(), k.to_lowercase());
        }
    }

    #[test]
    fn phone_lookup_keys_are_canonical(s in prop_oneof![
        any_text(),
        "[+]?[0-9 ().-]{0,20}",
        "(\\+86|0086|86)? ?1[3-9][0-9]{9}",
    ]) {
        if let Some(k) = normalize(LookupKind::Phone, &s) {
            prop_assert!(k.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!((5..=15).contains(&k.len()));
            // The canonical form is a fixed point, and the country code form meets it.
            prop_assert_eq!(normalize(LookupKind::Phone, &k), Some(k.clone()));
            if k.len() == 11 {
                prop_assert_eq!(normalize(LookupKind::Phone, &format!("+86 {k}")), Some(k.clone()));
            }
        }
    }

    #[test]
    fn lookup_fields_are_a_closed_set(s in any_text()) {
        if let Some(kind) = LookupKind::of_field(&s) {
            prop_assert!(["email", "phone", "mobile"].contains(&s.as_str()));
            prop_assert!(["email", "phone"].contains(&kind.as_str()));
        }
    }

    #[test]
    fn consent_scopes_round_trip_r4_r18_r25_r43(s in prop_oneof![
        any_text(),
        near(&["cross_border", "guardian", "research", "third_party_offering:acme-maps_1"]),
        "third_party_offering:[a-zA-Z0-9_ :-]{0,70}",
    ]) {
        if let Ok(scope) = ConsentScope::parse(&s) {
            prop_assert_eq!(scope.to_string(), s.clone());
            prop_assert_eq!(ConsentScope::parse(&scope.to_string()), Ok(scope));
        }
    }

    /// Any sequence of workflow events from any starting kind: never panics, a final
    /// status is never left, and the due date only moves by one extension of at most
    /// 30 days (R35).
    #[test]
    fn request_workflow_never_panics_and_final_is_final_r33_r35(
        kind in proptest::sample::select(RequestType::ALL),
        by_end_user in any::<bool>(),
        answer_days in 0u32..=36_500,
        events in proptest::collection::vec((0u8..7, any::<u32>()), 0..24),
    ) {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut life = RequestLife::file(kind, by_end_user, t0, answer_days);
        let due0 = life.due_at;
        for (e, days) in events {
            let event = match e {
                0 => RequestEvent::Instruct,
                1 => RequestEvent::VerifyIdentity,
                2 => RequestEvent::Confirm,
                3 => RequestEvent::Start,
                4 => RequestEvent::Extend { days },
                5 => RequestEvent::Complete,
                _ => RequestEvent::Refuse,
            };
            match life.apply(event, t0) {
                Ok(next) => {
                    prop_assert!(!life.status.is_final(), "{:?} left final {:?}", event, life.status);
                    life = next;
                }
                Err(err) => prop_assert!(!err.to_string().is_empty()),
            }
        }
        prop_assert!(life.due_at >= due0);
        prop_assert!(life.due_at - due0 <= Duration::days(30));
    }
}
