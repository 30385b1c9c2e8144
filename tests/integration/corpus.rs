//! Bad input as a corpus: malformed or hostile annotations, one per Ingress, in one group
//! with a good neighbour. Each bad Ingress gets a Warning Event and its reason in the
//! group's status (its condition), nothing panics, and the neighbour is served.

use std::collections::BTreeMap;
use std::time::Duration;

use causeway_testenv::support::{TestCtx, wait_for};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use crate::alb;

/// (annotation suffix after `alb.ingress.kubernetes.io/`, value): each one is invalid, or
/// names something that does not exist, or asks for something causeway does not do.
/// 113 of them.
const BAD_ANNOTATIONS: &[(&str, &str)] = &[
    ("scheme", "public"),
    ("scheme", "internet_facing"),
    ("ip-address-type", "ipv5"),
    ("listen-ports", "80"),
    ("listen-ports", "not json"),
    ("listen-ports", "[{\"HTTP\": 0}]"),
    ("listen-ports", "[{\"HTTP\": 70000}]"),
    ("listen-ports", "[{\"FTP\": 21}]"),
    ("listen-ports", "{\"HTTP\": 80}"),
    ("ssl-redirect", "0"),
    ("ssl-redirect", "99999"),
    ("ssl-redirect", "abc"),
    ("ssl-redirect", "443"),
    ("group.order", "1001"),
    ("group.order", "-1001"),
    ("group.order", "first"),
    ("target-type", "pod"),
    ("backend-protocol", "FTP"),
    ("backend-protocol-version", "HTTP3"),
    ("healthcheck-port", "70000"),
    ("healthcheck-protocol", "FTP"),
    ("healthcheck-interval-seconds", "x"),
    ("healthcheck-interval-seconds", "1"),
    ("healthcheck-interval-seconds", "301"),
    ("healthcheck-timeout-seconds", "0"),
    ("healthcheck-timeout-seconds", "121"),
    ("healthy-threshold-count", "1"),
    ("healthy-threshold-count", "11"),
    ("unhealthy-threshold-count", "11"),
    ("success-codes", "abc"),
    ("success-codes", "600"),
    ("load-balancer-attributes", "idle_timeout.timeout_seconds"),
    ("load-balancer-attributes", "no.such.attribute=1"),
    (
        "target-group-attributes",
        "deregistration_delay.timeout_seconds",
    ),
    ("target-group-attributes", "no.such.attribute=1"),
    ("subnets", "no-such-subnet"),
    ("subnets", "subnet-00000000000000000"),
    ("security-groups", "no-such-group"),
    ("inbound-cidrs", "not-a-cidr"),
    ("inbound-cidrs", "10.0.0.0/33"),
    ("actions.web", "not json"),
    ("actions.web", "{\"type\":\"teleport\"}"),
    ("actions.web", "{\"type\":\"forward\"}"),
    (
        "actions.web",
        "{\"type\":\"fixed-response\",\"fixedResponseConfig\":{\"statusCode\":\"999\"}}",
    ),
    ("conditions.web", "not json"),
    ("conditions.web", "[{\"field\":\"bogus\"}]"),
    ("load-balancer-name", "-bad-"),
    (
        "load-balancer-name",
        "this-name-is-far-too-long-for-an-alb-name",
    ),
    ("manage-backend-security-group-rules", "maybe"),
    (
        "certificate-arn",
        "arn:aws:acm:us-east-1:123456789012:certificate/none",
    ),
    (
        "wafv2-acl-arn",
        "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/x/1",
    ),
    ("auth-type", "cognito"),
    ("auth-type", "basic"),
    ("auth-type", "oidc"),
    ("auth-idp-oidc", "{\"issuer\": 1}"),
    ("jwt-validation", "{}"),
    ("jwt-validation", "[1, 2]"),
    ("shield-advanced-protection", "yes"),
    ("wafv2-acl-arn", "my-acl"),
    ("wafv2-acl-name", "no-such-acl"),
    ("tags", "=novalue"),
    ("tags", "aws:reserved=1"),
    ("scheme", "private"),
    ("scheme", "INTERNAL"),
    ("ip-address-type", "ipv6"),
    ("listen-ports", "[]"),
    ("listen-ports", "[{\"HTTP\": -80}]"),
    ("listen-ports", "[{\"HTTP\": \"eighty\"}]"),
    (
        "listen-ports",
        "[{\"HTTP\": 80, \"HTTPS\": 443, \"TCP\": 22}]",
    ),
    ("listen-ports", "[[80]]"),
    ("listen-ports", "null"),
    ("ssl-redirect", "-443"),
    ("ssl-redirect", "4 43"),
    ("group.order", "1.5"),
    ("group.order", "0x10"),
    ("group.order", "99999999999999999999"),
    ("target-type", "lambda"),
    ("target-type", "instances"),
    ("backend-protocol", "http2"),
    ("backend-protocol", "TLS"),
    ("healthcheck-port", "0"),
    ("healthcheck-port", "-1"),
    ("healthcheck-port", "trafficport"),
    ("healthcheck-protocol", "TCP"),
    ("healthcheck-path", "no-leading-slash"),
    ("healthcheck-path", "/with space"),
    ("healthcheck-interval-seconds", "0"),
    ("healthcheck-interval-seconds", "-5"),
    ("healthcheck-interval-seconds", "1e3"),
    ("healthcheck-timeout-seconds", "x"),
    ("healthcheck-timeout-seconds", "30"),
    ("healthy-threshold-count", "0"),
    ("healthy-threshold-count", "two"),
    ("unhealthy-threshold-count", "1"),
    ("unhealthy-threshold-count", "-2"),
    ("success-codes", "200-100"),
    ("success-codes", "199"),
    ("success-codes", "500"),
    ("success-codes", "200,abc"),
    ("success-codes", "200-"),
    ("load-balancer-attributes", "="),
    (
        "load-balancer-attributes",
        "idle_timeout.timeout_seconds=abc",
    ),
    (
        "load-balancer-attributes",
        "deletion_protection.enabled=maybe",
    ),
    ("target-group-attributes", "="),
    (
        "target-group-attributes",
        "deregistration_delay.timeout_seconds=-1",
    ),
    ("target-group-attributes", "stickiness.enabled=sometimes"),
    ("subnets", "subnet-aaaaaaaa, subnet-bbbbbbbb"),
    ("inbound-cidrs", "::/129"),
    ("inbound-cidrs", "10.0.0.0/8, nonsense"),
    ("load-balancer-name", "under_score"),
    ("load-balancer-name", "internal-name"),
    ("certificate-arn", "not-an-arn"),
    ("actions.web", "[]"),
    (
        "actions.web",
        "{\"type\":\"redirect\",\"redirectConfig\":{\"statusCode\":\"HTTP_999\"}}",
    ),
    (
        "actions.web",
        "{\"type\":\"forward\",\"forwardConfig\":{\"targetGroups\":[{\"serviceName\":\"missing\",\"servicePort\":80}]}}",
    ),
    ("conditions.web", "[{\"field\":\"http-header\"}]"),
    ("conditions.web", "{}"),
    (
        "conditions.web",
        "[{\"field\":\"source-ip\",\"sourceIpConfig\":{\"values\":[\"not-a-cidr\"]}}]",
    ),
];

