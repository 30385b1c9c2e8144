//! Pod IAM. The controller side validates IamRoleBindings; the node agent
//! (`causeway agent`, in [`agent`]) serves each pod its role's credentials through the
//! instance-metadata endpoint.

pub mod agent;
pub(crate) mod binding_status;
pub mod pod_identity;
pub mod role;
