//! Pure: the LoadBalancerGroup status and each member Ingress's hostname, from the build
//! outcome and what AWS holds after apply. Conditions keep their transition time while their
//! status is unchanged, so an unchanged group produces an identical status (and no patch).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::builder::{BuildOutput, MemberOutcome};
use super::observed::Observed;
use crate::crd::LoadBalancerGroupStatus;
use crate::crd::load_balancer_group::{LoadBalancerStatus, MemberStatus, OwnedResource};
use crate::k8s::conditions::{Clock, condition_type, reason, set_condition};

pub mod group_reason {
    pub const MEMBERS_EXCLUDED: &str = "MembersExcluded";
    pub const ALL_MEMBERS_ACCEPTED: &str = "AllMembersAccepted";
    pub const TOO_MANY_RULES: &str = "TooManyRules";
    pub const ONE_ALB: &str = "FitsOneLoadBalancer";
    pub const NO_MEMBERS: &str = "NoValidMembers";
    pub const DEPENDENCY_VIOLATION: &str = "SecurityGroupInUse";
}

pub const SPLIT: &str = "Split";

/// How the last apply ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Converged,
    Failed {
        reason: &'static str,
        message: String,
    },
}

pub fn group_status(
    previous: Option<&LoadBalancerGroupStatus>,
    build: &BuildOutput,
    observed: &Observed,
    outcome: &ApplyOutcome,
    clock: &dyn Clock,
) -> LoadBalancerGroupStatus {
    let mut conditions: Vec<Condition> = previous.map(|p| p.conditions.clone()).unwrap_or_default();
    let excluded: Vec<&MemberOutcome> = build
        .members
        .iter()
        .filter(|m| m.problem.is_some())
        .collect();
    let served = build.members.iter().filter(|m| m.shard.is_some()).count();
    let load_balancers: Vec<LoadBalancerStatus> = build
        .model
        .load_balancers
        .iter()
        .map(|lb| {
            let o = observed.load_balancers.iter().find(|o| o.name == lb.name);
            LoadBalancerStatus {
                key: lb.key.clone(),
                name: lb.name.clone(),
                arn: o.map(|o| o.arn.clone()),
                dns_name: o.map(|o| o.dns_name.clone()),
                rules: lb.rule_count() as i32,
                members: lb.members.clone(),
            }
        })
        .collect();
    let all_exist = load_balancers.iter().all(|l| l.arn.is_some());

    let (ready, ready_reason, ready_message) = match outcome {
        ApplyOutcome::Failed { reason, message } => (false, *reason, message.clone()),
        ApplyOutcome::Converged if served == 0 && !excluded.is_empty() => (
            false,
            group_reason::NO_MEMBERS,
            "every member Ingress is excluded; see status.members".to_owned(),
        ),
        ApplyOutcome::Converged if !all_exist => (
            false,
            reason::PENDING,
            "waiting for the load balancer".to_owned(),
        ),
        ApplyOutcome::Converged => (
            true,
            reason::RECONCILED,
            format!(
                "{served} member(s) on {} load balancer(s)",
                load_balancers.len()
            ),
        ),
    };
    set_condition(
        &mut conditions,
        condition_type::READY,
        ready,
        ready_reason,
        &ready_message,
        None,
        clock,
    );
    if excluded.is_empty() {
        set_condition(
            &mut conditions,
            condition_type::DEGRADED,
            false,
            group_reason::ALL_MEMBERS_ACCEPTED,
            "",
            None,
            clock,
        );
    } else {
        let names: Vec<String> = excluded
            .iter()
            .map(|m| {
                let reason = m.problem.as_ref().map(|p| p.reason).unwrap_or_default();
                if m.serving_last_accepted {
                    format!(
                        "{} ({reason}; serving its last accepted configuration)",
                        m.id()
                    )
                } else {
                    format!("{} ({reason})", m.id())
                }
            })
            .collect();
        set_condition(
            &mut conditions,
            condition_type::DEGRADED,
            true,
            group_reason::MEMBERS_EXCLUDED,
            &format!("not accepted: {}", names.join(", ")),
            None,
            clock,
        );
    }
    if load_balancers.len() > 1 {
        set_condition(
            &mut conditions,
            SPLIT,
            true,
            group_reason::TOO_MANY_RULES,
            &format!(
                "{} rules do not fit one ALB (100 max); the group is split onto {} ALBs",
                build.model.rule_count(),
                load_balancers.len()
            ),
            None,
            clock,
        );
    } else {
        set_condition(
            &mut conditions,
            SPLIT,
            false,
            group_reason::ONE_ALB,
            "",
            None,
            clock,
        );
    }

    let mut target_groups: Vec<OwnedResource> = observed
        .target_groups
        .iter()
        .map(|t| OwnedResource {
            key: t
                .tags
                .get(build.model.kind.resource_key())
                .cloned()
                .unwrap_or_default(),
            name: t.name.clone(),
            id: t.arn.clone(),
        })
        .collect();
    target_groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut security_groups: Vec<OwnedResource> = observed
        .security_groups
        .iter()
        .map(|s| OwnedResource {
            key: s
                .tags
                .get(build.model.kind.resource_key())
                .cloned()
                .unwrap_or_default(),
            name: s.name.clone(),
            id: s.id.clone(),
        })
        .collect();
    security_groups.sort_by(|a, b| a.name.cmp(&b.name));
    // Load balancers still being deleted stay recorded so they are not forgotten.
    let mut all_lbs = load_balancers;
    for o in &observed.load_balancers {
        if !all_lbs.iter().any(|l| l.name == o.name) {
            all_lbs.push(LoadBalancerStatus {
                key: o
                    .tags
                    .get(build.model.kind.resource_key())
                    .cloned()
                    .unwrap_or_default(),
                name: o.name.clone(),
                arn: Some(o.arn.clone()),
                dns_name: Some(o.dns_name.clone()),
                rules: 0,
                members: Vec::new(),
            });
        }
    }

    LoadBalancerGroupStatus {
        observed_generation: None,
        conditions,
        load_balancer_count: build.model.load_balancers.len() as i32,
        load_balancers: all_lbs,
        target_groups,
        security_groups,
        members: build
            .members
            .iter()
            .map(|m| MemberStatus {
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                accepted: m.problem.is_none(),
                reason: m.problem.as_ref().map(|p| p.reason.to_owned()),
                message: m.problem.as_ref().map(|p| p.message.clone()),
                serving_last_accepted: m.serving_last_accepted,
                last_accepted: m.accepted_spec.as_ref().map(|s| s.json()),
            })
            .collect(),
        member_count: served as i32,
        rule_count: build.model.rule_count() as i32,
        // Recorded by ARN above once they exist; what a failed create left is not there.
        pending_creates: Default::default(),
        adopted: previous.and_then(|p| p.adopted.clone()),
        // Set by the reconciler, which knows whether the rules were given the secrets.
        client_secret_versions: previous
            .map(|p| p.client_secret_versions.clone())
            .unwrap_or_default(),
    }
}

