//! Time buckets and dates: buckets named by their alias, dates the question names, periods
//! it counts back from now, bare numbers next to a bucket, and coarser buckets of the same
//! time.

use std::collections::BTreeSet;

use sqlparser::ast::{BinaryOperator, Expr, GroupByExpr, Ident, OrderByExpr, Select, SelectItem};

use super::grouping::PER_WORDS;
use super::sql::{
    and_all, call, column_name, conjuncts, function_name, has_aggregate, item_names, item_parts,
    literal, literals, parse_expr, references_column, replace_everywhere, resolve, time_column,
    QueryTable,
};
use super::QuestionText;
use crate::warehouse::query::ident;
use crate::warehouse::types::DataType;

/// Time units a column may be made up for, and the bucket that computes it.
const TIME_UNITS: &[(&str, &str)] = &[
    ("minute", "toStartOfMinute"),
    ("hour", "toStartOfHour"),
    ("day", "toDate"),
    ("date", "toDate"),
    ("week", "toMonday"),
    ("month", "toStartOfMonth"),
    ("year", "toYear"),
];

fn wants_calendar_month(question: &QuestionText) -> bool {
    ["calendar month", "month of the year", "month of year"]
        .iter()
        .any(|p| question.lower.contains(p))
}

pub(super) fn bucket_for_unit(unit: &str, question: &QuestionText) -> Option<&'static str> {
    if unit == "month" && wants_calendar_month(question) {
        return Some("toMonth");
    }
    TIME_UNITS.iter().find(|(u, _)| *u == unit).map(|(_, f)| *f)
}

/// Functions that bucket a time, by the unit they bucket to.
const BUCKETS: &[(&str, &str)] = &[
    ("tostartofminute", "minute"),
    ("tostartofhour", "hour"),
    ("todate", "day"),
    ("tostartofday", "day"),
    ("tomonday", "week"),
    ("tostartofweek", "week"),
    ("tostartofmonth", "month"),
    ("tostartofyear", "year"),
    ("toyear", "year"),
];

pub(super) fn is_bucket(expr: &Expr) -> bool {
    function_name(expr).is_some_and(|f| {
        BUCKETS.iter().any(|(b, _)| *b == f) || matches!(f.as_str(), "tomonth" | "tohour")
    })
}

