//! Exact decimal reading of `N` text (`-12.50`, `1E+2`) for the conversions of the
//! column-aware mode: which integer and decimal types hold a value, and its plain text.
//! No floating point, no allocation.

/// Most significant digits kept; DynamoDB allows 38.
const MAX_DIGITS: usize = 40;

/// A number as `digits × 10^exp`, with no leading or trailing zeros in `digits`
/// (zero has none).
pub(crate) struct Dec {
    pub(crate) neg: bool,
    digits: [u8; MAX_DIGITS],
    n: usize,
    exp: i64,
}

/// Exponents beyond this are clamped: they are far outside every type either way.
const EXP_LIMIT: i64 = 1 << 40;

impl Dec {
    /// Reads JSON number text (already checked against the grammar). `None` beyond
    /// [`MAX_DIGITS`] significant digits.
    pub(crate) fn parse(text: &[u8]) -> Option<Dec> {
        let (neg, rest) = match text.split_first() {
            Some((b'-', r)) => (true, r),
            _ => (false, text),
        };
        let (mantissa, exp_text) = match rest.iter().position(|&c| c == b'e' || c == b'E') {
            Some(p) => (&rest[..p], Some(&rest[p + 1..])),
            None => (rest, None),
        };
        let mut exp: i64 = 0;
        if let Some(e) = exp_text {
            let (eneg, edigits) = match e.split_first() {
                Some((b'-', r)) => (true, r),
                Some((b'+', r)) => (false, r),
                _ => (false, e),
            };
            for &d in edigits {
                exp = (exp * 10 + i64::from(d - b'0')).min(EXP_LIMIT);
            }
            if eneg {
                exp = -exp;
            }
        }
        let mut d = Dec {
            neg,
            digits: [0; MAX_DIGITS],
            n: 0,
            exp: 0,
        };
        // Digits after the point lower the exponent; zeros after the last non-zero digit
        // are counted and folded into it.
        let mut frac_len: i64 = 0;
        let mut after_point = false;
        let mut zeros: i64 = 0;
        for &c in mantissa {
            if c == b'.' {
                after_point = true;
                continue;
            }
            if after_point {
                frac_len += 1;
            }
            if c == b'0' {
                if d.n > 0 {
                    zeros += 1;
                }
                continue;
            }
            // Pending zeros were inside the digits.
            if d.n + zeros as usize + 1 > MAX_DIGITS {
                return None;
            }
            for _ in 0..zeros {
                d.digits[d.n] = b'0';
                d.n += 1;
            }
            zeros = 0;
            d.digits[d.n] = c;
            d.n += 1;
        }
        d.exp = if d.n == 0 {
            0
        } else {
            (exp - frac_len + zeros).clamp(-EXP_LIMIT, EXP_LIMIT)
        };
        Some(d)
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.n == 0
    }

    /// Count of significant digits.
    pub(crate) fn significant(&self) -> usize {
        self.n
    }

    /// True when the value is an integer that fits the (un)signed type of `bits` bits.
    pub(crate) fn int_fits(&self, signed: bool, bits: u16) -> bool {
        if self.is_zero() {
            return true;
        }
        if self.exp < 0 || (self.neg && !signed) {
            return false;
        }
        let bound = int_bound(signed, bits, self.neg);
        let len = self.n as i64 + self.exp;
        if len != bound.len() as i64 {
            return len < bound.len() as i64;
        }
        // Same length: compare digit by digit, the exponent's zeros after the digits.
        let value = self.digits[..self.n]
            .iter()
            .copied()
            .chain(std::iter::repeat(b'0'));
        for (v, b) in value.zip(bound.bytes()) {
            if v != b {
                return v < b;
            }
        }
        true
    }

    /// True when `Decimal(precision, scale)` holds the value exactly.
    pub(crate) fn decimal_fits(&self, precision: u8, scale: u8) -> bool {
        if self.is_zero() {
            return true;
        }
        let frac = (-self.exp).max(0);
        let int = (self.n as i64 + self.exp).max(0);
        frac <= i64::from(scale) && int <= i64::from(precision) - i64::from(scale)
    }

