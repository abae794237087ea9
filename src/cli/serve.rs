//! `aurora serve`: the daemon. Runs the configured pipelines under the supervisor the
//! workspace uses and serves metrics, health, readiness and the control API on one port
//! (`serve` module). SIGTERM or Ctrl-C drains (every pipeline stores what it read and saves
//! its position, as `pipeline run` does) and exits 0; SIGHUP reloads the config: pipelines
//! added, removed or changed are started or stopped, and an invalid new config is reported
//! and the running one kept.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::alerts::notify::{Dispatcher, Notifier, Origin};
use crate::alerts::service::Alerting;
use crate::config::AlertRule;
use crate::ingest::pipeline::Pipeline;
use crate::ingest::supervisor::Supervisor;
use crate::serve::http::{self, Daemon};
use crate::serve::token::Token;

use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Pipeline files [default: the config's `pipelines:` list]; a reload reads them again
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// ADDRESS:PORT to listen on [default: `serve.listen`, 127.0.0.1:9464]
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Where saved positions live [default: ~/.local/share/aurora/pipelines]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<ExitCode> {
    // Everything that can be wrong with the files is reported before anything starts.
    let wanted = wanted_pipelines(global, &args.files)?;
    let config = super::session::load_config(global)?;
    let (rules, notifiers) = alert_setup(&config.alerts)?;
    let session = Session::open_with(global, config).await?;
    let serve = session.config.serve.clone();
    let listen_text = args.listen.clone().unwrap_or_else(|| serve.listen.clone());
    let listen = http::parse_listen(&listen_text)?;
    let token = Token::for_daemon(&serve, listen)?;
    let mut clients = Vec::new();
    for (name, client) in &serve.clients {
        let token = crate::serve::token::for_named_client(name, client)?;
        let actor = crate::audit::Actor {
            user: name.clone(),
            uid: None,
            via: "token".into(),
            groups: client.groups.clone(),
        };
        clients.push((token, actor));
    }
    let tls = match (&serve.tls.cert_file, &serve.tls.key_file) {
        (Some(cert), Some(key)) => Some(http::tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!(
            "serve.tls needs both cert_file and key_file (or neither, for plain HTTP)"
        ),
    };
    let listener = http::bind(listen).await?;
    let bound = listener
        .local_addr()
        .context("the listening socket has no address")?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(crate::ingest::engine::default_state_dir);
    let supervisor = Supervisor::new(
        session.warehouse.clone(),
        session.config.kafka.clone(),
        state_dir,
    );
    let count = wanted.len();
    for (pipeline, base_dir) in wanted {
        supervisor.start(pipeline, base_dir)?;
    }
    let metrics = crate::metrics::global();
    metrics.config_reload_ok.set(1);
    metrics.config_reload_time.set(unix_now_f64());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let origin = Origin::here(format!("{scheme}://{bound}"));
    let rule_count = rules.len();
    let mut alerting = Alerting::new(session.warehouse.clone());
    alerting.apply(
        rules,
        &session.config.alerts,
        Dispatcher::new(notifiers, origin.clone()),
    );
    let alerting = std::sync::Mutex::new(alerting);

    let daemon = Arc::new(Daemon {
        supervisor: supervisor.clone(),
        warehouse: session.warehouse.clone(),
        token: token.clone(),
        clients,
        draining: AtomicBool::new(false),
        alerts: lock(&alerting).states(),
    });
    let stop_http = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        tls,
        http::router(daemon.clone()),
        stop_http.clone(),
    ));
    tracing::info!(
        "aurora serve {}: {count} pipeline(s), {rule_count} alert rule(s); listening on \
         {scheme}://{bound} (/metrics, /health, /ready, {}/pipelines; token: {})",
        env!("CARGO_PKG_VERSION"),
        crate::serve::API,
        token.source
    );

    let signals = crate::shutdown::stopped_reloading_on_hangup(|| {
        reload(global, &args.files, &supervisor, &alerting, &origin)
    })
    .await;
    lock(&alerting).stop();
    tracing::warn!("{signals}: draining pipelines and saving positions");
    daemon.draining.store(true, Ordering::SeqCst);
    supervisor.shutdown().await;
    stop_http.cancel();
    match server.await {
        Ok(Err(e)) => tracing::warn!("the HTTP server ended with an error: {e}"),
        Err(e) => tracing::warn!("the HTTP server task failed: {e}"),
        Ok(Ok(())) => {}
    }
    token.discard();
    let failed = supervisor
        .subscribe()
        .borrow()
        .iter()
        .filter(|s| s.state_name() == "failed")
        .count();
    for s in supervisor.subscribe().borrow().iter() {
        tracing::info!(
            pipeline = %s.status.name,
            state = s.state_name(),
            rows = s.status.rows_written,
            dead_lettered = s.status.dead_lettered,
            "stopped"
        );
    }
    session.close().await;
    if failed > 0 {
        tracing::warn!("{failed} pipeline(s) had failed before the daemon stopped");
    }
    Ok(ExitCode::SUCCESS)
}

