//! Charts of series results: a line chart, grouped bars or one sparkline per series. The data is
//! a `QueryResult` that reads as a series (one x column, a time or a category, and numeric y
//! columns); `SeriesSet::detect` extracts the points once when the result arrives, and
//! `ResultChart` draws them in the theme's series colours, building only what fits the area.

use std::cmp::Ordering;

use ratatui::buffer::Buffer;
use ratatui::layout::{Rect, Size};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Chart, Dataset, GraphType, LegendPosition, Sparkline, Widget,
};

use super::cell_text::{display_width, fit, one_line};
use super::numbers::compact;
use crate::tui::theme::Theme;
use crate::warehouse::value::Value;
use crate::warehouse::QueryResult;

/// Rows beyond this are left out of the chart: more points than any terminal has cells.
pub const MAX_POINTS: usize = 10_000;
/// Up to this many rows a category result reads best as bars.
const MAX_BAR_ROWS: usize = 20;
/// Bar and sparkline heights are integers; values are scaled to this before ratatui scales
/// them to the area, so small fractions keep their shape.
const LEVELS: u64 = 10_000;
/// Widest bar drawn, in cells.
const MAX_BAR_WIDTH: u16 = 8;
/// Blank cells between two groups of bars.
const BAR_GROUP_GAP: u16 = 1;
/// Narrower sparkline captions are left out.
const MIN_CAPTION_WIDTH: usize = 4;
/// Below this height a single series reads better as a sparkline than a line chart.
const SPARKLINE_MAX_HEIGHT: u16 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChartKind {
    #[default]
    Line,
    Bar,
    Sparkline,
}

impl ChartKind {
    /// The next kind, for the key that cycles through them.
    pub fn next(self) -> Self {
        match self {
            ChartKind::Line => ChartKind::Bar,
            ChartKind::Bar => ChartKind::Sparkline,
            ChartKind::Sparkline => ChartKind::Line,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChartKind::Line => "line",
            ChartKind::Bar => "bar",
            ChartKind::Sparkline => "sparkline",
        }
    }
}

/// What the x column holds, which decides where points go and how they are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxisKind {
    /// Dates or date-times: points sit at their time, in time order.
    Time,
    /// Integers (an hour, a bucket number): points sit at their value, in order.
    Number,
    /// Text: points are evenly spaced in the result's order.
    Category,
}

/// One y column.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    name: String,
    /// The y of each row of the set, `None` where it is NULL (or not a finite number).
    values: Vec<Option<f64>>,
    /// `(x, y)` of the rows with a y, for the line chart.
    points: Vec<(f64, f64)>,
    /// Heights for the sparkline, one per point, from 0 to `LEVELS`.
    levels: Vec<u64>,
}

impl Series {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn values(&self) -> &[Option<f64>] {
        &self.values
    }

    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    pub fn last_value(&self) -> Option<f64> {
        self.points.last().map(|&(_, y)| y)
    }
}

/// A result read as series over one x axis, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSet {
    x_name: String,
    x_kind: XAxisKind,
    /// The x column's text for each row, in drawing order.
    labels: Vec<String>,
    series: Vec<Series>,
    x_bounds: [f64; 2],
    y_bounds: [f64; 2],
    /// The x labels under the line chart: first, middle and last.
    axis_labels: Vec<String>,
    /// The largest y of all series (at least a tiny positive number): the top of the bars.
    bar_top: f64,
}

