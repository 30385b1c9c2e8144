//! Listener settings a group's members share (mutual TLS by port, the listener attributes of
//! an IngressClassParams), and a named health check port.

use super::tests::build_with;
use super::tests_support::*;
use super::*;
use crate::alb::annotations::reason;
use crate::alb::class::{GroupKey, Membership};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

fn member<'a>(ing: &'a Ingress, params: Option<serde_json::Value>) -> Member<'a> {
    Member {
        ingress: ing,
        membership: Membership {
            group: GroupKey::Explicit("g".into()),
            order: 0,
            params: params.map(|spec| {
                serde_json::from_value(json!({
                    "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "IngressClassParams",
                    "metadata": {"name": "p"}, "spec": spec
                }))
                .unwrap()
            }),
            problem: None,
        },
        last_accepted: None,
    }
}

fn https_ingress(name: &str, host: &str, extra: serde_json::Value) -> Ingress {
    let mut anns = json!({
        "alb.ingress.kubernetes.io/group.name": "g",
        "alb.ingress.kubernetes.io/listen-ports": r#"[{"HTTP":80},{"HTTPS":443},{"HTTPS":8443}]"#,
        "alb.ingress.kubernetes.io/certificate-arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
    });
    anns.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ingress(
        "ns",
        name,
        anns,
        json!([path_rule(Some(host), "/", "Prefix", "web", 80)]),
    )
}

fn listener(out: &BuildOutput, port: i32) -> &ListenerModel {
    out.model.load_balancers[0]
        .listeners
        .iter()
        .find(|l| l.port == port)
        .unwrap()
}

