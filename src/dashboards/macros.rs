//! A panel query as the Grafana ClickHouse plugin writes it (`$__timeFilter(ts)`,
//! `$__timeInterval(ts)`, `$__interval_s`, `$__fromTime`, `$__conditionalAll(…, $var)`,
//! `${var}`) turned into SQL the connected server runs. The expansions follow the plugin's
//! own (`pkg/macros/macros.go`), except where the server lacks a function: 18.16 has no
//! `toStartOfInterval` and no `DateTime64`, so buckets become integer division of the Unix
//! time, which gives the same buckets.

use std::collections::BTreeMap;

use crate::warehouse::Capabilities;

/// Every macro Aurora expands, for validation and hints.
pub const MACROS: [&str; 23] = [
    "$__timeFilter",
    "$__timeFrom",
    "$__timeTo",
    "$__timeGroup",
    "$__timeFilter_ms",
    "$__dateFilter",
    "$__dateTimeFilter",
    "$__dt",
    "$__fromTime",
    "$__toTime",
    "$__fromTime_ms",
    "$__toTime_ms",
    "$__timeInterval",
    "$__timeInterval_ms",
    "$__interval_s",
    "$__conditionalAll",
    // Grafana's own global variables, which its front end replaces.
    "$__interval",
    "$__interval_ms",
    "$__from",
    "$__to",
    "$__range_s",
    "$__timezone",
    // Aurora's own: its pipelines' state as rows (`aurora_state`).
    "$__aurora_pipelines",
];

/// The values one run of a query sees.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Unix seconds of the range's ends.
    pub from: i64,
    pub to: i64,
    /// The bucket width, from the range and the points the panel can show.
    pub interval_s: u64,
    pub caps: &'a Capabilities,
    pub variables: &'a BTreeMap<String, VariableValue>,
    /// What `$__aurora_pipelines` stands for (`aurora_state::pipelines_subquery`); none: no
    /// pipelines.
    pub pipelines: Option<&'a str>,
}

