//! A GBNF grammar, made from the live schema, that the local model's answer must follow
//! (llama.cpp checks each token against it, see `llama::pick_token`). The answer continues
//! a forced `SELECT `, so the grammar describes the rest of one query:
//!
//! - no statement separator except one final `;`, so no second statement can follow;
//! - upper-case words only from a list of read-only SQL keywords and common function names,
//!   so `DROP`, `INSERT`, `SETTINGS`, `FORMAT`, `INTO OUTFILE` cannot be written in capitals;
//! - after an upper-case `FROM` or `JOIN`, only a table of the schema or a subquery;
//! - a name directly followed by `(` only when it is a function the server has (from
//!   `system.functions`, with aggregate combinators such as `countIf`) or another dialect's
//!   name the checks rewrite (`year(t)` → `toYear(t)`), so a made-up function is refused
//!   while it is written.
//!
//! It is lexical on purpose: a full SQL grammar makes every token check slow and rejects
//! valid ClickHouse the grammar's author did not foresee. Columns are not limited: a query
//! names its own aliases (`AS total` … `ORDER BY total`), which a grammar of tokens cannot
//! tell from a made-up column. What it cannot see (a lower-case `drop`, a column of the
//! wrong table) the validator and the read-only session refuse.

use std::collections::BTreeSet;

use super::validate::FOREIGN_FUNCTIONS;
use crate::warehouse::schema::TableInfo;

/// Upper-case words a read-only query may contain.
pub(super) const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "CROSS",
    "DAY",
    "DESC",
    "DISTINCT",
    "ELSE",
    "END",
    "FALSE",
    "FINAL",
    "FULL",
    "GLOBAL",
    "GROUP",
    "HAVING",
    "HOUR",
    "ILIKE",
    "IN",
    "INNER",
    "INTERVAL",
    "IS",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MINUTE",
    "MONTH",
    "NOT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PREWHERE",
    "QUARTER",
    "RIGHT",
    "SECOND",
    "SELECT",
    "SEMI",
    "THEN",
    "TOTALS",
    "TRUE",
    "UNION",
    "USING",
    "WEEK",
    "WHEN",
    "WHERE",
    "WITH",
    "YEAR",
    "FIRST",
    "LAST",
    "ROLLUP",
    "CUBE",
    "TIES",
    "FILL",
    "STEP",
    "TO",
    // Functions models like to write in capitals (ClickHouse accepts these case-insensitively).
    "AVG",
    "COALESCE",
    "COUNT",
    "IF",
    "IFNULL",
    "LOWER",
    "MAX",
    "MIN",
    "NOW",
    "NULLIF",
    "ROUND",
    "SUM",
    "UPPER",
    "ABS",
    "LENGTH",
    "SUBSTRING",
    "TRIM",
    "EXTRACT",
    "DATE",
    "TIMESTAMP",
];

/// Capitalised words a `(` may follow directly: functions written in capitals and operators
/// before a parenthesised list or subquery.
const CALL_KEYWORDS: &[&str] = &[
    "AND",
    "ARRAY",
    "AVG",
    "ABS",
    "CAST",
    "COALESCE",
    "COUNT",
    "DATE",
    "EXISTS",
    "EXTRACT",
    "IF",
    "IFNULL",
    "IN",
    "LENGTH",
    "LOWER",
    "MAX",
    "MIN",
    "NOT",
    "NOW",
    "NULLIF",
    "ON",
    "OR",
    "ROUND",
    "SUBSTRING",
    "SUM",
    "TIMESTAMP",
    "TRIM",
    "UPPER",
    "USING",
];

fn literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn alternatives<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let set: BTreeSet<&str> = items.into_iter().collect();
    set.into_iter().map(literal).collect::<Vec<_>>().join(" | ")
}

/// Suffixes ClickHouse adds to any aggregate function (`countIf`, `sumArray`, `uniqState`).
pub(super) const COMBINATORS: &[&str] = &[
    "If",
    "Array",
    "State",
    "Merge",
    "MergeState",
    "OrNull",
    "OrDefault",
    "Distinct",
    "ForEach",
    "Resample",
];

/// GBNF rules for a set of words, as a tree of shared prefixes (`rule ::= "to" (...)`), so
/// that matching one costs a step per letter instead of one per word. Returns the rules,
/// the first named `name`.
fn prefix_tree(name: &str, words: &BTreeSet<String>) -> String {
    // The rule for the words that continue `prefix`; `None` when only `prefix` itself does.
    fn node(prefix: &str, words: &[&str], name: &str, rules: &mut Vec<String>) -> Option<String> {
        let ends_here = words.contains(&prefix);
        let mut branches = Vec::new();
        let mut rest: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| w.len() > prefix.len())
            .collect();
        rest.sort_unstable();
        let mut i = 0;
        while i < rest.len() {
            let c = rest[i][prefix.len()..].chars().next().unwrap_or_default();
            let next = format!("{prefix}{c}");
            let group: Vec<&str> = rest[i..]
                .iter()
                .copied()
                .take_while(|w| w.starts_with(&next))
                .collect();
            i += group.len();
            // A run of single children is one literal.
            let mut longest = next.clone();
            while let Some(first) = group.first() {
                if group.contains(&longest.as_str()) || first.len() == longest.len() {
                    break;
                }
                let c = first[longest.len()..].chars().next().unwrap_or_default();
                let candidate = format!("{longest}{c}");
                if !group.iter().all(|w| w.starts_with(&candidate)) {
                    break;
                }
                longest = candidate;
            }
            let text = literal(&longest[prefix.len()..]);
            branches.push(match node(&longest, &group, name, rules) {
                Some(child) => format!("{text} {child}"),
                None => text,
            });
        }
        if branches.is_empty() {
            return None;
        }
        let rule = format!("{name}-{}", rules.len());
        let body = if ends_here {
            format!("({})?", branches.join(" | "))
        } else {
            branches.join(" | ")
        };
        rules.push(format!("{rule} ::= {body}"));
        Some(rule)
    }
    let sorted: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut rules = Vec::new();
    let top = node("", &sorted, name, &mut rules).unwrap_or_else(|| "\"(\"".to_string());
    rules.insert(0, format!("{name} ::= {top}"));
    rules.join("\n")
}

