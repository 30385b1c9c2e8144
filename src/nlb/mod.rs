//! Service type LoadBalancer → NLB, the way aws-load-balancer-controller's service
//! controller does it (its class, annotations, tags and finalizer), on the ALB's pieces: the
//! builder here makes the same [`GroupModel`](crate::alb::model::GroupModel) an IngressGroup
//! becomes, and the ALB planner, applier, subnet discovery, security groups, naming and
//! TargetGroupBinding hand-off realise it.
//!
//! Shape: fetch (the Service and its LoadBalancerGroup) → [`builder`] (pure) → observe (by
//! the ARNs in that status) → plan (pure) → apply → status (the LoadBalancerGroup, the
//! Service's `status.loadBalancer` and condition, Events).

pub mod annotations;
pub mod builder;
mod controller;
mod reconcile;

pub use controller::run;

use crate::alb::AlbSettings;
use crate::alb::model::TargetType;

/// How the NLB reconciler behaves.
#[derive(Clone, Debug)]
pub struct NlbSettings {
    /// The `spec.loadBalancerClass` we serve.
    pub load_balancer_class: String,
    /// Target type when the Service does not say (`nlb-target-type`).
    pub default_target_type: TargetType,
    /// What the NLB shares with the ALB reconciler: VPC, default and external-managed
    /// tags, resync, discovery TTL, and the controller name recorded on its stacks.
    pub shared: AlbSettings,
}

/// An NLB builds from its own Service only: no other Services are looked up.
static NO_SERVICES: std::collections::BTreeMap<
    (String, String),
    k8s_openapi::api::core::v1::Service,
> = std::collections::BTreeMap::new();

impl NlbSettings {
    /// The builder's environment: the one place settings and discovery become builder
    /// inputs, for the reconciler and for `causeway plan` alike.
    pub fn environment<'a>(
        &'a self,
        cluster: &'a str,
        subnets: Option<&'a [crate::alb::builder::SubnetInfo]>,
        certificates: Option<&'a [crate::alb::builder::CertInfo]>,
        security_groups: Option<&'a std::collections::BTreeMap<String, Vec<String>>>,
    ) -> crate::alb::builder::Environment<'a> {
        crate::alb::builder::Environment {
            cluster,
            default_tags: &self.shared.default_tags,
            external_managed_tags: &self.shared.external_managed_tags,
            default_target_type: self.default_target_type,
            services: &NO_SERVICES,
            subnets,
            certificates,
            security_groups,
            target_groups: None,
            oidc_clients: None,
            web_acls: None,
            trust_stores: None,
        }
    }
}

impl Default for NlbSettings {
    fn default() -> Self {
        NlbSettings {
            load_balancer_class: annotations::DEFAULT_CLASS.into(),
            default_target_type: TargetType::Instance,
            shared: AlbSettings::default(),
        }
    }
}

/// `causeway plan -f`: the NLB model of every Service in `objects` that is ours, and, with
/// AWS access, the steps causeway would take. Reads only; changes nothing.
pub async fn plan_report(
    objects: &[serde_json::Value],
    aws: Option<&crate::aws::AwsClients>,
    cluster_name: &str,
    settings: &NlbSettings,
) -> String {
    use k8s_openapi::api::core::v1::Service;
    use kube::ResourceExt;
    use std::fmt::Write;
    let mut out = String::new();
    let mut services = Vec::new();
    for o in objects {
        if o.get("kind").and_then(|k| k.as_str()) != Some("Service") {
            continue;
        }
        match serde_json::from_value::<Service>(o.clone()) {
            Ok(mut s) => {
                s.metadata.namespace.get_or_insert_with(|| "default".into());
                if annotations::ours(&s, &settings.load_balancer_class) {
                    services.push(s);
                }
            }
            Err(e) => {
                let _ = writeln!(out, "nlb: skipping a Service: {e}");
            }
        }
    }
    if services.is_empty() {
        let _ = writeln!(out, "nlb: no Service in the manifests belongs to causeway");
        return out;
    }
    let found =
        crate::alb::discover_for_plan(aws, cluster_name, settings.shared.vpc_id.as_ref()).await;
    for s in &services {
        let env = settings.environment(
            cluster_name,
            found.subnets.as_deref(),
            found.certificates.as_deref(),
            None,
        );
        let id = format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any());
        let _ = writeln!(out, "nlb service {id}:");
        match builder::build(s, &env) {
            Err(p) => {
                let _ = writeln!(out, "  rejected: {}: {}", p.reason, p.message);
            }
            Ok(model) => {
                crate::alb::write_model(&mut out, &model);
                crate::alb::write_actions(&mut out, aws, &found.vpc, cluster_name, &model).await;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[tokio::test]
    async fn plan_report_without_aws_prints_served_services_only() {
        let objects = vec![
            json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"edge","namespace":"shop"},
                   "spec":{"type":"LoadBalancer","loadBalancerClass":"service.k8s.aws/nlb",
                           "ports":[{"port":80,"targetPort":8080,"nodePort":30080}]}}),
            json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"bad","namespace":"shop",
                   "annotations":{"service.beta.kubernetes.io/aws-load-balancer-scheme":"sideways"}},
                   "spec":{"type":"LoadBalancer","loadBalancerClass":"service.k8s.aws/nlb",
                           "ports":[{"port":80,"nodePort":30081}]}}),
            json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"other"},
                   "spec":{"type":"LoadBalancer","loadBalancerClass":"example.com/lb","ports":[{"port":80}]}}),
        ];
        let report = super::plan_report(&objects, None, "c1", &Default::default()).await;
        assert!(report.contains("nlb service shop/edge:"), "{report}");
        assert!(report.contains("kind: network"), "{report}");
        assert!(report.contains("protocol: TCP"), "{report}");
        assert!(
            report.contains("nlb service shop/bad:\n  rejected: InvalidAnnotation"),
            "{report}"
        );
        assert!(!report.contains("default/other"), "{report}");
        assert!(
            report.contains("actions: not computed (no AWS access)"),
            "{report}"
        );
    }
}
