//! The result grid: a query's rows under a sticky header, scrolled by row and by column, with a
//! text filter. The data is the `QueryResult` the query runner delivered. `ResultView` is built
//! once when a result arrives (column widths from a sample of the rows) and changed by the app's
//! `update`; `ResultTable` draws it and formats only the cells on screen, so a million-row
//! result draws as fast as a ten-row one.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use ratatui::buffer::Buffer;
use ratatui::layout::{Rect, Size};
use ratatui::style::Style;
use ratatui::widgets::Widget;

use super::cell_text::{display_bounded, display_width, fit, one_line};
use super::numbers::{compact, duration, thousands};
use crate::tui::theme::Theme;
use crate::warehouse::value::Value;
use crate::warehouse::QueryResult;

/// No column is wider than this; longer values end in `…`.
pub const MAX_COLUMN_WIDTH: usize = 40;
/// Blank cells between two columns.
pub const COLUMN_GAP: usize = 2;
/// Column widths look at this many rows at the start of the result and as many at its end
/// (a sorted result has its widest numbers there): enough to be representative, few enough
/// that a result of any size opens at once.
const WIDTH_SAMPLE_ROWS: usize = 1_000;
/// A cell is formatted no further than this: room for the widest column in four-byte
/// characters, twice over for combining marks.
const CELL_TEXT_MAX_BYTES: usize = MAX_COLUMN_WIDTH * 8;

/// What the grid shows of one result: column widths, the filter, the selection and the scroll
/// position. Row positions count the rows that pass the filter, in result order.
#[derive(Debug, Clone)]
pub struct ResultView {
    result: Arc<QueryResult>,
    column_widths: Vec<usize>,
    right_aligned: Vec<bool>,
    filter: String,
    /// Indices into `result.rows` of the rows that contain `filter`, ascending; `None` when no
    /// filter is set.
    matching_rows: Option<Vec<usize>>,
    selected: usize,
    /// The first row on screen.
    offset: usize,
    /// The leftmost column on screen.
    first_column: usize,
    /// The area the app last laid the grid out in; zero until it says.
    viewport: Size,
}

