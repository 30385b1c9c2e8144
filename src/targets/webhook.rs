//! The pod readiness-gate webhook: a mutating admission webhook, served over TLS on every
//! replica, that adds `target-health.elbv2.k8s.aws/<binding>` readiness gates to new pods
//! in namespaces labelled `elbv2.k8s.aws/pod-readiness-gate-inject=enabled`, for the ip
//! bindings whose Service selects the pod. The same server carries the Service mutator
//! and the token-path injector of [`crate::iam::pod_identity`].
//!
//! The certificate is self-managed: the first replica generates a CA and a serving
//! certificate (rcgen, ring) into a Secret that every replica shares, and each replica
//! applies the MutatingWebhookConfiguration with that CA as caBundle. The webhook fails
//! open (failurePolicy Ignore): with no replica up, pods are still created, only without
//! the gate.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use super::settings::WebhookSettings;
use super::{INJECT_LABEL, readiness_gate};
use crate::crd::TargetGroupBinding;
use crate::crd::target_group_binding::TargetType;
use crate::k8s::watched::targets_service as prune_service;

pub const PATH: &str = "/mutate-v1-pod";
const WEBHOOK_NAME: &str = "pod-readiness-gate.elbv2.k8s.aws";
/// The Service mutator (`--nlb-set-class-on-new-services`), under the peer's name.
pub const SERVICE_PATH: &str = "/mutate-v1-service";
const SERVICE_WEBHOOK_NAME: &str = "mservice.elbv2.k8s.aws";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("certificate: {0}")]
    Cert(String),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("apply: {0}")]
    Apply(#[from] crate::k8s::apply::ApplyError),
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
}

/// The CA (for caBundle) and serving certificate, PEM.
#[derive(Clone, Debug)]
pub struct WebhookCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `dns_names` and loopback.
pub fn generate_cert(dns_names: &[String], ips: &[IpAddr]) -> Result<WebhookCert, WebhookError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let e = |e: rcgen::Error| WebhookError::Cert(e.to_string());
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.distinguished_name
        .push(DnType::CommonName, "causeway webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(dns_names.to_vec()).map_err(e)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "causeway webhook");
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).map_err(e)?;
    Ok(WebhookCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn secret_cert(s: &Secret) -> Option<WebhookCert> {
    let d = s.data.as_ref()?;
    let get = |k: &str| String::from_utf8(d.get(k)?.0.clone()).ok();
    Some(WebhookCert {
        ca_pem: get("ca.crt")?,
        cert_pem: get("tls.crt")?,
        key_pem: get("tls.key")?,
    })
}

/// The shared certificate: read from the Secret, or generated and stored by whichever
/// replica gets there first.
async fn ensure_cert(client: &Client, args: &WebhookSettings) -> Result<WebhookCert, WebhookError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &args.service_namespace);
    if let Some(s) = api.get_opt(&args.secret).await?
        && let Some(c) = secret_cert(&s)
    {
        return Ok(c);
    }
    let svc = &args.service;
    let ns = &args.service_namespace;
    let mut names = vec![
        svc.clone(),
        format!("{svc}.{ns}"),
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.cluster.local"),
        "localhost".to_string(),
    ];
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if let Some(host) = args.url.as_deref().and_then(url_host) {
        match host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(host),
        }
    }
    let cert = generate_cert(&names, &ips)?;
    let data: BTreeMap<String, ByteString> = [
        ("ca.crt", &cert.ca_pem),
        ("tls.crt", &cert.cert_pem),
        ("tls.key", &cert.key_pem),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
    .collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(args.secret.clone()),
            namespace: Some(ns.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "causeway".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(cert),
        // Another replica won the race: use its certificate.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let s = api.get(&args.secret).await?;
            secret_cert(&s).ok_or_else(|| WebhookError::Cert("secret without a certificate".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The host of an `https://host:port/path` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// The MutatingWebhookConfiguration we own.
pub fn webhook_configuration(args: &WebhookSettings, ca_pem: &str) -> MutatingWebhookConfiguration {
    let client_config = |path: &str| WebhookClientConfig {
        ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
        // Out of cluster: the URL given for the pod webhook, with this webhook's path.
        url: args.url.as_ref().map(|u| u.replace(PATH, path)),
        service: args.url.is_none().then(|| ServiceReference {
            namespace: args.service_namespace.clone(),
            name: args.service.clone(),
            path: Some(path.to_string()),
            port: Some(443),
        }),
    };
    // Every mutator fails open (a missing webhook must never block a create), is called
    // on CREATE of one core resource, and answers within 5 s.
    let hook = |name: &str, path: &str, resource: &str, namespace_selector, reinvoke: bool| {
        MutatingWebhook {
            name: name.to_string(),
            admission_review_versions: vec!["v1".to_string()],
            client_config: client_config(path),
            failure_policy: Some("Ignore".to_string()),
            side_effects: "None".to_string(),
            timeout_seconds: Some(5),
            reinvocation_policy: reinvoke.then(|| "IfNeeded".to_string()),
            namespace_selector,
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_string()]),
                operations: Some(vec!["CREATE".to_string()]),
                resources: Some(vec![resource.to_string()]),
                scope: Some("Namespaced".to_string()),
            }]),
            ..MutatingWebhook::default()
        }
    };
    // A controller watching one namespace (`--targets-namespace`) mutates that namespace only.
    let watched = || {
        args.namespace
            .as_ref()
            .map(|ns| [("kubernetes.io/metadata.name".to_string(), ns.clone())].into())
    };
    let mut webhooks = Vec::new();
    if args.readiness_gates {
        let labelled = LabelSelector {
            match_labels: Some([(INJECT_LABEL.to_string(), "enabled".to_string())].into()),
            ..LabelSelector::default()
        };
        webhooks.push(hook(WEBHOOK_NAME, PATH, "pods", Some(labelled), true));
    }
    if args.pod_identity.is_some() {
        // A namespace labelled `causeway.dev/pod-identity-inject=disabled` opts out.
        let not_opted_out = LabelSelector {
            match_expressions: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                    key: crate::iam::pod_identity::OPT_OUT_LABEL.to_string(),
                    operator: "NotIn".to_string(),
                    values: Some(vec!["disabled".to_string()]),
                },
            ]),
            match_labels: watched(),
        };
        webhooks.push(hook(
            crate::iam::pod_identity::WEBHOOK_NAME,
            crate::iam::pod_identity::PATH,
            "pods",
            Some(not_opted_out),
            true,
        ));
    }
    if args.service_class.is_some() {
        let selector = watched().map(|labels| LabelSelector {
            match_labels: Some(labels),
            ..LabelSelector::default()
        });
        webhooks.push(hook(
            SERVICE_WEBHOOK_NAME,
            SERVICE_PATH,
            "services",
            selector,
            false,
        ));
    }
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(args.configuration_name.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "causeway".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        webhooks: Some(webhooks),
    }
}

