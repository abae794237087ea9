//! The workspace's side of the control API: finds the daemon of its config (`serve.url`, or
//! the one at `serve.listen` on this machine), lists its pipelines and pauses, resumes or
//! restarts them.

use std::time::Duration;

use serde::Deserialize;

use super::token::Token;
use super::API;
use crate::config::ServeConfig;
use crate::ingest::supervisor::{PipelineControl, PipelineSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the daemon at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the daemon at {url} refused the request ({status}): {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} is not an Aurora daemon (its /health answer was not Aurora's)")]
    NotAurora { url: String },
    #[error("no token for the daemon at {url}: set ${env} or serve.token_file")]
    NoToken { url: String, env: String },
    #[error("{0}")]
    Setup(String),
}

/// A running daemon and how to talk to it.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    base: String,
    token: Option<Token>,
    token_env: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Health {
    service: String,
}

#[derive(Deserialize)]
struct Pipelines {
    pipelines: Vec<PipelineSnapshot>,
}

#[derive(Deserialize)]
struct Alerts {
    alerts: Vec<crate::alerts::engine::ActiveAlert>,
}

#[derive(Deserialize)]
struct One {
    pipeline: PipelineSnapshot,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl DaemonClient {
    /// The client for the daemon `config` names: `serve.url`, else `http://<serve.listen>`
    /// (`https://` when `serve.tls` is set), with the token the daemon would use.
    pub fn for_config(config: &ServeConfig) -> Result<Self, ClientError> {
        let scheme = if config.tls.cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        let base = config
            .url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", config.listen));
        let token = Token::for_client(config).map_err(|e| ClientError::Setup(e.to_string()))?;
        // A self-signed daemon certificate named in the same config is trusted as its root.
        let tls = crate::warehouse::tls::client_config(&crate::warehouse::settings::TlsSettings {
            ca_file: config.tls.cert_file.clone(),
            ..Default::default()
        })
        .map_err(|e| ClientError::Setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(60))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            token_env: config.token_env.clone(),
            http,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Whether an Aurora daemon answers at the address (quickly: for start-up).
    pub async fn probe(&self) -> Result<(), ClientError> {
        let url = format!("{}/health", self.base);
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        let health: Health = serde_json::from_str(&text).map_err(|_| ClientError::NotAurora {
            url: self.base.clone(),
        })?;
        if health.service != "aurora" {
            return Err(ClientError::NotAurora {
                url: self.base.clone(),
            });
        }
        Ok(())
    }

    pub async fn pipelines(&self) -> Result<Vec<PipelineSnapshot>, ClientError> {
        let response = self
            .authorized(self.http.get(format!("{}{API}/pipelines", self.base)))?
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let body: Pipelines = self.read(response).await?;
        Ok(mark_controllable(body.pipelines))
    }

    /// The daemon's `/metrics` text.
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        response.text().await.map_err(|e| self.unreachable(&e))
    }

    /// The daemon's pending and firing alerts, firing first.
    pub async fn alerts(&self) -> Result<Vec<crate::alerts::engine::ActiveAlert>, ClientError> {
        let response = self
            .authorized(self.http.get(format!("{}{API}/alerts", self.base)))?
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let body: Alerts = self.read(response).await?;
        Ok(body.alerts)
    }

    /// Pauses, resumes or restarts `name`; returns its snapshot after the change (a pause
    /// returns once the pipeline has stored what it read).
    pub async fn control(
        &self,
        name: &str,
        control: PipelineControl,
    ) -> Result<PipelineSnapshot, ClientError> {
        let action = control.verb();
        let url = format!(
            "{}{API}/pipelines/{}/{action}",
            self.base,
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        let response = self
            .authorized(self.http.post(url))?
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let body: One = self.read(response).await?;
        Ok(mark_controllable(vec![body.pipeline]).remove(0))
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let token = self.token.as_ref().ok_or_else(|| ClientError::NoToken {
            url: self.base.clone(),
            env: self.token_env.clone(),
        })?;
        Ok(request.bearer_auth(token.secret()))
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or(text);
            return Err(ClientError::Refused {
                url: self.base.clone(),
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Refused {
            url: self.base.clone(),
            status: status.as_u16(),
            message: format!("an answer Aurora cannot read: {e}"),
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            reason: super::root_cause(e),
        }
    }
}

/// The daemon's pipelines can be steered through it.
fn mark_controllable(mut snapshots: Vec<PipelineSnapshot>) -> Vec<PipelineSnapshot> {
    for s in &mut snapshots {
        s.controllable = true;
    }
    snapshots
}
