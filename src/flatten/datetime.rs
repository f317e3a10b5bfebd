//! ISO-8601 text (`2024-01-02T03:04:05.123Z`, `2024-01-02 03:04:05+09:00`,
//! `2024-01-02`) for `DateTime64(p)` and `DateTime` columns: checked exactly (a real
//! calendar date, at most `p` fraction digits, within the type's range) and written in a
//! form ClickHouse reads without a time zone guess: UTC with a `Z` when the text has an
//! offset.

/// A parsed date and time.
pub(crate) struct DateTime<'a> {
    date: (i64, u32, u32),
    time: (u32, u32, u32),
    /// Fraction digits without trailing zeros.
    frac: &'a [u8],
    /// Offset east of UTC in seconds, when the text has one.
    offset: Option<i64>,
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = s.get(at..at + n)?;
    d.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds since the epoch of the earliest and latest instants of the type.
fn range(precision: u8, wide: bool) -> (i64, i64) {
    if !wide {
        // DateTime: 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC.
        return (0, u32::MAX as i64);
    }
    let min = days_from_civil(1900, 1, 1) * 86_400;
    let max = if precision >= 9 {
        // Nanoseconds in an Int64: up to 2262-04-11 23:47:16.
        i64::MAX / 1_000_000_000
    } else {
        days_from_civil(2299, 12, 31) * 86_400 + 86_399
    };
    (min, max)
}

/// Reads `s`; `None` when it is not such a date, has more than `precision` fraction
/// digits, or is outside the type's range.
pub(crate) fn parse(s: &[u8], precision: u8, wide: bool) -> Option<DateTime<'_>> {
    let y = i64::from(digits(s, 0, 4)?);
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return None;
    }
    let (m, d) = (digits(s, 5, 2)?, digits(s, 8, 2)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let mut dt = DateTime {
        date: (y, m, d),
        time: (0, 0, 0),
        frac: &[],
        offset: None,
    };
    let mut i = 10;
    if i < s.len() {
        if !matches!(s[i], b'T' | b' ') || s.get(i + 3) != Some(&b':') {
            return None;
        }
        let (h, mi) = (digits(s, i + 1, 2)?, digits(s, i + 4, 2)?);
        if s.get(i + 6) != Some(&b':') {
            return None;
        }
        let sec = digits(s, i + 7, 2)?;
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        dt.time = (h, mi, sec);
        i += 9;
        if s.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while s.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start {
                return None;
            }
            let mut frac = &s[start..end];
            while let [rest @ .., b'0'] = frac {
                frac = rest;
            }
            dt.frac = frac;
            i = end;
        }
        match s.get(i) {
            None => {}
            Some(b'Z') if i + 1 == s.len() => dt.offset = Some(0),
            Some(&sign @ (b'+' | b'-')) => {
                let oh = digits(s, i + 1, 2)?;
                let om = match s.len() - i {
                    3 => 0,
                    5 => digits(s, i + 3, 2)?,
                    6 if s[i + 3] == b':' => digits(s, i + 4, 2)?,
                    _ => return None,
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let off = i64::from(oh * 3600 + om * 60);
                dt.offset = Some(if sign == b'-' { -off } else { off });
            }
            Some(_) => return None,
        }
    }
    if dt.frac.len() > usize::from(precision) {
        return None;
    }
    let (min, max) = range(precision, wide);
    let local = days_from_civil(y, m, d) * 86_400
        + i64::from(dt.time.0 * 3600 + dt.time.1 * 60 + dt.time.2);
    match dt.offset {
        Some(off) => {
            let utc = local - off;
            if utc < min || utc > max {
                return None;
            }
        }
        // Read in the column's time zone: keep a day's margin at both ends.
        None => {
            if local < min + 86_400 || local > max - 86_400 {
                return None;
            }
        }
    }
    Some(dt)
}

impl DateTime<'_> {
    /// Writes a JSON string ClickHouse reads exactly: with an offset, the instant in UTC
    /// (`"2024-01-02T03:04:05.123Z"`); without one, `"YYYY-MM-DD hh:mm:ss[.f]"`, read in
    /// the column's time zone. (Seconds since the epoch are read right only with 9 or 10
    /// digits, so they are not used.)
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let (y, m, d) = self.date;
        let (h, mi, s) = self.time;
        out.push(b'"');
        match self.offset {
            Some(off) => {
                let utc =
                    days_from_civil(y, m, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - off;
                let (y, m, d) = civil_from_days(utc.div_euclid(86_400));
                let t = utc.rem_euclid(86_400);
                let _ = write!(
                    out,
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                    t / 3600,
                    t / 60 % 60,
                    t % 60
                );
                self.write_frac(out);
                out.push(b'Z');
            }
            None => {
                let _ = write!(out, "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
                self.write_frac(out);
            }
        }
        out.push(b'"');
    }

    fn write_frac(&self, out: &mut Vec<u8>) {
        if !self.frac.is_empty() {
            out.push(b'.');
            out.extend_from_slice(self.frac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str, p: u8) -> Option<String> {
        let dt = parse(s.as_bytes(), p, true)?;
        let mut v = Vec::new();
        dt.write(&mut v);
        Some(String::from_utf8(v).unwrap())
    }

    #[test]
    fn conversions() {
        assert_eq!(
            conv("2024-01-02T03:04:05.123Z", 3).as_deref(),
            Some("\"2024-01-02T03:04:05.123Z\"")
        );
        assert_eq!(
            conv("2024-01-02T12:04:05.1230+09:00", 3).as_deref(),
            Some("\"2024-01-02T03:04:05.123Z\"")
        );
        assert_eq!(
            conv("2024-01-02 03:04:05", 0).as_deref(),
            Some("\"2024-01-02 03:04:05\"")
        );
        assert_eq!(
            conv("2024-01-02", 0).as_deref(),
            Some("\"2024-01-02 00:00:00\"")
        );
        assert_eq!(
            conv("1969-12-31T23:59:59.5Z", 1).as_deref(),
            Some("\"1969-12-31T23:59:59.5Z\"")
        );
        assert_eq!(conv("2024-01-02T03:04:05.123Z", 2), None);
        assert_eq!(conv("2023-02-29T00:00:00Z", 0), None);
        assert!(conv("2024-02-29T00:00:00Z", 0).is_some());
        assert_eq!(conv("2024-01-02T24:00:00Z", 0), None);
        assert_eq!(conv("1899-12-31T23:59:59Z", 0), None);
        assert_eq!(conv("2300-01-01T00:00:00Z", 0), None);
        assert!(conv("2024-01-02T03:04:05+0900", 0).is_some());
        assert_eq!(conv("2024-01-02T03:04", 0), None);
        assert_eq!(conv("not a date", 3), None);
        assert!(parse(b"1969-12-31T23:59:59Z", 0, false).is_none());
        assert!(parse(b"2106-02-07T06:28:15Z", 0, false).is_some());
        assert!(parse(b"2106-02-07T06:28:16Z", 0, false).is_none());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-80_000i64, -1, 0, 1, 19_724, 120_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
