//! Card security codes written into free text (R12: "we do not retain the security code").
//!
//! The vault refuses the `security_code`/`cvv` field names outright; this catches the
//! same value typed into a free-text field (`"financial_data": "cvv=7391"`). The text is
//! first folded (full-width forms to ASCII, lower case, zero-width characters dropped,
//! any digit script to ASCII digits); a mention is then a keyword (CVV, CVV2, CVC, CVN,
//! CID, CSC, CV2, "security code", "sec code", "card verification", "verification code",
//! 安全码, 安全碼, 卡验证码, 验证码, 校验码, 三位数字...) followed, across punctuation and a
//! few filler words, by three or four digits (also spaced out or in a list: `1 2 3`,
//! `[7,3,9]`) that no further digit follows.

/// Keywords after folding. Short ASCII ones must start a word so "acid 123" is not one.
const KEYWORDS: &[&str] = &[
    "security code",
    "security-code",
    "security_code",
    "securitycode",
    "sec code",
    "card verification",
    "verification code",
    "verification value",
    "c v v",
    "c.v.v",
    "c-v-v",
    "cvv2",
    "cvc2",
    "cvv",
    "cvc",
    "cvn",
    "cid",
    "csc",
    "cv2",
    "卡验证码",
    "卡驗證碼",
    "安全码",
    "安全碼",
    "验证码",
    "驗證碼",
    "校验码",
    "校驗碼",
    "三位数字",
    "三位數字",
    "后三位",
    "後三位",
];

/// Words that may stand between the keyword and the digits.
const FILLERS: &[&str] = &[
    "is", "was", "code", "number", "no", "value", "of", "the", "digits", "3", "4", "码", "碼",
    "为", "為", "是", "号", "號", "的",
];

/// Whether `text` contains a card security code after one of its keywords.
pub fn mentions_security_code(text: &str) -> bool {
    let folded = fold(text);
    KEYWORDS.iter().any(|k| {
        folded.match_indices(k).any(|(at, _)| {
            let before = folded.get(..at).unwrap_or("");
            // "cardcvv" is a run-together "card cvv".
            let starts_word = before
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphabetic())
                || before.ends_with("card");
            let rest = folded.get(at + k.len()..).unwrap_or("");
            (starts_word || !k.is_ascii()) && digits_follow(rest)
        })
    })
}

/// Full-width ASCII forms to ASCII, any decimal digit to its ASCII digit, lower case,
/// zero-width and soft-hyphen characters dropped.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}' | '\u{00ad}'
            )
        })
        .map(|c| {
            let c = match u32::from(c) {
                // Full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space.
                cp @ 0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0).unwrap_or(c),
                0x3000 => ' ',
                _ => c,
            };
            match c.to_digit(10) {
                Some(_) => c,
                None if c.is_numeric() => unicode_digit(c).unwrap_or(c),
                None => c,
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// A decimal digit of another script (Arabic-Indic, Devanagari, ...) as ASCII: the
/// Unicode decimal digit blocks are runs of ten starting at a code point ending in 0.
fn unicode_digit(c: char) -> Option<char> {
    const ZEROS: &[u32] = &[
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810, 0xFF10,
    ];
    let cp = u32::from(c);
    ZEROS
        .iter()
        .find(|z| (**z..**z + 10).contains(&cp))
        .and_then(|z| char::from_digit(cp - z, 10))
}

/// Skips separators and filler words, then wants 3 or 4 digits (possibly spaced or
/// listed one by one) that no further digit follows.
fn digits_follow(mut rest: &str) -> bool {
    // The keyword itself must end its word ("cvvs" is not "cvv").
    if rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    for _ in 0..8 {
        rest = rest.trim_start_matches(is_separator);
        match FILLERS.iter().find(|f| {
            // An ASCII filler is a whole word; a CJK one stands alone anyway.
            rest.starts_with(**f)
                && (!f.is_ascii()
                    || rest
                        .get(f.len()..)
                        .and_then(|r| r.chars().next())
                        .is_none_or(|c| !c.is_ascii_alphanumeric()))
        }) {
            Some(f) => rest = rest.get(f.len()..).unwrap_or(""),
            None => break,
        }
    }
    // Digits, allowing one separator between single digits ("1 2 3", "[7,3,9]").
    let mut count = 0;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            count += 1;
            continue;
        }
        let next_is_digit = chars.peek().is_some_and(char::is_ascii_digit);
        if count > 0 && matches!(c, ' ' | ',' | '.' | '-') && next_is_digit {
            continue;
        }
        break;
    }
    (3..=4).contains(&count)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || matches!(
            c,
            '（' | '）' | '：' | '，' | '、' | '。' | '；' | '「' | '」'
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
            // Found by an attacker's probe (issue 14).
            "c v v 123",
            "C.V.V. 123",
            "security-code=123",
            "cvv,123",
            "cvv;123",
            "cvv/123",
            "cvv_123",
            "cvv_code: 123",
            "cardcvv=123",
            "cvv=>123",
            "cvv->123",
            "cvv 1 2 3",
            "{\"CVV\":[7,3,9]}",
            "cvv{123}",
            "cvv<123>",
            "CVV (3 digits) 123",
            "ｃｖｖ 123",
            "ＣＶＶ：１２３",
            "cvv ١٢٣",
            "cvv\u{200b}123",
            "CV2 123",
            "sec code 123",
            "verification code 123",
            "校验码 123",
            "验证码123",
            "安全碼 123",
            "卡背面的三位数字是123",
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
            "cvv check passed on 2026-11-30",
            "",
        ] {
            assert!(!mentions_security_code(text), "{text}");
        }
    }
}
