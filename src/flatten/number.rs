//! Number text: timestamps scaled to microseconds without going through
//! floating point, and DynamoDB's range for `N` values.

/// Why an `N` value is outside DynamoDB's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberProblem {
    /// More than 38 significant digits.
    SignificantDigits,
    /// A magnitude above 9.9999999999999999999999999999999999999E+125.
    AboveRange,
    /// A magnitude below 1E-130 (and not 0).
    BelowRange,
}

/// Most significant digits DynamoDB keeps.
const MAX_DIGITS: usize = 38;
/// Decimal exponents of the first significant digit DynamoDB stores: with at
/// most 38 digits, `d.ddd…E+125` is at most 9.99…9E+125, and 1E-130 is the
/// smallest magnitude.
const MAX_EXP: i64 = 125;
const MIN_EXP: i64 = -130;
/// Exponent digits beyond this cannot change the outcome (no text is long
/// enough to shift it back into range); clamping keeps the arithmetic small.
const EXP_CLAMP: i64 = 1 << 53;

/// Checks that a number (text already matching the JSON number grammar) is
/// one DynamoDB can store: at most 38 significant digits (from the first
/// non-zero digit to the last one) and a magnitude of 0 or from 1E-130 to
/// 9.9999999999999999999999999999999999999E+125. One pass, no allocation.
pub(crate) fn dynamo_number(text: &[u8]) -> Result<(), NumberProblem> {
    // Most N values: at most 38 characters and no exponent. Such a number has
    // at most 38 digits and, unless 0, a magnitude from 1E-36 to below 1E+38.
    if text.len() <= MAX_DIGITS && !has_exponent(text) {
        return Ok(());
    }
    let mut i = usize::from(text.first() == Some(&b'-'));
    // Digit positions count the digits of the integer part and the fraction
    // together, skipping the point.
    let mut pos = 0usize;
    let mut int_len = usize::MAX;
    let mut first = usize::MAX;
    let mut last = 0usize;
    while let Some(&c) = text.get(i) {
        match c {
            b'0' => {}
            b'1'..=b'9' => {
                if first == usize::MAX {
                    first = pos;
                }
                last = pos;
            }
            b'.' => {
                int_len = pos;
                i += 1;
                continue;
            }
            _ => break,
        }
        pos += 1;
        i += 1;
    }
    if first == usize::MAX {
        // All digits are zero: the number is 0, whatever its exponent.
        return Ok(());
    }
    if last - first >= MAX_DIGITS {
        return Err(NumberProblem::SignificantDigits);
    }
    if int_len == usize::MAX {
        int_len = pos;
    }
    // What follows the digits is the exponent part, if any: [eE][+-]?[0-9]+.
    let mut exp = 0i64;
    let mut negative = false;
    if let Some(rest) = text.get(i + 1..) {
        let digits = match rest.first() {
            Some(b'-') => {
                negative = true;
                &rest[1..]
            }
            Some(b'+') => &rest[1..],
            _ => rest,
        };
        for &d in digits {
            exp = (exp * 10 + i64::from(d.wrapping_sub(b'0'))).min(EXP_CLAMP);
        }
    }
    if negative {
        exp = -exp;
    }
    // The first significant digit is worth 10^(int_len - 1 - first) before
    // the exponent. Text lengths are far below the clamp, so this stays exact
    // where it matters and cannot overflow.
    let e = int_len as i64 - 1 - first as i64 + exp;
    if e > MAX_EXP {
        Err(NumberProblem::AboveRange)
    } else if e < MIN_EXP {
        Err(NumberProblem::BelowRange)
    } else {
        Ok(())
    }
}

/// Parses a non-negative JSON number (`1732406500`, `1568013979.0`,
/// `1.7e9`) and returns `value × 10^scale`, truncated toward zero.
/// `None` if the text is not a number, is negative, or overflows `u64`.
pub(crate) fn scaled_u64(text: &[u8], scale: i32) -> Option<u64> {
    if !super::scan::is_json_number(text) || text.first() == Some(&b'-') {
        return None;
    }
    let (mantissa, exp) = match text.iter().position(|&c| c == b'e' || c == b'E') {
        Some(p) => {
            let e = std::str::from_utf8(&text[p + 1..])
                .ok()?
                .parse::<i32>()
                .ok()?;
            (&text[..p], e)
        }
        None => (text, 0),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&c| c == b'.') {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, &b""[..]),
    };
    // The value is digits(int_part ++ frac_part) × 10^(exp − len(frac) + scale).
    let shift = exp
        .checked_sub(frac_part.len() as i32)?
        .checked_add(scale)?;
    let digits = int_part.iter().chain(frac_part.iter());
    let total = int_part.len() + frac_part.len();
    // Digits dropped by a negative shift are truncated away.
    let keep = if shift < 0 {
        total.saturating_sub(shift.unsigned_abs() as usize)
    } else {
        total
    };
    let mut v: u64 = 0;
    for &d in digits.take(keep) {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if shift > 0 && v != 0 {
        v = v.checked_mul(10u64.checked_pow(shift as u32)?)?;
    }
    Some(v)
}

