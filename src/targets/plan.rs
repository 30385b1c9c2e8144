//! Pure: what to change in AWS so the target group and security groups match the desired
//! state. Plans are data; applying one and planning again gives an empty plan.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub use super::desired::Target;
use crate::crd::target_group_binding::{
    NetworkingProtocol, TargetGroupBindingNetworking, TargetType,
};

/// ELBv2 accepts at most this many targets per Register/DeregisterTargets call.
pub const MAX_BATCH: usize = 200;

/// A target's state as DescribeTargetHealth reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
}

impl TargetState {
    pub fn parse(s: &str) -> TargetState {
        match s {
            "initial" => TargetState::Initial,
            "healthy" => TargetState::Healthy,
            "unhealthy" | "unhealthy.draining" => TargetState::Unhealthy,
            "unused" => TargetState::Unused,
            "draining" => TargetState::Draining,
            _ => TargetState::Unavailable,
        }
    }
}

/// The registrations the target group has now.
pub type Observed = BTreeMap<Target, TargetState>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPlan {
    pub register: Vec<Vec<Target>>,
    pub deregister: Vec<Vec<Target>>,
}

impl TargetPlan {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }
}

fn batches(items: Vec<Target>) -> Vec<Vec<Target>> {
    items.chunks(MAX_BATCH).map(<[Target]>::to_vec).collect()
}

/// Registers what is desired and absent; deregisters what is registered and not desired.
/// Draining targets are left alone either way: they are on their way out (AWS waits the
/// deregistration delay), and registering them again would cut that short.
pub fn plan_targets(desired: &BTreeSet<Target>, observed: &Observed) -> TargetPlan {
    let register = desired
        .iter()
        .filter(|t| !observed.contains_key(*t))
        .cloned()
        .collect();
    let deregister = observed
        .iter()
        .filter(|(t, s)| **s != TargetState::Draining && !desired.contains(*t))
        .map(|(t, _)| t.clone())
        .collect();
    TargetPlan {
        register: batches(register),
        deregister: batches(deregister),
    }
}

/// What DescribeTargetGroups says about the target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupInfo {
    pub arn: String,
    pub vpc_id: Option<String>,
    /// `instance`, `ip`, `lambda` or `alb`.
    pub target_type: String,
    pub ip_address_type: Option<String>,
}

/// A target group that cannot be used by this binding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetGroupError {
    #[error("target group {0} does not exist")]
    NotFound(String),
    #[error("target group {arn} is in {actual}, not in the cluster's VPC {expected}")]
    ForeignVpc {
        arn: String,
        expected: String,
        actual: String,
    },
    #[error("target group {arn} has targetType {actual}, but the binding says {expected}")]
    TargetTypeMismatch {
        arn: String,
        expected: String,
        actual: String,
    },
    #[error("target group {arn} has targetType {actual}; only instance and ip can be bound")]
    UnsupportedTargetType { arn: String, actual: String },
}

fn type_name(t: TargetType) -> &'static str {
    match t {
        TargetType::Instance => "instance",
        TargetType::Ip => "ip",
    }
}

