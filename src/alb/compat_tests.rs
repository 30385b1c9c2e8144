//! The compatibility suite: aws-load-balancer-controller's own documented manifests
//! (`tests/compat/*.yaml`, each with the peer documentation section it comes from), built by
//! causeway's builder and compared with what the peer's model builder produces for them
//! (the case's `expect`, derived from the peer's source).
//!
//! `expect` is matched as a subset: every key it gives must be there with that value, every
//! list must have exactly its elements (rules in priority order; rule conditions in any
//! order); keys it leaves out are not compared. A case may say `divergence:` where causeway
//! deliberately builds something else; `expect` then describes causeway, and the case counts
//! as not building what the peer builds.
//!
//! Rerun: `cargo test --features testing --lib compat -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::builder::tests_support::subnets;
use super::builder::{self, BuildOutput, CertInfo, Environment};
use super::class::ClassSettings;
use super::model::*;
use super::{Manifests, class};

#[derive(Deserialize)]
struct Case {
    name: String,
    source: String,
    #[serde(default)]
    divergence: Option<String>,
    manifests: String,
    expect: Value,
}

/// The issued certificates: `abc` and `def`, and every other ACM ARN the case names.
/// The ARN prefix the harness resolves `targetGroupName` to.
const NAMED_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/by-name:";

fn certificates(manifests: &str) -> Vec<CertInfo> {
    let named = regex::Regex::new(r"arn:aws:acm:[a-z0-9-]+:[0-9]+:certificate/[A-Za-z0-9-]+")
        .expect("regex");
    let mut arns: BTreeSet<String> = ["abc", "def"]
        .iter()
        .map(|id| format!("arn:aws:acm:us-east-1:123456789012:certificate/{id}"))
        .collect();
    arns.extend(named.find_iter(manifests).map(|m| m.as_str().to_owned()));
    arns.into_iter()
        .map(|arn| CertInfo {
            arn,
            domains: vec!["causeway.test".into(), "*.causeway.test".into()],
        })
        .collect()
}

/// NodePorts the apiserver would assign to NodePort and LoadBalancer Services that name
/// none.
fn assign_node_ports(
    services: &mut BTreeMap<(String, String), k8s_openapi::api::core::v1::Service>,
) {
    let mut next = 31000;
    for s in services.values_mut() {
        let Some(spec) = s.spec.as_mut() else {
            continue;
        };
        if !matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
            continue;
        }
        for p in spec.ports.iter_mut().flatten() {
            if p.node_port.is_none() {
                p.node_port = Some(next);
                next += 1;
            }
        }
    }
}

/// A TargetGroupBinding as the cases describe it.
fn render_binding(b: &crate::crd::TargetGroupBinding) -> Value {
    let s = &b.spec;
    let port = serde_json::to_value(&s.service_ref.port).unwrap_or_default();
    let port = port
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| port.to_string());
    let mut v = json!({
        "service": format!("{}:{port}", s.service_ref.name),
        "multiClusterTargetGroup": s.multi_cluster_target_group,
    });
    let spec = serde_json::to_value(s).unwrap_or_default();
    for k in [
        "targetGroupARN",
        "targetGroupName",
        "targetType",
        "vpcID",
        "iamRoleArnToAssume",
        "assumeRoleExternalId",
        "ipAddressType",
        "targetGroupProtocol",
    ] {
        if let Some(x) = spec.get(k) {
            v[k] = x.clone();
        }
    }
    if let Some(sel) = spec.pointer("/nodeSelector/matchLabels") {
        v["nodeSelector"] = sel.clone();
    }
    v
}

