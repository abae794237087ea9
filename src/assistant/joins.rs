//! Join paths read from the schema itself, for a schema the assistant has never seen: which
//! columns of two tables hold the same key. The prompt lists them, so a small model joins on
//! the right columns instead of guessing, and the linker brings the tables on a path along.
//!
//! Found, in this order, by:
//! - **names**: the same key column in both tables (`carrier`, `playerID`), also once each
//!   table's column prefix is set aside (`o_custkey` = `c_custkey`, the warehouse habit of
//!   prefixing every column with its table's initials), or a column named after another
//!   table whose key is `id` (`customer_id` = `customers.id`). A shared column joins when it
//!   is named like a key (`id`, `*_id`, `*ID`, `*key`, `*code`) or is in both tables' sorting
//!   keys; `year` or `name` in two tables is not a join;
//! - **values**: a column whose sampled values are another table's single-column key, read
//!   from the server once per session: a text column of any name (`flights.dest` holds
//!   `airports.faa` codes), and a column of the key's own name that is in only one table's key
//!   (`flights.carrier` = `airlines.carrier`, where `cars.name` and `airports.name` share no
//!   values). Numbers only under the same name: small integers overlap any numeric key by
//!   chance;
//! - **the user's config** (`assistant.relationships`), for what neither can see.

use std::collections::{BTreeMap, BTreeSet};

use crate::warehouse::query::{ident, quote_ident};
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
use crate::warehouse::value::Value;
use crate::warehouse::{QueryOptions, Warehouse, WarehouseError};

use super::linking::{stem, user_tables};

/// How a relationship was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    SameName,
    TablePrefix,
    NamedAfterTable,
    Values,
    Declared,
}

/// Two tables and the column pairs that join them (`a.x = b.y AND ...`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Relationship {
    /// Qualified table names.
    pub left: String,
    pub right: String,
    /// `(left column, right column)` pairs, all of which make the join.
    pub columns: Vec<(String, String)>,
    pub found_by: FoundBy,
}

impl Relationship {
    pub fn joins(&self, a: &str, b: &str) -> bool {
        (self.left == a && self.right == b) || (self.left == b && self.right == a)
    }

