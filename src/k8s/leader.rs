//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics.
//!
//! A candidate takes the lease when it is unheld or expired (renewTime +
//! leaseDurationSeconds is in the past), the leader renews it every retry period, and a
//! leader that cannot renew within the renew deadline steps down. Every write is a
//! resourceVersion-guarded replace, so two candidates racing for the same expired lease
//! cannot both win. On graceful shutdown the leader clears holderIdentity so a successor
//! takes over at once instead of waiting for the lease to expire.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use super::conditions::{Clock, SystemClock};
use crate::telemetry::Metrics;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica; the pod name is the usual choice.
    pub identity: String,
    /// How long a lease stays valid after its last renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// How often to renew (leader) or retry acquiring (candidate).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The same ordering client-go enforces: a leader must give up (renew deadline) before
    /// others may take over (lease duration), and must get several renew tries in between.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |m: &str| Err(LeaderError::InvalidConfig(m.to_owned()));
        if self.namespace.is_empty() || self.name.is_empty() {
            return invalid("lease namespace and name must not be empty");
        }
        if self.identity.is_empty() {
            return invalid("leader election identity must not be empty");
        }
        if self.retry_period.is_zero() {
            return invalid("retry period must be greater than zero");
        }
        if self.lease_duration.as_secs() > MAX_LEASE_SECONDS {
            return invalid("lease duration must fit leaseDurationSeconds (an int32)");
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid("lease duration must be greater than the renew deadline");
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return invalid("renew deadline must be greater than 1.2 × the retry period");
        }
        Ok(())
    }

    /// Lease durations are whole seconds in the API; round up so we never promise less.
    fn lease_duration_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }
}

const MAX_LEASE_SECONDS: u64 = i32::MAX as u64;

/// client-go waits `retry_period × (1 + rand[0, 1.2))` between acquire attempts.
const JITTER_FACTOR: f64 = 1.2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderState {
    /// Not yet known: the lease has not been read successfully.
    Unknown,
    Leading,
    Following {
        holder: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election config: {0}")]
    InvalidConfig(String),
    /// We led and no longer do. Controllers may have acted on stale state from here on,
    /// so the process should exit and start over as a follower.
    #[error("lost leadership (lease now held by {})", .holder.as_deref().unwrap_or("nobody"))]
    Lost { holder: Option<String> },
    #[error("lease {name}: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// What to do with the lease we just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// There is no lease yet: create it, held by us.
    Create,
    /// The lease is unheld or expired: take it over.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease until `expires`.
    Follow { holder: String, expires: Timestamp },
}

/// Decides what a candidate `me` does with `lease` at `now`.
///
/// A lease without a usable duration is judged with `default_duration`; a held lease
/// with no renew or acquire time is treated as expired, since nobody can prove it live.
pub fn decide(
    lease: Option<&Lease>,
    me: &str,
    now: Timestamp,
    default_duration: Duration,
) -> Action {
    let Some(lease) = lease else {
        return Action::Create;
    };
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty());
    let Some(holder) = holder else {
        return Action::Acquire;
    };
    if holder == me {
        return Action::Renew;
    }
    let renewed = spec.and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()));
    let Some(MicroTime(renewed)) = renewed else {
        return Action::Acquire;
    };
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .map(|d| SignedDuration::from_secs(i64::from(d)))
        .unwrap_or_else(|| {
            SignedDuration::try_from(default_duration).unwrap_or(SignedDuration::MAX)
        });
    let expires = renewed.checked_add(duration).unwrap_or(Timestamp::MAX);
    if now < expires {
        Action::Follow {
            holder: holder.to_owned(),
            expires,
        }
    } else {
        Action::Acquire
    }
}

/// The spec to write for `action` (only `Create`, `Acquire` and `Renew` write).
pub fn desired_spec(
    action: &Action,
    current: Option<&LeaseSpec>,
    config: &LeaseConfig,
    now: Timestamp,
) -> LeaseSpec {
    let previous = current.cloned().unwrap_or_default();
    let (acquire_time, transitions) = match action {
        // Keep when we first took it, so acquireTime means what it says.
        Action::Renew => (
            previous.acquire_time.clone().or(Some(MicroTime(now))),
            previous.lease_transitions.unwrap_or(0),
        ),
        Action::Acquire => (
            Some(MicroTime(now)),
            previous.lease_transitions.unwrap_or(0).saturating_add(1),
        ),
        Action::Create | Action::Follow { .. } => (Some(MicroTime(now)), 0),
    };
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.lease_duration_seconds()),
        acquire_time,
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..previous
    }
}