/// Warning Events of the namespace: involved object name → reason.
async fn warnings(events: &Api<Event>) -> BTreeMap<String, String> {
    events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| Some((e.involved_object.name?, e.reason.unwrap_or_default())))
        .collect()
}

#[tokio::test]
async fn every_bad_ingress_gets_an_event_and_its_reason_and_the_neighbour_is_served() {
    let ctx = TestCtx::new("corpus").await.expect("ctx");
    let alb = alb::start(&ctx).await;
    ctx.apply(&alb::services(false)).await.expect("services");
    let group = format!("{}-corpus", ctx.namespace);
    let group_ann = ("alb.ingress.kubernetes.io/group.name", group.as_str());
    let mut bad = BTreeMap::new();
    for (i, (key, value)) in BAD_ANNOTATIONS.iter().enumerate() {
        let name = format!("bad{i}");
        let ann = format!("alb.ingress.kubernetes.io/{key}");
        let host = format!("{name}.causeway.test");
        // An action annotation is read for a backend that names it with `use-annotation`.
        let rule = if key.starts_with("actions.") {
            format!(
                "  - host: {host}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: web\n            port:\n              name: use-annotation\n"
            )
        } else {
            alb::rule(&host, "/", "web")
        };
        ctx.apply(&alb::ingress(
            &name,
            &alb.class,
            &[group_ann, (ann.as_str(), value)],
            &rule,
        ))
        .await
        .unwrap_or_else(|e| panic!("{name} ({key}={value}): {e}"));
        bad.insert(name, format!("{key}={value}"));
    }
    ctx.apply(&alb::ingress(
        "good",
        &alb.class,
        &[group_ann],
        &alb::rule("good.causeway.test", "/", "web"),
    ))
    .await
    .expect("good");

    let dns = alb::wait_hostname(&ctx, &alb, "good").await;
    let elb = alb::elb_client(&ctx).await;
    let lb = alb::lb_by_dns(&elb, &dns).await;
    let hosts = alb::hosts_of(&alb::rules_of(&elb, lb.load_balancer_arn().unwrap(), 80).await);
    let groups: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    let accepted: Vec<String> = groups
        .get(&group)
        .await
        .ok()
        .and_then(|g| g.status)
        .map(|s| {
            s.members
                .into_iter()
                .filter(|m| m.accepted)
                .map(|m| m.name)
                .collect()
        })
        .unwrap_or_default();
    assert!(
        hosts.contains(&"good.causeway.test".to_string()),
        "{hosts:?}; accepted: {:?}",
        accepted
            .iter()
            .map(|n| format!("{n} ({})", bad.get(n).map(String::as_str).unwrap_or("good")))
            .collect::<Vec<_>>()
    );
    for name in bad.keys() {
        let host = format!("{name}.causeway.test");
        assert!(!hosts.contains(&host), "{name} ({}) was served", bad[name]);
    }

    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let missing = || async {
        let warned = warnings(&events).await;
        let status = groups.get(&group).await.ok().and_then(|g| g.status);
        let reasons: BTreeMap<String, Option<String>> = status
            .iter()
            .flat_map(|s| &s.members)
            .map(|m| (m.name.clone(), m.reason.clone()))
            .collect();
        bad.iter()
            .filter(|(name, _)| {
                !warned.contains_key(*name) || reasons.get(*name).cloned().flatten().is_none()
            })
            .map(|(name, what)| format!("{name} ({what})"))
            .collect::<Vec<_>>()
    };
    let result = wait_for(
        "an Event and a reason for every bad Ingress",
        Duration::from_secs(60),
        || async { missing().await.is_empty().then_some(()) },
    )
    .await;
    if let Err(e) = result {
        panic!("{e}: {:?}\n{}", missing().await, alb.proc.logs());
    }
    assert!(!alb.proc.logs().contains("panicked"), "{}", alb.proc.logs());
    ctx.cleanup().await.ok();
}

