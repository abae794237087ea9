//! The Dashboards view: the list of dashboards, or the open one's panels on Grafana's grid
//! scaled to the terminal (one zoomed to the whole view on `z`), each with its age, its
//! last good data while it refreshes, or its own error. Charts and tables are the
//! workspace's own widgets.

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Gauge, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::{draw_block, fit, panel, placeholder};
use crate::dashboards::model::{Panel, PanelKind};
use crate::dashboards::text::{format_value, threshold};
use crate::tui::action::Action;
use crate::tui::app::State;
use crate::tui::layout;
use crate::tui::theme::Theme;
use crate::tui::views::dashboards::{OpenDashboard, PanelView};
use crate::tui::widgets::chart::{ChartKind, ResultChart};
use crate::warehouse::value::Value;

pub fn draw(frame: &mut Frame, body: Rect, state: &State) {
    match &state.dashboards.open {
        Some(open) => draw_open(frame, body, state, open),
        None => draw_list(frame, body, state),
    }
}

fn draw_list(frame: &mut Frame, body: Rect, state: &State) {
    let theme = &state.theme;
    let list = &state.dashboards;
    let block = panel(" Dashboards ", true, theme);
    let inner = draw_block(frame, body, block);
    if !list.loaded {
        placeholder(frame, inner, "Reading the dashboards…", theme.muted);
        return;
    }
    if list.entries.is_empty() {
        placeholder(
            frame,
            inner,
            "No dashboards yet. `aurora dashboard suggest` lists the templates that fit your \
             tables; `aurora dashboard deploy TEMPLATE --table DB.TABLE` adds one here.",
            theme.muted,
        );
        return;
    }
    let rows: Vec<Row> = list
        .entries
        .iter()
        .map(|(name, d)| {
            Row::new(vec![
                Cell::from(name.clone()),
                Cell::from(d.title.clone()),
                Cell::from(Line::from(d.panels.len().to_string()).right_aligned())
                    .style(theme.number),
                Cell::from(
                    d.refresh
                        .map(|r| humantime::format_duration(r).to_string())
                        .unwrap_or_else(|| "off".into()),
                )
                .style(theme.muted),
            ])
        })
        .collect();
    let header =
        Row::new(["name", "title", "panels", "refresh"].map(|h| Cell::from(h).style(theme.header)));
    let table = Table::new(
        rows,
        [
            Constraint::Length(28),
            Constraint::Min(20),
            Constraint::Length(6),
            Constraint::Length(8),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selection);
    let mut table_state = TableState::default().with_selected(Some(list.selected));
    let [table_area, hint] =
        ratatui::layout::Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    frame.render_stateful_widget(table, table_area, &mut table_state);
    frame.render_widget(
        Line::from(vec![
            Span::styled(state.keymap.keys_for(Action::Select), theme.key_hint),
            Span::styled(" opens  ", theme.muted),
            Span::styled(
                state.keymap.keys_for(Action::ResumePipeline),
                theme.key_hint,
            ),
            Span::styled(" reads the files again", theme.muted),
        ]),
        hint,
    );
}

fn draw_open(frame: &mut Frame, body: Rect, state: &State, open: &OpenDashboard) {
    let theme = &state.theme;
    let (bar, grid) = layout::dashboard(body);
    draw_bar(frame, bar, state, open);
    let panels = &open.dashboard.panels;
    if open.zoomed {
        if let Some(p) = panels.get(open.focused) {
            draw_panel(frame, grid, state, p, &open.panels[open.focused], true);
        }
        return;
    }
    let grids: Vec<_> = panels.iter().map(|p| p.grid).collect();
    let places = layout::dashboard_grid(grid, &grids, open.focused);
    for (i, place) in places.iter().enumerate() {
        if let Some(area) = place {
            draw_panel(
                frame,
                *area,
                state,
                &panels[i],
                &open.panels[i],
                i == open.focused,
            );
        }
    }
    if places.iter().all(Option::is_none) {
        placeholder(
            frame,
            grid,
            "The terminal is too small for this dashboard.",
            theme.warning,
        );
    }
}

fn draw_bar(frame: &mut Frame, area: Rect, state: &State, open: &OpenDashboard) {
    let theme = &state.theme;
    let range = open.time_range();
    let mut spans = vec![
        Span::styled(format!(" {} ", open.dashboard.title), theme.title),
        Span::styled(format!(" {} … {} ", range.from, range.to), theme.accent),
    ];
    if open.paused {
        spans.push(Span::styled(" paused ", theme.warning));
    }
    for (i, v) in open.variables.iter().enumerate() {
        let style = if i == open.variable_cursor {
            theme.selection
        } else {
            theme.text
        };
        let value = if v.loading { "…" } else { v.value.as_str() };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!("{}={}", v.name, fit(value, 24, false).0),
            style,
        ));
    }
    frame.render_widget(Line::from(spans), area);
    let keys = Line::from(vec![
        Span::styled(state.keymap.keys_for(Action::NextTimeRange), theme.key_hint),
        Span::styled(" range ", theme.muted),
        Span::styled(state.keymap.keys_for(Action::ZoomPanel), theme.key_hint),
        Span::styled(" zoom ", theme.muted),
    ])
    .alignment(Alignment::Right);
    frame.render_widget(keys, area);
}

