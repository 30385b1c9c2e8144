//! Which Ingresses are ours and which group each joins. Pure.
//!
//! Ours: `spec.ingressClassName` names an IngressClass with one of our controller names, or
//! the legacy `kubernetes.io/ingress.class` annotation carries one of our class values, or
//! neither is set and the default IngressClass is ours. IngressClassParams referenced by the
//! class override annotations, and their namespaceSelector decides who may join.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;

use super::annotations::{Annotations, Problem, reason};
use crate::crd::IngressClassParams;
use crate::k8s::selector;

pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
pub const DEFAULT_CONTROLLER: &str = "causeway.dev/alb";
pub const LBC_CONTROLLER: &str = "ingress.k8s.aws/alb";

/// Which classes we claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassSettings {
    pub controller_names: Vec<String>,
    /// Values of the legacy annotation we accept.
    pub legacy_classes: Vec<String>,
}

impl ClassSettings {
    /// The controller name recorded on the stacks this instance manages (its first).
    pub fn owner(&self) -> &str {
        self.controller_names
            .first()
            .map(String::as_str)
            .unwrap_or(DEFAULT_CONTROLLER)
    }

    pub fn new(controller_name: &str, claim_lbc: bool) -> Self {
        let mut controller_names = vec![controller_name.to_owned()];
        let mut legacy_classes = vec!["causeway".to_owned()];
        if claim_lbc {
            controller_names.push(LBC_CONTROLLER.to_owned());
            legacy_classes.push("alb".to_owned());
        }
        ClassSettings {
            controller_names,
            legacy_classes,
        }
    }
}

impl Default for ClassSettings {
    fn default() -> Self {
        ClassSettings::new(DEFAULT_CONTROLLER, false)
    }
}

/// The group an Ingress belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    Explicit(String),
    Implicit { namespace: String, name: String },
}

impl GroupKey {
    /// The `ingress.k8s.aws/stack` tag value.
    pub fn stack(&self) -> String {
        match self {
            GroupKey::Explicit(n) => n.clone(),
            GroupKey::Implicit { namespace, name } => format!("{namespace}/{name}"),
        }
    }
    pub fn from_stack(stack: &str) -> Self {
        match stack.split_once('/') {
            Some((ns, n)) => GroupKey::Implicit {
                namespace: ns.to_owned(),
                name: n.to_owned(),
            },
            None => GroupKey::Explicit(stack.to_owned()),
        }
    }
}

/// An Ingress we own, with its class params resolved.
#[derive(Clone, Debug)]
pub struct Membership {
    pub group: GroupKey,
    pub order: i32,
    pub params: Option<IngressClassParams>,
    /// Set when the Ingress asked to join but may not.
    pub problem: Option<Problem>,
}

