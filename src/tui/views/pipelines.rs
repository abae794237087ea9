//! The Pipelines view's update logic: snapshots from the supervisor (or other processes'
//! status files) become rows with a sparkline of their rates; keys pause, resume and restart
//! the selected pipeline.

use crate::ingest::supervisor::{PipelineControl, PipelineSnapshot};
use crate::tui::action::Action;
use crate::tui::app::*;

use super::move_selection;

pub(crate) fn on_pipelines(state: &mut State, snapshots: Vec<PipelineSnapshot>) {
    let mut old = std::mem::take(&mut state.pipelines.rows);
    state.pipelines.controllable = snapshots.iter().any(|s| s.controllable);
    state.pipelines.rows = snapshots
        .into_iter()
        .map(|snapshot| {
            let rates = old
                .iter_mut()
                .find(|r| r.snapshot.status.name == snapshot.status.name)
                .map(|r| std::mem::take(&mut r.rates))
                .unwrap_or_default();
            PipelineRow { snapshot, rates }
        })
        .collect();
    let len = state.pipelines.rows.len();
    state.pipelines.selected = state.pipelines.selected.min(len.saturating_sub(1));
}

/// The daemon stopped answering, or answers again: said on the notice line and kept for the
/// view's title.
pub(crate) fn on_daemon_trouble(state: &mut State, trouble: Option<String>) {
    let url = state.pipelines.daemon.clone().unwrap_or_default();
    match &trouble {
        Some(e) => state.notify(Level::Warning, e.clone()),
        None if state.pipelines.daemon_error.is_some() => {
            state.notify(Level::Info, format!("aurora serve at {url} answers again"))
        }
        None => {}
    }
    state.pipelines.daemon_error = trouble;
}

/// One sparkline sample per pipeline and second of wall time, paused and idle ones included.
pub(crate) fn sample_rates(state: &mut State, previous_ms: u64) {
    if previous_ms / 1000 == state.now / 1000 {
        return;
    }
    for row in &mut state.pipelines.rows {
        row.rates.push_back(row.rate().round() as u64);
        while row.rates.len() > RATE_HISTORY {
            row.rates.pop_front();
        }
    }
}

pub(crate) fn pipelines_action(state: &mut State, action: Action) -> Vec<Command> {
    let pipelines = &mut state.pipelines;
    if move_selection(&mut pipelines.selected, pipelines.rows.len(), action) {
        return Vec::new();
    }
    let control = match action {
        Action::PausePipeline => Some(PipelineControl::Pause),
        Action::ResumePipeline => Some(PipelineControl::Resume),
        Action::RestartPipeline => Some(PipelineControl::Restart),
        _ => None,
    };
    let Some(control) = control else {
        return Vec::new();
    };
    let Some(row) = pipelines.rows.get(pipelines.selected) else {
        return Vec::new();
    };
    let name = row.snapshot.status.name.clone();
    if !row.snapshot.controllable {
        let pid = row.snapshot.status.pid;
        state.notify(
            Level::Warning,
            format!("`{name}` runs in another process (pid {pid}); control it there"),
        );
        return Vec::new();
    }
    pipelines.pending = Some((name.clone(), control));
    vec![Command::ControlPipeline { name, control }]
}
