//! Rendering query results as a table, JSON, CSV or TSV, for `aurora query --format` and the
//! workspace's exports: either a whole [`QueryResult`] at once ([`render`]) or chunk by chunk as rows arrive ([`RowWriter`]).
//!
//! Formats:
//! - `table`: for people. comfy-table with the ASCII `ASCII_FULL_CONDENSED` preset (safe on
//!   any terminal and in logs), header = column name over its type, numeric columns
//!   right-aligned, `NULL` for nulls, control characters shown as escapes, cells capped at
//!   [`MAX_CELL_WIDTH`] characters, then a summary line (`3 rows in set. Elapsed: ...`).
//!   Rows are drawn in blocks of [`TABLE_BLOCK_ROWS`] so memory stays bounded; each block is
//!   its own table, as ClickHouse's Pretty formats do.
//! - `json`: a stable, documented object (see [`OutputFormat::Json`]) with exact values.
//! - `csv`: RFC 4180 quoting via the csv crate, LF line ends, header of names, NULL empty.
//! - `tsv`: ClickHouse `TabSeparatedWithNames` escaping, NULL as `\N`.

use std::io::{self, Write};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

use crate::warehouse::result::{Column, QueryResult, QueryStats};
use crate::warehouse::value::{push_json_string, Value};

/// Longest cell the table format shows, in characters, before cutting with `...`.
pub const MAX_CELL_WIDTH: usize = 60;

/// Rows per drawn table block.
pub const TABLE_BLOCK_ROWS: usize = 10_000;

const ELLIPSIS: &str = "...";

/// How `aurora query` prints a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table followed by a summary line.
    Table,
    /// One JSON object, one data row per line:
    ///
    /// ```text
    /// {
    ///   "meta": [
    ///     {"name": "n", "type": "UInt64"}
    ///   ],
    ///   "data": [
    ///     [18446744073709551615]
    ///   ],
    ///   "rows": 1,
    ///   "statistics": {"elapsed_seconds": 0.004, "rows_read": 1, "bytes_read": 8, "query_id": "..."},
    ///   "truncated": false
    /// }
    /// ```
    ///
    /// `type` is the server's spelling. Integers of every width are bare numbers with all
    /// digits; decimals are strings holding the exact text; non-finite floats are the strings
    /// `"nan"`, `"inf"`, `"-inf"`; named tuples and maps are objects; `rows_read` and
    /// `bytes_read` are `null` when the server did not report them. A `WITH TOTALS` query adds
    /// `"totals": [...]`, one row, before `"rows"`.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row, ClickHouse escaping.
    Tsv,
}

/// Writes a whole result in the given format.
pub fn render(result: &QueryResult, format: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = RowWriter::new(format, result.columns.clone());
    writer.begin(out)?;
    writer.write_rows(out, &result.rows)?;
    if let Some(totals) = &result.totals {
        writer.set_totals(totals.clone());
    }
    writer.finish(out, &result.stats)
}

