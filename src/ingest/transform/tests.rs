//! Tests for the transform: tables of values per ClickHouse type (accepted inputs and each kind
//! of rejection), conversions, paths, the missing-field rules, `unmapped`, and the problems
//! `Transform::new` reports. Mappings come from pipeline YAML through `check_str`, as users
//! write them.

use serde_json::{json, Value};

use super::*;
use crate::ingest::pipeline::check_str;

fn column(name: &str, ty: &str, has_server_default: bool) -> TargetColumn {
    TargetColumn {
        name: name.into(),
        data_type: DataType::parse(ty).unwrap(),
        has_server_default,
    }
}

/// A mapping from the YAML under `mapping:` (indented as written here).
fn mapping(yaml: &str) -> Mapping {
    let text = format!(
        "pipelines:\n  - name: t\n    source: {{csv: {{path: x.csv}}}}\n    mapping:\n{}\n    \
         sink: {{table: t}}\n",
        yaml.lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let pipelines = check_str("t.yaml", &text)
        .map_err(|d| crate::config::render_all(&d, Some(&text)))
        .unwrap();
    pipelines[0].mapping.clone()
}

/// Writes `input` into a single column `c` of type `ty` (no mapping: the field of the same
/// name) and returns what the row holds, or the reason.
fn one(ty: &str, input: Value) -> Result<Value, String> {
    let t = Transform::new(&Mapping::default(), &[column("c", ty, false)]).unwrap();
    t.apply(&json!({ "c": input }))
        .map(|mut row| row.remove("c").unwrap())
        .map_err(|e| e.0)
}

/// Like [`one`] with a `convert`.
fn converted(ty: &str, convert: &str, input: Value) -> Result<Value, String> {
    let m = mapping(&format!("columns:\n  c: {{convert: {convert}}}"));
    let t = Transform::new(&m, &[column("c", ty, false)]).unwrap();
    t.apply(&json!({ "c": input }))
        .map(|mut row| row.remove("c").unwrap())
        .map_err(|e| e.0)
}

enum Want {
    Ok(Value),
    /// The reason contains this text.
    Err(&'static str),
}

fn check(ty: &str, cases: Vec<(Value, Want)>) {
    for (input, want) in cases {
        let got = one(ty, input.clone());
        match (want, got) {
            (Want::Ok(w), Ok(g)) => assert_eq!(g, w, "{ty} <- {input}"),
            (Want::Err(w), Err(g)) => {
                assert!(g.contains(w), "{ty} <- {input}: {g:?} lacks {w:?}");
                assert!(
                    g.starts_with(&format!("column `c` ({ty}): ")),
                    "{ty} <- {input}: {g}"
                );
            }
            (Want::Ok(w), Err(g)) => panic!("{ty} <- {input}: wanted {w}, got error {g}"),
            (Want::Err(w), Ok(g)) => panic!("{ty} <- {input}: wanted error {w:?}, got {g}"),
        }
    }
}

use Want::{Err as E, Ok as O};

#[test]
fn narrow_integers() {
    check(
        "UInt8",
        vec![
            (json!(0), O(json!(0))),
            (json!(255), O(json!(255))),
            (json!("255"), O(json!(255))),
            (json!(" 7 "), O(json!(7))),
            (json!("+7"), O(json!(7))),
            (json!(3.0), O(json!(3))),
            (json!("5.00"), O(json!(5))),
            (json!(true), O(json!(1))),
            (json!(false), O(json!(0))),
            (json!(256), E("256 is out of range 0..=255")),
            (json!("256"), E("`256` is out of range 0..=255")),
            (json!(-1), E("-1 is out of range 0..=255")),
            (json!(1e300), E("is out of range 0..=255")),
            (json!(1.5), E("1.5 is not a whole number")),
            (json!("1.5"), E("`1.5` is not a whole number")),
            (json!("abc"), E("`abc` is not an integer")),
            (json!(""), E("`` is not an integer")),
            (json!("0x10"), E("`0x10` is not an integer")),
            (json!([1]), E("`[1]` is not an integer")),
            (json!({"a": 1}), E("`{\"a\":1}` is not an integer")),
        ],
    );
    check(
        "Int8",
        vec![
            (json!(-128), O(json!(-128))),
            (json!("-0"), O(json!(0))),
            (json!(127), O(json!(127))),
            (json!(-129), E("-129 is out of range -128..=127")),
            (json!(128), E("128 is out of range -128..=127")),
        ],
    );
    check(
        "Int16",
        vec![
            (json!(-32768), O(json!(-32768))),
            (json!(32768), E("out of range -32768..=32767")),
        ],
    );
    check(
        "UInt32",
        vec![
            (json!(4294967295u64), O(json!(4294967295u64))),
            (json!("4294967296"), E("out of range 0..=4294967295")),
        ],
    );
    check(
        "UInt64",
        vec![
            (json!(u64::MAX), O(json!(u64::MAX))),
            (json!("18446744073709551615"), O(json!(u64::MAX))),
            (json!("18446744073709551616"), E("out of range")),
            (json!("1".repeat(50)), E("out of range")),
            (json!(-1), E("out of range")),
        ],
    );
    check(
        "Int64",
        vec![
            (json!(i64::MIN), O(json!(i64::MIN))),
            (json!("-9223372036854775808"), O(json!(i64::MIN))),
            (json!("9223372036854775808"), E("out of range")),
        ],
    );
}

#[test]
fn wide_integers_are_exact() {
    let u128_max = u128::MAX.to_string();
    check(
        "UInt128",
        vec![
            (json!(5), O(num("5"))),
            (json!("007"), O(num("7"))),
            (json!(u128_max.clone()), O(num(&u128_max.clone()))),
            (
                json!("340282366920938463463374607431768211456"),
                E("out of range for UInt128"),
            ),
            (json!(-1), E("-1 is out of range for UInt128")),
            (json!("1.5"), E("not a whole number")),
            (json!("x"), E("`x` is not an integer")),
        ],
    );
    check(
        "Int128",
        vec![
            (
                json!("-170141183460469231731687303715884105728"),
                O(num("-170141183460469231731687303715884105728")),
            ),
            (
                json!("-170141183460469231731687303715884105729"),
                E("out of range for Int128"),
            ),
            (
                json!("170141183460469231731687303715884105728"),
                E("out of range for Int128"),
            ),
        ],
    );
    let u256_max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    let i256_min = "-57896044618658097711785492504343953926634992332820282019728792003956564819968";
    check(
        "UInt256",
        vec![
            (json!(u256_max), O(num(u256_max))),
            (
                json!("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
                E("out of range for UInt256"),
            ),
        ],
    );
    check(
        "Int256",
        vec![
            (json!(i256_min), O(num(i256_min))),
            (json!(-3), O(num("-3"))),
            (
                json!(
                    "57896044618658097711785492504343953926634992332820282019728792003956564819968"
                ),
                E("out of range for Int256"),
            ),
        ],
    );
}

#[test]
fn floats() {
    check(
        "Float64",
        vec![
            (json!(1.5), O(json!(1.5))),
            (json!(3), O(json!(3))),
            (json!("2.5"), O(json!(2.5))),
            (json!(" 1e3 "), O(json!(1000.0))),
            (json!("-.5"), O(json!(-0.5))),
            (json!("nan"), O(json!("nan"))),
            (json!("NaN"), O(json!("nan"))),
            (json!("inf"), O(json!("inf"))),
            (json!("+Infinity"), O(json!("inf"))),
            (json!("-inf"), O(json!("-inf"))),
            (json!("--inf"), E("`--inf` is not a number")),
            (json!("1e400"), E("`1e400` is out of range for Float64")),
            (json!("abc"), E("`abc` is not a number")),
            (json!("1,5"), E("`1,5` is not a number")),
            (json!(true), E("true is not a number")),
            (json!([1.5]), E("is not a number")),
        ],
    );
    check(
        "Float32",
        vec![
            (json!(0.25), O(json!(0.25))),
            (json!(1e39), E("out of range for Float32")),
            (json!("-1e39"), E("out of range for Float32")),
        ],
    );
}

#[test]
fn booleans() {
    check(
        "Bool",
        vec![
            (json!(true), O(json!(true))),
            (json!(false), O(json!(false))),
            (json!(1), O(json!(true))),
            (json!(0), O(json!(false))),
            (json!("TRUE"), O(json!(true))),
            (json!(" false "), O(json!(false))),
            (json!("1"), O(json!(true))),
            (json!("0"), O(json!(false))),
            (json!(2), E("2 is not a boolean")),
            (
                json!("yes"),
                E("`yes` is not a boolean (use true/false or 1/0)"),
            ),
            (json!([]), E("is not a boolean")),
        ],
    );
}

#[test]
fn decimals_are_exact_bare_numbers() {
    check(
        "Decimal(9, 2)",
        vec![
            (json!(1.5), O(num("1.5"))),
            (json!(12), O(num("12"))),
            (json!("0012.10"), O(num("12.1"))),
            (json!("-0.10"), O(num("-0.1"))),
            (json!("1234567.89"), O(num("1234567.89"))),
            (json!(1e2), O(num("100"))),
            (json!("1.2e-1"), O(num("0.12"))),
            (
                json!("12.345"),
                E("`12.345` has 3 decimal places, more than the scale 2 (Aurora does not round)"),
            ),
            (json!(0.001), E("0.001 has 3 decimal places")),
            (
                json!("12345678"),
                E("`12345678` has 8 integer digits, more than the 7 that Decimal(9, 2) holds"),
            ),
            (json!("1e7"), E("8 integer digits")),
            (json!("abc"), E("`abc` is not a number")),
            (json!("nan"), E("`nan` is not a number")),
            (json!(true), E("true is not a number")),
        ],
    );
    check(
        "Decimal(38, 10)",
        vec![(
            json!("1234567890123456789012345678.0123456789"),
            O(num("1234567890123456789012345678.0123456789")),
        )],
    );
    check(
        "Decimal(3, 3)",
        vec![
            (json!("0.123"), O(num("0.123"))),
            (json!("1.5"), E("1 integer digits, more than the 0")),
        ],
    );
}

#[test]
fn strings() {
    check(
        "String",
        vec![
            (json!("x y"), O(json!("x y"))),
            (json!(""), O(json!(""))),
            (json!(" kept "), O(json!(" kept "))),
            (json!(12), O(json!("12"))),
            (json!(1.5), O(json!("1.5"))),
            (json!(true), O(json!("true"))),
            (
                json!({"a": 1}),
                E("`{\"a\":1}` is an object; add `convert: json` to store its JSON text"),
            ),
            (json!([1, 2]), E("`[1,2]` is an array; add `convert: json`")),
        ],
    );
    check(
        "FixedString(2)",
        vec![
            (json!("ab"), O(json!("ab"))),
            (json!("a"), O(json!("a"))),
            (json!("é"), O(json!("é"))),
            (json!(12), O(json!("12"))),
            (
                json!("abc"),
                E("`abc` is 3 bytes, longer than FixedString(2)"),
            ),
            (json!("éa"), E("`éa` is 3 bytes")),
            (json!(123), E("`123` is 3 bytes")),
            (json!({}), E("is an object")),
        ],
    );
    check("LowCardinality(String)", vec![(json!(5), O(json!("5")))]);
}

#[test]
fn uuids_and_addresses() {
    let id = "123e4567-e89b-12d3-a456-426614174000";
    check(
        "UUID",
        vec![
            (json!(id), O(json!(id))),
            (json!(id.to_uppercase()), O(json!(id.to_uppercase()))),
            (json!(format!(" {id} ")), O(json!(id))),
            (json!(id.replace('-', "")), E("is not a UUID")),
            (json!(id.replace('1', "z")), E("is not a UUID")),
            (json!(&id[..35]), E("is not a UUID")),
            (json!(5), E("5 is not a UUID")),
        ],
    );
    check(
        "IPv4",
        vec![
            (json!("1.2.3.4"), O(json!("1.2.3.4"))),
            (json!(" 10.0.0.1 "), O(json!("10.0.0.1"))),
            (json!("1.2.3"), E("`1.2.3` is not an IPv4 address")),
            (json!("256.1.1.1"), E("is not an IPv4 address")),
            (json!("::1"), E("is not an IPv4 address")),
            (json!(16909060), E("is not an IPv4 address")),
        ],
    );
    check(
        "IPv6",
        vec![
            (json!("::1"), O(json!("::1"))),
            (json!("2001:DB8:0:0::1"), O(json!("2001:db8::1"))),
            (json!("1.2.3.4"), O(json!("::ffff:1.2.3.4"))),
            (json!("x"), E("`x` is not an IPv6 address")),
        ],
    );
}

#[test]
fn dates() {
    check(
        "Date",
        vec![
            (json!("2024-02-29"), O(json!("2024-02-29"))),
            (json!(" 2024-01-31 "), O(json!("2024-01-31"))),
            (json!("2024-02-29 13:00:00"), O(json!("2024-02-29"))),
            // The offset moves the instant to UTC, and with it the day.
            (json!("2024-02-29T23:00:00-02:00"), O(json!("2024-03-01"))),
            (json!("2024-03-01T00:30:00+01:00"), O(json!("2024-02-29"))),
            (json!("1970-01-01"), O(json!("1970-01-01"))),
            (json!("2149-06-06"), O(json!("2149-06-06"))),
            (
                json!("2023-02-29"),
                E("`2023-02-29` is not a date (use YYYY-MM-DD)"),
            ),
            (json!("1900-02-29"), E("is not a date")),
            (json!("2024-04-31"), E("is not a date")),
            (json!("2024/01/01"), E("is not a date")),
            (json!(19000), E("19000 is not a date")),
            (
                json!("1969-12-31"),
                E("`1969-12-31` is outside the Date range 1970-01-01..=2149-06-06"),
            ),
            (json!("2149-06-07"), E("outside the Date range")),
        ],
    );
    check(
        "Date32",
        vec![
            (json!("1900-01-01"), O(json!("1900-01-01"))),
            (json!("2000-02-29"), O(json!("2000-02-29"))),
            (json!("2299-12-31"), O(json!("2299-12-31"))),
            (
                json!("1899-12-31"),
                E("outside the Date32 range 1900-01-01..=2299-12-31"),
            ),
        ],
    );
}

#[test]
fn date_times() {
    check(
        "DateTime",
        vec![
            (utc("2024-01-02 03:04:05"), O(utc("2024-01-02 03:04:05"))),
            (json!("2024-01-02T03:04:05Z"), O(utc("2024-01-02 03:04:05"))),
            (json!("2024-01-02t03:04:05z"), O(utc("2024-01-02 03:04:05"))),
            (json!("2024-01-02T03:04:05.999+01:00"), O(utc("2024-01-02 02:04:05"))),
            (json!("2024-01-01T23:30:00-01:00"), O(utc("2024-01-02 00:30:00"))),
            (json!("2024-03-01T00:30:00+0100"), O(utc("2024-02-29 23:30:00"))),
            (json!("2023-12-31T23:00:00-05"), O(utc("2024-01-01 04:00:00"))),
            (json!("2024-01-02T03:04"), O(utc("2024-01-02 03:04:00"))),
            (json!("2024-01-02"), O(utc("2024-01-02 00:00:00"))),
            (json!(0), O(utc("1970-01-01 00:00:00"))),
            (json!(1700000000), O(utc("2023-11-14 22:13:20"))),
            (json!(4294967295u64), O(utc("2106-02-07 06:28:15"))),
            (
                json!(4294967296u64),
                E("4294967296 is outside the DateTime range 1970-01-01 00:00:00..=2106-02-07 06:28:15"),
            ),
            (json!(u64::MAX), E("outside the DateTime range")),
            (json!(-1), E("-1 is outside the DateTime range")),
            (json!("1969-12-31 23:59:59"), E("outside the DateTime range")),
            (json!("1970-01-01T00:30:00+01:00"), E("outside the DateTime range")),
            (json!(1.5), E("1.5 is not a whole number of seconds (add `convert: unix_seconds`")),
            (
                json!("1700000000"),
                E("`1700000000` is not a date-time (use YYYY-MM-DD hh:mm:ss or ISO 8601, or add `convert: unix_seconds` for Unix time)"),
            ),
            (json!("2024-01-02 25:00:00"), E("is not a date-time")),
            (json!("2023-02-29 00:00:00"), E("is not a date-time")),
            (json!("2024-01-02 03:04:05 +01:00"), E("is not a date-time")),
            (json!(true), E("true is not a date-time")),
        ],
    );
    // The exact sentence a dead-letter row carries.
    assert_eq!(
        one("DateTime", json!("2024-13-01")).unwrap_err(),
        "column `c` (DateTime): `2024-13-01` is not a date-time (use YYYY-MM-DD hh:mm:ss or ISO \
         8601)"
    );
    check(
        "DateTime('UTC')",
        vec![(json!("2024-01-02T03:04:05Z"), O(utc("2024-01-02 03:04:05")))],
    );
    // A column with its own zone would read text in that zone: Unix time is unambiguous.
    check(
        "DateTime('Europe/Amsterdam')",
        vec![
            (json!("2024-01-02 03:04:05"), O(json!(1704164645))),
            (json!("2024-01-02T04:04:05+01:00"), O(json!(1704164645))),
            (json!(-1), E("outside the DateTime range")),
        ],
    );
    check("Nullable(DateTime)", vec![(json!(null), O(json!(null)))]);
}

#[test]
fn date_time64() {
    check(
        "DateTime64(3)",
        vec![
            (
                json!("2024-01-02T03:04:05.123456Z"),
                O(json!("2024-01-02 03:04:05.123")),
            ),
            (
                json!("2024-01-02 03:04:05"),
                O(json!("2024-01-02 03:04:05.000")),
            ),
            (
                json!("2024-01-02 03:04:05.5"),
                O(json!("2024-01-02 03:04:05.500")),
            ),
            (json!(5), O(json!("1970-01-01 00:00:05.000"))),
            (
                json!("1900-01-01 00:00:00"),
                O(json!("1900-01-01 00:00:00.000")),
            ),
            (
                json!("1969-12-31T23:59:59.9Z"),
                O(json!("1969-12-31 23:59:59.900")),
            ),
            (
                json!("1899-12-31 23:59:59"),
                E("outside the DateTime64(3) range 1900-01-01 00:00:00..=2299-12-31 23:59:59"),
            ),
        ],
    );
    check(
        "DateTime64(0, 'UTC')",
        vec![(
            json!("2024-01-02T03:04:05.9Z"),
            O(json!("2024-01-02 03:04:05")),
        )],
    );
    check(
        "DateTime64(9)",
        vec![
            (
                json!("2262-04-11 23:47:15.999999999"),
                O(json!("2262-04-11 23:47:15.999999999")),
            ),
            (
                json!("2262-04-11 23:47:16"),
                E("range 1900-01-01 00:00:00..=2262-04-11 23:47:15"),
            ),
        ],
    );
}

#[test]
fn enums() {
    check(
        "Enum8('a' = 1, 'b' = 2, 'c d' = -3)",
        vec![
            (json!("a"), O(json!("a"))),
            (json!("c d"), O(json!("c d"))),
            (json!(2), O(json!("b"))),
            (json!(-3), O(json!("c d"))),
            (json!("2"), O(json!("b"))),
            (
                json!("A"),
                E("`A` is not one of the enum's names: a, b, c d"),
            ),
            (json!(3), E("3 is not one of the enum's names")),
            (json!(true), E("is not one of the enum's names")),
        ],
    );
    check("Enum16('big' = 1000)", vec![(json!(1000), O(json!("big")))]);
}

#[test]
fn containers() {
    check(
        "Array(UInt8)",
        vec![
            (json!([]), O(json!([]))),
            (json!([1, "2", 3.0]), O(json!([1, 2, 3]))),
            (json!([1, 300]), E("element 1: 300 is out of range 0..=255")),
            (
                json!([null]),
                E("element 0: null where the type is not Nullable"),
            ),
            (json!("1,2"), E("`1,2` is not an array")),
            (json!({"0": 1}), E("is not an array")),
        ],
    );
    check(
        "Array(Nullable(UInt8))",
        vec![(json!([1, null]), O(json!([1, null])))],
    );
    check(
        "Array(Array(String))",
        vec![
            (json!([["a"], [1, true]]), O(json!([["a"], ["1", "true"]]))),
            (
                json!([["a"], [{}]]),
                E("element 1: element 0: `{}` is an object"),
            ),
        ],
    );
    check(
        "Map(String, UInt16)",
        vec![
            (json!({"a": 1, "b": "2"}), O(json!({"a": 1, "b": 2}))),
            (json!({}), O(json!({}))),
            (
                json!({"a": -1}),
                E("value of `a`: -1 is out of range 0..=65535"),
            ),
            (json!([["a", 1]]), E("is not an object")),
        ],
    );
    check(
        "Map(UInt8, String)",
        vec![
            (json!({"1": "x"}), O(json!({"1": "x"}))),
            (json!({"x": "y"}), E("key `x`: `x` is not an integer")),
        ],
    );
    check(
        "Map(LowCardinality(String), Array(Date))",
        vec![(
            json!({"k": ["2024-01-01"]}),
            O(json!({"k": ["2024-01-01"]})),
        )],
    );
    check(
        "Tuple(UInt8, String)",
        vec![
            (json!([1, 2]), O(json!([1, "2"]))),
            (json!([1]), E("`[1]` has 1 elements; the tuple has 2")),
            (json!([1, {}]), E("element 1: `{}` is an object")),
            (json!({"a": 1}), E("is not an array")),
        ],
    );
    check(
        "Tuple(a UInt8, b Nullable(String))",
        vec![
            (json!({"a": 1, "b": "x"}), O(json!([1, "x"]))),
            (json!({"a": 1}), O(json!([1, null]))),
            (
                json!({"b": "x"}),
                E("`a`: null where the type is not Nullable"),
            ),
            (json!([2, null]), O(json!([2, null]))),
        ],
    );
}

#[test]
fn nullable_wrappers() {
    check(
        "Nullable(UInt8)",
        vec![(json!(5), O(json!(5))), (json!(null), O(json!(null)))],
    );
    check(
        "LowCardinality(Nullable(String))",
        vec![(json!(null), O(json!(null))), (json!("x"), O(json!("x")))],
    );
    // Without a default, a null in a non-Nullable column is a missing value.
    assert_eq!(
        one("UInt8", json!(null)).unwrap_err(),
        "required field `c` is null for column `c` (UInt8, not Nullable, no default)"
    );
}

#[test]
fn unix_seconds() {
    let s = |ty: &str, v: Value| converted(ty, "unix_seconds", v);
    assert_eq!(s("DateTime", json!(0)).unwrap(), utc("1970-01-01 00:00:00"));
    assert_eq!(
        s("DateTime", json!("1700000000")).unwrap(),
        utc("2023-11-14 22:13:20")
    );
    assert_eq!(
        s("DateTime", json!(" 1700000000.9 ")).unwrap(),
        utc("2023-11-14 22:13:20")
    );
    assert_eq!(
        s("DateTime", json!(4294967295u64)).unwrap(),
        utc("2106-02-07 06:28:15")
    );
    assert_eq!(
        s("DateTime64(3)", json!(1700000000.123)).unwrap(),
        json!("2023-11-14 22:13:20.123")
    );
    assert_eq!(
        s("DateTime64(3)", json!(-1.5)).unwrap(),
        json!("1969-12-31 23:59:58.500")
    );
    assert_eq!(
        s("DateTime64(6)", json!("-0.000001")).unwrap(),
        json!("1969-12-31 23:59:59.999999")
    );
    assert_eq!(
        s("DateTime64(3)", json!("1.7e9")).unwrap(),
        json!("2023-11-14 22:13:20.000")
    );
    assert_eq!(s("Date", json!(1700000000)).unwrap(), json!("2023-11-14"));
    assert_eq!(s("Date32", json!(-86400)).unwrap(), json!("1969-12-31"));
    assert_eq!(
        s("String", json!(1700000000.25)).unwrap(),
        json!("2023-11-14 22:13:20.25")
    );
    assert_eq!(
        s("Nullable(DateTime)", json!(1)).unwrap(),
        utc("1970-01-01 00:00:01")
    );
    assert_eq!(
        s("DateTime", json!(-1)).unwrap_err(),
        "column `c` (DateTime): `1969-12-31 23:59:59` is outside the DateTime range 1970-01-01 \
         00:00:00..=2106-02-07 06:28:15"
    );
    assert!(s("DateTime", json!(4294967296u64))
        .unwrap_err()
        .contains("outside the DateTime range"));
    assert_eq!(
        s("DateTime", json!(1e20)).unwrap_err(),
        "column `c` (DateTime): `convert: unix_seconds`: 1e+20 is too far from 1970 to be a \
         date-time (years 0000 to 9999)"
    );
    assert!(s("DateTime", json!(i64::MIN))
        .unwrap_err()
        .contains("too far from 1970"));
    assert!(s("DateTime", json!("9".repeat(30)))
        .unwrap_err()
        .contains("too far from 1970"));
    assert_eq!(
        s("DateTime", json!("abc")).unwrap_err(),
        "column `c` (DateTime): `convert: unix_seconds`: `abc` is not a Unix time in seconds"
    );
    assert!(s("DateTime", json!([1]))
        .unwrap_err()
        .contains("is not a Unix time"));
    assert!(s("DateTime", json!("2024-01-01"))
        .unwrap_err()
        .contains("is not a Unix time"));
}

#[test]
fn unix_millis() {
    let ms = |ty: &str, v: Value| converted(ty, "unix_millis", v);
    assert_eq!(
        ms("DateTime64(3)", json!(1700000000123u64)).unwrap(),
        json!("2023-11-14 22:13:20.123")
    );
    assert_eq!(
        ms("DateTime64(3)", json!(-1)).unwrap(),
        json!("1969-12-31 23:59:59.999")
    );
    assert_eq!(
        ms("DateTime64(3)", json!(0)).unwrap(),
        json!("1970-01-01 00:00:00.000")
    );
    assert_eq!(
        ms("DateTime64(6)", json!("1700000000123.5")).unwrap(),
        json!("2023-11-14 22:13:20.123500")
    );
    assert_eq!(
        ms("DateTime", json!(1700000000999u64)).unwrap(),
        utc("2023-11-14 22:13:20")
    );
    assert_eq!(
        ms("Date", json!(1700000000123u64)).unwrap(),
        json!("2023-11-14")
    );
    assert_eq!(
        ms("String", json!(1500)).unwrap(),
        json!("1970-01-01 00:00:01.5")
    );
    assert_eq!(
        ms("FixedString(19)", json!(2000)).unwrap(),
        json!("1970-01-01 00:00:02")
    );
    assert!(ms("FixedString(19)", json!(2001))
        .unwrap_err()
        .contains("`1970-01-01 00:00:02.001` is 23 bytes, longer than FixedString(19)"));
    assert!(ms("DateTime", json!(-1))
        .unwrap_err()
        .contains("outside the DateTime range"));
    assert!(ms("Date", json!(10_000_000_000_000u64))
        .unwrap_err()
        .contains("`2286-11-20 17:46:40` is outside the Date range"));
    assert!(ms("DateTime", json!("x"))
        .unwrap_err()
        .contains("not a Unix time in milliseconds"));
}

#[test]
fn other_conversions() {
    let c = converted;
    assert_eq!(c("UInt8", "number", json!("42")).unwrap(), json!(42));
    assert_eq!(c("Int8", "number", json!(" -5 ")).unwrap(), json!(-5));
    assert_eq!(
        c("Int64", "number", json!("-9223372036854775808")).unwrap(),
        json!(i64::MIN)
    );
    assert_eq!(c("Float64", "number", json!(" 3.5 ")).unwrap(), json!(3.5));
    assert_eq!(c("Float64", "number", json!(7)).unwrap(), json!(7));
    assert_eq!(c("String", "number", json!("042")).unwrap(), json!("42"));
    assert_eq!(
        c("UInt128", "number", json!("123456789012345678901234567890")).unwrap(),
        num("123456789012345678901234567890")
    );
    assert_eq!(
        c("DateTime", "number", json!("60")).unwrap(),
        utc("1970-01-01 00:01:00")
    );
    assert_eq!(
        c("UInt8", "number", json!("x")).unwrap_err(),
        "column `c` (UInt8): `convert: number`: `x` is not a number"
    );
    assert!(c("UInt8", "number", json!(true))
        .unwrap_err()
        .contains("true is not a number"));
    assert!(c("UInt8", "number", json!("300"))
        .unwrap_err()
        .contains("300 is out of range"));

    assert_eq!(
        c("String", "lower", json!("HeLLo Ü")).unwrap(),
        json!("hello ü")
    );
    assert_eq!(
        c("String", "upper", json!("straße")).unwrap(),
        json!("STRASSE")
    );
    assert_eq!(c("String", "upper", json!(1e3)).unwrap(), json!("1000.0"));
    assert_eq!(c("String", "upper", json!(true)).unwrap(), json!("TRUE"));
    assert_eq!(
        c("Enum8('A' = 1)", "upper", json!("a")).unwrap(),
        json!("A")
    );
    assert_eq!(
        c("FixedString(2)", "lower", json!("DE")).unwrap(),
        json!("de")
    );
    assert!(c("String", "lower", json!({"A": 1}))
        .unwrap_err()
        .contains("is not text"));

    assert_eq!(
        c("String", "json", json!({"b": [1, 2], "a": null})).unwrap(),
        json!("{\"a\":null,\"b\":[1,2]}")
    );
    assert_eq!(c("String", "json", json!("x")).unwrap(), json!("\"x\""));
    assert_eq!(c("String", "json", json!(12)).unwrap(), json!("12"));
    assert!(c("FixedString(3)", "json", json!([1, 2]))
        .unwrap_err()
        .contains("`[1,2]` is 5 bytes"));
}

#[test]
fn nested_paths_and_array_indexing() {
    let m = mapping(
        "columns:\n  user_id: user.id\n  sku: {from: items.0.sku}\n  second: items.1.sku\n  \
         digit_key: {from: m.0}\n  deep: {from: a.b.c}",
    );
    let t = Transform::new(
        &m,
        &[
            column("user_id", "UInt64", false),
            column("sku", "String", false),
            column("second", "Nullable(String)", false),
            column("digit_key", "Nullable(UInt8)", false),
            column("deep", "Nullable(UInt8)", false),
        ],
    )
    .unwrap();
    let row = t
        .apply(&json!({
            "user": {"id": "42", "name": "x"},
            "items": [{"sku": "A-1"}, {"sku": "B-2"}],
            "m": {"0": 7},
            "a": {"b": {"c": 1}}
        }))
        .unwrap();
    assert_eq!(
        Value::Object(row),
        json!({"user_id": 42, "sku": "A-1", "second": "B-2", "digit_key": 7, "deep": 1})
    );
    // Past the end of an array, through a scalar, a non-numeric step into an array: missing.
    let row = t
        .apply(&json!({
            "user": {"id": 1},
            "items": [{"sku": "A-1"}],
            "m": [5],
            "a": {"b": "scalar"}
        }))
        .unwrap();
    assert_eq!(
        Value::Object(row),
        json!({"user_id": 1, "sku": "A-1", "second": null, "digit_key": 5, "deep": null})
    );
    assert_eq!(
        t.apply(&json!({"user": "u1", "items": [{"sku": "x"}]}))
            .unwrap_err()
            .0,
        "missing required field `user.id` for column `user_id`"
    );
    assert_eq!(
        t.columns().collect::<Vec<_>>(),
        // The mapping's order, as written in the file.
        ["user_id", "sku", "second", "digit_key", "deep"]
    );
}

#[test]
fn defaults_nullable_server_default_and_required() {
    let m = mapping(
        "columns:\n  country: {from: geo.country, default: xx, convert: upper}\n  \
         plain_default: {default: 5}\n  maybe: {from: m}\n  filled: {from: f}\n  \
         filled_nullable: {from: fn}\n  user_id: user.id",
    );
    let table = [
        column("country", "FixedString(2)", false),
        column("plain_default", "UInt8", true),
        column("maybe", "Nullable(String)", false),
        column("filled", "DateTime", true),
        column("filled_nullable", "Nullable(UInt8)", true),
        column("user_id", "UInt64", false),
        column("unmapped_col", "String", false),
    ];
    let t = Transform::new(&m, &table).unwrap();
    // Everything missing but the required field.
    let row = t.apply(&json!({"user": {"id": 1}})).unwrap();
    assert_eq!(
        Value::Object(row),
        json!({
            "country": "XX",
            "plain_default": 5,
            "maybe": null,
            "filled_nullable": null,
            "user_id": 1
        })
    );
    // Nulls count as missing.
    let row = t
        .apply(
            &json!({"user": {"id": 1}, "geo": {"country": null}, "plain_default": null, "f": null}),
        )
        .unwrap();
    assert_eq!(row["country"], json!("XX"));
    assert_eq!(row["plain_default"], json!(5));
    assert!(!row.contains_key("filled"));
    // Present values win, and go through `convert`.
    let row = t
        .apply(&json!({
            "user": {"id": 1},
            "geo": {"country": "nl"},
            "plain_default": 9,
            "m": "x",
            "f": "2024-01-01 00:00:00",
            "fn": 3
        }))
        .unwrap();
    assert_eq!(
        Value::Object(row),
        json!({
            "country": "NL",
            "plain_default": 9,
            "maybe": "x",
            "filled": utc("2024-01-01 00:00:00"),
            "filled_nullable": 3,
            "user_id": 1
        })
    );
    assert_eq!(
        t.apply(&json!({})).unwrap_err().0,
        "missing required field `user.id` for column `user_id`"
    );
    assert_eq!(
        t.apply(&json!({"user": {"id": null}})).unwrap_err().0,
        "required field `user.id` is null for column `user_id` (UInt64, not Nullable, no default)"
    );
    // A present but bad value is not replaced by the default.
    assert_eq!(
        t.apply(&json!({"user": {"id": 1}, "geo": {"country": "nld"}}))
            .unwrap_err()
            .0,
        "column `country` (FixedString(2)): `NLD` is 3 bytes, longer than FixedString(2)"
    );
}

#[test]
fn without_a_mapping_every_column_is_fed_by_name() {
    let table = [
        column("id", "UInt32", false),
        column("note", "Nullable(String)", false),
        column("created", "DateTime", true),
        column("tag", "Nullable(String)", true),
        column("agg", "AggregateFunction(uniq, UInt64)", true),
        column("_aurora_source", "String", false),
        column("_aurora_offset", "UInt64", false),
    ];
    let t = Transform::new(&Mapping::default(), &table).unwrap();
    assert_eq!(
        t.columns().collect::<Vec<_>>(),
        ["id", "note", "created", "tag"]
    );
    // What a CSV source yields: text, with empty fields as null.
    let row = t.apply(&json!({"id": "7", "note": null})).unwrap();
    assert_eq!(Value::Object(row), json!({"id": 7, "note": null}));
    let row = t
        .apply(&json!({"id": 7, "created": null, "tag": null}))
        .unwrap();
    assert_eq!(
        Value::Object(row),
        json!({"id": 7, "note": null, "tag": null})
    );
    let row = t
        .apply(&json!({"id": 7, "created": "2024-01-01T00:00:00Z", "tag": "t", "other": 1}))
        .unwrap();
    assert_eq!(
        Value::Object(row),
        json!({"id": 7, "note": null, "created": utc("2024-01-01 00:00:00"), "tag": "t"})
    );
    assert_eq!(
        t.apply(&json!({"note": "x"})).unwrap_err().0,
        "missing required field `id` for column `id`"
    );
}

#[test]
fn unmapped_fail_and_ignore() {
    let table = [
        column("a", "UInt8", false),
        column("user_id", "UInt8", false),
    ];
    let fail = Transform::new(
        &mapping("unmapped: fail\ncolumns:\n  a: a\n  user_id: user.id"),
        &table,
    )
    .unwrap();
    let ignore = Transform::new(&mapping("columns:\n  a: a\n  user_id: user.id"), &table).unwrap();
    let ok = json!({"a": 1, "user": {"id": 2, "nested_extra": 3}});
    assert!(fail.apply(&ok).is_ok());
    let extra = json!({"zz": 1, "a": 1, "b": 2, "user": {"id": 2}});
    assert_eq!(
        fail.apply(&extra).unwrap_err().0,
        "field `b` is not mapped to any column (and 1 more); `unmapped: ignore` would drop them"
    );
    assert_eq!(
        fail.apply(&json!({"a": 1, "user": {"id": 2}, "x": null}))
            .unwrap_err()
            .0,
        "field `x` is not mapped to any column; `unmapped: ignore` would drop it"
    );
    assert_eq!(
        Value::Object(ignore.apply(&extra).unwrap()),
        json!({"a": 1, "user_id": 2})
    );
    // Without a mapping the known fields are the column names.
    let by_name = Transform::new(
        &mapping("unmapped: fail"),
        &[column("a", "UInt8", false), column("d", "UInt8", true)],
    )
    .unwrap();
    assert!(by_name.apply(&json!({"a": 1, "d": 2})).is_ok());
    assert!(by_name
        .apply(&json!({"a": 1, "e": 2}))
        .unwrap_err()
        .0
        .starts_with("field `e` is not mapped"));
}

#[test]
fn records_must_be_objects() {
    let t = Transform::new(&Mapping::default(), &[column("a", "UInt8", false)]).unwrap();
    for record in [json!([1, 2]), json!("text"), json!(5), json!(null)] {
        assert_eq!(
            t.apply(&record).unwrap_err(),
            RecordError("the record is not a JSON object".into())
        );
    }
}

#[test]
fn messages_quote_values_briefly_on_one_line() {
    let long = "x".repeat(200);
    let e = one("UInt8", json!(long)).unwrap_err();
    assert_eq!(
        e,
        format!(
            "column `c` (UInt8): `{}...` is not an integer",
            "x".repeat(60)
        )
    );
    let e = one("UInt8", json!("a\nb\tc")).unwrap_err();
    assert_eq!(e, "column `c` (UInt8): `a\\nb\\tc` is not an integer");
    let big = json!({"k": "v".repeat(100)});
    let e = one("String", big).unwrap_err();
    assert!(
        e.contains("`{\"k\":\"vvvv") && e.contains("...` is an object"),
        "{e}"
    );
}

#[test]
fn new_reports_every_problem() {
    let m = mapping(
        "columns:\n  usr_id: user.id\n  agg: a\n  nested_json: n\n  berlin: b\n  \
         small: {from: t, convert: unix_seconds}\n  list: {from: l, convert: unix_millis}\n  \
         blob: {from: j, convert: json}\n  day: {from: d, convert: number}\n  \
         short: {from: s, convert: unix_seconds}\n  \
         bad_default: {default: 300}\n  bad_default_date: {default: '2024-02-30'}\n  \
         path: {from: 'a..b'}\n  _aurora_offset: o\n  nothing: x",
    );
    let table = [
        column("user_id", "UInt64", false),
        column("agg", "AggregateFunction(uniq, UInt64)", false),
        column("nested_json", "Array(JSON)", false),
        column("berlin", "DateTime64(3, 'Europe/Berlin')", false),
        column("small", "UInt8", false),
        column("list", "Array(DateTime)", false),
        column("blob", "UInt8", false),
        column("day", "Date", false),
        column("short", "FixedString(8)", false),
        column("bad_default", "UInt8", false),
        column("bad_default_date", "Date", false),
        column("path", "String", false),
        column("_aurora_offset", "UInt64", false),
    ];
    let problems = Transform::new(&m, &table).unwrap_err();
    let expected = [
        "column `_aurora_offset` is written by Aurora itself (it records where each row came \
         from); remove it from the mapping",
        "column `agg` has type AggregateFunction(uniq, UInt64), which the transform cannot produce",
        "column `bad_default` (UInt8): the default 300 cannot be used: 300 is out of range 0..=255",
        "column `bad_default_date` (Date): the default `2024-02-30` cannot be used: `2024-02-30` \
         is not a date (use YYYY-MM-DD)",
        "column `berlin` has type DateTime64(3, 'Europe/Berlin'), which the transform cannot \
         produce: it is written as UTC text, which this column would read as Europe/Berlin time; \
         use a UTC DateTime64 column",
        "column `blob` (UInt8): `convert: json` makes JSON text, which cannot go into UInt8",
        "column `day` (Date): `convert: number` makes a number, which cannot go into Date",
        "column `list` (Array(DateTime)): `convert: unix_millis` makes a date-time, which cannot \
         go into Array(DateTime)",
        "column `nested_json` has type Array(JSON), which the transform cannot produce (because \
         of the `JSON` inside it)",
        "the mapping names column `nothing`, which the table does not have",
        "column `path`: `from: a..b` has an empty path segment (use `a.b.0` style paths)",
        "column `short` (FixedString(8)): `convert: unix_seconds` makes a date-time, which \
         cannot go into FixedString(8)",
        "column `small` (UInt8): `convert: unix_seconds` makes a date-time, which cannot go into \
         UInt8",
        "the mapping names column `usr_id`, which the table does not have; did you mean \
         `user_id`?",
    ];
    // Problems come in the mapping's order; compare as sets.
    let mut problems = problems;
    problems.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(problems, expected);
}

#[test]
fn new_checks_defaults_through_convert_and_accepts_good_ones() {
    let m = mapping(
        "columns:\n  ts: {default: 0, convert: unix_seconds}\n  \
         when: {default: '2024-01-01T10:00:00+02:00'}\n  none: {default: null}\n  \
         tags: {default: [a, b]}",
    );
    let t = Transform::new(
        &m,
        &[
            column("ts", "DateTime", false),
            column("when", "DateTime", false),
            column("none", "UInt8", true),
            column("tags", "Array(String)", false),
        ],
    )
    .unwrap();
    assert_eq!(
        Value::Object(t.apply(&json!({})).unwrap()),
        json!({"ts": utc("1970-01-01 00:00:00"), "when": utc("2024-01-01 08:00:00"), "tags": ["a", "b"]})
    );
    let m = mapping("columns:\n  ts: {default: soon, convert: unix_seconds}");
    assert_eq!(
        Transform::new(&m, &[column("ts", "DateTime", false)]).unwrap_err(),
        [
            "column `ts` (DateTime): the default `soon` cannot be used: `convert: unix_seconds`: \
          `soon` is not a Unix time in seconds"
        ]
    );
}

#[test]
fn without_a_mapping_unsupported_required_columns_are_reported() {
    let problems = Transform::new(
        &Mapping::default(),
        &[
            column("x", "Nullable(Nothing)", false),
            column("y", "Object('json')", false),
        ],
    )
    .unwrap_err();
    assert_eq!(
        problems,
        [
            "column `x` has type Nullable(Nothing), which the transform cannot produce (because \
             of the `Nothing` inside it)",
            "column `y` has type Object('json'), which the transform cannot produce",
        ]
    );
}

#[test]
fn a_csv_record_end_to_end() {
    let m = mapping(
        "columns:\n  id: id\n  price: price\n  ts: {from: time, convert: unix_seconds}\n  \
         note: note\n  country: {from: country, default: XX, convert: upper}",
    );
    let t = Transform::new(
        &m,
        &[
            column("id", "UInt32", false),
            column("price", "Decimal(9, 2)", false),
            column("ts", "DateTime", false),
            column("note", "Nullable(String)", false),
            column("country", "LowCardinality(FixedString(2))", false),
        ],
    )
    .unwrap();
    let row = t
        .apply(&json!({"id": "7", "price": "1.50", "time": "1700000000", "note": null, "country": null}))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&row).unwrap(),
        r#"{"country":"XX","id":7,"note":null,"price":1.5,"ts":1700000000}"#
    );
    // The hot path writes the same fields, in the mapping's order, without the map.
    let record =
        json!({"id": "7", "price": "1.50", "time": "1700000000", "note": null, "country": "de"});
    let mut line = String::from("{");
    assert!(t.apply_into(&record, &mut line).unwrap());
    line.push('}');
    assert_eq!(
        line,
        r#"{"id":7,"price":1.5,"ts":1700000000,"note":null,"country":"DE"}"#
    );
    let parsed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed, Value::Object(t.apply(&record).unwrap()));
    // A rejected record leaves the buffer as it was.
    let mut line = String::from("{");
    assert!(t.apply_into(&json!({"id": "x"}), &mut line).is_err());
    assert_eq!(line, "{");
}