/// The user tags of a resource: without the ownership tags every resource carries.
fn user_tags(tags: &Tags) -> Value {
    let owned = [TAG_CLUSTER, TAG_STACK, TAG_RESOURCE];
    tags.iter()
        .filter(|(k, _)| {
            !owned.contains(&k.as_str())
                && !k.starts_with("ingress.k8s.aws/")
                && !k.starts_with("service.k8s.aws/")
        })
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn condition(c: &RuleCondition) -> Value {
    let values = |v: &BTreeSet<String>| json!(v.iter().collect::<Vec<_>>());
    match c {
        RuleCondition::HostHeader(v) => json!({"field": "host-header", "values": values(v)}),
        RuleCondition::PathPattern(v) => json!({"field": "path-pattern", "values": values(v)}),
        RuleCondition::HttpHeader { name, values: v } => {
            json!({"field": "http-header", "name": name, "values": values(v)})
        }
        RuleCondition::HttpRequestMethod(v) => {
            json!({"field": "http-request-method", "values": values(v)})
        }
        RuleCondition::QueryString(v) => json!({"field": "query-string", "values": v
            .iter()
            .map(|(k, v)| match k.is_empty() {
                true => json!({"value": v}),
                false => json!({"key": k, "value": v}),
            })
            .collect::<Vec<_>>()}),
        RuleCondition::SourceIp(v) => json!({"field": "source-ip", "values": values(v)}),
    }
}

/// A target group's backend as the cases name it: `service:port`.
fn backend(model: &GroupModel, name: &str) -> Option<String> {
    let tg = model.target_groups.iter().find(|t| t.name == name)?;
    Some(format!(
        "{}:{}",
        tg.binding.service, tg.binding.service_port
    ))
}

fn session(s: &AuthSession) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "onUnauthenticatedRequest".into(),
        json!(s.on_unauthenticated),
    );
    m.insert("scope".into(), json!(s.scope));
    m.insert("sessionCookieName".into(), json!(s.cookie));
    m.insert("sessionTimeout".into(), json!(s.timeout));
    if !s.extra_params.is_empty() {
        m.insert(
            "authenticationRequestExtraParams".into(),
            json!(s.extra_params),
        );
    }
    m
}

fn actions(model: &GroupModel, a: &Action) -> Vec<Value> {
    match a {
        Action::Authenticated { first, then } => {
            let mut out = vec![match first.as_ref() {
                Authenticate::Cognito(c) => {
                    let mut m = session(&c.session);
                    m.insert("type".into(), json!("authenticate-cognito"));
                    m.insert("userPoolArn".into(), json!(c.user_pool_arn));
                    m.insert("userPoolClientId".into(), json!(c.client_id));
                    m.insert("userPoolDomain".into(), json!(c.domain));
                    Value::Object(m)
                }
                Authenticate::Oidc(o) => {
                    let mut m = session(&o.session);
                    m.insert("type".into(), json!("authenticate-oidc"));
                    m.insert("issuer".into(), json!(o.issuer));
                    m.insert(
                        "authorizationEndpoint".into(),
                        json!(o.authorization_endpoint),
                    );
                    m.insert("tokenEndpoint".into(), json!(o.token_endpoint));
                    m.insert("userInfoEndpoint".into(), json!(o.user_info_endpoint));
                    m.insert("clientId".into(), json!(o.client_id));
                    Value::Object(m)
                }
                Authenticate::Jwt(j) => {
                    let mut v = json!({
                        "type": "jwt-validation", "jwksEndpoint": j.jwks_endpoint, "issuer": j.issuer,
                    });
                    if !j.claims.is_empty() {
                        v["additionalClaims"] = j
                            .claims
                            .iter()
                            .map(
                                |c| json!({"name": c.name, "format": c.format, "values": c.values}),
                            )
                            .collect();
                    }
                    v
                }
            }];
            out.extend(actions(model, then));
            out
        }
        Action::Forward {
            targets,
            stickiness,
        } => {
            let tgs: Vec<Value> = targets
                .iter()
                .map(|(t, w)| match t {
                    TargetRef::Name(n) => match backend(model, n) {
                        Some(b) => json!({"service": b, "weight": w}),
                        None => json!({"name": n, "weight": w}),
                    },
                    // A target group named in the annotation, not resolved without AWS.
                    // A target group the annotation names, resolved by the harness.
                    TargetRef::Arn(a) if a.starts_with(NAMED_TG) => {
                        json!({"name": &a[NAMED_TG.len()..], "weight": w})
                    }
                    TargetRef::Arn(arn) => json!({"arn": arn, "weight": w}),
                })
                .collect();
            let mut f = json!({"type": "forward", "targetGroups": tgs});
            if let Some(s) = stickiness {
                f["stickiness"] = json!(s);
            }
            vec![f]
        }
        Action::Redirect(r) => vec![json!({
            "type": "redirect", "protocol": r.protocol, "port": r.port, "host": r.host,
            "path": r.path, "query": r.query, "statusCode": r.status_code,
        })],
        Action::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => {
            let mut f = json!({"type": "fixed-response", "statusCode": status_code});
            if let Some(c) = content_type {
                f["contentType"] = json!(c);
            }
            if let Some(b) = message_body {
                f["messageBody"] = json!(b);
            }
            vec![f]
        }
    }
}

