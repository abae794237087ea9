//! Typed cell values decoded from the server's `JSONCompact` output, and their two renderings:
//! human text (ClickHouse-style, via `Display`) and exact JSON (`Value::write_json`).
//!
//! Exactness is the point: cells are split with `serde_json::value::RawValue` so integers of
//! any width and decimals keep every digit of the text the server sent, and never pass
//! through `f64`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::types::{write_quoted, DataType};

/// One cell of a result. Text and lists are boxed slices (`Box<str>`, `Box<[T]>`) and 128-bit
/// integers boxed, so a value is 24 bytes rather than 32: a large result holds millions.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// `Int8`..`Int64`.
    Int(i64),
    /// `UInt8`..`UInt64`.
    UInt(u64),
    Int128(Box<i128>),
    UInt128(Box<u128>),
    /// `Int256`/`UInt256` as exact decimal text (optional `-`, digits).
    BigInt(Box<str>),
    Float(f64),
    /// Exact decimal text as the server sent it, e.g. `2.50`.
    Decimal(Box<str>),
    String(Box<str>),
    /// `Date`/`Date32` as the server formatted it.
    Date(Box<str>),
    /// `DateTime`/`DateTime64` as the server formatted it.
    DateTime(Box<str>),
    Uuid(Box<str>),
    /// The enum's label.
    Enum(Box<str>),
    /// `IPv4`/`IPv6` text.
    Ip(Box<str>),
    Array(Box<[Value]>),
    /// Elements in declaration order, with names for named tuples.
    Tuple(Box<[(Option<String>, Value)]>),
    /// Entries in the order the server sent them.
    Map(Box<[(Value, Value)]>),
    /// Types Aurora does not model (`AggregateFunction`, `Other`): the cell's JSON text.
    Raw(Box<str>),
}

/// Why a row could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed result row: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("result row has {found} cells but the result has {expected} columns")]
    CellCount { expected: usize, found: usize },
    /// `column` is 0-based; the message counts from 1 as people do.
    #[error("column {}: {detail}", .column + 1)]
    Cell { column: usize, detail: String },
    #[error("{0}")]
    Invalid(String),
}

/// Decodes one row of `JSONCompact` `data` (the raw JSON array text) against the column
/// types from `meta`.
pub fn decode_row(row_json: &str, columns: &[DataType]) -> Result<Vec<Value>, DecodeError> {
    let cells: Vec<&RawValue> = serde_json::from_str(row_json).map_err(DecodeError::Malformed)?;
    if cells.len() != columns.len() {
        return Err(DecodeError::CellCount {
            expected: columns.len(),
            found: cells.len(),
        });
    }
    // Exactly one slot per column: collecting a `Result` iterator would grow the vector by
    // doubling (8 slots for 5 columns), which costs a third of a large result's memory.
    let mut values = Vec::with_capacity(columns.len());
    for (column, (cell, ty)) in cells.iter().zip(columns).enumerate() {
        values.push(decode(cell.get(), ty).map_err(|detail| DecodeError::Cell { column, detail })?);
    }
    Ok(values)
}

/// Decodes a single JSON value against a type, e.g. a parameter or a default expression.
pub fn decode_value(json: &str, ty: &DataType) -> Result<Value, DecodeError> {
    let raw: &RawValue = serde_json::from_str(json).map_err(DecodeError::Malformed)?;
    decode(raw.get(), ty).map_err(DecodeError::Invalid)
}

