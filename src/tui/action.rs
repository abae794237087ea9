//! Actions: every change a user can ask for, named as a verb. Key maps turn keys into actions
//! (`keymap.rs`, rebindable in `ui.keymap`); `app::update` applies them to the state.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    ToggleHelp,
    NextView,
    PreviousView,
    ShowAsk,
    ShowPipelines,
    ShowSchema,
    ShowHistory,
    ShowDashboards,
    /// Deploy the dashboard template that fits the selected table best, and open it.
    DeployDashboard,
    /// Show the focused dashboard panel on the whole screen, or back on the grid.
    ZoomPanel,
    NextTimeRange,
    PreviousTimeRange,
    /// Move to the next of a dashboard's variables.
    NextVariable,
    NextVariableValue,
    PreviousVariableValue,
    /// Start typing a filter for the list or table in view (`/`).
    StartFilter,
    /// Leave the current mode: close help, a prompt or the filter, or move focus out of a text box.
    Back,
    MoveUp,
    MoveDown,
    MoveLeft,
    MoveRight,
    PageUp,
    PageDown,
    GoToTop,
    GoToBottom,
    /// Enter on a list: run the suggestion, open the table, rerun the query…
    Select,
    /// Put the cursor in the question box.
    FocusQuestion,
    /// Put the cursor in the SQL box to edit the query in place.
    EditSql,
    /// Open the SQL in `$EDITOR`.
    OpenEditor,
    /// Run the SQL box as written.
    RunSql,
    ToggleChart,
    CycleChart,
    ExportResult,
    ClearConversation,
    PausePipeline,
    ResumePipeline,
    RestartPipeline,
    /// Send the selected pipeline's dead letters through its current mapping again (a dry
    /// run first, then, pressed again, for real).
    ReplayDeadLetters,
    ToggleFavourite,
    /// Keep the answer (or History entry) as a worked example for later questions.
    AcceptAnswer,
}

impl Action {
    /// Every action, in the order the help overlay lists them.
    pub const ALL: &'static [Action] = &[
        Action::ToggleHelp,
        Action::NextView,
        Action::PreviousView,
        Action::ShowAsk,
        Action::ShowPipelines,
        Action::ShowSchema,
        Action::ShowHistory,
        Action::ShowDashboards,
        Action::StartFilter,
        Action::Back,
        Action::MoveUp,
        Action::MoveDown,
        Action::MoveLeft,
        Action::MoveRight,
        Action::PageUp,
        Action::PageDown,
        Action::GoToTop,
        Action::GoToBottom,
        Action::Select,
        Action::FocusQuestion,
        Action::EditSql,
        Action::OpenEditor,
        Action::RunSql,
        Action::ToggleChart,
        Action::CycleChart,
        Action::ExportResult,
        Action::ClearConversation,
        Action::PausePipeline,
        Action::ResumePipeline,
        Action::RestartPipeline,
        Action::ReplayDeadLetters,
        Action::ToggleFavourite,
        Action::AcceptAnswer,
        Action::DeployDashboard,
        Action::ZoomPanel,
        Action::NextTimeRange,
        Action::PreviousTimeRange,
        Action::NextVariable,
        Action::NextVariableValue,
        Action::PreviousVariableValue,
        Action::Quit,
    ];

    /// The name used in `ui.keymap`.
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut name = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        }
        name
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "quit (asks while pipelines run)",
            Action::ToggleHelp => "show or hide this help",
            Action::NextView => "next view",
            Action::PreviousView => "previous view",
            Action::ShowAsk => "Ask view",
            Action::ShowPipelines => "Pipelines view",
            Action::ShowSchema => "Schema view",
            Action::ShowHistory => "History view",
            Action::ShowDashboards => "Dashboards view",
            Action::DeployDashboard => "deploy the best-fitting dashboard on the table and open it",
            Action::ZoomPanel => "zoom the panel to the whole screen, or back",
            Action::NextTimeRange => "next time range (dashboard's own, 5m … 90d)",
            Action::PreviousTimeRange => "previous time range",
            Action::NextVariable => "next dashboard variable",
            Action::NextVariableValue => "the variable's next value",
            Action::PreviousVariableValue => "the variable's previous value",
            Action::StartFilter => "filter the list or table",
            Action::Back => "close, clear the filter, or leave the text box",
            Action::MoveUp => "up",
            Action::MoveDown => "down",
            Action::MoveLeft => "left / scroll columns",
            Action::MoveRight => "right / scroll columns",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::GoToTop => "first row",
            Action::GoToBottom => "last row",
            Action::Select => "run / open the selected item",
            Action::FocusQuestion => "type a question",
            Action::EditSql => "edit the SQL in place (Enter runs it); a panel's SQL to Ask",
            Action::OpenEditor => "edit the SQL in $EDITOR",
            Action::RunSql => "run the SQL as written",
            Action::ToggleChart => "show the chart or the table",
            Action::CycleChart => "chart kind: line, bar, sparkline",
            Action::ExportResult => "export the result to CSV or JSON",
            Action::ClearConversation => "forget the previous question (no refining)",
            Action::PausePipeline => "pause the pipeline / the dashboard's refresh",
            Action::ResumePipeline => "resume the pipeline / refresh the dashboard now",
            Action::RestartPipeline => "restart the pipeline",
            Action::ReplayDeadLetters => "replay the pipeline's dead letters (count, then write)",
            Action::ToggleFavourite => "mark or unmark as favourite",
            Action::AcceptAnswer => "the answer is right: keep it as an example",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(&action.name()), Some(*action));
            let parsed: Action = serde_yaml::from_str(&action.name()).unwrap();
            assert_eq!(parsed, *action);
        }
        assert_eq!(Action::ToggleHelp.name(), "toggle_help");
    }
}
