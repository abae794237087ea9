//! The built-in conversions a mapping can ask for (`convert:` on a column). They run on the
//! value found in the record (or on the column's `default`) before type coercion, and hand
//! their result to [`super::plan::Plan`]: a borrowed value when nothing changes, an owned one
//! otherwise, or a point in time for the Unix-time conversions, which coerce straight into
//! dates and date-times without a round trip through text.

use serde_json::{Number, Value};

use super::number::parse_decimal;
use super::plan::Kind;
use super::show;
use super::time::{self, Instant};
use crate::ingest::pipeline::Convert;

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Converted<'a> {
    Same(&'a Value),
    Owned(Value),
    Instant(Instant),
}

/// The `convert:` spelling, for messages.
pub(super) fn name(convert: Convert) -> &'static str {
    match convert {
        Convert::UnixSeconds => "unix_seconds",
        Convert::UnixMillis => "unix_millis",
        Convert::Number => "number",
        Convert::Lower => "lower",
        Convert::Upper => "upper",
        Convert::Json => "json",
    }
}

/// What a conversion makes, for the message when it cannot feed a column.
pub(super) fn makes(convert: Convert) -> &'static str {
    match convert {
        Convert::UnixSeconds | Convert::UnixMillis => "a date-time",
        Convert::Number => "a number",
        Convert::Lower | Convert::Upper => "text",
        Convert::Json => "JSON text",
    }
}

/// Whether a conversion's result can go into a column of this kind; checked once, when the
/// transform is built, so a mapping that could never work is refused before any record.
pub(super) fn feeds(convert: Convert, kind: &Kind) -> bool {
    match convert {
        // A date-time as text is 19 bytes before any fraction.
        Convert::UnixSeconds | Convert::UnixMillis => {
            matches!(
                kind,
                Kind::Date { .. } | Kind::DateTime { .. } | Kind::DateTime64 { .. } | Kind::String
            ) || matches!(kind, Kind::FixedString(n) if *n >= 19)
        }
        Convert::Number => matches!(
            kind,
            Kind::Int { .. }
                | Kind::Wide { .. }
                | Kind::Float { .. }
                | Kind::Decimal { .. }
                | Kind::Bool
                | Kind::String
                | Kind::FixedString(_)
                | Kind::DateTime { .. }
                | Kind::DateTime64 { .. }
                | Kind::Enum(_)
        ),
        Convert::Lower | Convert::Upper => {
            !matches!(kind, Kind::Array(_) | Kind::Map(..) | Kind::Tuple(_))
        }
        Convert::Json => matches!(kind, Kind::String | Kind::FixedString(_)),
    }
}

/// Runs one conversion on a non-null value.
pub(super) fn apply(convert: Convert, v: &Value) -> Result<Converted<'_>, String> {
    match convert {
        Convert::UnixSeconds => unix(v, false).map(Converted::Instant),
        Convert::UnixMillis => unix(v, true).map(Converted::Instant),
        Convert::Number => number(v),
        Convert::Lower => case(v, str::to_lowercase, char::is_uppercase),
        Convert::Upper => case(v, str::to_uppercase, char::is_lowercase),
        Convert::Json => Ok(Converted::Owned(Value::String(v.to_string()))),
    }
}

