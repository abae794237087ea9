//! Per-type coercion plans: `Transform::new` turns each target column's ClickHouse
//! [`DataType`] into a [`Plan`] once, and every record value then goes through
//! [`Plan::coerce`] on its way into the JSONEachRow row. The output is what ClickHouse 18.16's
//! JSONEachRow reader accepts (and every later version too): JSON numbers for integers up to
//! 64 bits and finite floats, strings for wider integers, decimals, non-finite floats, dates and
//! the rest. Errors are the reason only ("300 is out of range 0..=255"); the caller adds which
//! column it was.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Number, Value};

use super::number::{cmp_digits, parse_decimal};
use super::time::{self, Instant, SECS_PER_DAY};
use super::{show, show_str};
use crate::warehouse::types::DataType;

/// How to produce values of one type. `nullable` records a `Nullable(...)` wrapper;
/// `LowCardinality` is dropped because it changes storage, not the text a value is read from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub nullable: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// Int8..Int64 and UInt8..UInt64: one range check in `i128` covers them all.
    Int {
        min: i128,
        max: i128,
    },
    /// 128- and 256-bit integers, written as decimal strings since JSON numbers stop at 64.
    Wide {
        signed: bool,
        bits: u16,
    },
    Float {
        single: bool,
    },
    Bool,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    FixedString(usize),
    Uuid,
    /// Date or Date32 with its range in days since 1970-01-01.
    Date {
        wide: bool,
        min: i64,
        max: i64,
    },
    /// `unix`: write Unix seconds (an unquoted JSON integer, read as Unix time by every
    /// DateTime since 18.x) rather than text, which ClickHouse reads in the column's or, for a
    /// plain `DateTime`, the *server's* time zone: Aurora cannot know that one is UTC.
    DateTime {
        unix: bool,
    },
    /// Range in whole seconds: the type's calendar range narrowed to what fits 64-bit ticks.
    DateTime64 {
        precision: u8,
        min: i64,
        max: i64,
    },
    Enum(Vec<(String, i16)>),
    Ipv4,
    Ipv6,
    Array(Box<Plan>),
    Map(Box<Plan>, Box<Plan>),
    Tuple(Vec<(Option<String>, Plan)>),
}

/// A type the transform cannot produce: the offending (possibly nested) type and why.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unsupported {
    pub ty: String,
    pub why: Option<String>,
}

/// DateTime's range: an unsigned 32-bit count of seconds.
const DATE_TIME_MAX: i64 = u32::MAX as i64;

