//! `cargo bench --bench ingest` (or `make bench`): Kafka → ClickHouse ingestion rates, measured
//! in one run on the same topic and the same table shape:
//!
//! 1. a bare rdkafka consumer reading the topic (the ceiling for any consumer);
//! 2. Aurora end to end: `aurora pipeline run` (release build, exactly-once) into ClickHouse,
//!    writing RowBinary (the default), then again writing JSONEachRow (what it did before),
//!    with the CPU seconds Aurora and ClickHouse spent on each (where the time goes);
//! 3. ClickHouse's own Kafka table engine with a materialized view into the same table shape;
//! 4. a CSV file of half as many rows: `clickhouse-client` inserting it against Aurora;
//!
//! plus Aurora's peak RSS. Each rate is events per second from the moment that consumer was
//! started until the last event was consumed (or stored), so each includes joining its consumer
//! group (the mock broker delays a new group's first join by 3 s) and, for the two that write,
//! ClickHouse storing the rows.
//! `AURORA_BENCH_EVENTS` sets the number of events (default 2,000,000); `AURORA_BENCH_PARTS`
//! runs only some parts (`kafka`, `csv`, comma-separated; default both).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aurora::warehouse::local_server::{ensure_running, stop, LocalServerOptions};
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

const TOPIC: &str = "bench";
// The mock broker keeps at most ~5 MiB per partition: spread the events wide enough.
const PARTITIONS: i32 = 32;
const COLUMNS: &str = "id UInt64, ts DateTime, user String, amount Decimal(10, 2), country String";

fn main() {
    if let Err(e) = run() {
        eprintln!("bench/ingest: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn event(id: u64) -> String {
    const COUNTRIES: [&str; 6] = ["US", "DE", "FR", "JP", "BR", "IN"];
    format!(
        r#"{{"id":{id},"ts":{},"user":"user-{}","amount":{}.{:02},"country":"{}","session":"s{}"}}"#,
        1_700_000_000 + id / 50,
        id % 9973,
        id % 500,
        id % 100,
        COUNTRIES[(id % 6) as usize],
        id % 100_000
    )
}

fn produce(brokers: &str, events: u64) -> Result<Duration> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let started = Instant::now();
    for id in 0..events {
        let payload = event(id);
        let key = id.to_string();
        loop {
            match producer.send(BaseRecord::to(TOPIC).key(&key).payload(&payload)) {
                Ok(()) => break,
                Err(_) => producer.poll(Duration::from_millis(5)),
            }
        }
        if id % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(started.elapsed())
}

fn check_topic(brokers: &str, events: u64) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-watermarks")
        .create()?;
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (low, high) = consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(10))?;
        if low != 0 {
            return Err(format!(
                "the mock broker dropped the oldest messages of partition {p}; use more partitions"
            )
            .into());
        }
        total += high as u64;
    }
    if total != events {
        return Err(format!("the topic holds {total} messages, not {events}").into());
    }
    Ok(())
}

/// A bare consumer reading every message: the rate any consumer of this broker can reach.
fn bare_consumer(brokers: &str, events: u64) -> Result<Rates> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-bare")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    let started = Instant::now();
    consumer.subscribe(&[TOPIC])?;
    let mut seen = 0u64;
    let mut bytes = 0usize;
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < events && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    let first = first.ok_or("the bare consumer received nothing")?;
    if seen < events {
        return Err(format!("the bare consumer saw only {seen} of {events} events").into());
    }
    std::hint::black_box(bytes);
    Ok(Rates {
        from_start: events as f64 / started.elapsed().as_secs_f64(),
        after_first: (events - 1) as f64 / first.elapsed().as_secs_f64().max(1e-6),
    })
}

/// A consumer's rate two ways: from the moment it was started (so including its group join,
/// which the mock broker delays by a varying few seconds), and from its first event or row to
/// the last (the steady rate, without the join).
#[derive(Debug, Clone, Copy)]
struct Rates {
    from_start: f64,
    after_first: f64,
}

impl std::fmt::Display for Rates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} /s {:>9.0} /s",
            self.from_start, self.after_first
        )
    }
}

/// `a ÷ b` for both kinds of rate.
fn ratios(a: Rates, b: Rates) -> String {
    format!(
        "{:.2}x {:.2}x",
        a.from_start / b.from_start,
        a.after_first / b.after_first
    )
}

fn count(rt: &tokio::runtime::Runtime, w: &Warehouse, table: &str) -> u64 {
    rt.block_on(w.query(
        &format!("SELECT count() FROM {table}"),
        &QueryOptions::default(),
    ))
    .ok()
    .and_then(|r| r.rows.first()?.first()?.to_string().parse().ok())
    .unwrap_or(0)
}

