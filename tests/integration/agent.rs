//! `causeway agent` with real networking: network namespaces stand in for pods (a veth
//! pair each, with the pod's IP), the agent's real iptables DNAT rule intercepts
//! 169.254.169.254:80, Pod objects with those IPs live on the embedded apiserver (bound
//! to a Node that kwok does not manage, so nothing else touches their status), and STS is
//! moto. Every namespace, veth and rule a test adds is removed by a Drop guard.
//!
//! Needs root (CAP_NET_ADMIN), `ip` and `iptables`, as `cargo xtask test` provides.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::common::{Proc, causeway_bin, free_port};

const METADATA: &str = "169.254.169.254:80";
const CREDS: &str = "/latest/meta-data/iam/security-credentials/";
const WAIT: Duration = Duration::from_secs(60);

unsafe extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}
const CLONE_NEWNET: i32 = 0x4000_0000;

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn sh_ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One fake pod's network: a namespace `cw<tag>` with `cwp<tag>` (pod IP 10.77.N.2)
/// paired with `cwh<tag>` on the host (10.77.N.1), the pod's default route.
pub(crate) struct PodNet {
    pub(crate) ns: String,
    host_if: String,
    pub(crate) host_ip: String,
    pub(crate) pod_ip: String,
    /// The same pair on IPv6, `fd77:0:0:N::1` and `::2` (a dual-stack pod).
    pub(crate) host_ip6: String,
    pub(crate) pod_ip6: String,
}

/// Removes what a test added, however it ends.
pub(crate) struct NetGuard {
    pub(crate) nets: Vec<PodNet>,
    pub(crate) interface_glob: String,
}

impl NetGuard {
    /// `tag` is one letter unique to the test: interfaces are `cwh<tag><i>`, matched by `cwh<tag>+`.
    pub(crate) fn new(tag: char, subnet_base: u8, count: u8) -> NetGuard {
        let mut guard = NetGuard {
            nets: Vec::new(),
            interface_glob: format!("cwh{tag}+"),
        };
        for i in 0..count {
            let n = subnet_base + i;
            let net = PodNet {
                ns: format!("cw{tag}{i}"),
                host_if: format!("cwh{tag}{i}"),
                host_ip: format!("10.77.{n}.1"),
                pod_ip: format!("10.77.{n}.2"),
                host_ip6: format!("fd77:0:0:{n}::1"),
                pod_ip6: format!("fd77:0:0:{n}::2"),
            };
            let pod_if = format!("cwp{tag}{i}");
            // Leftovers from a killed earlier run would make `add` fail.
            let _ = sh(&["ip", "netns", "del", &net.ns]);
            let _ = sh(&["ip", "link", "del", &net.host_if]);
            guard.nets.push(net);
            let net = guard.nets.last().unwrap();
            sh_ok(&["ip", "netns", "add", &net.ns]);
            sh_ok(&[
                "ip",
                "link",
                "add",
                &net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &pod_if,
            ]);
            sh_ok(&["ip", "link", "set", &pod_if, "netns", &net.ns]);
            sh_ok(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", net.host_ip),
                "dev",
                &net.host_if,
            ]);
            // nodad: usable at once, without waiting for duplicate address detection.
            sh_ok(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{}/64", net.host_ip6),
                "dev",
                &net.host_if,
                "nodad",
            ]);
            sh_ok(&["ip", "link", "set", &net.host_if, "up"]);
            let inside = |args: &[&str]| {
                let mut full = vec!["ip", "netns", "exec", net.ns.as_str()];
                full.extend_from_slice(args);
                sh_ok(&full);
            };
            inside(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", net.pod_ip),
                "dev",
                &pod_if,
            ]);
            inside(&["ip", "link", "set", &pod_if, "up"]);
            inside(&["ip", "link", "set", "lo", "up"]);
            inside(&["ip", "route", "add", "default", "via", &net.host_ip]);
            inside(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{}/64", net.pod_ip6),
                "dev",
                &pod_if,
                "nodad",
            ]);
            inside(&["ip", "-6", "route", "add", "default", "via", &net.host_ip6]);
        }
        guard
    }

    fn our_rules(&self) -> usize {
        let out = sh(&["iptables", "-w", "-t", "nat", "-S", "PREROUTING"]);
        let tag = format!("causeway-agent:{}", self.interface_glob);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&tag))
            .count()
    }
}

impl Drop for NetGuard {
    fn drop(&mut self) {
        let _ = Command::new(causeway_bin())
            .args([
                "agent",
                "--cleanup-iptables",
                "--iptables-interface",
                self.interface_glob.as_str(),
            ])
            .output();
        for net in &self.nets {
            let _ = sh(&["ip", "netns", "del", &net.ns]);
            let _ = sh(&["ip", "link", "del", &net.host_if]);
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub(crate) async fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let path = format!("/run/netns/{ns}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A thread of its own, never a pooled one: setns(2) sticks to the thread for good.
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns(2) on this thread only, with a valid namespace fd.
        let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}");
        let _ = tx.send(f());
    });
    rx.await.expect("netns thread")
}

/// One HTTP/1.1 request to the metadata address over a fresh connection; connection
/// errors are returned.
fn http(method: &str, path: &str, headers: &[(String, String)]) -> std::io::Result<(u16, String)> {
    http_to(METADATA.parse().unwrap(), method, path, headers)
}

/// One HTTP/1.1 request to `addr` over a fresh connection; connection errors are returned.
pub(crate) fn http_to(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
        match addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let r = causeway::iam::agent::upstream::parse_response(&raw)?;
    Ok((r.status, String::from_utf8_lossy(&r.body).into_owned()))
}

