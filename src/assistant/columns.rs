//! Column-constrained decoding: while the local model writes a query, each name it writes
//! must be a column or table of the tables in the prompt, a function, a keyword or type, or
//! an alias the query declares. The GBNF grammar (`grammar`) cannot do this: a query names
//! its own aliases (`count() AS n … ORDER BY n`, `FROM orders o … o.o_custkey`), which only
//! something that reads the text so far can tell from a made-up column. So the check runs
//! beside the grammar, on the text of the answer plus a candidate token (`llama::pick_token`).
//!
//! What it allows without knowing:
//! - any name in the select list of a query whose `FROM` has not come yet: it may be an
//!   alias of a subquery that follows (`SELECT avg(n) FROM (SELECT count() AS n …)`); the
//!   validator checks those afterwards, as before;
//! - a name right after `AS`, after a table in `FROM`/`JOIN`, after `)` or `WITH`: a
//!   declaration, remembered as an alias from then on;
//! - a qualifier of up to three letters (`o.` in `SELECT o.x FROM orders o`), which may be an
//!   alias declared later; a lambda's parameter (`x -> …`); anything quoted.
//!
//! Everything else must be known; a name being written must be the start of a known one.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::grammar::{COMBINATORS, KEYWORDS};
use super::validate::FOREIGN_FUNCTIONS;
use crate::warehouse::schema::TableInfo;

/// Keywords the grammar leaves free in lower case, beyond its upper-case list.
const MORE_KEYWORDS: &[&str] = &[
    "anti",
    "asof",
    "current",
    "exists",
    "following",
    "inf",
    "local",
    "nan",
    "over",
    "partition",
    "preceding",
    "range",
    "row",
    "rows",
    "sample",
    "unbounded",
    "except",
    "intersect",
    "array",
    "join",
    "from",
    "left",
    "right",
];

/// Type names (`CAST(x AS Float64)`, `x::Decimal(10, 2)`, `Nullable(String)`).
const TYPES: &[&str] = &[
    "string",
    "fixedstring",
    "uuid",
    "bool",
    "boolean",
    "int8",
    "int16",
    "int32",
    "int64",
    "int128",
    "int256",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "uint128",
    "uint256",
    "float32",
    "float64",
    "decimal",
    "decimal32",
    "decimal64",
    "decimal128",
    "date",
    "date32",
    "datetime",
    "datetime64",
    "nullable",
    "lowcardinality",
    "array",
    "tuple",
    "map",
    "enum8",
    "enum16",
    "int",
    "integer",
    "bigint",
    "smallint",
    "tinyint",
    "float",
    "double",
    "real",
    "varchar",
    "char",
    "text",
    "numeric",
    "signed",
    "unsigned",
];

/// A qualifier this short may be an alias the query declares after using it.
const SHORT_ALIAS: usize = 3;