/// Hostile DNSEndpoint records, one per object: (dnsName, recordType, targets as YAML, extra
/// endpoint fields as YAML). `{z}` is the managed zone's domain.
const BAD_RECORDS: &[(&str, &str, &str, &str)] = &[
    (".", "A", "[10.0.0.1]", ""),
    ("a..b.{z}", "A", "[10.0.0.1]", ""),
    ("-edge.{z}", "A", "[10.0.0.1]", ""),
    ("edge-.{z}", "A", "[10.0.0.1]", ""),
    ("sp ace.{z}", "A", "[10.0.0.1]", ""),
    ("bang!.{z}", "A", "[10.0.0.1]", ""),
    ("ünïcode.{z}", "A", "[10.0.0.1]", ""),
    ("a.*.{z}", "A", "[10.0.0.1]", ""),
    ("*x.{z}", "A", "[10.0.0.1]", ""),
    ("{long}.{z}", "A", "[10.0.0.1]", ""),
    ("{deep}{z}", "A", "[10.0.0.1]", ""),
    ("outside.example.org", "A", "[10.0.0.1]", ""),
    ("{z}", "CNAME", "[elsewhere.example.org]", ""),
    ("type.{z}", "TLSA", "[\"3 1 1 abcd\"]", ""),
    ("type2.{z}", "SSHFP", "[\"1 1 abcd\"]", ""),
    ("v4.{z}", "A", "[not-an-ip]", ""),
    ("v4b.{z}", "A", "[\"::1\"]", ""),
    ("v4c.{z}", "A", "[\"10.0.0.256\"]", ""),
    ("v6.{z}", "AAAA", "[10.0.0.1]", ""),
    ("none.{z}", "A", "[]", ""),
    ("empty.{z}", "A", "[\"\"]", ""),
    ("cname2.{z}", "CNAME", "[a.example.org, b.example.org]", ""),
    ("cname3.{z}", "CNAME", "[\"not a host\"]", ""),
    ("mx.{z}", "MX", "[\"10\"]", ""),
    ("mx2.{z}", "MX", "[\"70000 mail.example.org\"]", ""),
    ("mx3.{z}", "MX", "[\"ten mail.example.org\"]", ""),
    ("srv.{z}", "SRV", "[\"1 2 sip.example.org\"]", ""),
    ("srv2.{z}", "SRV", "[\"1 2 70000 sip.example.org\"]", ""),
    ("caa.{z}", "CAA", "[\"256 issue \\\"ca.example\\\"\"]", ""),
    (
        "sub.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: s, providerSpecific: [{name: aws/geolocation-subdivision-code, value: CA}]",
    ),
    ("ptr.{z}", "PTR", "[\"not a host\"]", ""),
    (
        "geo2.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: g, providerSpecific: [{name: aws/geolocation-continent-code, value: EU}, {name: aws/geolocation-country-code, value: DE}]",
    ),
    (
        "sid.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: \"\", providerSpecific: [{name: aws/weight, value: \"1\"}]",
    ),
    (
        "weight.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: w, providerSpecific: [{name: aws/weight, value: abc}]",
    ),
    (
        "weight2.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: w, providerSpecific: [{name: aws/weight, value: \"-1\"}]",
    ),
    (
        "nosid.{z}",
        "A",
        "[10.0.0.1]",
        "providerSpecific: [{name: aws/weight, value: \"10\"}]",
    ),
    // An ALIAS points at a hostname, never an address.
    (
        "alias.{z}",
        "A",
        "[10.0.0.1]",
        "providerSpecific: [{name: alias, value: \"true\"}]",
    ),
    (
        "geo.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: g, providerSpecific: [{name: aws/geolocation-country-code, value: ZZZ}]",
    ),
    (
        "fail.{z}",
        "A",
        "[10.0.0.1]",
        "setIdentifier: f, providerSpecific: [{name: aws/failover, value: sideways}]",
    ),
];

