//! Role credentials, fetched before they are asked for and refreshed before they expire.
//!
//! Each cache entry (one per pod by default, one per role with `--session-per-role`) owns
//! a task that assumes the role, publishes the result, sleeps until `refresh_ahead`
//! before expiry and repeats, retrying throttling and outages with backoff and jitter.
//! Requests read the published credentials (a cache hit) or wait for the first fetch.
//! An entry is dropped with the last pod that uses it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::metrics::AgentMetrics;

/// Temporary credentials as STS returned them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the token, not even in debug output.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// How an AssumeRole call failed, as far as the caller needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsFault {
    #[error("STS denied AssumeRole: {0}")]
    AccessDenied(String),
    #[error("STS throttled AssumeRole: {0}")]
    Throttled(String),
    #[error("STS unreachable: {0}")]
    Unreachable(String),
    #[error("STS AssumeRole failed: {0}")]
    Other(String),
}

impl StsFault {
    fn retryable(&self) -> bool {
        matches!(self, StsFault::Throttled(_) | StsFault::Unreachable(_))
    }

    /// 403 when the role refuses us, 503 while throttled, 504 when STS cannot be
    /// reached, 502 for anything else STS answers.
    pub fn status(&self) -> u16 {
        match self {
            StsFault::AccessDenied(_) => 403,
            StsFault::Throttled(_) => 503,
            StsFault::Unreachable(_) => 504,
            StsFault::Other(_) => 502,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            StsFault::AccessDenied(_) => "access_denied",
            StsFault::Throttled(_) => "throttled",
            StsFault::Unreachable(_) => "unreachable",
            StsFault::Other(_) => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssumeRequest {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: Option<i32>,
    /// Session tags (key, value), all transitive: the token path's, as EKS Pod Identity
    /// sets them; empty on the metadata path.
    pub tags: Vec<(String, String)>,
    /// Then assume this role with the first session's credentials and serve its.
    pub then: Option<super::resolve::Chained>,
}

/// The one STS operation the agent needs; a trait so tests can count and fail calls.
pub trait AssumeRole: Send + Sync {
    fn assume_role(&self, req: AssumeRequest) -> BoxFuture<'_, Result<Credentials, StsFault>>;
}

/// STS role session names: 2-64 of `[A-Za-z0-9+=,.@_-]`.
pub fn session_name(parts: &[&str]) -> String {
    let joined = parts.join(".");
    let mut name: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.len() > 64 {
        // Keep the names readable and distinct: a prefix plus a hash of the whole.
        let hash = joined.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        name.truncate(55);
        name.push_str(&format!("-{:08x}", hash as u32));
    }
    while name.len() < 2 {
        name.push('_');
    }
    name
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// STS's session length when the binding does not set one.
    pub session_duration: Duration,
    /// Refresh this long before expiry.
    pub refresh_ahead: Duration,
    /// Never serve credentials with less than this left.
    pub min_remaining: Duration,
    /// Backoff for retryable STS faults: base, cap.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Wait after a non-retryable fault (e.g. the trust policy was not fixed yet).
    pub error_retry: Duration,
    /// AssumeRole calls in flight at once; the others wait their turn before the SDK call,
    /// so a start-up with many pods never waits for the STS rate limiter inside the SDK's
    /// attempt timeout. See [`in_flight_bound`].
    pub max_in_flight: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            session_duration: Duration::from_secs(3600),
            refresh_ahead: Duration::from_secs(15 * 60),
            min_remaining: Duration::from_secs(60),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            error_retry: Duration::from_secs(60),
            max_in_flight: 8,
        }
    }
}

/// The number of AssumeRole calls to let run at once: `requested`, but no more than the
/// STS bucket refills in a quarter of the SDK's attempt timeout. Calls in flight share
/// the bucket, so the last of them waits up to `n / rate` for its token inside its
/// attempt; with this bound that wait stays well inside the timeout whatever
/// `--aws-rate-limits sts=` says. At least one.
pub fn in_flight_bound(requested: usize, sts_per_second: f64, attempt_timeout: Duration) -> usize {
    let refilled = (sts_per_second * attempt_timeout.as_secs_f64() / 4.0).floor();
    let refilled = if refilled.is_finite() && refilled >= 1.0 {
        refilled.min(usize::MAX as f64) as usize
    } else {
        1
    };
    requested.clamp(1, refilled.max(1))
}

impl CacheSettings {
    /// When to refresh credentials fetched at `fetched` that live for `lifetime`: at
    /// `refresh_ahead` before expiry, but never sooner than half the lifetime.
    pub fn refresh_after(&self, lifetime: Duration) -> Duration {
        lifetime
            .saturating_sub(self.refresh_ahead)
            .max(lifetime / 2)
    }
}

/// Full jitter: uniformly between zero and the capped exponential step.
pub fn backoff(settings: &CacheSettings, attempt: u32) -> Duration {
    let step = settings
        .backoff_base
        .saturating_mul(1u32 << attempt.min(16))
        .min(settings.backoff_max);
    let millis = step.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}

#[derive(Debug, Clone)]
enum State {
    Pending,
    Ready {
        creds: Arc<Credentials>,
        last_updated: SystemTime,
        valid_until: Instant,
    },
    Failed(StsFault),
}

struct Entry {
    state: watch::Receiver<State>,
    task: JoinHandle<()>,
    users: HashSet<String>,
}

/// A served credential: the pair the metadata JSON needs.
#[derive(Debug, Clone)]
pub struct Served {
    pub creds: Arc<Credentials>,
    pub last_updated: SystemTime,
    pub cache_hit: bool,
}

pub struct CredentialCache {
    sts: Arc<dyn AssumeRole>,
    /// Turns to call STS; see [`CacheSettings::max_in_flight`].
    turns: Arc<Semaphore>,
    settings: CacheSettings,
    metrics: AgentMetrics,
    entries: Mutex<HashMap<AssumeRequest, Entry>>,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache").finish_non_exhaustive()
    }
}

