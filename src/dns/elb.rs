//! Canonical hosted zones of AWS load balancers, for ALIAS records.
//!
//! The table is AWS's published list ("Elastic Load Balancing endpoints and quotas" in the AWS
//! General Reference), the same one external-dns carries. Load balancers causeway created itself
//! are looked up in our own state first, so a region missing here only affects foreign LBs.

/// Which column of the AWS table a hostname belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerKind {
    /// `<name>-<id>.<region>.elb.amazonaws.com` (ALB and Classic).
    ApplicationOrClassic,
    /// `<name>-<id>.elb.<region>.amazonaws.com` (NLB).
    Network,
}

/// A hostname recognised as an ELB, with its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerHostname {
    pub kind: LoadBalancerKind,
    pub region: String,
}

/// region, ALB/Classic zone, NLB zone.
const CANONICAL_ZONES: &[(&str, &str, &str)] = &[
    ("us-east-1", "Z35SXDOTRQ7X7K", "Z26RNL4JYFTOTI"),
    ("us-east-2", "Z3AADJGX6KTTL2", "ZLMOA37VPKANP"),
    ("us-west-1", "Z368ELLRRE2KJ0", "Z24FKFUX50B4VW"),
    ("us-west-2", "Z1H1FL5HABSF5", "Z18D5FSROUN65G"),
    ("af-south-1", "Z268VQBMOI5EKX", "Z203XCE67M25HM"),
    ("ap-east-1", "Z3DQVH9N71FHZ0", "Z12Y7K3UBGUAD1"),
    ("ap-east-2", "Z02789141MW7T1WBU19PO", "Z09176273OC2HWIAUNYW"),
    ("ap-south-1", "ZP97RAFLXTNZK", "ZVDDRBQ08TROA"),
    (
        "ap-south-2",
        "Z0173938T07WNTVAEPZN",
        "Z0711778386UTO08407HT",
    ),
    ("ap-northeast-1", "Z14GRHDCWA56QT", "Z31USIVHYNEOWT"),
    ("ap-northeast-2", "ZWKZPGTI48KDX", "ZIBE1TIR4HY56"),
    ("ap-northeast-3", "Z5LXEXXYW11ES", "Z1GWIQ4HH19I5X"),
    ("ap-southeast-1", "Z1LMS91P8CMLE5", "ZKVM4W9LS7TM"),
    ("ap-southeast-2", "Z1GM3OXH4ZPM65", "ZCT6FZBF4DROD"),
    (
        "ap-southeast-3",
        "Z08888821HLRG5A9ZRTER",
        "Z01971771FYVNCOVWJU1G",
    ),
    (
        "ap-southeast-4",
        "Z09517862IB2WZLPXG76F",
        "Z01156963G8MIIL7X90IV",
    ),
    (
        "ap-southeast-5",
        "Z06010284QMVVW7WO5J",
        "Z026317210H9ACVTRO6FB",
    ),
    (
        "ap-southeast-6",
        "Z023301818UFJ50CIO0MV",
        "Z01392953RKV2Q3RBP0KU",
    ),
    (
        "ap-southeast-7",
        "Z0390008CMBRTHFGWBCB",
        "Z054363131YWATEMWRG5L",
    ),
    ("ca-central-1", "ZQSVJUPU6J1EY", "Z2EPGBW3API2WT"),
    (
        "ca-west-1",
        "Z06473681N0SF6OS049SD",
        "Z02754302KBB00W2LKWZ9",
    ),
    ("cn-north-1", "Z1GDH35T77C1KE", "Z3QFB96KMJ7ED6"),
    ("cn-northwest-1", "ZM7IZAIOVVDZF", "ZQEIKTCZ8352D"),
    ("eu-central-1", "Z215JYRZR1TBD5", "Z3F0SRJ5LGBH90"),
    (
        "eu-central-2",
        "Z06391101F2ZOEP8P5EB3",
        "Z02239872DOALSIDCX66S",
    ),
    ("eu-north-1", "Z23TAZ6LKFMNIO", "Z1UDT6IFJ4EJM"),
    ("eu-south-1", "Z3ULH7SSC9OV64", "Z23146JA1KNAFP"),
    (
        "eu-south-2",
        "Z0956581394HF5D5LXGAP",
        "Z1011216NVTVYADP1SSV",
    ),
    ("eu-west-1", "Z32O12XQLNTSW2", "Z2IFOLAFXWLO4F"),
    ("eu-west-2", "ZHURV8PSTC4K8", "ZD4D7Y8KGAS4G"),
    ("eu-west-3", "Z3Q77PNBQS71R4", "Z1CMS0P5QUZ6D5"),
    (
        "il-central-1",
        "Z09170902867EHPV2DABU",
        "Z0313266YDI6ZRHTGQY4",
    ),
    (
        "me-central-1",
        "Z08230872XQRWHG2XF6I",
        "Z00282643NTTLPANJJG2P",
    ),
    ("me-south-1", "ZS929ML54UICD", "Z3QSRYVP46NYYV"),
    (
        "mx-central-1",
        "Z023552324OKD1BB28BH5",
        "Z02031231H3ID6HYJ9A7U",
    ),
    ("sa-east-1", "Z2P70J7HTTTPLU", "ZTK26PT1VY4CU"),
    ("us-gov-east-1", "Z166TLBEWOO7G0", "Z1ZSMQQ6Q24QQ8"),
    ("us-gov-west-1", "Z33AYJ8TM3BH4J", "ZMG1MZ2THAWF1"),
];

