//! Gateway API on ALBs: a Gateway of an ALB GatewayClass becomes one ALB stack, built on the
//! ALB model, planner and applier that Ingress groups use.
//!
//! - [`attach`] (pure): listeners validated, routes attached through `parentRefs` and
//!   `allowedRoutes`, hostnames intersected.
//! - [`http`] (pure): HTTPRoute rules as ALB rule conditions, actions and transforms, ordered
//!   by the spec's precedence; backends resolved (ReferenceGrant, Services, ports).
//! - [`build`] (pure): the Gateway's [`crate::alb::model::GroupModel`] and the status each
//!   Gateway, listener and route gets.
//!
//! Names and tags are aws-load-balancer-controller's (`gateway.k8s.aws/alb`,
//! `gateway.k8s.aws.alb/stack`), so its GatewayClasses and Gateways work unchanged. Unlike
//! it, a rule that cannot be served (an unsupported filter, a bad backend) is refused alone,
//! on its route's status; the rest of the route and the Gateway keep serving.

pub mod attach;
pub mod build;
pub(crate) mod controller;
pub mod convert;
pub mod grpc;
pub mod http;
mod plan;
mod reconcile;
mod status;

pub use controller::run;
pub use plan::plan_report;

use crate::alb::AlbSettings;
use crate::alb::model::Scheme;

/// How the Gateway reconciler behaves.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// The GatewayClass `controllerName`s served; the first is written into route status.
    pub controller_names: Vec<String>,
    /// The scheme of a Gateway whose LoadBalancerConfiguration does not say.
    pub scheme: Scheme,
    /// What a Gateway's ALB shares with the Ingress reconciler: VPC, default and
    /// external-managed tags, default target type, resync, discovery TTL, and the controller
    /// name recorded on its stacks.
    pub shared: AlbSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            controller_names: vec![ALB_CONTROLLER.into()],
            scheme: Scheme::Internal,
            shared: AlbSettings::default(),
        }
    }
}

/// The Gateway API group.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// The GatewayClass controller name of ALB Gateways (the peer's).
pub const ALB_CONTROLLER: &str = "gateway.k8s.aws/alb";
/// The finalizer on Gateways whose ALB causeway manages (the peer's).
pub const ALB_FINALIZER: &str = "gateway.k8s.aws/alb";
pub const HTTP_ROUTE: &str = "HTTPRoute";
pub const GRPC_ROUTE: &str = "GRPCRoute";

/// The key a route is remembered by: `<kind>:<namespace>/<name>`.
pub(crate) fn route_key(kind: &str, key: &str) -> String {
    format!("{kind}:{key}")
}

/// Condition reasons, as the Gateway API spec names them.
pub mod reason {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const PENDING: &str = "Pending";
    pub const INVALID: &str = "Invalid";
    pub const INVALID_PARAMETERS: &str = "InvalidParameters";
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const PORT_UNAVAILABLE: &str = "PortUnavailable";
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    pub const INVALID_KIND: &str = "InvalidKind";
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
}

/// Condition types.
pub mod condition {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const CONFLICTED: &str = "Conflicted";
    /// Some rules of a route are refused, the others served.
    pub const PARTIALLY_INVALID: &str = "PartiallyInvalid";
}
