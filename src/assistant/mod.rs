//! The SQL assistant: a plain-language question in, a checked read-only ClickHouse query and
//! its rows out. Data flows question → schema linking (`linking`) → prompt (`prompt`) → a
//! model backend (`llama` in-process, or `openai` over HTTP) constrained by a grammar
//! (`grammar`) → rewriting and validation (`validate`: parser, identifiers, the server's dry
//! run) → repair attempts fed with the error → execution through the warehouse, read-only.
//! `conversation` keeps the context for follow-up questions; `suggest` proposes questions
//! from the schema; `catalog` knows the models and where their files are.

pub mod ask;
pub mod backend;
pub mod catalog;
pub mod columns;
pub mod conversation;
pub mod error;
pub mod examples;
pub mod grammar;
pub mod grounding;
pub mod joins;
pub mod linking;
pub mod llama;
pub mod nest;
pub mod openai;
pub mod prompt;
pub mod shape;
pub mod suggest;
pub mod validate;

pub use ask::{Alternative, Answer, AskOptions, Assistant, Attempt, Confidence};
pub use backend::{ChatMessage, GenerateRequest, Generation, ModelBackend, Role};
pub use error::AssistantError;

use std::sync::Arc;

use crate::config::{AssistantConfig, Backend};
use crate::warehouse::Warehouse;

/// An assistant over `warehouse` with what the config says about the schema: the databases
/// questions are about, declared joins and synonyms. The examples the user confirmed are the
/// front end's to add (`examples::load_default`), so a benchmark runs without them.
pub fn configured(
    backend: Arc<dyn ModelBackend>,
    warehouse: Arc<Warehouse>,
    config: &AssistantConfig,
) -> Assistant {
    Assistant::new(backend, warehouse)
        .with_access(crate::rbac::current())
        .with_databases(config.databases.clone())
        .with_relationships(
            config
                .relationships
                .iter()
                .map(|r| (r.from.clone(), r.to.clone()))
                .collect(),
        )
        .with_synonyms(
            config
                .synonyms
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
}

/// The backend the config (and the `--model`/`--endpoint` flags) ask for. A local model
/// starts loading in the background right away.
pub fn backend_for(
    config: &AssistantConfig,
    model_flag: Option<&str>,
    endpoint_flag: Option<&str>,
) -> Result<Arc<dyn ModelBackend>, AssistantError> {
    if endpoint_flag.is_some() || config.backend == Backend::OpenAi {
        let openai = &config.openai;
        let base_url = endpoint_flag.unwrap_or(&openai.base_url);
        let model = model_flag.unwrap_or(&openai.model);
        let key = std::env::var(&openai.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        return Ok(Arc::new(
            openai::OpenAiBackend::new(base_url, model, key)?.with_grammar(openai.grammar),
        ));
    }
    let resolved = catalog::resolve(model_flag, config)?;
    let threads = match config.threads {
        0 => llama::default_threads(),
        n => n,
    };
    let prompt_cache = directories::ProjectDirs::from("", "", "aurora")
        .map(|d| d.cache_dir().join("prompt-cache"));
    Ok(Arc::new(llama::LocalModel::spawn_with_prompt_cache(
        resolved.id,
        resolved.path,
        threads,
        prompt_cache,
    )))
}
