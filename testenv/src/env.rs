//! Starting, finding and stopping one environment.
//!
//! `up` starts etcd and moto, then kube-apiserver, then controller-manager,
//! scheduler and kwok, seeds moto and registers kwok nodes backed by moto's
//! instances; it waits on real readiness signals, never on sleeps. It writes
//! `DIR/kubeconfig`, `DIR/env` (export lines) and `DIR/state.json`.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binaries::{self, Binaries};
use crate::{certs, procs, seed};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvInfo {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub apiserver_url: String,
    pub admin_token: String,
    pub moto_url: String,
    pub etcd_url: String,
    pub kubectl: PathBuf,
    #[serde(default)]
    pub helm: PathBuf,
    pub seed: seed::Seed,
    pub node_names: Vec<String>,
    /// Seconds `up` took, for the README's warm-start figure.
    pub startup_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub cluster_name: String,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            cluster_name: crate::TEST_CLUSTER_NAME.to_string(),
        }
    }
}

/// Default environment directory: `target/testenv` in the workspace.
pub fn default_dir() -> PathBuf {
    binaries::repo_root().join("target").join("testenv")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A minimal HTTP/1.0 GET over loopback, for etcd, moto and our own health
/// endpoints: no HTTP client stack needed for a status line and a body.
pub fn http_get_at(host: &str, path: &str, read_timeout: Duration) -> Option<(u16, String)> {
    let addr: SocketAddr = host.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(read_timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Some((status, body))
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_at(&format!("127.0.0.1:{port}"), path, Duration::from_secs(2))
}

/// Polls `check` until it yields a value. On timeout, or when the component's
/// process exits, the error names the component and its log file.
async fn wait_ready<T, F, Fut>(
    dir: &Path,
    component: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(50);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        let log = procs::log_path(dir, component);
        if let Some(pid) = procs::pid_of(dir, component)
            && !procs::alive(pid)
        {
            bail!(
                "{component} exited during startup; see {}:\n{}",
                log.display(),
                binaries::tail(&log, 15)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "{component} was not ready after {}s; see {}:\n{}",
                timeout.as_secs(),
                log.display(),
                binaries::tail(&log, 15)
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

fn kubeconfig_yaml(url: &str, ca_pem: &str, token: &str) -> String {
    use std::fmt::Write as _;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let mut s = String::new();
    let _ = write!(
        s,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: causeway-test\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca_b64}\n\
         users:\n- name: admin\n  user:\n    token: {token}\n\
         contexts:\n- name: causeway-test\n  context:\n    cluster: causeway-test\n    user: admin\n    namespace: default\n\
         current-context: causeway-test\n"
    );
    s
}

/// Builds a kube client from an environment's kubeconfig.
pub async fn client(info: &EnvInfo) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(&info.kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

async fn get_text(client: &kube::Client, path: &str) -> Option<String> {
    let req = http::Request::get(path).body(Vec::new()).ok()?;
    client.request_text(req).await.ok()
}

/// Reads the state of a running environment in `dir`, if one answers.
pub async fn existing(dir: &Path) -> Option<EnvInfo> {
    let text = fs::read_to_string(dir.join("state.json")).ok()?;
    let info: EnvInfo = serde_json::from_str(&text).ok()?;
    let moto_port: u16 = info.moto_url.rsplit(':').next()?.parse().ok()?;
    http_get(moto_port, "/moto-api/")?;
    let client = client(&info).await.ok()?;
    let ready = tokio::time::timeout(Duration::from_secs(5), get_text(&client, "/readyz"))
        .await
        .ok()??;
    (ready.trim() == "ok").then_some(info)
}

/// Starts an environment in `dir`. Fails if one is already running there.
pub async fn up(dir: &Path, opts: &UpOptions, progress: &dyn Fn(&str)) -> Result<EnvInfo> {
    if existing(dir).await.is_some() {
        bail!("an environment is already running in {}", dir.display());
    }
    // Leftovers of a crashed run: stop them and start clean.
    procs::stop_all(dir);
    let bins = {
        let progress_lines = std::sync::Mutex::new(Vec::<String>::new());
        let report = |line: &str| {
            progress(line);
            progress_lines
                .lock()
                .expect("poisoned")
                .push(line.to_string());
        };
        binaries::ensure_all(&report)?
    };
    let started = Instant::now();
    for sub in [
        "etcd",
        "pki",
        "kcm-certs",
        "scheduler-certs",
        "logs",
        "pids",
    ] {
        let p = dir.join(sub);
        if sub != "logs" {
            let _ = fs::remove_dir_all(&p);
        }
        fs::create_dir_all(&p)?;
    }
    let pki = certs::write(&dir.join("pki"))?;

    let etcd_port = free_port()?;
    let etcd_peer = free_port()?;
    let moto_port = free_port()?;
    let api_port = free_port()?;

    progress("starting etcd and moto");
    start_etcd(dir, &bins, etcd_port, etcd_peer)?;
    start_moto(dir, &bins, moto_port)?;
    wait_ready(dir, "etcd", Duration::from_secs(60), || async {
        http_get(etcd_port, "/health").filter(|(code, body)| *code == 200 && body.contains("true"))
    })
    .await?;

    progress("starting kube-apiserver");
    start_apiserver(dir, &bins, &pki, etcd_port, api_port)?;
    let apiserver_url = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = dir.join("kubeconfig");
    fs::write(
        &kubeconfig,
        kubeconfig_yaml(&apiserver_url, &pki.ca_pem, &pki.admin_token),
    )?;

    let moto_url = format!("http://127.0.0.1:{moto_port}");
    wait_ready(dir, "moto", Duration::from_secs(60), || async {
        http_get(moto_port, "/moto-api/").filter(|(code, _)| *code == 200)
    })
    .await?;
    // Seeding moto overlaps with the apiserver's startup.
    let seed_task = {
        let url = moto_url.clone();
        let cluster = opts.cluster_name.clone();
        tokio::spawn(async move { seed::seed(&url, &cluster).await })
    };

    let partial = EnvInfo {
        dir: dir.to_path_buf(),
        kubeconfig: kubeconfig.clone(),
        apiserver_url: apiserver_url.clone(),
        admin_token: pki.admin_token.clone(),
        moto_url: moto_url.clone(),
        etcd_url: format!("http://127.0.0.1:{etcd_port}"),
        kubectl: bins.kubectl.clone(),
        helm: bins.helm.clone(),
        seed: seed::Seed {
            cluster_name: opts.cluster_name.clone(),
            vpc_id: String::new(),
            azs: vec![],
            public_subnet_ids: vec![],
            private_subnet_ids: vec![],
            node_security_group_id: String::new(),
            instance_ids: vec![],
            instance_private_ips: vec![],
            certificate_arn: String::new(),
            domain: String::new(),
            public_zone_id: String::new(),
            private_zone_id: String::new(),
            role_arns: vec![],
            account_id: String::new(),
        },
        node_names: vec![],
        startup_seconds: 0.0,
    };
    let kube = client(&partial).await?;
    wait_ready(dir, "kube-apiserver", Duration::from_secs(120), || async {
        get_text(&kube, "/readyz")
            .await
            .filter(|t| t.trim() == "ok")
    })
    .await?;

    progress("installing the Gateway API CRDs");
    install_gateway_crds(&kube, &bins).await?;

    progress("starting kube-controller-manager, kube-scheduler and kwok");
    start_controller_manager(dir, &bins, &pki, &opts.cluster_name)?;
    let sched_port = start_scheduler(dir, &bins)?;
    start_kwok(dir, &bins)?;

    let seed = seed_task
        .await
        .map_err(|e| anyhow!("seeding moto panicked: {e}"))?
        .with_context(|| {
            format!(
                "seeding moto; see {}",
                procs::log_path(dir, "moto").display()
            )
        })?;

    let node_names = register_nodes(&kube, &seed).await?;

    let sas: Api<ServiceAccount> = Api::namespaced(kube.clone(), "default");
    wait_ready(
        dir,
        "kube-controller-manager",
        Duration::from_secs(120),
        || async { sas.get_opt("default").await.ok().flatten() },
    )
    .await?;
    let sched = insecure_client(sched_port)?;
    wait_ready(dir, "kube-scheduler", Duration::from_secs(120), || async {
        get_text(&sched, "/readyz")
            .await
            .filter(|t| t.trim() == "ok")
    })
    .await?;
    let nodes: Api<Node> = Api::all(kube.clone());
    for name in &node_names {
        wait_ready(dir, "kwok", Duration::from_secs(120), || async {
            let node = nodes.get_opt(name).await.ok().flatten()?;
            let ready = node
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(())
        })
        .await?;
    }

    let info = EnvInfo {
        seed,
        node_names,
        startup_seconds: started.elapsed().as_secs_f64(),
        ..partial
    };
    fs::write(dir.join("state.json"), serde_json::to_string_pretty(&info)?)?;
    fs::write(dir.join("env"), env_file(&info))?;
    progress(&format!(
        "environment ready in {:.1}s: {}",
        info.startup_seconds,
        dir.display()
    ));
    Ok(info)
}

/// The upstream Gateway API CRDs, applied server-side (they are too large for the
/// last-applied annotation), each waited on until Established.
async fn install_gateway_crds(kube: &kube::Client, bins: &Binaries) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let yaml = fs::read_to_string(&bins.gateway_crds)
        .with_context(|| format!("reading {}", bins.gateway_crds.display()))?;
    let applied = crate::support::apply_yaml(kube, None, &yaml)
        .await
        .context("installing the Gateway API CRDs")?;
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    for obj in applied {
        let name = obj.metadata.name.unwrap_or_default();
        loop {
            let established = crds.get_opt(&name).await?.is_some_and(|c| {
                c.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} was not Established within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn insecure_client(port: u16) -> Result<kube::Client> {
    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse()?);
    // The scheduler serves its health endpoints with a self-signed certificate.
    config.accept_invalid_certs = true;
    Ok(kube::Client::try_from(config)?)
}

/// Export lines for shells and for processes the tests start.
pub fn env_vars(info: &EnvInfo) -> Vec<(String, String)> {
    let s = &info.seed;
    let v = |k: &str, val: &str| (k.to_string(), val.to_string());
    vec![
        v("KUBECONFIG", &info.kubeconfig.display().to_string()),
        v("AWS_ENDPOINT_URL", &info.moto_url),
        v("AWS_REGION", crate::TEST_REGION),
        v("AWS_DEFAULT_REGION", crate::TEST_REGION),
        v("AWS_ACCESS_KEY_ID", crate::TEST_ACCESS_KEY_ID),
        v("AWS_SECRET_ACCESS_KEY", crate::TEST_SECRET_ACCESS_KEY),
        v("AWS_EC2_METADATA_DISABLED", "true"),
        v("CAUSEWAY_CLUSTER_NAME", &s.cluster_name),
        v("CAUSEWAY_VPC_ID", &s.vpc_id),
        v("CAUSEWAY_AZS", &s.azs.join(",")),
        v("CAUSEWAY_PUBLIC_SUBNET_IDS", &s.public_subnet_ids.join(",")),
        v(
            "CAUSEWAY_PRIVATE_SUBNET_IDS",
            &s.private_subnet_ids.join(","),
        ),
        v("CAUSEWAY_NODE_SECURITY_GROUP_ID", &s.node_security_group_id),
        v("CAUSEWAY_INSTANCE_IDS", &s.instance_ids.join(",")),
        v("CAUSEWAY_CERTIFICATE_ARN", &s.certificate_arn),
        v("CAUSEWAY_TEST_DOMAIN", &s.domain),
        v("CAUSEWAY_PUBLIC_ZONE_ID", &s.public_zone_id),
        v("CAUSEWAY_PRIVATE_ZONE_ID", &s.private_zone_id),
        v("CAUSEWAY_ROLE_ARNS", &s.role_arns.join(",")),
        v("CAUSEWAY_ACCOUNT_ID", &s.account_id),
        v("CAUSEWAY_KUBECTL", &info.kubectl.display().to_string()),
        v("CAUSEWAY_HELM", &info.helm.display().to_string()),
    ]
}

fn env_file(info: &EnvInfo) -> String {
    env_vars(info)
        .into_iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect()
}

fn start_etcd(dir: &Path, bins: &Binaries, port: u16, peer: u16) -> Result<()> {
    let mut cmd = Command::new(&bins.cplane);
    cmd.arg("etcd")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg("--name=default")
        .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");
    procs::spawn(dir, "etcd", cmd)?;
    Ok(())
}

fn start_moto(dir: &Path, bins: &Binaries, port: u16) -> Result<()> {
    let mut cmd = Command::new(&bins.moto_server);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("AWS_ACCESS_KEY_ID", crate::TEST_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", crate::TEST_SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    procs::spawn(dir, "moto", cmd)?;
    Ok(())
}

fn start_apiserver(
    dir: &Path,
    bins: &Binaries,
    pki: &certs::Pki,
    etcd: u16,
    port: u16,
) -> Result<()> {
    let p = |path: &Path| path.display().to_string();
    let mut cmd = Command::new(&bins.cplane);
    cmd.arg("kube-apiserver")
        .arg(format!("--etcd-servers=http://127.0.0.1:{etcd}"))
        .arg(format!("--cert-dir={}", p(&pki.dir)))
        .arg(format!("--tls-cert-file={}", p(&pki.serving_cert)))
        .arg(format!("--tls-private-key-file={}", p(&pki.serving_key)))
        .arg(format!("--client-ca-file={}", p(&pki.ca_cert)))
        .arg(format!("--token-auth-file={}", p(&pki.token_file)))
        .arg(format!("--secure-port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        // Loopback cannot back the kubernetes Service endpoints; tests never use them.
        .arg("--endpoint-reconciler-type=none")
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--allow-privileged=true")
        .arg("--authorization-mode=RBAC")
        .arg(format!("--service-account-issuer=https://127.0.0.1:{port}"))
        .arg(format!("--service-account-key-file={}", p(&pki.sa_pub)))
        .arg(format!(
            "--service-account-signing-key-file={}",
            p(&pki.sa_key)
        ))
        .arg("--profiling=false")
        .arg("--v=0");
    procs::spawn(dir, "kube-apiserver", cmd)?;
    Ok(())
}

fn start_controller_manager(
    dir: &Path,
    bins: &Binaries,
    pki: &certs::Pki,
    cluster: &str,
) -> Result<()> {
    let kc = dir.join("kubeconfig").display().to_string();
    let mut cmd = Command::new(&bins.cplane);
    cmd.arg("kube-controller-manager")
        .arg(format!("--kubeconfig={kc}"))
        .arg(format!("--authentication-kubeconfig={kc}"))
        .arg(format!("--authorization-kubeconfig={kc}"))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()?))
        .arg(format!("--cert-dir={}", dir.join("kcm-certs").display()))
        .arg(format!(
            "--service-account-private-key-file={}",
            pki.sa_key.display()
        ))
        .arg(format!("--root-ca-file={}", pki.ca_cert.display()))
        .arg(format!("--cluster-name={cluster}"))
        .arg("--profiling=false")
        .arg("--v=0");
    procs::spawn(dir, "kube-controller-manager", cmd)?;
    Ok(())
}

fn start_scheduler(dir: &Path, bins: &Binaries) -> Result<u16> {
    let kc = dir.join("kubeconfig").display().to_string();
    let port = free_port()?;
    let mut cmd = Command::new(&bins.cplane);
    cmd.arg("kube-scheduler")
        .arg(format!("--kubeconfig={kc}"))
        .arg(format!("--authentication-kubeconfig={kc}"))
        .arg(format!("--authorization-kubeconfig={kc}"))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!(
            "--cert-dir={}",
            dir.join("scheduler-certs").display()
        ))
        .arg("--profiling=false")
        .arg("--v=0");
    procs::spawn(dir, "kube-scheduler", cmd)?;
    Ok(port)
}

fn start_kwok(dir: &Path, bins: &Binaries) -> Result<()> {
    let kc = dir.join("kubeconfig").display().to_string();
    let stages = binaries::repo_root().join("hack/kwok/stages.yaml");
    let mut cmd = Command::new(&bins.kwok);
    cmd.arg(format!("--kubeconfig={kc}"))
        .arg(format!("--config={}", stages.display()))
        .arg("--manage-all-nodes=false")
        .arg("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
        .arg("--cidr=10.244.0.0/16")
        .arg(format!("--server-address=127.0.0.1:{}", free_port()?))
        .arg("--node-lease-duration-seconds=40")
        // kwok reads $HOME/.kwok; keep it inside the environment directory.
        .env("HOME", dir);
    procs::spawn(dir, "kwok", cmd)?;
    Ok(())
}

/// One kwok node per moto instance, carrying the instance's id as providerID
/// and its private IP as InternalIP, as EKS nodes do.
async fn register_nodes(kube: &kube::Client, seed: &seed::Seed) -> Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(kube.clone());
    let mut names = Vec::new();
    for (i, (id, ip)) in seed
        .instance_ids
        .iter()
        .zip(&seed.instance_private_ips)
        .enumerate()
    {
        let az = &seed.azs[i % seed.azs.len()];
        let name = format!("ip-{}.ec2.internal", ip.replace('.', "-"));
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    "topology.kubernetes.io/region": crate::TEST_REGION,
                    "topology.kubernetes.io/zone": az,
                    "node.kubernetes.io/instance-type": "m5.large",
                    "eks.amazonaws.com/nodegroup": "causeway-test"
                }
            },
            "spec": {"providerID": format!("aws:///{az}/{id}")},
            "status": {"addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name}
            ]}
        }))?;
        nodes
            .create(&PostParams::default(), &node)
            .await
            .with_context(|| format!("creating node {name}"))?;
        names.push(name);
    }
    Ok(names)
}

/// Stops every process of the environment in `dir`. Data and logs stay.
pub fn down(dir: &Path) -> Vec<(String, u32)> {
    let stopped = procs::stop_all(dir);
    let _ = fs::remove_file(dir.join("state.json"));
    stopped
}

/// Component name, pid and whether it is alive.
pub fn status(dir: &Path) -> Vec<(String, u32, bool)> {
    procs::components(dir)
        .into_iter()
        .map(|(n, p)| (n, p, procs::alive(p)))
        .collect()
}