impl Plan {
    pub fn new(ty: &DataType) -> Result<Plan, Unsupported> {
        let mut nullable = false;
        let mut current = ty;
        while let DataType::Nullable(inner) | DataType::LowCardinality(inner) = current {
            nullable |= matches!(current, DataType::Nullable(_));
            current = inner;
        }
        let unsupported = |why: Option<String>| Unsupported {
            ty: current.to_string(),
            why,
        };
        let int = |min: i128, max: i128| Kind::Int { min, max };
        let kind = match current {
            DataType::Int8 => int(i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => int(i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => int(i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => int(i64::MIN.into(), i64::MAX.into()),
            DataType::UInt8 => int(0, u8::MAX.into()),
            DataType::UInt16 => int(0, u16::MAX.into()),
            DataType::UInt32 => int(0, u32::MAX.into()),
            DataType::UInt64 => int(0, u64::MAX.into()),
            DataType::Int128 => Kind::Wide {
                signed: true,
                bits: 128,
            },
            DataType::Int256 => Kind::Wide {
                signed: true,
                bits: 256,
            },
            DataType::UInt128 => Kind::Wide {
                signed: false,
                bits: 128,
            },
            DataType::UInt256 => Kind::Wide {
                signed: false,
                bits: 256,
            },
            DataType::Float32 => Kind::Float { single: true },
            DataType::Float64 => Kind::Float { single: false },
            DataType::Bool => Kind::Bool,
            DataType::Decimal { precision, scale } => Kind::Decimal {
                precision: *precision,
                scale: *scale,
            },
            DataType::String => Kind::String,
            DataType::FixedString(n) => Kind::FixedString(*n),
            DataType::Uuid => Kind::Uuid,
            DataType::Date => Kind::Date {
                wide: false,
                min: 0,
                max: i64::from(u16::MAX),
            },
            DataType::Date32 => Kind::Date {
                wide: true,
                min: time::days_from_civil(1900, 1, 1),
                max: time::days_from_civil(2299, 12, 31),
            },
            DataType::DateTime(_) => Kind::DateTime { unix: true },
            DataType::DateTime64 {
                precision,
                timezone,
            } => {
                if let Some(tz) = timezone.as_deref().filter(|tz| !is_utc(tz)) {
                    // The text form would be read in that zone, and the unquoted-number form
                    // means different things across server versions (ticks, then seconds).
                    return Err(unsupported(Some(format!(
                        "it is written as UTC text, which this column would read as {tz} time; \
                         use a UTC DateTime64 column"
                    ))));
                }
                let ticks_per_sec = 10i64.pow(u32::from((*precision).min(9)));
                let calendar_min = time::days_from_civil(1900, 1, 1) * SECS_PER_DAY;
                let calendar_max = time::days_from_civil(2299, 12, 31) * SECS_PER_DAY + 86_399;
                Kind::DateTime64 {
                    precision: *precision,
                    min: calendar_min.max(i64::MIN / ticks_per_sec + 1),
                    max: calendar_max.min(i64::MAX / ticks_per_sec - 1),
                }
            }
            DataType::Enum8(pairs) => Kind::Enum(
                pairs
                    .iter()
                    .map(|(name, v)| (name.clone(), i16::from(*v)))
                    .collect(),
            ),
            DataType::Enum16(pairs) => Kind::Enum(pairs.clone()),
            DataType::Ipv4 => Kind::Ipv4,
            DataType::Ipv6 => Kind::Ipv6,
            DataType::Array(inner) => Kind::Array(Box::new(Plan::new(inner)?)),
            DataType::Map(key, value) => {
                Kind::Map(Box::new(Plan::new(key)?), Box::new(Plan::new(value)?))
            }
            DataType::Tuple(elements) => {
                let mut plans = Vec::with_capacity(elements.len());
                for (name, ty) in elements {
                    plans.push((name.clone(), Plan::new(ty)?));
                }
                Kind::Tuple(plans)
            }
            DataType::Nothing
            | DataType::AggregateFunction(_)
            | DataType::Other(_)
            | DataType::Nullable(_)
            | DataType::LowCardinality(_) => return Err(unsupported(None)),
        };
        Ok(Plan { nullable, kind })
    }

    /// Whether `v` is already exactly what this type is written as, so it can go into the row
    /// unchanged: the common cases of the ingestion hot path (text for text, integers in
    /// range, finite floats, booleans). Anything else goes through [`Plan::coerce`].
    pub fn takes_as_is(&self, v: &Value) -> bool {
        match (&self.kind, v) {
            (Kind::String, Value::String(_)) => true,
            (Kind::Int { min, max }, Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => (*min..=*max).contains(&i128::from(u)),
                (_, Some(i)) => (*min..=*max).contains(&i128::from(i)),
                _ => false,
            },
            (Kind::Bool, Value::Bool(_)) => true,
            _ => false,
        }
    }

    /// Coerces one value (already past `convert`). Null is accepted only for `Nullable` types;
    /// at the top of a column the caller handles null before getting here.
    pub fn coerce(&self, v: &Value) -> Result<Value, String> {
        if v.is_null() {
            return if self.nullable {
                Ok(Value::Null)
            } else {
                Err("null where the type is not Nullable".into())
            };
        }
        match &self.kind {
            Kind::Int { min, max } => int(v, *min, *max),
            Kind::Wide { signed, bits } => wide(v, *signed, *bits),
            Kind::Float { single } => float(v, *single),
            Kind::Bool => boolean(v),
            Kind::Decimal { precision, scale } => decimal(v, *precision, *scale),
            Kind::String => match v {
                Value::String(_) => Ok(v.clone()),
                _ => scalar_text(v).map(Value::String),
            },
            Kind::FixedString(n) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    _ => scalar_text(v)?,
                };
                fixed(text, *n)
            }
            Kind::Uuid => uuid(v),
            Kind::Date { wide, min, max } => {
                let days = parse_temporal(v, "a date (use YYYY-MM-DD)")?.days();
                date(days, *wide, *min, *max, || show(v))
            }
            Kind::DateTime { unix } => {
                let t = instant(v)?;
                date_time(t, *unix, || show(v))
            }
            Kind::DateTime64 {
                precision,
                min,
                max,
            } => {
                let t = instant(v)?;
                date_time64(t, *precision, *min, *max, || show(v))
            }
            Kind::Enum(pairs) => enumeration(v, pairs),
            Kind::Ipv4 => ip(v, false),
            Kind::Ipv6 => ip(v, true),
            Kind::Array(inner) => match v {
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        out.push(
                            inner
                                .coerce(item)
                                .map_err(|e| format!("element {i}: {e}"))?,
                        );
                    }
                    Ok(Value::Array(out))
                }
                _ => Err(format!("{} is not an array", show(v))),
            },
            Kind::Map(key, value) => map(v, key, value),
            Kind::Tuple(elements) => tuple(v, elements),
        }
    }

    /// Like [`Plan::coerce`] for a value the caller owns: a string going into a `String`
    /// column is moved rather than copied (the common case after `lower`/`upper`/`json`).
    pub fn coerce_owned(&self, v: Value) -> Result<Value, String> {
        match (&self.kind, v) {
            (Kind::String, v @ Value::String(_)) => Ok(v),
            (Kind::FixedString(n), Value::String(s)) => fixed(s, *n),
            (_, v) => self.coerce(&v),
        }
    }

    /// Coerces a point in time made by `convert: unix_seconds` / `unix_millis`. `new` only
    /// lets those conversions feed date, date-time and text columns.
    pub fn coerce_instant(&self, t: Instant) -> Result<Value, String> {
        let shown = || format!("`{}`", time::date_time_text(t));
        match &self.kind {
            Kind::Date { wide, min, max } => date(t.days(), *wide, *min, *max, shown),
            Kind::DateTime { unix } => date_time(t, *unix, shown),
            Kind::DateTime64 {
                precision,
                min,
                max,
            } => date_time64(t, *precision, *min, *max, shown),
            Kind::String => Ok(Value::String(time::date_time_text(t))),
            Kind::FixedString(n) => fixed(time::date_time_text(t), *n),
            _ => Err(format!("{} cannot go into this type", shown())),
        }
    }
}

