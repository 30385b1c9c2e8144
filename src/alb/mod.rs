//! Ingress → ALB, the way aws-load-balancer-controller does it (same annotations, tags and
//! IngressClassParams) without its known failures: one bad member never blocks a group,
//! groups over 100 rules split onto more ALBs, nothing scans the region, and a security
//! group that cannot be deleted yet is retried, never leaked.
//!
//! Shape: fetch (Ingresses of a group) → [`builder`] (pure) → [`aws`] observe (by the ARNs in
//! the group's status) → [`plan`] (pure) → [`aws`] apply → [`status`].

pub(crate) mod adopt;
pub(crate) mod annotations;
pub(crate) mod aws;
pub(crate) mod bindings;
pub mod builder;
pub(crate) mod cache;
pub mod class;
mod controller;
pub mod model;
pub(crate) mod naming;
pub mod observed;
pub mod plan;
mod reconcile;
mod secrets;
pub(crate) mod settings;
pub(crate) mod stack;
pub(crate) mod status;

#[cfg(test)]
mod compat_tests;

pub use controller::run;
pub use settings::AlbSettings;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;

use crate::crd::IngressClassParams;

/// The ALB objects of a set of manifests: Ingresses (namespace `default` when unset), their
/// IngressClasses and IngressClassParams, and Services by (namespace, name).
pub(crate) struct Manifests {
    pub(crate) ingresses: Vec<Ingress>,
    pub(crate) classes: Vec<IngressClass>,
    pub(crate) params: Vec<IngressClassParams>,
    pub(crate) services: BTreeMap<(String, String), Service>,
    /// Labels of the Namespaces the manifests hold (what IngressClassParams'
    /// namespaceSelector is matched against).
    pub(crate) namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Manifests {
    /// Sorts `objects` by kind; one that does not parse is skipped, with a line in `log`.
    pub(crate) fn read(objects: &[serde_json::Value], log: &mut String) -> Self {
        use std::fmt::Write;
        let kind = |o: &serde_json::Value| {
            o.get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let mut m = Manifests {
            ingresses: Vec::new(),
            classes: Vec::new(),
            params: Vec::new(),
            services: BTreeMap::new(),
            namespaces: BTreeMap::new(),
        };
        for o in objects {
            let result = match kind(o).as_str() {
                "Ingress" => serde_json::from_value::<Ingress>(o.clone()).map(|mut i| {
                    if i.metadata.namespace.is_none() {
                        i.metadata.namespace = Some("default".into());
                    }
                    m.ingresses.push(i)
                }),
                "IngressClass" => {
                    serde_json::from_value::<IngressClass>(o.clone()).map(|c| m.classes.push(c))
                }
                "IngressClassParams" => {
                    // The apiserver defaults a missing spec to {} (the peer's chart writes
                    // none); a file read here gets the same.
                    let mut o = o.clone();
                    if let Some(map) = o.as_object_mut() {
                        map.entry("spec").or_insert_with(|| serde_json::json!({}));
                    }
                    serde_json::from_value::<IngressClassParams>(o).map(|p| m.params.push(p))
                }
                "Service" => serde_json::from_value::<Service>(o.clone()).map(|mut s| {
                    let ns = s
                        .metadata
                        .namespace
                        .get_or_insert_with(|| "default".into())
                        .clone();
                    m.services.insert((ns, s.name_any()), s);
                }),
                "Namespace" => {
                    let meta = &o["metadata"];
                    if let Some(name) = meta["name"].as_str() {
                        let labels =
                            serde_json::from_value(meta["labels"].clone()).unwrap_or_default();
                        m.namespaces.insert(name.to_owned(), labels);
                    }
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                let _ = writeln!(log, "alb: skipping a {}: {e}", kind(o));
            }
        }
        m
    }

    /// The groups the Ingresses form, by stack. With no IngressClass in the manifests, the
    /// Ingresses' class names are taken to be ours.
    pub(crate) fn groups(
        &mut self,
        settings: &class::ClassSettings,
    ) -> BTreeMap<String, Vec<builder::Member<'_>>> {
        if self.classes.is_empty() {
            let names: std::collections::BTreeSet<String> = self
                .ingresses
                .iter()
                .filter_map(|i| i.spec.as_ref()?.ingress_class_name.clone())
                .collect();
            for n in names {
                if let Ok(c) = serde_json::from_value::<IngressClass>(serde_json::json!({
                    "metadata": {"name": n}, "spec": {"controller": settings.controller_names.first().map(String::as_str).unwrap_or(class::DEFAULT_CONTROLLER)}
                })) {
                    self.classes.push(c);
                }
            }
        }
        let mut groups: BTreeMap<String, Vec<builder::Member<'_>>> = BTreeMap::new();
        for i in &self.ingresses {
            let labels = i.namespace().and_then(|ns| self.namespaces.get(&ns));
            if let Some(m) = class::membership(i, &self.classes, &self.params, labels, settings) {
                groups
                    .entry(m.group.stack())
                    .or_default()
                    .push(builder::Member {
                        ingress: i,
                        membership: m,
                        last_accepted: None,
                    });
            }
        }
        groups
    }
}

/// `causeway plan -f`: the ALB model of every group in `objects`, and, with AWS access, the
/// steps causeway would take. Reads only; changes nothing.
pub async fn plan_report(
    objects: &[serde_json::Value],
    aws: Option<&crate::aws::AwsClients>,
    cluster_name: &str,
    alb: &AlbSettings,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut manifests = Manifests::read(objects, &mut out);
    let services = manifests.services.clone();
    let groups = manifests.groups(&alb.class);
    if groups.is_empty() {
        let _ = writeln!(out, "alb: no Ingress in the manifests belongs to causeway");
        return out;
    }

    let found = discover_for_plan(aws, cluster_name, alb.vpc_id.as_ref()).await;
    for (stack, members) in &groups {
        let build = builder::build(
            stack,
            members,
            &alb.environment(
                cluster_name,
                settings::Discovered {
                    services: &services,
                    subnets: found.subnets.as_deref(),
                    certificates: found.certificates.as_deref(),
                    security_groups: None,
                    target_groups: None,
                    oidc_clients: None,
                    web_acls: None,
                    trust_stores: None,
                },
            ),
        );
        let _ = writeln!(out, "alb group {stack}:");
        for m in &build.members {
            match &m.problem {
                None => {
                    let _ = writeln!(
                        out,
                        "  member {}: accepted (ALB {})",
                        m.id(),
                        m.shard.unwrap_or(0)
                    );
                }
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "  member {}: excluded: {}: {}",
                        m.id(),
                        p.reason,
                        p.message
                    );
                }
            }
        }
        for n in &build.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        write_model(&mut out, &build.model);
        write_actions(&mut out, aws, &found.vpc, cluster_name, &build.model).await;
    }
    out
}

