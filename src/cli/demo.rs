//! `aurora demo`: the zero-configuration tour. Starts (or reuses) the private server and loads
//! the bundled sample week (`crate::demo::sample`) once, then runs the live demo
//! (`crate::demo::LiveDemo`: an in-process Kafka, a clickstream generator and a pipeline into
//! `demo.events`) in the full-screen workspace, or with `--headless` printing its progress
//! until a duration or Ctrl-C. `--tour` prints the schema and a sample query instead. The
//! server keeps running afterwards for `aurora query`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;

use crate::demo::{DemoError, LiveDemo, LiveDemoOptions, LiveDemoReport};
use crate::ingest::engine::{PipelineState, PipelineStatus};
use crate::ingest::supervisor::PipelineSnapshot;
use crate::warehouse::QueryOptions;

use super::output::{render, OutputFormat};
use super::session::Session;
use super::GlobalArgs;

pub use crate::demo::SAMPLE_QUERY;

/// How often the headless demo prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Drop and reload the sample data set
    #[arg(long)]
    pub reset: bool,
    /// Print the sample's schema and a sample query, then exit (no live events)
    #[arg(long, conflicts_with = "headless")]
    pub tour: bool,
    /// Run the live demo without the full-screen workspace: progress on stderr, totals on
    /// stdout
    #[arg(long)]
    pub headless: bool,
    /// How long the headless demo runs, e.g. 30s or 5m [default: until Ctrl-C]
    #[arg(long, requires = "headless", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Print the headless demo's totals as one JSON object
    #[arg(long, requires = "headless")]
    pub json: bool,
    /// Events per second at an average hour of the day (the rate follows the time of day and
    /// jumps during flash sales)
    #[arg(long, default_value_t = 200.0, value_name = "EVENTS", value_parser = parse_rate)]
    pub rate: f64,
    /// Seed of the event generator, for a reproducible stream [default: from the clock]
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.1..=20_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "`{text}` is not a rate between 0.1 and 20000 events per second"
        )),
    }
}

/// Re-exported for callers of the former location (tests, benches).
pub async fn load_sample(warehouse: &crate::warehouse::Warehouse, reset: bool) -> Result<u64> {
    crate::demo::load_sample(warehouse, reset)
        .await
        .map_err(demo_error)
}

/// A demo error for the user: a warehouse error stays one, so its hint is printed.
fn demo_error(e: DemoError) -> anyhow::Error {
    match e {
        DemoError::Warehouse(e) => e.into(),
        other => other.into(),
    }
}

pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<ExitCode> {
    let interactive = !args.tour && !args.headless;
    if interactive && !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        bail!(
            "`aurora demo` opens the full-screen workspace, which needs a terminal; \
             without one, run `aurora demo --headless --duration 30s` (add --json for \
             machine-readable totals), or `aurora demo --tour` for the printed tour"
        );
    }
    let mut session = Session::open(global).await?;
    // The demo leaves the server up so the next commands can use it.
    let result = match session.keep_server() {
        Ok(()) if args.tour => tour(&session, args.reset).await,
        Ok(()) if args.headless => headless(&session, &args).await,
        Ok(()) => workspace(global, &session, &args).await,
        Err(e) => Err(e),
    };
    session.close().await;
    result
}

/// "ClickHouse 24.8 at http://127.0.0.1:38211 (Aurora's private server)".
fn server_line(session: &Session) -> String {
    let warehouse = &session.warehouse;
    format!(
        "ClickHouse {} at {}{}",
        warehouse.capabilities().version_text,
        warehouse.url(),
        if session.local.is_some() {
            " (Aurora's private server)"
        } else {
            ""
        }
    )
}

/// Loads the sample unless it is there, and says which happened.
async fn load(session: &Session, reset: bool, out: &mut dyn Write) -> Result<()> {
    let loaded = load_sample(&session.warehouse, reset).await?;
    if loaded > 0 {
        writeln!(
            out,
            "Loaded the sample data set: {loaded} events into demo.events."
        )?;
    } else {
        writeln!(
            out,
            "The sample data set is already loaded (use --reset to reload it)."
        )?;
    }
    Ok(())
}