/// Pure: the gates a new pod needs — one per ip binding in its namespace whose Service
/// selects it — and the JSON patch adding those it lacks.
pub fn gates_for_pod(
    pod: &Pod,
    namespace: &str,
    bindings: &[Arc<TargetGroupBinding>],
    service: impl Fn(&str) -> Option<Arc<Service>>,
) -> Vec<String> {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let existing: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|gs| gs.iter().map(|g| g.condition_type.as_str()).collect())
        .unwrap_or_default();
    let mut out: Vec<String> = bindings
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(namespace))
        .filter(|b| b.meta().deletion_timestamp.is_none())
        .filter(|b| b.spec.target_type == Some(TargetType::Ip))
        .filter(|b| {
            service(&b.spec.service_ref.name)
                .and_then(|s| s.spec.as_ref()?.selector.clone())
                .is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
        })
        .map(|b| readiness_gate(&b.name_any()))
        .filter(|g| !existing.contains(&g.as_str()))
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn gate_patch(pod: &Pod, gates: &[String]) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = gates
        .iter()
        .map(|g| serde_json::json!({"conditionType": g}))
        .collect();
    let has_list = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some();
    if has_list {
        serde_json::Value::Array(
            entries
                .into_iter()
                .map(|e| serde_json::json!({"op": "add", "path": "/spec/readinessGates/-", "value": e}))
                .collect(),
        )
    } else {
        serde_json::json!([{"op": "add", "path": "/spec/readinessGates", "value": entries}])
    }
}

use kube::Resource;

#[derive(Clone)]
struct AppState {
    bindings: Store<TargetGroupBinding>,
    services: Store<Service>,
    service_class: Option<String>,
}

