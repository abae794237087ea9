//! `cargo bench --bench tui` (or `make bench`): the workspace's start-up, frame times and memory,
//! each next to a baseline measured in the same run.
//!
//! 1. Frames: a 1,000,000-row result read from a private ClickHouse server, scrolled in the
//!    Ask view at 120×40 (`update` + `draw` through crossterm's backend into a sink, so the
//!    escape sequences are produced as for a terminal). Baseline: drawing the same visible rows
//!    as one pre-formatted `Paragraph`, the least any table widget can do.
//! 2. First frame: the release binary started in tmux, from process start to its first frame
//!    (`AURORA_FRAME_LOG`). Baseline: the headless `aurora query "SELECT 1"` from start to exit.
//! 3. Peak RSS: the release binary in tmux holding the 1,000,000-row result after scrolling it.
//!    Baseline: the headless `aurora query` printing the same result as TSV to /dev/null.
//!
//! Goals (issue 5): first frame < 300 ms, frame < 10 ms, RSS < 300 MB.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora::tui::app::{update, Command as AppCommand, JobOutput, Msg, State};
use aurora::tui::keymap::Keymap;
use aurora::tui::theme::{ColorDepth, Theme};
use aurora::warehouse::local_server::{ensure_running, stop, LocalServerOptions};
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};
use ratatui::crossterm::event::KeyCode;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

#[path = "../workspace_common.rs"]
mod workspace_common;
use workspace_common::{key, ms, percentile};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const ROWS: u64 = 1_000_000;
const BIG_QUERY: &str = "SELECT number AS n, toString(number * 7919) AS code, \
    toDateTime('2026-01-01 00:00:00') + number AS at, number % 1000 / 7 AS ratio, \
    ['DE', 'FR', 'US', 'JP'][number % 4 + 1] AS country FROM system.numbers LIMIT 1000000";
const FRAMES: usize = 400;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench/tui: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let work = tempfile::tempdir()?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut opts = LocalServerOptions::new(work.path().join("clickhouse"));
    opts.die_with_parent = true;
    opts.startup_timeout = Duration::from_secs(60);
    let server = ensure_running(&opts)?;
    let url = server.url();
    let outcome = measure(&rt, &url, work.path());
    let _ = stop(&opts.data_dir);
    outcome
}

fn measure(rt: &tokio::runtime::Runtime, url: &str, work: &Path) -> Result<()> {
    let warehouse = rt.block_on(Warehouse::connect(ConnectionSettings::new(url.to_string())))?;
    println!(
        "ClickHouse {}, {ROWS} rows, {FRAMES} frames at 120×40",
        warehouse.capabilities().version_text
    );
    let options = QueryOptions {
        max_result_rows: None,
        max_execution_time: None,
        ..QueryOptions::default()
    };
    let result = Arc::new(rt.block_on(warehouse.query(BIG_QUERY, &options))?);
    assert_eq!(result.rows.len() as u64, ROWS);

    // 1. Frame times, in process.
    let mut state = State::new(
        Theme::dark(ColorDepth::TrueColor),
        Keymap::default(),
        "bench".into(),
        "".into(),
    );
    update(&mut state, Msg::Resize(120, 40));
    for c in "SELECT big".chars() {
        update(&mut state, key(KeyCode::Char(c)));
    }
    let job = match update(&mut state, key(KeyCode::Enter)).pop() {
        Some(AppCommand::RunSql { job, .. }) => job,
        other => return Err(format!("expected a query command, got {other:?}").into()),
    };
    update(
        &mut state,
        Msg::Job(job, JobOutput::Query(Ok(result.clone()))),
    );
    let backend = ratatui::backend::CrosstermBackend::new(std::io::sink());
    let mut terminal = ratatui::Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 120, 40)),
        },
    )?;
    let keys = [
        KeyCode::PageDown,
        KeyCode::Char('j'),
        KeyCode::Char('l'),
        KeyCode::PageDown,
        KeyCode::Char('h'),
    ];
    let mut aurora_frames = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let started = Instant::now();
        update(&mut state, key(keys[i % keys.len()]));
        terminal.draw(|f| aurora::tui::ui::draw(f, &state))?;
        aurora_frames.push(started.elapsed());
    }
    // Baseline: the same number of rows as pre-formatted text, redrawn as it scrolls.
    let lines: Vec<String> = result.rows[..2000]
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| format!("{v:>14}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let mut baseline_frames = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let started = Instant::now();
        let first = (i * 31) % (lines.len() - 40);
        let text: Vec<Line> = lines[first..first + 36]
            .iter()
            .map(|l| Line::raw(l.as_str()))
            .collect();
        terminal.draw(|f| f.render_widget(Paragraph::new(text), f.area()))?;
        baseline_frames.push(started.elapsed());
    }
    aurora_frames.sort();
    baseline_frames.sort();
    let (a50, a99) = (
        percentile(&aurora_frames, 0.5),
        percentile(&aurora_frames, 0.99),
    );
    let (b50, b99) = (
        percentile(&baseline_frames, 0.5),
        percentile(&baseline_frames, 0.99),
    );
    println!(
        "frame while scrolling 1M rows: median {:.2} ms, p99 {:.2} ms (goal < 10 ms); \
         plain paragraph baseline median {:.2} ms, p99 {:.2} ms; ratio {:.2}× (median)",
        ms(a50),
        ms(a99),
        ms(b50),
        ms(b99),
        ms(a50) / ms(b50).max(1e-6)
    );
    drop(state);

    // 2 and 3. The release binary in tmux.
    let binary = release_binary()?;
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        "clickhouse:\n  max_result_rows: 1000000\n  query_timeout: 120s\n",
    )?;
    let baseline_start = Instant::now();
    let status = Command::new(&binary)
        .args(["query", "SELECT 1"])
        .env("AURORA_CONFIG", &config)
        .env("AURORA_CLICKHOUSE_URL", url)
        .stdout(Stdio::null())
        .status()?;
    let cli_time = baseline_start.elapsed();
    if !status.success() {
        return Err("`aurora query \"SELECT 1\"` failed".into());
    }
    // With the default model (it loads in the background as the workspace opens) and without
    // one (`AURORA_MODEL` naming a missing file), to tell the model's memory from the result's.
    let (first_frame_ms, peak_rss_kib) = in_tmux(&binary, &config, url, work, "with-model", "")?;
    let (_, no_model_rss_kib) = in_tmux(
        &binary,
        &config,
        url,
        work,
        "no-model",
        "AURORA_MODEL=/nonexistent/none.gguf ",
    )?;
    println!(
        "first frame: {first_frame_ms} ms from process start (goal < 300 ms); \
         `aurora query \"SELECT 1\"` baseline {:.0} ms; ratio {:.2}×",
        ms(cli_time),
        first_frame_ms as f64 / ms(cli_time).max(1e-6)
    );

    let mut child = Command::new(&binary)
        .args(["query", BIG_QUERY, "--format", "tsv"])
        .env("AURORA_CONFIG", &config)
        .env("AURORA_CLICKHOUSE_URL", url)
        .stdout(Stdio::null())
        .spawn()?;
    child.wait()?;
    let cli_rss_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?
        .max_rss() as u64;
    println!(
        "peak RSS holding and scrolling 1M rows: {:.1} MB with the model loaded, {:.1} MB without \
         (goal < 300 MB); headless `aurora query` of the same rows to /dev/null {:.1} MB (peak of \
         this bench's children); ratio without the model {:.2}×",
        peak_rss_kib as f64 / 1024.0,
        no_model_rss_kib as f64 / 1024.0,
        cli_rss_kib as f64 / 1024.0,
        no_model_rss_kib as f64 / cli_rss_kib.max(1) as f64
    );
    Ok(())
}

