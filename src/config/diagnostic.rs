//! Problems found in a config file, each pinned to file:line:column, and their plain-text
//! renderings: compiler-style with the offending line and carets for `aurora config check` and
//! load failures, or one line each for logs.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    // The path as given by the caller, or "<defaults>" for the embedded defaults.
    pub file: String,
    // 1-based; 0 when the problem concerns the whole file (e.g. it cannot be read).
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
    // Width of the offending token in characters, for the carets; 0 when unknown.
    pub span_chars: usize,
    // The offending line itself, so a diagnostic renders fully even far from its file's text
    // (as in `ConfigError`'s Display).
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn error(
        file: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            column,
            severity: Severity::Error,
            message: message.into(),
            hint: None,
            span_chars: 0,
            source_line: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.column)
        }
    }

    /// `file:line:col: error: message (hint)`, for logs and other one-line contexts.
    pub fn one_line(&self) -> String {
        let mut out = format!("{}: {}: {}", self.location(), self.severity, self.message);
        if let Some(hint) = &self.hint {
            out.push_str(&format!(" ({hint})"));
        }
        out
    }

    /// The compiler-style block, ending in a newline. `source_text` is the whole file the
    /// diagnostic points into; without it the line stored in the diagnostic is shown, if any.
    pub fn render(&self, source_text: Option<&str>) -> String {
        let shown_line = source_text
            .filter(|_| self.line > 0)
            .and_then(|text| text.lines().nth(self.line - 1))
            .or(self.source_line.as_deref());
        let gutter = " ".repeat(if self.line == 0 {
            1
        } else {
            self.line.to_string().len()
        });
        // A secret's line is shown with its value masked, in the message too.
        let secret = shown_line.and_then(secret_value);
        let mask = |text: &str| match secret {
            Some(value) => text.replace(value, "***"),
            None => text.to_string(),
        };
        let mut out = format!(
            "{}: {}: {}\n",
            self.location(),
            self.severity,
            mask(&self.message)
        );
        if let (Some(text), true) = (shown_line, self.line > 0) {
            let text = mask(text);
            let (display, caret_offset, caret_width) =
                expand_tabs(&text, self.column.saturating_sub(1), self.span_chars.max(1));
            let carets = "^".repeat(caret_width);
            out.push_str(&format!("{gutter} |\n"));
            out.push_str(format!("{} | {display}", self.line).trim_end());
            out.push('\n');
            out.push_str(&format!(
                "{gutter} | {}{carets}\n",
                " ".repeat(caret_offset)
            ));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("{gutter} = help: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// The value on a YAML line whose key names a secret (`password`, `token`, `secret`, `api_key`,
/// `routing_key`, but not the `*_file`/`*_env` keys that only say where one is).
fn secret_value(line: &str) -> Option<&str> {
    let (key, value) = line.split_once(':')?;
    let key = key
        .trim()
        .trim_start_matches("- ")
        .trim_matches(['"', '\'']);
    let key = key.to_ascii_lowercase();
    let names_secret = ["password", "token", "secret", "api_key", "routing_key"]
        .iter()
        .any(|s| key.contains(s));
    if !names_secret || key.ends_with("_file") || key.ends_with("_env") {
        return None;
    }
    let value = value.split(" #").next().unwrap_or_default().trim();
    (!value.is_empty() && value != "null" && value != "\"\"" && value != "''").then_some(value)
}

// Tabs would make the caret line drift by a terminal-dependent amount, so the shown line and
// the carets both count four spaces per tab. Returns the line, the caret offset and width.
fn expand_tabs(line: &str, start_chars: usize, span_chars: usize) -> (String, usize, usize) {
    let mut display = String::with_capacity(line.len());
    let (mut offset, mut width) = (0, 0);
    let mut count = 0;
    for (i, c) in line.chars().enumerate() {
        let w = if c == '\t' { 4 } else { 1 };
        if i < start_chars {
            offset += w;
        } else if i < start_chars + span_chars {
            width += w;
        }
        if c == '\t' {
            display.push_str("    ");
        } else {
            display.push(c);
        }
        count += 1;
    }
    // A position past the end (e.g. "unexpected end of line") still gets a caret.
    offset += start_chars.saturating_sub(count);
    (display, offset, width.max(1))
}

/// Every diagnostic in compiler style, separated by blank lines. `source_text` is used for
/// diagnostics that lack their own copy of the line (diagnostics in `<defaults>` always use the
/// embedded defaults).
pub fn render_all(diags: &[Diagnostic], source_text: Option<&str>) -> String {
    diags
        .iter()
        .map(|d| {
            let text = if d.file == super::DEFAULTS_NAME {
                Some(super::DEFAULTS_YAML)
            } else {
                source_text
            };
            d.render(text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `2 errors in config.yaml` (and warnings, if any).
pub fn summary(diags: &[Diagnostic]) -> String {
    let count = |severity| diags.iter().filter(|d| d.severity == severity).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let errors = count(Severity::Error);
    let warnings = count(Severity::Warning);
    let file = diags
        .first()
        .map_or("the configuration", |d| d.file.as_str());
    if warnings == 0 {
        format!("{} in {file}", plural(errors, "error"))
    } else {
        format!(
            "{} and {} in {file}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Diagnostic {
        let mut d = Diagnostic::error("config.yaml", 3, 5, "unknown field `topc` in `kafka`")
            .with_hint("did you mean `topic`?");
        d.span_chars = 4;
        d
    }

    #[test]
    fn a_secret_on_the_shown_line_is_masked() {
        let mut d = Diagnostic::error("c.yaml", 3, 13, "expected a string, found `[hunter2]`");
        d.source_line = Some("  password: [hunter2]  # mine".into());
        let shown = d.render(None);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: ***"), "{shown}");
        // Where a secret is kept is not itself secret.
        d.source_line = Some("  password_file: /run/secrets/ch".into());
        assert!(d.render(None).contains("/run/secrets/ch"));
    }

    #[test]
    fn renders_like_a_compiler() {
        let text = "kafka:\n  brokers: []\n    topc: events\n";
        assert_eq!(
            sample().render(Some(text)),
            "config.yaml:3:5: error: unknown field `topc` in `kafka`\n  |\n3 |     topc: events\n  |     ^^^^\n  = help: did you mean `topic`?\n"
        );
    }

    #[test]
    fn stored_line_is_used_without_text_and_one_line_form_has_the_hint() {
        let mut d = sample();
        d.source_line = Some("    topc: events".into());
        assert!(d.render(None).contains("3 |     topc: events\n"));
        assert_eq!(
            d.one_line(),
            "config.yaml:3:5: error: unknown field `topc` in `kafka` (did you mean `topic`?)"
        );
    }

    #[test]
    fn tabs_are_expanded_consistently() {
        let mut d = Diagnostic::error("c.yaml", 1, 1, "tab");
        d.source_line = Some("\tb: 1".into());
        d.span_chars = 1;
        assert_eq!(
            d.render(None),
            "c.yaml:1:1: error: tab\n  |\n1 |     b: 1\n  | ^^^^\n"
        );
    }

    #[test]
    fn whole_file_problems_have_no_position() {
        let d = Diagnostic::error("nope.yaml", 0, 0, "cannot read");
        assert_eq!(d.render(None), "nope.yaml: error: cannot read\n");
        assert_eq!(summary(&[d]), "1 error in nope.yaml");
    }
}
