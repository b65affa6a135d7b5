//! Termination signals, shared by both binaries.

use std::future::Future;

use tracing::warn;

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called (not when
/// the future is first polled), so a signal that arrives during start-up is not lost.
/// Must be called inside a Tokio runtime.
pub fn termination_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let sigterm = signal(SignalKind::terminate());
    let sigint = signal(SignalKind::interrupt());
    async move {
        match (sigterm, sigint) {
            (Ok(mut sigterm), Ok(mut sigint)) => {
                tokio::select! {
                    _ = sigterm.recv() => {}
                    _ = sigint.recv() => {}
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                warn!(%error, "cannot install signal handlers; only the process's end stops it");
                std::future::pending::<()>().await;
            }
        }
    }
}
