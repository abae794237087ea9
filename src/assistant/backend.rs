//! The one interface every model backend implements: chat messages in, streamed text out,
//! cancellable. The local backend (`llama`) runs a GGUF file in-process; `openai` calls any
//! OpenAI-compatible HTTP endpoint. The question-to-SQL pipeline only sees this trait.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::error::AssistantError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// One completion to produce.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub messages: Vec<ChatMessage>,
    /// Text the answer must start with; it is part of the prompt, not of the returned text.
    /// (Starting the answer with `SELECT` keeps small models from chatting.)
    pub answer_prefix: String,
    pub max_tokens: u32,
    /// Generation stops before any of these strings; they are not returned.
    pub stop: Vec<String>,
    /// A GBNF grammar the answer (after `answer_prefix`) must follow. Backends that cannot
    /// constrain decoding ignore it; the validator checks the result either way.
    pub grammar: Option<String>,
    /// The names the answer may use, checked on the text so far as each token is chosen
    /// (column-constrained decoding). Backends that cannot check ignore it.
    pub names: Option<std::sync::Arc<super::columns::NameGuard>>,
    /// The whole generation, prompt processing included, must end within this time.
    pub timeout: Duration,
    /// 0: always the most likely token (the same prompt gives the same answer). Repair
    /// attempts sample a little, so that a retry can differ from the failed answer.
    pub temperature: f32,
    pub seed: u64,
}

/// What a backend produced, with its own timings.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: u32,
    /// Prompt tokens that were already evaluated (a reused prefix) and cost nothing.
    pub cached_prompt_tokens: u32,
    pub generated_tokens: u32,
    #[serde(serialize_with = "millis")]
    #[serde(rename = "prompt_ms")]
    pub prompt_time: Duration,
    #[serde(serialize_with = "millis")]
    #[serde(rename = "generation_ms")]
    pub generation_time: Duration,
    /// Tokens the grammar rejected, each replaced by a resampled one.
    pub grammar_resamples: u32,
}

/// A model that turns chat messages into text.
pub trait ModelBackend: Send + Sync {
    /// A short name for output (`qwen2.5-coder-0.5b-instruct-q4`, `openai:gpt-4o-mini`).
    fn model_id(&self) -> String;

    /// Whether evaluated prompts are kept between requests, so that evaluating a prompt's
    /// prefix ahead of time ([`Assistant::warm_up`](super::Assistant::warm_up)) makes later
    /// questions on it faster. A request with `max_tokens: 0` only evaluates its prompt.
    fn keeps_prompts(&self) -> bool {
        false
    }

    /// Generates one answer. Each piece of text is also sent to `tokens` as soon as it is
    /// known (the receiver may be gone; that is not an error). Resolves to
    /// [`AssistantError::Cancelled`] soon after `cancel` fires.
    fn generate<'a>(
        &'a self,
        request: GenerateRequest,
        tokens: Option<UnboundedSender<String>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Generation, AssistantError>>;
}

/// Cuts `text` before the first stop string, if any. Returns whether one was found.
pub fn cut_at_stop(text: &mut String, stop: &[String]) -> bool {
    let first = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    match first {
        Some(at) => {
            text.truncate(at);
            true
        }
        None => false,
    }
}

/// Durations in machine-readable output: milliseconds, as a number.
pub fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_earliest_stop_string() {
        let mut text = "SELECT 1\n```\nmore;".to_string();
        assert!(cut_at_stop(&mut text, &[";".into(), "```".into()]));
        assert_eq!(text, "SELECT 1\n");
        let mut text = "SELECT 1".to_string();
        assert!(!cut_at_stop(&mut text, &[";".into()]));
    }
}
