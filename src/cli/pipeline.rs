//! `aurora pipeline validate|run`: check pipeline files (every problem at once, then live
//! checks against the server), and run pipelines headless until their sources end or
//! SIGINT/SIGTERM, which drains and saves positions before exiting 0.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ingest::engine::{self, PipelineRun, PipelineState, PipelineStatus};
use crate::ingest::pipeline::{self, LoadedPipelines, Source};
use crate::ingest::sinks::clickhouse;
use crate::ingest::sources::csv::matching_files;
use crate::ingest::sources::{kafka, mysql, postgres};

use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub action: PipelineAction,
}

#[derive(Debug, Subcommand)]
pub enum PipelineAction {
    /// Check pipeline files: syntax and settings, then the tables and mappings on the server
    Validate {
        /// Pipeline files [default: the config's `pipelines:` list]
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Only check the files themselves; do not connect to ClickHouse
        #[arg(long)]
        offline: bool,
    },
    /// Write a pipeline file from sample records of a CSV file or a Kafka topic, with inferred
    /// column types and the CREATE TABLE they imply, for you to review
    Init {
        /// Sample the first rows of this CSV file (with a header line)
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "from_kafka",
            required_unless_present = "from_kafka"
        )]
        from_csv: Option<PathBuf>,
        /// Sample the first messages (JSON) of this Kafka topic
        #[arg(long, value_name = "TOPIC")]
        from_kafka: Option<String>,
        /// Brokers for --from-kafka [default: `kafka.brokers` from the config]
        #[arg(long, value_name = "HOST:PORT,...")]
        brokers: Option<String>,
        /// How many records to sample (from a topic: a third each from the start, the middle
        /// and the end of every partition)
        #[arg(long, default_value_t = 600)]
        samples: usize,
        /// Pipeline name [default: from the file or topic name]
        #[arg(long)]
        name: Option<String>,
        /// Target table [default: `default.<name>`]
        #[arg(long)]
        table: Option<String>,
        /// Write the pipeline here instead of stdout (refuses to overwrite)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show the last reported status of every pipeline (running or not) in the state directory
    Status {
        /// Where saved positions live [default: ~/.local/share/aurora/pipelines]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// One JSON object per pipeline and line
        #[arg(long)]
        json: bool,
    },
    /// Send dead-lettered records through the pipeline's current mapping again, after you
    /// fixed what made them fail; those that pass are written and leave the dead-letter table
    Replay {
        /// The pipeline file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Which pipeline of the file [default: its only one]
        #[arg(long, value_name = "NAME")]
        pipeline: Option<String>,
        /// Only dead letters matching this SQL condition on the dead-letter table's columns
        /// (`source`, `offset`, `raw`, `error`, `at`), e.g. "error LIKE '%amount%'"
        #[arg(long = "where", value_name = "CONDITION")]
        filter: Option<String>,
        /// Count what would pass now; change nothing
        #[arg(long)]
        dry_run: bool,
        /// The report as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Run pipelines until their sources end (or Ctrl-C/SIGTERM: drain, save, exit 0)
    Run {
        /// Pipeline files [default: the config's `pipelines:` list]
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Where saved positions live [default: ~/.local/share/aurora/pipelines]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Print the final status of each pipeline as JSON lines on stdout
        #[arg(long)]
        json: bool,
    },
}

