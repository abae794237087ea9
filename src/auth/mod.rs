//! Sign-in with an OpenID provider by the OAuth 2.0 device authorization grant (RFC 8628):
//! the provider's discovery document, the device code, polling for the tokens, the user's
//! name and groups from the userinfo endpoint, refreshing, and the tokens kept between
//! commands in a file readable by the user only.
//!
//! The identity is read from the provider's userinfo endpoint with the access token, over the
//! connection to the issuer, rather than from an ID token's claims, so no token signature has
//! to be checked here.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Actor;
use crate::config::{AuthConfig, OidcProvider};

const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Refresh this long before the access token runs out.
const EARLY: u64 = 30;
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot reach the sign-in provider at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the provider at {configured} says its issuer is {discovered}; tokens from it would not be the ones expected"
    )]
    WrongIssuer {
        configured: String,
        discovered: String,
    },
    #[error("the provider at {issuer} does not offer the device sign-in (no device_authorization_endpoint)")]
    NoDeviceFlow { issuer: String },
    #[error("the sign-in was refused at the provider ({code}{})", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        code: String,
        description: Option<String>,
    },
    #[error("the code was not entered in time; run `aurora login` again")]
    CodeExpired,
    #[error("not signed in to `{provider}`: run `aurora login`")]
    NotSignedIn { provider: String },
    #[error("the sign-in to `{provider}` has expired ({reason}): run `aurora login`")]
    SessionExpired { provider: String, reason: String },
    #[error("the provider answered what Aurora cannot use: {0}")]
    Protocol(String),
    #[error("cannot keep the sign-in in {}: {reason}", path.display())]
    Store { path: PathBuf, reason: String },
}

impl AuthError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            AuthError::WrongIssuer { .. } => Some(
                "set auth.providers.NAME.issuer to exactly the issuer the provider names (scheme, host, port and path)",
            ),
            AuthError::Unreachable { .. } => {
                Some("check auth.providers.NAME.issuer and that this machine reaches it")
            }
            _ => None,
        }
    }
}

/// The endpoints of a provider, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub device_authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
}

/// A device sign-in under way: what the user must open and type.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub subject: String,
    pub user: String,
    pub groups: Vec<String>,
}

/// What is kept between commands. Not `Debug`: it holds the tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct Stored {
    pub provider: String,
    pub issuer: String,
    pub identity: Identity,
    access_token: String,
    refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
    pub signed_in_at: u64,
}

impl Stored {
    /// The access token (ClickHouse servers that take bearer tokens).
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user: self.identity.user.clone(),
            uid: None,
            via: format!("oidc:{}", self.provider),
            groups: self.identity.groups.clone(),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = crate::warehouse::tls::client_config(&Default::default()).ok();
    let builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("aurora/", env!("CARGO_PKG_VERSION")));
    let builder = match tls {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        None => builder,
    };
    builder.build().unwrap_or_default()
}

fn unreachable(url: &str, e: reqwest::Error) -> AuthError {
    AuthError::Unreachable {
        url: url.to_string(),
        reason: e.without_url().to_string(),
    }
}

/// The provider's discovery document; its issuer must be the one configured.
pub async fn discover(
    http: &reqwest::Client,
    provider: &OidcProvider,
) -> Result<Discovery, AuthError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        provider.issuer.trim_end_matches('/')
    );
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(&url, e))?;
    if !response.status().is_success() {
        return Err(AuthError::Unreachable {
            url,
            reason: format!("HTTP {}", response.status()),
        });
    }
    let discovery: Discovery = response
        .json_body()
        .await
        .map_err(|e| AuthError::Protocol(format!("the discovery document: {e}")))?;
    if discovery.issuer.trim_end_matches('/') != provider.issuer.trim_end_matches('/') {
        return Err(AuthError::WrongIssuer {
            configured: provider.issuer.clone(),
            discovered: discovery.issuer,
        });
    }
    Ok(discovery)
}

/// JSON from a response body (reqwest is built without its `json` feature).
trait JsonBody {
    async fn json_body<T: serde::de::DeserializeOwned>(self) -> Result<T, String>;
}

impl JsonBody for reqwest::Response {
    async fn json_body<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        let bytes = self.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }
}

/// Asks for a device code.
pub async fn start(
    http: &reqwest::Client,
    discovery: &Discovery,
    provider: &OidcProvider,
) -> Result<DeviceStart, AuthError> {
    let url = discovery
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| AuthError::NoDeviceFlow {
            issuer: discovery.issuer.clone(),
        })?;
    let scope = provider.scopes.join(" ");
    let form = [
        ("client_id", provider.client_id.as_str()),
        ("scope", scope.as_str()),
    ];
    let response = http
        .post(&url)
        .form(&form)
        .send()
        .await
        .map_err(|e| unreachable(&url, e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| unreachable(&url, e))?;
    if !status.is_success() {
        return Err(denied_or_protocol(&bytes, status));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| AuthError::Protocol(format!("the device authorization response: {e}")))
}

