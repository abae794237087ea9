//! A command's connection: loads the config, resolves flags > env > file, starts or reuses the
//! private server when no URL is set, and stops a server it started itself when done.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{self, Config};
use crate::secret::Secret;
use crate::warehouse::local_server::{self, LocalServer, LocalServerOptions, ServerLease};
use crate::warehouse::settings::{self, ConnectionOverrides, Target};
use crate::warehouse::Warehouse;

use super::GlobalArgs;

/// The configuration, with this process's user decided: the signed-in user when
/// `auth.provider` is set (refreshing the sign-in if needed; an error without one), else the OS
/// user. The audit log and the roles follow from it.
pub fn load_config(global: &GlobalArgs) -> Result<Config> {
    let config = load_config_unsigned(global)?;
    if let Some(stored) = crate::auth::signed_in_blocking(&config.auth)? {
        crate::audit::sign_in_as(stored.actor());
    }
    init_user(&config);
    Ok(config)
}

/// The first configuration a process loads decides its audit log and roles.
pub fn init_user(config: &Config) {
    crate::audit::init(&config.audit);
    crate::rbac::init(&config.rbac);
}

/// The configuration alone, warnings said, nothing else decided (`aurora login` and `logout`,
/// which run before or after a sign-in).
pub fn load_config_unsigned(global: &GlobalArgs) -> Result<Config> {
    // `--config` and AURORA_CONFIG both arrive through clap, so None means "default path".
    let loaded = config::load(global.config.as_deref())?;
    // Said once per process, however many times a command loads the file.
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Some(path) = &loaded.source {
        if let Some(warning) = readable_password(path, &loaded.config) {
            WARNED.call_once(|| eprintln!("warning: {warning}"));
        }
    }
    Ok(loaded.config)
}

/// A warning when the config file holds a password and others than its owner may read it.
fn readable_password(path: &std::path::Path, config: &Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if config.clickhouse.password.is_empty() {
        return None;
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} holds `clickhouse.password` and other users can read it (mode {:o}): \
             `chmod 600` it, or move the password to a file named by `clickhouse.password_file`",
            path.display(),
            mode & 0o777
        )
    })
}

fn overrides(global: &GlobalArgs) -> Result<ConnectionOverrides> {
    // clap has already folded the AURORA_CLICKHOUSE_* variables into these flags.
    // An empty value (e.g. `AURORA_CLICKHOUSE_USER=`) counts as unset.
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let password = match (&global.password, &global.password_file) {
        (Some(p), _) if !p.is_empty() => Some(p.clone()),
        (_, Some(file)) if !file.as_os_str().is_empty() => {
            Some(Secret::from_file(file).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    Ok(ConnectionOverrides {
        url: set(&global.url),
        user: set(&global.user),
        password,
        database: set(&global.database),
    })
}

/// Options for the private server from the config file.
pub fn local_options(config: &Config) -> LocalServerOptions {
    let local = &config.clickhouse.local_server;
    let mut opts = LocalServerOptions::new(
        local
            .data_dir
            .clone()
            .unwrap_or_else(local_server::default_data_dir),
    );
    opts.binary = local
        .binary
        .as_ref()
        .map(|b| std::path::absolute(b).unwrap_or_else(|_| b.clone()));
    opts.startup_timeout = local.startup_timeout;
    opts
}

pub struct Session {
    /// Shared, so background work (pipelines) can use the same connection.
    pub warehouse: Arc<Warehouse>,
    pub config: Config,
    /// The private server, when this session uses it.
    pub local: Option<LocalServer>,
    lease: Option<ServerLease>,
}

impl Session {
    pub async fn open(global: &GlobalArgs) -> Result<Self> {
        let config = load_config(global)?;
        Self::open_with(global, config).await
    }

    pub async fn open_with(global: &GlobalArgs, config: Config) -> Result<Self> {
        match settings::resolve(overrides(global)?, &config.clickhouse)? {
            Target::Remote(settings) => Ok(Self {
                warehouse: Arc::new(Warehouse::connect(settings).await?),
                config,
                local: None,
                lease: None,
            }),
            Target::Local(mut settings) => {
                let opts = local_options(&config);
                let lease = local_server::lease(&opts.data_dir)?;
                let server = start_local(opts).await?;
                settings.url = server.url();
                match Warehouse::connect(settings).await {
                    Ok(warehouse) => Ok(Self {
                        warehouse: Arc::new(warehouse),
                        config,
                        local: Some(server),
                        lease: Some(lease),
                    }),
                    Err(e) => {
                        stop_if_ours(Some(server), Some(lease)).await;
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Stops the private server if this session started it; a reused one keeps running.
    pub async fn close(self) {
        stop_if_ours(self.local, self.lease).await;
    }

    /// Pins the private server so it keeps running after this and every other command.
    pub fn keep_server(&mut self) -> Result<()> {
        if let Some(server) = &mut self.local {
            local_server::pin(&server.state.data_dir)?;
            server.state.pinned = true;
        }
        Ok(())
    }
}

pub async fn start_local(opts: LocalServerOptions) -> Result<LocalServer> {
    tracing::info!(data_dir = %opts.data_dir.display(), "starting or reusing the private ClickHouse server");
    Ok(
        tokio::task::spawn_blocking(move || local_server::ensure_running(&opts))
            .await
            .context("the server start task failed")??,
    )
}

/// Stops the private server when the last command using it ends, unless it is pinned
/// (`aurora server start`, `aurora demo`): whoever started it, a server started on demand
/// lives exactly as long as some Aurora command needs it.
async fn stop_if_ours(server: Option<LocalServer>, lease: Option<ServerLease>) {
    let Some(server) = server else {
        return;
    };
    let last = lease.is_none_or(ServerLease::release_is_last);
    if !last {
        tracing::info!("another Aurora command uses the private server; leaving it running");
        return;
    }
    let dir: PathBuf = server.state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || local_server::stop_unless_pinned(&dir)).await;
    if let Ok(Err(e)) = result {
        tracing::warn!("could not stop the private server: {e}");
    }
}
