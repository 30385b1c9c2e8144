//! Where a load balancer lives and who may reach it: scheme, subnets (given, or discovered
//! by role and cluster tags), and security groups (managed frontend and backend groups, or
//! the ones the `security-groups` annotation names). Shared by ALBs and NLBs.

use std::collections::{BTreeMap, BTreeSet};

use super::member::Exclusive;
use super::{Environment, ROLE_ELB, ROLE_INTERNAL_ELB, SubnetInfo};

use crate::alb::annotations::{Annotations, Problem, reason};
use crate::alb::model::*;
use crate::alb::naming;
use crate::aws::tags::kubernetes_cluster;

/// Internal unless a member asks for internet-facing.
pub(super) fn scheme(group: &Exclusive) -> Scheme {
    group.scheme.unwrap_or(Scheme::Internal)
}

/// The subnets named (IDs or Name tags), or else one per availability zone among those
/// tagged for the scheme's role and usable by the cluster; at least two zones.
pub(crate) fn resolve_subnets(
    wanted: Option<&[String]>,
    scheme: Scheme,
    env: &Environment<'_>,
) -> Result<Vec<String>, Problem> {
    if let Some(wanted) = wanted {
        return named_subnets(wanted, env);
    }
    let Some(catalog) = env.subnets else {
        return Ok(Vec::new());
    };
    let role = match scheme {
        Scheme::InternetFacing => ROLE_ELB,
        Scheme::Internal => ROLE_INTERNAL_ELB,
    };
    let cluster_tag = kubernetes_cluster(env.cluster);
    // The tag of any cluster.
    let any_cluster = kubernetes_cluster("");
    let mut by_az: BTreeMap<&str, &SubnetInfo> = BTreeMap::new();
    for s in catalog {
        if !s.tags.get(role).is_some_and(|v| v.is_empty() || v == "1") {
            continue;
        }
        if let Some(v) = s.tags.get(&cluster_tag)
            && v != "owned"
            && v != "shared"
        {
            continue;
        }
        // Another cluster's subnet is not ours to use.
        let foreign = s
            .tags
            .keys()
            .any(|k| k.starts_with(&any_cluster) && *k != cluster_tag);
        if foreign && !s.tags.contains_key(&cluster_tag) {
            continue;
        }
        let better = |old: &SubnetInfo| {
            let tagged = |x: &SubnetInfo| x.tags.contains_key(&cluster_tag);
            (tagged(s), std::cmp::Reverse(&s.id)) > (tagged(old), std::cmp::Reverse(&old.id))
        };
        match by_az.get(s.az.as_str()) {
            Some(old) if !better(old) => {}
            _ => {
                by_az.insert(&s.az, s);
            }
        }
    }
    if by_az.len() < 2 {
        return Err(Problem::new(
            reason::NO_SUBNETS,
            format!(
                "a load balancer needs subnets in at least 2 availability zones; subnets tagged {role} were found in {}",
                by_az.len()
            ),
        ));
    }
    let mut ids: Vec<String> = by_az.values().map(|s| s.id.clone()).collect();
    ids.sort();
    Ok(ids)
}

