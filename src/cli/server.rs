//! `aurora server start|stop|status`: the private ClickHouse server outside of any one
//! command, so repeated `aurora query` calls reuse one running server.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::warehouse::local_server::{self, ServerStatus};
use crate::warehouse::{ConnectionSettings, Warehouse};

use super::session::{load_config, local_options, start_local};
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub action: ServerAction,
    /// Data directory of the private server [default: ~/.local/share/aurora/clickhouse]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServerAction {
    /// Start the private server (or report the one already running) and leave it running
    Start,
    /// Stop the private server gracefully
    Stop,
    /// Say whether the private server runs, where, and which version (exit 3 if not running)
    Status {
        /// Print the status as JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(global: &GlobalArgs, args: ServerArgs) -> Result<ExitCode> {
    let config = load_config(global)?;
    let mut opts = local_options(&config);
    if let Some(dir) = args.data_dir {
        opts.data_dir = std::path::absolute(&dir).unwrap_or(dir);
    }
    match args.action {
        ServerAction::Start => {
            let server = start_local(opts).await?;
            let dir = server.state.data_dir.clone();
            tokio::task::spawn_blocking(move || local_server::pin(&dir)).await??;
            let version = version_of(&server.url()).await;
            let verb = if server.started_here {
                "started"
            } else {
                "already running"
            };
            println!(
                "ClickHouse {} {verb}: {} (pid {}, data in {})",
                version.as_deref().unwrap_or("?"),
                server.url(),
                server.state.pid,
                server.state.data_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ServerAction::Stop => {
            let dir = opts.data_dir.clone();
            match tokio::task::spawn_blocking(move || local_server::stop(&dir)).await?? {
                Some(state) => println!("stopped the private server (pid {})", state.pid),
                None => println!("the private server is not running"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ServerAction::Status { json } => {
            let status = local_server::status(&opts.data_dir);
            let (state_word, state) = match &status {
                ServerStatus::Running(s) => ("running", Some(s)),
                ServerStatus::Stale(s) => ("stale", Some(s)),
                ServerStatus::NotRunning => ("stopped", None),
            };
            let version = match &status {
                ServerStatus::Running(s) => version_of(&s.url()).await,
                _ => None,
            };
            if json {
                let value = serde_json::json!({
                    "state": state_word,
                    "url": state.map(|s| s.url()),
                    "pid": state.map(|s| s.pid),
                    "http_port": state.map(|s| s.http_port),
                    "tcp_port": state.map(|s| s.tcp_port),
                    "version": version,
                    "pinned": state.map(|s| s.pinned),
                    "data_dir": opts.data_dir,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                match &status {
                    ServerStatus::Running(s) => println!(
                        "running: ClickHouse {} at {} (pid {}, native port {}, data in {})",
                        version.as_deref().unwrap_or("?"),
                        s.url(),
                        s.pid,
                        s.tcp_port,
                        s.data_dir.display()
                    ),
                    ServerStatus::Stale(s) => println!(
                        "stopped: the last server (pid {}) is gone, probably after a crash; \
                         `aurora server start` starts a new one",
                        s.pid
                    ),
                    ServerStatus::NotRunning => {
                        println!("stopped: no private server in {}", opts.data_dir.display())
                    }
                }
            }
            Ok(if matches!(status, ServerStatus::Running(_)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}

async fn version_of(url: &str) -> Option<String> {
    Warehouse::connect(ConnectionSettings::new(url))
        .await
        .ok()
        .map(|w| w.capabilities().version_text.clone())
}
