//! `Warehouse`: one connection to one ClickHouse server. It detects the server's version once,
//! keeps the `Capabilities` that follow from it, and hands out the HTTP clients the query
//! runner (dynamic results, `reqwest`) and schema introspection (typed rows, `clickhouse`
//! crate) use. Every request carries `wait_end_of_query=1`, so a failure after the first
//! result bytes comes back as an HTTP error instead of garbage appended to the rows.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::capabilities::Capabilities;
use super::error::{connect_error, Result, ServerError, WarehouseError};
use super::schema::Schema;
use super::settings::ConnectionSettings;
use super::tls;

/// How long introspected schema is trusted before `schema()` reads it again.
const SCHEMA_TTL: Duration = Duration::from_secs(60);

pub struct Warehouse {
    settings: ConnectionSettings,
    http: reqwest::Client,
    tls: rustls::ClientConfig,
    /// Built on first use: most commands never need it.
    typed: OnceLock<clickhouse::Client>,
    caps: Capabilities,
    schema_cache: Mutex<Option<(Instant, Arc<Schema>)>>,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("url", &self.settings.url)
            .field("version", &self.caps.version_text)
            .finish()
    }
}

fn build_http(settings: &ConnectionSettings, tls: rustls::ClientConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(5))
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| WarehouseError::Settings(format!("cannot build the HTTP client: {e}")))
}

impl Warehouse {
    /// Connects, checks credentials and database, and reads the server version.
    pub async fn connect(settings: ConnectionSettings) -> Result<Self> {
        let tls = tls::client_config(&settings.tls)?;
        let http = build_http(&settings, tls.clone())?;
        let version = fetch_version(&http, &settings).await?;
        let caps = Capabilities::from_version(&version);
        Ok(Self {
            settings,
            http,
            tls,
            typed: OnceLock::new(),
            caps,
            schema_cache: Mutex::new(None),
        })
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// The `clickhouse` crate client, configured for this server's quirks.
    pub fn typed_client(&self) -> &clickhouse::Client {
        self.typed.get_or_init(|| {
            let settings = &self.settings;
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.enforce_http(false);
            connector.set_nodelay(true);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(self.tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector);
            let base = clickhouse::Client::with_http_client(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(https),
            );
            let mut typed = base
                .with_url(settings.url.clone())
                .with_user(settings.user.clone())
                .with_password(settings.password.expose())
                .with_database(settings.database.clone())
                .with_validation(self.caps.row_binary_with_names_and_types)
                .with_setting("wait_end_of_query", "1");
            if !self.caps.compressed_responses {
                typed = typed.with_compression(clickhouse::Compression::None);
            }
            typed
        })
    }

    /// Asks the server for its version, with the session's credentials and database: a
    /// readiness check that runs no query through the counted paths.
    pub async fn ping(&self) -> Result<String> {
        fetch_version(&self.http, &self.settings).await
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Introspected databases, tables and columns; cached for a minute unless `refresh`.
    pub async fn schema(&self, refresh: bool) -> Result<Arc<Schema>> {
        let mut cache = self.schema_cache.lock().await;
        if let Some((at, schema)) = cache.as_ref() {
            if !refresh && at.elapsed() < SCHEMA_TTL {
                return Ok(schema.clone());
            }
        }
        let schema = Arc::new(Schema::load(self).await?);
        *cache = Some((Instant::now(), schema.clone()));
        Ok(schema)
    }

    /// Turns an error of the `clickhouse` crate into ours, keeping the server's code.
    pub(crate) fn typed_error(&self, err: clickhouse::error::Error) -> WarehouseError {
        match err {
            clickhouse::error::Error::BadResponse(body) => ServerError::parse(&body, 500)
                .map(WarehouseError::Server)
                .unwrap_or_else(|| WarehouseError::Protocol {
                    url: self.settings.url.clone(),
                    detail: body,
                }),
            clickhouse::error::Error::Network(e) => WarehouseError::Connect {
                url: self.settings.url.clone(),
                reason: e.to_string(),
                hint: "check the URL and that a ClickHouse HTTP port is listening there".into(),
            },
            clickhouse::error::Error::TimedOut => WarehouseError::Timeout {
                url: self.settings.url.clone(),
                timeout: self.settings.query_timeout,
            },
            other => WarehouseError::Protocol {
                url: self.settings.url.clone(),
                detail: other.to_string(),
            },
        }
    }
}

/// Plain `SELECT version()` over reqwest: it must work before we know which protocol
/// features the server has, and it is where unreachable servers and bad passwords surface.
async fn fetch_version(http: &reqwest::Client, settings: &ConnectionSettings) -> Result<String> {
    let response = http
        .post(format!("{}/", settings.url))
        .timeout(settings.connect_timeout + Duration::from_secs(5))
        .basic_auth(&settings.user, Some(settings.password.expose()))
        // Naming the database makes a wrong one fail here, in the same round trip.
        .query(&[("database", settings.database.as_str())])
        .body("SELECT version()")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                WarehouseError::Timeout {
                    url: settings.url.clone(),
                    timeout: settings.connect_timeout,
                }
            } else {
                connect_error(&settings.url, &e)
            }
        })?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| connect_error(&settings.url, &e))?;
    if !status.is_success() {
        return Err(match ServerError::parse(&body, status.as_u16()) {
            Some(mut e) if e.is_auth_failure() => {
                e.message = format!(
                    "user `{}` cannot log in to {}: {}",
                    settings.user, settings.url, e.message
                );
                WarehouseError::Server(e)
            }
            Some(mut e) if e.code == 81 => {
                e.message = format!(
                    "database `{}` does not exist on {} ({})",
                    settings.database, settings.url, e.message
                );
                WarehouseError::Server(e)
            }
            Some(e) => WarehouseError::Server(e),
            None => WarehouseError::Protocol {
                url: settings.url.clone(),
                detail: format!(
                    "HTTP {status} and a body that is not a ClickHouse error ({}); is this a ClickHouse HTTP port?",
                    body.chars().take(120).collect::<String>().trim()
                ),
            },
        });
    }
    let version = body.trim().to_string();
    if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(WarehouseError::Protocol {
            url: settings.url.clone(),
            detail: format!(
                "`SELECT version()` answered `{}`; is this a ClickHouse HTTP port?",
                version.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(version)
}
