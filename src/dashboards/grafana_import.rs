//! Grafana dashboard JSON into an Aurora dashboard: made for the official ClickHouse plugin
//! (`grafana-clickhouse-datasource`, whose macros Aurora runs as they are) or for Altinity's
//! `vertamedia-clickhouse-datasource` (whose `$table`, `$timeFilter`, `$timeSeries`… are
//! translated). Old and new schema versions: legacy `graph`/`singlestat` panels, rows
//! (collapsed ones hold their panels), datasources given as plain strings or through
//! `__inputs`, repeated panels, `rows[]` with `span`s from before the grid. What cannot be
//! translated (another datasource's panel, a transformation, a query-rewriting macro, an
//! unknown macro) is reported per panel with the reason; everything else imports.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::macros;
use super::model::{
    Dashboard, GridPos, Panel, PanelKind, Threshold, TimeRange, Variable, VariableKind,
    GRID_COLUMNS,
};

pub const OFFICIAL_PLUGIN: &str = "grafana-clickhouse-datasource";
pub const ALTINITY_PLUGIN: &str = "vertamedia-clickhouse-datasource";

/// What became of one Grafana panel.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PanelReport {
    pub title: String,
    /// Grafana's panel type.
    pub grafana_type: String,
    /// `None` when imported; else why not.
    pub skipped: Option<String>,
    /// What was changed or left out of an imported panel.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    #[serde(skip)]
    pub dashboard: Dashboard,
    pub panels: Vec<PanelReport>,
    /// Dashboard-level notes: variables left out, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a Grafana dashboard: {0}")]
    NotADashboard(String),
    #[error("no panel of this dashboard queries ClickHouse (found: {0})")]
    NoClickHouse(String),
    #[error("none of its panels could be translated: {0}")]
    NothingTranslated(String),
}

/// The datasource plugin a panel or target uses, resolved through `__inputs` and the
/// dashboard's datasource variables.
struct Datasources {
    /// `${DS_NAME}` / `DS_NAME` → plugin id.
    inputs: BTreeMap<String, String>,
    /// A datasource variable's name → the plugin it selects (`query` field).
    variables: BTreeMap<String, String>,
    /// What to assume when a panel names nothing: the only plugin the dashboard uses.
    default: Option<String>,
}

impl Datasources {
    fn of(root: &Json) -> Self {
        let mut inputs = BTreeMap::new();
        for input in root["__inputs"].as_array().into_iter().flatten() {
            if let (Some(name), Some(plugin)) = (input["name"].as_str(), input["pluginId"].as_str())
            {
                inputs.insert(name.to_owned(), plugin.to_owned());
            }
        }
        let mut variables = BTreeMap::new();
        for v in root["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] == "datasource" {
                if let (Some(name), Some(plugin)) = (v["name"].as_str(), v["query"].as_str()) {
                    variables.insert(name.to_owned(), plugin.to_owned());
                }
            }
        }
        let mut plugins: Vec<String> = inputs.values().chain(variables.values()).cloned().collect();
        plugins.sort();
        plugins.dedup();
        let default = (plugins.len() == 1).then(|| plugins[0].clone());
        Self {
            inputs,
            variables,
            default,
        }
    }

    /// The plugin id behind a `datasource` value: `{type, uid}`, `"${DS_X}"`, a variable
    /// `"$ds"`, a plain name, or nothing.
    fn resolve(&self, value: &Json) -> Option<String> {
        match value {
            Json::Object(map) => map
                .get("type")
                .and_then(Json::as_str)
                .map(str::to_owned)
                .or_else(|| map.get("uid").and_then(|u| self.resolve(u))),
            Json::String(s) => {
                let name = s.trim_start_matches('$').trim_matches(['{', '}']);
                self.inputs
                    .get(name)
                    .or_else(|| self.variables.get(name))
                    .cloned()
                    .or_else(|| {
                        let lower = s.to_lowercase();
                        if lower.contains("vertamedia") || lower.contains("altinity") {
                            Some(ALTINITY_PLUGIN.to_owned())
                        } else if lower.contains("clickhouse") {
                            Some(
                                self.default
                                    .clone()
                                    .unwrap_or_else(|| OFFICIAL_PLUGIN.to_owned()),
                            )
                        } else if lower.contains("prometheus") || lower.contains("loki") {
                            Some(lower)
                        } else {
                            self.default.clone()
                        }
                    })
            }
            _ => self.default.clone(),
        }
    }
}

