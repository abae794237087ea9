//! Config text to a marked YAML tree (every node knows its line and column), plus the problems
//! that live below the schema: syntax errors, tabs, duplicate keys, extra documents. Also the
//! position helpers that turn tree nodes into diagnostics with the right carets.

use std::fmt;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{parse_yaml_with_options, LoadError, LoaderOptions, Node, Span};

use super::diagnostic::Diagnostic;

/// One file's name and text, for turning positions into diagnostics.
pub(crate) struct SourceFile<'t> {
    pub name: &'t str,
    lines: Vec<&'t str>,
    text: &'t str,
}

/// A 1-based line and column, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl<'t> SourceFile<'t> {
    pub fn new(name: &'t str, text: &'t str) -> Self {
        SourceFile {
            name,
            lines: text.lines().collect(),
            text,
        }
    }

    pub fn text(&self) -> &'t str {
        self.text
    }

    fn line(&self, line: usize) -> Option<&'t str> {
        line.checked_sub(1).and_then(|i| self.lines.get(i).copied())
    }

    pub fn diagnostic(&self, at: Pos, message: String, hint: Option<String>) -> Diagnostic {
        self.diagnostic_with_width(at, self.token_width(at), message, hint)
    }

    pub fn diagnostic_with_width(
        &self,
        at: Pos,
        width: usize,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let mut d = Diagnostic::error(self.name, at.line, at.column, message);
        d.hint = hint;
        d.span_chars = width;
        d.source_line = self.line(at.line).map(str::to_owned);
        d
    }

    /// The width in characters of the YAML token starting at `at`: a quoted string through
    /// its closing quote, a plain scalar up to `: ` or a comment, a flow collection through its
    /// closing bracket, a block list item to the end of its line.
    pub fn token_width(&self, at: Pos) -> usize {
        let Some(line) = self.line(at.line) else {
            return 1;
        };
        let chars: Vec<char> = line.chars().collect();
        let start = at.column.saturating_sub(1);
        if start >= chars.len() {
            return 1;
        }
        let rest = &chars[start..];
        let end_of_content = || {
            let mut end = rest.len();
            for i in 0..rest.len() {
                if rest[i] == '#' && i > 0 && rest[i - 1].is_whitespace() {
                    end = i;
                    break;
                }
            }
            rest[..end]
                .iter()
                .rposition(|c| !c.is_whitespace())
                .map_or(1, |p| p + 1)
        };
        match rest[0] {
            '"' => closing(rest, |i| rest[i] == '"' && rest[i - 1] != '\\'),
            '\'' => {
                let mut i = 1;
                while i < rest.len() {
                    if rest[i] == '\'' {
                        if rest.get(i + 1) == Some(&'\'') {
                            i += 2;
                            continue;
                        }
                        return i + 1;
                    }
                    i += 1;
                }
                end_of_content()
            }
            open @ ('[' | '{') => {
                let close = if open == '[' { ']' } else { '}' };
                let mut depth = 0usize;
                for (i, c) in rest.iter().enumerate() {
                    if *c == open {
                        depth += 1;
                    } else if *c == close {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                }
                end_of_content()
            }
            '-' if rest.get(1).is_none_or(|c| c.is_whitespace()) => end_of_content(),
            '|' | '>' => 1,
            _ => {
                let in_flow = chars[..start].iter().any(|c| matches!(c, '[' | '{'));
                let mut end = rest.len();
                for i in 0..rest.len() {
                    let next_is_space = rest.get(i + 1).is_none_or(|c| c.is_whitespace());
                    let stop = (rest[i] == ':' && next_is_space)
                        || (rest[i] == '#' && i > 0 && rest[i - 1].is_whitespace())
                        || (in_flow && matches!(rest[i], ',' | ']' | '}'));
                    if stop {
                        end = i;
                        break;
                    }
                }
                rest[..end]
                    .iter()
                    .rposition(|c| !c.is_whitespace())
                    .map_or(1, |p| p + 1)
            }
        }
    }

    /// Where a node starts, as a reader would point at it: block mappings are reported by the
    /// parser one column into their first key, so use that key's own position instead.
    pub fn node_pos(&self, node: &Node) -> Pos {
        let own = marker_pos(node.span().start());
        if let Node::Mapping(map) = node {
            let flow = self
                .line(own.line)
                .and_then(|l| l.chars().nth(own.column.saturating_sub(1)))
                == Some('{');
            if !flow {
                if let Some(first) = map.keys().map(scalar_pos).min() {
                    return first;
                }
            }
        }
        own
    }
}

