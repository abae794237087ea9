//! How Aurora learns it should stop: Ctrl-C, SIGTERM (service managers, `kill`) or SIGHUP
//! (the SSH session went away). Shared by the headless commands and the workspace.

/// Resolves when the user or the system asks Aurora to stop: Ctrl-C, SIGTERM (service
/// managers, `kill`) or SIGHUP (the SSH session went away). Returns the signal's name.
pub async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}
