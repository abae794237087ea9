//! Fitting templates to a table: every slot a template requires gets the column that fits its
//! role best (highest score first across all slots, each column used once), with the reasons;
//! a template fits when every required slot is filled. Deploying fills the `{{slots}}` with the
//! columns, leaves out the panels and variables whose optional slots stayed empty, closes the
//! gaps they leave, and picks a time range that shows the table's data.

use std::collections::BTreeMap;

use crate::warehouse::profile::TableProfile;
use crate::warehouse::query::sql_name;
use crate::warehouse::schema::TableInfo;

use super::check::{slots_in, TABLE_SLOT};
use super::model::{Dashboard, GridPos, Panel, TimeRange};
use super::roles::{Judged, Role};
use super::timerange;

/// A slot and the column chosen for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlotBinding {
    pub slot: String,
    pub role: Role,
    pub optional: bool,
    /// `None`: no column fits (the template does not fit when the slot is required).
    pub column: Option<String>,
    pub score: u8,
    pub reasons: Vec<String>,
}

/// How one template fits one table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fit {
    pub template: String,
    pub table: String,
    /// 0–100: the slots' scores averaged over all slots, so a template whose optional slots
    /// are filled ranks above one whose are not.
    pub score: u8,
    pub fits: bool,
    /// The word of the table's name the template is for, which added 10 to the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_named: Option<String>,
    pub slots: Vec<SlotBinding>,
    /// Panels the deployed dashboard keeps, of all the template's.
    pub panels: usize,
    pub panels_total: usize,
}

impl Fit {
    pub fn column(&self, slot: &str) -> Option<&str> {
        self.slots
            .iter()
            .find(|s| s.slot == slot)
            .and_then(|s| s.column.as_deref())
    }
}

/// Why `--bind slot=column` cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BindError {
    #[error("the template has no slot `{slot}`; its slots are: {known}")]
    UnknownSlot { slot: String, known: String },
    #[error("`{table}` has no column `{column}`")]
    UnknownColumn { table: String, column: String },
    #[error("`{column}` cannot be the {role} of slot `{slot}`: {why}")]
    WrongType {
        slot: String,
        column: String,
        role: &'static str,
        why: String,
    },
}

