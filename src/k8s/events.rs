//! Kubernetes Events for the objects we reconcile.
//!
//! Events are a courtesy to the person running `kubectl describe`: publishing one must
//! never fail a reconcile, so errors are logged and swallowed here.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::truncate;

/// The `reportingController` of every event we publish.
pub const CONTROLLER_NAME: &str = "causeway";

/// The API limits: reason and action to 128 characters, note to 1 KiB.
const MAX_REASON_LEN: usize = 128;
const MAX_NOTE_LEN: usize = 1024;

/// Action recorded when the caller does not name one.
const DEFAULT_ACTION: &str = "Reconcile";

#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder").finish_non_exhaustive()
    }
}

impl EventRecorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventRecorder {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// A reporter named `causeway`; `instance` is usually the pod name, so events from
    /// different replicas can be told apart.
    pub fn reporter(instance: Option<String>) -> Reporter {
        Reporter {
            controller: CONTROLLER_NAME.to_owned(),
            instance,
        }
    }

    pub async fn normal(&self, obj_ref: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.publish(obj_ref, EventType::Normal, reason, DEFAULT_ACTION, note)
            .await;
    }

    pub async fn warn(&self, obj_ref: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.publish(obj_ref, EventType::Warning, reason, DEFAULT_ACTION, note)
            .await;
    }

    /// Publishes one event; repeats of the same event are folded into a series by kube.
    pub async fn publish(
        &self,
        obj_ref: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        let event = Event {
            type_,
            reason: truncate(reason, MAX_REASON_LEN).to_owned(),
            note: Some(truncate(&note.into(), MAX_NOTE_LEN).to_owned()),
            action: truncate(action, MAX_REASON_LEN).to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, obj_ref).await {
            tracing::warn!(
                error = %err,
                kind = obj_ref.kind.as_deref().unwrap_or_default(),
                namespace = obj_ref.namespace.as_deref().unwrap_or_default(),
                name = obj_ref.name.as_deref().unwrap_or_default(),
                reason,
                "failed to publish event"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporter_is_causeway() {
        let reporter = EventRecorder::reporter(Some("causeway-0".into()));
        assert_eq!(reporter.controller, "causeway");
        assert_eq!(reporter.instance.as_deref(), Some("causeway-0"));
    }

    #[tokio::test]
    async fn unreachable_apiserver_is_not_fatal() {
        // Nothing listens on port 1; publishing must log and return.
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let recorder = EventRecorder::new(client, EventRecorder::reporter(None));
        let obj_ref = ObjectReference {
            api_version: Some("networking.k8s.io/v1".into()),
            kind: Some("Ingress".into()),
            namespace: Some("default".into()),
            name: Some("web".into()),
            ..ObjectReference::default()
        };
        recorder.warn(&obj_ref, "AwsError", "x".repeat(5000)).await;
        recorder.normal(&obj_ref, "Reconciled", "ok").await;
    }
}