/// The binary as the user just ran it, which works whether or not it is on PATH (`make demo`
/// runs it by its full path).
fn me() -> String {
    std::env::args().next().unwrap_or_else(|| "aurora".into())
}

/// The printed tour: the sample's tables and columns and the result of a first query.
async fn tour(session: &Session, reset: bool) -> Result<ExitCode> {
    let warehouse = &session.warehouse;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server_line(session))?;
    load(session, reset, &mut out).await?;
    writeln!(out, "\n$ aurora schema")?;
    drop(out);
    let schema = warehouse.schema(true).await?;
    let mut out = std::io::stdout().lock();
    for t in &schema.tables {
        writeln!(
            out,
            "  {:<20} {:<10} {:>8} rows  order by {}",
            t.qualified_name(),
            t.engine,
            t.total_rows,
            t.sorting_key
        )?;
    }
    if let Some(events) = schema.table("demo.events", "demo") {
        writeln!(out, "\n  demo.events columns:")?;
        // The live demo's exactly-once bookkeeping is Aurora's, not the shop's.
        for c in events
            .columns
            .iter()
            .filter(|c| !c.name.starts_with("_aurora"))
        {
            writeln!(out, "    {:<12} {:<24} {}", c.name, c.type_name, c.comment)?;
        }
    }
    writeln!(
        out,
        "\n$ aurora query \"{}\"",
        SAMPLE_QUERY.replace('\n', " ").replace("    ", "")
    )?;
    let result = warehouse
        .query(SAMPLE_QUERY, &QueryOptions::default())
        .await?;
    render(&result, OutputFormat::Table, &mut out)?;
    if let Some(server) = &session.local {
        let me = me();
        writeln!(
            out,
            "\nThe private server keeps running at {} (pid {}).\n\
             Try:  {me} query \"SELECT country, sum(revenue) FROM demo.events GROUP BY country ORDER BY 2 DESC\"\n\
             Ask:  {me} ask \"Which 3 countries brought the most revenue?\"\n\
             Live: {me} demo --headless --duration 1m\n\
             Stop: {me} server stop",
            server.url(),
            server.state.pid
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn live_options(args: &DemoArgs) -> LiveDemoOptions {
    LiveDemoOptions {
        rate_per_sec: args.rate,
        seed: args.seed,
        state_dir: None,
    }
}

/// Says which server, loads the sample if needed, and starts the live shop.
async fn start_live(session: &Session, args: &DemoArgs) -> Result<LiveDemo> {
    let mut err = std::io::stderr().lock();
    writeln!(err, "{}", server_line(session))?;
    load(session, args.reset, &mut err).await?;
    drop(err);
    LiveDemo::start(session.warehouse.clone(), live_options(args))
        .await
        .map_err(demo_error)
}

/// The live demo in the full-screen workspace, with the demo pipeline under its control.
async fn workspace(global: &GlobalArgs, session: &Session, args: &DemoArgs) -> Result<ExitCode> {
    let demo = start_live(session, args).await?;
    let server_label = super::workspace::server_label(session);
    let mut config = session.config.clone();
    crate::demo::add_assistant_config(&mut config.assistant);
    let context = crate::tui::TuiContext {
        warehouse: session.warehouse.clone(),
        config,
        server_label,
        pipelines: crate::tui::PipelineHost::Here(demo.supervisor()),
        focus_database: Some("demo".into()),
        dashboards: crate::dashboards::library::Dirs::beside(global.config.as_deref()),
        extra_dashboards: crate::demo::dashboards(&session.warehouse).await,
        open_dashboard: None,
    };
    let outcome = crate::tui::run(context).await;
    eprintln!("Stopping the demo: the generator stops, the pipeline stores what it has read.");
    // A signal while it drains ends at once, as in headless mode.
    tokio::select! {
        report = demo.shutdown() => eprintln!(
            "The demo pipeline stored {} events in demo.events.",
            report.pipeline.status.rows_written
        ),
        name = super::interrupted() => {
            eprintln!("{name}: exiting without waiting for the pipeline");
            outcome?;
            return Ok(ExitCode::FAILURE);
        }
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// The live demo without a screen: progress lines on stderr until the duration is over or a
/// signal comes, then the totals on stdout.
async fn headless(session: &Session, args: &DemoArgs) -> Result<ExitCode> {
    let demo = start_live(session, args).await?;
    eprintln!(
        "Live demo: an online shop's clickstream into demo.events through an in-process \
         Kafka at {} (topic {}): about {} events/s at an average hour, following the time of \
         day, with a flash sale every few minutes; malformed messages go to {}.",
        demo.brokers(),
        demo.topic(),
        args.rate,
        crate::demo::REJECTED_TABLE
    );
    match args.duration {
        Some(d) => eprintln!(
            "Running for {}; Ctrl-C stops earlier.",
            humantime::format_duration(d)
        ),
        None => eprintln!("Running until Ctrl-C."),
    }
    let started = Instant::now();
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let signal = super::interrupted();
    tokio::pin!(signal);
    let mut snapshots = demo.supervisor().subscribe();
    loop {
        tokio::select! {
            _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } }, if deadline.is_some() => break,
            // A failed pipeline stores nothing more: no point in waiting for the duration.
            changed = snapshots.changed() => {
                if changed.is_err() || matches!(demo.pipeline().status.state, PipelineState::Failed(_)) {
                    break;
                }
            }
            _ = progress.tick() => {
                eprintln!("{}", progress_line(started.elapsed(), &demo.generator_counts(), &demo.pipeline()));
            }
            name = &mut signal => {
                eprintln!("{name}: stopping the demo");
                break;
            }
        }
    }
    eprintln!("Stopping: the generator stops, the pipeline stores what it has read.");
    // A second signal while it drains ends at once.
    let report = tokio::select! {
        report = demo.shutdown() => report,
        name = super::interrupted() => {
            eprintln!("{name} again: exiting without waiting for the pipeline");
            return Ok(ExitCode::FAILURE);
        }
    };
    let elapsed = started.elapsed();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&totals_json(&report, elapsed))?
        )?;
    } else {
        write!(out, "{}", totals_text(&report, elapsed))?;
        if session.local.is_some() {
            let me = me();
            writeln!(
                out,
                "Try:  {me} query \"SELECT event_type, count(), sum(revenue) FROM demo.events \
                 WHERE event_time > now() - INTERVAL 10 MINUTE GROUP BY event_type\""
            )?;
        }
    }
    drop(out);
    let status = &report.pipeline.status;
    if let PipelineState::Failed(reason) = &status.state {
        eprintln!("error: the demo pipeline failed: {reason}");
        return Ok(ExitCode::FAILURE);
    }
    if status.rows_written == 0 {
        eprintln!(
            "error: no event reached demo.events ({} produced){}",
            report.generated.produced,
            status
                .last_error
                .as_ref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn lag(status: &PipelineStatus) -> u64 {
    status.lag.values().sum()
}

/// `running`, `stopped`, `retrying: ...`: a state in a word or two.
fn state_word(snapshot: &PipelineSnapshot) -> String {
    if snapshot.paused {
        return "paused".into();
    }
    match &snapshot.status.state {
        PipelineState::Retrying(reason) => format!("retrying: {reason}"),
        PipelineState::Failed(reason) => format!("failed: {reason}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn progress_line(
    elapsed: Duration,
    generated: &crate::demo::generator::GeneratorCounts,
    pipeline: &PipelineSnapshot,
) -> String {
    let s = &pipeline.status;
    let secs = elapsed.as_secs();
    format!(
        "[{}:{:02}] produced {}{} | stored {} ({:.0} rows/s) | lag {} | dead-lettered {} | {}",
        secs / 60,
        secs % 60,
        generated.produced,
        if generated.flash_sale {
            " (flash sale!)"
        } else {
            ""
        },
        s.rows_written,
        s.rows_per_sec,
        lag(s),
        s.dead_lettered,
        state_word(pipeline)
    )
}

fn totals_text(report: &LiveDemoReport, elapsed: Duration) -> String {
    let s = &report.pipeline.status;
    let mut out = format!(
        "{}: {} after {}\n\
         \x20 produced       {} events ({} malformed on purpose)\n\
         \x20 stored         {} rows into {} in {} batches\n\
         \x20 dead-lettered  {} into {}\n\
         \x20 lag            {} messages not read\n",
        crate::demo::PIPELINE_NAME,
        state_word(&report.pipeline),
        humantime::format_duration(Duration::from_secs(elapsed.as_secs())),
        report.generated.produced,
        report.generated.malformed,
        s.rows_written,
        crate::demo::EVENTS_TABLE,
        s.batches,
        s.dead_lettered,
        crate::demo::REJECTED_TABLE,
        lag(s),
    );
    if s.already_stored > 0 {
        out.push_str(&format!(
            "  skipped        {} already stored before (exactly-once)\n",
            s.already_stored
        ));
    }
    for (_, e) in &report.pipeline.recent_errors {
        out.push_str(&format!("  error          {e}\n"));
    }
    out
}

fn totals_json(report: &LiveDemoReport, elapsed: Duration) -> serde_json::Value {
    let s = &report.pipeline.status;
    let (state, error) = match &s.state {
        PipelineState::Failed(reason) => ("failed", Some(reason.clone())),
        PipelineState::Retrying(reason) => ("retrying", Some(reason.clone())),
        PipelineState::Starting => ("starting", None),
        PipelineState::Running => ("running", None),
        PipelineState::Finished => ("finished", None),
        PipelineState::Stopped => ("stopped", None),
    };
    serde_json::json!({
        "pipeline": crate::demo::PIPELINE_NAME,
        "state": state,
        "error": error,
        "elapsed_seconds": elapsed.as_secs_f64(),
        "produced": report.generated.produced,
        "malformed": report.generated.malformed,
        "produce_failed": report.generated.failed,
        "stored": s.rows_written,
        "dead_lettered": s.dead_lettered,
        "already_stored": s.already_stored,
        "batches": s.batches,
        "lag": lag(s),
        "table": crate::demo::EVENTS_TABLE,
        "dead_letter_table": crate::demo::REJECTED_TABLE,
        "brokers": report.brokers,
        "topic": report.topic,
        "recent_errors": report.pipeline.recent_errors.iter().map(|(at, e)| serde_json::json!({"at": at, "error": e})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_the_range_are_refused() {
        assert_eq!(parse_rate("250"), Ok(250.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("1e9").is_err());
        assert!(parse_rate("fast").unwrap_err().contains("`fast`"));
    }

    #[test]
    fn totals_add_up_in_words_and_json() {
        let report = LiveDemoReport {
            generated: crate::demo::generator::GeneratorCounts {
                produced: 1002,
                malformed: 2,
                ..Default::default()
            },
            pipeline: PipelineSnapshot {
                status: PipelineStatus {
                    name: crate::demo::PIPELINE_NAME.into(),
                    state: PipelineState::Stopped,
                    rows_written: 1000,
                    dead_lettered: 2,
                    batches: 9,
                    ..Default::default()
                },
                controllable: true,
                ..Default::default()
            },
            brokers: "127.0.0.1:1".into(),
            topic: "clickstream-1".into(),
        };
        let text = totals_text(&report, Duration::from_millis(10_400));
        assert!(
            text.starts_with("demo-clickstream: stopped after 10s\n"),
            "{text}"
        );
        assert!(
            text.contains("stored         1000 rows into demo.events in 9 batches"),
            "{text}"
        );
        assert!(
            text.contains("dead-lettered  2 into demo.events_rejected"),
            "{text}"
        );
        let json = totals_json(&report, Duration::from_secs(10));
        assert_eq!(json["state"], "stopped");
        assert_eq!(json["stored"], 1000);
        assert_eq!(json["dead_lettered"], 2);
        assert_eq!(json["produced"], 1002);
        assert_eq!(json["topic"], "clickstream-1");
        assert!(json["error"].is_null());
    }
}
