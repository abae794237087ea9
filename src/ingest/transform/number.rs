//! Exact reading of numeric text for the transform: record strings (CSV fields are all text)
//! and the decimal form of JSON numbers come in; out go digit strings that integer, decimal and
//! Unix-time coercions check digit by digit, so nothing is rounded through a float on the way.

use std::borrow::Cow;

/// A number written in decimal, normalised: no sign on zero, no leading zeros in `int`, no
/// trailing zeros in `frac`, exponent already applied. `int` empty means zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decimal<'a> {
    pub negative: bool,
    pub int: Cow<'a, str>,
    pub frac: Cow<'a, str>,
}

impl Decimal<'_> {
    pub fn is_integral(&self) -> bool {
        self.frac.is_empty()
    }

    /// The value as an integer count of `10^-scale` units (a Decimal's stored form), or
    /// `None` when it has more decimal places than `scale` or does not fit 38 digits.
    pub fn scaled(&self, scale: u8) -> Option<i128> {
        let scale = usize::from(scale);
        if self.frac.len() > scale || self.int.len() + scale > 38 {
            return None;
        }
        let padding = std::iter::repeat_n(&b'0', scale - self.frac.len());
        let magnitude = self
            .int
            .as_bytes()
            .iter()
            .chain(self.frac.as_bytes())
            .chain(padding)
            .fold(0i128, |n, d| n * 10 + i128::from(d - b'0'));
        Some(if self.negative { -magnitude } else { magnitude })
    }

    /// `[-]int[.frac]`, with `0` for an empty integer part.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.int.len() + self.frac.len() + 3);
        if self.negative {
            out.push('-');
        }
        if self.int.is_empty() {
            out.push('0');
        } else {
            out.push_str(&self.int);
        }
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(&self.frac);
        }
        out
    }
}

/// Exponents beyond this cannot matter for any ClickHouse type (Decimal256 has 76 digits) and
/// would only make the shifted digit string huge.
const MAX_EXPONENT: i64 = 400;

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (at least one mantissa digit), the text of
/// both JSON numbers and the numbers people put in CSV files. Surrounding whitespace is the
/// caller's business. `None` when the text is not such a number.
pub(super) fn parse_decimal(text: &str) -> Option<Decimal<'_>> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int = &text[int_start..i];
    let mut frac = "";
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = &text[start..i];
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exponent: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exponent = (exponent * 10 + i64::from(b[i] - b'0')).min(MAX_EXPONENT + 1);
            i += 1;
        }
        if i == start || exponent > MAX_EXPONENT {
            return None;
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if i != b.len() {
        return None;
    }
    let (int, frac) = if exponent == 0 {
        (Cow::Borrowed(int), Cow::Borrowed(frac))
    } else {
        shift(int, frac, exponent)
    };
    let int = strip_leading_zeros(int);
    let frac = strip_trailing_zeros(frac);
    let negative = negative && !(int.is_empty() && frac.is_empty());
    Some(Decimal {
        negative,
        int,
        frac,
    })
}

/// Moves the decimal point `exponent` places (right when positive).
fn shift<'a>(int: &str, frac: &str, exponent: i64) -> (Cow<'a, str>, Cow<'a, str>) {
    let mut all = String::with_capacity(int.len() + frac.len());
    all.push_str(int);
    all.push_str(frac);
    let point = int.len() as i64 + exponent;
    if point <= 0 {
        let mut frac = "0".repeat(point.unsigned_abs() as usize);
        frac.push_str(&all);
        (Cow::Borrowed(""), Cow::Owned(frac))
    } else if point as usize >= all.len() {
        let zeros = point as usize - all.len();
        all.extend(std::iter::repeat_n('0', zeros));
        (Cow::Owned(all), Cow::Borrowed(""))
    } else {
        let frac = all.split_off(point as usize);
        (Cow::Owned(all), Cow::Owned(frac))
    }
}

fn strip_leading_zeros(s: Cow<'_, str>) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim_start_matches('0')),
        Cow::Owned(o) => {
            let trimmed = o.trim_start_matches('0');
            if trimmed.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(trimmed.to_string())
            }
        }
    }
}

fn strip_trailing_zeros(s: Cow<'_, str>) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim_end_matches('0')),
        Cow::Owned(mut o) => {
            let len = o.trim_end_matches('0').len();
            o.truncate(len);
            Cow::Owned(o)
        }
    }
}

/// Compares two digit strings without leading zeros as the numbers they spell.
pub(super) fn cmp_digits(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The text of a number given as a JSON number or a (trimmed) string, for parsers that work on
/// digits; `None` for other kinds of value.
pub(super) fn numeric_text(v: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        serde_json::Value::String(s) => Some(std::borrow::Cow::Borrowed(s.trim())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<String> {
        parse_decimal(s).map(|d| d.to_text())
    }

    #[test]
    fn normalises() {
        assert_eq!(text("0").as_deref(), Some("0"));
        assert_eq!(text("-0.000").as_deref(), Some("0"));
        assert_eq!(text("+007.50").as_deref(), Some("7.5"));
        assert_eq!(text(".5").as_deref(), Some("0.5"));
        assert_eq!(text("5.").as_deref(), Some("5"));
        assert_eq!(text("1e3").as_deref(), Some("1000"));
        assert_eq!(text("1.25E+1").as_deref(), Some("12.5"));
        assert_eq!(text("-1.5e-7").as_deref(), Some("-0.00000015"));
        assert_eq!(text("123e-1").as_deref(), Some("12.3"));
        assert_eq!(text("123e-3").as_deref(), Some("0.123"));
        assert_eq!(text("123e-4").as_deref(), Some("0.0123"));
        assert!(parse_decimal("1.0e3").unwrap().is_integral());
        let scaled = |s: &str, scale| parse_decimal(s).unwrap().scaled(scale);
        assert_eq!(scaled("-12.5", 2), Some(-1250));
        assert_eq!(scaled("0.001", 3), Some(1));
        assert_eq!(scaled("7", 0), Some(7));
        assert_eq!(scaled("1.234", 2), None);
        assert_eq!(scaled(&"9".repeat(38), 0), Some(10i128.pow(38) - 1));
        assert_eq!(scaled(&"9".repeat(38), 1), None);
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "1.2.3", "1 ", " 1", "0x10", "nan", "1e401", "1_000",
        ] {
            assert_eq!(text(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn compares_digit_strings() {
        use std::cmp::Ordering::*;
        assert_eq!(cmp_digits("99", "100"), Less);
        assert_eq!(cmp_digits("101", "100"), Greater);
        assert_eq!(cmp_digits("100", "100"), Equal);
    }
}