impl Drop for CredentialCache {
    fn drop(&mut self) {
        for entry in self.lock().values() {
            entry.task.abort();
        }
    }
}

impl CredentialCache {
    pub fn new(sts: Arc<dyn AssumeRole>, settings: CacheSettings, metrics: AgentMetrics) -> Self {
        CredentialCache {
            sts,
            turns: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            settings,
            metrics,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AssumeRequest, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure credentials for `key` are (being) fetched on behalf of pod `user`.
    pub fn ensure(&self, key: &AssumeRequest, user: &str) {
        self.subscribe(key, user);
    }

    fn subscribe(&self, key: &AssumeRequest, user: &str) -> watch::Receiver<State> {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            entry.users.insert(user.to_string());
            return entry.state.clone();
        }
        let (tx, rx) = watch::channel(State::Pending);
        let task = tokio::spawn(keep_fresh(
            self.sts.clone(),
            self.turns.clone(),
            self.settings.clone(),
            self.metrics.clone(),
            key.clone(),
            tx,
        ));
        entries.insert(
            key.clone(),
            Entry {
                state: rx.clone(),
                task,
                users: HashSet::from([user.to_string()]),
            },
        );
        self.metrics.cache_entries.set(entries.len() as i64);
        rx
    }

    /// Pod `user` no longer uses `key`; the entry goes with its last user.
    pub fn release(&self, key: &AssumeRequest, user: &str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            entry.users.remove(user);
            if entry.users.is_empty() {
                entry.task.abort();
                entries.remove(key);
            }
        }
        self.metrics.cache_entries.set(entries.len() as i64);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Credentials for `key`, waiting up to `wait` for a fetch in flight.
    pub async fn get(
        &self,
        key: &AssumeRequest,
        user: &str,
        wait: Duration,
    ) -> Result<Served, GetError> {
        let mut rx = self.subscribe(key, user);
        let min_remaining = self.settings.min_remaining;
        let usable = |s: &State| match s {
            State::Ready { valid_until, .. } => *valid_until > Instant::now() + min_remaining,
            State::Failed(_) => true,
            State::Pending => false,
        };
        let mut cache_hit = true;
        if !usable(&rx.borrow()) {
            cache_hit = false;
            match tokio::time::timeout(wait, rx.wait_for(usable)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(GetError::Evicted),
                Err(_) => return Err(GetError::Timeout),
            }
        }
        let state = rx.borrow().clone();
        match state {
            State::Ready {
                creds,
                last_updated,
                valid_until,
            } if valid_until > Instant::now() + min_remaining => {
                if cache_hit {
                    self.metrics.cache_hits.inc();
                } else {
                    self.metrics.cache_misses.inc();
                }
                Ok(Served {
                    creds,
                    last_updated,
                    cache_hit,
                })
            }
            State::Failed(fault) => Err(GetError::Sts(fault)),
            _ => Err(GetError::Timeout),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    #[error(transparent)]
    Sts(StsFault),
    #[error("credentials are still being fetched")]
    Timeout,
    #[error("the pod's credentials were evicted")]
    Evicted,
}

impl GetError {
    pub fn status(&self) -> u16 {
        match self {
            GetError::Sts(f) => f.status(),
            GetError::Timeout => 504,
            GetError::Evicted => 404,
        }
    }
}

/// The entry's task: fetch, publish, sleep until refresh, repeat; retries with jitter.
async fn keep_fresh(
    sts: Arc<dyn AssumeRole>,
    turns: Arc<Semaphore>,
    settings: CacheSettings,
    metrics: AgentMetrics,
    key: AssumeRequest,
    tx: watch::Sender<State>,
) {
    let mut attempt = 0u32;
    loop {
        // The semaphore is never closed; without a turn the call would still be correct.
        let turn = turns.acquire().await.ok();
        let started = Instant::now();
        let result = sts.assume_role(key.clone()).await;
        drop(turn);
        metrics.sts_call(
            result.as_ref().err().map_or("success", StsFault::label),
            started.elapsed(),
        );
        match result {
            Ok(creds) => {
                attempt = 0;
                let lifetime = creds
                    .expiration
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                let valid_until = started + lifetime;
                tx.send_replace(State::Ready {
                    creds: Arc::new(creds),
                    last_updated: SystemTime::now(),
                    valid_until,
                });
                tokio::time::sleep(settings.refresh_after(lifetime).max(Duration::from_secs(1)))
                    .await;
            }
            Err(fault) => {
                tracing::warn!(role = %key.role_arn, session = %key.session_name, error = %fault, "AssumeRole failed");
                let still_valid = matches!(&*tx.borrow(), State::Ready { valid_until, .. } if *valid_until > Instant::now() + settings.min_remaining);
                if !still_valid {
                    tx.send_replace(State::Failed(fault.clone()));
                }
                let wait = if fault.retryable() {
                    attempt += 1;
                    backoff(&settings, attempt)
                } else {
                    settings.error_retry
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Issues credentials that last `lifetime`, after optionally failing first.
    struct FakeSts {
        calls: AtomicU32,
        fail_first: u32,
        fault: StsFault,
        lifetime: Duration,
    }

    impl FakeSts {
        fn ok(lifetime: Duration) -> Arc<FakeSts> {
            Arc::new(FakeSts {
                calls: AtomicU32::new(0),
                fail_first: 0,
                fault: StsFault::Other(String::new()),
                lifetime,
            })
        }
    }

    impl AssumeRole for FakeSts {
        fn assume_role(&self, req: AssumeRequest) -> BoxFuture<'_, Result<Credentials, StsFault>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                if n < self.fail_first {
                    return Err(self.fault.clone());
                }
                Ok(Credentials {
                    access_key_id: format!("ASIA{n}"),
                    secret_access_key: "secret".into(),
                    session_token: req.session_name,
                    expiration: SystemTime::now() + self.lifetime,
                })
            })
        }
    }

    fn key(role: &str, session: &str) -> AssumeRequest {
        AssumeRequest {
            role_arn: format!("arn:aws:iam::123456789012:role/{role}"),
            session_name: session.into(),
            external_id: None,
            duration_seconds: None,
            tags: Vec::new(),
            then: None,
        }
    }

    fn cache(sts: Arc<FakeSts>) -> CredentialCache {
        CredentialCache::new(sts, CacheSettings::default(), AgentMetrics::new())
    }

    #[test]
    fn session_names_fit_sts() {
        assert_eq!(session_name(&["media", "uploader-0"]), "media.uploader-0");
        let long = session_name(&["n".repeat(63).as_str(), "p".repeat(253).as_str()]);
        assert_eq!(long.len(), 64);
        let other = session_name(&["n".repeat(63).as_str(), "q".repeat(253).as_str()]);
        assert_ne!(long, other);
        assert_eq!(session_name(&["a b"]), "a_b");
        assert_eq!(session_name(&[""]).len(), 2);
    }

    #[test]
    fn refresh_policy() {
        let s = CacheSettings::default();
        assert_eq!(
            s.refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2700)
        );
        assert_eq!(
            s.refresh_after(Duration::from_secs(900)),
            Duration::from_secs(450)
        );
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let s = CacheSettings::default();
        for attempt in 0..40 {
            assert!(backoff(&s, attempt) <= s.backoff_max);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn prefetched_credentials_are_a_hit_and_shared_by_users() {
        let sts = FakeSts::ok(Duration::from_secs(3600));
        let cache = cache(sts.clone());
        let k = key("app", "ns.pod");
        cache.ensure(&k, "pod-uid");
        tokio::task::yield_now().await;
        let served = cache
            .get(&k, "pod-uid", Duration::from_secs(1))
            .await
            .unwrap();
        assert!(served.cache_hit);
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
        cache
            .get(&k, "other", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
        cache.release(&k, "pod-uid");
        assert_eq!(cache.len(), 1);
        cache.release(&k, "other");
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_ahead_of_expiry() {
        let sts = FakeSts::ok(Duration::from_secs(3600));
        let cache = cache(sts.clone());
        let k = key("app", "ns.pod");
        cache.ensure(&k, "u");
        tokio::time::sleep(Duration::from_secs(10 * 3600)).await;
        // One fetch, then one refresh every 45 minutes.
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1 + (10 * 60 / 45));
        let served = cache.get(&k, "u", Duration::from_secs(1)).await.unwrap();
        assert!(served.cache_hit);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_then_served() {
        let sts = Arc::new(FakeSts {
            calls: AtomicU32::new(0),
            fail_first: 3,
            fault: StsFault::Throttled("Rate exceeded".into()),
            lifetime: Duration::from_secs(3600),
        });
        let cache = cache(sts.clone());
        let k = key("app", "ns.pod");
        let served = cache.get(&k, "u", Duration::from_secs(60)).await;
        // The first failure is published; a later request sees the retried success.
        assert_eq!(
            served.unwrap_err(),
            GetError::Sts(StsFault::Throttled("Rate exceeded".into()))
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        let served = cache.get(&k, "u", Duration::from_secs(60)).await.unwrap();
        assert_eq!(served.creds.access_key_id, "ASIA3");
        assert_eq!(sts.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_is_403_and_not_hammered() {
        let sts = Arc::new(FakeSts {
            calls: AtomicU32::new(0),
            fail_first: u32::MAX,
            fault: StsFault::AccessDenied("not trusted".into()),
            lifetime: Duration::from_secs(3600),
        });
        let cache = cache(sts.clone());
        let k = key("app", "ns.pod");
        let err = cache
            .get(&k, "u", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        tokio::time::sleep(Duration::from_secs(600)).await;
        // One attempt a minute, not a tight loop.
        assert!(sts.calls.load(Ordering::SeqCst) <= 11);
    }

    /// The figure in the README: 100 pods over 10 roles for one hour of paused time.
    #[tokio::test(start_paused = true)]
    async fn sts_calls_per_hour_for_100_pods_on_10_roles() {
        for per_role in [false, true] {
            let sts = FakeSts::ok(Duration::from_secs(3600));
            let cache = cache(sts.clone());
            for pod in 0..100 {
                let role = format!("role-{}", pod % 10);
                let session = if per_role {
                    "node".to_string()
                } else {
                    format!("ns.pod-{pod}")
                };
                cache.ensure(&key(&role, &session), &format!("uid-{pod}"));
            }
            // Warm up one full refresh cycle, then count one steady-state hour.
            tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
            let before = sts.calls.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(45 * 60 * 4)).await;
            let per_hour = f64::from(sts.calls.load(Ordering::SeqCst) - before) / 3.0;
            let expected = if per_role {
                10.0 * 60.0 / 45.0
            } else {
                100.0 * 60.0 / 45.0
            };
            assert!(
                (per_hour - expected).abs() < 0.5,
                "per_role={per_role}: {per_hour} vs {expected}"
            );
            println!("STS calls per hour (per_role={per_role}): {per_hour:.1}");
        }
    }

    /// Takes `latency` per call and records how many calls ran at once.
    struct SlowSts {
        latency: Duration,
        now: AtomicU32,
        max: AtomicU32,
        calls: AtomicU32,
    }

    impl AssumeRole for SlowSts {
        fn assume_role(&self, req: AssumeRequest) -> BoxFuture<'_, Result<Credentials, StsFault>> {
            Box::pin(async move {
                let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.max.fetch_max(now, Ordering::SeqCst);
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.latency).await;
                self.now.fetch_sub(1, Ordering::SeqCst);
                Ok(Credentials {
                    access_key_id: "ASIA".into(),
                    secret_access_key: "secret".into(),
                    session_token: req.session_name,
                    expiration: SystemTime::now() + Duration::from_secs(3600),
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_with_a_thousand_pods_keeps_a_few_calls_in_flight() {
        let sts = Arc::new(SlowSts {
            latency: Duration::from_millis(50),
            now: AtomicU32::new(0),
            max: AtomicU32::new(0),
            calls: AtomicU32::new(0),
        });
        let cache =
            CredentialCache::new(sts.clone(), CacheSettings::default(), AgentMetrics::new());
        let keys: Vec<_> = (0..1000)
            .map(|n| key("app", &format!("ns.pod-{n}")))
            .collect();
        for (n, k) in keys.iter().enumerate() {
            cache.ensure(k, &format!("uid-{n}"));
        }
        // 1,000 calls of 50 ms, 8 at a time: 6.25 s.
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(sts.max.load(Ordering::SeqCst), 8);
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1000);
        for (n, k) in keys.iter().enumerate() {
            let served = cache
                .get(k, &format!("uid-{n}"), Duration::ZERO)
                .await
                .expect("prefetched");
            assert!(served.cache_hit);
        }
    }

    #[test]
    fn calls_in_flight_fit_the_sts_bucket() {
        let timeout = Duration::from_secs(20);
        // The defaults (50/s, 20 s attempts) leave the requested 8 alone.
        assert_eq!(in_flight_bound(8, 50.0, timeout), 8);
        // sts=1:1 refills 5 tokens in 5 s: no more than 5 wait in the client.
        assert_eq!(in_flight_bound(8, 1.0, timeout), 5);
        // Slower than one token per quarter-timeout, or nonsense: one at a time.
        assert_eq!(in_flight_bound(8, 0.1, timeout), 1);
        assert_eq!(in_flight_bound(8, f64::NAN, timeout), 1);
        assert_eq!(in_flight_bound(0, 50.0, timeout), 1);
    }
}
