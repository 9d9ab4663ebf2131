#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark setup fails loudly

//! In-process policy decisions per second on one core, with 100 realistic policies over
//! 20 actions: what `bc-authorize` and `POST /v1/decisions` spend deciding, without I/O.
//! Each iteration builds the Cedar request, context and entities from the facts (as the
//! server does for every request) and evaluates.
//!
//! `cargo bench -p countersign-server --bench decisions`

use std::hint::black_box;

use countersign_server::policy::Outcome;
use countersign_server::policy::engine::evaluate;
use countersign_server::policy::facts::DecisionFacts;
use countersign_server::policy::service::PolicyEngine;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/policies.rs"]
mod policies;
use policies::{config, policies, requests};

fn bench(c: &mut Criterion) {
    let config = config();
    let engine = PolicyEngine::new(&config).unwrap();
    let doc = engine.compile(&policies(), 1).unwrap();
    assert_eq!(doc.policies.len(), 100);
    // A mix of outcomes across the actions.
    let requests: Vec<DecisionFacts> = requests();
    let outcomes: Vec<Outcome> = requests.iter().map(|f| evaluate(&doc, f).outcome).collect();
    assert!(outcomes.contains(&Outcome::Allow) && outcomes.contains(&Outcome::StepUp));

    let mut group = c.benchmark_group("policy_decision");
    group.throughput(Throughput::Elements(1));
    let mut n = 0;
    // What the server does: the agent's entities come from the engine's cache after its
    // first request; the context is built and the policies evaluated every time.
    group.bench_function("100_policies_20_actions", |b| {
        b.iter(|| {
            n = (n + 1) % requests.len();
            black_box(engine.evaluate(&doc, black_box(&requests[n])))
        })
    });
    // An agent the server has not seen (or whose directory facts just changed): the
    // entities are built too.
    group.bench_function("100_policies_20_actions_cold_entities", |b| {
        b.iter(|| {
            n = (n + 1) % requests.len();
            black_box(evaluate(&doc, black_box(&requests[n])))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