async fn mutate_service(State(st): State<AppState>, body: Bytes) -> impl IntoResponse {
    review_response(&review_service(st.service_class.as_deref(), &body))
}

/// The request in an AdmissionReview body, or the review answering a malformed one.
pub(crate) fn admission_request<K>(
    body: &[u8],
) -> Result<AdmissionRequest<K>, Box<AdmissionReview<kube::core::DynamicObject>>>
where
    K: kube::Resource + serde::de::DeserializeOwned,
{
    serde_json::from_slice::<AdmissionReview<K>>(body)
        .map_err(|e| e.to_string())
        .and_then(|r| {
            r.try_into()
                .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string())
        })
        .map_err(|e| {
            warn!(error = %e, "malformed admission review");
            Box::new(AdmissionResponse::invalid(e).into_review())
        })
}

/// `resp` with JSON patch `patch` (`what` names it in logs), or `resp` unchanged when the
/// patch cannot be used (the webhook fails open).
pub(crate) fn with_patch(
    resp: AdmissionResponse,
    patch: serde_json::Value,
    what: &str,
) -> (AdmissionResponse, bool) {
    match serde_json::from_value::<json_patch::Patch>(patch)
        .map_err(|e| e.to_string())
        .and_then(|p| resp.clone().with_patch(p).map_err(|e| e.to_string()))
    {
        Ok(patched) => (patched, true),
        Err(e) => {
            warn!(error = %e, what, "could not build the patch");
            (resp, false)
        }
    }
}

/// The webhooks' HTTP answer: the review as JSON.
pub(crate) fn review_response(
    review: &AdmissionReview<kube::core::DynamicObject>,
) -> impl IntoResponse + use<> {
    let json = serde_json::to_vec(review).unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
}

/// The Service mutator: our class on new LoadBalancer Services that name none.
fn review_service(class: Option<&str>, body: &[u8]) -> AdmissionReview<kube::core::DynamicObject> {
    let req: AdmissionRequest<Service> = match admission_request(body) {
        Ok(r) => r,
        Err(review) => return *review,
    };
    let resp = AdmissionResponse::from(&req);
    let patch = class
        .zip(req.object.as_ref())
        .and_then(|(class, svc)| crate::nlb::annotations::class_patch(svc, class));
    let Some(patch) = patch else {
        return resp.into_review();
    };
    let (resp, patched) = with_patch(resp, patch, "Service class");
    if patched {
        debug!(namespace = req.namespace.as_deref().unwrap_or(""), service = %req.name, "setting the load balancer class");
    }
    resp.into_review()
}

async fn mutate(State(st): State<AppState>, body: Bytes) -> impl IntoResponse {
    review_response(&review_pod(&st, &body))
}

fn review_pod(st: &AppState, body: &[u8]) -> AdmissionReview<kube::core::DynamicObject> {
    let req: AdmissionRequest<Pod> = match admission_request(body) {
        Ok(r) => r,
        Err(review) => return *review,
    };
    let resp = AdmissionResponse::from(&req);
    let Some(pod) = req.object.as_ref() else {
        return resp.into_review();
    };
    let ns = req.namespace.clone().unwrap_or_default();
    let gates = gates_for_pod(pod, &ns, &st.bindings.state(), |name| {
        st.services.get(&ObjectRef::new(name).within(&ns))
    });
    if gates.is_empty() {
        return resp.into_review();
    }
    let (resp, patched) = with_patch(resp, gate_patch(pod, &gates), "readiness gates");
    if patched {
        debug!(namespace = %ns, pod = pod.metadata.name.as_deref().or(pod.metadata.generate_name.as_deref()).unwrap_or(""), ?gates, "injecting readiness gates");
    }
    resp.into_review()
}

/// TLS connections handed to axum by a background acceptor, so one slow handshake never
/// blocks the others.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The acceptor only stops with the server; park until axum is dropped.
            None => std::future::pending().await,
        }
    }
    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