/// Where pipelines come from: files named on the command line, else the main config's
/// `pipelines:` list (paths, or pipelines written inline).
fn sources(global: &GlobalArgs, files: &[PathBuf]) -> Result<Vec<(String, String, PathBuf)>> {
    let read = |path: &PathBuf| -> Result<(String, String, PathBuf)> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the pipeline file {}: {e}", path.display())
        })?;
        Ok((path.display().to_string(), text, path.clone()))
    };
    if !files.is_empty() {
        return files.iter().map(read).collect();
    }
    let loaded = crate::config::load(global.config.as_deref())?;
    let config_path = loaded.source.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (i, entry) in loaded.config.pipelines.iter().enumerate() {
        match entry {
            crate::config::PipelineRef::Path(path) => out.push(read(path)?),
            crate::config::PipelineRef::Inline(value) => {
                let mut file = serde_yaml::Mapping::new();
                file.insert(
                    "pipelines".into(),
                    serde_yaml::Value::Sequence(vec![value.clone()]),
                );
                let text = serde_yaml::to_string(&file)?;
                out.push((
                    format!("{} (pipelines[{i}])", config_path.display()),
                    text,
                    config_path.clone(),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads every pipeline source, printing all diagnostics of all of them before giving up;
/// refuses when there are none.
fn load_all(global: &GlobalArgs, files: &[PathBuf]) -> Result<Vec<LoadedPipelines>> {
    let loaded = load_any(global, files)?;
    if loaded.is_empty() {
        bail!(
            "no pipeline files given, and the config's `pipelines:` list is empty; \
             pass FILE arguments (templates are in presets/pipelines/)"
        );
    }
    Ok(loaded)
}

/// Like [`load_all`], and an empty list is fine (`aurora serve` may run alerts only).
pub(super) fn load_any(global: &GlobalArgs, files: &[PathBuf]) -> Result<Vec<LoadedPipelines>> {
    let mut loaded = Vec::new();
    let mut failed = 0;
    for (name, text, path) in sources(global, files)? {
        match pipeline::check_str(&name, &text) {
            Ok(pipelines) => loaded.push(LoadedPipelines { path, pipelines }),
            Err(diags) => {
                failed += diags.len();
                eprint!("{}", crate::config::render_all(&diags, Some(&text)));
                eprintln!("{}", crate::config::summary(&diags));
            }
        }
    }
    if failed > 0 {
        bail!("{failed} problem(s) in the pipeline files; nothing was run");
    }
    let mut names = std::collections::BTreeMap::new();
    for l in &loaded {
        for p in &l.pipelines {
            if let Some(other) = names.insert(p.name.clone(), l.path.clone()) {
                bail!(
                    "pipeline `{}` is defined in both {} and {}; names must be unique",
                    p.name,
                    other.display(),
                    l.path.display()
                );
            }
        }
    }
    Ok(loaded)
}

pub(super) fn base_dir(l: &LoadedPipelines) -> PathBuf {
    l.path
        .parent()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
        .unwrap_or_default()
}

pub async fn run(global: &GlobalArgs, args: PipelineArgs) -> Result<ExitCode> {
    match args.action {
        PipelineAction::Validate { files, offline } => validate(global, &files, offline).await,
        PipelineAction::Run {
            files,
            state_dir,
            json,
        } => run_pipelines(global, &files, state_dir, json).await,
        PipelineAction::Init {
            from_csv,
            from_kafka,
            brokers,
            samples,
            name,
            table,
            output,
        } => {
            init(
                global, from_csv, from_kafka, brokers, samples, name, table, output,
            )
            .await
        }
        PipelineAction::Replay {
            file,
            pipeline,
            filter,
            dry_run,
            json,
        } => replay(global, &file, pipeline, filter, dry_run, json).await,
        PipelineAction::Status { state_dir, json } => {
            super::session::load_config(global)?;
            crate::rbac::require("pipeline.view", "")?;
            show_status(&state_dir.unwrap_or_else(engine::default_state_dir), json)
        }
    }
}

async fn validate(global: &GlobalArgs, files: &[PathBuf], offline: bool) -> Result<ExitCode> {
    let loaded = load_all(global, files)?;
    let count: usize = loaded.iter().map(|l| l.pipelines.len()).sum();
    if offline {
        println!("ok: {count} pipeline(s) in {} file(s)", loaded.len());
        return Ok(ExitCode::SUCCESS);
    }
    let session = Session::open(global).await?;
    let mut problems = 0;
    let mut out = std::io::stdout().lock();
    for l in &loaded {
        for p in &l.pipelines {
            let mut found = Vec::new();
            if let Source::Csv(csv) = &p.source {
                let pattern = base_dir(l).join(&csv.path).display().to_string();
                match matching_files(&pattern) {
                    Ok(files) if files.is_empty() && !csv.follow => {
                        found.push(format!("no file matches `{pattern}`"))
                    }
                    Ok(_) => {}
                    Err(e) => found.push(e.to_string()),
                }
            } else if let Source::Kafka(spec) = &p.source {
                let ctx = kafka::KafkaContext {
                    pipeline: p.name.clone(),
                    default_brokers: session.config.kafka.brokers.clone(),
                    client_id: session.config.kafka.client_id.clone(),
                    default_properties: session.config.kafka.properties.clone(),
                    exactly_once: p.delivery == crate::ingest::pipeline::Delivery::ExactlyOnce,
                    known_positions: Default::default(),
                };
                let spec = spec.clone();
                let problems =
                    tokio::task::spawn_blocking(move || kafka::check(&spec, &ctx)).await?;
                found.extend(problems);
            } else if let Source::Postgres(spec) = &p.source {
                found.extend(postgres::check(&spec.with_base(&base_dir(l))).await);
            } else if let Source::Mysql(spec) = &p.source {
                found.extend(mysql::check(&spec.with_base(&base_dir(l))).await);
            }
            match clickhouse::check(&session.warehouse, p).await {
                Ok(sink_problems) => found.extend(sink_problems),
                Err(e) => found.push(e.to_string()),
            }
            if found.is_empty() {
                writeln!(out, "ok: {} ({})", p.name, l.path.display())?;
            } else {
                problems += found.len();
                writeln!(out, "{} ({}):", p.name, l.path.display())?;
                for f in found {
                    writeln!(out, "  - {f}")?;
                }
            }
        }
    }
    drop(out);
    session.close().await;
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_pipelines(
    global: &GlobalArgs,
    files: &[PathBuf],
    state_dir: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let loaded = load_all(global, files)?;
    let config = super::session::load_config(global)?;
    for p in loaded.iter().flat_map(|l| &l.pipelines) {
        crate::rbac::require("pipeline.control", &p.name)?;
    }
    let session = Session::open_with(global, config).await?;
    let warehouse = session.warehouse.clone();
    let state_dir = state_dir.unwrap_or_else(engine::default_state_dir);
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut watchers = Vec::new();
    for l in &loaded {
        for p in &l.pipelines {
            crate::audit::record(crate::audit::Event::new(
                "pipeline.start",
                p.name.as_str(),
                crate::audit::Outcome::Ok,
            ))?;
            let (tx, rx) = watch::channel(PipelineStatus::default());
            watchers.push(rx);
            let run = PipelineRun {
                pipeline: p.clone(),
                kafka: session.config.kafka.clone(),
                base_dir: base_dir(l),
                state_dir: state_dir.clone(),
                warehouse: warehouse.clone(),
            };
            tasks.push(tokio::spawn(engine::run(run, cancel.child_token(), tx)));
        }
    }
    let progress = tokio::spawn(log_progress(watchers));
    let all = futures_util::future::join_all(tasks);
    tokio::pin!(all);
    let results = tokio::select! {
        results = &mut all => results,
        signal = super::interrupted() => {
            tracing::warn!("{signal}: draining pipelines and saving positions");
            cancel.cancel();
            all.await
        }
    };
    progress.abort();
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for result in results {
        let status = match result {
            Ok(s) => s,
            Err(e) => {
                failed = true;
                eprintln!("error: a pipeline task crashed: {e}");
                continue;
            }
        };
        let stopped = crate::audit::Event::new(
            "pipeline.stop",
            status.name.as_str(),
            crate::audit::Outcome::Ok,
        )
        .with("state", status.state.name());
        let stopped = match &status.state {
            PipelineState::Failed(reason) => stopped.failed(reason),
            _ => stopped,
        };
        if let Err(e) = crate::audit::record(stopped) {
            // The pipeline has stopped already; the failure to record it is reported.
            failed = true;
            eprintln!("error: {e}");
        }
        if matches!(status.state, PipelineState::Failed(_)) {
            failed = true;
        }
        if json {
            writeln!(out, "{}", serde_json::to_string(&status)?)?;
        } else {
            writeln!(out, "{}", describe(&status))?;
        }
    }
    drop(out);
    session.close().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn identifier(text: &str) -> String {
    let s = crate::warehouse::query::identifier_from(text);
    if s.is_empty() {
        "pipeline".into()
    } else {
        s
    }
}

#[allow(clippy::too_many_arguments)]
async fn init(
    global: &GlobalArgs,
    from_csv: Option<PathBuf>,
    from_kafka: Option<String>,
    brokers: Option<String>,
    samples: usize,
    name: Option<String>,
    table: Option<String>,
    output: Option<PathBuf>,
) -> Result<ExitCode> {
    use crate::ingest::init::{infer_ordered, render_pipeline};
    let mut field_order: Vec<String> = Vec::new();
    let (records, default_name, source_yaml) = if let Some(file) = from_csv {
        let mut reader = ::csv::Reader::from_path(&file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        let headers = reader.headers()?.clone();
        field_order = headers.iter().map(str::to_string).collect();
        let mut records = Vec::new();
        for row in reader.records().take(samples) {
            let row = row.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let mut map = serde_json::Map::new();
            for (h, v) in headers.iter().zip(row.iter()) {
                map.insert(
                    h.to_string(),
                    if v.is_empty() {
                        serde_json::Value::Null
                    } else {
                        v.into()
                    },
                );
            }
            records.push(serde_json::Value::Object(map));
        }
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("csv");
        let path = std::path::absolute(&file).unwrap_or(file.clone());
        (
            records,
            identifier(stem),
            format!(
                "      csv:
        path: {}
",
                serde_json::to_string(&path.display().to_string())?
            ),
        )
    } else if let Some(topic) = from_kafka {
        let config = super::session::load_config(global)?;
        let brokers = brokers.unwrap_or_else(|| config.kafka.brokers.join(","));
        let (records, place) = tokio::task::spawn_blocking({
            let (brokers, topic) = (brokers.clone(), topic.clone());
            move || sample_kafka(&brokers, &topic, samples)
        })
        .await??;
        eprintln!("sampled {} message(s) from {place}", records.len());
        (
            records,
            identifier(&topic),
            format!(
                "      kafka:
        brokers: [{}]
        topic: {}
        format: json
",
                serde_json::to_string(&brokers)?,
                serde_json::to_string(&topic)?
            ),
        )
    } else {
        bail!("give --from-csv FILE or --from-kafka TOPIC");
    };
    if records.is_empty() {
        bail!("no sample records: the file or topic is empty");
    }
    let name = name.unwrap_or(default_name);
    let table = table.unwrap_or_else(|| format!("default.{name}"));
    let columns = infer_ordered(&records, &field_order);
    let text = render_pipeline(&name, &source_yaml, &table, &columns, records.len());
    // What init writes must load: check it the way `validate` would.
    if let Err(diags) = pipeline::check_str("<init>", &text) {
        bail!(
            "the generated pipeline does not validate (a bug):
{}",
            crate::config::render_all(&diags, Some(&text))
        );
    }
    match output {
        Some(path) => {
            if path.exists() {
                bail!(
                    "{} exists; choose another --output or remove it",
                    path.display()
                );
            }
            std::fs::write(&path, &text)?;
            eprintln!(
                "wrote {} ({} columns from {} records); review it, then `aurora pipeline validate {}`",
                path.display(),
                columns.len(),
                records.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Up to `samples` JSON messages of `topic`, a third each from the start, the middle and the
/// end of every partition, without joining a consumer group (a join can take many seconds
/// and would leave a group behind): a field that turns up later, goes NULL later or changes
/// kind later in the topic shows in the sample. Returns the records and where they came from.
fn sample_kafka(
    brokers: &str,
    topic: &str,
    samples: usize,
) -> Result<(Vec<serde_json::Value>, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Never used to join or commit: partitions are assigned directly below.
        .set("group.id", format!("aurora-init-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!("Kafka at {brokers} did not answer: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic `{topic}` does not exist on {brokers}");
    }
    let mut ranges = Vec::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| anyhow::anyhow!("Kafka at {brokers}: partition {p}: {e}"))?;
        if high > low {
            ranges.push((p, low, high));
        }
    }
    let per = (samples / (3 * ranges.len().max(1))).max(1) as i64;
    let mut out = Vec::new();
    // A broker whose watermarks are off (tansu reports 1 for a partition written in one
    // batch) gets overlapping windows: each message counts once.
    let mut seen = std::collections::HashSet::new();
    let mut windows = 0;
    for window in 0..3 {
        // Where each partition's window starts, and how many messages to take there.
        let mut wanted: std::collections::HashMap<i32, i64> = Default::default();
        let mut assignment = TopicPartitionList::new();
        for &(p, low, high) in &ranges {
            let start = match window {
                0 => low,
                1 => (low + (high - low) / 2 - per / 2).max(low),
                _ => (high - per).max(low),
            };
            wanted.insert(p, per);
            assignment.add_partition_offset(topic, p, Offset::Offset(start))?;
        }
        if wanted.is_empty() {
            break;
        }
        windows += 1;
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while wanted.values().any(|n| *n > 0) && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let Some(left) = wanted.get_mut(&m.partition()) else {
                        continue;
                    };
                    if *left > 0 && seen.insert((m.partition(), m.offset())) {
                        *left -= 1;
                        if let Some(Ok(v)) =
                            m.payload().map(serde_json::from_slice::<serde_json::Value>)
                        {
                            out.push(v);
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(left) = wanted.get_mut(&p) {
                        *left = 0;
                    }
                }
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF))) => {}
                Some(Err(e)) => bail!("Kafka at {brokers}: {e}"),
                None => {}
            }
        }
    }
    let place = match windows {
        0 => "an empty topic".to_string(),
        1 => format!("{} partition(s)", ranges.len()),
        _ => format!("the start, middle and end of {} partition(s)", ranges.len()),
    };
    Ok((out, place))
}

async fn replay(
    global: &GlobalArgs,
    file: &std::path::Path,
    name: Option<String>,
    filter: Option<String>,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode> {
    let loaded = load_all(global, &[file.to_path_buf()])?;
    let l = &loaded[0];
    let pipeline = match &name {
        Some(n) => l.pipelines.iter().find(|p| p.name == *n).ok_or_else(|| {
            let names: Vec<&str> = l.pipelines.iter().map(|p| p.name.as_str()).collect();
            anyhow::anyhow!(
                "{} has no pipeline `{n}`; it has {}",
                file.display(),
                names.join(", ")
            )
        })?,
        None if l.pipelines.len() == 1 => &l.pipelines[0],
        None => bail!(
            "{} has {} pipelines; choose one with --pipeline NAME",
            file.display(),
            l.pipelines.len()
        ),
    };
    let session = Session::open(global).await?;
    if let Err(denied) = crate::rbac::require("pipeline.control", &pipeline.name) {
        session.close().await;
        return Err(denied.into());
    }
    let report = crate::ingest::replay::replay(
        session.warehouse.clone(),
        pipeline,
        &base_dir(l),
        filter.as_deref(),
        dry_run,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let failing: u64 = report.still_failing.values().sum();
        if dry_run {
            println!(
                "{}: {} dead-lettered record(s); {} would pass the mapping now, {failing} would still fail (dry run: nothing changed)",
                pipeline.name, report.examined, report.passing
            );
        } else {
            println!(
                "{}: {} dead-lettered record(s); {} written, {} were in the table already, {} removed from the dead-letter table, {failing} still failing",
                pipeline.name, report.examined, report.written, report.already_in_table, report.removed
            );
        }
        for (reason, n) in &report.still_failing {
            println!("  {n} × {reason}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_status(state_dir: &std::path::Path, json: bool) -> Result<ExitCode> {
    let statuses = engine::read_statuses(state_dir);
    if statuses.is_empty() {
        println!(
            "no pipeline has run with state directory {}",
            state_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for mut s in statuses {
        // A process that died without saying so (SIGKILL, a crash) left "running" behind.
        let alive = i32::try_from(s.pid)
            .is_ok_and(|pid| pid != 0 && crate::warehouse::local_server::process_alive(pid));
        if !alive && matches!(s.state, PipelineState::Running | PipelineState::Retrying(_)) {
            s.state = PipelineState::Failed(format!(
                "process {} is gone without stopping the pipeline (killed or crashed)",
                s.pid
            ));
        }
        if json {
            writeln!(out, "{}", serde_json::to_string(&s)?)?;
        } else {
            let rate = if alive && s.rows_per_sec > 0.0 {
                format!(", {:.0} rows/s", s.rows_per_sec)
            } else {
                String::new()
            };
            writeln!(out, "{}{rate}", describe(&s))?;
            if !s.lag.is_empty() {
                let total: u64 = s.lag.values().sum();
                let parts: Vec<String> = s
                    .lag
                    .iter()
                    .map(|(p, l)| format!("{}={l}", p.rsplit(':').next().unwrap_or(p)))
                    .collect();
                writeln!(
                    out,
                    "  lag: {total} messages (partition=lag: {})",
                    parts.join(" ")
                )?;
            }
            if !s.columns_added.is_empty() {
                writeln!(out, "  columns added: {}", s.columns_added.join(", "))?;
            }
            for w in &s.warnings {
                writeln!(out, "  warning: {w}")?;
            }
            if let Some(e) = &s.last_error {
                writeln!(out, "  last error: {e}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(s: &PipelineStatus) -> String {
    let state = match &s.state {
        PipelineState::Failed(reason) => format!("failed: {reason}"),
        PipelineState::Retrying(reason) => format!("retrying: {reason}"),
        other => format!("{other:?}").to_lowercase(),
    };
    format!(
        "{}: {state}; {} rows written in {} batches, {} dead-lettered, {} already stored by an earlier run",
        s.name, s.rows_written, s.batches, s.dead_lettered, s.already_stored
    )
}

/// Logs each pipeline's progress every few seconds (stderr, via tracing).
async fn log_progress(watchers: Vec<watch::Receiver<PipelineStatus>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        for w in &watchers {
            let s = w.borrow().clone();
            tracing::info!("{}", describe(&s));
        }
    }
}
