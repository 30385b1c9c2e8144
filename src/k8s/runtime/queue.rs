//! A keyed work queue: every key is reconciled by at most one worker at a time, a key added
//! many times before it runs runs once, and what happens after a reconcile depends on why it
//! ended (the house rule "requeue by cause").
//!
//! - success with [`Next::AwaitChange`]: nothing until a change (or the resync) adds the key;
//! - success with [`Next::After`]: again after that explicit delay;
//! - [`Cause::InvalidSpec`]: nothing until a change: retrying the same input gives the same answer;
//! - [`Cause::NotReady`]: again after the short delay the error names;
//! - [`Cause::Transient`]: exponential backoff with jitter; a change that arrives meanwhile does
//!   not cut the backoff short, so a throttled API is not hammered by a busy watch.
//!
//! Time is tokio's, so tests drive it with a paused clock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What a successful reconcile asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until something changes (or the periodic resync).
    AwaitChange,
    /// Look again after this delay (a certificate not issued yet, targets still draining).
    After(Duration),
}

/// Why a reconcile failed, which decides when the key runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The object's spec cannot be served as it is; only a change helps.
    InvalidSpec,
    /// A dependency is not there yet; look again after this short, explicit delay.
    NotReady(Duration),
    /// An API call failed in a way that may pass (throttling, 5xx, timeouts, conflicts).
    Transient,
}

/// Exponential backoff for transient failures: `initial`, doubling, capped at `max`, plus up
/// to a quarter of the delay as jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `failures + 1`, without jitter.
    pub fn base(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay with jitter in `[base, base * 1.25]`.
    pub fn delay(&self, failures: u32) -> Duration {
        let base = self.base(failures);
        let spread = base.as_millis() as u64 / 4;
        base + Duration::from_millis(if spread == 0 {
            0
        } else {
            rand::random_range(0..=spread)
        })
    }
}

#[derive(Default)]
struct State {
    /// When each waiting key is due.
    due: HashMap<String, Instant>,
    /// The same, ordered by time.
    order: BTreeSet<(Instant, String)>,
    /// Keys being reconciled, with the earliest time they were asked for again meanwhile.
    running: HashMap<String, Option<Instant>>,
    /// Consecutive transient failures per key.
    failures: HashMap<String, u32>,
    closed: bool,
}

impl State {
    /// Schedules `key` at `at`, or earlier if it already waits for an earlier time.
    fn schedule(&mut self, key: String, at: Instant) {
        if let Some(rerun) = self.running.get_mut(&key) {
            *rerun = Some(rerun.map_or(at, |r| r.min(at)));
            return;
        }
        match self.due.get(&key) {
            Some(existing) if *existing <= at => {}
            Some(existing) => {
                self.order.remove(&(*existing, key.clone()));
                self.order.insert((at, key.clone()));
                self.due.insert(key, at);
            }
            None => {
                self.order.insert((at, key.clone()));
                self.due.insert(key, at);
            }
        }
    }

    /// Replaces whatever time `key` waits for with `at`.
    fn reschedule(&mut self, key: String, at: Instant) {
        if let Some(existing) = self.due.remove(&key) {
            self.order.remove(&(existing, key.clone()));
        }
        self.schedule(key, at);
    }
}

/// The queue shared by a controller's workers, its watches and its resync.
pub struct WorkQueue {
    state: Mutex<State>,
    notify: Notify,
    backoff: Backoff,
}

impl WorkQueue {
    pub fn new(backoff: Backoff) -> Self {
        WorkQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            backoff,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something about `key` changed: reconcile it now, unless it is backing off from a
    /// transient failure (then it runs when the backoff ends).
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        {
            let mut s = self.lock();
            if s.failures.get(&key).is_some_and(|n| *n > 0) && s.due.contains_key(&key) {
                return;
            }
            s.schedule(key, Instant::now());
        }
        self.notify.notify_waiters();
    }

