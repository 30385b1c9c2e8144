//! The custom resources causeway serves, and their CustomResourceDefinitions.
//!
//! `TargetGroupBinding`, `IngressClassParams` and `DNSEndpoint` keep the group, names and field
//! names of aws-load-balancer-controller and external-dns, so manifests written for those
//! projects apply unchanged. `IamRoleBinding` is ours: it replaces kube2iam's pod annotations.
//!
//! [`gateway_config`] holds aws-load-balancer-controller's Gateway API configuration kinds,
//! `LoadBalancerConfiguration`, `TargetGroupConfiguration` and `ListenerRuleConfiguration`
//! (`gateway.k8s.aws/v1`). They too keep LBC's group and field names, so its manifests apply
//! unchanged.
//!
//! `causeway crds` prints [`render_all`]; `crds/` holds one file per CRD, and a test fails when
//! those files drift from the types here.
// kube's derive takes one `printcolumn = ...` per column inside #[kube(...)],
// which clippy reports as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

// A role ARN with an optional path. A macro rather than a const so that patterns can embed it
// with `concat!`; it must stay above the `mod` lines to be visible inside them.
macro_rules! iam_role_arn {
    () => {
        r"arn:aws[a-z-]*:iam::[0-9]{12}:role/(?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}"
    };
}

pub mod dns_endpoint;
pub mod gateway_config;
pub mod iam_role_binding;
pub mod ingress_class_params;
pub mod load_balancer_group;
pub mod target_group_binding;

pub use dns_endpoint::{DNSEndpoint, DNSEndpointSpec, DNSEndpointStatus};
pub use gateway_config::{
    ListenerRuleConfiguration, ListenerRuleConfigurationSpec, ListenerRuleConfigurationStatus,
    LoadBalancerConfiguration, LoadBalancerConfigurationSpec, LoadBalancerConfigurationStatus,
    TargetGroupConfiguration, TargetGroupConfigurationSpec, TargetGroupConfigurationStatus,
};
pub use iam_role_binding::{IamRoleBinding, IamRoleBindingSpec, IamRoleBindingStatus};
pub use ingress_class_params::{
    IngressClassParams, IngressClassParamsSpec, IngressClassParamsStatus,
};
pub use load_balancer_group::{LoadBalancerGroup, LoadBalancerGroupSpec, LoadBalancerGroupStatus};
pub use target_group_binding::{
    TargetGroupBinding, TargetGroupBindingSpec, TargetGroupBindingStatus,
};

/// CEL rule for an int-or-string port: a number in range, or a port name.
///
/// A `pattern` or `minimum` cannot be attached to an int-or-string schema in a way that covers
/// both forms, so this is CEL. Port names are DNS labels, hence the 63-character bound.
pub(crate) const INT_OR_STRING_PORT_RULE: &str =
    "type(self) == int ? (self >= 1 && self <= 65535) : (self.size() >= 1 && self.size() <= 63)";

/// Message shown when [`INT_OR_STRING_PORT_RULE`] fails.
pub(crate) const INT_OR_STRING_PORT_MESSAGE: &str =
    "must be a port number between 1 and 65535, or a port name";

/// Drops the `null` that schemars lists among the values of an `Option<Enum>`: `nullable`
/// already admits null, and an enum should hold only values of its schema's type, as
/// controller-gen writes them. Applied with `#[schemars(transform = ...)]` on each spec.
pub(crate) fn drop_null_enum_values(schema: &mut schemars::Schema) {
    schemars::transform::transform_subschemas(&mut drop_null_enum_values, schema);
    if let Some(values) = schema
        .get_mut("enum")
        .and_then(serde_json::Value::as_array_mut)
    {
        values.retain(|value| !value.is_null());
    }
}

