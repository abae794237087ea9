//! The control API's bearer token: from an environment variable, else a file, else (on a
//! loopback address only) one made at start and left where the same user's workspace finds
//! it. Never logged; compared in constant time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{ServeClient, ServeConfig};

/// Where the token came from, for the start-up line (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env(String),
    File(PathBuf),
    /// Made at start and written to this file (mode 0600).
    Generated(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "${var}"),
            TokenSource::File(path) => write!(f, "{}", path.display()),
            TokenSource::Generated(path) => write!(f, "generated, in {}", path.display()),
        }
    }
}

#[derive(Clone)]
pub struct Token {
    secret: String,
    pub source: TokenSource,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "{listen} is not a loopback address, so the control API needs a token: set ${env} or \
         serve.token_file (e.g. `openssl rand -hex 32 > token && chmod 600 token`)"
    )]
    NeededOffLoopback { listen: SocketAddr, env: String },
    #[error("cannot read the token file {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "the token in {} is empty (or shorter than 16 characters); write a longer one",
        origin
    )]
    TooShort { origin: String },
    #[error(
        "serve.clients.{name} has no token: its `token_env` is unset and it names no `token_file`"
    )]
    NoClientToken { name: String },
    #[error("cannot write the generated token to {}: {reason}", path.display())]
    Unwritable { path: PathBuf, reason: String },
}

/// Shortest token accepted from the user: a guessable one would be no protection.
const MIN_TOKEN_CHARS: usize = 16;

impl Token {
    /// A token the caller knows (tests, a client).
    pub fn new(secret: impl Into<String>, source: TokenSource) -> Self {
        Self {
            secret: secret.into(),
            source,
        }
    }

    /// The daemon's token for `config`, listening on `listen`.
    pub fn for_daemon(config: &ServeConfig, listen: SocketAddr) -> Result<Self, TokenError> {
        if let Some(token) = configured(config)? {
            return Ok(token);
        }
        if !listen.ip().is_loopback() {
            return Err(TokenError::NeededOffLoopback {
                listen,
                env: config.token_env.clone(),
            });
        }
        let path = generated_path().ok_or_else(|| TokenError::Unwritable {
            path: PathBuf::from("serve.token"),
            reason: "this system has no data directory for Aurora".into(),
        })?;
        let secret =
            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        write_private(&path, &secret).map_err(|e| TokenError::Unwritable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            secret,
            source: TokenSource::Generated(path),
        })
    }

    /// The token a client sends to the daemon of `config`: the same variable or file, else
    /// the file a daemon on this machine generated. `None` when there is none.
    pub fn for_client(config: &ServeConfig) -> Result<Option<Self>, TokenError> {
        if let Some(token) = configured(config)? {
            return Ok(Some(token));
        }
        let Some(path) = generated_path().filter(|p| p.is_file()) else {
            return Ok(None);
        };
        read_file(&path).map(|secret| {
            Some(Self {
                secret,
                source: TokenSource::Generated(path),
            })
        })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        // Hashing first makes the comparison fixed-length.
        let a = Sha256::digest(self.secret.as_bytes());
        let b = Sha256::digest(presented.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }

    /// Removes a generated token's file (the daemon is stopping).
    pub fn discard(&self) {
        if let TokenSource::Generated(path) = &self.source {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The token of the control API client `name` (`serve.clients`): its variable if set, else
/// its file.
pub fn for_named_client(name: &str, client: &ServeClient) -> Result<Token, TokenError> {
    if let Some(var) = client.token_env.as_deref().filter(|v| !v.is_empty()) {
        if let Ok(secret) = std::env::var(var) {
            let secret = secret.trim().to_string();
            check_length(&secret, || format!("${var}"))?;
            return Ok(Token {
                secret,
                source: TokenSource::Env(var.to_string()),
            });
        }
    }
    match &client.token_file {
        Some(path) => Ok(Token {
            secret: read_file(path)?,
            source: TokenSource::File(path.clone()),
        }),
        None => Err(TokenError::NoClientToken { name: name.into() }),
    }
}

/// The token from the environment variable or the file the config names, if either is set.
fn configured(config: &ServeConfig) -> Result<Option<Token>, TokenError> {
    if !config.token_env.is_empty() {
        if let Ok(secret) = std::env::var(&config.token_env) {
            let secret = secret.trim().to_string();
            check_length(&secret, || format!("${}", config.token_env))?;
            return Ok(Some(Token {
                secret,
                source: TokenSource::Env(config.token_env.clone()),
            }));
        }
    }
    if let Some(path) = &config.token_file {
        let secret = read_file(path)?;
        return Ok(Some(Token {
            secret,
            source: TokenSource::File(path.clone()),
        }));
    }
    Ok(None)
}

fn check_length(secret: &str, origin: impl Fn() -> String) -> Result<(), TokenError> {
    if secret.chars().count() < MIN_TOKEN_CHARS {
        return Err(TokenError::TooShort { origin: origin() });
    }
    Ok(())
}

/// The first line of `path`, trimmed.
fn read_file(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    check_length(&secret, || path.display().to_string())?;
    Ok(secret)
}

/// `<data dir>/serve.token`.
pub fn generated_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aurora").map(|d| d.data_dir().join("serve.token"))
}

/// Writes `secret` and a newline to `path`, readable by the owner only, replacing any file.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    crate::secret::write_private(path, format!("{secret}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &str, file: Option<PathBuf>) -> ServeConfig {
        let mut config = crate::config::Config::default().serve;
        config.token_env = env.to_string();
        config.token_file = file;
        config
    }

    #[test]
    fn a_token_matches_itself_only() {
        let t = Token::new("0123456789abcdef", TokenSource::Env("X".into()));
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcdeF"));
        assert!(!t.matches(""));
        assert!(!t.matches("0123456789abcdef0"));
    }

    #[test]
    fn off_loopback_without_a_token_is_refused_with_the_fix() {
        let listen: SocketAddr = "0.0.0.0:9464".parse().expect("an address");
        let err = Token::for_daemon(&config("AURORA_TEST_UNSET_TOKEN_VAR", None), listen)
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("not a loopback address"), "{text}");
        assert!(text.contains("$AURORA_TEST_UNSET_TOKEN_VAR"), "{text}");
    }

    #[test]
    fn a_token_file_gives_its_first_line_and_short_ones_are_refused() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("token");
        std::fs::write(&path, "  a-long-enough-secret-value  \nsecond line\n").expect("write");
        let listen: SocketAddr = "10.1.2.3:9464".parse().expect("an address");
        let token = Token::for_daemon(
            &config("AURORA_TEST_UNSET_TOKEN_VAR", Some(path.clone())),
            listen,
        )
        .expect("a token");
        assert_eq!(token.secret(), "a-long-enough-secret-value");
        assert_eq!(token.source, TokenSource::File(path.clone()));
        std::fs::write(&path, "short\n").expect("write");
        let err = Token::for_daemon(&config("AURORA_TEST_UNSET_TOKEN_VAR", Some(path)), listen)
            .expect_err("too short");
        assert!(err.to_string().contains("shorter than 16"), "{err}");
    }

    #[test]
    fn a_private_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("sub/serve.token");
        write_private(&path, "secret-secret-secret").expect("written");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_file(&path).expect("read"), "secret-secret-secret");
    }
}
