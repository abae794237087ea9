//! ClickHouse's RowBinary, written from the values [`Plan::coerce`] produced (or took as they
//! came): the binary form every server since well before 18.16 reads for INSERT, so that
//! ClickHouse does not parse JSON text again. Types whose binary form Aurora does not write
//! (128/256-bit integers, Decimal256, Enum, Map, Tuple) keep the pipeline on JSONEachRow, as
//! does any column a row may leave out for the server to fill: RowBinary has no way to say
//! "missing" on 18.16.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::number::parse_decimal;
use super::plan::{Kind, Plan};
use super::show;
use super::time;

impl Plan {
    /// Whether every value of this type can be written as RowBinary.
    pub fn binary_ready(&self) -> bool {
        match &self.kind {
            Kind::Int { .. }
            | Kind::Float { .. }
            | Kind::Bool
            | Kind::String
            | Kind::FixedString(_)
            | Kind::Uuid
            | Kind::Date { .. }
            | Kind::DateTime { unix: true }
            | Kind::DateTime64 { .. }
            | Kind::Ipv4
            | Kind::Ipv6 => true,
            Kind::Decimal { precision, .. } => *precision <= 38,
            Kind::Array(inner) => inner.binary_ready(),
            Kind::DateTime { unix: false }
            | Kind::Wide { .. }
            | Kind::Enum(_)
            | Kind::Map(..)
            | Kind::Tuple(_) => false,
        }
    }