/// Decodes one JSON value that has already been validated by the `RawValue` split.
fn decode(json: &str, ty: &DataType) -> Result<Value, String> {
    let json = json.trim();
    if json == "null" {
        // Servers that ignore `output_format_json_quote_denormals` write NaN as `null`; in a
        // column that cannot hold NULL that is the only thing it can mean.
        return Ok(if ty.is_float() && !ty.is_nullable() {
            Value::Float(f64::NAN)
        } else {
            Value::Null
        });
    }
    let fail = |why: &dyn fmt::Display| format!("cannot read {} as {ty}: {why}", excerpt(json));
    use DataType as T;
    let value = match ty {
        T::Nullable(inner) | T::LowCardinality(inner) => return decode(json, inner),
        T::Int8 | T::Int16 | T::Int32 | T::Int64 => {
            Value::Int(parse_number(json).map_err(|e| fail(&e))?)
        }
        T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
            Value::UInt(parse_number(json).map_err(|e| fail(&e))?)
        }
        T::Int128 => Value::Int128(Box::new(parse_number(json).map_err(|e| fail(&e))?)),
        T::UInt128 => Value::UInt128(Box::new(parse_number(json).map_err(|e| fail(&e))?)),
        T::Int256 | T::UInt256 => {
            let text = scalar_text(json).map_err(|e| fail(&e))?;
            let digits = match text.strip_prefix('-') {
                Some(digits) if matches!(ty, T::Int256) => digits,
                Some(_) => return Err(fail(&"negative value for an unsigned type")),
                None => text.strip_prefix('+').unwrap_or(&text),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(&"not an integer"));
            }
            Value::BigInt(text.into())
        }
        T::Float32 | T::Float64 => Value::Float(parse_number(json).map_err(|e| fail(&e))?),
        T::Bool => Value::Bool(parse_bool(json).ok_or_else(|| fail(&"not a boolean"))?),
        T::Decimal { .. } => {
            let text = scalar_text(json).map_err(|e| fail(&e))?;
            if !is_decimal_text(&text) {
                return Err(fail(&"not a decimal number"));
            }
            Value::Decimal(text.into())
        }
        T::String | T::FixedString(_) => {
            Value::String(json_string(json).map_err(|e| fail(&e))?.into())
        }
        T::Uuid => Value::Uuid(json_string(json).map_err(|e| fail(&e))?.into()),
        T::Ipv4 | T::Ipv6 => Value::Ip(json_string(json).map_err(|e| fail(&e))?.into()),
        // Numbers appear with `date_time_output_format=unix_timestamp`.
        T::Date | T::Date32 => Value::Date(scalar_text(json).map_err(|e| fail(&e))?.into()),
        T::DateTime(_) | T::DateTime64 { .. } => {
            Value::DateTime(scalar_text(json).map_err(|e| fail(&e))?.into())
        }
        T::Enum8(labels) => enum_label(json, labels.iter().map(|(l, v)| (l, i16::from(*v))))
            .map_err(|e| fail(&e))?,
        T::Enum16(labels) => {
            enum_label(json, labels.iter().map(|(l, v)| (l, *v))).map_err(|e| fail(&e))?
        }
        T::Array(inner) => {
            let items: Vec<&RawValue> = parse_container(json, '[').map_err(|e| fail(&e))?;
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(decode(item.get(), inner)?);
            }
            Value::Array(values.into())
        }
        T::Tuple(elements) => decode_tuple(json, elements).map_err(|e| fail(&e))?,
        T::Map(key_type, value_type) => {
            decode_map(json, key_type, value_type).map_err(|e| fail(&e))?
        }
        T::Nothing | T::AggregateFunction(_) | T::Other(_) => Value::Raw(json.into()),
    };
    Ok(value)
}

fn decode_tuple(json: &str, elements: &[(Option<String>, DataType)]) -> Result<Value, String> {
    let cells: Vec<&RawValue> = if json.starts_with('{') {
        // Newer servers write named tuples as objects keyed by element name.
        let RawPairs(pairs) = parse_container(json, '{')?;
        let all_named = elements.iter().all(|(name, _)| name.is_some());
        if pairs.len() != elements.len() {
            return Err(format!(
                "{} fields for {} elements",
                pairs.len(),
                elements.len()
            ));
        }
        if all_named {
            let mut cells = Vec::with_capacity(elements.len());
            for (name, _) in elements {
                let cell = pairs
                    .iter()
                    .find(|(key, _)| Some(key) == name.as_ref())
                    .map(|(_, cell)| *cell)
                    .ok_or_else(|| format!("missing field `{}`", name.as_deref().unwrap_or("")))?;
                cells.push(cell);
            }
            cells
        } else {
            pairs.into_iter().map(|(_, cell)| cell).collect()
        }
    } else {
        parse_container(json, '[')?
    };
    if cells.len() != elements.len() {
        return Err(format!(
            "{} items for {} elements",
            cells.len(),
            elements.len()
        ));
    }
    let mut values = Vec::with_capacity(cells.len());
    for (cell, (name, ty)) in cells.into_iter().zip(elements) {
        values.push((name.clone(), decode(cell.get(), ty)?));
    }
    Ok(Value::Tuple(values.into()))
}

