//! Everything that can go wrong between a question and its rows, in words a user can act on.

use std::path::PathBuf;
use std::time::Duration;

use crate::warehouse::WarehouseError;

#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    #[error(
        "no model file found for `{model}`; looked in: {}",
        list_paths(looked_in)
    )]
    ModelMissing {
        model: String,
        looked_in: Vec<PathBuf>,
    },
    #[error("cannot load the model {}: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },
    #[error("the model endpoint {url} is unreachable: {reason}")]
    EndpointUnreachable { url: String, reason: String },
    #[error("the model endpoint {url} answered HTTP {status}: {body}")]
    EndpointStatus {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the model endpoint {url} sent something unexpected: {detail}")]
    EndpointProtocol { url: String, detail: String },
    #[error("the model took longer than {} to answer", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("cancelled")]
    Cancelled,
    #[error("the question is empty")]
    EmptyQuestion,
    #[error("the question is {chars} characters long; the limit is {limit}")]
    QuestionTooLong { chars: usize, limit: usize },
    #[error("{0}")]
    NoSuchData(String),
    #[error("no valid SQL after {attempts} attempt(s); the last problem: {last_error}")]
    NoValidSql { attempts: usize, last_error: String },
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl AssistantError {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            AssistantError::ModelMissing { .. } => Some(
                "run `aurora model pull` to install the default model, `aurora model list` to \
                 see the others, or pass --model PATH to a .gguf file"
                    .into(),
            ),
            AssistantError::ModelLoad { .. } => Some(
                "the file may be truncated or not a GGUF model; `aurora model pull` fetches \
                 and verifies the default one again"
                    .into(),
            ),
            AssistantError::EndpointUnreachable { .. } => Some(
                "check `assistant.openai.base_url` (or --endpoint) and that the server is running"
                    .into(),
            ),
            AssistantError::EndpointStatus {
                status: 401 | 403, ..
            } => Some(
                "the API key was refused: set the variable named by `assistant.openai.api_key_env`"
                    .into(),
            ),
            AssistantError::Timeout(_) => Some(
                "a smaller model, fewer tables in the question, or more CPU threads \
                 (`assistant.threads`) make answers faster"
                    .into(),
            ),
            AssistantError::Warehouse(e) => e.hint(),
            _ => None,
        }
    }
}