/// The `subnets` annotation's entries (IDs or Name tags), resolved in the VPC when its
/// subnets are known. A member's own list is checked when it is parsed, so an entry that
/// names no subnet of the VPC excludes that member only.
pub(crate) fn named_subnets(
    wanted: &[String],
    env: &Environment<'_>,
) -> Result<Vec<String>, Problem> {
    let mut ids = Vec::new();
    for w in wanted {
        let Some(catalog) = env.subnets else {
            ids.push(w.clone());
            continue;
        };
        let found = catalog
            .iter()
            .find(|s| s.id == *w || s.tags.get("Name") == Some(w))
            .ok_or_else(|| {
                Problem::new(
                    reason::NO_SUBNETS,
                    format!("no subnet {w:?} (by ID or Name tag) in the VPC"),
                )
            })?;
        ids.push(found.id.clone());
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The `security-groups` annotation, resolved to IDs.
pub(crate) fn security_groups(
    a: &Annotations<'_>,
    env: &Environment<'_>,
) -> Result<Option<Vec<String>>, Problem> {
    let entries = a.list("security-groups");
    if entries.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::new();
    for e in &entries {
        let Some(found) = env.security_groups else {
            ids.push(e.clone());
            continue;
        };
        match found.get(e).map(Vec::as_slice) {
            Some([id]) => ids.push(id.clone()),
            None | Some([]) => {
                return Err(Problem::new(
                    reason::SECURITY_GROUP_NOT_FOUND,
                    format!(
                        "security group {e:?} (security-groups annotation) is not in the cluster's VPC"
                    ),
                ));
            }
            Some(many) => {
                return Err(Problem::new(
                    reason::SECURITY_GROUP_NOT_FOUND,
                    format!(
                        "{e:?} (security-groups annotation) names {} security groups; use IDs",
                        many.len()
                    ),
                ));
            }
        }
    }
    ids.sort();
    ids.dedup();
    Ok(Some(ids))
}

/// The security groups of one load balancer.
pub(crate) struct ShardSecurityGroups {
    /// What the load balancer gets: our groups by key, the annotation's by ID.
    pub(crate) attached: Vec<String>,
    /// The groups we manage for it: the frontend (unless the annotation replaces it) and the
    /// backend (when managed).
    pub(crate) managed: Vec<SecurityGroupModel>,
    /// The key of the backend group the targets' rules refer to, when managed.
    pub(crate) backend: Option<String>,
}

/// What decides a load balancer's security groups.
pub(crate) struct SecurityGroupSpec<'a> {
    /// Who may reach the listeners; `None`: everyone (over IPv6 too unless `ip_address_type`
    /// is IPv4).
    pub(crate) inbound_cidrs: Option<&'a [String]>,
    pub(crate) ip_address_type: IpAddressType,
    /// The `security-groups` annotation's IDs, which replace the managed frontend group.
    pub(crate) custom: Option<&'a [String]>,
    /// `manage-backend-security-group-rules`.
    pub(crate) manage_backend_rules: Option<bool>,
    /// The listener ports the frontend group opens, by IP protocol.
    pub(crate) ports: BTreeSet<(i32, IpProtocol)>,
}

/// The default inbound CIDRs: everyone, over IPv6 too for a dual-stack load balancer.
pub(crate) fn everyone(ip_address_type: IpAddressType) -> Vec<String> {
    let mut v = vec!["0.0.0.0/0".to_string()];
    if ip_address_type != IpAddressType::Ipv4 {
        v.push("::/0".into());
    }
    v
}

/// The frontend group opens every listen port to the inbound CIDRs; the backend group is
/// what the targets' rules let in.
pub(crate) fn shard_security_groups(
    spec: &SecurityGroupSpec<'_>,
    cluster: &str,
    stack: &str,
    suffix: &str,
    with_resource: &impl Fn(&str) -> Tags,
) -> ShardSecurityGroups {
    let frontend_key = format!("ManagedLBSecurityGroup{suffix}");
    let backend_key = format!("BackendSecurityGroup{suffix}");
    let cidrs = spec
        .inbound_cidrs
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| everyone(spec.ip_address_type));
    // With the security-groups annotation, those replace the managed frontend group, and
    // the backend group (and the rules it gets on the targets) is kept only when
    // manage-backend-security-group-rules asks for it (as the peer does).
    let custom = spec.custom.map(<[String]>::to_vec);
    let manage_backend = custom.is_none() || spec.manage_backend_rules == Some(true);
    let mut attached = Vec::new();
    match &custom {
        Some(ids) => attached.extend(ids.iter().cloned()),
        None => attached.push(frontend_key.clone()),
    }
    if manage_backend {
        attached.push(backend_key.clone());
    }
    let mut managed = Vec::new();
    if custom.is_none() {
        managed.push(SecurityGroupModel {
            name: naming::security_group_name(cluster, stack, &frontend_key),
            description: format!("[k8s] managed security group for load balancer {stack}"),
            ingress: spec
                .ports
                .iter()
                .flat_map(|(port, protocol)| {
                    cidrs.iter().map(move |c| SgRule {
                        port: *port,
                        cidr: c.clone(),
                        protocol: *protocol,
                    })
                })
                .collect(),
            tags: with_resource(&frontend_key),
            key: frontend_key.clone(),
        });
    }
    if manage_backend {
        managed.push(SecurityGroupModel {
            name: naming::security_group_name(cluster, stack, &backend_key),
            description: format!("[k8s] backend security group for load balancer {stack}"),
            ingress: BTreeSet::new(),
            tags: with_resource(&backend_key),
            key: backend_key.clone(),
        });
    }
    ShardSecurityGroups {
        attached,
        managed,
        backend: manage_backend.then_some(backend_key),
    }
}
