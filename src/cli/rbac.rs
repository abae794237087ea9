//! `aurora rbac whoami|check|render`: who Aurora takes you for, what a user may do and see,
//! and the roles written for the server to enforce too.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::audit::Actor;
use crate::rbac::{render, Access};

use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct RbacArgs {
    #[command(subcommand)]
    action: RbacAction,
}

#[derive(Debug, Subcommand)]
enum RbacAction {
    /// Who you are to Aurora: user, groups, roles (and which binding gave them), actions, data
    Whoami {
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Whether a user may do an action, and how a query would run for them (with their row
    /// filters) or why it would be refused; nothing is run
    Check {
        /// The user [default: you]
        #[arg(long)]
        user: Option<String>,
        /// A group of that user (repeat for more) [default: yours, when --user is not given]
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// An action: query, ask, export, schema, dashboard.view, pipeline.control, ...
        #[arg(long)]
        action: Option<String>,
        /// A query to check against the user's data
        #[arg(long)]
        sql: Option<String>,
        /// The database unqualified tables are in [default: the connection's, else `default`]
        #[arg(long = "in", value_name = "DB")]
        in_database: Option<String>,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Write the roles for the server: users.xml users (servers before 20.4) or CREATE ROLE,
    /// GRANT and row-policy SQL (20.4 and later), with what the server cannot enforce
    Render {
        /// users-xml, sql, or auto (from the server's version)
        #[arg(long, value_enum, default_value_t = RenderFormat::Auto)]
        format: RenderFormat,
        /// A file whose first line is the password the rendered users get (users-xml)
        #[arg(long, value_name = "FILE")]
        users_password_file: Option<PathBuf>,
        /// A network the rendered users may connect from (repeat; users-xml) [default: loopback]
        #[arg(long = "network", value_name = "CIDR")]
        networks: Vec<String>,
        /// Write here instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Run the SQL on the server (needs the `config` action, and a server user allowed to
        /// manage access)
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RenderFormat {
    Auto,
    UsersXml,
    Sql,
}

pub async fn run(global: &GlobalArgs, args: RbacArgs) -> Result<ExitCode> {
    let config = super::session::load_config(global)?;
    match args.action {
        RbacAction::Whoami { json } => {
            let access = crate::rbac::current();
            print_access(&access, json)?;
            Ok(ExitCode::SUCCESS)
        }
        RbacAction::Check {
            user,
            groups,
            action,
            sql,
            in_database,
            json,
        } => {
            let actor = match user {
                Some(user) => Actor {
                    user,
                    uid: None,
                    via: "check".into(),
                    groups,
                },
                None => {
                    let mut me = crate::audit::current_actor();
                    me.groups.extend(groups);
                    me
                }
            };
            let access = crate::rbac::policy().access_for(&actor);
            let database = in_database
                .or_else(|| global.database.clone())
                .unwrap_or_else(|| {
                    Some(config.clickhouse.database.clone())
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| "default".into())
                });
            check(&access, action.as_deref(), sql.as_deref(), &database, json)
        }
        RbacAction::Render {
            format,
            users_password_file,
            networks,
            output,
            apply,
        } => {
            let password_sha256 = match &users_password_file {
                Some(f) => {
                    use sha2::{Digest, Sha256};
                    let secret = crate::secret::Secret::from_file(f).map_err(anyhow::Error::msg)?;
                    Some(crate::audit::hex(&Sha256::digest(
                        secret.expose().as_bytes(),
                    )))
                }
                None => None,
            };
            let options = render::UsersXml {
                password_sha256,
                networks,
            };
            let session = Session::open_with(global, config).await?;
            let result = render_roles(&session, format, &options, output, apply).await;
            session.close().await;
            result
        }
    }
}

pub(super) fn access_json(access: &Access) -> serde_json::Value {
    let roles: Vec<serde_json::Value> = access
        .roles
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "actions": r.actions,
                "reads": r.grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "hidden_columns": r.hidden.iter().flat_map(|((d, t), cols)| cols.iter().map(move |c| format!("{d}.{t}.{c}"))).collect::<Vec<_>>(),
                "row_filters": r.filters.iter().map(|((d, t), f)| (format!("{d}.{t}"), f.join(" AND "))).collect::<std::collections::BTreeMap<_, _>>(),
            })
        })
        .collect();
    json!({
        "user": access.actor.user,
        "via": access.actor.via,
        "groups": access.actor.groups,
        "rbac": access.enabled(),
        "source": access.source_text(),
        "roles": roles,
        "allowed_actions": crate::rbac::ACTIONS.iter().filter(|a| access.allow(a, "").is_ok()).collect::<Vec<_>>(),
        "reads_everything": access.reads_everything(),
    })
}

