#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Offboarding ends what a human *decided*, wherever the request was routed: a manager
//! who approved an owner's order, a group member, a role holder. Before, credentials were
//! selected by the human the request named, so an approval routed to someone else
//! survived its approver's departure. And an approval nobody collected yet is never
//! issued once its human or approver is gone.

use countersign_shared::approval::DecisionKind;
use countersign_tests::ghost::{ORDER, tool_call, tool_verifier};
use countersign_tests::wallets::TestWallet;
use countersign_tests::{Agent, Db, TestServer, both_backends, jwt_claims};
use countersign_verifier::Rejection;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    a_routed_approval_dies_with_its_approver,
    an_approved_uncollected_request_yields_no_token_after_offboarding,
    the_token_endpoint_refuses_for_an_inactive_human_or_suspended_agent,
);

/// Orders step up to the owner's manager (bob) and may be used again within validity.
const TO_THE_MANAGER: &str = r#"@id("manager-approves") @step_up @approver("manager") @max_uses("unlimited")
permit (principal, action, resource);"#;

async fn server(db: Db) -> (TestServer, Agent) {
    let s = TestServer::start(db).await;
    s.clock.follow_system_time();
    s.human("bob").await;
    s.human_with_manager("alice", "bob").await;
    s.install_policy(TO_THE_MANAGER).await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    (s, agent)
}

/// A request for `ORDER` in alice's name, approved in `approver`'s wallet.
async fn approved_by(s: &TestServer, agent: &Agent, approver: &TestWallet) -> String {
    let (status, body) = s
        .bc_authorize(
            agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", "W4SCT"),
                ("authorization_details", ORDER),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    approver
        .run({
            let id = id.clone();
            move |w| {
                w.show(&id)?;
                w.decide(&id, DecisionKind::Approve, None)
            }
        })
        .await
        .unwrap();
    id
}

async fn collect(s: &TestServer, agent: &Agent, id: &str) -> String {
    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(agent, id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn a_routed_approval_dies_with_its_approver(db: Db) {
    let (s, agent) = server(db).await;
    let bob = s.wallet("bob").await;
    let id = approved_by(&s, &agent, &bob).await;
    let credential = collect(&s, &agent, &id).await;
    let claims = jwt_claims(&credential);
    assert_eq!(claims["evidence"][0]["approver"]["subject"], "bob");
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let v = tool_verifier(&s).await;
    assert!(
        tool_call(&v, &credential, &agent.dpop, s.now_s())
            .await
            .is_ok()
    );

    // The admin API lists it as approved by bob, not by alice (whom the request named).
    let admin = s.admin_api().await;
    let (_, by_bob) = admin
        .call(Method::GET, "/admin/v1/credentials?approver=bob", None)
        .await;
    assert_eq!(by_bob.as_array().unwrap().len(), 1, "{by_bob}");

    // Bob leaves: the credential he approved is revoked, though alice's agent holds it
    // and the request named alice.
    let (status, done) = admin
        .call(
            Method::POST,
            "/admin/v1/humans/bob/deactivate",
            Some(json!({"reason": "left"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["revoked"], json!([jti]), "{done}");
    assert_eq!(
        tool_call(&v, &credential, &agent.dpop, s.now_s() + 2)
            .await
            .unwrap_err(),
        Rejection::Revoked
    );
    s.stop().await;
}

async fn an_approved_uncollected_request_yields_no_token_after_offboarding(db: Db) {
    let (s, agent) = server(db).await;
    let bob = s.wallet("bob").await;
    // Approved by bob, not yet collected by the agent.
    let id = approved_by(&s, &agent, &bob).await;
    let admin = s.admin_api().await;
    let (status, done) = admin
        .call(
            Method::POST,
            "/admin/v1/humans/bob/deactivate",
            Some(json!({"reason": "left"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["ended_requests"], json!([id]), "{done}");
    s.clock.advance_ms(1_000);
    let (status, body) = s.poll(&agent, &id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied")),
        "{body}"
    );
    let row = s.auth_request(&id).await;
    assert_eq!(row.status.as_str(), "denied");
    assert!(
        s.state()
            .store
            .tokens(countersign_server::store::tokens::TokenSelector::All, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}

/// The token endpoint checks, in the statement that issues, that the human the request
/// named, the human who approved it and the agent are all still active: a deactivation
/// that bypassed offboarding (a direct directory change) still stops issuance.
async fn the_token_endpoint_refuses_for_an_inactive_human_or_suspended_agent(db: Db) {
    let (s, agent) = server(db).await;
    let bob = s.wallet("bob").await;
    for who in ["alice", "bob"] {
        let id = approved_by(&s, &agent, &bob).await;
        s.deactivate_only(who).await;
        s.clock.advance_ms(1_000);
        let (status, body) = s.poll(&agent, &id).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("access_denied")),
            "{who}: {body}"
        );
        let row = s.auth_request(&id).await;
        assert_eq!(row.status.as_str(), "approved", "{who}: nothing was issued");
        s.execute_sql(&format!(
            "UPDATE humans SET active = 1 WHERE subject = '{who}'"
        ))
        .await;
        s.state().store.forget_directory_cache();
    }
    // A suspended agent's approved request is ended with the suspension.
    let id = approved_by(&s, &agent, &bob).await;
    let admin = s.admin_api().await;
    let (status, done) = admin
        .call(
            Method::POST,
            "/admin/v1/agents/procurement/suspend",
            Some(json!({"reason": "compromised"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // (With the requests approved above, whose humans came back meanwhile.)
    assert!(
        done["ended_requests"]
            .as_array()
            .unwrap()
            .contains(&json!(id)),
        "{done}"
    );
    s.stop().await;
}