impl ResultView {
    pub fn new(result: Arc<QueryResult>) -> Self {
        let mut text = String::new();
        let rows = &result.rows;
        let tail = rows
            .len()
            .saturating_sub(WIDTH_SAMPLE_ROWS)
            .max(WIDTH_SAMPLE_ROWS);
        let sample = || {
            rows.iter()
                .take(WIDTH_SAMPLE_ROWS)
                .chain(rows.get(tail..).unwrap_or_default())
                .chain(&result.totals)
        };
        let column_widths = result
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| {
                let header = display_width(&one_line(&column.name));
                let content = sample()
                    .filter_map(|row| row.get(index))
                    .map(|value| cell_width(value, &mut text))
                    .max()
                    .unwrap_or(0);
                header.max(content).clamp(1, MAX_COLUMN_WIDTH)
            })
            .collect();
        let right_aligned = result
            .columns
            .iter()
            .map(|column| column.data_type.is_right_aligned())
            .collect();
        Self {
            result,
            column_widths,
            right_aligned,
            filter: String::new(),
            matching_rows: None,
            selected: 0,
            offset: 0,
            first_column: 0,
            viewport: Size::default(),
        }
    }

    pub fn result(&self) -> &Arc<QueryResult> {
        &self.result
    }

    /// Cells each column takes on screen, gaps excluded.
    pub fn column_widths(&self) -> &[usize] {
        &self.column_widths
    }

    /// Rows that pass the filter (all rows without one).
    pub fn visible_rows(&self) -> usize {
        self.matching_rows
            .as_ref()
            .map_or(self.result.rows.len(), Vec::len)
    }

    /// Position of the selected row among the visible rows.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// Position of the first row on screen.
    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn first_column(&self) -> usize {
        self.first_column
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Index into `result.rows` of the visible row at `position`.
    pub fn row_index(&self, position: usize) -> Option<usize> {
        match &self.matching_rows {
            Some(rows) => rows.get(position).copied(),
            None => (position < self.result.rows.len()).then_some(position),
        }
    }

    /// The selected row's cells, for copying or a detail view.
    pub fn selected_row(&self) -> Option<&[Value]> {
        let index = self.row_index(self.selected)?;
        self.result.rows.get(index).map(Vec::as_slice)
    }

    pub fn move_down(&mut self, rows: usize) {
        self.selected = self.selected.saturating_add(rows).min(self.last_position());
    }

    pub fn move_up(&mut self, rows: usize) {
        self.selected = self.selected.saturating_sub(rows);
    }

    pub fn top(&mut self) {
        self.selected = 0;
        self.offset = 0;
    }

    pub fn bottom(&mut self) {
        self.selected = self.last_position();
    }

    /// Moves the selection a screen down and scrolls with it.
    pub fn page_down(&mut self, viewport_rows: usize) {
        self.move_down(viewport_rows.max(1));
        self.offset = self.offset.saturating_add(viewport_rows);
        self.ensure_visible(viewport_rows);
    }

    pub fn page_up(&mut self, viewport_rows: usize) {
        self.move_up(viewport_rows.max(1));
        self.offset = self.offset.saturating_sub(viewport_rows);
        self.ensure_visible(viewport_rows);
    }

    /// Scrolls so the selection is among the `viewport_rows` on screen, and so a screen that
    /// grew shows as many rows as it can.
    pub fn ensure_visible(&mut self, viewport_rows: usize) {
        self.offset = scroll_offset(
            self.selected,
            self.offset,
            viewport_rows,
            self.visible_rows(),
        );
    }

    /// Rows of data a grid `area_height` cells high shows: the header takes one line, and the
    /// totals row of a `WITH TOTALS` query another when there is room for data as well.
    pub fn body_rows(&self, area_height: u16) -> usize {
        let chrome = 1 + usize::from(self.shows_totals(area_height));
        usize::from(area_height).saturating_sub(chrome)
    }

    /// Records the area the app laid the grid out in (it knows the terminal size in `update`),
    /// which the summary's column range and `scroll_right` need, and keeps the selection on
    /// screen.
    pub fn set_viewport(&mut self, area: Size) {
        self.viewport = area;
        self.ensure_visible(self.body_rows(area.height));
    }

    pub fn scroll_left(&mut self) {
        self.first_column = self.first_column.saturating_sub(1);
    }

    /// One column right, unless the last column is already on screen in full.
    pub fn scroll_right(&mut self) {
        if self.first_column + 1 >= self.column_widths.len() {
            return;
        }
        let width = usize::from(self.viewport.width);
        if width > 0 && self.columns_width_from(self.first_column) <= width {
            return;
        }
        self.first_column += 1;
    }

    /// Columns a grid `width` cells wide shows, the last perhaps cut short.
    pub fn visible_columns(&self, width: u16) -> Range<usize> {
        let slots = self.column_slots(width);
        let end = slots
            .last()
            .map_or(self.first_column, |slot| slot.column + 1);
        self.first_column..end
    }

    /// Keeps the rows where any cell contains `text`, ignoring case; empty text shows all rows.
    /// Runs over every row once per change (a longer filter only rechecks the rows the shorter
    /// one kept), and the selection stays on its row, or the next one that matches.
    pub fn set_filter(&mut self, text: &str) {
        let selected_row = self.row_index(self.selected);
        let needle = text.to_lowercase();
        if needle.is_empty() {
            self.filter.clear();
            self.matching_rows = None;
        } else {
            let previous = self.filter.to_lowercase();
            let narrows = !previous.is_empty() && needle.contains(&previous);
            let rows = &self.result.rows;
            let mut scratch = FilterScratch::default();
            let matches = match (&self.matching_rows, narrows) {
                (Some(kept), true) => kept
                    .iter()
                    .copied()
                    .filter(|&index| row_contains(&rows[index], &needle, &mut scratch))
                    .collect(),
                _ => (0..rows.len())
                    .filter(|&index| row_contains(&rows[index], &needle, &mut scratch))
                    .collect(),
            };
            self.filter = text.to_string();
            self.matching_rows = Some(matches);
        }
        self.selected = match (selected_row, &self.matching_rows) {
            (Some(index), Some(rows)) => rows.partition_point(|&row| row < index),
            (Some(index), None) => index,
            (None, _) => 0,
        }
        .min(self.last_position());
        self.ensure_visible(self.body_rows(self.viewport.height));
    }

    /// A line for the grid's title or footer, e.g.
    /// `1,000,000 rows · row 42 · cols 3–7 of 12 · 120 ms · 1.2M rows read`.
    pub fn summary(&self) -> String {
        let total = self.result.rows.len();
        let mut parts = Vec::with_capacity(6);
        parts.push(match &self.matching_rows {
            Some(rows) => format!(
                "{} of {} rows match `{}`",
                thousands(rows.len() as u64),
                thousands(total as u64),
                self.filter
            ),
            None if total == 1 => "1 row".to_string(),
            None => format!("{} rows", thousands(total as u64)),
        });
        if self.visible_rows() > 0 {
            parts.push(format!("row {}", thousands(self.selected as u64 + 1)));
        }
        let count = self.column_widths.len();
        let shown = if self.viewport.width == 0 {
            0..count
        } else {
            self.visible_columns(self.viewport.width)
        };
        parts.push(match count {
            0 => "no columns".to_string(),
            1 => "1 column".to_string(),
            _ if shown == (0..count) => format!("{count} columns"),
            _ if shown.len() <= 1 => format!("col {} of {count}", shown.start + 1),
            _ => format!("cols {}–{} of {count}", shown.start + 1, shown.end),
        });
        let stats = &self.result.stats;
        if stats.truncated {
            parts.push("cut short by max_result_rows".to_string());
        }
        if !stats.elapsed.is_zero() {
            parts.push(duration(stats.elapsed));
        }
        if let Some(rows_read) = stats.rows_read {
            parts.push(format!("{} rows read", compact(rows_read as f64)));
        }
        parts.join(" · ")
    }

    fn last_position(&self) -> usize {
        self.visible_rows().saturating_sub(1)
    }

    fn shows_totals(&self, area_height: u16) -> bool {
        self.result.totals.is_some() && area_height >= 3
    }

    /// Cells the columns from `first` to the last take, gaps included.
    fn columns_width_from(&self, first: usize) -> usize {
        let columns = self.column_widths.get(first..).unwrap_or_default();
        columns.iter().sum::<usize>() + COLUMN_GAP * columns.len().saturating_sub(1)
    }

    /// Where each column on screen starts and how many cells it gets in `width`.
    fn column_slots(&self, width: u16) -> Vec<ColumnSlot> {
        let width = usize::from(width);
        let mut slots = Vec::new();
        let mut x = 0;
        for (column, &column_width) in self.column_widths.iter().enumerate() {
            if column < self.first_column {
                continue;
            }
            if x >= width {
                break;
            }
            slots.push(ColumnSlot {
                column,
                x,
                width: column_width.min(width - x),
            });
            x += column_width + COLUMN_GAP;
        }
        slots
    }
}

