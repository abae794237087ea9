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
use super::columns::NameGuard;
use super::conversation::Conversation;
use super::error::AssistantError;
use super::grammar;
use super::grounding;
use super::joins::{self, JoinGraph};
use super::linking::{self, shares_key, user_tables, LinkedSchema, ValueSamples};
use super::nest;
use super::prompt::{self, Example, Failure, ANSWER_PREFIX};
use super::shape;
use super::validate::{self, Problem};
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
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
    /// The benchmark's baseline, "doing nothing": every table's `CREATE TABLE` and the
    /// question, greedy decoding, the first statement of the reply run as it is (no forced
    /// `SELECT`, linking, examples, grammar, rewrites, dry run or repair).
    Plain,
}

/// The parts of the full pipeline, each of which can be switched off to measure what it brings
/// (the nl2sql benchmark's ablation); all are on in normal use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mechanisms {
    /// Show every table of the scope when their `CREATE TABLE` text fits the prompt (the same
    /// prompt for every question, so its evaluation is reused), else the tables of the best
    /// linked database, else the linked tables; off: always the linked tables.
    pub whole_schema: bool,
    /// The join paths read from the schema (`joins`), listed in the prompt and named in
    /// repair hints.
    pub joins: bool,
    /// Worked examples on the scope's own tables.
    pub examples: bool,
    /// Sampled values of low-cardinality columns in the prompt, and the values a question
    /// names spelled out after it.
    pub values: bool,
    /// The GBNF grammar (tables, functions, keywords) during decoding.
    pub grammar: bool,
    /// Column-constrained decoding: names must be columns of the prompt's tables, functions,
    /// keywords or the query's own aliases (`columns::NameGuard`).
    pub columns: bool,
    /// Mechanical repair of columns the validator does not know (`shape::repair_names`).
    pub names: bool,
    /// The fitting rules that compare the query with the question (`shape::fit`).
    pub fitting: bool,
    /// Compared text values spelled as the data holds them (`grounding`).
    pub grounding: bool,
    /// Self-consistency: after an answer runs, more candidates are sampled and run, and the
    /// rows most candidates agree on win; the agreement is the answer's confidence.
    pub consistency: bool,
    /// Repair attempts: the failed query and its error back to the model.
    pub repair: bool,
}

impl Mechanisms {
    pub const ALL: Mechanisms = Mechanisms {
        whole_schema: true,
        joins: true,
        examples: true,
        values: true,
        grammar: true,
        columns: true,
        names: true,
        fitting: true,
        grounding: true,
        consistency: true,
        repair: true,
    };

    /// What Aurora uses: every mechanism but column-constrained decoding, which measured no
    /// better than without it and slower (docs/testing.md, "Column-constrained decoding").
    pub const DEFAULT: Mechanisms = Mechanisms {
        columns: false,
        ..Mechanisms::ALL
    };

    /// The names `without` and `with` take, for the benchmark's ablation.
    pub const NAMES: &'static [&'static str] = &[
        "whole_schema",
        "joins",
        "examples",
        "values",
        "grammar",
        "columns",
        "names",
        "fitting",
        "grounding",
        "consistency",
        "repair",
    ];

    /// These mechanisms with one switched off; `None` for an unknown name.
    pub fn without(self, name: &str) -> Option<Self> {
        self.switched(name, false)
    }

    /// These mechanisms with one switched on; `None` for an unknown name.
    pub fn with(self, name: &str) -> Option<Self> {
        self.switched(name, true)
    }

    /// Whether the named mechanism is on; `None` for an unknown name.
    pub fn has(mut self, name: &str) -> Option<bool> {
        self.flag(name).map(|f| *f)
    }

    fn switched(mut self, name: &str, on: bool) -> Option<Self> {
        *self.flag(name)? = on;
        Some(self)
    }

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        let m = self;
        let flag = match name {
            "whole_schema" => &mut m.whole_schema,
            "joins" => &mut m.joins,
            "examples" => &mut m.examples,
            "values" => &mut m.values,
            "grammar" => &mut m.grammar,
            "columns" => &mut m.columns,
            "names" => &mut m.names,
            "fitting" => &mut m.fitting,
            "grounding" => &mut m.grounding,
            "consistency" => &mut m.consistency,
            "repair" => &mut m.repair,
            _ => return None,
        };
        Some(flag)
    }
}