/// A variable's current value.
#[derive(Debug, Clone, PartialEq)]
pub enum VariableValue {
    One(String),
    /// `All` of a variable that offers it: `$__conditionalAll` drops its condition.
    All(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MacroError {
    #[error("unknown macro `{name}`")]
    UnknownMacro {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`{name}` needs {expected}, given `{given}`")]
    Arguments {
        name: String,
        expected: &'static str,
        given: String,
    },
    #[error("`{name}(` is not closed")]
    Unclosed { name: String },
    #[error("unknown variable `${name}`")]
    UnknownVariable {
        name: String,
        suggestion: Option<String>,
    },
}

impl MacroError {
    pub fn hint(&self) -> Option<String> {
        match self {
            MacroError::UnknownMacro {
                suggestion: Some(s),
                ..
            }
            | MacroError::UnknownVariable {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean `{s}`?")),
            MacroError::UnknownMacro { .. } => Some(format!("known macros: {}", MACROS.join(", "))),
            MacroError::UnknownVariable { .. } => {
                Some("declare it under `variables:`, or write `$$` for a literal dollar".into())
            }
            _ => None,
        }
    }

    /// The texts the error may be about, most specific first, to point at it in the file.
    pub fn needles(&self) -> Vec<String> {
        match self {
            MacroError::UnknownMacro { name, .. }
            | MacroError::Arguments { name, .. }
            | MacroError::Unclosed { name } => vec![name.clone()],
            MacroError::UnknownVariable { name, .. } => {
                vec![
                    format!("${{{name}"),
                    format!("[[{name}]]"),
                    format!("${name}"),
                ]
            }
        }
    }
}

/// Bucket widths a time axis snaps to, as Grafana rounds its `$__interval`.
const NICE_INTERVALS_S: [u64; 18] = [
    1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    604_800,
];

/// The bucket width that gives at most `max_points` buckets over `from..to`.
pub fn interval_for(from: i64, to: i64, max_points: u64) -> u64 {
    let span = (to - from).max(1) as u64;
    let raw = span.div_ceil(max_points.max(1));
    NICE_INTERVALS_S
        .iter()
        .copied()
        .find(|&n| n >= raw)
        .unwrap_or_else(|| raw.div_ceil(86_400) * 86_400)
}

/// `sql` with every macro and variable expanded.
pub fn expand(sql: &str, ctx: &Context) -> Result<String, MacroError> {
    let with_macros = expand_macros(sql, ctx)?;
    interpolate(&with_macros, ctx.variables)
}

/// The names of the variables `sql` uses (`$name`, `${name}`, `${name:format}`, `[[name]]`).
pub fn variables_used(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let _ = scan_variables(sql, |name, _| {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
        Ok(String::new())
    });
    out
}

/// Checks `sql`'s macros and variables without values: every problem, in order.
pub fn check(sql: &str, declared: &[&str]) -> Vec<MacroError> {
    let mut problems = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        let name = macro_name(&rest[at..]);
        if !MACROS.contains(&name) {
            problems.push(MacroError::UnknownMacro {
                name: name.to_owned(),
                suggestion: crate::config::did_you_mean(name, MACROS.iter().copied())
                    .map(str::to_owned),
            });
        } else if takes_arguments(name) {
            if let Err(e) = arguments(name, &rest[at + name.len()..]) {
                problems.push(e);
            }
        }
        rest = &rest[at + name.len().max(3)..];
    }
    let _ = scan_variables(sql, |name, _| {
        if !declared.contains(&name) {
            problems.push(MacroError::UnknownVariable {
                name: name.to_owned(),
                suggestion: crate::config::did_you_mean(name, declared.iter().copied())
                    .map(str::to_owned),
            });
        }
        Ok(String::new())
    });
    problems
}

fn macro_name(text: &str) -> &str {
    let end = text[3..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(text.len(), |i| i + 3);
    &text[..end]
}

fn takes_arguments(name: &str) -> bool {
    matches!(
        name,
        "$__timeFilter"
            | "$__timeFrom"
            | "$__timeTo"
            | "$__timeGroup"
            | "$__timeFilter_ms"
            | "$__dateFilter"
            | "$__dateTimeFilter"
            | "$__dt"
            | "$__timeInterval"
            | "$__timeInterval_ms"
            | "$__conditionalAll"
    )
}

/// The top-level comma-separated arguments of the call that `after` starts with, and the
/// length of the call text, or an error when there is no well-formed call.
fn arguments(name: &str, after: &str) -> Result<(Vec<String>, usize), MacroError> {
    let trimmed = after.trim_start();
    let skipped = after.len() - trimmed.len();
    if !trimmed.starts_with('(') {
        return Err(MacroError::Arguments {
            name: name.to_owned(),
            expected: expected_arguments(name),
            given: String::new(),
        });
    }
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut args = Vec::new();
    let mut start = 1;
    for (i, c) in trimmed.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(trimmed[start..i].trim().to_owned());
                    let args: Vec<String> = args.into_iter().filter(|a| !a.is_empty()).collect();
                    let wanted = match name {
                        "$__dateTimeFilter" | "$__dt" | "$__conditionalAll" | "$__timeGroup" => 2,
                        _ => 1,
                    };
                    if args.len() != wanted {
                        return Err(MacroError::Arguments {
                            name: name.to_owned(),
                            expected: expected_arguments(name),
                            given: trimmed[..=i].to_owned(),
                        });
                    }
                    return Ok((args, skipped + i + 1));
                }
            }
            ',' if depth == 1 => {
                args.push(trimmed[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    Err(MacroError::Unclosed {
        name: name.to_owned(),
    })
}

fn expected_arguments(name: &str) -> &'static str {
    match name {
        "$__dateTimeFilter" | "$__dt" => "a date column and a time column",
        "$__conditionalAll" => "a condition and a variable: `$__conditionalAll(x IN ($v), $v)`",
        "$__timeGroup" => "a column and a width: `(column, 5m)`",
        _ => "one column: `(column)`",
    }
}

fn expand_macros(sql: &str, ctx: &Context) -> Result<String, MacroError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let caps = ctx.caps;
    let from = format!("toDateTime({})", ctx.from);
    let to = format!("toDateTime({})", ctx.to);
    let n = ctx.interval_s;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let name = macro_name(&rest[at..]);
        let after = &rest[at + name.len()..];
        let (args, used) = if takes_arguments(name) {
            arguments(name, after)?
        } else {
            (Vec::new(), 0)
        };
        let arg = |i: usize| -> Result<String, MacroError> {
            // Arguments may hold macros themselves (`$__timeInterval($__dt…)` is rare, but a
            // variable in a condition is common); expand them too.
            expand_macros(&args[i], ctx)
        };
        let expansion = match name {
            "$__timeFilter" => {
                let c = arg(0)?;
                format!("{c} >= {from} AND {c} <= {to}")
            }
            "$__timeFilter_ms" => {
                let c = arg(0)?;
                if caps.datetime64 {
                    format!(
                        "{c} >= fromUnixTimestamp64Milli({}) AND {c} <= fromUnixTimestamp64Milli({})",
                        ctx.from * 1000,
                        ctx.to * 1000
                    )
                } else {
                    format!("{c} >= {from} AND {c} <= {to}")
                }
            }
            "$__timeFrom" => format!("{} >= {from}", arg(0)?),
            "$__timeTo" => format!("{} <= {to}", arg(0)?),
            "$__timeGroup" => {
                let c = arg(0)?;
                let width = args[1].trim_matches(['\'', '"']);
                let seconds = humantime::parse_duration(width)
                    .ok()
                    .map(|d| d.as_secs())
                    .filter(|s| *s > 0)
                    .ok_or_else(|| MacroError::Arguments {
                        name: name.to_owned(),
                        expected: expected_arguments(name),
                        given: format!("({})", args.join(", ")),
                    })?;
                bucket(caps, &c, seconds)
            }
            "$__dateFilter" => {
                let c = arg(0)?;
                format!("{c} >= toDate({from}) AND {c} <= toDate({to})")
            }
            "$__dateTimeFilter" | "$__dt" => {
                let (d, t) = (arg(0)?, arg(1)?);
                format!(
                    "({d} >= toDate({from}) AND {d} <= toDate({to})) AND ({t} >= {from} AND {t} <= {to})"
                )
            }
            "$__fromTime" => from.clone(),
            "$__toTime" => to.clone(),
            "$__fromTime_ms" if caps.datetime64 => {
                format!("fromUnixTimestamp64Milli({})", ctx.from * 1000)
            }
            "$__toTime_ms" if caps.datetime64 => {
                format!("fromUnixTimestamp64Milli({})", ctx.to * 1000)
            }
            "$__fromTime_ms" => from.clone(),
            "$__toTime_ms" => to.clone(),
            "$__timeInterval" => bucket(caps, &arg(0)?, n),
            "$__timeInterval_ms" if caps.datetime64 && caps.to_start_of_interval => format!(
                "toStartOfInterval(toDateTime64({}, 3), INTERVAL {} millisecond)",
                arg(0)?,
                n * 1000
            ),
            "$__timeInterval_ms" => bucket(caps, &arg(0)?, n),
            "$__interval_s" => n.to_string(),
            "$__interval" => super::timerange::grafana_duration(std::time::Duration::from_secs(n)),
            "$__interval_ms" => (n * 1000).to_string(),
            "$__from" => (ctx.from * 1000).to_string(),
            "$__to" => (ctx.to * 1000).to_string(),
            "$__range_s" => (ctx.to - ctx.from).to_string(),
            "$__timezone" => "'UTC'".to_owned(),
            "$__aurora_pipelines" => ctx
                .pipelines
                .map(str::to_owned)
                .unwrap_or_else(|| super::aurora_state::pipelines_subquery(&[])),
            "$__conditionalAll" => {
                let variable = args[1].trim_start_matches('$').trim_matches(['{', '}']);
                let variable = variable.split(':').next().unwrap_or(variable);
                match ctx.variables.get(variable) {
                    Some(VariableValue::All(_)) => "1=1".to_owned(),
                    Some(_) => arg(0)?,
                    None => {
                        return Err(MacroError::UnknownVariable {
                            name: variable.to_owned(),
                            suggestion: None,
                        })
                    }
                }
            }
            other => {
                return Err(MacroError::UnknownMacro {
                    name: other.to_owned(),
                    suggestion: crate::config::did_you_mean(other, MACROS.iter().copied())
                        .map(str::to_owned),
                })
            }
        };
        out.push_str(&expansion);
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The start of the `seconds`-wide bucket `column` falls in.
fn bucket(caps: &Capabilities, column: &str, seconds: u64) -> String {
    if caps.to_start_of_interval {
        format!("toStartOfInterval(toDateTime({column}), INTERVAL {seconds} second)")
    } else {
        format!("toDateTime(intDiv(toUInt32(toDateTime({column})), {seconds}) * {seconds})")
    }
}

/// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` with the variables' values.
fn interpolate(
    sql: &str,
    variables: &BTreeMap<String, VariableValue>,
) -> Result<String, MacroError> {
    scan_variables(sql, |name, format| {
        let value = variables
            .get(name)
            .ok_or_else(|| MacroError::UnknownVariable {
                name: name.to_owned(),
                suggestion: crate::config::did_you_mean(name, variables.keys().map(String::as_str))
                    .map(str::to_owned),
            })?;
        let values: Vec<&str> = match value {
            VariableValue::One(v) => vec![v.as_str()],
            VariableValue::All(all) => all.iter().map(String::as_str).collect(),
        };
        Ok(format_values(&values, format))
    })
}

/// Grafana's variable formats; without one, a single value goes in as written and several
/// are joined with commas, as the ClickHouse plugin does.
fn format_values(values: &[&str], format: Option<&str>) -> String {
    let quote = |v: &&str| crate::warehouse::query::quote_str(v);
    match format {
        Some("singlequote") | Some("sqlstring") => {
            values.iter().map(quote).collect::<Vec<_>>().join(",")
        }
        Some("doublequote") => values
            .iter()
            .map(|v| format!("\"{}\"", v.replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(","),
        Some("pipe") => values.join("|"),
        _ => values.join(","),
    }
}

/// Calls `replace(name, format)` for every variable reference and splices in its result.
/// `$$` is a literal `$`; macros (`$__…`) and `$1`-style text are left alone.
fn scan_variables(
    sql: &str,
    mut replace: impl FnMut(&str, Option<&str>) -> Result<String, MacroError>,
) -> Result<String, MacroError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let mut quote: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        if let Some(q) = quote {
            // Variables are replaced inside strings too (`'${var}'` is the common way to
            // quote one); only the quote state for `$$` matters.
            if c == q {
                quote = None;
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        }
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(body) = rest.strip_prefix("${") {
            if let Some(end) = body.find('}') {
                let inner = &body[..end];
                let (name, format) = match inner.split_once(':') {
                    Some((n, f)) => (n, Some(f)),
                    None => (inner, None),
                };
                if is_name(name) {
                    out.push_str(&replace(name, format)?);
                    rest = &body[end + 1..];
                    continue;
                }
            }
        }
        if let Some(body) = rest.strip_prefix("[[") {
            if let Some(end) = body.find("]]") {
                let name = &body[..end];
                if is_name(name) {
                    out.push_str(&replace(name, None)?);
                    rest = &body[end + 2..];
                    continue;
                }
            }
        }
        if let Some(body) = rest.strip_prefix('$') {
            let len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let name = &body[..len];
            if is_name(name) && !name.starts_with("__") {
                out.push_str(&replace(name, None)?);
                rest = &body[len..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn is_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && !name.starts_with("__")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx<'a>(caps: &'a Capabilities, vars: &'a BTreeMap<String, VariableValue>) -> Context<'a> {
        Context {
            from: 1_700_000_000,
            to: 1_700_003_600,
            interval_s: 60,
            caps,
            variables: vars,
            pipelines: None,
        }
    }

    #[test]
    fn time_macros_follow_the_server() {
        let vars = BTreeMap::new();
        let new = Capabilities::from_version("24.8.1");
        let old = Capabilities::from_version("18.16.1");
        let sql =
            "SELECT $__timeInterval(ts) AS t, count() FROM e WHERE $__timeFilter(ts) GROUP BY t";
        assert_eq!(
            expand(sql, &ctx(&new, &vars)).unwrap(),
            "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 60 second) AS t, count() FROM e \
             WHERE ts >= toDateTime(1700000000) AND ts <= toDateTime(1700003600) GROUP BY t"
        );
        assert_eq!(
            expand(sql, &ctx(&old, &vars)).unwrap(),
            "SELECT toDateTime(intDiv(toUInt32(toDateTime(ts)), 60) * 60) AS t, count() FROM e \
             WHERE ts >= toDateTime(1700000000) AND ts <= toDateTime(1700003600) GROUP BY t"
        );
        assert_eq!(
            expand("$__interval_s $__fromTime_ms $__dateFilter(d)", &ctx(&old, &vars)).unwrap(),
            "60 toDateTime(1700000000) d >= toDate(toDateTime(1700000000)) AND d <= toDate(toDateTime(1700003600))"
        );
        assert_eq!(
            expand("$__fromTime_ms", &ctx(&new, &vars)).unwrap(),
            "fromUnixTimestamp64Milli(1700000000000)"
        );
    }

    #[test]
    fn variables_and_conditional_all() {
        let mut vars = BTreeMap::new();
        vars.insert("country".to_owned(), VariableValue::One("DE".into()));
        vars.insert(
            "kind".to_owned(),
            VariableValue::All(vec!["a".into(), "b".into()]),
        );
        let caps = Capabilities::from_version("24.8.1");
        let c = ctx(&caps, &vars);
        assert_eq!(
            expand("WHERE country = '${country}' AND $__conditionalAll(kind IN (${kind:singlequote}), $kind)", &c)
                .unwrap(),
            "WHERE country = 'DE' AND 1=1"
        );
        assert_eq!(
            expand("WHERE $__conditionalAll(country IN (${country:singlequote}), $country) AND x IN (${kind:singlequote})", &c)
                .unwrap(),
            "WHERE country IN ('DE') AND x IN ('a','b')"
        );
        assert_eq!(expand("a = [[country]] $$1", &c).unwrap(), "a = DE $1");
        let err = expand("x = $contry", &c).unwrap_err();
        assert_eq!(err.hint().as_deref(), Some("did you mean `country`?"));
    }

    #[test]
    fn check_reports_every_problem() {
        let problems = check(
            "SELECT $__timeIntervl(ts), $__timeFilter(ts, x), $undeclared, $__conditionalAll(a, $v",
            &["v"],
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "unknown macro `$__timeIntervl`",
                "`$__timeFilter` needs one column: `(column)`, given `(ts, x)`",
                "`$__conditionalAll(` is not closed",
                "unknown variable `$undeclared`",
            ]
        );
        assert_eq!(
            problems[0].hint().as_deref(),
            Some("did you mean `$__timeInterval`?")
        );
        assert_eq!(variables_used("${a} $b [[c]] ${a:csv}"), ["a", "b", "c"]);
    }

    #[test]
    fn intervals_snap_to_nice_widths() {
        assert_eq!(interval_for(0, 3600, 120), 30);
        assert_eq!(interval_for(0, 86_400, 100), 900);
        assert_eq!(interval_for(0, 10, 100), 1);
        // Beyond a week: whole days.
        assert_eq!(interval_for(0, 365 * 86_400, 50), 8 * 86_400);
    }
}