    /// Reconcile `key` after `delay`, or earlier if it is already due earlier; like
    /// [`WorkQueue::add`], a key backing off from a transient failure keeps its backoff.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        let at = Instant::now() + delay;
        {
            let mut s = self.lock();
            if s.failures.get(&key).is_some_and(|n| *n > 0) && s.due.contains_key(&key) {
                return;
            }
            s.schedule(key, at);
        }
        self.notify.notify_waiters();
    }

    /// Waits for the next due key and marks it running; `None` once the queue is closed.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut s = self.lock();
                if s.closed {
                    return None;
                }
                match s.order.first().cloned() {
                    Some((at, key)) if at <= Instant::now() => {
                        s.order.remove(&(at, key.clone()));
                        s.due.remove(&key);
                        s.running.insert(key.clone(), None);
                        return Some(key);
                    }
                    Some((at, _)) => Some(at),
                    None => None,
                }
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Records how the reconcile of `key` ended and schedules its next run. Returns the delay
    /// chosen, if any (for logs).
    pub fn done(&self, key: &str, outcome: Result<Next, Cause>) -> Option<Duration> {
        let now = Instant::now();
        let delay = {
            let mut s = self.lock();
            let rerun = s.running.remove(key).flatten();
            let (after, respect_backoff) = match outcome {
                Ok(next) => {
                    s.failures.remove(key);
                    (
                        match next {
                            Next::AwaitChange => None,
                            Next::After(d) => Some(d),
                        },
                        false,
                    )
                }
                Err(Cause::InvalidSpec) => {
                    s.failures.remove(key);
                    (None, false)
                }
                Err(Cause::NotReady(d)) => {
                    s.failures.remove(key);
                    (Some(d), false)
                }
                Err(Cause::Transient) => {
                    let n = s.failures.entry(key.to_owned()).or_insert(0);
                    *n = n.saturating_add(1);
                    let n = *n;
                    (Some(self.backoff.delay(n)), true)
                }
            };
            let at = match (after.map(|d| now + d), rerun) {
                (Some(a), _) if respect_backoff => Some(a),
                (Some(a), Some(r)) => Some(a.min(r)),
                (a, r) => a.or(r),
            };
            if let Some(at) = at {
                s.reschedule(key.to_owned(), at);
            }
            at.map(|at| at.saturating_duration_since(now))
        };
        self.notify.notify_waiters();
        delay
    }

    /// Forgets a key's failures and pending run (the object is gone).
    pub fn forget(&self, key: &str) {
        let mut s = self.lock();
        s.failures.remove(key);
        if let Some(at) = s.due.remove(key) {
            s.order.remove(&(at, key.to_owned()));
        }
    }

    /// Wakes every worker with `None`: no key is handed out after this.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Keys waiting (not running).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().due.len()
    }

    /// Consecutive transient failures of `key`.
    #[cfg(test)]
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn queue() -> WorkQueue {
        WorkQueue::new(Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
        })
    }

    /// The next key due within `within`, or `None`.
    async fn next_within(q: &WorkQueue, within: Duration) -> Option<String> {
        tokio::time::timeout(within, q.next()).await.ok().flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_many_times_runs_once() {
        let q = queue();
        for _ in 0..5 {
            q.add("a");
        }
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.next().await.unwrap();
        let second = q.next().await.unwrap();
        let mut got = [first, second];
        got.sort();
        assert_eq!(got, ["a".to_owned(), "b".to_owned()]);
        assert_eq!(next_within(&q, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_key_is_not_handed_out_twice_and_runs_again_after_a_change() {
        let q = queue();
        q.add("a");
        assert_eq!(q.next().await.as_deref(), Some("a"));
        q.add("a");
        assert_eq!(next_within(&q, Duration::from_secs(10)).await, None);
        assert_eq!(q.done("a", Ok(Next::AwaitChange)), Some(Duration::ZERO));
        assert_eq!(q.next().await.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_spec_waits_for_a_change() {
        let q = queue();
        q.add("a");
        q.next().await.unwrap();
        assert_eq!(q.done("a", Err(Cause::InvalidSpec)), None);
        assert_eq!(next_within(&q, Duration::from_secs(3600)).await, None);
        q.add("a");
        assert_eq!(q.next().await.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn not_ready_requeues_after_its_delay() {
        let q = queue();
        q.add("a");
        q.next().await.unwrap();
        let started = Instant::now();
        q.done("a", Err(Cause::NotReady(Duration::from_secs(5))));
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_back_off_and_a_change_does_not_cut_the_backoff() {
        let q = queue();
        q.add("a");
        q.next().await.unwrap();
        let mut delays = Vec::new();
        for _ in 0..5 {
            let d = q.done("a", Err(Cause::Transient)).unwrap();
            delays.push(d);
            // A watch event (or a debounced one, or the resync) during the backoff: still waits.
            q.add("a");
            q.add_after("a", Duration::from_millis(10));
            let started = Instant::now();
            assert_eq!(q.next().await.as_deref(), Some("a"));
            assert_eq!(started.elapsed(), d);
        }
        let bases: Vec<u64> = [1, 2, 4, 8, 8].to_vec();
        for (d, base) in delays.iter().zip(bases) {
            assert!(
                *d >= Duration::from_secs(base) && *d <= Duration::from_millis(base * 1250),
                "{d:?} not within [{base}s, {base}s * 1.25]"
            );
        }
        assert_eq!(q.failures("a"), 5);
        q.done("a", Ok(Next::AwaitChange));
        assert_eq!(q.failures("a"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn success_with_a_delay_requeues_and_an_earlier_change_wins() {
        let q = queue();
        q.add("a");
        q.next().await.unwrap();
        q.done("a", Ok(Next::After(Duration::from_secs(30))));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        q.add("a");
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_come_out_in_due_order() {
        let q = queue();
        q.add_after("late", Duration::from_secs(3));
        q.add_after("early", Duration::from_secs(1));
        q.add_after("late", Duration::from_secs(10));
        assert_eq!(q.next().await.as_deref(), Some("early"));
        assert_eq!(q.next().await.as_deref(), Some("late"));
    }

    #[tokio::test(start_paused = true)]
    async fn close_releases_every_waiting_worker() {
        let q = std::sync::Arc::new(queue());
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.next().await })
            })
            .collect();
        tokio::task::yield_now().await;
        q.close();
        for w in workers {
            assert_eq!(w.await.unwrap(), None);
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let b = Backoff::default();
        assert_eq!(b.base(1), Duration::from_millis(500));
        assert_eq!(b.base(2), Duration::from_secs(1));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(60));
    }

    proptest! {
        /// Whatever mix of adds arrives, each key is handed out once per round and no key is
        /// handed out while it runs.
        #[test]
        fn every_added_key_runs_exactly_once(keys in proptest::collection::vec(0u8..8, 1..40)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async {
                let q = queue();
                for k in &keys {
                    q.add(k.to_string());
                }
                let distinct: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
                let mut seen = BTreeSet::new();
                while let Some(k) = next_within(&q, Duration::from_secs(1)).await {
                    prop_assert!(seen.insert(k.clone()), "{k} handed out twice");
                }
                prop_assert_eq!(seen, distinct);
                Ok(())
            })?;
        }
    }
}