/// Polls the table until it holds `events` rows; returns the rate since `started`.
fn watch_table(
    rt: &tokio::runtime::Runtime,
    w: &Warehouse,
    table: &str,
    events: u64,
    started: Instant,
    timeout: Duration,
    mut on_poll: impl FnMut(),
) -> Result<Rates> {
    let deadline = Instant::now() + timeout;
    let mut first: Option<(Instant, u64)> = None;
    let (mut last_n, mut last_progress) = (0, Instant::now());
    loop {
        let n = count(rt, w, table);
        if n > 0 {
            first.get_or_insert_with(|| (Instant::now(), n));
        }
        if n >= events {
            break;
        }
        if n != last_n {
            (last_n, last_progress) = (n, Instant::now());
        }
        if Instant::now() > deadline || last_progress.elapsed() > Duration::from_secs(60) {
            return Err(format!("{table} stalled at {n} of {events} rows").into());
        }
        on_poll();
        std::thread::sleep(Duration::from_millis(20));
    }
    let (first, first_rows) = first.ok_or("no row ever arrived")?;
    Ok(Rates {
        from_start: events as f64 / started.elapsed().as_secs_f64().max(1e-6),
        // The rows of the first stored batch arrived before the clock started.
        after_first: (events - first_rows) as f64 / first.elapsed().as_secs_f64().max(1e-6),
    })
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let mut s = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start with the state.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // In USER_HZ, which Linux fixes at 100 on x86 and ARM.
    (ticks(11) + ticks(12)) / 100.0
}

/// Writes the bench's pipeline (the events' five columns, exactly-once) from `source` into
/// `table`, with `sink.format: format`; returns its path.
fn write_pipeline(
    work: &std::path::Path,
    name: &str,
    source: &str,
    table: &str,
    format: &str,
) -> Result<std::path::PathBuf> {
    let path = work.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "pipelines:
  - name: {name}
    source:
      {source}
    mapping:
      columns:
        id: {{type: UInt64}}
        ts: {{type: DateTime}}
        user: {{type: String}}
        amount: {{type: 'Decimal(10, 2)'}}
        country: {{type: String}}
    sink:
      table: {table}
      create: if_missing
      order_by: [id]
      format: {format}
    delivery: exactly_once
    dead_letter: {{table: bench.aurora_rejected}}
"
        ),
    )?;
    Ok(path)
}

/// `aurora pipeline run PIPELINE` on the built-in defaults, its state in `work`.
fn aurora_run(work: &std::path::Path, url: &str, pipeline: &std::path::Path) -> Command {
    let empty = work.join("config.yaml");
    let _ = std::fs::write(&empty, "");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aurora"));
    cmd.env("AURORA_CONFIG", &empty)
        .env("AURORA_LOG", "aurora=warn")
        .args(["--url", url, "pipeline", "run"])
        .arg(pipeline)
        .arg("--state-dir")
        .arg(work.join(format!(
            "state-{}",
            pipeline.file_stem().and_then(|s| s.to_str()).unwrap_or("bench")
        )))
        .stdout(Stdio::null());
    cmd
}

/// What one `aurora pipeline run` of the topic needs.
struct AuroraRun<'a> {
    rt: &'a tokio::runtime::Runtime,
    w: &'a Warehouse,
    url: String,
    brokers: String,
    work: std::path::PathBuf,
    server_pid: u32,
    events: u64,
}

struct AuroraResult {
    rates: Rates,
    rss_kib: u64,
    aurora_cpu: f64,
    server_cpu: f64,
}

impl AuroraRun<'_> {
    /// Runs the pipeline with `sink.format: format` until its table holds every event.
    fn run(&self, format: &str) -> Result<AuroraResult> {
        let pipeline = write_pipeline(
            &self.work,
            &format!("bench-{format}"),
            &format!(
                "kafka: {{brokers: ['{}'], topic: {TOPIC}, group: bench-aurora-{format}}}",
                self.brokers
            ),
            &format!("bench.aurora_{format}"),
            format,
        )?;
        let server_cpu = cpu_seconds(self.server_pid);
        let started = Instant::now();
        let mut child = aurora_run(&self.work, &self.url, &pipeline)
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        let mut rss = 0;
        let rates = watch_table(
            self.rt,
            self.w,
            &format!("bench.aurora_{format}"),
            self.events,
            started,
            Duration::from_secs(900),
            || {
                rss = rss.max(peak_rss_kib(pid).unwrap_or(0));
            },
        );
        rss = rss.max(peak_rss_kib(pid).unwrap_or(0));
        let aurora_cpu = cpu_seconds(pid);
        let server_cpu = cpu_seconds(self.server_pid) - server_cpu;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = child.wait();
        Ok(AuroraResult {
            rates: rates?,
            rss_kib: rss,
            aurora_cpu,
            server_cpu,
        })
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// CPU seconds (user + system) of this process's children that have exited and been waited
/// for: the difference around one child's run is that child's CPU time.
fn children_cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        secs(u.user_time()) + secs(u.system_time())
    })
}