fn lock(alerting: &std::sync::Mutex<Alerting>) -> std::sync::MutexGuard<'_, Alerting> {
    alerting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The alert rules (the config's and its rule files') and the notifiers with their secrets
/// read, or every problem with all of them.
fn alert_setup(alerts: &crate::config::AlertsConfig) -> Result<(Vec<AlertRule>, Vec<Notifier>)> {
    let mut problems = Vec::new();
    let rules = match crate::alerts::load_rules(alerts) {
        Ok(rules) => rules,
        Err(diags) => {
            problems.push(crate::config::render_all(&diags, None));
            Vec::new()
        }
    };
    let mut notifiers = Vec::new();
    for (name, config) in &alerts.notifiers {
        match Notifier::from_config(name, config) {
            Ok(n) => notifiers.push(n),
            Err(e) => problems.push(format!("error: {e}\n")),
        }
    }
    if problems.is_empty() {
        Ok((rules, notifiers))
    } else {
        anyhow::bail!(
            "the alert rules or notifiers have problems; nothing was started:\n{}",
            problems.concat().trim_end()
        )
    }
}

/// Every pipeline to run, with the directory its relative paths resolve against.
fn wanted_pipelines(global: &GlobalArgs, files: &[PathBuf]) -> Result<Vec<(Pipeline, PathBuf)>> {
    let loaded = super::pipeline::load_any(global, files)?;
    Ok(loaded
        .iter()
        .flat_map(|l| {
            let dir = super::pipeline::base_dir(l);
            l.pipelines.iter().map(move |p| (p.clone(), dir.clone()))
        })
        .collect())
}

/// What a reload changes: pipelines to stop and to start (a changed one is both).
#[derive(Debug, Default, PartialEq)]
struct Changes {
    removed: Vec<String>,
    changed: Vec<String>,
    added: Vec<String>,
    unchanged: usize,
}

fn changes(running: &[(Pipeline, PathBuf)], wanted: &[(Pipeline, PathBuf)]) -> Changes {
    let mut out = Changes::default();
    for (p, dir) in running {
        match wanted.iter().find(|(w, _)| w.name == p.name) {
            None => out.removed.push(p.name.clone()),
            Some((w, wdir)) if w != p || wdir != dir => out.changed.push(p.name.clone()),
            Some(_) => out.unchanged += 1,
        }
    }
    for (w, _) in wanted {
        if !running.iter().any(|(p, _)| p.name == w.name) {
            out.added.push(w.name.clone());
        }
    }
    out
}

