//! Name completion for SQL as it is typed (harlequin's popup): the word at the cursor is
//! completed from the schema the assistant reads and the server's functions. After `FROM` or
//! `JOIN` come tables and databases; after `db.` that database's tables; after `alias.` or
//! `table.` that table's columns; elsewhere the columns of the tables the query names, then
//! functions, then keywords. Engine only: the workspace shows the list and inserts the choice.

use std::collections::{BTreeMap, BTreeSet};

use crate::warehouse::query::ident;
use crate::warehouse::schema::{Schema, TableInfo};

/// Most names offered at once.
pub const MAX_ITEMS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Column,
    Table,
    Database,
    Function,
    Keyword,
}

impl Kind {
    /// The short label the popup shows beside a name.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Column => "column",
            Kind::Table => "table",
            Kind::Database => "database",
            Kind::Function => "function",
            Kind::Keyword => "keyword",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What replaces the typed part of the word.
    pub text: String,
    pub kind: Kind,
    /// A column's type, a table's row count: shown dimmed.
    pub detail: String,
}

/// The names that complete the word at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub items: Vec<Item>,
    pub selected: usize,
    /// Characters before the cursor that the chosen name replaces (the word after its last
    /// dot).
    pub typed_chars: usize,
}

impl Completion {
    pub fn chosen(&self) -> Option<&Item> {
        self.items.get(self.selected)
    }

    /// Moves the selection by `step`, wrapping at both ends.
    pub fn step(&mut self, step: isize) {
        let n = self.items.len() as isize;
        if n > 0 {
            self.selected = (self.selected as isize + step).rem_euclid(n) as usize;
        }
    }
}

/// Upper-case words offered as keywords.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT JOIN",
    "INNER JOIN",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "IS NULL",
    "IS NOT NULL",
    "DISTINCT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "INTERVAL",
    "WITH",
    "UNION ALL",
    "DESC",
    "ASC",
    "FINAL",
    "SAMPLE",
    "ARRAY JOIN",
    "LIMIT BY",
];

/// Words after which a table name comes.
const TABLE_BEFORE: &[&str] = &["from", "join"];

/// The completion of the word that ends at byte `cursor` of `sql`; `None` when there is no
/// word being typed (or it is inside a string) or nothing completes it.
pub fn complete(
    schema: &Schema,
    functions: &[String],
    sql: &str,
    cursor: usize,
) -> Option<Completion> {
    let before = sql.get(..cursor)?;
    if in_string_or_comment(before) {
        return None;
    }
    let word_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_name_char(*c) || *c == '.')
        .last()
        .map_or(before.len(), |(i, _)| i);
    let word = &before[word_start..];
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (qualifier, typed) = match word.rsplit_once('.') {
        Some((q, t)) => (Some(q), t),
        None => (None, word),
    };
    if qualifier.is_none() && typed.is_empty() {
        return None;
    }
    let named = named_tables(schema, sql);
    let mut items: Vec<Item> = Vec::new();
    match qualifier {
        Some(q) => {
            let q = q.trim_matches('`');
            if schema.databases.iter().any(|d| d == q) {
                items.extend(
                    schema
                        .tables
                        .iter()
                        .filter(|t| t.database == q)
                        .map(table_item_short),
                );
            }
            if let Some(table) = named.get(q).copied().or_else(|| schema.table(q, "")) {
                items.extend(column_items(table));
            }
        }
        None => {
            let previous = previous_word(&before[..word_start]).to_ascii_lowercase();
            if TABLE_BEFORE.contains(&previous.as_str()) {
                items.extend(schema.tables.iter().map(table_item));
                items.extend(schema.databases.iter().map(|d| Item {
                    text: ident(d),
                    kind: Kind::Database,
                    detail: String::new(),
                }));
            } else {
                let mut seen = BTreeSet::new();
                for table in named.values() {
                    if seen.insert(table.qualified_name()) {
                        items.extend(column_items(table));
                    }
                }
                items.extend(functions.iter().map(|f| Item {
                    text: f.clone(),
                    kind: Kind::Function,
                    detail: String::new(),
                }));
                items.extend(KEYWORDS.iter().map(|k| Item {
                    text: (*k).to_string(),
                    kind: Kind::Keyword,
                    detail: String::new(),
                }));
                if named.is_empty() {
                    items.extend(schema.tables.iter().map(table_item));
                }
            }
        }
    }
    let typed_lower = typed.trim_start_matches('`').to_lowercase();
    let mut seen = BTreeSet::new();
    items.retain(|item| {
        let lower = item.text.trim_start_matches('`').to_lowercase();
        // A function the server takes in any case is listed once (`count`, not `COUNT`).
        let key = match item.kind {
            Kind::Function => lower.clone(),
            _ => item.text.clone(),
        };
        lower.starts_with(&typed_lower) && lower != typed_lower && seen.insert((item.kind, key))
    });
    // Columns, tables and databases first, then functions, then keywords; within a kind,
    // the names with the fewest letters left to type first.
    items.sort_by_key(|item| (item.kind, item.text.len(), item.text.to_lowercase()));
    items.truncate(MAX_ITEMS);
    (!items.is_empty()).then(|| Completion {
        items,
        selected: 0,
        typed_chars: typed.chars().count(),
    })
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '`'
}

/// Whether the end of `text` is inside a string literal or a comment.
fn in_string_or_comment(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '\'' => in_string = !in_string,
            // A line comment runs to the end of its line.
            '-' if !in_string && chars.peek() == Some(&'-') && !chars.any(|c| c == '\n') => {
                return true;
            }
            _ => {}
        }
    }
    in_string
}