fn closing(rest: &[char], is_close: impl Fn(usize) -> bool) -> usize {
    (1..rest.len())
        .find(|&i| is_close(i))
        .map_or(rest.len(), |i| i + 1)
}

fn marker_pos(marker: Option<&marked_yaml::Marker>) -> Pos {
    marker.map_or(Pos { line: 1, column: 1 }, |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

pub(crate) fn scalar_pos(scalar: &MarkedScalarNode) -> Pos {
    marker_pos(scalar.span().start())
}

/// Parse with scalars left as written: `may_coerce()` is then true only for plain scalars, so
/// the validator can tell `100` from `"100"`. Duplicate keys are tolerated here (the last one
/// wins) so the rest of the file can still be checked; `duplicate_keys` reports them.
pub(crate) fn parse(src: &SourceFile) -> Result<Node, Box<Diagnostic>> {
    match parse_yaml_with_options(0, src.text(), options(false)) {
        // A bare `---` is an empty document, which YAML reads as null; for a config file that
        // is as empty as an empty file.
        Err(LoadError::TopLevelMustBeMapping(_)) if !has_content(src) => Ok(Node::Mapping(
            MarkedMappingNode::new_empty(Span::new_blank()),
        )),
        other => other.map_err(|e| Box::new(load_error(src, e))),
    }
}

fn has_content(src: &SourceFile) -> bool {
    src.lines.iter().any(|line| {
        let t = line.trim();
        !(t.is_empty() || t.starts_with('#') || t == "---" || t == "..." || t.starts_with('%'))
    })
}

fn options(strict: bool) -> LoaderOptions {
    LoaderOptions::default()
        .prevent_coercion(true)
        .error_on_duplicate_keys(strict)
}

fn load_error(src: &SourceFile, err: LoadError) -> Diagnostic {
    let at = |m: &marked_yaml::Marker| Pos {
        line: m.line(),
        column: m.column(),
    };
    match err {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => src
            .diagnostic(
                at(&m),
                "the configuration must be a mapping of sections, like `clickhouse:` or `ui:`"
                    .into(),
                Some("start each section name at the beginning of a line, followed by `:`".into()),
            ),
        LoadError::UnexpectedAnchor(m) => src.diagnostic_with_width(
            at(&m),
            1,
            "YAML anchors (`&name`) are not supported in Aurora's configuration".into(),
            Some("repeat the value instead of anchoring it".into()),
        ),
        LoadError::UnexpectedTag(m) => src.diagnostic(
            at(&m),
            "YAML tags (`!!str`, `!name`) are not supported in Aurora's configuration".into(),
            Some("remove the tag; quote the value if it must be a string".into()),
        ),
        LoadError::MappingKeyMustBeScalar(m) => src.diagnostic_with_width(
            at(&m),
            1,
            "keys must be plain names, not lists or mappings".into(),
            None,
        ),
        LoadError::DuplicateKey(inner) => {
            // Only reachable in strict mode, which `duplicate_keys` handles itself.
            src.diagnostic(
                scalar_pos(&inner.key),
                format!("duplicate key `{}`", inner.key.as_str()),
                None,
            )
        }
        LoadError::ScanError(m, e) => scan_error(src, at(&m), e.info()),
    }
}

fn scan_error(src: &SourceFile, at: Pos, info: &str) -> Diagnostic {
    // The scanner notices a tab only at the token after it, sometimes on the line before,
    // so look for the tab itself.
    for line in [at.line, at.line + 1] {
        let Some(text) = src.line(line) else { continue };
        let indent: Vec<char> = text.chars().take_while(|c| c.is_whitespace()).collect();
        if let Some(i) = indent.iter().position(|c| *c == '\t') {
            return src.diagnostic_with_width(
                Pos {
                    line,
                    column: i + 1,
                },
                1,
                "tab character in indentation".into(),
                Some("YAML indentation must use spaces; replace the tab with spaces".into()),
            );
        }
    }
    let hint = if info.contains("quoted scalar") {
        Some("this quote is never closed; add the matching quote at the end of the value")
    } else if info.contains("did not find expected key") {
        Some("check the indentation: keys of the same mapping must start in the same column")
    } else if info.contains("mapping values are not allowed") {
        Some("a value cannot contain `: `; quote the value, or check this line's indentation")
    } else if info.contains("unknown anchor") {
        Some("YAML aliases (`*name`) are not supported; repeat the value instead")
    } else if info.contains("expected ',' or ']'") {
        Some("close the list with `]`")
    } else if info.contains("expected ',' or '}'") {
        Some("close the mapping with `}`")
    } else {
        None
    };
    // An error at the very end (an unclosed bracket) is placed after the last line; show
    // that line instead of nothing.
    let at = match src.lines.last() {
        Some(last) if at.line > src.lines.len() => Pos {
            line: src.lines.len(),
            column: last.chars().count() + 1,
        },
        _ => at,
    };
    // This one is reported at the `:` after the first key that fails to line up; the key
    // itself is what needs moving.
    let (at, width) = match src.line(at.line) {
        Some(text) if info.contains("did not find expected key") => {
            let key = Pos {
                line: at.line,
                column: text.chars().take_while(|c| c.is_whitespace()).count() + 1,
            };
            (key, src.token_width(key))
        }
        _ => (at, 1),
    };
    src.diagnostic_with_width(
        at,
        width,
        format!("invalid YAML: {info}"),
        hint.map(str::to_owned),
    )
}

/// A second `---` document would be silently ignored by the parser; say so instead.
pub(crate) fn extra_documents(src: &SourceFile) -> Option<Diagnostic> {
    let mut seen_content = false;
    for (i, line) in src.lines.iter().enumerate() {
        let is_marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if is_marker && seen_content {
            return Some(src.diagnostic_with_width(
                Pos {
                    line: i + 1,
                    column: 1,
                },
                3,
                "a second YAML document starts here; a config file holds exactly one".into(),
                Some("remove this `---` line and merge the two parts into one mapping".into()),
            ));
        }
        let trimmed = line.trim();
        if !is_marker && !trimmed.is_empty() && !trimmed.starts_with('#') && !line.starts_with('%')
        {
            seen_content = true;
        }
    }
    None
}

/// Every duplicate key, not just the first: the strict parser stops at one, so each found
/// duplicate is renamed in a scratch copy of the text and the parse retried.
pub(crate) fn duplicate_keys(src: &SourceFile, tree: &Node) -> Vec<Diagnostic> {
    const MAX_REPORTED: usize = 32;
    // Placeholder letters no config key plausibly uses; a rename must keep the text's length so
    // later positions stay true.
    const ALPHABET: &[char] = &[
        'ж', 'щ', 'ъ', 'ы', 'э', 'ю', 'я', 'ф', 'ц', 'ш', 'ч', 'й', 'ё', 'ђ', 'ћ', 'џ',
    ];
    let mut chars: Vec<char> = src.text().chars().collect();
    let mut diags = Vec::new();
    for round in 0..MAX_REPORTED {
        let text: String = chars.iter().collect();
        let Err(LoadError::DuplicateKey(inner)) = parse_yaml_with_options(0, text, options(true))
        else {
            break;
        };
        let first = scalar_pos(&inner.prev_key);
        let second = scalar_pos(&inner.key);
        let name = inner.key.as_str();
        let parent = path_at(tree, src, first);
        let parent = &parent[..parent.len().saturating_sub(1)];
        let place = if parent.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in `{}`", DisplayPath(parent))
        };
        diags.push(src.diagnostic(
            second,
            format!("duplicate key `{name}` {place}"),
            Some(if first.line == second.line {
                format!("`{name}` is already set earlier on this line; keep only one of them")
            } else {
                format!(
                    "`{name}` is already set on line {}; keep only one of them",
                    first.line
                )
            }),
        ));

        let Some(start) = inner.key.span().start().map(|m| m.character()) else {
            break;
        };
        let key_chars: Vec<char> = name.chars().collect();
        let start = if matches!(chars.get(start), Some('"' | '\'')) {
            start + 1
        } else {
            start
        };
        let end = start + key_chars.len();
        if key_chars.is_empty() || chars.get(start..end) != Some(&key_chars[..]) {
            break;
        }
        let mut n = round;
        for c in &mut chars[start..end] {
            *c = ALPHABET[n % ALPHABET.len()];
            n /= ALPHABET.len();
        }
        if n > 0 {
            break;
        }
    }
    diags
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `clickhouse.tls.ca_file`, `pipelines[2].source`.
pub(crate) struct DisplayPath<'p>(pub &'p [Seg]);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The path of the innermost key or item at or before `at`: maps a position in a file back to
/// the setting it belongs to.
pub(crate) fn path_at(tree: &Node, src: &SourceFile, at: Pos) -> Vec<Seg> {
    let mut path = Vec::new();
    let mut node = tree;
    loop {
        let next = match node {
            Node::Mapping(map) => map
                .iter()
                .map(|(k, v)| (scalar_pos(k), Seg::Key(k.as_str().to_owned()), v))
                .filter(|(p, _, _)| *p <= at)
                .max_by_key(|(p, _, _)| *p),
            Node::Sequence(seq) => seq
                .iter()
                .enumerate()
                .map(|(i, v)| (src.node_pos(v), Seg::Index(i), v))
                .filter(|(p, _, _)| *p <= at)
                .max_by_key(|(p, _, _)| *p),
            Node::Scalar(_) => None,
        };
        let Some((_, seg, child)) = next else {
            return path;
        };
        path.push(seg);
        node = child;
    }
}

/// The key (for mapping entries) and value found at `path`.
pub(crate) fn lookup<'n>(
    tree: &'n Node,
    path: &[Seg],
) -> Option<(Option<&'n MarkedScalarNode>, &'n Node)> {
    let mut key = None;
    let mut node = tree;
    for seg in path {
        match (seg, node) {
            (Seg::Key(name), Node::Mapping(map)) => {
                let (k, v) = map.iter().find(|(k, _)| k.as_str() == name)?;
                key = Some(k);
                node = v;
            }
            (Seg::Index(i), Node::Sequence(seq)) => {
                key = None;
                node = seq.get(*i)?;
            }
            _ => return None,
        }
    }
    Some((key, node))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn first_problem(text: &str) -> Diagnostic {
        match parse(&SourceFile::new("t.yaml", text)) {
            Ok(_) => panic!("{text:?} parsed"),
            Err(d) => *d,
        }
    }

    #[test]
    fn tabs_are_pointed_at_even_when_the_scanner_trips_a_line_early() {
        let d = first_problem("a:\n  b: 1\n\tc: 2\n");
        assert_eq!(
            (d.line, d.column, d.message.as_str()),
            (3, 1, "tab character in indentation")
        );
        let d = first_problem("a:\n\tb: 1\n");
        assert_eq!((d.line, d.column), (2, 1));
    }

    #[test]
    fn widths_cover_the_token() {
        let src = SourceFile::new(
            "t",
            "a: \"x\\\"y\" # c\nb: 'it''s'\nc: [1, [2]]\nd: plain text # c\n  - item: x\ne: {f: g, h: i}\n",
        );
        let w = |line, column| src.token_width(Pos { line, column });
        assert_eq!(w(1, 4), 6);
        assert_eq!(w(2, 4), 7);
        assert_eq!(w(3, 4), 8);
        assert_eq!(w(4, 1), 1);
        assert_eq!(w(4, 4), 10);
        assert_eq!(w(5, 3), 9);
        assert_eq!(w(6, 5), 1);
        assert_eq!(w(6, 8), 1);
    }

    #[test]
    fn all_duplicates_are_found_with_their_section() {
        let text = "ui:\n  theme: dark\n  theme: light\nkafka:\n  client_id: a\n  client_id: b\n  client_id: c\n";
        let src = SourceFile::new("t", text);
        let tree = parse(&src).unwrap();
        let found: Vec<_> = duplicate_keys(&src, &tree)
            .into_iter()
            .map(|d| (d.line, d.column, d.message))
            .collect();
        assert_eq!(
            found,
            [
                (3, 3, "duplicate key `theme` in `ui`".to_string()),
                (6, 3, "duplicate key `client_id` in `kafka`".to_string()),
                (7, 3, "duplicate key `client_id` in `kafka`".to_string()),
            ]
        );
    }

    #[test]
    fn second_document_is_reported() {
        let src = SourceFile::new("t", "---\n# c\na: 1\n---\nb: 2\n");
        assert_eq!(extra_documents(&src).map(|d| d.line), Some(4));
        assert!(extra_documents(&SourceFile::new("t", "---\na: 1\n")).is_none());
    }

    #[test]
    fn positions_map_back_to_paths() {
        let text = "clickhouse:\n  tls:\n    ca_file: x\npipelines:\n  - a.yaml\n  - name: b\n    source: c\n";
        let src = SourceFile::new("t", text);
        let tree = parse(&src).unwrap();
        let at =
            |line, column| DisplayPath(&path_at(&tree, &src, Pos { line, column })).to_string();
        assert_eq!(at(3, 14), "clickhouse.tls.ca_file");
        assert_eq!(at(5, 5), "pipelines[0]");
        assert_eq!(at(7, 13), "pipelines[1].source");
        let path = path_at(&tree, &src, Pos { line: 7, column: 5 });
        let (key, value) = lookup(&tree, &path).unwrap();
        assert_eq!(key.map(|k| k.as_str()), Some("source"));
        assert_eq!(value.as_scalar().map(|s| s.as_str()), Some("c"));
    }
}
