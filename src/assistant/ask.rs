//! The question-to-rows pipeline. For each attempt: build the prompt, let the model write,
//! cut the SQL out of its answer, check it (parser, names, the server's dry run) and, when a
//! check fails, try again with the error in the prompt, up to `max_attempts`. The first query
//! that passes runs read-only with row and time limits. Every attempt is kept for display.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::backend::{millis, GenerateRequest, Generation, ModelBackend};
use super::conversation::Conversation;
use super::error::AssistantError;
use super::grammar;
use super::linking::{self, shares_key, user_tables, LinkedSchema, ValueSamples};
use super::prompt::{self, Example, Failure, ANSWER_PREFIX};
use super::shape;
use super::validate::{self, Problem};
use crate::warehouse::schema::{Schema, TableInfo};
use crate::warehouse::value::Value;
use crate::warehouse::{QueryOptions, QueryResult, Warehouse, WarehouseError};

/// Longest question accepted; anything longer is a paste accident, not a question.
pub const MAX_QUESTION_CHARS: usize = 2000;

/// Sent on the token stream before each retry's text, followed by why the previous attempt was
/// refused, so a viewer can say so and start the SQL afresh.
pub const ATTEMPT_SEPARATOR: &str = "\u{1e}";

/// Which pipeline to run. `Plain` exists for the benchmark's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Linking, examples, grammar, rewriting, validation, dry run and repair.
    Full,
    /// Every table in the prompt, one attempt, no grammar, no examples, no repair.
    Plain,
}

#[derive(Debug, Clone)]
pub struct AskOptions {
    pub mode: Mode,
    pub max_attempts: usize,
    /// For each attempt's generation, prompt processing included.
    pub generation_timeout: Duration,
    pub max_answer_tokens: u32,
    /// Run the accepted query (false: `--sql-only`).
    pub execute: bool,
    pub max_result_rows: u64,
    pub max_execution_time: Duration,
    /// Tables in the prompt at most.
    pub max_tables: usize,
    /// Examples chosen by similarity, after the fixed ones for the linked tables.
    pub examples: usize,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Full,
            max_attempts: 3,
            generation_timeout: Duration::from_secs(60),
            max_answer_tokens: 200,
            execute: true,
            max_result_rows: 10_000,
            max_execution_time: Duration::from_secs(30),
            max_tables: 3,
            examples: 1,
        }
    }
}

/// One try at writing the query.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    /// The SQL as checked (after rewriting).
    pub sql: String,
    /// What the model wrote, after the forced prefix.
    pub raw: String,
    /// Why it was refused; `None` for the accepted attempt.
    pub error: Option<String>,
    /// `parse`, `schema`, `server` or `execution`, with `error`.
    pub stage: Option<&'static str>,
    pub generation: Generation,
    #[serde(serialize_with = "millis", rename = "validation_ms")]
    pub validation_time: Duration,
    /// What was fitted to the question before the check (see [`shape`]), one note each.
    pub fixes: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    #[serde(serialize_with = "millis", rename = "generation_ms")]
    pub generation: Duration,
    #[serde(serialize_with = "millis", rename = "validation_ms")]
    pub validation: Duration,
    #[serde(serialize_with = "millis", rename = "execution_ms")]
    pub execution: Duration,
}

/// The outcome of a question.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Answer {
    pub question: String,
    pub model: String,
    /// Tables put in the prompt.
    pub tables: Vec<String>,
    /// The accepted query; `None` when every attempt failed (see `failure`).
    pub sql: Option<String>,
    pub failure: Option<String>,
    pub attempts: Vec<Attempt>,
    #[serde(skip)]
    pub result: Option<QueryResult>,
    pub timings: Timings,
}

/// The schema as the assistant sees it: tables and the values of low-cardinality columns.
#[derive(Debug)]
pub struct SchemaContext {
    pub schema: Arc<Schema>,
    pub samples: ValueSamples,
    /// The server's function names (case-insensitive ones also in capitals), for the
    /// grammar; empty when `system.functions` cannot be read.
    pub functions: Vec<String>,
}

/// Tables whose prompt prefix the workspace evaluates ahead of the first question, each
/// alone, plus one pair of them that shares a key in both orders: eight prompts, as many as
/// the local model remembers.
pub const WARM_TABLES: usize = 6;

