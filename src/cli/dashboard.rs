//! `aurora dashboard list|validate|suggest|deploy|show|export`: the dashboard library
//! headless. Templates fit to tables by column roles, deploy as YAML files in the dashboards
//! directory beside the config file, run once as text or JSON, and export for Grafana.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::{render_all, Diagnostic};
use crate::dashboards::library::{self, Dirs, Entry, Origin};
use crate::dashboards::run::{self, Frame, PanelState};
use crate::dashboards::{bind, grafana, text, timerange, Dashboard};
use crate::warehouse::profile;
use crate::warehouse::schema::TableInfo;
use crate::warehouse::Warehouse;

use super::session::Session;
use super::GlobalArgs;
use crate::audit::Outcome;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(subcommand)]
    pub action: DashboardAction,
}

#[derive(Debug, Subcommand)]
pub enum DashboardAction {
    /// List the templates (built in and your own) and your dashboards
    List {
        #[arg(long)]
        json: bool,
    },
    /// Check dashboard or template files: every problem at once, then each panel's query on
    /// the server (DESCRIBE)
    Validate {
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Only check the files themselves; do not connect to ClickHouse
        #[arg(long)]
        offline: bool,
    },
    /// Rank the templates that fit each table (or one), with the column chosen for every
    /// role and why
    Suggest {
        /// A table (`name` or `database.name`); omit for every table
        table: Option<String>,
        /// Show every fitting template, not only the best three
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Bind a template's roles to a table's columns and write the dashboard file
    Deploy {
        template: String,
        /// The table to deploy on (templates for the server itself need none)
        #[arg(long, value_name = "DB.TABLE")]
        table: Option<String>,
        /// Choose a slot's column yourself, e.g. `--bind time=created_at`
        #[arg(long = "bind", value_name = "SLOT=COLUMN")]
        binds: Vec<String>,
        /// The dashboard's file name [default: TEMPLATE-TABLE]
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing file that differs (it is kept as NAME.yaml.bak)
        #[arg(long)]
        force: bool,
    },
    /// Run every panel of a dashboard once and print it (text or --json)
    Show {
        /// A dashboard name, a server template's name, or a file
        dashboard: String,
        /// Print once and exit (the live view is the workspace's)
        #[arg(long)]
        once: bool,
        #[arg(long)]
        json: bool,
        /// A variable's value, e.g. `--var level=error` (`All` where offered)
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Start of the time range, e.g. `now-24h` [default: the dashboard's]
        #[arg(long)]
        from: Option<String>,
        /// End of the time range [default: the dashboard's]
        #[arg(long)]
        to: Option<String>,
        /// Width of the text output [default: the terminal's, else 100]
        #[arg(long)]
        width: Option<usize>,
    },
    /// Read a Grafana dashboard JSON (official ClickHouse plugin or Altinity's) into a
    /// dashboard file, with what could not be translated listed per panel
    Import {
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
        /// The dashboard's file name [default: from its title]
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing file that differs (it is kept as NAME.yaml.bak)
        #[arg(long)]
        force: bool,
        /// The per-panel report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Open the workspace on a dashboard (a name, a server template's name, or a file)
    Open { dashboard: String },
    /// Write a dashboard for Grafana's ClickHouse plugin
    Export {
        dashboard: String,
        /// Dashboard JSON, as Grafana's "export for sharing" (to stdout, or --output)
        #[arg(long, required_unless_present = "grafana_provisioning")]
        grafana: bool,
        /// A Grafana provisioning folder: provider, datasource and the dashboard
        #[arg(long, value_name = "DIR", conflicts_with = "grafana")]
        grafana_provisioning: Option<PathBuf>,
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub async fn run(global: &GlobalArgs, args: DashboardArgs) -> Result<ExitCode> {
    let dirs = Dirs::beside(global.config.as_deref());
    let needs = match &args.action {
        DashboardAction::Validate { .. } => None,
        DashboardAction::Deploy { .. } => Some("dashboard.deploy"),
        DashboardAction::Import { .. } => Some("dashboard.edit"),
        _ => Some("dashboard.view"),
    };
    if let Some(action) = needs {
        super::session::load_config(global)?;
        crate::rbac::require(action, "")?;
    }
    match args.action {
        DashboardAction::List { json } => list(&dirs, json),
        DashboardAction::Validate { files, offline } => validate(global, &files, offline).await,
        DashboardAction::Suggest { table, all, json } => {
            suggest(global, &dirs, table.as_deref(), all, json).await
        }
        DashboardAction::Deploy {
            template,
            table,
            binds,
            name,
            force,
        } => {
            let chosen = pairs(&binds, "--bind", "SLOT=COLUMN")?;
            deploy(
                global,
                &dirs,
                &template,
                table.as_deref(),
                &chosen,
                name,
                force,
            )
            .await
        }
        DashboardAction::Show {
            dashboard,
            once,
            json,
            vars,
            from,
            to,
            width,
        } => {
            if !once && !json {
                bail!(
                    "live dashboards are in the workspace: `aurora dashboard open {}`; \
                     pass --once to print every panel once",
                    dashboard
                );
            }
            let vars = pairs(&vars, "--var", "NAME=VALUE")?;
            let (_, d) = resolve(&dirs, &dashboard)?;
            show(global, &d, &vars, from, to, width, json).await
        }
        DashboardAction::Open { dashboard } => {
            let (name, d) = resolve(&dirs, &dashboard)?;
            super::workspace::run_with(global, Some((name, d))).await
        }
        DashboardAction::Import {
            file,
            name,
            force,
            json,
        } => import(&dirs, &file, name, force, json),
        DashboardAction::Export {
            dashboard,
            grafana: _,
            grafana_provisioning,
            output,
        } => {
            let (name, d) = resolve(&dirs, &dashboard)?;
            export(
                global,
                &name,
                &d,
                grafana_provisioning.as_deref(),
                output.as_deref(),
            )
        }
    }
}

fn pairs(items: &[String], flag: &str, shape: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| anyhow!("{flag} `{item}`: write {shape}"))
        })
        .collect()
}

/// Problems in the user's own files, shown without stopping the command.
fn warn(problems: &[Diagnostic]) {
    if !problems.is_empty() {
        eprintln!(
            "warning: some of your dashboard files cannot be read and are left out:\n{}",
            render_all(problems, None)
        );
    }
}

fn list(dirs: &Dirs, json: bool) -> Result<ExitCode> {
    let (templates, mut problems) = library::templates(dirs);
    let (dashboards, more) = library::dashboards(dirs);
    problems.extend(more);
    warn(&problems);
    let mut out = std::io::stdout().lock();
    if json {
        let entry = |e: &Entry| {
            serde_json::json!({
                "name": e.name,
                "title": e.dashboard.title,
                "origin": e.origin.describe(),
                "panels": e.dashboard.panels.len(),
                "summary": e.dashboard.template.as_ref().map(|t| t.summary.clone()),
                "roles": e.dashboard.template.as_ref().map(|t| {
                    t.requires.iter().map(|(slot, r)| serde_json::json!({
                        "slot": slot, "role": r.role.name(), "optional": r.optional
                    })).collect::<Vec<_>>()
                }),
                "for_server": e.dashboard.template.as_ref().is_some_and(|t| t.table.is_some()),
            })
        };
        let value = serde_json::json!({
            "templates": templates.iter().map(entry).collect::<Vec<_>>(),
            "dashboards": dashboards.iter().map(entry).collect::<Vec<_>>(),
            "dashboards_dir": dirs.dashboards,
            "templates_dir": dirs.templates,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "Templates ({}):", templates.len())?;
    let width = templates.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in &templates {
        let Some(t) = &e.dashboard.template else {
            continue;
        };
        let roles = if t.table.is_some() {
            "for the server itself".to_owned()
        } else {
            t.requires
                .iter()
                .map(|(slot, r)| {
                    let role = if slot == r.role.name() {
                        slot.clone()
                    } else {
                        format!("{slot}: {}", r.role.name())
                    };
                    if r.optional {
                        format!("[{role}]")
                    } else {
                        role
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let origin = match &e.origin {
            Origin::Builtin => String::new(),
            Origin::File(p) => format!("  ({})", p.display()),
        };
        writeln!(out, "  {:<width$}  {}{origin}", e.name, t.summary)?;
        writeln!(out, "  {:<width$}    roles: {roles}", "")?;
    }
    writeln!(
        out,
        "\nYour dashboards ({}), in {}:",
        dashboards.len(),
        dirs.dashboards.display()
    )?;
    if dashboards.is_empty() {
        writeln!(
            out,
            "  none yet: `aurora dashboard suggest` finds templates that fit your tables"
        )?;
    }
    for e in &dashboards {
        writeln!(
            out,
            "  {}  {} ({} panels)",
            e.name,
            e.dashboard.title,
            e.dashboard.panels.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn validate(global: &GlobalArgs, files: &[PathBuf], offline: bool) -> Result<ExitCode> {
    let mut failed = false;
    let mut good: Vec<(PathBuf, Dashboard)> = Vec::new();
    for path in files {
        match library::read_file(path) {
            Ok(e) => good.push((path.clone(), e.dashboard)),
            Err(diags) => {
                failed = true;
                let text = std::fs::read_to_string(path).ok();
                eprint!("{}", render_all(&diags, text.as_deref()));
                eprintln!("{}", crate::config::summary(&diags));
            }
        }
    }
    if !offline && !good.is_empty() {
        let session = Session::open(global).await?;
        for (path, d) in &good {
            if d.template.as_ref().is_some_and(|t| t.table.is_none()) {
                println!(
                    "{}: ok (a template: its queries are checked on a table when deployed)",
                    path.display()
                );
                continue;
            }
            let problems = live_check(&session.warehouse, d).await;
            if problems.is_empty() {
                println!(
                    "{}: ok, {} panels checked on the server",
                    path.display(),
                    d.panels.len()
                );
            } else {
                failed = true;
                for (i, message) in problems {
                    eprintln!(
                        "{}: panel `{}`: {message}",
                        path.display(),
                        d.panels[i].title
                    );
                }
            }
        }
        session.close().await;
    } else {
        for (path, _) in &good {
            println!("{}: ok", path.display());
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn live_check(warehouse: &Warehouse, d: &Dashboard) -> Vec<(usize, String)> {
    let now = timerange::now();
    let (from, to) = match run::time_range(d, now) {
        Ok(r) => r,
        Err(e) => return vec![(0, e.to_string())],
    };
    let variables = match run::resolve_variables(warehouse, d, from, to, &BTreeMap::new()).await {
        Ok(v) => v,
        Err(e) => return vec![(0, e.to_string())],
    };
    let frame = Frame {
        from,
        to,
        max_points: 100,
        variables,
        pipelines: Some(pipelines_now()),
    };
    run::live_check(warehouse, d, &frame).await
}

/// The tables to suggest for: one named table, or every user table with the configured
/// default database's first.
fn tables_for<'s>(
    schema: &'s crate::warehouse::schema::Schema,
    name: Option<&str>,
    database: &str,
) -> Result<Vec<&'s TableInfo>> {
    if let Some(name) = name {
        return Ok(vec![super::schema::find_table(schema, name, database)?]);
    }
    let mut tables: Vec<&TableInfo> = schema
        .tables
        .iter()
        .filter(|t| !t.engine.contains("Kafka") && !t.name.starts_with(".inner"))
        .collect();
    tables.sort_by_key(|t| t.database != database);
    Ok(tables)
}

async fn suggest(
    global: &GlobalArgs,
    dirs: &Dirs,
    table: Option<&str>,
    all: bool,
    json: bool,
) -> Result<ExitCode> {
    let (templates, problems) = library::templates(dirs);
    warn(&problems);
    let session = Session::open(global).await?;
    let result = async {
        let schema = crate::rbac::visible(session.warehouse.schema(true).await?);
        let database = session.warehouse.settings().database.clone();
        let tables = tables_for(&schema, table, &database)?;
        let mut report = Vec::new();
        for t in tables {
            let (_, mut fits) =
                crate::dashboards::suggest::for_table(&session.warehouse, &templates, t).await?;
            if !all {
                fits.truncate(3);
            }
            report.push((t.clone(), fits));
        }
        Ok::<_, anyhow::Error>(report)
    }
    .await;
    session.close().await;
    let report = result?;
    let mut out = std::io::stdout().lock();
    if json {
        let value: Vec<serde_json::Value> = report
            .iter()
            .map(|(t, fits)| {
                serde_json::json!({
                    "table": t.qualified_name(),
                    "rows": t.total_rows,
                    "suggestions": fits,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if report.is_empty() {
        writeln!(out, "No tables yet: `aurora demo` loads a sample data set, `aurora pipeline init` starts an ingest.")?;
    }
    for (t, fits) in &report {
        let t: &TableInfo = t;
        writeln!(
            out,
            "{}  ({} rows)",
            t.qualified_name(),
            crate::numbers::thousands(t.total_rows)
        )?;
        let specific = fits.iter().any(|f| f.template != "table-overview");
        if !specific {
            writeln!(
                out,
                "  no specific template fits this table; the generic overview does:"
            )?;
        }
        for f in fits {
            writeln!(
                out,
                "  {:<20} score {:>3}  {} of {} panels{}",
                f.template,
                f.score,
                f.panels,
                f.panels_total,
                f.table_named
                    .as_ref()
                    .map(|w| format!("  (a table of `{w}`s: +10)"))
                    .unwrap_or_default()
            )?;
            for s in &f.slots {
                match &s.column {
                    Some(c) => writeln!(
                        out,
                        "      {:<9} = {:<24} {} ({})",
                        s.slot,
                        c,
                        s.role.name(),
                        s.reasons.join(", ")
                    )?,
                    None => writeln!(
                        out,
                        "      {:<9} — no {} column (optional)",
                        s.slot,
                        s.role.name()
                    )?,
                }
            }
        }
        if let Some(best) = fits.first() {
            writeln!(
                out,
                "  deploy: aurora dashboard deploy {} --table {}\n",
                best.template,
                t.qualified_name()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn deploy(
    global: &GlobalArgs,
    dirs: &Dirs,
    template_name: &str,
    table: Option<&str>,
    chosen: &BTreeMap<String, String>,
    name: Option<String>,
    force: bool,
) -> Result<ExitCode> {
    let (templates, problems) = library::templates(dirs);
    warn(&problems);
    let entry = library::find(&templates, template_name).map_err(|e| anyhow!("{e}"))?;
    let spec = entry
        .dashboard
        .template
        .as_ref()
        .context("not a template")?;
    let (dashboard, table_name, notes) = if spec.table.is_some() {
        if table.is_some() {
            bail!(
                "`{}` is a template for the server itself and takes no --table",
                entry.name
            );
        }
        let mut d = entry.dashboard.clone();
        d.template = None;
        (d, None, Vec::new())
    } else {
        let Some(table) = table else {
            bail!(
                "`{}` needs a table: --table DB.TABLE (`aurora dashboard suggest` shows which fit)",
                entry.name
            );
        };
        let session = Session::open(global).await?;
        let result = async {
            let schema = crate::rbac::visible(session.warehouse.schema(true).await?);
            let database = session.warehouse.settings().database.clone();
            let t = tables_for(&schema, Some(table), &database)?[0].clone();
            let profile = profile::profile(&session.warehouse, &t).await?;
            let fit = bind::fit(&entry.name, &entry.dashboard, &t, &profile, chosen)?;
            if !fit.fits {
                let missing: Vec<String> = fit
                    .slots
                    .iter()
                    .filter(|s| !s.optional && s.column.is_none())
                    .map(|s| format!("`{}` (a {} column)", s.slot, s.role.name()))
                    .collect();
                bail!(
                    "`{}` does not fit {}: nothing fits {}; choose a column with --bind SLOT=COLUMN, \
                     or see `aurora dashboard suggest {}`",
                    entry.name,
                    t.qualified_name(),
                    missing.join(", "),
                    t.qualified_name()
                );
            }
            let now = timerange::now();
            let d = bind::deploy(&entry.dashboard, &fit, &t, &profile, now);
            let mut notes = Vec::new();
            if d.time != entry.dashboard.time {
                notes.push(format!(
                    "the table's newest row is older than `{}`, so the time range is fixed to {} … {}; \
                     set `time:` back to `from: {}` when data flows again",
                    entry.dashboard.time.from, d.time.from, d.time.to, entry.dashboard.time.from
                ));
            }
            for s in fit.slots.iter().filter(|s| s.column.is_none()) {
                notes.push(format!("no {} column for `{}`: its panels are left out", s.role.name(), s.slot));
            }
            Ok::<_, anyhow::Error>((d, Some(t.qualified_name()), notes))
        }
        .await;
        session.close().await;
        result?
    };
    let file_name = name.unwrap_or_else(|| {
        crate::dashboards::suggest::file_name(&entry.name, table_name.as_deref())
    });
    let path = dirs.dashboards.join(format!("{file_name}.yaml"));
    let command = format!(
        "aurora dashboard deploy {}{}",
        entry.name,
        table_name
            .as_deref()
            .map(|t| format!(" --table {t}"))
            .unwrap_or_default()
    );
    let text = crate::dashboards::suggest::file_text(&dashboard, &command)?;
    // What is written must read back; a failure here is Aurora's bug, said plainly.
    if let Err(d) = crate::dashboards::check::check_str(&path.display().to_string(), &text) {
        bail!(
            "the deployed dashboard does not read back (a bug in Aurora):\n{}",
            render_all(&d, Some(&text))
        );
    }
    let event = crate::audit::Event::new("dashboard.deploy", file_name.as_str(), Outcome::Ok)
        .with("template", entry.name.as_str())
        .with("table", table_name.as_deref().unwrap_or_default())
        .with("path", path.display().to_string());
    crate::audit::change(event, || write_new(&path, &text, force))?;
    println!(
        "wrote {} ({} panels)",
        path.display(),
        dashboard.panels.len()
    );
    for note in notes {
        println!("note: {note}");
    }
    println!("show it: aurora dashboard show {file_name} --once");
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path` unless a different file is there (then only with `force`,
/// keeping the old one as `.bak`).
fn write_new(path: &Path, text: &str, force: bool) -> Result<()> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        if existing == text {
            println!("{} is already this dashboard; unchanged", path.display());
            return Ok(());
        }
        if !force {
            bail!(
                "{} exists and differs from this deploy (edited since?); pass --force to replace it \
                 (the old file is kept as .bak) or --name to write another",
                path.display()
            );
        }
        let backup = path.with_extension("yaml.bak");
        std::fs::copy(path, &backup)
            .with_context(|| format!("cannot keep {}", backup.display()))?;
        println!("kept the old file as {}", backup.display());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A dashboard by file path, by the name of one of the user's dashboards, or a template for
/// the server itself (which needs no binding).
fn resolve(dirs: &Dirs, name: &str) -> Result<(String, Dashboard)> {
    let as_path = Path::new(name);
    if as_path
        .extension()
        .is_some_and(|x| x == "yaml" || x == "yml")
        || as_path.is_file()
    {
        let entry = library::read_file(as_path).map_err(|d| {
            let text = std::fs::read_to_string(as_path).ok();
            anyhow!("{}", render_all(&d, text.as_deref()).trim_end())
        })?;
        return usable(entry);
    }
    let (dashboards, problems) = library::dashboards(dirs);
    warn(&problems);
    if let Some(e) = dashboards.iter().find(|e| e.name == name) {
        return usable(e.clone());
    }
    let (templates, _) = library::templates(dirs);
    if let Some(e) = templates.iter().find(|e| e.name == name) {
        return usable(e.clone());
    }
    let mut all = dashboards;
    all.extend(templates);
    library::find(&all, name)
        .map_err(|e| anyhow!("{e}"))
        .and_then(|e| usable(e.clone()))
}

fn usable(entry: Entry) -> Result<(String, Dashboard)> {
    let mut d = entry.dashboard;
    match &d.template {
        Some(t) if t.table.is_none() => bail!(
            "`{}` is a template; deploy it on a table first: aurora dashboard deploy {} --table DB.TABLE",
            entry.name,
            entry.name
        ),
        Some(_) => d.template = None,
        None => {}
    }
    Ok((entry.name, d))
}

async fn show(
    global: &GlobalArgs,
    d: &Dashboard,
    vars: &BTreeMap<String, String>,
    from: Option<String>,
    to: Option<String>,
    width: Option<usize>,
    json: bool,
) -> Result<ExitCode> {
    let mut d = d.clone();
    if let Some(f) = from {
        d.time.from = f;
    }
    if let Some(t) = to {
        d.time.to = t;
    }
    let width = width
        .or_else(|| {
            ratatui::crossterm::terminal::size()
                .ok()
                .map(|(w, _)| usize::from(w))
        })
        .unwrap_or(100)
        .clamp(40, 240);
    let session = Session::open(global).await?;
    let result = async {
        let (from, to) = run::time_range(&d, timerange::now())?;
        let variables = run::resolve_variables(&session.warehouse, &d, from, to, vars).await?;
        let frame = Frame {
            from,
            to,
            max_points: (width as u64).saturating_sub(40).clamp(20, 200),
            variables,
            pipelines: Some(pipelines_now()),
        };
        let states = run::run_all(&session.warehouse, &d, &frame).await;
        Ok::<_, anyhow::Error>((frame, states))
    }
    .await;
    session.close().await;
    let (frame, states) = result?;
    let failed = states
        .iter()
        .filter(|s| matches!(s, PanelState::Failed { .. }))
        .count();
    let mut out = std::io::stdout().lock();
    if json {
        let panels: Vec<serde_json::Value> = d
            .panels
            .iter()
            .zip(&states)
            .map(|(p, s)| panel_json(p, s))
            .collect();
        let value = serde_json::json!({
            "title": d.title,
            "from": frame.from,
            "to": frame.to,
            "panels": panels,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        let at = |t: i64| {
            jiff::Timestamp::from_second(t)
                .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default()
        };
        writeln!(
            out,
            "{}   {} … {} UTC",
            d.title,
            at(frame.from),
            at(frame.to)
        )?;
        let chosen: Vec<String> = frame
            .variables
            .iter()
            .map(|(k, v)| match v {
                crate::dashboards::macros::VariableValue::One(v) => format!("{k}={v}"),
                crate::dashboards::macros::VariableValue::All(_) => format!("{k}=All"),
            })
            .collect();
        if !chosen.is_empty() {
            writeln!(out, "{}", chosen.join("  "))?;
        }
        writeln!(out)?;
        // Panels in reading order: row by row, left to right.
        let mut order: Vec<usize> = (0..d.panels.len()).collect();
        order.sort_by_key(|&i| (d.panels[i].grid.y, d.panels[i].grid.x));
        for i in order {
            write!(out, "{}", text::panel(&d.panels[i], &states[i], width))?;
            writeln!(out)?;
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} panels failed", d.panels.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn panel_json(p: &crate::dashboards::Panel, s: &PanelState) -> serde_json::Value {
    let base = serde_json::json!({"title": p.title, "type": p.kind.name()});
    let mut map = match base {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    match s {
        PanelState::Data { sql, result } => {
            map.insert("state".into(), "data".into());
            map.insert("sql".into(), sql.clone().into());
            map.insert(
                "columns".into(),
                result
                    .columns
                    .iter()
                    .map(|c| serde_json::json!({"name": c.name, "type": c.type_name}))
                    .collect(),
            );
            let rows: Vec<serde_json::Value> = result
                .rows
                .iter()
                .map(|r| {
                    let cells: Vec<serde_json::Value> = r
                        .iter()
                        .map(|v| {
                            serde_json::from_str(&v.to_json()).unwrap_or(serde_json::Value::Null)
                        })
                        .collect();
                    serde_json::Value::Array(cells)
                })
                .collect();
            map.insert("rows".into(), rows.into());
        }
        PanelState::Text(t) => {
            map.insert("state".into(), "text".into());
            map.insert("text".into(), t.clone().into());
        }
        PanelState::Failed { sql, message, hint } => {
            map.insert("state".into(), "error".into());
            map.insert("sql".into(), sql.clone().into());
            map.insert("error".into(), message.clone().into());
            map.insert("hint".into(), hint.clone().into());
        }
        PanelState::LeftOut { reason } => {
            map.insert("state".into(), "left_out".into());
            map.insert("reason".into(), reason.clone().into());
        }
    }
    serde_json::Value::Object(map)
}

fn export(
    global: &GlobalArgs,
    name: &str,
    d: &Dashboard,
    provisioning: Option<&Path>,
    output: Option<&Path>,
) -> Result<ExitCode> {
    if let Some(dir) = provisioning {
        let config = super::session::load_config(global)?;
        let url = global
            .url
            .clone()
            .or(config.clickhouse.url.clone())
            .unwrap_or_else(|| "http://localhost:8123".into());
        let user = global
            .user
            .clone()
            .unwrap_or(config.clickhouse.user.clone());
        let event = crate::audit::Event::new("dashboard.export", name, Outcome::Ok)
            .with("path", dir.display().to_string())
            .with("format", "grafana-provisioning");
        let written = crate::audit::change(event, || {
            grafana::write_provisioning(dir, &[(name.to_owned(), d)], &url, &user)
                .with_context(|| format!("cannot write the provisioning folder {}", dir.display()))
        })?;
        for path in written {
            println!("wrote {}", path.display());
        }
        println!(
            "mount {}/provisioning as /etc/grafana/provisioning and {}/dashboards as \
             /var/lib/grafana/dashboards/aurora; set CLICKHOUSE_PASSWORD in Grafana's environment",
            dir.display(),
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let text = serde_json::to_string_pretty(&grafana::export(d))? + "\n";
    match output {
        Some(path) => {
            let event = crate::audit::Event::new("dashboard.export", name, Outcome::Ok)
                .with("path", path.display().to_string())
                .with("format", "grafana");
            crate::audit::change(event, || {
                std::fs::write(path, text)
                    .with_context(|| format!("cannot write {}", path.display()))
            })?;
            println!("wrote {}: import it in Grafana (Dashboards → New → Import) and pick a ClickHouse datasource", path.display());
        }
        None => match std::io::stdout().lock().write_all(text.as_bytes()) {
            // `| head` closing the pipe early is the reader's choice, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other?,
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn import(
    dirs: &Dirs,
    file: &Path,
    name: Option<String>,
    force: bool,
    json: bool,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report = crate::dashboards::grafana_import::import(&text)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let name = name.unwrap_or_else(|| {
        crate::dashboards::suggest::file_name(&report.dashboard.title, None)
            .split('-')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    });
    let path = dirs.dashboards.join(format!("{name}.yaml"));
    let yaml = crate::dashboards::suggest::file_text(
        &report.dashboard,
        &format!("aurora dashboard import {}", file.display()),
    )?;
    if let Err(d) = crate::dashboards::check::check_str(&path.display().to_string(), &yaml) {
        bail!(
            "the imported dashboard does not read back (a bug in Aurora):\n{}",
            render_all(&d, Some(&yaml))
        );
    }
    let event =
        crate::audit::Event::new("dashboard.import", path.display().to_string(), Outcome::Ok);
    crate::audit::change(event, || write_new(&path, &yaml, force))?;
    let imported = report.panels.iter().filter(|p| p.skipped.is_none()).count();
    if json {
        let value = serde_json::json!({
            "file": path,
            "imported": imported,
            "panels": report.panels,
            "notes": report.notes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "wrote {} ({imported} of {} panels imported)",
        path.display(),
        report.panels.len()
    );
    for p in &report.panels {
        match &p.skipped {
            None => println!("  ✓ {} ({})", p.title, p.grafana_type),
            Some(why) => println!("  ✗ {} ({}): {why}", p.title, p.grafana_type),
        }
        for note in &p.notes {
            println!("      {note}");
        }
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    println!("show it: aurora dashboard show {name} --once");
    Ok(ExitCode::SUCCESS)
}

/// `$__aurora_pipelines` from the status files `aurora pipeline run` processes keep.
fn pipelines_now() -> String {
    let statuses =
        crate::ingest::engine::read_statuses(&crate::ingest::engine::default_state_dir());
    crate::dashboards::aurora_state::pipelines_subquery(&statuses)
}
