//! `cargo bench --bench nl2sql` (or `make bench`): execution accuracy and latency of the SQL
//! assistant with the default local model, per question set, against a private ClickHouse
//! server started here (see `bench/nl2sql/README.md`).
//!
//! Sets, each asked with the assistant limited to its own databases (`assistant.databases`)
//! and, for a set of one database, connected with it as the default database:
//! - `tuned`: `questions.yaml` over `demo` and `vega`, which the fitting rules were written
//!   against; `held-out`: `held-out.yaml`, written after those rules, over the same schemas.
//!   Both run twice: with the tables' column comments, then with every comment removed
//!   (`tuned-bare`, `held-out-bare`), since comments written for the questions carry answers.
//! - `flights`, `tpch`, `lahman`: three public data sets no rule, example or comment was
//!   written for (`unseen-*.yaml`, frozen before any assistant change; loaded by
//!   `bench/nl2sql/load-unseen` with their own names and no comments). These are the
//!   figures for a user's schema.
//!
//! Two modes run in the same process on the same model, so the comparison is fair:
//! (a) `plain`, the baseline of doing nothing: every table's CREATE TABLE and the question,
//!     greedy decoding, the first statement of the reply run as it is; (b) `full`: Aurora.
//! A question is right when the rows of the generated SQL equal the gold SQL's rows (see
//! `bench/nl2sql/README.md`). Latency is the wall time from question to rows, with the model
//! loaded and the set's largest tables warmed as the workspace does. Each set's accuracy is
//! printed with its 95% Wilson interval.
//!
//! The full pipeline can also run with one mechanism off at a time (`NL2SQL_ABLATE=examples,
//! grammar` or `all`, names as in `Mechanisms::NAMES`): the report then says, per set, how
//! many answers each mechanism turns right and wrong; `NL2SQL_ADD=columns` likewise runs it
//! with a mechanism Aurora leaves off (`Mechanisms::DEFAULT`). For the fitting rules (`shape::RULES`)
//! that is measured without asking again: every query a rule changed is made again without
//! it, run, and compared with the gold.
//!
//! Environment: `NL2SQL_SETS=flights,tpch` runs only those sets (names as above; `tuned` and
//! `held-out` bring their bare runs unless `NL2SQL_BARE=0`); `NL2SQL_LIMIT=N` runs the first
//! N questions of each set; `NL2SQL_ONLY=id,id` runs just those; `NL2SQL_MODES=full` runs only
//! the given modes; `NL2SQL_THREADS=N` sets the model's threads (default: cores - 1, as
//! Aurora's default); `NL2SQL_MODEL=PATH` picks the model (default: the one `aurora` would
//! use); `NL2SQL_WARM=N` warms the prompts of N tables per set first (default 6, as the
//! workspace does; 0: none); `NL2SQL_VERBOSE=1` prints every attempt with its fixes and
//! error; `NL2SQL_OUT=FILE` writes one JSON line per answer (set, id, mode, correct,
//! seconds, sql) for comparing runs question by question; `NL2SQL_ONESHOT=N` times the first
//! N questions of each set as `aurora ask` processes of their own (default 10; 0: none);
//! `NL2SQL_CANDIDATES=N` asks with N self-consistency candidates (default: Aurora's, 1);
//! `NL2SQL_REFINE=0` skips the refinement-turns comparison (`refine.rs`), which otherwise
//! runs after the sets in the plain and full modes.

mod refine;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aurora::assistant::ask::{Mechanisms, Mode, WARM_TABLES};
use aurora::assistant::llama::{default_threads, LocalModel};
use aurora::assistant::{AskOptions, Assistant, ModelBackend};
use aurora::config::Config;
use aurora::warehouse::local_server::{ensure_running, stop, LocalServerOptions};
use aurora::warehouse::value::Value;
use aurora::warehouse::{ConnectionSettings, QueryOptions, QueryResult, Warehouse};
use tokio_util::sync::CancellationToken;

#[derive(Debug, serde::Deserialize)]
struct Question {
    id: String,
    #[allow(dead_code)]
    schema: String,
    difficulty: String,
    question: String,
    gold: String,
    ordered: bool,
}

/// A question file and the databases its questions are asked over.
struct SetSpec {
    name: &'static str,
    file: &'static str,
    databases: &'static [&'static str],
    /// What the figure means, for the report.
    about: &'static str,
}