#[derive(Debug, Clone)]
pub struct AskOptions {
    pub mode: Mode,
    /// What the full pipeline uses (all of it, but in the benchmark's ablation).
    pub mechanisms: Mechanisms,
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
    /// Queries written for a question when `consistency` is on, the first one included.
    pub candidates: usize,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Full,
            mechanisms: Mechanisms::DEFAULT,
            max_attempts: 3,
            generation_timeout: Duration::from_secs(60),
            max_answer_tokens: 200,
            execute: true,
            max_result_rows: 10_000,
            max_execution_time: Duration::from_secs(30),
            max_tables: 3,
            examples: 1,
            candidates: 1,
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
    /// How many of the candidate queries that ran returned these rows (self-consistency);
    /// `None` when only one query was written.
    pub confidence: Option<Confidence>,
    /// Candidates that ran and returned other rows, most agreed-on first.
    pub alternatives: Vec<Alternative>,
    /// Why the answer may be wrong though it ran: a guess at what the question means.
    pub warnings: Vec<String>,
}

/// `agreeing` of `candidates` queries that ran returned the answer's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Confidence {
    pub agreeing: usize,
    pub candidates: usize,
}

impl Confidence {
    /// Every candidate returned the same rows.
    pub fn unanimous(&self) -> bool {
        self.agreeing == self.candidates
    }
}

impl Answer {
    /// Why the answer may be wrong though it ran, a sentence each: candidates that disagree,
    /// then the warnings. What the CLI's `-- unsure:` lines and the workspace's status say.
    pub fn doubts(&self) -> Vec<String> {
        let disagreement = self.confidence.filter(|c| !c.unanimous()).map(|c| {
            format!(
                "{} of {} candidate queries return these rows",
                c.agreeing, c.candidates
            )
        });
        disagreement
            .into_iter()
            .chain(self.warnings.iter().cloned())
            .collect()
    }
}

/// Another answer the candidates gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Alternative {
    pub sql: String,
    /// Candidates that returned its rows.
    pub votes: usize,
    pub rows: usize,
}

/// What turning a model's text into a checked query needs besides the text.
struct Prepare<'a> {
    question: &'a str,
    linked: &'a LinkedSchema,
    context: &'a SchemaContext,
    default_database: &'a str,
    follow_up: bool,
    mechanisms: Mechanisms,
}

/// The schema as the assistant sees it: tables and the values of low-cardinality columns.
#[derive(Debug)]
pub struct SchemaContext {
    pub schema: Arc<Schema>,
    pub samples: ValueSamples,
    /// The server's function names (case-insensitive ones also in capitals), for the
    /// grammar; empty when `system.functions` cannot be read.
    pub functions: Vec<String>,
    /// Join paths among the tables, from their names and values and the user's config.
    pub joins: JoinGraph,
    /// Declared relationships and synonyms that name no column of the schema, with the
    /// reason.
    pub config_problems: Vec<String>,
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
    /// Questions the user confirmed, used as examples (see `examples.rs`); more are added
    /// while the assistant runs (`remember`).
    history: std::sync::RwLock<Vec<Example>>,
    /// The databases questions are about; empty: all of them.
    databases: Vec<String>,
    /// Joins the user declared (`assistant.relationships`), as `db.table.column` pairs.
    relationships: Vec<(String, String)>,
    /// The user's other words for columns and values (`assistant.synonyms`).
    synonyms: Vec<(String, Vec<String>)>,
    /// What the user may read: the schema shown is cut to it, queries are checked against it
    /// and run with its row filters.
    access: Option<Arc<crate::rbac::Access>>,
}

impl Assistant {
    pub fn new(backend: Arc<dyn ModelBackend>, warehouse: Arc<Warehouse>) -> Self {
        Self {
            backend,
            warehouse,
            context: OnceCell::new(),
            history: std::sync::RwLock::new(Vec::new()),
            databases: Vec::new(),
            relationships: Vec::new(),
            synonyms: Vec::new(),
            access: None,
        }
    }

    /// Questions are answered only from what `access` may read (RBAC).
    pub fn with_access(mut self, access: Arc<crate::rbac::Access>) -> Self {
        self.access = access.enabled().then_some(access);
        self
    }

