//! Reading a dashboard or template file: the config layer's schema checks (every problem at
//! once, file:line:column, "did you mean"), then what a schema cannot say: panels off the grid
//! or on top of each other, macros and variables a query uses but nothing defines, template
//! slots the queries name but the template does not require, times that are not times.

use crate::config::{parse_document_mapped, Diagnostic, DocumentMap, PathStep};

use super::macros;
use super::model::{Dashboard, PanelKind, VariableKind, GRID_COLUMNS};
use super::timerange;

/// The slot every template has: the table it is deployed on.
pub const TABLE_SLOT: &str = "table";

/// Parses and checks a dashboard or template; every problem, sorted by place.
/// Whether `name` can name a variable: letters, digits and `_`, not starting with a digit,
/// and not with `__` (kept for Aurora's own macros).
pub fn is_variable_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

pub fn check_str(name: &str, text: &str) -> Result<Dashboard, Vec<Diagnostic>> {
    let (dashboard, map) = parse_document_mapped::<Dashboard>(name, text)?;
    let mut diags = Vec::new();
    check_time(&dashboard, &map, &mut diags);
    let declared = check_variables(&dashboard, &map, &mut diags);
    check_panels(&dashboard, &map, &declared, &mut diags);
    check_slots(&dashboard, &map, &mut diags);
    if diags.is_empty() {
        Ok(dashboard)
    } else {
        diags.sort_by_key(|d| (d.line, d.column));
        Err(diags)
    }
}

fn check_time(d: &Dashboard, map: &DocumentMap, diags: &mut Vec<Diagnostic>) {
    let now = timerange::now();
    let mut ends = Vec::new();
    for (key, text) in [("from", &d.time.from), ("to", &d.time.to)] {
        match timerange::resolve(text, now) {
            Ok(t) => ends.push(t),
            Err(e) => diags.push(map.error(
                map.position(&[PathStep::Key("time"), PathStep::Key(key)]),
                e.to_string(),
                Some(timerange::TIME_HINT.into()),
            )),
        }
    }
    if let [from, to] = ends[..] {
        if from >= to {
            diags.push(map.error(
                map.position(&[PathStep::Key("time"), PathStep::Key("from")]),
                format!(
                    "the time range ends before it starts (`{}` … `{}`)",
                    d.time.from, d.time.to
                ),
                Some("`from` is the earlier end, e.g. `from: now-1h`, `to: now`".into()),
            ));
        }
    }
}

/// Checks the variables; returns the names queries may use.
fn check_variables(d: &Dashboard, map: &DocumentMap, diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, v) in d.variables.iter().enumerate() {
        let at = |key: &'static str| {
            map.position(&[
                PathStep::Key("variables"),
                PathStep::Index(i),
                PathStep::Key(key),
            ])
        };
        if !is_variable_name(&v.name) {
            diags.push(
                map.error(
                    at("name"),
                    format!("`{}` cannot be a variable name", v.name),
                    Some(
                        "use letters, digits and `_`, starting with a letter (`$__` is for macros)"
                            .into(),
                    ),
                ),
            );
        } else if names.contains(&v.name) {
            diags.push(map.error(
                at("name"),
                format!("a second variable named `{}`", v.name),
                Some("variable names must be unique".into()),
            ));
        } else {
            names.push(v.name.clone());
        }
        match v.kind {
            VariableKind::Query if v.query.is_none() => diags.push(map.error(
                at("type"),
                format!("variable `{}` is a query variable without `query`", v.name),
                Some("add `query: SELECT DISTINCT column FROM table ORDER BY 1`".into()),
            )),
            VariableKind::Custom | VariableKind::Interval if v.values.is_empty() => {
                diags.push(map.error(
                    at("type"),
                    format!("variable `{}` offers no `values`", v.name),
                    Some("list the choices, e.g. `values: [1m, 5m, 1h]`".into()),
                ))
            }
            _ => {}
        }
        if v.kind == VariableKind::Interval {
            for (j, value) in v.values.iter().enumerate() {
                if humantime::parse_duration(value).is_err() {
                    diags.push(map.error(
                        map.position(&[
                            PathStep::Key("variables"),
                            PathStep::Index(i),
                            PathStep::Key("values"),
                            PathStep::Index(j),
                        ]),
                        format!("`{value}` is not an interval"),
                        Some("write a duration such as `30s`, `5m`, `1h`, `1d`".into()),
                    ));
                }
            }
        }
        if let Some(default) = &v.default {
            let offered = v.values.is_empty()
                || v.values.contains(default)
                || (v.include_all && default == "All");
            if !offered && v.kind != VariableKind::Textbox && v.kind != VariableKind::Query {
                diags.push(map.error(
                    at("default"),
                    format!("`{default}` is not one of variable `{}`'s values", v.name),
                    Some(format!("choose one of: {}", v.values.join(", "))),
                ));
            }
        }
    }
    // Variables may use each other (a query variable filtered by another), but not before
    // they exist: Grafana resolves them in order.
    for (i, v) in d.variables.iter().enumerate() {
        if let Some(query) = &v.query {
            let earlier: Vec<&str> = d.variables[..i].iter().map(|v| v.name.as_str()).collect();
            let path = [
                PathStep::Key("variables"),
                PathStep::Index(i),
                PathStep::Key("query"),
            ];
            report_macro_problems(map, &path, query, &earlier, diags);
        }
    }
    names
}