fn denied_or_protocol(bytes: &[u8], status: reqwest::StatusCode) -> AuthError {
    match serde_json::from_slice::<ErrorResponse>(bytes) {
        Ok(e) => AuthError::Denied {
            code: e.error,
            description: e.error_description,
        },
        Err(_) => AuthError::Protocol(format!("HTTP {status}")),
    }
}

/// Polls the token endpoint until the user approved (the tokens), refused, or the code
/// expired; `slow_down` adds five seconds to the interval, as RFC 8628 asks.
pub async fn poll(
    http: &reqwest::Client,
    discovery: &Discovery,
    provider: &OidcProvider,
    device: &DeviceStart,
) -> Result<(String, Option<String>, u64), AuthError> {
    let deadline = now() + device.expires_in;
    let mut interval = device.interval.max(1);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let form = [
            ("grant_type", GRANT_DEVICE_CODE),
            ("device_code", device.device_code.as_str()),
            ("client_id", provider.client_id.as_str()),
        ];
        match token_request(http, &discovery.token_endpoint, &form).await {
            Ok(tokens) => return Ok(tokens),
            Err(AuthError::Denied { code, .. }) if code == "authorization_pending" => {}
            Err(AuthError::Denied { code, .. }) if code == "slow_down" => interval += 5,
            Err(AuthError::Denied { code, .. }) if code == "expired_token" => {
                return Err(AuthError::CodeExpired)
            }
            Err(e) => return Err(e),
        }
        if now() > deadline {
            return Err(AuthError::CodeExpired);
        }
    }
}

async fn token_request(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<(String, Option<String>, u64), AuthError> {
    let response = http
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| unreachable(url, e))?;
    if !status.is_success() {
        return Err(denied_or_protocol(&bytes, status));
    }
    let tokens: TokenResponse = serde_json::from_slice(&bytes)
        .map_err(|e| AuthError::Protocol(format!("the token response: {e}")))?;
    let expires_at = now() + tokens.expires_in.unwrap_or(300);
    Ok((tokens.access_token, tokens.refresh_token, expires_at))
}

/// The user's subject, name and groups, from the userinfo endpoint.
pub async fn userinfo(
    http: &reqwest::Client,
    discovery: &Discovery,
    provider: &OidcProvider,
    access_token: &str,
) -> Result<Identity, AuthError> {
    let url = discovery
        .userinfo_endpoint
        .clone()
        .ok_or_else(|| AuthError::Protocol("the provider has no userinfo endpoint".into()))?;
    let response = http
        .get(&url)
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| unreachable(&url, e))?;
    if !response.status().is_success() {
        return Err(AuthError::Protocol(format!(
            "userinfo answered HTTP {}",
            response.status()
        )));
    }
    let claims: Value = response
        .json_body()
        .await
        .map_err(|e| AuthError::Protocol(format!("userinfo: {e}")))?;
    identity_from(&claims, provider)
}

/// The identity in `claims`: the subject, the name from `user_claim` (else the subject) and
/// the groups from `groups_claim` (a list, or one string).
pub fn identity_from(claims: &Value, provider: &OidcProvider) -> Result<Identity, AuthError> {
    let subject = claims["sub"]
        .as_str()
        .ok_or_else(|| AuthError::Protocol("userinfo has no `sub`".into()))?
        .to_string();
    let user = claims[&provider.user_claim]
        .as_str()
        .filter(|u| !u.is_empty())
        .unwrap_or(&subject)
        .to_string();
    let groups = match &claims[&provider.groups_claim] {
        Value::Array(items) => items
            .iter()
            .filter_map(|g| g.as_str().map(String::from))
            .collect(),
        Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        subject,
        user,
        groups,
    })
}

/// `<data dir>/auth/<provider>.json`.
pub fn stored_path(provider: &str) -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aurora")
        .map(|d| d.data_dir().join("auth").join(format!("{provider}.json")))
}

/// Keeps `stored` in a file only its owner may read (written whole, then renamed).
pub fn save(stored: &Stored) -> Result<PathBuf, AuthError> {
    let path = stored_path(&stored.provider).ok_or_else(|| AuthError::Store {
        path: PathBuf::from("auth"),
        reason: "this system has no data directory for Aurora".into(),
    })?;
    let fail = |reason: String| AuthError::Store {
        path: path.clone(),
        reason,
    };
    let text = serde_json::to_vec(stored).map_err(|e| fail(e.to_string()))?;
    crate::secret::write_private(&path, &text).map_err(|e| fail(e.to_string()))?;
    Ok(path)
}

pub fn load(provider: &str) -> Option<Stored> {
    let path = stored_path(provider)?;
    read(&path)
}