impl SeriesSet {
    /// A series when the result has an x column (the first date or date-time column, else a
    /// first column of text or integers) and numeric columns besides it, and at least two rows
    /// with an x. Rows whose x is NULL are skipped, as are NULL y values in their series; only
    /// the first `MAX_POINTS` rows are read.
    pub fn detect(result: &QueryResult) -> Option<SeriesSet> {
        let columns = &result.columns;
        let (x_column, x_kind) = match columns.iter().position(|c| c.data_type.is_temporal()) {
            Some(index) => (index, XAxisKind::Time),
            None => {
                let first = &columns.first()?.data_type;
                if first.is_integer() {
                    (0, XAxisKind::Number)
                } else if first.is_string_like() {
                    (0, XAxisKind::Category)
                } else {
                    return None;
                }
            }
        };
        let y_columns: Vec<usize> = (0..columns.len())
            .filter(|&i| i != x_column && columns[i].data_type.is_numeric())
            .collect();
        if y_columns.is_empty() {
            return None;
        }

        let mut rows: Vec<(f64, &[Value])> = Vec::new();
        let mut labels = Vec::new();
        for (position, row) in result.rows.iter().take(MAX_POINTS).enumerate() {
            let Some(x_value) = row.get(x_column).filter(|v| !v.is_null()) else {
                continue;
            };
            let x = match x_kind {
                XAxisKind::Time => time_seconds(&x_value.to_string()).unwrap_or(f64::NAN),
                XAxisKind::Number => x_value.as_f64().unwrap_or(f64::NAN),
                XAxisKind::Category => position as f64,
            };
            rows.push((x, row));
            labels.push(one_line(&x_value.to_string()).into_owned());
        }
        if rows.len() < 2 {
            return None;
        }
        // A time or number the chart cannot place (say a DateTime in an unusual format) puts
        // every point at its row position instead, so the order still reads.
        if rows.iter().any(|(x, _)| x.is_nan()) {
            for (position, row) in rows.iter_mut().enumerate() {
                row.0 = position as f64;
            }
        } else if x_kind != XAxisKind::Category {
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.sort_by(|&a, &b| rows[a].0.partial_cmp(&rows[b].0).unwrap_or(Ordering::Equal));
            rows = order.iter().map(|&i| rows[i]).collect();
            labels = order
                .iter()
                .map(|&i| std::mem::take(&mut labels[i]))
                .collect();
        }

        let series: Vec<Series> = y_columns
            .iter()
            .map(|&column| {
                let values: Vec<Option<f64>> = rows
                    .iter()
                    .map(|(_, row)| row.get(column).and_then(Value::as_f64))
                    .collect();
                let points: Vec<(f64, f64)> = rows
                    .iter()
                    .zip(&values)
                    .filter_map(|(&(x, _), y)| y.map(|y| (x, y)))
                    .collect();
                let levels = sparkline_levels(&points);
                Series {
                    name: one_line(&columns[column].name).into_owned(),
                    values,
                    points,
                    levels,
                }
            })
            .filter(|series| !series.points.is_empty())
            .collect();
        if series.is_empty() {
            return None;
        }

        let xs = rows.iter().map(|(x, _)| *x);
        let x_bounds = widen(bounds(xs)?);
        let ys = series.iter().flat_map(|s| s.points.iter().map(|&(_, y)| y));
        let [y_low, y_high] = bounds(ys)?;
        let axis_labels = axis_labels(&rows, &labels, x_bounds);
        Some(SeriesSet {
            x_name: one_line(&columns[x_column].name).into_owned(),
            x_kind,
            labels,
            series,
            x_bounds,
            y_bounds: widen([y_low, y_high]),
            axis_labels,
            bar_top: y_high.max(f64::MIN_POSITIVE),
        })
    }

    /// The kind that suits the shape: a few categories as bars, anything longer or over time as
    /// a line.
    pub fn default_kind(&self) -> ChartKind {
        match self.x_kind {
            XAxisKind::Time => ChartKind::Line,
            XAxisKind::Number | XAxisKind::Category if self.len() <= MAX_BAR_ROWS => ChartKind::Bar,
            XAxisKind::Number | XAxisKind::Category => ChartKind::Line,
        }
    }

    /// Like `default_kind`, but a single series in a short area becomes a sparkline.
    pub fn default_kind_for(&self, area: Size) -> ChartKind {
        if self.series.len() == 1 && area.height < SPARKLINE_MAX_HEIGHT {
            ChartKind::Sparkline
        } else {
            self.default_kind()
        }
    }

    pub fn x_name(&self) -> &str {
        &self.x_name
    }

    pub fn x_kind(&self) -> XAxisKind {
        self.x_kind
    }

