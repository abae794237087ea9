//! `aurora pipeline init`: looks at sample records (the first rows of a CSV file, the first
//! messages of a Kafka topic), infers a ClickHouse type per field, and writes a pipeline file
//! to review, with the CREATE TABLE it implies. Pure inference here; reading samples is the
//! CLI's job.

use std::collections::BTreeMap;

/// What the samples say about one field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct FieldStats {
    seen: usize,
    nulls: usize,
    unsigned: usize,
    signed: usize,
    floats: usize,
    bools: usize,
    dates: usize,
    date_times: usize,
    unix_seconds: usize,
    unix_millis: usize,
    other: usize,
    objects: usize,
    /// Text values written as plain decimals (`12.50`), and their most fractional digits:
    /// CSV money columns, which deserve a Decimal rather than a Float64.
    decimal_text: usize,
    max_fraction: usize,
}

/// `-?digits.digits` with at most 4 fractional digits: the shape of amounts, not measurements.
fn decimal_text_digits(t: &str) -> Option<usize> {
    let t = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = t.split_once('.')?;
    let ok = !int.is_empty()
        && !frac.is_empty()
        && frac.len() <= 4
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
    ok.then_some(frac.len())
}

/// A field's inferred column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferredColumn {
    pub name: String,
    /// Dotted path in the record (same as `name` for top-level fields).
    pub from: String,
    pub column_type: String,
    pub convert: Option<&'static str>,
    /// How sure the type is, in a sentence for a comment above the column.
    pub evidence: String,
}