fn transforms(ts: &[Transform]) -> Vec<Value> {
    ts.iter()
        .flat_map(|t| {
            let (kind, rewrites) = match t {
                Transform::HostHeaderRewrite(r) => ("host-header-rewrite", r),
                Transform::UrlRewrite(r) => ("url-rewrite", r),
            };
            rewrites
                .iter()
                .map(move |r| json!({"type": kind, "regex": r.regex, "replace": r.replace}))
        })
        .collect()
}

/// A case's view of what causeway built.
fn render(build: &BuildOutput) -> Value {
    let model = &build.model;
    let accepted = build.members.iter().all(|m| m.problem.is_none());
    let problems: Vec<String> = build
        .members
        .iter()
        .filter_map(|m| {
            let p = m.problem.as_ref()?;
            Some(format!("{}: {}: {}", m.id(), p.reason, p.message))
        })
        .collect();
    let Some(lb) = model.load_balancers.first() else {
        return json!({"accepted": accepted, "problems": problems});
    };
    let frontend = model
        .security_groups
        .iter()
        .find(|s| s.key.starts_with("ManagedLBSecurityGroup"));
    let listeners: Vec<Value> = lb
        .listeners
        .iter()
        .map(|l| {
            let mut v = json!({
                "port": l.port,
                "protocol": l.protocol.as_str(),
                "defaultAction": actions(model, &l.default_action).pop(),
                "rules": l.rules.iter().map(|r| {
                    let mut conditions: Vec<Value> = r.conditions.iter().map(condition).collect();
                    conditions.sort_by_key(|c| c.to_string());
                    let mut rule = json!({"conditions": conditions, "actions": actions(model, &r.action)});
                    if !r.transforms.is_empty() {
                        rule["transforms"] = json!(transforms(&r.transforms));
                    }
                    rule
                }).collect::<Vec<_>>(),
            });
            if let Some(p) = &l.ssl_policy {
                v["sslPolicy"] = json!(p);
            }
            if !l.certificates.is_empty() {
                v["certificates"] = json!(l.certificates);
            }
            if !l.attributes.is_empty() {
                v["attributes"] = json!(l.attributes);
            }
            if let Some(m) = &l.mutual_auth {
                let mut a = json!({"mode": m.mode.as_str()});
                if m.mode == MutualAuthMode::Verify {
                    a["trustStore"] = json!(m.trust_store);
                    a["ignoreClientCertificateExpiry"] = json!(m.ignore_client_certificate_expiry);
                    a["advertiseTrustStoreCaNames"] =
                        json!(if m.advertise_trust_store_ca_names { "on" } else { "off" });
                }
                v["mutualAuthentication"] = a;
            }
            v
        })
        .collect();
    let target_groups: Vec<Value> = model
        .target_groups
        .iter()
        .map(|t| {
            let h = &t.health_check;
            let matcher = match h.grpc {
                true => json!({"grpcCode": h.success_codes}),
                false => json!({"httpCode": h.success_codes}),
            };
            json!({
                "service": format!("{}:{}", t.binding.service, t.binding.service_port),
                "protocol": t.protocol.as_str(),
                "protocolVersion": t.protocol_version,
                "targetType": t.target_type.as_str(),
                "healthCheck": {
                    "path": h.path, "port": h.port, "protocol": h.protocol.as_str(),
                    "interval": h.interval_seconds, "timeout": h.timeout_seconds,
                    "healthy": h.healthy_threshold, "unhealthy": h.unhealthy_threshold,
                    "matcher": matcher,
                },
                "attributes": t.attributes,
                "tags": user_tags(&t.tags),
                "nodeSelector": t.binding.node_labels,
            })
        })
        .collect();
    let managed: Vec<&str> = model
        .security_groups
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    let mut load_balancer = json!({
            "name": lb.name,
            "subnets": lb.subnets,
            "securityGroups": lb.security_groups.iter().filter(|k| !managed.contains(&k.as_str())).collect::<BTreeSet<_>>(),
            "scheme": lb.scheme.as_str(),
            "ipAddressType": lb.ip_address_type.as_str(),
            "attributes": lb.attributes,
            "tags": user_tags(&lb.tags),
            "inbound": frontend.map(|s| s.ingress.iter().map(|r| json!({"port": r.port, "cidr": r.cidr})).collect::<Vec<_>>()).unwrap_or_default(),
    });
    match &lb.addons.web_acl {
        Some(Some(arn)) => load_balancer["wafv2AclArn"] = json!(arn),
        Some(None) => load_balancer["wafv2AclArn"] = json!(""),
        None => {}
    }
    if let Some(on) = lb.addons.shield {
        load_balancer["shieldAdvancedProtection"] = json!(on);
    }
    json!({
        "accepted": accepted,
        "problems": problems,
        "loadBalancer": load_balancer,
        "listeners": listeners,
        "targetGroups": target_groups,
    })
}

