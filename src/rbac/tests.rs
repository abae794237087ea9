use super::*;
use crate::config::{RbacConfig, RoleBinding, RoleConfig};

fn actor(user: &str, groups: &[&str]) -> Actor {
    Actor {
        user: user.into(),
        uid: None,
        via: "os".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn rules() -> RbacConfig {
    let yaml = r#"
roles:
  viewer:
    actions: [dashboard.view, pipeline.view]
    databases: [shop]
  analyst:
    inherits: [viewer]
    actions: [query, ask, export]
    tables: [web.events]
    hide_columns: [shop.customers.email]
    row_filters: {shop.orders: "country = 'DE'"}
  auditor:
    actions: [query]
    tables: [shop.orders, shop.customers]
  admin:
    actions: ["*"]
    databases: ["*"]
bindings:
  - {user: alice, roles: [analyst]}
  - {group: ops, roles: [admin]}
  - {user: carol, roles: [analyst, auditor]}
default_role: viewer
"#;
    serde_yaml::from_str(yaml).unwrap()
}

fn access(user: &str, groups: &[&str]) -> Access {
    Policy::compile(&rules())
        .unwrap()
        .access_for(&actor(user, groups))
}

#[test]
fn bindings_defaults_and_inheritance_decide_actions() {
    let alice = access("alice", &[]);
    assert!(alice.allow("query", "").is_ok());
    assert!(
        alice.allow("dashboard.view", "").is_ok(),
        "inherited from viewer"
    );
    let denied = alice.allow("pipeline.control", "orders").unwrap_err();
    assert!(
        denied.reason.contains("analyst, viewer") || denied.reason.contains("analyst"),
        "{denied}"
    );
    assert!(denied.reason.contains("rbac.bindings[0]"), "{denied}");

    let bob = access("bob", &[]);
    assert_eq!(bob.source, Source::Default);
    assert!(bob
        .allow("query", "")
        .unwrap_err()
        .reason
        .contains("rbac.default_role"));

    let ops = access("dave", &["wheel", "ops"]);
    assert!(ops.allow("config", "").is_ok());
    assert!(ops.reads_everything());

    let off = Policy::compile(&RbacConfig::default())
        .unwrap()
        .access_for(&actor("x", &[]));
    assert!(off.allow("config", "").is_ok());
    assert!(!off.enabled());

    let mut nothing = rules();
    nothing.default_role = None;
    let nobody = Policy::compile(&nothing)
        .unwrap()
        .access_for(&actor("eve", &[]));
    assert_eq!(nobody.source, Source::Nothing);
    assert!(nobody.allow("dashboard.view", "").is_err());
}

#[test]
fn action_families_match_their_members_only() {
    assert!(action_matches("dashboard.*", "dashboard.deploy"));
    assert!(action_matches("*", "query.write"));
    assert!(!action_matches("query", "query.write"));
    assert!(!action_matches("dash.*", "dashboard.view"));
}

#[test]
fn grants_add_up_across_roles_and_restrictions_only_where_all_agree() {
    let alice = access("alice", &[]);
    let customers = alice.table("shop", "customers").unwrap();
    assert!(customers.hidden.contains("email"));
    assert_eq!(
        alice.table("shop", "orders").unwrap().filter.as_deref(),
        Some("(country = 'DE')")
    );
    let denied = alice.table("billing", "invoices").unwrap_err();
    assert!(denied.reason.contains("billing.invoices"), "{denied}");

    // carol is also an auditor, who reads both tables unhidden and unfiltered.
    let carol = access("carol", &[]);
    assert!(carol.table("shop", "customers").unwrap().hidden.is_empty());
    assert_eq!(carol.table("shop", "orders").unwrap().filter, None);
}

#[test]
fn every_problem_in_the_rules_is_reported() {
    let mut bad = rules();
    bad.roles
        .get_mut("viewer")
        .unwrap()
        .actions
        .push("dashboards.view".into());
    bad.roles
        .get_mut("viewer")
        .unwrap()
        .inherits
        .push("analyst".into());
    bad.roles
        .get_mut("admin")
        .unwrap()
        .tables
        .push("orders".into());
    bad.roles
        .get_mut("admin")
        .unwrap()
        .hide_columns
        .push("shop.orders".into());
    bad.roles
        .get_mut("admin")
        .unwrap()
        .row_filters
        .insert("shop.orders".into(), "1) OR (1".into());
    bad.bindings.push(RoleBinding {
        user: Some("x".into()),
        group: Some("y".into()),
        roles: vec!["ghost".into()],
    });
    bad.default_role = Some("nobody".into());
    bad.roles.insert("empty".into(), RoleConfig::default());
    let problems = Policy::compile(&bad).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
    for needle in [
        "unknown action `dashboards.view`",
        "circle",
        "`orders` is not `database.table`",
        "`shop.orders` is not `database.table.column`",
        "row filter on `shop.orders`",
        "either a `user` or a `group`",
        "no role `ghost`",
        "no role `nobody`",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "{needle} missing from {text:#?}"
        );
    }
}

#[test]
fn queries_outside_the_roles_are_denied_with_the_rule() {
    let alice = access("alice", &[]);
    let ok = |sql: &str| sql::authorize(&alice, sql, "shop").unwrap();
    let no = |sql: &str| sql::authorize(&alice, sql, "shop").unwrap_err().reason;

    assert_eq!(
        ok("SELECT name FROM customers"),
        "SELECT name FROM customers"
    );
    assert_eq!(
        ok("SELECT count() FROM web.events"),
        "SELECT count() FROM web.events"
    );
    assert!(no("SELECT email FROM shop.customers").contains("rbac.roles.analyst.hide_columns"));
    assert!(no("SELECT c.email FROM customers c").contains("shop.customers.email"));
    assert!(no("SELECT * FROM customers").contains("name the columns"));
    assert!(no("SELECT sum(x) FROM billing.invoices").contains("billing.invoices"));
    assert!(no("SELECT 1 FROM url('http://x', CSV, 'a int')").contains("table function"));
    assert!(no("SELECT dictGet('d', 'a', 1)").contains("dictget"));
    assert!(no("SELEC garbage").contains("cannot read"));
    assert!(no("SHOW TABLES").contains("aurora schema"));
    assert!(no("INSERT INTO shop.orders VALUES (1)").contains("query.write"));
    assert_eq!(
        ok("SELECT number FROM numbers(3)"),
        "SELECT number FROM numbers(3)"
    );
    assert_eq!(
        ok("WITH o AS (SELECT 1 AS x) SELECT x FROM o"),
        "WITH o AS (SELECT 1 AS x) SELECT x FROM o"
    );

    let admin = access("root", &["ops"]);
    assert_eq!(
        sql::authorize(&admin, "SHOW TABLES", "shop").unwrap(),
        "SHOW TABLES"
    );
    assert_eq!(
        sql::authorize(&admin, "SELEC x", "shop").unwrap(),
        "SELEC x"
    );
}

#[test]
fn row_filters_wrap_the_table_where_it_is_written() {
    let alice = access("alice", &[]);
    let sql = "SELECT o.id, c.name\nFROM shop.orders AS o\n  JOIN customers c ON c.id = o.customer\nWHERE o.total > 5";
    assert_eq!(
        sql::authorize(&alice, sql, "shop").unwrap(),
        "SELECT o.id, c.name\nFROM (SELECT * FROM shop.orders WHERE (country = 'DE')) AS o\n  JOIN customers c ON c.id = o.customer\nWHERE o.total > 5"
    );
    assert_eq!(
        sql::authorize(&alice, "SELECT count() FROM orders WHERE total > 1", "shop").unwrap(),
        "SELECT count() FROM (SELECT * FROM orders WHERE (country = 'DE')) AS orders WHERE total > 1"
    );
    // Every occurrence, subqueries included; text before a multi-byte character stays put.
    assert_eq!(
        sql::authorize(&alice, "SELECT 'é', (SELECT max(id) FROM orders) FROM orders", "shop").unwrap(),
        "SELECT 'é', (SELECT max(id) FROM (SELECT * FROM orders WHERE (country = 'DE')) AS orders) FROM (SELECT * FROM orders WHERE (country = 'DE')) AS orders"
    );
}

#[test]
fn the_visible_schema_leaves_out_tables_and_hidden_columns() {
    use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
    let table = |db: &str, name: &str, cols: &[&str]| TableInfo {
        database: db.into(),
        name: name.into(),
        columns: cols
            .iter()
            .map(|c| ColumnInfo {
                name: c.to_string(),
                ..ColumnInfo::default()
            })
            .collect(),
        ..TableInfo::default()
    };
    let schema = Schema {
        databases: vec!["billing".into(), "shop".into()],
        tables: vec![
            table("shop", "customers", &["id", "name", "email"]),
            table("billing", "invoices", &["id"]),
        ],
    };
    let seen = access("alice", &[]).visible_schema(&schema);
    assert_eq!(seen.databases, ["shop"]);
    assert_eq!(seen.tables.len(), 1);
    let names: Vec<&str> = seen.tables[0]
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["id", "name"]);
}

