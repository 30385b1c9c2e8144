//! Pure: a binding's status from the outcome of one reconcile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::crd::target_group_binding::TargetGroupBindingStatus;
use crate::k8s::conditions::{
    Clock, condition_type, remove_condition, set_condition, set_observed_generation,
};

/// Reasons on TargetGroupBinding conditions.
pub mod reason {
    pub const RECONCILED: &str = crate::k8s::conditions::reason::RECONCILED;
    pub const TARGET_GROUP_NOT_FOUND: &str = "TargetGroupNotFound";
    pub const FOREIGN_VPC: &str = "TargetGroupInForeignVpc";
    pub const TARGET_TYPE_MISMATCH: &str = "TargetTypeMismatch";
    pub const UNSUPPORTED_TARGET_TYPE: &str = "UnsupportedTargetType";
    pub const SERVICE_NOT_FOUND: &str = "ServiceNotFound";
    pub const PORT_NOT_FOUND: &str = "ServicePortNotFound";
    pub const NO_NODE_PORT: &str = "NoNodePort";
    pub const INVALID_NODE_SELECTOR: &str = "InvalidNodeSelector";
    pub const INVALID_NETWORKING: &str = "InvalidNetworking";
    pub const NODE_WITHOUT_PROVIDER_ID: &str = "NodeWithoutProviderID";
}

/// How the reconcile ended, as far as status is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Targets match; counts from the target group after applying the plan.
    Synced { registered: i32, healthy: i32 },
    /// The spec or the cluster is wrong; `reason` is one of [`reason`].
    Invalid {
        reason: &'static str,
        message: String,
    },
}

/// Returns the new status and whether it differs from `current`.
pub fn desired_status(
    current: Option<&TargetGroupBindingStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    nodes_without_provider_id: &[String],
    clock: &dyn Clock,
) -> (TargetGroupBindingStatus, bool) {
    let mut status = current.cloned().unwrap_or_default();
    let conds: &mut Vec<Condition> = &mut status.conditions;
    let mut changed = match outcome {
        Outcome::Synced { .. } => set_condition(
            conds,
            condition_type::READY,
            true,
            reason::RECONCILED,
            "targets match the Service's endpoints",
            generation,
            clock,
        ),
        Outcome::Invalid { reason, message } => set_condition(
            conds,
            condition_type::READY,
            false,
            reason,
            message,
            generation,
            clock,
        ),
    };
    changed |= if nodes_without_provider_id.is_empty() {
        remove_condition(conds, condition_type::DEGRADED)
    } else {
        let mut names = nodes_without_provider_id.to_vec();
        names.sort();
        set_condition(
            conds,
            condition_type::DEGRADED,
            true,
            reason::NODE_WITHOUT_PROVIDER_ID,
            &format!(
                "nodes without an aws:/// providerID are not registered: {}",
                names.join(", ")
            ),
            generation,
            clock,
        )
    };
    if let Outcome::Synced {
        registered,
        healthy,
    } = outcome
    {
        if status.registered_targets != Some(*registered) {
            status.registered_targets = Some(*registered);
            changed = true;
        }
        if status.healthy_targets != Some(*healthy) {
            status.healthy_targets = Some(*healthy);
            changed = true;
        }
    }
    changed |= set_observed_generation(&mut status.observed_generation, generation);
    (status, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::conditions::FixedClock;
    use k8s_openapi::jiff::Timestamp;

    fn clock(s: i64) -> FixedClock {
        FixedClock(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn synced_is_ready_with_counts_and_repeats_change_nothing() {
        let o = Outcome::Synced {
            registered: 3,
            healthy: 2,
        };
        let (s, changed) = desired_status(None, Some(2), &o, &[], &clock(1));
        assert!(changed);
        assert_eq!(
            (s.registered_targets, s.healthy_targets),
            (Some(3), Some(2))
        );
        assert_eq!(s.conditions[0].status, "True");
        let (s2, changed) = desired_status(Some(&s), Some(2), &o, &[], &clock(5));
        assert!(!changed);
        assert_eq!(s, s2);
    }

    #[test]
    fn invalid_keeps_counts_and_says_why() {
        let (s, _) = desired_status(
            None,
            Some(1),
            &Outcome::Synced {
                registered: 1,
                healthy: 1,
            },
            &[],
            &clock(1),
        );
        let (s2, changed) = desired_status(
            Some(&s),
            Some(2),
            &Outcome::Invalid {
                reason: reason::SERVICE_NOT_FOUND,
                message: "Service web does not exist".into(),
            },
            &["n2".into()],
            &clock(2),
        );
        assert!(changed);
        assert_eq!(s2.registered_targets, Some(1));
        let ready = &s2.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ServiceNotFound")
        );
        assert_eq!(s2.conditions[1].reason, reason::NODE_WITHOUT_PROVIDER_ID);
        assert!(s2.conditions[1].message.contains("n2"));
    }
}
