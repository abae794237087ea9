//! `aurora ask "question"`: the assistant, headless. The model's SQL streams to stderr while
//! it is written (on a terminal), the accepted query and its attempts go to stderr, the rows
//! to stdout in the chosen format; `--json` prints one object with everything instead, and
//! `--sql-only` only the query. Exit code 1 when no valid SQL was found.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::assistant::ask::Mode;
use crate::assistant::conversation::Conversation;
use crate::assistant::examples;
use crate::assistant::prompt::Example;
use crate::assistant::{backend_for, Answer, AskOptions};

use super::output::{render, OutputFormat};
use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question, in plain language
    #[arg(value_name = "QUESTION", required_unless_present_any = ["clear", "suggest"])]
    pub question: Option<String>,
    /// Print one JSON object: question, SQL, every attempt with its error, columns, rows,
    /// timings and model
    #[arg(long, conflicts_with = "sql_only")]
    pub json: bool,
    /// Print only the SQL; do not run it
    #[arg(long)]
    pub sql_only: bool,
    /// Output format of the rows
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, conflicts_with = "json")]
    pub format: OutputFormat,
    /// Model: a catalog id, an id from `aurora model add`, or a .gguf path (with --endpoint:
    /// the remote model's name) [default: AURORA_MODEL, then the config, then the default]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Use an OpenAI-compatible endpoint instead of the local model, e.g.
    /// http://127.0.0.1:8080/v1 (API key from the variable named by
    /// `assistant.openai.api_key_env`, OPENAI_API_KEY by default)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Refine the previous question's query ("only mobile", "by week instead")
    #[arg(long, short = 'f')]
    pub follow_up: bool,
    /// Forget the previous questions (the follow-up context) and exit
    #[arg(long)]
    pub clear: bool,
    /// List questions worth asking about each table, with ready-to-run SQL (no model needed)
    #[arg(long, conflicts_with_all = ["question", "clear"])]
    pub suggest: bool,
    /// Tries at a valid query, each fed the previous error [default: from config]
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
    /// Queries written and run for the question; the rows most of them return win (1: only
    /// the first) [default: from config]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub candidates: Option<u32>,
    /// Time limit for the model, per attempt
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "60s")]
    pub timeout: Duration,
    /// Most rows to fetch
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_rows: u64,
    /// The answer is right: keep the question and its SQL as an example for later questions
    #[arg(long)]
    pub remember: bool,
    /// Baseline mode: every table in the prompt, no examples, grammar or repair
    #[arg(long, hide = true)]
    pub plain: bool,
}

