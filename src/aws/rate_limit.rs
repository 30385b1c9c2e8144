//! Client-side rate limiting per AWS API family.
//!
//! AWS throttles per account and per API family, and every cluster in an account shares
//! the same quota (Route 53 allows 5 requests/s for the whole account). Limiting before
//! the request leaves the process keeps us under the quota instead of discovering it
//! through throttling errors and retry storms.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use tokio::time::Instant;

/// The AWS API families we call, each with its own quota, limiter and metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsService {
    Elbv2,
    Ec2,
    Route53,
    Iam,
    Sts,
    Acm,
    Wafv2,
    Shield,
    /// The Resource Groups Tagging API: finding the peer's resources by their tags.
    Tagging,
}

impl AwsService {
    pub const ALL: [AwsService; 9] = [
        AwsService::Elbv2,
        AwsService::Ec2,
        AwsService::Route53,
        AwsService::Iam,
        AwsService::Sts,
        AwsService::Acm,
        AwsService::Wafv2,
        AwsService::Shield,
        AwsService::Tagging,
    ];

    /// The `service` label of `causeway_aws_api_calls_total` and the key in `--aws-rate-limits`.
    pub fn label(self) -> &'static str {
        match self {
            AwsService::Elbv2 => "elbv2",
            AwsService::Ec2 => "ec2",
            AwsService::Route53 => "route53",
            AwsService::Iam => "iam",
            AwsService::Sts => "sts",
            AwsService::Acm => "acm",
            AwsService::Wafv2 => "wafv2",
            AwsService::Shield => "shield",
            AwsService::Tagging => "tagging",
        }
    }
}

impl fmt::Display for AwsService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A steady rate with a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: u32,
}

impl Limit {
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Limit { per_second, burst }
    }
}

/// One [`Limit`] per API family.
///
/// The defaults stay below the documented AWS quotas so that a second tool in the same
/// account still has headroom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    pub elbv2: Limit,
    pub ec2: Limit,
    pub route53: Limit,
    pub iam: Limit,
    pub sts: Limit,
    pub acm: Limit,
    pub wafv2: Limit,
    pub shield: Limit,
    pub tagging: Limit,
    /// ELBv2's mutating calls (everything but `Describe*`), in a bucket of their own as AWS
    /// keeps them: a cold create's reads never hold back its creates and registrations, and
    /// the reconcilers' reads never hold back a RegisterTargets. Key `elbv2-writes`.
    pub elbv2_writes: Limit,
}

/// The `--aws-rate-limits` key of [`RateLimits::elbv2_writes`].
pub const ELBV2_WRITES: &str = "elbv2-writes";

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            // ELBv2 reads: AWS refills its Describe bucket of 40 at 10/s.
            elbv2: Limit::new(10.0, 40),
            // ELBv2 writes, apart from the reads as AWS keeps its mutating buckets apart.
            elbv2_writes: Limit::new(10.0, 40),
            ec2: Limit::new(20.0, 40),
            // The Route 53 quota is 5/s for the whole account.
            route53: Limit::new(4.0, 4),
            iam: Limit::new(10.0, 10),
            sts: Limit::new(50.0, 50),
            acm: Limit::new(10.0, 10),
            wafv2: Limit::new(5.0, 5),
            shield: Limit::new(2.0, 2),
            tagging: Limit::new(5.0, 5),
        }
    }
}

impl RateLimits {
    pub fn get(&self, service: AwsService) -> Limit {
        match service {
            AwsService::Elbv2 => self.elbv2,
            AwsService::Ec2 => self.ec2,
            AwsService::Route53 => self.route53,
            AwsService::Iam => self.iam,
            AwsService::Sts => self.sts,
            AwsService::Acm => self.acm,
            AwsService::Wafv2 => self.wafv2,
            AwsService::Shield => self.shield,
            AwsService::Tagging => self.tagging,
        }
    }

    pub fn set(&mut self, service: AwsService, limit: Limit) {
        let slot = match service {
            AwsService::Elbv2 => &mut self.elbv2,
            AwsService::Ec2 => &mut self.ec2,
            AwsService::Route53 => &mut self.route53,
            AwsService::Iam => &mut self.iam,
            AwsService::Sts => &mut self.sts,
            AwsService::Acm => &mut self.acm,
            AwsService::Wafv2 => &mut self.wafv2,
            AwsService::Shield => &mut self.shield,
            AwsService::Tagging => &mut self.tagging,
        };
        *slot = limit;
    }

