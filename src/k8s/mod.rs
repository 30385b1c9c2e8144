//! Kubernetes plumbing shared by every controller: client setup, conditions, events,
//! finalizers, server-side apply and leader election.

pub(crate) mod apply;
pub mod conditions;
pub mod events;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod finalizer;
pub(crate) mod leader;
pub(crate) mod runtime;
pub(crate) mod selector;
pub(crate) mod watched;

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

/// kubectl's copy of the applied manifest: large, and read by no controller.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("failed to load kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no Kubernetes configuration found (neither KUBECONFIG/~/.kube/config nor in-cluster): {0}"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("failed to build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client from `kubeconfig` if given, else inferred: `KUBECONFIG` or `~/.kube/config`,
/// then the in-cluster service account.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, K8sError> {
    let config = match kubeconfig {
        Some(path) => {
            let load_error = |source| K8sError::Kubeconfig {
                path: path.to_owned(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(load_error)?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(load_error)?
        }
        None => kube::Config::infer().await.map_err(K8sError::Infer)?,
    };
    kube::Client::try_from(config).map_err(K8sError::Client)
}

/// Cuts `s` to at most `max` bytes on a character boundary (API fields are byte-limited).
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_from_an_explicit_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("causeway-k8s-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            r#"apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: http://127.0.0.1:1
contexts:
- name: test
  context:
    cluster: test
    user: test
    namespace: causeway-system
current-context: test
users:
- name: test
  user:
    token: not-a-real-token
"#,
        )
        .unwrap();

        let client = client(Some(&path)).await.unwrap();
        assert_eq!(client.default_namespace(), "causeway-system");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn missing_kubeconfig_is_an_error() {
        let Err(err) = client(Some(Path::new("/nonexistent/causeway/kubeconfig"))).await else {
            panic!("a missing kubeconfig must be an error");
        };
        assert!(matches!(err, K8sError::Kubeconfig { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/causeway/kubeconfig"));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(2000), 1024).len(), 1024);
    }
}