/// The names a query over some tables may use.
#[derive(Debug, Clone, Default)]
pub struct NameGuard {
    /// Columns, tables and databases, as written (ClickHouse names are case-sensitive).
    exact: BTreeSet<String>,
    /// Columns of the tables, for `alias.column`.
    columns: BTreeSet<String>,
    tables: BTreeSet<String>,
    databases: BTreeSet<String>,
    /// Keywords, types and functions, lower-cased (ClickHouse takes many in any case, and
    /// the validator rewrites the rest).
    folded: BTreeSet<String>,
    /// Whether the server's functions are known; without them a name before `(` is free.
    functions_known: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name,
    /// `...` or "...": whatever is inside is the user's business (and the validator's).
    Quoted,
    /// String and number literals, comments.
    Literal,
    Space,
    Punct(char),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

/// Splits partial SQL into tokens; an unfinished literal or comment runs to the end.
fn tokens(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let kind = if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
            {
                i += 1;
            }
            Kind::Name
        } else if c.is_ascii_digit() {
            // 12, 1.5, 1e-3, 0x1F: letters after a digit belong to the number.
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
                    || ((bytes[i] == b'-' || bytes[i] == b'+')
                        && matches!(bytes[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            Kind::Literal
        } else if c == b'\'' || c == b'`' || c == b'"' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if bytes[i] == c {
                    // A doubled quote stays inside.
                    if bytes.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            if c == b'\'' {
                Kind::Literal
            } else {
                Kind::Quoted
            }
        } else if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            Kind::Literal
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < bytes.len() && !(bytes[i - 1] == b'*' && bytes[i] == b'/' && i > start + 2) {
                i += 1;
            }
            i = (i + 1).min(bytes.len());
            Kind::Literal
        } else if c.is_ascii_whitespace() {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            Kind::Space
        } else {
            i += 1;
            Kind::Punct(c as char)
        };
        out.push(Token {
            kind,
            text: &sql[start..i.min(sql.len())],
        });
    }
    out
}

/// The calls in `sql` whose first argument is a plain name: (function, the name without
/// its qualifier), e.g. `toStartOfMonth(f.year)` → (`toStartOfMonth`, `year`).
pub(super) fn calls_on_names(sql: &str) -> Vec<(&str, &str)> {
    let significant: Vec<Token<'_>> = tokens(sql)
        .into_iter()
        .filter(|t| t.kind != Kind::Space)
        .collect();
    let mut out = Vec::new();
    for (i, window) in significant.windows(3).enumerate() {
        let [function, open, first] = window else {
            continue;
        };
        if function.kind != Kind::Name || open.kind != Kind::Punct('(') || first.kind != Kind::Name
        {
            continue;
        }
        // `alias.column`: the column is two tokens on.
        let rest = &significant[i + 3..];
        let name = match rest {
            [dot, column, ..] if dot.kind == Kind::Punct('.') && column.kind == Kind::Name => {
                column.text
            }
            _ => first.text,
        };
        out.push((function.text, name));
    }
    out
}

/// What the query around a token is doing, per level of parentheses.
#[derive(Debug, Clone, Copy, Default)]
struct Scope {
    /// The `FROM` of this level's query has come: names are checked from here on.
    from_seen: bool,
}

impl NameGuard {
    /// The guard for a query over `tables`, with the server's `functions` (none: names
    /// before `(` are left to the grammar and the validator).
    pub fn new<'a>(tables: impl IntoIterator<Item = &'a TableInfo>, functions: &[String]) -> Self {
        let mut guard = NameGuard {
            functions_known: !functions.is_empty(),
            ..NameGuard::default()
        };
        for t in tables {
            guard.tables.insert(t.name.clone());
            guard.databases.insert(t.database.clone());
            for c in &t.columns {
                guard.columns.insert(c.name.clone());
            }
        }
        guard.exact.extend(guard.columns.iter().cloned());
        guard.exact.extend(guard.tables.iter().cloned());
        guard.exact.extend(guard.databases.iter().cloned());
        let fold = |s: &str| s.to_ascii_lowercase();
        guard.folded.extend(KEYWORDS.iter().map(|k| fold(k)));
        guard.folded.extend(MORE_KEYWORDS.iter().map(|k| fold(k)));
        guard.folded.extend(TYPES.iter().map(|k| fold(k)));
        guard.folded.extend(functions.iter().map(|f| fold(f)));
        guard
            .folded
            .extend(FOREIGN_FUNCTIONS.iter().map(|(f, _)| fold(f)));
        guard
    }

    fn is_keyword(word: &str, keyword: &str) -> bool {
        word.eq_ignore_ascii_case(keyword)
    }

    fn is_function(&self, word: &str) -> bool {
        let folded = word.to_ascii_lowercase();
        if self.folded.contains(&folded) {
            return true;
        }
        // Up to two combinators: `uniqExactIf`, `sumArrayIf`.
        let mut stems = vec![word];
        for _ in 0..2 {
            let mut next = Vec::new();
            for stem in &stems {
                for c in COMBINATORS {
                    if let Some(base) = stem.strip_suffix(c) {
                        if !base.is_empty() && self.folded.contains(&base.to_ascii_lowercase()) {
                            return true;
                        }
                        next.push(base);
                    }
                }
            }
            stems = next;
        }
        false
    }

    /// A complete name in a plain position.
    fn known(&self, word: &str, aliases: &BTreeSet<String>) -> bool {
        self.exact.contains(word) || aliases.contains(word) || self.is_function(word)
    }

    /// Whether some allowed name starts with `prefix`.
    fn starts_known(&self, prefix: &str, aliases: &BTreeSet<String>) -> bool {
        let exact = |set: &BTreeSet<String>, p: &str| {
            set.range::<str, _>((Bound::Included(p), Bound::Unbounded))
                .next()
                .is_some_and(|w| w.starts_with(p))
        };
        exact(&self.exact, prefix)
            || exact(aliases, prefix)
            || exact(&self.folded, &prefix.to_ascii_lowercase())
            // A function with combinators (`countI` on the way to `countIf`).
            || self.is_function(prefix)
            || COMBINATORS.iter().any(|c| {
                (1..c.len()).any(|n| {
                    prefix
                        .strip_suffix(&c[..n])
                        .is_some_and(|base| !base.is_empty() && self.is_function(base))
                })
            })
    }