    pub fn validate(&self) -> Result<(), RateLimitError> {
        let all = AwsService::ALL
            .into_iter()
            .map(|s| (s.label(), self.get(s)))
            .chain([(ELBV2_WRITES, self.elbv2_writes)]);
        for (service, limit) in all {
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
                return Err(RateLimitError::Rate {
                    service,
                    value: limit.per_second.to_string(),
                });
            }
            if limit.burst == 0 {
                return Err(RateLimitError::Burst {
                    service,
                    value: limit.burst.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit entry {0:?} is not of the form service=rate[:burst]")]
    Syntax(String),
    #[error(
        "unknown AWS service {0:?} in rate limits (known: elbv2, elbv2-writes, ec2, route53, iam, sts, acm, wafv2, shield, tagging)"
    )]
    UnknownService(String),
    #[error("rate limit for {0} is given twice")]
    Duplicate(&'static str),
    #[error("rate for {service} must be a positive number of requests per second, got {value:?}")]
    Rate {
        service: &'static str,
        value: String,
    },
    #[error("burst for {service} must be a whole number of at least 1, got {value:?}")]
    Burst {
        service: &'static str,
        value: String,
    },
}

impl FromStr for AwsService {
    type Err = RateLimitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AwsService::ALL
            .into_iter()
            .find(|service| service.label() == s)
            .ok_or_else(|| RateLimitError::UnknownService(s.to_owned()))
    }
}

/// Parses `elbv2=10:20,route53=4` on top of the defaults; services not named keep their
/// default. A missing burst means a burst of one second's worth of requests.
impl FromStr for RateLimits {
    type Err = RateLimitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut limits = RateLimits::default();
        let mut seen = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (service, value) = entry
                .split_once('=')
                .ok_or_else(|| RateLimitError::Syntax(entry.to_owned()))?;
            let service = match service.trim() {
                ELBV2_WRITES => None,
                other => Some(other.parse::<AwsService>()?),
            };
            let label = service.map_or(ELBV2_WRITES, AwsService::label);
            if seen.contains(&label) {
                return Err(RateLimitError::Duplicate(label));
            }
            seen.push(label);

            let (rate, burst) = match value.split_once(':') {
                Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
                None => (value.trim(), None),
            };
            let per_second = rate
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| RateLimitError::Rate {
                    service: label,
                    value: rate.to_owned(),
                })?;
            let burst = match burst {
                Some(burst) => burst
                    .parse::<u32>()
                    .ok()
                    .filter(|b| *b >= 1)
                    .ok_or_else(|| RateLimitError::Burst {
                        service: label,
                        value: burst.to_owned(),
                    })?,
                // Saturating float-to-int conversion is what we want for absurd rates.
                None => (per_second.ceil() as u32).max(1),
            };
            let limit = Limit { per_second, burst };
            match service {
                Some(service) => limits.set(service, limit),
                None => limits.elbv2_writes = limit,
            }
        }
        Ok(limits)
    }
}

impl fmt::Display for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, service) in AwsService::ALL.into_iter().enumerate() {
            let limit = self.get(service);
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{service}={}:{}", limit.per_second, limit.burst)?;
        }
        let w = self.elbv2_writes;
        write!(f, ",{ELBV2_WRITES}={}:{}", w.per_second, w.burst)
    }
}

/// A token bucket that hands out reservations in arrival order.
///
/// Each caller takes a token immediately, even when that drives the balance negative, and
/// sleeps until the balance it owes has refilled. That keeps waiters in FIFO order without
/// a queue and without waking everyone on every refill.
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket: the first `burst` requests go out at once.
    pub fn new(limit: Limit) -> Self {
        TokenBucket {
            per_second: limit.per_second,
            burst: f64::from(limit.burst),
            state: Mutex::new(BucketState {
                tokens: f64::from(limit.burst),
                updated: Instant::now(),
            }),
        }
    }

    /// Waits until a request may be sent.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if wait.is_zero() {
            return;
        }
        tracing::trace!(?wait, "waiting for AWS rate limit token");
        let mut refund = Refund {
            bucket: self,
            armed: true,
        };
        tokio::time::sleep(wait).await;
        refund.armed = false;
    }

    fn reserve(&self) -> Duration {
        let mut state = self.lock_refilled();
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // A hand-built limit of zero or NaN must not panic: it just never refills.
            Duration::try_from_secs_f64(-state.tokens / self.per_second).unwrap_or(Duration::MAX)
        }
    }

    fn lock_refilled(&self) -> std::sync::MutexGuard<'_, BucketState> {
        // The state is two numbers updated together; a panic elsewhere cannot tear it.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.updated).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.per_second).min(self.burst);
        state.updated = now;
        state
    }
}