#[derive(Debug, Clone, Copy)]
struct ColumnSlot {
    column: usize,
    /// Cells from the grid's left edge.
    x: usize,
    width: usize,
}

/// The first row on screen so that `selected` is among the `rows` shown and no screen space is
/// left empty below the last row.
fn scroll_offset(selected: usize, offset: usize, rows: usize, total: usize) -> usize {
    if rows == 0 {
        return selected;
    }
    let mut offset = offset.min(selected);
    if selected >= offset + rows {
        offset = selected + 1 - rows;
    }
    offset.min(total.saturating_sub(rows))
}

fn cell_width(value: &Value, text: &mut String) -> usize {
    if display_bounded(value, CELL_TEXT_MAX_BYTES, text) {
        return MAX_COLUMN_WIDTH;
    }
    display_width(&one_line(text))
}

/// Buffers reused across every cell the filter looks at, so a million rows cost no allocations.
#[derive(Default)]
struct FilterScratch {
    text: String,
    lowered: String,
}

fn row_contains(row: &[Value], needle: &str, scratch: &mut FilterScratch) -> bool {
    row.iter().any(|value| {
        scratch.text.clear();
        // Writing to a String cannot fail.
        let _ = write!(scratch.text, "{value}");
        contains_ignoring_case(&scratch.text, needle, &mut scratch.lowered)
    })
}

/// Whether `haystack` contains `needle` (already lowercase), ignoring case.
fn contains_ignoring_case(haystack: &str, needle: &str, lowered: &mut String) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        return haystack.len() >= needle.len()
            && haystack
                .as_bytes()
                .windows(needle.len())
                .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()));
    }
    lowered.clear();
    lowered.extend(haystack.chars().flat_map(char::to_lowercase));
    lowered.contains(needle)
}

/// Draws a `ResultView`: the header, the rows on screen and the totals row. Draw it inside a
/// block whose title is `ResultView::summary()`.
pub struct ResultTable<'a> {
    pub view: &'a ResultView,
    pub theme: &'a Theme,
    /// The selected row is highlighted only while the grid has the keyboard.
    pub focused: bool,
}

