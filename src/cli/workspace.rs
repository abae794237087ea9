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

pub async fn run(global: &GlobalArgs) -> Result<ExitCode> {
    let session = Session::open(global).await?;
    let ctx = crate::tui::TuiContext {
        warehouse: session.warehouse.clone(),
        config: session.config.clone(),
        server_label: server_label(&session),
        supervisor: None,
        state_dir: crate::ingest::engine::default_state_dir(),
        focus_database: None,
        dashboards: crate::dashboards::library::Dirs::beside(global.config.as_deref()),
        extra_dashboards: Vec::new(),
    };
    let outcome = crate::tui::run(ctx).await;
    session.close().await;
    outcome.map(|()| ExitCode::SUCCESS)
}