fn decode_map(json: &str, key_type: &DataType, value_type: &DataType) -> Result<Value, String> {
    let mut entries = Vec::new();
    if json.starts_with('[') {
        // Tolerate the `[[k, v], ...]` shape some formats use for maps.
        let pairs: Vec<(&RawValue, &RawValue)> = parse_container(json, '[')?;
        for (key, value) in pairs {
            entries.push((
                decode(key.get(), key_type)?,
                decode(value.get(), value_type)?,
            ));
        }
    } else {
        let RawPairs(pairs) = parse_container(json, '{')?;
        for (key, value) in pairs {
            entries.push((
                decode_key(&key, key_type)?,
                decode(value.get(), value_type)?,
            ));
        }
    }
    Ok(Value::Map(entries.into()))
}

/// JSON object keys are always strings, so a key is read as a quoted scalar (the numeric
/// decoders accept quoted numbers) and, failing that, as JSON text for composite key types.
fn decode_key(key: &str, key_type: &DataType) -> Result<Value, String> {
    let mut quoted = String::with_capacity(key.len() + 2);
    push_json_string(&mut quoted, key);
    match decode(&quoted, key_type) {
        Ok(value) => Ok(value),
        Err(first) => match serde_json::from_str::<&RawValue>(key) {
            Ok(raw) => decode(raw.get(), key_type).map_err(|_| first),
            Err(_) => Err(first),
        },
    }
}

fn enum_label<'a>(
    json: &str,
    labels: impl Iterator<Item = (&'a String, i16)>,
) -> Result<Value, String> {
    if json.starts_with('"') {
        return json_string(json).map(|label| Value::Enum(label.into()));
    }
    // Only reachable with output settings that write enums as numbers.
    let number: i16 = parse_number(json)?;
    let label = labels
        .into_iter()
        .find(|(_, v)| *v == number)
        .map(|(l, _)| l.clone())
        .unwrap_or_else(|| number.to_string());
    Ok(Value::Enum(label.into()))
}

fn parse_container<'a, T: Deserialize<'a>>(json: &'a str, open: char) -> Result<T, String> {
    if !json.starts_with(open) {
        let what = if open == '[' { "an array" } else { "an object" };
        return Err(format!("expected {what}"));
    }
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// The text of a number or of a string holding one.
fn scalar_text(json: &str) -> Result<Cow<'_, str>, String> {
    match json.as_bytes().first() {
        Some(b'"') => json_string(json).map(Cow::Owned),
        Some(b'-' | b'0'..=b'9') => Ok(Cow::Borrowed(json)),
        _ => Err("expected a number or a string".to_string()),
    }
}

fn parse_number<T>(json: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    scalar_text(json)?.parse::<T>().map_err(|e| e.to_string())
}

fn parse_bool(json: &str) -> Option<bool> {
    let text = match json.as_bytes().first() {
        Some(b'"') => Cow::Owned(json_string(json).ok()?),
        _ => Cow::Borrowed(json),
    };
    match text.as_ref() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn json_string(json: &str) -> Result<String, String> {
    if !json.starts_with('"') {
        return Err("expected a string".to_string());
    }
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// Sign, digits with at most one point, optional exponent.
fn is_decimal_text(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn excerpt(json: &str) -> String {
    const MAX: usize = 60;
    match json.char_indices().nth(MAX) {
        Some((at, _)) => format!("`{}...`", &json[..at]),
        None => format!("`{json}`"),
    }
}

/// An object's entries in wire order, values left as raw JSON. `serde_json::Map` would
/// reorder keys and drop duplicates.
struct RawPairs<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawPairs<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = RawPairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    pairs.push(entry);
                }
                Ok(RawPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// ClickHouse-like float text: shortest round-trip digits, exponent form only for very large
/// or very small magnitudes so a table cell stays narrow.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        let magnitude = v.abs();
        if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
            format!("{v:e}")
        } else {
            format!("{v}")
        }
    }
}

