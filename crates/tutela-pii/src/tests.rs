use super::*;
use proptest::prelude::*;

fn found(text: &str) -> Vec<(&str, &'static str)> {
    let mut spans = Vec::new();
    scan_line(text, &mut spans);
    spans
        .iter()
        .map(|s| (&text[s.start..s.end], s.kind.as_str()))
        .collect()
}

#[test]
fn every_type_is_found_with_exact_spans() {
    let cases = [
        (
            "身份证11010519491231002X是否为本人",
            "11010519491231002X",
            "CN_RESIDENT_ID",
        ),
        ("手机号13912345678已绑定", "13912345678", "CN_MOBILE"),
        (
            "call +86 139 1234 5678 now",
            "+86 139 1234 5678",
            "CN_MOBILE",
        ),
        ("tel:008613912345678", "008613912345678", "CN_MOBILE"),
        (
            "手机：１３９１２３４５６７８。",
            "１３９１２３４５６７８",
            "CN_MOBILE",
        ),
        ("请拨打010-62345678联系我们", "010-62345678", "CN_LANDLINE"),
        ("office (0571)87654321", "(0571)87654321", "CN_LANDLINE"),
        (
            "请把发票发到li.lei@example.com.cn谢谢",
            "li.lei@example.com.cn",
            "EMAIL",
        ),
        (
            "card 6222 0212 3456 7890 128 ok",
            "6222 0212 3456 7890 128",
            "BANK_CARD",
        ),
        ("金额 100 13912345678", "13912345678", "CN_MOBILE"),
        ("name=孙婷", "孙婷", "PERSON_ZH"),
        ("customer(Laura Scott): hi", "Laura Scott", "PERSON_EN"),
        (
            "My email is mary.clark@example.com.",
            "mary.clark@example.com",
            "EMAIL",
        ),
        (
            "\"card_no\":\"4111111111111111\"",
            "4111111111111111",
            "BANK_CARD",
        ),
        (
            "企业信用代码91350100M000100Y43校验通过",
            "91350100M000100Y43",
            "CN_USCC",
        ),
        ("登录地址148.100.110.84异常", "148.100.110.84", "IPV4"),
        (
            "来源地址2001:db8::8a2e:370:7334被封禁",
            "2001:db8::8a2e:370:7334",
            "IPV6",
        ),
        (
            "ip=FE80:0000:0000:0000:0202:B3FF:FE1E:8329",
            "FE80:0000:0000:0000:0202:B3FF:FE1E:8329",
            "IPV6",
        ),
        ("护照E12345678已过期", "E12345678", "CN_PASSPORT"),
        ("passport: EA1234567", "EA1234567", "CN_PASSPORT"),
        ("联系人：欧阳娜娜反馈", "欧阳娜娜", "PERSON_ZH"),
        ("Dear Emily Clark, thanks", "Emily Clark", "PERSON_EN"),
    ];
    for (text, value, kind) in cases {
        assert_eq!(found(text), vec![(value, kind)], "in {text:?}");
    }
}

#[test]
fn near_misses_are_not_flagged() {
    for text in [
        "id 110105194912310021 wrong check char",
        "card 4111111111111112 fails Luhn",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "sha 3f786850e387550fdab836ed7e6dc881de23001b",
        "ts 1732780800000 and 2026-11-28T09:00:00Z",
        "version v2.3.14 and 10.0.19041.3000 and 5.15.0-91-generic",
        "order 20261128123456789012 SO20261128123456",
        "masked 139****5678 and 6222 **** **** 1234",
        "uid 10123456789",
        "time 12:34:56",
        "今天王府井很热闹",
        "voucher 6226 0970 5024 8014 fails Luhn",
    ] {
        assert_eq!(found(text), vec![], "in {text:?}");
    }
}

#[test]
fn redaction_never_lets_the_value_through() {
    let line = "联系人：欧阳娜娜，手机13912345678，卡号6222021234567890128";
    let mut spans = Vec::new();
    scan_line(line, &mut spans);
    for op in [
        Operator::Mask,
        Operator::Tag,
        Operator::Hash { key: [9; 32] },
    ] {
        let mut out = String::new();
        Redactor::new(op.clone()).redact_line(line, &spans, &mut out);
        for v in ["欧阳娜娜", "13912345678", "6222021234567890128"] {
            assert!(!out.contains(v), "{op:?}: {out}");
        }
    }
    let mut out = String::new();
    Redactor::new(Operator::Mask).redact_line(line, &spans, &mut out);
    assert!(out.contains("*******5678"), "{out}");
    let mut a = String::new();
    let mut b = String::new();
    Redactor::new(Operator::Hash { key: [9; 32] }).redact_line(
        "a 13912345678",
        &found_spans("a 13912345678"),
        &mut a,
    );
    Redactor::new(Operator::Hash { key: [9; 32] }).redact_line(
        "b 13912345678",
        &found_spans("b 13912345678"),
        &mut b,
    );
    assert_eq!(
        a[2..],
        b[2..],
        "the same value hashes the same (joins work)"
    );
}

#[test]
fn tokens_keep_the_format_and_are_deterministic_per_key() {
    let line = "手机 139-1234-5678, mail li.lei@example.com";
    let spans = found_spans(line);
    let token = |key: [u8; 32]| {
        let mut out = String::new();
        let mut seen = Vec::new();
        Redactor::new(Operator::Token { key }).redact_line_with(
            line,
            &spans,
            &mut out,
            &mut |k, v, t| {
                seen.push((k, v.to_owned(), t.to_owned()));
            },
        );
        (out, seen)
    };
    let (a, seen) = token([1; 32]);
    let (b, _) = token([1; 32]);
    let (c, _) = token([2; 32]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(!a.contains("139-1234-5678") && !a.contains("li.lei"));
    assert_eq!(seen.len(), 2);
    let (_, value, tok) = &seen[0];
    assert_eq!(value, "139-1234-5678");
    assert_eq!(tok.len(), value.len());
    assert!(tok
        .chars()
        .zip(value.chars())
        .all(|(t, v)| t.is_ascii_digit() == v.is_ascii_digit()));
    assert_eq!(&tok[3..4], "-");
    assert!(seen[1].2.ends_with("@example.com") || seen[1].2.contains('@'));
}

fn found_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    scan_line(text, &mut spans);
    spans
}

#[test]
fn invalid_utf8_is_a_clear_error() {
    let mut input: &[u8] = b"ok line\nbad \xff byte\n";
    let err = stream::scan(&mut input, &mut Vec::new(), |_| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2 is not valid UTF-8 (byte 4 of the line)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_scans_without_panics_on_char_boundaries(s in "\\PC{0,200}") {
        let mut spans = Vec::new();
        scan_line(&s, &mut spans);
        let mut last = 0;
        for sp in &spans {
            prop_assert!(sp.start < sp.end && sp.end <= s.len());
            prop_assert!(s.is_char_boundary(sp.start) && s.is_char_boundary(sp.end));
            prop_assert!(sp.start >= last, "overlap");
            last = sp.end;
        }
    }

    #[test]
    fn pii_shaped_text_scans_without_panics(s in "[0-9０-９+() .:@a-fA-FxXEG-]{0,80}[联系人客户张王欧阳先生：]{0,6}") {
        let mut spans = Vec::new();
        scan_line(&s, &mut spans);
        for sp in &spans {
            prop_assert!(s.is_char_boundary(sp.start) && s.is_char_boundary(sp.end));
        }
    }
}
