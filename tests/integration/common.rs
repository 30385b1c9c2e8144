//! Shared helpers: starting `causeway` processes against the environment.

use causeway_testenv::support::{TestCtx, shared_env, split_yaml};
use serde_json::Value;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub fn causeway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_causeway"))
}

/// A `causeway controller` on a free metrics port with its own Lease in the test
/// namespace: the one way tests start the controller and read its metrics.
pub struct Controller {
    pub proc: Proc,
    pub port: u16,
}

impl Controller {
    /// Starts `causeway controller <args>` named `name` (its log file), leading `lease`.
    pub fn start(ctx: &TestCtx, name: &str, lease: &str, args: &[&str]) -> Controller {
        Self::start_with_env(ctx, name, lease, args, &[])
    }

    /// [`Controller::start`] with extra environment variables.
    pub fn start_with_env(
        ctx: &TestCtx,
        name: &str,
        lease: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Controller {
        Self::launch(ctx, lease, args, |all| {
            Proc::start_with_env(ctx, name, all, env)
        })
    }

    /// `causeway controller` on a free metrics port leading `lease`, started by `start`.
    fn launch(
        ctx: &TestCtx,
        lease: &str,
        args: &[&str],
        start: impl FnOnce(&[&str]) -> Proc,
    ) -> Controller {
        let port = free_port();
        let metrics = format!("127.0.0.1:{port}");
        let mut all = vec![
            "controller",
            "--metrics-addr",
            &metrics,
            "--leader-election-namespace",
            &ctx.namespace,
            "--leader-election-id",
            lease,
        ];
        all.extend_from_slice(args);
        Controller {
            proc: start(&all),
            port,
        }
    }

    /// [`Controller::start`] with the environment's admin credentials instead of the chart's
    /// identity: for a test that needs a cluster-scoped object of its own name (a webhook
    /// configuration), which the chart's RBAC rightly does not grant.
    pub fn start_as_admin(ctx: &TestCtx, name: &str, lease: &str, args: &[&str]) -> Controller {
        Self::launch(ctx, lease, args, |all| {
            Proc::start_with(ctx, name, all, None, &[])
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The `/metrics` text, empty while it does not answer.
    pub async fn metrics(&self) -> String {
        causeway_testenv::support::http_get(&self.url("/metrics"))
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        matches!(
            causeway_testenv::support::http_get(&self.url("/readyz")).await,
            Some((200, _))
        )
    }
}

/// Deletes the cluster-scoped `K` called `name`, from a `Drop`: on a thread with its own
/// runtime and client (Drop cannot await, and the test's client lives on the runtime the drop
/// blocks). Best effort.
pub fn delete_cluster_scoped<K>(env: &'static causeway_testenv::env::EnvInfo, name: String)
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let client = causeway_testenv::env::client(env).await.ok()?;
            kube::Api::<K>::all(client)
                .delete(&name, &kube::api::DeleteParams::default())
                .await
                .ok()
        })
    })
    .join();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `causeway` child process that is killed when dropped, so a failing test
/// never leaves one behind. Its output goes to a log file named after it.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    check_rbac: bool,
}

impl Proc {
    /// Starts `causeway <args>`. `controller` and `agent` run as the Helm chart's
    /// ServiceAccounts, with exactly the chart's RBAC (see [`chart_identity`]); the log must show
    /// no "forbidden" when the process is dropped.
    pub fn start(ctx: &TestCtx, name: &str, args: &[&str]) -> Proc {
        Self::start_with_env(ctx, name, args, &[])
    }

    /// [`Proc::start`] with extra environment variables.
    pub fn start_with_env(
        ctx: &TestCtx,
        name: &str,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> Proc {
        let subcommand = args.iter().find(|a| matches!(**a, "controller" | "agent"));
        let identity = subcommand.map(|s| chart_identity(ctx, s));
        Self::start_with(ctx, name, args, identity, extra)
    }

    fn start_with(
        ctx: &TestCtx,
        name: &str,
        args: &[&str],
        kubeconfig: Option<PathBuf>,
        extra: &[(&str, &str)],
    ) -> Proc {
        let log = ctx.env.dir.join("logs").join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut env = ctx.process_env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some(k) = &kubeconfig {
            env.retain(|(key, _)| key != "KUBECONFIG");
            env.push(("KUBECONFIG".into(), k.display().to_string()));
        }
        let child = Command::new(causeway_bin())
            .args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone"))
            .stderr(out)
            .spawn()
            .expect("start causeway");
        Proc {
            child,
            log,
            check_rbac: kubeconfig.is_some(),
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as Kubernetes sends on pod deletion.
    pub fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
    }

    /// SIGKILL: the process gets no chance to release anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.check_rbac && !std::thread::panicking() {
            let logs = self.logs();
            let denied: Vec<&str> = logs
                .lines()
                // An RBAC denial reads `... is forbidden: User "system:serviceaccount:..." cannot
                // <verb> resource ...`; other 403s (a namespace being deleted) are not RBAC's.
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.contains("forbidden: user") && l.contains(" cannot ")
                })
                .take(5)
                .collect();
            assert!(
                denied.is_empty(),
                "{} ran under the chart's RBAC and was denied:\n{}",
                self.log.display(),
                denied.join("\n")
            );
        }
    }
}

/// The chart's ServiceAccounts and RBAC, applied once per test run in `causeway-system`.
static CHART_RBAC: OnceLock<Result<(), String>> = OnceLock::new();
const CHART_NAMESPACE: &str = "causeway-system";

/// The chart's RBAC with every controller on (the Gateway controller is off by default), so a
/// test can run any of them under the chart's identity.
fn chart_rbac_docs(namespace: &str) -> Vec<Value> {
    chart_rbac_docs_with(namespace, &["--set", "gateway.enabled=true"])
}

