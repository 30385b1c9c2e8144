//! The agent's metric families, registered in the shared registry (prefix `causeway_`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::telemetry::Metrics;

const STS_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    path: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Cheap to clone: every field shares its storage.
#[derive(Clone, Debug)]
pub struct AgentMetrics {
    requests: Family<RequestLabels, Counter>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_entries: Gauge,
    pub pods: Gauge,
    sts_calls: Family<OutcomeLabels, Counter>,
    sts_duration: Histogram,
    token_checks: Family<OutcomeLabels, Counter>,
    token_reviews: Family<OutcomeLabels, Counter>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            requests: Family::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_entries: Gauge::default(),
            pods: Gauge::default(),
            sts_calls: Family::default(),
            sts_duration: Histogram::new(STS_BUCKETS),
            token_checks: Family::default(),
            token_reviews: Family::default(),
        }
    }
}

impl AgentMetrics {
    /// Unregistered families, for tests and benches.
    pub fn new() -> AgentMetrics {
        AgentMetrics::default()
    }

    pub fn register(metrics: &Metrics) -> AgentMetrics {
        let m = AgentMetrics::default();
        metrics.register(
            "agent_metadata_requests",
            "Metadata requests by path class and HTTP status",
            m.requests.clone(),
        );
        metrics.register(
            "agent_credential_cache_hits",
            "Credential requests served from cache",
            m.cache_hits.clone(),
        );
        metrics.register(
            "agent_credential_cache_misses",
            "Credential requests that waited for STS",
            m.cache_misses.clone(),
        );
        metrics.register(
            "agent_credential_cache_entries",
            "Credential sessions kept fresh",
            m.cache_entries.clone(),
        );
        metrics.register("agent_pods", "Pods on this node", m.pods.clone());
        metrics.register(
            "agent_sts_assume_role",
            "STS AssumeRole calls by outcome",
            m.sts_calls.clone(),
        );
        metrics.register(
            "agent_sts_assume_role_duration_seconds",
            "STS AssumeRole latency",
            m.sts_duration.clone(),
        );
        metrics.register(
            "agent_token_checks",
            "Service-account tokens presented to the container-credentials endpoint, by outcome",
            m.token_checks.clone(),
        );
        metrics.register(
            "agent_token_reviews",
            "TokenReview calls to the apiserver, by outcome (cache misses only)",
            m.token_reviews.clone(),
        );
        m
    }

    pub fn token_check(&self, outcome: &'static str) {
        self.token_checks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn token_review(&self, outcome: &'static str) {
        self.token_reviews
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// TokenReviews made so far, every outcome.
    pub fn token_reviews(&self) -> u64 {
        ["valid", "refused", "failed"]
            .iter()
            .map(|outcome| {
                self.token_reviews
                    .get(&OutcomeLabels { outcome })
                    .map_or(0, |c| c.get())
            })
            .sum()
    }

    pub fn request(&self, path: &'static str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels { path, code })
            .inc();
    }

    pub fn sts_call(&self, outcome: &'static str, took: Duration) {
        self.sts_calls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.sts_duration.observe(took.as_secs_f64());
    }

    pub fn sts_calls(&self, outcome: &'static str) -> u64 {
        self.sts_calls
            .get(&OutcomeLabels { outcome })
            .map_or(0, |c| c.get())
    }
}
