//! `aurora login`, `aurora logout`, `aurora whoami`: signing in with the configured OpenID
//! provider from a terminal (the device grant: a URL and a code to enter in any browser, so it
//! works over SSH), signing out, and who Aurora takes you for.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::audit::{Event, Outcome};
use crate::auth;
use crate::config::{AuthConfig, OidcProvider};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The provider (a key of `auth.providers`) [default: `auth.provider`]
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// One JSON object
    #[arg(long)]
    json: bool,
}

fn chosen<'a>(
    auth: &'a AuthConfig,
    wanted: Option<&'a str>,
) -> Result<(&'a str, &'a OidcProvider)> {
    let Some(name) = wanted.or(auth.provider.as_deref()) else {
        bail!(
            "no sign-in provider is configured: set auth.provider and auth.providers (docs/security.md, Sign-in), or pass --provider NAME"
        );
    };
    match auth.providers.get(name) {
        Some(p) => Ok((name, p)),
        None => bail!(
            "there is no provider `{name}` under auth.providers (there are: {})",
            if auth.providers.is_empty() {
                "none".to_string()
            } else {
                auth.providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }
}

pub async fn login(global: &GlobalArgs, args: LoginArgs) -> Result<ExitCode> {
    let config = super::session::load_config_unsigned(global)?;
    super::session::init_user(&config);
    let (name, provider) = chosen(&config.auth, args.provider.as_deref())?;
    let http = auth::http();
    let attempt = async {
        let discovery = auth::discover(&http, provider).await?;
        let device = auth::start(&http, &discovery, provider).await?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "To sign in to `{name}`, open {} in any browser and enter the code {}",
            device.verification_uri, device.user_code
        )
        .ok();
        if let Some(complete) = &device.verification_uri_complete {
            writeln!(out, "(or open {complete}, which carries the code)").ok();
        }
        writeln!(
            out,
            "Waiting for the provider; the code expires in {} min. Ctrl-C stops.",
            device.expires_in.div_ceil(60)
        )
        .ok();
        out.flush().ok();
        drop(out);
        let tokens = auth::poll(&http, &discovery, provider, &device).await?;
        auth::complete(&http, name, provider, &discovery, tokens).await
    };
    let result = tokio::select! {
        r = attempt => r,
        signal = super::interrupted() => bail!("interrupted ({signal}); not signed in"),
    };
    match result {
        Ok((stored, path)) => {
            let actor = stored.actor();
            crate::audit::record(
                Event::new("auth.login", name, Outcome::Ok)
                    .by(&actor)
                    .with("issuer", stored.issuer.as_str())
                    .with("subject", stored.identity.subject.as_str()),
            )?;
            let groups = if actor.groups.is_empty() {
                "no groups".to_string()
            } else {
                format!("groups: {}", actor.groups.join(", "))
            };
            println!("signed in to `{name}` as {} ({groups})", actor.user);
            eprintln!(
                "note: the sign-in is kept in {} (readable by you only); the OS keyring is not used yet",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let outcome = if matches!(e, auth::AuthError::Denied { .. }) {
                Outcome::Denied
            } else {
                Outcome::Error
            };
            let event = Event::new("auth.login", name, outcome).with("error", e.to_string());
            if let Err(audit) = crate::audit::record(event) {
                tracing::warn!("{audit}");
            }
            Err(e.into())
        }
    }
}

pub async fn logout(global: &GlobalArgs, args: LoginArgs) -> Result<ExitCode> {
    let config = super::session::load_config_unsigned(global)?;
    super::session::init_user(&config);
    let (name, provider) = chosen(&config.auth, args.provider.as_deref())?;
    match auth::logout(name, provider).await? {
        Some(stored) => {
            crate::audit::record(Event::new("auth.logout", name, Outcome::Ok).by(&stored.actor()))?;
            println!(
                "signed out of `{name}` ({} is no longer signed in here)",
                stored.identity.user
            );
        }
        None => println!("not signed in to `{name}`"),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(global: &GlobalArgs, args: WhoamiArgs) -> Result<ExitCode> {
    let config = super::session::load_config(global)?;
    let access = crate::rbac::current();
    let signed_in = auth::configured(&config.auth).and_then(|(name, _)| auth::load(name));
    if args.json {
        let mut value = super::rbac::access_json(&access);
        if let Some(s) = &signed_in {
            value["sign_in"] = serde_json::json!({
                "provider": s.provider,
                "issuer": s.issuer,
                "subject": s.identity.subject,
                "expires_at": s.expires_at,
            });
        }
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    super::rbac::print_access(&access, false)?;
    if let Some(s) = &signed_in {
        let left = s.expires_at.saturating_sub(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        println!(
            "sign-in  {} at {} (subject {}; access token good for {left} s more, then refreshed)",
            s.provider, s.issuer, s.identity.subject
        );
    }
    Ok(ExitCode::SUCCESS)
}