/// True when the number text has an exponent part. Of the bytes of the JSON
/// number grammar only `e` and `E` have bit 0x40 set, so this ORs the bytes
/// together, eight at a time (overlapping at the end) without branching on
/// each byte.
#[inline(always)]
fn has_exponent(t: &[u8]) -> bool {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&t[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let half = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&t[i..i + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let n = t.len();
    let bits = if n >= 8 {
        let mut acc = word(n - 8);
        let mut i = 0;
        while i + 8 < n {
            acc |= word(i);
            i += 8;
        }
        acc
    } else if n >= 4 {
        half(0) | half(n - 4)
    } else {
        t.iter().fold(0, |a, &c| a | u64::from(c))
    };
    bits & 0x4040_4040_4040_4040 != 0
}

#[cfg(test)]
mod tests {
    use super::{dynamo_number, scaled_u64, NumberProblem};

    #[test]
    fn exponent_found_at_every_position() {
        for len in 1..=40 {
            assert!(!super::has_exponent("1".repeat(len).as_bytes()));
            assert!(!super::has_exponent(
                &"-.0123456789".repeat(4).as_bytes()[..len]
            ));
            for at in 0..len {
                for e in [b'e', b'E'] {
                    let mut t = vec![b'7'; len];
                    t[at] = e;
                    assert!(super::has_exponent(&t), "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn dynamo_range() {
        use NumberProblem::*;
        let nines38 = "9".repeat(38);
        let cases: Vec<(String, Result<(), NumberProblem>)> = vec![
            ("0".into(), Ok(())),
            ("-0".into(), Ok(())),
            ("0.000".into(), Ok(())),
            ("0e99999999999999999999".into(), Ok(())),
            ("-0.0E-99999999999999999999".into(), Ok(())),
            ("1".into(), Ok(())),
            ("-26.5".into(), Ok(())),
            ("1E+125".into(), Ok(())),
            ("1e126".into(), Err(AboveRange)),
            ("10E+124".into(), Ok(())),
            ("10E+125".into(), Err(AboveRange)),
            ("0.1e126".into(), Ok(())),
            (
                "9.9999999999999999999999999999999999999E+125".into(),
                Ok(()),
            ),
            (
                "-9.9999999999999999999999999999999999999E+125".into(),
                Ok(()),
            ),
            (format!("{nines38}E+88"), Ok(())),
            (format!("{nines38}E+89"), Err(AboveRange)),
            ("1E-130".into(), Ok(())),
            ("-1E-130".into(), Ok(())),
            ("1e-131".into(), Err(BelowRange)),
            ("0.1e-129".into(), Ok(())),
            ("0.1e-130".into(), Err(BelowRange)),
            ("10e-131".into(), Ok(())),
            (format!("0.{}1", "0".repeat(129)), Ok(())),
            (format!("0.{}1", "0".repeat(130)), Err(BelowRange)),
            ("1e400".into(), Err(AboveRange)),
            ("1e-400".into(), Err(BelowRange)),
            ("1e99999999999999999999".into(), Err(AboveRange)),
            ("1e-99999999999999999999".into(), Err(BelowRange)),
            (
                "1E+99999999999999999999999999999999999999".into(),
                Err(AboveRange),
            ),
            (format!("1{}", "0".repeat(125)), Ok(())),
            (format!("1{}", "0".repeat(126)), Err(AboveRange)),
            (format!("1{}e-200", "0".repeat(126)), Ok(())),
            ("100000000000000000000000000000000000000000".into(), Ok(())),
            (nines38.clone(), Ok(())),
            (format!("-{nines38}"), Ok(())),
            (format!("{nines38}9"), Err(SignificantDigits)),
            ("12345678901234567890123456789.123456789".into(), Ok(())),
            (
                "12345678901234567890123456789.1234567891".into(),
                Err(SignificantDigits),
            ),
            ("1234567890123456789012345678901234567.8".into(), Ok(())),
            (
                "1234567890123456789012345678901234567.89".into(),
                Err(SignificantDigits),
            ),
            // Zeros before the first and after the last non-zero digit do not count.
            (format!("0.000{nines38}000"), Ok(())),
            (format!("1{}1", "0".repeat(36)), Ok(())),
            (format!("1{}1", "0".repeat(37)), Err(SignificantDigits)),
            (format!("1{}.000", "0".repeat(60)), Ok(())),
            ("0.00000000000000000000000000000000000001".into(), Ok(())),
        ];
        for (t, want) in cases {
            assert!(super::super::scan::is_json_number(t.as_bytes()), "{t}");
            assert_eq!(dynamo_number(t.as_bytes()), want, "{t}");
        }
    }

    #[test]
    fn scaling() {
        let cases: &[(&str, i32, Option<u64>)] = &[
            ("1732406500123456", 0, Some(1732406500123456)),
            ("1732406501000", 3, Some(1732406501000000)),
            ("1732406510", 6, Some(1732406510000000)),
            ("1568013979.0", 6, Some(1568013979000000)),
            ("1568013979.1234567", 6, Some(1568013979123456)),
            ("1.568013979E9", 6, Some(1568013979000000)),
            ("0", 6, Some(0)),
            ("0.5", 0, Some(0)),
            ("-1", 0, None),
            ("1e30", 0, None),
            ("18446744073709551615", 0, Some(u64::MAX)),
            ("18446744073709551616", 0, None),
            ("abc", 0, None),
            ("1e-400", 0, Some(0)),
            ("0e20", 6, Some(0)),
        ];
        for &(t, s, want) in cases {
            assert_eq!(scaled_u64(t.as_bytes(), s), want, "{t} scale {s}");
        }
    }
}