/// `12s`, `3m`: how old the panel's data is.
fn age(now_ms: u64, then_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

fn draw_panel(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    p: &Panel,
    view: &PanelView,
    focused: bool,
) {
    let theme = &state.theme;
    let status = if view.in_flight.is_some() {
        Span::styled(" ↻ ", theme.accent)
    } else if view.error.is_some() {
        Span::styled(" ! ", theme.danger)
    } else if let Some(at) = view.updated_at {
        Span::styled(format!(" {} ", age(state.now, at)), theme.muted)
    } else {
        Span::raw("")
    };
    let title = format!(
        " {} ",
        fit(&p.title, usize::from(area.width.saturating_sub(10)), false).0
    );
    let block = panel(title, focused, theme).title(Line::from(status).right_aligned());
    let inner = draw_block(frame, area, block);
    if inner.is_empty() {
        return;
    }
    if p.kind == PanelKind::Text {
        frame.render_widget(
            Paragraph::new(p.text.clone().unwrap_or_default())
                .style(theme.text)
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    if let Some(reason) = &view.left_out {
        placeholder(frame, inner, &format!("left out: {reason}"), theme.muted);
        return;
    }
    let Some(data) = &view.data else {
        match &view.error {
            Some(e) => error_text(frame, inner, e, theme),
            None => placeholder(frame, inner, "…", theme.muted),
        }
        return;
    };
    // The last good data stays; an error of the latest refresh takes the bottom line.
    let content = match &view.error {
        Some(e) if inner.height > 2 => {
            let [content, line] =
                ratatui::layout::Layout::vertical([Constraint::Min(1), Constraint::Length(1)])
                    .areas(inner);
            frame.render_widget(Line::styled(format!("! {e}"), theme.danger), line);
            content
        }
        _ => inner,
    };
    let result = &data.result;
    if result.rows.is_empty() {
        placeholder(frame, content, "no rows", theme.muted);
        return;
    }
    match p.kind {
        PanelKind::Stat => stat(frame, content, p, result, theme),
        PanelKind::Gauge => gauge(frame, content, p, result, theme),
        PanelKind::Timeseries | PanelKind::Sparkline | PanelKind::Bar => {
            let kind = match p.kind {
                PanelKind::Bar => ChartKind::Bar,
                PanelKind::Sparkline => ChartKind::Sparkline,
                _ if content.height < 6 => ChartKind::Sparkline,
                _ => ChartKind::Line,
            };
            match &data.series {
                Some(set) => frame.render_widget(ResultChart { set, kind, theme }, content),
                None => table(frame, content, result, theme),
            }
        }
        PanelKind::Table | PanelKind::Logs | PanelKind::Text => {
            table(frame, content, result, theme)
        }
    }
}

fn error_text(frame: &mut Frame, area: Rect, message: &str, theme: &Theme) {
    frame.render_widget(
        Paragraph::new(message.to_string())
            .style(theme.danger)
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn first_number(row: &[Value]) -> Option<f64> {
    row.iter().find_map(Value::as_f64)
}

/// The style a threshold colour name stands for.
fn threshold_style(color: &str, theme: &Theme) -> Style {
    match color {
        "danger" | "error" | "red" | "dark-red" => theme.danger,
        "warning" | "orange" | "yellow" => theme.warning,
        "ok" | "success" | "green" => theme.success,
        _ => theme.accent,
    }
}

fn stat(
    frame: &mut Frame,
    area: Rect,
    p: &Panel,
    result: &crate::warehouse::QueryResult,
    theme: &Theme,
) {
    let Some(value) = result.rows.first().and_then(|r| first_number(r)) else {
        let text = result.rows[0]
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        frame.render_widget(
            Line::styled(text, theme.text).alignment(Alignment::Center),
            middle(area),
        );
        return;
    };
    let style = threshold(p, value).map_or(theme.number, |c| threshold_style(c, theme));
    let mut lines = vec![Line::styled(format_value(p, value), style).alignment(Alignment::Center)];
    if let Some(previous) = result.rows.get(1).and_then(|r| first_number(r)) {
        let delta = value - previous;
        let arrow = if delta >= 0.0 { "▲" } else { "▼" };
        lines.push(
            Line::styled(
                format!("{arrow} {}", format_value(p, delta.abs())),
                theme.muted,
            )
            .alignment(Alignment::Center),
        );
    }
    let height = lines.len() as u16;
    let at = Rect {
        y: area.y + area.height.saturating_sub(height) / 2,
        height: height.min(area.height),
        ..area
    };
    frame.render_widget(Paragraph::new(lines), at);
}

fn middle(area: Rect) -> Rect {
    Rect {
        y: area.y + area.height / 2,
        height: 1.min(area.height),
        ..area
    }
}

fn gauge(
    frame: &mut Frame,
    area: Rect,
    p: &Panel,
    result: &crate::warehouse::QueryResult,
    theme: &Theme,
) {
    let row = &result.rows[0];
    let Some(value) = first_number(row) else {
        return stat(frame, area, p, result, theme);
    };
    let named = |name: &str| {
        result
            .columns
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| row.get(i))
            .and_then(Value::as_f64)
    };
    let min = p.min.or_else(|| named("min")).unwrap_or(0.0);
    let max = p.max.or_else(|| named("max")).unwrap_or(value.max(1.0));
    let ratio = ((value - min) / (max - min).max(f64::EPSILON)).clamp(0.0, 1.0);
    let style = threshold(p, value).map_or(theme.accent, |c| threshold_style(c, theme));
    let label = format!(
        "{}  ({} … {})",
        format_value(p, value),
        format_value(p, min),
        format_value(p, max)
    );
    frame.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(label)
            .gauge_style(style)
            .use_unicode(true),
        middle_band(area),
    );
}

fn middle_band(area: Rect) -> Rect {
    let height = area.height.min(3);
    Rect {
        y: area.y + (area.height - height) / 2,
        height,
        ..area
    }
}

fn table(frame: &mut Frame, area: Rect, result: &crate::warehouse::QueryResult, theme: &Theme) {
    let columns = result.columns.len().max(1);
    let widths: Vec<Constraint> = result
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let longest = result
                .rows
                .iter()
                .take(50)
                .filter_map(|r| r.get(i))
                .map(|v| v.to_string().chars().count())
                .max()
                .unwrap_or(0)
                .max(c.name.chars().count())
                .min(60);
            Constraint::Max(longest as u16 + 1)
        })
        .collect();
    let header = Row::new(
        result
            .columns
            .iter()
            .map(|c| Cell::from(c.name.clone()).style(theme.header)),
    );
    let rows = result.rows.iter().take(usize::from(area.height)).map(|r| {
        Row::new(r.iter().take(columns).map(|v| {
            let style = if v.is_null() {
                theme.null
            } else if v.as_f64().is_some() {
                theme.number
            } else {
                theme.text
            };
            Cell::from(v.to_string().replace('\n', " ")).style(style)
        }))
    });
    frame.render_widget(Table::new(rows, widths).header(header), area);
}