    /// The join as the prompt shows it: `db.a.x = db.b.y AND db.a.u = db.b.v`.
    pub fn condition(&self) -> String {
        let name = |table: &str, column: &str| {
            let mut parts: Vec<String> = table.splitn(2, '.').map(ident).collect();
            parts.push(ident(column));
            parts.join(".")
        };
        self.columns
            .iter()
            .map(|(l, r)| format!("{} = {}", name(&self.left, l), name(&self.right, r)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// The relationships among a schema's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JoinGraph {
    pub relationships: Vec<Relationship>,
}

impl JoinGraph {
    /// The relationships involving `table`.
    pub fn of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a Relationship> {
        self.relationships
            .iter()
            .filter(move |r| r.left == table || r.right == table)
    }

    /// The tables one join away from `table`.
    pub fn neighbours(&self, table: &str) -> BTreeSet<String> {
        self.of(table)
            .map(|r| {
                if r.left == table {
                    r.right.clone()
                } else {
                    r.left.clone()
                }
            })
            .collect()
    }

    /// The tables on a shortest chain of joins from `from` to `to` (both included); `None`
    /// when there is no chain within `max_joins`.
    pub fn path(&self, from: &str, to: &str, max_joins: usize) -> Option<Vec<String>> {
        let mut previous: BTreeMap<String, String> = BTreeMap::new();
        let mut frontier = vec![from.to_string()];
        let mut seen: BTreeSet<String> = frontier.iter().cloned().collect();
        for _ in 0..max_joins {
            let mut next = Vec::new();
            for table in &frontier {
                for n in self.neighbours(table) {
                    if seen.insert(n.clone()) {
                        previous.insert(n.clone(), table.clone());
                        next.push(n);
                    }
                }
            }
            if seen.contains(to) {
                let mut chain = vec![to.to_string()];
                while let Some(p) = previous.get(chain.last().map(String::as_str).unwrap_or("")) {
                    chain.push(p.clone());
                }
                chain.reverse();
                return Some(chain);
            }
            frontier = next;
        }
        (from == to).then(|| vec![from.to_string()])
    }

    /// The tables connected to any of `tables` by a chain of joins (themselves included).
    pub fn connected(&self, tables: &[String]) -> BTreeSet<String> {
        let mut seen: BTreeSet<String> = tables.iter().cloned().collect();
        let mut frontier: Vec<String> = tables.to_vec();
        while let Some(table) = frontier.pop() {
            for n in self.neighbours(&table) {
                if seen.insert(n.clone()) {
                    frontier.push(n);
                }
            }
        }
        seen
    }

    fn add(&mut self, relationship: Relationship) {
        let (a, b) = (&relationship.left, &relationship.right);
        if a == b || self.relationships.iter().any(|r| r.joins(a, b)) {
            return;
        }
        self.relationships.push(relationship);
    }
}

/// The names of the columns in a table's sorting or primary key.
fn key_columns(table: &TableInfo) -> BTreeSet<&str> {
    table
        .columns
        .iter()
        .filter(|c| c.in_sorting_key || c.in_primary_key)
        .map(|c| c.name.as_str())
        .collect()
}

/// Whether the name says the column identifies something.
fn named_like_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "id"
        || lower == "code"
        || lower == "key"
        || name.ends_with("_id")
        || name.ends_with("Id")
        || name.ends_with("ID")
        || lower.ends_with("key")
        || lower.ends_with("_code")
}

/// The prefix every (or nearly every) column of the table starts with, such as `o_` for
/// TPC-H's `orders` (`o_orderkey`, `o_custkey`): 1 to 3 letters and an underscore.
pub(crate) fn column_prefix(table: &TableInfo) -> Option<String> {
    let prefix_of = |name: &str| -> Option<String> {
        let (head, rest) = name.split_once('_')?;
        (!rest.is_empty()
            && (1..=3).contains(&head.len())
            && head.chars().all(|c| c.is_ascii_lowercase()))
        .then(|| format!("{head}_"))
    };
    let first = prefix_of(&table.columns.first()?.name)?;
    let sharing = table
        .columns
        .iter()
        .filter(|c| c.name.starts_with(&first))
        .count();
    (table.columns.len() >= 2 && sharing * 5 >= table.columns.len() * 4).then_some(first)
}

/// A column's name without its table's prefix.
fn core_name<'a>(column: &'a ColumnInfo, prefix: Option<&str>) -> &'a str {
    prefix
        .and_then(|p| column.name.strip_prefix(p))
        .unwrap_or(&column.name)
}

/// Whether values of the two types can be compared in a join.
fn comparable(a: &ColumnInfo, b: &ColumnInfo) -> bool {
    match (a.data_type(), b.data_type()) {
        (Some(x), Some(y)) => {
            (x.is_integer() && y.is_integer())
                || (x.is_string_like() && y.is_string_like())
                || x.unwrap_wrappers() == y.unwrap_wrappers()
        }
        _ => a.type_name == b.type_name,
    }
}

/// Whether a temporal column could be part of a join (only when both keys hold it: the hour
/// of a weather observation and of a flight).
fn temporal(column: &ColumnInfo) -> bool {
    column.data_type().is_some_and(|t| t.is_temporal())
}

/// Relationships found from names alone (no server needed).
pub fn by_names(schema: &Schema) -> JoinGraph {
    let tables: Vec<&TableInfo> = user_tables(schema).collect();
    let mut graph = JoinGraph::default();
    for (i, a) in tables.iter().enumerate() {
        for b in &tables[i + 1..] {
            if let Some(r) = same_key(a, b) {
                graph.add(r);
            } else if let Some(r) = named_after(a, b).or_else(|| named_after(b, a)) {
                graph.add(r);
            }
        }
    }
    graph
}