/// A CSV file of `rows` rows: `clickhouse-client` inserting it, against `aurora pipeline run`
/// (exactly-once, to the end of the file), each timed from its start to its exit, with the CPU
/// seconds each and the server spent.
fn csv_files(
    rt: &tokio::runtime::Runtime,
    w: &Warehouse,
    server: &aurora::warehouse::local_server::LocalServer,
    work: &std::path::Path,
    rows: u64,
) -> Result<()> {
    use std::io::Write;
    let dir = work.join("csv");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("events.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    writeln!(out, "id,ts,user,amount,country")?;
    for id in 0..rows {
        let secs = 1_700_000_000 + id / 50;
        let (h, m, sec) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        // Valid times of one day; only their shape matters here.
        writeln!(
            out,
            "{id},2023-11-14 {h:02}:{m:02}:{sec:02},user-{},{}.{:02},{}",
            id % 9973,
            id % 500,
            id % 100,
            ["US", "DE", "FR", "JP", "BR", "IN"][(id % 6) as usize]
        )?;
    }
    out.flush()?;
    drop(out);
    rt.block_on(w.execute(&format!(
        "CREATE TABLE bench.csv_client ({COLUMNS}) ENGINE = MergeTree ORDER BY id"
    )))?;
    let server_pid = server.state.pid as u32;
    let (own, server_before) = (children_cpu_seconds(), cpu_seconds(server_pid));
    let started = Instant::now();
    let status = Command::new("clickhouse-client")
        .args(["--port", &server.state.tcp_port.to_string()])
        .args([
            "--query",
            "INSERT INTO bench.csv_client FORMAT CSVWithNames",
        ])
        .stdin(std::fs::File::open(&file)?)
        .status()?;
    let client = started.elapsed();
    let client_cpu = (
        children_cpu_seconds() - own,
        cpu_seconds(server_pid) - server_before,
    );
    if !status.success() {
        return Err(format!("clickhouse-client failed: {status}").into());
    }
    let pipeline = write_pipeline(
        work,
        "bench-csv",
        &format!("csv: {{path: {}}}", file.display()),
        "bench.csv_aurora",
        "auto",
    )?;
    let (own, server_before) = (children_cpu_seconds(), cpu_seconds(server_pid));
    let started = Instant::now();
    let status = aurora_run(work, &server.url(), &pipeline).status()?;
    let aurora = started.elapsed();
    let aurora_cpu = (
        children_cpu_seconds() - own,
        cpu_seconds(server_pid) - server_before,
    );
    if !status.success() {
        return Err(format!("aurora pipeline run (csv) failed: {status}").into());
    }
    for table in ["bench.csv_client", "bench.csv_aurora"] {
        let n = count(rt, w, table);
        if n != rows {
            return Err(format!("{table} holds {n} rows, not {rows}").into());
        }
    }
    let rate = |d: Duration| rows as f64 / d.as_secs_f64().max(1e-6);
    println!(
        "  CSV file, {rows} rows:   clickhouse-client {:>9.0} /s, aurora {:>9.0} /s: aurora is {:.2}x the client (goal >= 0.8)",
        rate(client),
        rate(aurora),
        rate(aurora) / rate(client)
    );
    let per_million = |secs: f64| secs * 1e6 / rows as f64;
    println!(
        "    CPU seconds per million rows: clickhouse-client {:.2} s + ClickHouse {:.2} s; aurora {:.2} s + ClickHouse {:.2} s",
        per_million(client_cpu.0),
        per_million(client_cpu.1),
        per_million(aurora_cpu.0),
        per_million(aurora_cpu.1)
    );
    Ok(())
}

fn run() -> Result<()> {
    let events: u64 = std::env::var("AURORA_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let parts = std::env::var("AURORA_BENCH_PARTS").unwrap_or_else(|_| "kafka,csv".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    let work = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    // The Kafka engine starts a new group at the end of the topic unless told otherwise;
    // the events are already there, so start at the beginning like the other two.
    let etc = work.path().join("clickhouse/etc/config.d");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("kafka.xml"),
        "<yandex><kafka><auto_offset_reset>smallest</auto_offset_reset></kafka></yandex>\n",
    )?;
    let mut opts = LocalServerOptions::new(work.path().join("clickhouse"));
    opts.die_with_parent = true;
    opts.startup_timeout = Duration::from_secs(60);
    let server = ensure_running(&opts)?;
    let w = rt.block_on(Warehouse::connect(ConnectionSettings::new(server.url())))?;
    let version = w.capabilities().version_text.clone();
    rt.block_on(w.execute("CREATE DATABASE IF NOT EXISTS bench"))?;

    if part("kafka") {
        kafka_parts(&rt, &w, &server, work.path(), &version, events)?;
    }
    if part("csv") {
        csv_files(&rt, &w, &server, work.path(), events / 2)?;
    }
    stop(&opts.data_dir)?;
    Ok(())
}

/// The Kafka parts: the bare consumer, Aurora both ways, ClickHouse's Kafka engine, peak RSS.
fn kafka_parts(
    rt: &tokio::runtime::Runtime,
    w: &Warehouse,
    server: &aurora::warehouse::local_server::LocalServer,
    work: &std::path::Path,
    version: &str,
    events: u64,
) -> Result<()> {
    let cluster = MockCluster::new(1)?;
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic(TOPIC, PARTITIONS, 1)?;
    println!(
        "bench/ingest: {events} JSON events, {PARTITIONS} partitions, librdkafka mock broker, ClickHouse {version}, {} cores",
        cores()
    );
    let produced = produce(&brokers, events)?;
    check_topic(&brokers, events)?;
    println!("  produced in {:.1} s", produced.as_secs_f64());

    let bare = bare_consumer(&brokers, events)?;
    println!("  events/s                      from start  after first");
    println!("  bare rdkafka consumer:        {bare}");

    // Aurora, as a user runs it: RowBinary (the default), then JSONEachRow (what it wrote
    // before), each on its own consumer group and table.
    let ctx = AuroraRun {
        rt,
        w,
        url: server.url(),
        brokers: brokers.clone(),
        work: work.to_path_buf(),
        server_pid: server.state.pid as u32,
        events,
    };
    let binary = ctx.run("auto")?;
    let json = ctx.run("json_each_row")?;
    let aurora = binary.rates;
    println!(
        "  aurora pipeline run:          {aurora}   {} the bare consumer (goal >= 0.8)",
        ratios(aurora, bare)
    );
    println!(
        "  aurora, JSONEachRow:          {}   RowBinary is {} JSONEachRow",
        json.rates,
        ratios(aurora, json.rates)
    );
    println!("  where the time goes (CPU seconds per million events):");
    for (name, run) in [("RowBinary", &binary), ("JSONEachRow", &json)] {
        let per_million = |secs: f64| secs * 1e6 / events as f64;
        println!(
            "    {name:<12} aurora {:>5.2} s, ClickHouse {:>5.2} s, peak RSS {:>6.1} MB",
            per_million(run.aurora_cpu),
            per_million(run.server_cpu),
            run.rss_kib as f64 / 1024.0
        );
    }
    let rss = binary.rss_kib;

    // ClickHouse's Kafka engine into the same table shape.
    let started = Instant::now();
    for sql in [
        format!("CREATE TABLE bench.engine ({COLUMNS}) ENGINE = MergeTree ORDER BY id"),
        format!(
            "CREATE TABLE bench.queue ({COLUMNS}) ENGINE = Kafka SETTINGS \
             kafka_broker_list = '{brokers}', kafka_topic_list = '{TOPIC}', \
             kafka_group_name = 'bench-engine', kafka_format = 'JSONEachRow'"
        ),
        "CREATE MATERIALIZED VIEW bench.engine_mv TO bench.engine AS SELECT * FROM bench.queue"
            .to_string(),
    ] {
        rt.block_on(w.execute(&sql))?;
    }
    let engine = watch_table(
        rt,
        w,
        "bench.engine",
        events,
        started,
        Duration::from_secs(900),
        || {},
    );
    let _ = rt.block_on(w.execute("DROP TABLE IF EXISTS bench.engine_mv"));
    let _ = rt.block_on(w.execute("DROP TABLE IF EXISTS bench.queue"));
    match engine {
        Ok(engine) => println!(
            "  ClickHouse Kafka engine:      {engine}   aurora is {} the engine (goal >= 2)",
            ratios(aurora, engine)
        ),
        Err(e) => println!("  ClickHouse Kafka engine:      did not finish: {e}"),
    }
    println!(
        "  aurora peak RSS:              {:>10.1} MB (goal < 100)",
        rss as f64 / 1024.0
    );
    drop(cluster);
    Ok(())
}
