use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

/// Prefix of every family we expose, so dashboards can select ours with one matcher.
const PREFIX: &str = "causeway";

/// Reconciles range from a cache hit (milliseconds) to a slow AWS apply (minutes).
const RECONCILE_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How one AWS API call ended, as exported in the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiOutcome {
    Success,
    Error,
    Throttled,
}

impl ApiOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiOutcome::Success => "success",
            ApiOutcome::Error => "error",
            ApiOutcome::Throttled => "throttled",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiCallLabels {
    service: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerErrorLabels {
    controller: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(RECONCILE_BUCKETS)
}

/// The process-wide metrics registry and the families every controller shares.
pub struct Metrics {
    // Controllers register their own families after startup, so the registry stays mutable.
    registry: Mutex<Registry>,
    aws_api_calls: Family<ApiCallLabels, Counter>,
    reconcile_total: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ControllerErrorLabels, Counter>,
    reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    leader: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix(PREFIX);

        let aws_api_calls = Family::<ApiCallLabels, Counter>::default();
        registry.register(
            "aws_api_calls",
            "AWS API calls by service, operation and outcome (one per HTTP attempt)",
            aws_api_calls.clone(),
        );

        let reconcile_total = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconcile",
            "Reconciliations run, by controller",
            reconcile_total.clone(),
        );

        let reconcile_errors = Family::<ControllerErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciliations, by controller and error label",
            reconcile_errors.clone(),
        );

        let reconcile_duration =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                reconcile_histogram,
            );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciliations, by controller",
            reconcile_duration.clone(),
        );

        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );

        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: crate::VERSION,
            })
            .set(1);
        registry.register("build_info", "Build information", build_info);

        Arc::new(Metrics {
            registry: Mutex::new(registry),
            aws_api_calls,
            reconcile_total,
            reconcile_errors,
            reconcile_duration,
            leader,
        })
    }

    pub fn aws_call(&self, service: &str, operation: &str, outcome: ApiOutcome) {
        self.aws_api_calls
            .get_or_create(&ApiCallLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Current value of one `aws_api_calls_total` series; tests and debug output use it.
    pub fn aws_calls(&self, service: &str, operation: &str, outcome: ApiOutcome) -> u64 {
        self.aws_api_calls
            .get(&ApiCallLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.as_str(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Starts timing one reconcile; the count and duration are recorded when the timer
    /// is finished or dropped, so early returns are measured too.
    pub fn reconcile_started(&self, controller: &str) -> ReconcileTimer {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        ReconcileTimer {
            counter: self.reconcile_total.get_or_create_owned(&labels),
            histogram: self.reconcile_duration.get_or_create_owned(&labels),
            started: Instant::now(),
            recorded: false,
        }
    }

    pub fn reconcile_error(&self, controller: &str, error_label: &str) {
        self.reconcile_errors
            .get_or_create(&ControllerErrorLabels {
                controller: controller.to_owned(),
                error: error_label.to_owned(),
            })
            .inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Registers a family owned by a later controller under the `causeway_` prefix.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    /// The OpenMetrics text exposition of every registered family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error here would only come from a
        // broken custom metric, and a partial scrape is better than none.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry()) {
            tracing::warn!(error = %err, "failed to encode metrics");
        }
        out
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the registry half-written in a way
        // that matters for scraping, so keep serving rather than propagate the poison.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Records one reconcile into `reconcile_total` and `reconcile_duration_seconds`.
#[must_use = "the reconcile is recorded when the timer is finished or dropped"]
pub struct ReconcileTimer {
    counter: Counter,
    histogram: Histogram,
    started: Instant,
    recorded: bool,
}

impl ReconcileTimer {
    pub fn finish(mut self) {
        self.record();
    }

    fn record(&mut self) {
        if !self.recorded {
            self.recorded = true;
            self.counter.inc();
            self.histogram.observe(self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_family_names() {
        let metrics = Metrics::new();
        metrics.aws_call("elbv2", "DescribeLoadBalancers", ApiOutcome::Success);
        metrics.aws_call("route53", "ChangeResourceRecordSets", ApiOutcome::Throttled);
        metrics.reconcile_started("alb").finish();
        metrics.reconcile_error("alb", "aws");
        metrics.set_leader(true);

        let text = metrics.encode();
        for line in [
            "causeway_aws_api_calls_total{service=\"elbv2\",operation=\"DescribeLoadBalancers\",outcome=\"success\"} 1",
            "causeway_aws_api_calls_total{service=\"route53\",operation=\"ChangeResourceRecordSets\",outcome=\"throttled\"} 1",
            "causeway_reconcile_total{controller=\"alb\"} 1",
            "causeway_reconcile_errors_total{controller=\"alb\",error=\"aws\"} 1",
            "causeway_reconcile_duration_seconds_count{controller=\"alb\"} 1",
            "causeway_leader 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains(&format!(
            "causeway_build_info{{version=\"{}\"}} 1",
            crate::VERSION
        )));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn dropped_timer_is_recorded_once() {
        let metrics = Metrics::new();
        {
            let _timer = metrics.reconcile_started("dns");
        }
        let timer = metrics.reconcile_started("dns");
        timer.finish();
        assert!(
            metrics
                .encode()
                .contains("causeway_reconcile_total{controller=\"dns\"} 2")
        );
    }

    #[test]
    fn later_families_share_the_prefix() {
        let metrics = Metrics::new();
        let counter = Counter::<u64>::default();
        metrics.register("targets_registered", "Targets registered", counter.clone());
        counter.inc();
        assert!(
            metrics
                .encode()
                .contains("causeway_targets_registered_total 1")
        );
    }
}