/// What the samples say for a field's type, and how sure that is: NULLs seen make it
/// Nullable; none seen in n samples still allows a rate up to 3/n (the "rule of three", the
/// 95% upper bound for an event never observed in n tries), which is said.
fn evidence(stats: &FieldStats, sampled: usize, column_type: &str) -> String {
    let values = stats.seen - stats.nulls;
    let kinds = [
        stats.unsigned
            + stats.signed
            + stats.floats
            + stats.decimal_text
            + stats.unix_seconds
            + stats.unix_millis,
        stats.bools,
        stats.dates + stats.date_times,
        stats.other,
        stats.objects,
    ]
    .iter()
    .filter(|n| **n > 0)
    .count();
    let mixed = if kinds > 1 {
        "; its values are of mixed kinds, so it is text"
    } else {
        ""
    };
    if stats.nulls > 0 {
        format!(
            "{values} of {sampled} sampled records have a value, {} none{mixed}",
            stats.nulls
        )
    } else {
        let bound = 300.0 / sampled.max(1) as f64;
        format!(
            "a value in all {sampled} sampled records{mixed}; one missing in up to {bound:.1}% of \
             records could still look like this (95% bound): if it can be missing, make it \
             Nullable({column_type})"
        )
    }
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn looks_like_date_time(s: &str) -> bool {
    s.len() >= 19
        && looks_like_date(&s[..10])
        && matches!(s.as_bytes()[10], b' ' | b'T')
        && s[11..19].bytes().enumerate().all(|(i, c)| {
            if i == 2 || i == 5 {
                c == b':'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Unix-time-looking integers in a field whose name says it is a time.
fn time_name(name: &str) -> bool {
    let n = name.to_lowercase();
    [
        "time",
        "ts",
        "date",
        "_at",
        "timestamp",
        "created",
        "updated",
    ]
    .iter()
    .any(|k| n == *k || n.ends_with(k) || n.starts_with(k))
}

fn observe(stats: &mut FieldStats, name: &str, value: &serde_json::Value) {
    use serde_json::Value;
    stats.seen += 1;
    match value {
        Value::Null => stats.nulls += 1,
        Value::Bool(_) => stats.bools += 1,
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if time_name(name) && (1_000_000_000..4_000_000_000).contains(&u) {
                    stats.unix_seconds += 1;
                } else if time_name(name) && (1_000_000_000_000..4_000_000_000_000).contains(&u) {
                    stats.unix_millis += 1;
                } else {
                    stats.unsigned += 1;
                }
            } else if n.as_i64().is_some() {
                stats.signed += 1;
            } else {
                stats.floats += 1;
            }
        }
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                stats.nulls += 1;
            } else if let Some(digits) = decimal_text_digits(t) {
                stats.decimal_text += 1;
                stats.max_fraction = stats.max_fraction.max(digits);
            } else if let Ok(n) = t.parse::<serde_json::Number>() {
                observe_number_text(stats, name, &n);
                // `observe_number_text` counted it; undo the double `seen`.
                stats.seen -= 1;
            } else if t == "true" || t == "false" {
                stats.bools += 1;
            } else if looks_like_date_time(t) {
                stats.date_times += 1;
            } else if looks_like_date(t) {
                stats.dates += 1;
            } else {
                stats.other += 1;
            }
        }
        Value::Array(_) | Value::Object(_) => stats.objects += 1,
    }
}

fn observe_number_text(stats: &mut FieldStats, name: &str, n: &serde_json::Number) {
    observe(stats, name, &serde_json::Value::Number(n.clone()));
}

fn choose(stats: &FieldStats) -> (String, Option<&'static str>) {
    let values = stats.seen - stats.nulls;
    let all = |n: usize| values > 0 && n == values;
    let (base, convert) = if values == 0 {
        ("String".to_string(), None)
    } else if all(stats.unix_seconds) {
        ("DateTime".to_string(), Some("unix_seconds"))
    } else if all(stats.unix_millis) {
        ("DateTime".to_string(), Some("unix_millis"))
    } else if all(stats.unsigned) {
        ("UInt64".to_string(), None)
    } else if all(stats.unsigned + stats.signed) {
        ("Int64".to_string(), None)
    } else if stats.decimal_text > 0 && all(stats.unsigned + stats.signed + stats.decimal_text) {
        (format!("Decimal(18, {})", stats.max_fraction), None)
    } else if all(stats.unsigned + stats.signed + stats.floats + stats.decimal_text) {
        ("Float64".to_string(), None)
    } else if all(stats.bools) {
        ("UInt8".to_string(), None)
    } else if all(stats.date_times) {
        ("DateTime".to_string(), None)
    } else if all(stats.dates) {
        ("Date".to_string(), None)
    } else if all(stats.objects) {
        ("String".to_string(), Some("json"))
    } else {
        ("String".to_string(), None)
    };
    if stats.nulls > 0 && stats.objects == 0 {
        (format!("Nullable({base})"), convert)
    } else {
        (base, convert)
    }
}

/// Infers one column per top-level field (nested objects are flattened one level into
/// `parent_child` columns fed from `parent.child`). Columns follow `field_order` (a CSV
/// header) where given, else the fields' names in order (JSON objects carry no order here).
pub fn infer_ordered(samples: &[serde_json::Value], field_order: &[String]) -> Vec<InferredColumn> {
    let mut columns = infer(samples);
    let rank = |c: &InferredColumn| {
        let top = c.from.split('.').next().unwrap_or("");
        field_order
            .iter()
            .position(|f| f == top)
            .unwrap_or(usize::MAX)
    };
    columns.sort_by_key(|c| rank(c));
    columns
}

/// `infer_ordered` without an order: columns by field name.
pub fn infer(samples: &[serde_json::Value]) -> Vec<InferredColumn> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut stats: BTreeMap<String, FieldStats> = BTreeMap::new();
    for record in samples {
        let Some(map) = record.as_object() else {
            continue;
        };
        for (key, value) in map {
            let mut fields: Vec<(String, String, &serde_json::Value)> = Vec::new();
            match value.as_object() {
                Some(inner) if !inner.is_empty() => {
                    for (k, v) in inner {
                        fields.push((format!("{key}_{k}"), format!("{key}.{k}"), v));
                    }
                }
                _ => fields.push((key.clone(), key.clone(), value)),
            }
            for (name, from, v) in fields {
                if !stats.contains_key(&name) {
                    order.push((name.clone(), from.clone()));
                }
                observe(stats.entry(name.clone()).or_default(), &name, v);
            }
        }
    }
    order
        .into_iter()
        .map(|(name, from)| {
            let s = stats.get(&name).cloned().unwrap_or_default();
            // Fields missing from some records are NULL there.
            let mut s = s;
            s.nulls += samples.len().saturating_sub(s.seen);
            s.seen = s.seen.max(samples.len());
            let (column_type, convert) = choose(&s);
            InferredColumn {
                name: sanitize(&name),
                from,
                evidence: evidence(&s, samples.len(), &column_type),
                column_type,
                convert,
            }
        })
        .collect()
}