impl Widget for ResultTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let (view, theme) = (self.view, self.theme);
        let result = &*view.result;
        buf.set_style(area, theme.text);
        if result.columns.is_empty() {
            buf.set_stringn(area.x, area.y, "no columns", area.width.into(), theme.muted);
            return;
        }
        let slots = view.column_slots(area.width);
        buf.set_style(line_of(area, area.y), theme.header);
        let mut grid = Grid {
            buf,
            left: area.x,
            slots: &slots,
            view,
            theme,
        };
        grid.draw_header(area.y);

        let body_rows = view.body_rows(area.height);
        let total = view.visible_rows();
        if total == 0 && body_rows > 0 {
            let message = if view.filter.is_empty() {
                "no rows".to_string()
            } else {
                format!("no rows match `{}`", view.filter)
            };
            let message = one_line(&message).into_owned();
            grid.buf
                .set_stringn(area.x, area.y + 1, message, area.width.into(), theme.muted);
        }
        let offset = scroll_offset(view.selected, view.offset, body_rows, total);
        let mut text = String::new();
        for (line, position) in (offset..total).take(body_rows).enumerate() {
            let Some(row) = view.row_index(position).and_then(|i| result.rows.get(i)) else {
                break;
            };
            // `line` < `body_rows` < the area's height, so it fits a u16.
            let y = area.y + 1 + line as u16;
            let overlay = (self.focused && position == view.selected).then_some(theme.selection);
            if let Some(selection) = overlay {
                grid.buf.set_style(line_of(area, y), selection);
            }
            grid.draw_row(y, row, overlay, &mut text);
        }
        if let Some(totals) = result
            .totals
            .as_ref()
            .filter(|_| view.shows_totals(area.height))
        {
            let y = area.bottom() - 1;
            grid.buf.set_style(line_of(area, y), theme.header);
            grid.draw_row(y, totals, Some(theme.header), &mut text);
        }
    }
}

fn line_of(area: Rect, y: u16) -> Rect {
    Rect {
        y,
        height: 1,
        ..area
    }
}

/// One frame's drawing of the grid's lines into the buffer.
struct Grid<'a, 'b> {
    buf: &'b mut Buffer,
    left: u16,
    slots: &'a [ColumnSlot],
    view: &'a ResultView,
    theme: &'a Theme,
}

impl Grid<'_, '_> {
    fn draw_header(&mut self, y: u16) {
        for slot in self.slots {
            let Some(column) = self.view.result.columns.get(slot.column) else {
                continue;
            };
            let name = one_line(&column.name);
            self.draw_cell(y, slot, &name, false, self.theme.header);
        }
    }

    /// `overlay` (the selection, the totals' style) is laid over each cell's own style.
    fn draw_row(&mut self, y: u16, row: &[Value], overlay: Option<Style>, text: &mut String) {
        for slot in self.slots {
            // A short row (which a well-formed result never has) leaves its cells blank.
            let Some(value) = row.get(slot.column) else {
                continue;
            };
            let style = value_style(value, self.theme);
            let style = overlay.map_or(style, |overlay| style.patch(overlay));
            let cut = display_bounded(value, CELL_TEXT_MAX_BYTES, text);
            self.draw_cell(y, slot, &one_line(text), cut, style);
        }
    }

    fn draw_cell(&mut self, y: u16, slot: &ColumnSlot, text: &str, cut: bool, style: Style) {
        let (text, used) = fit(text, slot.width, cut);
        let right_aligned = self.view.right_aligned.get(slot.column) == Some(&true);
        let pad = if right_aligned { slot.width - used } else { 0 };
        // Slots lie inside the area, so these fit a u16.
        let x = self.left + (slot.x + pad) as u16;
        self.buf.set_stringn(x, y, &text, used, style);
        // The buffer resets the cell a wide character hides; give it the cell's style again so
        // a selected row has no holes.
        self.buf.set_style(Rect::new(x, y, used as u16, 1), style);
    }
}

