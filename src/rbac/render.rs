//! The roles written for the server to enforce too: `users.xml` users for servers older than
//! 20.4 (which have no SQL access control), and `CREATE ROLE` / `GRANT` / row-policy SQL for
//! current ones. Each Aurora role becomes a ClickHouse user or role named `aurora_<role>`;
//! Aurora connects as the one of its user's role for the server's checks to apply.
//!
//! What a server cannot enforce is said, not dropped: every rendering carries notes naming the
//! rules only Aurora enforces there.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{Policy, Role};
use crate::warehouse::query::ident;
use crate::warehouse::schema::Schema;

/// The server-side name of an Aurora role.
pub fn server_name(role: &str) -> String {
    format!("aurora_{}", crate::warehouse::query::identifier_from(role))
}

/// A rendering and the rules the server will not enforce from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub notes: Vec<String>,
    /// The SQL statements of a SQL rendering, each without its `;`.
    pub statements: Vec<String>,
}

/// Options of a `users.xml` rendering.
#[derive(Debug, Clone, Default)]
pub struct UsersXml {
    /// SHA-256 (hex) of the password every rendered user gets; None: an empty password.
    pub password_sha256: Option<String>,
    /// Networks the users may connect from; empty: loopback only.
    pub networks: Vec<String>,
}