/// Zone names that are UTC under another name; date-time text in them needs no shifting.
fn is_utc(tz: &str) -> bool {
    matches!(
        tz.strip_prefix("Etc/").unwrap_or(tz),
        "UTC" | "UCT" | "GMT" | "GMT0" | "GMT+0" | "GMT-0" | "Universal" | "Zulu" | "Greenwich"
    )
}

fn int_value(n: i128) -> Value {
    // The range check has run, so `n` fits u64 when non-negative and i64 otherwise.
    if n >= 0 {
        Value::from(n as u64)
    } else {
        Value::from(n as i64)
    }
}

fn int(v: &Value, min: i128, max: i128) -> Result<Value, String> {
    let n = match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => i128::from(u),
            (_, Some(i)) => i128::from(i),
            _ => int_text(&n.to_string(), v)?,
        },
        Value::String(s) => int_text(s.trim(), v)?,
        Value::Bool(b) => i128::from(*b),
        _ => return Err(format!("{} is not an integer", show(v))),
    };
    if n < min || n > max {
        return Err(format!("{} is out of range {min}..={max}", show(v)));
    }
    Ok(int_value(n))
}

/// An integer written as text (or a float's text); values beyond `i128` saturate, which is
/// out of range for every type this serves.
fn int_text(text: &str, v: &Value) -> Result<i128, String> {
    let d = parse_decimal(text).ok_or_else(|| format!("{} is not an integer", show(v)))?;
    if !d.is_integral() {
        return Err(format!("{} is not a whole number", show(v)));
    }
    let magnitude = if d.int.len() > 38 {
        i128::MAX
    } else {
        d.int.parse::<i128>().unwrap_or(0)
    };
    Ok(if d.negative { -magnitude } else { magnitude })
}

