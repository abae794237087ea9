//! `cargo bench --bench dashboards` (or `make bench`): a 12-panel dashboard of the demo data
//! in the workspace, each figure next to a baseline measured in the same run.
//!
//! The workspace's own `update()` and drawing run in process, with its panel queries sent
//! to a private ClickHouse server loaded with the demo's sample, as the job runner sends
//! them.
//!
//! 1. Open to drawn: from Enter on the dashboard to the frame on which every panel shows
//!    its data (query variables first, then the panels). Baseline: the same panels' SQL sent
//!    all at once, with nothing else around it.
//! 2. CPU while refreshing every 5 s: this process's CPU time, and the server's, over
//!    `REFRESH_RUN`, with a tick and a frame every second as the workspace does.
//!    Baseline: the same run with the dashboard closed.
//! 3. Frame time: the open dashboard drawn at 120×40 through crossterm's backend into a sink.
//!    Baseline: the Dashboards list drawn the same way.
//!
//! Goals (issue 14): every panel drawn < 1 s after opening, < 5% of one core while
//! refreshing every 5 s, frame < 10 ms.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora::dashboards::{bind, library, timerange, Dashboard};
use aurora::tui::app::{update, Command, Msg, State};
use aurora::tui::keymap::Keymap;
use aurora::tui::theme::{ColorDepth, Theme};
use aurora::warehouse::local_server::{ensure_running, stop, LocalServerOptions};
use aurora::warehouse::{ConnectionSettings, Warehouse};
use ratatui::crossterm::event::KeyCode;

#[path = "../workspace_common.rs"]
mod workspace_common;
use workspace_common::{key, ms, percentile};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const OPENS: usize = 15;
const FRAMES: usize = 300;
const REFRESH_RUN: Duration = Duration::from_secs(30);

fn main() {
    if let Err(e) = run() {
        eprintln!("bench/dashboards: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let work = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut opts = LocalServerOptions::new(work.path().join("clickhouse"));
    opts.die_with_parent = true;
    opts.startup_timeout = Duration::from_secs(60);
    let server = ensure_running(&opts)?;
    let outcome = measure(&rt, &server.url(), server.state.pid);
    let _ = stop(&opts.data_dir);
    outcome
}

/// The demo's web-events dashboard (9 panels) with three panels of the orders template
/// below it: 12 panels, one query variable.
fn twelve_panels(rt: &tokio::runtime::Runtime, warehouse: &Warehouse) -> Result<Dashboard> {
    let schema = rt.block_on(warehouse.schema(true))?;
    let table = schema
        .table("demo.events", "demo")
        .ok_or("the demo sample has no demo.events")?
        .clone();
    let profile = rt.block_on(aurora::warehouse::profile::profile(warehouse, &table))?;
    let templates = library::builtin_templates();
    let deploy = |name: &str| -> Result<Dashboard> {
        let t = &templates
            .iter()
            .find(|e| e.name == name)
            .ok_or("missing template")?
            .dashboard;
        let fit = bind::fit(name, t, &table, &profile, &BTreeMap::new())?;
        Ok(bind::deploy(t, &fit, &table, &profile, timerange::now()))
    };
    let mut d = deploy("web-events")?;
    let orders = deploy("orders-revenue")?;
    let bottom = d
        .panels
        .iter()
        .map(|p| p.grid.y + p.grid.h)
        .max()
        .unwrap_or(0);
    for mut p in orders
        .panels
        .into_iter()
        .filter(|p| p.title.starts_with("Revenue"))
        .take(3)
    {
        p.grid.y += bottom;
        d.panels.push(p);
    }
    // The sample is a week old: a range that holds it.
    d.time.from = "now-30d".into();
    d.refresh = Some(Duration::from_secs(5));
    if d.panels.len() != 12 {
        return Err(format!("expected 12 panels, built {}", d.panels.len()).into());
    }
    Ok(d)
}

/// Sends every `RunDashboardQuery` to the server as the job runner does, and feeds the
/// answers back; returns when none is left in flight.
fn run_commands(
    rt: &tokio::runtime::Runtime,
    warehouse: &Arc<Warehouse>,
    state: &mut State,
    mut commands: Vec<Command>,
    mut on_answer: impl FnMut(&State),
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut in_flight = 0;
    loop {
        for c in commands.drain(..) {
            if let Command::RunDashboardQuery { job, sql } = c {
                in_flight += 1;
                let (w, tx) = (warehouse.clone(), tx.clone());
                rt.spawn(async move {
                    let result = w
                        .query(&sql, &aurora::dashboards::run::panel_options())
                        .await
                        .map(Arc::new)
                        .map_err(|e| e.to_string());
                    let _ = tx.send((job, sql, result));
                });
            }
        }
        if in_flight == 0 {
            return;
        }
        let Some((job, sql, result)) = rt.block_on(rx.recv()) else {
            return;
        };
        in_flight -= 1;
        commands = update(state, Msg::DashboardQuery { job, sql, result });
        on_answer(state);
    }
}

fn all_drawn(state: &State) -> bool {
    state.dashboards.open.as_ref().is_some_and(|o| {
        o.panels
            .iter()
            .all(|p| p.data.is_some() || p.error.is_some())
    })
}

fn new_state(d: &Dashboard) -> State {
    let mut state = State::new(
        Theme::dark(ColorDepth::TrueColor),
        Keymap::default(),
        "bench".into(),
        "18.16.1".into(),
    );
    update(&mut state, Msg::Resize(120, 40));
    update(&mut state, Msg::Tick { now: now_ms() });
    update(
        &mut state,
        Msg::Dashboards(vec![("bench".into(), d.clone())], Vec::new()),
    );
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Char('5')));
    state
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// CPU seconds used by this process so far.
fn own_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// CPU seconds used by process `pid` so far (`/proc/PID/stat`, utime + stime).
fn process_cpu(pid: i32) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0)
}