    /// `sql` as the user may run it (row filters applied), or why not.
    fn authorized(&self, sql: &str, default_database: &str) -> Result<String, Problem> {
        match &self.access {
            Some(access) => crate::rbac::sql::authorize(access, sql, default_database)
                .map_err(|d| Problem::Denied(d.reason)),
            None => Ok(sql.to_string()),
        }
    }

    /// Other words for columns and values (`assistant.synonyms`): keys `db.table.column` or
    /// `db.table.column = value`, each with its words.
    pub fn with_synonyms(mut self, synonyms: Vec<(String, Vec<String>)>) -> Self {
        self.synonyms = synonyms;
        self
    }

    /// Joins the schema cannot show (`assistant.relationships`): `(from, to)` as
    /// `db.table.column`; they come before any found from names or values.
    pub fn with_relationships(mut self, relationships: Vec<(String, String)>) -> Self {
        self.relationships = relationships;
        self
    }

    /// Limits the schema the assistant reads, links and shows the model to these databases
    /// (`assistant.databases`); an empty list keeps every database.
    pub fn with_databases(mut self, databases: Vec<String>) -> Self {
        self.databases = databases;
        self
    }

    /// The examples the user confirmed before (`examples::load`).
    pub fn with_history(self, history: Vec<Example>) -> Self {
        *self.history.write().unwrap_or_else(|e| e.into_inner()) = history;
        self
    }

    /// Keeps a confirmed answer as an example for the questions that follow, in place of an
    /// earlier answer to the same question (the caller stores it: `examples::append`).
    pub fn remember(&self, example: Example) {
        let mut history = self.history.write().unwrap_or_else(|e| e.into_inner());
        super::examples::replace_or_add(&mut history, example);
    }

    pub fn model_id(&self) -> String {
        self.backend.model_id()
    }

    /// The schema and value samples, read from the server on first use.
    pub async fn schema_context(&self) -> Result<Arc<SchemaContext>, AssistantError> {
        let context = self
            .context
            .get_or_try_init(|| async {
                let mut schema = self.warehouse.schema(false).await?;
                if !self.databases.is_empty() {
                    let mut only = Schema::clone(&schema);
                    only.databases.retain(|d| self.databases.contains(d));
                    only.tables.retain(|t| self.databases.contains(&t.database));
                    schema = Arc::new(only);
                }
                // The model is shown only what the user may read; values are not sampled
                // from tables whose rows the user sees only in part.
                let mut sampled = Schema::clone(&schema);
                if let Some(access) = &self.access {
                    schema = Arc::new(access.visible_schema(&schema));
                    sampled = Schema::clone(&schema);
                    sampled.tables.retain(|t| {
                        access
                            .table(&t.database, &t.name)
                            .is_ok_and(|a| a.filter.is_none())
                    });
                }
                let mut samples = ValueSamples::load(&self.warehouse, &sampled).await?;
                let mut config_problems = samples.add_synonyms(&schema, &self.synonyms);
                // A scope narrower than the config (`assistant.databases`) is not the config's
                // fault: keys outside it are skipped quietly.
                config_problems.retain(|_| self.databases.is_empty());
                let functions = server_functions(&self.warehouse).await?;
                let mut joins = joins::by_names(&schema);
                joins::by_values(&self.warehouse, &schema, &mut joins).await?;
                for (from, to) in &self.relationships {
                    match joins::declared(&schema, from, to) {
                        Ok(r) => joins.declare(r),
                        Err(e) => config_problems.push(format!("relationships: {e}")),
                    }
                }
                Ok::<_, WarehouseError>(Arc::new(SchemaContext {
                    schema,
                    samples,
                    functions,
                    joins,
                    config_problems,
                }))
            })
            .await?;
        Ok(Arc::clone(context))
    }

