//! The generated CRDs install on the real apiserver and validate as intended.

use causeway_testenv::support::{TestCtx, apply_yaml, wait_for};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Installs every CRD with server-side apply and waits until each is Established.
pub async fn install(ctx: &TestCtx) {
    apply_yaml(&ctx.client, None, &causeway::crd::render_all())
        .await
        .expect("apply CRDs");
    let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    for crd in causeway::crd::all() {
        let name = crd.metadata.name.clone().expect("crd name");
        wait_for(
            &format!("CRD {name} established"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get_opt(&name).await.ok()??;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await
        .expect("CRD established");
    }
}

#[tokio::test]
async fn causeway_crds_piped_to_kubectl_apply() {
    let ctx = TestCtx::new("crds").await.expect("test ctx");
    let crds = Command::new(crate::common::causeway_bin())
        .arg("crds")
        .output()
        .expect("run causeway crds");
    assert!(
        crds.status.success(),
        "{}",
        String::from_utf8_lossy(&crds.stderr)
    );
    let mut kubectl = Command::new(&ctx.env.kubectl)
        .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
        .env("KUBECONFIG", &ctx.env.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    kubectl
        .stdin
        .take()
        .expect("stdin")
        .write_all(&crds.stdout)
        .expect("write");
    let out = kubectl.wait_with_output().expect("kubectl output");
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for crd in causeway::crd::all() {
        let name = crd.metadata.name.expect("name");
        assert!(stdout.contains(&name), "{name} not applied: {stdout}");
    }
    install(&ctx).await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn lbc_style_manifests_apply_and_bad_ones_are_rejected() {
    let ctx = TestCtx::new("crdval").await.expect("test ctx");
    install(&ctx).await;
    let good = r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: web
spec:
  serviceRef:
    name: web
    port: 80
  targetGroupARN: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067
  targetType: ip
  networking:
    ingress:
    - from:
      - securityGroup:
          groupID: sg-0123456789abcdef0
      ports:
      - protocol: TCP
        port: 8080
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: records
spec:
  endpoints:
  - dnsName: app.causeway.test
    recordTTL: 60
    recordType: A
    targets: ["192.0.2.10"]
---
apiVersion: causeway.dev/v1alpha1
kind: IamRoleBinding
metadata:
  name: app
spec:
  role: arn:aws:iam::123456789012:role/app
  serviceAccountName: app
"#;
    ctx.apply(good).await.expect("valid manifests apply");

    let bad_arn = r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: bad-arn
spec:
  serviceRef: {name: web, port: 80}
  targetGroupARN: not-an-arn
"#;
    let err = ctx
        .apply(bad_arn)
        .await
        .expect_err("malformed ARN must be rejected");
    assert!(format!("{err:#}").contains("targetGroupARN"), "{err:#}");

    let bad_port = r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: bad-port
spec:
  serviceRef: {name: web, port: 70000}
  targetGroupARN: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067
"#;
    let err = ctx
        .apply(bad_port)
        .await
        .expect_err("port out of range must be rejected");
    assert!(format!("{err:#}").contains("port"), "{err:#}");

    let unbound = r#"
apiVersion: causeway.dev/v1alpha1
kind: IamRoleBinding
metadata:
  name: selects-nothing
spec:
  role: app
"#;
    ctx.apply(unbound)
        .await
        .expect_err("a binding without serviceAccountName or podSelector must be rejected");
    ctx.cleanup().await.ok();
}