/// The dashboard's `time.from`/`time.to` when Aurora can read it, else `default` with a note
/// (Grafana's own defaults when the dashboard has none).
fn time_bound(root: &Json, key: &str, default: &str, notes: &mut Vec<String>) -> String {
    match root["time"][key].as_str() {
        None => default.to_owned(),
        Some(text) => match crate::dashboards::timerange::resolve(text, 0) {
            Ok(_) => text.to_owned(),
            Err(e) => {
                notes.push(format!("time.{key}: {e}; `{default}` instead"));
                default.to_owned()
            }
        },
    }
}

fn is_clickhouse(plugin: &str) -> bool {
    plugin == OFFICIAL_PLUGIN || plugin == ALTINITY_PLUGIN || plugin.contains("clickhouse")
}

/// Reads a Grafana dashboard (the JSON of an export, a provisioning file, or the API's
/// `{"dashboard": …}` wrapper).
pub fn import(text: &str) -> Result<ImportReport, ImportError> {
    let json: Json = serde_json::from_str(text).map_err(|e| ImportError::NotJson(e.to_string()))?;
    let root = match json.get("dashboard") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => json,
    };
    let Json::Object(map) = &root else {
        return Err(ImportError::NotADashboard(format!(
            "found {}",
            kind_of(&root)
        )));
    };
    if !map.contains_key("panels") && !map.contains_key("rows") {
        let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
        return Err(ImportError::NotADashboard(format!(
            "no `panels` or `rows`; its keys are {}",
            keys.join(", ")
        )));
    }
    let sources = Datasources::of(&root);
    let mut notes = Vec::new();
    let variables = import_variables(&root, &mut notes);
    let declared: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
    let mut panels = Vec::new();
    let mut reports = Vec::new();
    let mut plugins_seen: Vec<String> = Vec::new();
    for raw in flatten_panels(&root) {
        let (panel, report) = import_panel(&raw, &sources, &declared, &mut plugins_seen);
        if let Some(p) = panel {
            panels.push(p);
        }
        reports.push(report);
    }
    if panels.is_empty() && !plugins_seen.iter().any(|p| is_clickhouse(p)) {
        plugins_seen.sort();
        plugins_seen.dedup();
        let found = if plugins_seen.is_empty() {
            "no datasource at all".to_owned()
        } else {
            plugins_seen.join(", ")
        };
        return Err(ImportError::NoClickHouse(found));
    }
    if panels.is_empty() {
        let reasons: Vec<String> = reports
            .iter()
            .map(|r| format!("`{}`: {}", r.title, r.skipped.as_deref().unwrap_or("?")))
            .collect();
        return Err(ImportError::NothingTranslated(reasons.join("; ")));
    }
    settle(&mut panels);
    let dashboard = Dashboard {
        title: root["title"]
            .as_str()
            .unwrap_or("Imported dashboard")
            .to_owned(),
        description: root["description"].as_str().unwrap_or_default().to_owned(),
        tags: root["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        time: TimeRange {
            from: time_bound(&root, "from", "now-6h", &mut notes),
            to: time_bound(&root, "to", "now", &mut notes),
        },
        refresh: root["refresh"]
            .as_str()
            .filter(|r| !r.is_empty())
            .and_then(|r| humantime::parse_duration(r).ok()),
        template: None,
        variables,
        panels,
    };
    Ok(ImportReport {
        dashboard,
        panels: reports,
        notes,
    })
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Array(_) => "a JSON list",
        Json::Object(_) => "an object",
        Json::String(_) => "a string",
        Json::Number(_) => "a number",
        Json::Bool(_) => "true or false",
        Json::Null => "null",
    }
}

