//! The token path end to end: the controller's webhook injects the projected-token volume and
//! the container-credentials variables into pods whose service account is bound; the agent
//! serves `GET /v1/credentials` on 169.254.170.23:80 (its real DNAT rule) to network
//! namespaces standing in for those pods, identifying each by a TokenReview of its token
//! (minted by the apiserver's TokenRequest, bound to the pod, as the kubelet would). STS is
//! moto behind a recording proxy, so the session tags on AssumeRole are read back.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, SystemTime};

use base64::Engine;
use causeway_testenv::faults::FaultProxy;
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::agent::{Agent, NetGuard, TestNode, http_to, in_netns, sdk_chain_in};
use crate::common::{Controller, free_port};

const POD_IDENTITY: &str = "169.254.170.23:80";
const PATH: &str = "/v1/credentials";
const AUDIENCE: &str = "pods.eks.amazonaws.com";
const WAIT: Duration = Duration::from_secs(60);

/// While the test runs, the node's own traffic to 169.254.170.23:80 that the agent's nat
/// OUTPUT rule did not redirect is rejected (filter OUTPUT sees packets after nat), so a
/// missing rule fails the test instead of sending a packet off the machine.
struct SafetyNet;

const SAFETY: [&str; 12] = [
    "-d",
    "169.254.170.23/32",
    "-p",
    "tcp",
    "--dport",
    "80",
    "-m",
    "comment",
    "--comment",
    "causeway-test-safety",
    "-j",
    "REJECT",
];

impl SafetyNet {
    fn install() -> SafetyNet {
        let _ = Command::new("iptables")
            .args(["-w", "-D", "OUTPUT"])
            .args(SAFETY)
            .output();
        let out = Command::new("iptables")
            .args(["-w", "-I", "OUTPUT", "1"])
            .args(SAFETY)
            .output()
            .expect("iptables");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        SafetyNet
    }
}

impl Drop for SafetyNet {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args(["-w", "-D", "OUTPUT"])
            .args(SAFETY)
            .output();
    }
}

/// Deletes a cluster-scoped MutatingWebhookConfiguration however the test ends.
struct WebhookGuard {
    env: &'static causeway_testenv::env::EnvInfo,
    name: String,
}

impl Drop for WebhookGuard {
    fn drop(&mut self) {
        crate::common::delete_cluster_scoped::<MutatingWebhookConfiguration>(
            self.env,
            self.name.clone(),
        );
    }
}

async fn service_account(ctx: &TestCtx, name: &str, irsa_role: Option<&str>) {
    let annotations = match irsa_role {
        Some(r) => serde_json::json!({"eks.amazonaws.com/role-arn": r}),
        None => serde_json::json!({}),
    };
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "annotations": annotations},
    }))
    .unwrap();
    Api::<ServiceAccount>::namespaced(ctx.client.clone(), &ctx.namespace)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create service account");
}

/// A Pod of service account `sa` bound to `node`, Running with `ip` (hostNetwork pods have
/// the node's); `env` is what its container sets itself. Returns the pod as created (after
/// the webhook).
async fn token_pod(
    ctx: &TestCtx,
    node: &str,
    name: &str,
    sa: &str,
    ip: &str,
    host_network: bool,
    env: serde_json::Value,
) -> Pod {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "serviceAccountName": sa,
            "hostNetwork": host_network,
            "containers": [{"name": "app", "image": "registry.invalid/app:1", "env": env}],
            "tolerations": [{"operator": "Exists"}]
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let status = serde_json::json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": ip
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch pod status");
    created
}

/// What the kubelet would write into the projected volume: a token for `sa`, bound to the pod.
async fn pod_token(ctx: &TestCtx, sa: &str, pod: &Pod, audience: &str) -> String {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![audience.to_string()]),
            expiration_seconds: Some(3600),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        }),
        ..TokenRequest::default()
    };
    Api::<ServiceAccount>::namespaced(ctx.client.clone(), &ctx.namespace)
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token status")
        .token
        .expect("token")
}