/// The word before the whitespace that ends `text`.
fn previous_word(text: &str) -> &str {
    let trimmed = text.trim_end();
    let start = trimmed
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(trimmed.len(), |(i, _)| i);
    &trimmed[start..]
}

/// The tables the query names after `FROM`/`JOIN`, by every name the query may use for them:
/// `db.table`, `table` and an alias (`FROM demo.events AS e`, `FROM demo.events e`).
fn named_tables<'s>(schema: &'s Schema, sql: &str) -> BTreeMap<String, &'s TableInfo> {
    let tokens: Vec<&str> = sql
        .split(|c: char| !(is_name_char(c) || c == '.'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = BTreeMap::new();
    for (i, token) in tokens.iter().enumerate() {
        if !TABLE_BEFORE.contains(&token.to_ascii_lowercase().as_str()) {
            continue;
        }
        let Some(name) = tokens.get(i + 1) else {
            continue;
        };
        let name = name.replace('`', "");
        let Some(table) = schema.table(&name, "") else {
            continue;
        };
        out.insert(table.qualified_name(), table);
        out.insert(table.name.clone(), table);
        let mut next = i + 2;
        if tokens
            .get(next)
            .is_some_and(|t| t.eq_ignore_ascii_case("as"))
        {
            next += 1;
        }
        if let Some(alias) = tokens.get(next) {
            let lower = alias.to_ascii_lowercase();
            let keyword = KEYWORDS
                .iter()
                .any(|k| k.split(' ').next() == Some(&alias.to_ascii_uppercase()))
                || matches!(
                    lower.as_str(),
                    "left"
                        | "right"
                        | "inner"
                        | "full"
                        | "cross"
                        | "global"
                        | "any"
                        | "all"
                        | "prewhere"
                );
            if !keyword {
                out.insert(alias.replace('`', ""), table);
            }
        }
    }
    out
}

fn column_items(table: &TableInfo) -> impl Iterator<Item = Item> + '_ {
    table.columns.iter().map(|c| Item {
        text: ident(&c.name),
        kind: Kind::Column,
        detail: c.type_name.clone(),
    })
}

/// A table as `db.table`.
fn table_item(table: &TableInfo) -> Item {
    Item {
        text: format!("{}.{}", ident(&table.database), ident(&table.name)),
        kind: Kind::Table,
        detail: format!("{} rows", table.total_rows),
    }
}

/// A table by its name alone, after its database and a dot.
fn table_item_short(table: &TableInfo) -> Item {
    Item {
        text: ident(&table.name),
        ..table_item(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::linking::tests::fixture;

    /// The names offered with the cursor at `|` (or at the end).
    fn names(marked: &str) -> Vec<String> {
        let (schema, _) = fixture();
        let functions = vec![
            "count".to_string(),
            "COUNT".into(),
            "countIf".into(),
            "toStartOfHour".into(),
        ];
        let cursor = marked.find('|').unwrap_or(marked.len());
        let sql = marked.replacen('|', "", 1);
        complete(&schema, &functions, &sql, cursor)
            .map(|c| c.items.into_iter().map(|i| i.text).collect())
            .unwrap_or_default()
    }

    #[test]
    fn tables_after_from_and_join() {
        assert_eq!(
            names("SELECT count() FROM de"),
            ["demo.events", "demo.products", "demo"]
        );
        assert_eq!(names("SELECT * FROM demo.events JOIN demo.p"), ["products"]);
        assert_eq!(names("SELECT * FROM vega."), ["weather", "airports"]);
    }

    #[test]
    fn columns_of_the_named_tables_then_functions_then_keywords() {
        assert_eq!(
            names("SELECT co| FROM demo.events"),
            ["country", "count", "countIf"]
        );
        assert_eq!(names("SELECT e.rev| FROM demo.events AS e"), ["revenue"]);
        assert_eq!(names("SELECT w.te| FROM vega.weather w"), ["temp_max"]);
        assert_eq!(
            names("SELECT events.ev| FROM demo.events"),
            ["event_id", "event_time", "event_type"]
        );
        assert_eq!(
            names("SELECT count() FROM demo.events WH"),
            ["WHEN", "WHERE"]
        );
        // Columns of other tables are not offered once the query names its tables.
        assert!(!names("SELECT pr| FROM demo.events").contains(&"price".to_string()));
    }

    #[test]
    fn nothing_inside_strings_comments_numbers_or_an_empty_word() {
        assert!(names("SELECT * FROM demo.events WHERE country = 'co").is_empty());
        assert!(names("SELECT 1").is_empty());
        assert!(names("SELECT ").is_empty());
        assert!(names("-- co").is_empty());
        // A name typed in full is not offered again.
        assert!(names("SELECT country| FROM demo.events").is_empty());
    }

    #[test]
    fn the_cursor_decides_the_word_and_the_selection_wraps() {
        let (schema, _) = fixture();
        let sql = "SELECT rev FROM demo.events";
        let mut c = complete(&schema, &[], sql, "SELECT rev".len()).expect("a completion");
        assert_eq!(c.typed_chars, 3);
        assert_eq!(c.chosen().map(|i| i.text.as_str()), Some("revenue"));
        c.step(-1);
        assert_eq!(c.selected, c.items.len() - 1);
        c.step(1);
        assert_eq!(c.selected, 0);
    }
}
