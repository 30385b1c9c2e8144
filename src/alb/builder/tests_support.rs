//! Fixtures shared by the builder, planner and benchmark tests: Services, Ingresses,
//! subnets and certificates for cluster `c1`. The Kubernetes objects come from
//! [`crate::fixtures`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::*;
use crate::alb::class::{GroupKey, Membership};
use crate::aws::tags::kubernetes_cluster;

pub use crate::fixtures::{ingress, path_rule, service};

pub fn subnets() -> Vec<SubnetInfo> {
    let mk = |id: &str, az: &str, role: &str| SubnetInfo {
        id: id.into(),
        az: az.into(),
        tags: [
            (role.to_string(), "1".to_string()),
            (kubernetes_cluster("c1"), "shared".to_string()),
        ]
        .into(),
    };
    vec![
        mk("subnet-pub-a", "us-east-1a", ROLE_ELB),
        mk("subnet-pub-b", "us-east-1b", ROLE_ELB),
        mk("subnet-priv-a", "us-east-1a", ROLE_INTERNAL_ELB),
        mk("subnet-priv-b", "us-east-1b", ROLE_INTERNAL_ELB),
    ]
}

pub fn certs() -> Vec<CertInfo> {
    vec![CertInfo {
        arn: "arn:aws:acm:us-east-1:123456789012:certificate/abc".into(),
        domains: vec!["causeway.test".into(), "*.causeway.test".into()],
    }]
}

pub fn services() -> BTreeMap<(String, String), Service> {
    let mut m = BTreeMap::new();
    m.insert(
        ("ns".into(), "web".into()),
        service("ns", "web", 80, Some(30080), json!({})),
    );
    m.insert(
        ("ns".into(), "api".into()),
        service("ns", "api", 80, Some(30081), json!({})),
    );
    m
}

/// Builds a group from Ingresses (group name from the annotation, order 0), cluster `c1`.
pub fn build_group(stack: &str, ings: &[Ingress]) -> GroupModel {
    let members: Vec<Member<'_>> = ings
        .iter()
        .map(|i| Member {
            ingress: i,
            membership: Membership {
                group: GroupKey::from_stack(stack),
                order: 0,
                params: None,
                problem: None,
            },
            last_accepted: None,
        })
        .collect();
    let tags = Tags::new();
    let unmanaged = BTreeSet::new();
    let sn = subnets();
    let cs = certs();
    let svcs = services();
    build(
        stack,
        &members,
        &Environment {
            cluster: "c1",
            default_tags: &tags,
            external_managed_tags: &unmanaged,
            default_target_type: TargetType::Instance,
            services: &svcs,
            subnets: Some(&sn),
            certificates: Some(&cs),
            security_groups: None,
            target_groups: None,
            oidc_clients: None,
            web_acls: None,
            trust_stores: None,
        },
    )
    .model
}
