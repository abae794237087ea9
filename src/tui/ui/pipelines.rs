//! The Pipelines view: one row per pipeline (state, rows/s with a sparkline of the last
//! minutes, lag, errors, dead-lettered) and the selected pipeline's details: totals,
//! per-partition lag and the last errors. Data: the supervisor's snapshots.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Sparkline, Table, TableState, Wrap};
use ratatui::Frame;

use super::{clock, compact, draw_block, panel, placeholder};
use crate::ingest::engine::PipelineState;
use crate::tui::action::Action;
use crate::tui::app::{PipelineRow, State};
use crate::tui::layout;
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, body: Rect, state: &State) {
    let theme = &state.theme;
    let pipelines = &state.pipelines;
    if pipelines.rows.is_empty() {
        let block = panel(" Pipelines ", true, theme);
        let inner = draw_block(frame, body, block);
        let text = match (&pipelines.daemon, &pipelines.daemon_error) {
            (Some(_), Some(e)) => e.clone(),
            (Some(url), None) => format!(
                "aurora serve at {url} runs no pipeline. Add some to the config's `pipelines:` \
                 list and reload it (kill -HUP)."
            ),
            (None, _) => "No pipeline is running. Start one with `aurora serve` or \
                          `aurora pipeline run FILE`, or run `aurora demo` for a live one."
                .to_string(),
        };
        placeholder(frame, inner, &text, theme.muted);
        return;
    }
    let areas = layout::list_and_detail(body);
    let widths = [
        Constraint::Length(18),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Min(10),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(9),
    ];
    let header = Row::new(
        [
            "pipeline",
            "state",
            "rows/s",
            "last minutes",
            "lag",
            "stored",
            "errors",
            "dead",
        ]
        .map(|h| Cell::from(h).style(theme.header)),
    );
    // Sparklines go in a column the table leaves empty; they are drawn after the table.
    let rows: Vec<Row> = pipelines
        .rows
        .iter()
        .map(|row| {
            let s = &row.snapshot.status;
            let (state_text, state_style) = state_label(row, theme);
            Row::new(vec![
                Cell::from(s.name.clone()),
                Cell::from(state_text).style(state_style),
                Cell::from(Line::from(compact(row.rate())).right_aligned()).style(theme.number),
                Cell::from(""),
                Cell::from(Line::from(compact(s.lag.values().sum::<u64>() as f64)).right_aligned())
                    .style(theme.number),
                Cell::from(Line::from(compact(s.rows_written as f64)).right_aligned())
                    .style(theme.number),
                Cell::from(
                    Line::from(row.snapshot.recent_errors.len().to_string()).right_aligned(),
                )
                .style(if row.snapshot.recent_errors.is_empty() {
                    theme.muted
                } else {
                    theme.warning
                }),
                Cell::from(Line::from(compact(s.dead_lettered as f64)).right_aligned()).style(
                    if s.dead_lettered == 0 {
                        theme.muted
                    } else {
                        theme.warning
                    },
                ),
            ])
        })
        .collect();
    let keys = &state.keymap;
    let host = match &pipelines.daemon {
        Some(url) => format!(" of aurora serve {}", url.trim_start_matches("http://")),
        None => String::new(),
    };
    let title = if pipelines.controllable {
        format!(
            " Pipelines{host} · {} pause · {} resume · {} restart{} ",
            keys.key_for(Action::PausePipeline),
            keys.key_for(Action::ResumePipeline),
            keys.key_for(Action::RestartPipeline),
            if pipelines.daemon.is_none() {
                format!(
                    " · {} replay dead letters",
                    keys.key_for(Action::ReplayDeadLetters)
                )
            } else {
                String::new()
            }
        )
    } else {
        " Pipelines (run by other processes: read only) ".to_string()
    };
    let block = panel(title, true, theme);
    let inner = block.inner(areas.list);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(theme.selection)
        .block(block);
    let mut table_state = TableState::default().with_selected(Some(pipelines.selected));
    frame.render_stateful_widget(table, areas.list, &mut table_state);

    // The sparkline column: same split as the table's, below the header.
    let columns = Layout::horizontal(widths).spacing(1).split(inner);
    let spark_column = columns[3];
    let first = table_state.offset();
    for (i, row) in pipelines.rows.iter().enumerate().skip(first) {
        let y = spark_column.y + 1 + (i - first) as u16;
        if y >= inner.bottom() {
            break;
        }
        let area = Rect::new(spark_column.x, y, spark_column.width, 1);
        let data: Vec<u64> = row
            .rates
            .iter()
            .rev()
            .take(usize::from(area.width))
            .rev()
            .copied()
            .collect();
        frame.render_widget(
            Sparkline::default().data(&data).style(theme.series(0)),
            area,
        );
    }

    if let Some(row) = pipelines.rows.get(pipelines.selected) {
        draw_detail(frame, areas.detail, row, state);
    }
}