fn report_macro_problems(
    map: &DocumentMap,
    path: &[PathStep],
    sql: &str,
    declared: &[&str],
    diags: &mut Vec<Diagnostic>,
) {
    for problem in macros::check(sql, declared) {
        let needles = problem.needles();
        let found = needles
            .iter()
            .filter(|n| sql.contains(n.as_str()))
            .map(|n| (map.position_of_text(path, n), n.chars().count()))
            .next();
        diags.push(match found {
            Some((at, width)) => map.error_on(at, width, format!("{problem}"), problem.hint()),
            None => map.error(map.position(path), format!("{problem}"), problem.hint()),
        });
    }
}

fn check_panels(
    d: &Dashboard,
    map: &DocumentMap,
    declared: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
    if d.panels.is_empty() {
        diags.push(map.error(
            map.position(&[PathStep::Key("panels")]),
            "the dashboard has no panels",
            Some("add at least one panel with a `title`, `type`, `grid` and `query`".into()),
        ));
    }
    for (i, p) in d.panels.iter().enumerate() {
        let at = |key: &'static str| {
            map.position(&[
                PathStep::Key("panels"),
                PathStep::Index(i),
                PathStep::Key(key),
            ])
        };
        if p.grid.x + p.grid.w > GRID_COLUMNS {
            diags.push(map.error(
                at("grid"),
                format!(
                    "panel `{}` reaches column {} of a grid {GRID_COLUMNS} wide",
                    p.title,
                    p.grid.x + p.grid.w
                ),
                Some(format!(
                    "make `x + w` at most {GRID_COLUMNS}, e.g. `x: {}`",
                    GRID_COLUMNS.saturating_sub(p.grid.w)
                )),
            ));
        }
        if let Some((j, other)) = d.panels[..i]
            .iter()
            .enumerate()
            .find(|(_, o)| o.grid.overlaps(&p.grid))
        {
            diags.push(map.error(
                at("grid"),
                format!("panel `{}` lies on top of panel `{}`", p.title, other.title),
                Some(format!(
                    "move it below, e.g. `y: {}` (panel {} ends there)",
                    other.grid.y + other.grid.h,
                    j + 1
                )),
            ));
        }
        match (p.kind, &p.query, &p.text) {
            (PanelKind::Text, _, None) => diags.push(map.error(
                at("type"),
                format!("text panel `{}` has no `text`", p.title),
                Some("add `text: …`".into()),
            )),
            (kind, None, _) if kind != PanelKind::Text => diags.push(map.error(
                at("type"),
                format!("{} panel `{}` has no `query`", kind.name(), p.title),
                Some("add `query: SELECT …` (ClickHouse SQL; `$__timeFilter(column)` limits it to the dashboard's time range)".into()),
            )),
            _ => {}
        }
        if let Some(query) = &p.query {
            let path = [
                PathStep::Key("panels"),
                PathStep::Index(i),
                PathStep::Key("query"),
            ];
            report_macro_problems(map, &path, query, &declared, diags);
        }
        if p.refresh.is_some_and(|r| r.as_secs() < 1) {
            diags.push(map.error(
                at("refresh"),
                format!("panel `{}` would refresh more than once a second", p.title),
                Some("use `1s` or more".into()),
            ));
        }
        if p.thresholds.windows(2).any(|w| w[0].value >= w[1].value) {
            diags.push(map.error(
                at("thresholds"),
                format!("panel `{}`'s thresholds are not in rising order", p.title),
                Some("list them from the lowest value up".into()),
            ));
        }
        if let (Some(min), Some(max)) = (p.min, p.max) {
            if min >= max {
                diags.push(map.error(
                    at("min"),
                    format!(
                        "panel `{}`'s `min` ({min}) is not below its `max` ({max})",
                        p.title
                    ),
                    None,
                ));
            }
        }
    }
    if d.refresh.is_some_and(|r| r.as_secs() < 1) {
        diags.push(map.error(
            map.position(&[PathStep::Key("refresh")]),
            "the dashboard would refresh more than once a second",
            Some("use `1s` or more, e.g. `refresh: 10s`".into()),
        ));
    }
}