fn wide(v: &Value, signed: bool, bits: u16) -> Result<Value, String> {
    let owned;
    let text = match v {
        Value::Number(n) => {
            owned = n.to_string();
            owned.as_str()
        }
        Value::String(s) => s.trim(),
        Value::Bool(b) => {
            if *b {
                "1"
            } else {
                "0"
            }
        }
        _ => return Err(format!("{} is not an integer", show(v))),
    };
    let d = parse_decimal(text).ok_or_else(|| format!("{} is not an integer", show(v)))?;
    if !d.is_integral() {
        return Err(format!("{} is not a whole number", show(v)));
    }
    let limit = match (signed, bits, d.negative) {
        (false, _, true) => "",
        (false, 128, false) => "340282366920938463463374607431768211455",
        (true, 128, false) => "170141183460469231731687303715884105727",
        (true, 128, true) => "170141183460469231731687303715884105728",
        (false, _, false) => {
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        }
        (true, _, false) => {
            "57896044618658097711785492504343953926634992332820282019728792003956564819967"
        }
        (true, _, true) => {
            "57896044618658097711785492504343953926634992332820282019728792003956564819968"
        }
    };
    if cmp_digits(&d.int, limit).is_gt() {
        let name = if signed { "Int" } else { "UInt" };
        return Err(format!("{} is out of range for {name}{bits}", show(v)));
    }
    // A bare JSON number with exactly these digits (serde_json's arbitrary_precision keeps the
    // text): 18.16 refuses a quoted Decimal in JSONEachRow.
    let text = d.to_text();
    serde_json::from_str::<serde_json::Number>(&text)
        .map(Value::Number)
        .map_err(|_| format!("{} is not a number", show(v)))
}

/// `nan`, `inf`, `-inf` and their spellings, in the form ClickHouse reads; JSON itself has no
/// such numbers, so they travel as strings.
pub(super) fn special_float(text: &str) -> Option<&'static str> {
    let unsigned = text.trim_start_matches(['+', '-']);
    let negative = text.starts_with('-');
    if text.len() - unsigned.len() > 1 {
        return None;
    }
    if unsigned.eq_ignore_ascii_case("nan") {
        Some("nan")
    } else if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        Some(if negative { "-inf" } else { "inf" })
    } else {
        None
    }
}

fn float(v: &Value, single: bool) -> Result<Value, String> {
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let text = s.trim();
            if let Some(special) = special_float(text) {
                return Ok(Value::String(special.into()));
            }
            if parse_decimal(text).is_none() {
                return Err(format!("{} is not a number", show(v)));
            }
            text.parse::<f64>().unwrap_or(f64::NAN)
        }
        _ => return Err(format!("{} is not a number", show(v))),
    };
    if !x.is_finite() || (single && x.abs() > f64::from(f32::MAX)) {
        let name = if single { "Float32" } else { "Float64" };
        return Err(format!("{} is out of range for {name}", show(v)));
    }
    match v {
        // Keep the number exactly as it came (an integer stays an integer).
        Value::Number(_) => Ok(v.clone()),
        _ => Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| format!("{} is not a number", show(v))),
    }
}

fn boolean(v: &Value) -> Result<Value, String> {
    let b = match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        Value::String(s) => {
            let t = s.trim();
            if t == "1" || t.eq_ignore_ascii_case("true") {
                Some(true)
            } else if t == "0" || t.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    };
    b.map(Value::Bool)
        .ok_or_else(|| format!("{} is not a boolean (use true/false or 1/0)", show(v)))
}

fn decimal(v: &Value, precision: u8, scale: u8) -> Result<Value, String> {
    let text =
        super::number::numeric_text(v).ok_or_else(|| format!("{} is not a number", show(v)))?;
    let d = checked_decimal(v, &text, precision, scale)?;
    // A bare JSON number with exactly these digits (serde_json's arbitrary_precision keeps the
    // text): 18.16 refuses a quoted Decimal in JSONEachRow.
    let text = d.to_text();
    serde_json::from_str::<serde_json::Number>(&text)
        .map(Value::Number)
        .map_err(|_| format!("{} is not a number", show(v)))
}

