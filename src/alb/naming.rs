//! Deterministic AWS names: short, legal, and collision-safe thanks to a hash of everything
//! that identifies the resource (including its immutable fields, so that a replacement gets
//! a new name and can be created before the old one is deleted).

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `DefaultHasher`).
pub fn hash64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub fn hash_hex(parts: &[&str], len: usize) -> String {
    let mut s = format!("{:016x}", hash64(parts));
    s.truncate(len);
    s
}

/// Keeps ASCII alphanumerics, lowercased, and cuts to `max` characters.
fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(max)
        .collect()
}

/// `k8s-<group>-<hash>`, at most 32 characters, never starting with `internal-`.
pub fn load_balancer_name(cluster: &str, stack: &str, shard: usize, scheme: &str) -> String {
    let hash = hash_hex(&[cluster, stack, &shard.to_string(), scheme], 10);
    format!("k8s-{}-{hash}", sanitize(stack, 17))
}

/// `k8s-<ns>-<svc>-<hash>`, at most 32 characters.
pub fn target_group_name(cluster: &str, stack: &str, key: &str, immutable: &[&str]) -> String {
    let mut parts = vec![cluster, stack, key];
    parts.extend_from_slice(immutable);
    let (ns_svc, _) = key.split_once('-').unwrap_or((key, ""));
    let ns = ns_svc.split('/').next().unwrap_or("");
    let svc = key.rsplit_once('-').map_or("", |(_, s)| s);
    short_name(ns, svc, &parts)
}

/// `k8s-<ns>-<name>-<hash>` (8, 8 and 10 characters at most): the shape of the peer's NLB
/// and target group names.
fn short_name(ns: &str, name: &str, parts: &[&str]) -> String {
    format!(
        "k8s-{}-{}-{}",
        sanitize(ns, 8),
        sanitize(name, 8),
        hash_hex(parts, 10)
    )
}

/// The NLB of Service `ns/name`; the hash keeps it apart from any ALB's name.
pub fn service_load_balancer_name(cluster: &str, ns: &str, name: &str, scheme: &str) -> String {
    short_name(ns, name, &[cluster, "service", ns, name, scheme])
}

/// The target group of one port of Service `ns/name`; `immutable`: the fields that cannot
/// change in place.
pub fn service_target_group_name(
    cluster: &str,
    ns: &str,
    name: &str,
    port: i32,
    immutable: &[&str],
) -> String {
    let port = port.to_string();
    let mut parts = vec![cluster, "service", ns, name, &port];
    parts.extend_from_slice(immutable);
    short_name(ns, name, &parts)
}

/// Security group names are unique per VPC and may be 255 characters.
pub fn security_group_name(cluster: &str, stack: &str, key: &str) -> String {
    format!(
        "k8s-{}-{}-{}",
        sanitize(cluster, 20),
        sanitize(stack, 40),
        hash_hex(&[cluster, stack, key], 10)
    )
}

/// The LoadBalancerGroup object of a group: the group name, or `ingress.<ns>.<name>` for a
/// group of one (group names cannot contain `/`).
pub fn group_object_name(stack: &str) -> String {
    match stack.split_once('/') {
        Some((ns, name)) => format!("ingress.{ns}.{name}"),
        None => stack.to_owned(),
    }
}

/// The LoadBalancerGroup object of Gateway `ns/name`'s ALB.
pub fn gateway_object_name(ns: &str, name: &str) -> String {
    format!("gateway.{ns}.{name}")
}

/// The LoadBalancerGroup object of Service `ns/name`'s NLB.
pub fn service_object_name(ns: &str, name: &str) -> String {
    format!("service.{ns}.{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_fit_aws_limits() {
        let n = load_balancer_name(
            "cluster",
            "a-very-long-group-name-indeed-yes",
            3,
            "internal",
        );
        assert!(n.len() <= 32, "{n}");
        assert!(n.starts_with("k8s-"));
        let t = target_group_name(
            "c",
            "s",
            "namespace-long/ingress-service-long:80",
            &["HTTP"],
        );
        assert!(t.len() <= 32, "{t}");
    }

    #[test]
    fn immutable_changes_change_the_name() {
        let a = target_group_name("c", "s", "ns/ing-svc:80", &["HTTP", "80", "ip"]);
        let b = target_group_name("c", "s", "ns/ing-svc:80", &["HTTP", "80", "instance"]);
        assert_ne!(a, b);
        assert_ne!(
            load_balancer_name("c", "g", 0, "internal"),
            load_balancer_name("c", "g", 0, "internet-facing")
        );
    }

    proptest! {
        #[test]
        fn lb_names_are_legal(cluster in "[a-z0-9-]{1,40}", stack in "[a-z0-9./-]{1,80}", shard in 0usize..20) {
            let n = load_balancer_name(&cluster, &stack, shard, "internal");
            prop_assert!(n.len() <= 32);
            prop_assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            prop_assert!(!n.ends_with('-'));
            prop_assert!(!n.contains("--") || stack.chars().all(|c| !c.is_ascii_alphanumeric()));
        }
    }
}
