//! What every reconciler shares: the Kubernetes client, the AWS clients, the metrics, the
//! one Event recorder, the cluster name and the caches filled on every replica. A leaf:
//! it imports no controller, and every controller imports it.

use std::sync::Arc;

use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::aws::AwsClients;
use crate::crd::TargetGroupBinding;
use crate::k8s::events::EventRecorder;
use crate::k8s::runtime::watch::{keep_all, reflect};
use crate::telemetry::Metrics;

pub struct Context {
    pub client: Client,
    pub aws: AwsClients,
    pub metrics: Arc<Metrics>,
    /// Events of every controller, reported as `causeway` with this pod's name.
    pub events: EventRecorder,
    pub cluster_name: String,
    pub caches: Caches,
}

impl Context {
    pub fn new(
        client: Client,
        aws: AwsClients,
        metrics: Arc<Metrics>,
        cluster_name: String,
        caches: Caches,
    ) -> Self {
        let events = EventRecorder::new(
            client.clone(),
            EventRecorder::reporter(std::env::var("POD_NAME").ok()),
        );
        Context {
            client,
            aws,
            metrics,
            events,
            cluster_name,
            caches,
        }
    }
}

/// Reflector stores shared by several controllers. They are filled on every replica, leader
/// or not, so a new leader starts with warm caches.
#[derive(Clone)]
pub struct Caches {
    pub target_group_bindings: Store<TargetGroupBinding>,
}

impl Caches {
    pub fn start(client: &Client, stop: &watch::Receiver<bool>) -> Self {
        Caches {
            target_group_bindings: reflect(
                Api::all(client.clone()),
                watcher::Config::default(),
                keep_all,
                |_| {},
                stop.clone(),
            ),
        }
    }

    pub async fn wait_synced(&self) {
        let _ = self.target_group_bindings.wait_until_ready().await;
    }
}

#[cfg(test)]
impl Context {
    /// A context for reconcile-level tests, cluster `c1`: `client` (usually a
    /// [`FakeApi`](crate::k8s::fake::FakeApi)'s), the given TargetGroupBinding cache, and AWS
    /// clients with static credentials pointed at a closed loopback port, so that a call a
    /// test did not route to its fake adapter fails instead of leaving the machine.
    pub(crate) async fn for_tests(
        client: Client,
        target_group_bindings: Store<TargetGroupBinding>,
    ) -> Arc<Context> {
        let metrics = Metrics::new();
        let settings = crate::aws::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            credentials: Some(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "tests",
            )),
            max_attempts: 1,
            ..Default::default()
        };
        let aws = AwsClients::new(&settings, metrics.clone())
            .await
            .expect("test AWS clients");
        Arc::new(Context::new(
            client,
            aws,
            metrics,
            "c1".into(),
            Caches {
                target_group_bindings,
            },
        ))
    }
}
