//! Tag keys on the AWS resources causeway creates: the peer's (aws-load-balancer-controller)
//! names, so ownership reads the same to both, plus causeway's own owner tags.

/// The cluster that owns a resource.
pub const CLUSTER: &str = "elbv2.k8s.aws/cluster";
/// The IngressGroup (group name, or `namespace/name`) that owns an ALB resource.
pub const STACK: &str = "ingress.k8s.aws/stack";
/// What the resource is within its stack (`LoadBalancer`, `ManagedLBSecurityGroup`, ...).
pub const RESOURCE: &str = "ingress.k8s.aws/resource";
/// The TargetGroupBinding (`namespace/name`) that owns a security group rule.
pub const TARGET_GROUP_BINDING: &str = "causeway.dev/targetgroupbinding";

/// The Kubernetes cloud-provider tag on subnets and security groups shared with a cluster.
pub fn kubernetes_cluster(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}