/// Fits `template` (named `name`) to `table`. `chosen` are the user's `slot → column`
/// choices, which win over the scores as long as the column's type can play the role.
pub fn fit(
    name: &str,
    template: &Dashboard,
    table: &TableInfo,
    profile: &TableProfile,
    chosen: &BTreeMap<String, String>,
) -> Result<Fit, BindError> {
    let requires = template
        .template
        .as_ref()
        .map(|t| t.requires.clone())
        .unwrap_or_default();
    let judged: Vec<Judged> = table
        .columns
        .iter()
        .filter(|c| !c.name.starts_with("_aurora"))
        .filter_map(|c| Judged::new(c, profile.column(&c.name), profile.sampled_rows))
        .collect();
    for slot in chosen.keys() {
        if !requires.contains_key(slot) {
            return Err(BindError::UnknownSlot {
                slot: slot.clone(),
                known: requires.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let mut slots: Vec<SlotBinding> = requires
        .iter()
        .map(|(slot, req)| SlotBinding {
            slot: slot.clone(),
            role: req.role,
            optional: req.optional,
            column: None,
            score: 0,
            reasons: Vec::new(),
        })
        .collect();
    let mut used: Vec<String> = Vec::new();
    // The user's choices first.
    for (i, (slot, req)) in requires.iter().enumerate() {
        let Some(column) = chosen.get(slot) else {
            continue;
        };
        let Some(j) = judged.iter().find(|j| &j.column.name == column) else {
            return Err(BindError::UnknownColumn {
                table: table.qualified_name(),
                column: column.clone(),
            });
        };
        if !j.can_play(req.role) {
            return Err(BindError::WrongType {
                slot: slot.clone(),
                column: column.clone(),
                role: req.role.name(),
                why: format!("its type is {}", j.column.type_name),
            });
        }
        slots[i].column = Some(column.clone());
        slots[i].score = j.fit(req.role).map_or(50, |f| f.score);
        slots[i].reasons = vec!["chosen with --bind".into()];
        used.push(column.clone());
    }
    // Then every (slot, column) pair by score, best first.
    let mut candidates: Vec<(u8, usize, usize, Vec<String>)> = Vec::new();
    for (i, (slot, req)) in requires.iter().enumerate() {
        if chosen.contains_key(slot) {
            continue;
        }
        for (k, j) in judged.iter().enumerate() {
            if let Some(mut f) = j.fit(req.role) {
                if let Some(w) = j.words.iter().find(|w| req.prefer.iter().any(|p| p == *w)) {
                    f.score = f.score.saturating_add(15).min(100);
                    f.reasons.push(format!("`{w}` is a preferred word"));
                }
                candidates.push((f.score, i, k, f.reasons));
            }
        }
    }
    // Stable: equal scores keep the slot order, then the table's column order.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (score, i, k, reasons) in candidates {
        let name = &judged[k].column.name;
        if slots[i].column.is_some() || used.contains(name) {
            continue;
        }
        slots[i].column = Some(name.clone());
        slots[i].score = score;
        slots[i].reasons = reasons;
        used.push(name.clone());
    }
    let fits = slots.iter().all(|s| s.optional || s.column.is_some());
    let named = table_named_for(template, &table.name);
    let score = if slots.is_empty() {
        // A template that needs nothing fits anything, and says least about it.
        10
    } else {
        let total: u32 = slots.iter().map(|s| u32::from(s.score)).sum();
        (total / slots.len() as u32) as u8
    };
    let score = if named.is_some() {
        score.saturating_add(10).min(100)
    } else {
        score
    };
    let bound: Vec<&str> = slots
        .iter()
        .filter(|s| s.column.is_some())
        .map(|s| s.slot.as_str())
        .collect();
    let (kept_panels, _) = kept(template, &bound);
    Ok(Fit {
        template: name.to_owned(),
        table: table.qualified_name(),
        score: if fits { score } else { 0 },
        fits,
        table_named: named,
        panels: kept_panels.len(),
        panels_total: template.panels.len(),
        slots,
    })
}

/// The word of `table`'s name (singular or plural, glued or not) that the template's
/// `tables_named` lists.
fn table_named_for(template: &Dashboard, table: &str) -> Option<String> {
    let wanted = &template.template.as_ref()?.tables_named;
    super::roles::words(table).into_iter().find_map(|w| {
        let singular = w.strip_suffix('s').unwrap_or(&w);
        wanted
            .iter()
            .find(|t| {
                w == **t
                    || singular == t.as_str()
                    || (t.len() >= 4 && singular.ends_with(t.as_str()))
            })
            .cloned()
    })
}

/// Indexes of the panels and of the variables a binding keeps: those whose `{{slots}}` are
/// all bound, panels also needing every variable they use to be kept.
fn kept(template: &Dashboard, bound: &[&str]) -> (Vec<usize>, Vec<usize>) {
    let available = |text: &str| {
        slots_in(text)
            .iter()
            .all(|s| s == TABLE_SLOT || bound.contains(&s.as_str()))
    };
    let variables: Vec<usize> = (0..template.variables.len())
        .filter(|&i| template.variables[i].query.as_deref().is_none_or(available))
        .collect();
    let names: Vec<&str> = variables
        .iter()
        .map(|&i| template.variables[i].name.as_str())
        .collect();
    let panels = template
        .panels
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let texts = [p.query.as_deref(), Some(&p.title), p.text.as_deref()];
            texts.iter().flatten().all(|t| available(t))
                && p.query.as_deref().is_none_or(|q| {
                    super::macros::variables_used(q)
                        .iter()
                        .all(|v| names.contains(&v.as_str()))
                })
        })
        .map(|(i, _)| i)
        .collect();
    (panels, variables)
}

/// The dashboard `template` becomes on `table` with the slots of `fit`, at `now` (Unix
/// seconds). Only for a fit that fits.
pub fn deploy(
    template: &Dashboard,
    fit: &Fit,
    table: &TableInfo,
    profile: &TableProfile,
    now: i64,
) -> Dashboard {
    let table_sql = format!("{}.{}", sql_name(&table.database), sql_name(&table.name));
    let bound: Vec<&str> = fit
        .slots
        .iter()
        .filter(|s| s.column.is_some())
        .map(|s| s.slot.as_str())
        .collect();
    let fill = |text: &str, quoted: bool| -> String {
        let mut out = text.to_owned();
        for s in &fit.slots {
            if let Some(c) = &s.column {
                let value = if quoted { sql_name(c) } else { c.clone() };
                out = out.replace(&format!("{{{{{}}}}}", s.slot), &value);
                out = out.replace(&format!("{{{{ {} }}}}", s.slot), &value);
            }
        }
        let table_text = if quoted {
            table_sql.clone()
        } else {
            table.qualified_name()
        };
        out.replace("{{table}}", &table_text)
            .replace("{{ table }}", &table_text)
    };
    let (kept_panels, kept_variables) = kept(template, &bound);
    let mut panels: Vec<Panel> = kept_panels
        .iter()
        .map(|&i| {
            let p = &template.panels[i];
            Panel {
                title: fill(&p.title, false),
                query: p.query.as_deref().map(|q| fill(q, true)),
                text: p.text.as_deref().map(|t| fill(t, false)),
                ..p.clone()
            }
        })
        .collect();
    close_gaps(&mut panels);
    let variables = kept_variables
        .iter()
        .map(|&i| {
            let mut v = template.variables[i].clone();
            v.query = v.query.as_deref().map(|q| fill(q, true));
            v
        })
        .collect();
    let time = fit
        .column("time")
        .and_then(|c| profile.column(c))
        .and_then(|p| p.newest)
        .map_or_else(
            || template.time.clone(),
            |newest| range_for(&template.time, newest, now),
        );
    let bindings: Vec<String> = fit
        .slots
        .iter()
        .filter_map(|s| s.column.as_ref().map(|c| format!("{} = {c}", s.slot)))
        .collect();
    Dashboard {
        title: format!("{} — {}", template.title, table.qualified_name()),
        description: format!(
            "From the template `{}` on {}{}.",
            fit.template,
            table.qualified_name(),
            if bindings.is_empty() {
                String::new()
            } else {
                format!(" ({})", bindings.join(", "))
            }
        ),
        tags: template.tags.clone(),
        time,
        refresh: template.refresh,
        template: None,
        variables,
        panels,
    }
}

/// The template's range when the table has data in it; otherwise the same span ending at the
/// table's newest row (an absolute range, which Grafana reads too), so a table that stopped
/// receiving data still shows its last activity.
fn range_for(range: &TimeRange, newest: i64, now: i64) -> TimeRange {
    let (Ok(from), Ok(to)) = (
        timerange::resolve(&range.from, now),
        timerange::resolve(&range.to, now),
    ) else {
        return range.clone();
    };
    if newest >= from {
        return range.clone();
    }
    let span = to - from;
    // Round the end up to the minute, so the newest row is inside.
    let end = (newest / 60 + 1) * 60;
    let format = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|_| "now".into())
    };
    TimeRange {
        from: format(end - span),
        to: format(end),
    }
}

