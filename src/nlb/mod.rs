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

impl Default for NlbSettings {
    fn default() -> Self {
        NlbSettings {
            load_balancer_class: annotations::DEFAULT_CLASS.into(),
            default_target_type: TargetType::Instance,
            shared: AlbSettings::default(),
        }
    }
}