    /// Evaluates ahead of any question the prompt prefix (rules, tables, worked examples) that
    /// questions will share, so the first question does not wait for it: that of each set of
    /// related tables (a database's tables that joins connect) that fits one prompt, else each
    /// user table's, the largest first, up to `limit` tables, then the join prompt of the first
    /// two of them that share a key, in both orders. Only for backends that keep prompts; stops at once when
    /// `cancel` fires (a question was asked). Returns each table set evaluated (`a + b`), with
    /// the evaluation's figures.
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
        let mut sets = whole_prompt_sets(&context.schema, &context.samples, &context.joins);
        if sets.is_empty() {
            let mut tables: Vec<_> = user_tables(&context.schema).collect();
            tables.sort_by_key(|t| std::cmp::Reverse(t.total_rows));
            tables.truncate(limit);
            sets = tables.iter().map(|t| vec![*t]).collect();
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
        }
        sets.truncate(limit.max(1) + 2);
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
                Some(&context.joins),
            );
            let examples = prompt::examples_for(&linked, &context.samples).core;
            let request = GenerateRequest {
                messages: prompt::prefix_messages(system, &examples),
                answer_prefix: String::new(),
                max_tokens: 0,
                stop: Vec::new(),
                grammar: None,
                names: None,
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
        let answer = self
            .answer(question, conversation, options, tokens, cancel)
            .await;
        crate::metrics::global().question_done(match &answer {
            Ok(_) => "answered",
            Err(AssistantError::Cancelled) => "cancelled",
            Err(_) => "failed",
        });
        answer
    }

    async fn answer(
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
        let m = options.mechanisms;
        let joins = m.joins.then_some(&context.joins);
        let linked = match options.mode {
            Mode::Full => linking::choose_tables(
                schema,
                &context.samples,
                joins,
                &linking_text,
                options.max_tables,
                m.whole_schema,
            ),
            Mode::Plain => LinkedSchema::of(user_tables(schema)),
        };
        if linked.tables.is_empty() {
            return Err(AssistantError::NoSuchData(no_such_data(schema, &linked)));
        }
        let no_samples = ValueSamples::default();
        let samples = if m.values {
            &context.samples
        } else {
            &no_samples
        };
        let tables: Vec<_> = linked.tables.iter().map(|t| &t.table).collect();
        let system = prompt::system_message(
            tables.iter().copied(),
            samples,
            self.warehouse.capabilities(),
            joins,
        );
        let (examples, follow_up) = match options.mode {
            Mode::Full if m.examples => self.examples(question, &linked, samples, options.examples),
            _ => (Vec::new(), None),
        };
        let grammar = match options.mode {
            Mode::Full if m.grammar => Some(grammar::for_tables(
                tables.iter().copied(),
                &context.functions,
            )),
            _ => None,
        };
        let names = match options.mode {
            Mode::Full if m.columns => Some(Arc::new(NameGuard::new(
                tables.iter().copied(),
                &context.functions,
            ))),
            _ => None,
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
            confidence: None,
            alternatives: Vec::new(),
            warnings: Vec::new(),
        };
        if linked.nothing_matched {
            answer.warnings.push(format!(
                "no word of the question names a table, column or value of the schema ({}): the query is the model's guess at what they mean",
                words_list(&linked.unmatched_words)
            ));
        }
        let attempts = match options.mode {
            Mode::Full if m.repair => options.max_attempts.clamp(1, 10),
            _ => 1,
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
                    &if m.values {
                        prompt::with_value_hints(question, &linked.values)
                    } else {
                        question.to_string()
                    },
                    failure.as_ref(),
                ),
                Mode::Plain => prompt::plain_messages(tables.iter().copied(), question, previous),
            };
            // The plain baseline lets the model answer as it likes (usually a fenced block);
            // the first statement of the reply is taken as it is.
            let (answer_prefix, stop) = match options.mode {
                // Not `;`: it may sit inside a string literal. The grammar ends the answer
                // at a statement's `;`, and `extract_sql` cuts there for other backends.
                Mode::Full => (ANSWER_PREFIX, vec!["```".into(), "\n\n".into()]),
                Mode::Plain => ("", Vec::new()),
            };
            let request = GenerateRequest {
                messages,
                answer_prefix: answer_prefix.to_string(),
                max_tokens: options.max_answer_tokens,
                stop,
                grammar: grammar.clone(),
                names: names.clone(),
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
            let asked = request.clone();
            let generation = self
                .backend
                .generate(request, tokens.clone(), cancel.clone())
                .await?;
            answer.timings.generation += generation.prompt_time + generation.generation_time;
            let prepare = Prepare {
                question,
                linked: &linked,
                context: &context,
                default_database: &default_database,
                follow_up: previous.is_some(),
                mechanisms: m,
            };
            let (sql, fixes) = match options.mode {
                Mode::Full => self.prepare(&generation.text, &prepare).await?,
                Mode::Plain => (
                    validate::extract_sql(answer_prefix, &generation.text),
                    Vec::new(),
                ),
            };
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
                let mut error = error.clone();
                if let Some(hint) =
                    joins.and_then(|j| column_elsewhere(&sql, schema, &default_database, j))
                {
                    error = format!("{error}. {hint}");
                }
                if let Some(hint) = not_a_date(&error, &sql, &tables) {
                    error = format!("{error}. {hint}");
                }
                failure = Some(Failure { sql, error });
                answer.attempts.push(attempt);
                continue;
            }
            match self
                .accept(&mut answer, attempt, sql, options, &cancel)
                .await?
            {
                None => {
                    let vote = options.mode == Mode::Full
                        && m.consistency
                        && options.execute
                        && options.candidates > 1;
                    if vote {
                        self.vote(&mut answer, asked, &prepare, options, &cancel)
                            .await?;
                    }
                    return Ok(answer);
                }
                Some(f) => failure = Some(f),
            }
        }
        answer.failure = answer.attempts.last().and_then(|a| a.error.clone());
        Ok(answer)
    }

    /// Self-consistency: samples `candidates - 1` more queries for the request that gave the
    /// answer, checks and runs each, and groups all of them by the rows they return. The
    /// largest group's query becomes the answer (the first query wins a tie), its size of
    /// the queries that ran is the confidence, and the other groups are the alternatives.
    /// Candidates that fail a check or the run do not vote.
    async fn vote(
        &self,
        answer: &mut Answer,
        request: GenerateRequest,
        p: &Prepare<'_>,
        options: &AskOptions,
        cancel: &CancellationToken,
    ) -> Result<(), AssistantError> {
        let (Some(sql), Some(result)) = (answer.sql.clone(), answer.result.take()) else {
            return Ok(());
        };
        // Every candidate that ran: its query, its rows' fingerprint, its rows. Candidates
        // written the same as an earlier one share its run.
        let mut ran: Vec<(String, String, Option<QueryResult>)> =
            vec![(sql, rows_fingerprint(&result), Some(result))];
        for i in 1..options.candidates {
            let sampled = GenerateRequest {
                temperature: 0.8,
                seed: 1000 + i as u64,
                ..request.clone()
            };
            let generation = self.backend.generate(sampled, None, cancel.clone()).await?;
            answer.timings.generation += generation.prompt_time + generation.generation_time;
            let (sql, _) = self.prepare(&generation.text, p).await?;
            if let Some((_, fingerprint, _)) = ran.iter().find(|(w, _, _)| *w == sql) {
                let fingerprint = fingerprint.clone();
                ran.push((sql, fingerprint, None));
                continue;
            }
            let started = Instant::now();
            let checked = self
                .check(&sql, &p.context.schema, p.default_database, Mode::Full)
                .await?;
            answer.timings.validation += started.elapsed();
            if checked.is_err() {
                continue;
            }
            if let Ok(result) = self
                .execute(&sql, options, cancel, &mut answer.timings)
                .await?
            {
                ran.push((sql, rows_fingerprint(&result), Some(result)));
            }
        }
        let groups = tally(&ran.iter().map(|(_, f, _)| f.as_str()).collect::<Vec<_>>());
        let candidates = ran.len();
        let mut results: Vec<Option<(String, Option<QueryResult>)>> =
            ran.into_iter().map(|(sql, _, r)| Some((sql, r))).collect();
        let mut take = |i: usize| results[i].take().unwrap_or_default();
        let (chosen, votes) = groups[0];
        let (sql, result) = take(chosen);
        answer.sql = Some(sql);
        answer.result = result;
        answer.confidence = Some(Confidence {
            agreeing: votes,
            candidates,
        });
        answer.alternatives = groups[1..]
            .iter()
            .map(|&(i, votes)| {
                let (sql, result) = take(i);
                Alternative {
                    sql,
                    votes,
                    rows: result.map_or(0, |r| r.rows.len()),
                }
            })
            .collect();
        Ok(())
    }

    /// The query in what the model wrote, with every mechanical repair the mechanisms allow:
    /// rewrites of other dialects, names the schema lacks, the fitting rules, nested joins for
    /// old servers, values spelled as the data has them. Returns it with a note per fix.
    async fn prepare(
        &self,
        text: &str,
        p: &Prepare<'_>,
    ) -> Result<(String, Vec<String>), AssistantError> {
        let schema = &p.context.schema;
        let m = p.mechanisms;
        let mut sql = validate::rewrite(
            &validate::extract_sql(ANSWER_PREFIX, text),
            schema,
            p.default_database,
        );
        let mut fixes = Vec::new();
        let fit = shape::Fit {
            question: p.question,
            linked: p.linked,
            schema,
            samples: &p.context.samples,
            default_database: p.default_database,
            follow_up: p.follow_up,
            disabled: &[],
        };
        if m.names {
            let (repaired, notes) = shape::repair_names(&sql, &fit);
            sql = repaired;
            fixes.extend(notes);
        }
        if m.fitting {
            let (fitted, notes) = shape::fit(&sql, &fit);
            sql = fitted;
            fixes.extend(notes);
        }
        if !fixes.is_empty() {
            // Again: a fix may add what a rewrite mends (a median of a Decimal).
            sql = validate::rewrite(&sql, schema, p.default_database);
        }
        // Last, as it renames columns: a chain of joins, for a server that takes one JOIN
        // per SELECT.
        if !self.warehouse.capabilities().multiple_joins {
            if let Some(nested) = nest::nest_joins(&sql, schema, p.default_database) {
                sql = nested;
            }
        }
        if m.grounding {
            let (grounded, notes) = grounding::ground_values(
                &sql,
                schema,
                p.default_database,
                &p.context.samples,
                &self.warehouse,
                self.access.as_deref(),
            )
            .await?;
            sql = grounded;
            fixes.extend(notes);
        }
        Ok((sql, fixes))
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
        let sql = match self.authorized(sql, &self.warehouse.settings().database) {
            Ok(sql) => sql,
            Err(problem) => return Ok(Err(problem)),
        };
        let run = tokio::select! {
            r = self.warehouse.query(&sql, &limits) => r,
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
        let sql = match self.authorized(sql, default_database) {
            Ok(sql) => sql,
            Err(problem) => return Ok(Err(("access", problem))),
        };
        if mode == Mode::Plain {
            return Ok(Ok(()));
        }
        match self.warehouse.dry_run(&sql).await {
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
    /// every question on them, so the local model reuses their evaluation), then the
    /// questions the user confirmed on those tables most similar to this one (BM25), then
    /// the idioms most similar to it, `extra` in all.
    fn examples(
        &self,
        question: &str,
        linked: &LinkedSchema,
        samples: &ValueSamples,
        extra: usize,
    ) -> (Vec<Example>, Option<prompt::FollowUpExample>) {
        let names = linked.table_names();
        let built = prompt::examples_for(linked, samples);
        let confirmed = {
            let history = self.history.read().unwrap_or_else(|e| e.into_inner());
            super::examples::similar(question, &history, &names, extra)
        };
        let idioms = prompt::choose(question, &built.more, extra - confirmed.len());
        let mut chosen = built.core;
        for e in confirmed.into_iter().chain(idioms) {
            if !chosen.contains(&e) {
                chosen.push(e);
            }
        }
        (chosen, built.follow_up)
    }
}

/// Candidates grouped by the rows they returned (their fingerprints, in the order they were
/// written): each group as its first candidate and its size, the largest first; between
/// groups of one size, the one written first (so the greedy query wins a tie).
fn tally(fingerprints: &[&str]) -> Vec<(usize, usize)> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for (i, f) in fingerprints.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(first, _)| fingerprints[*first] == *f)
        {
            Some((_, votes)) => *votes += 1,
            None => groups.push((i, 1)),
        }
    }
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    groups
}

