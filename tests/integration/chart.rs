//! The Helm chart, the kustomize base rendered from it, and the IAM policy: lint, render,
//! schema, drift, and server-side apply to the real apiserver.

use causeway_testenv::support::{TestCtx, shared_env, split_yaml, unique_name};
use clap::CommandFactory;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("charts/causeway")
}

fn helm() -> PathBuf {
    shared_env().expect("env").helm.clone()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `helm template` with the given release, namespace and extra arguments.
fn template(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    let out = run(Command::new(helm())
        .arg("template")
        .arg(release)
        .arg(chart_dir())
        .args(["--namespace", namespace])
        .args(args));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(text(&out))
    }
}

fn docs(yaml: &str) -> Vec<Value> {
    split_yaml(yaml)
        .iter()
        .filter_map(|d| serde_saphyr::from_str::<Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with(name_suffix)
        })
        .unwrap_or_else(|| panic!("no {kind} named *{name_suffix} in the render"))
}

fn all_features() -> String {
    chart_dir()
        .join("ci/all-features-values.yaml")
        .display()
        .to_string()
}

/// Every environment variable a subcommand's flags read (the chart's ConfigMaps set flags this way).
fn env_names(subcommand: &str) -> BTreeSet<String> {
    let root = causeway::cli::Cli::command();
    let sub = root
        .get_subcommands()
        .find(|c| c.get_name() == subcommand)
        .expect("subcommand");
    root.get_arguments()
        .chain(sub.get_arguments())
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn helm_lint_passes_with_default_and_all_features_values() {
    for values in ["ci/default-values.yaml", "ci/all-features-values.yaml"] {
        let out = run(Command::new(helm())
            .arg("lint")
            .arg(chart_dir())
            .args(["--strict", "-f"])
            .arg(chart_dir().join(values)));
        assert!(out.status.success(), "helm lint {values}: {}", text(&out));
    }
}

#[test]
fn rendering_is_deterministic_and_matches_the_binary() {
    for extra in [
        vec!["--set", "clusterName=ci-cluster"],
        vec!["-f", &all_features()],
    ] {
        let a = template("cw", "causeway-system", &extra).expect("render");
        let b = template("cw", "causeway-system", &extra).expect("render");
        assert_eq!(a, b, "two renders differ (random values in the chart?)");
        let d = docs(&a);

        // Every setting the chart passes is a flag the binary knows.
        let known_controller = env_names("controller");
        let cm = find(&d, "ConfigMap", "-controller");
        for key in cm["data"].as_object().expect("data").keys() {
            assert!(
                known_controller.contains(key),
                "controller ConfigMap sets {key}, which no `causeway controller` flag reads"
            );
        }
        let known_agent = env_names("agent");
        let cm = find(&d, "ConfigMap", "-agent");
        for key in cm["data"].as_object().expect("data").keys() {
            assert!(
                known_agent.contains(key),
                "agent ConfigMap sets {key}, which no `causeway agent` flag reads"
            );
        }
        let ds = find(&d, "DaemonSet", "-agent");
        for env in ds["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
        {
            let name = env["name"].as_str().expect("name");
            if env.get("valueFrom").is_some() {
                assert!(
                    known_agent.contains(name),
                    "agent env {name} is read by no flag"
                );
            }
        }

        // The shape the issue asks for.
        let dep = find(&d, "Deployment", "-controller");
        assert!(dep["spec"]["replicas"].as_u64().expect("replicas") >= 2);
        let pod = &dep["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert!(pod["affinity"]["podAntiAffinity"].is_object());
        find(&d, "PodDisruptionBudget", "-controller");
        let agent = &ds["spec"]["template"]["spec"];
        assert_eq!(agent["hostNetwork"], true);
        let caps = &agent["containers"][0]["securityContext"]["capabilities"];
        assert_eq!(caps["add"], serde_json::json!(["NET_ADMIN"]));
        assert_eq!(caps["drop"], serde_json::json!(["ALL"]));
        assert!(agent["tolerations"].is_array());
        assert!(agent["priorityClassName"].is_string());
        let hook = find(&d, "MutatingWebhookConfiguration", "-pod-readiness-gate");
        assert_eq!(hook["webhooks"][0]["failurePolicy"], "Ignore");
        for r in d
            .iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        {
            for rule in r["rules"].as_array().expect("rules") {
                for field in ["verbs", "resources", "apiGroups"] {
                    let v = rule[field].as_array().expect(field);
                    assert!(
                        !v.iter().any(|x| x == "*"),
                        "{} has a wildcard in {field}",
                        r["metadata"]["name"]
                    );
                }
            }
        }
    }
}

#[test]
fn component_switches_remove_their_resources_and_rules() {
    let only_dns = template(
        "cw",
        "causeway-system",
        &[
            "--set",
            "clusterName=c1",
            "--set",
            "alb.enabled=false",
            "--set",
            "nlb.enabled=false",
            "--set",
            "iam.enabled=false",
        ],
    )
    .expect("render");
    let d = docs(&only_dns);
    assert!(
        !d.iter().any(|x| x["kind"] == "DaemonSet"),
        "agent rendered with iam off"
    );
    assert!(!d.iter().any(|x| x["kind"] == "IngressClass"));
    assert!(
        !d.iter()
            .any(|x| x["kind"] == "MutatingWebhookConfiguration")
    );
    let cm = find(&d, "ConfigMap", "-controller");
    assert_eq!(cm["data"]["CAUSEWAY_CONTROLLERS"], "dns");
    let role = find(&d, "ClusterRole", "-controller");
    let text = role.to_string();
    assert!(
        !text.contains("ingresses/status"),
        "ALB rules left with alb off"
    );
    assert!(text.contains("dnsendpoints/status"));
    assert!(
        !text.contains("services/status") && !text.contains("loadbalancergroups"),
        "NLB rules left with nlb off"
    );
    // The NLB alone: its reconciler and the target registration it hands off to.
    let only_nlb = template(
        "cw",
        "causeway-system",
        &[
            "--set",
            "clusterName=c1",
            "--set",
            "alb.enabled=false",
            "--set",
            "dns.enabled=false",
            "--set",
            "iam.enabled=false",
        ],
    )
    .expect("render");
    let d = docs(&only_nlb);
    assert!(!d.iter().any(|x| x["kind"] == "IngressClass"));
    let cm = find(&d, "ConfigMap", "-controller");
    assert_eq!(cm["data"]["CAUSEWAY_CONTROLLERS"], "nlb,targets");
    assert_eq!(cm["data"]["CAUSEWAY_WEBHOOK_ENABLED"], "false");
    let text = find(&d, "ClusterRole", "-controller").to_string();
    assert!(text.contains("services/status") && text.contains("targetgroupbindings/status"));
    assert!(
        !text.contains("ingresses/status"),
        "ALB rules left with alb off"
    );
    let skip = template(
        "cw",
        "ns",
        &["--set", "clusterName=c1", "--set", "crds.skipPeerCRDs=true"],
    )
    .expect("render");
    let crds: Vec<String> = docs(&skip)
        .iter()
        .filter(|x| x["kind"] == "CustomResourceDefinition")
        .map(|x| x["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        crds.iter().all(|n| n.ends_with(".causeway.dev")),
        "{crds:?}"
    );
    assert!(!crds.is_empty());
}

#[test]
fn schema_rejects_bad_values_with_the_key_named() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "clusterName"),
        (
            &["--set", "clusterName=ok", "--set", "dns.policy=sometimes"],
            "/dns/policy",
        ),
        (
            &[
                "--set",
                "clusterName=ok",
                "--set",
                "controller.replicaCount=0",
            ],
            "/controller/replicaCount",
        ),
        (
            &[
                "--set",
                "clusterName=ok",
                "--set",
                "iam.agent.sessionScope=node",
            ],
            "/iam/agent/sessionScope",
        ),
        (
            &[
                "--set",
                "clusterName=ok",
                "--set",
                "aws.rateLimits=route53-fast",
            ],
            "/aws/rateLimits",
        ),
        (
            &[
                "--set",
                "clusterName=ok",
                "--set",
                "alb.controllerName=nginx",
            ],
            "/alb/controllerName",
        ),
        (
            &["--set", "clusterName=ok", "--set", "dsn.enabled=true"],
            "dsn",
        ),
        (&["--set", "clusterName=bad name"], "/clusterName"),
        (
            &["--set", "clusterName=ok", "--set", "iam.agent.port=70000"],
            "/iam/agent/port",
        ),
    ];
    for (args, key) in cases {
        let err = template("cw", "causeway-system", args).expect_err(&format!("{args:?} accepted"));
        assert!(
            err.contains(key),
            "{args:?}: error does not name {key}: {err}"
        );
    }
}

/// Arguments of the render committed as deploy/causeway.yaml (the kustomize base).
const DEPLOY_ARGS: &[&str] = &[
    "--set",
    "clusterName=my-cluster",
    // A custom resource cannot be applied together with its CRD on a fresh cluster.
    "--set",
    "alb.ingressClassParams.create=false",
];

#[test]
fn kustomize_base_is_the_chart_rendered() {
    let rendered = template("causeway", "causeway-system", DEPLOY_ARGS).expect("render");
    let header = "# Generated from charts/causeway by tests/integration/chart.rs \
                  (CAUSEWAY_UPDATE_DEPLOY=1 regenerates it). Do not edit.\n";
    let want = format!("{header}{rendered}");
    let path = repo().join("deploy/causeway.yaml");
    if std::env::var_os("CAUSEWAY_UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, &want).expect("write deploy/causeway.yaml");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "deploy/causeway.yaml is stale; run CAUSEWAY_UPDATE_DEPLOY=1 cargo test --test integration kustomize_base"
    );
}

/// The IAM actions the code calls, found in the AWS adapters' source: every SDK call is written
/// `<client>.<operation>()` with the client named after its service.
fn actions_in_source() -> BTreeMap<&'static str, BTreeSet<String>> {
    let re = regex::Regex::new(
        r"\b(elbv2|ec2|route53|iam|sts|acm|wafv2|shield|tagging)\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)",
    )
    .expect("regex");
    let prefix = |svc: &str| -> String {
        match svc {
            "elbv2" => "elasticloadbalancing".to_string(),
            "tagging" => "tag".to_string(),
            other => other.to_string(),
        }
    };
    let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![repo().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            // A `tests.rs` is a unit-test module (declared under `#[cfg(test)]` elsewhere).
            if p.extension().is_none_or(|x| x != "rs")
                || p.file_name().is_some_and(|n| n == "tests.rs")
            {
                continue;
            }
            let src = std::fs::read_to_string(&p).expect("read");
            // Unit tests build SDK requests too; only shipped code counts.
            let shipped = src.split("#[cfg(test)]").next().unwrap_or("");
            for c in re
                .captures_iter(shipped)
                .filter(|c| !matches!(&c[2], "clone" | "config" | "is_some" | "is_none"))
            {
                let op: String = c[2]
                    .split('_')
                    .map(|w| {
                        let mut cs = w.chars();
                        cs.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                            .unwrap_or_default()
                    })
                    .collect();
                let actions = out.entry(statement_for(&p)).or_default();
                actions.insert(format!("{}:{op}", prefix(&c[1])));
                // AssumeRole with session tags needs sts:TagSession too.
                if &c[1] == "sts" && op == "AssumeRole" && shipped.contains(".tags(") {
                    actions.insert("sts:TagSession".to_string());
                }
                // Associating a web ACL with a load balancer is also ELBv2's SetWebAcl.
                if &c[1] == "wafv2" && op.ends_with("WebAcl") && !op.starts_with("Get") {
                    actions.insert("elasticloadbalancing:SetWebAcl".to_string());
                }
            }
        }
    }
    out
}

