//! Tag keys on the AWS resources causeway creates: the peer's (aws-load-balancer-controller)
//! names, so ownership reads the same to both, plus causeway's own owner tags.

/// The cluster that owns a resource.
pub const CLUSTER: &str = "elbv2.k8s.aws/cluster";
/// What a cluster-wide resource is (`backend-sg`: the peer's shared backend security group).
pub const RESOURCE_TYPE_KEY: &str = "elbv2.k8s.aws/resource";
/// The IngressGroup (group name, or `namespace/name`) that owns an ALB resource.
pub const STACK: &str = "ingress.k8s.aws/stack";
/// What the resource is within its stack (`LoadBalancer`, `ManagedLBSecurityGroup`, ...).
pub const RESOURCE: &str = "ingress.k8s.aws/resource";
/// The Service (`namespace/name`) that owns an NLB resource.
pub const SERVICE_STACK: &str = "service.k8s.aws/stack";
/// What an NLB resource is within its Service's stack.
pub const SERVICE_RESOURCE: &str = "service.k8s.aws/resource";
/// The Gateway (`namespace/name`) that owns an ALB resource (the peer's ALB Gateway prefix).
pub const ALB_GATEWAY_STACK: &str = "gateway.k8s.aws.alb/stack";
/// What an ALB Gateway resource is within its Gateway's stack.
pub const ALB_GATEWAY_RESOURCE: &str = "gateway.k8s.aws.alb/resource";

/// What a stack of load balancer resources comes from; it names the stack and resource tag
/// keys, as the peer writes them.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StackKind {
    /// An IngressGroup (or an Ingress that is a group of one).
    #[default]
    Ingress,
    /// A Service of type LoadBalancer.
    Service,
    /// A Gateway of an ALB GatewayClass.
    #[serde(rename = "alb-gateway")]
    AlbGateway,
}

impl StackKind {
    pub fn stack_key(self) -> &'static str {
        match self {
            StackKind::Ingress => STACK,
            StackKind::Service => SERVICE_STACK,
            StackKind::AlbGateway => ALB_GATEWAY_STACK,
        }
    }
    pub fn resource_key(self) -> &'static str {
        match self {
            StackKind::Ingress => RESOURCE,
            StackKind::Service => SERVICE_RESOURCE,
            StackKind::AlbGateway => ALB_GATEWAY_RESOURCE,
        }
    }
    /// Every kind, for code that asks which stack a resource belongs to.
    pub const ALL: [StackKind; 3] = [
        StackKind::Ingress,
        StackKind::Service,
        StackKind::AlbGateway,
    ];

    pub fn is_ingress(&self) -> bool {
        *self == StackKind::Ingress
    }
}

/// The prefix of a TargetGroupBinding's own owner key on a security group rule:
/// `causeway.dev/tgb/<namespace>/<name>`. A rule several bindings need (the same port from
/// the same backend group) carries one key per binding and is revoked with the last one.
pub const RULE_OWNER_PREFIX: &str = "causeway.dev/tgb/";

/// The owner key of binding `owner` (`namespace/name`) on the rules it needs; hashed when
/// the name would not fit a tag key (128 characters).
pub fn rule_owner_key(owner: &str) -> String {
    let key = format!("{RULE_OWNER_PREFIX}{owner}");
    if key.len() <= 128 {
        return key;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{RULE_OWNER_PREFIX}{h:016x}")
}

/// The TargetGroupBinding (`namespace/name`) that owns a security group rule, as earlier
/// versions wrote it (one owner per rule); still read, never written.
pub const TARGET_GROUP_BINDING: &str = "causeway.dev/targetgroupbinding";

/// The Kubernetes cloud-provider tag on subnets and security groups shared with a cluster.
pub fn kubernetes_cluster(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}
