//! ClickHouse data types: parsing the type names the server reports in result metadata and
//! printing them back in canonical form.
//!
//! Parsing is deliberately forgiving about *names* and strict about *syntax*: a type this
//! module does not know (newer servers keep adding them) or a known type with arguments it
//! does not understand becomes [`DataType::Other`] holding the original text, while
//! unbalanced parentheses, unterminated quotes or junk after a closing parenthesis are errors.

use std::fmt;

/// A ClickHouse column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataType {
    Int8,
    Int16,
    Int32,
    Int64,
    Int128,
    Int256,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    UInt128,
    UInt256,
    Float32,
    Float64,
    Bool,
    /// `Decimal(P, S)`; `Decimal32(S)` and friends normalise to this with P = 9/18/38/76,
    /// which is also how the server itself reports them.
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    FixedString(usize),
    Uuid,
    Date,
    Date32,
    /// `DateTime` with an optional explicit time zone.
    DateTime(Option<String>),
    DateTime64 {
        precision: u8,
        timezone: Option<String>,
    },
    Enum8(Vec<(String, i8)>),
    Enum16(Vec<(String, i16)>),
    Ipv4,
    Ipv6,
    Nullable(Box<DataType>),
    LowCardinality(Box<DataType>),
    Array(Box<DataType>),
    /// Elements in declaration order; names are present for named tuples.
    /// `Nested(a T, b U)` is represented as `Array(Tuple(a T, b U))`, its wire shape.
    Tuple(Vec<(Option<String>, DataType)>),
    Map(Box<DataType>, Box<DataType>),
    Nothing,
    /// `AggregateFunction(...)`: the argument text, kept verbatim because states are opaque.
    AggregateFunction(String),
    /// Anything else, as the server spelled it (trimmed).
    Other(String),
}

/// Why a type string could not be parsed. Only syntax problems end up here; unknown type
/// names parse as [`DataType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeParseError {
    #[error("empty type name")]
    Empty,
    #[error("unbalanced parentheses in type `{0}`")]
    Unbalanced(String),
    #[error("unterminated quote in type `{0}`")]
    UnterminatedQuote(String),
    #[error("malformed type `{0}`")]
    Malformed(String),
    #[error("unexpected text after the closing parenthesis in type `{0}`")]
    TrailingInput(String),
    #[error("empty argument in type `{0}`")]
    EmptyArgument(String),
}

impl DataType {
    /// Parses a type name as reported in result metadata, e.g. `Nullable(Decimal(18, 4))`.
    pub fn parse(input: &str) -> Result<DataType, TypeParseError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(TypeParseError::Empty);
        }
        check_balanced(text)?;
        let name_len = ident_len(text);
        if name_len == 0 {
            return Err(TypeParseError::Malformed(text.to_string()));
        }
        let name = &text[..name_len];
        let rest = text[name_len..].trim_start();
        if rest.is_empty() {
            return Ok(simple(name).unwrap_or_else(|| DataType::Other(text.to_string())));
        }
        if !rest.starts_with('(') {
            // Multi-word spellings such as `DOUBLE PRECISION` are SQL aliases the server
            // never reports; keep them rather than guess.
            return Ok(DataType::Other(text.to_string()));
        }
        let close =
            matching_paren(rest, 0).ok_or_else(|| TypeParseError::Unbalanced(text.to_string()))?;
        if !rest[close + 1..].trim().is_empty() {
            return Err(TypeParseError::TrailingInput(text.to_string()));
        }
        let inner = &rest[1..close];
        let args =
            split_args(inner).ok_or_else(|| TypeParseError::EmptyArgument(text.to_string()))?;
        Ok(with_args(name, inner, &args)?.unwrap_or_else(|| DataType::Other(text.to_string())))
    }

    /// Strips `Nullable` and `LowCardinality` wrappers, which change storage but not how a
    /// value reads.
    pub fn unwrap_wrappers(&self) -> &DataType {
        let mut current = self;
        while let DataType::Nullable(inner) | DataType::LowCardinality(inner) = current {
            current = inner;
        }
        current
    }

    /// True for `Nullable(T)`, including `LowCardinality(Nullable(T))`.
    pub fn is_nullable(&self) -> bool {
        match self {
            DataType::Nullable(_) => true,
            DataType::LowCardinality(inner) => inner.is_nullable(),
            _ => false,
        }
    }

    /// Integer types of any width and signedness (looks through wrappers; `Bool` excluded).
    pub fn is_integer(&self) -> bool {
        use DataType::*;
        matches!(
            self.unwrap_wrappers(),
            Int8 | Int16
                | Int32
                | Int64
                | Int128
                | Int256
                | UInt8
                | UInt16
                | UInt32
                | UInt64
                | UInt128
                | UInt256
        )
    }

    /// True for `Float32`/`Float64` (looks through wrappers).
    pub fn is_float(&self) -> bool {
        matches!(
            self.unwrap_wrappers(),
            DataType::Float32 | DataType::Float64
        )
    }

    /// Integers, floats and decimals (looks through wrappers).
    pub fn is_numeric(&self) -> bool {
        self.is_integer()
            || self.is_float()
            || matches!(self.unwrap_wrappers(), DataType::Decimal { .. })
    }

    /// Dates and date-times of every precision (looks through wrappers).
    pub fn is_temporal(&self) -> bool {
        matches!(
            self.unwrap_wrappers(),
            DataType::Date | DataType::Date32 | DataType::DateTime(_) | DataType::DateTime64 { .. }
        )
    }

    /// Types whose values are free text: `String`, `FixedString` and enums, whose values are
    /// their names (looks through wrappers).
    pub fn is_string_like(&self) -> bool {
        matches!(
            self.unwrap_wrappers(),
            DataType::String | DataType::FixedString(_) | DataType::Enum8(_) | DataType::Enum16(_)
        )
    }

    /// Whether a table column of this type reads best right-aligned, so digits line up.
    pub fn is_right_aligned(&self) -> bool {
        self.is_numeric()
    }
}

