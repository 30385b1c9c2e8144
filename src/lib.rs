//! causeway: one operator connecting a Kubernetes cluster to AWS.
//!
//! Every controller follows the same shape: fetch Kubernetes inputs, build the
//! desired model (pure), observe AWS, plan (pure diff), apply, write status.

pub mod alb;
pub mod aws;
pub mod cli;
pub(crate) mod context;
pub mod controller;
pub mod crd;
pub mod dns;
#[cfg(any(test, feature = "testing"))]
pub mod fixtures;
pub mod gateway;
pub mod iam;
pub mod k8s;
pub mod nlb;
pub mod plan;
pub(crate) mod targets;
pub mod telemetry;

/// The one field manager used for every server-side apply we make.
pub const FIELD_MANAGER: &str = "causeway";

/// Version string printed by `causeway version` and exported as a metric label.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