/// What `causeway plan` reads from AWS before building: the VPC, its subnets, the issued
/// certificates (`None` where not read).
pub(crate) struct PlanDiscovery {
    pub(crate) vpc: Result<String, String>,
    pub(crate) subnets: Option<Vec<builder::SubnetInfo>>,
    pub(crate) certificates: Option<Vec<builder::CertInfo>>,
}

pub(crate) async fn discover_for_plan(
    aws: Option<&crate::aws::AwsClients>,
    cluster_name: &str,
    vpc_id: Option<&String>,
) -> PlanDiscovery {
    let vpc = match (aws, vpc_id) {
        (Some(_), Some(v)) => Ok(v.clone()),
        (Some(a), None) => aws::AlbAws::cluster_vpc(a, cluster_name)
            .await
            .map_err(|e| e.to_string()),
        (None, _) => Err("no AWS access".to_owned()),
    };
    let (subnets, certificates) = match (aws, &vpc) {
        (Some(a), Ok(v)) => (
            plan_adapter(a, v, cluster_name).subnets().await.ok(),
            aws::AlbAws::certificates(a).await.ok(),
        ),
        _ => (None, None),
    };
    PlanDiscovery {
        vpc,
        subnets,
        certificates,
    }
}

/// The read-only adapter `causeway plan` reads AWS with.
fn plan_adapter<'a>(
    aws: &'a crate::aws::AwsClients,
    vpc_id: &'a str,
    cluster: &'a str,
) -> aws::AlbAws<'a> {
    aws::AlbAws {
        aws,
        vpc_id,
        cluster,
        secrets: &aws::NO_SECRETS,
    }
}

