#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The policy engine where it runs: every `bc-authorize` and `POST /v1/decisions` is
//! decided by the active Cedar policy. Allowed actions get a credential on the first
//! token request, with the policy as evidence; step-ups wait for the approver the policy
//! names; denials are `access_denied` at once, naming the policy that fired.

use countersign_jose::{SigningKeyPair, random_b64url};
use countersign_shared::approval::DecisionKind;
use countersign_tests::{
    Agent, CIBA_GRANT, Db, TestServer, assert_oauth_error, both_backends, jwt_claims,
    resource_proof,
};
use countersign_verifier::{Presentation, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    procurement_thresholds_and_destructive_actions,
    approvers_are_routed_with_four_eyes,
    the_decision_api_answers_gateways_and_dry_runs,
    split_entries_are_decided_on_their_total,
    a_step_up_that_fails_to_evaluate_steps_up,
);

const PROCUREMENT: &str = include_str!("../../docs/policy/examples/procurement.cedar");

fn order(amount: u32) -> String {
    json!([{"type": "purchase_order", "vendor": "Acme", "amount": amount, "currency": "USD"}])
        .to_string()
}

/// A server with the procurement policy active, the destructive `delete_environment`
/// action declared, alice (managed by bob) and her procurement agent.
async fn server(db: Db) -> (TestServer, Agent) {
    let s = TestServer::start_with(db, |c| {
        c.authorization_details_types.insert(
            "delete_environment".into(),
            json!({"type": "object", "required": ["type", "target"],
                   "properties": {"type": {"const": "delete_environment"}, "target": {"type": "string"}}}),
        );
        c.policy
            .actions
            .insert("delete_environment".into(), "destructive".into());
    })
    .await;
    s.human("bob").await;
    s.human_with_manager("alice", "bob").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    s.install_policy(PROCUREMENT).await;
    (s, agent)
}

async fn ask(s: &TestServer, agent: &Agent, details: &str) -> (StatusCode, Value) {
    s.bc_authorize(
        agent,
        &[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("binding_message", "W4SCT"),
            ("authorization_details", details),
        ],
    )
    .await
}

async fn token(
    s: &TestServer,
    agent: &Agent,
    id: &str,
    dpop: &SigningKeyPair,
) -> (StatusCode, Value) {
    s.clock.advance_ms(1_000);
    let proof = s.dpop_proof(dpop, &s.url("/token"), &random_b64url(12));
    s.post_as_with(
        agent,
        "/token",
        &[("grant_type", CIBA_GRANT), ("auth_req_id", id)],
        Some(proof),
    )
    .await
}