fn value_style(value: &Value, theme: &Theme) -> Style {
    match value {
        Value::Null => theme.null,
        Value::Int(_)
        | Value::UInt(_)
        | Value::Int128(_)
        | Value::UInt128(_)
        | Value::BigInt(_)
        | Value::Float(_)
        | Value::Decimal(_) => theme.number,
        _ => theme.text,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::tui::theme::ColorDepth;
    use crate::warehouse::result::{Column, QueryStats};
    use crate::warehouse::types::DataType;

    fn theme() -> Theme {
        Theme::dark(ColorDepth::TrueColor)
    }

    fn column(name: &str, type_name: &str) -> Column {
        Column {
            name: name.to_string(),
            type_name: type_name.to_string(),
            data_type: DataType::parse(type_name).unwrap(),
        }
    }

    fn result(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Arc<QueryResult> {
        Arc::new(QueryResult {
            columns: columns.iter().map(|(n, t)| column(n, t)).collect(),
            rows,
            ..QueryResult::default()
        })
    }

    fn people() -> Arc<QueryResult> {
        result(
            &[
                ("id", "UInt64"),
                ("name", "String"),
                ("score", "Nullable(Float64)"),
            ],
            vec![
                vec![
                    Value::UInt(1),
                    Value::String("alice".into()),
                    Value::Float(12.5),
                ],
                vec![Value::UInt(2), Value::String("bob".into()), Value::Null],
                vec![
                    Value::UInt(3),
                    Value::String("日本".into()),
                    Value::Float(-3.0),
                ],
            ],
        )
    }

    /// `n` rows of (number, `row-{n}`).
    fn numbered(n: usize) -> Arc<QueryResult> {
        result(
            &[("n", "UInt64"), ("label", "String")],
            (0..n)
                .map(|i| {
                    vec![
                        Value::UInt(i as u64),
                        Value::String(format!("row-{i}").into()),
                    ]
                })
                .collect(),
        )
    }

    fn render(table: ResultTable<'_>, width: u16, height: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
        table.render(buf.area, &mut buf);
        buf
    }

    #[test]
    fn widths_come_from_header_and_content_capped() {
        let long = "x".repeat(500);
        let view = ResultView::new(result(
            &[
                ("id", "UInt8"),
                ("a_long_header", "String"),
                ("body", "String"),
            ],
            vec![
                vec![
                    Value::UInt(7),
                    Value::String("日本".into()),
                    Value::String(long.into()),
                ],
                vec![Value::UInt(100), Value::Null, Value::String("short".into())],
            ],
        ));
        assert_eq!(view.column_widths(), &[3, 13, MAX_COLUMN_WIDTH]);
        // Wide characters count two cells, a line break one.
        let view = ResultView::new(result(
            &[("k", "String")],
            vec![vec![Value::String("日本\n😀".into())]],
        ));
        assert_eq!(view.column_widths(), &[7]);
    }

    #[test]
    fn widths_sample_the_first_and_last_rows() {
        let ab = || vec![Value::String("ab".into())];
        let mut rows: Vec<Vec<Value>> = (0..WIDTH_SAMPLE_ROWS).map(|_| ab()).collect();
        rows.push(vec![Value::String("much longer than the rest".into())]);
        rows.extend((0..WIDTH_SAMPLE_ROWS).map(|_| ab()));
        let view = ResultView::new(result(&[("s", "String")], rows.clone()));
        assert_eq!(view.column_widths(), &[2]);
        rows.push(vec![Value::String("abcdef".into())]);
        let view = ResultView::new(result(&[("s", "String")], rows));
        assert_eq!(view.column_widths(), &[6]);
    }

    #[test]
    fn navigation_is_clamped() {
        let mut view = ResultView::new(numbered(100));
        view.move_up(3);
        assert_eq!(view.selected(), 0);
        view.move_down(5);
        assert_eq!(view.selected(), 5);
        view.move_down(usize::MAX);
        assert_eq!(view.selected(), 99);
        view.ensure_visible(10);
        assert_eq!(view.offset(), 90);
        view.top();
        assert_eq!((view.selected(), view.offset()), (0, 0));
        view.page_down(10);
        assert_eq!((view.selected(), view.offset()), (10, 10));
        view.page_down(10);
        view.page_up(10);
        assert_eq!((view.selected(), view.offset()), (10, 10));
        view.move_up(1);
        view.ensure_visible(10);
        assert_eq!(view.offset(), 9);
        view.bottom();
        view.ensure_visible(10);
        assert_eq!((view.selected(), view.offset()), (99, 90));
        // A taller screen shows more rows instead of blank space under the last one.
        view.ensure_visible(40);
        assert_eq!(view.offset(), 60);
        view.ensure_visible(0);
        assert_eq!(view.offset(), 99);
        assert_eq!(view.selected_row().unwrap()[0], Value::UInt(99));
    }

    #[test]
    fn everything_is_safe_on_an_empty_result() {
        for result in [numbered(0), Arc::new(QueryResult::default())] {
            let mut view = ResultView::new(result);
            view.move_down(3);
            view.move_up(3);
            view.bottom();
            view.page_down(10);
            view.page_up(0);
            view.scroll_right();
            view.scroll_left();
            view.set_viewport(Size::new(0, 0));
            view.set_filter("x");
            view.ensure_visible(5);
            assert_eq!(
                (view.selected(), view.offset(), view.first_column()),
                (0, 0, 0)
            );
            assert_eq!(view.selected_row(), None);
            assert_eq!(view.visible_rows(), 0);
            let _ = view.summary();
        }
    }

    #[test]
    fn scrolling_right_stops_once_the_last_column_shows() {
        let mut view = ResultView::new(people());
        // Without a known viewport it stops at the last column.
        for _ in 0..5 {
            view.scroll_right();
        }
        assert_eq!(view.first_column(), 2);
        view.scroll_left();
        view.scroll_left();
        view.scroll_left();
        assert_eq!(view.first_column(), 0);
        // id(2) name(5) score(5) and two gaps: 16 cells. In 12, one step shows the rest.
        view.set_viewport(Size::new(12, 5));
        assert_eq!(view.visible_columns(12), 0..3);
        assert_eq!(view.visible_columns(10), 0..2);
        view.scroll_right();
        view.scroll_right();
        assert_eq!(view.first_column(), 1);
        assert_eq!(view.visible_columns(12), 1..3);
        view.set_viewport(Size::new(16, 5));
        view.scroll_left();
        view.scroll_right();
        assert_eq!(view.first_column(), 0);
    }

    #[test]
    fn filter_keeps_rows_with_any_matching_cell_ignoring_case() {
        let mut view = ResultView::new(people());
        view.move_down(2);
        view.set_filter("B");
        assert_eq!(view.visible_rows(), 1);
        assert_eq!(view.row_index(0), Some(1));
        assert_eq!(view.selected(), 0);
        // NULL cells read as `NULL`, numbers as their text.
        view.set_filter("null");
        assert_eq!(view.row_index(0), Some(1));
        view.set_filter("12.5");
        assert_eq!(view.row_index(0), Some(0));
        view.set_filter("日");
        assert_eq!(view.row_index(0), Some(2));
        view.set_filter("nothing like it");
        assert_eq!(view.visible_rows(), 0);
        assert_eq!(view.selected_row(), None);
        view.set_filter("");
        assert_eq!(view.visible_rows(), 3);
        assert_eq!(view.filter(), "");
    }

    #[test]
    fn filter_keeps_the_selection_on_its_row() {
        let mut view = ResultView::new(numbered(1_000));
        view.move_down(500);
        view.set_filter("row-5");
        // row-5, row-50..59, row-500..599: row-500 is the 12th match.
        assert_eq!(view.visible_rows(), 111);
        assert_eq!(view.selected(), 11);
        assert_eq!(view.selected_row().unwrap()[0], Value::UInt(500));
        // Narrowing rechecks only what the shorter filter kept.
        view.set_filter("ROW-55");
        assert_eq!(view.visible_rows(), 11);
        assert_eq!(view.selected_row().unwrap()[0], Value::UInt(550));
        view.set_filter("");
        assert_eq!(view.selected(), 550);
    }

    #[test]
    fn non_ascii_matching_folds_case() {
        let mut lowered = String::new();
        assert!(contains_ignoring_case("ÉCOLE", "éc", &mut lowered));
        // Simple case folding only: `ß` does not become `ss`.
        assert!(!contains_ignoring_case("Straße", "strasse", &mut lowered));
        assert!(contains_ignoring_case("x", "", &mut lowered));
        assert!(!contains_ignoring_case("ab", "abc", &mut lowered));
    }

    #[test]
    fn summary_names_rows_position_columns_and_stats() {
        let mut view = ResultView::new(numbered(1_000_000));
        view.move_down(41);
        assert_eq!(view.summary(), "1,000,000 rows · row 42 · 2 columns");
        let mut wide = QueryResult {
            columns: (0..12).map(|i| column(&format!("c{i}"), "UInt8")).collect(),
            rows: vec![vec![Value::UInt(1); 12]; 3],
            ..QueryResult::default()
        };
        wide.stats = QueryStats {
            elapsed: Duration::from_millis(120),
            rows_read: Some(1_234_567),
            truncated: true,
            ..QueryStats::default()
        };
        let mut view = ResultView::new(Arc::new(wide));
        view.set_viewport(Size::new(20, 10));
        view.scroll_right();
        view.scroll_right();
        assert_eq!(
            view.summary(),
            "3 rows · row 1 · cols 3–7 of 12 · cut short by max_result_rows · 120 ms · 1.2M rows read"
        );
        let mut view = ResultView::new(people());
        view.set_filter("e");
        assert_eq!(view.summary(), "1 of 3 rows match `e` · row 1 · 3 columns");
        view.set_filter("zzz");
        assert_eq!(view.summary(), "0 of 3 rows match `zzz` · 3 columns");
    }

    #[test]
    fn draws_header_rows_numbers_nulls_and_selection() {
        let theme = theme();
        let view = ResultView::new(people());
        let buf = render(
            ResultTable {
                view: &view,
                theme: &theme,
                focused: true,
            },
            18,
            5,
        );
        let mut expected = Buffer::with_lines([
            "id  name   score  ",
            " 1  alice   12.5  ",
            " 2  bob     NULL  ",
            " 3  日本      -3  ",
            "                  ",
        ]);
        expected.set_style(Rect::new(0, 0, 18, 1), theme.header);
        expected.set_style(Rect::new(0, 1, 18, 1), theme.selection);
        expected.set_style(Rect::new(1, 1, 1, 1), theme.number.patch(theme.selection));
        expected.set_style(Rect::new(12, 1, 4, 1), theme.number.patch(theme.selection));
        expected.set_style(Rect::new(1, 2, 1, 1), theme.number);
        expected.set_style(Rect::new(12, 2, 4, 1), theme.null);
        expected.set_style(Rect::new(1, 3, 1, 1), theme.number);
        expected.set_style(Rect::new(14, 3, 2, 1), theme.number);
        assert_eq!(buf, expected);
    }

    #[test]
    fn an_unfocused_grid_does_not_highlight_the_selection() {
        let theme = theme();
        let view = ResultView::new(people());
        let buf = render(
            ResultTable {
                view: &view,
                theme: &theme,
                focused: false,
            },
            18,
            2,
        );
        let mut expected = Buffer::with_lines(["id  name   score  ", " 1  alice   12.5  "]);
        expected.set_style(Rect::new(0, 0, 18, 1), theme.header);
        expected.set_style(Rect::new(1, 1, 1, 1), theme.number);
        expected.set_style(Rect::new(12, 1, 4, 1), theme.number);
        assert_eq!(buf, expected);
    }

    #[test]
    fn scrolled_and_cut_columns_end_in_an_ellipsis() {
        let theme = theme();
        let mut view = ResultView::new(people());
        view.scroll_right();
        view.move_down(2);
        view.ensure_visible(1);
        let buf = render(
            ResultTable {
                view: &view,
                theme: &theme,
                focused: true,
            },
            9,
            2,
        );
        // name(5), a gap, then two cells of score: `s…` and `-3` fits whole.
        let mut expected = Buffer::with_lines(["name   s…", "日本   -3"]);
        expected.set_style(Rect::new(0, 0, 9, 1), theme.header);
        expected.set_style(Rect::new(0, 1, 9, 1), theme.selection);
        expected.set_style(Rect::new(7, 1, 2, 1), theme.number.patch(theme.selection));
        assert_eq!(buf, expected);
    }

    #[test]
    fn wide_characters_at_the_right_edge_keep_alignment() {
        let theme = theme();
        let view = ResultView::new(result(
            &[("text", "String")],
            vec![
                vec![Value::String("日本語".into())],
                vec![Value::String("a😀b".into())],
            ],
        ));
        let table = || ResultTable {
            view: &view,
            theme: &theme,
            focused: false,
        };
        // Four cells: `日` and the ellipsis take three; the fourth stays blank.
        let mut expected = Buffer::with_lines(["text", "日… ", "a😀b"]);
        expected.set_style(Rect::new(0, 0, 4, 1), theme.header);
        assert_eq!(render(table(), 4, 3), expected);
        let mut expected = Buffer::with_lines(["text ", "日本…", "a😀b "]);
        expected.set_style(Rect::new(0, 0, 5, 1), theme.header);
        assert_eq!(render(table(), 5, 3), expected);
    }

    #[test]
    fn line_breaks_and_tabs_show_on_one_line() {
        let theme = theme();
        let view = ResultView::new(result(
            &[("s", "String")],
            vec![vec![Value::String("a\nb\tc".into())]],
        ));
        let buf = render(
            ResultTable {
                view: &view,
                theme: &theme,
                focused: false,
            },
            5,
            2,
        );
        let mut expected = Buffer::with_lines(["s    ", "a⏎b c"]);
        expected.set_style(Rect::new(0, 0, 5, 1), theme.header);
        assert_eq!(buf, expected);
    }

    #[test]
    fn totals_stick_to_the_bottom_line() {
        let theme = theme();
        let mut result = (*numbered(10)).clone();
        result.totals = Some(vec![Value::UInt(45), Value::String(String::new().into())]);
        let mut view = ResultView::new(Arc::new(result));
        assert_eq!(view.body_rows(4), 2);
        assert_eq!(view.body_rows(2), 1);
        view.bottom();
        view.set_viewport(Size::new(12, 4));
        let buf = render(
            ResultTable {
                view: &view,
                theme: &theme,
                focused: false,
            },
            12,
            4,
        );
        let mut expected = Buffer::with_lines([
            " n  label   ",
            " 8  row-8   ",
            " 9  row-9   ",
            "45          ",
        ]);
        expected.set_style(Rect::new(0, 0, 12, 1), theme.header);
        expected.set_style(Rect::new(1, 1, 1, 1), theme.number);
        expected.set_style(Rect::new(1, 2, 1, 1), theme.number);
        expected.set_style(Rect::new(0, 3, 12, 1), theme.header);
        expected.set_style(Rect::new(0, 3, 2, 1), theme.number.patch(theme.header));
        assert_eq!(buf, expected);
    }

    #[test]
    fn empty_and_degenerate_areas_do_not_panic() {
        let theme = theme();
        let results = [
            people(),
            numbered(0),
            Arc::new(QueryResult::default()),
            result(&[("e", "String")], vec![vec![]]),
        ];
        for result in results {
            let view = ResultView::new(result);
            for (width, height) in [(0, 0), (0, 5), (5, 0), (1, 1), (1, 5), (2, 2), (80, 24)] {
                let _ = render(
                    ResultTable {
                        view: &view,
                        theme: &theme,
                        focused: true,
                    },
                    width,
                    height,
                );
            }
        }
        // An area partly outside the buffer is cut to it.
        let view = ResultView::new(people());
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 3));
        ResultTable {
            view: &view,
            theme: &theme,
            focused: true,
        }
        .render(Rect::new(5, 1, 40, 40), &mut buf);
    }

    #[test]
    fn empty_results_say_so() {
        let theme = theme();
        let view = ResultView::new(numbered(0));
        let table = ResultTable {
            view: &view,
            theme: &theme,
            focused: true,
        };
        let mut expected = Buffer::with_lines(["n  label  ", "no rows   "]);
        expected.set_style(Rect::new(0, 0, 10, 1), theme.header);
        expected.set_style(Rect::new(0, 1, 7, 1), theme.muted);
        assert_eq!(render(table, 10, 2), expected);
        let view = ResultView::new(Arc::new(QueryResult::default()));
        let table = ResultTable {
            view: &view,
            theme: &theme,
            focused: true,
        };
        let mut expected = Buffer::with_lines(["no columns"]);
        expected.set_style(Rect::new(0, 0, 10, 1), theme.muted);
        assert_eq!(render(table, 10, 1), expected);
    }

    #[test]
    fn a_million_rows_open_filter_and_draw_quickly() {
        let theme = theme();
        let result = numbered(1_000_000);
        let started = Instant::now();
        let mut view = ResultView::new(result);
        let opened = started.elapsed();
        view.bottom();
        view.set_viewport(Size::new(80, 24));
        let started = Instant::now();
        let buf = render(
            ResultTable {
                view: &view,
                theme: &theme,
                focused: true,
            },
            80,
            24,
        );
        let drawn = started.elapsed();
        assert_eq!(
            buf.content[(23 * 80)..(23 * 80 + 20)]
                .iter()
                .map(|c| c.symbol())
                .collect::<String>(),
            "999999  row-999999  "
        );
        let started = Instant::now();
        view.set_filter("ROW-99999");
        let filtered = started.elapsed();
        assert_eq!(view.visible_rows(), 11);
        assert_eq!(view.selected_row().unwrap()[0], Value::UInt(999_999));
        eprintln!("1,000,000 rows: open {opened:?}, draw {drawn:?}, filter {filtered:?}");
        // Generous bounds for an unoptimised build on a busy machine: the point is that opening
        // and drawing do not grow with the row count.
        assert!(opened < Duration::from_millis(200), "{opened:?}");
        assert!(drawn < Duration::from_millis(200), "{drawn:?}");
    }
}
