//! Integration tests on the embedded environment: real etcd, kube-apiserver,
//! controller-manager, scheduler and kwok, plus moto. One test binary with
//! modules keeps link time down; each test gets its own namespace and AWS names.

mod adopt;
mod adopt_nlb;
mod agent;
mod alb;
mod alb_features;
mod chart;
mod common;
mod controller;
mod corpus;
mod crds;
mod dns;
mod faults;
mod gateway;
mod nlb;
mod pod_identity;
mod scale;
mod targets;
mod testenv;