/// What the transform writes into a `DateTime` column for this UTC time: its Unix seconds.
fn utc(text: &str) -> Value {
    let (date, time) = text.split_once(' ').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    let days = super::time::days_from_civil(d[0], d[1] as u32, d[2] as u32);
    json!(days * 86_400 + t[0] * 3_600 + t[1] * 60 + t[2])
}

/// A JSON number with exactly this text (serde_json keeps it with arbitrary_precision).
fn num(text: &str) -> Value {
    Value::Number(serde_json::from_str(text).unwrap())
}

/// A CSV row is read by header without a JSON object (`Fields::Row`, with RowBinary's text
/// fast path): every row must come out byte for byte as its JSON form does, or be refused for
/// the same reason, whatever the text.
#[test]
fn csv_rows_read_directly_match_their_json_form() {
    let types = [
        "UInt8",
        "Int16",
        "UInt64",
        "Int64",
        "Nullable(Int32)",
        "Float32",
        "Float64",
        "Decimal(10, 2)",
        "Nullable(Decimal(38, 5))",
        "Decimal(9, 0)",
        "String",
        "LowCardinality(Nullable(String))",
        "FixedString(3)",
        "Date",
        "Date32",
        "DateTime",
        "DateTime64(3)",
        "Bool",
        "UUID",
        "IPv4",
    ];
    let texts = [
        "",
        "0",
        "7",
        " 42 ",
        "-1",
        "+5",
        "007",
        "255",
        "256",
        "-129",
        "1.0",
        "1.5",
        "1e3",
        "-0.001",
        "12.345",
        "99999999.99",
        "100000000",
        "1e400",
        "nan",
        "-inf",
        "inf",
        "x",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "3.4e38",
        "3.5e38",
        ".5",
        "5.",
        "2024-02-29",
        "2023-02-29",
        "1969-12-31",
        "2106-02-07 06:28:15",
        "2106-02-07 06:28:16",
        "2024-01-02T03:04:05.678Z",
        "2024-01-02 03:04:05",
        "1700000000",
        "true",
        "TRUE",
        "abcd",
        "héllo, \"world\"",
        "00000000-0000-0001-0000-000000000002",
        "1.2.3.4",
    ];
    for ty in types {
        let columns = [column("c", ty, false), column("d", "UInt8", false)];
        let plain = Transform::new(&Mapping::default(), &columns).unwrap();
        let renamed = Transform::new(
            &mapping("columns:\n  c: {from: col}\n  d: {from: c3}"),
            &columns,
        )
        .unwrap();
        for text in texts {
            for (t, header) in [(&plain, ["c", "d"]), (&renamed, ["col", "x"])] {
                let mut fields = csv::StringRecord::new();
                fields.push_field(text);
                fields.push_field("1");
                fields.push_field("9");
                let row = Row {
                    header: header.iter().map(|h| h.to_string()).collect(),
                    fields,
                };
                let json = row.to_json();
                let direct = Payload::Row(row);
                if t.binary_ready() {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let from_row = t.apply_binary(&direct, &mut a, Some("c")).map(|_| a);
                    let from_json = t.apply_binary(&json, &mut b, Some("c")).map(|_| b);
                    assert_eq!(
                        from_row, from_json,
                        "{ty} <- {text:?} ({header:?}), RowBinary"
                    );
                }
                let (mut a, mut b) = (String::new(), String::new());
                let from_row = t.apply_into_keyed(&direct, &mut a, None).map(|_| a);
                let from_json = t.apply_into_keyed(&json, &mut b, None).map(|_| b);
                assert_eq!(from_row, from_json, "{ty} <- {text:?} ({header:?}), JSON");
            }
        }
    }
}

/// A CSV row's fields by name: past the header they are `c1`, `c2`, ... by position; a name
/// given twice means its last field, as in the JSON object the row stands for.
#[test]
fn csv_row_fields_by_name() {
    let mut fields = csv::StringRecord::new();
    for f in ["a0", "b1", "a2", "x3", "y4"] {
        fields.push_field(f);
    }
    let row = Row {
        header: ["a", "b", "a", "c5"]
            .iter()
            .map(|h| h.to_string())
            .collect(),
        fields,
    };
    let json = row.to_json();
    for name in ["a", "b", "c5", "c4", "c1", "c05", "c+5", "c0", "z"] {
        assert_eq!(
            row.get(name),
            json.get(name).and_then(Value::as_str),
            "{name}"
        );
    }
}