/// The rows of a result as one comparable text: each value rounded to 2 decimals when it is
/// a number (two queries that differ only by a `round` agree), rows in sorted order, so
/// that candidates are grouped by what they answer rather than by how they are written.
fn rows_fingerprint(result: &QueryResult) -> String {
    let cell = |v: &Value| -> String {
        let number = match v {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Float(f) => Some(*f),
            Value::Decimal(d) => d.parse::<f64>().ok(),
            _ => None,
        };
        match number {
            Some(n) => format!("{:.2}", (n * 100.0).round() / 100.0),
            None => v.to_string(),
        }
    };
    let mut rows: Vec<String> = result
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect::<Vec<_>>().join("\u{1f}"))
        .collect();
    rows.sort();
    rows.join("\u{1e}")
}

/// The table sets whose prompts questions share when whole schemas fit (see
/// [`linking::choose_tables`]): the tables of each database that chains of joins connect,
/// each set that fits, the largest first; empty when none does and questions get linked
/// tables.
fn whole_prompt_sets<'a>(
    schema: &'a Schema,
    samples: &ValueSamples,
    joins: &JoinGraph,
) -> Vec<Vec<&'a TableInfo>> {
    let fits = |tables: &[&TableInfo]| {
        tables
            .iter()
            .map(|t| prompt::create_table(t, samples).len())
            .sum::<usize>()
            <= linking::WHOLE_SCHEMA_CHARS
    };
    let mut sets: Vec<Vec<&TableInfo>> = Vec::new();
    for table in user_tables(schema) {
        if sets.iter().flatten().any(|t| *t == table) {
            continue;
        }
        let related = joins.connected(&[table.qualified_name()]);
        sets.push(
            user_tables(schema)
                .filter(|t| t.database == table.database && related.contains(&t.qualified_name()))
                .collect(),
        );
    }
    sets.retain(|d| fits(d));
    sets.sort_by_key(|d| std::cmp::Reverse(d.iter().map(|t| t.total_rows).sum::<u64>()));
    sets
}

