//! Number text: timestamps scaled to microseconds without going through
//! floating point.

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

#[cfg(test)]
mod tests {
    use super::scaled_u64;

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
