//! aws-load-balancer-controller's Gateway API configuration kinds (`gateway.k8s.aws/v1`, all
//! namespaced): what a GatewayClass, Gateway, Service or route hands the controller through a
//! `parametersRef` or a `targetReference`, beyond what Gateway API itself can say.
//!
//! - [`LoadBalancerConfiguration`]: the load balancer and its listeners, for a Gateway or a
//!   GatewayClass.
//! - [`TargetGroupConfiguration`]: the target groups made for a Service (or, with no target
//!   reference, defaults a LoadBalancerConfiguration points to).
//! - [`ListenerRuleConfiguration`]: listener rule actions and conditions Gateway API routes have
//!   no field for.
//!
//! The types are LBC's field for field: JSON names, optionality (a Go pointer is an `Option`, so
//! an explicit empty list or map survives a round trip), enums, schema defaults and CEL rules.
//! Defaults live only in the schema, where the apiserver applies them on write; reading a
//! manifest that leaves a field out gives `None`, as in LBC's Go types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod listener_rule;
pub mod load_balancer;
pub mod target_group;

pub use listener_rule::{
    ListenerRuleConfiguration, ListenerRuleConfigurationSpec, ListenerRuleConfigurationStatus,
};
pub use load_balancer::{
    LoadBalancerConfiguration, LoadBalancerConfigurationSpec, LoadBalancerConfigurationStatus,
};
pub use target_group::{
    TargetGroupConfiguration, TargetGroupConfigurationSpec, TargetGroupConfigurationStatus,
};

/// A load balancer, listener or target group attribute, as ELBv2 names it. LBC declares three
/// identical types for the three places; their schema is the same, so there is one here.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

/// Tags on the AWS resources made from a configuration, as a map.
pub type Tags = std::collections::BTreeMap<String, String>;