/// The DNS name an accepted member should carry in `status.loadBalancer.ingress[].hostname`.
pub fn member_hostname(
    build: &BuildOutput,
    observed: &Observed,
    member: &MemberOutcome,
) -> Option<String> {
    let shard = member.shard?;
    let lb = build.model.load_balancers.get(shard)?;
    observed
        .load_balancers
        .iter()
        .find(|o| o.name == lb.name)
        .map(|o| o.dns_name.clone())
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alb::builder::tests_support::*;
    use crate::alb::plan::{plan, sim::Sim};
    use crate::k8s::conditions::FixedClock;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn status_is_stable_and_reports_hostnames() {
        let ing = ingress(
            "ns",
            "a",
            serde_json::json!({}),
            serde_json::json!([path_rule(None, "/", "Prefix", "web", 80)]),
        );
        let model = build_group("ns/a", std::slice::from_ref(&ing));
        let build = BuildOutput {
            model: model.clone(),
            members: vec![MemberOutcome {
                namespace: "ns".into(),
                name: "a".into(),
                shard: Some(0),
                problem: None,
                serving_last_accepted: false,
                accepted_spec: None,
            }],
            notes: vec![],
        };
        let mut sim = Sim::new(Observed::default());
        sim.apply(&plan(&model, &sim.state, "c1"));
        let clock = FixedClock(Timestamp::from_second(10).unwrap());
        let s1 = group_status(None, &build, &sim.state, &ApplyOutcome::Converged, &clock);
        assert!(crate::k8s::conditions::is_true(&s1.conditions, "Ready"));
        assert_eq!(s1.member_count, 1);
        assert_eq!(s1.rule_count, 1);
        assert!(s1.load_balancers[0].arn.is_some());
        let later = FixedClock(Timestamp::from_second(99).unwrap());
        let s2 = group_status(
            Some(&s1),
            &build,
            &sim.state,
            &ApplyOutcome::Converged,
            &later,
        );
        assert_eq!(s1, s2);
        assert_eq!(
            member_hostname(&build, &sim.state, &build.members[0]).as_deref(),
            Some(format!("{}.elb", model.load_balancers[0].name).as_str())
        );
    }
}
