//! `cargo bench --bench nl2sql` (or `make bench`): execution accuracy and latency of the SQL
//! assistant with the default local model, on the question set in `bench/nl2sql/questions.yaml`
//! (the demo shop data and four tables of the `vega_datasets` package, loaded by
//! `bench/nl2sql/load-vega` into a private ClickHouse server started here).
//!
//! `bench/nl2sql/held-out.yaml` holds questions written after the fitting rules, which no rule
//! may be tuned on; its accuracy is printed on its own lines, as the estimate for new questions.
//!
//! Two modes run in the same process on the same model, so the comparison is fair:
//! (a) `plain`: every table's CREATE TABLE and the question, one attempt, no linking,
//!     examples, grammar or repair; (b) `full`: Aurora's whole pipeline.
//! A question is right when the rows of the generated SQL equal the gold SQL's rows (see
//! `bench/nl2sql/README.md`). Latency is the wall time from question to rows.
//!
//! Environment: `NL2SQL_LIMIT=N` runs the first N questions only; `NL2SQL_THREADS=N` sets the
//! model's threads (default: cores - 1, as Aurora's default); `NL2SQL_MODEL=PATH` picks the
//! model (default: the one `aurora` would use); `NL2SQL_ONLY=id,id` runs just those;
//! `NL2SQL_MODES=full` runs only the given modes; `NL2SQL_VERBOSE=1` prints every attempt
//! with the fixes fitted to the question and its error; `NL2SQL_WARM=N` warms the prompts of
//! N tables before the questions (default 6, as the workspace does; 0: none);
//! `NL2SQL_SET=tuned|held-out` runs only one of the two question files.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aurora::assistant::ask::{Mode, WARM_TABLES};
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
    /// From `held-out.yaml`: not read when the rules were written.
    #[serde(skip)]
    held_out: bool,
}

