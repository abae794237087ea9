//! A dashboard's panels as plain text, for `aurora dashboard show --once`: scripts, SSH
//! sessions without a terminal, tests. Values with their units, series as sparklines with
//! their last, lowest and highest values, bars as rows of blocks, tables as tables.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::numbers::compact;
use crate::warehouse::value::Value;
use crate::warehouse::QueryResult;

use super::model::{Panel, PanelKind};
use super::run::PanelState;

/// Rows a table panel prints at most.
const TABLE_ROWS: usize = 20;
const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The panel as text, `width` columns wide, ending in a newline.
pub fn panel(panel: &Panel, state: &PanelState, width: usize) -> String {
    let mut out = format!("── {} ", panel.title);
    let fill = width.saturating_sub(out.chars().count());
    out.push_str(&"─".repeat(fill));
    out.push('\n');
    match state {
        PanelState::Text(text) => out.push_str(&format!("{}\n", text.trim_end())),
        PanelState::LeftOut { reason } => out.push_str(&format!("(left out: {reason})\n")),
        PanelState::Failed { message, hint, .. } => {
            out.push_str(&format!("error: {message}\n"));
            if let Some(h) = hint {
                out.push_str(&format!("hint: {h}\n"));
            }
        }
        PanelState::Data { result, .. } => out.push_str(&data(panel, result, width)),
    }
    out
}

fn data(panel: &Panel, result: &QueryResult, width: usize) -> String {
    if result.rows.is_empty() {
        return "(no rows)\n".into();
    }
    match panel.kind {
        PanelKind::Stat => stat(panel, result),
        PanelKind::Gauge => gauge(panel, result, width),
        PanelKind::Timeseries | PanelKind::Sparkline => series(panel, result, width),
        PanelKind::Bar => bars(panel, result, width),
        PanelKind::Table | PanelKind::Logs | PanelKind::Text => table(result, width),
    }
}

/// A value with the panel's unit and decimals.
pub fn format_value(panel: &Panel, value: f64) -> String {
    let fixed = |v: f64| match panel.decimals {
        Some(d) => format!("{v:.*}", usize::from(d)),
        None => compact(v),
    };
    match panel.unit.as_deref() {
        Some("percent") => format!("{}%", fixed(value)),
        Some("percentunit") => format!("{}%", fixed(value * 100.0)),
        Some("bytes") | Some("decbytes") => bytes(value),
        Some("s") => crate::numbers::duration(std::time::Duration::from_secs_f64(value.max(0.0))),
        Some("ms") => {
            crate::numbers::duration(std::time::Duration::from_secs_f64(value.max(0.0) / 1000.0))
        }
        Some("reqps") => format!("{} req/s", fixed(value)),
        _ => fixed(value),
    }
}

fn bytes(value: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = value;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// The threshold colour a value reaches, if any (the last step at or below it).
pub fn threshold(panel: &Panel, value: f64) -> Option<&str> {
    panel
        .thresholds
        .iter()
        .rev()
        .find(|t| value >= t.value)
        .map(|t| t.color.as_str())
}

/// The first number of the first row, or the first cell as text.
fn headline(result: &QueryResult, row: usize) -> (Option<f64>, String) {
    let Some(cells) = result.rows.get(row) else {
        return (None, String::new());
    };
    match cells.iter().find_map(Value::as_f64) {
        Some(n) => (Some(n), String::new()),
        None => (
            None,
            cells.first().map(ToString::to_string).unwrap_or_default(),
        ),
    }
}

fn stat(panel: &Panel, result: &QueryResult) -> String {
    let (value, text) = headline(result, 0);
    let Some(value) = value else {
        return format!("{text}\n");
    };
    let mut out = format_value(panel, value);
    // A second row is the previous period: show the change.
    if let (Some(previous), _) = headline(result, 1) {
        let delta = value - previous;
        let sign = if delta >= 0.0 { "▲" } else { "▼" };
        out.push_str(&format!("  {sign} {}", format_value(panel, delta.abs())));
    }
    if let Some(color) = threshold(panel, value) {
        out.push_str(&format!("  [{color}]"));
    }
    out.push('\n');
    out
}

fn gauge(panel: &Panel, result: &QueryResult, width: usize) -> String {
    let (Some(value), _) = headline(result, 0) else {
        return stat(panel, result);
    };
    let column = |name: &str| {
        result
            .columns
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| result.rows[0].get(i))
            .and_then(Value::as_f64)
    };
    let min = panel.min.or_else(|| column("min")).unwrap_or(0.0);
    let max = panel
        .max
        .or_else(|| column("max"))
        .unwrap_or(value.max(1.0));
    let span = (max - min).max(f64::EPSILON);
    let bar_width = width.saturating_sub(30).clamp(10, 60);
    let filled = (((value - min) / span).clamp(0.0, 1.0) * bar_width as f64).round() as usize;
    format!(
        "{}  {}{}  ({} … {})\n",
        format_value(panel, value),
        "█".repeat(filled),
        "░".repeat(bar_width - filled),
        format_value(panel, min),
        format_value(panel, max)
    )
}

