//! The controller runtime every reconciler runs on.
//!
//! A controller is a [`Reconciler`]: a `reconcile(key)` that reads as its steps (fetch →
//! desired → observe → plan → apply → status) and a list of the keys that exist. The runtime
//! gives it:
//! - a [`WorkQueue`]: deduplicated keys, at most one reconcile per key at a time, and the
//!   next run chosen by how the last one ended ([`Next`] on success, [`Cause`] on error);
//! - watches through [`watch::reflect`], whose changes the controller maps to keys;
//! - a periodic resync with jitter, spread over a quarter of the interval, so drift made
//!   outside Kubernetes is found without one burst of calls;
//! - one span, one duration sample and (on failure) one error-counter sample per reconcile;
//! - supervision ([`Supervisor`]): a reconciler task that ends or panics takes the process
//!   down, so Kubernetes restarts it and another replica takes the Lease.

mod queue;
mod supervise;
pub mod watch;

pub use queue::{Backoff, Cause, Next, WorkQueue};
pub use supervise::{Died, Supervisor};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as signal;
use tracing::{Instrument, info, info_span, warn};

use crate::telemetry::Metrics;

/// Set to a controller's name, makes that controller's first reconcile panic. Only the
/// supervision test sets it: it shows a dead reconciler taking the process down.
pub const FAULT_PANIC_ENV: &str = "CAUSEWAY_FAULT_PANIC_RECONCILER";

/// What every step error of a reconcile tells the runtime.
pub trait StepError: std::error::Error {
    /// When to try again.
    fn cause(&self) -> Cause;
    /// The `error` label of `causeway_reconcile_errors_total`.
    fn label(&self) -> &'static str;
}

/// One controller on the runtime.
pub trait Reconciler: Send + Sync + 'static {
    type Error: StepError + Send + Sync + 'static;

    /// The controller's name: metric label, span field and `--controllers` entry.
    const NAME: &'static str;

    /// Brings the object (or group) named `key` to its desired state.
    fn reconcile(&self, key: &str) -> impl Future<Output = Result<Next, Self::Error>> + Send;

    /// Every key that exists now: queued at start and at each resync.
    fn keys(&self) -> Vec<String>;
}

/// How a controller runs on the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    /// Keys reconciled at the same time (never the same key twice).
    pub workers: usize,
    /// How often every key is queued again (plus or minus 10 %).
    pub resync: Duration,
}

/// `interval` moved by up to 10 % either way, so replicas and keys do not resync in step.
pub fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_millis() as u64 / 10;
    if spread == 0 {
        return interval;
    }
    let offset = rand::random_range(0..=2 * spread);
    (interval + Duration::from_millis(offset)).saturating_sub(Duration::from_millis(spread))
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Runs `r` until `stop` flips: queues every key, then `settings.workers` workers take keys
/// from `queue` (which the controller's watches fill) while the resync re-queues every key.
/// Returns once the workers have finished the reconciles in flight.
pub async fn run<R: Reconciler>(
    r: Arc<R>,
    queue: Arc<WorkQueue>,
    settings: RunSettings,
    metrics: Arc<Metrics>,
    mut stop: signal::Receiver<bool>,
) {
    let fault = std::env::var(FAULT_PANIC_ENV)
        .ok()
        .is_some_and(|name| name == R::NAME);
    for key in r.keys() {
        queue.add(key);
    }
    info!(controller = R::NAME, workers = settings.workers, resync = ?settings.resync, "reconciler started");
    let workers = futures::future::join_all((0..settings.workers.max(1)).map(|_| {
        let (r, queue, metrics) = (r.clone(), queue.clone(), metrics.clone());
        async move {
            while let Some(key) = queue.next().await {
                if fault {
                    panic!("{FAULT_PANIC_ENV}={}: the reconciler panics", R::NAME);
                }
                let span = info_span!("reconcile", controller = R::NAME, object = %key);
                let timer = metrics.reconcile_started(R::NAME);
                let result = r.reconcile(&key).instrument(span.clone()).await;
                timer.finish();
                match result {
                    Ok(next) => {
                        queue.done(&key, Ok(next));
                    }
                    Err(e) => {
                        metrics.reconcile_error(R::NAME, e.label());
                        let retry_in = queue.done(&key, Err(e.cause()));
                        span.in_scope(|| {
                            warn!(error = %error_chain(&e), cause = ?e.cause(), ?retry_in, "reconcile failed")
                        });
                    }
                }
            }
        }
    }));
    let resync = {
        let (r, queue) = (r.clone(), queue.clone());
        async move {
            // Keys are spread over a quarter of the interval, so a resync of many objects is
            // not one burst of AWS calls.
            let spread = settings.resync / 4;
            loop {
                tokio::time::sleep(jittered(settings.resync)).await;
                for key in r.keys() {
                    let delay =
                        Duration::from_millis(rand::random_range(0..=spread.as_millis() as u64));
                    queue.add_after(key, delay);
                }
            }
        }
    };
    let closer = {
        let queue = queue.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
            queue.close();
        }
    };
    tokio::select! {
        _ = async { tokio::join!(workers, closer) } => {}
        _ = resync => {}
    }
    info!(controller = R::NAME, "reconciler stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    impl StepError for Boom {
        fn cause(&self) -> Cause {
            Cause::Transient
        }
        fn label(&self) -> &'static str {
            "boom"
        }
    }

    struct Counting {
        seen: Mutex<Vec<String>>,
        fail: bool,
    }

    impl Reconciler for Counting {
        type Error = Boom;
        const NAME: &'static str = "counting";

        async fn reconcile(&self, key: &str) -> Result<Next, Boom> {
            self.seen.lock().unwrap().push(key.to_owned());
            if self.fail {
                Err(Boom)
            } else {
                Ok(Next::AwaitChange)
            }
        }

        fn keys(&self) -> Vec<String> {
            vec!["a".into(), "b".into()]
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_run_at_start_and_at_every_resync_and_failures_back_off() {
        for fail in [false, true] {
            let r = Arc::new(Counting {
                seen: Mutex::new(Vec::new()),
                fail,
            });
            let queue = Arc::new(WorkQueue::new(Backoff {
                initial: Duration::from_secs(3600),
                max: Duration::from_secs(3600),
            }));
            let metrics = Metrics::new();
            let (stop_tx, stop_rx) = signal::channel(false);
            let task = tokio::spawn(run(
                r.clone(),
                queue,
                RunSettings {
                    workers: 2,
                    resync: Duration::from_secs(100),
                },
                metrics.clone(),
                stop_rx,
            ));
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(r.seen.lock().unwrap().len(), 2);
            // One resync (at most 110 s, plus at most 25 s of spread).
            tokio::time::sleep(Duration::from_secs(140)).await;
            let mut seen = r.seen.lock().unwrap().clone();
            seen.sort();
            if fail {
                // The resync does not cut a transient failure's backoff (an hour here) short.
                assert_eq!(seen, ["a", "b"]);
            } else {
                assert_eq!(seen, ["a", "a", "b", "b"]);
            }
            stop_tx.send(true).unwrap();
            task.await.unwrap();
            let text = metrics.encode();
            assert_eq!(
                text.contains(
                    "causeway_reconcile_errors_total{controller=\"counting\",error=\"boom\"} 2"
                ),
                fail,
                "{text}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_eq!(jittered(Duration::from_millis(5)), Duration::from_millis(5));
    }
}