fn state_label(row: &PipelineRow, theme: &Theme) -> (String, Style) {
    if row.snapshot.paused {
        return ("paused".into(), theme.warning);
    }
    match &row.snapshot.status.state {
        PipelineState::Starting => ("starting".into(), theme.muted),
        PipelineState::Running => ("running".into(), theme.success),
        PipelineState::Retrying(_) => ("retrying".into(), theme.warning),
        PipelineState::Failed(_) => ("failed".into(), theme.danger),
        PipelineState::Finished => ("finished".into(), theme.muted),
        PipelineState::Stopped => ("stopped".into(), theme.muted),
    }
}

fn draw_detail(frame: &mut Frame, area: Rect, row: &PipelineRow, state: &State) {
    let theme = &state.theme;
    let s = &row.snapshot.status;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    let label = |text: &str| Span::styled(format!("{text:<16}"), theme.muted);
    let mut lines = vec![
        Line::from(vec![
            label("rows stored"),
            Span::styled(s.rows_written.to_string(), theme.number),
        ]),
        Line::from(vec![
            label("bytes stored"),
            Span::styled(s.bytes_written.to_string(), theme.number),
        ]),
        Line::from(vec![
            label("batches"),
            Span::styled(s.batches.to_string(), theme.number),
        ]),
        Line::from(vec![
            label("last batch"),
            Span::styled(
                format!(
                    "{} rows{}",
                    s.last_batch_rows,
                    s.last_batch_latency
                        .map(|d| format!(" in {} ms", d.as_millis()))
                        .unwrap_or_default()
                ),
                theme.text,
            ),
        ]),
        Line::from(vec![
            label("dead-lettered"),
            Span::styled(s.dead_lettered.to_string(), theme.number),
            // Replay runs where the pipeline does: in this process only.
            Span::styled(
                if s.dead_lettered > 0
                    && state.pipelines.controllable
                    && state.pipelines.daemon.is_none()
                {
                    format!(
                        "  {}: replay",
                        state.keymap.key_for(Action::ReplayDeadLetters)
                    )
                } else {
                    String::new()
                },
                theme.muted,
            ),
        ]),
        Line::from(vec![
            label("already stored"),
            Span::styled(s.already_stored.to_string(), theme.number),
        ]),
    ];
    if let Some((name, control)) = &state.pipelines.pending {
        if *name == s.name {
            lines.push(Line::styled(
                format!("{control:?} requested…"),
                theme.accent,
            ));
        }
    }
    if !s.lag.is_empty() {
        lines.push(Line::styled("lag by partition", theme.header));
        for (partition, lag) in &s.lag {
            lines.push(Line::from(vec![
                Span::styled(format!("  {partition:<30} "), theme.text),
                Span::styled(lag.to_string(), theme.number),
            ]));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).block(panel(format!(" {} ", s.name), false, theme)),
        left,
    );
    let mut errors: Vec<Line> = s
        .warnings
        .iter()
        .rev()
        .map(|w| {
            Line::from(vec![
                Span::styled("warning ", theme.warning),
                Span::styled(w.clone(), theme.text),
            ])
        })
        .collect();
    if row.snapshot.recent_errors.is_empty() {
        errors.push(Line::styled("no errors", theme.muted));
    } else {
        errors.extend(
            row.snapshot
                .recent_errors
                .iter()
                .rev()
                .map(|(at, message)| {
                    Line::from(vec![
                        Span::styled(format!("{} ", clock(at * 1000)), theme.muted),
                        Span::styled(message.clone(), theme.warning),
                    ])
                }),
        );
    }
    let title = if s.warnings.is_empty() {
        " Last errors "
    } else {
        " Warnings and last errors "
    };
    frame.render_widget(
        Paragraph::new(errors)
            .wrap(Wrap { trim: true })
            .block(panel(title, false, theme)),
        right,
    );
}