/// The grammar for a query over `tables` (usually the linked ones plus any the question
/// might join). `functions` are the server's (`system.functions`; case-insensitive ones
/// also in capitals); none leaves function names free.
pub fn for_tables<'a>(
    tables: impl IntoIterator<Item = &'a TableInfo>,
    functions: &[String],
) -> String {
    let tables: Vec<&TableInfo> = tables.into_iter().collect();
    let mut table_names: Vec<String> = Vec::new();
    let mut upper_names: Vec<String> = Vec::new();
    for t in &tables {
        table_names.push(t.qualified_name());
        // A bare name that is also a database's (`flights` in database `flights`) would let
        // `flights.airplanes` through as that table and then `.airplanes`.
        if !tables.iter().any(|o| o.database == t.name) {
            table_names.push(t.name.clone());
        }
        table_names.push(format!("`{}`.`{}`", t.database, t.name));
        for name in std::iter::once(&t.name)
            .chain(std::iter::once(&t.database))
            .chain(t.columns.iter().map(|c| &c.name))
        {
            // Names that start with a capital must be listed, or `word` would refuse them.
            if name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                upper_names.push(name.clone());
            }
        }
    }
    let table_alt = if table_names.is_empty() {
        "\"(\"".to_string()
    } else {
        alternatives(table_names.iter().map(String::as_str))
    };
    let upper_alt = alternatives(
        KEYWORDS
            .iter()
            .copied()
            .chain(upper_names.iter().map(String::as_str)),
    );
    // A name directly followed by `(` must be a function; any name may be followed by
    // anything else, or end the query.
    let (named, calls) = if functions.is_empty() {
        ("word".to_string(), String::new())
    } else {
        // Other dialects' names (`year(t)`) are let through: the checks rewrite them. Of the
        // keywords, only those a `(` may follow directly: `TO(` or `TOTALS(` is no call.
        let names: BTreeSet<String> = functions
            .iter()
            .cloned()
            .chain(CALL_KEYWORDS.iter().map(|k| k.to_string()))
            .chain(FOREIGN_FUNCTIONS.iter().map(|(name, _)| name.to_string()))
            .collect();
        (
            "call | word (space | after)".to_string(),
            format!(
                // At most two combinators (`uniqExactIf`, `sumArrayIf`): more is a model
                // stuck repeating itself (`ArrayResampleArrayResample…`).
                "call ::= function combinator? combinator? \"(\"\ncombinator ::= {}\nafter ::= [-),.*+/%<>=!:?\\[\\]{{}}|^&~]\n{}\n",
                alternatives(COMBINATORS.iter().copied()),
                prefix_tree("function", &names)
            ),
        )
    };
    let last_word = if functions.is_empty() { "" } else { " word?" };
    format!(
        r#"root ::= item*{last_word} (";" [ \t\n]*)?
item ::= from | {named} | number | string | quoted | punct | space
{calls}
from ::= ("FROM" | "JOIN") space+ (table | "(")
table ::= {table_alt}
word ::= lower | upper
lower ::= [a-z_] [a-zA-Z0-9_]*
upper ::= ({upper_alt}) [a-z0-9_]*
number ::= [0-9]+ ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
string ::= "'" ([^'\\] | "\\" [^\n] | "''")* "'"
quoted ::= "`" [^`\n]+ "`" | "\"" [^"\n]+ "\""
punct ::= [-(),.*+/%<>=!:?\[\]{{}}|^&~]
space ::= [ \t\n]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::linking::tests::fixture;

    #[test]
    fn lists_the_schema_tables_after_from() {
        let (schema, _) = fixture();
        let g = for_tables(&schema.tables, &[]);
        assert!(g.contains("\"demo.events\""), "{g}");
        assert!(g.contains("\"`vega`.`weather`\""), "{g}");
        assert!(!g.contains("\"DROP\""));
        assert!(!g.contains("\"SETTINGS\""));
    }

    #[test]
    fn function_names_are_a_tree_of_prefixes() {
        let names: BTreeSet<String> = ["to", "toDate", "toDateTime", "toYear", "sum"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            prefix_tree("f", &names),
            "f ::= f-2\n\
             f-0 ::= (\"Time\")?\n\
             f-1 ::= (\"Date\" f-0 | \"Year\")?\n\
             f-2 ::= \"sum\" | \"to\" f-1"
        );
        let (schema, _) = fixture();
        let g = for_tables(&schema.tables, &["count".to_string(), "COUNT".to_string()]);
        assert!(
            g.contains("call ::= function combinator? combinator? \"(\""),
            "{g}"
        );
        assert!(g.contains("function ::= function-"), "{g}");
        // Without a function list, names stay free.
        assert!(!for_tables(&schema.tables, &[]).contains("call"));
    }

    #[test]
    fn a_bare_table_name_that_is_a_database_is_left_out() {
        let schema = crate::assistant::joins::tests::flights();
        let g = for_tables(&schema.tables, &["count".to_string()]);
        let tables = g.lines().find(|l| l.starts_with("table ::=")).unwrap();
        assert!(tables.contains("\"flights.flights\""), "{tables}");
        assert!(tables.contains("\"planes\""), "{tables}");
        assert!(!tables.contains("\"flights\" |"), "{tables}");
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
