//! The one environment every causeway integration test, benchmark and the demo
//! run on: real etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
//! kwok, plus a moto server seeded like an EKS account. Everything listens on
//! 127.0.0.1 on free ports, with one data directory per environment.
//!
//! Binaries are built from their Go modules (hack/cplane, hack/kwok) and moto is
//! installed into a virtualenv; all of it is cached outside the repository,
//! keyed by version and by a hash of the pinning files.

pub mod binaries;
pub mod certs;
pub mod env;
pub mod faults;
pub mod procs;
pub mod seed;
pub mod support;

pub use env::{EnvInfo, UpOptions};
pub use seed::Seed;

/// Kubernetes release the control plane is built from (current stable minor).
pub const K8S_VERSION: &str = "v1.37.2";
/// kwok release; v0.8.0's go directive (1.26.0) is accepted by the machine's Go.
pub const KWOK_VERSION: &str = "v0.8.0";
/// helm release the chart tests use; v3.22.0's go directive (1.26.0) is accepted here.
pub const HELM_VERSION: &str = "v3.22.0";
/// Gateway API release whose CRDs (experimental channel: every standard kind plus TCPRoute
/// and UDPRoute at v1alpha2) every environment installs; pinned by hack/gateway-api.
pub const GATEWAY_API_VERSION: &str = "v1.6.3";
/// moto release the AWS emulator runs; transitive Python deps are pinned in hack/moto/requirements.txt.
pub const MOTO_VERSION: &str = "5.2.5";

/// Static credentials every test, benchmark and the demo uses, so no SDK ever
/// falls back to a real credential source.
pub const TEST_ACCESS_KEY_ID: &str = "testing";
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";
pub const TEST_REGION: &str = "us-east-1";
pub const TEST_CLUSTER_NAME: &str = "causeway-test";
