//! The full-screen workspace (ratatui + crossterm). One task owns the `State`; key presses,
//! ticks, job results and pipeline snapshots arrive as messages, `update` turns them into state
//! changes and commands, jobs run the commands in the background, and `ui` draws the state.

pub mod theme;
pub mod widgets;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::ingest::supervisor::Supervisor;
use crate::warehouse::Warehouse;

/// What the workspace runs against.
pub struct TuiContext {
    pub warehouse: Arc<Warehouse>,
    pub config: Config,
    /// Shown in the status bar, e.g. `private 127.0.0.1:38211` or the server's URL.
    pub server_label: String,
    /// Pipelines this process runs (the demo's); `None` shows those of other processes.
    pub supervisor: Option<Arc<Supervisor>>,
    /// Where `aurora pipeline run` processes publish their status files.
    pub state_dir: PathBuf,
}

/// Runs the workspace until the user quits. The terminal is restored on every way out.
pub async fn run(_ctx: TuiContext) -> anyhow::Result<()> {
    anyhow::bail!("the full-screen workspace is being built")
}
