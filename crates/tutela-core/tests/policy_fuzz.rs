//! Property tests of the policy loader against mutations of the shipped statement
//! (issue 14, "Proof"): a line deleted or duplicated, a value replaced by a random
//! string, number, array or table, the file cut at a random byte, random bytes inserted.
//! Whatever the mutation, `load` returns (never panics), and a refusal names the file,
//! a line that exists in the mutated text and a column, with a message; a refusal the
//! loader's own validation makes (the TOML parses and has the expected shape, but a
//! value is wrong) also names the dotted key. `PROPTEST_CASES` sets the number of cases
//! (default 256; the long run in BENCHMARKS.md uses 100000).

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
use tutela_core::policy::{load, Policy, PolicyError};
use tutela_core::{Category, Purpose};

const SHIPPED: &str = include_str!("../../../policy/statement.toml");
const FILE: &str = "statement.toml";

/// One edit of the statement's text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    /// Replaces what follows `=` on a `key = value` line.
    SetValue(usize, String),
    /// Keeps the value's type but changes it: a string's text, or an integer's number.
    SameType(usize, String, i64),
    /// Cuts the file at a byte (moved back to a character boundary).
    Truncate(usize),
    /// Inserts bytes at a byte offset; the result is read as UTF-8 with replacement, as
    /// `tutela` reads a file.
    InsertBytes(usize, Vec<u8>),
}

/// A TOML value of any type, plus values that are the right type but out of range or
/// not in a vocabulary.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<String>().prop_map(|s| toml_string(&s)),
        "[a-z_ ]{0,12}".prop_map(|s| toml_string(&s)),
        proptest::sample::select(vec![
            "\"\"",
            "\" \"",
            "\"R0\"",
            "\"R46\"",
            "\"R99999999999999999999\"",
            "\"marketing\"",
            "\"health\"",
            "\"delete\"",
            "\"cn\"",
            "\"mars\"",
            "\"2020-02-30\"",
            "\"CN\"",
            "true",
            "false",
            "0",
            "-1",
            "36501",
            "4294967296",
            "9223372036854775807",
            "-9223372036854775808",
            "1e308",
            "nan",
            "-inf",
            "0.5",
            "1979-05-27T07:32:00Z",
            "[]",
            "{}",
            "[[]]",
            "{ id = \"x\" }",
            "\"\\u0000\"",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|v| {
                let parts: Vec<String> = v.iter().map(|(k, x)| format!("{k} = {x}")).collect();
                format!("{{ {} }}", parts.join(", "))
            }),
        ]
    })
}

