//! `aurora` with no subcommand on a terminal: the full-screen workspace over the configured
//! server (or the private one), showing the pipelines other `aurora` processes run.

use std::process::ExitCode;

use anyhow::Result;

use super::session::Session;
use super::GlobalArgs;

/// What the status bar calls the server: `private 127.0.0.1:PORT` or the URL it was given.
pub fn server_label(session: &Session) -> String {
    let url = session.warehouse.settings().url.clone();
    match &session.local {
        Some(_) => format!(
            "private {}",
            url.trim_start_matches("http://").trim_end_matches('/')
        ),
        None => url,
    }
}

/// Where the workspace finds pipelines: the daemon `serve.url` names (even when it does not
/// answer yet: the view says so), else an `aurora serve` at `serve.listen` on this machine if
/// one answers, else the status files of `aurora pipeline run`.
async fn pipeline_host(serve: &crate::config::ServeConfig) -> crate::tui::PipelineHost {
    use crate::tui::PipelineHost;
    let files = PipelineHost::Files(crate::ingest::engine::default_state_dir());
    let client = match crate::serve::client::DaemonClient::for_config(serve) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("not connecting to aurora serve: {e}");
            return files;
        }
    };
    if serve.url.is_some() {
        return PipelineHost::Daemon(client);
    }
    match client.probe().await {
        Ok(()) => {
            tracing::info!("pipelines from aurora serve at {}", client.url());
            PipelineHost::Daemon(client)
        }
        Err(e) => {
            tracing::debug!("no aurora serve here: {e}");
            files
        }
    }
}

pub async fn run(global: &GlobalArgs) -> Result<ExitCode> {
    run_with(global, None).await
}

/// The workspace, opened on `dashboard` (its name and the dashboard) when given.
pub async fn run_with(
    global: &GlobalArgs,
    dashboard: Option<(String, crate::dashboards::Dashboard)>,
) -> Result<ExitCode> {
    use std::io::IsTerminal;
    if dashboard.is_some() && !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        anyhow::bail!(
            "`aurora dashboard open` needs a terminal; `aurora dashboard show NAME --once` prints \
             every panel once"
        );
    }
    let session = Session::open(global).await?;
    let ctx = crate::tui::TuiContext {
        warehouse: session.warehouse.clone(),
        config: session.config.clone(),
        server_label: server_label(&session),
        pipelines: pipeline_host(&session.config.serve).await,
        focus_database: None,
        dashboards: crate::dashboards::library::Dirs::beside(global.config.as_deref()),
        open_dashboard: dashboard.as_ref().map(|(name, _)| name.clone()),
        extra_dashboards: dashboard.into_iter().collect(),
    };
    let outcome = crate::tui::run(ctx).await;
    session.close().await;
    outcome.map(|()| ExitCode::SUCCESS)
}