/// Which policy statement a source file's calls belong to.
fn statement_for(path: &Path) -> &'static str {
    let rel = path.strip_prefix(repo().join("src")).unwrap_or(path);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    match first.as_deref() {
        Some("iam") if rel.to_string_lossy().contains("agent") => "PodIamAgent",
        Some("iam") => "IamRoleBindingValidation",
        Some("dns") => "Route53",
        Some("alb") | Some("targets") => "LoadBalancing",
        _ => "Common",
    }
}

#[test]
fn iam_policy_lists_exactly_the_actions_the_code_calls() {
    let found = actions_in_source();
    let path = repo().join("deploy/iam-policy.json");
    let want = {
        let statements: Vec<Value> = found
            .iter()
            .map(|(sid, actions)| {
                serde_json::json!({
                    "Sid": sid,
                    "Effect": "Allow",
                    "Action": actions.iter().collect::<Vec<_>>(),
                    "Resource": "*",
                })
            })
            .collect();
        let doc = serde_json::json!({ "Version": "2012-10-17", "Statement": statements });
        serde_json::to_string_pretty(&doc).expect("json") + "\n"
    };
    if std::env::var_os("CAUSEWAY_UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, &want).expect("write deploy/iam-policy.json");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "deploy/iam-policy.json differs from the actions in src/ ({found:?}); \
         run CAUSEWAY_UPDATE_DEPLOY=1 cargo test --test integration iam_policy"
    );
}

