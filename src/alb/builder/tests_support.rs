//! Fixtures shared by the builder, planner and benchmark tests: Services, Ingresses,
//! subnets and certificates for cluster `c1`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::*;
use crate::alb::class::{GroupKey, Membership};
use crate::aws::tags::kubernetes_cluster;

pub fn service(
    ns: &str,
    name: &str,
    port: i32,
    node_port: Option<i32>,
    anns: serde_json::Value,
) -> Service {
    let mut p = json!({"name":"http","port":port,"targetPort":8080});
    if let Some(n) = node_port {
        p["nodePort"] = json!(n);
    }
    serde_json::from_value(
        json!({"metadata":{"name":name,"namespace":ns,"annotations":anns},"spec":{"ports":[p]}}),
    )
    .expect("valid Service")
}

pub fn ingress(ns: &str, name: &str, anns: serde_json::Value, rules: serde_json::Value) -> Ingress {
    serde_json::from_value(
        json!({"metadata":{"name":name,"namespace":ns,"annotations":anns},"spec":{"rules":rules}}),
    )
    .expect("valid Ingress")
}

pub fn path_rule(
    host: Option<&str>,
    path: &str,
    path_type: &str,
    svc: &str,
    port: i32,
) -> serde_json::Value {
    let mut r = json!({"http":{"paths":[{"path":path,"pathType":path_type,"backend":{"service":{"name":svc,"port":{"number":port}}}}]}});
    if let Some(h) = host {
        r["host"] = json!(h);
    }
    r
}

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
        },
    )
    .model
}