fn read(path: &Path) -> Option<Stored> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The whole sign-in after the user approved: tokens to identity to file.
pub async fn complete(
    http: &reqwest::Client,
    name: &str,
    provider: &OidcProvider,
    discovery: &Discovery,
    tokens: (String, Option<String>, u64),
) -> Result<(Stored, PathBuf), AuthError> {
    let (access_token, refresh_token, expires_at) = tokens;
    let identity = userinfo(http, discovery, provider, &access_token).await?;
    let stored = Stored {
        provider: name.to_string(),
        issuer: discovery.issuer.clone(),
        identity,
        access_token,
        refresh_token,
        expires_at,
        signed_in_at: now(),
    };
    let path = save(&stored)?;
    Ok((stored, path))
}

/// The sign-in of `name`, refreshed (and saved) when its access token runs out.
pub async fn current(name: &str, provider: &OidcProvider) -> Result<Stored, AuthError> {
    let stored = load(name).ok_or_else(|| AuthError::NotSignedIn {
        provider: name.to_string(),
    })?;
    if stored.issuer.trim_end_matches('/') != provider.issuer.trim_end_matches('/') {
        return Err(AuthError::NotSignedIn {
            provider: name.to_string(),
        });
    }
    if now() + EARLY < stored.expires_at {
        return Ok(stored);
    }
    let expired = |reason: String| AuthError::SessionExpired {
        provider: name.to_string(),
        reason,
    };
    let Some(refresh_token) = stored.refresh_token.clone() else {
        return Err(expired("the provider gave no refresh token".into()));
    };
    let http = http();
    let discovery = discover(&http, provider).await?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", provider.client_id.as_str()),
    ];
    let (access_token, new_refresh, expires_at) =
        match token_request(&http, &discovery.token_endpoint, &form).await {
            Ok(t) => t,
            Err(AuthError::Denied { code, description }) => {
                return Err(expired(description.unwrap_or(code)))
            }
            Err(e) => return Err(e),
        };
    // The groups may have changed since the sign-in.
    let identity = userinfo(&http, &discovery, provider, &access_token).await?;
    let refreshed = Stored {
        identity,
        access_token,
        refresh_token: new_refresh.or(Some(refresh_token)),
        expires_at,
        ..stored
    };
    save(&refreshed)?;
    Ok(refreshed)
}

/// Forgets the sign-in of `name`, revoking its refresh token at the provider when it offers
/// revocation. Returns whether there was one.
pub async fn logout(name: &str, provider: &OidcProvider) -> Result<Option<Stored>, AuthError> {
    let Some(path) = stored_path(name) else {
        return Ok(None);
    };
    let Some(stored) = read(&path) else {
        return Ok(None);
    };
    if let Some(token) = &stored.refresh_token {
        let http = http();
        if let Ok(discovery) = discover(&http, provider).await {
            if let Some(url) = &discovery.revocation_endpoint {
                let form = [
                    ("token", token.as_str()),
                    ("token_type_hint", "refresh_token"),
                    ("client_id", provider.client_id.as_str()),
                ];
                if let Err(e) = http.post(url).form(&form).send().await {
                    tracing::warn!("could not revoke the refresh token: {e}");
                }
            }
        }
    }
    std::fs::remove_file(&path).map_err(|e| AuthError::Store {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(stored))
}

/// The provider a config signs in with, if any: its name and settings.
pub fn configured(auth: &AuthConfig) -> Option<(&str, &OidcProvider)> {
    let name = auth.provider.as_deref()?;
    auth.providers.get(name).map(|p| (name, p))
}

/// The signed-in user of `auth`'s provider, refreshing when needed; runs on a thread of its
/// own, so it may be called from synchronous code inside the async runtime.
pub fn signed_in_blocking(auth: &AuthConfig) -> Result<Option<Stored>, AuthError> {
    let Some((name, provider)) = configured(auth) else {
        return Ok(None);
    };
    let (name, provider) = (name.to_string(), provider.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AuthError::Protocol(e.to_string()))?;
        runtime.block_on(current(&name, &provider)).map(Some)
    })
    .join()
    .unwrap_or_else(|_| Err(AuthError::Protocol("the sign-in check stopped".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> OidcProvider {
        OidcProvider {
            issuer: "https://id.example.com".into(),
            client_id: "aurora-cli".into(),
            scopes: vec!["openid".into()],
            user_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
        }
    }

    #[test]
    fn identity_takes_the_configured_claims_and_falls_back_to_the_subject() {
        let p = provider();
        let id = identity_from(
            &serde_json::json!({"sub": "u1", "preferred_username": "ann", "groups": ["a", "b"]}),
            &p,
        )
        .unwrap();
        assert_eq!((id.user.as_str(), id.groups.len()), ("ann", 2));
        let id = identity_from(&serde_json::json!({"sub": "u2", "groups": "ops"}), &p).unwrap();
        assert_eq!(
            (id.user.as_str(), id.groups),
            ("u2", vec!["ops".to_string()])
        );
        assert!(identity_from(&serde_json::json!({"name": "x"}), &p).is_err());
    }
}