/// Whether `ingress` is ours, and if so its group. `None`: not ours.
pub fn membership(
    ingress: &Ingress,
    classes: &[IngressClass],
    params: &[IngressClassParams],
    namespace_labels: Option<&BTreeMap<String, String>>,
    settings: &ClassSettings,
) -> Option<Membership> {
    let spec_class = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let class = match spec_class {
        Some(name) => {
            let class = classes.iter().find(|c| c.name_any() == name)?;
            ours(class, settings).then_some(Some(class))?
        }
        None => match ingress.annotations().get(LEGACY_CLASS_ANNOTATION) {
            Some(v) => settings.legacy_classes.contains(v).then_some(None)?,
            None => {
                let default = classes.iter().find(|c| {
                    c.annotations()
                        .get(DEFAULT_CLASS_ANNOTATION)
                        .map(String::as_str)
                        == Some("true")
                })?;
                ours(default, settings).then_some(Some(default))?
            }
        },
    };

    let namespace = ingress.namespace().unwrap_or_default();
    let implicit = GroupKey::Implicit {
        namespace: namespace.clone(),
        name: ingress.name_any(),
    };
    let mut m = Membership {
        group: implicit,
        order: 0,
        params: None,
        problem: None,
    };

    if let Some(p) = class
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.parameters.as_ref())
        .filter(|p| p.kind == "IngressClassParams")
    {
        match params.iter().find(|x| x.name_any() == p.name) {
            Some(found) => m.params = Some(found.clone()),
            None => {
                m.problem = Some(Problem::new(
                    reason::PARAMS_NOT_FOUND,
                    format!(
                        "IngressClassParams {:?} of the IngressClass does not exist",
                        p.name
                    ),
                ));
                return Some(m);
            }
        }
    }

    let anns = ingress.annotations();
    let a = Annotations::alb(anns);
    let group_name = m
        .params
        .as_ref()
        .and_then(|p| p.spec.group.as_ref())
        .map(|g| g.name.clone())
        .or_else(|| a.string("group.name"));
    if let Some(name) = group_name {
        if !valid_group_name(&name) {
            m.problem = Some(Problem::new(
                reason::INVALID_ANNOTATION,
                format!(
                    "group name {name:?} must be lowercase alphanumerics, '-' and '.', at most 63 characters"
                ),
            ));
            return Some(m);
        }
        m.group = GroupKey::Explicit(name);
    }
    match a.int("group.order", -1000, 1000) {
        Ok(order) => m.order = order.unwrap_or(0),
        Err(mut p) => {
            p.reason = reason::INVALID_GROUP_ORDER;
            m.problem = Some(p);
            return Some(m);
        }
    }

    if let Some(selector) = m
        .params
        .as_ref()
        .and_then(|p| p.spec.namespace_selector.as_ref())
    {
        let empty = BTreeMap::new();
        let params_name = || m.params.as_ref().map(|p| p.name_any()).unwrap_or_default();
        // An invalid selector admits no namespace (fail closed), under the same reason.
        let problem = match selector::matches(selector, namespace_labels.unwrap_or(&empty)) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "namespace {namespace:?} does not match the namespaceSelector of IngressClassParams {:?}",
                params_name()
            )),
            Err(e) => Some(format!(
                "the namespaceSelector of IngressClassParams {:?} is invalid and admits no namespace: {e}",
                params_name()
            )),
        };
        if let Some(message) = problem {
            m.problem = Some(Problem::new(reason::NAMESPACE_NOT_ALLOWED, message));
        }
    }
    Some(m)
}

fn ours(class: &IngressClass, settings: &ClassSettings) -> bool {
    class
        .spec
        .as_ref()
        .and_then(|s| s.controller.as_deref())
        .is_some_and(|c| settings.controller_names.iter().any(|n| n == c))
}

fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(v: serde_json::Value) -> Ingress {
        serde_json::from_value(v).unwrap()
    }

    fn class(name: &str, controller: &str, params: Option<&str>) -> IngressClass {
        let mut v = json!({"metadata":{"name":name},"spec":{"controller":controller}});
        if let Some(p) = params {
            v["spec"]["parameters"] =
                json!({"apiGroup":"elbv2.k8s.aws","kind":"IngressClassParams","name":p});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ownership_by_class_legacy_annotation_and_default() {
        let s = ClassSettings::default();
        let classes = vec![
            class("cw", DEFAULT_CONTROLLER, None),
            class("other", "nginx", None),
        ];
        let ours = ingress(
            json!({"metadata":{"name":"a","namespace":"n"},"spec":{"ingressClassName":"cw"}}),
        );
        let m = membership(&ours, &classes, &[], None, &s).unwrap();
        assert_eq!(
            m.group,
            GroupKey::Implicit {
                namespace: "n".into(),
                name: "a".into()
            }
        );
        let theirs = ingress(
            json!({"metadata":{"name":"a","namespace":"n"},"spec":{"ingressClassName":"other"}}),
        );
        assert!(membership(&theirs, &classes, &[], None, &s).is_none());
        let legacy = ingress(
            json!({"metadata":{"name":"a","namespace":"n","annotations":{"kubernetes.io/ingress.class":"alb"}}}),
        );
        assert!(membership(&legacy, &classes, &[], None, &s).is_none());
        assert!(
            membership(
                &legacy,
                &classes,
                &[],
                None,
                &ClassSettings::new(DEFAULT_CONTROLLER, true)
            )
            .is_some()
        );
        let lbc = vec![class("alb", LBC_CONTROLLER, None)];
        let lbc_ing = ingress(
            json!({"metadata":{"name":"a","namespace":"n"},"spec":{"ingressClassName":"alb"}}),
        );
        assert!(membership(&lbc_ing, &lbc, &[], None, &s).is_none());
        assert!(
            membership(
                &lbc_ing,
                &lbc,
                &[],
                None,
                &ClassSettings::new(DEFAULT_CONTROLLER, true)
            )
            .is_some()
        );
    }

    #[test]
    fn group_order_out_of_range_is_a_problem() {
        let classes = vec![class("cw", DEFAULT_CONTROLLER, None)];
        let i = ingress(
            json!({"metadata":{"name":"a","namespace":"n","annotations":{
            "alb.ingress.kubernetes.io/group.name":"shared","alb.ingress.kubernetes.io/group.order":"1001"}},
            "spec":{"ingressClassName":"cw"}}),
        );
        let m = membership(&i, &classes, &[], None, &ClassSettings::default()).unwrap();
        assert_eq!(m.problem.unwrap().reason, reason::INVALID_GROUP_ORDER);
    }

    #[test]
    fn params_override_the_group_and_enforce_the_namespace_selector() {
        let classes = vec![class("cw", DEFAULT_CONTROLLER, Some("p"))];
        let params: IngressClassParams = serde_json::from_value(json!({
            "apiVersion":"elbv2.k8s.aws/v1beta1","kind":"IngressClassParams","metadata":{"name":"p"},
            "spec":{"group":{"name":"forced"},"namespaceSelector":{"matchLabels":{"team":"a"}}}})).unwrap();
        let i = ingress(
            json!({"metadata":{"name":"a","namespace":"n","annotations":{
            "alb.ingress.kubernetes.io/group.name":"mine"}},"spec":{"ingressClassName":"cw"}}),
        );
        let ok_labels: BTreeMap<_, _> = [("team".to_string(), "a".to_string())].into();
        let m = membership(
            &i,
            &classes,
            std::slice::from_ref(&params),
            Some(&ok_labels),
            &ClassSettings::default(),
        )
        .unwrap();
        assert_eq!(m.group, GroupKey::Explicit("forced".into()));
        assert!(m.problem.is_none());
        let m = membership(
            &i,
            &classes,
            &[params],
            Some(&BTreeMap::new()),
            &ClassSettings::default(),
        )
        .unwrap();
        assert_eq!(m.problem.unwrap().reason, reason::NAMESPACE_NOT_ALLOWED);
        let m = membership(&i, &classes, &[], None, &ClassSettings::default()).unwrap();
        assert_eq!(m.problem.unwrap().reason, reason::PARAMS_NOT_FOUND);
    }

    #[test]
    fn an_invalid_namespace_selector_admits_no_namespace() {
        let classes = vec![class("cw", DEFAULT_CONTROLLER, Some("p"))];
        let params: IngressClassParams = serde_json::from_value(json!({
            "apiVersion":"elbv2.k8s.aws/v1beta1","kind":"IngressClassParams","metadata":{"name":"p"},
            "spec":{"namespaceSelector":{"matchExpressions":[
                {"key":"team","operator":"Equals","values":["a"]}]}}}))
        .unwrap();
        let i = ingress(
            json!({"metadata":{"name":"a","namespace":"n"},"spec":{"ingressClassName":"cw"}}),
        );
        let labels: BTreeMap<_, _> = [("team".to_string(), "a".to_string())].into();
        let m = membership(
            &i,
            &classes,
            &[params],
            Some(&labels),
            &ClassSettings::default(),
        )
        .unwrap();
        let problem = m.problem.unwrap();
        assert_eq!(problem.reason, reason::NAMESPACE_NOT_ALLOWED);
        assert!(problem.message.contains("invalid"), "{}", problem.message);
    }
}
