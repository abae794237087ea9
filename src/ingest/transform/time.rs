//! Calendar arithmetic and date-time text for the transform. Record values (ISO 8601 strings,
//! Unix times) come in through `coerce` and `convert`; what leaves is the text ClickHouse's
//! JSONEachRow reader accepts back to 18.16: `YYYY-MM-DD` and `YYYY-MM-DD hh:mm:ss[.f]`, in UTC.
//!
//! The proleptic Gregorian conversions are Howard Hinnant's `days_from_civil` /
//! `civil_from_days`, which are exact for every year an `i64` day count can reach, so no date
//! library is needed for the handful of operations a transform makes.

/// A point in time: whole seconds since 1970-01-01 00:00:00 UTC (negative before it) plus a
/// non-negative sub-second part, so that ordering and range checks are plain comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

pub(super) const SECS_PER_DAY: i64 = 86_400;

impl Instant {
    pub fn from_days(days: i64) -> Instant {
        Instant {
            secs: days * SECS_PER_DAY,
            nanos: 0,
        }
    }

    /// The UTC calendar day this instant falls on, as days since 1970-01-01.
    pub fn days(self) -> i64 {
        self.secs.div_euclid(SECS_PER_DAY)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. The caller has validated the month
/// and day, so this never sees impossible dates.
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both values are small and positive by construction (1..=31, 1..=12).
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// What a date-time string held: a bare date, or a full date-time already moved to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parsed {
    Date(i64),
    DateTime(Instant),
}

impl Parsed {
    pub fn instant(self) -> Instant {
        match self {
            Parsed::Date(days) => Instant::from_days(days),
            Parsed::DateTime(t) => t,
        }
    }

    pub fn days(self) -> i64 {
        match self {
            Parsed::Date(days) => days,
            Parsed::DateTime(t) => t.days(),
        }
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD hh:mm[:ss]` and ISO 8601 `YYYY-MM-DDThh:mm[:ss]`, each time
/// optionally with a fraction (`.` or `,`, any number of digits; beyond nanoseconds they are
/// dropped) and a zone (`Z`, `±hh:mm`, `±hhmm`, `±hh`). Times without a zone are UTC, which is
/// the convention of the whole pipeline. Returns `None` for anything else, including dates
/// that do not exist (`2023-02-29`) and leap seconds, which ClickHouse cannot store.
pub(super) fn parse(text: &str) -> Option<Parsed> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i64::from(digits(b, 0, 4)?);
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Some(Parsed::Date(days));
    }
    if !matches!(b[10], b' ' | b'T' | b't') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let mut i = 16;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        second = digits(b, i + 1, 2)?;
        i += 3;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut nanos = 0u32;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (h, m) = match rest.len() {
                2 => (digits(rest, 0, 2)?, 0),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = i64::from(h * 3600 + m * 60);
            if *sign == b'+' {
                seconds
            } else {
                -seconds
            }
        }
        Some(_) => return None,
    };
    let local = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second);
    Some(Parsed::DateTime(Instant {
        secs: local - offset,
        nanos,
    }))
}

/// `n` ASCII digits at `at` as a number; `None` if any is missing or not a digit.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at + n)?;
    let mut value = 0u32;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(c - b'0');
    }
    Some(value)
}

/// Appends `YYYY-MM-DD`. Callers range-check first, so the year has four digits.
pub(super) fn push_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    push_padded(out, year.clamp(0, 9999) as u32, 4);
    out.push('-');
    push_padded(out, month, 2);
    out.push('-');
    push_padded(out, day, 2);
}

/// Appends `YYYY-MM-DD hh:mm:ss` and then `fraction` digits of the sub-second part
/// (truncated, as ClickHouse itself truncates extra precision).
pub(super) fn push_date_time(out: &mut String, t: Instant, fraction: u8) {
    push_date(out, t.days());
    let of_day = t.secs.rem_euclid(SECS_PER_DAY) as u32;
    out.push(' ');
    push_padded(out, of_day / 3600, 2);
    out.push(':');
    push_padded(out, of_day / 60 % 60, 2);
    out.push(':');
    push_padded(out, of_day % 60, 2);
    if fraction > 0 {
        out.push('.');
        let fraction = u32::from(fraction.min(9));
        push_padded(out, t.nanos / 10u32.pow(9 - fraction), fraction as usize);
    }
}

/// A date-time as text with only as many fractional digits as it needs (none for whole
/// seconds), for columns that store the text rather than the time.
pub(super) fn date_time_text(t: Instant) -> String {
    let mut out = String::with_capacity(29);
    let mut fraction = 0;
    if t.nanos > 0 {
        fraction = 9;
        let mut nanos = t.nanos;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            fraction -= 1;
        }
    }
    push_date_time(&mut out, t, fraction);
    out
}

fn push_padded(out: &mut String, value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = value;
    let mut i = buf.len();
    while v > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = (buf.len() - width.min(buf.len())).min(i);
    for &c in &buf[start..] {
        out.push(char::from(c));
    }
}

/// The date of a day count, for messages.
pub(super) fn date_text(days: i64) -> String {
    let mut out = String::with_capacity(10);
    push_date(&mut out, days);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_over_a_wide_range() {
        for days in (-1_000_000..1_000_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(49_710), (2106, 2, 7));
    }

    #[test]
    fn parses_the_accepted_shapes() {
        let t = |s: &str| parse(s).map(|p| date_time_text(p.instant()));
        assert_eq!(parse("2024-02-29"), Some(Parsed::Date(19_782)));
        assert_eq!(
            t("2024-02-29 12:34:56").as_deref(),
            Some("2024-02-29 12:34:56")
        );
        assert_eq!(
            t("2024-02-29T12:34").as_deref(),
            Some("2024-02-29 12:34:00")
        );
        assert_eq!(
            t("2024-02-29T12:34:56.5Z").as_deref(),
            Some("2024-02-29 12:34:56.5")
        );
        assert_eq!(
            t("2024-02-29T12:34:56,123456789999+00:00").as_deref(),
            Some("2024-02-29 12:34:56.123456789")
        );
        assert_eq!(
            t("2024-03-01T01:00:00+02:00").as_deref(),
            Some("2024-02-29 23:00:00")
        );
        assert_eq!(
            t("2024-02-29T23:30:00-0130").as_deref(),
            Some("2024-03-01 01:00:00")
        );
        assert_eq!(
            t("1969-12-31T23:59:59-01").as_deref(),
            Some("1970-01-01 00:59:59")
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-1-01",
            "2024-01-01 24:00:00",
            "2024-01-01 23:60:00",
            "2024-01-01 23:59:60",
            "2024-01-01T10:00:00.",
            "2024-01-01T10:00:00+2",
            "2024-01-01T10:00:00 Z",
            "2024-01-01T10:00:00Zx",
            "2024-01-01X10:00:00",
            "20240101",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_fractions() {
        let t = Instant {
            secs: -1,
            nanos: 120_000_000,
        };
        assert_eq!(date_time_text(t), "1969-12-31 23:59:59.12");
        let mut out = String::new();
        push_date_time(&mut out, t, 3);
        assert_eq!(out, "1969-12-31 23:59:59.120");
        assert_eq!(date_text(0), "1970-01-01");
    }
}
