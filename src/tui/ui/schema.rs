//! The Schema view: tables by database (with rows and size), the selected table's columns with
//! types, keys and comments, its suggested questions, and a sample of its rows on Enter.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, List, ListItem, ListState, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::{compact, draw_block, panel, placeholder};
use crate::tui::action::Action;
use crate::tui::app::{SchemaFocus, State};
use crate::tui::layout;
use crate::tui::widgets::result_table::ResultTable;

pub fn draw(frame: &mut Frame, body: Rect, state: &State) {
    let theme = &state.theme;
    let schema = &state.schema;
    let Some(tables) = &schema.schema else {
        let text = schema
            .error
            .clone()
            .unwrap_or_else(|| "reading the schema…".into());
        let style = if schema.error.is_some() {
            theme.danger
        } else {
            theme.muted
        };
        let block = panel(" Schema ", true, theme);
        let inner = draw_block(frame, body, block);
        placeholder(frame, inner, &text, style);
        return;
    };
    let areas = layout::schema(body);
    let focused = schema.focus == SchemaFocus::Tables;
    let mut last_database = None;
    let mut items = Vec::new();
    let mut selected_item = None;
    for (position, &index) in schema.listed.iter().enumerate() {
        let Some(table) = tables.tables.get(index) else {
            continue;
        };
        if last_database != Some(&table.database) {
            items.push(ListItem::new(Line::styled(
                format!("▾ {}", table.database),
                theme.header,
            )));
            last_database = Some(&table.database);
        }
        if position == schema.selected {
            selected_item = Some(items.len());
        }
        items.push(ListItem::new(Line::from(vec![
            Span::styled(format!("  {}", table.name), theme.text),
            Span::styled(
                format!(" {}", compact(table.total_rows as f64)),
                theme.muted,
            ),
        ])));
    }
    let title = format!(" Tables ({}) ", schema.listed.len());
    let list = List::new(items)
        .block(panel(title, focused, theme))
        .highlight_style(theme.selection);
    let mut list_state = ListState::default().with_selected(selected_item);
    frame.render_stateful_widget(list, areas.tables, &mut list_state);

    let Some(table) = state.selected_table() else {
        placeholder(
            frame,
            areas.details,
            "no table matches the filter",
            theme.muted,
        );
        return;
    };
    let [columns_area, suggestions_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(6)]).areas(areas.details);
    let header =
        Row::new(["column", "type", "key", "comment"].map(|h| Cell::from(h).style(theme.header)));
    let rows: Vec<Row> = table
        .columns
        .iter()
        .map(|c| {
            let mut keys = Vec::new();
            if c.in_primary_key {
                keys.push("PK");
            }
            if c.in_sorting_key && !c.in_primary_key {
                keys.push("sort");
            }
            if c.in_partition_key {
                keys.push("part");
            }
            Row::new(vec![
                Cell::from(c.name.clone()).style(theme.text),
                Cell::from(c.type_name.clone()).style(theme.accent),
                Cell::from(keys.join(",")).style(theme.warning),
                Cell::from(c.comment.clone()).style(theme.muted),
            ])
        })
        .collect();
    let title = format!(
        " {} · {} · {} rows · {} ",
        table.qualified_name(),
        table.engine,
        compact(table.total_rows as f64),
        crate::numbers::binary_bytes(table.total_bytes)
    );
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Length(24),
                Constraint::Length(9),
                Constraint::Min(10),
            ],
        )
        .header(header)
        .block(panel(title, false, theme)),
        columns_area,
    );
    let mut suggestions: Vec<Line> = Vec::new();
    // The dashboards that fit the table first: one key deploys the best.
    let name = table.qualified_name();
    let fits = match &schema.fits {
        Some((t, Ok(fits))) if *t == name && !fits.is_empty() => {
            let list: Vec<String> = fits
                .iter()
                .take(3)
                .map(|f| format!("{} {}", f.template, f.score))
                .collect();
            Line::from(vec![
                Span::styled("Dashboards: ", theme.header),
                Span::styled(list.join(" · "), theme.accent),
                Span::styled(
                    format!(
                        "  {} deploys {}",
                        state.keymap.key_for(Action::DeployDashboard),
                        fits[0].template
                    ),
                    theme.key_hint,
                ),
            ])
        }
        Some((t, Err(e))) if *t == name => {
            Line::styled(format!("Dashboards: cannot tell ({e})"), theme.muted)
        }
        _ => Line::styled("Dashboards: measuring the columns…", theme.muted),
    };
    suggestions.push(fits);
    suggestions.extend(
        state
            .table_suggestions()
            .iter()
            .map(|s| Line::styled(format!("• {}", s.question), theme.text)),
    );
    frame.render_widget(
        Paragraph::new(suggestions)
            .wrap(Wrap { trim: true })
            .block(panel(
                format!(
                    " Suggested questions · {} runs the first ",
                    state.keymap.key_for(Action::RunSql)
                ),
                false,
                theme,
            )),
        suggestions_area,
    );

    let sample_focused = schema.focus == SchemaFocus::Sample;
    match (&schema.sample, &schema.sample_error, schema.sample_job) {
        (_, _, Some(_)) => {
            let inner = draw_block(frame, areas.sample, panel(" Sample ", false, theme));
            placeholder(frame, inner, "reading a sample…", theme.muted);
        }
        (_, Some(error), _) => frame.render_widget(
            Paragraph::new(error.clone())
                .style(theme.danger)
                .wrap(Wrap { trim: true })
                .block(panel(" Sample ", sample_focused, theme)),
            areas.sample,
        ),
        (Some(view), _, _) => {
            let block = panel(
                format!(" Sample · {} ", view.summary()),
                sample_focused,
                theme,
            );
            let inner = draw_block(frame, areas.sample, block);
            frame.render_widget(
                ResultTable {
                    view,
                    theme,
                    focused: sample_focused,
                },
                inner,
            );
        }
        _ => {
            let inner = draw_block(frame, areas.sample, panel(" Sample ", false, theme));
            let hint = format!(
                "{} shows a sample of rows",
                state.keymap.key_for(Action::Select)
            );
            placeholder(frame, inner, &hint, theme.muted);
        }
    }
}