/// A TOML basic string holding `s` exactly.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32 & 0xFFFF)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        3 => (any::<usize>(), toml_value()).prop_map(|(i, v)| Mutation::SetValue(i, v)),
        2 => (
            any::<usize>(),
            prop_oneof![
                "[a-zA-Z0-9_ -]{0,12}",
                proptest::sample::select(vec![
                    "R0", "R46", "R7", "marketing", "health", "cookie", "overseas", "cn",
                    "delete", "anonymize", "azure", "contact_preference", "", " ",
                ])
                .prop_map(str::to_owned),
            ],
            prop_oneof![any::<i64>(), -2i64..40_000],
        )
            .prop_map(|(i, s, n)| Mutation::SameType(i, s, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::InsertBytes(i, b)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    match m {
        Mutation::DeleteLine(i) => {
            if !lines.is_empty() {
                lines.remove(i % lines.len());
            }
            lines.concat()
        }
        Mutation::DuplicateLine(i) => {
            if !lines.is_empty() {
                let at = i % lines.len();
                let line = lines[at];
                lines.insert(at, line);
            }
            lines.concat()
        }
        Mutation::SetValue(i, value) => {
            let assignments: Vec<usize> = (0..lines.len())
                .filter(|n| is_assignment(lines[*n]))
                .collect();
            if assignments.is_empty() {
                return text.to_owned();
            }
            let at = assignments[i % assignments.len()];
            let line = lines[at];
            let (key, _) = line.split_once('=').unwrap();
            let edited = format!("{key}= {value}\n");
            let mut out = String::new();
            for (n, l) in lines.iter().enumerate() {
                out.push_str(if n == at { &edited } else { l });
            }
            out
        }
        Mutation::SameType(i, word, number) => {
            let simple: Vec<usize> = (0..lines.len())
                .filter(|n| is_assignment(lines[*n]) && simple_value(lines[*n]).is_some())
                .collect();
            if simple.is_empty() {
                return text.to_owned();
            }
            let at = simple[i % simple.len()];
            let (key, _) = lines[at].split_once('=').unwrap();
            let edited = match simple_value(lines[at]) {
                Some(true) => format!("{key}= {}\n", toml_string(word)),
                _ => format!("{key}= {number}\n"),
            };
            let mut out = String::new();
            for (n, l) in lines.iter().enumerate() {
                out.push_str(if n == at { &edited } else { l });
            }
            out
        }
        Mutation::Truncate(i) => {
            let mut cut = i % (text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_owned()
        }
        Mutation::InsertBytes(i, bytes) => {
            let at = i % (text.len() + 1);
            let mut raw = text.as_bytes().to_vec();
            raw.splice(at..at, bytes.iter().copied());
            String::from_utf8_lossy(&raw).into_owned()
        }
    }
}

/// `Some(true)` for a `key = "string"` line, `Some(false)` for `key = 123`, else `None`.
fn simple_value(line: &str) -> Option<bool> {
    let (_, v) = line.split_once('=')?;
    let v = v.split('#').next().unwrap_or("").trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && !v[1..v.len() - 1].contains('"') {
        Some(true)
    } else if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        Some(false)
    } else {
        None
    }
}

fn is_assignment(line: &str) -> bool {
    let t = line.trim_start();
    !t.starts_with('#')
        && !t.starts_with('[')
        && t.split_once('=').is_some_and(|(k, _)| {
            let k = k.trim();
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
}

/// Did the loader's own validation refuse this (rather than the TOML parser or the
/// shape check)? Those errors come from `Ctx::err` with a key.
fn shape_is_valid(text: &str) -> bool {
    // A second parse into a generic table tells syntax errors apart; the loader's
    // message for a shape error (missing, unknown or mistyped field) comes from serde.
    toml::from_str::<toml::Table>(text).is_ok()
}

fn is_serde_shape_message(message: &str) -> bool {
    [
        "missing field",
        "unknown field",
        "invalid type",
        "invalid value",
        "invalid length",
    ]
    .iter()
    .any(|m| message.starts_with(m))
}

fn check_loaded(p: &Policy) -> Result<(), TestCaseError> {
    // A loaded policy is complete: every pair of the decision table answers.
    for c in Category::ALL {
        prop_assert!(p.category(*c).is_some(), "{c} not classified");
        for purpose in Purpose::ALL {
            let _ = p.purpose_verdict(*c, *purpose);
        }
    }
    prop_assert!(!p.services.is_empty());
    Ok(())
}

fn check_refusal(text: &str, e: &PolicyError) -> Result<(), TestCaseError> {
    let lines = text.split('\n').count();
    prop_assert_eq!(e.file.as_str(), FILE);
    prop_assert!(
        (1..=lines).contains(&e.line),
        "line {} outside 1..={lines}: {e}",
        e.line
    );
    let line_text = text.split('\n').nth(e.line - 1).unwrap_or("");
    prop_assert!(
        (1..=line_text.chars().count() + 1).contains(&e.column),
        "column {} outside line {:?}: {e}",
        e.column,
        line_text
    );
    // Every refusal says something, syntax errors included.
    prop_assert!(!e.message.trim().is_empty(), "{e:?}");
    let shown = e.to_string();
    let prefix = format!("{FILE}:{}:{}: ", e.line, e.column);
    prop_assert!(shown.starts_with(&prefix), "{shown}");
    // Messages quote at most a short piece of the input.
    prop_assert!(e.message.chars().count() <= 600, "{shown}");
    if shape_is_valid(text) {
        // TOML-valid: either serde refused the shape (its message names the field or
        // the type), or the loader's validation refused a value and names the dotted key.
        prop_assert!(
            !e.key.is_empty() || is_serde_shape_message(&e.message),
            "a validation error names its key: {shown}"
        );
        prop_assert!(
            e.key.is_empty()
                || e.key.split('.').all(|part| !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase()
                        || b == b'_'
                        || b == b'-'
                        || b.is_ascii_digit())),
            "dotted key {:?}: {shown}",
            e.key
        );
    }
    Ok(())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match load(FILE, text) {
        Ok(p) => check_loaded(&p),
        Err(e) => check_refusal(text, &e),
    }
}

proptest! {
    #![proptest_config(config())]
    #[test]
    fn the_loader_survives_any_edit_of_the_statement_r1_r3(
        edits in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut text = SHIPPED.to_owned();
        for m in &edits {
            text = apply(&text, m);
        }
        check(&text)?;
    }

    #[test]
    fn the_loader_survives_any_text(text in prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..512)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "(\\[\\[?[a-z_.]{0,12}\\]\\]?\n|[a-z_]{1,8} = [\"0-9a-z\\[\\]{},]{0,12}\n|#[^\n]{0,8}\n){0,12}",
    ]) {
        check(&text)?;
    }
}

#[test]
fn the_shipped_statement_still_loads() {
    check(SHIPPED).unwrap();
    assert!(load(FILE, SHIPPED).is_ok());
}

/// The mutation helper itself: a value change keeps the line's key and the line count.
#[test]
fn set_value_keeps_the_key_and_the_line() {
    let text = "[a]\nx = 1\n# c = 2\ny = \"z\"\n";
    let out = apply(text, &Mutation::SetValue(1, "[1, 2]".into()));
    // Only `x` and `y` are assignments; the second is `y`.
    assert_eq!(out, "[a]\nx = 1\n# c = 2\ny = [1, 2]\n");
    assert_eq!(apply(text, &Mutation::Truncate(0)), String::new());
}

/// The mutations reach every outcome the properties speak about: a file that still
/// loads, a TOML syntax error, a shape error (missing, unknown or mistyped field) and a
/// refusal by the loader's own validation with a dotted key. A fixed seed keeps this
/// stable; it guards against strategies that only ever produce one kind of file.
#[test]
fn the_mutations_reach_every_kind_of_outcome() {
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(mutation(), 1..3);
    let (mut loaded, mut syntax, mut shape, mut validation) = (0, 0, 0, 0);
    for _ in 0..600 {
        let edits = strategy.new_tree(&mut runner).unwrap().current();
        let text = edits.iter().fold(SHIPPED.to_owned(), |t, m| apply(&t, m));
        match load(FILE, &text) {
            Ok(_) => loaded += 1,
            Err(_) if !shape_is_valid(&text) => syntax += 1,
            Err(e) if e.key.is_empty() => shape += 1,
            Err(_) => validation += 1,
        }
    }
    println!("loaded {loaded}, syntax {syntax}, shape {shape}, validation {validation}");
    assert!(
        loaded > 0 && syntax > 0 && shape > 0 && validation > 0,
        "loaded {loaded}, syntax {syntax}, shape {shape}, validation {validation}"
    );
}
