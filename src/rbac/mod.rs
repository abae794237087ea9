//! Role-based access control: roles (actions, data scopes, inheritance) bound to users and
//! groups, resolved once per identity into an [`Access`] that every front end asks before it
//! acts. Queries are checked on their parsed form ([`sql`]); the assistant is shown only the
//! schema the access allows ([`Access::visible_schema`]); `render` writes the same roles for
//! the server to enforce.
//!
//! Semantics, in the order they are applied:
//! - a user's roles are those of every binding naming the user or one of the user's groups;
//!   with none, the default role; with no default, no role (everything is denied);
//! - a role inherits everything of its parents: actions, data, hidden columns, row filters;
//! - across a user's roles grants add up: an action or table any role allows is allowed; a
//!   column is hidden only if every role reading its table hides it; a table's rows are
//!   those any of those roles may see (their filters joined with OR).

pub mod render;
pub mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use crate::alerts::{Problem, Step};
use crate::audit::Actor;
use crate::config::RbacConfig;
use crate::warehouse::schema::Schema;

/// Every action an action pattern may name.
pub const ACTIONS: &[&str] = &[
    "query",
    "query.write",
    "ask",
    "export",
    "schema",
    "dashboard.view",
    "dashboard.edit",
    "dashboard.deploy",
    "pipeline.view",
    "pipeline.control",
    "alert.view",
    "config",
];

/// Why something was refused, in words that name the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied: {reason}")]
pub struct Denied {
    /// The action refused (`query`, `pipeline.control`, ...).
    pub action: String,
    /// What it was refused on (a table, a pipeline, a dashboard); may be empty.
    pub resource: String,
    pub reason: String,
}

/// A table the rules name: a database and a table, either of which may be `*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TablePattern {
    pub database: String,
    pub table: String,
}

impl TablePattern {
    fn matches(&self, database: &str, table: &str) -> bool {
        (self.database == "*" || self.database == database)
            && (self.table == "*" || self.table == table)
    }
}

impl std::fmt::Display for TablePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// A role with everything it inherits folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub actions: BTreeSet<String>,
    /// Databases and tables the role may read.
    pub grants: BTreeSet<TablePattern>,
    /// `(database, table)` to the columns hidden there.
    pub hidden: BTreeMap<(String, String), BTreeSet<String>>,
    /// `(database, table)` to conditions its rows must all meet.
    pub filters: BTreeMap<(String, String), Vec<String>>,
}

impl Role {
    pub fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|p| action_matches(p, action))
    }

    pub fn reads(&self, database: &str, table: &str) -> bool {
        self.grants.iter().any(|g| g.matches(database, table))
    }

    /// Reads every table with every column and row.
    fn reads_everything(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.database == "*" && g.table == "*")
            && self.hidden.is_empty()
            && self.filters.is_empty()
    }
}

fn action_matches(pattern: &str, action: &str) -> bool {
    pattern == "*"
        || pattern == action
        || pattern.strip_suffix(".*").is_some_and(|p| {
            action == p || action.strip_prefix(p).is_some_and(|r| r.starts_with('.'))
        })
}

/// The compiled rules: every role with its inheritance folded in, and the bindings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: BTreeMap<String, Role>,
    bindings: Vec<(Binding, Vec<String>)>,
    default_role: Option<String>,
}

#[derive(Debug, Clone)]
enum Binding {
    User(String),
    Group(String),
}

/// How a user came by their roles, for denials and `aurora rbac whoami`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// RBAC is off (no roles configured).
    Off,
    /// The bindings at these indexes of `rbac.bindings`.
    Bindings(Vec<usize>),
    /// No binding matched: `rbac.default_role`.
    Default,
    /// No binding matched and there is no default role.
    Nothing,
}

