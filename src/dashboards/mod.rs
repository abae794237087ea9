//! Dashboards: YAML files of panels on Grafana's grid whose queries use the Grafana
//! ClickHouse plugin's macros, a library of templates that ask for column roles instead of
//! names, the fitting of those templates to a table's columns, and running the panels. No UI
//! here: the workspace and `aurora dashboard` both call these functions.
//!
//! Data flows: a file → `check` (every problem, located) → `Dashboard`; a template +
//! `warehouse::profile` of a table → `bind::fit` → `bind::deploy` → a dashboard file;
//! a dashboard → `run` (macros expanded per the server's `Capabilities`) → panel results.

pub mod aurora_state;
pub mod bind;
pub mod check;
pub mod grafana;
pub mod grafana_import;
pub mod library;
pub mod macros;
pub mod model;
pub mod roles;
pub mod run;
pub mod suggest;
pub mod text;
pub mod timerange;

pub use model::{Dashboard, Panel, PanelKind};