/// `token` re-signed with the apiserver's service-account key after `edit` changes its
/// claims: a token the apiserver would accept but for what `edit` did.
fn resign(ctx: &TestCtx, token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = parts.next().unwrap().to_string();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
    edit(&mut claims);
    let signing_input = format!("{header}.{}", b64.encode(claims.to_string()));
    let pem = std::fs::read_to_string(ctx.env.dir.join("pki/sa.key")).expect("sa.key");
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
        &rng,
    )
    .expect("the service-account key is ECDSA P-256");
    let sig = key.sign(&rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64.encode(sig.as_ref()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// GET /v1/credentials at `addr` from inside `ns` (the host's namespace when `None`).
async fn credentials(
    ns: Option<&str>,
    addr: SocketAddr,
    token: &str,
) -> std::io::Result<(u16, String)> {
    let headers = vec![("Authorization".to_string(), token.to_string())];
    match ns {
        Some(ns) => in_netns(ns, move || http_to(addr, "GET", PATH, &headers)).await,
        None => tokio::task::spawn_blocking(move || http_to(addr, "GET", PATH, &headers))
            .await
            .unwrap(),
    }
}

/// Polls GET /v1/credentials from inside `ns` until the status satisfies `done`.
async fn until(
    ns: &str,
    addr: SocketAddr,
    token: &str,
    done: fn(u16) -> bool,
) -> Result<(u16, String), String> {
    wait_for("the container-credentials answer", WAIT, || async move {
        match credentials(Some(ns), addr, token).await {
            Ok((s, body)) if done(s) => Some((s, body)),
            _ => None,
        }
    })
    .await
    .map_err(|e| e.to_string())
}

/// The role ARN moto says `doc`'s credentials belong to (sts:GetCallerIdentity with them).
async fn caller_of(ctx: &TestCtx, doc: &serde_json::Value) -> String {
    let creds = aws_credential_types::Credentials::new(
        doc["AccessKeyId"].as_str().unwrap(),
        doc["SecretAccessKey"].as_str().unwrap(),
        doc["Token"].as_str().map(str::to_string),
        None,
        "test",
    );
    let config = aws_sdk_sts::config::Builder::from(&ctx.aws().await)
        .credentials_provider(creds)
        .build();
    aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .arn()
        .unwrap_or_default()
        .to_string()
}

fn env_of(pod: &Pod, name: &str) -> Option<String> {
    pod.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

#[tokio::test]
async fn token_path_serves_each_pod_its_own_role_and_refuses_every_other_token() {
    let ctx = TestCtx::new("agent-t").await.unwrap();
    let account = ctx.env.seed.account_id.clone();
    let role = |name: &str| format!("arn:aws:iam::{account}:role/{name}");
    let node = TestNode::create(&ctx).await;
    let guard = NetGuard::new('t', 60, 2);
    let _safety = SafetyNet::install();
    let proxy = FaultProxy::start(&ctx.env.moto_url, 7)
        .await
        .expect("proxy");
    proxy.record("AssumeRole");

    crate::crds::install(&ctx).await;
    // The controller's webhook (iam reconciler only), scoped to this namespace.
    let hook_port = free_port();
    let url = format!("https://127.0.0.1:{hook_port}/mutate-v1-pod");
    let mwc = unique_name("causeway-pi");
    let _mwc_guard = WebhookGuard {
        env: ctx.env,
        name: mwc.clone(),
    };
    let lease = unique_name("pi");
    let controller = Controller::start_as_admin(
        &ctx,
        "controller-t",
        &lease,
        &[
            "--controllers",
            "iam",
            "--log-format",
            "json",
            "--targets-namespace",
            &ctx.namespace,
            "--webhook-addr",
            &format!("127.0.0.1:{hook_port}"),
            "--webhook-url",
            &url,
            "--webhook-namespace",
            &ctx.namespace,
            "--webhook-configuration-name",
            &mwc,
            "--webhook-secret",
            "causeway-pi-tls",
            "--pod-identity-webhook",
        ],
    );
    let mwcs: Api<MutatingWebhookConfiguration> = Api::all(ctx.client.clone());
    wait_for("pod-identity webhook configured", WAIT, || async {
        let m = mwcs.get_opt(&mwc).await.ok()??;
        m.webhooks?
            .iter()
            .any(|w| w.name == "pod-identity.causeway.dev" && w.client_config.ca_bundle.is_some())
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", controller.proc.logs()));

    // Bindings: "web" by IamRoleBinding, "irsa" by IRSA's annotation, "host" (a hostNetwork
    // pod) by IamRoleBinding; "plain" is bound to nothing.
    service_account(&ctx, "web", None).await;
    service_account(&ctx, "irsa", Some(&role("causeway-writer"))).await;
    service_account(&ctx, "host", None).await;
    service_account(&ctx, "plain", None).await;
    ctx.apply(&format!(
        "apiVersion: causeway.dev/v1alpha1\nkind: IamRoleBinding\nmetadata: {{name: web}}\nspec: {{role: causeway-reader, serviceAccountName: web}}\n---\n\
         apiVersion: causeway.dev/v1alpha1\nkind: IamRoleBinding\nmetadata: {{name: host}}\nspec: {{role: causeway-app, serviceAccountName: host, targetRoleArn: \"{}\", targetExternalID: ext-123, disableSessionTags: true}}\n",
        role("causeway-writer")
    ))
    .await
    .expect("bindings");
    // The webhook's cache sees the bindings before the pods arrive (dry-run creates go
    // through admission and store nothing).
    let probe: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {"serviceAccountName": "host", "containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
    }))
    .unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    wait_for("the webhook sees the bindings", WAIT, || async {
        let p = Api::<Pod>::namespaced(ctx.client.clone(), &ctx.namespace)
            .create(&dry_run, &probe)
            .await
            .ok()?;
        env_of(&p, "AWS_CONTAINER_CREDENTIALS_FULL_URI").map(|_| ())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", controller.proc.logs()));

    let (net_a, net_b) = (&guard.nets[0], &guard.nets[1]);
    let none = serde_json::json!([]);
    let a = token_pod(
        &ctx,
        &node.name,
        "web-a",
        "web",
        &net_a.pod_ip,
        false,
        none.clone(),
    )
    .await;
    let b = token_pod(
        &ctx,
        &node.name,
        "irsa-b",
        "irsa",
        &net_b.pod_ip,
        false,
        none.clone(),
    )
    .await;
    let h = token_pod(
        &ctx,
        &node.name,
        "host-h",
        "host",
        &net_a.host_ip,
        true,
        none.clone(),
    )
    .await;
    let plain = token_pod(
        &ctx,
        &node.name,
        "plain-p",
        "plain",
        "10.77.99.2",
        false,
        none,
    )
    .await;
    let own = serde_json::json!([{"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://127.0.0.1:1/mine"}]);
    let itself = token_pod(&ctx, &node.name, "self-s", "web", "10.77.99.3", false, own).await;

    // Injection: bound pods get the variables and the projected token; the rest are untouched.
    for p in [&a, &b, &h] {
        assert_eq!(
            env_of(p, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
            Some("http://169.254.170.23/v1/credentials"),
            "{:?} not injected\n{}",
            p.metadata.name,
            controller.proc.logs()
        );
        let volume = p
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "eks-pod-identity-token");
        let source = volume
            .and_then(|v| v.projected.as_ref())
            .and_then(|pr| pr.sources.as_ref())
            .and_then(|s| s[0].service_account_token.clone())
            .expect("projected token volume");
        assert_eq!(source.audience.as_deref(), Some(AUDIENCE));
    }
    assert_eq!(env_of(&plain, "AWS_CONTAINER_CREDENTIALS_FULL_URI"), None);
    assert_eq!(
        env_of(&itself, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
        Some("http://127.0.0.1:1/mine")
    );
    assert!(
        itself
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .iter()
            .flatten()
            .all(|v| v.name != "eks-pod-identity-token")
    );

    let agent = Agent::start_on(
        &ctx,
        &node,
        &guard,
        "agent-t",
        &[
            "--aws-endpoint-url".into(),
            proxy.url(),
            "--cluster-name".into(),
            "ci-token".into(),
            "--iptables-host-network".into(),
            "--node-ipv6".into(),
            guard.nets[0].host_ip6.clone(),
        ],
    )
    .await;
    let service: SocketAddr = POD_IDENTITY.parse().unwrap();
    let token_a = pod_token(&ctx, "web", &a, AUDIENCE).await;
    let token_b = pod_token(&ctx, "irsa", &b, AUDIENCE).await;
    let token_h = pod_token(&ctx, "host", &h, AUDIENCE).await;

    // Each pod, through the DNAT rule for 169.254.170.23, gets its own role.
    let (_, served_a) = until(&net_a.ns, service, &token_a, |s| s == 200)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent.proc.logs()));
    let doc_a: serde_json::Value = serde_json::from_str(&served_a).unwrap();
    for field in [
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "AccountId",
        "Expiration",
    ] {
        assert!(doc_a[field].is_string(), "{field} missing: {doc_a}");
    }
    assert_eq!(doc_a["AccountId"], account.as_str());
    let caller = caller_of(&ctx, &doc_a).await;
    assert!(
        caller.contains(":assumed-role/causeway-reader/"),
        "{caller}"
    );

    let (status, body) = credentials(Some(&net_b.ns), service, &token_b)
        .await
        .unwrap();
    assert_eq!(status, 200, "IRSA pod: {body}\n{}", agent.proc.logs());
    let caller = caller_of(&ctx, &serde_json::from_str(&body).unwrap()).await;
    assert!(
        caller.contains(":assumed-role/causeway-writer/"),
        "IRSA role: {caller}"
    );

    // IPv6: pod B is dual-stack; [fd00:ec2::23]:80 reaches the endpoint through the
    // ip6tables rule, and [fd00:ec2::254]:80 the metadata API (which binds nothing for B: 404).
    let both =
        serde_json::json!({"status": {"podIPs": [{"ip": net_b.pod_ip}, {"ip": net_b.pod_ip6}]}});
    Api::<Pod>::namespaced(ctx.client.clone(), &ctx.namespace)
        .patch_status("irsa-b", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .expect("dual-stack pod B");
    let service6: SocketAddr = "[fd00:ec2::23]:80".parse().unwrap();
    let (status, body) = until(&net_b.ns, service6, &token_b, |s| s != 403 && s != 0)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent.proc.logs()));
    assert_eq!(status, 200, "IPv6: {body}\n{}", agent.proc.logs());
    let caller = caller_of(&ctx, &serde_json::from_str(&body).unwrap()).await;
    assert!(
        caller.contains(":assumed-role/causeway-writer/"),
        "IPv6 role: {caller}"
    );
    let metadata6: SocketAddr = "[fd00:ec2::254]:80".parse().unwrap();
    let (status, _) = in_netns(&net_b.ns, move || {
        http_to(
            metadata6,
            "GET",
            "/latest/meta-data/iam/security-credentials/",
            &[],
        )
    })
    .await
    .expect("the IPv6 metadata address is intercepted");
    assert_eq!(status, 404);

    // The hostNetwork pod speaks from the node (through the nat OUTPUT rule for
    // 169.254.170.23) and still gets its own role, as it does at the node's port directly.
    let node_addr: SocketAddr = format!("{}:{}", net_a.host_ip, agent.credentials_port)
        .parse()
        .unwrap();
    for addr in [service, node_addr] {
        let (status, body) = credentials(None, addr, &token_h).await.unwrap();
        assert_eq!(
            status,
            200,
            "hostNetwork pod via {addr}: {body}\n{}",
            agent.proc.logs()
        );
        let caller = caller_of(&ctx, &serde_json::from_str(&body).unwrap()).await;
        // Its binding chains to a target role: the pod gets the target's credentials.
        assert!(
            caller.contains(":assumed-role/causeway-writer/"),
            "hostNetwork role: {caller}"
        );
    }

    // Refused: another pod's token, a token for another audience, an expired token, no token.
    let (status, body) = credentials(Some(&net_b.ns), service, &token_a)
        .await
        .unwrap();
    assert_eq!(status, 403, "pod B with pod A's token: {body}");
    let (status, body) = credentials(None, node_addr, &token_a).await.unwrap();
    assert_eq!(status, 403, "the node with pod A's token: {body}");
    let sts_token = pod_token(&ctx, "web", &a, "sts.amazonaws.com").await;
    let (status, body) = credentials(Some(&net_a.ns), service, &sts_token)
        .await
        .unwrap();
    assert_eq!(status, 401, "wrong audience: {body}");
    // Re-signed with the apiserver's key: accepted while valid, refused once expired.
    let fresh = resign(&ctx, &token_a, |c| c["exp"] = (now_secs() + 600).into());
    let (status, body) = credentials(Some(&net_a.ns), service, &fresh).await.unwrap();
    assert_eq!(status, 200, "a re-signed valid token: {body}");
    let expired = resign(&ctx, &token_a, |c| {
        c["iat"] = (now_secs() - 1200).into();
        c["nbf"] = (now_secs() - 1200).into();
        c["exp"] = (now_secs() - 600).into();
    });
    let (status, body) = credentials(Some(&net_a.ns), service, &expired)
        .await
        .unwrap();
    assert_eq!(status, 401, "expired: {body}");
    let (status, _) = credentials(Some(&net_a.ns), service, "").await.unwrap();
    assert_eq!(status, 401, "no token");

    // The Rust SDK's default chain, with only the injected variables (the token file holds
    // what the kubelet would write), resolves pod A's credentials.
    let dir = tempdir_for(&ctx);
    let token_file = dir.join("eks-pod-identity-token");
    std::fs::write(&token_file, &token_a).unwrap();
    let stdout = sdk_chain_in(
        &net_a.ns,
        &[
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                env_of(&a, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    .unwrap()
                    .into(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.clone().into(),
            ),
        ],
    );
    assert!(
        stdout.contains(&format!(
            "ACCESS_KEY_ID={}",
            doc_a["AccessKeyId"].as_str().unwrap()
        )),
        "the SDK chain did not get pod A's credentials:\n{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Pod Identity's session tags, transitive, on pod A's AssumeRole.
    let calls = proxy.recorded("AssumeRole");
    let session = format!("RoleSessionName={}.web-a", ctx.namespace);
    let call_a = calls
        .iter()
        .find(|c| c.contains(&session))
        .unwrap_or_else(|| panic!("no AssumeRole for pod A among {calls:?}"));
    let params: Vec<(String, String)> = call_a
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let tag = |key: &str| {
        let n = params
            .iter()
            .find(|(k, v)| k.starts_with("Tags.member.") && k.ends_with(".Key") && v == key)
            .map(|(k, _)| k.trim_end_matches(".Key").to_string())?;
        params
            .iter()
            .find(|(k, _)| *k == format!("{n}.Value"))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        tag("kubernetes-namespace").as_deref(),
        Some(ctx.namespace.as_str())
    );
    assert_eq!(tag("kubernetes-service-account").as_deref(), Some("web"));
    assert_eq!(tag("kubernetes-pod-name").as_deref(), Some("web-a"));
    assert_eq!(tag("kubernetes-pod-uid"), a.metadata.uid.clone());
    assert_eq!(tag("eks-cluster-name").as_deref(), Some("ci-token"));
    let transitive: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k.starts_with("TransitiveTagKeys.member."))
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(transitive.contains(&"kubernetes-pod-uid"), "{transitive:?}");

    // The hostNetwork pod's binding: no tags (disableSessionTags), then the target role
    // assumed with the first session's credentials and the target external ID.
    let host_session = format!("RoleSessionName={}.host-h", ctx.namespace);
    let host_calls: Vec<&String> = calls.iter().filter(|c| c.contains(&host_session)).collect();
    assert!(
        host_calls
            .iter()
            .any(|c| c.contains("causeway-app") && !c.contains("Tags.member")),
        "{host_calls:?}"
    );
    assert!(
        host_calls
            .iter()
            .any(|c| c.contains("causeway-writer") && c.contains("ExternalId=ext-123")),
        "{host_calls:?}"
    );

    // TokenReviews: one per distinct token, however often it is presented.
    let metrics = agent.scrape().await;
    println!(
        "token reviews after the checks:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("token_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for _ in 0..20 {
        let (status, _) = credentials(Some(&net_a.ns), service, &token_a)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let after = agent.scrape().await;
    assert_eq!(
        review_count(&metrics),
        review_count(&after),
        "cached tokens were reviewed again"
    );

    // A deleted pod's token gets nothing.
    Api::<Pod>::namespaced(ctx.client.clone(), &ctx.namespace)
        .delete(
            "web-a",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .expect("delete pod A");
    let (status, _) = until(&net_a.ns, service, &token_a, |s| s != 200)
        .await
        .unwrap();
    assert!(status == 401 || status == 403, "deleted pod: {status}");
    drop(agent);
    drop(controller);
    ctx.cleanup().await.unwrap();
}

fn review_count(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("causeway_agent_token_reviews_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn tempdir_for(ctx: &TestCtx) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("causeway-token-{}", ctx.namespace));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
