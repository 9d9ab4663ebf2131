//! Counts what one policy decision costs in CPU instructions, which (unlike wall time on a
//! shared machine) is repeatable: the criterion bench's policies and requests, run under
//! callgrind, collecting only inside `measured`:
//!
//! ```sh
//! cargo build --release -p countersign-server --example decision_cost
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     $CARGO_TARGET_DIR/release/examples/decision_cost warm|cold 8000
//! ```
//!
//! `warm`: the agent's entities come from the engine's cache (the server's steady state);
//! `cold`: they are built for every decision.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement's setup may fail loudly

#[path = "../benches/support/policies.rs"]
mod policies;

use countersign_server::policy::document::PolicyDocument;
use countersign_server::policy::engine::evaluate;
use countersign_server::policy::facts::DecisionFacts;
use countersign_server::policy::service::PolicyEngine;

#[inline(never)]
fn measured(
    engine: &PolicyEngine,
    doc: &PolicyDocument,
    requests: &[DecisionFacts],
    n: usize,
    warm: bool,
) {
    for i in 0..n {
        let facts = &requests[i % requests.len()];
        let d = if warm {
            engine.evaluate(doc, facts)
        } else {
            evaluate(doc, facts)
        };
        std::hint::black_box(d);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let warm = args.get(1).map(String::as_str) != Some("cold");
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(8000);
    let engine = PolicyEngine::new(&policies::config()).unwrap();
    let doc = engine.compile(&policies::policies(), 1).unwrap();
    let requests = policies::requests();
    // Fill the entity cache before measuring.
    for r in &requests {
        engine.evaluate(&doc, r);
    }
    measured(&engine, &doc, &requests, n, warm);
}