/// The key columns two tables share by name (after each table's column prefix).
fn same_key(a: &TableInfo, b: &TableInfo) -> Option<Relationship> {
    let (pa, pb) = (column_prefix(a), column_prefix(b));
    let (ka, kb) = (key_columns(a), key_columns(b));
    let mut columns = Vec::new();
    for ca in &a.columns {
        let core = core_name(ca, pa.as_deref());
        // Each table's own `id` names its own rows: two `id`s are not a join.
        if core.eq_ignore_ascii_case("id") {
            continue;
        }
        let Some(cb) = b
            .columns
            .iter()
            .find(|cb| core_name(cb, pb.as_deref()) == core)
        else {
            continue;
        };
        // A plain name (`carrier`, `name`) in one table's key only is as likely an attribute
        // both tables describe (a car's name, an airport's name) as a key: values decide
        // that (`by_values`), not the name.
        let both_keys = ka.contains(ca.name.as_str()) && kb.contains(cb.name.as_str());
        let keyish = both_keys || (!temporal(ca) && !temporal(cb) && named_like_key(core));
        if keyish && comparable(ca, cb) {
            columns.push((ca.name.clone(), cb.name.clone()));
        }
    }
    // A time column alone joins nothing: it only narrows a key join (an hour of a place).
    let only_time = columns.iter().all(|(ca, _)| {
        a.columns
            .iter()
            .find(|c| &c.name == ca)
            .is_some_and(temporal)
    });
    if columns.is_empty() || only_time {
        return None;
    }
    let found_by = if columns.iter().any(|(x, y)| x != y) {
        FoundBy::TablePrefix
    } else {
        FoundBy::SameName
    };
    Some(Relationship {
        left: a.qualified_name(),
        right: b.qualified_name(),
        columns,
        found_by,
    })
}

/// `a.customer_id` (or `customerId`) = `b.id` when `b` is named `customer` or `customers`.
fn named_after(a: &TableInfo, b: &TableInfo) -> Option<Relationship> {
    let target = stem(&b.name.to_ascii_lowercase());
    let id = b
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("id"))?;
    let column = a.columns.iter().find(|c| {
        let lower = c.name.to_ascii_lowercase();
        let base = lower
            .strip_suffix("_id")
            .or_else(|| lower.strip_suffix("id"))
            .unwrap_or("");
        !base.is_empty() && stem(base) == target && comparable(c, id)
    })?;
    Some(Relationship {
        left: a.qualified_name(),
        right: b.qualified_name(),
        columns: vec![(column.name.clone(), id.name.clone())],
        found_by: FoundBy::NamedAfterTable,
    })
}

/// Most values of a key column read for the overlap test; a larger key is not tried.
const MAX_KEY_VALUES: usize = 50_000;
/// Distinct values of each candidate column compared with the keys (its most frequent ones:
/// `topK`, since 18.16 has no `groupUniqArray(N)`).
const SAMPLE_VALUES: usize = 200;