/// CloudFront distributions share one canonical zone.
const CLOUDFRONT_ZONE: &str = "Z2FDTNDATAQYW2";
/// Global Accelerator accelerators share one canonical zone.
const GLOBAL_ACCELERATOR_ZONE: &str = "Z2BJ6XQ5FK7U4H";

/// Recognises ELB hostnames in both partitions' forms.
pub fn parse_load_balancer_hostname(hostname: &str) -> Option<LoadBalancerHostname> {
    let host = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    let base = host
        .strip_suffix(".amazonaws.com.cn")
        .or_else(|| host.strip_suffix(".amazonaws.com"))?;
    let labels: Vec<&str> = base.split('.').collect();
    // At least one label for the load balancer's own name precedes the region part.
    match labels.as_slice() {
        [_, .., region, "elb"] if looks_like_region(region) => Some(LoadBalancerHostname {
            kind: LoadBalancerKind::ApplicationOrClassic,
            region: region.to_string(),
        }),
        [_, .., "elb", region] if looks_like_region(region) => Some(LoadBalancerHostname {
            kind: LoadBalancerKind::Network,
            region: region.to_string(),
        }),
        _ => None,
    }
}

fn looks_like_region(label: &str) -> bool {
    label.split('-').count() >= 3 && label.ends_with(|c: char| c.is_ascii_digit())
}

/// The canonical hosted zone of an AWS alias target, from the public table.
pub fn canonical_hosted_zone(hostname: &str) -> Option<&'static str> {
    let host = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.ends_with(".cloudfront.net") {
        return Some(CLOUDFRONT_ZONE);
    }
    if host.ends_with(".awsglobalaccelerator.com") {
        return Some(GLOBAL_ACCELERATOR_ZONE);
    }
    let lb = parse_load_balancer_hostname(&host)?;
    let (_, alb, nlb) = CANONICAL_ZONES
        .iter()
        .find(|(region, _, _)| *region == lb.region)?;
    Some(match lb.kind {
        LoadBalancerKind::ApplicationOrClassic => alb,
        LoadBalancerKind::Network => nlb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alb_and_classic_hostnames() {
        assert_eq!(
            canonical_hosted_zone("k8s-default-web-1234567890.us-east-1.elb.amazonaws.com"),
            Some("Z35SXDOTRQ7X7K")
        );
        assert_eq!(
            canonical_hosted_zone("internal-k8s-app-abc.eu-west-1.elb.amazonaws.com."),
            Some("Z32O12XQLNTSW2")
        );
        assert_eq!(
            canonical_hosted_zone("dualstack.my-lb-1.US-WEST-2.elb.amazonaws.com"),
            Some("Z1H1FL5HABSF5")
        );
    }

    #[test]
    fn nlb_hostnames() {
        assert_eq!(
            canonical_hosted_zone("k8s-default-nlb-0123456789abcdef.elb.us-east-1.amazonaws.com"),
            Some("Z26RNL4JYFTOTI")
        );
        assert_eq!(
            canonical_hosted_zone("my-nlb-1.elb.ap-southeast-2.amazonaws.com"),
            Some("ZCT6FZBF4DROD")
        );
    }

    #[test]
    fn china_partition() {
        assert_eq!(
            canonical_hosted_zone("my-alb-1.cn-north-1.elb.amazonaws.com.cn"),
            Some("Z1GDH35T77C1KE")
        );
        assert_eq!(
            canonical_hosted_zone("my-nlb-1.elb.cn-northwest-1.amazonaws.com.cn"),
            Some("ZQEIKTCZ8352D")
        );
    }

    #[test]
    fn other_aws_alias_targets() {
        assert_eq!(
            canonical_hosted_zone("d111111abcdef8.cloudfront.net"),
            Some(CLOUDFRONT_ZONE)
        );
        assert_eq!(
            canonical_hosted_zone("a1234567890abcdef.awsglobalaccelerator.com"),
            Some(GLOBAL_ACCELERATOR_ZONE)
        );
    }

    #[test]
    fn non_elb_hostnames() {
        for host in [
            "example.com",
            "elb.amazonaws.com",
            "us-east-1.elb.amazonaws.com",
            "bucket.s3.us-east-1.amazonaws.com",
            "foo.elb.example.com",
            "x.mars-north-1.elb.amazonaws.com",
        ] {
            assert_eq!(canonical_hosted_zone(host), None, "{host}");
        }
        assert_eq!(
            parse_load_balancer_hostname("x.mars-north-1.elb.amazonaws.com"),
            Some(LoadBalancerHostname {
                kind: LoadBalancerKind::ApplicationOrClassic,
                region: "mars-north-1".into()
            }),
            "unknown regions are recognised, just not resolvable"
        );
    }

    #[test]
    fn table_has_unique_regions() {
        let mut regions: Vec<&str> = CANONICAL_ZONES.iter().map(|(r, _, _)| *r).collect();
        regions.sort_unstable();
        regions.dedup();
        assert_eq!(regions.len(), CANONICAL_ZONES.len());
    }
}