/// `text` (the numeric text of `v`) read as a value of Decimal(precision, scale), or why it
/// cannot be one.
pub(super) fn checked_decimal<'t>(
    v: &Value,
    text: &'t str,
    precision: u8,
    scale: u8,
) -> Result<super::number::Decimal<'t>, String> {
    let d = parse_decimal(text).ok_or_else(|| format!("{} is not a number", show(v)))?;
    if d.frac.len() > usize::from(scale) {
        // Rounding would change the value silently; money is the usual Decimal.
        return Err(format!(
            "{} has {} decimal places, more than the scale {scale} (Aurora does not round)",
            show(v),
            d.frac.len()
        ));
    }
    let int_digits = usize::from(precision - scale);
    if d.int.len() > int_digits {
        return Err(format!(
            "{} has {} integer digits, more than the {int_digits} that Decimal({precision}, \
             {scale}) holds",
            show(v),
            d.int.len()
        ));
    }
    Ok(d)
}

/// The text of a scalar for text columns; objects and arrays need an explicit `convert: json`
/// so that storing JSON text is a choice, not an accident.
fn scalar_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Object(_) => Err(format!(
            "{} is an object; add `convert: json` to store its JSON text",
            show(v)
        )),
        Value::Array(_) => Err(format!(
            "{} is an array; add `convert: json` to store its JSON text",
            show(v)
        )),
        Value::Null => Err("null where the type is not Nullable".into()),
    }
}

/// FixedString(N) holds up to N bytes (ClickHouse pads shorter values with zero bytes).
fn fixed(text: String, n: usize) -> Result<Value, String> {
    if text.len() > n {
        let len = text.len();
        return Err(format!(
            "{} is {len} bytes, longer than FixedString({n})",
            show_str(&text)
        ));
    }
    Ok(Value::String(text))
}

fn uuid(v: &Value) -> Result<Value, String> {
    if let Value::String(s) = v {
        let t = s.trim();
        let b = t.as_bytes();
        let ok = b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        if ok {
            return Ok(if t.len() == s.len() {
                v.clone()
            } else {
                Value::String(t.to_string())
            });
        }
    }
    Err(format!(
        "{} is not a UUID (use xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        show(v)
    ))
}

fn parse_temporal(v: &Value, expected: &str) -> Result<time::Parsed, String> {
    if let Value::String(s) = v {
        if let Some(p) = time::parse(s.trim()) {
            return Ok(p);
        }
    }
    Err(format!("{} is not {expected}", show(v)))
}

/// A date-time from text or from an integer number of Unix seconds.
fn instant(v: &Value) -> Result<Instant, String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Some(p) = time::parse(t) {
                return Ok(p.instant());
            }
            let digits = !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
            let hint = if digits {
                ", or add `convert: unix_seconds` for Unix time"
            } else {
                ""
            };
            Err(format!(
                "{} is not a date-time (use YYYY-MM-DD hh:mm:ss or ISO 8601{hint})",
                show(v)
            ))
        }
        Value::Number(n) => match n.as_i64() {
            Some(secs) => Ok(Instant { secs, nanos: 0 }),
            None if n.is_u64() => Ok(Instant {
                secs: i64::MAX,
                nanos: 0,
            }),
            None => Err(format!(
                "{} is not a whole number of seconds (add `convert: unix_seconds` for \
                 fractional Unix time)",
                show(v)
            )),
        },
        _ => Err(format!(
            "{} is not a date-time (use YYYY-MM-DD hh:mm:ss or ISO 8601)",
            show(v)
        )),
    }
}

fn date(
    days: i64,
    wide: bool,
    min: i64,
    max: i64,
    shown: impl FnOnce() -> String,
) -> Result<Value, String> {
    if days < min || days > max {
        let name = if wide { "Date32" } else { "Date" };
        return Err(format!(
            "{} is outside the {name} range {}..={}",
            shown(),
            time::date_text(min),
            time::date_text(max)
        ));
    }
    let mut out = String::with_capacity(10);
    time::push_date(&mut out, days);
    Ok(Value::String(out))
}

fn date_time(t: Instant, unix: bool, shown: impl FnOnce() -> String) -> Result<Value, String> {
    if t.secs < 0 || t.secs > DATE_TIME_MAX {
        return Err(format!(
            "{} is outside the DateTime range 1970-01-01 00:00:00..=2106-02-07 06:28:15",
            shown()
        ));
    }
    if unix {
        return Ok(Value::from(t.secs));
    }
    let mut out = String::with_capacity(19);
    time::push_date_time(&mut out, t, 0);
    Ok(Value::String(out))
}

