//! Card security codes written into free text (R12: "we do not retain the security code").
//!
//! The vault refuses the `security_code`/`cvv` field names outright; this catches the
//! same value typed into a free-text field (`"financial_data": "cvv=7391"`). A mention
//! is a keyword (CVV, CVV2, CVC, CVC2, CVN, CID, CSC, "security code", "card
//! verification", 安全码, 卡验证码, 验证码 after "卡") followed, across separators and a
//! few filler words, by exactly three or four digits (ASCII or full-width).

/// Keywords, lower-case. Short ASCII ones must start a word so "acid 123" is not one.
const KEYWORDS: &[&str] = &[
    "security code",
    "security_code",
    "securitycode",
    "card verification value",
    "card verification code",
    "card verification",
    "cvv2",
    "cvc2",
    "cvv",
    "cvc",
    "cvn",
    "cid",
    "csc",
    "卡验证码",
    "安全码",
    "卡背面",
];

/// Words that may stand between the keyword and the digits.
const FILLERS: &[&str] = &[
    "is", "was", "code", "number", "no", "value", "码", "为", "是", "：", "号",
];

/// Whether `text` contains a card security code after one of its keywords.
pub fn mentions_security_code(text: &str) -> bool {
    let lower = text.to_lowercase();
    KEYWORDS.iter().any(|k| {
        lower.match_indices(k).any(|(at, _)| {
            let starts_word = lower
                .get(..at)
                .and_then(|before| before.chars().next_back())
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            let rest = lower.get(at + k.len()..).unwrap_or("");
            (starts_word || !k.is_ascii()) && digits_follow(rest)
        })
    })
}

/// Skips separators and up to four filler words, then wants 3 or 4 digits that no
/// further digit follows.
fn digits_follow(mut rest: &str) -> bool {
    // The keyword itself must end its word ("cvvs" is not "cvv").
    if rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    for _ in 0..6 {
        rest = rest.trim_start_matches(is_separator);
        match FILLERS.iter().find(|f| {
            rest.starts_with(**f)
                && rest
                    .get(f.len()..)
                    .and_then(|r| r.chars().next())
                    .is_none_or(|c| !c.is_ascii_alphabetic())
        }) {
            Some(f) => rest = rest.get(f.len()..).unwrap_or(""),
            None => break,
        }
    }
    let digits = rest.chars().take_while(|c| digit(*c)).count();
    (3..=4).contains(&digits)
}

fn digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ':' | '='
                | '-'
                | '#'
                | '"'
                | '\''
                | '('
                | ')'
                | '['
                | ']'
                | '.'
                | '（'
                | '）'
                | '：'
                | '＝'
                | '，'
                | '、'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_codes_in_free_text_are_found_r12() {
        for text in [
            "cvv=7391",
            "CVV: 123",
            "cvv2 123",
            "the security code is 4821",
            "Security Code: 482",
            "安全码：123",
            "安全码123",
            "卡验证码为 0123",
            "CVC 1234",
            "{\"cvv\":\"739\"}",
            "card cvn#123",
            "paid; CID 1234 ok",
            "cvv=７３９",
            "card verification value: 555",
        ] {
            assert!(mentions_security_code(text), "{text}");
        }
    }

    #[test]
    fn near_misses_are_not_flagged() {
        for text in [
            "acid 123",
            "cvv not provided",
            "order 1234",
            "invoice no. 123",
            "cvv 12345",
            "cvv 12",
            "cvvs 123",
            "paid by card ending 4242",
            "",
        ] {
            assert!(!mentions_security_code(text), "{text}");
        }
    }
}