const SETS: &[SetSpec] = &[
    SetSpec {
        name: "tuned",
        file: "questions.yaml",
        databases: &["demo", "vega"],
        about: "the fitting rules were written against these",
    },
    SetSpec {
        name: "held-out",
        file: "held-out.yaml",
        databases: &["demo", "vega"],
        about: "written after the rules on the same schemas; never tuned on",
    },
    SetSpec {
        name: "flights",
        file: "unseen-flights.yaml",
        databases: &["flights"],
        about: "unseen schema (nycflights13), frozen 2026-12-06",
    },
    SetSpec {
        name: "tpch",
        file: "unseen-tpch.yaml",
        databases: &["tpch"],
        about: "unseen schema (TPC-H, prefixed columns), frozen 2026-12-06",
    },
    SetSpec {
        name: "lahman",
        file: "unseen-lahman.yaml",
        databases: &["lahman"],
        about: "unseen schema (Lahman baseball), frozen 2026-12-06",
    },
];

/// The databases whose column comments the bare runs remove.
const COMMENTED: &[&str] = &["demo", "vega"];

#[derive(Debug, Default, Clone)]
struct Outcome {
    correct: bool,
    latency: Duration,
    attempts: usize,
    /// The accepted query was fitted to the question (`assistant::shape`).
    fitted: bool,
    sql: Option<String>,
    note: String,
    /// Every attempt with its fixes and error, for `NL2SQL_VERBOSE=1`.
    trace: Vec<String>,
    /// For each fitting rule that changed the last attempt's query: whether the answer would
    /// be right without that rule.
    rules: Vec<(&'static str, bool)>,
    /// The answer said it may be wrong: its candidates disagreed, or it carries a warning.
    unsure: bool,
    /// A query was accepted and ran (else every attempt failed).
    answered: bool,
}

/// A way of answering: the plain baseline, the full pipeline, or the full pipeline with one
/// mechanism off (the ablation).
#[derive(Debug, Clone)]
struct Variant {
    name: String,
    mode: Mode,
    mechanisms: Mechanisms,
}

/// One set's run in one variant.
struct Run {
    set: String,
    about: String,
    variant: String,
    outcomes: Vec<(String, String, Outcome)>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("nl2sql bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn read_set(root: &Path, spec: &SetSpec) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(root.join(spec.file))
        .with_context(|| format!("reading bench/nl2sql/{}", spec.file))?;
    let mut questions: Vec<Question> =
        serde_yaml::from_str(&text).with_context(|| format!("reading {}", spec.file))?;
    if let Ok(only) = std::env::var("NL2SQL_ONLY") {
        let ids: Vec<&str> = only.split(',').collect();
        questions.retain(|q| ids.contains(&q.id.as_str()));
    }
    if let Some(n) = env_usize("NL2SQL_LIMIT") {
        questions.truncate(n);
    }
    Ok(questions)
}

fn run() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/nl2sql");
    let wanted: Option<Vec<String>> = std::env::var("NL2SQL_SETS")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect());
    if let Some(names) = &wanted {
        if let Some(unknown) = names.iter().find(|n| !SETS.iter().any(|s| s.name == *n)) {
            let known: Vec<&str> = SETS.iter().map(|s| s.name).collect();
            bail!(
                "no question set `{unknown}`; the sets are {}",
                known.join(", ")
            );
        }
    }
    let sets: Vec<(&SetSpec, Vec<Question>)> = SETS
        .iter()
        .filter(|s| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|n| n == s.name))
        })
        .map(|s| Ok((s, read_set(&root, s)?)))
        .collect::<Result<_>>()?;
    let bare = std::env::var("NL2SQL_BARE").as_deref() != Ok("0");
    let refine_on = std::env::var("NL2SQL_REFINE").as_deref() != Ok("0");
    let variants = variants()?;
    let threads = env_usize("NL2SQL_THREADS").map_or_else(default_threads, |n| n as u32);
    let model_path = match std::env::var("NL2SQL_MODEL") {
        Ok(p) => p.into(),
        Err(_) => aurora::assistant::catalog::resolve(None, &Config::default().assistant)?.path,
    };
    let mut out = match std::env::var("NL2SQL_OUT") {
        Ok(path) => Some(std::fs::File::create(&path).with_context(|| format!("creating {path}"))?),
        Err(_) => None,
    };

    let work = tempfile::tempdir()?;
    let mut opts = LocalServerOptions::new(work.path().join("clickhouse"));
    opts.die_with_parent = true;
    opts.startup_timeout = Duration::from_secs(60);
    let server = ensure_running(&opts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let warehouse = Arc::new(Warehouse::connect(ConnectionSettings::new(server.url())).await?);
        let needs = |db: &str| {
            sets.iter().any(|(s, _)| s.databases.contains(&db))
                || (refine_on && refine::FILES.iter().any(|(_, d)| *d == db))
        };
        if needs("demo") {
            aurora::cli::demo::load_sample(&warehouse, false).await?;
        }
        if needs("vega") {
            load(&root, "load-vega", &[server.url()])?;
        }
        let unseen: Vec<String> = ["flights", "tpch", "lahman"]
            .into_iter()
            .filter(|db| needs(db))
            .map(String::from)
            .collect();
        if !unseen.is_empty() {
            let mut args = vec![server.url()];
            args.extend(unseen);
            load(&root, "load-unseen", &args)?;
        }
        let backend: Arc<dyn ModelBackend> = Arc::new(LocalModel::spawn(
            "default".into(),
            model_path.clone(),
            threads,
        ));
        println!(
            "nl2sql: {} sets, model {}, {threads} thread(s), ClickHouse {}",
            sets.len(),
            model_path.display(),
            warehouse.capabilities().version_text
        );
        let mut runs: Vec<Run> = Vec::new();
        for (spec, questions) in &sets {
            let label = spec.name.to_string();
            runs.extend(
                run_set(&backend, &warehouse, spec, &label, questions, &variants, &mut out).await?,
            );
        }
        // The same questions on the same tables without their comments.
        let commented: Vec<&(&SetSpec, Vec<Question>)> = sets
            .iter()
            .filter(|(s, _)| s.databases.iter().all(|d| COMMENTED.contains(d)))
            .collect();
        if bare && !commented.is_empty() {
            remove_comments(&warehouse, COMMENTED).await?;
            for (spec, questions) in commented {
                let label = format!("{}-bare", spec.name);
                runs.extend(
                    run_set(&backend, &warehouse, spec, &label, questions, &variants, &mut out)
                        .await?,
                );
            }
        }
        report(&runs);
        if refine_on {
            let modes: Vec<Variant> = variants
                .iter()
                .filter(|v| v.name == "plain" || v.name == "full")
                .cloned()
                .collect();
            for (file, database) in refine::FILES {
                let scripts = refine::read(&root, file)?;
                refine::run(&backend, &warehouse, database, &scripts, &modes).await?;
            }
        }
        let one_shot_count = env_usize("NL2SQL_ONESHOT").unwrap_or(10);
        if one_shot_count > 0 {
            one_shot(
                &server.url(),
                &sets,
                one_shot_count,
                &threads.to_string(),
                &model_path,
            )?;
        }
        // Does the loaded model cost CPU while nobody asks anything (spinning llama.cpp
        // threads would take it from the ingestion engine)?
        let before = process_cpu_time();
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let (Some(a), Some(b)) = (before, process_cpu_time()) {
            println!(
                "CPU used by the whole process in 5 s idle with the model loaded: {:.1}% of one core",
                (b - a).as_secs_f64() / 5.0 * 100.0
            );
        }
        Ok::<_, anyhow::Error>(())
    });
    drop(rt);
    stop(&opts.data_dir)?;
    result
}