/// The spec that hands the lease back: unheld, and expiring a second from now for
/// candidates that only look at the times.
pub fn released_spec(current: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..current.clone()
    }
}

/// Result of one acquire-or-renew round.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    Leading,
    Following(Option<String>),
    /// Another candidate wrote first; look again next round.
    Contended,
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    metrics: Option<Arc<Metrics>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            metrics: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Also drive the `causeway_leader` gauge.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Campaigns until `shutdown` resolves or leadership is lost, publishing every state
    /// change on `state`.
    ///
    /// Returns `Ok(())` after a graceful shutdown (having released the lease if we held
    /// it) and [`LeaderError::Lost`] when we led and stopped leading; the caller should
    /// then exit.
    pub async fn run(
        self,
        state: watch::Sender<LeaderState>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), LeaderError> {
        self.config.validate()?;
        tokio::pin!(shutdown);
        let outcome = tokio::select! {
            lost = self.campaign(&state) => Err(lost),
            () = &mut shutdown => Ok(()),
        };
        if outcome.is_ok() && *state.borrow() == LeaderState::Leading {
            self.release().await;
            self.publish(&state, LeaderState::Following { holder: None });
        }
        outcome
    }

    /// Runs until leadership is lost; only returns the loss.
    async fn campaign(&self, state: &watch::Sender<LeaderState>) -> LeaderError {
        loop {
            match self.round().await {
                Ok(Round::Leading) => break,
                Ok(Round::Following(holder)) => {
                    self.publish(state, LeaderState::Following { holder })
                }
                Ok(Round::Contended) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "leader election: failed to read or write the lease")
                }
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }

        tracing::info!(
            lease = %self.config.name,
            identity = %self.config.identity,
            "acquired leadership"
        );
        self.publish(state, LeaderState::Leading);

        // Measured from when the last successful write was sent: that is roughly the
        // renewTime others see, so we step down before they may take over.
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let deadline = last_renewed + self.config.renew_deadline;
            let started = Instant::now();
            let lost_to = match tokio::time::timeout_at(deadline, self.round()).await {
                Ok(Ok(Round::Leading)) => {
                    last_renewed = started;
                    continue;
                }
                Ok(Ok(Round::Following(holder))) => holder,
                Ok(not_renewed) => {
                    if let Err(err) = not_renewed {
                        tracing::warn!(error = %err, "leader election: lease renewal failed");
                    }
                    if Instant::now() < deadline {
                        continue;
                    }
                    None
                }
                Err(_elapsed) => None,
            };
            tracing::error!(
                lease = %self.config.name,
                holder = lost_to.as_deref().unwrap_or("unknown"),
                "lost leadership"
            );
            self.publish(
                state,
                LeaderState::Following {
                    holder: lost_to.clone(),
                },
            );
            return LeaderError::Lost { holder: lost_to };
        }
    }

    async fn round(&self) -> Result<Round, LeaderError> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.kube_error(e))?;
        let now = self.clock.now();
        let action = decide(
            current.as_ref(),
            &self.config.identity,
            now,
            self.config.lease_duration,
        );
        let spec = desired_spec(
            &action,
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.config,
            now,
        );
        let written = match (action, current) {
            (Action::Follow { holder, .. }, _) => return Ok(Round::Following(Some(holder))),
            (Action::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Action::Acquire | Action::Renew, Some(mut lease)) => {
                // The resourceVersion from our read makes this a compare-and-swap.
                lease.spec = Some(spec);
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(Round::Leading),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                tracing::debug!("leader election: lost a write race for the lease");
                Ok(Round::Contended)
            }
            Err(err) => Err(self.kube_error(err)),
        }
    }

    /// Hands the lease back if we still hold it. Best effort: on failure the lease simply
    /// expires.
    async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
                return Ok(false);
            };
            let ours = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.config.identity.as_str());
            if !ours {
                return Ok(false);
            }
            let spec = released_spec(
                lease.spec.as_ref().unwrap_or(&LeaseSpec::default()),
                self.clock.now(),
            );
            lease.spec = Some(spec);
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await?;
            Ok::<_, kube::Error>(true)
        }
        .await;
        match result {
            Ok(true) => tracing::info!(lease = %self.config.name, "released leadership"),
            Ok(false) => {
                tracing::info!(lease = %self.config.name, "lease no longer ours; nothing to release")
            }
            Err(err) => {
                tracing::warn!(error = %err, "failed to release the lease; it will expire instead")
            }
        }
    }

    fn publish(&self, state: &watch::Sender<LeaderState>, next: LeaderState) {
        if let Some(metrics) = &self.metrics {
            metrics.set_leader(next == LeaderState::Leading);
        }
        state.send_if_modified(|current| {
            if *current == next {
                false
            } else {
                *current = next;
                true
            }
        });
    }

    fn kube_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Kube {
            name: format!("{}/{}", self.config.namespace, self.config.name),
            source,
        }
    }
}