    /// Whether the answer so far (`sql`, from its `SELECT` on) uses only names it may;
    /// `finished` when nothing follows (the last name is then complete).
    pub fn allows(&self, sql: &str, finished: bool) -> bool {
        let tokens = tokens(sql);
        // Indices of the tokens that are not spaces.
        let significant: Vec<usize> = (0..tokens.len())
            .filter(|&i| tokens[i].kind != Kind::Space)
            .collect();
        let mut aliases: BTreeSet<String> = BTreeSet::new();
        let mut scopes = vec![Scope::default()];
        // Indices (into `significant`) of names that are a table after FROM/JOIN.
        let mut table_refs: BTreeSet<usize> = BTreeSet::new();
        for (pos, &i) in significant.iter().enumerate() {
            let token = tokens[i];
            let prev = pos.checked_sub(1).map(|p| tokens[significant[p]]);
            match token.kind {
                Kind::Punct('(') => {
                    let scope = *scopes.last().unwrap_or(&Scope::default());
                    scopes.push(scope);
                    continue;
                }
                Kind::Punct(')') => {
                    if scopes.len() > 1 {
                        scopes.pop();
                    }
                    continue;
                }
                Kind::Name | Kind::Quoted => {}
                _ => continue,
            }
            // Never empty: the outermost scope is not popped.
            let Some(scope) = scopes.last_mut() else {
                break;
            };
            let word = token.text;
            let adjacent_next = tokens.get(i + 1).copied();
            let next = significant.get(pos + 1).map(|&n| tokens[n]);
            let after_next = significant.get(pos + 2).map(|&n| tokens[n]);
            let prev_is =
                |k: &str| prev.is_some_and(|p| p.kind == Kind::Name && Self::is_keyword(p.text, k));
            let member = prev.is_some_and(|p| p.kind == Kind::Punct('.'))
                && tokens.get(i.wrapping_sub(1)).is_some_and(|p| p.text == ".");
            // A table reference: right after FROM/JOIN, after `db.` that follows one, or after
            // a comma of a FROM list.
            let is_table = self.tables.contains(word.trim_matches('`'))
                && (prev_is("FROM")
                    || prev_is("JOIN")
                    || (member && pos >= 2 && table_refs.contains(&(pos - 2)))
                    || (prev.is_some_and(|p| p.kind == Kind::Punct(',')) && scope.from_seen));
            let is_db = self.databases.contains(word.trim_matches('`'))
                && (prev_is("FROM") || prev_is("JOIN"))
                && next.is_some_and(|n| n.kind == Kind::Punct('.'));
            if is_table || is_db {
                table_refs.insert(pos);
            }
            if token.kind == Kind::Quoted {
                continue;
            }
            if Self::is_keyword(word, "SELECT") {
                scope.from_seen = false;
                continue;
            }
            if Self::is_keyword(word, "FROM") {
                scope.from_seen = true;
                continue;
            }
            // Still being written: the last token, nothing after it, not finished.
            let open = !finished && i + 1 == tokens.len();
            let declaration = prev_is("AS")
                || prev_is("WITH")
                || prev.is_some_and(|p| p.kind == Kind::Punct(')'))
                || (pos >= 1 && table_refs.contains(&(pos - 1)) && !is_table && !member)
                // `x::Float64`
                || prev.is_some_and(|p| p.kind == Kind::Punct(':'));
            if declaration {
                if !open && (!self.is_function(word) || prev_is("AS")) {
                    aliases.insert(word.to_string());
                }
                continue;
            }
            if !scope.from_seen {
                continue;
            }
            if open {
                if word.len() <= SHORT_ALIAS && !member {
                    continue;
                }
                if !self.starts_known(word, &aliases) {
                    return false;
                }
                continue;
            }
            // Complete, but what follows may not be known yet (`o` then ` ` then `.`?).
            let qualifier = adjacent_next.is_some_and(|n| n.kind == Kind::Punct('.'));
            if qualifier {
                if self.known(word, &aliases) || word.len() <= SHORT_ALIAS {
                    continue;
                }
                return false;
            }
            if next.is_some_and(|n| n.kind == Kind::Punct('(')) {
                // A call: the grammar decides which names may be called.
                if !self.functions_known || self.is_function(word) {
                    continue;
                }
                return false;
            }
            // `x -> …`: a lambda's parameter; `x -` with nothing after may become one.
            if next.is_some_and(|n| n.kind == Kind::Punct('-')) {
                match after_next {
                    Some(a) if a.kind == Kind::Punct('>') => {
                        aliases.insert(word.to_string());
                        continue;
                    }
                    None => continue,
                    Some(_) => {}
                }
            }
            if member {
                let columnish = self.columns.contains(word)
                    || self.tables.contains(word)
                    || aliases.contains(word);
                if columnish {
                    continue;
                }
                return false;
            }
            if self.known(word, &aliases) {
                continue;
            }
            // A short name followed only by spaces may still become a qualifier or lambda.
            if next.is_none() && !finished && word.len() <= SHORT_ALIAS {
                continue;
            }
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::linking::{self, tests::column};

    fn table(database: &str, name: &str, columns: &[&str]) -> TableInfo {
        let columns = columns.iter().map(|c| column(c, "String", "")).collect();
        linking::tests::table(database, name, columns)
    }

    fn guard() -> NameGuard {
        let functions: Vec<String> = ["count", "sum", "avg", "toYear", "uniqExact", "arrayMap"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        NameGuard::new(
            &[
                table(
                    "shop",
                    "orders",
                    &["o_orderkey", "o_custkey", "o_totalprice"],
                ),
                table("shop", "customer", &["c_custkey", "c_name"]),
            ],
            &functions,
        )
    }

    /// Every prefix of `sql` is allowed, and the whole of it once finished.
    fn takes(g: &NameGuard, sql: &str) -> bool {
        (1..=sql.len())
            .filter(|&n| sql.is_char_boundary(n))
            .all(|n| g.allows(&sql[..n], false))
            && g.allows(sql, true)
    }

    #[test]
    fn takes_columns_aliases_and_qualifiers_declared_later() {
        let g = guard();
        for sql in [
            "SELECT count() FROM shop.orders WHERE o_totalprice > 100",
            "SELECT c.c_name, sum(o.o_totalprice) AS total FROM shop.orders o JOIN shop.customer AS c ON o.o_custkey = c.c_custkey GROUP BY c.c_name ORDER BY total DESC LIMIT 5",
            "SELECT avg(n) FROM (SELECT o_custkey, count() AS n FROM shop.orders GROUP BY o_custkey)",
            "SELECT uniqExactIf(o_custkey, o_totalprice > 10) FROM orders",
            "SELECT toYear(o_orderdate) AS y FROM shop.orders WHERE y = 2020 AND o_custkey IN (SELECT c_custkey FROM shop.customer)",
            "SELECT CAST(o_totalprice AS Float64) FROM shop.orders ORDER BY o_totalprice DESC NULLS LAST",
            "SELECT count() FROM shop.orders WHERE o_custkey = 'it''s' -- a comment\n",
            "SELECT `weird name` FROM shop.orders WHERE `other` = 1",
            "SELECT count() FROM shop.orders WHERE arrayMap(x -> x, [o_custkey]) != []",
        ] {
            assert!(takes(&g, sql), "refused: {sql}");
        }
    }

    #[test]
    fn refuses_made_up_columns_once_the_tables_are_named() {
        let g = guard();
        for sql in [
            "SELECT count() FROM shop.orders WHERE total_price > 100",
            "SELECT count() FROM shop.orders o WHERE o.total > 100",
            "SELECT count() FROM shop.orders GROUP BY customer_name",
            "SELECT count() FROM shop.orders WHERE madeUp(o_custkey) = 1",
        ] {
            assert!(!takes(&g, sql), "taken: {sql}");
        }
        // Refused while it is written, not only at the end.
        assert!(!g.allows("SELECT count() FROM shop.orders WHERE total_p", false));
        assert!(g.allows("SELECT count() FROM shop.orders WHERE o_tot", false));
        // Before FROM the name may be a subquery's alias.
        assert!(g.allows("SELECT total_price", false));
    }

    #[test]
    fn a_short_name_may_still_become_a_qualifier() {
        let g = guard();
        assert!(g.allows("SELECT count() FROM shop.orders WHERE t", false));
        assert!(g.allows("SELECT count() FROM shop.orders WHERE t ", false));
        assert!(!g.allows("SELECT count() FROM shop.orders WHERE t = 1", false));
        assert!(!g.allows("SELECT count() FROM shop.orders WHERE t", true));
    }
}