/// Checks the target group against the binding and the cluster; returns the target type
/// to use (the binding's, or the target group's when the binding leaves it unset).
pub fn validate_target_group(
    tg: &TargetGroupInfo,
    spec_type: Option<TargetType>,
    spec_vpc: Option<&str>,
    cluster_vpc: Option<&str>,
) -> Result<TargetType, TargetGroupError> {
    let expected_vpc = spec_vpc.filter(|v| !v.is_empty()).or(cluster_vpc);
    if let (Some(expected), Some(actual)) = (expected_vpc, tg.vpc_id.as_deref())
        && expected != actual
    {
        return Err(TargetGroupError::ForeignVpc {
            arn: tg.arn.clone(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    let actual = match tg.target_type.as_str() {
        "instance" => TargetType::Instance,
        "ip" => TargetType::Ip,
        other => {
            return Err(TargetGroupError::UnsupportedTargetType {
                arn: tg.arn.clone(),
                actual: other.to_string(),
            });
        }
    };
    match spec_type {
        Some(t) if t != actual => Err(TargetGroupError::TargetTypeMismatch {
            arn: tg.arn.clone(),
            expected: type_name(t).to_string(),
            actual: tg.target_type.clone(),
        }),
        _ => Ok(actual),
    }
}

/// Where traffic comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    SecurityGroup(String),
    Cidr(String),
}

/// One ingress permission on one target security group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngressRule {
    pub group_id: String,
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Peer,
}

/// A rule we own, as DescribeSecurityGroupRules shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRule {
    pub rule_id: String,
    pub rule: IngressRule,
    /// Other bindings need the same rule too: letting go drops only our owner tag.
    pub shared: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkingError {
    #[error("networking.ingress[{rule}].ports[{port}]: {message}")]
    InvalidPort {
        rule: usize,
        port: usize,
        message: String,
    },
}

/// The ingress rules the binding asks for, on each of `target_groups`. A named port is
/// only meaningful for ip targets, where it names the Service's targetPort.
pub fn desired_rules(
    networking: Option<&TargetGroupBindingNetworking>,
    target_type: TargetType,
    target_port_name: Option<&str>,
    resolved_port: Option<i32>,
    target_groups: &BTreeSet<String>,
) -> Result<BTreeSet<IngressRule>, NetworkingError> {
    let mut out = BTreeSet::new();
    let Some(net) = networking else {
        return Ok(out);
    };
    for (ri, rule) in net.ingress.iter().enumerate() {
        let mut ranges = Vec::new();
        let ports: Vec<_> = if rule.ports.is_empty() {
            vec![None]
        } else {
            rule.ports.iter().map(Some).collect()
        };
        for (pi, p) in ports.into_iter().enumerate() {
            let protocol = match p.and_then(|p| p.protocol) {
                Some(NetworkingProtocol::Udp) => "udp",
                _ => "tcp",
            };
            let bad = |message: String| NetworkingError::InvalidPort {
                rule: ri,
                port: pi,
                message,
            };
            let (from, to) = match p.and_then(|p| p.port.as_ref()) {
                None => (0, 65535),
                Some(&IntOrString::Int(n)) if (1..=65535).contains(&n) => (n, n),
                Some(IntOrString::Int(n)) => {
                    return Err(bad(format!("{n} is not a port number (1-65535)")));
                }
                Some(IntOrString::String(s)) => {
                    if let Ok(n) = s.parse::<i32>() {
                        return Err(bad(format!(
                            "{n:?} is a number written as a string; write it as a number"
                        )));
                    }
                    if target_type == TargetType::Instance {
                        return Err(bad(format!(
                            "named port {s:?} needs ip targets; instance targets take numbers"
                        )));
                    }
                    match (target_port_name, resolved_port) {
                        (Some(name), Some(n)) if name == s => (n, n),
                        _ => {
                            return Err(bad(format!(
                                "named port {s:?} is not the Service's targetPort name"
                            )));
                        }
                    }
                }
            };
            ranges.push((protocol, from, to));
        }
        for peer in &rule.from {
            let peer = match (&peer.security_group, &peer.ip_block) {
                (Some(sg), _) => Peer::SecurityGroup(sg.group_id.clone()),
                (None, Some(b)) => Peer::Cidr(b.cidr.clone()),
                (None, None) => continue,
            };
            for group in target_groups {
                for (protocol, from, to) in &ranges {
                    out.insert(IngressRule {
                        group_id: group.clone(),
                        protocol: protocol.to_string(),
                        from_port: *from,
                        to_port: *to,
                        peer: peer.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulePlan {
    pub authorize: Vec<IngressRule>,
    /// (group id, rule id): rules only we need.
    pub revoke: Vec<(String, String)>,
    /// Rule ids other bindings still need: our owner tag goes, the rule stays.
    pub release: Vec<String>,
}

impl RulePlan {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.authorize.is_empty() && self.revoke.is_empty() && self.release.is_empty()
    }
}

/// Authorises missing rules and revokes owned rules no longer wanted. Only rules carrying
/// our ownership tag are ever observed, so untagged rules are never touched.
pub fn plan_rules(desired: &BTreeSet<IngressRule>, owned: &[OwnedRule]) -> RulePlan {
    let have: BTreeSet<&IngressRule> = owned.iter().map(|o| &o.rule).collect();
    let mut seen = BTreeSet::new();
    // Keep one copy of each wanted rule; duplicates of ours are let go too.
    let (release, revoke): (Vec<&OwnedRule>, Vec<&OwnedRule>) = owned
        .iter()
        .filter(|o| !desired.contains(&o.rule) || !seen.insert(&o.rule))
        .partition(|o| o.shared);
    RulePlan {
        authorize: desired
            .iter()
            .filter(|r| !have.contains(r))
            .cloned()
            .collect(),
        revoke: revoke
            .into_iter()
            .map(|o| (o.rule.group_id.clone(), o.rule_id.clone()))
            .collect(),
        release: release.into_iter().map(|o| o.rule_id.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::target_group_binding::{
        IpBlock, NetworkingIngressRule, NetworkingPeer, NetworkingPort, SecurityGroup,
    };
    use proptest::prelude::*;

    fn t(id: &str, port: i32) -> Target {
        Target {
            id: id.into(),
            port,
        }
    }

    #[test]
    fn registers_missing_and_deregisters_extra_but_leaves_draining_alone() {
        let desired: BTreeSet<Target> = [t("a", 1), t("b", 1), t("d", 1)].into();
        let observed: Observed = [
            (t("a", 1), TargetState::Healthy),
            (t("c", 1), TargetState::Unhealthy),
            (t("d", 1), TargetState::Draining),
            (t("e", 1), TargetState::Draining),
        ]
        .into();
        let p = plan_targets(&desired, &observed);
        assert_eq!(p.register, vec![vec![t("b", 1)]]);
        assert_eq!(p.deregister, vec![vec![t("c", 1)]]);
    }

    #[test]
    fn batches_hold_at_most_200() {
        let desired: BTreeSet<Target> = (0..450)
            .map(|i| t(&format!("10.0.{}.{}", i / 256, i % 256), 80))
            .collect();
        let p = plan_targets(&desired, &Observed::new());
        assert_eq!(
            p.register.iter().map(Vec::len).collect::<Vec<_>>(),
            [200, 200, 50]
        );
    }

    proptest! {
        #[test]
        fn applying_a_plan_converges(
            desired in proptest::collection::btree_set((0u8..40, 1i32..4), 0..60),
            observed in proptest::collection::btree_map((0u8..40, 1i32..4), 0u8..3, 0..60),
        ) {
            let desired: BTreeSet<Target> = desired.into_iter().map(|(i, p)| t(&i.to_string(), p)).collect();
            let mut observed: Observed = observed.into_iter().map(|((i, p), s)| (t(&i.to_string(), p), match s {
                0 => TargetState::Healthy, 1 => TargetState::Draining, _ => TargetState::Initial })).collect();
            let plan = plan_targets(&desired, &observed);
            prop_assert!(plan.register.iter().chain(&plan.deregister).all(|b| b.len() <= MAX_BATCH && !b.is_empty()));
            for b in &plan.register { for x in b { observed.insert(x.clone(), TargetState::Initial); } }
            for b in &plan.deregister { for x in b { observed.insert(x.clone(), TargetState::Draining); } }
            prop_assert!(plan_targets(&desired, &observed).is_empty());
            // Every desired target is registered or draining.
            prop_assert!(desired.iter().all(|d| observed.contains_key(d)));
        }
    }

    fn tg(tt: &str, vpc: &str) -> TargetGroupInfo {
        TargetGroupInfo {
            arn: "arn:tg".into(),
            vpc_id: Some(vpc.into()),
            target_type: tt.into(),
            ip_address_type: None,
        }
    }

    #[test]
    fn target_group_validation() {
        assert_eq!(
            validate_target_group(&tg("ip", "vpc-1"), None, None, Some("vpc-1")),
            Ok(TargetType::Ip)
        );
        assert!(matches!(
            validate_target_group(&tg("ip", "vpc-2"), None, None, Some("vpc-1")),
            Err(TargetGroupError::ForeignVpc { .. })
        ));
        // The binding's own vpcID wins over the cluster's.
        assert!(
            validate_target_group(&tg("ip", "vpc-2"), None, Some("vpc-2"), Some("vpc-1")).is_ok()
        );
        assert!(matches!(
            validate_target_group(&tg("instance", "vpc-1"), Some(TargetType::Ip), None, None),
            Err(TargetGroupError::TargetTypeMismatch { .. })
        ));
        assert!(matches!(
            validate_target_group(&tg("lambda", "vpc-1"), None, None, None),
            Err(TargetGroupError::UnsupportedTargetType { .. })
        ));
    }

    fn networking(ports: Vec<NetworkingPort>) -> TargetGroupBindingNetworking {
        TargetGroupBindingNetworking {
            ingress: vec![NetworkingIngressRule {
                from: vec![
                    NetworkingPeer {
                        ip_block: None,
                        security_group: Some(SecurityGroup {
                            group_id: "sg-lb".into(),
                        }),
                    },
                    NetworkingPeer {
                        ip_block: Some(IpBlock {
                            cidr: "10.0.0.0/8".into(),
                        }),
                        security_group: None,
                    },
                ],
                ports,
            }],
        }
    }

    #[test]
    fn rules_cover_every_peer_port_and_target_group() {
        let groups: BTreeSet<String> = ["sg-n1".to_string(), "sg-n2".to_string()].into();
        let net = networking(vec![
            NetworkingPort {
                protocol: None,
                port: Some(IntOrString::Int(8080)),
            },
            NetworkingPort {
                protocol: Some(NetworkingProtocol::Udp),
                port: None,
            },
        ]);
        let rules = desired_rules(Some(&net), TargetType::Instance, None, None, &groups).unwrap();
        assert_eq!(rules.len(), 2 * 2 * 2);
        assert!(rules.contains(&IngressRule {
            group_id: "sg-n1".into(),
            protocol: "udp".into(),
            from_port: 0,
            to_port: 65535,
            peer: Peer::Cidr("10.0.0.0/8".into())
        }));
    }

    #[test]
    fn bad_ports_are_rejected_and_named_ports_resolve_for_ip() {
        let groups: BTreeSet<String> = ["sg-n1".to_string()].into();
        for bad in [
            IntOrString::Int(0),
            IntOrString::Int(70000),
            IntOrString::String("80".into()),
        ] {
            let net = networking(vec![NetworkingPort {
                protocol: None,
                port: Some(bad),
            }]);
            assert!(desired_rules(Some(&net), TargetType::Ip, None, None, &groups).is_err());
        }
        let named = networking(vec![NetworkingPort {
            protocol: None,
            port: Some(IntOrString::String("web".into())),
        }]);
        assert!(
            desired_rules(
                Some(&named),
                TargetType::Instance,
                Some("web"),
                Some(8080),
                &groups
            )
            .is_err()
        );
        let rules = desired_rules(
            Some(&named),
            TargetType::Ip,
            Some("web"),
            Some(8080),
            &groups,
        )
        .unwrap();
        assert!(
            rules
                .iter()
                .all(|r| r.from_port == 8080 && r.to_port == 8080)
        );
    }

    #[test]
    fn rule_plan_converges_and_only_revokes_owned_rules() {
        let groups: BTreeSet<String> = ["sg-n1".to_string()].into();
        let net = networking(vec![NetworkingPort {
            protocol: None,
            port: Some(IntOrString::Int(80)),
        }]);
        let desired = desired_rules(Some(&net), TargetType::Ip, None, None, &groups).unwrap();
        let stale = IngressRule {
            group_id: "sg-n1".into(),
            protocol: "tcp".into(),
            from_port: 1,
            to_port: 1,
            peer: Peer::Cidr("1.1.1.1/32".into()),
        };
        let owned = vec![
            OwnedRule {
                rule_id: "sgr-1".into(),
                rule: stale.clone(),
                shared: false,
            },
            OwnedRule {
                rule_id: "sgr-shared".into(),
                rule: IngressRule {
                    from_port: 2,
                    to_port: 2,
                    ..stale
                },
                shared: true,
            },
        ];
        let p = plan_rules(&desired, &owned);
        assert_eq!(p.authorize.len(), 2);
        assert_eq!(p.revoke, vec![("sg-n1".to_string(), "sgr-1".to_string())]);
        // A rule another binding needs as well is let go of, never revoked.
        assert_eq!(p.release, vec!["sgr-shared".to_string()]);
        let after: Vec<OwnedRule> = p
            .authorize
            .iter()
            .enumerate()
            .map(|(i, r)| OwnedRule {
                rule_id: format!("sgr-{i}"),
                rule: r.clone(),
                shared: false,
            })
            .collect();
        assert!(plan_rules(&desired, &after).is_empty());
        // Deletion: nothing desired revokes everything owned.
        assert_eq!(plan_rules(&BTreeSet::new(), &after).revoke.len(), 2);
    }
}