fn jittered(period: Duration) -> Duration {
    let factor = 1.0 + rand::random_range(0.0..JITTER_FACTOR);
    Duration::try_from_secs_f64(period.as_secs_f64() * factor).unwrap_or(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "causeway-a";
    const OTHER: &str = "causeway-b";

    fn ts(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn lease(
        holder: Option<&str>,
        renewed: Option<i64>,
        duration: Option<i32>,
        transitions: i32,
    ) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("causeway-leader".into()),
                resource_version: Some("42".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: renewed.map(|s| MicroTime(ts(s))),
                acquire_time: renewed.map(|s| MicroTime(ts(s - 100))),
                lease_duration_seconds: duration,
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    fn config() -> LeaseConfig {
        LeaseConfig {
            namespace: "causeway-system".into(),
            name: "causeway-leader".into(),
            identity: ME.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    const DEFAULT: Duration = Duration::from_secs(15);

    #[test]
    fn missing_lease_is_created() {
        assert_eq!(decide(None, ME, ts(1000), DEFAULT), Action::Create);
        let spec = desired_spec(&Action::Create, None, &config(), ts(1000));
        assert_eq!(spec.holder_identity.as_deref(), Some(ME));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.renew_time, Some(MicroTime(ts(1000))));
    }

    #[test]
    fn live_lease_of_another_is_followed() {
        let l = lease(Some(OTHER), Some(990), Some(15), 3);
        assert_eq!(
            decide(Some(&l), ME, ts(1000), DEFAULT),
            Action::Follow {
                holder: OTHER.into(),
                expires: ts(1005)
            }
        );
    }

    #[test]
    fn expired_lease_is_taken_over_with_a_transition() {
        let l = lease(Some(OTHER), Some(980), Some(15), 3);
        assert_eq!(decide(Some(&l), ME, ts(1000), DEFAULT), Action::Acquire);
        let spec = desired_spec(&Action::Acquire, l.spec.as_ref(), &config(), ts(1000));
        assert_eq!(spec.holder_identity.as_deref(), Some(ME));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(ts(1000))));
    }

    #[test]
    fn expiry_is_exclusive_at_the_boundary() {
        let l = lease(Some(OTHER), Some(985), Some(15), 0);
        assert_eq!(decide(Some(&l), ME, ts(1000), DEFAULT), Action::Acquire);
        assert!(matches!(
            decide(Some(&l), ME, ts(999), DEFAULT),
            Action::Follow { .. }
        ));
    }

    #[test]
    fn released_lease_is_acquired_immediately() {
        let mut l = lease(Some(OTHER), Some(999), Some(15), 2);
        l.spec = Some(released_spec(l.spec.as_ref().unwrap(), ts(999)));
        assert_eq!(decide(Some(&l), ME, ts(1000), DEFAULT), Action::Acquire);
        let empty_holder = lease(Some(""), Some(999), Some(15), 2);
        assert_eq!(
            decide(Some(&empty_holder), ME, ts(1000), DEFAULT),
            Action::Acquire
        );
    }

    #[test]
    fn own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        // Even when it looks expired: nobody else has taken it, so it is still ours.
        let l = lease(Some(ME), Some(900), Some(15), 7);
        assert_eq!(decide(Some(&l), ME, ts(1000), DEFAULT), Action::Renew);
        let spec = desired_spec(&Action::Renew, l.spec.as_ref(), &config(), ts(1000));
        assert_eq!(spec.lease_transitions, Some(7));
        assert_eq!(spec.acquire_time, Some(MicroTime(ts(800))));
        assert_eq!(spec.renew_time, Some(MicroTime(ts(1000))));
    }

    #[test]
    fn lease_without_times_or_duration_is_judged_safely() {
        let no_times = lease(Some(OTHER), None, Some(15), 0);
        assert_eq!(
            decide(Some(&no_times), ME, ts(1000), DEFAULT),
            Action::Acquire
        );

        let no_duration = lease(Some(OTHER), Some(990), None, 0);
        assert!(matches!(
            decide(Some(&no_duration), ME, ts(1000), DEFAULT),
            Action::Follow { .. }
        ));
        assert_eq!(
            decide(Some(&no_duration), ME, ts(1005), DEFAULT),
            Action::Acquire
        );

        let zero_duration = lease(Some(OTHER), Some(990), Some(0), 0);
        assert!(matches!(
            decide(Some(&zero_duration), ME, ts(1000), DEFAULT),
            Action::Follow { .. }
        ));

        let no_spec = Lease::default();
        assert_eq!(
            decide(Some(&no_spec), ME, ts(1000), DEFAULT),
            Action::Acquire
        );
    }

    #[test]
    fn absurd_durations_do_not_overflow() {
        let l = lease(Some(OTHER), Some(990), Some(i32::MAX), 0);
        assert!(matches!(
            decide(Some(&l), ME, ts(1000), DEFAULT),
            Action::Follow { .. }
        ));
        let no_duration = lease(Some(OTHER), Some(990), None, 0);
        assert!(matches!(
            decide(Some(&no_duration), ME, ts(1000), Duration::MAX),
            Action::Follow { .. }
        ));
        let mut many = lease(Some(OTHER), Some(900), Some(15), i32::MAX);
        many.spec.as_mut().unwrap().lease_transitions = Some(i32::MAX);
        let spec = desired_spec(&Action::Acquire, many.spec.as_ref(), &config(), ts(1000));
        assert_eq!(spec.lease_transitions, Some(i32::MAX));
    }

    #[test]
    fn lease_duration_rounds_up_to_whole_seconds() {
        let mut c = config();
        c.lease_duration = Duration::from_millis(1500);
        assert_eq!(c.lease_duration_seconds(), 2);
        c.lease_duration = Duration::from_millis(10);
        assert_eq!(c.lease_duration_seconds(), 1);
    }

    #[test]
    fn config_validation_follows_client_go() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.renew_deadline = c.lease_duration;
        assert!(c.validate().is_err());
        let mut c = config();
        c.retry_period = Duration::from_secs(9);
        assert!(c.validate().is_err());
        let mut c = config();
        c.identity.clear();
        assert!(c.validate().is_err());
        let mut c = config();
        c.retry_period = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config();
        c.lease_duration = Duration::MAX;
        assert!(c.validate().is_err());
    }

    #[test]
    fn jitter_stays_within_client_go_bounds() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(2));
            assert!(
                d >= Duration::from_secs(2) && d < Duration::from_millis(4400),
                "{d:?}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_apiserver_keeps_state_unknown_until_shutdown() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let mut config = config();
        config.retry_period = Duration::from_millis(20);
        config.renew_deadline = Duration::from_millis(100);
        config.lease_duration = Duration::from_millis(200);
        let metrics = Metrics::new();
        let elector = LeaderElector::new(client, config).with_metrics(metrics.clone());
        let (tx, rx) = watch::channel(LeaderState::Unknown);

        elector
            .run(tx, tokio::time::sleep(Duration::from_millis(150)))
            .await
            .unwrap();

        assert_eq!(*rx.borrow(), LeaderState::Unknown);
        assert!(metrics.encode().contains("causeway_leader 0"));
    }

    #[tokio::test]
    async fn invalid_config_is_rejected() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let mut config = config();
        config.identity.clear();
        let (tx, _rx) = watch::channel(LeaderState::Unknown);
        let err = LeaderElector::new(client, config)
            .run(tx, std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(err, LeaderError::InvalidConfig(_)));
    }
}