impl Policy {
    /// The rules of `config`, or every problem in them at its place in the file.
    pub fn compile(config: &RbacConfig) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let at = |path: &[&str]| -> Vec<Step> {
            std::iter::once("rbac")
                .chain(path.iter().copied())
                .map(|k| Step::Key(k.to_string()))
                .collect()
        };
        for (name, role) in &config.roles {
            let item = |list: &str, i: usize| {
                let mut path = at(&["roles", name, list]);
                path.push(Step::Index(i));
                path
            };
            for (i, action) in role.actions.iter().enumerate() {
                let known = action == "*"
                    || ACTIONS.contains(&action.as_str())
                    || action
                        .strip_suffix(".*")
                        .is_some_and(|p| ACTIONS.iter().any(|a| a.starts_with(&format!("{p}."))));
                if !known {
                    let path = item("actions", i);
                    problems.push(Problem {
                        path,
                        message: format!("role `{name}` names an unknown action `{action}`"),
                        hint: Some(format!(
                            "actions: {}, a family such as `dashboard.*`, or `*`",
                            ACTIONS.join(", ")
                        )),
                    });
                }
            }
            for (i, parent) in role.inherits.iter().enumerate() {
                if !config.roles.contains_key(parent) {
                    let path = item("inherits", i);
                    problems.push(unknown_role(path, parent, config));
                }
            }
            type Valid = fn(&str) -> bool;
            let lists: [(&str, &Vec<String>, Valid, &str, &str); 3] = [
                (
                    "databases",
                    &role.databases,
                    |d| !d.is_empty() && !d.contains('.'),
                    "is not a database name",
                    "tables go under `tables` as `database.table`",
                ),
                (
                    "tables",
                    &role.tables,
                    |t| parse_table(t).is_some(),
                    "is not `database.table`",
                    "write the database too, e.g. `shop.orders` or `shop.*`",
                ),
                (
                    "hide_columns",
                    &role.hide_columns,
                    |c| parse_column(c).is_some(),
                    "is not `database.table.column`",
                    "e.g. `shop.customers.email`",
                ),
            ];
            for (list, values, valid, what, hint) in lists {
                for (i, value) in values.iter().enumerate() {
                    if !valid(value) {
                        problems.push(Problem {
                            path: item(list, i),
                            message: format!("`{value}` {what}"),
                            hint: Some(hint.into()),
                        });
                    }
                }
            }
            for (t, condition) in &role.row_filters {
                let bad_table = parse_table(t)
                    .filter(|p| p.table != "*" && p.database != "*")
                    .is_none();
                let problem = if bad_table {
                    Some((
                        format!("`{t}` is not `database.table`"),
                        "a row filter applies to one table, e.g. `shop.orders`".to_string(),
                    ))
                } else {
                    sql::check_condition(condition).err().map(|e| {
                        (
                            format!("the row filter on `{t}` is not one condition: {e}"),
                            "write a boolean expression over the table's columns, e.g. `country = 'DE'`"
                                .to_string(),
                        )
                    })
                };
                if let Some((message, hint)) = problem {
                    problems.push(Problem {
                        path: at(&["roles", name, "row_filters", t]),
                        message,
                        hint: Some(hint),
                    });
                }
            }
        }
        for (i, binding) in config.bindings.iter().enumerate() {
            let path = vec![
                Step::Key("rbac".into()),
                Step::Key("bindings".into()),
                Step::Index(i),
            ];
            if binding.user.is_some() == binding.group.is_some() {
                problems.push(Problem {
                    path: path.clone(),
                    message: "a binding names either a `user` or a `group`".into(),
                    hint: Some(
                        "write `{user: alice, roles: [...]}` or `{group: ops, roles: [...]}`"
                            .into(),
                    ),
                });
            }
            for (j, role) in binding.roles.iter().enumerate() {
                if !config.roles.contains_key(role) {
                    let mut path = path.clone();
                    path.push(Step::Key("roles".into()));
                    path.push(Step::Index(j));
                    problems.push(unknown_role(path, role, config));
                }
            }
        }
        if let Some(role) = &config.default_role {
            if !config.roles.contains_key(role) {
                problems.push(unknown_role(at(&["default_role"]), role, config));
            }
        }
        let mut roles = BTreeMap::new();
        for name in config.roles.keys() {
            match fold(config, name, &mut Vec::new()) {
                Ok(role) => {
                    roles.insert(name.clone(), role);
                }
                Err(cycle) => problems.push(Problem {
                    path: at(&["roles", name, "inherits"]),
                    message: format!("roles inherit in a circle: {}", cycle.join(" → ")),
                    hint: Some("remove one of these `inherits`".into()),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let bindings = config
            .bindings
            .iter()
            .map(|b| {
                let who = match (&b.user, &b.group) {
                    (Some(u), _) => Binding::User(u.clone()),
                    (None, g) => Binding::Group(g.clone().unwrap_or_default()),
                };
                (who, b.roles.clone())
            })
            .collect();
        Ok(Policy {
            roles,
            bindings,
            default_role: config.default_role.clone(),
        })
    }

    pub fn enabled(&self) -> bool {
        !self.roles.is_empty()
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// What `actor` may do.
    pub fn access_for(&self, actor: &Actor) -> Access {
        if !self.enabled() {
            return Access {
                actor: actor.clone(),
                roles: Vec::new(),
                source: Source::Off,
            };
        }
        let mut names: Vec<String> = Vec::new();
        let mut matched = Vec::new();
        for (i, (who, roles)) in self.bindings.iter().enumerate() {
            let hit = match who {
                Binding::User(u) => *u == actor.user,
                Binding::Group(g) => actor.groups.contains(g),
            };
            if hit {
                matched.push(i);
                for r in roles {
                    if !names.contains(r) {
                        names.push(r.clone());
                    }
                }
            }
        }
        let source = if !matched.is_empty() {
            Source::Bindings(matched)
        } else if let Some(default) = &self.default_role {
            names.push(default.clone());
            Source::Default
        } else {
            Source::Nothing
        };
        Access {
            actor: actor.clone(),
            roles: names
                .iter()
                .filter_map(|n| self.roles.get(n).cloned())
                .collect(),
            source,
        }
    }
}

fn unknown_role(path: Vec<Step>, role: &str, config: &RbacConfig) -> Problem {
    let known: Vec<&str> = config.roles.keys().map(String::as_str).collect();
    Problem {
        path,
        message: format!("there is no role `{role}`"),
        hint: Some(if known.is_empty() {
            "define it under rbac.roles".into()
        } else {
            format!("the roles are: {}", known.join(", "))
        }),
    }
}

/// `name` with its parents folded in, or the circle of inheritance found on the way.
fn fold(config: &RbacConfig, name: &str, trail: &mut Vec<String>) -> Result<Role, Vec<String>> {
    if trail.iter().any(|t| t == name) {
        let mut cycle = trail.clone();
        cycle.push(name.to_string());
        return Err(cycle);
    }
    let Some(own) = config.roles.get(name) else {
        // Reported as an unknown role already.
        return Ok(Role {
            name: name.into(),
            actions: BTreeSet::new(),
            grants: BTreeSet::new(),
            hidden: BTreeMap::new(),
            filters: BTreeMap::new(),
        });
    };
    trail.push(name.to_string());
    let mut role = Role {
        name: name.into(),
        actions: own.actions.iter().cloned().collect(),
        grants: own
            .databases
            .iter()
            .map(|d| TablePattern {
                database: d.clone(),
                table: "*".into(),
            })
            .chain(own.tables.iter().filter_map(|t| parse_table(t)))
            .collect(),
        hidden: BTreeMap::new(),
        filters: BTreeMap::new(),
    };
    for (db, table, column) in own.hide_columns.iter().filter_map(|c| parse_column(c)) {
        role.hidden.entry((db, table)).or_default().insert(column);
    }
    for (t, condition) in &own.row_filters {
        if let Some(p) = parse_table(t) {
            role.filters
                .entry((p.database, p.table))
                .or_default()
                .push(condition.trim().to_string());
        }
    }
    for parent in &own.inherits {
        let p = fold(config, parent, trail)?;
        role.actions.extend(p.actions);
        role.grants.extend(p.grants);
        for (k, v) in p.hidden {
            role.hidden.entry(k).or_default().extend(v);
        }
        for (k, v) in p.filters {
            let mine = role.filters.entry(k).or_default();
            for f in v {
                if !mine.contains(&f) {
                    mine.push(f);
                }
            }
        }
    }
    trail.pop();
    Ok(role)
}

fn parse_table(text: &str) -> Option<TablePattern> {
    let (database, table) = text.split_once('.')?;
    let ok = |s: &str| !s.is_empty() && !s.contains('.');
    (ok(database) && ok(table)).then(|| TablePattern {
        database: database.into(),
        table: table.into(),
    })
}

fn parse_column(text: &str) -> Option<(String, String, String)> {
    let mut parts = text.splitn(3, '.');
    let (db, table, column) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |s: &str| !s.is_empty() && s != "*";
    (ok(db) && ok(table) && ok(column) && !table.contains('.'))
        .then(|| (db.into(), table.into(), column.into()))
}

/// What one user may do: their roles, resolved.
#[derive(Debug, Clone)]
pub struct Access {
    pub actor: Actor,
    pub roles: Vec<Role>,
    pub source: Source,
}

/// How a user may read one table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableAccess {
    /// Columns none of the reading roles may see.
    pub hidden: BTreeSet<String>,
    /// The condition rows must meet; None: every row.
    pub filter: Option<String>,
}

impl Access {
    /// Everything allowed: RBAC is off.
    pub fn unrestricted(actor: Actor) -> Self {
        Access {
            actor,
            roles: Vec::new(),
            source: Source::Off,
        }
    }

    pub fn enabled(&self) -> bool {
        self.source != Source::Off
    }

    /// How the user came by their roles, in words (`from rbac.bindings[0]`, ...).
    pub fn source_text(&self) -> String {
        match &self.source {
            Source::Off => "RBAC is off (no rbac.roles): every action is allowed".into(),
            Source::Bindings(i) => format!(
                "from rbac.bindings[{}]",
                i.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("], [")
            ),
            Source::Default => "from rbac.default_role".into(),
            Source::Nothing => {
                "no binding names this user or their groups, and there is no rbac.default_role"
                    .into()
            }
        }
    }

    fn who(&self) -> String {
        let user = &self.actor.user;
        match &self.source {
            Source::Off => user.clone(),
            Source::Nothing => format!("{user} ({})", self.source_text()),
            _ => {
                let roles: Vec<&str> = self.roles.iter().map(|r| r.name.as_str()).collect();
                format!("{user} (roles {} {})", roles.join(", "), self.source_text())
            }
        }
    }

    /// Whether the user may do `action` (on `resource`, named in the denial).
    pub fn allow(&self, action: &str, resource: &str) -> Result<(), Denied> {
        if !self.enabled() || self.roles.iter().any(|r| r.allows(action)) {
            return Ok(());
        }
        Err(Denied {
            action: action.into(),
            resource: resource.into(),
            reason: format!(
                "`{action}` is not an action of {}; add it to the `actions` of one of these roles",
                self.who()
            ),
        })
    }

    /// Reads every table, column and row (so unparsed queries may run as they are).
    pub fn reads_everything(&self) -> bool {
        !self.enabled() || self.roles.iter().any(Role::reads_everything)
    }

    /// How the user may read `database.table`, or why not at all.
    pub fn table(&self, database: &str, table: &str) -> Result<TableAccess, Denied> {
        if !self.enabled() {
            return Ok(TableAccess::default());
        }
        let readers: Vec<&Role> = self
            .roles
            .iter()
            .filter(|r| r.reads(database, table))
            .collect();
        if readers.is_empty() {
            return Err(Denied {
                action: "query".into(),
                resource: format!("{database}.{table}"),
                reason: format!(
                    "table {database}.{table} is outside the data of {}; add it to the `tables` or `databases` of one of these roles",
                    self.who()
                ),
            });
        }
        let key = (database.to_string(), table.to_string());
        let mut hidden: Option<BTreeSet<String>> = None;
        let mut filters = Vec::new();
        let mut unfiltered = false;
        for r in &readers {
            let h = r.hidden.get(&key).cloned().unwrap_or_default();
            hidden = Some(match hidden {
                None => h,
                Some(prev) => prev.intersection(&h).cloned().collect(),
            });
            match r.filters.get(&key) {
                Some(f) if !f.is_empty() => filters.push(
                    f.iter()
                        .map(|c| format!("({c})"))
                        .collect::<Vec<_>>()
                        .join(" AND "),
                ),
                _ => unfiltered = true,
            }
        }
        let filter = (!unfiltered).then(|| {
            if filters.len() == 1 {
                filters.remove(0)
            } else {
                filters
                    .iter()
                    .map(|f| format!("({f})"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            }
        });
        Ok(TableAccess {
            hidden: hidden.unwrap_or_default(),
            filter,
        })
    }

    /// The roles that hide `column` of `database.table`, for a denial's words.
    pub fn hiding(&self, database: &str, table: &str, column: &str) -> Vec<String> {
        let key = (database.to_string(), table.to_string());
        self.roles
            .iter()
            .filter(|r| r.hidden.get(&key).is_some_and(|h| h.contains(column)))
            .map(|r| format!("rbac.roles.{}.hide_columns", r.name))
            .collect()
    }

    /// `schema` without what the user may not read: tables outside the roles, hidden columns.
    pub fn visible_schema(&self, schema: &Schema) -> Schema {
        if !self.enabled() {
            return schema.clone();
        }
        let mut out = schema.clone();
        out.tables
            .retain_mut(|t| match self.table(&t.database, &t.name) {
                Ok(access) => {
                    t.columns.retain(|c| !access.hidden.contains(&c.name));
                    true
                }
                Err(_) => false,
            });
        let used: BTreeSet<&str> = out.tables.iter().map(|t| t.database.as_str()).collect();
        let keep: BTreeSet<String> = used.into_iter().map(String::from).collect();
        out.databases.retain(|d| keep.contains(d));
        out
    }
}

/// The rules in force and this process's user's access under them.
static CURRENT: RwLock<Option<(Arc<Policy>, Arc<Access>)>> = RwLock::new(None);

/// Sets this process's rules and its user's access (the first configuration loaded decides;
/// [`reload`] replaces them). Invalid rules never get here: the config loader refuses them.
pub fn init(config: &RbacConfig) {
    let mut current = CURRENT.write().unwrap_or_else(|e| e.into_inner());
    if current.is_none() {
        *current = Some(resolve(config));
    }
}

/// Replaces the rules (`aurora serve` on SIGHUP).
pub fn reload(config: &RbacConfig) {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(resolve(config));
}

fn resolve(config: &RbacConfig) -> (Arc<Policy>, Arc<Access>) {
    let policy = Policy::compile(config).unwrap_or_default();
    let access = policy.access_for(&crate::audit::current_actor());
    (Arc::new(policy), Arc::new(access))
}

/// The rules in force (none before `init`: everything allowed).
pub fn policy() -> Arc<Policy> {
    let current = CURRENT.read().unwrap_or_else(|e| e.into_inner());
    current.as_ref().map(|(p, _)| p.clone()).unwrap_or_default()
}

/// What this process's user may do.
pub fn current() -> Arc<Access> {
    let current = CURRENT.read().unwrap_or_else(|e| e.into_inner());
    match current.as_ref() {
        Some((_, a)) => a.clone(),
        None => Arc::new(Access::unrestricted(crate::audit::current_actor())),
    }
}

/// `schema` as this process's user may see it (unchanged when RBAC is off).
pub fn visible(schema: Arc<Schema>) -> Arc<Schema> {
    let access = current();
    if access.enabled() {
        Arc::new(access.visible_schema(&schema))
    } else {
        schema
    }
}

/// A denial, recorded in the audit log before it is returned (an unwritable log does not hide
/// the denial: the action is refused either way).
pub fn denied(denial: Denied) -> Denied {
    record_denial(&denial, None);
    denial
}

/// Records `denial` in the audit log, as done by `actor` (None: this process's user).
pub fn record_denial(denial: &Denied, actor: Option<&Actor>) {
    let event = crate::audit::Event::new(
        denial.action.as_str(),
        denial.resource.as_str(),
        crate::audit::Outcome::Denied,
    )
    .with("reason", denial.reason.as_str());
    let event = match actor {
        Some(a) => event.by(a),
        None => event,
    };
    if let Err(e) = crate::audit::record(event) {
        tracing::warn!("could not record a denial in the audit log: {e}");
    }
}

/// `action` on `resource` for this process's user; a denial is recorded.
pub fn require(action: &str, resource: &str) -> Result<(), Denied> {
    current().allow(action, resource).map_err(denied)
}

/// `sql` as this process's user may run it under `action` (`query`, `ask`, ...): checked and
/// with row filters applied; a denial is recorded.
pub fn query(action: &str, sql: &str, default_database: &str) -> Result<String, Denied> {
    let access = current();
    access.allow(action, "").map_err(denied)?;
    sql::authorize(&access, sql, default_database).map_err(|mut d| {
        if action != "query" && d.action == "query" {
            d.action = action.to_string();
        }
        denied(d)
    })
}

#[cfg(test)]
mod tests;
