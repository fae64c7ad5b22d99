//! The scanner: one left-to-right pass over a line. At each token start (an ASCII
//! letter or digit not preceded by one, a full-width digit, `+`, `(`, or a CJK character)
//! the recognizers that can start there are tried in a fixed order; the first that
//! matches and validates emits a span and the scan resumes after it, so spans never
//! overlap. Nothing is allocated per line: candidate digits go into a fixed buffer.
#![allow(
    clippy::indexing_slicing,
    reason = "every index is bounded by the surrounding length checks; proptests drive arbitrary input through it"
)]

use crate::names;
use crate::validate;
use crate::{PiiType, Span};

const MAX_DIGITS: usize = 24;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// A full-width digit (U+FF10..U+FF19) at `i`: its value.
fn fullwidth_digit(b: &[u8], i: usize) -> Option<u8> {
    match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(0xEF), Some(0xBC), Some(&d)) if (0x90..=0x99).contains(&d) => Some(d - 0x90 + b'0'),
        _ => None,
    }
}

/// The digit at `i` (ASCII or full-width) and its byte length.
fn digit_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    match b.get(i) {
        Some(&d) if d.is_ascii_digit() => Some((d, 1)),
        Some(0xEF) => fullwidth_digit(b, i).map(|d| (d, 3)),
        _ => None,
    }
}

/// The UTF-8 length of the character starting with byte `b`.
fn char_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// The CJK unified ideograph at `i`, if any, with its length (always 3).
fn cjk_at(b: &[u8], i: usize) -> Option<char> {
    let (b0, b1, b2) = (*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?);
    if !(0xE4..=0xE9).contains(&b0) {
        return None;
    }
    let c = (u32::from(b0 & 0x0F) << 12) | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
    char::from_u32(c).filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c))
}

/// Whether the byte after a numeric finding ends it cleanly.
fn right_boundary(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        None => true,
        Some(&c) if is_word(c) => false,
        // 1.5, 1,000: a number continues.
        Some(b'.' | b',') => !b.get(end + 1).is_some_and(u8::is_ascii_digit),
        Some(_) => fullwidth_digit(b, end).is_none(),
    }
}

/// Scans one line (without its newline) and appends the spans found.
pub fn scan_line(line: &str, out: &mut Vec<Span>) {
    let b = line.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        let c = b[i];
        if c < 0x80 {
            let starts_token = (is_word(c) || c == b'+' || c == b'(')
                && (i == 0 || !(is_word(b[i - 1]) || b[i - 1] == b'.' || b[i - 1] == b'_'));
            if starts_token {
                match at_ascii(line, i) {
                    Outcome::Found(end, kind) => {
                        out.push(Span {
                            start: i,
                            end,
                            kind,
                        });
                        i = end;
                        continue;
                    }
                    // A failed digit sequence is skipped whole (its tail is not a number
                    // of its own), up to the next separator.
                    Outcome::Skip(end) if end > i => {
                        i = end;
                        continue;
                    }
                    Outcome::Skip(_) => {}
                }
            }
            // Skip the rest of an alphanumeric run: nothing starts inside a word.
            if is_word(c) {
                while i < n && is_word(b[i]) {
                    i += 1;
                }
            } else {
                i += 1;
            }
            continue;
        }
        if fullwidth_digit(b, i).is_some() {
            let prev_digit = i >= 3 && fullwidth_digit(b, i - 3).is_some();
            if !prev_digit && (i == 0 || !is_word(b[i - 1])) {
                match number(b, i) {
                    (end, Some(kind)) => {
                        out.push(Span {
                            start: i,
                            end,
                            kind,
                        });
                        i = end;
                        continue;
                    }
                    (end, None) if end > i => {
                        i = end;
                        continue;
                    }
                    _ => {}
                }
            }
            i += 3;
            continue;
        }
        if cjk_at(b, i).is_some() {
            if let Some(end) = names::chinese_name(line, i) {
                out.push(Span {
                    start: i,
                    end,
                    kind: PiiType::PersonZh,
                });
                i = end;
                continue;
            }
        }
        i += char_len(c);
    }
}

