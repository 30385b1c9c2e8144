//! Builds (once) and locates the binaries the environment runs.
//!
//! The cache lives under `$CAUSEWAY_CACHE_DIR`, else `$XDG_CACHE_HOME/causeway`,
//! else `~/.cache/causeway`. Each entry is keyed by version and by a hash of the
//! file that pins its dependencies, so a change to go.sum or requirements.txt
//! builds a fresh entry instead of reusing a stale one.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{GATEWAY_API_VERSION, HELM_VERSION, K8S_VERSION, KWOK_VERSION, MOTO_VERSION};

#[derive(Debug, Clone)]
pub struct Binaries {
    /// Multi-call binary: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl.
    pub cplane: PathBuf,
    /// `kubectl` (a symlink to the multi-call binary, dispatched on argv[0]).
    pub kubectl: PathBuf,
    pub kwok: PathBuf,
    /// `moto_server` inside the cached virtualenv.
    pub moto_server: PathBuf,
    /// helm, for the chart tests.
    pub helm: PathBuf,
    /// The upstream Gateway API CRDs, one multi-document YAML file.
    pub gateway_crds: PathBuf,
}

/// The workspace root (where Cargo.toml, hack/ and deploy/ live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testenv lives one level below the workspace root")
        .to_path_buf()
}

pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAUSEWAY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("causeway");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache").join("causeway")
}

fn short_hash(path: &Path) -> Result<String> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = Sha256::digest(&data);
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}

/// Runs `f` holding an exclusive lock on `dir/.lock`, so parallel test processes
/// and `cargo xtask` never build the same entry twice at once.
fn with_lock<T>(dir: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    fs::create_dir_all(dir)?;
    let lock = File::create(dir.join(".lock"))?;
    lock.lock()
        .with_context(|| format!("locking {}", dir.display()))?;
    let out = f();
    let _ = lock.unlock();
    out
}

/// Ensures every binary exists, building what is missing. `progress` receives
/// human-readable lines while something slow happens.
pub fn ensure_all(progress: &dyn Fn(&str)) -> Result<Binaries> {
    let (cplane, kubectl) = ensure_cplane(progress)?;
    let kwok = ensure_kwok(progress)?;
    let moto_server = ensure_moto(progress)?;
    // helm reports only major.minor unless its version variable is stamped.
    let helm_ldflags = format!("-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}");
    let helm = ensure_go_tool(
        "helm",
        HELM_VERSION,
        "helm.sh/helm/v3/cmd/helm",
        &helm_ldflags,
        progress,
    )?;
    let gateway_crds = ensure_gateway_crds(progress)?;
    Ok(Binaries {
        cplane,
        kubectl,
        kwok,
        moto_server,
        helm,
        gateway_crds,
    })
}