/// The column a new field gets when a pipeline evolves its table (`evolve: add_columns`):
/// inferred like `init` from the values seen, always Nullable (the rows already stored have
/// no value), and only for values that go in as they are: `None` for objects and arrays,
/// which need a mapping with `convert: json`. Unix times stay numbers (no conversion).
pub fn evolved_column_type(name: &str, values: &[&serde_json::Value]) -> Option<String> {
    let mut stats = FieldStats::default();
    for v in values {
        observe(&mut stats, name, v);
    }
    if stats.objects > 0 {
        return None;
    }
    let (chosen, convert) = choose(&stats);
    let base = if convert.is_some() {
        "Int64".to_string()
    } else {
        chosen
            .strip_prefix("Nullable(")
            .and_then(|t| t.strip_suffix(')'))
            .map_or(chosen.clone(), str::to_string)
    };
    Some(format!("Nullable({base})"))
}

/// A field name as a column name: letters, digits and `_` only.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, 'c');
    }
    out
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("'{s}'"))
}

/// The pipeline file for `source_yaml` (already indented for `source:`) and the columns.
pub fn render_pipeline(
    name: &str,
    source_yaml: &str,
    table: &str,
    columns: &[InferredColumn],
    sampled: usize,
) -> String {
    let mut out = format!(
        "# Written by `aurora pipeline init` from {sampled} sample record(s). Review the types,\n\
         # then: aurora pipeline validate THIS_FILE && aurora pipeline run THIS_FILE\n\
         pipelines:\n  - name: {name}\n    source:\n{source_yaml}    mapping:\n      columns:\n"
    );
    for c in columns {
        let mut spec = Vec::new();
        if c.from != c.name {
            spec.push(format!("from: {}", yaml_str(&c.from)));
        }
        spec.push(format!("type: {}", yaml_str(&c.column_type)));
        if let Some(conv) = c.convert {
            spec.push(format!("convert: {conv}"));
        }
        out.push_str(&format!("        # {}\n", c.evidence));
        out.push_str(&format!("        {}: {{{}}}\n", c.name, spec.join(", ")));
    }
    let order = columns
        .iter()
        .find(|c| c.column_type.contains("DateTime"))
        .or_else(|| columns.first())
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "tuple()".into());
    out.push_str(&format!(
        "    sink:\n      table: {table}\n      create: if_missing\n      order_by: [{order}]\n    \
         delivery: exactly_once\n    dead_letter:\n      table: {table}_rejected\n"
    ));
    out.push_str(&format!(
        "\n# The table Aurora will create (with its two bookkeeping columns):\n{}",
        create_table_sql(table, columns, &order)
            .lines()
            .map(|l| format!("#   {l}\n"))
            .collect::<String>()
    ));
    out
}