#[test]
fn mutual_tls_lands_on_its_https_listener_and_members_must_agree_per_port() {
    let mtls = r#"[{"port": 443, "mode": "verify", "trustStore": "arn:aws:elasticloadbalancing:us-east-1:123456789012:truststore/ts/1"},
                   {"port": 80, "mode": "passthrough"}]"#;
    let a = https_ingress(
        "a",
        "a.causeway.test",
        json!({"alb.ingress.kubernetes.io/mutual-authentication": mtls}),
    );
    // Same value for 443: agrees; passthrough on 8443: a port `a` left alone.
    let b = https_ingress(
        "b",
        "b.causeway.test",
        json!({"alb.ingress.kubernetes.io/mutual-authentication": r#"[{"port": 443, "mode": "verify", "trustStore": "arn:aws:elasticloadbalancing:us-east-1:123456789012:truststore/ts/1"}]"#}),
    );
    let c = https_ingress(
        "c",
        "c.causeway.test",
        json!({"alb.ingress.kubernetes.io/mutual-authentication": r#"[{"port": 8443, "mode": "passthrough"}]"#}),
    );
    let svcs = services();
    let out = build_with(
        "g",
        &[member(&a, None), member(&b, None), member(&c, None)],
        &svcs,
    );
    assert!(
        out.members.iter().all(|m| m.problem.is_none()),
        "{:?}",
        out.members
    );
    let m443 = listener(&out, 443)
        .mutual_auth
        .as_ref()
        .expect("443 has mTLS");
    assert_eq!(m443.mode, MutualAuthMode::Verify);
    assert!(
        m443.trust_store
            .as_deref()
            .unwrap()
            .ends_with("truststore/ts/1")
    );
    assert_eq!(
        listener(&out, 8443).mutual_auth.as_ref().map(|m| m.mode),
        Some(MutualAuthMode::Passthrough)
    );
    // Port 80 is an HTTP listener: the entry is ignored, as the peer ignores it.
    assert_eq!(listener(&out, 80).mutual_auth, None);

    // A member that wants another mode on 443 is refused; the others keep the listener.
    let d = https_ingress(
        "d",
        "d.causeway.test",
        json!({"alb.ingress.kubernetes.io/mutual-authentication": r#"[{"port": 443, "mode": "off"}]"#}),
    );
    let out = build_with("g", &[member(&a, None), member(&d, None)], &svcs);
    assert_eq!(out.members[0].problem, None);
    let p = out.members[1].problem.as_ref().expect("d conflicts");
    assert_eq!(p.reason, reason::CONFLICTING_SETTINGS);
    assert!(
        p.message.contains("mutual-authentication of port 443"),
        "{}",
        p.message
    );
    assert_eq!(
        listener(&out, 443).mutual_auth.as_ref().map(|m| m.mode),
        Some(MutualAuthMode::Verify)
    );

    // Without the annotation the listener's mutual TLS is left as AWS has it.
    let plain = https_ingress("e", "e.causeway.test", json!({}));
    let out = build_with("g", &[member(&plain, None)], &svcs);
    assert!(
        out.model.load_balancers[0]
            .listeners
            .iter()
            .all(|l| l.mutual_auth.is_none())
    );
}

#[test]
fn ingress_class_params_listener_attributes_apply_and_win_over_the_ingress() {
    let ing = https_ingress(
        "a",
        "a.causeway.test",
        json!({
            "alb.ingress.kubernetes.io/listener-attributes.HTTPS-443":
                "routing.http.response.server.enabled=true,routing.http.response.x_frame_options.header_value=DENY",
        }),
    );
    let spec = json!({"listeners": [
        {"protocol": "HTTPS", "port": 443, "listenerAttributes": [
            {"key": "routing.http.response.server.enabled", "value": "false"}]},
        {"protocol": "HTTP", "port": 80, "listenerAttributes": [
            {"key": "routing.http.response.strict_transport_security.header_value", "value": "max-age=31536000"}]},
        {"protocol": "HTTPS", "port": 9443, "listenerAttributes": [
            {"key": "routing.http.response.server.enabled", "value": "false"}]}
    ]});
    let svcs = services();
    let out = build_with("g", &[member(&ing, Some(spec))], &svcs);
    assert_eq!(out.members[0].problem, None);
    assert_eq!(
        listener(&out, 443).attributes,
        BTreeMap::from([
            (
                "routing.http.response.server.enabled".into(),
                "false".into()
            ),
            (
                "routing.http.response.x_frame_options.header_value".into(),
                "DENY".into()
            ),
        ])
    );
    assert_eq!(
        listener(&out, 80).attributes,
        BTreeMap::from([(
            "routing.http.response.strict_transport_security.header_value".into(),
            "max-age=31536000".into()
        )])
    );
    // A class listener no member opens makes no listener.
    assert!(
        !out.model.load_balancers[0]
            .listeners
            .iter()
            .any(|l| l.port == 9443)
    );

    let bad = json!({"listeners": [{"protocol": "HTTPS", "port": 443, "listenerAttributes": [
        {"key": "idle_timeout.timeout_seconds", "value": "60"}]}]});
    let out = build_with("g", &[member(&ing, Some(bad))], &svcs);
    let p = out.members[0].problem.as_ref().expect("refused");
    assert_eq!(p.reason, reason::INVALID_ATTRIBUTE);
    assert!(
        p.message.contains("IngressClassParams listener HTTPS-443"),
        "{}",
        p.message
    );
}

#[test]
fn a_named_health_check_port_is_the_services_port_of_that_name() {
    let mut svcs = services();
    let svc = |target_type: &str| {
        let mut s = service(
            "ns",
            "web",
            80,
            Some(30080),
            json!({"alb.ingress.kubernetes.io/target-type": target_type}),
        );
        s.spec.as_mut().unwrap().ports.as_mut().unwrap().push(
            serde_json::from_value(
                json!({"name": "health", "port": 9090, "targetPort": 8081, "nodePort": 30090}),
            )
            .unwrap(),
        );
        s
    };
    let ing = |port: &str| {
        ingress(
            "ns",
            "a",
            json!({"alb.ingress.kubernetes.io/healthcheck-port": port}),
            json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
        )
    };
    let port_of = |out: &BuildOutput| out.model.target_groups[0].health_check.port.clone();
    for (target_type, want) in [("instance", "30090"), ("ip", "8081")] {
        svcs.insert(("ns".into(), "web".into()), svc(target_type));
        let i = ing("health");
        let out = build_with("g", &[member(&i, None)], &svcs);
        assert_eq!(out.members[0].problem, None, "{target_type}");
        assert_eq!(port_of(&out), want, "{target_type}");
    }
    let i = ing("nope");
    let out = build_with("g", &[member(&i, None)], &svcs);
    let p = out.members[0].problem.as_ref().expect("no such port");
    assert_eq!(p.reason, reason::SERVICE_PORT_NOT_FOUND);
    assert!(
        p.message.contains("no port named \"nope\""),
        "{}",
        p.message
    );
    let i = ing("Not_A_Port");
    let out = build_with("g", &[member(&i, None)], &svcs);
    assert_eq!(
        out.members[0].problem.as_ref().map(|p| p.reason),
        Some(reason::INVALID_ANNOTATION)
    );
}