/// Where `actual` does not have what `expected` says, as `path: why` lines.
fn mismatches(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => mismatches(&format!("{path}.{k}"), ev, av, out),
                    None => out.push(format!("{path}.{k}: missing, expected {ev}")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} items, expected {}: {actual}",
                    a.len(),
                    e.len()
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                mismatches(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        // Numbers and strings the cases may spell either way ("200" or 200).
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n))
            if n.to_string() == *s => {}
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: {a}, expected {e}")),
    }
}

/// `expected` with each rule's conditions sorted as [`render`] sorts them, and target groups
/// matched to the built ones by backend.
fn normalise(mut expected: Value, actual: &Value) -> Value {
    if let Some(ls) = expected.get_mut("listeners").and_then(Value::as_array_mut) {
        for l in ls {
            for r in l
                .get_mut("rules")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(cs) = r.get_mut("conditions").and_then(Value::as_array_mut) {
                    for c in cs.iter_mut() {
                        if let Some(vs) = c.get_mut("values").and_then(Value::as_array_mut) {
                            vs.sort_by_key(|v| v.to_string());
                        }
                    }
                    cs.sort_by_key(|c| {
                        // As rendered: keys in order, values sorted.
                        serde_json::to_string(&c).unwrap_or_default()
                    });
                }
            }
        }
    }
    if let Some(sgs) = expected
        .pointer_mut("/loadBalancer/securityGroups")
        .and_then(Value::as_array_mut)
    {
        sgs.sort_by_key(|v| v.to_string());
    }
    if let Some(tgs) = expected
        .get_mut("targetGroups")
        .and_then(Value::as_array_mut)
    {
        let built = actual["targetGroups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut ordered = Vec::new();
        for b in &built {
            if let Some(e) = tgs.iter().find(|e| e["service"] == b["service"]) {
                ordered.push(e.clone());
            }
        }
        // Expected ones that were not built stay, so the length check reports them.
        for e in tgs.iter() {
            if !built.iter().any(|b| b["service"] == e["service"]) {
                ordered.push(e.clone());
            }
        }
        *tgs = ordered;
    }
    expected
}