/// Every panel in reading order: rows' own panels (collapsed rows hold them), and the
/// `rows[].panels` of dashboards from before the grid, given grid places from their `span`.
fn flatten_panels(root: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for p in root["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten().cloned());
        } else {
            out.push(p.clone());
        }
    }
    let mut y = 0u64;
    for row in root["rows"].as_array().into_iter().flatten() {
        let height = px(&row["height"]).map_or(8, |h| (h / 30).max(3));
        let mut x = 0u64;
        for p in row["panels"].as_array().into_iter().flatten() {
            let w = p["span"]
                .as_f64()
                .map_or(12, |s| (s * 2.0).round() as u64)
                .clamp(1, 24);
            if x + w > 24 {
                x = 0;
                y += height;
            }
            let mut p = p.clone();
            p["gridPos"] = serde_json::json!({"x": x, "y": y, "w": w, "h": height});
            x += w;
            out.push(p);
        }
        y += height;
    }
    out
}

/// `"250px"`, `250` → 250.
fn px(v: &Json) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_str()
            .and_then(|s| s.trim_end_matches("px").trim().parse().ok())
    })
}

fn import_variables(root: &Json, notes: &mut Vec<String>) -> Vec<Variable> {
    let mut out = Vec::new();
    for v in root["templating"]["list"].as_array().into_iter().flatten() {
        let Some(name) = v["name"].as_str() else {
            continue;
        };
        if !crate::dashboards::check::is_variable_name(name) {
            notes.push(format!(
                "variable `{name}`: not a name Aurora's variables can have (letters, digits \
                 and _, not starting with a digit or __); left out"
            ));
            continue;
        }
        let kind = v["type"].as_str().unwrap_or("query");
        let query_text = match &v["query"] {
            Json::String(s) => Some(s.clone()),
            Json::Object(o) => o
                .get("rawSql")
                .or_else(|| o.get("query"))
                .and_then(Json::as_str)
                .map(str::to_owned),
            _ => None,
        };
        let current = v["current"]["value"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| v["current"]["value"][0].as_str().map(str::to_owned));
        let include_all = v["includeAll"].as_bool().unwrap_or(false);
        let default =
            current.filter(|c| !c.is_empty()).map(
                |c| {
                    if c == "$__all" {
                        "All".to_owned()
                    } else {
                        c
                    }
                },
            );
        let list = |text: &str| -> Vec<String> {
            text.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let (kind, query, values) = match kind {
            "query" => match query_text {
                Some(q) if !q.trim().is_empty() => (VariableKind::Query, Some(q), Vec::new()),
                _ => {
                    notes.push(format!(
                        "variable `{name}`: a query variable without a query; left out"
                    ));
                    continue;
                }
            },
            "custom" => {
                let values = list(&query_text.unwrap_or_default());
                if values.is_empty() {
                    // No choices stands for an empty value in Grafana: a text box holds one.
                    notes.push(format!(
                        "variable `{name}`: a custom variable with no values, kept as an empty text box"
                    ));
                    (VariableKind::Textbox, None, Vec::new())
                } else {
                    (VariableKind::Custom, None, values)
                }
            }
            "constant" => (
                VariableKind::Custom,
                None,
                vec![query_text.unwrap_or_default()],
            ),
            "textbox" => (VariableKind::Textbox, None, Vec::new()),
            "interval" => (
                VariableKind::Interval,
                None,
                list(&query_text.unwrap_or_default()),
            ),
            other => {
                notes.push(format!(
                    "variable `{name}`: a `{other}` variable has no Aurora equivalent; left out"
                ));
                continue;
            }
        };
        // What Aurora's own check refuses is left out here, with the reason: a query that
        // uses a variable not declared before it, an interval that is not a duration.
        if let Some(problem) = query.as_deref().and_then(|q| {
            let earlier: Vec<&str> = out.iter().map(|v: &Variable| v.name.as_str()).collect();
            macros::check(q, &earlier).into_iter().next()
        }) {
            notes.push(format!("variable `{name}`: {problem}; left out"));
            continue;
        }
        if kind == VariableKind::Interval {
            if let Some(bad) = values
                .iter()
                .find(|value| humantime::parse_duration(value).is_err())
            {
                notes.push(format!(
                    "variable `{name}`: `{bad}` is not an interval; left out"
                ));
                continue;
            }
        }
        let default = match kind {
            VariableKind::Textbox => default.or(query_text_for_textbox(v)),
            VariableKind::Custom | VariableKind::Interval => {
                default.filter(|d| values.contains(d) || (include_all && d == "All"))
            }
            VariableKind::Query => None,
        };
        // Leave out a default that is what the variable starts with anyway: `All` where
        // offered, else the first choice.
        let default = default.filter(|d| {
            let implied = if include_all {
                Some("All")
            } else {
                values.first().map(String::as_str)
            };
            implied != Some(d.as_str())
        });
        out.push(Variable {
            name: name.to_owned(),
            kind,
            label: v["label"]
                .as_str()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
            query,
            values,
            default,
            include_all: include_all && kind != VariableKind::Textbox,
        });
    }
    out
}

fn query_text_for_textbox(v: &Json) -> Option<String> {
    v["query"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn panel_kind(
    grafana: &str,
    raw: &Json,
    format: Option<&Json>,
) -> Option<(PanelKind, Option<String>)> {
    let time_series = matches!(format, Some(Json::Number(n)) if n.as_u64() == Some(0))
        || format.and_then(Json::as_str) == Some("time_series");
    Some(match grafana {
        "timeseries" | "graph" | "trend" => (
            PanelKind::Timeseries,
            (grafana == "graph")
                .then(|| "a legacy `graph` panel, shown as a time series".to_owned()),
        ),
        "stat" | "singlestat" => {
            let graph = raw["options"]["graphMode"] == "area" || raw["sparkline"]["show"] == true;
            if graph && time_series {
                (PanelKind::Sparkline, None)
            } else {
                (
                    PanelKind::Stat,
                    (grafana == "singlestat")
                        .then(|| "a legacy `singlestat` panel, shown as a stat".to_owned()),
                )
            }
        }
        "gauge" | "bargauge" => (PanelKind::Gauge, None),
        "barchart" | "histogram" => (PanelKind::Bar, None),
        "piechart" | "grafana-piechart-panel" => (
            PanelKind::Bar,
            Some("a pie chart, shown as bars".to_owned()),
        ),
        "table" | "table-old" => (PanelKind::Table, None),
        "text" => (PanelKind::Text, None),
        "logs" => (PanelKind::Logs, None),
        _ => return None,
    })
}

fn import_panel(
    raw: &Json,
    sources: &Datasources,
    declared: &[&str],
    plugins_seen: &mut Vec<String>,
) -> (Option<Panel>, PanelReport) {
    let title = raw["title"].as_str().unwrap_or("").to_owned();
    let grafana_type = raw["type"].as_str().unwrap_or("?").to_owned();
    let mut report = PanelReport {
        title: title.clone(),
        grafana_type: grafana_type.clone(),
        skipped: None,
        notes: Vec::new(),
    };
    let skip = |mut report: PanelReport, why: String| {
        report.skipped = Some(why);
        (None, report)
    };
    let targets: Vec<&Json> = raw["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["hide"] != true)
        .collect();
    let first = targets.first().copied();
    let (kind, note) = match panel_kind(&grafana_type, raw, first.map(|t| &t["format"])) {
        Some(k) => k,
        None => {
            return skip(
                report,
                format!("a `{grafana_type}` panel has no Aurora equivalent"),
            )
        }
    };
    if let Some(n) = note {
        report.notes.push(n);
    }
    let grid = grid_of(raw);
    let mut panel = Panel {
        title: if title.is_empty() {
            format!("({grafana_type})")
        } else {
            title.clone()
        },
        kind,
        grid,
        query: None,
        text: None,
        description: raw["description"].as_str().unwrap_or_default().to_owned(),
        unit: None,
        decimals: None,
        min: None,
        max: None,
        thresholds: Vec::new(),
        needs: Vec::new(),
        refresh: None,
    };
    if kind == PanelKind::Text {
        panel.text = Some(
            raw["options"]["content"]
                .as_str()
                .or_else(|| raw["content"].as_str())
                .unwrap_or_default()
                .to_owned(),
        );
        return (Some(panel), report);
    }
    let Some(target) = first else {
        return skip(report, "no query".to_owned());
    };
    let plugin = sources
        .resolve(&target["datasource"])
        .or_else(|| sources.resolve(&raw["datasource"]))
        .unwrap_or_default();
    plugins_seen.push(plugin.clone());
    if !is_clickhouse(&plugin) {
        let what = if plugin.is_empty() {
            "an unknown datasource".to_owned()
        } else {
            format!("`{plugin}`")
        };
        return skip(report, format!("queries {what}, not ClickHouse"));
    }
    let translated = if plugin == ALTINITY_PLUGIN
        || target.get("query").is_some() && target.get("rawSql").is_none()
    {
        let sql = target["query"].as_str().unwrap_or_default();
        translate_altinity(sql, target)
    } else {
        Ok(target["rawSql"].as_str().unwrap_or_default().to_owned())
    };
    let sql = match translated {
        Ok(sql) if !sql.trim().is_empty() => sql,
        Ok(_) => {
            return skip(
                report,
                "an empty query (built with the query builder?)".to_owned(),
            )
        }
        Err(why) => return skip(report, why),
    };
    if let Some(problem) = macros::check(&sql, declared).into_iter().next() {
        return skip(report, format!("{problem}"));
    }
    panel.query = Some(sql);
    if targets.len() > 1 {
        report.notes.push(format!(
            "{} more queries left out (Aurora runs one per panel)",
            targets.len() - 1
        ));
    }
    if raw["transformations"]
        .as_array()
        .is_some_and(|t| !t.is_empty())
    {
        let ids: Vec<&str> = raw["transformations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_str())
            .collect();
        report
            .notes
            .push(format!("transformations not applied: {}", ids.join(", ")));
    }
    if let Some(var) = raw["repeat"].as_str().filter(|r| !r.is_empty()) {
        report
            .notes
            .push(format!("repeated per `${var}` in Grafana; shown once"));
    }
    field_config(raw, &mut panel);
    (Some(panel), report)
}

fn grid_of(raw: &Json) -> GridPos {
    let g = &raw["gridPos"];
    let n = |key: &str, default: u16| g[key].as_u64().map_or(default, |v| v.min(1000) as u16);
    let w = n("w", 12).clamp(1, GRID_COLUMNS);
    GridPos {
        x: n("x", 0).min(GRID_COLUMNS - w),
        y: n("y", 0),
        w,
        h: n("h", 8).clamp(1, 100),
    }
}

/// Unit, decimals, min/max and thresholds, from `fieldConfig.defaults` (Grafana 7+) or the
/// legacy panel fields.
fn field_config(raw: &Json, panel: &mut Panel) {
    let d = &raw["fieldConfig"]["defaults"];
    panel.unit = d["unit"]
        .as_str()
        .or_else(|| raw["format"].as_str())
        .filter(|u| !u.is_empty() && *u != "none")
        .map(str::to_owned);
    panel.decimals = d["decimals"]
        .as_u64()
        .or_else(|| raw["decimals"].as_u64())
        .map(|x| x.min(10) as u8);
    panel.min = d["min"].as_f64();
    panel.max = d["max"].as_f64();
    let mut steps: Vec<Threshold> = d["thresholds"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some(Threshold {
                value: s["value"].as_f64()?,
                color: s["color"].as_str().unwrap_or("red").to_owned(),
            })
        })
        .collect();
    if steps.is_empty() {
        // singlestat: "80,90" with colours for below, between and above.
        if let Some(text) = raw["thresholds"].as_str() {
            let colors: Vec<&str> = raw["colors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .collect();
            steps = text
                .split(',')
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .enumerate()
                .map(|(i, value)| Threshold {
                    value,
                    color: colors
                        .get(i + 1)
                        .copied()
                        .unwrap_or(if i == 0 { "orange" } else { "red" })
                        .to_owned(),
                })
                .collect();
        }
    }
    // A base step written with a number, by Aurora's export or by hand, is no threshold.
    if steps.len() > 1
        && steps[0].color == "green"
        && raw["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"].is_number()
    {
        steps.remove(0);
    }
    steps.sort_by(|a, b| a.value.total_cmp(&b.value));
    steps.dedup_by(|a, b| a.value == b.value);
    panel.thresholds = steps;
}

/// Altinity's macros in Aurora's (the official plugin's) terms, from the target's
/// `database`, `table`, `dateColDataType` and `dateTimeColDataType`.
fn translate_altinity(sql: &str, target: &Json) -> Result<String, String> {
    const REWRITING: [&str; 19] = [
        "$rateColumnsAggregated",
        "$perSecondColumnsAggregated",
        "$increaseColumnsAggregated",
        "$deltaColumnsAggregated",
        "$rateColumns",
        "$perSecondColumns",
        "$increaseColumns",
        "$deltaColumns",
        "$columnsMs",
        "$columns",
        "$rate",
        "$perSecond",
        "$increase",
        "$delta",
        "$lttbMs",
        "$lttb",
        "$naturalTimeSeries",
        "$timeSeriesMs",
        "$timeFilterMs",
    ];
    for m in REWRITING {
        if contains_macro(sql, m) {
            return Err(format!(
                "Altinity's `{m}` rewrites the whole query in the plugin; not translated"
            ));
        }
    }
    let field = |k: &str| target[k].as_str().filter(|s| !s.is_empty());
    let ident = |s: &str| crate::warehouse::query::sql_name(s);
    let table = match (field("database"), field("table")) {
        (Some(db), Some(t)) => Some(format!("{}.{}", ident(db), ident(t))),
        (None, Some(t)) => Some(ident(t)),
        _ => None,
    };
    let date_col = field("dateColDataType").map(ident);
    let time_col = field("dateTimeColDataType").map(ident);
    let time_type = field("dateTimeType").unwrap_or("DATETIME");
    if time_type != "DATETIME"
        && (contains_macro(sql, "$timeFilter") || contains_macro(sql, "$timeSeries"))
    {
        return Err(format!(
            "a `{time_type}` time column in Altinity's macros; only DATETIME is translated"
        ));
    }
    let need = |what: Option<String>, name: &str| {
        what.ok_or_else(|| {
            format!(
                "`{name}` needs the target's {} field, which is empty",
                match name {
                    "$table" => "`database`/`table`",
                    "$dateCol" => "`dateColDataType`",
                    _ => "`dateTimeColDataType`",
                }
            )
        })
    };
    let mut out = sql.to_owned();
    let mut replace =
        |name: &str, with: &dyn Fn() -> Result<String, String>| -> Result<(), String> {
            if contains_macro(&out, name) {
                let value = with()?;
                out = replace_macro(&out, name, &value);
            }
            Ok(())
        };
    replace("$timeFilterByColumn", &|| {
        Ok("$__timeFilterColumn".to_owned())
    })?;
    replace("$timeFilter64ByColumn", &|| {
        Ok("$__timeFilterColumn".to_owned())
    })?;
    replace("$timeFilter", &|| {
        let t = need(time_col.clone(), "$timeFilter")?;
        Ok(match &date_col {
            Some(d) => format!("$__dateFilter({d}) AND $__timeFilter({t})"),
            None => format!("$__timeFilter({t})"),
        })
    })?;
    replace("$timeSeries", &|| {
        let t = need(time_col.clone(), "$timeSeries")?;
        Ok(format!("$__timeInterval({t})"))
    })?;
    replace("$table", &|| need(table.clone(), "$table"))?;
    replace("$dateTimeCol", &|| need(time_col.clone(), "$dateTimeCol"))?;
    replace("$dateCol", &|| need(date_col.clone(), "$dateCol"))?;
    replace("$from", &|| Ok("toUInt32($__fromTime)".to_owned()))?;
    replace("$to", &|| Ok("toUInt32($__toTime)".to_owned()))?;
    replace("$interval", &|| Ok("$__interval_s".to_owned()))?;
    replace("$adhoc", &|| Ok("1".to_owned()))?;
    replace("$conditionalTest", &|| Ok("$__conditionalAll".to_owned()))?;
    // `$timeFilterByColumn(col)` became `$__timeFilterColumn(col)`: the official name.
    out = out.replace("$__timeFilterColumn", "$__timeFilter");
    if contains_macro(&out, "$unescape") {
        return Err("Altinity's `$unescape(…)` has no equivalent; not translated".to_owned());
    }
    Ok(out)
}

/// Whether `sql` uses the macro `name` (not as the start of a longer name).
fn contains_macro(sql: &str, name: &str) -> bool {
    sql.match_indices(name).any(|(i, _)| {
        !sql[i + name.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn replace_macro(sql: &str, name: &str, with: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find(name) {
        let after = &rest[i + name.len()..];
        let longer = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..i]);
        out.push_str(if longer { name } else { with });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Moves panels down until none lies on another (Grafana stores collapsed rows' panels on
/// top of what follows them).
fn settle(panels: &mut [Panel]) {
    let mut order: Vec<usize> = (0..panels.len()).collect();
    order.sort_by_key(|&i| (panels[i].grid.y, panels[i].grid.x));
    let mut placed: Vec<GridPos> = Vec::new();
    for i in order {
        let mut g = panels[i].grid;
        while placed.iter().any(|p| p.overlaps(&g)) {
            g.y += 1;
        }
        panels[i].grid = g;
        placed.push(g);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn altinity_macros_are_translated_or_refused_with_a_reason() {
        let target = serde_json::json!({
            "database": "default", "table": "requests",
            "dateColDataType": "event_date", "dateTimeColDataType": "event_time"
        });
        let sql = "SELECT $timeSeries AS t, count() FROM $table WHERE $timeFilter GROUP BY t";
        assert_eq!(
            translate_altinity(sql, &target).unwrap(),
            "SELECT $__timeInterval(event_time) AS t, count() FROM default.requests \
             WHERE $__dateFilter(event_date) AND $__timeFilter(event_time) GROUP BY t"
        );
        let err = translate_altinity("$rate(count() AS c) FROM $table", &target).unwrap_err();
        assert!(err.contains("`$rate`"), "{err}");
        assert_eq!(
            translate_altinity(
                "SELECT 1 WHERE $timeFilterByColumn(ts) AND x < $to",
                &target
            )
            .unwrap(),
            "SELECT 1 WHERE $__timeFilter(ts) AND x < toUInt32($__toTime)"
        );
        let empty = serde_json::json!({});
        assert!(translate_altinity("SELECT * FROM $table", &empty)
            .unwrap_err()
            .contains("`database`/`table`"));
    }

    /// A dashboard of one ClickHouse table panel with `extra` fields (JSON members).
    fn one_panel(extra: &str) -> String {
        format!(
            r#"{{"title": "t", "panels": [{{"type": "table", "title": "p",
            "datasource": {{"type": "grafana-clickhouse-datasource"}},
            "targets": [{{"rawSql": "SELECT 1"}}]}}], {extra}}}"#
        )
    }

    fn variable_names(report: &ImportReport) -> Vec<&str> {
        report
            .dashboard
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .collect()
    }

    /// Found by `hostile_input`: a variable whose query names an unknown variable was imported.
    #[test]
    fn a_variable_query_with_an_unknown_variable_is_left_out() {
        let text = one_panel(
            r#""templating": {"list": [
                {"name": "host", "type": "query", "query": "SELECT host FROM t WHERE x = $_"},
                {"name": "step", "type": "interval", "query": "1m,5x"},
                {"name": "db", "type": "query", "query": "SELECT name FROM system.databases"}]}"#,
        );
        let report = import(&text).unwrap();
        assert_eq!(variable_names(&report), ["db"]);
        assert_eq!(report.notes.len(), 2, "{:?}", report.notes);
    }

    /// Found by `hostile_input`: a time range Aurora cannot read was imported as it was.
    #[test]
    fn a_time_range_aurora_cannot_read_becomes_the_default_with_a_note() {
        let text = one_panel("\"time\": {\"from\": \"now-24\u{e000}h\", \"to\": \"now\"}");
        let report = import(&text).unwrap();
        assert_eq!(report.dashboard.time.from, "now-6h");
        assert_eq!(report.dashboard.time.to, "now");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("time.from: `now-24")),
            "{:?}",
            report.notes
        );
    }

    /// Found by `hostile_input`: a variable named `0test_empty` was imported, and the
    /// dashboard written did not read back.
    #[test]
    fn a_variable_aurora_cannot_name_is_left_out_with_a_note() {
        let text = one_panel(
            r#""templating": {"list": [
                {"name": "0test_empty", "type": "custom", "query": "a,b"},
                {"name": "region", "type": "custom", "query": "eu,us"}]}"#,
        );
        let report = import(&text).unwrap();
        assert_eq!(variable_names(&report), ["region"]);
        assert!(
            report.notes.iter().any(|n| n.contains("`0test_empty`")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn not_a_dashboard_and_other_datasources_are_named() {
        assert!(matches!(
            import("[1, 2]"),
            Err(ImportError::NotADashboard(_))
        ));
        assert!(matches!(
            import("{\"title\": \"x\"}"),
            Err(ImportError::NotADashboard(_))
        ));
        assert!(matches!(import("nope"), Err(ImportError::NotJson(_))));
        let prom = r#"{"title": "P", "panels": [{"type": "timeseries", "title": "cpu",
            "datasource": {"type": "prometheus", "uid": "p"}, "targets": [{"expr": "up"}]}]}"#;
        assert_eq!(
            import(prom),
            Err(ImportError::NoClickHouse("prometheus".into()))
        );
    }

    #[test]
    fn legacy_rows_strings_and_singlestats() {
        let old = r#"{"title": "Old", "schemaVersion": 14,
          "__inputs": [{"name": "DS_CH", "pluginId": "vertamedia-clickhouse-datasource", "type": "datasource"}],
          "rows": [{"height": "240px", "panels": [
            {"type": "graph", "title": "Hits", "span": 6, "datasource": "${DS_CH}",
             "targets": [{"query": "SELECT $timeSeries AS t, count() FROM $table WHERE $timeFilter GROUP BY t",
                          "database": "web", "table": "hits", "dateTimeColDataType": "ts", "format": "time_series"}]},
            {"type": "singlestat", "title": "Total", "span": 6, "datasource": "${DS_CH}",
             "thresholds": "80,90", "colors": ["green", "orange", "red"],
             "targets": [{"query": "SELECT count() FROM $table", "database": "web", "table": "hits"}]},
            {"type": "heatmap", "title": "Heat", "span": 12, "datasource": "${DS_CH}", "targets": []}
          ]}]}"#;
        let r = import(old).unwrap();
        let d = &r.dashboard;
        assert_eq!(d.panels.len(), 2);
        assert_eq!(d.panels[0].kind, PanelKind::Timeseries);
        assert_eq!(
            d.panels[0].grid,
            GridPos {
                x: 0,
                y: 0,
                w: 12,
                h: 8
            }
        );
        assert_eq!(d.panels[1].grid.x, 12);
        assert_eq!(d.panels[1].thresholds.len(), 2);
        assert_eq!(d.panels[1].thresholds[1].color, "red");
        assert!(r.panels[2]
            .skipped
            .as_deref()
            .unwrap()
            .contains("`heatmap`"));
        assert!(r.panels[0].notes[0].contains("legacy `graph`"));
    }
}