    /// Writes the value in plain notation (`-12.5`, `100`, `0.001`); the exponent must be
    /// small (callers check a type first).
    pub(crate) fn write_plain(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.push(b'0');
            return;
        }
        if self.neg {
            out.push(b'-');
        }
        let digits = &self.digits[..self.n];
        let point = self.n as i64 + self.exp; // digits before the point
        if self.exp >= 0 {
            out.extend_from_slice(digits);
            out.resize(out.len() + self.exp as usize, b'0');
        } else if point > 0 {
            let p = point as usize;
            out.extend_from_slice(&digits[..p]);
            out.push(b'.');
            out.extend_from_slice(&digits[p..]);
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-point) as usize, b'0');
            out.extend_from_slice(digits);
        }
    }
}

/// The largest magnitude of the type: positive bound, or the negative one when `neg`.
fn int_bound(signed: bool, bits: u16, neg: bool) -> &'static str {
    match (signed, bits, neg) {
        (false, 8, _) => "255",
        (false, 16, _) => "65535",
        (false, 32, _) => "4294967295",
        (false, 64, _) => "18446744073709551615",
        (false, 128, _) => "340282366920938463463374607431768211455",
        (false, _, _) => {
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        }
        (true, 8, false) => "127",
        (true, 8, true) => "128",
        (true, 16, false) => "32767",
        (true, 16, true) => "32768",
        (true, 32, false) => "2147483647",
        (true, 32, true) => "2147483648",
        (true, 64, false) => "9223372036854775807",
        (true, 64, true) => "9223372036854775808",
        (true, 128, false) => "170141183460469231731687303715884105727",
        (true, 128, true) => "170141183460469231731687303715884105728",
        (true, _, false) => {
            "57896044618658097711785492504343953926634992332820282019728792003956564819967"
        }
        (true, _, true) => {
            "57896044618658097711785492504343953926634992332820282019728792003956564819968"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(t: &str) -> String {
        let mut v = Vec::new();
        Dec::parse(t.as_bytes()).unwrap().write_plain(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn plain_text() {
        for (t, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1E+2", "100"),
            ("12.50", "12.5"),
            ("-0.0012", "-0.0012"),
            ("1.5e-3", "0.0015"),
            ("120e-1", "12"),
            ("100", "100"),
            ("1005", "1005"),
            ("10.05", "10.05"),
            ("0.1e1", "1"),
        ] {
            assert_eq!(plain(t), want, "{t}");
        }
    }

    #[test]
    fn integer_ranges() {
        let fits = |t: &str, s: bool, b: u16| Dec::parse(t.as_bytes()).unwrap().int_fits(s, b);
        assert!(fits("255", false, 8));
        assert!(!fits("256", false, 8));
        assert!(!fits("-5", false, 8));
        assert!(fits("-128", true, 8));
        assert!(!fits("-129", true, 8));
        assert!(fits("1E+2", true, 8));
        assert!(!fits("1.5", true, 64));
        assert!(fits("1.0", true, 8));
        assert!(fits("18446744073709551615", false, 64));
        assert!(!fits("18446744073709551616", false, 64));
        assert!(fits("-9223372036854775808", true, 64));
        assert!(!fits("9223372036854775808", true, 64));
        assert!(fits("1e38", false, 128));
        assert!(!fits("1e39", false, 128));
        assert!(!fits("1e99999999999999999999999", true, 256));
        assert!(fits("0e99999999999999999999999", false, 8));
    }

    #[test]
    fn decimal_ranges() {
        let fits = |t: &str, p: u8, s: u8| Dec::parse(t.as_bytes()).unwrap().decimal_fits(p, s);
        assert!(fits("12.50", 38, 1));
        assert!(!fits("12.505", 38, 2));
        assert!(fits("12.505", 38, 3));
        assert!(!fits("1e100", 38, 2));
        assert!(fits("99999999999999999999999999999999999999", 38, 0));
        assert!(!fits("999", 4, 2));
        assert!(fits("99.99", 4, 2));
        assert!(fits("-1E-2", 3, 2));
    }

    #[test]
    fn too_many_digits() {
        assert!(Dec::parse("1".repeat(41).as_bytes()).is_none());
        assert!(Dec::parse(format!("1{}1", "0".repeat(39)).as_bytes()).is_none());
        assert_eq!(
            Dec::parse(format!("1{}", "0".repeat(300)).as_bytes())
                .unwrap()
                .significant(),
            1
        );
    }
}
