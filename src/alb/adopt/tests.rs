use super::*;
use crate::alb::builder::tests_support::*;
use crate::alb::plan::plan;
use crate::alb::plan::sim::Sim;

/// A group of two Ingresses (one with HTTPS), as causeway would build it for cluster `c1`.
fn group() -> GroupModel {
    let anns = |https: bool| {
        let mut a = serde_json::json!({"alb.ingress.kubernetes.io/group.name": "g",
            "alb.ingress.kubernetes.io/target-type": "ip"});
        if https {
            a["alb.ingress.kubernetes.io/listen-ports"] =
                serde_json::json!("[{\"HTTP\":80},{\"HTTPS\":443}]");
        }
        a
    };
    let ings = [
        ingress(
            "ns",
            "a",
            anns(false),
            serde_json::json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
        ),
        ingress(
            "ns",
            "b",
            anns(true),
            serde_json::json!([path_rule(
                Some("b.causeway.test"),
                "/api",
                "Prefix",
                "api",
                80
            )]),
        ),
    ];
    build_group("g", &ings)
}

/// What the other controller made for `desired`: the same resources and tags under other
/// names (the peer's names carry a hash of its own inputs).
fn made_elsewhere(desired: &GroupModel) -> Observed {
    let mut sim = Sim::new(Observed::default());
    sim.apply(&plan(desired, &sim.state, "c1"));
    let mut state = sim.state;
    for (i, lb) in state.load_balancers.iter_mut().enumerate() {
        lb.name = format!("k8s-g-peer{i}");
    }
    for (i, tg) in state.target_groups.iter_mut().enumerate() {
        tg.name = format!("k8s-ns-web-peer{i}");
    }
    for (i, sg) in state.security_groups.iter_mut().enumerate() {
        sg.name = format!("k8s-g-peersg{i}");
    }
    state
}

#[test]
fn what_another_controller_made_is_adopted_and_then_plans_nothing() {
    let desired = group();
    let found = made_elsewhere(&desired);

    // Without adoption the names differ: the plan would build a second copy.
    let unadopted = plan(&desired, &found, "c1");
    assert!(
        unadopted
            .iter()
            .any(|s| matches!(s, crate::alb::plan::Step::CreateLoadBalancer { .. })),
        "{unadopted:#?}"
    );

    let adopted = matches(&desired, &found, None);
    assert_eq!(adopted.load_balancers.len(), desired.load_balancers.len());
    assert_eq!(adopted.target_groups.len(), desired.target_groups.len());
    assert_eq!(adopted.security_groups.len(), desired.security_groups.len());
    let mut renamed = desired.clone();
    rename(&mut renamed, &adopted);
    let steps = plan(&renamed, &found, "c1");
    assert!(steps.is_empty(), "{steps:#?}");
    // Renaming is stable: applying the record twice changes nothing more.
    let mut twice = renamed.clone();
    rename(&mut twice, &adopted);
    assert_eq!(twice, renamed);
}

#[test]
fn a_differing_setting_is_modified_in_place_never_recreated() {
    let desired = group();
    let mut found = made_elsewhere(&desired);
    found.load_balancers[0]
        .attributes
        .insert("idle_timeout.timeout_seconds".into(), "120".into());
    found.target_groups[0].health_check.interval_seconds = 30;
    let mut renamed = desired.clone();
    rename(&mut renamed, &matches(&desired, &found, None));
    let steps = plan(&renamed, &found, "c1");
    assert!(!steps.is_empty());
    for s in &steps {
        let d = format!("{s:?}");
        assert!(
            !d.starts_with("Create") && !d.starts_with("Delete"),
            "an adopted resource is recreated: {steps:#?}"
        );
    }
}

#[test]
fn a_resource_that_cannot_become_the_desired_one_is_not_adopted() {
    let desired = group();
    let mut found = made_elsewhere(&desired);
    found.load_balancers[0].scheme = match desired.load_balancers[0].scheme {
        Scheme::Internal => Scheme::InternetFacing,
        Scheme::InternetFacing => Scheme::Internal,
    };
    found.target_groups[0].target_type = TargetType::Instance;
    let adopted = matches(&desired, &found, None);
    assert!(adopted.load_balancers.is_empty());
    assert!(
        !adopted
            .target_groups
            .values()
            .any(|n| n == &found.target_groups[0].name)
    );
    // Another stack's resource key never matches.
    let mut other = made_elsewhere(&desired);
    for tg in &mut other.target_groups {
        tg.tags
            .insert(desired.kind.resource_key().into(), "other/x-y:80".into());
    }
    assert!(matches(&desired, &other, None).target_groups.is_empty());
}

#[test]
fn the_clusters_shared_backend_group_replaces_the_managed_one() {
    let desired = group();
    assert!(desired.security_groups.iter().any(|s| s.key == BACKEND_KEY));
    let mut found = made_elsewhere(&desired);
    found.load_balancers[0]
        .security_groups
        .push("sg-shared".into());
    let adopted = matches(&desired, &found, Some("sg-shared"));
    assert_eq!(
        adopted
            .shared_security_groups
            .get(BACKEND_KEY)
            .map(String::as_str),
        Some("sg-shared")
    );
    let mut renamed = desired.clone();
    rename(&mut renamed, &adopted);
    assert!(!renamed.security_groups.iter().any(|s| s.key == BACKEND_KEY));
    assert!(
        renamed.load_balancers[0]
            .security_groups
            .iter()
            .any(|s| s == "sg-shared")
    );
    for tg in &renamed.target_groups {
        assert_eq!(tg.binding.backend_security_group, "sg-shared");
    }
    // A shared group the load balancer does not use is not taken.
    let unused = matches(&desired, &made_elsewhere(&desired), Some("sg-shared"));
    assert!(unused.shared_security_groups.is_empty());
}
