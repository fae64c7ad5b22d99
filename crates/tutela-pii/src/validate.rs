//! Validators: what turns a shape into a finding. Each is a pure function over ASCII.
#![allow(
    clippy::indexing_slicing,
    reason = "each function checks the length before slicing fixed positions"
)]

/// GB 11643-1999: the MOD 11-2 check character of an 18-character resident ID.
pub fn id_check_char(body17: &[u8]) -> Option<u8> {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    if body17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (d, w) in body17.iter().zip(W) {
        if !d.is_ascii_digit() {
            return None;
        }
        sum += u32::from(d - b'0') * w;
    }
    C.get(usize::try_from(sum % 11).ok()?).copied()
}

/// Province-level region codes (GB/T 2260 first two digits).
fn plausible_region(two: &[u8]) -> bool {
    matches!(
        two,
        b"11"
            | b"12"
            | b"13"
            | b"14"
            | b"15"
            | b"21"
            | b"22"
            | b"23"
            | b"31"
            | b"32"
            | b"33"
            | b"34"
            | b"35"
            | b"36"
            | b"37"
            | b"41"
            | b"42"
            | b"43"
            | b"44"
            | b"45"
            | b"46"
            | b"50"
            | b"51"
            | b"52"
            | b"53"
            | b"54"
            | b"61"
            | b"62"
            | b"63"
            | b"64"
            | b"65"
            | b"71"
            | b"81"
            | b"82"
    )
}

fn num(d: &[u8]) -> u32 {
    d.iter()
        .fold(0, |n, c| n * 10 + u32::from(c.wrapping_sub(b'0')))
}

/// A plausible birth date YYYYMMDD between 1900 and 2099.
fn plausible_birth(d: &[u8]) -> bool {
    if d.len() != 8 || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let (y, m, day) = (num(&d[..4]), num(&d[4..6]), num(&d[6..8]));
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2099).contains(&y) && (1..=days).contains(&day)
}

/// An 18-character PRC resident ID: region, birth date and check character.
pub fn resident_id(s: &[u8]) -> bool {
    s.len() == 18
        && s[..17].iter().all(u8::is_ascii_digit)
        && plausible_region(&s[..2])
        && plausible_birth(&s[6..14])
        && id_check_char(&s[..17]) == Some(s[17].to_ascii_uppercase())
}

/// Luhn (ISO/IEC 7812-1) over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

const USCC_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

fn uscc_value(c: u8) -> Option<u32> {
    USCC_CHARS
        .iter()
        .position(|&x| x == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// GB 11714: the check character of the 9-character organization code inside a USCC.
fn org_code_ok(code9: &[u8]) -> bool {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let mut sum = 0u32;
    for (c, w) in code9[..8].iter().zip(W) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        sum += v * w;
    }
    let check = 11 - sum % 11;
    let expected = match check {
        10 => b'X',
        11 => b'0',
        n => b'0' + u8::try_from(n).unwrap_or(0),
    };
    code9[8] == expected
}

/// GB 32100-2015 unified social credit code: alphabet, MOD 31 check character and the
/// embedded organization code's check character.
pub fn uscc(s: &[u8]) -> bool {
    const W: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    if s.len() != 18 {
        return false;
    }
    let mut sum = 0u32;
    for (c, w) in s[..17].iter().zip(W) {
        match uscc_value(*c) {
            Some(v) => sum += v * w,
            None => return false,
        }
    }
    let check = (31 - sum % 31) % 31;
    USCC_CHARS.get(usize::try_from(check).unwrap_or(0)) == Some(&s[17]) && org_code_ok(&s[8..17])
}

/// Mainland mobile numbers: 11 digits, 1 then 3-9.
pub fn mobile(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_ids_need_region_date_and_check_char() {
        assert!(resident_id(b"11010519491231002X"));
        assert!(resident_id(b"11010519491231002x"));
        assert!(!resident_id(b"110105194912310021"), "wrong check char");
        assert!(!resident_id(b"99010519491231002X"), "no such region");
        assert!(!resident_id(b"11010519491331002X"), "month 13");
    }

    #[test]
    fn luhn_and_uscc() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(uscc(b"91350100M000100Y43"));
        assert!(!uscc(b"91350100M000100Y44"));
        assert!(mobile(b"13912345678"));
        assert!(!mobile(b"12912345678"));
    }
}