/// `plain` and `full`, or the one `NL2SQL_MODES` names (`none`: neither); then `full` without
/// each mechanism `NL2SQL_ABLATE` names (`all`: every one `full` uses), and `full` with each
/// one `NL2SQL_ADD` names that Aurora leaves off.
fn variants() -> Result<Vec<Variant>> {
    let plain = Variant {
        name: "plain".into(),
        mode: Mode::Plain,
        mechanisms: Mechanisms::DEFAULT,
    };
    let full = Variant {
        name: "full".into(),
        mode: Mode::Full,
        mechanisms: Mechanisms::DEFAULT,
    };
    let mut out = match std::env::var("NL2SQL_MODES").as_deref() {
        Ok("full") => vec![full],
        Ok("plain") => vec![plain],
        // Only the ablated variants (their comparison then needs `full` from another run).
        Ok("none") => Vec::new(),
        _ => vec![plain, full],
    };
    let ablate = std::env::var("NL2SQL_ABLATE").unwrap_or_default();
    let names: Vec<&str> = match ablate.as_str() {
        "" => Vec::new(),
        "all" => Mechanisms::NAMES
            .iter()
            .copied()
            .filter(|n| Mechanisms::DEFAULT.has(n) == Some(true))
            .collect(),
        list => list.split(',').map(str::trim).collect(),
    };
    let added = std::env::var("NL2SQL_ADD").unwrap_or_default();
    let added = added.split(',').map(str::trim).filter(|n| !n.is_empty());
    for (sign, name) in names
        .into_iter()
        .map(|n| ('-', n))
        .chain(added.map(|n| ('+', n)))
    {
        let switched = if sign == '-' {
            Mechanisms::DEFAULT.without(name)
        } else {
            Mechanisms::DEFAULT.with(name)
        };
        let Some(mechanisms) = switched else {
            bail!(
                "NL2SQL_ABLATE/NL2SQL_ADD: no mechanism `{name}`; they are {}",
                Mechanisms::NAMES.join(", ")
            );
        };
        out.push(Variant {
            name: format!("{sign}{name}"),
            mode: Mode::Full,
            mechanisms,
        });
    }
    Ok(out)
}

