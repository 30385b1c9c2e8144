//! TargetGroupBinding: keeps the targets registered in an ELBv2 target group equal to the
//! ready endpoints (ip) or nodes (instance) of a Service, adds the binding's security
//! group rules, and drives pod readiness gates through a mutating webhook.
//!
//! - [`desired`]: Service + EndpointSlices + Nodes → targets (pure)
//! - [`plan`]: desired vs DescribeTargetHealth → batched register/deregister; rules (pure)
//! - [`status`]: conditions and counts (pure)
//! - [`aws`]: the ELBv2/EC2 adapter
//! - [`watch`]: pruned caches and the index by Service
//! - [`controller`]: the reconciler (leader only)
//! - [`webhook`]: the readiness-gate webhook (every replica)

pub mod aws;
pub mod controller;
pub mod desired;
pub mod plan;
pub mod settings;
pub mod status;
pub mod watch;
pub mod webhook;

/// Pods get one readiness gate per binding whose Service selects them.
pub const READINESS_GATE_PREFIX: &str = "target-health.elbv2.k8s.aws/";

/// Namespaces labelled with this (value `enabled`) get readiness gates injected.
pub const INJECT_LABEL: &str = "elbv2.k8s.aws/pod-readiness-gate-inject";

/// The readiness-gate condition type for a binding.
pub fn readiness_gate(binding: &str) -> String {
    format!("{READINESS_GATE_PREFIX}{binding}")
}

pub use controller::run;