/// Each numeric column after the first as a sparkline over the rows.
fn series(panel: &Panel, result: &QueryResult, width: usize) -> String {
    let mut out = String::new();
    let name_width = result
        .columns
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(16);
    let spark_width = width.saturating_sub(name_width + 40).clamp(8, 120);
    for (i, column) in result.columns.iter().enumerate().skip(1) {
        let values: Vec<f64> = result
            .rows
            .iter()
            .filter_map(|r| r.get(i).and_then(Value::as_f64))
            .collect();
        if values.is_empty() {
            continue;
        }
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let last = values[values.len() - 1];
        out.push_str(&format!(
            "{:<name_width$}  {}  last {}  min {}  max {}\n",
            column.name,
            sparkline(&values, spark_width),
            format_value(panel, last),
            format_value(panel, lo),
            format_value(panel, hi)
        ));
    }
    if out.is_empty() {
        return table(result, width);
    }
    let first = result
        .rows
        .first()
        .and_then(|r| r.first())
        .map(ToString::to_string);
    let last = result
        .rows
        .last()
        .and_then(|r| r.first())
        .map(ToString::to_string);
    if let (Some(first), Some(last)) = (first, last) {
        out.push_str(&format!(
            "{:<name_width$}  {first} … {last}, {} points\n",
            "",
            result.rows.len()
        ));
    }
    out
}

/// `values` squeezed into `width` cells (each cell the mean of its values), scaled from
/// the lowest to the highest.
pub fn sparkline(values: &[f64], width: usize) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let cells = values.len().min(width);
    let per = values.len() as f64 / cells as f64;
    let means: Vec<f64> = (0..cells)
        .map(|c| {
            let start = (c as f64 * per) as usize;
            let end = (((c + 1) as f64 * per) as usize)
                .max(start + 1)
                .min(values.len());
            values[start..end].iter().sum::<f64>() / (end - start) as f64
        })
        .collect();
    let (lo, hi) = means
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let span = hi - lo;
    means
        .iter()
        .map(|v| {
            let level = if span > 0.0 {
                ((v - lo) / span * 7.0).round() as usize
            } else {
                3
            };
            SPARK[level.min(7)]
        })
        .collect()
}

/// One row per result row: its label (the first column), a bar for its first number.
fn bars(panel: &Panel, result: &QueryResult, width: usize) -> String {
    let Some(value_column) = (1..result.columns.len()).find(|&i| {
        result
            .rows
            .iter()
            .any(|r| r.get(i).and_then(Value::as_f64).is_some())
    }) else {
        return table(result, width);
    };
    let rows: Vec<(String, f64)> = result
        .rows
        .iter()
        .take(TABLE_ROWS)
        .map(|r| {
            (
                r.first().map(ToString::to_string).unwrap_or_default(),
                r.get(value_column).and_then(Value::as_f64).unwrap_or(0.0),
            )
        })
        .collect();
    let label_width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let max = rows
        .iter()
        .map(|(_, v)| v.abs())
        .fold(0.0, f64::max)
        .max(f64::EPSILON);
    let bar_width = width.saturating_sub(label_width + 14).clamp(5, 60);
    let mut out = String::new();
    for (label, value) in rows {
        let label: String = label.chars().take(label_width).collect();
        let filled = ((value.abs() / max) * bar_width as f64).round() as usize;
        out.push_str(&format!(
            "{label:<label_width$}  {:<bar_width$}  {}\n",
            "█".repeat(filled.max(usize::from(value != 0.0))),
            format_value(panel, value)
        ));
    }
    out
}

fn table(result: &QueryResult, width: usize) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_width(u16::try_from(width).unwrap_or(u16::MAX));
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(result.columns.iter().map(|c| c.name.clone()));
    for row in result.rows.iter().take(TABLE_ROWS) {
        t.add_row(row.iter().map(|v| {
            let text = v.to_string();
            if text.chars().count() > 80 {
                format!("{}…", text.chars().take(79).collect::<String>())
            } else {
                text
            }
        }));
    }
    let mut out = format!("{t}\n");
    if result.rows.len() > TABLE_ROWS {
        out.push_str(&format!("({} more rows)\n", result.rows.len() - TABLE_ROWS));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_and_squeeze() {
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(sparkline(&[1.0, 1.0, 5.0, 5.0], 2), "▁█");
        assert_eq!(sparkline(&[2.0, 2.0], 10), "▄▄");
    }

    #[test]
    fn values_carry_their_units() {
        let mut p: Panel =
            serde_yaml::from_str("{title: t, type: stat, grid: {x: 0, y: 0, w: 1, h: 1}}").unwrap();
        assert_eq!(format_value(&p, 1234.0), "1.2k");
        p.unit = Some("bytes".into());
        assert_eq!(format_value(&p, 3.0 * 1024.0 * 1024.0), "3.0 MiB");
        p.unit = Some("percent".into());
        p.decimals = Some(2);
        assert_eq!(format_value(&p, 4.5), "4.50%");
        p.thresholds =
            serde_yaml::from_str("[{value: 1, color: warning}, {value: 5, color: danger}]")
                .unwrap();
        assert_eq!(threshold(&p, 4.5), Some("warning"));
        assert_eq!(threshold(&p, 0.5), None);
    }
}