    /// The x label of each row, in drawing order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Rows in the chart.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Never true for a detected set; here for the `len` convention.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Seconds since 1970 of `YYYY-MM-DD`, `YYYY-MM-DD hh:mm:ss[.fff]` (a `T` also separates), or
/// a Unix timestamp as the server writes with `date_time_output_format=unix_timestamp`. Only
/// the order and spacing matter, so the time zone is ignored.
fn time_seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    // Beyond any date ClickHouse stores; the bound also keeps the day arithmetic in range.
    if !(0..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) as f64 * 86_400.0;
    if let Some(time) = time {
        let mut parts = time.splitn(3, ':');
        let hours: f64 = parts.next()?.parse().ok()?;
        let minutes: f64 = parts.next()?.parse().ok()?;
        let secs: f64 = parts.next().unwrap_or("0").parse().ok()?;
        seconds += hours * 3_600.0 + minutes * 60.0 + secs;
    }
    Some(seconds)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<[f64; 2]> {
    values.fold(None, |acc, v| match acc {
        None => Some([v, v]),
        Some([low, high]) => Some([low.min(v), high.max(v)]),
    })
}

/// A flat range gets some height so the points do not sit on an axis of zero length.
fn widen([low, high]: [f64; 2]) -> [f64; 2] {
    if high > low {
        return [low, high];
    }
    let margin = if low == 0.0 { 1.0 } else { low.abs() / 10.0 };
    [low - margin, high + margin]
}

/// First, middle and last x labels; the middle one is the row nearest the middle of the axis.
fn axis_labels(rows: &[(f64, &[Value])], labels: &[String], x_bounds: [f64; 2]) -> Vec<String> {
    let middle = (x_bounds[0] + x_bounds[1]) / 2.0;
    let nearest_middle = rows
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            (a.0 - middle)
                .abs()
                .partial_cmp(&(b.0 - middle).abs())
                .unwrap_or(Ordering::Equal)
        })
        .map_or(0, |(i, _)| i);
    let last = labels.len().saturating_sub(1);
    let mut picked = vec![0, nearest_middle, last];
    picked.dedup();
    picked
        .into_iter()
        .filter_map(|i| labels.get(i).cloned())
        .collect()
}

/// Sparkline bars cannot go below zero. A series with negative values is shifted up so its
/// lowest point sits at the bottom (the shape is what a sparkline shows); otherwise zero is the
/// bottom, so heights compare honestly.
fn sparkline_levels(points: &[(f64, f64)]) -> Vec<u64> {
    let Some([low, high]) = bounds(points.iter().map(|&(_, y)| y)) else {
        return Vec::new();
    };
    let base = low.min(0.0);
    let range = high - base;
    points
        .iter()
        .map(|&(_, y)| {
            if range > 0.0 {
                ((y - base) / range * LEVELS as f64).round() as u64
            } else {
                0
            }
        })
        .collect()
}

/// Draws a `SeriesSet` as `kind`.
pub struct ResultChart<'a> {
    pub set: &'a SeriesSet,
    pub kind: ChartKind,
    pub theme: &'a Theme,
}

impl Widget for ResultChart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        buf.set_style(area, self.theme.text);
        match self.kind {
            ChartKind::Line => self.render_line(area, buf),
            ChartKind::Bar => self.render_bars(area, buf),
            ChartKind::Sparkline => self.render_sparklines(area, buf),
        }
    }
}

