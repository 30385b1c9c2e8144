//! `DNSEndpoint` (`externaldns.k8s.io/v1alpha1`): DNS records declared directly, as
//! external-dns's CRD source reads them.
//!
//! The spec is external-dns's, field for field, so its manifests apply unchanged. Status gains
//! conditions next to external-dns's observedGeneration.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::drop_null_enum_values;

/// Route 53's TTL ceiling (a signed 32-bit integer).
pub const MAX_RECORD_TTL: i64 = 2_147_483_647;

/// The approval external-dns's CRD carries (the apiserver rejects CRDs in a `*.k8s.io` group
/// without one). The derive takes only literals, so the attribute repeats it; a test keeps them
/// equal.
pub const API_APPROVAL: &str = "https://github.com/kubernetes-sigs/external-dns/pull/2007";

/// DNS record types: every type external-dns knows, plus the other types Route 53 lets users
/// manage, so no manifest external-dns accepts is refused here.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
    Srv,
    Ns,
    Ptr,
    Mx,
    Naptr,
    Caa,
    Ds,
    Https,
    Spf,
    Sshfp,
    Svcb,
    Tlsa,
}

/// DNS records to publish, each a name with its targets.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "externaldns.k8s.io",
    version = "v1alpha1",
    kind = "DNSEndpoint",
    plural = "dnsendpoints",
    singular = "dnsendpoint",
    shortname = "dnsep",
    category = "causeway",
    namespaced,
    status = "DNSEndpointStatus",
    derive = "PartialEq",
    derive = "Default",
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes-sigs/external-dns/pull/2007"
    ),
    doc = "DNSEndpoint declares DNS records to publish, in external-dns's format.",
    printcolumn(
        name = "DNS-NAME",
        type_ = "string",
        json_path = ".spec.endpoints[0].dnsName",
        description = "The first endpoint's DNS name"
    ),
    printcolumn(
        name = "TYPE",
        type_ = "string",
        json_path = ".spec.endpoints[0].recordType",
        description = "The first endpoint's record type"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether every record is published"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[schemars(transform = drop_null_enum_values)]
pub struct DNSEndpointSpec {
    /// The records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
}

/// One DNS record set: a name, a type and its targets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The record's name.
    #[schemars(length(min = 1, max = 255))]
    pub dns_name: String,

    /// What the record points to: addresses, host names or text, depending on the type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,

    /// The record type, e.g. A, AAAA, CNAME, TXT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<RecordType>,

    /// Tells apart records with the same name and type under a routing policy other than simple.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub set_identifier: Option<String>,

    /// The record's TTL in seconds; the provider's default when unset or 0.
    #[serde(rename = "recordTTL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = MAX_RECORD_TTL))]
    pub record_ttl: Option<i64>,

    /// Labels external-dns keeps with the record, such as its owner.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Provider settings, such as aws/weight or alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_specific: Vec<ProviderSpecificProperty>,
}

/// A provider setting: a name and its value.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ProviderSpecificProperty {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// The observed state of a DNSEndpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DNSEndpointStatus {
    /// The generation the controller last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, and the reasons it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::crd::schema_test_util::{enum_values, node, round_trip};

    /// As external-dns users write it, with routing and alias settings for Route 53.
    const EXTERNAL_DNS_MANIFEST: &str = r#"
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: examplednsrecord
  namespace: default
spec:
  endpoints:
    - dnsName: foo.bar.com
      recordTTL: 180
      recordType: A
      targets:
        - 192.168.99.216
      labels:
        owner: team-a
    - dnsName: www.bar.com
      recordType: CNAME
      setIdentifier: eu
      targets: [lb-123.eu-west-1.elb.amazonaws.com]
      providerSpecific:
        - name: alias
          value: "true"
        - name: aws/weight
          value: "100"
    - dnsName: bar.com
      recordType: TXT
      targets: ["\"v=spf1 -all\""]
status:
  observedGeneration: 2
"#;

    #[test]
    fn external_dns_manifest_deserializes() {
        let dns: DNSEndpoint = round_trip(EXTERNAL_DNS_MANIFEST);
        let endpoints = &dns.spec.endpoints;
        assert_eq!(endpoints.len(), 3);
        assert_eq!(endpoints[0].dns_name, "foo.bar.com");
        assert_eq!(endpoints[0].record_ttl, Some(180));
        assert_eq!(endpoints[0].record_type, Some(RecordType::A));
        assert_eq!(endpoints[0].labels["owner"], "team-a");
        assert_eq!(endpoints[1].set_identifier.as_deref(), Some("eu"));
        assert_eq!(endpoints[1].provider_specific[1].name, "aws/weight");
        assert_eq!(endpoints[2].record_type, Some(RecordType::Txt));
        assert_eq!(dns.status.and_then(|s| s.observed_generation), Some(2));
    }

    #[test]
    fn schema_matches_external_dns() {
        let crd = DNSEndpoint::crd();
        assert_eq!(
            crd.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("api-approved.kubernetes.io")),
            Some(&API_APPROVAL.to_string())
        );
        let ttl = node(&crd, "spec.endpoints[].recordTTL");
        assert_eq!(ttl.format.as_deref(), Some("int64"));
        assert_eq!(
            (ttl.minimum, ttl.maximum),
            (Some(0.0), Some(MAX_RECORD_TTL as f64))
        );
        let types = enum_values(node(&crd, "spec.endpoints[].recordType"));
        for known in [
            "A", "AAAA", "CNAME", "TXT", "SRV", "NS", "PTR", "MX", "NAPTR",
        ] {
            assert!(types.contains(&known), "external-dns accepts {known}");
        }
        assert_eq!(
            node(&crd, "spec.endpoints[]").required.as_deref(),
            Some(&["dnsName".to_string()][..])
        );
        assert_eq!(
            node(&crd, "status.observedGeneration").type_.as_deref(),
            Some("integer")
        );
        assert_eq!(
            node(&crd, "status.conditions")
                .x_kubernetes_list_type
                .as_deref(),
            Some("map")
        );
    }
}