fn tls_acceptor(cert: &WebhookCert) -> Result<TlsAcceptor, WebhookError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let t = |e: &dyn std::fmt::Display| WebhookError::Tls(e.to_string());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| t(&e))?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| t(&e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| t(&e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| t(&e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Starts the webhook: certificate, configuration, Service cache and HTTPS server.
/// Returns the bound address; the server runs until `stop` flips.
pub async fn start(
    client: Client,
    args: WebhookSettings,
    bindings: Store<TargetGroupBinding>,
    iam_bindings: Option<Store<crate::crd::IamRoleBinding>>,
    stop: watch::Receiver<bool>,
) -> Result<SocketAddr, WebhookError> {
    let cert = ensure_cert(&client, &args).await?;
    let acceptor = tls_acceptor(&cert)?;
    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: args.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| WebhookError::Bind {
        addr: args.addr,
        source,
    })?;

    // Services are small once pruned; the webhook needs their selectors on every replica.
    let (services, writer) = reflector::store::<Service>();
    let api: Api<Service> = match args.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let svc_stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(prune_service)
        .reflect(writer)
        .applied_objects();
    {
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut s = std::pin::pin!(svc_stream);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    item = s.next() => match item {
                        Some(Err(e)) => warn!(error = %e, "webhook Service watch failed; retrying"),
                        Some(Ok(_)) => {}
                        None => break,
                    }
                }
            }
        });
    }

    let (tx, rx) = mpsc::channel(64);
    {
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    a = listener.accept() => a,
                };
                let (tcp, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(error = %e, "webhook accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(error = %e, %peer, "webhook TLS handshake failed"),
                        Err(_) => debug!(%peer, "webhook TLS handshake timed out"),
                    }
                });
            }
        });
    }
    let mut app = Router::new()
        .route(PATH, post(mutate))
        .route(SERVICE_PATH, post(mutate_service))
        .with_state(AppState {
            bindings,
            services: services.clone(),
            service_class: args.service_class.clone(),
        });
    if let (Some(settings), Some(iam_bindings)) = (args.pod_identity.clone(), iam_bindings) {
        app = app.merge(
            Router::new()
                .route(
                    crate::iam::pod_identity::PATH,
                    post(crate::iam::pod_identity::mutate),
                )
                .with_state(crate::iam::pod_identity::PodIdentityWebhook {
                    bindings: iam_bindings,
                    client: client.clone(),
                    settings,
                }),
        );
    }
    {
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(TlsListener { rx, local }, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                warn!(error = %e, "webhook server stopped");
            }
        });
    }

    // Every replica applies the same configuration; the caBundle is the shared CA.
    let mwc_api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    crate::k8s::apply::apply(&mwc_api, &webhook_configuration(&args, &cert.ca_pem)).await?;
    let _ = services.wait_until_ready().await;
    info!(addr = %local, configuration = %args.configuration_name, "serving the mutating webhook");
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/1";

    fn binding(name: &str, svc: &str, t: Option<TargetType>) -> Arc<TargetGroupBinding> {
        let b = fixtures::target_group_binding("ns", name, ARN, svc, 80, "ip");
        Arc::new(fixtures::with(
            b,
            serde_json::json!({"spec": {"targetType": t}}),
        ))
    }

    fn service(selector: &[(&str, &str)]) -> Arc<Service> {
        let selector: BTreeMap<_, _> = selector.iter().copied().collect();
        let s = fixtures::service("ns", "web", 80, None, serde_json::json!({}));
        Arc::new(fixtures::with(
            s,
            serde_json::json!({"spec": {"selector": selector}}),
        ))
    }

    fn pod(labels: &[(&str, &str)], gates: Option<&[&str]>) -> Pod {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"generateName": "web-", "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "spec": {"containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap();
        if let Some(gs) = gates {
            p.spec.as_mut().unwrap().readiness_gates = Some(
                gs.iter()
                    .map(|g| k8s_openapi::api::core::v1::PodReadinessGate {
                        condition_type: g.to_string(),
                    })
                    .collect(),
            );
        }
        p
    }

    #[test]
    fn gates_for_ip_bindings_whose_service_selects_the_pod() {
        let bindings = vec![
            binding("web-ip", "web", Some(TargetType::Ip)),
            binding("web-inst", "web", Some(TargetType::Instance)),
            binding("other", "api", Some(TargetType::Ip)),
        ];
        let svc = service(&[("app", "web")]);
        let lookup = |n: &str| (n == "web").then(|| svc.clone());
        let p = pod(&[("app", "web"), ("x", "y")], None);
        assert_eq!(
            gates_for_pod(&p, "ns", &bindings, lookup),
            ["target-health.elbv2.k8s.aws/web-ip"]
        );
        assert!(gates_for_pod(&pod(&[("app", "db")], None), "ns", &bindings, lookup).is_empty());
        assert!(gates_for_pod(&p, "elsewhere", &bindings, lookup).is_empty());
        let patch = gate_patch(&p, &["g".to_string()]);
        assert_eq!(patch[0]["path"], "/spec/readinessGates");
        // Already gated: nothing to add (idempotent on reinvocation).
        let gated = pod(
            &[("app", "web")],
            Some(&["target-health.elbv2.k8s.aws/web-ip"]),
        );
        assert!(gates_for_pod(&gated, "ns", &bindings, lookup).is_empty());
        let other = pod(&[("app", "web")], Some(&["custom"]));
        assert_eq!(
            gate_patch(&other, &["g".to_string()])[0]["path"],
            "/spec/readinessGates/-"
        );
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://127.0.0.1:9443/mutate").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("https://[::1]:9443/x").as_deref(), Some("::1"));
        assert_eq!(
            url_host("https://hook.example.com/x").as_deref(),
            Some("hook.example.com")
        );
    }

    #[test]
    fn generated_certificate_chains_to_its_ca() {
        let c = generate_cert(&["svc.ns.svc".into()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap();
        assert!(c.ca_pem.contains("BEGIN CERTIFICATE"));
        assert!(c.key_pem.contains("PRIVATE KEY"));
        tls_acceptor(&c).unwrap();
    }

    #[test]
    fn the_service_mutator_is_configured_only_when_asked_and_scoped_to_the_namespace() {
        let mut args = WebhookSettings {
            namespace: Some("shop".into()),
            addr: "127.0.0.1:9443".parse().unwrap(),
            service_namespace: "causeway".into(),
            service: "causeway-webhook".into(),
            url: Some(format!("https://127.0.0.1:9443{PATH}")),
            configuration_name: "causeway-pod-readiness-gate".into(),
            secret: "causeway-webhook-tls".into(),
            service_class: None,
            readiness_gates: true,
            pod_identity: None,
        };
        let hooks = |a: &WebhookSettings| webhook_configuration(a, "ca").webhooks.unwrap();
        assert_eq!(hooks(&args).len(), 1);
        // The token-path injector: its own path, fail-open, scoped like the others, with
        // the opt-out label.
        args.pod_identity = Some(crate::iam::pod_identity::InjectSettings::default());
        let with_injector = hooks(&args);
        let injector = with_injector
            .iter()
            .find(|h| h.name == crate::iam::pod_identity::WEBHOOK_NAME)
            .expect("pod-identity webhook");
        assert_eq!(
            injector.client_config.url.as_deref(),
            Some("https://127.0.0.1:9443/mutate-v1-pod-identity")
        );
        assert_eq!(injector.failure_policy.as_deref(), Some("Ignore"));
        let selector = injector.namespace_selector.as_ref().unwrap();
        assert_eq!(
            selector.match_expressions.as_ref().unwrap()[0].key,
            crate::iam::pod_identity::OPT_OUT_LABEL
        );
        args.readiness_gates = false;
        assert_eq!(hooks(&args).len(), 1);
        args.readiness_gates = true;
        args.pod_identity = None;
        args.service_class = Some("service.k8s.aws/nlb".into());
        let all = hooks(&args);
        let svc = all
            .iter()
            .find(|h| h.name == SERVICE_WEBHOOK_NAME)
            .expect("service webhook");
        assert_eq!(
            svc.client_config.url.as_deref(),
            Some("https://127.0.0.1:9443/mutate-v1-service")
        );
        assert_eq!(svc.failure_policy.as_deref(), Some("Ignore"));
        let sel = svc
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(sel["kubernetes.io/metadata.name"], "shop");
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Service"},
                "resource": {"group": "", "version": "v1", "resource": "services"},
                "operation": "CREATE", "name": "edge", "namespace": "shop",
                "userInfo": {}, "object": {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "edge", "namespace": "shop"},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}}
        });
        let review = review_service(Some("service.k8s.aws/nlb"), body.to_string().as_bytes());
        let resp = serde_json::to_value(&review).unwrap();
        assert_eq!(resp["response"]["allowed"], true);
        assert_eq!(resp["response"]["patchType"], "JSONPatch");
        let unchanged = review_service(None, body.to_string().as_bytes());
        assert!(
            serde_json::to_value(&unchanged).unwrap()["response"]
                .get("patch")
                .is_none()
        );
    }
}
