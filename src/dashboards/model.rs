//! The dashboard file: title, time range, refresh, variables and panels on Grafana's 24-column
//! grid, as YAML. A template is the same file with a `template:` section that names the
//! column roles its queries need (`{{time}}`, `{{level}}`, `{{table}}` in the text); deploying
//! it binds those roles to a table's columns and writes a plain dashboard.

use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::roles::Role;

/// Grafana's grid is 24 columns wide; heights are in rows of its grid too.
pub const GRID_COLUMNS: u16 = 24;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub time: TimeRange,
    /// How often every panel reruns its query; a panel may set its own. Absent: never.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>", extend("format" = "aurora-duration"))]
    pub refresh: Option<Duration>,
    /// Only in templates: what the queries need of a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    pub panels: Vec<Panel>,
}

/// Grafana's time range: `now-1h` … `now`, or absolute times (`2024-05-01T00:00:00Z`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    #[serde(default = "default_from")]
    pub from: String,
    #[serde(default = "default_to")]
    pub to: String,
}

fn default_from() -> String {
    "now-1h".into()
}

fn default_to() -> String {
    "now".into()
}

impl Default for TimeRange {
    fn default() -> Self {
        Self {
            from: default_from(),
            to: default_to(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// One line on the data the template is for, shown by `dashboard list` and `suggest`.
    pub summary: String,
    /// The slots `{{name}}` the queries use, each filled with a column of the chosen role.
    #[serde(default)]
    pub requires: IndexMap<String, Requirement>,
    /// Words of table names this template is for (`order`, `event`): a table named with
    /// one (`orders`, `web_events`) ranks the template higher.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables_named: Vec<String>,
    /// A template for one fixed table (ClickHouse's `system.parts`, Aurora's own state):
    /// it is not matched against the user's tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub role: Role,
    /// Panels and variables that use an unbound optional slot are left out.
    #[serde(default)]
    pub optional: bool,
    /// Words that make a column a better fit for this slot (`prefer: [event, action]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefer: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Used as `$name` or `${name}` in queries.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: VariableKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `query` variables: SQL whose first column gives the choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `custom` and `interval` variables: the choices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// The value chosen at first; absent: `All` where offered, else the first choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Offer `All`, which `$__conditionalAll(condition, $name)` turns into no filter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariableKind {
    Query,
    Custom,
    Textbox,
    Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub title: String,
    #[serde(rename = "type")]
    pub kind: PanelKind,
    pub grid: GridPos,
    /// ClickHouse SQL with the Grafana ClickHouse plugin's macros; every panel but `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The body of a `text` panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Grafana unit id: `short`, `percent`, `s`, `ms`, `bytes`, `currencyUSD`, `reqps`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10))]
    pub decimals: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Steps upward from the base colour: a value at or above `value` takes `color`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// Tables the query reads that not every server has (`system.query_log` exists only
    /// where query logging is on, `system.disks` from 19.15): where one is missing the panel
    /// is left out and says why, instead of showing an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// This panel's own refresh, e.g. a slow summary every `5m` on a `10s` dashboard.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>", extend("format" = "aurora-duration"))]
    pub refresh: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    /// Lines over time.
    Timeseries,
    /// Bars, one per row (a category or a time bucket).
    Bar,
    /// A small line without axes, with the latest value.
    Sparkline,
    /// One number, with its change since the previous row when the query returns two.
    Stat,
    /// One number against `min`..`max`.
    Gauge,
    Table,
    /// Fixed text (Markdown in Grafana, plain here).
    Text,
    /// Rows of text, newest first, as in Grafana's logs panel.
    Logs,
}

impl PanelKind {
    pub fn name(self) -> &'static str {
        match self {
            PanelKind::Timeseries => "timeseries",
            PanelKind::Bar => "bar",
            PanelKind::Sparkline => "sparkline",
            PanelKind::Stat => "stat",
            PanelKind::Gauge => "gauge",
            PanelKind::Table => "table",
            PanelKind::Text => "text",
            PanelKind::Logs => "logs",
        }
    }
}

/// A place on Grafana's grid: `x` and `w` in 24ths of the width, `y` and `h` in grid rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridPos {
    #[schemars(range(max = 23))]
    pub x: u16,
    pub y: u16,
    #[schemars(range(min = 1, max = 24))]
    pub w: u16,
    #[schemars(range(min = 1, max = 100))]
    pub h: u16,
}

impl GridPos {
    pub fn overlaps(&self, other: &GridPos) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub value: f64,
    /// A theme role (`ok`, `warning`, `danger`) or a Grafana colour name (`green`, `red`…).
    pub color: String,
}