#[test]
fn row_filter_conditions_must_be_one_expression() {
    assert!(sql::check_condition("country = 'DE' AND total > 0").is_ok());
    assert!(sql::check_condition("1) OR (1").is_err());
    assert!(sql::check_condition("1; DROP TABLE x").is_err());
}

#[test]
fn users_xml_opens_each_role_its_databases_and_names_what_the_server_cannot_enforce() {
    let policy = Policy::compile(&rules()).unwrap();
    let schema = crate::warehouse::schema::Schema::default();
    let options = render::UsersXml {
        password_sha256: Some("ab".repeat(32)),
        networks: Vec::new(),
    };
    let xml = render::users_xml(&policy, &schema, &options);
    let analyst = xml.text.split("<aurora_analyst>").nth(1).unwrap();
    let analyst = analyst.split("</aurora_analyst>").next().unwrap();
    assert!(analyst.contains("<database>shop</database>"), "{analyst}");
    assert!(analyst.contains("<database>web</database>"), "{analyst}");
    assert!(
        analyst.contains("<profile>aurora_readonly</profile>"),
        "{analyst}"
    );
    assert!(analyst.contains(&"ab".repeat(32)));
    let admin = xml.text.split("<aurora_admin>").nth(1).unwrap();
    let admin = admin.split("</aurora_admin>").next().unwrap();
    assert!(
        !admin.contains("allow_databases"),
        "admin reads every database: {admin}"
    );
    assert!(
        admin.contains("<profile>default</profile>"),
        "admin may write: {admin}"
    );
    let notes = xml.notes.join("\n");
    assert!(notes.contains("web.events"), "{notes}");
    assert!(notes.contains("email of shop.customers"), "{notes}");
    assert!(notes.contains("country = 'DE'"), "{notes}");
    // The notes are XML comments, so the file stays well-formed.
    assert!(xml.text.contains("<!-- Not enforced by the server:"));
}