/// Runs the workspace in tmux with `env` before the binary; returns (first frame ms, peak RSS KiB).
fn in_tmux(
    binary: &Path,
    config: &Path,
    url: &str,
    work: &Path,
    label: &str,
    env: &str,
) -> Result<(u64, u64)> {
    let frame_log = work.join(format!("frames-{label}.log"));
    let session = format!("aurora-bench-{label}-{}", std::process::id());
    let command = format!(
        "AURORA_CONFIG={} AURORA_CLICKHOUSE_URL={url} AURORA_FRAME_LOG={} {env}TERM=xterm-256color {}",
        config.display(),
        frame_log.display(),
        binary.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ])?;
    let outcome = drive(&session, &frame_log);
    // The session is usually gone already (the workspace quit); that is not an error.
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .stderr(Stdio::null())
        .status();
    outcome
}

fn release_binary() -> Result<PathBuf> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = PathBuf::from(target).join("release/aurora");
    if !path.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` (make bench does)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

fn tmux(args: &[&str]) -> Result<()> {
    let status = Command::new("tmux").args(args).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("tmux {args:?} failed").into())
    }
}

fn screen(session: &str) -> String {
    Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_for(
    session: &str,
    what: &str,
    timeout: Duration,
    found: impl Fn(&str) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if found(&screen(session)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out waiting for {what}; screen:\n{}", screen(session)).into())
}

/// Types the 1M-row query, scrolls, quits; returns (first frame ms, peak RSS KiB).
fn drive(session: &str, frame_log: &Path) -> Result<(u64, u64)> {
    wait_for(session, "the workspace", Duration::from_secs(60), |s| {
        s.contains("Ask a question")
    })?;
    tmux(&["send-keys", "-t", session, "-l", BIG_QUERY])?;
    tmux(&["send-keys", "-t", session, "Enter"])?;
    wait_for(session, "1M rows", Duration::from_secs(180), |s| {
        s.contains("✓") || s.contains("failed")
    })?;
    for _ in 0..20 {
        tmux(&["send-keys", "-t", session, "PageDown"])?;
    }
    tmux(&["send-keys", "-t", session, "G"])?;
    std::thread::sleep(Duration::from_millis(500));
    tmux(&["send-keys", "-t", session, "q"])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(frame_log).unwrap_or_default();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(first), Some(rss)) = (value("first_frame_ms"), value("peak_rss_kib")) {
            return Ok((first, rss));
        }
        if Instant::now() > deadline {
            let _ = std::io::stderr().write_all(screen(session).as_bytes());
            return Err("the workspace did not write its frame log".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