/// Adds the relationships that values show: a column of one table whose sampled values are
/// (at least 90% of them, and at least 3 distinct) the values of another table's
/// single-column key; any text column, numbers only under the key's own name.
pub async fn by_values(
    warehouse: &Warehouse,
    schema: &Schema,
    graph: &mut JoinGraph,
) -> Result<(), WarehouseError> {
    let tables: Vec<&TableInfo> = user_tables(schema).collect();
    let is_text = |c: &ColumnInfo| c.data_type().is_some_and(|t| t.is_string_like());
    let is_integer = |c: &ColumnInfo| c.data_type().is_some_and(|t| t.is_integer());
    // Keys: a table's only sorting-key column, when it is text or an integer.
    let mut keys: Vec<(&TableInfo, &ColumnInfo, BTreeSet<String>)> = Vec::new();
    for table in &tables {
        let key = key_columns(table);
        let [name] = key.iter().copied().collect::<Vec<_>>()[..] else {
            continue;
        };
        let Some(column) = table
            .columns
            .iter()
            .find(|c| c.name == name && (is_text(c) || is_integer(c)))
        else {
            continue;
        };
        let sql = format!(
            "SELECT DISTINCT toString({}) FROM {}.{} LIMIT {}",
            quote_ident(&column.name),
            quote_ident(&table.database),
            quote_ident(&table.name),
            MAX_KEY_VALUES + 1
        );
        let values = match warehouse.query(&sql, &QueryOptions::default()).await {
            Ok(result) => strings(result.rows.iter().filter_map(|r| r.first())),
            Err(WarehouseError::Server(e)) => {
                tracing::debug!("no key values of {}: {e}", table.qualified_name());
                continue;
            }
            Err(e) => return Err(e),
        };
        if (3..=MAX_KEY_VALUES).contains(&values.len()) {
            keys.push((table, column, values));
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    for table in &tables {
        let joined: BTreeSet<String> = graph.neighbours(&table.qualified_name());
        let own_key = key_columns(table);
        let prefix = column_prefix(table);
        // Whether `column` of this table may hold another table's `key`: any text for a text
        // key, an integer of the key's own name for an integer key.
        let may_hold = |key_table: &TableInfo, key: &ColumnInfo, column: &ColumnInfo| {
            key_table.qualified_name() != table.qualified_name()
                && if is_text(key) {
                    is_text(column)
                } else {
                    is_integer(column)
                        && core_name(key, column_prefix(key_table).as_deref())
                            == core_name(column, prefix.as_deref())
                }
        };
        let candidates: Vec<&ColumnInfo> = table
            .columns
            .iter()
            .filter(|c| !(own_key.len() == 1 && own_key.contains(c.name.as_str())))
            .filter(|c| keys.iter().any(|(t, k, _)| may_hold(t, k, c)))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let sql = super::linking::per_column_sample(
            table,
            &candidates,
            &format!("topK({SAMPLE_VALUES})"),
        );
        let row = match warehouse.query(&sql, &QueryOptions::default()).await {
            Ok(result) => result.rows.into_iter().next().unwrap_or_default(),
            Err(WarehouseError::Server(e)) => {
                tracing::debug!("no samples of {}: {e}", table.qualified_name());
                continue;
            }
            Err(e) => return Err(e),
        };
        for (column, value) in candidates.iter().zip(&row) {
            let Value::Array(items) = value else { continue };
            let sample = strings(items.iter());
            if sample.len() < 3 {
                continue;
            }
            for (key_table, key_column, key_values) in &keys {
                let name = key_table.qualified_name();
                if joined.contains(&name) || !may_hold(key_table, key_column, column) {
                    continue;
                }
                let shared = sample.intersection(key_values).count();
                if shared * 10 >= sample.len() * 9 {
                    graph.relationships.push(Relationship {
                        left: table.qualified_name(),
                        right: name,
                        columns: vec![(column.name.clone(), key_column.name.clone())],
                        found_by: FoundBy::Values,
                    });
                }
            }
        }
    }
    Ok(())
}

fn strings<'a>(values: impl Iterator<Item = &'a Value>) -> BTreeSet<String> {
    values
        .filter_map(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// A relationship the user declared (`assistant.relationships`), as `db.table.column`
/// pairs; `None` (with the reason) when a side names no column of the schema.
pub fn declared(schema: &Schema, from: &str, to: &str) -> Result<Relationship, String> {
    let find = |path: &str| -> Result<(String, String), String> {
        let (table, column) = path
            .rsplit_once('.')
            .ok_or_else(|| format!("`{path}` is not database.table.column"))?;
        let t = schema
            .table(table, "")
            .filter(|t| t.qualified_name() == table || !table.contains('.'))
            .ok_or_else(|| format!("`{path}`: there is no table `{table}`"))?;
        if !t.columns.iter().any(|c| c.name == column) {
            return Err(format!(
                "`{path}`: table {} has no column `{column}`",
                t.qualified_name()
            ));
        }
        Ok((t.qualified_name(), column.to_string()))
    };
    let (left, l) = find(from)?;
    let (right, r) = find(to)?;
    Ok(Relationship {
        left,
        right,
        columns: vec![(l, r)],
        found_by: FoundBy::Declared,
    })
}

impl JoinGraph {
    /// Puts a declared relationship first, in place of any found for the same tables.
    pub fn declare(&mut self, relationship: Relationship) {
        self.relationships
            .retain(|r| !r.joins(&relationship.left, &relationship.right));
        self.relationships.insert(0, relationship);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::assistant::linking::tests::column;

    pub(crate) fn table(db: &str, name: &str, key: &str, columns: &[(&str, &str)]) -> TableInfo {
        TableInfo {
            database: db.into(),
            name: name.into(),
            engine: "MergeTree".into(),
            partition_key: String::new(),
            sorting_key: key.into(),
            primary_key: key.into(),
            total_rows: 100,
            total_bytes: 1000,
            columns: columns
                .iter()
                .map(|(n, t)| {
                    let mut c = column(n, t, "");
                    c.in_sorting_key = key.split(", ").any(|k| k == *n);
                    c.in_primary_key = c.in_sorting_key;
                    c
                })
                .collect(),
        }
    }

    fn schema(tables: Vec<TableInfo>) -> Schema {
        Schema {
            databases: tables.iter().map(|t| t.database.clone()).collect(),
            tables,
        }
    }

    /// nycflights13 as `load-unseen` creates it (the columns that matter).
    pub(crate) fn flights() -> Schema {
        schema(vec![
            table(
                "flights",
                "airlines",
                "carrier",
                &[("carrier", "String"), ("name", "String")],
            ),
            table(
                "flights",
                "airports",
                "faa",
                &[("faa", "String"), ("name", "String"), ("alt", "Int32")],
            ),
            table(
                "flights",
                "planes",
                "tailnum",
                &[
                    ("tailnum", "String"),
                    ("year", "Nullable(UInt16)"),
                    ("seats", "UInt16"),
                ],
            ),
            table(
                "flights",
                "weather",
                "origin, time_hour",
                &[
                    ("origin", "LowCardinality(String)"),
                    ("year", "UInt16"),
                    ("hour", "UInt8"),
                    ("time_hour", "DateTime('America/New_York')"),
                ],
            ),
            table(
                "flights",
                "flights",
                "origin, time_hour",
                &[
                    ("year", "UInt16"),
                    ("hour", "UInt8"),
                    ("carrier", "LowCardinality(String)"),
                    ("tailnum", "Nullable(String)"),
                    ("origin", "LowCardinality(String)"),
                    ("dest", "LowCardinality(String)"),
                    ("time_hour", "DateTime('America/New_York')"),
                ],
            ),
        ])
    }

    fn pairs(graph: &JoinGraph) -> Vec<String> {
        let mut out: Vec<String> = graph
            .relationships
            .iter()
            .map(Relationship::condition)
            .collect();
        out.sort();
        out
    }

    #[test]
    fn names_join_keys_in_both_tables_and_leave_one_sided_plain_names_to_values() {
        let graph = by_names(&flights());
        // `origin, time_hour` is both tables' key; `carrier` and `tailnum` are plain names in
        // one table's key only, as `name` is in a table ordered by name: values decide those.
        assert_eq!(
            pairs(&graph),
            vec![
                "flights.weather.origin = flights.flights.origin AND flights.weather.time_hour = flights.flights.time_hour",
            ]
        );
        let cars = schema(vec![
            table(
                "vega",
                "cars",
                "name",
                &[("name", "String"), ("hp", "UInt16")],
            ),
            table(
                "vega",
                "airports",
                "iata",
                &[("iata", "String"), ("name", "String")],
            ),
        ]);
        assert_eq!(pairs(&by_names(&cars)), Vec::<String>::new());
        // A name that says it is a key joins from either side.
        let keyed = schema(vec![
            table("s", "stores", "store_id", &[("store_id", "UInt32")]),
            table(
                "s",
                "sales",
                "day",
                &[("day", "Date"), ("store_id", "UInt32")],
            ),
        ]);
        assert_eq!(
            pairs(&by_names(&keyed)),
            vec!["s.stores.store_id = s.sales.store_id"]
        );
    }

    /// TPC-H's customer, orders, nation and region as `load-unseen` creates them (the
    /// columns that matter).
    pub(crate) fn tpch() -> Schema {
        schema(vec![
            table(
                "tpch",
                "customer",
                "c_custkey",
                &[
                    ("c_custkey", "UInt32"),
                    ("c_name", "String"),
                    ("c_nationkey", "UInt8"),
                    ("c_comment", "String"),
                ],
            ),
            table(
                "tpch",
                "orders",
                "o_orderdate, o_orderkey",
                &[
                    ("o_orderkey", "UInt32"),
                    ("o_custkey", "UInt32"),
                    ("o_orderdate", "Date"),
                    ("o_comment", "String"),
                ],
            ),
            table(
                "tpch",
                "nation",
                "n_nationkey",
                &[
                    ("n_nationkey", "UInt8"),
                    ("n_name", "String"),
                    ("n_regionkey", "UInt8"),
                ],
            ),
            table(
                "tpch",
                "region",
                "r_regionkey",
                &[("r_regionkey", "UInt8"), ("r_name", "String")],
            ),
        ])
    }

    #[test]
    fn prefixed_columns_join_on_what_follows_the_prefix() {
        let s = tpch();
        let graph = by_names(&s);
        assert_eq!(
            pairs(&graph),
            vec![
                "tpch.customer.c_custkey = tpch.orders.o_custkey",
                "tpch.customer.c_nationkey = tpch.nation.n_nationkey",
                "tpch.nation.n_regionkey = tpch.region.r_regionkey",
            ]
        );
        assert_eq!(graph.relationships[0].found_by, FoundBy::TablePrefix);
        assert_eq!(
            graph.path("tpch.orders", "tpch.region", 3),
            Some(vec![
                "tpch.orders".to_string(),
                "tpch.customer".into(),
                "tpch.nation".into(),
                "tpch.region".into()
            ])
        );
        assert_eq!(graph.path("tpch.orders", "tpch.region", 2), None);
        assert_eq!(graph.connected(&["tpch.region".into()]).len(), 4);
    }

    #[test]
    fn a_column_named_after_a_table_joins_its_id() {
        let s = schema(vec![
            table(
                "shop",
                "customers",
                "id",
                &[("id", "UInt64"), ("name", "String")],
            ),
            table(
                "shop",
                "orders",
                "created_at",
                &[
                    ("id", "UInt64"),
                    ("customer_id", "UInt64"),
                    ("created_at", "DateTime"),
                ],
            ),
        ]);
        let graph = by_names(&s);
        // `id` is in both tables, but it is each table's own row id: the named column wins.
        assert_eq!(
            pairs(&graph),
            vec!["shop.orders.customer_id = shop.customers.id"]
        );
    }

    #[test]
    fn declared_relationships_name_real_columns() {
        let s = flights();
        let r = declared(&s, "flights.flights.dest", "flights.airports.faa").unwrap();
        assert_eq!(r.condition(), "flights.flights.dest = flights.airports.faa");
        let e = declared(&s, "flights.flights.destination", "flights.airports.faa").unwrap_err();
        assert!(e.contains("has no column `destination`"), "{e}");
        let mut graph = by_names(&s);
        graph.declare(r);
        assert_eq!(graph.relationships[0].found_by, FoundBy::Declared);
    }
}
