//! The Route 53 adapter: the only place that speaks SDK types. It lists hosted zones (and their
//! tags, only when a tag filter needs them), pages record sets into [`Record`]s, and submits
//! [`Batch`]es. Throttling is retried with backoff by the SDK's standard retry mode, on top of
//! the client-side token bucket (`--aws-rate-limits route53=...`, 4/s by default) that keeps
//! the account under Route 53's 5 requests/s.

use std::collections::BTreeSet;

use aws_sdk_route53::error::ProvideErrorMetadata;
use aws_sdk_route53::types as r53;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::operation::BuildError;

use super::batch::Batch;
use super::endpoint::{
    AliasTarget, DnsName, Failover, GeoLocation, Record, RecordType, Routing, RoutingPolicy,
    normalize_hostname_target, normalize_target,
};
use super::plan::Action;
use super::zones::Zone;
use crate::aws::errors;

/// Route 53 returns at most 300 record sets per ListResourceRecordSets page.
const PAGE_SIZE: i32 = 300;
/// ListTagsForResources takes at most 10 resource ids.
const TAG_BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Route53Error {
    #[error("Route 53 {operation} was throttled: {message}")]
    Throttled {
        operation: &'static str,
        message: String,
    },
    #[error("Route 53 {operation} rejected the request ({code}): {message}")]
    Rejected {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("Route 53 {operation} failed: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
}

impl Route53Error {
    /// True for errors caused by the request content (one bad record), as opposed to
    /// throttling or transport, where retrying each group alone would only burn quota.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Route53Error::Rejected { .. })
    }
}

/// Throttling (see [`errors::is_throttling`]) is `Throttled`; any other answer with an error
/// code is a `Rejected` request; the rest (no answer, no code) is `Transport`.
fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Route53Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = err
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
    if errors::is_throttling(&err) {
        return Route53Error::Throttled { operation, message };
    }
    match errors::code(&err) {
        Some(code) => Route53Error::Rejected {
            operation,
            code: code.to_string(),
            message,
        },
        None => Route53Error::Transport { operation, message },
    }
}

/// Route 53 reads and writes for the DNS controller and `causeway plan`.
#[derive(Clone, Debug)]
pub struct Route53 {
    route53: aws_sdk_route53::Client,
}

impl Route53 {
    pub fn new(route53: aws_sdk_route53::Client) -> Self {
        Route53 { route53 }
    }