/// One-shot latency: `aurora ask` (the release binary) as a process of its own for the first
/// `count` questions of each set, as a script or a user at a shell runs it, from start to
/// exit. The prompt cache (`~/.cache/aurora/prompt-cache`) is fresh for each set, so its
/// first question pays for the whole prompt; the others start from the file the previous
/// process left.
fn one_shot(
    url: &str,
    sets: &[(&SetSpec, Vec<Question>)],
    count: usize,
    threads: &str,
    model: &Path,
) -> Result<()> {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        std::path::PathBuf::from,
    );
    let binary = std::env::var("AURORA_BIN")
        .map_or_else(|_| target.join("release/aurora"), std::path::PathBuf::from);
    if !binary.is_file() {
        println!(
            "\none-shot: {} not found (`make bench` builds it); skipped",
            binary.display()
        );
        return Ok(());
    }
    println!(
        "\none-shot `aurora ask` ({}), {count} questions a set:",
        binary.display()
    );
    for (spec, questions) in sets {
        let home = tempfile::tempdir()?;
        let config = home.path().join("config.yaml");
        let databases: Vec<String> = spec.databases.iter().map(|d| format!("\"{d}\"")).collect();
        let database = match spec.databases {
            [one] => one,
            _ => "default",
        };
        std::fs::write(
            &config,
            format!(
                "clickhouse:\n  url: {url}\n  database: {database}\nassistant:\n  model: \"{}\"\n  threads: {threads}\n  databases: [{}]\n",
                model.display(),
                databases.join(", ")
            ),
        )?;
        let mut times = Vec::new();
        for q in questions.iter().take(count) {
            let started = Instant::now();
            let output = Command::new(&binary)
                .args(["--config"])
                .arg(&config)
                .args(["ask", &q.question, "--format", "csv"])
                .env("XDG_CACHE_HOME", home.path().join("cache"))
                .env("XDG_DATA_HOME", home.path().join("data"))
                .env_remove("AURORA_CLICKHOUSE_URL")
                .env_remove("AURORA_MODEL")
                .output()
                .context("running aurora ask")?;
            let took = started.elapsed();
            // A question may end without a valid query (exit 1 after the model's attempts);
            // anything before the model ran (config, server, model file) voids the timing.
            if !output.status.success() && output.stdout.is_empty() {
                let err = String::from_utf8_lossy(&output.stderr);
                if !err.contains("attempt 1:") && !err.contains("-- ") {
                    bail!("aurora ask failed before asking the model: {err}");
                }
            }
            times.push(took);
        }
        let Some((first, rest)) = times.split_first() else {
            continue;
        };
        let mut rest = rest.to_vec();
        rest.sort();
        println!(
            "  {:<15} first (prompt not cached) {:>5.1}s; the next {}: p50 {:.2}s, p90 {:.2}s",
            spec.name,
            first.as_secs_f64(),
            rest.len(),
            percentile(&rest, 50.0).as_secs_f64(),
            percentile(&rest, 90.0).as_secs_f64()
        );
    }
    Ok(())
}

