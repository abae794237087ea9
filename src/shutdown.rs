//! How Aurora learns it should stop: Ctrl-C, SIGTERM (service managers, `kill`) or SIGHUP
//! (the SSH session went away). Shared by the headless commands and the workspace.

use std::future::Future;

/// Resolves when the user or the system asks Aurora to stop: Ctrl-C, SIGTERM (service
/// managers, `kill`) or SIGHUP (the SSH session went away). Returns the signal's name.
pub async fn interrupted() -> &'static str {
    wait(None::<fn() -> std::future::Ready<()>>).await
}

/// For a daemon: resolves on Ctrl-C or SIGTERM; each SIGHUP runs `reload` instead (the
/// signal a service manager's `reload` sends). Returns the stopping signal's name.
pub async fn stopped_reloading_on_hangup<F: Future<Output = ()>>(
    reload: impl FnMut() -> F,
) -> &'static str {
    wait(Some(reload)).await
}

async fn wait<F: Future<Output = ()>>(mut reload: Option<impl FnMut() -> F>) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return "SIGINT",
            _ = term.recv() => return "SIGTERM",
            _ = hup.recv() => match reload.as_mut() {
                Some(reload) => reload().await,
                None => return "SIGHUP",
            },
        }
    }
}