/// Gives an unused reservation back when its waiter is cancelled (attempt timeout, dropped
/// reconcile), so cancelled callers do not slow down the ones behind them.
struct Refund<'a> {
    bucket: &'a TokenBucket,
    armed: bool,
}

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.bucket.lock_refilled();
            state.tokens = (state.tokens + 1.0).min(self.bucket.burst);
        }
    }
}

/// Wraps the shared HTTPS client so that every HTTP attempt, retries included, first takes
/// a token from its API family's bucket. The inner client (and its connection pool) is
/// shared by all services.
#[derive(Clone, Debug)]
pub(crate) struct RateLimitedHttpClient {
    inner: SharedHttpClient,
    bucket: Arc<TokenBucket>,
    /// When set, the Query-protocol calls that are not `Describe*` take from this one.
    writes: Option<Arc<TokenBucket>>,
}

impl RateLimitedHttpClient {
    pub(crate) fn new(inner: SharedHttpClient, bucket: Arc<TokenBucket>) -> Self {
        RateLimitedHttpClient {
            inner,
            bucket,
            writes: None,
        }
    }

    /// Reads from `bucket`, writes from `writes` (ELBv2).
    pub(crate) fn split(
        inner: SharedHttpClient,
        bucket: Arc<TokenBucket>,
        writes: Arc<TokenBucket>,
    ) -> Self {
        RateLimitedHttpClient {
            inner,
            bucket,
            writes: Some(writes),
        }
    }
}

/// Whether a Query-protocol request body (`Action=DescribeTargetGroups&Version=…`) is a read.
/// A body that cannot be read (streaming) counts as a write, the stricter of the two.
fn is_read(body: Option<&[u8]>) -> bool {
    let Some(body) = body else { return false };
    body.split(|b| *b == b'&')
        .find_map(|kv| kv.strip_prefix(b"Action="))
        .is_some_and(|action| action.starts_with(b"Describe"))
}