/// `{{slot}}` placeholders: only in templates, and only the slots the template requires.
fn check_slots(d: &Dashboard, map: &DocumentMap, diags: &mut Vec<Diagnostic>) {
    let required: Vec<&str> = d
        .template
        .as_ref()
        .map(|t| {
            t.requires
                .keys()
                .map(String::as_str)
                .chain([TABLE_SLOT])
                .collect()
        })
        .unwrap_or_default();
    if let Some(t) = &d.template {
        if t.requires.contains_key(TABLE_SLOT) {
            diags.push(map.error(
                map.position(&[
                    PathStep::Key("template"),
                    PathStep::Key("requires"),
                    PathStep::Key(TABLE_SLOT),
                ]),
                "`table` is the slot of the table itself and cannot be required as a column",
                Some("name the slot after what it holds, e.g. `time`, `level`".into()),
            ));
        }
    }
    let mut texts: Vec<(Vec<PathStep>, &str)> = Vec::new();
    for (i, p) in d.panels.iter().enumerate() {
        for (key, value) in [
            ("query", p.query.as_deref()),
            ("title", Some(p.title.as_str())),
            ("text", p.text.as_deref()),
        ] {
            if let Some(v) = value {
                texts.push((
                    vec![
                        PathStep::Key("panels"),
                        PathStep::Index(i),
                        PathStep::Key(key),
                    ],
                    v,
                ));
            }
        }
    }
    for (i, v) in d.variables.iter().enumerate() {
        if let Some(q) = &v.query {
            texts.push((
                vec![
                    PathStep::Key("variables"),
                    PathStep::Index(i),
                    PathStep::Key("query"),
                ],
                q,
            ));
        }
    }
    for (path, text) in texts {
        for slot in slots_in(text) {
            if d.template.is_none() {
                diags.push(map.error_on(
                    map.position_of_text(&path, &format!("{{{{{slot}}}}}")),
                    slot.chars().count() + 4,
                    format!("`{{{{{slot}}}}}` is a template slot, but this file is not a template"),
                    Some("deploy the template (`aurora dashboard deploy`) to fill its slots, or add a `template:` section".into()),
                ));
            } else if !required.contains(&slot.as_str()) {
                diags.push(map.error_on(
                    map.position_of_text(&path, &format!("{{{{{slot}}}}}")),
                    slot.chars().count() + 4,
                    format!("`{{{{{slot}}}}}` is not a slot of this template"),
                    Some(
                        match crate::config::did_you_mean(&slot, required.iter().copied()) {
                            Some(s) => format!("did you mean `{{{{{s}}}}}`?"),
                            None => format!(
                                "add it under `template.requires`, or use one of: {}",
                                required.join(", ")
                            ),
                        },
                    ),
                ));
            }
        }
    }
}