/// The names of the server's functions, and the capitalised form of those it takes in any
/// case (`COUNT`); none when the server does not say (the grammar then leaves names free).
pub async fn server_functions(warehouse: &Warehouse) -> Result<Vec<String>, WarehouseError> {
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

/// For a column the query's tables lack but another table has: where it is and how to join
/// that table, for the repair prompt ("`n_name` is a column of tpch.nation; join it with
/// tpch.customer.c_nationkey = tpch.nation.n_nationkey").
fn column_elsewhere(
    sql: &str,
    schema: &Schema,
    default_database: &str,
    joins: &JoinGraph,
) -> Option<String> {
    let Err(Problem::UnknownColumn { name, tables, .. }) =
        validate::check(sql, schema, default_database)
    else {
        return None;
    };
    let holder = user_tables(schema).find(|t| {
        !tables.contains(&t.qualified_name())
            && t.columns
                .iter()
                .any(|c| c.name == name || shape::spelled_like(&name, &c.name, None))
    })?;
    let column = holder
        .columns
        .iter()
        .find(|c| c.name == name || shape::spelled_like(&name, &c.name, None))?;
    let mut hint = format!(
        "`{}` is a column of {}",
        column.name,
        holder.qualified_name()
    );
    let path = tables
        .iter()
        .filter_map(|t| joins.path(t, &holder.qualified_name(), 2))
        .min_by_key(Vec::len);
    if let Some(path) = path {
        let steps: Vec<String> = path
            .windows(2)
            .filter_map(|pair| {
                joins
                    .relationships
                    .iter()
                    .find(|r| r.joins(&pair[0], &pair[1]))
                    .map(|r| r.condition())
            })
            .collect();
        hint.push_str(&format!("; join it with {}", steps.join(", then ")));
    }
    Some(hint)
}

/// Date and time functions by their names (`toStartOfMonth`, `toYear`, `dateDiff`, …).
fn is_date_function(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("date")
        || (lower.starts_with("to")
            && [
                "year", "quarter", "month", "week", "day", "hour", "minute", "second", "date",
                "time", "startof", "monday",
            ]
            .iter()
            .any(|part| lower.contains(part)))
}

/// For the server's "Illegal type … of argument of function F": the columns of the prompt's
/// tables that the query hands to a date function but that hold no date (a `year` number, a
/// time of day as `hhmm`), with the date and time columns their tables do have. Triggered by
/// the server's error only; names come from the schema.
fn not_a_date(error: &str, sql: &str, tables: &[&TableInfo]) -> Option<String> {
    if !error.contains("Illegal type") {
        return None;
    }
    let temporal = |c: &ColumnInfo| c.type_name.contains("Date");
    let mut notes = Vec::new();
    for (function, name) in super::columns::calls_on_names(sql) {
        if !is_date_function(function) {
            continue;
        }
        let Some((table, column)) = tables.iter().find_map(|t| {
            t.columns
                .iter()
                .find(|c| c.name == name && !temporal(c))
                .map(|c| (t, c))
        }) else {
            continue;
        };
        let dates: Vec<String> = table
            .columns
            .iter()
            .filter(|c| temporal(c))
            .map(|c| format!("`{}` ({})", c.name, c.type_name))
            .collect();
        let instead = if dates.is_empty() {
            format!(
                "{} has no date or time column: compare the number columns as numbers",
                table.qualified_name()
            )
        } else {
            format!(
                "the date and time columns of {} are {}",
                table.qualified_name(),
                dates.join(", ")
            )
        };
        let note = format!(
            "`{name}` is {} (not a date), so `{function}` cannot take it; {instead}",
            column.type_name
        );
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    (!notes.is_empty()).then(|| notes.join(". "))
}

/// The server's message without the stack trace and version noise.
fn plain_server_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.find(", Stack trace") {
        Some(at) => first[..at].to_string(),
        None => first.to_string(),
    }
}

/// `` `a`, `b` ``, or "the question" for none.
fn words_list(words: &[String]) -> String {
    if words.is_empty() {
        return "the question".to_string();
    }
    let mut unique: Vec<&String> = Vec::new();
    for w in words {
        if !unique.contains(&w) {
            unique.push(w);
        }
    }
    unique
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_such_data(schema: &Schema, linked: &LinkedSchema) -> String {
    let tables: Vec<String> = user_tables(schema).map(|t| t.qualified_name()).collect();
    let words = words_list(&linked.unmatched_words);
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
    fn a_number_handed_to_a_date_function_is_named_with_the_real_date_columns() {
        use crate::assistant::linking::tests::{column, table};
        let flights = table(
            "f",
            "flights",
            vec![
                column("year", "UInt16", ""),
                column("time_hour", "DateTime", ""),
            ],
        );
        let weather = table(
            "f",
            "weather",
            vec![column("month", "UInt8", ""), column("temp", "Float64", "")],
        );
        let error =
            "ClickHouse error 43: Illegal type UInt16 of argument of function toStartOfMonth";
        assert_eq!(
            not_a_date(
                error,
                "SELECT toStartOfMonth(m.year), count() FROM f.flights AS m GROUP BY 1",
                &[&flights, &weather]
            )
            .as_deref(),
            Some(
                "`year` is UInt16 (not a date), so `toStartOfMonth` cannot take it; the date and \
                 time columns of f.flights are `time_hour` (DateTime)"
            )
        );
        assert_eq!(
            not_a_date(
                error,
                "SELECT toMonth(month) FROM f.weather",
                &[&flights, &weather]
            )
            .as_deref(),
            Some(
                "`month` is UInt8 (not a date), so `toMonth` cannot take it; f.weather has no \
                 date or time column: compare the number columns as numbers"
            )
        );
        // Only on the server's type error, and only for columns that hold no date.
        let fine = "SELECT toStartOfMonth(time_hour) FROM f.flights";
        assert_eq!(not_a_date(error, fine, &[&flights]), None);
        let other = "ClickHouse error 47: Unknown identifier: year";
        assert_eq!(
            not_a_date(other, "SELECT toYear(year) FROM f.flights", &[&flights]),
            None
        );
    }

    #[test]
    fn the_rows_most_candidates_return_win() {
        // All agree: one group, unanimous.
        assert_eq!(tally(&["a", "a", "a", "a"]), [(0, 4)]);
        // The greedy query (first) is outvoted by the three sampled ones.
        assert_eq!(tally(&["a", "b", "b", "b"]), [(1, 3), (0, 1)]);
        // A tie goes to the group written first, the greedy query's.
        assert_eq!(tally(&["a", "b", "a", "b"]), [(0, 2), (1, 2)]);
        assert_eq!(tally(&["a", "b", "c"]), [(0, 1), (1, 1), (2, 1)]);
        assert_eq!(tally(&["a"]), [(0, 1)]);
    }

    #[test]
    fn rows_are_compared_by_value_not_by_spelling() {
        let result = |rows: Vec<Vec<Value>>| QueryResult {
            rows,
            ..QueryResult::default()
        };
        let unrounded = result(vec![vec![Value::Float(47.4600001)], vec![Value::UInt(3)]]);
        let rounded = result(vec![vec![Value::Int(3)], vec![Value::Float(47.46)]]);
        assert_eq!(rows_fingerprint(&unrounded), rows_fingerprint(&rounded));
        let other = result(vec![vec![Value::Int(4)], vec![Value::Float(47.46)]]);
        assert_ne!(rows_fingerprint(&other), rows_fingerprint(&rounded));
    }

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