fn run_case(path: &Path) -> Result<(Case, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Case = serde_saphyr::from_str(&text).map_err(|e| format!("case: {e}"))?;
    let mut objects = Vec::new();
    crate::plan::parse_stream(path, &case.manifests, &mut objects).map_err(|e| e.to_string())?;
    let mut log = String::new();
    let mut manifests = Manifests::read(&objects, &mut log);
    if !log.is_empty() {
        return Err(log);
    }
    let mut services = manifests.services.clone();
    assign_node_ports(&mut services);
    let bindings: Vec<crate::crd::TargetGroupBinding> = objects
        .iter()
        .filter(|o| o["kind"] == "TargetGroupBinding")
        .map(|o| serde_json::from_value(o.clone()).map_err(|e| format!("TargetGroupBinding: {e}")))
        .collect::<Result<_, _>>()?;
    let named_tgs: BTreeMap<String, String> = manifests
        .ingresses
        .iter()
        .flat_map(|i| super::annotations::named_target_groups(i.annotations()))
        .map(|n| (n.clone(), format!("{NAMED_TG}{n}")))
        .collect();
    let groups = manifests.groups(&ClassSettings::new(class::DEFAULT_CONTROLLER, true));
    let mut sn = subnets();
    // The subnets the documentation's examples name, by ID and by Name tag.
    for (id, az, name) in [
        ("subnet-xxxx", "us-east-1a", None),
        ("subnet-xxx", "us-east-1a", None),
        ("subnet-123", "us-east-1b", None),
        ("subnet-named", "us-east-1b", Some("mySubnet")),
    ] {
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        if let Some(n) = name {
            tags.insert("Name".into(), n.into());
        }
        sn.push(builder::SubnetInfo {
            id: id.into(),
            az: az.into(),
            tags,
        });
    }
    let certs = certificates(&case.manifests);
    let oidc: crate::alb::annotations::OidcClients = objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .filter_map(|o| {
            let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(o.clone()).ok()?;
            let key = (
                s.metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                s.metadata.name.clone()?,
            );
            Some((key, super::secrets::parse_client(&s).map(|(id, _)| id)))
        })
        .collect();
    let tags = Tags::new();
    let unmanaged = BTreeSet::new();
    let env = Environment {
        cluster: "c1",
        default_tags: &tags,
        external_managed_tags: &unmanaged,
        default_target_type: TargetType::Instance,
        services: &services,
        subnets: Some(&sn),
        certificates: Some(&certs),
        security_groups: None,
        target_groups: Some(&named_tgs),
        oidc_clients: Some(&oidc),
        web_acls: None,
        trust_stores: None,
    };
    let expected = case.expect.clone();
    let mut out = Vec::new();
    let builds: Vec<BuildOutput> = groups
        .iter()
        .map(|(stack, members)| builder::build(stack, members, &env))
        .collect();
    if builds.is_empty() {
        match (bindings.first(), expected.get("targetGroupBinding")) {
            (Some(b), Some(want)) => {
                mismatches(".targetGroupBinding", want, &render_binding(b), &mut out)
            }
            _ if expected["accepted"] != json!(false) => {
                out.push("no Ingress of the case belongs to the ALB controller".into())
            }
            _ => {}
        }
        return Ok((case, out));
    }
    // A case is about one group: its first (the cases hold one).
    let actual = render(&builds[0]);
    if expected["accepted"] == json!(false) {
        if actual["accepted"] != json!(false) {
            out.push("accepted, but the peer refuses it".into());
        }
        return Ok((case, out));
    }
    if actual["accepted"] != json!(true) {
        out.push(format!("refused: {}", actual["problems"]));
        return Ok((case, out));
    }
    let mut expected = normalise(expected, &actual);
    if let Some(o) = expected.as_object_mut() {
        o.remove("accepted");
    }
    mismatches("", &expected, &actual, &mut out);
    Ok((case, out))
}

#[test]
fn the_peers_documented_manifests_build_what_the_peer_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/compat")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    let mut failed = BTreeMap::new();
    let mut divergent = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match run_case(f) {
            Err(e) => {
                failed.insert(name, vec![e]);
            }
            Ok((case, problems)) => {
                if !problems.is_empty() {
                    failed.insert(
                        name,
                        std::iter::once(format!("{} ({})", case.name, case.source))
                            .chain(problems)
                            .collect(),
                    );
                } else if let Some(d) = case.divergence {
                    divergent.push(format!("{name}: {d}"));
                }
            }
        }
    }
    let exact = files.len() - failed.len() - divergent.len();
    println!(
        "compat: {} cases, {exact} build exactly what the peer builds, {} by design otherwise",
        files.len(),
        divergent.len()
    );
    for d in &divergent {
        println!("  divergence: {d}");
    }
    let report: Vec<String> = failed
        .iter()
        .map(|(f, p)| format!("{f}:\n    {}", p.join("\n    ")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases differ:\n{}",
        failed.len(),
        files.len(),
        report.join("\n")
    );
}