/// Every CRD causeway serves, in a fixed order (the order `causeway crds` prints them in).
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        TargetGroupBinding::crd(),
        spec_defaults_to_empty(IngressClassParams::crd()),
        DNSEndpoint::crd(),
        IamRoleBinding::crd(),
        LoadBalancerGroup::crd(),
        spec_defaults_to_empty(LoadBalancerConfiguration::crd()),
        spec_defaults_to_empty(TargetGroupConfiguration::crd()),
        spec_defaults_to_empty(ListenerRuleConfiguration::crd()),
    ]
}

/// Lets `spec` be left out, reading back as `{}`, for kinds whose spec fields are all optional:
/// aws-load-balancer-controller's CRDs do not require a spec (its chart even writes an
/// IngressClassParams without one). The apiserver applies the default, so every object causeway
/// reads has a spec.
fn spec_defaults_to_empty(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(required) = &mut root.required {
            required.retain(|r| r != "spec");
            if required.is_empty() {
                root.required = None;
            }
        }
        if let Some(spec) = root.properties.as_mut().and_then(|p| p.get_mut("spec")) {
            spec.default = Some(JSON(serde_json::json!({})));
        }
    }
    crd
}

/// The file a CRD is kept in under `crds/`: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document.
///
/// Deterministic: the schema's properties are `BTreeMap`s and everything else is a struct with a
/// fixed field order.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let body = serde_saphyr::to_string(crd)
        .expect("a CustomResourceDefinition has only string keys, so it always serializes");
    let mut out = String::from("# Generated by causeway from src/crd. Do not edit.\n");
    out.push_str(&body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// All CRDs as one multi-document YAML stream, ready for `kubectl apply -f -`.
pub fn render_all() -> String {
    all().iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}

/// Writes each CRD to `dir/<file_name>`, creating `dir` if needed.
pub fn write_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for crd in all() {
        std::fs::write(dir.join(file_name(&crd)), to_yaml(&crd))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    };

    use super::*;

    const UPDATE_ENV: &str = "CAUSEWAY_UPDATE_CRDS";

    /// crds/ for `kubectl apply`, and the copy the Helm chart renders from.
    fn crds_dirs() -> [PathBuf; 2] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        [root.join("crds"), root.join("charts/causeway/files/crds")]
    }

    fn first_difference(expected: &str, actual: &str) -> String {
        let mut expected_lines = expected.lines();
        let mut actual_lines = actual.lines();
        let mut line = 1;
        loop {
            match (expected_lines.next(), actual_lines.next()) {
                (Some(e), Some(a)) if e == a => line += 1,
                (None, None) => return "files differ only in trailing whitespace".into(),
                (e, a) => {
                    return format!(
                        "first difference at line {line}:\n  generated: {e:?}\n  on disk:   {a:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn crds_dir_matches_the_types() {
        for dir in crds_dirs() {
            if std::env::var_os(UPDATE_ENV).is_some_and(|v| !v.is_empty()) {
                write_dir(&dir).expect("write crds/");
                continue;
            }
            dir_matches(&dir);
        }
    }

    fn dir_matches(dir: &Path) {
        let hint = format!("run `{UPDATE_ENV}=1 cargo test --lib crd` to regenerate crds/");
        for crd in all() {
            let path = dir.join(file_name(&crd));
            let on_disk = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}; {hint}", path.display()));
            let generated = to_yaml(&crd);
            assert!(
                on_disk == generated,
                "{} is stale ({}); {hint}",
                path.display(),
                first_difference(&generated, &on_disk),
            );
        }
    }

    #[test]
    fn crds_dir_has_no_stale_files() {
        for dir in crds_dirs() {
            no_stale_files(&dir);
        }
    }

    fn no_stale_files(dir: &Path) {
        let expected: BTreeSet<String> = all().iter().map(file_name).collect();
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("crds/ exists")
            .map(|entry| {
                entry
                    .expect("readable entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".yaml"))
            .collect();
        let stale: Vec<_> = on_disk.difference(&expected).collect();
        assert!(
            stale.is_empty(),
            "{} holds files no type generates, delete them: {stale:?}",
            dir.display()
        );
    }

    #[test]
    fn file_names_follow_group_and_plural() {
        let names: Vec<String> = all().iter().map(file_name).collect();
        assert_eq!(
            names,
            [
                "elbv2.k8s.aws_targetgroupbindings.yaml",
                "elbv2.k8s.aws_ingressclassparams.yaml",
                "externaldns.k8s.io_dnsendpoints.yaml",
                "causeway.dev_iamrolebindings.yaml",
                "causeway.dev_loadbalancergroups.yaml",
                "gateway.k8s.aws_loadbalancerconfigurations.yaml",
                "gateway.k8s.aws_targetgroupconfigurations.yaml",
                "gateway.k8s.aws_listenerruleconfigurations.yaml",
            ]
        );
    }

    #[test]
    fn render_all_is_every_crd_in_order() {
        let rendered = render_all();
        let documents: Vec<&str> = rendered.split("---\n").collect();
        let expected: Vec<String> = all().iter().map(to_yaml).collect();
        assert_eq!(documents, expected);
        for document in documents {
            let parsed: CustomResourceDefinition =
                serde_saphyr::from_str(document).expect("each document parses back as a CRD");
            assert!(
                all().contains(&parsed),
                "{} does not round-trip",
                file_name(&parsed)
            );
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render_all(), render_all());
    }

    #[test]
    fn names_scope_and_subresources() {
        // (kind, group, version, plural, singular, scope, short names)
        let expected = [
            (
                "TargetGroupBinding",
                "elbv2.k8s.aws",
                "v1beta1",
                "targetgroupbindings",
                "targetgroupbinding",
                "Namespaced",
                vec!["tgb"],
            ),
            (
                "IngressClassParams",
                "elbv2.k8s.aws",
                "v1beta1",
                "ingressclassparams",
                "ingressclassparams",
                "Cluster",
                vec!["icp"],
            ),
            (
                "DNSEndpoint",
                "externaldns.k8s.io",
                "v1alpha1",
                "dnsendpoints",
                "dnsendpoint",
                "Namespaced",
                vec!["dnsep"],
            ),
            (
                "IamRoleBinding",
                "causeway.dev",
                "v1alpha1",
                "iamrolebindings",
                "iamrolebinding",
                "Namespaced",
                vec!["irb"],
            ),
            (
                "LoadBalancerGroup",
                "causeway.dev",
                "v1alpha1",
                "loadbalancergroups",
                "loadbalancergroup",
                "Cluster",
                vec!["lbg"],
            ),
            // LBC gives its Gateway kinds no short names.
            (
                "LoadBalancerConfiguration",
                "gateway.k8s.aws",
                "v1",
                "loadbalancerconfigurations",
                "loadbalancerconfiguration",
                "Namespaced",
                vec![],
            ),
            (
                "TargetGroupConfiguration",
                "gateway.k8s.aws",
                "v1",
                "targetgroupconfigurations",
                "targetgroupconfiguration",
                "Namespaced",
                vec![],
            ),
            (
                "ListenerRuleConfiguration",
                "gateway.k8s.aws",
                "v1",
                "listenerruleconfigurations",
                "listenerruleconfiguration",
                "Namespaced",
                vec![],
            ),
        ];
        let crds = all();
        assert_eq!(crds.len(), expected.len());
        for (crd, (kind, group, version, plural, singular, scope, short_names)) in
            crds.iter().zip(expected)
        {
            assert_eq!(crd.spec.names.kind, kind);
            assert_eq!(crd.spec.group, group);
            assert_eq!(crd.spec.names.plural, plural);
            assert_eq!(crd.spec.names.singular.as_deref(), Some(singular));
            assert_eq!(crd.spec.scope, scope, "{kind}");
            assert_eq!(
                crd.spec.names.short_names.clone().unwrap_or_default(),
                short_names
            );
            assert_eq!(
                crd.spec.names.categories.as_deref(),
                Some(&["causeway".to_string()][..])
            );
            assert_eq!(
                crd.metadata.name.as_deref(),
                Some(&*format!("{plural}.{group}"))
            );
            assert_eq!(crd.spec.versions.len(), 1, "{kind}");
            let served = &crd.spec.versions[0];
            assert_eq!(served.name, version);
            assert!(served.served && served.storage, "{kind}");
            let status = served.subresources.as_ref().and_then(|s| s.status.as_ref());
            assert!(status.is_some(), "{kind} has no status subresource");
            let columns = served
                .additional_printer_columns
                .as_deref()
                .unwrap_or_default();
            assert_eq!(
                columns
                    .last()
                    .map(|c| (c.name.as_str(), c.json_path.as_str(), c.type_.as_str())),
                Some(("AGE", ".metadata.creationTimestamp", "date")),
                "{kind}"
            );
        }
    }

    #[test]
    fn lbc_kinds_with_an_optional_spec_default_it_to_empty() {
        let optional = [
            "IngressClassParams",
            "LoadBalancerConfiguration",
            "TargetGroupConfiguration",
            "ListenerRuleConfiguration",
        ];
        for crd in all() {
            let root = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema");
            let kind = crd.spec.names.kind.as_str();
            let required = root
                .required
                .as_ref()
                .is_some_and(|r| r.iter().any(|f| f == "spec"));
            let spec_default = root
                .properties
                .as_ref()
                .and_then(|p| p.get("spec"))
                .and_then(|s| s.default.as_ref())
                .map(|d| &d.0);
            if optional.contains(&kind) {
                assert!(!required, "{kind} requires spec");
                assert_eq!(spec_default, Some(&serde_json::json!({})), "{kind}");
            } else {
                assert!(required, "{kind} lets spec be left out");
            }
        }
    }

    #[test]
    fn protected_group_carries_the_api_approval_annotation() {
        // The apiserver rejects CRDs in *.k8s.io groups without this annotation.
        for crd in all() {
            let protected =
                crd.spec.group.ends_with(".k8s.io") || crd.spec.group.ends_with(".kubernetes.io");
            let approved = crd
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("api-approved.kubernetes.io"));
            assert_eq!(protected, approved, "{}", crd.spec.group);
        }
    }

    /// Collects violations of the apiserver's structural-schema rules that kube's derive could
    /// let through: `$ref`s, nodes without a type, and `anyOf`/`oneOf`/`allOf`/`not` anywhere
    /// but the int-or-string idiom.
    fn structural_violations(path: &str, schema: &JSONSchemaProps, out: &mut Vec<String>) {
        if schema.ref_path.is_some() {
            out.push(format!("{path}: $ref"));
        }
        let int_or_string = schema.x_kubernetes_int_or_string == Some(true);
        let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
        if schema.type_.is_none() && !int_or_string && !preserve {
            out.push(format!("{path}: no type"));
        }
        if int_or_string && schema.type_.is_some() {
            out.push(format!("{path}: int-or-string with a type"));
        }
        if schema.one_of.is_some() || schema.all_of.is_some() || schema.not.is_some() {
            out.push(format!("{path}: oneOf/allOf/not"));
        }
        if let Some(any_of) = &schema.any_of {
            let idiom = int_or_string
                && any_of.len() == 2
                && any_of
                    .iter()
                    .all(|s| s.properties.is_none() && s.items.is_none());
            if !idiom {
                out.push(format!("{path}: anyOf outside the int-or-string idiom"));
            }
        }
        if let Some(values) = &schema.enum_
            && (schema.type_.as_deref() != Some("string")
                || values.iter().any(|v| !v.0.is_string()))
        {
            out.push(format!("{path}: enum that is not a string enum"));
        }
        if schema.x_kubernetes_list_type.as_deref() == Some("map") {
            let keys = schema
                .x_kubernetes_list_map_keys
                .clone()
                .unwrap_or_default();
            let item_required = match &schema.items {
                Some(JSONSchemaPropsOrArray::Schema(item)) => {
                    item.required.clone().unwrap_or_default()
                }
                _ => Vec::new(),
            };
            if keys.is_empty() || !keys.iter().all(|k| item_required.contains(k)) {
                out.push(format!("{path}: list-type map whose keys are not required"));
            }
        }
        for (name, property) in schema.properties.iter().flatten() {
            structural_violations(&format!("{path}.{name}"), property, out);
        }
        match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(item)) => {
                structural_violations(&format!("{path}[]"), item, out)
            }
            Some(JSONSchemaPropsOrArray::Schemas(_)) => out.push(format!("{path}: tuple items")),
            None => {}
        }
        if let Some(JSONSchemaPropsOrBool::Schema(value)) = &schema.additional_properties {
            structural_violations(&format!("{path}{{}}"), value, out);
        }
    }

    #[test]
    fn schemas_are_structural() {
        for crd in all() {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("every version has a schema");
            let mut violations = Vec::new();
            structural_violations(&crd.spec.names.kind, schema, &mut violations);
            assert!(violations.is_empty(), "{violations:#?}");
        }
    }
}

/// Helpers shared by the per-kind tests: digging into a generated schema.
#[cfg(test)]
pub(crate) mod schema_test_util {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
    };

    /// The schema node at a dotted path below the root, where `[]` steps into list items,
    /// e.g. `spec.networking.ingress[].from[]`.
    pub(crate) fn node<'a>(crd: &'a CustomResourceDefinition, path: &str) -> &'a JSONSchemaProps {
        let mut current = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema");
        for segment in path.split('.') {
            let (name, into_items) = match segment.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (segment, false),
            };
            current = current
                .properties
                .as_ref()
                .and_then(|p| p.get(name))
                .unwrap_or_else(|| panic!("no property {name:?} on the way to {path}"));
            if into_items {
                current = match &current.items {
                    Some(JSONSchemaPropsOrArray::Schema(item)) => &**item,
                    _ => panic!("{name} is not a list, on the way to {path}"),
                };
            }
        }
        current
    }

    /// Checks the pattern the schema carries at `path` (Go's RE2 and the regex crate agree on
    /// the syntax these patterns use).
    pub(crate) fn assert_pattern(
        crd: &CustomResourceDefinition,
        path: &str,
        accepted: &[&str],
        rejected: &[&str],
    ) {
        let pattern = node(crd, path)
            .pattern
            .as_deref()
            .unwrap_or_else(|| panic!("{path} has no pattern"));
        let regex = regex::Regex::new(pattern).expect("the pattern compiles");
        for value in accepted {
            assert!(regex.is_match(value), "{path} rejects {value:?}");
        }
        for value in rejected {
            assert!(!regex.is_match(value), "{path} accepts {value:?}");
        }
    }

    /// The CEL rules on a schema node.
    pub(crate) fn rules(node: &JSONSchemaProps) -> Vec<&str> {
        node.x_kubernetes_validations
            .iter()
            .flatten()
            .map(|rule| rule.rule.as_str())
            .collect()
    }

    /// The string values of an enum schema node.
    pub(crate) fn enum_values(node: &JSONSchemaProps) -> Vec<&str> {
        node.enum_
            .iter()
            .flatten()
            .map(|v| v.0.as_str().expect("string enum"))
            .collect()
    }

    /// Parses a YAML manifest, deserializes it into `T`, serializes it back, and checks nothing
    /// was lost: serde ignores unknown fields, so a misspelt field name would silently drop data.
    pub(crate) fn round_trip<T>(manifest: &str) -> T
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let as_written: serde_json::Value = serde_saphyr::from_str(manifest).expect("valid YAML");
        let typed: T =
            serde_json::from_value(as_written.clone()).expect("deserializes into the type");
        let back = serde_json::to_value(&typed).expect("serializes");
        assert_eq!(
            back, as_written,
            "the manifest does not survive a round trip"
        );
        typed
    }
}
