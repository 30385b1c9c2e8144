//! Builder + planner for one IngressGroup of 100 Ingresses with 500 paths (split onto 5 ALBs).
//! Run: `cargo bench --bench alb --features testing` (the fixtures and the in-memory AWS are
//! behind the `testing` feature).

use causeway::alb::builder::tests_support::*;
use causeway::alb::model::GroupModel;
use causeway::alb::observed::Observed;
use causeway::alb::plan::{plan, sim::Sim};
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::networking::v1::Ingress;
use std::hint::black_box;

fn group() -> Vec<Ingress> {
    (0..100)
        .map(|i| {
            let rules: Vec<serde_json::Value> = (0..5)
                .map(|p| {
                    path_rule(
                        Some(&format!("h{i}.causeway.test")),
                        &format!("/p{p}"),
                        "Prefix",
                        if p % 2 == 0 { "web" } else { "api" },
                        80,
                    )
                })
                .collect();
            ingress(
                "ns",
                &format!("ing{i:03}"),
                serde_json::json!({"alb.ingress.kubernetes.io/group.name": "bench"}),
                serde_json::json!(rules),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ings = group();
    let model: GroupModel = build_group("bench", &ings);
    assert_eq!(model.rule_count(), 500);
    let mut sim = Sim::new(Observed::default());
    sim.apply(&plan(&model, &sim.state, "c1"));
    let converged = sim.state.clone();
    assert!(plan(&model, &converged, "c1").is_empty());

    c.bench_function("alb build 100 ingresses / 500 paths", |b| {
        b.iter(|| black_box(build_group("bench", black_box(&ings))))
    });
    c.bench_function("alb build + plan from nothing", |b| {
        b.iter(|| {
            let m = build_group("bench", black_box(&ings));
            black_box(plan(&m, &Observed::default(), "c1"))
        })
    });
    c.bench_function("alb build + plan, steady state", |b| {
        b.iter(|| {
            let m = build_group("bench", black_box(&ings));
            black_box(plan(&m, black_box(&converged), "c1"))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
