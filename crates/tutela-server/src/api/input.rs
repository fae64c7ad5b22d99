//! Small input rules shared by the routes: references, bounded free text, times.

use crate::error::ApiError;

/// Does this JSON text hold the NUL character in a string? In valid JSON a NUL can only
/// be written as the escape `\u0000` (a raw control character is a syntax error); the
/// escape counts when the backslash before `u` is not itself escaped.
pub(crate) fn has_nul_escape(json: &[u8]) -> bool {
    // Most bodies hold no escape at all: one fast search instead of the walk.
    if !json.contains(&b'\\') {
        return false;
    }
    let mut backslashes = 0usize;
    for (i, b) in json.iter().enumerate() {
        if *b == b'\\' {
            backslashes += 1;
            continue;
        }
        if backslashes % 2 == 1 && *b == b'u' && json.get(i + 1..i + 5) == Some(b"0000".as_slice())
        {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// Does this raw (still percent-encoded) path or query hold an encoded NUL (`%00`)?
pub(crate) fn has_encoded_nul(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| w == b"%00")
}

/// Is this a JSON content type (`application/json` or `application/*+json`, any
/// parameters), as axum's `Json` extractor accepts?
pub(crate) fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Times in responses: the service layer's one format.
pub(crate) use tutela_app::rfc3339;

/// A reference is an identifier (ticket, scan, order number), never content: 1 to `max`
/// printable ASCII characters, no spaces or quotes. `None` passes through.
pub(crate) fn reference(
    field: &str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let ok = (1..=max).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !ok {
        return Err(ApiError::invalid(
            "invalid_reference",
            format!("`{field}` must be 1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// Trimmed free text of 1 to `max` characters; `single_line` also refuses control
/// characters (names, short reasons). The error carries `code`.
pub(crate) fn bounded_text(
    field: &str,
    raw: &str,
    max: usize,
    single_line: bool,
    code: &'static str,
) -> Result<String, ApiError> {
    let v = raw.trim();
    let bad_chars = single_line && v.chars().any(char::is_control);
    if v.is_empty() || v.chars().count() > max || bad_chars {
        let rule = if single_line {
            " without control characters"
        } else {
            ""
        };
        return Err(ApiError::invalid(
            code,
            format!("`{field}` must be 1 to {max} characters{rule}"),
        ));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    //! Property tests of the shared input rules (issue 14, "Proof"): arbitrary input
    //! never panics, and what is accepted is accepted again unchanged.
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "test code: a failed expectation should panic with context"
    )]

    use super::*;
    use axum::http::StatusCode;
    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            "[ -~]{0,40}",
            "[ \t\r\n\u{0}\u{7f}\u{a0}a-z\u{4e00}-\u{4e05}]{0,40}",
        ]
    }

    fn code_of(e: &ApiError) -> &'static str {
        match e {
            ApiError::Invalid { code, .. } => code,
            _ => "not a 422",
        }
    }

    #[test]
    fn escaped_backslashes_before_u0000_are_text_not_nul() {
        assert!(has_nul_escape(br#"{"a":"\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"\\u0000"}"#));
        assert!(has_nul_escape(br#"{"a":"\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"u0000"}"#));
        assert!(has_nul_escape(br#"["\u00001"]"#));
    }

    #[test]
    fn json_content_types_are_those_axum_accepts() {
        use axum::http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};
        let check = |ct: Option<&'static str>, ok: bool| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            assert_eq!(is_json_content_type(&h), ok, "{ct:?}");
        };
        check(Some("application/json"), true);
        check(Some("application/json; charset=utf-8"), true);
        check(Some("Application/JSON"), true);
        check(Some("application/vnd.api+json"), true);
        check(Some("application/jsonx"), false);
        check(Some("text/json"), false);
        check(Some("text/plain"), false);
        check(Some(""), false);
        check(None, false);
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn references_are_printable_ascii_and_stable(raw in text(), max in 0usize..80) {
            match reference("evidence_ref", Some(&raw), max) {
                Ok(Some(v)) => {
                    prop_assert_eq!(&v, &raw);
                    prop_assert!((1..=max).contains(&v.len()));
                    prop_assert!(v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\'));
                    prop_assert_eq!(reference("evidence_ref", Some(&v), max).unwrap(), Some(v.clone()));
                }
                Ok(None) => prop_assert!(false, "Some in, None out"),
                Err(e) => {
                    prop_assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
                    prop_assert_eq!(code_of(&e), "invalid_reference");
                    // The message names the field, never the value.
                    prop_assert!(e.to_string().contains("`evidence_ref`"));
                    prop_assert!(raw.len() < 8 || !e.to_string().contains(&raw));
                }
            }
            prop_assert_eq!(reference("evidence_ref", None, max).unwrap(), None);
        }

        #[test]
        fn bounded_text_is_trimmed_bounded_and_stable(
            raw in text(),
            max in 0usize..50,
            single_line in any::<bool>(),
        ) {
            match bounded_text("reason", &raw, max, single_line, "invalid_text") {
                Ok(v) => {
                    prop_assert_eq!(v.as_str(), raw.trim());
                    prop_assert!((1..=max).contains(&v.chars().count()));
                    if single_line {
                        prop_assert!(!v.chars().any(char::is_control));
                    }
                    prop_assert_eq!(bounded_text("reason", &v, max, single_line, "invalid_text").unwrap(), v);
                }
                Err(e) => {
                    prop_assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
                    prop_assert_eq!(code_of(&e), "invalid_text");
                    prop_assert!(e.to_string().contains("`reason`"));
                }
            }
        }

        #[test]
        fn a_nul_is_found_in_any_json_text_that_holds_one(
            s in any::<String>(),
            key in "[a-z\u{0}\\\\\"]{0,4}",
            n in any::<i64>(),
        ) {
            let doc = serde_json::json!({ "a": [n, s.clone()], key.clone(): { "b": null } });
            let text = serde_json::to_string(&doc).unwrap();
            prop_assert_eq!(has_nul_escape(text.as_bytes()), s.contains('\0') || key.contains('\0'));
        }

        #[test]
        fn an_encoded_nul_is_found_in_any_percent_encoded_text(s in any::<String>()) {
            let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(has_encoded_nul(&encoded), s.contains('\0'));
            prop_assert!(!has_encoded_nul(&s.replace('%', "%25")) || s.contains("%00"));
        }

        #[test]
        fn times_print_as_rfc3339_and_parse_back(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + time::Duration::nanoseconds(i64::from(nanos));
            let s = rfc3339(t);
            prop_assert_eq!(OffsetDateTime::parse(&s, &Rfc3339).unwrap(), t);
        }
    }
}