/// The human summary after a result, e.g.
/// `3 rows in set. Elapsed: 0.004 s. Read 3 rows, 24 B.`; parts the server did not report
/// are left out. The table format prints it itself; callers of the data formats may print
/// it to stderr.
pub fn summary_line(rows: u64, stats: &QueryStats) -> String {
    let mut line = format!("{} in set", count(rows, "row", "rows"));
    if stats.truncated {
        line.push_str(" (truncated by max_result_rows)");
    }
    line.push_str(&format!(". Elapsed: {:.3} s.", stats.elapsed.as_secs_f64()));
    match (stats.rows_read, stats.bytes_read) {
        (Some(read), Some(bytes)) => line.push_str(&format!(
            " Read {}, {}.",
            count(read, "row", "rows"),
            human_bytes(bytes)
        )),
        (Some(read), None) => line.push_str(&format!(" Read {}.", count(read, "row", "rows"))),
        (None, Some(bytes)) => line.push_str(&format!(" Read {}.", human_bytes(bytes))),
        (None, None) => {}
    }
    line
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Decimal units, as `clickhouse-client` reports sizes.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// Writes a result incrementally so large results need not be held in memory: the format's
/// header in [`RowWriter::begin`], rows chunk by chunk, and the footer (statistics) in
/// [`RowWriter::finish`]. The writer is passed to each call; it should be buffered (for
/// example a `BufWriter` over a locked stdout), as rows are written one `write_all` each.
///
/// ```text
/// let mut writer = RowWriter::new(OutputFormat::Json, columns);
/// writer.begin(&mut out)?;
/// while let Some(chunk) = stream.next_chunk().await? {
///     writer.write_rows(&mut out, &chunk)?;
/// }
/// writer.finish(&mut out, stream.stats())?;
/// ```
pub struct RowWriter {
    format: OutputFormat,
    columns: Vec<Column>,
    begun: bool,
    rows: u64,
    /// Table format only: rendered cells of the block not drawn yet.
    pending: Vec<Vec<String>>,
    line: String,
    /// The `WITH TOTALS` row, shown after the data by the table and JSON formats.
    totals: Option<Vec<Value>>,
}

impl RowWriter {
    /// A writer for a result with these columns. Nothing is written until [`Self::begin`].
    pub fn new(format: OutputFormat, columns: Vec<Column>) -> Self {
        RowWriter {
            format,
            columns,
            begun: false,
            rows: 0,
            pending: Vec::new(),
            line: String::new(),
            totals: None,
        }
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Rows written so far.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Writes the format's header (JSON `meta`, CSV/TSV names; the table draws its header
    /// with each block). Called implicitly by the first write if forgotten.
    pub fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.begun {
            return Ok(());
        }
        self.begun = true;
        match self.format {
            OutputFormat::Table => Ok(()),
            OutputFormat::Json => {
                let mut header = String::from("{\n  \"meta\": [");
                for (i, column) in self.columns.iter().enumerate() {
                    header.push_str(if i == 0 { "\n    " } else { ",\n    " });
                    header.push_str("{\"name\": ");
                    push_json_string(&mut header, &column.name);
                    header.push_str(", \"type\": ");
                    push_json_string(&mut header, &column.type_name);
                    header.push('}');
                }
                header.push_str(if self.columns.is_empty() {
                    "],\n"
                } else {
                    "\n  ],\n"
                });
                header.push_str("  \"data\": [");
                out.write_all(header.as_bytes())
            }
            OutputFormat::Csv => {
                let mut csv = csv::WriterBuilder::new().from_writer(out);
                csv.write_record(self.columns.iter().map(|c| c.name.as_str()))?;
                csv.flush()
            }
            OutputFormat::Tsv => {
                let mut header = String::new();
                for (i, column) in self.columns.iter().enumerate() {
                    if i > 0 {
                        header.push('\t');
                    }
                    push_tsv_escaped(&mut header, &column.name);
                }
                header.push('\n');
                out.write_all(header.as_bytes())
            }
        }
    }

    /// Writes one chunk of rows.
    pub fn write_rows(&mut self, out: &mut dyn Write, rows: &[Vec<Value>]) -> io::Result<()> {
        self.begin(out)?;
        if self.format == OutputFormat::Csv {
            // One csv writer per chunk: it needs to own its output, and ours is borrowed.
            let mut csv = csv::WriterBuilder::new().from_writer(&mut *out);
            for row in rows {
                csv.write_record(row.iter().map(csv_field))?;
                self.rows += 1;
            }
            return csv.flush();
        }
        for row in rows {
            self.write_row(out, row)?;
        }
        Ok(())
    }

    /// Writes a single row.
    pub fn write_row(&mut self, out: &mut dyn Write, row: &[Value]) -> io::Result<()> {
        self.begin(out)?;
        match self.format {
            OutputFormat::Table => {
                self.pending.push(row.iter().map(table_text).collect());
                if self.pending.len() >= TABLE_BLOCK_ROWS {
                    self.flush_table(out)?;
                }
            }
            OutputFormat::Json => {
                self.line.clear();
                self.line.push_str(if self.rows == 0 {
                    "\n    ["
                } else {
                    ",\n    ["
                });
                for (i, value) in row.iter().enumerate() {
                    if i > 0 {
                        self.line.push(',');
                    }
                    value.write_json(&mut self.line);
                }
                self.line.push(']');
                out.write_all(self.line.as_bytes())?;
            }
            OutputFormat::Csv => {
                let mut csv = csv::WriterBuilder::new().from_writer(&mut *out);
                csv.write_record(row.iter().map(csv_field))?;
                csv.flush()?;
            }
            OutputFormat::Tsv => {
                self.line.clear();
                for (i, value) in row.iter().enumerate() {
                    if i > 0 {
                        self.line.push('\t');
                    }
                    push_tsv_field(&mut self.line, value);
                }
                self.line.push('\n');
                out.write_all(self.line.as_bytes())?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Records the totals row of a `WITH TOTALS` query, written by [`Self::finish`]. CSV and
    /// TSV leave it out, so their output stays one header and uniform rows.
    pub fn set_totals(&mut self, totals: Vec<Value>) {
        self.totals = Some(totals);
    }

    /// Ends the result: the remaining table block and summary line, or the JSON statistics.
    /// CSV and TSV have no footer (print [`summary_line`] to stderr if wanted). Flushes `out`.
    pub fn finish(mut self, out: &mut dyn Write, stats: &QueryStats) -> io::Result<()> {
        self.begin(out)?;
        match self.format {
            OutputFormat::Table => {
                let drew_table = self.rows > 0;
                self.flush_table(out)?;
                if let Some(totals) = self.totals.take() {
                    out.write_all(b"Totals:\n")?;
                    self.pending.push(totals.iter().map(table_text).collect());
                    self.flush_table(out)?;
                }
                let mut footer = String::new();
                if self.columns.is_empty() {
                    // Statements without a result set (DDL, INSERT) still deserve an answer.
                    footer.push_str("Ok.\n\n");
                } else if drew_table {
                    footer.push('\n');
                }
                footer.push_str(&summary_line(self.rows, stats));
                footer.push('\n');
                out.write_all(footer.as_bytes())?;
            }
            OutputFormat::Json => {
                let mut footer = String::new();
                footer.push_str(if self.rows == 0 { "],\n" } else { "\n  ],\n" });
                if let Some(totals) = &self.totals {
                    footer.push_str("  \"totals\": [");
                    for (i, value) in totals.iter().enumerate() {
                        if i > 0 {
                            footer.push(',');
                        }
                        value.write_json(&mut footer);
                    }
                    footer.push_str("],\n");
                }
                footer.push_str(&format!("  \"rows\": {},\n", self.rows));
                footer.push_str(&format!(
                    "  \"statistics\": {{\"elapsed_seconds\": {}, \"rows_read\": {}, ",
                    stats.elapsed.as_secs_f64(),
                    optional(stats.rows_read),
                ));
                footer.push_str(&format!(
                    "\"bytes_read\": {}, \"query_id\": ",
                    optional(stats.bytes_read),
                ));
                push_json_string(&mut footer, &stats.query_id);
                footer.push_str(&format!("}},\n  \"truncated\": {}\n}}\n", stats.truncated));
                out.write_all(footer.as_bytes())?;
            }
            OutputFormat::Csv | OutputFormat::Tsv => {}
        }
        out.flush()
    }

    /// Draws the pending block as one table.
    fn flush_table(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.pending.is_empty() || self.columns.is_empty() {
            self.pending.clear();
            return Ok(());
        }
        let mut table = Table::new();
        // Deterministic output: no terminal probing, no wrapping (cells are capped instead).
        table
            .load_preset(presets::ASCII_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty();
        table.set_header(self.columns.iter().map(|c| {
            Cell::new(format!(
                "{}\n{}",
                cap_width(&escape_controls(&c.name)),
                cap_width(&c.type_name)
            ))
        }));
        let right: Vec<bool> = self
            .columns
            .iter()
            .map(|c| c.data_type.is_right_aligned())
            .collect();
        for row in self.pending.drain(..) {
            table.add_row(row.into_iter().enumerate().map(|(i, text)| {
                let cell = Cell::new(text);
                if right.get(i).copied().unwrap_or(false) {
                    cell.set_alignment(CellAlignment::Right)
                } else {
                    cell
                }
            }));
        }
        let mut drawn = table.to_string();
        drawn.push('\n');
        out.write_all(drawn.as_bytes())
    }
}

fn optional(value: Option<u64>) -> String {
    value.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn table_text(value: &Value) -> String {
    if value.is_null() {
        return "NULL".to_string();
    }
    cap_width(&escape_controls(&value.to_string()))
}

/// A raw newline or tab would break the grid, so control characters are shown as escapes.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Caps text at [`MAX_CELL_WIDTH`] characters. Counts chars, not terminal columns, so wide
/// (CJK) text may still come out somewhat wider.
fn cap_width(text: &str) -> String {
    let keep = MAX_CELL_WIDTH - ELLIPSIS.len();
    match text.char_indices().nth(MAX_CELL_WIDTH) {
        None => text.to_string(),
        Some(_) => {
            let cut = text
                .char_indices()
                .nth(keep)
                .map_or(text.len(), |(at, _)| at);
            format!("{}{ELLIPSIS}", &text[..cut])
        }
    }
}

fn csv_field(value: &Value) -> String {
    if value.is_null() {
        String::new()
    } else {
        value.to_string()
    }
}

fn push_tsv_field(out: &mut String, value: &Value) {
    if value.is_null() {
        out.push_str("\\N");
    } else if value.is_composite() {
        // Strings inside arrays, tuples and maps are already quoted and escaped; ClickHouse
        // writes such values as-is rather than escaping them a second time.
        out.push_str(&value.to_string());
    } else {
        push_tsv_escaped(out, &value.to_string());
    }
}

/// ClickHouse's `writeEscapedString`: backslash escapes for control characters, the
/// backslash itself and the single quote.
fn push_tsv_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    use crate::warehouse::types::DataType;

    fn column(name: &str, type_name: &str) -> Column {
        Column {
            name: name.to_string(),
            type_name: type_name.to_string(),
            data_type: DataType::parse(type_name).unwrap(),
        }
    }

    fn sample() -> QueryResult {
        QueryResult {
            columns: vec![
                column("n", "UInt64"),
                column("s", "Nullable(String)"),
                column("d", "Decimal(9, 2)"),
                column("a", "Array(String)"),
                column("f", "Float64"),
            ],
            rows: vec![
                vec![
                    Value::UInt(u64::MAX),
                    Value::String("a\tb\nc \"q\", it's \\".into()),
                    Value::Decimal("2.50".into()),
                    Value::Array(
                        vec![Value::String("x".into()), Value::String("y'z".into())].into(),
                    ),
                    Value::Float(f64::NAN),
                ],
                vec![
                    Value::UInt(0),
                    Value::Null,
                    Value::Decimal("-1.00".into()),
                    Value::Array(vec![].into()),
                    Value::Float(1.5),
                ],
            ],
            totals: None,
            stats: QueryStats {
                query_id: "q-1".into(),
                elapsed: Duration::from_millis(4),
                server_elapsed: None,
                rows_read: Some(3),
                bytes_read: Some(24),
                result_rows: 2,
                truncated: false,
            },
        }
    }

    fn rendered(result: &QueryResult, format: OutputFormat) -> String {
        let mut out = Vec::new();
        render(result, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_is_exact_and_stable() {
        let text = rendered(&sample(), OutputFormat::Json);
        let expected = r#"{
  "meta": [
    {"name": "n", "type": "UInt64"},
    {"name": "s", "type": "Nullable(String)"},
    {"name": "d", "type": "Decimal(9, 2)"},
    {"name": "a", "type": "Array(String)"},
    {"name": "f", "type": "Float64"}
  ],
  "data": [
    [18446744073709551615,"a\tb\nc \"q\", it's \\","2.50",["x","y'z"],"nan"],
    [0,null,"-1.00",[],1.5]
  ],
  "rows": 2,
  "statistics": {"elapsed_seconds": 0.004, "rows_read": 3, "bytes_read": 24, "query_id": "q-1"},
  "truncated": false
}
"#;
        assert_eq!(text, expected);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["data"][0][0].as_u64(), Some(u64::MAX));
        assert_eq!(parsed["rows"], 2);
    }

    #[test]
    fn json_empty_and_unreported_stats() {
        let mut result = sample();
        result.rows.clear();
        result.stats.rows_read = None;
        result.stats.bytes_read = None;
        result.stats.truncated = true;
        let text = rendered(&result, OutputFormat::Json);
        assert!(text.contains("\"data\": [],\n"), "{text}");
        assert!(
            text.contains("\"rows_read\": null, \"bytes_read\": null"),
            "{text}"
        );
        assert!(text.contains("\"truncated\": true"), "{text}");
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["rows"], 0);

        let nothing = QueryResult::default();
        let parsed: serde_json::Value =
            serde_json::from_str(&rendered(&nothing, OutputFormat::Json)).unwrap();
        assert_eq!(parsed["meta"], serde_json::json!([]));
    }

    #[test]
    fn csv_quotes_per_rfc4180() {
        let text = rendered(&sample(), OutputFormat::Csv);
        let expected = "n,s,d,a,f\n\
            18446744073709551615,\"a\tb\nc \"\"q\"\", it's \\\",2.50,\"['x', 'y\\'z']\",nan\n\
            0,,-1.00,[],1.5\n";
        assert_eq!(text, expected);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(&records[0][1], "a\tb\nc \"q\", it's \\");
        assert_eq!(&records[1][1], "");
    }

    #[test]
    fn tsv_escapes_like_clickhouse() {
        let text = rendered(&sample(), OutputFormat::Tsv);
        let expected = "n\ts\td\ta\tf\n\
            18446744073709551615\ta\\tb\\nc \"q\", it\\'s \\\\\t2.50\t['x', 'y\\'z']\tnan\n\
            0\t\\N\t-1.00\t[]\t1.5\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn table_aligns_numbers_and_shows_null() {
        let text = rendered(&sample(), OutputFormat::Table);
        let expected = r#"+----------------------+---------------------+---------------+---------------+---------+
| n                    | s                   | d             | a             | f       |
| UInt64               | Nullable(String)    | Decimal(9, 2) | Array(String) | Float64 |
+======================================================================================+
| 18446744073709551615 | a\tb\nc "q", it's \ |          2.50 | ['x', 'y\'z'] |     nan |
|                    0 | NULL                |         -1.00 | []            |     1.5 |
+----------------------+---------------------+---------------+---------------+---------+

2 rows in set. Elapsed: 0.004 s. Read 3 rows, 24 B.
"#;
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn table_caps_long_cells_and_reports_truncation() {
        let mut result = QueryResult {
            columns: vec![column("s", "String")],
            rows: vec![vec![Value::String("x".repeat(500).into())]],
            totals: None,
            stats: QueryStats {
                elapsed: Duration::from_millis(1234),
                truncated: true,
                ..QueryStats::default()
            },
        };
        let text = rendered(&result, OutputFormat::Table);
        let capped = format!("{}...", "x".repeat(MAX_CELL_WIDTH - 3));
        assert!(text.contains(&format!("| {capped} |")), "{text}");
        assert!(!text.contains(&"x".repeat(MAX_CELL_WIDTH + 1)));
        assert!(
            text.ends_with("1 row in set (truncated by max_result_rows). Elapsed: 1.234 s.\n"),
            "{text}"
        );

        result.rows.clear();
        result.stats.truncated = false;
        result.stats.bytes_read = Some(1_500_000);
        assert_eq!(
            rendered(&result, OutputFormat::Table),
            "0 rows in set. Elapsed: 1.234 s. Read 1.50 MB.\n"
        );
        let ddl = QueryResult::default();
        assert_eq!(
            rendered(&ddl, OutputFormat::Table),
            "Ok.\n\n0 rows in set. Elapsed: 0.000 s.\n"
        );
    }

    #[test]
    fn streaming_matches_render() {
        let result = sample();
        for format in [
            OutputFormat::Table,
            OutputFormat::Json,
            OutputFormat::Csv,
            OutputFormat::Tsv,
        ] {
            // `begin` left out on purpose: the first write must add the header itself.
            let mut writer = RowWriter::new(format, result.columns.clone());
            let mut out = Vec::new();
            writer.write_rows(&mut out, &result.rows[..1]).unwrap();
            writer.write_row(&mut out, &result.rows[1]).unwrap();
            writer.write_rows(&mut out, &[]).unwrap();
            assert_eq!(writer.rows_written(), 2);
            writer.finish(&mut out, &result.stats).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), rendered(&result, format));
        }
    }

    #[test]
    fn table_blocks_bound_memory() {
        let mut writer = RowWriter::new(OutputFormat::Table, vec![column("n", "UInt32")]);
        let mut out = Vec::new();
        writer.begin(&mut out).unwrap();
        for i in 0..(TABLE_BLOCK_ROWS as u64 + 1) {
            writer.write_row(&mut out, &[Value::UInt(i)]).unwrap();
        }
        assert!(writer.pending.len() <= 1);
        writer.finish(&mut out, &QueryStats::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("| UInt32 |").count(), 2);
        assert!(text.ends_with("10001 rows in set. Elapsed: 0.000 s.\n"));
    }

    #[test]
    fn summary_and_bytes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.00 KB");
        assert_eq!(human_bytes(2_500_000_000), "2.50 GB");
        let stats = QueryStats {
            rows_read: Some(1),
            elapsed: Duration::from_micros(1600),
            ..QueryStats::default()
        };
        assert_eq!(
            summary_line(3, &stats),
            "3 rows in set. Elapsed: 0.002 s. Read 1 row."
        );
    }
}
