//! Pod IAM. The controller side validates IamRoleBindings; the node agent
//! (serving credentials through the metadata endpoint) is the pod-IAM issue.

pub mod binding_status;
pub mod role;
