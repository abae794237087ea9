//! The daemon's HTTP port: `/metrics` (OpenMetrics text), `/health` (the process answers),
//! `/ready` (ClickHouse answers and every pipeline has started), and under `/api/v1` the
//! control API (list pipelines; pause, resume or restart one), which needs the bearer token.
//! Plain HTTP or, with a certificate and key, HTTPS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::token::Token;
use super::API;
use crate::ingest::supervisor::{PipelineControl, PipelineSnapshot, Supervisor, SupervisorError};
use crate::warehouse::Warehouse;

/// What the handlers share.
pub struct Daemon {
    pub supervisor: Arc<Supervisor>,
    pub warehouse: Arc<Warehouse>,
    pub token: Token,
    /// More callers (`serve.clients`), each with its token and who it acts as.
    pub clients: Vec<(Token, crate::audit::Actor)>,
    /// Set when SIGTERM arrived: `/ready` says no while the pipelines drain.
    pub draining: AtomicBool,
    /// The alert rules' states.
    pub alerts: crate::alerts::service::States,
}

/// How long `/ready` waits for ClickHouse.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router(daemon: Arc<Daemon>) -> Router {
    let control = Router::new()
        .route("/pipelines", get(list))
        .route("/pipelines/{name}", get(one))
        .route("/pipelines/{name}/{action}", post(control))
        .route("/alerts", get(alerts))
        .route_layer(middleware::from_fn_with_state(
            daemon.clone(),
            require_token,
        ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .nest(API, control)
        .fallback(not_found)
        .with_state(daemon)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint; there are /metrics, /health, /ready, {API}/alerts and {API}/pipelines[/NAME[/pause|resume|restart]]"
        ),
    )
}

/// Sets the one-hot state gauges from the supervisor, then renders every metric.
async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    let m = crate::metrics::global();
    for snapshot in daemon.supervisor.subscribe().borrow().iter() {
        m.set_state(&snapshot.status.name, snapshot.state_name());
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(),
    )
        .into_response()
}

async fn health() -> Response {
    Json(json!({
        "status": "ok",
        "service": "aurora",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": crate::telemetry::since_process_start().as_secs(),
    }))
    .into_response()
}

/// Ready when not draining, ClickHouse answers, and no pipeline is still starting or has
/// failed. The body says what is not.
async fn ready(State(daemon): State<Arc<Daemon>>) -> Response {
    let mut problems = Vec::new();
    if daemon.draining.load(Ordering::SeqCst) {
        problems.push("shutting down: the pipelines are storing what they read".to_string());
    }
    let clickhouse = match tokio::time::timeout(READY_TIMEOUT, daemon.warehouse.ping()).await {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => format!("{e}"),
        Err(_) => format!("no answer within {}s", READY_TIMEOUT.as_secs()),
    };
    if clickhouse != "ok" {
        problems.push(format!("ClickHouse: {clickhouse}"));
    }
    let snapshots = daemon.supervisor.subscribe().borrow().clone();
    let mut pipelines = serde_json::Map::new();
    for s in &snapshots {
        let state = s.state_name();
        match state {
            "starting" => problems.push(format!("pipeline `{}` is starting", s.status.name)),
            "failed" => problems.push(format!(
                "pipeline `{}` failed: {}",
                s.status.name,
                s.status.last_error.as_deref().unwrap_or("no reason given")
            )),
            _ => {}
        }
        pipelines.insert(s.status.name.clone(), state.into());
    }
    let ready = problems.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "clickhouse": clickhouse,
            "pipelines": pipelines,
            "problems": problems,
        })),
    )
        .into_response()
}

/// Lets a request through only with `Authorization: Bearer <token>`; a refusal is logged
/// with where it came from (never with what was presented).
async fn require_token(
    State(daemon): State<Arc<Daemon>>,
    ConnectInfo(remote): ConnectInfo<Remote>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let caller = presented.and_then(|token| {
        let token = token.trim();
        if daemon.token.matches(token) {
            return Some(crate::audit::current_actor());
        }
        // Every client's token is compared, so the time taken does not tell which matched.
        let mut found = None;
        for (client, actor) in &daemon.clients {
            if client.matches(token) && found.is_none() {
                found = Some(actor.clone());
            }
        }
        found
    });
    let refusal = match (presented, caller) {
        (Some(_), Some(actor)) => {
            let mut request = request;
            let access = crate::rbac::policy().access_for(&actor);
            request.extensions_mut().insert(Arc::new(access));
            return next.run(request).await;
        }
        (Some(_), None) => "a wrong token",
        (None, _) => "no bearer token",
    };
    // Inside the nested router the URI has lost its /api/v1 prefix; log the one requested.
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(
            || request.uri().path().to_string(),
            |u| u.path().to_string(),
        );
    tracing::warn!(
        %remote,
        method = %request.method(),
        %path,
        "control request refused: {refusal}"
    );
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        format!("{refusal}; send `Authorization: Bearer TOKEN` (the daemon's token: serve.token_env or serve.token_file)"),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"aurora\""),
    );
    response
}