/// Writes and runs queries for questions, over one warehouse and one model.
pub struct Assistant {
    backend: Arc<dyn ModelBackend>,
    warehouse: Arc<Warehouse>,
    context: OnceCell<Arc<SchemaContext>>,
    /// Questions the user accepted before, used as examples.
    history: Vec<Example>,
}

impl Assistant {
    pub fn new(backend: Arc<dyn ModelBackend>, warehouse: Arc<Warehouse>) -> Self {
        Self {
            backend,
            warehouse,
            context: OnceCell::new(),
            history: Vec::new(),
        }
    }

    pub fn with_history(mut self, history: Vec<Example>) -> Self {
        self.history = history;
        self
    }

    pub fn model_id(&self) -> String {
        self.backend.model_id()
    }

    /// The schema and value samples, read from the server on first use.
    pub async fn schema_context(&self) -> Result<Arc<SchemaContext>, AssistantError> {
        let context = self
            .context
            .get_or_try_init(|| async {
                let schema = self.warehouse.schema(false).await?;
                let samples = ValueSamples::load(&self.warehouse, &schema).await?;
                let functions = server_functions(&self.warehouse).await?;
                Ok::<_, WarehouseError>(Arc::new(SchemaContext {
                    schema,
                    samples,
                    functions,
                }))
            })
            .await?;
        Ok(Arc::clone(context))
    }

