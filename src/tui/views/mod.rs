//! Each view's update logic beside the shared state in `app`: keys and job results become
//! state changes and commands for the job runner, one file per view. `app` keeps the state,
//! the messages, key handling and what is common to all views.

pub mod ask;
pub mod dashboards;
pub mod history;
pub mod pipelines;
pub mod schema;

use crate::tui::action::Action;

/// Moves a list selection for a navigation action; false when the action is not one.
pub(crate) fn move_selection(selected: &mut usize, len: usize, action: Action) -> bool {
    let last = len.saturating_sub(1);
    *selected = match action {
        Action::MoveDown => (*selected + 1).min(last),
        Action::MoveUp => selected.saturating_sub(1),
        Action::GoToTop => 0,
        Action::GoToBottom => last,
        Action::PageDown => (*selected + 10).min(last),
        Action::PageUp => selected.saturating_sub(10),
        _ => return false,
    };
    true
}
