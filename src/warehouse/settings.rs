//! Where Aurora connects: URL, credentials, database and TLS, resolved from command-line
//! flags, environment variables and the config file, in that order of precedence. No URL at
//! all means "use the private local server" (see `local_server`).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ClickHouseConfig;
use crate::secret::Secret;

use super::error::{Result, WarehouseError};

pub const ENV_URL: &str = "AURORA_CLICKHOUSE_URL";
pub const ENV_USER: &str = "AURORA_CLICKHOUSE_USER";
pub const ENV_PASSWORD: &str = "AURORA_CLICKHOUSE_PASSWORD";
pub const ENV_PASSWORD_FILE: &str = "AURORA_CLICKHOUSE_PASSWORD_FILE";
pub const ENV_DATABASE: &str = "AURORA_CLICKHOUSE_DATABASE";

/// Values given on the command line; each one present wins over env and file.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOverrides {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub database: Option<String>,
}

impl ConnectionOverrides {
    /// The `AURORA_CLICKHOUSE_*` variables of this process (empty ones count as unset).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Self {
            url: get(ENV_URL),
            user: get(ENV_USER),
            password: get(ENV_PASSWORD).map(Secret::from),
            database: get(ENV_DATABASE),
        }
    }

    /// `self` where set, else `lower`.
    pub fn or(self, lower: ConnectionOverrides) -> Self {
        Self {
            url: self.url.or(lower.url),
            user: self.user.or(lower.user),
            password: self.password.or(lower.password),
            database: self.database.or(lower.database),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    /// A client certificate chain and its private key (PEM), for servers that ask for one.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// Fully resolved connection settings for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub tls: TlsSettings,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
}

impl ConnectionSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_string(),
            user: "default".into(),
            password: Secret::default(),
            database: "default".into(),
            tls: TlsSettings::default(),
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(30),
        }
    }
}

/// Where to connect, once flags, env and file are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A server the user runs.
    Remote(ConnectionSettings),
    /// No URL anywhere: Aurora's private server. The settings carry credentials and database;
    /// the URL is filled in once the server is up.
    Local(ConnectionSettings),
}

/// Combines flags (`cli`, already merged over env by the caller) with the config file.
pub fn resolve(cli_and_env: ConnectionOverrides, file: &ClickHouseConfig) -> Result<Target> {
    let url = cli_and_env.url.or_else(|| file.url.clone());
    let mut settings = ConnectionSettings::new(url.clone().unwrap_or_default());
    settings.user = cli_and_env.user.unwrap_or_else(|| file.user.clone());
    settings.password = match (cli_and_env.password, &file.password_file) {
        (Some(password), _) => password,
        (None, Some(path)) => Secret::from_file(path).map_err(WarehouseError::Settings)?,
        (None, None) => Secret::from(file.password.as_str()),
    };
    settings.database = cli_and_env
        .database
        .unwrap_or_else(|| file.database.clone());
    settings.tls = TlsSettings {
        ca_file: file.tls.ca_file.clone(),
        insecure_skip_verify: file.tls.insecure_skip_verify,
        client_identity: None,
    };
    settings.connect_timeout = file.connect_timeout;
    settings.query_timeout = file.query_timeout;
    match url {
        Some(url) => {
            validate_url(&url)?;
            Ok(Target::Remote(settings))
        }
        None => Ok(Target::Local(settings)),
    }
}

fn validate_url(raw: &str) -> Result<()> {
    let parsed = url::Url::parse(raw).map_err(|e| {
        WarehouseError::Settings(format!(
            "`{raw}` is not a URL ({e}); write it as http://HOST:8123 or https://HOST:8443"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(WarehouseError::Settings(format!(
            "`{raw}` is not an HTTP(S) URL; Aurora talks to ClickHouse's HTTP interface: http://HOST:8123 or https://HOST:8443"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ConnectionOverrides {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnectionOverrides::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn flags_beat_env_beat_file_beat_default() {
        let file = ClickHouseConfig {
            url: Some("http://file:8123".into()),
            user: "file_user".into(),
            database: "file_db".into(),
            ..Default::default()
        };
        let envs = env(&[
            (ENV_URL, "http://env:8123"),
            (ENV_USER, "env_user"),
            (ENV_PASSWORD, "env_pw"),
        ]);
        let flags = ConnectionOverrides {
            url: Some("http://flag:8123/".into()),
            ..Default::default()
        };
        let Target::Remote(s) = resolve(flags.or(envs), &file).unwrap() else {
            panic!("expected a remote target");
        };
        assert_eq!(s.url, "http://flag:8123");
        assert_eq!(s.user, "env_user");
        assert_eq!(s.password.expose(), "env_pw");
        assert_eq!(s.database, "file_db");
    }

    #[test]
    fn no_url_anywhere_means_local_server() {
        let file = ClickHouseConfig::default();
        let target = resolve(env(&[(ENV_URL, "")]), &file).unwrap();
        assert!(matches!(target, Target::Local(s) if s.user == "default"));
    }

    #[test]
    fn bad_urls_are_explained() {
        let file = ClickHouseConfig::default();
        for bad in ["localhost:8123", "ftp://host", "http://"] {
            let flags = ConnectionOverrides {
                url: Some(bad.into()),
                ..Default::default()
            };
            let err = resolve(flags, &file).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("http://HOST:8123"),
                "{err}"
            );
        }
    }
}