/// What the recognizers made of a token start.
enum Outcome {
    Found(usize, PiiType),
    /// Nothing here; resume the scan at this byte (past a digit sequence that failed).
    Skip(usize),
}

/// Recognizers that start at an ASCII character.
fn at_ascii(line: &str, i: usize) -> Outcome {
    match at_ascii_found(line, i) {
        Ok((end, kind)) => Outcome::Found(end, kind),
        Err(skip) => Outcome::Skip(skip),
    }
}

fn at_ascii_found(line: &str, i: usize) -> Result<(usize, PiiType), usize> {
    let b = line.as_bytes();
    let c = b[i];
    // The alphanumeric run and what ends it decide which recognizers can apply, so most
    // words are rejected after one look.
    let mut run_end = i;
    while run_end < b.len() && is_word(b[run_end]) {
        run_end += 1;
    }
    let run = run_end - i;
    let term = b.get(run_end).copied();
    if is_word(c) && matches!(term, Some(b'@' | b'.' | b'_' | b'%' | b'+' | b'-')) {
        if let Some(end) = email(b, i) {
            return Ok((end, PiiType::Email));
        }
    }
    if c.is_ascii_hexdigit() && term == Some(b':') {
        if let Some(end) = ipv6(line, i) {
            return Ok((end, PiiType::Ipv6));
        }
    }
    if c.is_ascii_digit() && term == Some(b'.') {
        if let Some(end) = ipv4(b, i) {
            return Ok((end, PiiType::Ipv4));
        }
    }
    let mut skip = i;
    if c.is_ascii_digit() || c == b'+' || c == b'(' {
        match number(b, i) {
            (end, Some(kind)) => return Ok((end, kind)),
            (consumed, None) => skip = consumed,
        }
    }
    if run == 9 || run == 18 {
        if let Some(found) = alnum_code(b, i) {
            return Ok(found);
        }
    }
    if c.is_ascii_uppercase() && term == Some(b' ') && (2..=15).contains(&run) {
        if let Some(end) = names::english_name(line, i) {
            return Ok((end, PiiType::PersonEn));
        }
    }
    // Nothing starts inside a word: resume after it (or after a longer digit sequence).
    Err(skip.max(run_end))
}

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// An e-mail address whose local part starts at `i`.
fn email(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while j < b.len() && j - i <= 64 && local_char(b[j]) {
        j += 1;
    }
    if b.get(j) != Some(&b'@') || j == i || b[j - 1] == b'.' {
        return None;
    }
    let d0 = j + 1;
    let mut k = d0;
    let mut last_dot = None;
    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'-' || b[k] == b'.') {
        if b[k] == b'.' {
            if k == d0 || b[k - 1] == b'.' {
                return None;
            }
            last_dot = Some(k);
        }
        k += 1;
    }
    // A trailing dot ends a sentence, not the domain.
    while k > d0 && b[k - 1] == b'.' {
        k -= 1;
    }
    let dot = if last_dot.is_some_and(|d| d < k) {
        last_dot?
    } else {
        (d0..k).rev().find(|&p| b[p] == b'.')?
    };
    let tld = &b[dot + 1..k];
    (tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
        && b.get(k).is_none_or(|&c| c != b'@'))
    .then_some(k)
}

/// An IPv4 address: four decimal octets, nothing numeric around it.
fn ipv4(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for part in 0..4 {
        let s = j;
        let mut v = 0u32;
        while j < b.len() && b[j].is_ascii_digit() && j - s < 3 {
            v = v * 10 + u32::from(b[j] - b'0');
            j += 1;
        }
        if j == s || v > 255 || b.get(j).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        if part < 3 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    let clean = match b.get(j) {
        None => true,
        Some(&c) if is_word(c) => false,
        Some(b'.') => !b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric),
        Some(_) => true,
    };
    clean.then_some(j)
}