/// Runs one of the loader scripts beside this file.
fn load(root: &Path, script: &str, args: &[String]) -> Result<()> {
    let status = Command::new(root.join(script))
        .args(args)
        .status()
        .with_context(|| format!("running bench/nl2sql/{script}"))?;
    if !status.success() {
        bail!("bench/nl2sql/{script} failed");
    }
    Ok(())
}

/// Empties every column comment of the tables in `databases`.
async fn remove_comments(warehouse: &Warehouse, databases: &[&str]) -> Result<()> {
    let schema = warehouse.schema(true).await?;
    for table in schema
        .tables
        .iter()
        .filter(|t| databases.contains(&t.database.as_str()))
    {
        for column in table.columns.iter().filter(|c| !c.comment.is_empty()) {
            let sql = format!(
                "ALTER TABLE {}.{} COMMENT COLUMN {} ''",
                aurora::warehouse::query::quote_ident(&table.database),
                aurora::warehouse::query::quote_ident(&table.name),
                aurora::warehouse::query::quote_ident(&column.name)
            );
            warehouse
                .execute(&sql)
                .await
                .with_context(|| format!("removing the comment of {}", column.name))?;
        }
    }
    warehouse.schema(true).await?;
    Ok(())
}

/// Asks every question of one set in each mode, with an assistant that sees only the set's
/// databases, after warming their largest tables as the workspace would.
async fn run_set(
    backend: &Arc<dyn ModelBackend>,
    warehouse: &Arc<Warehouse>,
    spec: &SetSpec,
    label: &str,
    questions: &[Question],
    variants: &[Variant],
    out: &mut Option<std::fs::File>,
) -> Result<Vec<Run>> {
    // A user whose tables live in one database connects with it as the default, so that
    // unqualified names (`FROM orders`) find them, in every mode.
    let mut settings = ConnectionSettings::new(warehouse.settings().url.clone());
    if let [only] = spec.databases {
        settings.database = only.to_string();
    }
    let warehouse = &Arc::new(Warehouse::connect(settings).await?);
    // The assistant config its user would have: the set's databases, and for the demo data
    // the synonyms `aurora demo` brings (`assets/demo/assistant.yaml`).
    let mut config = Config::default().assistant;
    config.databases = spec.databases.iter().map(|d| d.to_string()).collect();
    if spec.databases.contains(&"demo") {
        aurora::demo::add_assistant_config(&mut config);
    }
    let assistant =
        aurora::assistant::configured(Arc::clone(backend), Arc::clone(warehouse), &config);
    assistant.schema_context().await?;
    let warm = env_usize("NL2SQL_WARM").unwrap_or(WARM_TABLES);
    let started = Instant::now();
    let warmed = assistant.warm_up(warm, CancellationToken::new()).await?;
    println!(
        "\n{label} ({} questions; {}): {} table prompt(s) warmed in {:.1} s",
        questions.len(),
        spec.about,
        warmed.len(),
        started.elapsed().as_secs_f64()
    );
    let mut runs = Vec::new();
    for variant in variants {
        let mut outcomes = Vec::new();
        for q in questions {
            let outcome = ask_one(&assistant, warehouse, q, variant).await?;
            let mode_name = &variant.name;
            println!(
                "  {mode_name:<13} {:<11} {:<6} {} {:>5.1}s  {} attempt(s)  {}",
                q.id,
                q.difficulty,
                if outcome.correct { "ok " } else { "BAD" },
                outcome.latency.as_secs_f64(),
                outcome.attempts,
                outcome.note
            );
            if std::env::var_os("NL2SQL_VERBOSE").is_some() {
                for line in &outcome.trace {
                    println!("           {line}");
                }
            }
            if let Some(file) = out.as_mut() {
                let line = serde_json::json!({
                    "set": label, "id": q.id, "mode": mode_name, "correct": outcome.correct,
                    "seconds": outcome.latency.as_secs_f64(), "attempts": outcome.attempts,
                    "sql": outcome.sql, "note": outcome.note, "rules": outcome.rules,
                    "unsure": outcome.unsure,
                });
                writeln!(file, "{line}")?;
            }
            outcomes.push((q.id.clone(), q.difficulty.clone(), outcome));
        }
        runs.push(Run {
            set: label.to_string(),
            about: spec.about.to_string(),
            variant: variant.name.clone(),
            outcomes,
        });
    }
    Ok(runs)
}