/// `toDate(t) AS month` → `toStartOfMonth(t) AS month`: the alias says the unit meant; also
/// `toStartOfYear(t) AS year` → `toYear(t)`, and a calendar month asked for → `toMonth(t)`.
pub(super) fn bucket_names(
    select: &mut Select,
    order: &mut [OrderByExpr],
    question: &QuestionText,
) -> Option<String> {
    let mut changes: Vec<(Expr, Expr)> = Vec::new();
    for item in &select.projection {
        let SelectItem::ExprWithAlias { expr, alias } = item else {
            continue;
        };
        let Some(function) = function_name(expr) else {
            continue;
        };
        let unit = alias.value.to_lowercase();
        let Some(wanted) = bucket_for_unit(&unit, question) else {
            continue;
        };
        let current = BUCKETS.iter().find(|(b, _)| *b == function);
        // `toMonth`/`toHour` are parts of a date, not buckets: left as written.
        if current.is_none() || function == wanted.to_lowercase() {
            continue;
        }
        let copies = select
            .projection
            .iter()
            .filter(|i| matches!(i, SelectItem::ExprWithAlias { expr: e, .. } | SelectItem::UnnamedExpr(e) if e == expr))
            .count();
        if copies > 1 {
            // The same bucket under two names: which one is meant is not clear.
            continue;
        }
        let Expr::Function(f) = expr else { continue };
        let sqlparser::ast::FunctionArguments::List(args) = &f.args else {
            continue;
        };
        let [arg] = args.args.as_slice() else {
            continue;
        };
        let Some(new) = parse_expr(&format!("{wanted}({arg})")) else {
            continue;
        };
        changes.push((expr.clone(), new));
    }
    if changes.is_empty() {
        return None;
    }
    let mut notes = Vec::new();
    for (old, new) in &changes {
        replace_everywhere(select, order, old, new);
        notes.push(format!("{old} → {new}"));
    }
    Some(format!("bucket named by its alias: {}", notes.join(", ")))
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Dates the question names: whole days (`2026-11-20`, "November 20, 2026", "20 Nov
/// 2026"), months ("March 2014") and years ("in 2013").
#[derive(Debug, Default, PartialEq)]
pub(super) struct NamedDates {
    pub(super) days: Vec<String>,
    pub(super) months: Vec<String>,
    pub(super) years: Vec<u32>,
}

pub(super) fn named_dates_in(question: &str) -> NamedDates {
    let tokens: Vec<String> = question
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .collect();
    let month_of = |t: &str| -> Option<u32> {
        if t.len() < 3 {
            return None;
        }
        MONTHS
            .iter()
            .position(|m| t.starts_with(m) && (t.len() == 3 || t.starts_with(&m[..3])))
            .filter(|_| t.chars().all(|c| c.is_ascii_alphabetic()))
            .map(|i| i as u32 + 1)
    };
    let day_of = |t: &str| -> Option<u32> {
        let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let d: u32 = digits.parse().ok()?;
        (digits.len() <= 2 && (1..=31).contains(&d)).then_some(d)
    };
    let year_of = |t: &str| -> Option<u32> {
        let y: u32 = t.parse().ok()?;
        (t.len() == 4 && (1900..=2100).contains(&y)).then_some(y)
    };
    let mut out = NamedDates::default();
    let mut used = vec![false; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        // ISO dates.
        let parts: Vec<&str> = t.split('-').collect();
        if let [y, m, d] = parts.as_slice() {
            if let (Some(y), Ok(m), Some(d)) = (year_of(y), m.parse::<u32>(), day_of(d)) {
                out.days.push(format!("{y:04}-{m:02}-{d:02}"));
                used[i] = true;
            }
            continue;
        }
        let Some(m) = month_of(t) else { continue };
        let next = |k: usize| tokens.get(i + k).map(String::as_str);
        let prev = i
            .checked_sub(1)
            .and_then(|k| tokens.get(k))
            .map(String::as_str);
        if let (Some(d), Some(y)) = (next(1).and_then(day_of), next(2).and_then(year_of)) {
            out.days.push(format!("{y:04}-{m:02}-{d:02}"));
            used[i..=i + 2].iter_mut().for_each(|u| *u = true);
        } else if let (Some(d), Some(y)) = (prev.and_then(day_of), next(1).and_then(year_of)) {
            out.days.push(format!("{y:04}-{m:02}-{d:02}"));
            used[i - 1..=i + 1].iter_mut().for_each(|u| *u = true);
        } else if let Some(y) = next(1).and_then(year_of) {
            out.months.push(format!("{y:04}-{m:02}-01"));
            used[i..=i + 1].iter_mut().for_each(|u| *u = true);
        }
    }
    for (i, t) in tokens.iter().enumerate() {
        let after_preposition = i
            .checked_sub(1)
            .and_then(|k| tokens.get(k))
            .is_some_and(|p| matches!(p.as_str(), "in" | "of" | "during" | "for"));
        if let (false, Some(y), true) = (used[i], year_of(t), after_preposition) {
            out.years.push(y);
        }
    }
    out
}

/// A day, month or year the question names, which the query does not filter on: its
/// condition is added. Conditions on the time column that stay inside that period (an
/// off-by-one `date < '2013-12-31'`) are replaced by the whole period.
pub(super) fn named_dates(
    select: &mut Select,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let ranges = [
        "since", "after", "before", "until", "till", "between", "from", "through",
    ];
    if question.has_any(&ranges) || question.lower.contains(':') {
        return None;
    }
    let named = named_dates_in(&question.lower);
    let time = time_column(tables)?;
    let (condition, prefix) = match (
        named.days.as_slice(),
        named.months.as_slice(),
        named.years.as_slice(),
    ) {
        ([day], [], []) => (
            Expr::BinaryOp {
                left: Box::new(call("toDate", time.clone())),
                op: BinaryOperator::Eq,
                right: Box::new(literal(day)),
            },
            day.clone(),
        ),
        ([], [month], []) => (
            Expr::BinaryOp {
                left: Box::new(call("toStartOfMonth", time.clone())),
                op: BinaryOperator::Eq,
                right: Box::new(literal(month)),
            },
            month[..7].to_string(),
        ),
        ([], [], [year]) => (
            parse_expr(&format!("toYear({time}) = {year}"))?,
            year.to_string(),
        ),
        _ => return None,
    };
    let time_name = column_name(&time)?.to_string();
    let mut all = Vec::new();
    if let Some(existing) = select.selection.clone() {
        conjuncts(existing, &mut all);
    }
    if all.iter().any(|c| c.to_string() == condition.to_string()) {
        return None;
    }
    select.selection = None;
    // Conditions on the time column whose literals all lie in the period are replaced.
    let inside = |c: &Expr| {
        let lits = literals(c);
        references_column(c, &time_name)
            && !lits.is_empty()
            && lits.iter().all(|l| l.starts_with(&prefix))
    };
    let replaced = take_conditions(&mut all, inside);
    let still_named = all
        .iter()
        .any(|c| literals(c).iter().any(|l| l.contains(&prefix)))
        || literals(&*select).iter().any(|l| l.contains(&prefix));
    if still_named && replaced.is_empty() {
        // The period is already used elsewhere (a countIf, a join): nothing to add.
        select.selection = and_all(all);
        return None;
    }
    Some(put_period(select, all, &replaced, condition))
}

/// Takes the conditions `stale` picks out of `all`, as text for the note.
fn take_conditions(all: &mut Vec<Expr>, stale: impl Fn(&Expr) -> bool) -> Vec<String> {
    let taken = all
        .iter()
        .filter(|c| stale(c))
        .map(ToString::to_string)
        .collect();
    all.retain(|c| !stale(c));
    taken
}

/// The WHERE clause: the remaining conditions `all` and the period's `condition`, in place of
/// the `replaced` ones; returns the note that says what changed.
fn put_period(
    select: &mut Select,
    mut all: Vec<Expr>,
    replaced: &[String],
    condition: Expr,
) -> String {
    let note = if replaced.is_empty() {
        format!("added {condition}: the question names that period")
    } else {
        format!("{condition} instead of {}", replaced.join(" AND "))
    };
    all.push(condition);
    select.selection = and_all(all);
    note
}

/// A period the question counts back from now.
#[derive(Debug, PartialEq)]
pub(super) enum RelativePeriod {
    /// The last `n` units up to now ("in the last hour", "over the past 7 days"): the unit as
    /// an `INTERVAL` names it.
    Rolling(u32, &'static str),
    /// The calendar day, week, month or year `back` periods before the current one ("today",
    /// "yesterday", "this month", "last year"): the bucket function and the interval unit.
    Calendar {
        bucket: &'static str,
        unit: &'static str,
        back: u32,
    },
}

/// Calendar units: the word, its `INTERVAL` unit, its bucket.
const PERIOD_UNITS: &[(&str, &str, &str)] = &[
    ("minute", "MINUTE", "toStartOfMinute"),
    ("hour", "HOUR", "toStartOfHour"),
    ("day", "DAY", "toDate"),
    ("week", "WEEK", "toMonday"),
    ("month", "MONTH", "toStartOfMonth"),
    ("year", "YEAR", "toYear"),
];

const NUMBER_WORDS: &[&str] = &[
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

/// The one period the question counts back from now, if it names exactly one.
pub(super) fn relative_period_in(question: &str) -> Option<RelativePeriod> {
    let tokens: Vec<String> = question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let unit_of = |t: &str| {
        let singular = t.strip_suffix('s').unwrap_or(t);
        PERIOD_UNITS.iter().find(|(w, _, _)| *w == singular)
    };
    let number_of = |t: &str| -> Option<u32> {
        t.parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .or_else(|| {
                NUMBER_WORDS
                    .iter()
                    .position(|w| *w == t)
                    .map(|i| i as u32 + 1)
            })
    };
    let mut found = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let next = |k: usize| tokens.get(i + k).map(String::as_str).unwrap_or("");
        let calendar = |(_, unit, bucket): &(&str, &'static str, &'static str), back| {
            RelativePeriod::Calendar { bucket, unit, back }
        };
        match t.as_str() {
            "today" => found.push(calendar(&PERIOD_UNITS[2], 0)),
            "yesterday" => found.push(calendar(&PERIOD_UNITS[2], 1)),
            "this" | "current" => {
                if let Some(u) = unit_of(next(1)).filter(|_| !next(1).ends_with('s')) {
                    found.push(calendar(u, 0));
                }
            }
            "last" | "past" | "previous" => {
                let counted = number_of(next(1));
                let word = if counted.is_some() { next(2) } else { next(1) };
                let Some(u) = unit_of(word) else { continue };
                let the = i > 0 && tokens[i - 1] == "the";
                let coarse = matches!(u.1, "WEEK" | "MONTH" | "YEAR");
                found.push(match counted {
                    Some(n) => RelativePeriod::Rolling(n, u.1),
                    // "last month", "previous year": the calendar period before this one;
                    // "the last month", "the past week", "last hour": up to now.
                    None if coarse && (t == "previous" || (t == "last" && !the)) => calendar(u, 1),
                    None => RelativePeriod::Rolling(1, u.1),
                });
            }
            _ => {}
        }
    }
    match found.len() {
        1 => found.pop(),
        _ => None,
    }
}

/// "How many purchases in the last hour?" with no condition on time, or with dates the
/// model made up: the period counted back from now (from the newest row for "the last hour of
/// data") is the condition. A condition the query already puts on `now()`, `today()`,
/// `yesterday()` or a `max(..)` is the model's own and stays.
pub(super) fn relative_period(
    select: &mut Select,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let period = relative_period_in(&question.lower)?;
    if named_dates_in(&question.lower) != NamedDates::default() {
        return None;
    }
    let time = time_column(tables)?;
    let time_name = column_name(&time)?.to_string();
    let owner = tables
        .iter()
        .find(|t| t.table.columns.iter().any(|c| c.name == time_name))?;
    let is_date = owner.table.columns.iter().any(|c| {
        c.name == time_name
            && c.data_type()
                .is_some_and(|d| matches!(d.unwrap_wrappers(), DataType::Date | DataType::Date32))
    });
    // "the last hour of data": counted back from the newest row, not from now.
    let of_data = ["of data", "of the data", "in the data"]
        .iter()
        .any(|p| question.lower.contains(p));
    let end = if of_data {
        format!(
            "(SELECT max({}) FROM {}.{})",
            ident(&time_name),
            ident(&owner.table.database),
            ident(&owner.table.name)
        )
    } else {
        "now()".to_string()
    };
    let condition = match period {
        RelativePeriod::Rolling(n, unit) if is_date => {
            format!("{time} >= toDate({end} - INTERVAL {n} {unit})")
        }
        RelativePeriod::Rolling(n, unit) => format!("{time} >= {end} - INTERVAL {n} {unit}"),
        RelativePeriod::Calendar { .. } if of_data => return None,
        RelativePeriod::Calendar {
            bucket, back: 0, ..
        } => {
            format!("{bucket}({time}) = {bucket}(today())")
        }
        RelativePeriod::Calendar { bucket, unit, back } => {
            format!("{bucket}({time}) = {bucket}(today() - INTERVAL {back} {unit})")
        }
    };
    let condition = parse_expr(&condition)?;
    let mut all = Vec::new();
    if let Some(existing) = select.selection.take() {
        conjuncts(existing, &mut all);
    }
    let on_time = |c: &Expr| references_column(c, &time_name) && !has_aggregate(c);
    let relative = |c: &Expr| {
        let text = c.to_string().to_lowercase();
        ["now()", "today()", "yesterday()", "max("]
            .iter()
            .any(|f| text.contains(f))
    };
    if all.iter().any(|c| on_time(c) && relative(c)) {
        select.selection = and_all(all);
        return None;
    }
    // Conditions on the time column with literals are the model's guess at the period.
    let replaced = take_conditions(&mut all, |c| on_time(c) && !literals(c).is_empty());
    Some(put_period(select, all, &replaced, condition))
}

/// `SELECT toDate(t) AS day, revenue ...` for "revenue for each day", or `SELECT wind ...
/// ORDER BY wind DESC LIMIT 1` for "the median wind speed": bare numbers and no aggregate at
/// all, next to a bucket or where the question asks for a total, average or median. The
/// numbers are summed (averaged, or their median taken, when the question says so) and the
/// query grouped by the rest; with nothing to group by, the ordering and limit go.
pub(super) fn aggregate_buckets(
    select: &mut Select,
    order: &mut Vec<OrderByExpr>,
    limit: &mut Option<sqlparser::ast::LimitClause>,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let grouped = matches!(&select.group_by, GroupByExpr::Expressions(g, _) if !g.is_empty())
        || matches!(&select.group_by, GroupByExpr::All(_));
    if grouped || select.having.is_some() || has_aggregate(&select.projection) {
        return None;
    }
    let items: Vec<(&Expr, Option<&Ident>)> = select
        .projection
        .iter()
        .map(item_parts)
        .collect::<Option<_>>()?;
    let bucketed = items.iter().any(|(e, _)| is_bucket(e));
    let named = if question.has_any(&["average", "mean", "avg"]) {
        Some("avg")
    } else if question.has_any(&["median"]) {
        Some("median")
    } else if question.has_any(&["total", "sum"]) {
        Some("sum")
    } else {
        None
    };
    let asks_per =
        question.has_any(PER_WORDS) || question.has_any(&["highest", "lowest", "most", "least"]);
    let function = match (bucketed && asks_per, named) {
        (_, Some(f)) if bucketed || !asks_per => f,
        (true, None) => "sum",
        _ => return None,
    };
    let numeric: Vec<bool> = items
        .iter()
        .map(|(e, _)| {
            resolve(e, tables).is_some_and(|(_, c)| {
                c.data_type().is_some_and(|d| d.is_numeric()) && !c.is_key_like()
            })
        })
        .collect();
    let wrapped: Vec<(String, String)> = items
        .iter()
        .zip(&numeric)
        .filter(|(_, n)| **n)
        .filter_map(|((e, alias), _)| {
            let column = column_name(e)?.to_string();
            let alias = alias.map_or_else(|| column.clone(), |a| a.value.clone());
            Some((column, alias))
        })
        .collect();
    let groups: Vec<Expr> = items
        .iter()
        .zip(&numeric)
        .filter(|(_, n)| !**n)
        .map(|((e, alias), _)| match alias {
            Some(a) => Expr::Identifier((*a).clone()),
            None => (*e).clone(),
        })
        .collect();
    let in_where = wrapped.iter().any(|(c, _)| {
        select
            .selection
            .as_ref()
            .is_some_and(|w| references_column(w, c))
    });
    if wrapped.is_empty() || (bucketed && groups.is_empty()) || in_where {
        return None;
    }
    for (item, is_number) in select.projection.iter_mut().zip(&numeric) {
        if !is_number {
            continue;
        }
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => continue,
        };
        let alias = alias.unwrap_or_else(|| Ident::new(column_name(&expr).unwrap_or("value")));
        *item = SelectItem::ExprWithAlias {
            expr: call(function, expr),
            alias,
        };
    }
    if groups.is_empty() {
        // One row: an order or limit of the bare rows means nothing any more.
        order.clear();
        *limit = None;
    } else {
        for o in order.iter_mut() {
            if let Some((_, alias)) = wrapped
                .iter()
                .find(|(c, _)| column_name(&o.expr) == Some(c.as_str()))
            {
                o.expr = Expr::Identifier(Ident::new(alias));
            }
        }
        select.group_by = GroupByExpr::Expressions(groups, Vec::new());
    }
    let names: Vec<&str> = wrapped.iter().map(|(c, _)| c.as_str()).collect();
    Some(format!(
        "{function} of {}: the query had no aggregate",
        names.join(", ")
    ))
}

/// The rank of a time bucket's unit, finest first.
fn unit_rank(unit: &str) -> usize {
    ["minute", "hour", "day", "week", "month", "year"]
        .iter()
        .position(|u| *u == unit)
        .unwrap_or(usize::MAX)
}

/// `toStartOfHour(t) AS hour, toStartOfDay(t) AS date`: a coarser bucket of the same time
/// next to a finer one adds a column and nothing else; it is dropped (also from GROUP BY
/// and ORDER BY).
pub(super) fn redundant_buckets(
    select: &mut Select,
    order: &mut Vec<OrderByExpr>,
) -> Option<String> {
    let bucket = |item: &SelectItem| -> Option<(usize, String, Vec<String>)> {
        let (expr, _) = item_parts(item)?;
        let Expr::Function(f) = expr else { return None };
        let name = f.name.to_string().to_lowercase();
        let unit = BUCKETS.iter().find(|(b, _)| *b == name)?.1;
        let sqlparser::ast::FunctionArguments::List(list) = &f.args else {
            return None;
        };
        let [arg] = list.args.as_slice() else {
            return None;
        };
        let names = item_names(item);
        Some((unit_rank(unit), arg.to_string(), names))
    };
    let buckets: Vec<Option<(usize, String, Vec<String>)>> =
        select.projection.iter().map(bucket).collect();
    let mut drop = vec![false; buckets.len()];
    for (i, b) in buckets.iter().enumerate() {
        let Some((rank, arg, _)) = b else { continue };
        // Dropped when another bucket of the same time is finer, or as fine and earlier.
        drop[i] = buckets.iter().enumerate().any(|(j, other)| {
            other
                .as_ref()
                .is_some_and(|(r, a, _)| j != i && a == arg && (r < rank || (r == rank && j < i)))
        });
    }
    if !drop.contains(&true) {
        return None;
    }
    let dropped_names: BTreeSet<String> = buckets
        .iter()
        .zip(&drop)
        .filter(|(_, d)| **d)
        .flat_map(|(b, _)| b.as_ref().map(|(_, _, n)| n.clone()).unwrap_or_default())
        .collect();
    let mut notes = Vec::new();
    let items = std::mem::take(&mut select.projection);
    for (item, d) in items.into_iter().zip(drop) {
        if d {
            notes.push(item.to_string());
        } else {
            select.projection.push(item);
        }
    }
    if let GroupByExpr::Expressions(groups, _) = &mut select.group_by {
        groups.retain(|g| !dropped_names.contains(&g.to_string()));
    }
    order.retain(|o| !dropped_names.contains(&o.expr.to_string()));
    Some(format!(
        "dropped {}: a finer bucket of the same time is selected",
        notes.join(", ")
    ))
}
