//! The peer's per-listener features against moto: authentication on HTTPS listeners
//! (`auth-type` oidc and cognito: the rule's actions, the OIDC client read from its Secret, a
//! backend Service's override, no rewrites of an unchanged group), listener attributes, and
//! the WAFv2 and Shield Advanced add-ons.

use crate::alb::{
    WAIT, calls, delete_ingress, elb_client, ingress, lb_by_dns, metrics, rule, rules_of, services,
    start, wait_event, wait_gone, wait_hostname,
};
use crate::common::grant_oidc_secret;
use aws_sdk_elasticloadbalancingv2 as elb;
use causeway_testenv::support::{TestCtx, wait_for};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use std::time::Duration;

const OIDC: &str = r#"{"issuer":"https://idp.causeway.test","authorizationEndpoint":"https://idp.causeway.test/authorize","tokenEndpoint":"https://idp.causeway.test/token","userInfoEndpoint":"https://idp.causeway.test/userinfo","secretName":"oidc-client"}"#;
const COGNITO: &str = r#"{"userPoolARN":"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc","userPoolClientID":"pool-client","userPoolDomain":"causeway-test"}"#;

/// The rule's action types in order, e.g. `["authenticate-oidc", "forward"]`.
fn action_types(rule: &elb::types::Rule) -> Vec<String> {
    let mut actions = rule.actions().to_vec();
    actions.sort_by_key(|a| a.order().unwrap_or_default());
    actions
        .iter()
        .map(|a| {
            a.r#type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn oidc_from_a_secret_and_a_services_cognito_override_on_the_https_rules_only() {
    let ctx = TestCtx::new("albauth").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    grant_oidc_secret(&ctx, "oidc-client");
    ctx.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: oidc-client}\nstringData: {clientID: my-client, clientSecret: \"s3cret\\n\"}\n",
    )
    .await
    .expect("secret");
    ctx.apply(&ingress(
        "auth",
        &alb.class,
        &[
            (
                "alb.ingress.kubernetes.io/listen-ports",
                r#"[{"HTTP":80},{"HTTPS":443}]"#,
            ),
            ("alb.ingress.kubernetes.io/auth-type", "oidc"),
            ("alb.ingress.kubernetes.io/auth-idp-oidc", OIDC),
            ("alb.ingress.kubernetes.io/auth-scope", "openid email"),
        ],
        &rule("shop.causeway.test", "/", "web"),
    ))
    .await
    .expect("ingress");
    let dns = wait_hostname(&ctx, &alb, "auth").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_owned();

    let https = rules_of(&elb, &lb_arn, 443).await;
    assert_eq!(https.len(), 1);
    assert_eq!(action_types(&https[0]), ["authenticate-oidc", "forward"]);
    let oidc = https[0]
        .actions()
        .iter()
        .find_map(|a| a.authenticate_oidc_config())
        .expect("oidc config");
    assert_eq!(oidc.client_id(), Some("my-client"));
    assert_eq!(oidc.issuer(), Some("https://idp.causeway.test"));
    assert_eq!(oidc.scope(), Some("openid email"));
    assert_eq!(oidc.session_cookie_name(), Some("AWSELBAuthSessionCookie"));
    assert_eq!(oidc.session_timeout(), Some(604_800));
    // Authentication is for HTTPS listeners only, as the peer builds it.
    let http = rules_of(&elb, &lb_arn, 80).await;
    assert_eq!(action_types(&http[0]), ["forward"]);

    // An unchanged group is not rewritten: ELBv2 never returns the client secret, and the
    // comparison must not take that for a change.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = metrics(&alb).await;
    let (r0, w0) = (calls(&before, false), calls(&before, true));
    ctx.apply(&ingress(
        "auth",
        &alb.class,
        &[
            (
                "alb.ingress.kubernetes.io/listen-ports",
                r#"[{"HTTP":80},{"HTTPS":443}]"#,
            ),
            ("alb.ingress.kubernetes.io/auth-type", "oidc"),
            ("alb.ingress.kubernetes.io/auth-idp-oidc", OIDC),
            ("alb.ingress.kubernetes.io/auth-scope", "openid email"),
            ("causeway.dev/resync", "1"),
        ],
        &rule("shop.causeway.test", "/", "web"),
    ))
    .await
    .expect("touch");
    wait_for("a resync reconcile", WAIT, || async {
        (calls(&metrics(&alb).await, false) > r0).then_some(())
    })
    .await
    .expect("resync");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w1 = calls(&metrics(&alb).await, true);
    assert_eq!(
        w1 - w0,
        0,
        "an unchanged group must not write\n{}",
        alb.proc.logs()
    );

    // A rotated client secret is sent once: ELBv2 cannot report it, the Secret's version
    // in the group's status tells it apart. The HTTPS rule is the only one using it.
    ctx.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: oidc-client}\nstringData: {clientID: my-client, clientSecret: rotated}\n",
    )
    .await
    .expect("rotate the secret");
    let touch = |n: &'static str| {
        ingress(
            "auth",
            &alb.class,
            &[
                (
                    "alb.ingress.kubernetes.io/listen-ports",
                    r#"[{"HTTP":80},{"HTTPS":443}]"#,
                ),
                ("alb.ingress.kubernetes.io/auth-type", "oidc"),
                ("alb.ingress.kubernetes.io/auth-idp-oidc", OIDC),
                ("alb.ingress.kubernetes.io/auth-scope", "openid email"),
                ("causeway.dev/resync", n),
            ],
            &rule("shop.causeway.test", "/", "web"),
        )
    };
    let r1 = calls(&metrics(&alb).await, false);
    ctx.apply(&touch("2")).await.expect("touch");
    let sent = wait_for("the rotated secret on the rule", WAIT, || async {
        let rules = rules_of(&elb, &lb_arn, 443).await;
        rules[0]
            .actions()
            .iter()
            .find_map(|a| a.authenticate_oidc_config())
            .and_then(|c| c.client_secret().map(str::to_owned))
            .filter(|s| s == "rotated")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    assert_eq!(sent, "rotated");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w2 = calls(&metrics(&alb).await, true);
    assert_eq!(w2 - w1, 1, "one ModifyRule\n{}", alb.proc.logs());
    // Sent once: the next reconcile writes nothing.
    let r2 = calls(&metrics(&alb).await, false);
    assert!(r2 > r1);
    ctx.apply(&touch("3")).await.expect("touch");
    wait_for("another resync reconcile", WAIT, || async {
        (calls(&metrics(&alb).await, false) > r2).then_some(())
    })
    .await
    .expect("resync");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls(&metrics(&alb).await, true), w2, "{}", alb.proc.logs());

    // The backend Service's auth annotations override the Ingress's.
    let svc: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    svc.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
            "alb.ingress.kubernetes.io/auth-type": "cognito",
            "alb.ingress.kubernetes.io/auth-idp-cognito": COGNITO,
            "alb.ingress.kubernetes.io/auth-on-unauthenticated-request": "deny",
        }}})),
    )
    .await
    .expect("annotate the service");
    let cognito = wait_for("a cognito rule", WAIT, || async {
        let rules = rules_of(&elb, &lb_arn, 443).await;
        (action_types(rules.first()?) == ["authenticate-cognito", "forward"]).then(|| {
            rules[0]
                .actions()
                .iter()
                .find_map(|a| a.authenticate_cognito_config().cloned())
        })?
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    assert_eq!(cognito.user_pool_client_id(), Some("pool-client"));
    assert_eq!(cognito.user_pool_domain(), Some("causeway-test"));
    assert_eq!(
        cognito.on_unauthenticated_request().map(|b| b.as_str()),
        Some("deny")
    );
    assert_eq!(cognito.scope(), Some("openid email"));

    delete_ingress(&ctx, "auth").await;
    wait_gone(&ctx, &alb, "auth").await;
    ctx.cleanup().await.ok();
}

/// An OIDC Secret that does not exist refuses that Ingress with its reason and an Event;
/// its neighbour in the group is served.
#[tokio::test]
async fn a_missing_oidc_secret_refuses_only_that_ingress() {
    let ctx = TestCtx::new("albauth2").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    // Readable, but not there.
    grant_oidc_secret(&ctx, "oidc-client");
    let group = ("alb.ingress.kubernetes.io/group.name", "authgroup");
    let ports = (
        "alb.ingress.kubernetes.io/listen-ports",
        r#"[{"HTTPS":443}]"#,
    );
    ctx.apply(&ingress(
        "nosecret",
        &alb.class,
        &[
            group,
            ports,
            ("alb.ingress.kubernetes.io/auth-type", "oidc"),
            ("alb.ingress.kubernetes.io/auth-idp-oidc", OIDC),
        ],
        &rule("a.causeway.test", "/", "web"),
    ))
    .await
    .expect("ingress");
    ctx.apply(&ingress(
        "plain",
        &alb.class,
        &[group, ports],
        &rule("b.causeway.test", "/", "web"),
    ))
    .await
    .expect("ingress");
    wait_hostname(&ctx, &alb, "plain").await;
    wait_event(&ctx, &alb, "nosecret", "SecretNotFound").await;
    for name in ["nosecret", "plain"] {
        delete_ingress(&ctx, name).await;
    }
    wait_gone(&ctx, &alb, "plain").await;
    ctx.cleanup().await.ok();
}

/// `listener-attributes.HTTP-80` is set on the listener, changed in place, and not
/// rewritten while unchanged.
#[tokio::test]
async fn listener_attributes_are_set_and_changed_on_their_listener() {
    let ctx = TestCtx::new("alblattr").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    let with = |value: &str| {
        ingress(
            "attrs",
            &alb.class,
            &[(
                "alb.ingress.kubernetes.io/listener-attributes.HTTP-80",
                &format!("routing.http.response.server.enabled={value}"),
            )],
            &rule("attrs.causeway.test", "/", "web"),
        )
    };
    ctx.apply(&with("false")).await.expect("ingress");
    let dns = wait_hostname(&ctx, &alb, "attrs").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .expect("listeners");
    let arn = listeners.listeners()[0].listener_arn().unwrap().to_owned();
    let server = || async {
        let r = elb
            .describe_listener_attributes()
            .listener_arn(&arn)
            .send()
            .await
            .ok()?;
        r.attributes()
            .iter()
            .find(|a| a.key() == Some("routing.http.response.server.enabled"))
            .and_then(|a| a.value().map(str::to_owned))
    };
    assert_eq!(server().await.as_deref(), Some("false"));
    ctx.apply(&with("true")).await.expect("edit");
    wait_for("the attribute changed", WAIT, || async {
        (server().await.as_deref() == Some("true")).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    delete_ingress(&ctx, "attrs").await;
    wait_gone(&ctx, &alb, "attrs").await;
    ctx.cleanup().await.ok();
}

/// `wafv2-acl-name` associates the ALB with that web ACL and `none` takes it off;
/// `shield-advanced-protection` creates and deletes its protection.
#[tokio::test]
async fn web_acl_and_shield_protection_follow_the_annotations() {
    use aws_sdk_wafv2::types::{AllowAction, DefaultAction, Scope, VisibilityConfig};
    let ctx = TestCtx::new("albwaf").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    let conf = ctx.aws().await;
    let waf = aws_sdk_wafv2::Client::new(&conf);
    let acl_name = format!("acl-{}", ctx.namespace);
    let acl = waf
        .create_web_acl()
        .name(&acl_name)
        .scope(Scope::Regional)
        .default_action(
            DefaultAction::builder()
                .allow(AllowAction::builder().build())
                .build(),
        )
        .visibility_config(
            VisibilityConfig::builder()
                .sampled_requests_enabled(false)
                .cloud_watch_metrics_enabled(false)
                .metric_name("causeway")
                .build()
                .expect("visibility"),
        )
        .send()
        .await
        .expect("create web ACL");
    let acl_arn = acl.summary().and_then(|s| s.arn()).expect("arn").to_owned();
    let with = |acl: &str, shield: &str| {
        ingress(
            "waf",
            &alb.class,
            &[
                ("alb.ingress.kubernetes.io/wafv2-acl-name", acl),
                (
                    "alb.ingress.kubernetes.io/shield-advanced-protection",
                    shield,
                ),
            ],
            &rule("waf.causeway.test", "/", "web"),
        )
    };
    ctx.apply(&with(&acl_name, "true")).await.expect("ingress");
    let dns = wait_hostname(&ctx, &alb, "waf").await;
    let elb = elb_client(&ctx).await;
    let lb_arn = lb_by_dns(&elb, &dns)
        .await
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let shield = aws_sdk_shield::Client::new(&conf);
    let state = || async {
        let acl = waf
            .get_web_acl_for_resource()
            .resource_arn(&lb_arn)
            .send()
            .await
            .ok()
            .and_then(|r| r.web_acl().map(|a| a.arn().to_owned()));
        let protected = shield
            .describe_protection()
            .resource_arn(&lb_arn)
            .send()
            .await
            .is_ok();
        (acl, protected)
    };
    wait_for("associated and protected", WAIT, || async {
        (state().await == (Some(acl_arn.clone()), true)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    ctx.apply(&with("none", "false")).await.expect("edit");
    wait_for("disassociated and unprotected", WAIT, || async {
        (state().await == (None, false)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    delete_ingress(&ctx, "waf").await;
    wait_gone(&ctx, &alb, "waf").await;
    ctx.cleanup().await.ok();
}