/// GET on the agent's loopback metrics address (Connection: close, whole body).
async fn local_get(addr: String, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream =
            TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        let r = causeway::iam::agent::upstream::parse_response(&raw).ok()?;
        Some((r.status, String::from_utf8_lossy(&r.body).into_owned()))
    })
    .await
    .ok()
    .flatten()
}

/// The SDKs' IMDSv2 flow: token, role listing, then the role's credentials.
fn imdsv2_credentials() -> std::io::Result<(u16, String, String)> {
    let ttl = vec![(
        "X-aws-ec2-metadata-token-ttl-seconds".to_string(),
        "21600".to_string(),
    )];
    let (status, token) = http("PUT", "/latest/api/token", &ttl)?;
    if status != 200 {
        return Ok((status, String::new(), token));
    }
    let auth = vec![("X-aws-ec2-metadata-token".to_string(), token)];
    let (status, role) = http("GET", CREDS, &auth)?;
    if status != 200 {
        return Ok((status, String::new(), role));
    }
    let (status, body) = http("GET", &format!("{CREDS}{role}"), &auth)?;
    Ok((status, role, body))
}

async fn get_in(ns: &str, path: &str) -> std::io::Result<(u16, String)> {
    let path = path.to_string();
    in_netns(ns, move || http("GET", &path, &[])).await
}

/// A node for this test's agent, which kwok leaves alone (no kwok annotation).
pub(crate) struct TestNode {
    env: &'static causeway_testenv::env::EnvInfo,
    pub(crate) name: String,
}

impl TestNode {
    pub(crate) async fn create(ctx: &TestCtx) -> TestNode {
        let name = unique_name("cw-agent-node");
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"causeway.dev/test": "agent"}},
        }))
        .unwrap();
        Api::<Node>::all(ctx.client.clone())
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
        TestNode { env: ctx.env, name }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        crate::common::delete_cluster_scoped::<Node>(self.env, self.name.clone());
    }
}

/// Sets the test namespace's `iam.amazonaws.com/allowed-roles` (`None` removes it): with
/// namespace restrictions on, role annotations work only where the namespace allows them.
async fn allow_roles(ctx: &TestCtx, globs: Option<&str>) {
    let patch = serde_json::json!({"metadata": {"annotations": {"iam.amazonaws.com/allowed-roles": globs}}});
    Api::<Namespace>::all(ctx.client.clone())
        .patch(
            &ctx.namespace,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("annotate namespace");
}

/// A Pod bound to `node` with `ip`, Running; returns its uid.
async fn make_pod(ctx: &TestCtx, node: &str, name: &str, ip: &str, role: Option<&str>) -> String {
    let annotations = match role {
        Some(r) => serde_json::json!({"iam.amazonaws.com/role": r}),
        None => serde_json::json!({}),
    };
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            "tolerations": [{"operator": "Exists"}]
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // Admission needs the namespace's default ServiceAccount, which arrives shortly after it.
    let created = wait_for("pod created", WAIT, || async {
        pods.create(&PostParams::default(), &pod).await.ok()
    })
    .await
    .expect("create pod");
    set_phase(ctx, name, ip, "Running").await;
    created.metadata.uid.unwrap()
}

async fn set_phase(ctx: &TestCtx, name: &str, ip: &str, phase: &str) {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let status = serde_json::json!({"status": {
        "phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.77.0.1"
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch pod status");
}

/// A stand-in for the real metadata service on loopback (never 169.254.169.254).
fn upstream_stand_in() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nus-east-1",
            );
        }
    });
    addr
}

pub(crate) struct Agent {
    pub(crate) proc: Proc,
    args: Vec<String>,
    metrics: String,
    /// The container-credentials endpoint (`--credentials-addr`), on all addresses.
    pub(crate) credentials_port: u16,
}

impl Agent {
    async fn start(ctx: &TestCtx, node: &TestNode, guard: &NetGuard, name: &str) -> Agent {
        Self::start_on(ctx, node, guard, name, &[]).await
    }

    /// [`Agent::start`] with more flags.
    pub(crate) async fn start_on(
        ctx: &TestCtx,
        node: &TestNode,
        guard: &NetGuard,
        name: &str,
        more: &[String],
    ) -> Agent {
        let mut extra = vec![
            "--node-ip".to_string(),
            guard.nets[0].host_ip.clone(),
            "--iptables-interface".into(),
            guard.interface_glob.clone(),
        ];
        extra.extend_from_slice(more);
        Self::start_with(ctx, node, name, &extra).await
    }

    /// An agent for `node` with `extra` flags (`start` adds the DNAT rule's).
    async fn start_with(ctx: &TestCtx, node: &TestNode, name: &str, extra: &[String]) -> Agent {
        // The agent watches IamRoleBindings; server-side apply makes this idempotent.
        ctx.apply(&causeway::crd::render_all())
            .await
            .expect("install CRDs");
        let metrics = format!("127.0.0.1:{}", free_port());
        let credentials_port = free_port();
        let mut args = vec![
            "--log-format".to_string(),
            "json".into(),
            "agent".into(),
            "--node-name".into(),
            node.name.clone(),
            // Dual-stack sockets: the IPv4 and the IPv6 DNAT rules land on them.
            "--metadata-addr".into(),
            format!("[::]:{}", free_port()),
            "--metrics-addr".into(),
            metrics.clone(),
            "--credentials-addr".into(),
            format!("[::]:{credentials_port}"),
            "--metadata-upstream".into(),
            upstream_stand_in().to_string(),
        ];
        args.extend_from_slice(extra);
        let agent = Agent {
            proc: Self::spawn(ctx, name, &args),
            args,
            metrics,
            credentials_port,
        };
        agent.wait_ready().await;
        agent
    }