/// An IPv6 address in full, unpadded or `::`-compressed form.
fn ipv6(line: &str, i: usize) -> Option<usize> {
    let b = line.as_bytes();
    let mut j = i;
    let mut colons = 0;
    while j < b.len() && (b[j].is_ascii_hexdigit() || b[j] == b':') && j - i < 45 {
        colons += usize::from(b[j] == b':');
        j += 1;
    }
    if colons < 2 || (colons < 7 && !line[i..j].contains("::")) {
        return None;
    }
    let dotted_on = b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric);
    if b.get(j).is_some_and(|&c| is_word(c)) || dotted_on {
        return None;
    }
    let mut end = j;
    // "fe80::1:" before more text: the last colon is punctuation.
    while end > i && b[end - 1] == b':' && !line[i..end].ends_with("::") {
        end -= 1;
    }
    let text = &line[i..end];
    let groups = text.split(':').filter(|g| !g.is_empty()).count();
    (groups >= 2 && text.parse::<std::net::Ipv6Addr>().is_ok()).then_some(end)
}

/// Numbers: resident IDs, mobiles (with +86/0086 and grouping), bank cards (grouped by
/// four), landlines and all-digit credit codes. Digits may be full-width.
/// Returns how far a digit-group sequence reaches (so an unmatched one is skipped whole:
/// the tail of a failed card must not be read as a landline) and what it is, if anything.
fn number(b: &[u8], i: usize) -> (usize, Option<PiiType>) {
    match number_inner(b, i) {
        Ok((end, kind)) => (end, Some(kind)),
        Err(consumed) => (consumed, None),
    }
}

fn number_inner(b: &[u8], i: usize) -> Result<(usize, PiiType), usize> {
    let mut j = i;
    let mut prefixed = false;
    if b.get(j) == Some(&b'+') {
        if b.get(j + 1..j + 3) != Some(b"86") {
            return Err(i);
        }
        j += 3;
        prefixed = true;
    } else if b.get(j..j + 4) == Some(b"0086") && digit_at(b, j + 4).is_some_and(|(d, _)| d == b'1')
    {
        j += 4;
        prefixed = true;
    }
    if prefixed && matches!(b.get(j), Some(b' ' | b'-')) {
        j += 1;
    }
    // Landline with the area code in parentheses: (0xx)xxxxxxxx.
    if b.get(j) == Some(&b'(') {
        return paren_landline(b, j).ok_or(i);
    }
    let mut digits = [0u8; MAX_DIGITS];
    let mut nd = 0;
    let mut groups = [0usize; 8];
    let mut ng = 0;
    let mut sep: Option<u8> = None;
    let mut first_end = i;
    loop {
        let mut len = 0;
        while let Some((d, w)) = digit_at(b, j) {
            if nd == MAX_DIGITS {
                // Far too long for any identifier: skip the whole digit run.
                let mut k = j;
                while let Some((_, w)) = digit_at(b, k) {
                    k += w;
                }
                return Err(k);
            }
            digits[nd] = d;
            nd += 1;
            len += 1;
            j += w;
        }
        if len == 0 || ng == groups.len() {
            return Err(j.max(i));
        }
        groups[ng] = len;
        ng += 1;
        if ng == 1 {
            first_end = j;
        }
        match b.get(j) {
            Some(&s @ (b' ' | b'-'))
                if sep.is_none_or(|x| x == s) && digit_at(b, j + 1).is_some() =>
            {
                sep = Some(s);
                j += 1;
            }
            _ => break,
        }
    }
    // A resident ID's check character may be X.
    let mut x = false;
    if nd == 17 && ng == 1 && matches!(b.get(j), Some(b'X' | b'x')) {
        digits[nd] = b'X';
        nd += 1;
        j += 1;
        x = true;
    }
    if !right_boundary(b, j) {
        return Err(i);
    }
    let d = &digits[..nd];
    let g = &groups[..ng];
    // Unmatched: a card-like run of four-digit groups is skipped whole (its tail is not a
    // landline); otherwise only the first group, since a space may just separate two
    // unrelated numbers ("金额 100 13912345678").
    let card_like = ng >= 3 && g.iter().all(|&l| l == 4);
    classify(d, g, sep, prefixed, x)
        .map(|kind| (j, kind))
        .ok_or(if ng == 1 || card_like { j } else { first_end })
}