#[test]
fn sql_grants_scopes_revokes_hidden_columns_and_gives_every_reader_a_row_policy() {
    let policy = Policy::compile(&rules()).unwrap();
    let schema = crate::warehouse::schema::Schema::default();
    let sql = render::sql(&policy, &schema);
    let has = |s: &str| {
        assert!(
            sql.statements.iter().any(|x| x == s),
            "missing `{s}` in:\n{}",
            sql.text
        )
    };
    has("CREATE ROLE IF NOT EXISTS aurora_analyst");
    has("GRANT SELECT, SHOW TABLES, SHOW COLUMNS ON shop.* TO aurora_analyst");
    has("GRANT SELECT, SHOW TABLES, SHOW COLUMNS ON web.events TO aurora_analyst");
    has("REVOKE SELECT(email) ON shop.customers FROM aurora_analyst");
    has("CREATE ROW POLICY OR REPLACE aurora_analyst_shop_orders ON shop.orders FOR SELECT USING (country = 'DE') AS permissive TO aurora_analyst");
    // Other readers of the filtered table keep every row.
    has("CREATE ROW POLICY OR REPLACE aurora_auditor_shop_orders ON shop.orders FOR SELECT USING 1 AS permissive TO aurora_auditor");
    has("GRANT SELECT, SHOW TABLES, SHOW COLUMNS, INSERT ON *.* TO aurora_admin");
    let ending = sql.text.lines().filter(|l| l.ends_with(';')).count();
    assert_eq!(ending, sql.statements.len());
}

#[test]
fn the_ways_around_the_checks_found_in_review_are_closed() {
    let alice = access("alice", &[]);
    let no = |sql: &str| {
        sql::authorize(&alice, sql, "billing")
            .map(|run| format!("ran: {run}"))
            .unwrap_or_else(|d| d.reason)
    };
    // A CTE named like a table the user may not read does not hide it.
    assert!(
        no("SELECT * FROM invoices WHERE 1 IN (WITH invoices AS (SELECT 1 AS x) SELECT x FROM invoices)")
            .contains("rename it"),
    );
    // `x IN table` reads the table.
    let shop = |sql: &str| {
        sql::authorize(&alice, sql, "shop")
            .map(|run| format!("ran: {run}"))
            .unwrap_or_else(|d| d.reason)
    };
    assert!(
        shop("SELECT number FROM numbers(10) WHERE number IN billing.invoices")
            .contains("billing.invoices")
    );
    assert!(
        shop("SELECT number FROM numbers(10) WHERE number IN shop.orders")
            .contains("IN (SELECT column")
    );
    // Hidden columns read without naming them.
    for sql in [
        "SELECT COLUMNS('mail') FROM customers",
        "SELECT cityHash64(*) FROM customers",
        "SELECT e FROM customers ARRAY JOIN email AS e",
        "SELECT c.name FROM customers c JOIN customers d USING (email)",
        "SELECT email.domain FROM customers",
    ] {
        assert!(
            shop(sql).contains("shop.customers.email"),
            "{sql}: {}",
            shop(sql)
        );
    }
    assert!(shop("SELECT count(*) FROM customers").starts_with("ran:"));
    // Quoted or scalar readers.
    assert!(shop("SELECT `dictGet`('d', 'a', 1)").contains("dictget"));
    assert!(shop("SELECT file('x')").contains("`file`"));
    // Writes name their target too.
    let writer = Policy::compile(
        &serde_yaml::from_str(
            "roles:\n  w: {actions: [query, query.write], databases: [shop]}\ndefault_role: w\n",
        )
        .unwrap(),
    )
    .unwrap()
    .access_for(&actor("w", &[]));
    let w = |sql: &str| sql::authorize(&writer, sql, "shop").map_err(|d| d.reason);
    assert!(w("INSERT INTO billing.invoices SELECT 1")
        .unwrap_err()
        .contains("billing.invoices"));
    assert!(w("DROP TABLE billing.invoices")
        .unwrap_err()
        .contains("only INSERT"));
    assert!(w("INSERT INTO shop.orders SELECT 1").is_ok());
    // FINAL stays with the table the filter reads.
    assert_eq!(
        shop("SELECT id FROM orders FINAL"),
        "ran: SELECT id FROM (SELECT * FROM orders FINAL WHERE (country = 'DE')) AS orders"
    );
}