impl ResultChart<'_> {
    fn render_line(&self, area: Rect, buf: &mut Buffer) {
        let (set, theme) = (self.set, self.theme);
        let datasets = set
            .series
            .iter()
            .enumerate()
            .map(|(i, series)| {
                Dataset::default()
                    .name(series.name.as_str())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(theme.series(i))
                    .data(&series.points)
            })
            .collect();
        let x_labels: Vec<Span> = set
            .axis_labels
            .iter()
            .map(|label| Span::styled(label.as_str(), theme.muted))
            .collect();
        let y_labels = [
            Span::styled(compact(set.y_bounds[0]), theme.muted),
            Span::styled(compact(set.y_bounds[1]), theme.muted),
        ];
        let legend = (set.series.len() > 1).then_some(LegendPosition::TopRight);
        Chart::new(datasets)
            .style(theme.text)
            .x_axis(
                Axis::default()
                    .bounds(set.x_bounds)
                    .labels(x_labels)
                    .style(theme.border),
            )
            .y_axis(
                Axis::default()
                    .bounds(set.y_bounds)
                    .labels(y_labels)
                    .style(theme.border),
            )
            .legend_position(legend)
            .render(area, buf);
    }

    /// One group of bars per x, one bar per series. Bars only grow up from zero, so a negative
    /// value is clamped to zero: an empty slot rather than a misleading positive bar (the line
    /// chart shows it).
    fn render_bars(&self, area: Rect, buf: &mut Buffer) {
        let (set, theme) = (self.set, self.theme);
        let mut chart_area = area;
        if set.series.len() > 1 && area.height >= 4 {
            self.render_legend(Rect { height: 1, ..area }, buf);
            chart_area.y += 1;
            chart_area.height -= 1;
        }
        let series_count = set.series.len();
        let rows = set.len();
        let gap = usize::from(BAR_GROUP_GAP);
        // Groups that fit: each takes its bars and a gap, except that the last needs no gap.
        let fits = |bar_width: u16| {
            (usize::from(chart_area.width) + gap) / (series_count * usize::from(bar_width) + gap)
        };
        let bar_width = (1..=MAX_BAR_WIDTH)
            .rev()
            .find(|&width| fits(width) >= rows)
            .unwrap_or(1);
        let shown = fits(bar_width).min(rows);
        if shown == 0 {
            return;
        }
        // The latest points matter most over time; the first rows (usually the top ones) for
        // categories.
        let first = match set.x_kind {
            XAxisKind::Time | XAxisKind::Number => rows - shown,
            XAxisKind::Category => 0,
        };
        let label_width = series_count * usize::from(bar_width);
        let mut chart = BarChart::default()
            .bar_width(bar_width)
            .bar_gap(0)
            .group_gap(BAR_GROUP_GAP)
            .max(LEVELS)
            .label_style(theme.muted)
            .style(theme.text);
        for row in first..first + shown {
            let bars: Vec<Bar> = set
                .series
                .iter()
                .enumerate()
                .map(|(i, series)| {
                    let value = series.values.get(row).copied().flatten();
                    let level = value.map_or(0, |v| {
                        ((v.max(0.0) / set.bar_top) * LEVELS as f64).round() as u64
                    });
                    Bar::default()
                        .value(level)
                        .text_value(value.map(compact).unwrap_or_default())
                        .style(theme.series(i))
                        .value_style(theme.series(i).add_modifier(Modifier::REVERSED))
                })
                .collect();
            let label = set.labels.get(row).map_or("", String::as_str);
            let (label, _) = fit(label, label_width, false);
            chart = chart.data(
                BarGroup::default()
                    .label(Line::from(label.into_owned()))
                    .bars(&bars),
            );
        }
        chart.render(chart_area, buf);
    }

    /// One band per series (as many as fit): its name and last value, then its sparkline of the
    /// latest points.
    fn render_sparklines(&self, area: Rect, buf: &mut Buffer) {
        let (set, theme) = (self.set, self.theme);
        let shown = set.series.len().min(usize::from(area.height));
        if shown == 0 {
            return;
        }
        let band_height = area.height / shown as u16;
        let captions: Vec<(String, String)> = set.series[..shown]
            .iter()
            .map(|series| {
                let last = series.last_value().map(compact).unwrap_or_default();
                (series.name.clone(), last)
            })
            .collect();
        let caption_width = captions
            .iter()
            .map(|(name, last)| display_width(name) + 1 + display_width(last))
            .max()
            .unwrap_or(0)
            .min(usize::from(area.width / 3));
        // A caption too narrow for a name is noise; the sparkline gets the room.
        let caption_width = if caption_width < MIN_CAPTION_WIDTH {
            0
        } else {
            caption_width
        };
        for (i, (series, (name, last))) in set.series.iter().zip(&captions).enumerate() {
            let Some(band) = band_at(area, i, band_height) else {
                break;
            };
            let mut spark_area = band;
            if caption_width > 0 {
                let (last, last_width) = fit(last, caption_width, false);
                let name_room = caption_width.saturating_sub(last_width + 1);
                let (name, _) = fit(name, name_room, false);
                buf.set_stringn(band.x, band.y, &name, name_room, theme.series(i));
                let last_x = band.x + (caption_width - last_width) as u16;
                buf.set_stringn(last_x, band.y, &last, last_width, theme.text);
                let used = caption_width as u16 + 1;
                spark_area.x += used.min(band.width);
                spark_area.width = band.width.saturating_sub(used);
            }
            let width = usize::from(spark_area.width);
            let latest = &series.levels[series.levels.len().saturating_sub(width)..];
            Sparkline::default()
                .data(latest)
                .max(LEVELS)
                .style(theme.series(i))
                .render(spark_area, buf);
        }
    }

    fn render_legend(&self, area: Rect, buf: &mut Buffer) {
        let mut spans = Vec::new();
        for (i, series) in self.set.series.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled("  ", self.theme.text));
            }
            spans.push(Span::styled("■ ", self.theme.series(i)));
            spans.push(Span::styled(series.name.as_str(), self.theme.text));
        }
        Line::from(spans).render(area, buf);
    }
}

