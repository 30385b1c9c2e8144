//! One target group: a member's Service port, resolved against the Service, with the
//! settings its annotations give.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::Environment;
use crate::alb::annotations::{Annotations, GRPC, Problem, reason, target_group_settings};
use crate::alb::model::*;
use crate::alb::naming;

/// The `ingress.k8s.aws/resource` tag of a target group: `namespace/ingress-service:port`.
pub(super) fn target_group_key(
    ns: &str,
    ing: &Ingress,
    service: &str,
    port: &ServicePortRef,
) -> String {
    format!("{ns}/{}-{service}:{port}", ing.name_any())
}

/// The target type of a member's target groups: the IngressClassParams' (which wins over
/// any annotation, as a class field does) or, without one, the default an annotation may
/// override.
#[derive(Clone, Copy, Debug)]
pub(super) struct TargetTypes {
    pub(super) default: TargetType,
    pub(super) class: Option<TargetType>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn target_group(
    stack: &str,
    id: &str,
    ns: &str,
    ing: &Ingress,
    service: &str,
    port: &ServicePortRef,
    env: &Environment<'_>,
    target_types: TargetTypes,
) -> Result<TargetGroupModel, Problem> {
    let svc = env
        .services
        .get(&(ns.to_owned(), service.to_owned()))
        .ok_or_else(|| {
            Problem::new(
                reason::SERVICE_NOT_FOUND,
                format!("{id}: Service {ns}/{service} does not exist"),
            )
        })?;
    let sp = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| {
            ports.iter().find(|p| match port {
                ServicePortRef::Number(n) => p.port == *n,
                ServicePortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
            })
        })
        .ok_or_else(|| {
            Problem::new(
                reason::SERVICE_PORT_NOT_FOUND,
                format!("{id}: Service {ns}/{service} has no port {port}"),
            )
        })?;
    let empty = BTreeMap::new();
    let svc_anns = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    let mut settings = target_group_settings(
        &Annotations::alb(svc_anns),
        &Annotations::alb(ing.annotations()),
        target_types.class.unwrap_or(target_types.default),
    )?;
    if let Some(class) = target_types.class {
        settings.target_type = class;
    }
    let (tg_port, target_port) = match settings.target_type {
        TargetType::Instance => {
            let node_port = sp.node_port.ok_or_else(|| {
                Problem::new(
                    reason::SERVICE_PORT_NOT_FOUND,
                    format!("{id}: target-type instance needs a NodePort, and Service {ns}/{service} port {port} has none"),
                )
            })?;
            (node_port, ServicePortRef::Number(node_port))
        }
        TargetType::Ip => match &sp.target_port {
            Some(IntOrString::Int(n)) => (*n, ServicePortRef::Number(*n)),
            Some(IntOrString::String(name)) => (sp.port, ServicePortRef::Name(name.clone())),
            None => (sp.port, ServicePortRef::Number(sp.port)),
        },
    };
    // A named health check port is the Service's port of that name: its NodePort for
    // instance targets, its numeric targetPort for ip targets (as the peer resolves it).
    if settings.health_port != "traffic-port" && settings.health_port.parse::<u16>().is_err() {
        let name = settings.health_port.clone();
        let named = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some(&name)));
        let resolved = match (named, settings.target_type) {
            (None, _) => Err(format!("Service {ns}/{service} has no port named {name:?}")),
            (Some(p), TargetType::Instance) => p
                .node_port
                .ok_or_else(|| format!("Service {ns}/{service} port {name:?} has no NodePort")),
            (Some(p), TargetType::Ip) => match &p.target_port {
                Some(IntOrString::Int(n)) => Ok(*n),
                None => Ok(p.port),
                Some(IntOrString::String(_)) => Err(format!(
                    "Service {ns}/{service} port {name:?} has a named targetPort, which ip targets cannot be checked on"
                )),
            },
        };
        settings.health_port = resolved
            .map_err(|why| {
                Problem::new(
                    reason::SERVICE_PORT_NOT_FOUND,
                    format!("{id}: healthcheck-port {name:?}: {why}"),
                )
            })?
            .to_string();
    }
    // Instance targets only on the nodes with these labels; the Service's annotation wins
    // over the Ingress's, and ip targets ignore it (as the peer builds it).
    let node_labels = match settings.target_type {
        TargetType::Instance => {
            let on_service = Annotations::alb(svc_anns);
            match on_service.get("target-node-labels") {
                Some(_) => on_service.map("target-node-labels")?,
                None => Annotations::alb(ing.annotations()).map("target-node-labels")?,
            }
        }
        TargetType::Ip => BTreeMap::new(),
    };
    let key = target_group_key(ns, ing, service, port);
    let name = naming::target_group_name(
        env.cluster,
        stack,
        &key,
        &[
            settings.protocol.as_str(),
            &tg_port.to_string(),
            settings.target_type.as_str(),
            &settings.protocol_version,
        ],
    );
    let grpc = settings.protocol_version == GRPC;
    Ok(TargetGroupModel {
        key,
        name,
        protocol: settings.protocol,
        protocol_version: settings.protocol_version,
        port: tg_port,
        target_type: settings.target_type,
        health_check: HealthCheck {
            path: settings.health_path,
            port: settings.health_port,
            protocol: settings.health_protocol,
            interval_seconds: settings.interval,
            timeout_seconds: settings.timeout,
            healthy_threshold: settings.healthy,
            unhealthy_threshold: settings.unhealthy,
            grpc,
            success_codes: settings.success_codes,
        },
        attributes: settings.attributes,
        tags: Tags::new(),
        binding: BindingModel {
            namespace: ns.to_owned(),
            service: service.to_owned(),
            service_port: port.clone(),
            target_port,
            backend_security_group: String::new(),
            health_check_port: None,
            node_labels,
        },
    })
}