    /// Evaluates ahead of any question the prompt prefix (rules, table, worked examples) of
    /// each user table, the largest first, up to `limit` tables, so that the first question on
    /// one of them does not wait for it, then the join prompt of the first two of them that
    /// share a key, in both orders. Only for backends that keep prompts; stops at once when
    /// `cancel` fires (a question was asked). Returns each table set evaluated (`a + b` for a
    /// pair), with the evaluation's figures.
    pub async fn warm_up(
        &self,
        limit: usize,
        cancel: CancellationToken,
    ) -> Result<Vec<(String, Generation)>, AssistantError> {
        let mut warmed = Vec::new();
        if !self.backend.keeps_prompts() {
            return Ok(warmed);
        }
        let context = self.schema_context().await?;
        let mut tables: Vec<_> = user_tables(&context.schema).collect();
        tables.sort_by_key(|t| std::cmp::Reverse(t.total_rows));
        tables.truncate(limit);
        let mut sets: Vec<Vec<&TableInfo>> = tables.iter().map(|t| vec![*t]).collect();
        // Then the first two of those tables that share a key, in both orders (the linker
        // puts the better-matching one first): a join question's prompt.
        let pair = tables.iter().enumerate().find_map(|(i, a)| {
            let b = tables[i + 1..].iter().find(|b| shares_key(a, b))?;
            Some((*a, *b))
        });
        if let Some((a, b)) = pair {
            sets.push(vec![a, b]);
            sets.push(vec![b, a]);
        }
        for set in sets {
            if cancel.is_cancelled() {
                break;
            }
            // The prompt of a question that links these tables, up to the question.
            let linked = LinkedSchema::of(set.iter().copied());
            let system = prompt::system_message(
                set.iter().copied(),
                &context.samples,
                self.warehouse.capabilities(),
            );
            let examples = prompt::examples_for(&linked, &context.samples).core;
            let request = GenerateRequest {
                messages: prompt::prefix_messages(system, &examples),
                answer_prefix: String::new(),
                max_tokens: 0,
                stop: Vec::new(),
                grammar: None,
                timeout: Duration::from_secs(300),
                temperature: 0.0,
                seed: 0,
            };
            match self.backend.generate(request, None, cancel.clone()).await {
                Ok(generation) => {
                    let names: Vec<String> = set.iter().map(|t| t.qualified_name()).collect();
                    warmed.push((names.join(" + "), generation));
                }
                Err(AssistantError::Cancelled) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(warmed)
    }

    /// Answers `question`, refining the conversation's last query when there is one.
    /// Model text streams to `tokens` as it is written.
    pub async fn ask(
        &self,
        question: &str,
        conversation: Option<&Conversation>,
        options: &AskOptions,
        tokens: Option<UnboundedSender<String>>,
        cancel: CancellationToken,
    ) -> Result<Answer, AssistantError> {
        let question = question.trim();
        if question.is_empty() {
            return Err(AssistantError::EmptyQuestion);
        }
        let chars = question.chars().count();
        if chars > MAX_QUESTION_CHARS {
            return Err(AssistantError::QuestionTooLong {
                chars,
                limit: MAX_QUESTION_CHARS,
            });
        }
        let context = self.schema_context().await?;
        let schema = &context.schema;
        let previous = conversation.and_then(Conversation::last);
        let linking_text = match conversation {
            Some(c) if previous.is_some() => c.linking_text(question),
            _ => question.to_string(),
        };
        let linked = match options.mode {
            Mode::Full => {
                linking::link(schema, &context.samples, &linking_text, options.max_tables)
            }
            Mode::Plain => LinkedSchema::of(user_tables(schema)),
        };
        if linked.tables.is_empty() {
            return Err(AssistantError::NoSuchData(no_such_data(schema, &linked)));
        }
        let tables: Vec<_> = linked.tables.iter().map(|t| &t.table).collect();
        let system = prompt::system_message(
            tables.iter().copied(),
            &context.samples,
            self.warehouse.capabilities(),
        );
        let (examples, follow_up) = match options.mode {
            Mode::Full => self.examples(question, &linked, &context.samples, options.examples),
            Mode::Plain => (Vec::new(), None),
        };
        let grammar = match options.mode {
            Mode::Full => Some(grammar::for_tables(
                tables.iter().copied(),
                &context.functions,
            )),
            Mode::Plain => None,
        };
        let default_database = self.warehouse.settings().database.clone();

        let mut answer = Answer {
            question: question.to_string(),
            model: self.backend.model_id(),
            tables: linked.table_names(),
            sql: None,
            failure: None,
            attempts: Vec::new(),
            result: None,
            timings: Timings::default(),
        };
        let attempts = match options.mode {
            Mode::Full => options.max_attempts.clamp(1, 10),
            Mode::Plain => 1,
        };
        let mut failure: Option<Failure> = None;
        if let (Mode::Full, Some(turn)) = (options.mode, previous) {
            // Values named by this question only, not by the earlier ones.
            let values: Vec<(String, String)> =
                linking::link(schema, &context.samples, question, options.max_tables)
                    .values
                    .into_iter()
                    .map(|v| (v.column, v.value))
                    .collect();
            if let Some(sql) = super::conversation::refine_by_rule(&turn.sql, question, &values) {
                let attempt = self
                    .checked_attempt(
                        &sql,
                        "(the previous query, refined by rule)".into(),
                        Generation::default(),
                        schema,
                        &default_database,
                        options.mode,
                        &mut answer.timings,
                    )
                    .await?;
                // When the rule's query does not pass, the model gets its turn as usual.
                if attempt.error.is_none() {
                    if self
                        .accept(&mut answer, attempt, sql, options, &cancel)
                        .await?
                        .is_none()
                    {
                        return Ok(answer);
                    }
                } else {
                    answer.attempts.push(attempt);
                }
            }
        }
        for attempt_number in 0..attempts {
            let messages = match options.mode {
                Mode::Full => prompt::messages(
                    system.clone(),
                    &examples,
                    follow_up.as_ref(),
                    previous,
                    &prompt::with_value_hints(question, &linked.values),
                    failure.as_ref(),
                ),
                Mode::Plain => prompt::plain_messages(tables.iter().copied(), question),
            };
            let request = GenerateRequest {
                messages,
                answer_prefix: ANSWER_PREFIX.to_string(),
                max_tokens: options.max_answer_tokens,
                // Not `;`: it may sit inside a string literal. The grammar ends the answer
                // at a statement's `;`, and `extract_sql` cuts there for other backends.
                stop: vec!["```".into(), "\n\n".into()],
                grammar: grammar.clone(),
                timeout: options.generation_timeout,
                temperature: if attempt_number == 0 { 0.0 } else { 0.7 },
                seed: attempt_number as u64,
            };
            if attempt_number > 0 {
                if let Some(tokens) = &tokens {
                    let why = answer.attempts.last().and_then(|a| a.error.as_deref());
                    let _ = tokens.send(format!("{ATTEMPT_SEPARATOR}{}", why.unwrap_or("")));
                }
            }
            let generation = self
                .backend
                .generate(request, tokens.clone(), cancel.clone())
                .await?;
            answer.timings.generation += generation.prompt_time + generation.generation_time;
            let mut sql = validate::extract_sql(ANSWER_PREFIX, &generation.text);
            let mut fixes = Vec::new();
            if options.mode == Mode::Full {
                sql = validate::rewrite(&sql, schema, &default_database);
                let fit = shape::Fit {
                    question,
                    linked: &linked,
                    schema,
                    samples: &context.samples,
                    default_database: &default_database,
                    follow_up: previous.is_some(),
                };
                let (fitted, notes) = shape::fit(&sql, &fit);
                if !notes.is_empty() {
                    // Again: a fix may add what a rewrite mends (a median of a Decimal).
                    sql = validate::rewrite(&fitted, schema, &default_database);
                    fixes = notes;
                }
            }
            let raw = generation.text.clone();
            let mut attempt = self
                .checked_attempt(
                    &sql,
                    raw,
                    generation,
                    schema,
                    &default_database,
                    options.mode,
                    &mut answer.timings,
                )
                .await?;
            attempt.fixes = fixes;
            if let Some(error) = &attempt.error {
                failure = Some(Failure {
                    sql,
                    error: error.clone(),
                });
                answer.attempts.push(attempt);
                continue;
            }
            match self
                .accept(&mut answer, attempt, sql, options, &cancel)
                .await?
            {
                None => return Ok(answer),
                Some(f) => failure = Some(f),
            }
        }
        answer.failure = answer.attempts.last().and_then(|a| a.error.clone());
        Ok(answer)
    }

    /// Takes a query that passed the checks: runs it (unless only SQL is wanted) and records
    /// the attempt. `None`: the answer is complete. `Some`: the run failed on the server, and
    /// the failure is what the next attempt is told.
    async fn accept(
        &self,
        answer: &mut Answer,
        mut attempt: Attempt,
        sql: String,
        options: &AskOptions,
        cancel: &CancellationToken,
    ) -> Result<Option<Failure>, AssistantError> {
        if !options.execute {
            answer.attempts.push(attempt);
            answer.sql = Some(sql);
            return Ok(None);
        }
        match self
            .execute(&sql, options, cancel, &mut answer.timings)
            .await?
        {
            Ok(result) => {
                answer.attempts.push(attempt);
                answer.sql = Some(sql);
                answer.result = Some(result);
                Ok(None)
            }
            // A query that passed the dry run can still fail on the data (a division by
            // zero, a type mismatch at run time): that error goes back to the model too.
            Err(problem) => {
                attempt.error = Some(problem.to_string());
                attempt.stage = Some("execution");
                answer.attempts.push(attempt);
                Ok(Some(Failure {
                    sql,
                    error: problem.to_string(),
                }))
            }
        }
    }

    /// Runs an accepted query read-only with the limits. A server error is the query's
    /// problem (for a repair attempt); anything else (the server gone) is the answer's.
    async fn execute(
        &self,
        sql: &str,
        options: &AskOptions,
        cancel: &CancellationToken,
        timings: &mut Timings,
    ) -> Result<Result<QueryResult, Problem>, AssistantError> {
        let started = Instant::now();
        let limits = self.query_options(options);
        let run = tokio::select! {
            r = self.warehouse.query(sql, &limits) => r,
            () = cancel.cancelled() => return Err(AssistantError::Cancelled),
        };
        timings.execution += started.elapsed();
        match run {
            Ok(result) => Ok(Ok(result)),
            Err(WarehouseError::Server(e)) => {
                Ok(Err(Problem::Server(plain_server_message(&e.to_string()))))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn query_options(&self, options: &AskOptions) -> QueryOptions {
        QueryOptions {
            readonly: true,
            max_execution_time: Some(options.max_execution_time),
            max_result_rows: Some(options.max_result_rows),
            ..QueryOptions::default()
        }
    }

    /// [`check`](Self::check), timed, with the time added to the answer's timings.
    /// Checks `sql` (timed, into `timings`) and records the outcome as an attempt: `error`
    /// and `stage` are set when it was refused.
    #[allow(clippy::too_many_arguments)]
    async fn checked_attempt(
        &self,
        sql: &str,
        raw: String,
        generation: Generation,
        schema: &Schema,
        default_database: &str,
        mode: Mode,
        timings: &mut Timings,
    ) -> Result<Attempt, AssistantError> {
        let started = Instant::now();
        let checked = self.check(sql, schema, default_database, mode).await?;
        let validation_time = started.elapsed();
        timings.validation += validation_time;
        let (stage, error) = match checked {
            Ok(()) => (None, None),
            Err((stage, problem)) => (Some(stage), Some(problem.to_string())),
        };
        Ok(Attempt {
            sql: sql.to_string(),
            raw,
            error,
            stage,
            generation,
            validation_time,
            fixes: Vec::new(),
        })
    }

    /// Parser and schema checks, then the server's dry run. The error's stage says which.
    async fn check(
        &self,
        sql: &str,
        schema: &Schema,
        default_database: &str,
        mode: Mode,
    ) -> Result<Result<(), (&'static str, Problem)>, AssistantError> {
        match validate::check(sql, schema, default_database) {
            Ok(_) => {}
            Err(
                p @ (Problem::UnknownTable { .. }
                | Problem::UnknownColumn { .. }
                | Problem::UnknownQualifier { .. }),
            ) => return Ok(Err(("schema", p))),
            Err(p) => return Ok(Err(("parse", p))),
        }
        if mode == Mode::Plain {
            return Ok(Ok(()));
        }
        match self.warehouse.dry_run(sql).await {
            Ok(_) => Ok(Ok(())),
            Err(WarehouseError::Server(e)) => Ok(Err((
                "server",
                Problem::Server(plain_server_message(&e.to_string())),
            ))),
            // The server being away is not the query's fault: no attempt is spent on it.
            Err(e) => Err(e.into()),
        }
    }

    /// Worked examples for the prompt: the core ones for the linked tables (the same for
    /// every question on them, so the local model reuses their evaluation), then the one most
    /// similar to the question among the other idioms and the questions the user confirmed.
    fn examples(
        &self,
        question: &str,
        linked: &LinkedSchema,
        samples: &ValueSamples,
        extra: usize,
    ) -> (Vec<Example>, Option<prompt::FollowUpExample>) {
        let names = linked.table_names();
        let built = prompt::examples_for(linked, samples);
        let mut candidates: Vec<Example> = self
            .history
            .iter()
            .filter(|e| names.iter().any(|t| e.sql.contains(t.as_str())))
            .cloned()
            .collect();
        candidates.extend(built.more);
        let mut chosen = built.core;
        for e in prompt::choose(question, &candidates, extra) {
            if !chosen.contains(&e) {
                chosen.push(e);
            }
        }
        (chosen, built.follow_up)
    }
}

/// The names of the server's functions, and the capitalised form of those it takes in any
/// case (`COUNT`); none when the server does not say (the grammar then leaves names free).
async fn server_functions(warehouse: &Warehouse) -> Result<Vec<String>, WarehouseError> {
    let sql = "SELECT name, case_insensitive FROM system.functions";
    let result = match warehouse.query(sql, &QueryOptions::default()).await {
        Ok(r) => r,
        Err(WarehouseError::Server(e)) => {
            tracing::debug!("no function list for the grammar: {e}");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for row in &result.rows {
        let [Value::String(name), insensitive] = row.as_slice() else {
            continue;
        };
        // Operators (`plus`) have names too; symbols (`%`) do not make calls.
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        names.push(name.to_string());
        if matches!(insensitive, Value::UInt(1) | Value::Int(1)) {
            names.push(name.to_uppercase());
        }
    }
    Ok(names)
}

/// The server's message without the stack trace and version noise.
fn plain_server_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.find(", Stack trace") {
        Some(at) => first[..at].to_string(),
        None => first.to_string(),
    }
}

fn no_such_data(schema: &Schema, linked: &LinkedSchema) -> String {
    let tables: Vec<String> = user_tables(schema).map(|t| t.qualified_name()).collect();
    let words = if linked.unmatched_words.is_empty() {
        "the question".to_string()
    } else {
        linked
            .unmatched_words
            .iter()
            .map(|w| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if tables.is_empty() {
        return "there are no tables to ask about yet (`aurora demo` loads a sample data set)"
            .into();
    }
    format!(
        "nothing in the schema matches {words}; the tables are: {}",
        tables.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_lose_their_stack_trace() {
        assert_eq!(
            plain_server_message(
                "Code: 47, e.displayText() = DB::Exception: Unknown identifier: x, Stack trace:\n\n0. foo"
            ),
            "Code: 47, e.displayText() = DB::Exception: Unknown identifier: x"
        );
    }
}