async fn ask_one(
    assistant: &Assistant,
    warehouse: &Warehouse,
    q: &Question,
    variant: &Variant,
) -> Result<Outcome> {
    let defaults = AskOptions::default();
    let options = AskOptions {
        mode: variant.mode,
        mechanisms: variant.mechanisms,
        candidates: env_usize("NL2SQL_CANDIDATES").unwrap_or(defaults.candidates),
        ..defaults
    };
    let started = Instant::now();
    let asked = assistant
        .ask(&q.question, None, &options, None, CancellationToken::new())
        .await;
    let latency = started.elapsed();
    let answer = match asked {
        Ok(a) => a,
        Err(e) => {
            return Ok(Outcome {
                latency,
                note: format!("error: {e}"),
                ..Outcome::default()
            })
        }
    };
    let attempts = answer.attempts.len();
    let trace: Vec<String> = std::iter::once(format!("tables: {}", answer.tables.join(", ")))
        .chain(answer.attempts.iter().map(|a| {
            let g = &a.generation;
            format!(
                "{} | fixes: {} | error: {} | prompt {} tok ({} cached) {} ms, {} tok {} ms",
                a.sql.replace('\n', " "),
                a.fixes.join("; "),
                a.error.as_deref().unwrap_or("-"),
                g.prompt_tokens,
                g.cached_prompt_tokens,
                g.prompt_time.as_millis(),
                g.generated_tokens,
                g.generation_time.as_millis()
            )
        }))
        .collect();
    let fitted = answer
        .attempts
        .last()
        .is_some_and(|a| a.error.is_none() && !a.fixes.is_empty());
    let (Some(sql), Some(result)) = (&answer.sql, &answer.result) else {
        return Ok(Outcome {
            latency,
            attempts,
            // The last refused query, to see what went wrong.
            sql: answer.attempts.last().map(|a| a.sql.clone()),
            note: answer.failure.unwrap_or_default(),
            trace,
            ..Outcome::default()
        });
    };
    let gold = warehouse
        .query(q.gold.trim(), &QueryOptions::default())
        .await
        .with_context(|| format!("gold SQL of {} failed", q.id))?;
    let correct = same_rows(&gold, result, q.ordered);
    let unsure = answer.confidence.is_some_and(|c| !c.unanimous()) || !answer.warnings.is_empty();
    let rules = if variant.mode == Mode::Full && variant.mechanisms.fitting {
        rule_effects(assistant, warehouse, q, &answer, &gold).await?
    } else {
        Vec::new()
    };
    Ok(Outcome {
        correct,
        latency,
        attempts,
        fitted,
        trace,
        rules,
        unsure,
        answered: true,
        sql: Some(sql.clone()),
        note: if correct {
            String::new()
        } else {
            sql.replace('\n', " ")
        },
    })
}