/// The caller's access, as `require_token` resolved it.
type Caller = axum::Extension<Arc<crate::rbac::Access>>;

/// `action` for the caller, or a 403 naming the rule (the denial recorded as the caller's).
async fn allow(caller: &crate::rbac::Access, action: &str, resource: &str) -> Result<(), Response> {
    let Err(denied) = caller.allow(action, resource) else {
        return Ok(());
    };
    let actor = caller.actor.clone();
    let record = denied.clone();
    let _ = tokio::task::spawn_blocking(move || crate::rbac::record_denial(&record, Some(&actor)))
        .await;
    Err(error(StatusCode::FORBIDDEN, denied.to_string()))
}

/// Pending and firing alerts, firing first.
async fn alerts(State(daemon): State<Arc<Daemon>>, caller: Caller) -> Response {
    if let Err(denied) = allow(&caller, "alert.view", "").await {
        return denied;
    }
    Json(json!({ "alerts": crate::alerts::service::active(&daemon.alerts) })).into_response()
}

async fn list(State(daemon): State<Arc<Daemon>>, caller: Caller) -> Response {
    if let Err(denied) = allow(&caller, "pipeline.view", "").await {
        return denied;
    }
    let snapshots: Vec<PipelineSnapshot> = daemon.supervisor.subscribe().borrow().clone();
    Json(json!({ "pipelines": snapshots })).into_response()
}

async fn one(
    State(daemon): State<Arc<Daemon>>,
    caller: Caller,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Err(denied) = allow(&caller, "pipeline.view", &name).await {
        return denied;
    }
    match daemon.supervisor.snapshot(&name) {
        Some(s) => Json(json!({ "pipeline": s })).into_response(),
        None => unknown_pipeline(&daemon, &name),
    }
}

fn unknown_pipeline(daemon: &Daemon, name: &str) -> Response {
    let names: Vec<String> = daemon
        .supervisor
        .subscribe()
        .borrow()
        .iter()
        .map(|s| s.status.name.clone())
        .collect();
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no pipeline named `{name}` runs here; there are: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    )
}

async fn control(
    State(daemon): State<Arc<Daemon>>,
    ConnectInfo(remote): ConnectInfo<Remote>,
    caller: Caller,
    UrlPath((name, action)): UrlPath<(String, String)>,
) -> Response {
    let control = match action.as_str() {
        "pause" => PipelineControl::Pause,
        "resume" => PipelineControl::Resume,
        "restart" => PipelineControl::Restart,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no action `{other}`; use pause, resume or restart"),
            )
        }
    };
    match daemon.supervisor.control_as(&name, control, &caller).await {
        Ok(()) => {
            tracing::info!(%remote, pipeline = %name, "control: {action}");
            match daemon.supervisor.snapshot(&name) {
                Some(s) => Json(json!({ "pipeline": s })).into_response(),
                None => unknown_pipeline(&daemon, &name),
            }
        }
        Err(SupervisorError::Unknown(_)) => unknown_pipeline(&daemon, &name),
        Err(e @ SupervisorError::ShutDown) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ SupervisorError::Audit(_)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e @ SupervisorError::Denied(_)) => error(StatusCode::FORBIDDEN, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("`{0}` is not ADDRESS:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)")]
    BadAddress(String),
    #[error("cannot listen on {addr}: the port is already in use (another `aurora serve`? `ss -ltnp 'sport = :{port}'` shows who); choose another with --listen or serve.listen", port = addr.port())]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {reason}")]
    Other { addr: SocketAddr, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
}

/// Parses `ADDRESS:PORT`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, ListenError> {
    text.trim()
        .parse()
        .map_err(|_| ListenError::BadAddress(text.to_string()))
}

/// Binds the port, with a clear error when it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            ListenError::InUse { addr }
        } else {
            ListenError::Other {
                addr,
                reason: e.to_string(),
            }
        }
    })
}

/// A TLS acceptor from a PEM certificate chain and private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ListenError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ListenError::Tls(format!(
                "cannot read the certificate {}: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ListenError::Tls(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ListenError::Tls(format!(
            "cannot read the private key {}: {e}",
            key.display()
        ))
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ListenError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| ListenError::Tls(format!("the certificate and key do not fit together: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and hands over those whose TLS handshake succeeded; handshakes
/// run on their own tasks, so a slow client delays nobody else.
struct TlsListener {
    local: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: tokio_rustls::TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, remote) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let handed = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, remote)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Where a request came from, for the log lines of the control API.
#[derive(Debug, Clone, Copy)]
pub struct Remote(pub SocketAddr);

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Remote(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Remote(*stream.remote_addr())
    }
}

/// Serves `router` on `listener` (through `tls` when given) until `stop` fires; requests
/// in flight then finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let stopped = async move { stop.cancelled().await };
    match tls {
        None => {
            let app = router.into_make_service_with_connect_info::<Remote>();
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }
        Some(acceptor) => {
            let app = router.into_make_service_with_connect_info::<Remote>();
            axum::serve(TlsListener::new(listener, acceptor)?, app)
                .with_graceful_shutdown(stopped)
                .await
        }
    }
}