/// A permissive stand-in for the Prometheus Operator's ServiceMonitor CRD, so the
/// all-features render applies.
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

fn kubectl(ctx: &TestCtx, args: &[&str], stdin_file: Option<&Path>) -> Output {
    let mut cmd = Command::new(&ctx.env.kubectl);
    cmd.args(args).envs(ctx.process_env());
    if let Some(f) = stdin_file {
        cmd.arg("-f").arg(f);
    }
    run(&mut cmd)
}

fn apply_server_side(ctx: &TestCtx, file: &Path, dry_run: bool) -> Output {
    let mut args = vec![
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=chart-test",
    ];
    if dry_run {
        args.push("--dry-run=server");
    }
    kubectl(ctx, &args, Some(file))
}

/// Renders, then server-side applies in two waves (CRDs, then everything else) as GitOps tools
/// do: first as a dry run, then for real. Cluster-scoped leftovers are deleted afterwards.
async fn apply_chart(prefix: &str, values: &[&str]) {
    let ctx = TestCtx::new(prefix).await.expect("ctx");
    let release = unique_name("cw");
    let class = unique_name("alb");
    let mut args: Vec<&str> = values.to_vec();
    let class_arg = format!("alb.ingressClass.name={class}");
    args.extend(["--set", &class_arg]);
    let rendered = template(&release, &ctx.namespace, &args).expect("render");
    let (crds, mut rest): (Vec<Value>, Vec<Value>) = docs(&rendered)
        .into_iter()
        .partition(|d| d["kind"] == "CustomResourceDefinition");
    // No controller pods: kwok would give them made-up pod IPs, and the webhook Service would then
    // send the apiserver's admission calls off the machine. Without endpoints they fail fast and,
    // failurePolicy Ignore, are skipped.
    for d in rest.iter_mut().filter(|d| d["kind"] == "Deployment") {
        d["spec"]["replicas"] = 0.into();
    }
    let dir = ctx.env.dir.join("chart-test").join(&release);
    std::fs::create_dir_all(&dir).expect("dir");
    let write = |name: &str, items: &[Value], extra: &str| {
        let mut s = String::from(extra);
        for i in items {
            s.push_str("\n---\n");
            s.push_str(&serde_json::to_string(i).expect("json"));
        }
        let p = dir.join(name);
        std::fs::write(&p, s).expect("write");
        p
    };
    let crd_file = write("crds.yaml", &crds, SERVICE_MONITOR_CRD);
    let rest_file = write("rest.yaml", &rest, "");

    for dry_run in [true, false] {
        let out = apply_server_side(&ctx, &crd_file, dry_run);
        assert!(
            out.status.success(),
            "CRDs (dry_run={dry_run}): {}",
            text(&out)
        );
        if !dry_run {
            let out = kubectl(
                &ctx,
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    "crd",
                    "--all",
                ],
                None,
            );
            assert!(out.status.success(), "{}", text(&out));
        }
    }
    // The webhook's Secret and the agent's pods are not what this test is about; the objects are.
    let dry = apply_server_side(&ctx, &rest_file, true);
    let real = apply_server_side(&ctx, &rest_file, false);
    let cleanup = kubectl(
        &ctx,
        &["delete", "--ignore-not-found", "--wait=false"],
        Some(&rest_file),
    );
    assert!(dry.status.success(), "dry run: {}", text(&dry));
    assert!(real.status.success(), "apply: {}", text(&real));
    assert!(cleanup.status.success(), "cleanup: {}", text(&cleanup));
    let applied = text(&real);
    for kind in [
        "deployment.apps",
        "daemonset.apps",
        "clusterrole.rbac.authorization.k8s.io",
    ] {
        assert!(applied.contains(kind), "{kind} not applied: {applied}");
    }
    ctx.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn chart_with_default_values_applies_server_side() {
    apply_chart("chart-default", &["--set", "clusterName=ci-cluster"]).await;
}

#[tokio::test]
async fn chart_with_every_feature_applies_server_side() {
    let values = all_features();
    apply_chart("chart-all", &["-f", &values]).await;
}

#[test]
fn kustomize_base_builds_and_applies_as_a_dry_run() {
    let env = shared_env().expect("env");
    let out = run(Command::new(&env.kubectl)
        .args(["kustomize"])
        .arg(repo().join("deploy")));
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/: {}",
        text(&out)
    );
    let built = String::from_utf8_lossy(&out.stdout).into_owned();
    let d = docs(&built);
    assert!(d.iter().any(|x| x["kind"] == "Namespace"));
    for x in &d {
        let namespaced = !matches!(
            x["kind"].as_str(),
            Some(
                "Namespace"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "CustomResourceDefinition"
                    | "IngressClass"
                    | "MutatingWebhookConfiguration"
            )
        );
        if namespaced {
            assert_eq!(
                x["metadata"]["namespace"], "causeway-system",
                "{}",
                x["metadata"]["name"]
            );
        }
    }
}
