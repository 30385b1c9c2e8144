//! Helpers for tests/: one environment per test run (reused when one is
//! already running), a namespace and unique AWS names per test, applying
//! YAML, waiting with a deadline, and reading AWS state from moto.

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::env::{self, EnvInfo};

static ENV: OnceLock<Result<EnvInfo, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The environment for this test run.
///
/// Reuses the one in `$CAUSEWAY_ENV_DIR` (what `cargo xtask test` starts) or
/// in the default directory when it answers; otherwise starts a private one
/// in `target/testenv-<pid>` whose processes a watchdog stops when this test
/// binary exits, however it exits.
pub fn shared_env() -> Result<&'static EnvInfo> {
    let res = ENV.get_or_init(|| {
        // A dedicated runtime: each #[tokio::test] has its own, which dies with
        // its test, so nothing shared may be bound to one of them.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(find_or_start()).map_err(|e| format!("{e:#}"))
        })
        .join()
        .unwrap_or_else(|_| Err("starting the environment panicked".to_string()))
    });
    res.as_ref()
        .map_err(|e| anyhow!("test environment unavailable: {e}"))
}

async fn find_or_start() -> Result<EnvInfo> {
    let candidates: Vec<PathBuf> = match std::env::var_os("CAUSEWAY_ENV_DIR") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![env::default_dir()],
    };
    for dir in &candidates {
        if let Some(info) = env::existing(dir).await {
            return Ok(info);
        }
    }
    if std::env::var_os("CAUSEWAY_ENV_DIR").is_some() {
        bail!(
            "CAUSEWAY_ENV_DIR={} names no running environment",
            candidates[0].display()
        );
    }
    let dir = crate::binaries::repo_root()
        .join("target")
        .join(format!("testenv-{}", std::process::id()));
    let progress = |line: &str| eprintln!("[testenv] {line}");
    let started = env::up(&dir, &env::UpOptions::default(), &progress).await;
    // The watchdog goes up even when startup failed half-way.
    crate::procs::spawn_watchdog(&dir, std::process::id())?;
    started
}

/// A name unique to this test run and call, usable for AWS resources
/// (lowercase alphanumerics and dashes; at most 32 characters with a short prefix).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = format!(
        "{prefix}-{}-{n}-{}",
        std::process::id() % 100_000,
        crate::certs::random_hex(2)
    );
    name.truncate(32);
    name.trim_end_matches('-').to_string()
}

/// Per-test handle: its own kube client (bound to the test's runtime) and
/// namespace.
pub struct TestCtx {
    pub env: &'static EnvInfo,
    pub client: kube::Client,
    pub namespace: String,
}

impl TestCtx {
    /// Creates a fresh namespace for the calling test.
    pub async fn new(prefix: &str) -> Result<Self> {
        let env = shared_env()?;
        let client = env::client(env).await?;
        let namespace = unique_name(prefix);
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"causeway.dev/test": "true"}}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .context("creating test namespace")?;
        Ok(Self {
            env,
            client,
            namespace,
        })
    }

    /// Server-side applies every document in `yaml`; namespaced objects
    /// without a namespace land in the test's namespace.
    pub async fn apply(&self, yaml: &str) -> Result<Vec<DynamicObject>> {
        apply_yaml(&self.client, Some(&self.namespace), yaml).await
    }

    /// Environment variables for a causeway process started by this test.
    pub fn process_env(&self) -> Vec<(String, String)> {
        env::env_vars(self.env)
    }

    pub async fn aws(&self) -> aws_types::SdkConfig {
        crate::seed::sdk_config(&self.env.moto_url).await
    }

    /// Deletes the namespace (foreground cleanup is the controller-manager's job).
    pub async fn cleanup(self) -> Result<()> {
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await?;
        Ok(())
    }
}

/// Server-side apply of a multi-document YAML stream, resolving each kind
/// through discovery.
pub async fn apply_yaml(
    client: &kube::Client,
    namespace: Option<&str>,
    yaml: &str,
) -> Result<Vec<DynamicObject>> {
    // Tests running in parallel re-apply the shared CRDs; while the apiserver rebuilds a CRD's
    // handler its discovery and resource paths briefly answer 404. Retry those, nothing else.
    let mut attempt = 0;
    let discovery = loop {
        match Discovery::new(client.clone()).run().await {
            Ok(d) => break d,
            Err(e) if attempt < 20 && is_not_found(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for doc in split_yaml(yaml) {
        let value: serde_json::Value =
            serde_saphyr::from_str(&doc).map_err(|e| anyhow!("parsing YAML document: {e}"))?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value)?;
        let tm = obj
            .types
            .as_ref()
            .context("document without apiVersion/kind")?;
        let gvk = kube::api::GroupVersionKind::try_from(tm)?;
        let (ar, caps) = discovery
            .resolve_gvk(&gvk)
            .with_context(|| format!("unknown kind {gvk:?}"))?;
        let name = obj.metadata.name.clone().context("document without name")?;
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            let ns = obj
                .metadata
                .namespace
                .clone()
                .or_else(|| namespace.map(str::to_string))
                .unwrap_or_else(|| "default".to_string());
            Api::namespaced_with(client.clone(), &ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        let mut attempt = 0;
        let applied = loop {
            match api
                .patch(
                    &name,
                    &PatchParams::apply("causeway-tests").force(),
                    &Patch::Apply(&obj),
                )
                .await
            {
                Ok(a) => break a,
                Err(e) if attempt < 20 && is_not_found(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(anyhow::Error::from(e))
                        .with_context(|| format!("applying {} {name}", ar.kind));
                }
            }
        };
        out.push(applied);
    }
    Ok(out)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Splits a YAML stream on document separators.
pub fn split_yaml(yaml: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().expect("non-empty");
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// Polls `check` until it returns `Some`, with a deadline. The deadline bounds
/// a wait for an event; it is not a timing assertion.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= end {
            bail!("timed out after {}s waiting for {what}", deadline.as_secs());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Fetches `path` from an HTTP endpoint on loopback (metrics, health).
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let host = host.to_string();
    tokio::task::spawn_blocking(move || env::http_get_at(&host, &path, Duration::from_secs(5)))
        .await
        .ok()
        .flatten()
}