fn measure(rt: &tokio::runtime::Runtime, url: &str, server_pid: i32) -> Result<()> {
    let warehouse =
        Arc::new(rt.block_on(Warehouse::connect(ConnectionSettings::new(url.to_string())))?);
    let rows = rt.block_on(aurora::cli::demo::load_sample(&warehouse, false))?;
    let d = twelve_panels(rt, &warehouse)?;
    println!(
        "ClickHouse {}, the demo sample ({rows} events), a dashboard of {} panels at 120×40",
        warehouse.capabilities().version_text,
        d.panels.len()
    );
    let backend = ratatui::backend::CrosstermBackend::new(std::io::sink());
    let mut terminal = ratatui::Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 120, 40)),
        },
    )?;

    // 1. Open to every panel drawn, and the baseline: the panels' SQL alone.
    let mut opens = Vec::new();
    let mut baselines = Vec::new();
    for _ in 0..OPENS {
        let mut state = new_state(&d);
        let started = Instant::now();
        let commands = update(&mut state, key(KeyCode::Enter));
        let mut drawn_at = None;
        run_commands(rt, &warehouse, &mut state, commands, |s| {
            if drawn_at.is_none() && all_drawn(s) {
                drawn_at = Some(Instant::now());
            }
        });
        terminal.draw(|f| aurora::tui::ui::draw(f, &state))?;
        let open = state
            .dashboards
            .open
            .as_ref()
            .ok_or("the dashboard did not open")?;
        if let Some((i, e)) = open
            .panels
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.error.as_ref().map(|e| (i, e)))
        {
            return Err(format!("panel `{}` failed: {e}", d.panels[i].title).into());
        }
        opens.push(
            drawn_at
                .unwrap_or_else(Instant::now)
                .duration_since(started),
        );
        let sqls: Vec<String> = open
            .panels
            .iter()
            .filter_map(|p| p.data.as_ref().map(|d| d.sql.clone()))
            .collect();
        let started = Instant::now();
        let options = aurora::dashboards::run::panel_options();
        rt.block_on(async {
            let runs = sqls.iter().map(|sql| warehouse.query(sql, &options));
            futures_util::future::join_all(runs).await
        });
        baselines.push(started.elapsed());
    }
    opens.sort();
    baselines.sort();
    let (open, base) = (percentile(&opens, 0.5), percentile(&baselines, 0.5));
    println!(
        "open to every panel drawn: median {:.0} ms of {OPENS} (goal < 1000 ms); \
         the panels' SQL alone, all at once: {:.0} ms; ratio {:.2}×",
        ms(open),
        ms(base),
        ms(open) / ms(base).max(1e-6)
    );

    // 3. Frame time of the open dashboard, against the list.
    let mut state = new_state(&d);
    let commands = update(&mut state, key(KeyCode::Enter));
    run_commands(rt, &warehouse, &mut state, commands, |_| {});
    let mut frames = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let started = Instant::now();
        update(
            &mut state,
            key(if i % 2 == 0 {
                KeyCode::Char('l')
            } else {
                KeyCode::Char('h')
            }),
        );
        terminal.draw(|f| aurora::tui::ui::draw(f, &state))?;
        frames.push(started.elapsed());
    }
    let mut list = new_state(&d);
    let mut list_frames = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        let started = Instant::now();
        update(
            &mut list,
            key(if i % 2 == 0 {
                KeyCode::Char('j')
            } else {
                KeyCode::Char('k')
            }),
        );
        terminal.draw(|f| aurora::tui::ui::draw(f, &list))?;
        list_frames.push(started.elapsed());
    }
    frames.sort();
    list_frames.sort();
    println!(
        "frame of the open dashboard: median {:.2} ms, p99 {:.2} ms (goal < 10 ms); \
         the dashboards list: median {:.2} ms; ratio {:.2}×",
        ms(percentile(&frames, 0.5)),
        ms(percentile(&frames, 0.99)),
        ms(percentile(&list_frames, 0.5)),
        ms(percentile(&frames, 0.5)) / ms(percentile(&list_frames, 0.5)).max(1e-6)
    );

    // 2. CPU while the dashboard refreshes every 5 s, against the same loop with it closed.
    let cpu_run = |state: &mut State, terminal: &mut ratatui::Terminal<_>| -> Result<(f64, f64)> {
        let (own0, server0) = (own_cpu(), process_cpu(server_pid));
        let started = Instant::now();
        while started.elapsed() < REFRESH_RUN {
            let commands = update(state, Msg::Tick { now: now_ms() });
            run_commands(rt, &warehouse, state, commands, |_| {});
            terminal.draw(|f| aurora::tui::ui::draw(f, state))?;
            std::thread::sleep(Duration::from_secs(1));
        }
        let wall = started.elapsed().as_secs_f64();
        Ok((
            (own_cpu() - own0) / wall,
            (process_cpu(server_pid) - server0) / wall,
        ))
    };
    let (aurora_cpu, server_cpu) = cpu_run(&mut state, &mut terminal)?;
    let mut closed = new_state(&d);
    let (idle_cpu, idle_server) = cpu_run(&mut closed, &mut terminal)?;
    println!(
        "CPU while refreshing every 5 s for {} s: Aurora {:.2}% of one core (goal < 5%), the \
         server {:.2}%; with the dashboard closed: Aurora {:.2}%, the server {:.2}%",
        REFRESH_RUN.as_secs(),
        aurora_cpu * 100.0,
        server_cpu * 100.0,
        idle_cpu * 100.0,
        idle_server * 100.0
    );
    Ok(())
}
