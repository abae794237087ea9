//! `aurora serve`'s engine: the HTTP side of the daemon (Prometheus metrics, health and
//! readiness, the control API over the pipeline supervisor), how its token is chosen, and
//! the client the workspace uses to steer a running daemon. The command itself (loading the
//! config, starting pipelines, signals and reloads) is `cli::serve`.

pub mod client;
pub mod http;
pub mod token;

/// The control API's root; versioned so a later change can live beside it.
pub const API: &str = "/api/v1";

/// The innermost cause of an HTTP client's error (`connection refused`, a TLS failure): the
/// outer ones repeat the URL, which may be a secret (a Slack webhook's is).
pub(crate) fn root_cause(err: &reqwest::Error) -> String {
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}
