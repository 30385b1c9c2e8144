//! Supervision of the reconciler tasks: they run until shutdown, so one that ends early or
//! panics is a dead controller. The process must then stop being Ready and exit non-zero,
//! so that Kubernetes restarts it and another replica takes the Lease, instead of leading
//! with a reconciler missing.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tracing::{error, warn};

/// A reconciler task that ended before shutdown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {name} reconciler {how}")]
pub struct Died {
    pub name: &'static str,
    /// "panicked: …" or "returned before shutdown".
    pub how: String,
}

/// The reconciler tasks of one leadership term.
#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<()>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `task` under the name `name`.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut n: Vec<_> = self.names.values().copied().collect();
        n.sort();
        n
    }

    /// Waits until `stop` flips (then gives the tasks `grace` to finish) or until a task
    /// ends, which is an error: the first task to end or panic is returned and the others
    /// are aborted.
    pub async fn supervise(
        mut self,
        mut stop: watch::Receiver<bool>,
        grace: Duration,
    ) -> Result<(), Died> {
        if self.tasks.is_empty() {
            let _ = stop.wait_for(|s| *s).await;
            return Ok(());
        }
        // Stop first: a reconciler that ends because stop flipped is a shutdown, not a death.
        let stopping = stop.clone();
        let died = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            ended = self.tasks.join_next_with_id() => match ended {
                Some(Ok(_)) if *stopping.borrow() => None,
                other => other.map(|r| self.describe(r)),
            },
        };
        match died {
            Some(died) => {
                error!(reconciler = died.name, how = %died.how, "reconciler died; stopping the process");
                self.tasks.abort_all();
                while self.tasks.join_next().await.is_some() {}
                Err(died)
            }
            None => {
                let drained = tokio::time::timeout(grace, async {
                    while let Some(r) = self.tasks.join_next_with_id().await {
                        if let Err(e) = &r
                            && e.is_panic()
                        {
                            let d = self.describe(r);
                            warn!(reconciler = d.name, how = %d.how, "reconciler panicked during shutdown");
                        }
                    }
                })
                .await;
                if drained.is_err() {
                    warn!(grace = ?grace, "reconcilers did not stop in time; aborting them");
                    self.tasks.abort_all();
                }
                Ok(())
            }
        }
    }

    fn describe(&self, r: Result<(Id, ()), tokio::task::JoinError>) -> Died {
        match r {
            Ok((id, ())) => Died {
                name: self.names.get(&id).copied().unwrap_or("unknown"),
                how: "returned before shutdown".into(),
            },
            Err(e) => {
                let name = self.names.get(&e.id()).copied().unwrap_or("unknown");
                let how = if e.is_panic() {
                    let payload = e.into_panic();
                    let msg = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "(no message)".into());
                    format!("panicked: {msg}")
                } else {
                    "was cancelled".into()
                };
                Died { name, how }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_by_name_and_the_others_are_stopped() {
        let (_stop_tx, stop_rx) = watch::channel(false);
        let mut s = Supervisor::new();
        s.spawn("steady", std::future::pending());
        s.spawn("fragile", async {
            tokio::task::yield_now().await;
            panic!("resync interval must be non-zero");
        });
        let died = s
            .supervise(stop_rx, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(died.name, "fragile");
        assert!(
            died.how.contains("panicked: resync interval"),
            "{}",
            died.how
        );
    }

    #[tokio::test]
    async fn a_task_that_returns_early_is_an_error_too() {
        let (_stop_tx, stop_rx) = watch::channel(false);
        let mut s = Supervisor::new();
        s.spawn("steady", std::future::pending());
        s.spawn("quitter", async {});
        let died = s
            .supervise(stop_rx, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(
            died.to_string(),
            "the quitter reconciler returned before shutdown"
        );
    }

    #[tokio::test]
    async fn shutdown_waits_for_the_tasks() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut s = Supervisor::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut rx = stop_rx.clone();
        s.spawn("polite", async move {
            let _ = rx.wait_for(|s| *s).await;
            let _ = done_tx.send(());
        });
        stop_tx.send(true).unwrap();
        assert_eq!(s.supervise(stop_rx, Duration::from_secs(5)).await, Ok(()));
        assert!(done_rx.await.is_ok());
    }
}
