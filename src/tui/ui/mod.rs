//! Drawing: a pure function of `&State`. The frame is tabs, the view, a notice line and the
//! status bar; help, the quit question and prompts are drawn over it.

mod ask;
mod dashboards;
mod history;
mod pipelines;
mod schema;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::action::Action;
use super::app::{Level, ModelStatus, State, View};
use super::layout;
use super::theme::Theme;
pub use super::widgets::cell_text::fit;
pub use super::widgets::numbers::compact;

pub fn draw(frame: &mut Frame, state: &State) {
    let area = frame.area();
    if layout::too_small(area) {
        draw_too_small(frame, area, &state.theme);
        return;
    }
    let screen = layout::screen(area);
    draw_tabs(frame, screen.tabs, state);
    match state.view {
        View::Ask => ask::draw(frame, screen.body, state),
        View::Pipelines => pipelines::draw(frame, screen.body, state),
        View::Schema => schema::draw(frame, screen.body, state),
        View::History => history::draw(frame, screen.body, state),
        View::Dashboards => dashboards::draw(frame, screen.body, state),
    }
    draw_notice(frame, screen.notice, state);
    draw_status(frame, screen.status, state);
    if let Some(filter) = &state.filter {
        prompt(
            frame,
            screen.body,
            "Filter (Enter keeps it, Esc clears)",
            &filter.text,
            &state.theme,
        );
    } else if let Some(export) = &state.ask.export {
        prompt(
            frame,
            screen.body,
            "Export to (.csv, .json or .tsv; Enter writes, Esc cancels)",
            export,
            &state.theme,
        );
    }
    if state.help {
        draw_help(frame, screen.body, state);
    }
    if state.confirm_quit {
        draw_confirm_quit(frame, screen.body, state);
    }
}

fn draw_too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = format!(
        "Terminal too small ({}×{}). Aurora needs at least {}×{}: enlarge the window, or press ctrl-c to quit.",
        area.width,
        area.height,
        layout::MIN_WIDTH,
        layout::MIN_HEIGHT
    );
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.warning)
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn draw_tabs(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let mut spans = vec![Span::styled(" aurora ", theme.title)];
    for (i, view) in View::ALL.iter().enumerate() {
        let style = if *view == state.view {
            theme.tab_active
        } else {
            theme.tab
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, view.title()), style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Line::from(spans), area);
    let help = Line::from(vec![
        Span::styled(state.keymap.keys_for(Action::ToggleHelp), theme.key_hint),
        Span::styled(" help ", theme.muted),
    ])
    .alignment(Alignment::Right);
    frame.render_widget(help, area);
}

/// The notice of the moment; without one, the alert bar while the daemon's alerts fire.
fn draw_notice(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let Some(notice) = &state.notice else {
        if let Some(bar) = alert_bar(&state.pipelines.alerts) {
            frame.render_widget(Line::styled(bar, theme.danger), area);
        }
        return;
    };
    let style = match notice.level {
        Level::Info => theme.muted,
        Level::Warning => theme.warning,
        Level::Error => theme.danger,
    };
    frame.render_widget(Line::styled(notice.text.clone(), style), area);
}

fn draw_status(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let model = match &state.model {
        ModelStatus::Ready(id) => fit(id, 24, false).0.into_owned(),
        ModelStatus::Missing(why) => format!("model: {why}"),
    };
    let rows = state.pipelines.rows.len();
    let rate: f64 = state.pipelines.rows.iter().map(|r| r.rate()).sum();
    let pipelines = if rows == 0 {
        "no pipelines".to_string()
    } else {
        format!(
            "{}/{} pipelines running · {} rows/s",
            state.active_pipelines(),
            rows,
            compact(rate)
        )
    };
    let clock = clock(state.now);
    let firing = state
        .pipelines
        .alerts
        .iter()
        .filter(|a| a.state == "firing")
        .count();
    let alerts = if firing > 0 {
        format!("▲ {firing} firing · ")
    } else {
        String::new()
    };
    let text = format!(
        " {alerts}{} (ClickHouse {}) · {} · {} ",
        state.server, state.server_version, pipelines, model
    );
    frame.render_widget(Block::new().style(theme.status_bar), area);
    // The clock keeps its place on the right; the text is cut before it.
    let clock_width = clock.len() as u16 + 2;
    let text_area = Rect {
        width: area.width.saturating_sub(clock_width),
        ..area
    };
    frame.render_widget(Line::styled(text, theme.status_bar), text_area);
    frame.render_widget(
        Line::styled(format!("{clock} "), theme.status_bar).alignment(Alignment::Right),
        area,
    );
}

/// `▲ 2 alerts firing: no_orders: No orders in 10 minutes · lag: …`, or `None` when none
/// fires.
pub fn alert_bar(alerts: &[crate::alerts::engine::ActiveAlert]) -> Option<String> {
    let firing: Vec<&crate::alerts::engine::ActiveAlert> =
        alerts.iter().filter(|a| a.state == "firing").collect();
    if firing.is_empty() {
        return None;
    }
    let list: Vec<String> = firing
        .iter()
        .map(|a| format!("{}: {}", a.rule, a.summary))
        .collect();
    Some(format!(
        "▲ {} alert{} firing: {}",
        firing.len(),
        if firing.len() == 1 { "" } else { "s" },
        list.join(" · ")
    ))
}