/// Hostile Service annotations for external-dns (suffix after `external-dns.alpha.kubernetes.io/`).
const BAD_SERVICE_ANNOTATIONS: &[(&str, &str)] = &[
    ("hostname", "bad..name.{z}"),
    ("hostname", "-x.{z}"),
    ("hostname", "ok.{z},sp ace.{z}"),
    ("hostname", "{long}.{z}"),
    ("hostname", "a.*.{z}"),
    ("ttl", "abc"),
    ("ttl", "-5"),
    ("aws-weight", "heavy"),
    ("set-identifier", ""),
];

fn fill(template: &str, zone: &str) -> String {
    template
        .replace("{z}", zone)
        .replace("{long}", &"x".repeat(64))
        // 255 characters with the zone: within the schema's maxLength, past DNS's 253.
        .replace("{deep}", &format!("{}a.", "abcdefghi.".repeat(24)))
}

/// Bad DNS input as a corpus: every hostile record of a DNSEndpoint and every hostile
/// external-dns annotation of a Service gets a Warning Event (and the DNSEndpoint a Ready=False
/// condition), nothing panics, and the good neighbours in the same zone are published.
#[tokio::test]
async fn every_bad_record_and_hostname_gets_an_event_and_the_neighbours_are_published() {
    use crate::dns;
    use aws_sdk_route53::types::RrType;
    use k8s_openapi::api::core::v1::Service;

    let ctx = TestCtx::new("dns-corpus").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let zone = "causeway.test";
    let tag = &ctx.namespace;
    let mut manifests = String::new();
    let mut records = BTreeMap::new();
    for (i, (name, record_type, targets, extra)) in BAD_RECORDS.iter().enumerate() {
        let object = format!("bad{i}");
        let extra = match extra.is_empty() {
            true => String::new(),
            false => format!(", {}", fill(extra, zone)),
        };
        manifests.push_str(&format!(
            "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: {object}}}\nspec:\n  endpoints:\n  - {{dnsName: \"{}\", recordType: \"{record_type}\", targets: {}{extra}}}\n",
            fill(name, zone),
            fill(targets, zone),
        ));
        records.insert(object, format!("{name} {record_type} {targets} {extra}"));
    }
    let good = format!("good-{tag}.{zone}");
    manifests.push_str(&format!(
        "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: good}}\nspec:\n  endpoints:\n  - {{dnsName: {good}, recordType: A, targets: [10.0.0.9]}}\n"
    ));
    let mut services = BTreeMap::new();
    for (i, (key, value)) in BAD_SERVICE_ANNOTATIONS.iter().enumerate() {
        let object = format!("svc{i}");
        let hostname = match *key {
            "hostname" => String::new(),
            _ => format!("    external-dns.alpha.kubernetes.io/hostname: {object}-{tag}.{zone}\n"),
        };
        manifests.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {object}\n  annotations:\n{hostname}    external-dns.alpha.kubernetes.io/{key}: \"{}\"\nspec:\n  type: LoadBalancer\n  selector: {{app: none}}\n  ports: [{{port: 80}}]\n",
            fill(value, zone)
        ));
        services.insert(object, format!("{key}={value}"));
    }
    let good_svc = format!("svc-good-{tag}.{zone}");
    manifests.push_str(&format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-good\n  annotations:\n    external-dns.alpha.kubernetes.io/hostname: {good_svc}\nspec:\n  type: LoadBalancer\n  selector: {{app: none}}\n  ports: [{{port: 80}}]\n"
    ));
    ctx.apply(&manifests).await.expect("apply the corpus");
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    for name in services.keys().map(String::as_str).chain(["svc-good"]) {
        api.patch_status(
            name,
            &Default::default(),
            &kube::api::Patch::Merge(serde_json::json!({
                "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}]}}
            })),
        )
        .await
        .expect("patch status");
    }

    let owner = causeway_testenv::support::unique_name("own");
    let dns = dns::Dns::start(&ctx, &owner, &[]);
    let r53 = dns::route53(&ctx).await;
    let seed = &ctx.env.seed;
    for name in [&good, &good_svc] {
        wait_for(
            &format!("{name} published"),
            Duration::from_secs(60),
            || async {
                let sets = dns::records_named(&r53, &seed.public_zone_id, name).await;
                (!dns::of_type(&sets, RrType::A).is_empty()).then_some(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    }
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let missing = || async {
        let warned = warnings(&events).await;
        let mut out = Vec::new();
        for (object, what) in &records {
            let ready = dns::ready_condition(&ctx, object).await;
            if !warned.contains_key(object) || ready.is_none_or(|(s, _, _)| s != "False") {
                out.push(format!("{object} ({what})"));
            }
        }
        for (object, what) in &services {
            if !warned.contains_key(object) {
                out.push(format!("{object} ({what})"));
            }
        }
        out
    };
    let result = wait_for(
        "an Event for every bad record and hostname",
        Duration::from_secs(60),
        || async { missing().await.is_empty().then_some(()) },
    )
    .await;
    if let Err(e) = result {
        panic!("{e}: {:?}\n{}", missing().await, dns.proc.logs());
    }
    assert_eq!(
        dns::ready_condition(&ctx, "good").await.map(|(s, _, _)| s),
        Some("True".to_string())
    );
    assert!(!dns.proc.logs().contains("panicked"), "{}", dns.proc.logs());
    ctx.cleanup().await.ok();
}