impl HttpClient for RateLimitedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
            writes: self.writes.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct RateLimitedConnector {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
    writes: Option<Arc<TokenBucket>>,
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let bucket = match &self.writes {
            Some(w) if !is_read(request.body().bytes()) => w.clone(),
            _ => self.bucket.clone(),
        };
        HttpConnectorFuture::new(async move {
            bucket.acquire().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elapsed_ms(start: Instant) -> u128 {
        start.elapsed().as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let bucket = TokenBucket::new(Limit::new(2.0, 3));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..6 {
            bucket.acquire().await;
            times.push(elapsed_ms(start));
        }
        assert_eq!(times, vec![0, 0, 0, 500, 1000, 1500]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_refills_up_to_burst_only() {
        let bucket = TokenBucket::new(Limit::new(1.0, 2));
        bucket.acquire().await;
        bucket.acquire().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert_eq!(elapsed_ms(start), 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_spaced_out() {
        let bucket = Arc::new(TokenBucket::new(Limit::new(4.0, 1)));
        let start = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.acquire().await;
                    elapsed_ms(start)
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        times.sort_unstable();
        assert_eq!(times, vec![0, 250, 500, 750, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_waiter_returns_its_token() {
        let bucket = TokenBucket::new(Limit::new(1.0, 1));
        bucket.acquire().await;
        // This waiter would get the token at t=1s but gives up at t=0.5s.
        let gave_up = tokio::time::timeout(Duration::from_millis(500), bucket.acquire()).await;
        assert!(gave_up.is_err());
        let start = Instant::now();
        bucket.acquire().await;
        // Without the refund this would wait until t=2s.
        assert_eq!(elapsed_ms(start), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_rate_waits_forever_instead_of_panicking() {
        let bucket = TokenBucket::new(Limit::new(0.0, 1));
        bucket.acquire().await;
        let starved = tokio::time::timeout(Duration::from_secs(3600), bucket.acquire()).await;
        assert!(starved.is_err());
    }

    #[test]
    fn parses_overrides_on_top_of_defaults() {
        let limits: RateLimits = " elbv2=10:20, route53=2.5 ,".parse().unwrap();
        assert_eq!(limits.elbv2, Limit::new(10.0, 20));
        assert_eq!(limits.route53, Limit::new(2.5, 3));
        assert_eq!(limits.ec2, RateLimits::default().ec2);
        assert_eq!("".parse::<RateLimits>().unwrap(), RateLimits::default());
    }

    #[test]
    fn elbv2_writes_have_their_own_limit() {
        let limits: RateLimits = "elbv2=5:10,elbv2-writes=2:4".parse().unwrap();
        assert_eq!(limits.elbv2, Limit::new(5.0, 10));
        assert_eq!(limits.elbv2_writes, Limit::new(2.0, 4));
        assert_eq!(
            "elbv2-writes=1,elbv2-writes=2"
                .parse::<RateLimits>()
                .unwrap_err(),
            RateLimitError::Duplicate(ELBV2_WRITES)
        );
        assert_eq!(
            "elbv2-writes=0".parse::<RateLimits>().unwrap_err(),
            RateLimitError::Rate {
                service: ELBV2_WRITES,
                value: "0".into()
            }
        );
        let bad = RateLimits {
            elbv2_writes: Limit::new(1.0, 0),
            ..RateLimits::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn query_requests_are_told_apart_by_their_action() {
        assert!(is_read(Some(
            b"Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn=x"
        )));
        assert!(is_read(Some(b"Version=2015-12-01&Action=DescribeRules")));
        assert!(!is_read(Some(b"Action=RegisterTargets&Version=2015-12-01")));
        assert!(!is_read(Some(b"Action=CreateRule&Describe=1")));
        // A parameter value that happens to start with Describe does not make a read.
        assert!(!is_read(Some(b"Action=ModifyRule&Name=Action=Describe")));
        assert!(!is_read(Some(b"")));
        assert!(!is_read(None));
    }

    #[test]
    fn display_round_trips() {
        let limits: RateLimits = "acm=1.5:2,sts=7:9,elbv2-writes=3:6".parse().unwrap();
        assert_eq!(limits.to_string().parse::<RateLimits>().unwrap(), limits);
        assert!(limits.validate().is_ok());
    }

    #[test]
    fn rejects_bad_entries_with_clear_errors() {
        let cases = [
            ("elbv2", RateLimitError::Syntax("elbv2".into())),
            ("s3=1:1", RateLimitError::UnknownService("s3".into())),
            ("iam=1,iam=2", RateLimitError::Duplicate("iam")),
            (
                "ec2=0:1",
                RateLimitError::Rate {
                    service: "ec2",
                    value: "0".into(),
                },
            ),
            (
                "ec2=fast",
                RateLimitError::Rate {
                    service: "ec2",
                    value: "fast".into(),
                },
            ),
            (
                "ec2=NaN",
                RateLimitError::Rate {
                    service: "ec2",
                    value: "NaN".into(),
                },
            ),
            (
                "acm=1:0",
                RateLimitError::Burst {
                    service: "acm",
                    value: "0".into(),
                },
            ),
            (
                "acm=1:-2",
                RateLimitError::Burst {
                    service: "acm",
                    value: "-2".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                input.parse::<RateLimits>().unwrap_err(),
                expected,
                "{input}"
            );
        }
        let message = "s3=1".parse::<RateLimits>().unwrap_err().to_string();
        assert!(message.contains("route53"), "{message}");
    }

    #[test]
    fn validate_catches_hand_built_limits() {
        let infinite = RateLimits {
            sts: Limit::new(f64::INFINITY, 1),
            ..RateLimits::default()
        };
        assert!(infinite.validate().is_err());
        let no_burst = RateLimits {
            sts: Limit::new(1.0, 0),
            ..RateLimits::default()
        };
        assert!(no_burst.validate().is_err());
    }
}