pub(super) fn print_access(access: &Access, json: bool) -> Result<()> {
    let value = access_json(access);
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(
        out,
        "user     {} (known by: {})",
        access.actor.user, access.actor.via
    )?;
    if !access.actor.groups.is_empty() {
        writeln!(out, "groups   {}", access.actor.groups.join(", "))?;
    }
    let names: Vec<&str> = access.roles.iter().map(|r| r.name.as_str()).collect();
    writeln!(
        out,
        "roles    {} ({})",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
        access.source_text()
    )?;
    let allowed: Vec<&str> = crate::rbac::ACTIONS
        .iter()
        .copied()
        .filter(|a| access.allow(a, "").is_ok())
        .collect();
    writeln!(
        out,
        "actions  {}",
        if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        }
    )?;
    if access.enabled() {
        for r in &access.roles {
            let reads: Vec<String> = r.grants.iter().map(ToString::to_string).collect();
            writeln!(
                out,
                "data     {}: reads {}",
                r.name,
                if reads.is_empty() {
                    "nothing".to_string()
                } else {
                    reads.join(", ")
                }
            )?;
            for ((d, t), cols) in &r.hidden {
                let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
                writeln!(
                    out,
                    "         {}: hides {d}.{t}.{}",
                    r.name,
                    cols.join(", ")
                )?;
            }
            for ((d, t), f) in &r.filters {
                writeln!(
                    out,
                    "         {}: rows of {d}.{t} where {}",
                    r.name,
                    f.join(" AND ")
                )?;
            }
        }
    }
    Ok(())
}

fn check(
    access: &Access,
    action: Option<&str>,
    sql: Option<&str>,
    database: &str,
    json: bool,
) -> Result<ExitCode> {
    if action.is_none() && sql.is_none() {
        bail!("give --action ACTION, --sql SQL, or both");
    }
    let mut report = serde_json::Map::new();
    report.insert("user".into(), access.actor.user.clone().into());
    let mut allowed = true;
    let mut lines = Vec::new();
    if let Some(action) = action {
        if action != "*" && !crate::rbac::ACTIONS.contains(&action) {
            bail!(
                "there is no action `{action}`; the actions are: {}",
                crate::rbac::ACTIONS.join(", ")
            );
        }
        match access.allow(action, "") {
            Ok(()) => lines.push(format!("allowed: {action}")),
            Err(d) => {
                allowed = false;
                lines.push(d.to_string());
                report.insert("action_denied".into(), d.reason.into());
            }
        }
        report.insert("action".into(), action.into());
    }
    if let Some(sql) = sql {
        let checked = access
            .allow("query", "")
            .and_then(|()| crate::rbac::sql::authorize(access, sql, database));
        match checked {
            Ok(run) => {
                lines.push(if run == sql {
                    "allowed: the query runs as written".to_string()
                } else {
                    format!("allowed, with the user's row filters; it runs as:\n{run}")
                });
                report.insert("runs_as".into(), run.into());
            }
            Err(d) => {
                allowed = false;
                lines.push(d.to_string());
                report.insert("query_denied".into(), d.reason.into());
            }
        }
    }
    report.insert("allowed".into(), allowed.into());
    if json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn render_roles(
    session: &Session,
    format: RenderFormat,
    options: &render::UsersXml,
    output: Option<PathBuf>,
    apply: bool,
) -> Result<ExitCode> {
    let policy = crate::rbac::policy();
    if !policy.enabled() {
        bail!("there are no roles to render: define them under `rbac.roles` in the config (docs/security.md, Roles)");
    }
    let warehouse = &session.warehouse;
    let caps = warehouse.capabilities();
    let format = match format {
        RenderFormat::Auto if caps.sql_access_control => RenderFormat::Sql,
        RenderFormat::Auto => RenderFormat::UsersXml,
        other => other,
    };
    let schema = warehouse.schema(true).await?;
    let rendered = match format {
        RenderFormat::Sql => render::sql(&policy, &schema),
        _ => render::users_xml(&policy, &schema, options),
    };
    match &output {
        Some(path) => std::fs::write(path, &rendered.text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", rendered.text),
    }
    for note in &rendered.notes {
        eprintln!("note: {note}");
    }
    if !apply {
        return Ok(ExitCode::SUCCESS);
    }
    if format != RenderFormat::Sql {
        bail!(
            "users.xml cannot be applied over a connection: write it with -o into the server's users.d/ directory (the server reads it within seconds)"
        );
    }
    if !caps.sql_access_control {
        bail!(
            "ClickHouse {} has no SQL access control (it came in 20.4): render --format users-xml instead",
            caps.version_text
        );
    }
    crate::rbac::require("config", "rbac.apply")?;
    let event = crate::audit::Event::new(
        "rbac.apply",
        warehouse.settings().url.as_str(),
        crate::audit::Outcome::Ok,
    )
    .with("statements", rendered.statements.len() as u64);
    crate::audit::check_writable()?;
    let options = crate::warehouse::QueryOptions {
        readonly: false,
        ..crate::warehouse::QueryOptions::default()
    };
    let mut failure = None;
    for statement in &rendered.statements {
        if let Err(e) = warehouse.query(statement, &options).await {
            failure = Some(format!("{statement}: {e}"));
            break;
        }
    }
    let event = match &failure {
        Some(f) => event.failed(f),
        None => event,
    };
    crate::audit::record(event)?;
    if let Some(f) = failure {
        bail!("the server refused a statement, the ones before it were applied: {f}");
    }
    eprintln!("applied {} statement(s)", rendered.statements.len());
    Ok(ExitCode::SUCCESS)
}