fn classify(d: &[u8], g: &[usize], sep: Option<u8>, prefixed: bool, x: bool) -> Option<PiiType> {
    let n = d.len();
    if prefixed {
        let grouped = g == [11] || g == [3, 4, 4];
        return (grouped && validate::mobile(d)).then_some(PiiType::CnMobile);
    }
    if g.len() == 1 {
        return match n {
            18 if validate::resident_id(d) => Some(PiiType::CnResidentId),
            18 if !x && validate::uscc(d) => Some(PiiType::CnUscc),
            11 if validate::mobile(d) => Some(PiiType::CnMobile),
            16..=19 if validate::luhn(d) => Some(PiiType::BankCard),
            _ => None,
        };
    }
    if g == [3, 4, 4] && validate::mobile(d) {
        return Some(PiiType::CnMobile);
    }
    // Cards grouped by four (the last group may be shorter).
    let fours = g.len() >= 4
        && g[..g.len() - 1].iter().all(|&l| l == 4)
        && (1..=4).contains(&g[g.len() - 1]);
    if fours && (16..=19).contains(&n) && validate::luhn(d) {
        return Some(PiiType::BankCard);
    }
    // Landlines: 0xx-xxxxxxxx, 0xxx-xxxxxxx, 0xxx xxxx xxxx.
    let area_ok = d[0] == b'0' && d.get(1).is_some_and(|&c| c != b'0');
    let local_first = |k: usize| d.get(k).is_some_and(|&c| (b'2'..=b'8').contains(&c));
    let landline = match (g, sep) {
        ([a @ (3 | 4), l @ (7 | 8)], Some(b'-')) => local_first(*a) && *a + *l <= 12,
        ([a @ (3 | 4), m @ (3 | 4), 4], Some(b' ')) => local_first(*a) && *a + *m + 4 <= 12,
        _ => false,
    };
    (area_ok && landline).then_some(PiiType::CnLandline)
}

fn paren_landline(b: &[u8], open: usize) -> Option<(usize, PiiType)> {
    let mut j = open + 1;
    let s = j;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let area = j - s;
    if !(3..=4).contains(&area) || b[s] != b'0' || b.get(j) != Some(&b')') {
        return None;
    }
    j += 1;
    let ls = j;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let local = j - ls;
    let ok = (7..=8).contains(&local) && (b'2'..=b'8').contains(&b[ls]) && right_boundary(b, j);
    ok.then_some((j, PiiType::CnLandline))
}

/// Letter-bearing codes: unified social credit codes and passport numbers.
fn alnum_code(b: &[u8], i: usize) -> Option<(usize, PiiType)> {
    let mut j = i;
    while j < b.len() && is_word(b[j]) {
        j += 1;
    }
    if !right_boundary(b, j) {
        return None;
    }
    let w = &b[i..j];
    if w.len() == 18 && validate::uscc(w) {
        return Some((j, PiiType::CnUscc));
    }
    let passport = w.len() == 9
        && match w[0] {
            b'E' => {
                w[1..].iter().all(u8::is_ascii_digit)
                    || (w[1].is_ascii_uppercase()
                        && !matches!(w[1], b'I' | b'O')
                        && w[2..].iter().all(u8::is_ascii_digit))
            }
            b'G' => w[1..].iter().all(u8::is_ascii_digit),
            _ => false,
        };
    passport.then_some((j, PiiType::CnPassport))
}
