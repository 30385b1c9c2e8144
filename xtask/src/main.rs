//! `cargo xtask`: the embedded test environment, the demo, and the full test run.

use anyhow::{Context, Result, bail};
use causeway_testenv::{EnvInfo, binaries, env, procs};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "causeway developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Manage the embedded environment (etcd, kube-apiserver, controller-manager, scheduler, kwok, moto).
    Env {
        #[command(subcommand)]
        action: EnvAction,
    },
    /// Start the environment, run causeway on it, apply deploy/examples and show what exists in AWS.
    Demo {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run everything CI runs: fmt, clippy, unit and integration tests on the environment.
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Build (or find in the cache) the control plane, kwok and moto; print their paths.
    Binaries,
}

#[derive(Subcommand)]
enum EnvAction {
    /// Start the environment and return once everything is ready.
    Up {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Stop every process the environment started. Data and logs are kept.
    Down {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Report what is running.
    Status {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn progress(line: &str) {
    eprintln!("[xtask] {line}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let res = rt.block_on(async {
        match cli.cmd {
            Cmd::Env { action } => match action {
                EnvAction::Up { dir } => env_up(&dir.unwrap_or_else(env::default_dir))
                    .await
                    .map(|_| ()),
                EnvAction::Down { dir } => {
                    let dir = dir.unwrap_or_else(env::default_dir);
                    for (name, pid) in env::down(&dir) {
                        progress(&format!("stopped {name} (pid {pid})"));
                    }
                    Ok(())
                }
                EnvAction::Status { dir } => {
                    env_status(&dir.unwrap_or_else(env::default_dir)).await
                }
            },
            Cmd::Demo { dir } => demo(&dir.unwrap_or_else(env::default_dir)).await,
            Cmd::Test { args } => test(args).await,
            Cmd::Binaries => {
                let b = binaries::ensure_all(&progress)?;
                println!(
                    "cplane  {}\nkubectl {}\nkwok    {}\nmoto    {}\nhelm    {}",
                    b.cplane.display(),
                    b.kubectl.display(),
                    b.kwok.display(),
                    b.moto_server.display(),
                    b.helm.display()
                );
                Ok(())
            }
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn env_up(dir: &Path) -> Result<EnvInfo> {
    if let Some(info) = env::existing(dir).await {
        progress(&format!("environment already running in {}", dir.display()));
        return Ok(info);
    }
    let info = env::up(dir, &env::UpOptions::default(), &progress).await?;
    println!("environment ready in {:.1}s", info.startup_seconds);
    println!("  source {}/env", dir.display());
    println!("  kubeconfig {}", info.kubeconfig.display());
    Ok(info)
}

async fn env_status(dir: &Path) -> Result<()> {
    let comps = env::status(dir);
    if comps.is_empty() {
        println!("no environment in {}", dir.display());
        return Ok(());
    }
    for (name, pid, alive) in comps {
        println!(
            "{name:<26} pid {pid:<8} {}",
            if alive { "running" } else { "exited" }
        );
    }
    match env::existing(dir).await {
        Some(info) => println!(
            "apiserver {} ready; moto {}",
            info.apiserver_url, info.moto_url
        ),
        None => println!("apiserver or moto not answering"),
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(binaries::repo_root());
    // `cargo xtask` runs us with xtask's package variables set. Build scripts (ring's among
    // them) rerun when one of those they watch changes, so a cargo started with them rebuilds
    // ring, rustls, kube and everything above them, and the next plain cargo rebuilds them
    // back: the inner cargo gets the environment a shell would give it.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_CRATE_")
            || key.starts_with("CARGO_BIN_")
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "OUT_DIR"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    progress(what);
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    progress(&format!("{what}: ok in {}s", started.elapsed().as_secs()));
    Ok(())
}

/// Debian packages the node-agent tests need (real iptables and `ip netns`).
fn install_system_packages() -> Result<()> {
    let missing: Vec<&str> = [("iptables", "iptables"), ("ip", "iproute2")]
        .into_iter()
        .filter(|(bin, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .map(|(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install, &format!("apt-get install {}", missing.join(" ")))
}

async fn test(extra: Vec<String>) -> Result<()> {
    let started = Instant::now();
    install_system_packages()?;
    binaries::ensure_all(&progress)?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt, "cargo fmt --check")?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "causeway/testing",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy, "cargo clippy -D warnings")?;

    let dir = binaries::repo_root().join("target").join("ci-env");
    env::down(&dir);
    let info = env::up(&dir, &env::UpOptions::default(), &progress).await?;
    progress(&format!("environment up in {:.1}s", info.startup_seconds));
    let mut tests = cargo();
    tests
        .args([
            "test",
            "--workspace",
            "--all-targets",
            "--features",
            "causeway/testing",
        ])
        .env("CAUSEWAY_ENV_DIR", &dir);
    if !extra.is_empty() {
        tests.arg("--").args(&extra);
    }
    let result = run(tests, "cargo test --workspace");
    // The environment goes down whatever the tests did.
    for (name, pid) in env::down(&dir) {
        progress(&format!("stopped {name} (pid {pid})"));
    }
    result?;
    progress(&format!(
        "all checks passed in {}s",
        started.elapsed().as_secs()
    ));
    Ok(())
}

async fn demo(dir: &Path) -> Result<()> {
    let info = env_up(dir).await?;
    let mut build = cargo();
    // Building the whole workspace keeps dependency features identical to the
    // test build, so nothing is compiled twice.
    build.args(["build", "--workspace", "--bins"]);
    run(build, "building causeway")?;
    let causeway = binaries::repo_root().join("target/debug/causeway");

    progress("installing CRDs");
    let crds = Command::new(&causeway).arg("crds").output()?;
    if !crds.status.success() {
        bail!(
            "causeway crds failed: {}",
            String::from_utf8_lossy(&crds.stderr)
        );
    }
    kubectl_apply_stdin(&info, &crds.stdout)?;

    let vars = env::env_vars(&info);
    if procs::pid_of(dir, "causeway-controller").is_some_and(procs::alive) {
        progress("causeway controller already running");
    } else {
        let mut ctl = Command::new(&causeway);
        ctl.arg("controller")
            .args(["--metrics-addr", "127.0.0.1:0"])
            .envs(vars.iter().map(|(k, v)| (k, v)));
        procs::spawn(dir, "causeway-controller", ctl)?;
        progress(&format!(
            "causeway controller started; logs in {}",
            procs::log_path(dir, "causeway-controller").display()
        ));
    }

    let examples = binaries::repo_root().join("deploy/examples");
    let mut apply = Command::new(&info.kubectl);
    apply
        .args(["apply", "--server-side", "-f"])
        .arg(&examples)
        .env("KUBECONFIG", &info.kubeconfig);
    run(apply, "applying deploy/examples")?;

    // Wait, bounded, for the controller to report on the example IamRoleBinding.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let out = Command::new(&info.kubectl)
            .args(["get", "iamrolebinding", "reporter", "-n", "demo", "-o"])
            .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
            .env("KUBECONFIG", &info.kubeconfig)
            .output()?;
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    summary(&info).await?;
    println!(
        "\nThe environment keeps running: `source {}/env` to use kubectl and the AWS endpoint; `cargo xtask env down` stops it.",
        dir.display()
    );
    Ok(())
}

fn kubectl_apply_stdin(info: &EnvInfo, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(&info.kubectl)
        .args(["apply", "--server-side", "-f", "-"])
        .env("KUBECONFIG", &info.kubeconfig)
        .stdin(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(data)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("kubectl apply failed ({status})");
    }
    Ok(())
}

/// What now exists in AWS, read straight from moto.
async fn summary(info: &EnvInfo) -> Result<()> {
    let conf = causeway_testenv::seed::sdk_config(&info.moto_url).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    println!("\n== Load balancers");
    let lbs = elb.describe_load_balancers().send().await?;
    if lbs.load_balancers().is_empty() {
        println!("  (none)");
    }
    for lb in lbs.load_balancers() {
        println!(
            "  {} {} {}",
            lb.load_balancer_name().unwrap_or_default(),
            lb.scheme().map(|s| s.as_str()).unwrap_or_default(),
            lb.dns_name().unwrap_or_default()
        );
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await?;
        for l in listeners.listeners() {
            println!(
                "    listener {}:{}",
                l.protocol().map(|p| p.as_str()).unwrap_or_default(),
                l.port().unwrap_or_default()
            );
            let rules = elb
                .describe_rules()
                .listener_arn(l.listener_arn().unwrap_or_default())
                .send()
                .await?;
            for r in rules.rules() {
                let conds: Vec<String> = r
                    .conditions()
                    .iter()
                    .map(|c| format!("{}={:?}", c.field().unwrap_or_default(), c.values()))
                    .collect();
                println!(
                    "      rule {} {}",
                    r.priority().unwrap_or_default(),
                    conds.join(" ")
                );
            }
        }
        let tgs = elb
            .describe_target_groups()
            .load_balancer_arn(arn)
            .send()
            .await?;
        for tg in tgs.target_groups() {
            let health = elb
                .describe_target_health()
                .target_group_arn(tg.target_group_arn().unwrap_or_default())
                .send()
                .await?;
            let targets: Vec<String> = health
                .target_health_descriptions()
                .iter()
                .filter_map(|d| d.target())
                .map(|t| {
                    format!(
                        "{}:{}",
                        t.id().unwrap_or_default(),
                        t.port().unwrap_or_default()
                    )
                })
                .collect();
            println!(
                "    target group {} ({}) targets: {}",
                tg.target_group_name().unwrap_or_default(),
                tg.target_type().map(|t| t.as_str()).unwrap_or_default(),
                if targets.is_empty() {
                    "(none)".to_string()
                } else {
                    targets.join(", ")
                }
            );
        }
    }
    println!("\n== Route 53 records");
    let r53 = aws_sdk_route53::Client::new(&conf);
    for (zone, kind) in [
        (&info.seed.public_zone_id, "public"),
        (&info.seed.private_zone_id, "private"),
    ] {
        let recs = r53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .send()
            .await?;
        println!("  zone {} ({kind})", zone);
        for r in recs.resource_record_sets() {
            if matches!(r.r#type().as_str(), "SOA" | "NS") {
                continue;
            }
            let values: Vec<&str> = r.resource_records().iter().map(|v| v.value()).collect();
            let alias = r
                .alias_target()
                .map(|a| format!(" ALIAS {}", a.dns_name()))
                .unwrap_or_default();
            println!(
                "    {} {} {}{}",
                r.name(),
                r.r#type().as_str(),
                values.join(" "),
                alias
            );
        }
    }
    println!("\n== IamRoleBindings (validated against IAM by the controller)");
    let out = Command::new(&info.kubectl)
        .args(["get", "iamrolebindings", "-A"])
        .env("KUBECONFIG", &info.kubeconfig)
        .output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  {line}");
    }
    println!("\n== Role sessions");
    let log = procs::log_path(&info.dir, "causeway-agent");
    let sessions = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("AssumeRole"))
        .count();
    if sessions == 0 {
        println!("  (none: the node agent is not running in this environment)");
    } else {
        println!(
            "  {sessions} AssumeRole sessions issued (see {})",
            log.display()
        );
    }
    Ok(())
}
