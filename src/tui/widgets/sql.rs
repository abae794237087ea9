//! SQL syntax highlighting for display: the assistant's SQL (also while it is still being
//! generated), the SQL box and the history. sqlparser's ClickHouse tokenizer finds keywords,
//! function names, strings, numbers and comments; the text itself is kept as written, cut into
//! lines at its line breaks, and whatever the tokenizer cannot read (an unterminated string
//! while the model is still writing) is shown as plain text.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::cell_text::display_width;
use crate::tui::theme::Theme;

/// Tab stops every this many cells; the terminal buffer cannot draw a tab itself.
const TAB_WIDTH: usize = 4;

/// `sql` as styled lines, one per line of the text. Joined with `\n`, the lines give back
/// `sql` except that tabs become spaces up to the next tab stop and a `\r` before a line break
/// is dropped.
pub fn highlight(sql: &str, theme: &Theme) -> Vec<Line<'static>> {
    let mut tokens = Vec::new();
    // On an error the tokens read so far stay in `tokens`; the rest becomes plain text below.
    let _ = Tokenizer::new(&ClickHouseDialect {}, sql).tokenize_with_location_into_buf(&mut tokens);
    let mut lines = LineBuilder::default();
    let mut source = SourceCursor::new(sql);
    let mut covered = 0;
    for (index, token) in tokens.iter().enumerate() {
        let (Some(start), Some(end)) = (
            source.offset_of(token.span.start),
            source.offset_of(token.span.end),
        ) else {
            break;
        };
        // Spans always run forward and touch; anything else leaves the rest plain.
        if start < covered || end < start {
            break;
        }
        lines.push(&sql[covered..start], theme.text);
        lines.push(&sql[start..end], token_style(&tokens, index, theme));
        covered = end;
    }
    lines.push(&sql[covered..], theme.text);
    lines.finish()
}

fn token_style(tokens: &[TokenWithSpan], index: usize, theme: &Theme) -> Style {
    let next = tokens.get(index + 1).map(|t| &t.token);
    let previous = index
        .checked_sub(1)
        .and_then(|i| tokens.get(i))
        .map(|t| &t.token);
    match &tokens[index].token {
        Token::Whitespace(
            Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
        ) => theme.sql_comment,
        Token::Number(..) => theme.sql_number,
        Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => theme.sql_string,
        Token::Word(word) => {
            let called = matches!(next, Some(Token::LParen));
            if called && !is_clause_keyword(word.keyword) {
                theme.sql_function
            } else if word.keyword != Keyword::NoKeyword
                && word.quote_style.is_none()
                // `t.date`, `date.x`: a name that happens to be a keyword.
                && !matches!(previous, Some(Token::Period))
                && !matches!(next, Some(Token::Period))
            {
                theme.sql_keyword
            } else {
                theme.text
            }
        }
        _ => theme.text,
    }
}

/// Keywords written right before a parenthesis that are not calls: `IN(1, 2)`, `AS(…)`.
fn is_clause_keyword(keyword: Keyword) -> bool {
    use Keyword::*;
    matches!(
        keyword,
        IN | AS
            | FROM
            | JOIN
            | USING
            | VALUES
            | OVER
            | ON
            | AND
            | OR
            | NOT
            | EXISTS
            | WHERE
            | PREWHERE
            | SELECT
            | WITH
            | BY
            | WHEN
            | THEN
            | ELSE
            | HAVING
            | INTO
            | TABLE
            | UNION
    )
}

/// Turns the tokenizer's line/column locations into byte offsets. Tokens arrive in order, so
/// the cursor only walks forward and the whole text is walked once.
struct SourceCursor<'a> {
    text: &'a str,
    byte: usize,
    line: u64,
    column: u64,
}

impl<'a> SourceCursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            byte: 0,
            line: 1,
            column: 1,
        }
    }

    /// Columns count characters from 1, and a line break starts the next line at column 1,
    /// as in sqlparser's tokenizer.
    fn offset_of(&mut self, target: Location) -> Option<usize> {
        let target = (target.line, target.column);
        if target < (self.line, self.column) {
            *self = Self::new(self.text);
        }
        while (self.line, self.column) < target {
            let c = self.text.get(self.byte..)?.chars().next()?;
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        ((self.line, self.column) == target).then_some(self.byte)
    }
}

/// Collects styled pieces of text into lines.
#[derive(Default)]
struct LineBuilder {
    lines: Vec<Line<'static>>,
    spans: Vec<Span<'static>>,
    /// Cells taken on the current line, for tab stops.
    width: usize,
}

impl LineBuilder {
    fn push(&mut self, text: &str, style: Style) {
        let mut pieces = text.split('\n').peekable();
        while let Some(piece) = pieces.next() {
            let ends_line = pieces.peek().is_some();
            let piece = if ends_line {
                piece.strip_suffix('\r').unwrap_or(piece)
            } else {
                piece
            };
            self.push_within_line(piece, style);
            if ends_line {
                self.lines.push(Line::from(std::mem::take(&mut self.spans)));
                self.width = 0;
            }
        }
    }