    fn spawn(ctx: &TestCtx, name: &str, args: &[String]) -> Proc {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Proc::start(ctx, name, &args)
    }

    async fn wait_ready(&self) {
        let addr = self.metrics.clone();
        wait_for("agent ready", WAIT, || {
            let addr = addr.clone();
            async move { local_get(addr, "/readyz").await.filter(|(s, _)| *s == 200) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.proc.logs()));
    }

    pub(crate) async fn scrape(&self) -> String {
        local_get(self.metrics.clone(), "/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

/// Polls from inside `ns` until `path` answers `want`.
async fn wait_status(ns: &str, path: &str, want: u16) -> String {
    let ns = ns.to_string();
    let path = path.to_string();
    wait_for(&format!("{path} → {want} in {ns}"), WAIT, || {
        let ns = ns.clone();
        let path = path.clone();
        async move {
            match get_in(&ns, &path).await {
                Ok((s, body)) if s == want => Some(body),
                _ => None,
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn agent_serves_bound_pods_and_denies_the_rest() {
    let ctx = TestCtx::new("agent-a").await.unwrap();
    allow_roles(&ctx, Some(r#"["causeway-*"]"#)).await;
    let node = TestNode::create(&ctx).await;
    let guard = NetGuard::new('a', 10, 2);
    let agent = Agent::start(&ctx, &node, &guard, "agent-a").await;
    // 169.254.169.254 (metadata) and 169.254.170.23 (Pod Identity).
    assert_eq!(guard.our_rules(), 2);

    make_pod(
        &ctx,
        &node.name,
        "bound",
        &guard.nets[0].pod_ip,
        Some("causeway-app"),
    )
    .await;
    make_pod(&ctx, &node.name, "unbound", &guard.nets[1].pod_ip, None).await;

    // A bound pod, through 169.254.169.254 and the IMDSv2 flow, once the prefetch has landed.
    wait_status(&guard.nets[0].ns, CREDS, 200).await;
    wait_for("prefetch", WAIT, || async {
        agent
            .scrape()
            .await
            .contains("causeway_agent_sts_assume_role_total{outcome=\"success\"} 1")
            .then_some(())
    })
    .await
    .unwrap();
    let (status, role, body) = in_netns(&guard.nets[0].ns, imdsv2_credentials)
        .await
        .unwrap();
    assert_eq!((status, role.as_str()), (200, "causeway-app"), "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["Code"], "Success");
    assert_eq!(doc["Type"], "AWS-HMAC");
    let secret = doc["SecretAccessKey"].as_str().unwrap().to_string();
    assert!(!secret.is_empty());
    assert!(doc["Expiration"].as_str().unwrap().ends_with('Z'));

    // The wrong role is 403; the unbound pod gets 404; other paths 404; the allow-list proxies.
    let (s, _) = get_in(&guard.nets[0].ns, &format!("{CREDS}causeway-writer"))
        .await
        .unwrap();
    assert_eq!(s, 403);
    let body = wait_status(&guard.nets[1].ns, CREDS, 404).await;
    assert!(body.contains("not bound"), "{body}");
    assert_eq!(
        get_in(&guard.nets[0].ns, "/latest/user-data")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        get_in(&guard.nets[0].ns, "/latest/meta-data/placement/region")
            .await
            .unwrap(),
        (200, "us-east-1".to_string())
    );
    let (s, info) = get_in(&guard.nets[0].ns, "/latest/meta-data/iam/info")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert!(info.contains(":role/causeway-app"), "{info}");

    // The namespace restriction is enforced as soon as the annotation lands.
    allow_roles(&ctx, Some(r#"["causeway-reader"]"#)).await;
    let body = wait_status(&guard.nets[0].ns, CREDS, 403).await;
    assert!(body.contains("allowed-roles"), "{body}");
    allow_roles(&ctx, Some(r#"["causeway-*"]"#)).await;
    wait_status(&guard.nets[0].ns, CREDS, 200).await;

    // The first credential request was served from the prefetched cache.
    let metrics = agent.scrape().await;
    assert!(
        metrics.contains("causeway_agent_credential_cache_misses_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("causeway_agent_sts_assume_role_total{outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("causeway_agent_metadata_requests_total{path=\"security-credentials/role\",code=\"200\"}"), "{metrics}");
    // Without the annotation the namespace allows no annotated role (kube2iam's rule).
    allow_roles(&ctx, None).await;
    let body = wait_status(&guard.nets[0].ns, CREDS, 403).await;
    assert!(
        body.contains("has no iam.amazonaws.com/allowed-roles"),
        "{body}"
    );
    // No secrets in the logs.
    let logs = agent.proc.logs();
    assert!(!logs.contains(&secret), "secret in logs");
    // A Warning Event on the pod that asked for the wrong role.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for("WrongIamRoleRequested event", WAIT, || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("WrongIamRoleRequested"))
    })
    .await
    .unwrap();
    drop(agent);
    ctx.cleanup().await.unwrap();
}

#[tokio::test]
async fn iam_role_bindings_bind_pods_and_the_controller_checks_their_roles() {
    let ctx = TestCtx::new("agent-e").await.unwrap();
    let node = TestNode::create(&ctx).await;
    let guard = NetGuard::new('e', 50, 2);
    let agent = Agent::start(&ctx, &node, &guard, "agent-e").await;
    // The controller's IamRoleBinding validation (IAM GetRole against moto).
    let lease = unique_name("iam-lease");
    let controller = Proc::start(
        &ctx,
        "iam-controller-e",
        &[
            "controller",
            "--controllers",
            "iam",
            "--metrics-addr",
            &format!("127.0.0.1:{}", free_port()),
            "--leader-election-namespace",
            &ctx.namespace,
            "--leader-election-id",
            &lease,
        ],
    );
    ctx.apply(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reports
---
apiVersion: causeway.dev/v1alpha1
kind: IamRoleBinding
metadata:
  name: reports
spec:
  role: causeway-reader
  serviceAccountName: reports
---
apiVersion: causeway.dev/v1alpha1
kind: IamRoleBinding
metadata:
  name: batch
spec:
  role: no-such-role
  podSelector:
    matchLabels:
      tier: batch
"#,
    )
    .await
    .expect("bindings");

    // A pod without any annotation, running as the bound service account.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "reporter"},
        "spec": {
            "nodeName": node.name,
            "serviceAccountName": "reports",
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            "tolerations": [{"operator": "Exists"}]
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for("pod created", WAIT, || async {
        pods.create(&PostParams::default(), &pod).await.ok()
    })
    .await
    .expect("create pod");
    set_phase(&ctx, "reporter", &guard.nets[0].pod_ip, "Running").await;
    // A pod selected by the binding whose role does not exist in IAM.
    make_pod(&ctx, &node.name, "cron", &guard.nets[1].pod_ip, None).await;
    pods.patch(
        "cron",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"tier": "batch"}}})),
    )
    .await
    .unwrap();

    let listed = wait_status(&guard.nets[0].ns, CREDS, 200).await;
    assert_eq!(listed.trim(), "causeway-reader");
    let (status, role, body) = in_netns(&guard.nets[0].ns, imdsv2_credentials)
        .await
        .unwrap();
    assert_eq!((status, role.as_str()), (200, "causeway-reader"), "{body}");
    // The label-selected pod is bound by the other binding.
    let listed = wait_status(&guard.nets[1].ns, CREDS, 200).await;
    assert_eq!(listed.trim(), "no-such-role");

    let bindings: Api<causeway::crd::IamRoleBinding> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let ready = |name: &'static str| {
        let bindings = bindings.clone();
        async move {
            let b = bindings.get(name).await.ok()?;
            let c = b
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            Some((c.status, c.reason))
        }
    };
    let found = wait_for("reports binding validated", WAIT, || ready("reports"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", controller.logs()));
    assert_eq!(found, ("True".to_owned(), "RoleFound".to_owned()));
    let missing = wait_for("batch binding validated", WAIT, || ready("batch"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", controller.logs()));
    assert_eq!(missing, ("False".to_owned(), "RoleNotFound".to_owned()));
    let status = bindings.get("reports").await.unwrap().status.unwrap();
    assert_eq!(
        status.role_arn.as_deref(),
        Some(
            format!(
                "arn:aws:iam::{}:role/causeway-reader",
                ctx.env.seed.account_id
            )
            .as_str()
        )
    );
    drop(controller);
    drop(agent);
    ctx.cleanup().await.unwrap();
}

#[tokio::test]
async fn agent_serves_the_new_pod_when_an_ip_is_reused() {
    let ctx = TestCtx::new("agent-b").await.unwrap();
    allow_roles(&ctx, Some(r#"["causeway-*"]"#)).await;
    let node = TestNode::create(&ctx).await;
    let guard = NetGuard::new('b', 20, 1);
    let _agent = Agent::start(&ctx, &node, &guard, "agent-b").await;
    let ip = guard.nets[0].pod_ip.clone();
    let ns = guard.nets[0].ns.clone();

    make_pod(&ctx, &node.name, "old", &ip, Some("causeway-app")).await;
    assert_eq!(wait_status(&ns, CREDS, 200).await, "causeway-app");

    // The old pod finishes; a new one gets its IP.
    set_phase(&ctx, "old", &ip, "Succeeded").await;
    make_pod(&ctx, &node.name, "new", &ip, Some("causeway-reader")).await;
    wait_for("new pod's role", WAIT, || async {
        get_in(&ns, CREDS)
            .await
            .ok()
            .filter(|(s, b)| *s == 200 && b == "causeway-reader")
    })
    .await
    .unwrap();
    let (s, _) = get_in(&ns, &format!("{CREDS}causeway-app")).await.unwrap();
    assert_eq!(s, 403, "the old pod's role must never be served again");
    let (s, body) = get_in(&ns, &format!("{CREDS}causeway-reader"))
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");

    // Two live pods claiming one IP: nobody gets anything until one goes.
    make_pod(&ctx, &node.name, "squatter", &ip, Some("causeway-writer")).await;
    wait_status(&ns, CREDS, 409).await;
    Api::<Pod>::namespaced(ctx.client.clone(), &ctx.namespace)
        .delete("squatter", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(wait_status(&ns, CREDS, 200).await, "causeway-reader");
    ctx.cleanup().await.unwrap();
}

#[tokio::test]
async fn agent_fails_closed_while_down_and_cleanup_removes_the_rule() {
    let ctx = TestCtx::new("agent-c").await.unwrap();
    allow_roles(&ctx, Some(r#"["causeway-*"]"#)).await;
    let node = TestNode::create(&ctx).await;
    let guard = NetGuard::new('c', 30, 1);
    let mut agent = Agent::start(&ctx, &node, &guard, "agent-c").await;
    let ns = guard.nets[0].ns.clone();
    make_pod(
        &ctx,
        &node.name,
        "app",
        &guard.nets[0].pod_ip,
        Some("causeway-app"),
    )
    .await;
    wait_status(&ns, CREDS, 200).await;

    // SIGTERM, as on a rollout: the rule stays, pods get connection errors.
    agent.proc.terminate();
    let _ = agent.proc.child.wait();
    assert_eq!(
        guard.our_rules(),
        2,
        "the DNAT rules must survive the agent"
    );
    let pod_identity: SocketAddr = "169.254.170.23:80".parse().unwrap();
    let err = in_netns(&ns, move || {
        http_to(pod_identity, "GET", "/v1/credentials", &[])
    })
    .await
    .expect_err("the token path fails closed too");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    for path in [
        CREDS,
        "/latest/meta-data/placement/region",
        "/latest/user-data",
    ] {
        let err = get_in(&ns, path)
            .await
            .expect_err("nothing may answer while the agent is down");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{path}: {err}"
        );
    }

    // A restart finds its rule in place (no duplicate) and serves again.
    agent.proc = Agent::spawn(&ctx, "agent-c-2", &agent.args);
    agent.wait_ready().await;
    assert_eq!(guard.our_rules(), 2);
    assert_eq!(wait_status(&ns, CREDS, 200).await, "causeway-app");
    drop(agent);

    // The documented cleanup removes exactly our rules.
    let out = Command::new(causeway_bin())
        .args([
            "agent",
            "--cleanup-iptables",
            "--iptables-interface",
            guard.interface_glob.as_str(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(guard.our_rules(), 0);
    ctx.cleanup().await.unwrap();
}

const CHILD_ENV: &str = "CAUSEWAY_AGENT_SDK_CHILD";

/// Run by `agent_works_with_the_sdk_default_chain` inside a pod's network namespace:
/// resolves credentials through the Rust SDK's default chain and prints the key id.
#[tokio::test]
#[ignore = "run inside a network namespace by agent_works_with_the_sdk_default_chain"]
async fn sdk_chain_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    use aws_credential_types::provider::ProvideCredentials;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let creds = config
        .credentials_provider()
        .expect("a provider")
        .provide_credentials()
        .await
        .expect("credentials from the default chain");
    println!("ACCESS_KEY_ID={}", creds.access_key_id());
}

/// Runs [`sdk_chain_child`] inside network namespace `ns` with a clean environment (no
/// credentials, config or home; region us-east-1) plus `env`; its stdout and stderr.
pub(crate) fn sdk_chain_in(ns: &str, env: &[(&str, std::ffi::OsString)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(&exe)
        .args([
            "agent::sdk_chain_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(CHILD_ENV, "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("HOME", "/nonexistent")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn agent_works_with_the_sdk_default_chain() {
    let ctx = TestCtx::new("agent-d").await.unwrap();
    allow_roles(&ctx, Some(r#"["causeway-*"]"#)).await;
    let node = TestNode::create(&ctx).await;
    let guard = NetGuard::new('d', 40, 1);
    let _agent = Agent::start(&ctx, &node, &guard, "agent-d").await;
    let ns = guard.nets[0].ns.clone();
    make_pod(
        &ctx,
        &node.name,
        "sdk",
        &guard.nets[0].pod_ip,
        Some("causeway-reader"),
    )
    .await;
    wait_status(&ns, CREDS, 200).await;
    let (_, body) = get_in(&ns, &format!("{CREDS}causeway-reader"))
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let expected = doc["AccessKeyId"].as_str().unwrap().to_string();

    let stdout = sdk_chain_in(
        &ns,
        &[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://169.254.169.254".into(),
        )],
    );
    assert!(
        stdout.contains(&format!("ACCESS_KEY_ID={expected}")),
        "child did not get the pod's credentials:\n{stdout}"
    );
    ctx.cleanup().await.unwrap();
}

// ---- figures -------------------------------------------------------------------------

/// A fresh agent on a node that already has 1,000 pods: time until every pod's session is
/// fetched, AssumeRole failures logged on the way, and RSS; once with the default STS
/// limit, once restarted with `--aws-rate-limits sts=20:1`, then after the pods are gone.
/// `cargo test --profile bench --features testing --test integration bench_agent_start_with_pods -- --ignored --nocapture`
/// (`CAUSEWAY_BENCH_AGENT_PODS` sets the count).
#[tokio::test]
#[ignore = "benchmark: prints figures"]
async fn bench_agent_start_with_pods() {
    use crate::dns::sample_sum;
    use crate::targets::vm_rss_kib;
    use futures::StreamExt;

    let count: usize = std::env::var("CAUSEWAY_BENCH_AGENT_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let ctx = TestCtx::new("agent-bench").await.unwrap();
    allow_roles(&ctx, Some(r#"["*"]"#)).await;
    let node = TestNode::create(&ctx).await;
    let no_iptables = ["--iptables=false".to_string()];
    let idle = Agent::start_with(&ctx, &node, "agent-bench-0", &no_iptables).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "agent on a node without pods: VmRSS {:.1} MiB",
        vm_rss_kib(idle.proc.child.id()) as f64 / 1024.0
    );
    drop(idle);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let created = std::time::Instant::now();
    futures::stream::iter(0..count)
        .map(|n| {
            let pods = pods.clone();
            let node = node.name.clone();
            async move {
                let pod: Pod = serde_json::from_value(serde_json::json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("p{n}"),
                                 "annotations": {"iam.amazonaws.com/role": "causeway-app"}},
                    "spec": {
                        "nodeName": node,
                        "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
                        "tolerations": [{"operator": "Exists"}]
                    }
                }))
                .unwrap();
                wait_for("pod created", WAIT, || async {
                    pods.create(&PostParams::default(), &pod).await.ok()
                })
                .await
                .expect("create pod");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!(
        "{count} pods on node {} created in {:.1}s",
        node.name,
        created.elapsed().as_secs_f64()
    );

    let measure = async |agent: &Agent, label: &str| {
        let pid = agent.proc.child.id();
        let started = std::time::Instant::now();
        let mut peak = 0;
        wait_for("every session fetched", Duration::from_secs(600), || {
            peak = peak.max(vm_rss_kib(pid));
            async {
                let m = agent.scrape().await;
                let ok = sample_sum(
                    &m,
                    "causeway_agent_sts_assume_role_total",
                    &["outcome=\"success\""],
                );
                (ok >= count as f64).then_some(())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent.proc.logs()));
        let took = started.elapsed();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let m = agent.scrape().await;
        let failed_lines = agent
            .proc
            .logs()
            .lines()
            .filter(|l| l.contains("AssumeRole failed"))
            .count();
        let settled = vm_rss_kib(pid);
        println!(
            "{label}: {count} sessions fetched in {:.2}s after ready; AssumeRole failures logged {failed_lines}, by outcome {{{}}}; VmRSS settled {:.1} MiB, peak seen {:.1} MiB",
            took.as_secs_f64(),
            m.lines()
                .filter(|l| l.starts_with("causeway_agent_sts_assume_role_total{"))
                .collect::<Vec<_>>()
                .join(", "),
            settled as f64 / 1024.0,
            peak.max(settled) as f64 / 1024.0,
        );
    };

    let first = Agent::start_with(&ctx, &node, "agent-bench-1", &no_iptables).await;
    measure(&first, "fresh agent, default STS limit").await;
    drop(first);
    let mut limited = no_iptables.to_vec();
    limited.extend(["--aws-rate-limits".to_string(), "sts=20:1".to_string()]);
    let second = Agent::start_with(&ctx, &node, "agent-bench-2", &limited).await;
    measure(&second, "fresh agent, --aws-rate-limits sts=20:1").await;

    let deleted = std::time::Instant::now();
    pods.delete_collection(
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
        &Default::default(),
    )
    .await
    .expect("delete pods");
    wait_for("every entry dropped", Duration::from_secs(300), || async {
        let m = second.scrape().await;
        (sample_sum(&m, "causeway_agent_credential_cache_entries", &[]) == 0.0
            && sample_sum(&m, "causeway_agent_pods", &[]) == 0.0)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", second.proc.logs()));
    let dropped = deleted.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before_trim = vm_rss_kib(second.proc.child.id());
    // The agent returns freed memory on its next 30 s check after sessions were dropped.
    tokio::time::sleep(Duration::from_secs(31)).await;
    println!(
        "after the {count} pods were deleted: entries dropped in {:.2}s; VmRSS {:.1} MiB 5 s later, {:.1} MiB after the agent's next memory check",
        dropped.as_secs_f64(),
        before_trim as f64 / 1024.0,
        vm_rss_kib(second.proc.child.id()) as f64 / 1024.0
    );
    drop(second);
    ctx.cleanup().await.ok();
}

mod bench {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use causeway::aws::{AwsClients, AwsSettings};
    use causeway::iam::agent::credentials::{CacheSettings, CredentialCache};
    use causeway::iam::agent::metadata::{self, MetadataServer, ServerConfig};
    use causeway::iam::agent::metrics::AgentMetrics;
    use std::collections::HashMap;

    use base64::Engine;
    use causeway::iam::agent::container::{self, ContainerServer};
    use causeway::iam::agent::resolve::{BindingInfo, PodInfo, Policy};
    use causeway::iam::agent::sts::StsAdapter;
    use causeway::iam::agent::token::{ReviewTokens, TokenCache, TokenCacheSettings, TokenDenial};
    use causeway::iam::agent::upstream::Upstream;
    use causeway::iam::agent::{Agent, AgentConfig};
    use causeway::telemetry::Metrics;
    use causeway_testenv::support::shared_env;
    use futures::future::BoxFuture;
    use k8s_openapi::api::authentication::v1::TokenReviewStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    /// A TokenReview stand-in: the identity of each token the bench minted.
    struct Reviews(HashMap<String, TokenReviewStatus>);

    impl ReviewTokens for Reviews {
        fn review(
            &self,
            token: &str,
            _audience: &str,
        ) -> BoxFuture<'_, Result<TokenReviewStatus, TokenDenial>> {
            let answer = self.0.get(token).cloned().unwrap_or_default();
            Box::pin(async move { Ok(answer) })
        }
    }

    /// A JWT-shaped token for pod `n` (the agent reads only its `exp`; the stand-in reviews it).
    fn bench_token(n: usize) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"ES256"}"#),
            b64.encode(format!(r#"{{"exp":{exp},"n":{n}}}"#))
        )
    }

    /// The agent's container-credentials endpoint in-process on loopback, STS moto, pods
    /// 127.0.3.<n> bound by an IamRoleBinding of their service account, each with a token.
    async fn token_server_on_loopback(
        pods: u8,
    ) -> (SocketAddr, Arc<Agent>, AgentMetrics, Vec<String>) {
        let (_, agent, metrics) = agent_on_loopback(0).await;
        agent.bindings.write().unwrap().insert(
            "bench".into(),
            vec![BindingInfo {
                name: "bench".into(),
                role: "causeway-app".into(),
                service_account: Some("bench-sa".into()),
                ..BindingInfo::default()
            }],
        );
        let mut reviews = HashMap::new();
        let mut tokens = Vec::new();
        for n in 0..pods {
            let uid = format!("tok-uid-{n}");
            agent.pods.upsert(PodInfo {
                uid: uid.clone(),
                namespace: "bench".into(),
                name: format!("tok-{n}"),
                service_account: "bench-sa".into(),
                ips: vec![format!("127.0.3.{}", n + 2).parse().unwrap()],
                phase: Some("Running".into()),
                token_path: true,
                ..PodInfo::default()
            });
            let token = bench_token(usize::from(n));
            reviews.insert(token.clone(), review_of(&format!("tok-{n}"), &uid));
            tokens.push(token);
        }
        let tokens_cache = TokenCache::new(
            Arc::new(Reviews(reviews)),
            TokenCacheSettings::default(),
            metrics.clone(),
        );
        let server = Arc::new(ContainerServer::new(agent.clone(), tokens_cache));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                container::router(server).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        (addr, agent, metrics, tokens)
    }

    fn review_of(pod: &str, uid: &str) -> TokenReviewStatus {
        serde_json::from_value(serde_json::json!({
            "authenticated": true,
            "audiences": ["pods.eks.amazonaws.com"],
            "user": {
                "username": "system:serviceaccount:bench:bench-sa",
                "extra": {
                    "authentication.kubernetes.io/pod-name": [pod],
                    "authentication.kubernetes.io/pod-uid": [uid]
                }
            }
        }))
        .unwrap()
    }

    /// Cache-hit requests to the token path (`GET /v1/credentials` with each pod's token,
    /// TokenReview cached), 16 keep-alive connections.
    /// `cargo test --profile bench --features testing --test integration bench_token_path_cache_hits -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: prints figures"]
    async fn bench_token_path_cache_hits() {
        let pods = 16u8;
        let (addr, agent, metrics, tokens) = token_server_on_loopback(pods).await;
        agent.sync();
        let auth = |n: usize| format!("Authorization: {}\r\n", tokens[n]);
        for n in 0..usize::from(pods) {
            let mut s = connect_from(addr, &format!("127.0.3.{}", n + 2)).await;
            let status = request_with(&mut s, "/v1/credentials", &auth(n), &mut Vec::new()).await;
            assert_eq!(status, 200);
        }
        let (sts_before, reviews_before) = (metrics.sts_calls("success"), metrics.token_reviews());
        let clients: Vec<(String, String)> = (0..usize::from(pods))
            .map(|n| (format!("127.0.3.{}", n + 2), auth(n)))
            .collect();
        let (all, took) = keep_alive_load(addr, "/v1/credentials", clients, 5_000).await;
        println!(
            "token path, cached: {} requests over {} connections in {:.2}s: {:.0} req/s, p50 {:?}, p99 {:?}, max {:?}; STS calls {}, TokenReviews {} during the run",
            all.len(),
            pods,
            took.as_secs_f64(),
            all.len() as f64 / took.as_secs_f64(),
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all.last().unwrap(),
            metrics.sts_calls("success") - sts_before,
            metrics.token_reviews() - reviews_before,
        );
    }

    /// A new token-path pod's first request after prefetch: STS calls on the request path
    /// and latency (its TokenReview included, from the in-process stand-in).
    /// `cargo test --profile bench --features testing --test integration bench_token_path_first_request -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: prints figures"]
    async fn bench_token_path_first_request() {
        let pods = 20u8;
        let (addr, agent, metrics, tokens) = token_server_on_loopback(pods).await;
        // The watch saw the pods when they were scheduled; their sessions are fetched.
        agent.sync();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let misses = metrics.cache_misses.get();
        let mut lat = Vec::new();
        for (n, token) in tokens.iter().enumerate() {
            let t = Instant::now();
            let mut s = connect_from(addr, &format!("127.0.3.{}", n + 2)).await;
            let header = format!("Authorization: {token}\r\n");
            assert_eq!(
                request_with(&mut s, "/v1/credentials", &header, &mut Vec::new()).await,
                200
            );
            lat.push(t.elapsed());
        }
        lat.sort();
        println!(
            "token path, first request after prefetch: STS calls on the request path {} of {pods}, p50 {:?}, max {:?}; TokenReviews {}",
            metrics.cache_misses.get() - misses,
            percentile(&lat, 0.5),
            lat.last().unwrap(),
            metrics.token_reviews(),
        );
    }

    /// An in-process agent on loopback whose STS is moto; pods are 127.0.0.<n>.
    async fn agent_on_loopback(pods: u8) -> (SocketAddr, Arc<Agent>, AgentMetrics) {
        let env = shared_env().unwrap();
        let settings = AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(env.moto_url.clone()),
            credentials: Some(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "bench",
            )),
            ..AwsSettings::default()
        };
        let aws = AwsClients::new(&settings, Metrics::new()).await.unwrap();
        let metrics = AgentMetrics::new();
        let cache = CredentialCache::new(
            Arc::new(StsAdapter {
                sts: aws.sts.clone(),
            }),
            CacheSettings::default(),
            metrics.clone(),
        );
        let agent = Arc::new(Agent::new(
            Policy {
                base_arn: format!("arn:aws:iam::{}:role/", env.seed.account_id),
                enforce_allowed_roles: true,
            },
            AgentConfig::for_node("bench", None),
            cache,
            metrics.clone(),
            None,
        ));
        agent.set_allowed_roles("bench", Some(r#"["*"]"#.into()));
        for n in 0..pods {
            agent.pods.upsert(PodInfo {
                uid: format!("uid-{n}"),
                namespace: "bench".into(),
                name: format!("pod-{n}"),
                service_account: "default".into(),
                role_annotation: Some("causeway-app".into()),
                ips: vec![format!("127.0.0.{}", n + 2).parse().unwrap()],
                phase: Some("Running".into()),
                ..PodInfo::default()
            });
        }
        let server = Arc::new(MetadataServer::new(
            agent.clone(),
            ServerConfig {
                require_token: false,
                proxy_paths: vec![],
            },
            Upstream::new("127.0.0.1:1"),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                metadata::router(server).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        (addr, agent, metrics)
    }

    async fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap();
        socket.connect(addr).await.unwrap()
    }

    /// One keep-alive request; returns the status.
    async fn request(stream: &mut TcpStream, path: &str, buf: &mut Vec<u8>) -> u16 {
        request_with(stream, path, "", buf).await
    }

    /// [`request`] with extra header lines (each ending in CRLF).
    async fn request_with(
        stream: &mut TcpStream,
        path: &str,
        headers: &str,
        buf: &mut Vec<u8>,
    ) -> u16 {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n{headers}\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        buf.clear();
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return head[9..12].parse().unwrap();
                }
            }
        }
    }

    /// One keep-alive connection per client (source address, extra headers), `per_conn`
    /// requests each, all at once; every answer must be 200. Sorted latencies and wall time.
    async fn keep_alive_load(
        addr: SocketAddr,
        path: &'static str,
        clients: Vec<(String, String)>,
        per_conn: usize,
    ) -> (Vec<Duration>, Duration) {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (from, headers) in clients {
            tasks.push(tokio::spawn(async move {
                let mut s = connect_from(addr, &from).await;
                let mut buf = Vec::with_capacity(4096);
                let mut lat = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
                    let t = Instant::now();
                    assert_eq!(request_with(&mut s, path, &headers, &mut buf).await, 200);
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let took = started.elapsed();
        all.sort();
        (all, took)
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    /// Cache-hit credential requests from a loopback load generator.
    /// `cargo test --release --test integration bench_agent_cache_hits -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: prints figures"]
    async fn bench_agent_cache_hits() {
        let pods = 16u8;
        let (addr, agent, metrics) = agent_on_loopback(pods).await;
        agent.sync();
        // Wait for the prefetch of every pod's session.
        let path = "/latest/meta-data/iam/security-credentials/causeway-app";
        for n in 0..pods {
            let mut s = connect_from(addr, &format!("127.0.0.{}", n + 2)).await;
            assert_eq!(request(&mut s, path, &mut Vec::new()).await, 200);
        }
        let sts_before = metrics.sts_calls("success");
        let clients: Vec<(String, String)> = (0..pods)
            .map(|n| (format!("127.0.0.{}", n + 2), String::new()))
            .collect();
        let (all, took) = keep_alive_load(addr, path, clients, 5_000).await;
        println!(
            "cache-hit credential requests: {} over {} connections in {:.2}s: {:.0} req/s, p50 {:?}, p99 {:?}, max {:?}; STS calls during the run: {}",
            all.len(),
            pods,
            took.as_secs_f64(),
            all.len() as f64 / took.as_secs_f64(),
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all.last().unwrap(),
            metrics.sts_calls("success") - sts_before,
        );
    }

    /// A new pod's first credential request: with prefetch (the pod was seen when it
    /// was scheduled) and, for comparison, cold.
    /// `cargo test --release --test integration bench_agent_first_request -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: prints figures"]
    async fn bench_agent_first_request() {
        let (addr, agent, metrics) = agent_on_loopback(0).await;
        let path = "/latest/meta-data/iam/security-credentials/causeway-app";
        let mut prefetched = Vec::new();
        let mut cold = Vec::new();
        let mut sts_on_path = 0;
        for n in 0..20u8 {
            let pod = |n: u8| PodInfo {
                uid: format!("uid-{n}"),
                namespace: "bench".into(),
                name: format!("first-{n}"),
                service_account: "default".into(),
                role_annotation: Some("causeway-app".into()),
                ips: vec![format!("127.0.1.{n}").parse().unwrap()],
                phase: Some("Pending".into()),
                ..PodInfo::default()
            };
            // Prefetched: the watch saw the pod (scheduled, no IP yet), then it starts.
            let mut scheduled = pod(n);
            scheduled.ips.clear();
            agent.pods.upsert(scheduled);
            agent.sync();
            // Containers start a moment later; by then the fetch has landed.
            tokio::time::sleep(Duration::from_millis(200)).await;
            agent.pods.upsert(pod(n));
            let misses = metrics.cache_misses.get();
            let t = Instant::now();
            let mut s = connect_from(addr, &format!("127.0.1.{n}")).await;
            assert_eq!(request(&mut s, path, &mut Vec::new()).await, 200);
            prefetched.push(t.elapsed());
            sts_on_path += metrics.cache_misses.get() - misses;

            // Cold: the request arrives before anything was fetched.
            let mut p = pod(n + 100);
            p.ips = vec![format!("127.0.2.{n}").parse().unwrap()];
            agent.pods.upsert(p);
            let t = Instant::now();
            let mut s = connect_from(addr, &format!("127.0.2.{n}")).await;
            assert_eq!(request(&mut s, path, &mut Vec::new()).await, 200);
            cold.push(t.elapsed());
        }
        prefetched.sort();
        cold.sort();
        println!(
            "first request, prefetched: STS calls on the request path {sts_on_path} of 20, p50 {:?}, max {:?}; cold (moto STS on the path): p50 {:?}, max {:?}",
            percentile(&prefetched, 0.5),
            prefetched.last().unwrap(),
            percentile(&cold, 0.5),
            cold.last().unwrap(),
        );
    }
}
