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

/// The applied object, read back into causeway's type for `kind`.
fn typed<T: serde::de::DeserializeOwned>(applied: &kube::api::DynamicObject) -> T {
    serde_json::from_value(serde_json::to_value(applied).expect("serializes"))
        .expect("the apiserver's object reads back into the type")
}

#[tokio::test]
async fn lbc_gateway_configurations_apply_with_their_defaults_and_rules() {
    use causeway::crd::gateway_config::listener_rule::{
        FixedResponseContentType, OnUnauthenticatedRequest,
    };
    use causeway::crd::gateway_config::load_balancer::AlpnPolicy;
    use causeway::crd::{
        ListenerRuleConfiguration, LoadBalancerConfiguration, TargetGroupConfiguration,
    };

    let ctx = TestCtx::new("gwcfg").await.expect("test ctx");
    install(&ctx).await;
    // LBC's guide, its examples combined; none spells out a defaulted field.
    let good = r#"
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata:
  name: lb
spec:
  scheme: internal
  listenerConfigurations:
    - protocolPort: TLS:443
      defaultCertificate: my-cert
    - protocolPort: HTTPS:8443
      mutualAuthentication:
        mode: verify
        trustStore: ts-1234
  defaultTargetGroupConfiguration:
    name: defaults
---
apiVersion: gateway.k8s.aws/v1
kind: TargetGroupConfiguration
metadata:
  name: web
spec:
  targetReference:
    name: web
  defaultConfiguration:
    targetType: ip
    healthCheckConfig:
      healthCheckPath: /healthz
---
apiVersion: gateway.k8s.aws/v1
kind: TargetGroupConfiguration
metadata:
  name: empty
---
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata:
  name: auth
spec:
  actions:
    - type: authenticate-cognito
      authenticateCognitoConfig:
        userPoolArn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc
        userPoolClientId: cid
        userPoolDomain: example.com
    - type: forward
      forwardConfig: {}
  conditions:
    - field: source-ip
      sourceIPConfig:
        values: [10.0.0.0/8]
---
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata:
  name: teapot
spec:
  actions:
    - type: fixed-response
      fixedResponseConfig:
        statusCode: 418
"#;
    let applied = ctx.apply(good).await.expect("LBC's manifests apply");

    let lb: LoadBalancerConfiguration = typed(&applied[0]);
    let listeners = lb.spec.listener_configurations.expect("listeners");
    assert_eq!(listeners[0].alpn_policy, Some(AlpnPolicy::None));
    let tg: TargetGroupConfiguration = typed(&applied[1]);
    let reference = tg.spec.target_reference.expect("targetReference");
    assert_eq!(
        (reference.group.as_deref(), reference.kind.as_deref()),
        (Some(""), Some("Service"))
    );
    let empty: TargetGroupConfiguration = typed(&applied[2]);
    assert_eq!(empty.spec, Default::default());
    let auth: ListenerRuleConfiguration = typed(&applied[3]);
    let cognito = auth.spec.actions[0]
        .authenticate_cognito_config
        .clone()
        .expect("cognito");
    assert_eq!(cognito.scope.as_deref(), Some("openid"));
    assert_eq!(
        cognito.on_unauthenticated_request,
        Some(OnUnauthenticatedRequest::Authenticate)
    );
    assert_eq!(
        cognito.session_cookie_name.as_deref(),
        Some("AWSELBAuthSessionCookie")
    );
    assert_eq!(cognito.session_timeout, Some(604800));
    let stickiness = auth.spec.actions[1]
        .forward_config
        .clone()
        .and_then(|f| f.target_group_stickiness_config)
        .expect("stickiness defaulted");
    assert_eq!(
        (stickiness.duration_seconds, stickiness.enabled),
        (Some(3600), Some(false))
    );
    let teapot: ListenerRuleConfiguration = typed(&applied[4]);
    let response = teapot.spec.actions[0]
        .fixed_response_config
        .clone()
        .expect("fixed response");
    assert_eq!(
        response.content_type,
        Some(FixedResponseContentType::TextPlain)
    );

    // (manifest, what the apiserver's message must name)
    let bad = [
        (
            r#"
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata: {name: verify-without-store}
spec:
  listenerConfigurations:
    - protocolPort: HTTPS:443
      mutualAuthentication: {mode: verify}
"#,
            "trustStore is required",
        ),
        (
            r#"
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata: {name: bad-port}
spec:
  listenerConfigurations:
    - protocolPort: HTTPS:65536
"#,
            "protocolPort",
        ),
        (
            r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata: {name: two-routes}
spec:
  actions:
    - {type: forward, forwardConfig: {}}
    - {type: fixed-response, fixedResponseConfig: {statusCode: 404}}
"#,
            "At most one routing action",
        ),
        (
            r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata: {name: redirect-code}
spec:
  actions:
    - {type: fixed-response, fixedResponseConfig: {statusCode: 302}}
"#,
            "StatusCode must be a valid HTTP status code",
        ),
        (
            r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata: {name: no-source-ips}
spec:
  conditions:
    - field: source-ip
"#,
            "sourceIPConfig must be specified",
        ),
        (
            r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata: {name: wrong-config}
spec:
  actions:
    - {type: redirect, forwardConfig: {}}
"#,
            "forwardConfig must be specified only when type is 'forward'",
        ),
    ];
    for (manifest, message) in bad {
        let err = ctx
            .apply(manifest)
            .await
            .expect_err(&format!("must be rejected: {manifest}"));
        assert!(format!("{err:#}").contains(message), "{err:#}");
    }
    ctx.cleanup().await.ok();
}