/// Types that take no arguments.
fn simple(name: &str) -> Option<DataType> {
    use DataType::*;
    Some(match name {
        "Int8" => Int8,
        "Int16" => Int16,
        "Int32" => Int32,
        "Int64" => Int64,
        "Int128" => Int128,
        "Int256" => Int256,
        "UInt8" => UInt8,
        "UInt16" => UInt16,
        "UInt32" => UInt32,
        "UInt64" => UInt64,
        "UInt128" => UInt128,
        "UInt256" => UInt256,
        "Float32" => Float32,
        "Float64" => Float64,
        "Bool" => Bool,
        "String" => String,
        "UUID" => Uuid,
        "Date" => Date,
        "Date32" => Date32,
        "DateTime" => DateTime(None),
        "IPv4" => Ipv4,
        "IPv6" => Ipv6,
        "Nothing" => Nothing,
        _ => return None,
    })
}

/// Types with an argument list. `Ok(None)` means "not a shape we understand", which the
/// caller turns into `Other`; errors are reserved for malformed nested syntax.
fn with_args(name: &str, inner: &str, args: &[&str]) -> Result<Option<DataType>, TypeParseError> {
    let parsed = match (name, args) {
        ("Nullable", [t]) => DataType::Nullable(Box::new(DataType::parse(t)?)),
        ("LowCardinality", [t]) => DataType::LowCardinality(Box::new(DataType::parse(t)?)),
        ("Array", [t]) => DataType::Array(Box::new(DataType::parse(t)?)),
        ("Map", [k, v]) => {
            DataType::Map(Box::new(DataType::parse(k)?), Box::new(DataType::parse(v)?))
        }
        ("Tuple", elements) => {
            let mut parsed = Vec::with_capacity(elements.len());
            for element in elements {
                parsed.push(tuple_element(element)?);
            }
            DataType::Tuple(parsed)
        }
        ("Nested", elements) if !elements.is_empty() => {
            let mut parsed = Vec::with_capacity(elements.len());
            for element in elements {
                let (field, ty) = tuple_element(element)?;
                if field.is_none() {
                    return Ok(None);
                }
                parsed.push((field, ty));
            }
            DataType::Array(Box::new(DataType::Tuple(parsed)))
        }
        // The function part may carry parameters, but only the stored type matters for reading.
        ("SimpleAggregateFunction", [_, t]) => DataType::parse(t)?,
        ("AggregateFunction", [_, ..]) => DataType::AggregateFunction(inner.trim().to_string()),
        ("Decimal", [p]) => match number::<u8>(p) {
            Some(precision) => return Ok(decimal(precision, 0)),
            None => return Ok(None),
        },
        ("Decimal", [p, s]) => match (number::<u8>(p), number::<u8>(s)) {
            (Some(precision), Some(scale)) => return Ok(decimal(precision, scale)),
            _ => return Ok(None),
        },
        ("Decimal32" | "Decimal64" | "Decimal128" | "Decimal256", [s]) => {
            let precision = match name {
                "Decimal32" => 9,
                "Decimal64" => 18,
                "Decimal128" => 38,
                _ => 76,
            };
            match number::<u8>(s) {
                Some(scale) => return Ok(decimal(precision, scale)),
                None => return Ok(None),
            }
        }
        ("FixedString", [n]) => match number::<usize>(n) {
            Some(n) => DataType::FixedString(n),
            None => return Ok(None),
        },
        ("DateTime", [tz]) => match quoted_only(tz) {
            Some(tz) => DataType::DateTime(Some(tz)),
            None => return Ok(None),
        },
        ("DateTime64", [p]) => match number::<u8>(p).filter(|p| *p <= 9) {
            Some(precision) => DataType::DateTime64 {
                precision,
                timezone: None,
            },
            None => return Ok(None),
        },
        ("DateTime64", [p, tz]) => match (number::<u8>(p).filter(|p| *p <= 9), quoted_only(tz)) {
            (Some(precision), Some(tz)) => DataType::DateTime64 {
                precision,
                timezone: Some(tz),
            },
            _ => return Ok(None),
        },
        ("Enum8" | "Enum16" | "Enum", pairs) if !pairs.is_empty() => {
            let Some(values) = enum_pairs(pairs) else {
                return Ok(None);
            };
            let fits_i8 = values.iter().all(|(_, v)| i8::try_from(*v).is_ok());
            if name == "Enum8" || (name == "Enum" && fits_i8) {
                let mut narrow = Vec::with_capacity(values.len());
                for (label, v) in values {
                    match i8::try_from(v) {
                        Ok(v) => narrow.push((label, v)),
                        Err(_) => return Ok(None),
                    }
                }
                DataType::Enum8(narrow)
            } else {
                DataType::Enum16(values)
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(parsed))
}

fn decimal(precision: u8, scale: u8) -> Option<DataType> {
    ((1..=76).contains(&precision) && scale <= precision)
        .then_some(DataType::Decimal { precision, scale })
}

fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A single-quoted string literal and nothing else.
fn quoted_only(text: &str) -> Option<String> {
    let (value, rest) = quoted_string(text.trim())?;
    rest.trim().is_empty().then_some(value)
}

/// `'label' = value` pairs; values may be omitted, in which case they continue from the
/// previous one as ClickHouse does.
fn enum_pairs(pairs: &[&str]) -> Option<Vec<(String, i16)>> {
    let mut values = Vec::with_capacity(pairs.len());
    let mut next: i32 = 1;
    for pair in pairs {
        let (label, rest) = quoted_string(pair.trim())?;
        let rest = rest.trim();
        let value = if rest.is_empty() {
            next
        } else {
            let number = rest.strip_prefix('=')?.trim();
            number.parse::<i32>().ok()?
        };
        values.push((label, i16::try_from(value).ok()?));
        next = value + 1;
    }
    Some(values)
}

/// One element of `Tuple(...)` or `Nested(...)`: an optional name followed by a type.
fn tuple_element(text: &str) -> Result<(Option<String>, DataType), TypeParseError> {
    let text = text.trim();
    if text.starts_with('`') || text.starts_with('"') {
        if let Some((field, rest)) = quoted_ident(text) {
            if !rest.trim().is_empty() {
                return Ok((Some(field), DataType::parse(rest)?));
            }
        }
        return Err(TypeParseError::Malformed(text.to_string()));
    }
    let len = ident_len(text);
    let rest = &text[len..];
    let after = rest.trim_start();
    // A name is an identifier followed by whitespace and then more text; an identifier
    // directly followed by `(` or by nothing is itself the type.
    if len > 0 && after.len() < rest.len() && !after.is_empty() && !after.starts_with('(') {
        return Ok((Some(text[..len].to_string()), DataType::parse(after)?));
    }
    Ok((None, DataType::parse(text)?))
}

fn ident_len(text: &str) -> usize {
    let mut len = 0;
    for (i, c) in text.char_indices() {
        let ok = if i == 0 {
            c.is_ascii_alphabetic() || c == '_'
        } else {
            c.is_ascii_alphanumeric() || c == '_'
        };
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// Checks that parentheses balance and quotes close, ignoring parentheses inside quotes.
fn check_balanced(text: &str) -> Result<(), TypeParseError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| TypeParseError::Unbalanced(text.to_string()))?;
            }
            q @ (b'\'' | b'`' | b'"') => {
                i = skip_quoted(bytes, i, q)
                    .ok_or_else(|| TypeParseError::UnterminatedQuote(text.to_string()))?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if depth == 0 {
        Ok(())
    } else {
        Err(TypeParseError::Unbalanced(text.to_string()))
    }
}

/// Given the index of an opening quote, returns the index just past its closing quote.
/// Both backslash escapes and doubled quotes are SQL-legal inside literals.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Index of the `)` matching the `(` at `open`, skipping quoted text.
fn matching_paren(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            q @ (b'\'' | b'`' | b'"') => {
                i = skip_quoted(bytes, i, q)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits an argument list at top-level commas. `None` when an argument is empty, which is
/// malformed; an all-blank list is zero arguments (`Tuple()` is a real type).
fn split_args(inner: &str) -> Option<Vec<&str>> {
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    let bytes = inner.as_bytes();
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            q @ (b'\'' | b'`' | b'"') => {
                i = skip_quoted(bytes, i, q).unwrap_or(bytes.len());
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    args.push(inner[start..].trim());
    if args.iter().any(|a| a.is_empty()) {
        None
    } else {
        Some(args)
    }
}

/// Parses a single-quoted SQL string literal at the start of `text`, returning its value and
/// the remaining text.
fn quoted_string(text: &str) -> Option<(String, &str)> {
    if !text.starts_with('\'') {
        return None;
    }
    unquote(text, '\'')
}

fn quoted_ident(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next()?;
    unquote(text, quote)
}

fn unquote(text: &str, quote: char) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            let (_, escaped) = chars.next()?;
            value.push(match escaped {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'a' => '\u{7}',
                'v' => '\u{b}',
                other => other,
            });
        } else if c == quote {
            if let Some((_, next)) = chars.peek() {
                if *next == quote {
                    value.push(quote);
                    chars.next();
                    continue;
                }
            }
            return Some((value, &text[i + c.len_utf8()..]));
        } else {
            value.push(c);
        }
    }
    None
}

/// Writes `s` as a quoted literal with ClickHouse's backslash escapes.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str, quote: char) -> fmt::Result {
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            '\0' => f.write_str("\\0")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if c == quote => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

fn write_element_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let plain = !name.is_empty() && ident_len(name) == name.len();
    if plain {
        f.write_str(name)
    } else {
        write_quoted(f, name, '`')
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DataType::*;
        match self {
            Int8 => f.write_str("Int8"),
            Int16 => f.write_str("Int16"),
            Int32 => f.write_str("Int32"),
            Int64 => f.write_str("Int64"),
            Int128 => f.write_str("Int128"),
            Int256 => f.write_str("Int256"),
            UInt8 => f.write_str("UInt8"),
            UInt16 => f.write_str("UInt16"),
            UInt32 => f.write_str("UInt32"),
            UInt64 => f.write_str("UInt64"),
            UInt128 => f.write_str("UInt128"),
            UInt256 => f.write_str("UInt256"),
            Float32 => f.write_str("Float32"),
            Float64 => f.write_str("Float64"),
            Bool => f.write_str("Bool"),
            Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            String => f.write_str("String"),
            FixedString(n) => write!(f, "FixedString({n})"),
            Uuid => f.write_str("UUID"),
            Date => f.write_str("Date"),
            Date32 => f.write_str("Date32"),
            DateTime(None) => f.write_str("DateTime"),
            DateTime(Some(tz)) => {
                f.write_str("DateTime(")?;
                write_quoted(f, tz, '\'')?;
                f.write_str(")")
            }
            DateTime64 {
                precision,
                timezone,
            } => {
                write!(f, "DateTime64({precision}")?;
                if let Some(tz) = timezone {
                    f.write_str(", ")?;
                    write_quoted(f, tz, '\'')?;
                }
                f.write_str(")")
            }
            Enum8(values) => write_enum(f, "Enum8", values.iter().map(|(l, v)| (l, i16::from(*v)))),
            Enum16(values) => write_enum(f, "Enum16", values.iter().map(|(l, v)| (l, *v))),
            Ipv4 => f.write_str("IPv4"),
            Ipv6 => f.write_str("IPv6"),
            Nullable(inner) => write!(f, "Nullable({inner})"),
            LowCardinality(inner) => write!(f, "LowCardinality({inner})"),
            Array(inner) => write!(f, "Array({inner})"),
            Tuple(elements) => {
                f.write_str("Tuple(")?;
                for (i, (field, ty)) in elements.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(field) = field {
                        write_element_name(f, field)?;
                        f.write_str(" ")?;
                    }
                    write!(f, "{ty}")?;
                }
                f.write_str(")")
            }
            Map(k, v) => write!(f, "Map({k}, {v})"),
            Nothing => f.write_str("Nothing"),
            AggregateFunction(args) => write!(f, "AggregateFunction({args})"),
            Other(text) => f.write_str(text),
        }
    }
}

