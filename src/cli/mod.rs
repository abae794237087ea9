//! The headless front end: clap subcommands over the library. Each command loads config,
//! resolves where ClickHouse is, calls `warehouse`/`config` functions and prints results to
//! stdout (data) and stderr (messages). Errors are rendered here, once, in plain words.

mod alert;
mod ask;
mod audit;
mod config_cmd;
mod dashboard;
pub mod demo;
mod login;
mod model;
mod pipeline;
mod query;
mod rbac;
mod schema;
mod serve;
mod server;
mod session;
mod size;
pub mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ConfigError;
pub(crate) use crate::output;
use crate::secret::Secret;
pub(crate) use crate::shutdown::interrupted;
use crate::warehouse::WarehouseError;

const AFTER_HELP: &str = "\
Where ClickHouse is: --url, else AURORA_CLICKHOUSE_URL, else `clickhouse.url` in the config
file. With none of them, Aurora starts its own private server on a free loopback port (needs a
`clickhouse` or `clickhouse-server` binary; `make demo` installs one).

Examples:
  aurora demo                                   load the sample data set and show it
  aurora ask \"Which 3 countries brought the most revenue?\"
  aurora query \"SELECT version()\"
  aurora query \"SELECT * FROM demo.events LIMIT 5\" --format json
  aurora schema demo.events
  aurora server status
  aurora config check ~/.config/aurora/config.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "aurora",
    version,
    about = "A terminal workspace for real-time analytics on ClickHouse",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file [default: ~/.config/aurora/config.yaml]
    #[arg(long, global = true, env = "AURORA_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// ClickHouse HTTP URL, e.g. http://localhost:8123 (unset: Aurora's private server)
    #[arg(long, global = true, env = "AURORA_CLICKHOUSE_URL", value_name = "URL")]
    pub url: Option<String>,
    /// ClickHouse user
    #[arg(
        long,
        global = true,
        env = "AURORA_CLICKHOUSE_USER",
        value_name = "USER"
    )]
    pub user: Option<String>,
    /// ClickHouse password. Other users of this machine can read a command line (`ps`):
    /// prefer --password-file or the environment variable
    #[arg(
        long,
        global = true,
        env = "AURORA_CLICKHOUSE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        value_parser = parse_secret
    )]
    pub password: Option<Secret>,
    /// A file whose first line is the ClickHouse password
    #[arg(
        long,
        global = true,
        env = "AURORA_CLICKHOUSE_PASSWORD_FILE",
        value_name = "FILE",
        conflicts_with = "password"
    )]
    pub password_file: Option<PathBuf>,
    /// Default database for queries
    #[arg(
        long,
        global = true,
        env = "AURORA_CLICKHOUSE_DATABASE",
        value_name = "DB"
    )]
    pub database: Option<String>,
    /// More log output on stderr (-v info, -vv debug); AURORA_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask a question in plain language: Aurora writes, checks and runs read-only SQL
    Ask(ask::AskArgs),
    /// List, download, add and choose the models the assistant uses
    Model(model::ModelArgs),
    /// Run SQL and print the result (read-only unless --write)
    Query(query::QueryArgs),
    /// List tables, or describe one table's columns and keys
    Schema(schema::SchemaArgs),
    /// Manage Aurora's private ClickHouse server
    Server(server::ServerArgs),
    /// Check configuration files
    Config(config_cmd::ConfigArgs),
    /// Validate and run ingestion pipelines (CSV files, Kafka, PostgreSQL, MySQL)
    Pipeline(pipeline::PipelineArgs),
    /// Run the pipelines and alert rules as a daemon with Prometheus metrics, health checks and a control API
    Serve(serve::ServeArgs),
    /// The alert rules: list them, or evaluate one and print what would be sent
    Alert(alert::AlertArgs),
    /// The audit log: check its chain, read and search its records
    Audit(audit::AuditArgs),
    /// Roles: who you are to Aurora, what a user may do and see, the roles for the server
    Rbac(rbac::RbacArgs),
    /// Sign in with the configured OpenID provider (a URL and a code for any browser)
    Login(login::LoginArgs),
    /// Sign out: forget the sign-in here and revoke it at the provider
    Logout(login::LoginArgs),
    /// Who Aurora takes you for: user, groups, sign-in, roles and what they allow
    Whoami(login::WhoamiArgs),
    /// ClickHouse, Kafka and Aurora resources for a workload, each with the rule it came from
    Size(size::SizeArgs),
    /// Dashboards: templates that fit your tables, deploy, show, export to Grafana
    Dashboard(dashboard::DashboardArgs),
    /// Start the private server, load the sample data set and show it
    Demo(demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn parse_secret(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::from(text))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if matches.value_source("password") == Some(clap::parser::ValueSource::CommandLine) {
        eprintln!(
            "warning: a password on the command line can be read by other users of this machine \
             (ps, /proc); use --password-file FILE, AURORA_CLICKHOUSE_PASSWORD or \
             `clickhouse.password_file` instead"
        );
    }
    // A pipeline daemon reports its progress by default; other commands stay quiet.
    let daemon = matches!(
        &cli.command,
        Some(Command::Pipeline(pipeline::PipelineArgs {
            action: pipeline::PipelineAction::Run { .. }
        })) | Some(Command::Serve(_))
    );
    crate::telemetry::init(cli.global.verbose.max(u8::from(daemon)));
    use std::io::IsTerminal;
    let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if cli.command.is_none() && !interactive {
        print_overview();
        return ExitCode::SUCCESS;
    }
    let command = cli.command;
    if let Some(Command::Completions { shell }) = command {
        clap_complete::generate(shell, &mut Cli::command(), "aurora", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let global = cli.global;
    let result = runtime.block_on(async move {
        let Some(command) = command else {
            return workspace::run(&global).await;
        };
        match command {
            Command::Ask(args) => ask::run(&global, args).await,
            Command::Model(args) => model::run(&global, args).await,
            Command::Query(args) => query::run(&global, args).await,
            Command::Schema(args) => schema::run(&global, args).await,
            Command::Server(args) => server::run(&global, args).await,
            Command::Config(args) => config_cmd::run(&global, args),
            Command::Demo(args) => demo::run(&global, args).await,
            Command::Dashboard(args) => dashboard::run(&global, args).await,
            Command::Pipeline(args) => pipeline::run(&global, args).await,
            Command::Serve(args) => serve::run(&global, args).await,
            Command::Alert(args) => alert::run(&global, args).await,
            Command::Size(args) => size::run(&global, args).await,
            Command::Audit(args) => audit::run(&global, args).await,
            Command::Rbac(args) => rbac::run(&global, args).await,
            Command::Login(args) => login::login(&global, args).await,
            Command::Logout(args) => login::logout(&global, args).await,
            Command::Whoami(args) => login::whoami(&global, args).await,
            Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    });
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprint!("{}", render_error(&err));
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    leave(code)
}

/// Returns `code` to `main` once no model thread is inside llama.cpp, whose static tables
/// the C++ exit handlers destroy (a signal can arrive while the model is still loading).
/// A thread that does not stop in time (a long batch of a large model) makes the process
/// leave without those handlers, after flushing what it wrote.
fn leave(code: ExitCode) -> ExitCode {
    if crate::assistant::llama::quiesce(std::time::Duration::from_secs(10)) {
        return code;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let status = (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .map_or(1, i32::from);
    // SAFETY: `_exit` only ends the process; every buffer Aurora writes through was flushed.
    unsafe { nix::libc::_exit(status) }
}

/// What `aurora` alone prints until the full-screen UI exists.
fn print_overview() {
    println!(
        "Aurora {} — a terminal workspace for ClickHouse.\n\n\
         Run `aurora` on a terminal for the full-screen workspace. Commands:\n\
         \x20 aurora demo              start a private ClickHouse, load sample data, show it\n\
         \x20 aurora ask \"QUESTION\"    plain-language question -> checked read-only SQL -> rows\n\
         \x20 aurora model list        the local models (pull|add|use)\n\
         \x20 aurora query \"SQL\"       run SQL (--format table|json|csv|tsv)\n\
         \x20 aurora schema [TABLE]    list tables or describe one\n\
         \x20 aurora server status     the private server (start|stop|status)\n\
         \x20 aurora pipeline run F    ingest CSV, Kafka, PostgreSQL, MySQL (init|validate|run|status)\n\
         \x20 aurora dashboard suggest templates that fit your tables (list|deploy|show|export)\n\
         \x20 aurora config check      validate the config file\n\
         \x20 aurora audit verify      check the audit log's hash chain (tail|search|head)\n\
         \x20 aurora login             sign in with the configured OpenID provider (logout|whoami)\n\
         \x20 aurora rbac check        what a user may do and read (whoami|render)\n\n\
         Run `aurora --help` for all options.",
        env!("CARGO_PKG_VERSION")
    );
}

/// An error as the user sees it: `error: ...`, then hints, never a backtrace.
pub fn render_error(err: &anyhow::Error) -> String {
    if let Some(ConfigError::Invalid { .. }) = err.downcast_ref::<ConfigError>() {
        return format!("{err}\n");
    }
    let mut out = format!("error: {err}\n");
    if let Some(sql_err) = err.downcast_ref::<query::SqlError>() {
        out = format!("error: {}\n", sql_err.error);
        if let Some(caret) = sql_err.caret() {
            out.push_str(&caret);
        }
        if let Some(hint) = sql_err.error.hint() {
            out.push_str(&format!("hint: {hint}\n"));
        }
        return out;
    }
    if let Some(hint) = err
        .downcast_ref::<crate::assistant::AssistantError>()
        .and_then(|e| e.hint())
    {
        out.push_str(&format!("hint: {hint}\n"));
        return out;
    }
    if let Some(hint) = err
        .downcast_ref::<crate::auth::AuthError>()
        .and_then(|e| e.hint())
    {
        out.push_str(&format!("hint: {hint}\n"));
        return out;
    }
    if let Some(audit) = err.downcast_ref::<crate::audit::AuditError>() {
        out.push_str(&format!("hint: {}\n", audit.hint()));
        return out;
    }
    if let Some(hint) = err.downcast_ref::<WarehouseError>().and_then(|e| e.hint()) {
        out.push_str(&format!("hint: {hint}\n"));
    }
    out
}