    /// Every hosted zone of the account; tags are read only when `with_tags` (a tag filter is
    /// configured), in batches of 10.
    pub async fn list_zones(&self, with_tags: bool) -> Result<Vec<Zone>, Route53Error> {
        let mut zones = Vec::new();
        let mut pages = self.route53.list_hosted_zones().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListHostedZones", e))?;
            for hz in page.hosted_zones() {
                // Zones with names we cannot parse (reverse zones with odd labels) are skipped.
                if let Ok(name) = DnsName::parse_record_name(hz.name()) {
                    let private = hz.config().is_some_and(|c| c.private_zone());
                    zones.push(Zone::new(hz.id(), name, private));
                }
            }
            // The paginator follows NextMarker; IsTruncated is the end as before.
            if !page.is_truncated() {
                break;
            }
        }
        if with_tags {
            for chunk in zones.chunks_mut(TAG_BATCH) {
                let ids: Vec<String> = chunk.iter().map(|z| z.id.clone()).collect();
                let out = self
                    .route53
                    .list_tags_for_resources()
                    .resource_type(r53::TagResourceType::Hostedzone)
                    .set_resource_ids(Some(ids))
                    .send()
                    .await
                    .map_err(|e| classify("ListTagsForResources", e))?;
                for set in out.resource_tag_sets() {
                    let id = set.resource_id().unwrap_or_default();
                    let id = id.strip_prefix("/hostedzone/").unwrap_or(id);
                    if let Some(zone) = chunk.iter_mut().find(|z| z.id == id) {
                        zone.tags = set
                            .tags()
                            .iter()
                            .filter_map(|t| {
                                Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                            })
                            .collect();
                    }
                }
            }
        }
        Ok(zones)
    }

    /// Every record set of `zone_id` that causeway's model can represent; the others (SOA,
    /// DS, traffic-policy records, ...) are left out, so they are foreign by construction.
    pub async fn list_records(&self, zone_id: &str) -> Result<Vec<Record>, Route53Error> {
        let mut records = Vec::new();
        // Paged by hand: the SDK generates no paginator for ListResourceRecordSets (its
        // cursor is three fields: StartRecordName, StartRecordType, StartRecordIdentifier).
        let mut start: Option<(String, r53::RrType, Option<String>)> = None;
        loop {
            let mut request = self
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .max_items(PAGE_SIZE);
            if let Some((name, record_type, identifier)) = start.take() {
                request = request
                    .start_record_name(name)
                    .start_record_type(record_type)
                    .set_start_record_identifier(identifier);
            }
            let page = request
                .send()
                .await
                .map_err(|e| classify("ListResourceRecordSets", e))?;
            records.extend(page.resource_record_sets().iter().filter_map(from_sdk));
            match (page.is_truncated(), page.next_record_name()) {
                (true, Some(name)) => {
                    start = Some((
                        name.to_string(),
                        page.next_record_type().cloned().unwrap_or(r53::RrType::A),
                        page.next_record_identifier().map(str::to_string),
                    ));
                }
                _ => break,
            }
        }
        Ok(records)
    }

    /// Submits one batch; Route 53 applies it atomically.
    pub async fn change(&self, zone_id: &str, batch: &Batch) -> Result<(), Route53Error> {
        let changes = batch
            .changes
            .iter()
            .map(|c| {
                r53::Change::builder()
                    .action(match c.action {
                        Action::Create => r53::ChangeAction::Create,
                        Action::Delete => r53::ChangeAction::Delete,
                        Action::Upsert => r53::ChangeAction::Upsert,
                    })
                    .resource_record_set(to_sdk(&c.record).map_err(|e| Route53Error::Rejected {
                        operation: "ChangeResourceRecordSets",
                        code: "InvalidRecord".into(),
                        message: format!("{}: {e}", c.record.name.as_str()),
                    })?)
                    .build()
                    .map_err(|e| Route53Error::Transport {
                        operation: "ChangeResourceRecordSets",
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let change_batch = r53::ChangeBatch::builder()
            .comment("causeway")
            .set_changes(Some(changes))
            .build()
            .map_err(|e| Route53Error::Transport {
                operation: "ChangeResourceRecordSets",
                message: e.to_string(),
            })?;
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(change_batch)
            .send()
            .await
            .map_err(|e| classify("ChangeResourceRecordSets", e))?;
        Ok(())
    }
}

fn record_type_from_sdk(t: &r53::RrType) -> Option<RecordType> {
    RecordType::parse(t.as_str()).ok()
}

fn routing_from_sdk(set: &r53::ResourceRecordSet) -> Routing {
    let policy = if let Some(weight) = set.weight() {
        RoutingPolicy::Weighted {
            weight: u8::try_from(weight.clamp(0, 255)).unwrap_or(u8::MAX),
        }
    } else if let Some(region) = set.region() {
        RoutingPolicy::Latency {
            region: region.as_str().to_string(),
        }
    } else if let Some(failover) = set.failover() {
        RoutingPolicy::Failover(match failover {
            r53::ResourceRecordSetFailover::Secondary => Failover::Secondary,
            _ => Failover::Primary,
        })
    } else if let Some(geo) = set.geo_location() {
        RoutingPolicy::Geolocation(match (geo.continent_code(), geo.country_code()) {
            (Some(continent), _) => GeoLocation::Continent(continent.to_string()),
            (None, country) => GeoLocation::Country {
                country: country.unwrap_or("*").to_string(),
                subdivision: geo.subdivision_code().map(str::to_string),
            },
        })
    } else if set.multi_value_answer() == Some(true) {
        RoutingPolicy::MultiValue
    } else {
        RoutingPolicy::Simple
    };
    Routing {
        policy,
        health_check_id: set.health_check_id().map(str::to_string),
    }
}

/// An SDK record set in our model; `None` for types and features we do not manage.
pub fn from_sdk(set: &r53::ResourceRecordSet) -> Option<Record> {
    let record_type = record_type_from_sdk(set.r#type())?;
    if set.traffic_policy_instance_id().is_some()
        || set.cidr_routing_config().is_some()
        || set.geo_proximity_location().is_some()
    {
        return None;
    }
    let name = DnsName::parse_record_name(set.name()).ok()?;
    let alias = set.alias_target().map(|a| AliasTarget {
        dns_name: normalize_hostname_target(a.dns_name()),
        hosted_zone_id: Some(a.hosted_zone_id().to_string()),
        evaluate_target_health: a.evaluate_target_health(),
    });
    let values: BTreeSet<String> = set
        .resource_records()
        .iter()
        .map(|r| normalize_target(record_type, r.value()).unwrap_or_else(|_| r.value().into()))
        .collect();
    Some(Record {
        name,
        record_type,
        set_identifier: set.set_identifier().map(str::to_string),
        ttl: if alias.is_some() {
            None
        } else {
            set.ttl().and_then(|t| u32::try_from(t).ok())
        },
        values,
        alias,
        routing: routing_from_sdk(set),
    })
}

/// Our record as an SDK record set. A value the SDK refuses is an error for this record
/// (never a record sent with parts missing).
pub fn to_sdk(record: &Record) -> Result<r53::ResourceRecordSet, BuildError> {
    let mut b = r53::ResourceRecordSet::builder()
        .name(record.name.as_str())
        .r#type(r53::RrType::from(record.record_type.as_str()))
        .set_set_identifier(record.set_identifier.clone())
        .set_health_check_id(record.routing.health_check_id.clone());
    b = match &record.routing.policy {
        RoutingPolicy::Simple => b,
        RoutingPolicy::Weighted { weight } => b.weight(i64::from(*weight)),
        RoutingPolicy::Latency { region } => {
            b.region(r53::ResourceRecordSetRegion::from(region.as_str()))
        }
        RoutingPolicy::Failover(f) => b.failover(r53::ResourceRecordSetFailover::from(f.as_str())),
        RoutingPolicy::Geolocation(geo) => b.geo_location(match geo {
            GeoLocation::Continent(c) => r53::GeoLocation::builder().continent_code(c).build(),
            GeoLocation::Country {
                country,
                subdivision,
            } => r53::GeoLocation::builder()
                .country_code(country)
                .set_subdivision_code(subdivision.clone())
                .build(),
        }),
        RoutingPolicy::MultiValue => b.multi_value_answer(true),
    };
    if let Some(alias) = &record.alias {
        let target = r53::AliasTarget::builder()
            .dns_name(alias.dns_name.as_str())
            .hosted_zone_id(alias.hosted_zone_id.clone().unwrap_or_default())
            .evaluate_target_health(alias.evaluate_target_health)
            .build()?;
        b = b.alias_target(target);
    } else {
        b = b
            .set_ttl(record.ttl.map(i64::from))
            .set_resource_records(Some(
                record
                    .values
                    .iter()
                    .map(|v| r53::ResourceRecord::builder().value(v).build())
                    .collect::<Result<Vec<_>, _>>()?,
            ));
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    #[test]
    fn records_round_trip_through_sdk_types() {
        let records = [
            Record {
                name: name("app.example.com"),
                record_type: RecordType::A,
                set_identifier: Some("eu".into()),
                ttl: Some(60),
                values: ["10.0.0.1".to_string(), "10.0.0.2".to_string()].into(),
                alias: None,
                routing: Routing {
                    policy: RoutingPolicy::Weighted { weight: 10 },
                    health_check_id: Some("hc-1".into()),
                },
            },
            Record {
                name: name("app.example.com"),
                record_type: RecordType::Aaaa,
                set_identifier: None,
                ttl: None,
                values: BTreeSet::new(),
                alias: Some(AliasTarget {
                    dns_name: "k8s-web-1.eu-west-1.elb.amazonaws.com".into(),
                    hosted_zone_id: Some("Z32O12XQLNTSW2".into()),
                    evaluate_target_health: true,
                }),
                routing: Routing::default(),
            },
            Record {
                name: name("a-app.example.com"),
                record_type: RecordType::Txt,
                set_identifier: Some("x".into()),
                ttl: Some(300),
                values: ["\"heritage=external-dns,external-dns/owner=c1\"".to_string()].into(),
                alias: None,
                routing: Routing {
                    policy: RoutingPolicy::Geolocation(GeoLocation::Country {
                        country: "DE".into(),
                        subdivision: None,
                    }),
                    health_check_id: None,
                },
            },
            Record {
                name: name("*.example.com"),
                record_type: RecordType::Cname,
                set_identifier: Some("p".into()),
                ttl: Some(30),
                values: ["target.example.org".to_string()].into(),
                alias: None,
                routing: Routing {
                    policy: RoutingPolicy::Failover(Failover::Secondary),
                    health_check_id: None,
                },
            },
            Record {
                name: name("lat.example.com"),
                record_type: RecordType::A,
                set_identifier: Some("us".into()),
                ttl: Some(30),
                values: ["10.1.1.1".to_string()].into(),
                alias: None,
                routing: Routing {
                    policy: RoutingPolicy::Latency {
                        region: "us-east-1".into(),
                    },
                    health_check_id: None,
                },
            },
        ];
        for record in records {
            let sdk = to_sdk(&record).expect("a complete record builds");
            assert_eq!(from_sdk(&sdk).as_ref(), Some(&record), "{sdk:?}");
        }
    }

    #[test]
    fn route53_spellings_are_normalised() {
        let sdk = r53::ResourceRecordSet::builder()
            .name("\\052.Example.com.")
            .r#type(r53::RrType::Cname)
            .ttl(300)
            .resource_records(
                r53::ResourceRecord::builder()
                    .value("Target.Example.org.")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let record = from_sdk(&sdk).unwrap();
        assert_eq!(record.name, name("*.example.com"));
        assert_eq!(record.values.first().unwrap(), "target.example.org");
    }

    #[test]
    fn unmanaged_types_are_left_out() {
        let soa = r53::ResourceRecordSet::builder()
            .name("example.com.")
            .r#type(r53::RrType::Soa)
            .ttl(900)
            .build()
            .unwrap();
        assert_eq!(from_sdk(&soa), None);
    }
}
