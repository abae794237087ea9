//! bench/serve: what `aurora serve`'s own work costs. The same CSV file (default 1,000,000
//! rows; `AURORA_BENCH_ROWS`) is ingested by the daemon twice per round, alternately:
//!
//! - baseline: no alert rules, nothing scraping it;
//! - loaded: `/metrics` scraped every second and 20 alert rules (queries on the table being
//!   written) evaluated every 10 s.
//!
//! It prints rows/s of both and the ratio (goal: loaded ≥ 0.98 × baseline, i.e. under 2%
//! slower), then the daemon's CPU and resident memory while idle but scraped and evaluating.
//! Everything runs on this machine: a private ClickHouse server, the release build.

use std::io::{BufWriter, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aurora::warehouse::local_server::{ensure_running, stop, LocalServerOptions};
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const RULES: usize = 20;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench/serve failed: {e}");
        std::process::exit(1);
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A daemon that is killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &std::path::Path, table: &str, rules: usize) -> Result<std::path::PathBuf> {
    let mut text = format!(
        "pipelines:\n  - name: bench\n    source: {{csv: {{path: rows.csv}}}}\n    \
         mapping: {{columns: {{id: {{type: UInt64}}, user: {{type: UInt32}}, page: {{type: String}}, \
         amount: {{type: Float64}}, at: {{type: UInt32}}}}}}\n    \
         sink: {{table: {table}, create: if_missing, order_by: [id], batch: {{max_rows: 100000}}}}\n"
    );
    if rules > 0 {
        text.push_str("alerts:\n  rules:\n");
        for i in 0..rules {
            text.push_str(&format!(
                "    - name: r{i}\n      query: SELECT count() AS value FROM {table} WHERE user % {} = 0\n      \
                 condition: '< 0'\n      interval: 10s\n",
                i + 2
            ));
        }
    }
    let path = dir.join(format!("config-{}.yaml", table.replace('.', "-")));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn start(config: &std::path::Path, dir: &std::path::Path, url: &str, port: u16) -> Result<Daemon> {
    let child = Command::new(env!("CARGO_BIN_EXE_aurora"))
        .current_dir(dir)
        .env("AURORA_CONFIG", config)
        .env("AURORA_SERVE_TOKEN", "bench-token-0123456789abcdef")
        .env("XDG_DATA_HOME", dir)
        .env_remove("AURORA_LOG")
        .args(["--url", url, "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.join(format!("state-{port}")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Daemon(child))
}

/// Scrapes `/metrics` every second until `stop` is set.
fn scraper(
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut scrapes = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut body = Vec::new();
                if s.read_to_end(&mut body).is_ok() && !body.is_empty() {
                    scrapes += 1;
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        scrapes
    })
}

async fn count(w: &Warehouse, table: &str) -> u64 {
    match w
        .query(
            &format!("SELECT count() FROM {table}"),
            &QueryOptions::default(),
        )
        .await
    {
        Ok(r) => r.rows[0][0].to_string().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// Rows per second from the daemon's start until every row is in the table.
async fn ingest(
    w: &Warehouse,
    dir: &std::path::Path,
    url: &str,
    table: &str,
    rows: u64,
    loaded: bool,
) -> Result<f64> {
    w.execute(&format!("DROP TABLE IF EXISTS {table}")).await?;
    let config = write_config(dir, table, if loaded { RULES } else { 0 })?;
    let port = free_port()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let _daemon = start(&config, dir, url, port)?;
    let scrapes = loaded.then(|| scraper(port, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if count(w, table).await >= rows {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{table} never reached {rows} rows").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = scrapes {
        let n = s.join().unwrap_or(0);
        if n == 0 && started.elapsed() > Duration::from_secs(2) {
            return Err("the scraper never got an answer".into());
        }
    }
    Ok(rate)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit(')').next()?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the command.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn run() -> Result<()> {
    let rows: u64 = std::env::var("AURORA_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let work = tempfile::tempdir()?;
    let dir = work.path();
    {
        let mut f = BufWriter::new(std::fs::File::create(dir.join("rows.csv"))?);
        writeln!(f, "id,user,page,amount,at")?;
        for i in 0..rows {
            writeln!(
                f,
                "{i},{},/products/{},{}.{:02},{}",
                i % 50_000,
                i % 997,
                i % 500,
                i % 100,
                1_700_000_000 + i
            )?;
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut opts = LocalServerOptions::new(dir.join("clickhouse"));
    opts.die_with_parent = true;
    opts.startup_timeout = Duration::from_secs(60);
    let server = ensure_running(&opts)?;
    let url = server.url();
    let w = rt.block_on(Warehouse::connect(ConnectionSettings::new(url.clone())))?;
    rt.block_on(w.execute("CREATE DATABASE IF NOT EXISTS bench"))?;
    println!(
        "bench/serve: {rows} CSV rows per run, ClickHouse {}, {} cores; loaded = /metrics every 1 s + {RULES} rules every 10 s",
        w.capabilities().version_text,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("  round   baseline rows/s   loaded rows/s   loaded / baseline (goal >= 0.98)");
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let base = rt.block_on(ingest(
            &w,
            dir,
            &url,
            &format!("bench.base{round}"),
            rows,
            false,
        ))?;
        let loaded = rt.block_on(ingest(
            &w,
            dir,
            &url,
            &format!("bench.loaded{round}"),
            rows,
            true,
        ))?;
        let ratio = loaded / base;
        ratios.push(ratio);
        println!("  {round}       {base:>15.0}   {loaded:>13.0}   {ratio:.3}");
    }
    ratios.sort_by(f64::total_cmp);
    println!("  median ratio: {:.3}", ratios[ratios.len() / 2]);

    // Idle: the pipeline has finished its file; the daemon is scraped and evaluates.
    let config = write_config(dir, "bench.loaded3", RULES)?;
    let port = free_port()?;
    let daemon = start(&config, dir, &url, port)?;
    let stop_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::sleep(Duration::from_secs(5));
    let scrapes = scraper(port, stop_flag.clone());
    let pid = daemon.0.id();
    // Clock ticks per second of /proc's CPU times (USER_HZ).
    let ticks_per_s = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    let before = cpu_ticks(pid).ok_or("no CPU figures for the daemon")?;
    let window = Duration::from_secs(30);
    std::thread::sleep(window);
    let after = cpu_ticks(pid).ok_or("no CPU figures for the daemon")?;
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = scrapes.join();
    let cpu = (after - before) as f64 / ticks_per_s / window.as_secs_f64() * 100.0;
    let rss = rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    println!(
        "  idle daemon (scraped every 1 s, {RULES} rules every 10 s, over {} s): CPU {cpu:.2}% of one core, RSS {rss:.1} MB",
        window.as_secs()
    );
    drop(daemon);
    drop(w);
    let _ = stop(&server.state.data_dir);
    Ok(())
}