fn date_time64(
    t: Instant,
    precision: u8,
    min: i64,
    max: i64,
    shown: impl FnOnce() -> String,
) -> Result<Value, String> {
    if t.secs < min || t.secs > max {
        let bound = |secs| time::date_time_text(Instant { secs, nanos: 0 });
        return Err(format!(
            "{} is outside the DateTime64({precision}) range {}..={}",
            shown(),
            bound(min),
            bound(max)
        ));
    }
    let mut out = String::with_capacity(30);
    time::push_date_time(&mut out, t, precision);
    Ok(Value::String(out))
}

fn enumeration(v: &Value, pairs: &[(String, i16)]) -> Result<Value, String> {
    let by_number = |n: i64| {
        pairs
            .iter()
            .find(|(_, value)| i64::from(*value) == n)
            .map(|(name, _)| Value::String(name.clone()))
    };
    let found = match v {
        Value::String(s) => {
            if pairs.iter().any(|(name, _)| name == s) {
                Some(v.clone())
            } else {
                s.trim().parse::<i64>().ok().and_then(by_number)
            }
        }
        Value::Number(n) => n.as_i64().and_then(by_number),
        _ => None,
    };
    found.ok_or_else(|| {
        const SHOWN: usize = 8;
        let mut names: Vec<&str> = pairs.iter().take(SHOWN).map(|(n, _)| n.as_str()).collect();
        if pairs.len() > SHOWN {
            names.push("...");
        }
        format!(
            "{} is not one of the enum's names: {}",
            show(v),
            names.join(", ")
        )
    })
}

fn ip(v: &Value, six: bool) -> Result<Value, String> {
    if let Value::String(s) = v {
        let t = s.trim();
        if six {
            if let Ok(a) = t.parse::<Ipv6Addr>() {
                return Ok(Value::String(a.to_string()));
            }
            // IPv4 text into IPv6 means the IPv4-mapped address, as ClickHouse converts it.
            if let Ok(a) = t.parse::<Ipv4Addr>() {
                return Ok(Value::String(a.to_ipv6_mapped().to_string()));
            }
        } else if let Ok(a) = t.parse::<Ipv4Addr>() {
            return Ok(Value::String(a.to_string()));
        }
    }
    let name = if six { "an IPv6" } else { "an IPv4" };
    Err(format!("{} is not {name} address", show(v)))
}

fn map(v: &Value, key: &Plan, value: &Plan) -> Result<Value, String> {
    let Value::Object(entries) = v else {
        return Err(format!("{} is not an object", show(v)));
    };
    let mut out = serde_json::Map::new();
    for (k, item) in entries {
        // JSON keys are strings; ClickHouse reads a Map's keys from their text, so a coerced
        // number key goes back to text.
        let k_out = if key.kind == Kind::String {
            k.clone()
        } else {
            match key.coerce(&Value::String(k.clone())) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => return Err(format!("key {}: {e}", show(&Value::String(k.clone())))),
            }
        };
        let item = value
            .coerce(item)
            .map_err(|e| format!("value of {}: {e}", show(&Value::String(k.clone()))))?;
        out.insert(k_out, item);
    }
    Ok(Value::Object(out))
}

fn tuple(v: &Value, elements: &[(Option<String>, Plan)]) -> Result<Value, String> {
    let mut out = Vec::with_capacity(elements.len());
    match v {
        Value::Array(items) if items.len() == elements.len() => {
            for (i, (item, (_, plan))) in items.iter().zip(elements).enumerate() {
                out.push(plan.coerce(item).map_err(|e| format!("element {i}: {e}"))?);
            }
        }
        Value::Array(items) => {
            return Err(format!(
                "{} has {} elements; the tuple has {}",
                show(v),
                items.len(),
                elements.len()
            ))
        }
        // A named tuple may come as an object; it is written as an array, the form every
        // server version reads.
        Value::Object(fields) if elements.iter().all(|(name, _)| name.is_some()) => {
            for (name, plan) in elements {
                let name = name.as_deref().unwrap_or_default();
                let item = fields.get(name).unwrap_or(&Value::Null);
                out.push(plan.coerce(item).map_err(|e| format!("`{name}`: {e}"))?);
            }
        }
        _ => return Err(format!("{} is not an array", show(v))),
    }
    Ok(Value::Array(out))
}