/// What each fitting rule did to this answer: the accepted query is made again from what the
/// model wrote, once with every rule and once without each rule that changed it, and the
/// query without the rule is run and compared with the gold. (Without a rule, a repair
/// attempt might have followed; this counts only the query the rule changed.)
async fn rule_effects(
    assistant: &Assistant,
    warehouse: &Warehouse,
    q: &Question,
    answer: &aurora::assistant::Answer,
    gold: &QueryResult,
) -> Result<Vec<(&'static str, bool)>> {
    use aurora::assistant::{grounding, linking, nest, prompt, shape, validate};
    let Some(last) = answer.attempts.last() else {
        return Ok(Vec::new());
    };
    let context = assistant.schema_context().await?;
    let (schema, samples) = (&context.schema, &context.samples);
    let db = warehouse.settings().database.clone();
    let linked =
        linking::choose_tables(schema, samples, Some(&context.joins), &q.question, 3, true);
    let fit = |disabled: &'static [&'static str]| shape::Fit {
        question: &q.question,
        linked: &linked,
        schema,
        samples,
        default_database: &db,
        follow_up: false,
        disabled,
    };
    let base = validate::rewrite(
        &validate::extract_sql(prompt::ANSWER_PREFIX, &last.raw),
        schema,
        &db,
    );
    let (named, _) = shape::repair_names(&base, &fit(&[]));
    let db_ref = db.as_str();
    let finish = |sql: String| async move {
        let mut sql = validate::rewrite(&sql, schema, db_ref);
        if !warehouse.capabilities().multiple_joins {
            sql = nest::nest_joins(&sql, schema, db_ref).unwrap_or(sql);
        }
        grounding::ground_values(&sql, schema, db_ref, samples, warehouse, None)
            .await
            .map(|(sql, _)| sql)
    };
    let with = finish(shape::fit(&named, &fit(&[])).0).await?;
    let mut out = Vec::new();
    for rule in shape::RULES {
        let disabled: &'static [&'static str] = std::slice::from_ref(rule);
        let without = finish(shape::fit(&named, &fit(disabled)).0).await?;
        if without == with {
            continue;
        }
        let right = match warehouse.query(&without, &QueryOptions::default()).await {
            Ok(result) => same_rows(gold, &result, q.ordered),
            Err(_) => false,
        };
        out.push((*rule, right));
    }
    Ok(out)
}

