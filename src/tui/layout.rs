//! Where things go on screen, as pure functions of the terminal size and the state. Drawing
//! uses them to place widgets; `update` uses them to know how many rows a page has.

use ratatui::layout::{Constraint, Layout, Rect, Size};

use super::app::State;
use crate::dashboards::model::GridPos;

/// Below this, the workspace shows only a message asking for a larger terminal.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

pub struct Screen {
    pub tabs: Rect,
    pub body: Rect,
    pub notice: Rect,
    pub status: Rect,
}

pub fn screen(area: Rect) -> Screen {
    let [tabs, body, notice, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Screen {
        tabs,
        body,
        notice,
        status,
    }
}

pub struct AskAreas {
    pub question: Rect,
    /// One line: what is refined, and the attempt/validation status.
    pub context: Rect,
    pub sql: Rect,
    pub result: Rect,
}

pub fn ask(body: Rect, sql: &[String]) -> AskAreas {
    // The SQL box grows with the query (lines wrap), up to a third of the body.
    let width = usize::from(body.width.saturating_sub(2)).max(1);
    let wrapped: usize = sql
        .iter()
        .map(|l| l.chars().count().div_ceil(width).max(1))
        .sum();
    let max_sql = (body.height / 3).max(3);
    let sql_height = (wrapped.min(usize::from(u16::MAX)) as u16)
        .saturating_add(2)
        .clamp(3, max_sql);
    let [question, context, sql, result] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(sql_height),
        Constraint::Min(3),
    ])
    .areas(body);
    AskAreas {
        question,
        context,
        sql,
        result,
    }
}

pub struct SchemaAreas {
    pub tables: Rect,
    pub details: Rect,
    pub sample: Rect,
}

pub fn schema(body: Rect) -> SchemaAreas {
    let left = (body.width * 3 / 10).clamp(18.min(body.width), 40);
    let [tables, right] =
        Layout::horizontal([Constraint::Length(left), Constraint::Min(1)]).areas(body);
    let [details, sample] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
    SchemaAreas {
        tables,
        details,
        sample,
    }
}

pub struct SplitAreas {
    pub list: Rect,
    pub detail: Rect,
}

/// Pipelines and History: a list above, the selected item's details below.
pub fn list_and_detail(body: Rect) -> SplitAreas {
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
    SplitAreas { list, detail }
}

/// Where each dashboard panel goes in `area`: Grafana's 24 columns across the width, its
/// rows scaled so the whole dashboard fits the height when every panel can still be 3 rows
/// tall, else taller and scrolled to keep panel `focused` in view. `None` for a panel
/// scrolled out of sight.
pub fn dashboard_grid(area: Rect, grids: &[GridPos], focused: usize) -> Vec<Option<Rect>> {
    let total = grids.iter().map(|g| g.y + g.h).max().unwrap_or(1).max(1);
    let smallest = grids.iter().map(|g| g.h).min().unwrap_or(1).max(1);
    let scale = (f64::from(area.height) / f64::from(total)).max(3.0 / f64::from(smallest));
    let row = |units: u16| (f64::from(units) * scale).round() as i64;
    let column = |units: u16| i64::from(area.width) * i64::from(units) / 24;
    let focused_span = grids.get(focused).map(|g| (row(g.y), row(g.y + g.h)));
    let offset = match focused_span {
        Some((_, bottom)) if bottom > i64::from(area.height) => bottom - i64::from(area.height),
        _ => 0,
    };
    grids
        .iter()
        .map(|g| {
            let top = row(g.y) - offset;
            let bottom = (row(g.y + g.h) - offset).min(i64::from(area.height));
            let (left, right) = (column(g.x), column((g.x + g.w).min(24)));
            let top = top.max(0);
            (bottom - top >= 3 && right > left).then(|| {
                Rect::new(
                    area.x + left as u16,
                    area.y + top as u16,
                    (right - left) as u16,
                    (bottom - top) as u16,
                )
            })
        })
        .collect()
}

/// The Dashboards view of an open dashboard: a line for the range and variables, the grid.
pub fn dashboard(body: Rect) -> (Rect, Rect) {
    let [bar, grid] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
    (bar, grid)
}

fn body(state: &State) -> Rect {
    screen(Rect::new(0, 0, state.width, state.height)).body
}

/// Inside the borders of the Ask view's result table.
pub fn result_inner(state: &State) -> Size {
    inner(ask(body(state), state.ask.sql.lines()).result)
}

/// Inside the borders of the Schema view's sample.
pub fn sample_inner(state: &State) -> Size {
    inner(schema(body(state)).sample)
}

fn inner(area: Rect) -> Size {
    Size::new(area.width.saturating_sub(2), area.height.saturating_sub(2))
}
