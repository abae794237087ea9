//! Fitting text into a fixed number of terminal cells, for the result grid and chart labels.
//! Widths are measured grapheme by grapheme exactly as ratatui's `Buffer` draws them, so wide
//! characters and emoji never push a column out of line; text that does not fit ends in `…`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use ratatui::style::Style;
use ratatui::text::Span;
use unicode_width::UnicodeWidthStr;

pub const ELLIPSIS: &str = "…";
/// Shown for a line break inside a cell, which a one-line cell cannot show as a break.
pub const NEWLINE_MARK: &str = "⏎";

/// Writes `value`'s text into `out` (cleared first), stopping after about `max_bytes`: a cell
/// holding megabytes costs no more to draw than a short one. True when the text was cut.
pub fn display_bounded(value: &impl fmt::Display, max_bytes: usize, out: &mut String) -> bool {
    out.clear();
    let mut writer = BoundedWriter {
        out,
        max_bytes,
        cut: false,
    };
    // The only error is the writer's own "full", which is what `cut` records.
    let _ = write!(writer, "{value}");
    writer.cut
}

struct BoundedWriter<'a> {
    out: &'a mut String,
    max_bytes: usize,
    cut: bool,
}

impl fmt::Write for BoundedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.max_bytes.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.out.push_str(&s[..end]);
        self.cut = true;
        // Stops the formatter: nothing more would be kept anyway.
        Err(fmt::Error)
    }
}

/// Control characters made visible as one cell each: a line break as `⏎` (`\r\n` counts as one
/// break), a tab or any other control character as a space. Ratatui would silently drop them,
/// which hides that a value spans lines.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.contains(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str(NEWLINE_MARK),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The cells `text` takes when drawn; graphemes ratatui skips (zero-width ones) count nothing.
pub fn display_width(text: &str) -> usize {
    let span = Span::raw(text);
    graphemes(&span).map(|(_, width)| width).sum()
}

/// `text` (already on [`one_line`]) cut to at most `max_width` cells, ending in `…` when cut or
/// when `more_follows` (its source was longer than `text`). Returns the text and its width.
pub fn fit(text: &str, max_width: usize, more_follows: bool) -> (Cow<'_, str>, usize) {
    if max_width == 0 {
        return (Cow::Borrowed(""), 0);
    }
    let width = display_width(text);
    if width <= max_width && !more_follows {
        return (Cow::Borrowed(text), width);
    }
    let budget = max_width - 1;
    let span = Span::raw(text);
    let mut out = String::with_capacity(budget * 4 + ELLIPSIS.len());
    let mut used = 0;
    for (symbol, symbol_width) in graphemes(&span) {
        if used + symbol_width > budget {
            break;
        }
        out.push_str(symbol);
        used += symbol_width;
    }
    out.push_str(ELLIPSIS);
    (Cow::Owned(out), used + 1)
}

/// Graphemes and their widths as `Buffer::set_stringn` sees them. Ratatui's own splitting is
/// used so the two always agree (and no second segmentation crate is needed).
fn graphemes<'a>(span: &'a Span<'a>) -> impl Iterator<Item = (&'a str, usize)> + 'a {
    span.styled_graphemes(Style::new())
        .map(|grapheme| grapheme.symbol)
        .filter(|symbol| !symbol.contains(char::is_control))
        .map(|symbol| (symbol, symbol.width()))
        .filter(|(_, width)| *width > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_display_cuts_on_a_char_boundary() {
        let mut out = String::new();
        assert!(!display_bounded(&"short", 16, &mut out));
        assert_eq!(out, "short");
        assert!(display_bounded(&"日本語", 4, &mut out));
        assert_eq!(out, "日");
        let long = "x".repeat(1_000_000);
        assert!(display_bounded(&long, 10, &mut out));
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn control_characters_take_one_cell() {
        assert_eq!(one_line("a\nb\r\nc\td\u{1}"), "a⏎b⏎c d ");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn widths_follow_graphemes() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("日本"), 4);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(display_width("😀"), 2);
    }

    #[test]
    fn fitting_cuts_with_an_ellipsis_and_never_splits_a_wide_char() {
        assert_eq!(fit("hello", 5, false), (Cow::Borrowed("hello"), 5));
        assert_eq!(fit("hello", 4, false).0, "hel…");
        assert_eq!(fit("hello", 1, false).0, "…");
        assert_eq!(fit("hello", 0, false).0, "");
        // `日` is two cells: with 3 cells there is room for one and the ellipsis.
        assert_eq!(fit("日本語", 4, false), (Cow::Owned("日…".to_string()), 3));
        assert_eq!(
            fit("日本語", 5, false),
            (Cow::Owned("日本…".to_string()), 5)
        );
        assert_eq!(fit("ab", 5, true), (Cow::Owned("ab…".to_string()), 3));
    }
}
