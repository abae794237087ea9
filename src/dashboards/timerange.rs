//! Grafana's time expressions: `now`, `now-15m`, `now-7d`, `now/d` (rounded down to the day),
//! `now-1d/d`, and absolute times (`2024-05-01T00:00:00Z`, `2024-05-01 12:00:00`,
//! `2024-05-01`, milliseconds since 1970), resolved to Unix seconds in UTC.

use jiff::{civil, tz::TimeZone, Timestamp};

/// Why a time expression cannot be read, and what it should look like.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{text}` is not a time: {why}")]
pub struct TimeError {
    pub text: String,
    pub why: String,
}

pub const TIME_HINT: &str =
    "write `now`, `now-1h`, `now-7d`, `now/d`, or an absolute time such as `2024-05-01T00:00:00Z`";

/// Unix seconds of `text` at the moment `now` (Unix seconds).
pub fn resolve(text: &str, now: i64) -> Result<i64, TimeError> {
    let t = text.trim();
    let err = |why: &str| TimeError {
        text: text.to_owned(),
        why: why.to_owned(),
    };
    if let Some(rest) = t.strip_prefix("now") {
        let (offset, round) = match rest.split_once('/') {
            Some((o, r)) => (o, Some(r)),
            None => (rest, None),
        };
        let mut at = now;
        if !offset.is_empty() {
            let (sign, amount) = match offset.as_bytes()[0] {
                b'-' => (-1, &offset[1..]),
                b'+' => (1, &offset[1..]),
                _ => return Err(err("after `now` comes `-`, `+` or `/`")),
            };
            at += sign
                * unit_seconds(amount)
                    .ok_or_else(|| err("the amount needs a unit: s, m, h, d, w, M or y"))?;
        }
        if let Some(unit) = round {
            let step =
                unit_seconds(&format!("1{unit}")).ok_or_else(|| err("round to s, m, h, d or w"))?;
            at = at.div_euclid(step) * step;
        }
        return Ok(at);
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map(|ms| ms / 1000)
            .map_err(|_| err("too large a number"));
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    let civil = t
        .parse::<civil::DateTime>()
        .or_else(|_| {
            t.parse::<civil::Date>()
                .map(|d| d.to_datetime(civil::Time::midnight()))
        })
        .map_err(|_| err("not `now…` and not a date"))?;
    civil
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .map_err(|e| err(&e.to_string()))
}

/// Seconds in `15m`, `2h`, `7d`; months are 30 days and years 365, as Grafana's relative
/// ranges only need them for spans.
fn unit_seconds(amount: &str) -> Option<i64> {
    let split = amount.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = amount.split_at(split);
    let n: i64 = if digits.is_empty() {
        1
    } else {
        digits.parse().ok()?
    };
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(per)
}

/// A duration as Grafana writes one: `30s`, `1m30s`, `1h`.
pub fn grafana_duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    Timestamp::now().as_second()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_times() {
        let now = 1_700_000_123;
        assert_eq!(resolve("now", now).unwrap(), now);
        assert_eq!(resolve("now-1h", now).unwrap(), now - 3600);
        assert_eq!(resolve("now-7d", now).unwrap(), now - 7 * 86_400);
        assert_eq!(resolve("now/d", now).unwrap(), 1_699_920_000);
        assert_eq!(resolve("now-1d/d", now).unwrap(), 1_699_833_600);
        assert_eq!(resolve("2023-11-14T22:13:20Z", now).unwrap(), 1_700_000_000);
        assert_eq!(resolve("2023-11-14 22:13:20", now).unwrap(), 1_700_000_000);
        assert_eq!(resolve("2023-11-14", now).unwrap(), 1_699_920_000);
        assert_eq!(resolve("1700000000000", now).unwrap(), 1_700_000_000);
        assert!(resolve("now-1x", now).is_err());
        assert!(resolve("yesterday", now).is_err());
    }
}