/// The model as YAML lines of a plan report.
pub(crate) fn write_model(out: &mut String, model: &model::GroupModel) {
    use std::fmt::Write;
    match serde_saphyr::to_string(model) {
        Ok(y) => {
            for line in y.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  (model not printable: {e})");
        }
    }
}

/// The existing resources a stack would adopt, as plan report lines.
fn write_adopted(out: &mut String, adopted: &crate::crd::load_balancer_group::Adopted) {
    use std::fmt::Write;
    let _ = writeln!(out, "  adopts (found by the cluster and stack tags):");
    for (what, map) in [
        ("load balancer", &adopted.load_balancers),
        ("target group", &adopted.target_groups),
        ("security group", &adopted.security_groups),
    ] {
        for (ours, theirs) in map {
            let _ = writeln!(out, "    - {what} {theirs} (as {ours})");
        }
    }
    for (key, id) in &adopted.shared_security_groups {
        let _ = writeln!(
            out,
            "    - shared security group {id} (as {key}, never modified)"
        );
    }
}

/// The steps causeway would take for `model`, read-only, as plan report lines. A stack
/// with resources tagged for it is planned as the controller would after adopting them.
pub(crate) async fn write_actions(
    out: &mut String,
    aws: Option<&crate::aws::AwsClients>,
    vpc: &Result<String, String>,
    cluster_name: &str,
    model: &model::GroupModel,
) {
    use std::fmt::Write;
    match (aws, vpc) {
        (Some(a), Ok(v)) => {
            // What the stack's tags find (another controller's, or an install that lost its
            // status) is what the controller would adopt; the plan is then against that.
            let scope = aws::Scope {
                vpc_id: v,
                cluster: cluster_name,
            };
            let mut model = model.clone();
            let known = match adopt::look_up(a, scope, &model).await {
                Ok((found, adopted)) => {
                    if !adopted.is_empty() {
                        write_adopted(out, &adopted);
                        adopt::rename(&mut model, &adopted);
                    }
                    aws::Known {
                        desired_names: true,
                        ..found
                    }
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "  actions: unknown (looking up the stack's tagged resources failed: {e})"
                    );
                    return;
                }
            };
            let model = &model;
            match plan_adapter(a, v, cluster_name)
                .observe(&known, model, aws::Depth::Full)
                .await
            {
                Ok(mut observed) => {
                    observed.retain_owned(cluster_name, model.kind, &model.stack);
                    let steps = plan::plan(model, &observed, cluster_name);
                    if steps.is_empty() {
                        let _ = writeln!(out, "  actions: none (AWS matches)");
                    } else {
                        let _ = writeln!(out, "  actions:");
                        for s in steps {
                            let _ = writeln!(out, "    - {}", s.describe());
                        }
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "  actions: unknown (reading AWS failed: {e})");
                }
            }
        }
        (Some(_), Err(e)) => {
            let _ = writeln!(out, "  actions: unknown ({e})");
        }
        (None, _) => {
            let _ = writeln!(out, "  actions: not computed (no AWS access)");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[tokio::test]
    async fn plan_report_without_aws_prints_the_model_and_member_outcomes() {
        let objects = vec![
            json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},
                   "spec":{"type":"NodePort","ports":[{"port":80,"targetPort":8080,"nodePort":30080}]}}),
            json!({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"front","namespace":"shop"},
                   "spec":{"ingressClassName":"causeway","rules":[{"host":"shop.example.com","http":{"paths":[
                       {"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}),
            json!({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"broken","namespace":"shop",
                   "annotations":{"alb.ingress.kubernetes.io/listen-ports":"[{\"HTTP\":"}},
                   "spec":{"ingressClassName":"causeway","rules":[{"http":{"paths":[
                       {"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}),
        ];
        let report = super::plan_report(&objects, None, "c1", &Default::default()).await;
        assert!(report.contains("alb group shop/front:"), "{report}");
        assert!(report.contains("member shop/front: accepted"), "{report}");
        assert!(
            report.contains("member shop/broken: excluded: InvalidAnnotation"),
            "{report}"
        );
        assert!(report.contains("k8s-shopfront-"), "{report}");
        assert!(
            report.contains("actions: not computed (no AWS access)"),
            "{report}"
        );
    }
}