fn write_enum<'a>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    values: impl Iterator<Item = (&'a String, i16)>,
) -> fmt::Result {
    write!(f, "{name}(")?;
    for (i, (label, value)) in values.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, label, '\'')?;
        write!(f, " = {value}")?;
    }
    f.write_str(")")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> DataType {
        DataType::parse(s).unwrap()
    }

    fn roundtrip(s: &str) {
        assert_eq!(p(s).to_string(), s, "canonical form of {s}");
    }

    #[test]
    fn scalars() {
        for s in [
            "Int8", "Int16", "Int32", "Int64", "Int128", "Int256", "UInt8", "UInt16", "UInt32",
            "UInt64", "UInt128", "UInt256", "Float32", "Float64", "Bool", "String", "UUID", "Date",
            "Date32", "DateTime", "IPv4", "IPv6", "Nothing",
        ] {
            roundtrip(s);
            assert!(!matches!(p(s), DataType::Other(_)), "{s}");
        }
    }

    #[test]
    fn parameterised() {
        roundtrip("Decimal(9, 2)");
        roundtrip("FixedString(16)");
        roundtrip("DateTime('Europe/Amsterdam')");
        roundtrip("DateTime64(3)");
        roundtrip("DateTime64(6, 'UTC')");
        roundtrip("Nullable(Decimal(18, 4))");
        roundtrip("LowCardinality(Nullable(String))");
        roundtrip("Array(Array(UInt8))");
        roundtrip("Map(String, Array(Nullable(Int64)))");
        roundtrip("Tuple(UInt8, String)");
        roundtrip("Tuple(a UInt8, b Nullable(String))");
        roundtrip("Tuple()");
        roundtrip("AggregateFunction(uniq, UInt64)");
        roundtrip("AggregateFunction(quantiles(0.5, 0.9), Float64)");
        assert_eq!(
            p("Decimal64(4)"),
            DataType::Decimal {
                precision: 18,
                scale: 4
            }
        );
        assert_eq!(p("Decimal32(2)").to_string(), "Decimal(9, 2)");
        assert_eq!(p("Decimal256(10)").to_string(), "Decimal(76, 10)");
        assert_eq!(p(" Array( UInt8 ) ").to_string(), "Array(UInt8)");
        assert_eq!(p("Map(String,UInt8)").to_string(), "Map(String, UInt8)");
    }

    #[test]
    fn enums_keep_pairs() {
        let ty = p("Enum8('a' = 1, 'b\\'c' = -2, 'd,e' = 3)");
        assert_eq!(
            ty,
            DataType::Enum8(vec![("a".into(), 1), ("b'c".into(), -2), ("d,e".into(), 3)])
        );
        assert_eq!(ty.to_string(), "Enum8('a' = 1, 'b\\'c' = -2, 'd,e' = 3)");
        roundtrip("Enum16('x' = 1000, 'y' = -1000)");
        assert_eq!(
            p("Enum('a', 'b')"),
            DataType::Enum8(vec![("a".into(), 1), ("b".into(), 2)])
        );
        assert!(matches!(p("Enum8('a' = 1000)"), DataType::Other(_)));
    }

    #[test]
    fn named_tuples_and_nested() {
        assert_eq!(
            p("Tuple(a UInt8, `b c` String)"),
            DataType::Tuple(vec![
                (Some("a".into()), DataType::UInt8),
                (Some("b c".into()), DataType::String)
            ])
        );
        assert_eq!(
            p("Tuple(a UInt8, `b c` String)").to_string(),
            "Tuple(a UInt8, `b c` String)"
        );
        assert_eq!(
            p("Nested(id UInt32, name String)"),
            DataType::Array(Box::new(DataType::Tuple(vec![
                (Some("id".into()), DataType::UInt32),
                (Some("name".into()), DataType::String)
            ])))
        );
        // An element that is a parameterised type is not mistaken for a name.
        assert_eq!(
            p("Tuple(Nullable(String), DateTime64(3, 'UTC'))"),
            DataType::Tuple(vec![
                (None, DataType::Nullable(Box::new(DataType::String))),
                (
                    None,
                    DataType::DateTime64 {
                        precision: 3,
                        timezone: Some("UTC".into())
                    }
                )
            ])
        );
    }

    #[test]
    fn simple_aggregate_function_is_its_type() {
        assert_eq!(p("SimpleAggregateFunction(sum, UInt64)"), DataType::UInt64);
        assert_eq!(
            p("SimpleAggregateFunction(sumMap, Tuple(Array(UInt8), Array(Int64)))").to_string(),
            "Tuple(Array(UInt8), Array(Int64))"
        );
        assert_eq!(
            p("AggregateFunction(uniq, UInt64)"),
            DataType::AggregateFunction("uniq, UInt64".into())
        );
    }

    #[test]
    fn unknown_types_are_kept() {
        for s in [
            "JSON",
            "Object('json')",
            "Variant(String, UInt64)",
            "Dynamic(max_types=8)",
            "Point",
            "IntervalSecond",
            "UInt8(3)",
            "Decimal(100, 2)",
            "DateTime(5)",
        ] {
            assert_eq!(p(s), DataType::Other(s.to_string()), "{s}");
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(
            p("Array(Variant(String, UInt64))"),
            DataType::Array(Box::new(DataType::Other("Variant(String, UInt64)".into())))
        );
    }

    #[test]
    fn malformed_syntax_fails() {
        assert_eq!(DataType::parse("  "), Err(TypeParseError::Empty));
        assert!(matches!(
            DataType::parse("Array(UInt8"),
            Err(TypeParseError::Unbalanced(_))
        ));
        assert!(matches!(
            DataType::parse("UInt8)"),
            Err(TypeParseError::Unbalanced(_))
        ));
        assert!(matches!(
            DataType::parse("DateTime('UTC)"),
            Err(TypeParseError::UnterminatedQuote(_))
        ));
        assert!(matches!(
            DataType::parse("Array(UInt8) x"),
            Err(TypeParseError::TrailingInput(_))
        ));
        assert!(matches!(
            DataType::parse("Tuple(UInt8,,String)"),
            Err(TypeParseError::EmptyArgument(_))
        ));
        assert!(matches!(
            DataType::parse("(UInt8)"),
            Err(TypeParseError::Malformed(_))
        ));
        // Errors deep inside propagate.
        assert!(DataType::parse("Map(String, Array(UInt8()").is_err());
        // Parentheses inside quotes do not count.
        assert_eq!(
            p("Enum8('(' = 1, ')' = 2)"),
            DataType::Enum8(vec![("(".into(), 1), (")".into(), 2)])
        );
    }

    #[test]
    fn helpers() {
        let nullable_lc = p("LowCardinality(Nullable(String))");
        assert!(nullable_lc.is_nullable());
        assert!(nullable_lc.is_string_like());
        assert_eq!(nullable_lc.unwrap_wrappers(), &DataType::String);
        assert!(p("Nullable(UInt64)").is_integer());
        assert!(p("Nullable(UInt64)").is_right_aligned());
        assert!(p("Decimal(9, 2)").is_numeric());
        assert!(!p("Decimal(9, 2)").is_integer());
        assert!(p("Float32").is_numeric());
        assert!(!p("Bool").is_numeric());
        assert!(!p("String").is_right_aligned());
        assert!(p("DateTime64(3)").is_temporal());
        assert!(p("Nullable(Date32)").is_temporal());
        assert!(!p("Array(Nullable(String))").is_nullable());
        assert!(!p("UInt8").is_nullable());
    }
}
