//! The context a follow-up question refines: the questions asked so far and the query that
//! answered the last one. The TUI keeps one in memory; `aurora ask --follow-up` keeps it in
//! a file in the data directory so that consecutive commands form one conversation.

use std::path::{Path, PathBuf};

use super::prompt::Turn;

/// Questions and accepted queries, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// The exchange a follow-up builds on.
    pub fn last(&self) -> Option<&Turn> {
        self.turns.last()
    }

    pub fn push(&mut self, question: &str, sql: &str) {
        self.turns.push(Turn {
            question: question.to_string(),
            sql: sql.to_string(),
        });
    }

    pub fn clear(&mut self) {
        self.turns.clear();
    }

    /// The questions so far, joined: what schema linking reads for a follow-up, so that
    /// "only JFK" keeps the tables of the question it refines.
    pub fn linking_text(&self, question: &str) -> String {
        let mut text: Vec<&str> = self.turns.iter().map(|t| t.question.as_str()).collect();
        text.push(question);
        text.join(" ")
    }

    /// Where `aurora ask` keeps it between commands.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "aurora")
            .map(|d| d.data_dir().join("conversation.json"))
    }

    /// A missing or unreadable file is an empty conversation: losing the context of a
    /// follow-up is not worth failing a question for.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        assert_eq!(Conversation::load(&path), Conversation::default());
        let mut c = Conversation::default();
        c.push("flights per day", "SELECT 1");
        c.push("only JFK", "SELECT 2");
        c.save(&path).unwrap();
        let loaded = Conversation::load(&path);
        assert_eq!(loaded.last().unwrap().sql, "SELECT 2");
        assert_eq!(
            loaded.linking_text("by week"),
            "flights per day only JFK by week"
        );
        let mut loaded = loaded;
        loaded.clear();
        assert!(loaded.last().is_none());
    }
}

/// Refinements with one mechanical meaning, made on the previous query itself instead of
/// asking the model (a small model tends to rewrite the whole query and lose what it was
/// asked to keep):
/// - "only mobile", "just DE and FR": the values the question names become `col = 'v'`
///   (or `col IN (...)`) conditions added to the `WHERE` of the outermost query;
/// - "top 10 instead", "10 instead of 5": a new `LIMIT` for a query that has one.
///
/// `values` are the `(column, value)` pairs schema linking found in the question. Returns
/// `None` when the question is not such a refinement or the query cannot be parsed.
pub fn refine_by_rule(
    previous_sql: &str,
    question: &str,
    values: &[(String, String)],
) -> Option<String> {
    use sqlparser::ast::{BinaryOperator, Expr, Ident, SetExpr, Statement, Value};
    use sqlparser::dialect::ClickHouseDialect;
    use sqlparser::parser::Parser;

    let lower = question.trim().to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let mut statements = Parser::parse_sql(&ClickHouseDialect {}, previous_sql).ok()?;
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return None;
    };
    let filter = matches!(words.first(), Some(&"only" | &"just"));
    if filter && !values.is_empty() {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return None;
        };
        // One condition per column: `col = v`, or `col IN (v1, v2)` for several values.
        let mut by_column: Vec<(&str, Vec<&str>)> = Vec::new();
        for (column, value) in values {
            match by_column.iter_mut().find(|(c, _)| c == column) {
                Some((_, vs)) if !vs.contains(&value.as_str()) => vs.push(value),
                Some(_) => {}
                None => by_column.push((column, vec![value])),
            }
        }
        for (column, vs) in by_column {
            let col = Expr::Identifier(Ident::new(column));
            let lit = |v: &str| Expr::value(Value::SingleQuotedString(v.to_string()));
            let condition = match vs.as_slice() {
                [one] => Expr::BinaryOp {
                    left: Box::new(col),
                    op: BinaryOperator::Eq,
                    right: Box::new(lit(one)),
                },
                many => Expr::In {
                    expr: Box::new(col),
                    target: sqlparser::ast::InTarget::List(many.iter().map(|v| lit(v)).collect()),
                    negated: false,
                    global: false,
                },
            };
            select.selection = Some(match select.selection.take() {
                Some(existing) => Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(existing))),
                    op: BinaryOperator::And,
                    right: Box::new(condition),
                },
                None => condition,
            });
        }
        return Some(statements[0].to_string());
    }
    // "top 10 instead", "show 10 instead of 5": a number, and the query already has a LIMIT.
    let number = words
        .iter()
        .find_map(|w| {
            w.trim_matches(|c: char| !c.is_ascii_digit())
                .parse::<u64>()
                .ok()
        })
        .filter(|_| lower.contains("instead") || words.first() == Some(&"top"))?;
    let sqlparser::ast::LimitClause::LimitOffset {
        limit: Some(limit), ..
    } = query.limit_clause.as_mut()?
    else {
        return None;
    };
    *limit = Expr::value(Value::Number(number.to_string(), false));
    Some(statements[0].to_string())
}

#[cfg(test)]
mod refine_tests {
    use super::refine_by_rule;

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_adds_conditions_and_keeps_the_rest() {
        let sql =
            "SELECT country, count() AS events FROM demo.events GROUP BY country ORDER BY country";
        assert_eq!(
            refine_by_rule(sql, "only mobile devices", &v(&[("device", "mobile")])).unwrap(),
            "SELECT country, count() AS events FROM demo.events WHERE device = 'mobile' GROUP BY country ORDER BY country"
        );
        let sql = "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY country";
        assert_eq!(
            refine_by_rule(sql, "just DE and FR", &v(&[("country", "DE"), ("country", "FR")])).unwrap(),
            "SELECT country, count() FROM demo.events WHERE (event_type = 'purchase') AND country IN ('DE', 'FR') GROUP BY country"
        );
        assert!(refine_by_rule(sql, "only mobile", &[]).is_none());
        assert!(refine_by_rule(sql, "by week instead", &v(&[("device", "mobile")])).is_none());
    }

    #[test]
    fn a_new_limit_replaces_the_old_one() {
        let sql = "SELECT country, sum(revenue) AS r FROM demo.events GROUP BY country ORDER BY r DESC LIMIT 5";
        assert_eq!(
            refine_by_rule(sql, "top 10 instead of 5", &[]).unwrap(),
            "SELECT country, sum(revenue) AS r FROM demo.events GROUP BY country ORDER BY r DESC LIMIT 10"
        );
        assert!(refine_by_rule("SELECT 1 FROM t", "top 10 instead", &[]).is_none());
    }
}