async fn procurement_thresholds_and_destructive_actions(db: Db) {
    let (s, agent) = server(db).await;
    let dpop = SigningKeyPair::generate();

    // $399: allowed by policy; the very first token request gets the credential.
    let (status, body) = ask(&s, &agent, &order(399)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let (status, tokens) = token(&s, &agent, &id, &dpop).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let credential = jwt_claims(tokens["access_token"].as_str().unwrap());
    let evidence = &credential["evidence"][0];
    assert_eq!(evidence["type"], json!(["PolicyDecision"]));
    assert_eq!(evidence["approver"], Value::Null, "nobody was asked");
    assert_eq!(
        evidence["policy"],
        json!({"id": "small-orders", "version": 1})
    );
    assert_eq!(
        evidence["reasons"],
        json!(["orders under $400 pass without approval"])
    );
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["acr"], "urn:countersign:acr:policy");

    // A tool verifies it offline and learns that a policy, not a person, allowed it
    // (revocation is covered elsewhere; status is not consulted here).
    let verifier = Verifier::builder()
        .trust_issuer(s.issuer(), &s.jwks().await)
        .fail_open_when_status_unavailable()
        .build();
    let call = json!({"vendor": "Acme", "amount": 399, "currency": "USD"});
    let access = tokens["access_token"].as_str().unwrap();
    let url = "https://erp.example/orders";
    let proof = resource_proof(&dpop, "POST", url, access, s.now_s());
    let verdict = verifier
        .verify_at(
            &Presentation {
                token: access,
                dpop_proof: Some(&proof),
                method: "POST",
                url,
                action: Some("purchase_order"),
                arguments: Some(&call),
            },
            s.now_s(),
        )
        .unwrap();
    assert_eq!(verdict.approver, None);
    assert_eq!(verdict.approval_method.as_deref(), Some("policy"));
    assert_eq!(
        verdict.policy,
        Some(json!({"id": "small-orders", "version": 1}))
    );

    // $400 and $1,200: step-up to the owner; nothing until she approves.
    for amount in [400, 1200] {
        let (status, body) = ask(&s, &agent, &order(amount)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["auth_req_id"].as_str().unwrap().to_owned();
        let (_, pending) = token(&s, &agent, &id, &dpop).await;
        assert_eq!(
            pending["error"], "authorization_pending",
            "{amount}: {pending}"
        );
        assert_eq!(s.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
        let (status, tokens) = token(&s, &agent, &id, &dpop).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let credential = jwt_claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(
            credential["evidence"][0]["policy"],
            json!({"id": "large-orders", "version": 1})
        );
        // @validity("PT15M") set the credential's lifetime.
        assert_eq!(tokens["expires_in"], 900);
        assert_eq!(
            credential["exp"].as_i64().unwrap() - credential["iat"].as_i64().unwrap(),
            900
        );
    }

    // Destructive: denied at once, naming the policy.
    let (status, body) = ask(
        &s,
        &agent,
        &json!([{"type": "delete_environment", "target": "production"}]).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("destructive actions are never allowed to agents"),
        "{body}"
    );

    // Each decision is in the trace with the policy that determined it.
    let admin = s.admin_api().await;
    let (_, events) = admin
        .call(reqwest::Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    let decisions: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "decision.made")
        .collect();
    assert_eq!(decisions.len(), 4);
    let newest = &decisions[0]["detail"];
    assert_eq!(newest["outcome"], "deny");
    assert_eq!(
        newest["policies"],
        json!([{"id": "no-destruction", "version": 1}])
    );
    assert_eq!(newest["action"], "delete_environment");
    assert!(newest["arguments_digest"].as_str().unwrap().len() == 64);
    let (_, report) = admin
        .call(reqwest::Method::GET, "/admin/v1/audit/verify", None)
        .await;
    assert_eq!(report["intact"], true, "{report}");
    s.stop().await;
}

async fn approvers_are_routed_with_four_eyes(db: Db) {
    let (s, agent) = server(db).await;
    let alice = s.wallet("alice").await;
    let bob = s.wallet("bob").await;
    let pending_ids = |w: &countersign_tests::wallets::TestWallet| {
        let w = w.wallet.clone();
        async move {
            tokio::task::spawn_blocking(move || w.pending())
                .await
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        }
    };

    // $1,200 goes to the owner only.
    let (_, body) = ask(&s, &agent, &order(1200)).await;
    let owners = body["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(pending_ids(&alice).await, std::slice::from_ref(&owners));
    assert!(pending_ids(&bob).await.is_empty());

    // $12,000: the manager, and under four-eyes not the owner, even though the large-order
    // policy (owner) matched too.
    let (_, body) = ask(&s, &agent, &order(12_000)).await;
    let big = body["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(pending_ids(&bob).await, std::slice::from_ref(&big));
    assert!(!pending_ids(&alice).await.contains(&big));
    // The owner's wallet cannot even open it.
    let refused = alice
        .run({
            let big = big.clone();
            move |w| w.show(&big)
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // The manager sees why, and approves; the credential names him.
    let shown = bob
        .run({
            let big = big.clone();
            move |w| w.show(&big)
        })
        .await
        .unwrap();
    assert_eq!(shown.transaction.approver, "bob");
    assert!(
        shown
            .transaction
            .policy_reason
            .as_deref()
            .unwrap()
            .contains("manager"),
        "{:?}",
        shown.transaction.policy_reason
    );
    bob.run({
        let big = big.clone();
        move |w| w.decide(&big, DecisionKind::Approve, None)
    })
    .await
    .unwrap();
    let dpop = SigningKeyPair::generate();
    let (status, tokens) = token(&s, &agent, &big, &dpop).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let credential = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(credential["evidence"][0]["approver"]["subject"], "bob");
    assert_eq!(
        credential["evidence"][0]["policies"],
        json!([{"id": "large-orders", "version": 1}, {"id": "very-large-orders", "version": 1}])
    );
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id_token["sub"], "bob",
        "the ID token names who authenticated"
    );

    // Without a manager, four-eyes leaves nobody: denied, saying so.
    s.human("carol").await;
    let orphan = s
        .agent("carols-agent", "carol", "client_secret_basic")
        .await;
    let (status, body) = s
        .bc_authorize(
            &orphan,
            &[
                ("scope", "openid"),
                ("login_hint", "carol"),
                ("authorization_details", &order(12_000)),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no active approver"),
        "{body}"
    );
    s.stop().await;
}

async fn the_decision_api_answers_gateways_and_dry_runs(db: Db) {
    let (s, agent) = server(db).await;
    let decide = |params: Vec<(&'static str, String)>| {
        let s = &s;
        let agent = &agent;
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.post_as(agent, "/v1/decisions", &params).await
        }
    };
    let (status, small) = decide(vec![
        ("action", "purchase_order".into()),
        (
            "arguments",
            json!({"vendor": "Acme", "amount": 120, "currency": "USD"}).to_string(),
        ),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{small}");
    assert_eq!(small["decision"], "allow");
    assert!(small["decision_id"].as_str().unwrap().starts_with("dec_"));
    assert_eq!(
        small["policies"],
        json!([{"id": "small-orders", "version": 1}])
    );

    let (_, big) = decide(vec![("authorization_details", order(1200))]).await;
    assert_eq!(big["decision"], "step_up");
    assert_eq!(big["approver_routes"], json!(["owner"]));
    assert_eq!(big["approvers"], json!(["alice"]));
    assert_eq!(big["validity_secs"], 900);

    let (_, destructive) = decide(vec![
        ("action", "delete_environment".into()),
        ("arguments", json!({"target": "production"}).to_string()),
        ("dry_run", "true".into()),
    ])
    .await;
    assert_eq!(destructive["decision"], "deny");
    assert_eq!(destructive["dry_run"], true);
    assert!(destructive.get("decision_id").is_none(), "{destructive}");

    // Only the two real decisions are in the trace.
    let admin = s.admin_api().await;
    let (_, events) = admin
        .call(reqwest::Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    let subjects: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "decision.made")
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            big["decision_id"].as_str().unwrap(),
            small["decision_id"].as_str().unwrap()
        ]
    );

    // Bad input gets the OAuth error for it.
    let e = decide(vec![("action", "launch_rockets".into())]).await;
    assert_oauth_error(e, StatusCode::BAD_REQUEST, "invalid_authorization_details");
    let e = decide(vec![
        ("action", "purchase_order".into()),
        ("arguments", json!({"vendor": "Acme"}).to_string()),
    ])
    .await;
    assert_oauth_error(e, StatusCode::BAD_REQUEST, "invalid_authorization_details");
    let e = decide(vec![
        ("action", "purchase_order".into()),
        ("arguments", "[1]".into()),
    ])
    .await;
    assert_oauth_error(e, StatusCode::BAD_REQUEST, "invalid_request");
    let e = decide(vec![
        ("authorization_details", order(1)),
        ("dry_run", "maybe".into()),
    ])
    .await;
    assert_oauth_error(e, StatusCode::BAD_REQUEST, "invalid_request");
    let e = decide(vec![
        ("authorization_details", order(1)),
        ("login_hint", "nobody".into()),
    ])
    .await;
    assert_oauth_error(e, StatusCode::BAD_REQUEST, "unknown_user_id");
    let stranger = Agent {
        secret: Some("wrong".into()),
        ..s.agent("other", "alice", "client_secret_basic").await
    };
    let e = s
        .post_as(
            &stranger,
            "/v1/decisions",
            &[("authorization_details", &order(1))],
        )
        .await;
    assert_oauth_error(e, StatusCode::UNAUTHORIZED, "invalid_client");
    s.stop().await;
}

/// Ten $399 `purchase_order` entries in one request are a $3,990 order: the procurement
/// policy (thresholds on `context.totals`) holds it for the owner instead of allowing it.
async fn split_entries_are_decided_on_their_total(db: Db) {
    let (s, agent) = server(db).await;
    let dpop = SigningKeyPair::generate();
    let entry =
        json!({"type": "purchase_order", "vendor": "Acme", "amount": 399, "currency": "USD"});
    let ten = Value::Array(vec![entry.clone(); 10]).to_string();
    let (status, body) = ask(&s, &agent, &ten).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let (_, pending) = token(&s, &agent, &id, &dpop).await;
    assert_eq!(pending["error"], "authorization_pending", "{pending}");

    // The trace records the totals each entry was decided with.
    let admin = s.admin_api().await;
    let (_, events) = admin
        .call(reqwest::Method::GET, "/admin/v1/audit?limit=5", None)
        .await;
    let decision = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "decision.made")
        .unwrap();
    assert_eq!(decision["detail"]["outcome"], "step_up", "{decision}");
    assert_eq!(
        decision["detail"]["policies"],
        json!([{"id": "large-orders", "version": 1}])
    );

    // Two entries: each alone and together under $400 still pass; over $400 together not.
    let two = |a: u32, b: u32| {
        json!([
            {"type": "purchase_order", "vendor": "Acme", "amount": a, "currency": "USD"},
            {"type": "purchase_order", "vendor": "Globex", "amount": b, "currency": "USD"},
        ])
        .to_string()
    };
    let (_, body) = ask(&s, &agent, &two(150, 200)).await;
    let small = body["auth_req_id"].as_str().unwrap().to_owned();
    let (status, tokens) = token(&s, &agent, &small, &dpop).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (_, body) = ask(&s, &agent, &two(250, 200)).await;
    let split = body["auth_req_id"].as_str().unwrap().to_owned();
    let (_, pending) = token(&s, &agent, &split, &dpop).await;
    assert_eq!(pending["error"], "authorization_pending", "{pending}");
    s.stop().await;
}

/// A `@step_up` permit whose condition errors (here an overflow) might have applied: the
/// action waits for a human instead of passing on the other permit.
async fn a_step_up_that_fails_to_evaluate_steps_up(db: Db) {
    let (s, agent) = server(db).await;
    s.install_policy(
        r#"@id("all-orders") permit (principal, action == Action::"purchase_order", resource);
@id("broken-step-up") @step_up @approver("owner")
permit (principal, action == Action::"purchase_order", resource)
when { context.arguments.amount * 9223372036854775807 > 0 };"#,
    )
    .await;
    let dpop = SigningKeyPair::generate();
    let (status, body) = ask(&s, &agent, &order(1200)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let (_, pending) = token(&s, &agent, &id, &dpop).await;
    assert_eq!(pending["error"], "authorization_pending", "{pending}");
    let request = s.auth_request(&id).await;
    assert_eq!(
        request.policy_outcome,
        Some(countersign_server::policy::Outcome::StepUp)
    );
    s.stop().await;
}