pub async fn run(global: &GlobalArgs, args: AskArgs) -> Result<ExitCode> {
    let conversation_path = Conversation::default_path();
    if args.clear {
        if let Some(path) = &conversation_path {
            Conversation::default()
                .save(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        eprintln!("The follow-up context is cleared.");
        return Ok(ExitCode::SUCCESS);
    }
    let question = args.question.clone().unwrap_or_default();
    let session = Session::open(global).await?;
    if args.suggest {
        return print_suggestions(&session, args.json).await;
    }
    let config = &session.config.assistant;
    let backend = backend_for(config, args.model.as_deref(), args.endpoint.as_deref())?;
    let assistant = crate::assistant::configured(backend, Arc::clone(&session.warehouse), config)
        .with_history(examples::load_default());
    let mut conversation = match (&conversation_path, args.follow_up) {
        (Some(path), true) => Conversation::load(path),
        _ => Conversation::default(),
    };
    if args.follow_up {
        match conversation.last() {
            Some(turn) if !args.json => eprintln!("Refining: {}\n  {}", turn.question, turn.sql),
            Some(_) => {}
            None => eprintln!("No previous question to refine; asking it on its own."),
        }
    }
    if let Ok(context) = assistant.schema_context().await {
        for problem in &context.config_problems {
            eprintln!("warning: assistant: {problem}; it is not used");
        }
    }
    let options = AskOptions {
        mode: if args.plain { Mode::Plain } else { Mode::Full },
        max_attempts: args.attempts.unwrap_or(config.max_attempts) as usize,
        candidates: args.candidates.unwrap_or(config.candidates) as usize,
        generation_timeout: args.timeout,
        execute: !args.sql_only,
        max_result_rows: args.max_rows,
        ..AskOptions::default()
    };
    // On a terminal, show the SQL as the model writes it.
    let live = !args.json && !args.sql_only && std::io::stderr().is_terminal();
    // The plain baseline forces no `SELECT`: the model writes all of its answer.
    let prefix = if args.plain {
        ""
    } else {
        crate::assistant::prompt::ANSWER_PREFIX
    };
    let (tokens, printer) = if live {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let printer = tokio::spawn(async move {
            let mut err = std::io::stderr();
            let _ = write!(err, "\x1b[2m{prefix}");
            while let Some(piece) = rx.recv().await {
                if let Some(why) = piece.strip_prefix(crate::assistant::ask::ATTEMPT_SEPARATOR) {
                    let _ = write!(err, "\n  (refused: {why})\n{prefix}");
                    continue;
                }
                let _ = write!(err, "{piece}");
                let _ = err.flush();
            }
            let _ = writeln!(err, "\x1b[0m");
        });
        (Some(tx), Some(printer))
    } else {
        (None, None)
    };
    crate::rbac::require("ask", "")?;
    crate::audit::may_read()?;
    let cancel = CancellationToken::new();
    let asked = tokio::select! {
        a = assistant.ask(&question, Some(&conversation), &options, tokens, cancel.clone()) => a,
        signal = super::interrupted() => {
            cancel.cancel();
            anyhow::bail!("interrupted ({signal})");
        }
    };
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    let answer = match asked {
        Ok(answer) => answer,
        Err(e) => {
            crate::audit::record_read(
                crate::audit::Event::new("ask", "", crate::audit::Outcome::Error)
                    .with("question", question.as_str())
                    .with("error", e.to_string()),
            )?;
            return Err(e.into());
        }
    };
    crate::audit::record_read(crate::audit::ask_event(&answer))?;
    if let Some(sql) = &answer.sql {
        if answer.result.is_some() && args.remember {
            let example = Example {
                question: answer.question.clone(),
                sql: sql.clone(),
            };
            if let Some(path) = examples::default_path() {
                examples::append(&path, &example)
                    .with_context(|| format!("cannot keep the example in {}", path.display()))?;
            }
        }
        if let Some(path) = &conversation_path {
            if !args.follow_up {
                conversation.clear();
            }
            conversation.push(&answer.question, sql);
            if let Err(e) = conversation.save(path) {
                tracing::debug!("cannot save the conversation: {e}");
            }
        }
    }
    print_answer(&answer, &args)
}

async fn print_suggestions(session: &Session, json: bool) -> Result<ExitCode> {
    let warehouse = &session.warehouse;
    let schema = crate::rbac::visible(warehouse.schema(false).await?);
    let suggestions = crate::assistant::suggest::for_schema(
        &schema,
        warehouse.capabilities(),
        5,
        &warehouse.settings().database,
    );
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &suggestions)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if suggestions.is_empty() {
        writeln!(
            out,
            "No tables to suggest questions for (`aurora demo` loads a sample data set)."
        )?;
    }
    let mut table = "";
    for s in &suggestions {
        if s.table != table {
            table = &s.table;
            writeln!(out, "{table}")?;
        }
        writeln!(
            out,
            "  {}
      {}",
            s.question, s.sql
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_answer(answer: &Answer, args: &AskArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut object = serde_json::to_value(answer)?;
        if let (Some(result), Some(map)) = (&answer.result, object.as_object_mut()) {
            let mut rendered = Vec::new();
            render(result, OutputFormat::Json, &mut rendered)?;
            let result: serde_json::Value = serde_json::from_slice(&rendered)?;
            map.insert("result".into(), result);
        }
        serde_json::to_writer_pretty(&mut out, &object)?;
        writeln!(out)?;
        return Ok(exit_code(answer));
    }
    let mut err = std::io::stderr();
    for (i, attempt) in answer.attempts.iter().enumerate() {
        if let Some(error) = &attempt.error {
            writeln!(err, "attempt {}: {}\n  {error}", i + 1, attempt.sql)?;
        }
    }
    if let Some(accepted) = answer.attempts.last().filter(|a| a.error.is_none()) {
        for fix in &accepted.fixes {
            writeln!(err, "-- fitted to the question: {fix}")?;
        }
    }
    let Some(sql) = &answer.sql else {
        for warning in &answer.warnings {
            writeln!(err, "-- {warning}")?;
        }
        writeln!(
            err,
            "error: no valid SQL after {} attempt(s): {}",
            answer.attempts.len(),
            answer.failure.as_deref().unwrap_or("unknown reason")
        )?;
        return Ok(exit_code(answer));
    };
    if args.sql_only {
        writeln!(out, "{sql}")?;
        return Ok(exit_code(answer));
    }
    writeln!(
        err,
        "{sql}\n-- {} · tables {} · model {:.1}s, checks {:.2}s, query {:.3}s",
        answer.model,
        answer.tables.join(", "),
        answer.timings.generation.as_secs_f64(),
        answer.timings.validation.as_secs_f64(),
        answer.timings.execution.as_secs_f64()
    )?;
    for doubt in answer.doubts() {
        writeln!(err, "-- unsure: {doubt}")?;
    }
    if let Some(c) = answer.confidence.filter(|c| !c.unanimous()) {
        for alternative in &answer.alternatives {
            writeln!(
                err,
                "--   ({} of {}, {} row(s)) {}",
                alternative.votes,
                c.candidates,
                alternative.rows,
                alternative.sql.replace('\n', " ")
            )?;
        }
    }
    if let Some(result) = &answer.result {
        render(result, args.format, &mut out)?;
    }
    Ok(exit_code(answer))
}

fn exit_code(answer: &Answer) -> ExitCode {
    if answer.sql.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