pub fn create_table_sql(table: &str, columns: &[InferredColumn], order: &str) -> String {
    let mut cols: Vec<String> = columns
        .iter()
        .map(|c| format!("    {} {}", c.name, c.column_type))
        .collect();
    cols.push("    _aurora_source String".into());
    cols.push("    _aurora_offset UInt64".into());
    format!(
        "CREATE TABLE {table}\n(\n{}\n)\nENGINE = MergeTree\nORDER BY ({order})\n",
        cols.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types(samples: &[serde_json::Value]) -> Vec<(String, String, Option<&'static str>)> {
        infer(samples)
            .into_iter()
            .map(|c| (c.name, c.column_type, c.convert))
            .collect()
    }

    #[test]
    fn json_fields_get_sensible_types() {
        let samples = vec![
            json!({"id": 1, "ts": 1700000000, "price": 9.5, "ok": true, "user": {"id": 7, "name": "a"}, "tags": ["x"]}),
            json!({"id": 2, "ts": 1700000100, "price": 3, "ok": false, "user": {"id": 8, "name": "b"}, "tags": []}),
        ];
        assert_eq!(
            types(&samples),
            vec![
                ("id".into(), "UInt64".into(), None),
                ("ok".into(), "UInt8".into(), None),
                ("price".into(), "Float64".into(), None),
                ("tags".into(), "String".into(), Some("json")),
                ("ts".into(), "DateTime".into(), Some("unix_seconds")),
                ("user_id".into(), "UInt64".into(), None),
                ("user_name".into(), "String".into(), None),
            ]
        );
        let c = &infer(&samples)[5];
        assert_eq!(c.from, "user.id");
    }

    #[test]
    fn csv_text_fields_and_nulls_in_header_order() {
        let samples = vec![
            json!({"id": "1", "day": "2024-01-02", "at": "2024-01-02 03:04:05", "note": null, "n": "-3"}),
            json!({"id": "2", "day": "2024-01-03", "at": "2024-01-02T03:04:05Z", "note": "x", "n": "4"}),
        ];
        let header: Vec<String> = ["id", "day", "at", "note", "n"].map(String::from).to_vec();
        let got: Vec<_> = infer_ordered(&samples, &header)
            .into_iter()
            .map(|c| (c.name, c.column_type, c.convert))
            .collect();
        assert_eq!(
            got,
            vec![
                ("id".into(), "UInt64".into(), None),
                ("day".into(), "Date".into(), None),
                ("at".into(), "DateTime".into(), None),
                ("note".into(), "Nullable(String)".into(), None),
                ("n".into(), "Int64".into(), None),
            ]
        );
    }

    #[test]
    fn csv_amounts_become_decimals_and_measurements_floats() {
        let samples = vec![
            json!({"price": "12.50", "ratio": "0.123456789", "mixed": "3"}),
            json!({"price": "7", "ratio": "1.5", "mixed": "2.25"}),
        ];
        assert_eq!(
            types(&samples),
            vec![
                ("mixed".into(), "Decimal(18, 2)".into(), None),
                ("price".into(), "Decimal(18, 2)".into(), None),
                ("ratio".into(), "Float64".into(), None),
            ]
        );
    }

    #[test]
    fn the_rendered_pipeline_validates() {
        let samples = vec![json!({"id": 1, "created_at": 1700000000000u64, "name": "x y"})];
        let cols = infer(&samples);
        let text = render_pipeline(
            "orders",
            "      csv:\n        path: orders.csv\n",
            "shop.orders",
            &cols,
            1,
        );
        let pipelines = crate::ingest::pipeline::check_str("init.yaml", &text)
            .unwrap_or_else(|d| panic!("{}", crate::config::render_all(&d, Some(&text))));
        assert_eq!(pipelines[0].sink.order_by, ["created_at"]);
        assert!(
            text.contains("created_at: {type: \"DateTime\", convert: unix_millis}"),
            "{text}"
        );
        assert!(text.contains("#   CREATE TABLE shop.orders"), "{text}");
    }

    #[test]
    fn evolved_columns_are_nullable_and_take_values_as_they_are() {
        use serde_json::json;
        let t = |name: &str, vs: &[serde_json::Value]| {
            evolved_column_type(name, &vs.iter().collect::<Vec<_>>())
        };
        assert_eq!(t("n", &[json!(1), json!(2)]).unwrap(), "Nullable(UInt64)");
        assert_eq!(
            t("n", &[json!(-1), json!(null)]).unwrap(),
            "Nullable(Int64)"
        );
        assert_eq!(
            t("price", &[json!("12.50")]).unwrap(),
            "Nullable(Decimal(18, 2))"
        );
        assert_eq!(t("note", &[json!("x")]).unwrap(), "Nullable(String)");
        assert_eq!(t("ts", &[json!(1_700_000_000)]).unwrap(), "Nullable(Int64)");
        assert_eq!(t("obj", &[json!({"a": 1})]), None);
    }

    #[test]
    fn each_column_says_how_sure_its_type_is() {
        use serde_json::json;
        let mut samples: Vec<serde_json::Value> =
            (0..600).map(|i| json!({"id": i, "note": "x"})).collect();
        samples[7]["note"] = serde_json::Value::Null;
        let columns = infer(&samples);
        let id = columns.iter().find(|c| c.name == "id").unwrap();
        assert!(
            id.evidence.contains("all 600 sampled records")
                && id.evidence.contains("0.5%")
                && id.evidence.contains("Nullable(UInt64)"),
            "{}",
            id.evidence
        );
        let note = columns.iter().find(|c| c.name == "note").unwrap();
        assert_eq!(note.column_type, "Nullable(String)");
        assert!(note.evidence.contains("599 of 600"), "{}", note.evidence);
        let text = render_pipeline("p", "      csv: {path: x}\n", "db.t", &columns, 600);
        assert!(text.contains("        # a value in all 600"), "{text}");
    }
}