fn chart_rbac_docs_with(namespace: &str, values: &[&str]) -> Vec<Value> {
    let env = shared_env().expect("env");
    let out = Command::new(&env.helm)
        .args(["template", "causeway"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/causeway"))
        .args(["--namespace", namespace, "--set", "clusterName=ci"])
        .args(values)
        .output()
        .expect("helm");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    split_yaml(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .filter_map(|d| serde_saphyr::from_str::<Value>(d).ok())
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .collect()
}

fn kubectl_apply(ctx: &TestCtx, docs: &[Value]) -> Result<(), String> {
    let stream: String = docs
        .iter()
        .map(|d| format!("---\n{}\n", serde_json::to_string(d).expect("json")))
        .collect();
    let mut child = Command::new(&ctx.env.kubectl)
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=rbac-test",
            "-f",
            "-",
        ])
        .envs(ctx.process_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Creates the chart's MutatingWebhookConfiguration (release "causeway") as Helm would, so the
/// controller, running with the chart's RBAC, only has to patch it. Out of cluster the webhook is
/// reached at `url` instead of the chart's Service.
pub fn install_chart_webhook_configuration(ctx: &TestCtx, url: &str) {
    let env = shared_env().expect("env");
    let out = Command::new(&env.helm)
        .args(["template", "causeway"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/causeway"))
        .args(["--namespace", &ctx.namespace, "--set", "clusterName=ci"])
        .args(["--show-only", "templates/webhook.yaml"])
        .output()
        .expect("helm");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut docs: Vec<Value> = split_yaml(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .filter_map(|d| serde_saphyr::from_str::<Value>(d).ok())
        .filter(|d| d["kind"] == "MutatingWebhookConfiguration")
        .collect();
    assert_eq!(
        docs.len(),
        1,
        "the chart renders one MutatingWebhookConfiguration"
    );
    // The readiness-gate and Service mutators only: the token-path injector would see every
    // pod of the cluster, and the test that needs it configures its own.
    let hooks = docs[0]["webhooks"].as_array_mut().expect("webhooks");
    hooks.retain(|h| h["name"] != "pod-identity.causeway.dev");
    for hook in hooks {
        hook["clientConfig"] = serde_json::json!({ "url": url });
    }
    kubectl_apply(ctx, &docs).expect("apply the chart's webhook configuration");
}

/// What the chart renders for `alb.oidcSecrets: [{namespace: <test namespace>, name}]`: the
/// Role and RoleBinding that let the controller get that one Secret.
pub fn grant_oidc_secret(ctx: &TestCtx, name: &str) {
    let value = serde_json::json!([{"namespace": ctx.namespace, "name": name}]);
    let docs: Vec<Value> = chart_rbac_docs_with(
        CHART_NAMESPACE,
        &["--set-json", &format!("alb.oidcSecrets={value}")],
    )
    .into_iter()
    .filter(|d| {
        (d["kind"] == "Role" || d["kind"] == "RoleBinding")
            && d["metadata"]["namespace"] == ctx.namespace.as_str()
    })
    .collect();
    assert_eq!(docs.len(), 2, "the chart renders a Role and a RoleBinding");
    kubectl_apply(ctx, &docs).expect("granting the Secret");
}

/// A kubeconfig that authenticates as the chart's `causeway-<component>` ServiceAccount (a
/// TokenRequest token), so the process runs with exactly the chart's ClusterRole. The chart's
/// namespaced Role (Lease, webhook Secret) is also bound in the test's namespace, which plays the
/// release namespace for `--leader-election-namespace` and friends.
pub fn chart_identity(ctx: &TestCtx, component: &str) -> PathBuf {
    CHART_RBAC
        .get_or_init(|| {
            let ns = serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CHART_NAMESPACE}
            });
            kubectl_apply(ctx, &[ns])?;
            kubectl_apply(ctx, &chart_rbac_docs(CHART_NAMESPACE))
        })
        .as_ref()
        .expect("applying the chart's RBAC");
    let mut local: Vec<Value> = chart_rbac_docs(&ctx.namespace)
        .into_iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "RoleBinding")
        .collect();
    for d in &mut local {
        if let Some(subjects) = d.get_mut("subjects").and_then(|s| s.as_array_mut()) {
            for s in subjects {
                s["namespace"] = CHART_NAMESPACE.into();
            }
        }
    }
    kubectl_apply(ctx, &local).expect("binding the chart's Role in the test namespace");

    let sa = format!("causeway-{component}");
    let path = ctx.env.dir.join(format!("kubeconfig-{sa}"));
    // Written once per test run: a file from an earlier run names an older apiserver.
    static WRITTEN: OnceLock<std::sync::Mutex<std::collections::BTreeSet<String>>> =
        OnceLock::new();
    let mut written = WRITTEN.get_or_init(Default::default).lock().expect("lock");
    if written.contains(&sa) {
        return path;
    }
    let out = Command::new(&ctx.env.kubectl)
        .args([
            "create",
            "token",
            &sa,
            "-n",
            CHART_NAMESPACE,
            "--duration=24h",
        ])
        .envs(ctx.process_env())
        .output()
        .expect("kubectl create token");
    assert!(
        out.status.success(),
        "create token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let admin = std::fs::read_to_string(&ctx.env.kubeconfig).expect("kubeconfig");
    let mut config: Value = serde_saphyr::from_str(&admin).expect("kubeconfig yaml");
    config["users"] = serde_json::json!([{ "name": sa, "user": { "token": token } }]);
    config["contexts"][0]["context"]["user"] = sa.clone().into();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string(&config).expect("json")).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    written.insert(sa);
    path
}