/// The Gateway API CRDs of the experimental channel, taken from the `sigs.k8s.io/gateway-api`
/// Go module that hack/gateway-api pins (downloaded through the module proxy and checked
/// against its go.sum; nothing is built), concatenated into one cached file. The channel's
/// ValidatingAdmissionPolicy and kustomization are left out.
pub fn ensure_gateway_crds(progress: &dyn Fn(&str)) -> Result<PathBuf> {
    let module = repo_root().join("hack/gateway-api");
    let dir = cache_dir().join(format!(
        "gateway-api-{GATEWAY_API_VERSION}-{}",
        short_hash(&module.join("go.sum"))?
    ));
    let file = dir.join("crds.yaml");
    with_lock(&dir, || {
        if file.exists() {
            return Ok(());
        }
        progress(&format!(
            "downloading the Gateway API {GATEWAY_API_VERSION} CRDs (Go module)"
        ));
        let mut cmd = Command::new("go");
        cmd.current_dir(&module)
            .args(["mod", "download", "-json", "sigs.k8s.io/gateway-api"]);
        go_env(&mut cmd);
        cmd.env("GOFLAGS", "-mod=mod");
        let out = cmd.output().context("running go mod download")?;
        if !out.status.success() {
            bail!(
                "go mod download sigs.k8s.io/gateway-api failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let src = info["Dir"]
            .as_str()
            .map(|d| Path::new(d).join("config/crd/experimental"))
            .context("go mod download printed no Dir")?;
        let mut names: Vec<PathBuf> = fs::read_dir(&src)
            .with_context(|| format!("reading {}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                n.ends_with(".yaml") && n.contains("_") && !n.contains("_vap_")
            })
            .collect();
        names.sort();
        let mut all = String::new();
        for p in &names {
            all.push_str("---\n");
            all.push_str(&fs::read_to_string(p)?);
        }
        let tmp = dir.join("crds.yaml.tmp");
        fs::write(&tmp, all)?;
        fs::rename(&tmp, &file)?;
        Ok(())
    })?;
    Ok(file)
}

fn go_env(cmd: &mut Command) {
    // sum.golang.org is unreachable here; go.sum is committed, so builds stay pinned.
    cmd.env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false");
}

pub fn ensure_cplane(progress: &dyn Fn(&str)) -> Result<(PathBuf, PathBuf)> {
    let module = repo_root().join("hack/cplane");
    let dir = cache_dir().join(format!(
        "cplane-{K8S_VERSION}-{}",
        short_hash(&module.join("go.sum"))?
    ));
    let bin = dir.join("cplane");
    let kubectl = dir.join("kubectl");
    with_lock(&dir, || {
        if !bin.exists() {
            let minor = K8S_VERSION
                .trim_start_matches('v')
                .split('.')
                .nth(1)
                .unwrap_or("0");
            let ldflags = format!(
                "-s -w -X k8s.io/component-base/version.gitVersion={K8S_VERSION} \
                 -X k8s.io/component-base/version.gitMajor=1 \
                 -X k8s.io/component-base/version.gitMinor={minor} \
                 -X k8s.io/component-base/version.gitTreeState=clean \
                 -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z"
            );
            let tmp = dir.join("cplane.tmp");
            let mut cmd = Command::new("go");
            cmd.current_dir(&module)
                .args(["build", "-v", "-trimpath", "-ldflags", &ldflags, "-o"]);
            cmd.arg(&tmp).arg(".");
            go_env(&mut cmd);
            run_with_progress(
                cmd,
                &format!(
                    "building kube-apiserver, controller-manager, scheduler, kubectl and etcd {K8S_VERSION} (cold: ~25 min on 2 cores)"
                ),
                &dir.join("build.log"),
                progress,
            )?;
            fs::rename(&tmp, &bin)?;
        }
        if !kubectl.exists() {
            std::os::unix::fs::symlink("cplane", &kubectl)?;
        }
        Ok(())
    })?;
    Ok((bin, kubectl))
}

pub fn ensure_kwok(progress: &dyn Fn(&str)) -> Result<PathBuf> {
    ensure_go_tool(
        "kwok",
        KWOK_VERSION,
        "sigs.k8s.io/kwok/cmd/kwok",
        "",
        progress,
    )
}

/// Builds `package` from the pinning module `hack/<name>` (its go.mod names
/// the package in a `tool` directive, so go.sum pins every dependency).
fn ensure_go_tool(
    name: &str,
    version: &str,
    package: &str,
    extra_ldflags: &str,
    progress: &dyn Fn(&str),
) -> Result<PathBuf> {
    let module = repo_root().join("hack").join(name);
    let mut key = short_hash(&module.join("go.sum"))?;
    if !extra_ldflags.is_empty() {
        // Different stamping is a different binary.
        let digest = Sha256::digest(extra_ldflags.as_bytes());
        key.push('-');
        key.extend(digest.iter().take(3).map(|b| format!("{b:02x}")));
    }
    let dir = cache_dir().join(format!("{name}-{version}-{key}"));
    let bin = dir.join(name);
    with_lock(&dir, || {
        if bin.exists() {
            return Ok(());
        }
        let tmp = dir.join(format!("{name}.tmp"));
        let mut cmd = Command::new("go");
        cmd.current_dir(&module)
            .args(["build", "-v", "-trimpath", "-ldflags"])
            .arg(format!("-s -w {extra_ldflags}"))
            .arg("-o")
            .arg(&tmp)
            .arg(package);
        go_env(&mut cmd);
        run_with_progress(
            cmd,
            &format!("building {name} {version}"),
            &dir.join("build.log"),
            progress,
        )?;
        fs::rename(&tmp, &bin)?;
        Ok(())
    })?;
    Ok(bin)
}

pub fn ensure_moto(progress: &dyn Fn(&str)) -> Result<PathBuf> {
    let reqs = repo_root().join("hack/moto/requirements.txt");
    let dir = cache_dir().join(format!("moto-{MOTO_VERSION}-{}", short_hash(&reqs)?));
    let bin = dir.join("venv/bin/moto_server");
    with_lock(&dir, || {
        if dir.join("ok").exists() && bin.exists() {
            return Ok(());
        }
        let venv = dir.join("venv");
        let _ = fs::remove_dir_all(&venv);
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        run_with_progress(
            cmd,
            "creating the moto virtualenv",
            &dir.join("venv.log"),
            progress,
        )?;
        let mut cmd = Command::new(venv.join("bin/pip"));
        cmd.args(["install", "--disable-pip-version-check", "--no-input", "-r"])
            .arg(&reqs);
        run_with_progress(
            cmd,
            &format!(
                "installing moto[server]=={MOTO_VERSION} (pinned in hack/moto/requirements.txt)"
            ),
            &dir.join("pip.log"),
            progress,
        )?;
        if !bin.exists() {
            bail!("moto install finished but {} is missing", bin.display());
        }
        fs::write(dir.join("ok"), MOTO_VERSION)?;
        Ok(())
    })?;
    Ok(bin)
}

/// Runs a slow command with its output in `log`, reporting progress every 20 s
/// so a first run on a new machine never looks hung.
fn run_with_progress(
    mut cmd: Command,
    what: &str,
    log: &Path,
    progress: &dyn Fn(&str),
) -> Result<()> {
    progress(&format!("{what} ..."));
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let log_file = File::create(log)?;
    let stderr = child.stderr.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for stream in [
        Box::new(stderr) as Box<dyn std::io::Read + Send>,
        Box::new(stdout),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut writer = std::io::BufWriter::new(log_file);
    let mut lines = 0usize;
    let mut last_report = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                use std::io::Write;
                lines += 1;
                let _ = writeln!(writer, "{line}");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_report.elapsed() >= Duration::from_secs(20) {
            progress(&format!(
                "  ... {what}: {}s, {lines} lines of output so far",
                started.elapsed().as_secs()
            ));
            last_report = Instant::now();
        }
    }
    drop(writer);
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "{what} failed ({status}); see {}:\n{}",
            log.display(),
            tail(log, 20)
        );
    }
    progress(&format!("{what}: done in {}s", started.elapsed().as_secs()));
    Ok(())
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