impl Value {
    /// The value as a finite number, for the integer, float and decimal kinds.
    pub fn as_f64(&self) -> Option<f64> {
        let number = match self {
            Value::Int(v) => *v as f64,
            Value::UInt(v) => *v as f64,
            Value::Int128(v) => **v as f64,
            Value::UInt128(v) => **v as f64,
            Value::Float(v) => *v,
            Value::Decimal(text) | Value::BigInt(text) => text.parse().ok()?,
            _ => return None,
        };
        number.is_finite().then_some(number)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for values that hold other values; their text form is already escaped.
    pub fn is_composite(&self) -> bool {
        matches!(self, Value::Array(_) | Value::Tuple(_) | Value::Map(_))
    }

    /// Appends the value as JSON: integers of every width as bare numbers with all digits,
    /// decimals as strings (exact, and safe from consumers that parse numbers as doubles),
    /// non-finite floats as `"nan"`/`"inf"`/`"-inf"`, named tuples as objects, maps as
    /// objects with string keys, `Raw` verbatim.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(v) => push_display(out, v),
            Value::UInt(v) => push_display(out, v),
            Value::Int128(v) => push_display(out, v),
            Value::UInt128(v) => push_display(out, v),
            Value::BigInt(text) => out.push_str(text.strip_prefix('+').unwrap_or(text)),
            Value::Float(v) if v.is_finite() => out.push_str(&format_float(*v)),
            Value::Float(v) => push_json_string(out, &format_float(*v)),
            Value::Decimal(text)
            | Value::String(text)
            | Value::Date(text)
            | Value::DateTime(text)
            | Value::Uuid(text)
            | Value::Enum(text)
            | Value::Ip(text) => push_json_string(out, text),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Tuple(items) => {
                let named = !items.is_empty() && items.iter().all(|(name, _)| name.is_some());
                out.push(if named { '{' } else { '[' });
                for (i, (name, item)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if let (true, Some(name)) = (named, name) {
                        push_json_string(out, name);
                        out.push(':');
                    }
                    item.write_json(out);
                }
                out.push(if named { '}' } else { ']' });
            }
            Value::Map(entries) => {
                out.push('{');
                for (i, (key, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(out, &key.key_text());
                    out.push(':');
                    item.write_json(out);
                }
                out.push('}');
            }
            Value::Raw(text) => out.push_str(text),
        }
    }

    /// The value as a JSON string; see [`Value::write_json`].
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    /// Text used for a map key in JSON, where keys must be strings.
    fn key_text(&self) -> Cow<'_, str> {
        match self {
            Value::String(text)
            | Value::Date(text)
            | Value::DateTime(text)
            | Value::Uuid(text)
            | Value::Enum(text)
            | Value::Ip(text)
            | Value::Decimal(text)
            | Value::BigInt(text) => Cow::Borrowed(text),
            other => Cow::Owned(other.to_string()),
        }
    }

    /// Text form. Inside containers, text-like values are quoted and escaped the way
    /// ClickHouse prints them (`['a', 'b']`); at the top level they are bare.
    fn write_text(&self, f: &mut impl fmt::Write, nested: bool) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Int128(v) => write!(f, "{v}"),
            Value::UInt128(v) => write!(f, "{v}"),
            Value::BigInt(text) | Value::Decimal(text) => f.write_str(text),
            Value::Float(v) => f.write_str(&format_float(*v)),
            Value::String(text)
            | Value::Date(text)
            | Value::DateTime(text)
            | Value::Uuid(text)
            | Value::Enum(text)
            | Value::Ip(text) => {
                if nested {
                    write_quoted(f, text, '\'')
                } else {
                    f.write_str(text)
                }
            }
            Value::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.write_text(f, true)?;
                }
                f.write_char(']')
            }
            Value::Tuple(items) => {
                f.write_char('(')?;
                for (i, (_, item)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.write_text(f, true)?;
                }
                f.write_char(')')
            }
            Value::Map(entries) => {
                f.write_char('{')?;
                for (i, (key, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    key.write_text(f, true)?;
                    f.write_str(": ")?;
                    item.write_text(f, true)?;
                }
                f.write_char('}')
            }
            Value::Raw(json) => match serde_json::from_str::<String>(json) {
                // A JSON string reads better as its contents than as JSON.
                Ok(text) if nested => write_quoted(f, &text, '\''),
                Ok(text) => f.write_str(&text),
                Err(_) => f.write_str(json),
            },
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f, false)
    }
}