/// The slot names of the `{{name}}` placeholders in `text`, in order, with repeats.
pub fn slots_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "\
title: Shop
time: {from: now-6h, to: now}
refresh: 10s
variables:
  - name: country
    type: query
    query: SELECT DISTINCT country FROM demo.events ORDER BY 1
    include_all: true
panels:
  - title: Events
    type: timeseries
    grid: {x: 0, y: 0, w: 12, h: 8}
    query: |
      SELECT $__timeInterval(ts) AS t, count() AS events
      FROM demo.events
      WHERE $__timeFilter(ts) AND $__conditionalAll(country IN (${country:singlequote}), $country)
      GROUP BY t ORDER BY t
  - title: Notes
    type: text
    grid: {x: 12, y: 0, w: 12, h: 8}
    text: Shop events.
";

    fn render(name: &str, text: &str) -> String {
        crate::config::render_all(&check_str(name, text).unwrap_err(), Some(text))
    }

    #[test]
    fn a_good_dashboard_reads() {
        let d = check_str("shop.yaml", GOOD).unwrap();
        assert_eq!(d.panels.len(), 2);
        assert_eq!(d.refresh, Some(std::time::Duration::from_secs(10)));
        assert_eq!(d.variables[0].kind, VariableKind::Query);
    }

    #[test]
    fn every_problem_at_once_with_its_place() {
        let text = GOOD
            .replace("from: now-6h", "from: now-6x")
            .replace("$__timeFilter(ts)", "$__timeFiltr(ts)")
            .replace("$country)", "$contry)")
            .replace("x: 12, y: 0", "x: 6, y: 0")
            .replace("type: text", "type: txt");
        let out = render("bad.yaml", &text);
        assert!(
            out.contains("bad.yaml:19:11: error: expected one of") && out.contains("found `txt`"),
            "{out}"
        );
        // Schema problems stop before the semantic checks; fix the type and see the rest.
        let text = text.replace("type: txt", "type: text");
        let out = render("bad.yaml", &text);
        assert!(
            out.contains("bad.yaml:2:14: error: `now-6x` is not a time"),
            "{out}"
        );
        assert!(
            out.contains("bad.yaml:16:13: error: unknown macro `$__timeFiltr`"),
            "{out}"
        );
        assert!(out.contains("did you mean `$__timeFilter`?"), "{out}");
        assert!(
            out.contains("bad.yaml:16:89: error: unknown variable `$contry`"),
            "{out}"
        );
        assert!(out.contains("did you mean `country`?"), "{out}");
        assert!(
            out.contains("bad.yaml:20:11: error: panel `Notes` lies on top of panel `Events`"),
            "{out}"
        );
    }

    #[test]
    fn grid_texts_and_template_slots() {
        let text = "\
title: T
panels:
  - title: Wide
    type: stat
    grid: {x: 20, y: 0, w: 8, h: 4}
  - title: Slot
    type: table
    grid: {x: 0, y: 4, w: 8, h: 4}
    query: SELECT {{level}} FROM {{table}}
";
        let out = render("t.yaml", text);
        assert!(
            out.contains("t.yaml:5:11: error: panel `Wide` reaches column 28"),
            "{out}"
        );
        assert!(
            out.contains("t.yaml:4:11: error: stat panel `Wide` has no `query`"),
            "{out}"
        );
        assert!(out.contains("t.yaml:9:19: error: `{{level}}` is a template slot, but this file is not a template"), "{out}");
        let template = text
            .replace(
                "title: T\n",
                "title: T\ntemplate:\n  summary: s\n  requires:\n    levels: {role: status}\n",
            )
            .replace("x: 20", "x: 0")
            .replace("type: stat\n", "type: stat\n    query: SELECT 1\n");
        let out = render("t.yaml", &template);
        assert!(
            out.contains("`{{level}}` is not a slot of this template"),
            "{out}"
        );
        assert!(out.contains("did you mean `{{levels}}`?"), "{out}");
        assert!(!out.contains("`{{table}}` is not"), "{out}");
    }

    #[test]
    fn slots_are_found_in_order() {
        assert_eq!(
            slots_in("SELECT {{time}}, {{ level }} FROM {{table}} {{}}"),
            ["time", "level", "table"]
        );
    }
}