    fn push_within_line(&mut self, text: &str, style: Style) {
        if text.is_empty() {
            return;
        }
        let content = if text.contains('\t') {
            let mut expanded = String::with_capacity(text.len() + TAB_WIDTH);
            for (i, part) in text.split('\t').enumerate() {
                if i > 0 {
                    let column = self.width + display_width(&expanded);
                    let spaces = TAB_WIDTH - column % TAB_WIDTH;
                    expanded.extend(std::iter::repeat_n(' ', spaces));
                }
                expanded.push_str(part);
            }
            expanded
        } else {
            text.to_string()
        };
        self.width += display_width(&content);
        self.spans.push(Span::styled(content, style));
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        self.lines.push(Line::from(self.spans));
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::widgets::{Paragraph, Widget};

    use super::*;
    use crate::tui::theme::ColorDepth;

    fn theme() -> Theme {
        Theme::dark(ColorDepth::TrueColor)
    }

    fn text_of(lines: &[Line<'_>]) -> String {
        lines
            .iter()
            .map(|line| {
                line.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Each span's text and style, blank ones left out.
    fn styled<'a>(lines: &'a [Line<'a>]) -> Vec<(&'a str, Style)> {
        lines
            .iter()
            .flat_map(|line| &line.spans)
            .filter(|span| !span.content.trim().is_empty())
            .map(|span| (span.content.as_ref(), span.style))
            .collect()
    }

    #[test]
    fn classifies_keywords_functions_strings_numbers_and_comments() {
        let theme = theme();
        let sql = "SELECT count(*), t.date FROM demo.events t -- recent\nWHERE x IN(1, 2.5) AND s = 'it''s' /* note */";
        let lines = highlight(sql, &theme);
        assert_eq!(text_of(&lines), sql);
        assert_eq!(
            styled(&lines),
            vec![
                ("SELECT", theme.sql_keyword),
                ("count", theme.sql_function),
                ("(", theme.text),
                ("*", theme.text),
                (")", theme.text),
                (",", theme.text),
                ("t", theme.text),
                (".", theme.text),
                ("date", theme.text),
                ("FROM", theme.sql_keyword),
                ("demo", theme.text),
                (".", theme.text),
                ("events", theme.text),
                ("t", theme.text),
                ("-- recent", theme.sql_comment),
                ("WHERE", theme.sql_keyword),
                ("x", theme.text),
                ("IN", theme.sql_keyword),
                ("(", theme.text),
                ("1", theme.sql_number),
                (",", theme.text),
                ("2.5", theme.sql_number),
                (")", theme.text),
                ("AND", theme.sql_keyword),
                ("s", theme.text),
                ("=", theme.text),
                ("'it''s'", theme.sql_string),
                ("/* note */", theme.sql_comment),
            ]
        );
    }

    #[test]
    fn keeps_the_text_and_its_lines() {
        let theme = theme();
        for sql in [
            "",
            "\n",
            "SELECT 1\n",
            "  SELECT\n\n  a,\n  b  \nFROM t",
            "SELECT '日本語 😀' AS \"名前\", `x y` FROM t",
            "SELECT 'multi\nline string', /* multi\nline\ncomment */ 1",
            "SELECT {param:UInt8} -- comment at the end",
        ] {
            let lines = highlight(sql, &theme);
            assert_eq!(text_of(&lines), sql);
            assert_eq!(lines.len(), sql.matches('\n').count() + 1, "{sql:?}");
        }
        let lines = highlight("SELECT 'a\nb'", &theme);
        assert_eq!(lines[1].spans, vec![Span::styled("b'", theme.sql_string)]);
    }

    #[test]
    fn unreadable_tails_stay_plain() {
        let theme = theme();
        for sql in [
            "SELECT name FROM t WHERE s = 'unterminated",
            "SELECT 1 /* open comment",
            "SELECT \"open identifier",
            "SELECT 'a\nb",
            "SELECT x'",
        ] {
            let lines = highlight(sql, &theme);
            assert_eq!(text_of(&lines), sql);
        }
        let lines = highlight("SELECT count(x) WHERE s = 'still writ", &theme);
        let last = lines[0].spans.last().unwrap();
        assert_eq!(
            (last.content.as_ref(), last.style),
            ("'still writ", theme.text)
        );
        assert_eq!(lines[0].spans[0].style, theme.sql_keyword);
        assert_eq!(lines[0].spans[2].style, theme.sql_function);
    }

    #[test]
    fn tabs_and_carriage_returns_are_made_drawable() {
        let theme = theme();
        let lines = highlight("SELECT\r\n\tab,\tc", &theme);
        assert_eq!(text_of(&lines), "SELECT\n    ab, c");
    }

    #[test]
    fn renders_with_styles() {
        let theme = theme();
        let mut buf = Buffer::empty(Rect::new(0, 0, 16, 2));
        Paragraph::new(highlight("SELECT sum(n)\n-- x", &theme)).render(buf.area, &mut buf);
        let mut expected = Buffer::with_lines(["SELECT sum(n)   ", "-- x            "]);
        expected.set_style(Rect::new(0, 0, 6, 1), theme.sql_keyword);
        expected.set_style(Rect::new(7, 0, 3, 1), theme.sql_function);
        expected.set_style(Rect::new(0, 1, 4, 1), theme.sql_comment);
        assert_eq!(buf, expected);
    }
}