/// User + system CPU time of this process, from /proc/self/stat.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks; 100 per second on Linux.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A cell for comparison: numbers rounded to 2 decimals, everything else as text.
fn cell(value: &Value) -> String {
    let number = match value {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Decimal(d) => d.parse::<f64>().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (number, value) {
        (Some(n), _) => format!("{:.2}", (n * 100.0).round() / 100.0),
        (None, Value::Null) => "NULL".into(),
        (None, v) => v.to_string(),
    }
}

fn same_rows(gold: &QueryResult, got: &QueryResult, ordered: bool) -> bool {
    let rows = |r: &QueryResult| -> Vec<Vec<String>> {
        r.rows
            .iter()
            .map(|row| row.iter().map(cell).collect())
            .collect()
    };
    let (mut a, mut b) = (rows(gold), rows(got));
    if !ordered {
        a.sort();
        b.sort();
    }
    a == b
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 95% Wilson score interval of `k` successes in `n` trials, as fractions.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.96_f64);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn correct_count(run: &Run) -> usize {
    run.outcomes.iter().filter(|(_, _, o)| o.correct).count()
}

fn report(runs: &[Run]) {
    println!(
        "\n{:<15} {:<13} {:>8} {:>7} {:>15} {:>7} {:>7} {:>9} {:>7}  easy/medium/hard",
        "set", "variant", "correct", "acc", "95% interval", "p50", "p90", "repaired", "fitted"
    );
    for run in runs {
        let n = run.outcomes.len();
        let correct = correct_count(run);
        let mut latencies: Vec<Duration> = run.outcomes.iter().map(|(_, _, o)| o.latency).collect();
        latencies.sort();
        let repaired = run
            .outcomes
            .iter()
            .filter(|(_, _, o)| o.attempts > 1)
            .count();
        let fitted = run.outcomes.iter().filter(|(_, _, o)| o.fitted).count();
        let (low, high) = wilson(correct, n);
        let by_difficulty: Vec<String> = ["easy", "medium", "hard"]
            .iter()
            .map(|d| {
                let of: Vec<&Outcome> = run
                    .outcomes
                    .iter()
                    .filter(|(_, diff, _)| diff == d)
                    .map(|(_, _, o)| o)
                    .collect();
                format!("{}/{}", of.iter().filter(|o| o.correct).count(), of.len())
            })
            .collect();
        println!(
            "{:<15} {:<13} {:>4}/{:<3} {:>6.1}% {:>6.1}%–{:>5.1}% {:>6.2}s {:>6.2}s {:>9} {:>7}  {}",
            run.set,
            run.variant,
            correct,
            n,
            100.0 * correct as f64 / n.max(1) as f64,
            100.0 * low,
            100.0 * high,
            percentile(&latencies, 50.0).as_secs_f64(),
            percentile(&latencies, 90.0).as_secs_f64(),
            repaired,
            fitted,
            by_difficulty.join(" ")
        );
    }
    let find =
        |set: &str, variant: &str| runs.iter().find(|r| r.set == set && r.variant == variant);
    let mut sets: Vec<(&str, &str)> = Vec::new();
    for run in runs {
        if !sets.iter().any(|(s, _)| *s == run.set) {
            sets.push((&run.set, &run.about));
        }
    }
    println!("\nfull ÷ plain, per set (goal on the unseen sets: ≥ 1.5, and full ≥ 75%):");
    for (set, about) in &sets {
        if let (Some(full), Some(plain)) = (find(set, "full"), find(set, "plain")) {
            let (f, p) = (correct_count(full), correct_count(plain));
            let ratio = if p == 0 {
                "plain answered none".to_string()
            } else {
                format!("{:.2}", f as f64 / p as f64)
            };
            println!("  {set:<15} {ratio:<8} ({about})");
        }
    }
    // Wrong answers that said nothing of it, and right ones that doubted themselves.
    println!("\nfull: answers that said they may be wrong (disagreeing candidates or a warning)");
    for (set, _) in &sets {
        let Some(full) = find(set, "full") else {
            continue;
        };
        let count = |correct: bool, unsure: bool| {
            full.outcomes
                .iter()
                .filter(|(_, _, o)| o.answered && o.correct == correct && o.unsure == unsure)
                .count()
        };
        let failed = full.outcomes.iter().filter(|(_, _, o)| !o.answered).count();
        println!(
            "  {set:<15} wrong: {} said unsure, {} silent, {failed} no answer; right: {} unsure, {} sure",
            count(false, true),
            count(false, false),
            count(true, true),
            count(true, false)
        );
    }
    // What each fitting rule is worth, from the queries it changed (see `rule_effects`).
    let mut rule_lines = Vec::new();
    for rule in aurora::assistant::shape::RULES {
        let mut cells = Vec::new();
        for (set, _) in &sets {
            let Some(full) = find(set, "full") else {
                continue;
            };
            let (mut right, mut wrong) = (0, 0);
            for (_, _, o) in &full.outcomes {
                for (r, right_without) in &o.rules {
                    if r == rule {
                        match (o.correct, right_without) {
                            (true, false) => right += 1,
                            (false, true) => wrong += 1,
                            _ => {}
                        }
                    }
                }
            }
            if right + wrong > 0 {
                cells.push(format!("{set} +{right}/-{wrong}"));
            }
        }
        if !cells.is_empty() {
            rule_lines.push(format!("  {rule:<20} {}", cells.join("  ")));
        }
    }
    if !rule_lines.is_empty() {
        println!("\nfitting rules: answers each turned right (+) and wrong (-), per set");
        println!("{}", rule_lines.join("\n"));
    }
    // What each mechanism is worth: the full pipeline against the same without it, per set,
    // with the questions it turns right and wrong.
    let ablated: Vec<&str> = runs
        .iter()
        .filter(|r| r.variant.starts_with(['-', '+']))
        .map(|r| r.variant.as_str())
        .fold(Vec::new(), |mut v, name| {
            if !v.contains(&name) {
                v.push(name);
            }
            v
        });
    if ablated.is_empty() {
        return;
    }
    println!("\nablation: correct answers the full pipeline gains by each mechanism, per set");
    println!("  (gain = full - without, or with - full for a mechanism Aurora leaves off (+name);");
    println!("   +k/-j: questions it turns right / wrong)");
    for name in ablated {
        let mut cells = Vec::new();
        for (set, _) in &sets {
            let (Some(full), Some(without)) = (find(set, "full"), find(set, name)) else {
                continue;
            };
            // With the mechanism first, without it second.
            let (full, without) = if name.starts_with('+') {
                (without, full)
            } else {
                (full, without)
            };
            let pairs = full.outcomes.iter().zip(&without.outcomes);
            let right = pairs
                .clone()
                .filter(|((_, _, f), (_, _, w))| f.correct && !w.correct)
                .count();
            let wrong = pairs
                .filter(|((_, _, f), (_, _, w))| !f.correct && w.correct)
                .count();
            cells.push(format!(
                "{set} {:+} (+{right}/-{wrong})",
                right as i64 - wrong as i64
            ));
        }
        println!("  {:<14} {}", &name[1..], cells.join("  "));
    }
}
