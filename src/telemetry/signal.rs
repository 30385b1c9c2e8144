use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves on the first SIGTERM or SIGINT.
///
/// Inside a Tokio runtime the handlers are installed right away, so a signal that arrives
/// before the future is first polled is not lost (the default SIGTERM action would kill the
/// process without a chance to release the leader lease). Outside a runtime they are
/// installed on first poll.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let early = tokio::runtime::Handle::try_current()
        .ok()
        .map(|_| install());
    async move {
        let (term, int) = match early {
            Some(handlers) => handlers,
            None => install(),
        };
        wait(term, int).await;
    }
}

fn install() -> (Option<Signal>, Option<Signal>) {
    let term = signal(SignalKind::terminate())
        .inspect_err(|err| tracing::error!(error = %err, "cannot install the SIGTERM handler"))
        .ok();
    let int = signal(SignalKind::interrupt())
        .inspect_err(|err| tracing::error!(error = %err, "cannot install the SIGINT handler"))
        .ok();
    (term, int)
}

async fn wait(term: Option<Signal>, int: Option<Signal>) {
    async fn recv(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            // Without a handler this signal can never be observed; the other one still can.
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        () = recv(term) => tracing::info!("received SIGTERM, shutting down"),
        () = recv(int) => tracing::info!("received SIGINT, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn resolves_on_sigterm() {
        let shutdown = shutdown_signal();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .expect("shutdown_signal did not resolve on SIGTERM");
    }
}