fn push_display(out: &mut String, value: &impl fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_value_takes_24_bytes() {
        // A million-row result holds millions of these: strings and lists are boxed slices and
        // 128-bit integers boxed, so no variant is wider than 16 bytes plus the tag.
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    fn types(list: &[&str]) -> Vec<DataType> {
        list.iter().map(|t| DataType::parse(t).unwrap()).collect()
    }

    fn one(json: &str, ty: &str) -> Value {
        decode_row(&format!("[{json}]"), &types(&[ty]))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn reference_row_from_clickhouse_18() {
        let cols = types(&[
            "UInt64",
            "UInt64",
            "Decimal(9, 2)",
            "Array(UInt8)",
            "Tuple(UInt8, String)",
            "Float64",
            "String",
        ]);
        let row = decode_row(
            r#"["0", "1000000000000", 2.50, [1,2], [1,"x"], null, "é\"q"]"#,
            &cols,
        )
        .unwrap();
        assert_eq!(row[0], Value::UInt(0));
        assert_eq!(row[1], Value::UInt(1_000_000_000_000));
        assert_eq!(row[2], Value::Decimal("2.50".into()));
        assert_eq!(
            row[3],
            Value::Array(vec![Value::UInt(1), Value::UInt(2)].into())
        );
        assert_eq!(
            row[4],
            Value::Tuple(vec![(None, Value::UInt(1)), (None, Value::String("x".into()))].into())
        );
        assert!(matches!(row[5], Value::Float(f) if f.is_nan()));
        assert_eq!(row[6], Value::String("é\"q".into()));
        assert_eq!(row[4].to_string(), "(1, 'x')");
    }

    #[test]
    fn uint64_max_survives_exactly() {
        for json in ["\"18446744073709551615\"", "18446744073709551615"] {
            let v = one(json, "UInt64");
            assert_eq!(v, Value::UInt(u64::MAX));
            assert_eq!(v.to_string(), "18446744073709551615");
            assert_eq!(v.to_json(), "18446744073709551615");
        }
        assert_eq!(
            one("\"-9223372036854775808\"", "Int64"),
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn int128_extremes() {
        let min = i128::MIN.to_string();
        let max = i128::MAX.to_string();
        assert_eq!(
            one(&format!("\"{min}\""), "Int128"),
            Value::Int128(i128::MIN.into())
        );
        assert_eq!(one(&max, "Int128"), Value::Int128(i128::MAX.into()));
        assert_eq!(one(&format!("\"{max}\""), "Int128").to_json(), max);
        let umax = u128::MAX.to_string();
        assert_eq!(one(&umax, "UInt128").to_json(), umax);
        let big = "-57896044618658097711785492504343953926634992332820282019728792003956564819968";
        let v = one(big, "Int256");
        assert_eq!(v, Value::BigInt(big.into()));
        assert_eq!(v.to_json(), big);
        assert!(decode_row(r#"["-1"]"#, &types(&["UInt256"])).is_err());
        assert!(decode_row(r#"["1.5"]"#, &types(&["Int256"])).is_err());
        assert!(decode_row(r#"["300x"]"#, &types(&["UInt64"])).is_err());
    }

    #[test]
    fn decimal_text_is_kept() {
        assert_eq!(one("2.50", "Decimal(9, 2)"), Value::Decimal("2.50".into()));
        let precise = "12345678901234567890.123456789012345678";
        let v = one(&format!("\"{precise}\""), "Decimal(38, 18)");
        assert_eq!(v.to_string(), precise);
        assert_eq!(v.to_json(), format!("\"{precise}\""));
        assert_eq!(one("-0.10", "Decimal32(2)").to_string(), "-0.10");
        assert!(decode_row(r#"["abc"]"#, &types(&["Decimal(9, 2)"])).is_err());
    }

    #[test]
    fn floats_nan_and_inf() {
        let nan = one("\"nan\"", "Float64");
        assert!(matches!(nan, Value::Float(f) if f.is_nan()));
        assert_eq!(nan.to_string(), "nan");
        assert_eq!(nan.to_json(), "\"nan\"");
        assert_eq!(one("\"inf\"", "Float64").to_json(), "\"inf\"");
        assert_eq!(one("\"-inf\"", "Float32").to_string(), "-inf");
        assert_eq!(one("\"-nan\"", "Float64").to_string(), "nan");
        assert_eq!(one("0.1", "Float32").to_string(), "0.1");
        assert_eq!(one("1e300", "Float64").to_json(), "1e300");
        assert_eq!(one("-1.5e-7", "Float64").to_string(), "-1.5e-7");
        assert_eq!(one("2", "Float64").to_json(), "2");
        // Not nullable: null is the denormal NaN. Nullable: it is NULL.
        assert!(matches!(one("null", "Float64"), Value::Float(f) if f.is_nan()));
        assert_eq!(one("null", "Nullable(Float64)"), Value::Null);
    }

    #[test]
    fn nested_nullable_array() {
        let v = one(
            r#"["a", null, "it's"]"#,
            "Nullable(Array(Nullable(String)))",
        );
        assert_eq!(
            v,
            Value::Array(
                vec![
                    Value::String("a".into()),
                    Value::Null,
                    Value::String("it's".into())
                ]
                .into()
            )
        );
        assert_eq!(v.to_string(), r"['a', NULL, 'it\'s']");
        assert_eq!(v.to_json(), r#"["a",null,"it's"]"#);
        assert_eq!(
            one("null", "Nullable(Array(Nullable(String)))"),
            Value::Null
        );
        assert!(one("null", "Nullable(UInt8)").is_null());
    }

    #[test]
    fn low_cardinality() {
        assert_eq!(
            one("\"x\"", "LowCardinality(String)"),
            Value::String("x".into())
        );
        assert_eq!(one("null", "LowCardinality(Nullable(String))"), Value::Null);
    }

    #[test]
    fn named_tuples_as_object_and_array() {
        let ty = "Tuple(a UInt8, b String)";
        let expected = Value::Tuple(
            vec![
                (Some("a".into()), Value::UInt(1)),
                (Some("b".into()), Value::String("x".into())),
            ]
            .into(),
        );
        assert_eq!(one(r#"[1, "x"]"#, ty), expected);
        // Object keys may come in any order; declaration order wins.
        assert_eq!(one(r#"{"b": "x", "a": 1}"#, ty), expected);
        assert_eq!(expected.to_json(), r#"{"a":1,"b":"x"}"#);
        assert_eq!(expected.to_string(), "(1, 'x')");
        assert!(decode_row(r#"[{"a": 1, "c": "x"}]"#, &types(&[ty])).is_err());
        assert!(decode_row(r#"[[1]]"#, &types(&[ty])).is_err());
        let nested = one(r#"[[1, "p"], [2, "q"]]"#, "Nested(a UInt8, b String)");
        assert_eq!(nested.to_string(), "[(1, 'p'), (2, 'q')]");
    }

    #[test]
    fn maps() {
        let v = one(r#"{"k2": [1], "k1": []}"#, "Map(String, Array(UInt64))");
        assert_eq!(
            v,
            Value::Map(
                vec![
                    (
                        Value::String("k2".into()),
                        Value::Array(vec![Value::UInt(1)].into())
                    ),
                    (Value::String("k1".into()), Value::Array(vec![].into())),
                ]
                .into()
            )
        );
        assert_eq!(v.to_string(), "{'k2': [1], 'k1': []}");
        assert_eq!(v.to_json(), r#"{"k2":[1],"k1":[]}"#);
        let numeric = one(
            r#"{"18446744073709551615": "x", "1": null}"#,
            "Map(UInt64, Nullable(String))",
        );
        assert_eq!(
            numeric,
            Value::Map(
                vec![
                    (Value::UInt(u64::MAX), Value::String("x".into())),
                    (Value::UInt(1), Value::Null),
                ]
                .into()
            )
        );
        assert_eq!(
            numeric.to_json(),
            r#"{"18446744073709551615":"x","1":null}"#
        );
    }

    #[test]
    fn unicode_and_escapes() {
        let v = one(
            r#""tab\there\nnew \"q\" \\ \u00e9 \ud83d\ude00 日本""#,
            "String",
        );
        assert_eq!(v, Value::String("tab\there\nnew \"q\" \\ é 😀 日本".into()));
        assert_eq!(v.to_string(), "tab\there\nnew \"q\" \\ é 😀 日本");
        assert_eq!(v.to_json(), r#""tab\there\nnew \"q\" \\ é 😀 日本""#);
        let nested = Value::Array(vec![v].into());
        assert_eq!(nested.to_string(), r#"['tab\there\nnew "q" \\ é 😀 日本']"#);
        assert_eq!(Value::String("\u{1}".into()).to_json(), r#""\u0001""#);
    }

    #[test]
    fn other_scalars() {
        let cols = types(&[
            "Bool",
            "Date",
            "DateTime('UTC')",
            "DateTime64(3)",
            "UUID",
            "IPv4",
            "IPv6",
            "Enum8('a' = 1, 'b' = 2)",
            "FixedString(3)",
            "AggregateFunction(uniq, UInt64)",
            "Variant(String, UInt64)",
            "Nullable(Nothing)",
        ]);
        let row = decode_row(
            r#"[true, "2024-01-02", "2024-01-02 03:04:05", "2024-01-02 03:04:05.678",
                "61f0c404-5cb3-11e7-907b-a6006ad3dba0", "127.0.0.1", "::1", "b", "ab\u0000",
                "\u0001\u0002", {"x": [1, 2.50]}, null]"#,
            &cols,
        )
        .unwrap();
        assert_eq!(row[0], Value::Bool(true));
        assert_eq!(row[1], Value::Date("2024-01-02".into()));
        assert_eq!(row[2], Value::DateTime("2024-01-02 03:04:05".into()));
        assert_eq!(row[3].to_string(), "2024-01-02 03:04:05.678");
        assert_eq!(
            row[4],
            Value::Uuid("61f0c404-5cb3-11e7-907b-a6006ad3dba0".into())
        );
        assert_eq!(row[5], Value::Ip("127.0.0.1".into()));
        assert_eq!(row[6], Value::Ip("::1".into()));
        assert_eq!(row[7], Value::Enum("b".into()));
        assert_eq!(row[8], Value::String("ab\0".into()));
        assert_eq!(row[9], Value::Raw(r#""\u0001\u0002""#.into()));
        assert_eq!(row[10].to_json(), r#"{"x": [1, 2.50]}"#);
        assert_eq!(row[11], Value::Null);
        assert_eq!(one("2", "Enum8('a' = 1, 'b' = 2)"), Value::Enum("b".into()));
        assert_eq!(one("0", "Bool"), Value::Bool(false));
        assert_eq!(
            Value::Array(vec![Value::Date("2024-01-02".into())].into()).to_string(),
            "['2024-01-02']"
        );
    }

    #[test]
    fn malformed_row_is_an_error() {
        let cols = types(&["UInt8", "String"]);
        for bad in [r#"[1, "x""#, "", "{}", r#"[1, x]"#, r#"[1, "x"] trailing"#] {
            assert!(
                matches!(decode_row(bad, &cols), Err(DecodeError::Malformed(_))),
                "{bad}"
            );
        }
        let err = decode_row(r#"["x", "y"]"#, &cols).unwrap_err();
        assert!(matches!(err, DecodeError::Cell { column: 0, .. }), "{err}");
        assert!(err.to_string().starts_with("column 1:"), "{err}");
        assert!(decode_row(r#"[1, 2]"#, &cols).is_err());
        assert!(decode_row(r#"[1, "x"]"#, &types(&["Array(UInt8)", "String"])).is_err());
    }

    #[test]
    fn wrong_cell_count_is_an_error() {
        let cols = types(&["UInt8", "String"]);
        assert!(matches!(
            decode_row("[1]", &cols),
            Err(DecodeError::CellCount {
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            decode_row(r#"[1, "a", 3]"#, &cols),
            Err(DecodeError::CellCount { found: 3, .. })
        ));
        assert!(decode_row("[]", &[]).unwrap().is_empty());
    }

    #[test]
    fn decode_single_value() {
        assert_eq!(
            decode_value("\"42\"", &DataType::UInt64).unwrap(),
            Value::UInt(42)
        );
        assert!(decode_value("[1", &DataType::UInt64).is_err());
    }
}