#[derive(Debug, Default, Clone)]
struct Outcome {
    correct: bool,
    latency: Duration,
    attempts: usize,
    /// The accepted query was fitted to the question (`assistant::shape`).
    fitted: bool,
    note: String,
    /// Every attempt with its fixes and error, for `NL2SQL_VERBOSE=1`.
    trace: Vec<String>,
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

fn run() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/nl2sql");
    let set = std::env::var("NL2SQL_SET").unwrap_or_default();
    let mut questions: Vec<Question> = Vec::new();
    for (file, held_out) in [("questions.yaml", false), ("held-out.yaml", true)] {
        if set == if held_out { "tuned" } else { "held-out" } {
            continue;
        }
        let text = std::fs::read_to_string(root.join(file))?;
        let mut read: Vec<Question> =
            serde_yaml::from_str(&text).with_context(|| format!("reading {file}"))?;
        read.iter_mut().for_each(|q| q.held_out = held_out);
        questions.extend(read);
    }
    if let Ok(only) = std::env::var("NL2SQL_ONLY") {
        let ids: Vec<&str> = only.split(',').collect();
        questions.retain(|q| ids.contains(&q.id.as_str()));
    }
    if let Some(n) = env_usize("NL2SQL_LIMIT") {
        questions.truncate(n);
    }
    let modes: Vec<Mode> = match std::env::var("NL2SQL_MODES").as_deref() {
        Ok("full") => vec![Mode::Full],
        Ok("plain") => vec![Mode::Plain],
        _ => vec![Mode::Plain, Mode::Full],
    };
    let threads = env_usize("NL2SQL_THREADS").map_or_else(default_threads, |n| n as u32);
    let model_path = match std::env::var("NL2SQL_MODEL") {
        Ok(p) => p.into(),
        Err(_) => aurora::assistant::catalog::resolve(None, &Config::default().assistant)?.path,
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
        aurora::cli::demo::load_sample(&warehouse, false).await?;
        let status = Command::new(root.join("load-vega"))
            .arg(server.url())
            .status()
            .context("running bench/nl2sql/load-vega")?;
        if !status.success() {
            bail!("bench/nl2sql/load-vega failed");
        }
        let backend: Arc<dyn ModelBackend> = Arc::new(LocalModel::spawn(
            "default".into(),
            model_path.clone(),
            threads,
        ));
        let assistant = Assistant::new(backend, Arc::clone(&warehouse));
        assistant.schema_context().await?;
        println!(
            "nl2sql: {} questions, model {}, {threads} thread(s), ClickHouse {}",
            questions.len(),
            model_path.display(),
            warehouse.capabilities().version_text
        );
        // What the workspace does in the background while its user looks around: the prompt
        // prefixes of the largest tables are evaluated before the first question.
        // `NL2SQL_WARM=0` skips it (every table's first question then pays for its prefix).
        let warm = env_usize("NL2SQL_WARM").unwrap_or(WARM_TABLES);
        let started = Instant::now();
        let warmed = assistant.warm_up(warm, CancellationToken::new()).await?;
        println!(
            "warm-up: {} table prompt(s) evaluated in {:.1} s, before the questions",
            warmed.len(),
            started.elapsed().as_secs_f64()
        );
        let mut table: Vec<(Mode, Vec<Outcome>)> = Vec::new();
        for mode in modes {
            let mut outcomes = Vec::new();
            for q in &questions {
                let outcome = ask_one(&assistant, &warehouse, q, mode).await?;
                println!(
                    "  {:<6} {:<8} {:<6} {} {:>5.1}s  {} attempt(s)  {}",
                    format!("{mode:?}").to_lowercase(),
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
                outcomes.push(outcome);
            }
            table.push((mode, outcomes));
        }
        for (held_out, title) in [
            (false, "questions.yaml (the fitting rules were written against these)"),
            (true, "held-out.yaml (written after the rules; never tuned on)"),
        ] {
            let part: Vec<(Mode, Vec<Outcome>)> = table
                .iter()
                .map(|(mode, outcomes)| {
                    let kept = outcomes
                        .iter()
                        .zip(&questions)
                        .filter(|(_, q)| q.held_out == held_out)
                        .map(|(o, _)| o.clone())
                        .collect();
                    (*mode, kept)
                })
                .collect();
            let asked: Vec<&Question> =
                questions.iter().filter(|q| q.held_out == held_out).collect();
            if !asked.is_empty() {
                println!("\n{title}");
                report(&part, &asked);
            }
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

async fn ask_one(
    assistant: &Assistant,
    warehouse: &Warehouse,
    q: &Question,
    mode: Mode,
) -> Result<Outcome> {
    let options = AskOptions {
        mode,
        ..AskOptions::default()
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
    Ok(Outcome {
        correct,
        latency,
        attempts,
        fitted,
        trace,
        note: if correct {
            String::new()
        } else {
            sql.replace('\n', " ")
        },
    })
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

fn report(table: &[(Mode, Vec<Outcome>)], questions: &[&Question]) {
    println!(
        "{:<6} {:>9} {:>8} {:>7} {:>7} {:>9} {:>13} {:>7}",
        "mode", "correct", "acc", "p50", "p90", "attempts", "with repairs", "fitted"
    );
    let mut accuracy = Vec::new();
    for (mode, outcomes) in table {
        let correct = outcomes.iter().filter(|o| o.correct).count();
        let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
        latencies.sort();
        let attempts: usize = outcomes.iter().map(|o| o.attempts).sum();
        let repaired = outcomes.iter().filter(|o| o.attempts > 1).count();
        let fitted = outcomes.iter().filter(|o| o.fitted).count();
        let acc = correct as f64 / outcomes.len().max(1) as f64;
        accuracy.push((*mode, acc));
        println!(
            "{:<6} {:>5}/{:<3} {:>7.1}% {:>6.2}s {:>6.2}s {:>9} {:>13} {:>7}",
            format!("{mode:?}").to_lowercase(),
            correct,
            outcomes.len(),
            acc * 100.0,
            percentile(&latencies, 50.0).as_secs_f64(),
            percentile(&latencies, 90.0).as_secs_f64(),
            attempts,
            repaired,
            fitted
        );
        for difficulty in ["easy", "medium", "hard"] {
            let of: Vec<&Outcome> = outcomes
                .iter()
                .zip(questions)
                .filter(|(_, q)| q.difficulty == difficulty)
                .map(|(o, _)| o)
                .collect();
            let ok = of.iter().filter(|o| o.correct).count();
            println!("         {difficulty:<6} {ok}/{}", of.len());
        }
    }
    if let (Some((_, plain)), Some((_, full))) = (
        accuracy.iter().find(|(m, _)| *m == Mode::Plain),
        accuracy.iter().find(|(m, _)| *m == Mode::Full),
    ) {
        if *plain > 0.0 {
            println!(
                "\nfull ÷ plain accuracy: {:.2} (goal ≥ 1.25); full accuracy {:.1}% (goal ≥ 80%)",
                full / plain,
                full * 100.0
            );
        } else {
            println!(
                "\nplain mode answered nothing correctly; full accuracy {:.1}%",
                full * 100.0
            );
        }
    }
}
