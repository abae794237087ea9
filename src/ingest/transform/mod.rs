//! The transform: turns one source record (a `serde_json::Value`, as Kafka, CSV, PostgreSQL
//! and MySQL sources hand them out) into one row for `INSERT ... FORMAT JSONEachRow`, following
//! a pipeline's [`Mapping`] and the target table's column types. A record that cannot become a
//! row gets a one-sentence [`RecordError`], which the pipeline writes to the dead-letter table
//! before carrying on.
//!
//! All the thinking happens once, in [`Transform::new`]: paths are split, types turned into
//! coercion plans, conversions checked against the columns they feed and defaults coerced in
//! advance, so that [`Transform::apply`] (run for every record) only walks and copies. The rows
//! use only what ClickHouse 18.16's JSONEachRow reader understands, and since 18.16 fills a
//! missing field with the type's zero value rather than the column's DEFAULT, the transform
//! decides for every column what a missing field means.

use crate::config::did_you_mean;

mod binary;
pub(crate) use binary::push_varint;
mod convert;
mod number;
mod plan;
mod time;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use self::convert::Converted;
use self::plan::{Plan, Unsupported};
use crate::ingest::pipeline::{ColumnSpec, Convert, Mapping, Unmapped};
use crate::ingest::record::{Payload, Row};
use crate::warehouse::types::DataType;

/// A column of the target table as the sink sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    pub name: String,
    pub data_type: DataType,
    /// The table has a DEFAULT/MATERIALIZED expression for it.
    pub has_server_default: bool,
}

/// Why one record cannot become a row: one sentence, for the dead-letter table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Columns Aurora writes itself (where each row came from, for exactly-once delivery); a
/// transform never feeds them.
pub const RESERVED_COLUMNS: [&str; 2] = ["_aurora_source", "_aurora_offset"];