/// SIGHUP: reads the config and pipeline files again; applies the difference, or keeps
/// everything as it is when the new files have problems (reported, every one).
async fn reload(
    global: &GlobalArgs,
    files: &[PathBuf],
    supervisor: &Arc<Supervisor>,
    alerting: &std::sync::Mutex<Alerting>,
    origin: &Origin,
) {
    let metrics = crate::metrics::global();
    tracing::info!("SIGHUP: reloading the configuration");
    let loaded = crate::config::load(global.config.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|loaded| {
            let wanted = wanted_pipelines(global, files)?;
            let (rules, notifiers) = alert_setup(&loaded.config.alerts)?;
            Ok((
                wanted,
                loaded.config.alerts,
                rules,
                notifiers,
                loaded.config.rbac,
            ))
        });
    let (wanted, alerts, rules, notifiers, rbac) = match loaded {
        Ok(w) => w,
        Err(e) => {
            metrics.config_reload_ok.set(0);
            let reason = super::render_error(&e);
            tracing::error!(
                "the new configuration was not loaded, the running one is kept: {}",
                reason.trim_end()
            );
            let event = crate::audit::Event::new(
                "config.reload",
                config_name(global),
                crate::audit::Outcome::Ok,
            )
            .failed(reason.trim_end());
            if let Err(e) = crate::audit::record(event) {
                tracing::error!("{e}");
            }
            return;
        }
    };
    // A reload is a change like any other: refused when it cannot be recorded.
    if let Err(e) = crate::audit::check_writable() {
        metrics.config_reload_ok.set(0);
        tracing::error!("{e}; the reload is refused and the running configuration is kept");
        return;
    }
    // New roles apply to what follows, the pipelines started below included.
    crate::rbac::reload(&rbac);
    let running = supervisor.definitions();
    let diff = changes(&running, &wanted);
    for name in diff.removed.iter().chain(&diff.changed) {
        if let Err(e) = supervisor.remove(name).await {
            tracing::warn!(pipeline = %name, "cannot stop it for the reload: {e}");
        }
    }
    for name in &diff.removed {
        metrics.forget_pipeline(name);
    }
    for (pipeline, dir) in wanted {
        if diff.added.contains(&pipeline.name) || diff.changed.contains(&pipeline.name) {
            let name = pipeline.name.clone();
            if let Err(e) = supervisor.start(pipeline, dir) {
                tracing::error!(pipeline = %name, "cannot start it: {e}");
            }
        }
    }
    let rule_count = rules.len();
    lock(alerting).apply(rules, &alerts, Dispatcher::new(notifiers, origin.clone()));
    metrics.config_reload_ok.set(1);
    metrics.config_reload_time.set(unix_now_f64());
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let event = crate::audit::Event::new(
        "config.reload",
        config_name(global),
        crate::audit::Outcome::Ok,
    )
    .with("added", diff.added.clone())
    .with("removed", diff.removed.clone())
    .with("changed", diff.changed.clone())
    .with("alert_rules", rule_count as u64);
    if let Err(e) = crate::audit::record(event) {
        tracing::error!("{e}");
    }
    tracing::info!(
        "reloaded: added {}; removed {}; changed (restarted) {}; {} unchanged; {rule_count} \
         alert rule(s). Changes to the clickhouse, kafka and serve sections take effect at the \
         next start",
        list(&diff.added),
        list(&diff.removed),
        list(&diff.changed),
        diff.unchanged
    );
}

/// The configuration file a reload read, for its audit record.
fn config_name(global: &GlobalArgs) -> String {
    global
        .config
        .clone()
        .or_else(crate::config::default_path)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(name: &str, table: &str) -> Pipeline {
        let text = format!(
            "pipelines:\n  - name: {name}\n    source: {{csv: {{path: a.csv}}}}\n    \
             mapping: {{columns: {{n: {{type: UInt32}}}}}}\n    \
             sink: {{table: {table}, create: if_missing, order_by: [n]}}\n"
        );
        crate::ingest::pipeline::check_str("t.yaml", &text)
            .expect("a valid pipeline")
            .remove(0)
    }

    #[test]
    fn a_reload_stops_removed_restarts_changed_and_starts_added_pipelines() {
        let dir = PathBuf::from("/p");
        let running = vec![
            (pipeline("keep", "db.a"), dir.clone()),
            (pipeline("gone", "db.b"), dir.clone()),
            (pipeline("edit", "db.c"), dir.clone()),
            (pipeline("moved", "db.d"), dir.clone()),
        ];
        let wanted = vec![
            (pipeline("keep", "db.a"), dir.clone()),
            (pipeline("edit", "db.c2"), dir.clone()),
            (pipeline("moved", "db.d"), PathBuf::from("/q")),
            (pipeline("new", "db.e"), dir.clone()),
        ];
        assert_eq!(
            changes(&running, &wanted),
            Changes {
                removed: vec!["gone".into()],
                changed: vec!["edit".into(), "moved".into()],
                added: vec!["new".into()],
                unchanged: 1,
            }
        );
        assert_eq!(
            changes(&running, &running),
            Changes {
                unchanged: 4,
                ..Changes::default()
            }
        );
    }
}