/// Databases a role reads in full, and databases it reads only some tables of.
fn database_scope(
    role: &Role,
    schema: &Schema,
) -> (bool, BTreeSet<String>, BTreeSet<(String, String)>) {
    let everything = role.grants.iter().any(|g| g.database == "*");
    let whole: BTreeSet<String> = role
        .grants
        .iter()
        .filter(|g| g.table == "*" && g.database != "*")
        .map(|g| g.database.clone())
        .collect();
    let mut some: BTreeSet<(String, String)> = BTreeSet::new();
    for g in role.grants.iter().filter(|g| g.table != "*") {
        if g.database == "*" {
            some.extend(
                schema
                    .tables
                    .iter()
                    .filter(|t| t.name == g.table)
                    .map(|t| (t.database.clone(), t.name.clone())),
            );
        } else if !whole.contains(&g.database) {
            some.insert((g.database.clone(), g.table.clone()));
        }
    }
    (everything, whole, some)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `users.xml` for a server before 20.4: per role a user with its databases
/// (`allow_databases`) and a read-only profile unless the role may write.
pub fn users_xml(policy: &Policy, schema: &Schema, options: &UsersXml) -> Rendered {
    let mut notes = Vec::new();
    let mut users = String::new();
    for role in policy.roles() {
        let name = server_name(&role.name);
        let (everything, whole, some) = database_scope(role, schema);
        let writes = role.allows("query.write");
        let _ = writeln!(users, "    <{name}>");
        match &options.password_sha256 {
            Some(hash) => {
                let _ = writeln!(
                    users,
                    "      <password_sha256_hex>{hash}</password_sha256_hex>"
                );
            }
            None => {
                let _ = writeln!(users, "      <password></password>");
            }
        }
        let _ = writeln!(users, "      <networks>");
        let networks = if options.networks.is_empty() {
            vec!["127.0.0.1".to_string(), "::1".to_string()]
        } else {
            options.networks.clone()
        };
        for n in &networks {
            let _ = writeln!(users, "        <ip>{}</ip>", xml_escape(n));
        }
        let _ = writeln!(users, "      </networks>");
        let profile = if writes { "default" } else { "aurora_readonly" };
        let _ = writeln!(users, "      <profile>{profile}</profile>");
        let _ = writeln!(users, "      <quota>default</quota>");
        if !everything {
            let databases: BTreeSet<&String> =
                whole.iter().chain(some.iter().map(|(d, _)| d)).collect();
            let _ = writeln!(users, "      <allow_databases>");
            for d in &databases {
                let _ = writeln!(users, "        <database>{}</database>", xml_escape(d));
            }
            // With no database at all the list must still hold one, or every database is open.
            if databases.is_empty() {
                let _ = writeln!(users, "        <database>aurora_no_database</database>");
            }
            let _ = writeln!(users, "      </allow_databases>");
        }
        let _ = writeln!(users, "    </{name}>");
        let partial: Vec<String> = some.iter().map(|(d, t)| format!("{d}.{t}")).collect();
        if !partial.is_empty() {
            notes.push(format!(
                "{name}: the server opens whole databases only, so it lets this user read every table of the databases of {} (Aurora limits it to those tables)",
                partial.join(", ")
            ));
        }
        for ((d, t), columns) in &role.hidden {
            notes.push(format!(
                "{name}: the server cannot hide columns, so it lets this user read {} of {d}.{t} (Aurora hides them)",
                columns.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        for ((d, t), conditions) in &role.filters {
            notes.push(format!(
                "{name}: this server has no row filters in users.xml, so it lets this user read every row of {d}.{t} (Aurora applies {})",
                conditions.join(" AND ")
            ));
        }
    }
    if policy.enabled() {
        notes.push(
            "every user can read the `system` database on this server (table names, query log)"
                .into(),
        );
        if options.password_sha256.is_none() {
            notes
                .push("the users have an empty password: render with --users-password-file".into());
        }
    }
    let mut text = String::new();
    let _ = writeln!(text, "<?xml version=\"1.0\"?>");
    let _ = writeln!(
        text,
        "<!-- Written by `aurora rbac render`: one user per Aurora role. Put it in the server's\n     users.d/ directory; the server reads it within seconds. -->"
    );
    for note in &notes {
        let _ = writeln!(
            text,
            "<!-- Not enforced by the server: {} -->",
            xml_escape(note).replace("--", "- -")
        );
    }
    let _ = writeln!(text, "<yandex>");
    let _ = writeln!(text, "  <profiles>");
    let _ = writeln!(text, "    <aurora_readonly>");
    let _ = writeln!(text, "      <readonly>2</readonly>");
    let _ = writeln!(text, "      <log_queries>1</log_queries>");
    let _ = writeln!(text, "    </aurora_readonly>");
    let _ = writeln!(text, "  </profiles>");
    let _ = writeln!(text, "  <users>");
    text.push_str(&users);
    let _ = writeln!(text, "  </users>");
    let _ = writeln!(text, "</yandex>");
    Rendered {
        text,
        notes,
        statements: Vec::new(),
    }
}

/// SQL for a server with access control (20.4 and later): per role a `CREATE ROLE`, its
/// grants (whole databases, tables, and column lists where columns are hidden) and a row
/// policy per table it reads that any role filters. Each statement ends with `;` on its own
/// line; running them again gives the same roles.
pub fn sql(policy: &Policy, schema: &Schema) -> Rendered {
    let mut out: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    // Tables some role filters: every role reading them gets a policy, an open one if none,
    // since a server may hide every row from a user a table's policies do not name.
    let filtered: BTreeSet<(String, String)> = policy
        .roles()
        .flat_map(|r| r.filters.keys().cloned())
        .collect();
    for role in policy.roles() {
        let name = ident(&server_name(&role.name));
        out.push(format!("CREATE ROLE IF NOT EXISTS {name}"));
        out.push(format!("REVOKE ALL ON *.* FROM {name}"));
        let (everything, whole, some) = database_scope(role, schema);
        let mut privileges = vec!["SELECT", "SHOW TABLES", "SHOW COLUMNS"];
        if role.allows("query.write") {
            privileges.push("INSERT");
        }
        let privileges = privileges.join(", ");
        let mut targets: Vec<String> = Vec::new();
        if everything {
            targets.push("*.*".into());
        }
        targets.extend(whole.iter().map(|d| format!("{}.*", ident(d))));
        targets.extend(
            some.iter()
                .map(|(d, t)| format!("{}.{}", ident(d), ident(t))),
        );
        for target in &targets {
            out.push(format!("GRANT {privileges} ON {target} TO {name}"));
        }
        for ((d, t), columns) in &role.hidden {
            if !role.reads(d, t) {
                continue;
            }
            let list: Vec<String> = columns.iter().map(|c| ident(c)).collect();
            out.push(format!(
                "REVOKE SELECT({}) ON {}.{} FROM {name}",
                list.join(", "),
                ident(d),
                ident(t)
            ));
        }
        for (d, t) in &filtered {
            if !role.reads(d, t) {
                continue;
            }
            let condition = match role.filters.get(&(d.clone(), t.clone())) {
                Some(c) if !c.is_empty() => c
                    .iter()
                    .map(|c| format!("({c})"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
                _ => "1".to_string(),
            };
            let policy_name = ident(&format!("{}_{d}_{t}", server_name(&role.name)));
            out.push(format!(
                "CREATE ROW POLICY OR REPLACE {policy_name} ON {}.{} FOR SELECT USING {condition} AS permissive TO {name}",
                ident(d),
                ident(t)
            ));
        }
    }
    if policy.enabled() {
        notes.push(
            "give each server user its role: `GRANT aurora_<role> TO <user>` (Aurora's bindings name Aurora's users, not the server's)"
                .into(),
        );
    }
    let mut text = String::from("-- Written by `aurora rbac render --format sql`; run with --apply, or as a user\n-- allowed to manage access.\n");
    for note in &notes {
        let _ = writeln!(text, "-- {note}");
    }
    for statement in &out {
        let _ = writeln!(text, "{statement};");
    }
    Rendered {
        text,
        notes,
        statements: out,
    }
}
