//! The Pipelines view's update logic: snapshots from the supervisor (or other processes'
//! status files) become rows with a sparkline of their rates; keys pause, resume and restart
//! the selected pipeline and replay its dead letters.

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
        pipelines.replay_offer = None;
        return Vec::new();
    }
    if action == Action::ReplayDeadLetters {
        return replay_action(state);
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

/// `d`: a dry run of the selected pipeline's dead letters first; `d` again after it found
/// some passing replays them. Only pipelines of this process (the demo's) can be replayed from
/// here; for others the notice gives the command.
fn replay_action(state: &mut State) -> Vec<Command> {
    let pipelines = &mut state.pipelines;
    let Some(row) = pipelines.rows.get(pipelines.selected) else {
        return Vec::new();
    };
    let name = row.snapshot.status.name.clone();
    if !row.snapshot.controllable {
        state.notify(Level::Warning, replay_elsewhere(&name));
        return Vec::new();
    }
    if pipelines.replaying.is_some() {
        state.notify(Level::Info, "a replay is running; wait for it to finish");
        return Vec::new();
    }
    let dry_run = pipelines.replay_offer.as_deref() != Some(name.as_str());
    pipelines.replay_offer = None;
    pipelines.replaying = Some(name.clone());
    let doing = if dry_run {
        "counting which dead letters pass the current mapping"
    } else {
        "replaying dead letters"
    };
    state.notify(Level::Info, format!("pipeline `{name}`: {doing}…"));
    vec![Command::ReplayDeadLetters { name, dry_run }]
}

/// Where to replay the dead letters of a pipeline this process does not run.
pub(crate) fn replay_elsewhere(name: &str) -> String {
    format!(
        "`{name}` runs in another process; replay its dead letters with \
         `aurora pipeline replay FILE --pipeline {name}` where it runs"
    )
}

/// A replay's report, on the notice line; a dry run that found records passing offers the
/// real one.
pub(crate) fn on_replayed(
    state: &mut State,
    name: String,
    dry_run: bool,
    result: Result<crate::ingest::replay::ReplayReport, String>,
) {
    state.pipelines.replaying = None;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            state.notify(Level::Error, format!("pipeline `{name}`: replay: {e}"));
            return;
        }
    };
    let failing: u64 = report.still_failing.values().sum();
    let reason = report
        .still_failing
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(reason, _)| format!(" (most often: {reason})"))
        .unwrap_or_default();
    let (level, text) = if report.examined == 0 {
        (Level::Info, "no dead letters to replay".to_string())
    } else if dry_run && report.passing == 0 {
        (
            Level::Warning,
            format!(
                "none of {} dead letters passes the current mapping{reason}; fix the mapping and restart the pipeline first",
                report.examined
            ),
        )
    } else if dry_run {
        state.pipelines.replay_offer = Some(name.clone());
        (
            Level::Info,
            format!(
                "{} of {} dead letters pass the current mapping; press d again to write them and remove them from the dead-letter table",
                report.passing, report.examined
            ),
        )
    } else {
        (
            if failing > 0 { Level::Warning } else { Level::Info },
            format!(
                "replayed {} dead letters: {} written, {} already in the table, {} removed; {failing} still failing{reason}",
                report.passing, report.written, report.already_in_table, report.removed
            ),
        )
    };
    state.notify(level, format!("pipeline `{name}`: {text}"));
}