/// Moves panels up into the space that left-out panels freed, as Grafana's grid does.
fn close_gaps(panels: &mut [Panel]) {
    let mut order: Vec<usize> = (0..panels.len()).collect();
    order.sort_by_key(|&i| (panels[i].grid.y, panels[i].grid.x));
    let mut placed: Vec<GridPos> = Vec::new();
    for i in order {
        let mut grid = panels[i].grid;
        while grid.y > 0 {
            let up = GridPos {
                y: grid.y - 1,
                ..grid
            };
            if placed.iter().any(|p| p.overlaps(&up)) {
                break;
            }
            grid = up;
        }
        panels[i].grid = grid;
        placed.push(grid);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::warehouse::profile::ColumnProfile;
    use crate::warehouse::schema::ColumnInfo;

    fn template() -> Dashboard {
        super::super::check::check_str(
            "t.yaml",
            "\
title: Logs
template:
  summary: logs
  requires:
    time: {role: time}
    level: {role: status}
    message: {role: message, optional: true}
    host: {role: entity, optional: true}
panels:
  - title: By level
    type: bar
    grid: {x: 0, y: 0, w: 12, h: 6}
    query: SELECT {{level}}, count() FROM {{table}} WHERE $__timeFilter({{time}}) GROUP BY 1
  - title: By host
    type: bar
    grid: {x: 12, y: 0, w: 12, h: 6}
    query: SELECT {{host}}, count() FROM {{table}} GROUP BY 1
  - title: Messages
    type: logs
    grid: {x: 0, y: 6, w: 24, h: 6}
    query: SELECT {{time}}, {{message}} FROM {{table}} ORDER BY 1 DESC LIMIT 50
",
        )
        .unwrap()
    }

    fn column(name: &str, ty: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            type_name: ty.into(),
            ..ColumnInfo::default()
        }
    }

    fn logs_table() -> (TableInfo, TableProfile) {
        let table = TableInfo {
            database: "app".into(),
            name: "log lines".into(),
            columns: vec![
                column("ts", "DateTime"),
                column("severity", "LowCardinality(String)"),
                column("text", "String"),
            ],
            ..TableInfo::default()
        };
        let mut profile = TableProfile {
            sampled_rows: 1000,
            ..TableProfile::default()
        };
        profile.columns.insert(
            "ts".into(),
            ColumnProfile {
                distinct: 900,
                oldest: Some(1_000_000),
                newest: Some(1_700_000_000),
                ..ColumnProfile::default()
            },
        );
        profile.columns.insert(
            "severity".into(),
            ColumnProfile {
                distinct: 4,
                avg_length: Some(4.0),
                ..ColumnProfile::default()
            },
        );
        profile.columns.insert(
            "text".into(),
            ColumnProfile {
                distinct: 800,
                avg_length: Some(60.0),
                ..ColumnProfile::default()
            },
        );
        (table, profile)
    }

    #[test]
    fn binds_roles_and_leaves_out_what_cannot_be_bound() {
        let (table, profile) = logs_table();
        let f = fit("logs", &template(), &table, &profile, &BTreeMap::new()).unwrap();
        assert!(f.fits);
        assert_eq!(f.column("time"), Some("ts"));
        assert_eq!(f.column("level"), Some("severity"));
        assert_eq!(f.column("message"), Some("text"));
        assert_eq!(f.column("host"), None);
        assert_eq!((f.panels, f.panels_total), (2, 3));
        let d = deploy(&template(), &f, &table, &profile, 1_700_000_100);
        assert_eq!(d.panels.len(), 2);
        assert_eq!(
            d.panels[0].query.as_deref(),
            Some(
                "SELECT severity, count() FROM app.`log lines` WHERE $__timeFilter(ts) GROUP BY 1"
            )
        );
        // The by-host panel is left out; the full-width messages panel stays below the first.
        assert_eq!(d.panels[1].grid.y, 6);
        assert_eq!(d.time.from, "now-1h");
        assert!(d.template.is_none());
        // A dashboard without slots, valid on its own.
        let text = serde_yaml::to_string(&d).unwrap();
        super::super::check::check_str("deployed.yaml", &text).unwrap();
    }

    #[test]
    fn stale_data_gets_a_range_ending_at_its_newest_row() {
        let (table, profile) = logs_table();
        let f = fit("logs", &template(), &table, &profile, &BTreeMap::new()).unwrap();
        let d = deploy(&template(), &f, &table, &profile, 1_700_000_000 + 86_400);
        assert_eq!(d.time.from, "2023-11-14T21:14:00Z");
        assert_eq!(d.time.to, "2023-11-14T22:14:00Z");
    }

    #[test]
    fn choices_win_but_must_fit_the_role() {
        let (table, profile) = logs_table();
        let mut chosen = BTreeMap::new();
        chosen.insert("time".to_owned(), "severity".to_owned());
        let err = fit("logs", &template(), &table, &profile, &chosen).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot be the time of slot `time`"),
            "{err}"
        );
        chosen.insert("time".to_owned(), "nope".to_owned());
        assert!(matches!(
            fit("logs", &template(), &table, &profile, &chosen),
            Err(BindError::UnknownColumn { .. })
        ));
        let mut chosen = BTreeMap::new();
        chosen.insert("lvl".to_owned(), "severity".to_owned());
        assert!(matches!(
            fit("logs", &template(), &table, &profile, &chosen),
            Err(BindError::UnknownSlot { .. })
        ));
    }

    #[test]
    fn a_table_without_a_status_does_not_fit() {
        let (mut table, profile) = logs_table();
        table.columns.retain(|c| c.name != "severity");
        let f = fit("logs", &template(), &table, &profile, &BTreeMap::new()).unwrap();
        assert!(!f.fits);
        assert_eq!(f.score, 0);
    }
}