/// A source record as the transform reads it.
#[derive(Debug, Clone, Copy)]
pub enum Fields<'r> {
    /// A JSON document; only objects can become rows.
    Json(&'r Value),
    /// A CSV row, read by header.
    Row(&'r Row),
}

impl<'r> From<&'r Value> for Fields<'r> {
    fn from(v: &'r Value) -> Fields<'r> {
        Fields::Json(v)
    }
}

impl<'r> From<&'r Payload> for Fields<'r> {
    fn from(p: &'r Payload) -> Fields<'r> {
        match p {
            Payload::Json(v) => Fields::Json(v),
            Payload::Row(row) => Fields::Row(row),
        }
    }
}

/// One column's value as [`Transform::each_value`] offers it to its taker.
enum Offer<'v> {
    /// Present, not null and without a `convert`, as the record has it: the taker may write it
    /// itself, or decline (`Ok(false)`) and be offered it coerced.
    Value(&'v Value),
    /// The same for a CSV field's text.
    Text(&'v str),
    /// What goes into the row: the value coerced, a default, or null.
    Coerced(Cow<'v, Value>),
}

/// Where a record's fields are looked up.
enum Source<'r> {
    Object(&'r Map<String, Value>),
    Row(&'r Row),
}

static NULL: Value = Value::Null;

/// A mapping compiled against one table; cheap to share between batches.
#[derive(Debug, Clone)]
pub struct Transform {
    columns: Vec<Column>,
    unmapped: Unmapped,
    /// Sorted, deduplicated top-level fields some column reads, for `unmapped: fail`.
    known_fields: Vec<String>,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// The column's declared type, for messages.
    type_name: String,
    /// The source path as written, for messages.
    from: String,
    path: Vec<Segment>,
    convert: Option<Convert>,
    plan: Plan,
    when_missing: Missing,
    /// Without a mapping, a column the server can fill is written only when its field is
    /// present, so that the table's DEFAULT is not overridden by a null or zero.
    omit_when_absent: bool,
    /// `"name":`, ready to write into a JSONEachRow line.
    json_key: String,
}

fn json_key(name: &str) -> String {
    let mut key = serde_json::Value::String(name.to_string()).to_string();
    key.push(':');
    key
}

/// One step of a dotted path: an object key, which on an array is an index when numeric.
#[derive(Debug, Clone)]
struct Segment {
    key: String,
    index: Option<usize>,
}

/// What a missing or null field turns into.
#[derive(Debug, Clone)]
enum Missing {
    /// The column's `default`, converted and coerced when the transform was built.
    Value(Value),
    Null,
    /// Leave the field out of the row for the server to fill.
    Omit,
    Fail,
}

impl Transform {
    /// Checks the mapping against the table once, at pipeline start, and reports every
    /// problem at once as plain sentences.
    pub fn new(mapping: &Mapping, columns: &[TargetColumn]) -> Result<Transform, Vec<String>> {
        let mut problems = Vec::new();
        let mut planned = Vec::new();
        if mapping.columns.is_empty() {
            for target in columns {
                if RESERVED_COLUMNS.contains(&target.name.as_str()) {
                    continue;
                }
                let plan = match Plan::new(&target.data_type) {
                    Ok(plan) => plan,
                    // Nobody asked for it and the server fills it: leave it to the server.
                    Err(_) if target.has_server_default => continue,
                    Err(u) => {
                        problems.push(unsupported(&target.name, &target.data_type, &u));
                        continue;
                    }
                };
                let when_missing = missing_rule(None, &plan, target.has_server_default);
                planned.push(Column {
                    name: target.name.clone(),
                    type_name: target.data_type.to_string(),
                    from: target.name.clone(),
                    path: vec![Segment::new(&target.name)],
                    convert: None,
                    plan,
                    when_missing,
                    omit_when_absent: target.has_server_default,
                    json_key: json_key(&target.name),
                });
            }
        } else {
            for (name, source) in &mapping.columns {
                if RESERVED_COLUMNS.contains(&name.as_str()) {
                    problems.push(format!(
                        "column `{name}` is written by Aurora itself (it records where each row \
                         came from); remove it from the mapping"
                    ));
                    continue;
                }
                let Some(target) = columns.iter().find(|c| c.name == *name) else {
                    let candidates = columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .filter(|c| !RESERVED_COLUMNS.contains(c));
                    let hint = did_you_mean(name, candidates)
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "the mapping names column `{name}`, which the table does not have{hint}"
                    ));
                    continue;
                };
                if let Some(column) = plan_mapped(name, source.spec(name), target, &mut problems) {
                    planned.push(column);
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut known_fields: Vec<String> = planned
            .iter()
            .filter_map(|c| c.path.first().map(|s| s.key.clone()))
            .collect();
        known_fields.sort_unstable();
        known_fields.dedup();
        Ok(Transform {
            columns: planned,
            unmapped: mapping.unmapped,
            known_fields,
        })
    }

    /// One record → one JSONEachRow object (only the columns to write).
    pub fn apply<'r>(
        &self,
        record: impl Into<Fields<'r>>,
    ) -> Result<Map<String, Value>, RecordError> {
        let mut row = Map::new();
        self.each_value(record.into(), |column, offer| {
            let Offer::Coerced(value) = offer else {
                return Ok(false);
            };
            row.insert(column.name.clone(), value.into_owned());
            Ok(true)
        })?;
        Ok(row)
    }

    /// `apply_into_keyed` without a key (the tests' form).
    #[cfg(test)]
    pub(crate) fn apply_into(&self, record: &Value, out: &mut String) -> Result<bool, RecordError> {
        self.apply_into_keyed(record, out, None)
            .map(|(wrote, _)| wrote)
    }

    /// Like `apply`, but writes the row straight into `out` as the fields of a JSON object
    /// (`"a":1,"b":"x"`, no braces), skipping the intermediate map: this runs per record on
    /// the ingestion hot path (JSONEachRow). Returns whether anything was written, and where in
    /// `out` the value of column `key` went (its JSON text), when it did: a cluster sink picks
    /// the record's shard from it.
    pub fn apply_into_keyed<'r>(
        &self,
        record: impl Into<Fields<'r>>,
        out: &mut String,
        key: Option<&str>,
    ) -> Result<(bool, Option<std::ops::Range<usize>>), RecordError> {
        let start = out.len();
        let mut wrote = false;
        let mut key_at = None;
        let result = self.each_value(record.into(), |column, offer| {
            let Offer::Coerced(value) = offer else {
                return Ok(false);
            };
            if wrote {
                out.push(',');
            }
            out.push_str(&column.json_key);
            let value_start = out.len();
            // `Value`'s Display writes compact JSON straight into `out`, no temporary string.
            let _ = write!(out, "{value}");
            if key == Some(column.name.as_str()) {
                key_at = Some(value_start..out.len());
            }
            wrote = true;
            Ok(true)
        });
        if result.is_err() {
            out.truncate(start);
        }
        result.map(|()| (wrote, key_at))
    }

    /// Whether rows can be written as RowBinary: every column's type has a binary form here,
    /// and no row leaves a column out for the server to fill.
    pub fn binary_ready(&self) -> bool {
        self.columns.iter().all(|c| {
            c.plan.binary_ready() && !c.omit_when_absent && !matches!(c.when_missing, Missing::Omit)
        })
    }

    /// One record → its row in RowBinary, every column of [`Transform::columns`] in order,
    /// appended to `out`; also where the value of column `key` is, when asked. Only for a
    /// transform that is [`Transform::binary_ready`]. On error `out` is left as it was.
    pub fn apply_binary<'r>(
        &self,
        record: impl Into<Fields<'r>>,
        out: &mut Vec<u8>,
        key: Option<&str>,
    ) -> Result<Option<std::ops::Range<usize>>, RecordError> {
        let start = out.len();
        let mut key_at = None;
        let result = self.each_value(record.into(), |column, offer| {
            let from = out.len();
            match offer {
                Offer::Value(v) => match column.plan.encode_direct(v, out) {
                    Some(written) => written.map_err(|why| column.refused(why))?,
                    None => return Ok(false),
                },
                Offer::Text(t) => {
                    if !column.plan.encode_text(t, out) {
                        return Ok(false);
                    }
                }
                Offer::Coerced(value) => column
                    .plan
                    .encode(&value, out)
                    .map_err(|e| RecordError(format!("column `{}`: {e}", column.name)))?,
            }
            if key == Some(column.name.as_str()) {
                key_at = Some(from..out.len());
            }
            Ok(true)
        });
        if result.is_err() {
            out.truncate(start);
        }
        result.map(|()| key_at)
    }

    /// Walks the columns, offering `take` each one's value: first as the record has it (see
    /// [`Offer`]), then, unless taken, coerced, as are defaults and nulls. An error from `take`
    /// ends the walk.
    fn each_value(
        &self,
        record: Fields<'_>,
        mut take: impl FnMut(&Column, Offer<'_>) -> Result<bool, RecordError>,
    ) -> Result<(), RecordError> {
        let source = match record {
            Fields::Json(Value::Object(fields)) => {
                if self.unmapped == Unmapped::Fail {
                    self.check_unmapped(fields)?;
                }
                Source::Object(fields)
            }
            Fields::Json(_) => return Err(RecordError("the record is not a JSON object".into())),
            Fields::Row(row) => {
                if self.unmapped == Unmapped::Fail {
                    if let Value::Object(fields) = row.to_json() {
                        self.check_unmapped(&fields)?;
                    }
                }
                Source::Row(row)
            }
        };
        for column in &self.columns {
            // A CSV field that must be coerced becomes a JSON string here.
            let text;
            let found = match source {
                Source::Object(fields) => column.lookup(fields),
                Source::Row(row) => match column.field(row) {
                    None => None,
                    Some("") => Some(&NULL),
                    Some(t) => {
                        if column.convert.is_none() && take(column, Offer::Text(t))? {
                            continue;
                        }
                        text = Value::String(t.to_string());
                        Some(&text)
                    }
                },
            };
            if let Some(v) = found.filter(|v| column.convert.is_none() && !v.is_null()) {
                if take(column, Offer::Value(v))? {
                    continue;
                }
            }
            let value = match found {
                // Already what the column takes (a string for a String column, an in-range
                // integer for an integer column, ...): written as it came, without a copy.
                Some(v) if column.convert.is_none() && column.plan.takes_as_is(v) => {
                    Cow::Borrowed(v)
                }
                Some(v) if !v.is_null() => Cow::Owned(column.coerce(v)?),
                _ if found.is_none() && column.omit_when_absent => continue,
                _ => match &column.when_missing {
                    Missing::Value(v) => Cow::Borrowed(v),
                    Missing::Null => Cow::Owned(Value::Null),
                    Missing::Omit => continue,
                    Missing::Fail => return Err(column.missing(found.is_some())),
                },
            };
            take(column, Offer::Coerced(value))?;
        }
        Ok(())
    }

    /// The columns this transform may write, in the order it writes them (rows leave out
    /// those whose field is missing and which the server fills).
    pub fn columns(&self) -> impl Iterator<Item = &str> + '_ {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// The record's top-level fields no column reads (Aurora's own columns aside).
    pub fn unknown_fields<'a>(&self, record: &'a Value) -> Vec<(&'a str, &'a Value)> {
        let Value::Object(fields) = record else {
            return Vec::new();
        };
        fields
            .iter()
            .filter(|(key, _)| {
                !RESERVED_COLUMNS.contains(&key.as_str())
                    && self
                        .known_fields
                        .binary_search_by(|k| k.as_str().cmp(key))
                        .is_err()
            })
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }

    fn check_unmapped(&self, fields: &Map<String, Value>) -> Result<(), RecordError> {
        let mut first: Option<&str> = None;
        let mut count = 0usize;
        for key in fields.keys() {
            if self
                .known_fields
                .binary_search_by(|k| k.as_str().cmp(key))
                .is_err()
            {
                count += 1;
                // Map order is not guaranteed sorted (serde_json's `preserve_order` may be on),
                // so the first one is found by comparison.
                if first.is_none_or(|f| key.as_str() < f) {
                    first = Some(key);
                }
            }
        }
        match first {
            None => Ok(()),
            Some(field) => {
                let (more, it) = if count > 1 {
                    (format!(" (and {} more)", count - 1), "them")
                } else {
                    (String::new(), "it")
                };
                Err(RecordError(format!(
                    "field {} is not mapped to any column{more}; `unmapped: ignore` would drop {it}",
                    show_str(field)
                )))
            }
        }
    }
}

/// Plans one column named in `mapping.columns`, adding any problems to `problems`.
fn plan_mapped(
    name: &str,
    spec: ColumnSpec,
    target: &TargetColumn,
    problems: &mut Vec<String>,
) -> Option<Column> {
    let type_name = target.data_type.to_string();
    let before = problems.len();
    let from = spec.from.unwrap_or_else(|| name.to_string());
    let path: Vec<Segment> = from.split('.').map(Segment::new).collect();
    if path.iter().any(|s| s.key.is_empty()) {
        problems.push(format!(
            "column `{name}`: `from: {from}` has an empty path segment (use `a.b.0` style paths)"
        ));
    }
    let plan = match Plan::new(&target.data_type) {
        Ok(plan) => plan,
        Err(u) => {
            problems.push(unsupported(name, &target.data_type, &u));
            return None;
        }
    };
    if let Some(c) = spec.convert {
        if !convert::feeds(c, &plan.kind) {
            problems.push(format!(
                "column `{name}` ({type_name}): `convert: {}` makes {}, which cannot go into \
                 {type_name}",
                convert::name(c),
                convert::makes(c)
            ));
            return None;
        }
    }
    let mut default = None;
    if let Some(yaml) = &spec.default {
        match serde_json::to_value(yaml) {
            // `default: null` says nothing beyond having no default.
            Ok(Value::Null) => {}
            Ok(v) => match convert_and_coerce(spec.convert, &plan, &v) {
                Ok(out) => default = Some(out),
                Err(e) => problems.push(format!(
                    "column `{name}` ({type_name}): the default {} cannot be used: {e}",
                    show(&v)
                )),
            },
            Err(e) => problems.push(format!(
                "column `{name}`: the default cannot be read as a JSON value: {e}"
            )),
        }
    }
    if problems.len() > before {
        return None;
    }
    let when_missing = missing_rule(default, &plan, target.has_server_default);
    Some(Column {
        name: name.to_string(),
        type_name,
        from,
        path,
        convert: spec.convert,
        plan,
        when_missing,
        omit_when_absent: false,
        json_key: json_key(name),
    })
}

/// A missing or null field: the mapping's default, else null where the column allows it,
/// else whatever the server fills in, else the record cannot be written.
fn missing_rule(default: Option<Value>, plan: &Plan, server_default: bool) -> Missing {
    match default {
        Some(v) => Missing::Value(v),
        None if plan.nullable => Missing::Null,
        None if server_default => Missing::Omit,
        None => Missing::Fail,
    }
}

fn unsupported(name: &str, ty: &DataType, u: &Unsupported) -> String {
    let whole = ty.to_string();
    let inside = if u.ty == whole {
        String::new()
    } else {
        format!(" (because of the `{}` inside it)", u.ty)
    };
    let why = u
        .why
        .as_deref()
        .map(|w| format!(": {w}"))
        .unwrap_or_default();
    format!("column `{name}` has type {whole}, which the transform cannot produce{inside}{why}")
}

/// Runs the column's conversion, if any, then coerces into its type.
fn convert_and_coerce(convert: Option<Convert>, plan: &Plan, v: &Value) -> Result<Value, String> {
    let Some(c) = convert else {
        return plan.coerce(v);
    };
    match convert::apply(c, v) {
        Ok(Converted::Same(v)) => plan.coerce(v),
        Ok(Converted::Owned(v)) => plan.coerce_owned(v),
        Ok(Converted::Instant(t)) => plan.coerce_instant(t),
        Err(e) => Err(format!("`convert: {}`: {e}", convert::name(c))),
    }
}

impl Segment {
    fn new(key: &str) -> Segment {
        let numeric = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
        Segment {
            key: key.to_string(),
            index: if numeric { key.parse().ok() } else { None },
        }
    }
}

impl Column {
    /// Follows the path; anything that is not there (including a path that runs into a
    /// scalar or past the end of an array) is missing.
    fn lookup<'r>(&self, record: &'r Map<String, Value>) -> Option<&'r Value> {
        let (first, rest) = self.path.split_first()?;
        let mut v = record.get(&first.key)?;
        for segment in rest {
            v = match v {
                Value::Object(fields) => fields.get(&segment.key)?,
                Value::Array(items) => items.get(segment.index?)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// The column's field in a CSV row: only a one-step path can name one.
    fn field<'r>(&self, row: &'r Row) -> Option<&'r str> {
        match self.path.as_slice() {
            [only] => row.get(&only.key),
            _ => None,
        }
    }

    fn coerce(&self, v: &Value) -> Result<Value, RecordError> {
        convert_and_coerce(self.convert, &self.plan, v).map_err(|why| self.refused(why))
    }

    /// Why a value cannot go into this column, as the dead-letter table says it.
    fn refused(&self, why: String) -> RecordError {
        RecordError(format!(
            "column `{}` ({}): {why}",
            self.name, self.type_name
        ))
    }

    fn missing(&self, null: bool) -> RecordError {
        RecordError(if null {
            format!(
                "required field `{}` is null for column `{}` ({}, not Nullable, no default)",
                self.from, self.name, self.type_name
            )
        } else {
            format!(
                "missing required field `{}` for column `{}`",
                self.from, self.name
            )
        })
    }
}

/// How much of a bad value a message quotes.
const SHOWN_CHARS: usize = 60;

/// A value as messages quote it: numbers, booleans and null bare, everything else in
/// backticks, shortened, with control characters escaped so the reason stays on one line.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => show_str(s),
        Value::Number(_) | Value::Bool(_) | Value::Null => v.to_string(),
        Value::Array(_) | Value::Object(_) => show_str(&v.to_string()),
    }
}

fn show_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(SHOWN_CHARS) + 5);
    out.push('`');
    for (i, c) in s.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}