/// The `index`th band of `height` rows in `area`, if it fits.
fn band_at(area: Rect, index: usize, height: u16) -> Option<Rect> {
    let top = u16::try_from(index).ok()?.checked_mul(height)?;
    (top < area.height && height > 0).then(|| Rect {
        y: area.y + top,
        height,
        ..area
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tui::theme::ColorDepth;
    use crate::warehouse::result::Column;
    use crate::warehouse::types::DataType;

    fn theme() -> Theme {
        Theme::dark(ColorDepth::TrueColor)
    }

    fn result(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Arc<QueryResult> {
        Arc::new(QueryResult {
            columns: columns
                .iter()
                .map(|(name, type_name)| Column {
                    name: name.to_string(),
                    type_name: type_name.to_string(),
                    data_type: DataType::parse(type_name).unwrap(),
                })
                .collect(),
            rows,
            ..QueryResult::default()
        })
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_string().into())
    }

    fn render(chart: ResultChart<'_>, width: u16, height: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
        chart.render(buf.area, &mut buf);
        buf
    }

    /// countries and two counts.
    fn categories() -> SeriesSet {
        SeriesSet::detect(&result(
            &[
                ("country", "String"),
                ("a", "UInt64"),
                ("b", "Nullable(Int64)"),
            ],
            vec![
                vec![s("de"), Value::UInt(4), Value::Int(2)],
                vec![s("fr"), Value::UInt(8), Value::Null],
                vec![s("it"), Value::UInt(2), Value::Int(-4)],
            ],
        ))
        .unwrap()
    }

    #[test]
    fn time_series_are_sorted_by_time_with_nulls_skipped() {
        let set = SeriesSet::detect(&result(
            &[
                ("hits", "UInt64"),
                ("t", "DateTime"),
                ("name", "String"),
                ("avg", "Nullable(Float64)"),
            ],
            vec![
                vec![
                    Value::UInt(3),
                    Value::DateTime("2024-01-01 00:02:00".into()),
                    s("x"),
                    Value::Null,
                ],
                vec![
                    Value::UInt(1),
                    Value::DateTime("2024-01-01 00:00:00".into()),
                    s("y"),
                    Value::Float(0.5),
                ],
                vec![
                    Value::UInt(2),
                    Value::DateTime("2024-01-01 00:01:00".into()),
                    s("z"),
                    Value::Float(1.5),
                ],
                vec![Value::UInt(9), Value::Null, s("w"), Value::Float(9.0)],
            ],
        ))
        .unwrap();
        assert_eq!(set.x_kind(), XAxisKind::Time);
        assert_eq!(set.x_name(), "t");
        assert_eq!(set.len(), 3);
        assert_eq!(set.labels()[0], "2024-01-01 00:00:00");
        let names: Vec<&str> = set.series().iter().map(Series::name).collect();
        assert_eq!(names, ["hits", "avg"]);
        let start = 1_704_067_200.0;
        assert_eq!(
            set.series()[0].points(),
            &[(start, 1.0), (start + 60.0, 2.0), (start + 120.0, 3.0)]
        );
        assert_eq!(set.series()[1].values(), &[Some(0.5), Some(1.5), None]);
        assert_eq!(set.series()[1].points().len(), 2);
        assert_eq!(set.default_kind(), ChartKind::Line);
        assert_eq!(set.axis_labels.len(), 3);
    }

    #[test]
    fn dates_and_timestamps_parse() {
        assert_eq!(time_seconds("1970-01-01"), Some(0.0));
        assert_eq!(time_seconds("2000-03-01"), Some(951_868_800.0));
        assert_eq!(time_seconds("2024-02-29T12:00:00.5"), Some(1_709_208_000.5));
        assert_eq!(time_seconds("1700000000"), Some(1_700_000_000.0));
        assert_eq!(time_seconds("1969-12-31"), Some(-86_400.0));
        assert_eq!(time_seconds("yesterday"), None);
        assert_eq!(time_seconds("2024-13-01"), None);
        assert_eq!(time_seconds("9223372036854775807-01-01"), None);
    }

    #[test]
    fn unreadable_times_fall_back_to_row_order() {
        let set = SeriesSet::detect(&result(
            &[("d", "Date"), ("n", "UInt8")],
            vec![
                vec![Value::Date("someday".into()), Value::UInt(5)],
                vec![Value::Date("2024-01-01".into()), Value::UInt(6)],
            ],
        ))
        .unwrap();
        assert_eq!(set.series()[0].points(), &[(0.0, 5.0), (1.0, 6.0)]);
    }

    #[test]
    fn categories_and_integers_as_x() {
        let set = categories();
        assert_eq!(set.x_kind(), XAxisKind::Category);
        assert_eq!(set.labels(), ["de", "fr", "it"]);
        assert_eq!(set.series()[1].points(), &[(0.0, 2.0), (2.0, -4.0)]);
        assert_eq!(set.default_kind(), ChartKind::Bar);
        assert_eq!(set.default_kind_for(Size::new(80, 4)), ChartKind::Bar);

        let set = SeriesSet::detect(&result(
            &[("hour", "UInt8"), ("total", "Decimal(18, 2)")],
            (0..24u64)
                .rev()
                .map(|h| vec![Value::UInt(h), Value::Decimal(format!("{h}.50").into())])
                .collect(),
        ))
        .unwrap();
        assert_eq!(set.x_kind(), XAxisKind::Number);
        assert_eq!(set.series()[0].points()[0], (0.0, 0.5));
        assert_eq!(set.labels()[23], "23");
        assert_eq!(set.default_kind(), ChartKind::Line);
        assert_eq!(set.default_kind_for(Size::new(80, 4)), ChartKind::Sparkline);
    }

    #[test]
    fn results_that_are_not_series() {
        let one_row = result(
            &[("k", "String"), ("v", "UInt8")],
            vec![vec![s("a"), Value::UInt(1)]],
        );
        let no_numbers = result(
            &[("k", "String"), ("v", "String")],
            vec![vec![s("a"), s("b")], vec![s("c"), s("d")]],
        );
        let float_first = result(
            &[("f", "Float64"), ("v", "UInt8")],
            vec![
                vec![Value::Float(1.0), Value::UInt(1)],
                vec![Value::Float(2.0), Value::UInt(2)],
            ],
        );
        let all_null = result(
            &[("k", "String"), ("v", "Nullable(UInt8)")],
            vec![vec![s("a"), Value::Null], vec![s("b"), Value::Null]],
        );
        for result in [
            one_row,
            no_numbers,
            float_first,
            all_null,
            Arc::new(QueryResult::default()),
        ] {
            assert_eq!(SeriesSet::detect(&result), None);
        }
    }

    #[test]
    fn points_are_capped() {
        let set = SeriesSet::detect(&result(
            &[("n", "UInt32"), ("v", "Float64")],
            (0..MAX_POINTS as u64 + 500)
                .map(|n| vec![Value::UInt(n), Value::Float(n as f64)])
                .collect(),
        ))
        .unwrap();
        assert_eq!(set.len(), MAX_POINTS);
    }

    #[test]
    fn kinds_cycle() {
        let kinds: Vec<ChartKind> =
            std::iter::successors(Some(ChartKind::Line), |k| Some(k.next()))
                .take(4)
                .collect();
        assert_eq!(
            kinds,
            [
                ChartKind::Line,
                ChartKind::Bar,
                ChartKind::Sparkline,
                ChartKind::Line
            ]
        );
        assert_eq!(ChartKind::Sparkline.name(), "sparkline");
    }

    #[test]
    fn sparkline_levels_shift_negative_series() {
        let levels = sparkline_levels(&[(0.0, -2.0), (1.0, 0.0), (2.0, 2.0)]);
        assert_eq!(levels, [0, LEVELS / 2, LEVELS]);
        let levels = sparkline_levels(&[(0.0, 1.0), (1.0, 2.0)]);
        assert_eq!(levels, [LEVELS / 2, LEVELS]);
        assert_eq!(sparkline_levels(&[(0.0, 0.0), (1.0, 0.0)]), [0, 0]);
    }

    #[test]
    fn grouped_bars_in_series_colours() {
        let theme = theme();
        let set = categories();
        let buf = render(
            ResultChart {
                set: &set,
                kind: ChartKind::Bar,
                theme: &theme,
            },
            8,
            6,
        );
        // A legend line, then three groups of two one-cell bars and a gap: 8 cells. `a` of `fr`
        // (8) is the top, so `a` of `de` (4) takes half the 4 rows; values sit at the foot of
        // their bars, reversed. `b` of `fr` is NULL and `b` of `it` negative: no bar, no value.
        let mut expected = Buffer::with_lines([
            "■ a  ■ b",
            "   █    ",
            "   █    ",
            "█  █    ",
            "42 8  2 ",
            "de fr it",
        ]);
        let (a, b) = (theme.series(0), theme.series(1));
        expected.set_style(Rect::new(0, 0, 2, 1), a);
        expected.set_style(Rect::new(5, 0, 2, 1), b);
        for x in [0, 3, 6] {
            expected.set_style(Rect::new(x, 1, 1, 4), a);
            expected.set_style(Rect::new(x, 4, 1, 1), a.add_modifier(Modifier::REVERSED));
        }
        for x in [1, 4, 7] {
            expected.set_style(Rect::new(x, 1, 1, 4), b);
        }
        expected.set_style(Rect::new(1, 4, 1, 1), b.add_modifier(Modifier::REVERSED));
        for x in [0, 3, 6] {
            expected.set_style(Rect::new(x, 5, 2, 1), theme.muted);
        }
        assert_eq!(buf, expected);
    }

    #[test]
    fn bar_labels_are_cut_to_their_group_and_long_series_show_their_end() {
        let theme = theme();
        let set = SeriesSet::detect(&result(
            &[("hour", "UInt8"), ("hits", "UInt32")],
            (0..30u64)
                .map(|h| vec![Value::UInt(h), Value::UInt(h + 1)])
                .collect(),
        ))
        .unwrap();
        let buf = render(
            ResultChart {
                set: &set,
                kind: ChartKind::Bar,
                theme: &theme,
            },
            6,
            2,
        );
        // Three one-cell groups fit; over a number axis they are the last three hours.
        // 28 and 29 of 30 fill seven eighths of their cell.
        let mut expected = Buffer::with_lines(["▇ ▇ █ ", "… … … "]);
        for x in [0, 2, 4] {
            expected.set_style(Rect::new(x, 0, 1, 1), theme.series(0));
            expected.set_style(Rect::new(x, 1, 1, 1), theme.muted);
        }
        assert_eq!(buf, expected);
    }

    #[test]
    fn sparklines_one_band_per_series() {
        let theme = theme();
        let set = SeriesSet::detect(&result(
            &[("d", "Date"), ("up", "UInt8"), ("down", "Int8")],
            (1..=8)
                .map(|i| {
                    vec![
                        Value::Date(format!("2024-01-0{i}").into()),
                        Value::UInt(i),
                        Value::Int(-(i as i64)),
                    ]
                })
                .collect(),
        ))
        .unwrap();
        let buf = render(
            ResultChart {
                set: &set,
                kind: ChartKind::Sparkline,
                theme: &theme,
            },
            15,
            2,
        );
        // Captions (name, last value) take a third of the width and a space; the sparklines the
        // other 9 cells, of which the 8 points use 8. `down` is shifted so its lowest point is
        // the bottom.
        let mut expected = Buffer::with_lines(["up  8 ▁▂▃▄▅▆▇█ ", "d… -8 █▆▅▄▃▂▁  "]);
        expected.set_style(Rect::new(0, 0, 2, 1), theme.series(0));
        expected.set_style(Rect::new(6, 0, 8, 1), theme.series(0));
        expected.set_style(Rect::new(0, 1, 2, 1), theme.series(1));
        expected.set_style(Rect::new(6, 1, 8, 1), theme.series(1));
        assert_eq!(buf, expected);
    }

    #[test]
    fn sparklines_show_the_latest_points_and_as_many_series_as_fit() {
        let theme = theme();
        let set = categories();
        let buf = render(
            ResultChart {
                set: &set,
                kind: ChartKind::Sparkline,
                theme: &theme,
            },
            5,
            1,
        );
        // No room for a caption (a third of 5 cells is 1); one row: `a` only, its 3 points.
        let mut expected = Buffer::with_lines(["▄█▂  "]);
        expected.set_style(Rect::new(0, 0, 3, 1), theme.series(0));
        assert_eq!(buf, expected);
    }

    #[test]
    fn line_chart_with_axes_and_labels() {
        let theme = theme();
        let set = SeriesSet::detect(&result(
            &[("country", "String"), ("a", "UInt64")],
            vec![
                vec![s("de"), Value::UInt(4)],
                vec![s("fr"), Value::UInt(8)],
                vec![s("it"), Value::UInt(2)],
            ],
        ))
        .unwrap();
        let buf = render(
            ResultChart {
                set: &set,
                kind: ChartKind::Line,
                theme: &theme,
            },
            20,
            6,
        );
        // y from the lowest to the highest value, x labels first, middle and last.
        let mut expected = Buffer::with_lines([
            "8│      ⡠⠔⠊⠢⢄       ",
            " │  ⢀⠤⠒⠉     ⠑⢄⡀    ",
            " │⠔⠊⠁          ⠈⠢⡀  ",
            "2│               ⠈⠑⢄",
            " └──────────────────",
            "de        fr      it",
        ]);
        for y in 0..4 {
            for x in 2..20 {
                if expected[(x, y)].symbol() != " " {
                    expected[(x, y)].set_style(theme.series(0));
                }
            }
        }
        expected.set_style(Rect::new(0, 0, 1, 1), theme.muted);
        expected.set_style(Rect::new(0, 3, 1, 1), theme.muted);
        expected.set_style(Rect::new(1, 0, 1, 4), theme.border);
        expected.set_style(Rect::new(1, 4, 19, 1), theme.border);
        for x in [0, 10, 18] {
            expected.set_style(Rect::new(x, 5, 2, 1), theme.muted);
        }
        assert_eq!(buf, expected);
    }

    #[test]
    fn line_chart_legend_names_every_series() {
        let theme = theme();
        let set = categories();
        let buf = render(
            ResultChart {
                set: &set,
                kind: ChartKind::Line,
                theme: &theme,
            },
            40,
            16,
        );
        let text: Vec<String> = (0..16)
            .map(|y| (0..40).map(|x| buf[(x, y)].symbol()).collect())
            .collect();
        assert!(text[1].ends_with("│a│"), "{text:?}");
        assert!(text[2].ends_with("│b│"), "{text:?}");
    }

    #[test]
    fn tiny_areas_and_every_kind_do_not_panic() {
        let theme = theme();
        let sets = [
            categories(),
            SeriesSet::detect(&result(
                &[("k", "String"), ("v", "Float64")],
                vec![
                    vec![s("日本語のラベル"), Value::Float(-1e12)],
                    vec![s("😀"), Value::Float(-1e12)],
                ],
            ))
            .unwrap(),
        ];
        for set in &sets {
            for kind in [ChartKind::Line, ChartKind::Bar, ChartKind::Sparkline] {
                for (width, height) in [(0, 0), (1, 1), (2, 1), (1, 3), (3, 2), (5, 5), (80, 24)] {
                    let _ = render(
                        ResultChart {
                            set,
                            kind,
                            theme: &theme,
                        },
                        width,
                        height,
                    );
                }
            }
        }
    }
}