/// Unix time to a point in time. Integers take a fast path; fractions and text go through
/// exact decimal digits so that `1700000000.123` means exactly 123 ms.
fn unix(v: &Value, millis: bool) -> Result<Instant, String> {
    let unit = if millis { "milliseconds" } else { "seconds" };
    if let Value::Number(n) = v {
        if let Some(i) = n.as_i64() {
            let t = if millis {
                Instant {
                    secs: i.div_euclid(1000),
                    nanos: (i.rem_euclid(1000) as u32) * 1_000_000,
                }
            } else {
                Instant { secs: i, nanos: 0 }
            };
            return in_calendar(t, v);
        }
    }
    let text = super::number::numeric_text(v)
        .ok_or_else(|| format!("{} is not a Unix time in {unit}", show(v)))?;
    let text = text.as_ref();
    let d =
        parse_decimal(text).ok_or_else(|| format!("{} is not a Unix time in {unit}", show(v)))?;
    // Nanoseconds per unit, as a digit count: the fraction keeps that many digits (anything
    // finer than a nanosecond is dropped).
    let frac_digits = if millis { 6 } else { 9 };
    if d.int.len() > 20 {
        return Err(too_far(v));
    }
    let int = d.int.parse::<i128>().unwrap_or(0);
    let mut frac = 0i128;
    let digits = d.frac.as_bytes();
    for i in 0..frac_digits {
        frac = frac * 10 + digits.get(i).map_or(0, |c| i128::from(c - b'0'));
    }
    let mut total = int * 10i128.pow(frac_digits as u32) + frac;
    if d.negative {
        total = -total;
    }
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).map_err(|_| too_far(v))?;
    let nanos = total.rem_euclid(1_000_000_000) as u32;
    in_calendar(Instant { secs, nanos }, v)
}

/// Keeps instants within years 0000..=9999, which every date-time text has room for; the
/// column's own, narrower range is checked by the coercion that follows.
fn in_calendar(t: Instant, v: &Value) -> Result<Instant, String> {
    let min = time::days_from_civil(0, 1, 1) * time::SECS_PER_DAY;
    let max = time::days_from_civil(9999, 12, 31) * time::SECS_PER_DAY + 86_399;
    if t.secs < min || t.secs > max {
        return Err(too_far(v));
    }
    Ok(t)
}

fn too_far(v: &Value) -> String {
    format!(
        "{} is too far from 1970 to be a date-time (years 0000 to 9999)",
        show(v)
    )
}

/// Text to a number: an integer when it is one (kept as text beyond 64 bits, so that
/// 128/256-bit columns get every digit), otherwise a float. Numbers pass through unchanged.
fn number(v: &Value) -> Result<Converted<'_>, String> {
    let s = match v {
        Value::Number(_) => return Ok(Converted::Same(v)),
        Value::String(s) => s.trim(),
        _ => return Err(format!("{} is not a number", show(v))),
    };
    let d = parse_decimal(s).ok_or_else(|| format!("{} is not a number", show(v)))?;
    if d.is_integral() {
        let magnitude = if d.int.len() <= 20 {
            d.int.parse::<u64>().ok().or(d.int.is_empty().then_some(0))
        } else {
            None
        };
        let n = match (magnitude, d.negative) {
            (Some(m), false) => Some(Value::from(m)),
            (Some(m), true) => i64::try_from(m)
                .ok()
                .map(|m| Value::from(-m))
                .or_else(|| (m == 1 << 63).then_some(Value::from(i64::MIN))),
            (None, _) => None,
        };
        return Ok(Converted::Owned(
            n.unwrap_or_else(|| Value::String(d.to_text())),
        ));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(|n| Converted::Owned(Value::Number(n)))
        .ok_or_else(|| format!("{} is not a finite number", show(v)))
}

/// `lower` / `upper`: on text, and on the text of numbers and booleans; a string already in
/// the right case is passed through without a copy.
fn case(
    v: &Value,
    change: fn(&str) -> String,
    needs_change: fn(char) -> bool,
) -> Result<Converted<'_>, String> {
    match v {
        Value::String(s) if !s.chars().any(needs_change) => Ok(Converted::Same(v)),
        Value::String(s) => Ok(Converted::Owned(Value::String(change(s)))),
        Value::Number(n) => Ok(Converted::Owned(Value::String(change(&n.to_string())))),
        Value::Bool(b) => Ok(Converted::Owned(Value::String(change(&b.to_string())))),
        _ => Err(format!(
            "{} is not text (changing case works on text, numbers and booleans)",
            show(v)
        )),
    }
}
