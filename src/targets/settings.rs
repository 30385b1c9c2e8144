//! Settings of the TargetGroupBinding reconciler and of the pod readiness-gate webhook
//! (`--targets-*`, `--webhook-*` and `--vpc-id`, built by the CLI).

use std::net::SocketAddr;
use std::time::Duration;

/// How the TargetGroupBinding reconciler behaves.
#[derive(Debug, Clone)]
pub struct TargetsSettings {
    /// The cluster's VPC (`--vpc-id`): a binding's target group must be in it.
    pub vpc_id: Option<String>,
    /// Only bindings (and Services, EndpointSlices) in this namespace; all when `None`.
    pub namespace: Option<String>,
    /// How often every binding is re-checked against AWS without a change.
    pub resync: Duration,
}

impl Default for TargetsSettings {
    fn default() -> Self {
        TargetsSettings {
            vpc_id: None,
            namespace: None,
            resync: Duration::from_secs(600),
        }
    }
}

/// Where and how the readiness-gate webhook is served.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Only Pods whose Services are in this namespace; all when `None` (`--targets-namespace`).
    pub namespace: Option<String>,
    pub addr: SocketAddr,
    /// Namespace of the webhook's Service and certificate Secret.
    pub service_namespace: String,
    pub service: String,
    /// Called at this URL instead of through the Service (out-of-cluster runs).
    pub url: Option<String>,
    pub configuration_name: String,
    pub secret: String,
    /// Set this `spec.loadBalancerClass` on new LoadBalancer Services that name none
    /// (`--nlb-set-class-on-new-services`); `None`: Services are not mutated.
    pub service_class: Option<String>,
    /// Serve the readiness-gate pod mutator (the targets reconciler is on).
    pub readiness_gates: bool,
    /// Serve the token-path injector (`crate::iam::pod_identity`); `None`: off.
    pub pod_identity: Option<crate::iam::pod_identity::InjectSettings>,
}