/// `HH:MM:SS` UTC of a Unix-milliseconds time.
pub fn clock(now_ms: u64) -> String {
    let secs = now_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A box with a title in the theme's border styles.
pub fn panel<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(if focused {
            theme.border_focused
        } else {
            theme.border
        })
        .title(title)
        .title_style(theme.title)
}

/// Draws `block` over `area` and returns the area inside it.
pub fn draw_block(frame: &mut Frame, area: Rect, block: Block) -> Rect {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// A rectangle of `width`×`height` centred in `area` (clipped to it).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn prompt(
    frame: &mut Frame,
    body: Rect,
    title: &str,
    text: &tui_textarea::TextArea<'static>,
    theme: &Theme,
) {
    let area = centered(body, body.width.saturating_sub(4).min(80), 3);
    frame.render_widget(Clear, area);
    let block = panel(title.to_string(), true, theme);
    let inner = draw_block(frame, area, block);
    frame.render_widget(text, inner);
}

fn draw_help(frame: &mut Frame, body: Rect, state: &State) {
    let theme = &state.theme;
    let entries: Vec<Line> = help_actions(state.view)
        .iter()
        .map(|action| {
            Line::from(vec![
                Span::styled(
                    format!("{:>16}  ", state.keymap.keys_for(*action)),
                    theme.key_hint,
                ),
                Span::styled(action.description(), theme.text),
            ])
        })
        .collect();
    // One column when it fits the height, else two side by side.
    let columns = if entries.len() as u16 + 6 > body.height {
        2
    } else {
        1
    };
    let per_column = entries.len().div_ceil(columns);
    let width = if columns == 2 { 120 } else { 72 };
    let height = per_column as u16 + 6;
    let area = centered(body, width, height);
    frame.render_widget(Clear, area);
    let title = format!("Keys · {} view (any key closes)", state.view.title());
    let block = panel(title, true, theme);
    let inner = draw_block(frame, area, block);
    let [keys_area, note_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(3)]).areas(inner);
    let halves =
        Layout::horizontal(vec![Constraint::Ratio(1, columns as u32); columns]).split(keys_area);
    for (chunk, column) in entries.chunks(per_column.max(1)).zip(halves.iter()) {
        frame.render_widget(Paragraph::new(chunk.to_vec()), *column);
    }
    frame.render_widget(
        Paragraph::new(typing_help(state.view))
            .style(theme.muted)
            .wrap(Wrap { trim: true }),
        note_area,
    );
}

/// The actions that do something in `view`, in the order the help lists them.
pub fn help_actions(view: View) -> Vec<Action> {
    use Action::*;
    let common = [
        ToggleHelp,
        NextView,
        PreviousView,
        ShowAsk,
        ShowPipelines,
        ShowSchema,
        ShowHistory,
        ShowDashboards,
    ];
    let specific: &[Action] = match view {
        View::Ask => &[
            FocusQuestion,
            EditSql,
            RunSql,
            OpenEditor,
            Back,
            Select,
            MoveUp,
            MoveDown,
            MoveLeft,
            MoveRight,
            PageUp,
            PageDown,
            GoToTop,
            GoToBottom,
            StartFilter,
            ToggleChart,
            CycleChart,
            ExportResult,
            ClearConversation,
            AcceptAnswer,
        ],
        View::Pipelines => &[
            MoveUp,
            MoveDown,
            PausePipeline,
            ResumePipeline,
            RestartPipeline,
        ],
        View::Schema => &[
            MoveUp,
            MoveDown,
            Select,
            DeployDashboard,
            Back,
            StartFilter,
            RunSql,
            PageUp,
            PageDown,
            MoveLeft,
            MoveRight,
        ],
        View::History => &[
            MoveUp,
            MoveDown,
            Select,
            EditSql,
            ToggleFavourite,
            AcceptAnswer,
            StartFilter,
            GoToTop,
            GoToBottom,
        ],
        View::Dashboards => &[
            Select,
            Back,
            MoveUp,
            MoveDown,
            MoveLeft,
            MoveRight,
            ZoomPanel,
            PausePipeline,
            ResumePipeline,
            NextTimeRange,
            PreviousTimeRange,
            NextVariable,
            NextVariableValue,
            PreviousVariableValue,
            EditSql,
        ],
    };
    specific
        .iter()
        .chain(common.iter())
        .chain([&Quit])
        .copied()
        .collect()
}

fn typing_help(view: View) -> &'static str {
    match view {
        View::Ask => {
            "Question box: Enter asks (SQL runs as written), ↑/↓ recall questions. SQL box: \
             Enter runs, Alt-Enter adds a line, Tab takes the listed name. While typing, only \
             Ctrl/Alt keys, F-keys, Tab and Esc are commands."
        }
        _ => "While typing a filter, Enter keeps it and Esc clears it.",
    }
}

fn draw_confirm_quit(frame: &mut Frame, body: Rect, state: &State) {
    let theme = &state.theme;
    let area = centered(body, 56, 5);
    frame.render_widget(Clear, area);
    let text = format!(
        "{} pipeline(s) are running. Quit and stop them? They stop after storing what they \
         read. y / Enter: quit, any other key: stay",
        state.running_pipelines()
    );
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.text)
            .wrap(Wrap { trim: true })
            .block(panel("Quit?", true, theme).border_style(theme.warning)),
        area,
    );
}

/// A centred message in an otherwise empty area.
pub fn placeholder(frame: &mut Frame, area: Rect, text: &str, style: Style) {
    let [_, middle, _] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Min(1),
        Constraint::Percentage(40),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(text.to_string())
            .style(style)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        middle,
    );
}