    /// Appends a CSV field's text in RowBinary when it is plainly a value of this type,
    /// producing exactly the bytes [`Plan::coerce`] then [`Plan::encode`] would; `false`
    /// (nothing written) leaves it to them, and to their error messages. This is the CSV
    /// source's hot path: no JSON value is made for the field.
    pub fn encode_text(&self, text: &str, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if self.nullable {
            out.push(0);
        }
        let written = match &self.kind {
            Kind::String => {
                push_varint(out, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
                true
            }
            Kind::Int { min, max } => integer(text.trim())
                .filter(|n| (*min..=*max).contains(n))
                .map(|n| out.extend_from_slice(&n.to_le_bytes()[..int_width(*max)]))
                .is_some(),
            Kind::Decimal { precision, scale } if *precision <= 38 => parse_decimal(text.trim())
                .filter(|d| d.int.len() <= usize::from(precision - scale))
                .and_then(|d| d.scaled(*scale))
                .map(|scaled| push_decimal(out, scaled, *precision))
                .is_some(),
            Kind::Float { single } => {
                let t = text.trim();
                let x = (super::plan::special_float(t).is_none() && parse_decimal(t).is_some())
                    .then(|| t.parse::<f64>().ok())
                    .flatten()
                    .filter(|x| x.is_finite() && !(*single && x.abs() > f64::from(f32::MAX)));
                match x {
                    Some(x) if *single => out.extend_from_slice(&(x as f32).to_le_bytes()),
                    Some(x) => out.extend_from_slice(&x.to_le_bytes()),
                    None => {}
                }
                x.is_some()
            }
            Kind::DateTime { unix: true } => time::parse(text.trim())
                .map(|p| p.instant().secs)
                .filter(|secs| (0..=i64::from(u32::MAX)).contains(secs))
                .map(|secs| out.extend_from_slice(&(secs as u32).to_le_bytes()))
                .is_some(),
            Kind::Date { wide, min, max } => time::parse(text.trim())
                .map(|p| p.days())
                .filter(|days| (*min..=*max).contains(days))
                .map(|days| {
                    if *wide {
                        out.extend_from_slice(&(days as i32).to_le_bytes());
                    } else {
                        out.extend_from_slice(&(days as u16).to_le_bytes());
                    }
                })
                .is_some(),
            _ => false,
        };
        if !written {
            out.truncate(start);
        }
        written
    }

    /// Appends a record's non-null value in RowBinary straight from the record, checked as
    /// [`Plan::coerce`] checks it, where that saves building the coerced JSON value first
    /// (decimals: their text would be parsed, printed and parsed again). `None` leaves the
    /// value to `coerce`, then [`Plan::encode`].
    pub fn encode_direct(&self, v: &Value, out: &mut Vec<u8>) -> Option<Result<(), String>> {
        let Kind::Decimal { precision, scale } = self.kind else {
            return None;
        };
        if precision > 38 {
            return None;
        }
        let text = super::number::numeric_text(v)?;
        Some(
            super::plan::checked_decimal(v, &text, precision, scale).and_then(|d| {
                let scaled = d.scaled(scale).ok_or_else(|| {
                    format!("{} does not fit Decimal({precision}, {scale})", show(v))
                })?;
                if self.nullable {
                    out.push(0);
                }
                push_decimal(out, scaled, precision);
                Ok(())
            }),
        )
    }

    /// Appends `v`, a value this plan coerced or takes as it is, in RowBinary.
    pub fn encode(&self, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
        if self.nullable {
            if v.is_null() {
                out.push(1);
                return Ok(());
            }
            out.push(0);
        }
        let unexpected = || format!("{} cannot be written in RowBinary as this type", show(v));
        match (&self.kind, v) {
            (Kind::Int { max, .. }, Value::Number(n)) => {
                let wide = match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => i128::from(u),
                    (_, Some(i)) => i128::from(i),
                    _ => return Err(unexpected()),
                };
                // Two's complement, little-endian, cut to the type's width.
                out.extend_from_slice(&wide.to_le_bytes()[..int_width(*max)]);
            }
            (Kind::Int { max, .. }, Value::Bool(b)) => {
                out.extend_from_slice(&i128::from(*b).to_le_bytes()[..int_width(*max)]);
            }
            (Kind::Float { single }, _) => {
                let x = match v {
                    Value::Number(n) => n.as_f64().ok_or_else(unexpected)?,
                    Value::String(s) => match s.as_str() {
                        "nan" => f64::NAN,
                        "inf" => f64::INFINITY,
                        "-inf" => f64::NEG_INFINITY,
                        _ => return Err(unexpected()),
                    },
                    _ => return Err(unexpected()),
                };
                if *single {
                    out.extend_from_slice(&(x as f32).to_le_bytes());
                } else {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            (Kind::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
            (Kind::Decimal { precision, scale }, Value::Number(n)) => {
                let text = n.to_string();
                let scaled = parse_decimal(&text)
                    .and_then(|d| d.scaled(*scale))
                    .ok_or_else(unexpected)?;
                push_decimal(out, scaled, *precision);
            }
            (Kind::String, Value::String(s)) => {
                push_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            (Kind::FixedString(n), Value::String(s)) if s.len() <= *n => {
                out.extend_from_slice(s.as_bytes());
                out.resize(out.len() + (n - s.len()), 0);
            }
            (Kind::Uuid, Value::String(s)) => {
                let hex: String = s.chars().filter(|c| *c != '-').collect();
                let n = u128::from_str_radix(&hex, 16).map_err(|_| unexpected())?;
                // Two little-endian halves, the high one first.
                out.extend_from_slice(&((n >> 64) as u64).to_le_bytes());
                out.extend_from_slice(&(n as u64).to_le_bytes());
            }
            (Kind::Date { wide, .. }, Value::String(s)) => {
                let days = time::parse(s).ok_or_else(unexpected)?.days();
                if *wide {
                    out.extend_from_slice(&(days as i32).to_le_bytes());
                } else {
                    out.extend_from_slice(&(days as u16).to_le_bytes());
                }
            }
            (Kind::DateTime { unix: true }, Value::Number(n)) => {
                let secs = n.as_u64().ok_or_else(unexpected)?;
                out.extend_from_slice(&(secs as u32).to_le_bytes());
            }
            (Kind::DateTime64 { precision, .. }, Value::String(s)) => {
                let t = time::parse(s).ok_or_else(unexpected)?.instant();
                let precision = u32::from((*precision).min(9));
                let ticks =
                    t.secs * 10i64.pow(precision) + i64::from(t.nanos) / 10i64.pow(9 - precision);
                out.extend_from_slice(&ticks.to_le_bytes());
            }
            (Kind::Ipv4, Value::String(s)) => {
                let a: Ipv4Addr = s.parse().map_err(|_| unexpected())?;
                out.extend_from_slice(&u32::from(a).to_le_bytes());
            }
            (Kind::Ipv6, Value::String(s)) => {
                let a: Ipv6Addr = s.parse().map_err(|_| unexpected())?;
                out.extend_from_slice(&a.octets());
            }
            (Kind::Array(inner), Value::Array(items)) => {
                push_varint(out, items.len() as u64);
                for item in items {
                    inner.encode(item, out)?;
                }
            }
            _ => return Err(unexpected()),
        }
        Ok(())
    }
}

/// Bytes of an integer type, from its largest value.
fn int_width(max: i128) -> usize {
    if max <= i128::from(u8::MAX) {
        1
    } else if max <= i128::from(u16::MAX) {
        2
    } else if max <= i128::from(u32::MAX) {
        4
    } else {
        8
    }
}

/// Whole-number text as the integer coercion reads it (`None` for anything else, including
/// magnitudes beyond 38 digits, which the coercion reports).
fn integer(text: &str) -> Option<i128> {
    let d = parse_decimal(text).filter(|d| d.is_integral() && d.int.len() <= 38)?;
    let magnitude = if d.int.is_empty() {
        0
    } else {
        d.int.parse::<i128>().ok()?
    };
    Some(if d.negative { -magnitude } else { magnitude })
}

/// A Decimal's scaled integer in the width its precision takes.
fn push_decimal(out: &mut Vec<u8>, scaled: i128, precision: u8) {
    let width = match precision {
        0..=9 => 4,
        10..=18 => 8,
        _ => 16,
    };
    out.extend_from_slice(&scaled.to_le_bytes()[..width]);
}

/// ClickHouse's variable-length unsigned integer (LEB128), for lengths.
pub(crate) fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::types::DataType;
    use serde_json::json;

    fn encoded(ty: &str, v: Value) -> Vec<u8> {
        let plan = Plan::new(&DataType::parse(ty).unwrap()).unwrap();
        assert!(plan.binary_ready(), "{ty}");
        let v = plan.coerce(&v).unwrap();
        let mut out = Vec::new();
        plan.encode(&v, &mut out).unwrap();
        out
    }

    #[test]
    fn values_in_the_layout_clickhouse_documents() {
        assert_eq!(encoded("UInt8", json!(255)), [255]);
        assert_eq!(encoded("Int16", json!(-2)), [0xfe, 0xff]);
        assert_eq!(encoded("UInt32", json!("7")), [7, 0, 0, 0]);
        assert_eq!(encoded("Int64", json!(-1)), [0xff; 8]);
        assert_eq!(encoded("Float32", json!(1.5)), 1.5f32.to_le_bytes());
        assert_eq!(
            encoded("Float64", json!("nan"))[..],
            f64::NAN.to_le_bytes()[..]
        );
        assert_eq!(encoded("String", json!("hé")), [3, b'h', 0xc3, 0xa9]);
        assert_eq!(encoded("FixedString(3)", json!("a")), [b'a', 0, 0]);
        assert_eq!(encoded("Nullable(String)", Value::Null), [1]);
        assert_eq!(encoded("Nullable(UInt8)", json!(2)), [0, 2]);
        assert_eq!(encoded("LowCardinality(String)", json!("x")), [1, b'x']);
        assert_eq!(encoded("Date", json!("1970-01-11")), [10, 0]);
        assert_eq!(
            encoded("DateTime", json!("1970-01-01 00:01:00")),
            [60, 0, 0, 0]
        );
        assert_eq!(
            encoded("DateTime64(3)", json!("1970-01-01 00:00:01.5")),
            1500i64.to_le_bytes()
        );
        assert_eq!(
            encoded("Decimal(10, 2)", json!("-1.5")),
            (-150i64).to_le_bytes()
        );
        assert_eq!(encoded("Decimal(9, 3)", json!(2)), 2000i32.to_le_bytes());
        assert_eq!(encoded("IPv4", json!("1.2.3.4")), [4, 3, 2, 1]);
        assert_eq!(encoded("Array(UInt16)", json!([1, 2])), [2, 1, 0, 2, 0]);
        let uuid = encoded("UUID", json!("00000000-0000-0001-0000-000000000002"));
        assert_eq!(uuid, [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        let mut long = Vec::new();
        push_varint(&mut long, 300);
        assert_eq!(long, [0xac, 0x02]);
    }

    #[test]
    fn types_without_a_binary_form_here_stay_on_json() {
        for ty in [
            "UInt128",
            "Enum8('a' = 1)",
            "Map(String, UInt8)",
            "Tuple(UInt8, String)",
            "Decimal(40, 2)",
        ] {
            let plan = Plan::new(&DataType::parse(ty).unwrap()).unwrap();
            assert!(!plan.binary_ready(), "{ty}");
        }
    }
}
