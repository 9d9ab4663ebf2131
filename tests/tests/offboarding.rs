#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! No ghost agents, on both databases. Offboarding a human (admin API) revokes every
//! credential they approved or their agents hold, suspends their agents, ends their
//! pending requests and disables their devices, in one transaction with its trace; a
//! verifier whose status TTL is 1 s rejects the credential once that second is over, the
//! agent's pending request ends in `access_denied` and its next request is refused.
//! Reactivation brings nothing back. The agent kill switch does the same for one agent.

use countersign_jose::SigningKeyPair;
use countersign_tests::ghost::{ORDER, tool_call, tool_verifier};
use countersign_tests::{Agent, Db, TestServer, both_backends};
use countersign_verifier::Rejection;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    offboarding_the_owner_ends_everything_that_rests_on_them,
    the_kill_switch_stops_one_agent_until_resumed,
    agents_go_to_the_manager_when_configured_and_reassignment_is_audited
);

/// A DPoP-bound credential for `agent`, approved by `subject` (developer approval).
async fn credential(s: &TestServer, agent: &Agent, subject: &str, dpop: &SigningKeyPair) -> String {
    let tokens = s
        .approved_tokens(
            agent,
            subject,
            &[("authorization_details", ORDER)],
            Some(dpop),
        )
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn jti(credential: &str) -> String {
    countersign_tests::jwt_claims(credential)["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn owner_of(s: &TestServer, client_id: &str) -> String {
    let client = s.state().store.client(client_id).await.unwrap();
    client
        .expect("the agent exists")
        .owner_subject
        .into_string()
}

async fn kinds_in_trail(s: &TestServer) -> Vec<String> {
    let admin = s.admin_api().await;
    let (status, events) = admin
        .call(Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn offboarding_the_owner_ends_everything_that_rests_on_them(db: Db) {
    let s = TestServer::start(db).await;
    // Credentials are presented before and after offboarding: usable more than once.
    s.install_policy(countersign_tests::ghost::STANDING_POLICY)
        .await;
    s.clock.follow_system_time();
    s.human("alice").await;
    s.human("bob").await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    let bobs = s.agent("bobs-agent", "bob", "private_key_jwt").await;
    let dpop = SigningKeyPair::generate();
    // Held by alice's agent; approved by alice for bob's agent; bob's own.
    let held = credential(&s, &agent, "alice", &dpop).await;
    let approved = credential(&s, &bobs, "alice", &dpop).await;
    let unrelated = credential(&s, &bobs, "bob", &dpop).await;
    let pending = s.start_request(&agent, "alice").await;
    let bobs_for_alice = s.start_request(&bobs, "alice").await;
    let bobs_pending = s.start_request(&bobs, "bob").await;

    let v = tool_verifier(&s).await;
    let now = s.now_s();
    assert!(
        tool_call(&v, &held, &dpop, now).await.is_ok(),
        "valid, list cached"
    );

    let admin = s.admin_api().await;
    let (status, done) = admin
        .call(
            Method::POST,
            "/admin/v1/humans/alice/deactivate",
            Some(json!({"reason": "left the company"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        serde_json::from_value::<Vec<String>>(done["revoked"].clone())
            .map(sorted)
            .unwrap(),
        sorted(vec![jti(&held), jti(&approved)])
    );
    assert_eq!(done["suspended_agents"], json!(["procurement"]));
    assert_eq!(
        serde_json::from_value::<Vec<String>>(done["ended_requests"].clone()).unwrap(),
        sorted(vec![pending.clone(), bobs_for_alice.clone()])
    );

    // Once the verifier's cached list is older than its 1 s TTL, the credentials are dead;
    // bob's own credential is not touched.
    let later = s.now_s() + 2;
    for c in [&held, &approved] {
        assert_eq!(
            tool_call(&v, c, &dpop, later).await.unwrap_err(),
            Rejection::Revoked
        );
    }
    assert!(tool_call(&v, &unrelated, &dpop, later).await.is_ok());

    // The pending requests ended: bob's agent is told access_denied; alice's agent is
    // suspended, so its polls and new requests are refused; bob's own request waits on.
    s.clock.advance_ms(5_000);
    let (_, body) = s.poll(&bobs, &bobs_for_alice).await;
    assert_eq!(body["error"], "access_denied", "{body}");
    let (_, body) = s.poll(&agent, &pending).await;
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (_, body) = s
        .bc_authorize(&bobs, &[("scope", "openid"), ("login_hint", "alice")])
        .await;
    assert_eq!(body["error"], "access_denied", "{body}");
    let (_, body) = s
        .bc_authorize(&agent, &[("scope", "openid"), ("login_hint", "alice")])
        .await;
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (_, body) = s.poll(&bobs, &bobs_pending).await;
    assert_eq!(body["error"], "authorization_pending", "{body}");

    // Each effect is in the trail, and the chain holds.
    let kinds = kinds_in_trail(&s).await;
    for kind in [
        "human.offboarded",
        "credential.revoked",
        "agents.suspended",
        "requests.ended",
        "devices.disabled",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    let (_, report) = admin
        .call(Method::GET, "/admin/v1/audit/verify", None)
        .await;
    assert_eq!(report["intact"], true, "{report}");

    // Reactivation resurrects nothing: the credential stays revoked and the agent
    // suspended until it is resumed; resumed, it works again with new credentials only.
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/humans/alice/activate", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = s
        .bc_authorize(&agent, &[("scope", "openid"), ("login_hint", "alice")])
        .await;
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/agents/procurement/resume", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let fresh = credential(&s, &agent, "alice", &dpop).await;
    let now = s.now_s() + 4;
    assert!(tool_call(&v, &fresh, &dpop, now).await.is_ok());
    assert_eq!(
        tool_call(&v, &held, &dpop, now).await.unwrap_err(),
        Rejection::Revoked
    );

    // Bad input changes nothing.
    let (status, body) = admin
        .call(
            Method::POST,
            "/admin/v1/humans/bob/deactivate",
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = admin
        .call(
            Method::POST,
            "/admin/v1/humans/nobody/deactivate",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        tool_call(&v, &unrelated, &dpop, s.now_s() + 6)
            .await
            .is_ok()
    );
    s.stop().await;
}

async fn the_kill_switch_stops_one_agent_until_resumed(db: Db) {
    let s = TestServer::start(db).await;
    // Credentials are presented before and after offboarding: usable more than once.
    s.install_policy(countersign_tests::ghost::STANDING_POLICY)
        .await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    let sibling = s.agent("travel", "alice", "private_key_jwt").await;
    let dpop = SigningKeyPair::generate();
    let held = credential(&s, &agent, "alice", &dpop).await;
    let siblings = credential(&s, &sibling, "alice", &dpop).await;
    let pending = s.start_request(&agent, "alice").await;
    let v = tool_verifier(&s).await;
    assert!(tool_call(&v, &held, &dpop, s.now_s()).await.is_ok());

    let admin = s.admin_api().await;
    let (status, done): (StatusCode, Value) = admin
        .call(
            Method::POST,
            "/admin/v1/agents/procurement/suspend",
            Some(json!({"reason": "prompt injection suspected"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["revoked"], json!([jti(&held)]));
    assert_eq!(done["ended_requests"], json!([pending]));

    let later = s.now_s() + 2;
    assert_eq!(
        tool_call(&v, &held, &dpop, later).await.unwrap_err(),
        Rejection::Revoked
    );
    assert!(
        tool_call(&v, &siblings, &dpop, later).await.is_ok(),
        "the owner's other agent is untouched"
    );
    let (_, body) = s
        .bc_authorize(&agent, &[("scope", "openid"), ("login_hint", "alice")])
        .await;
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (_, body) = s
        .bc_authorize(&sibling, &[("scope", "openid"), ("login_hint", "alice")])
        .await;
    assert!(body["auth_req_id"].is_string(), "{body}");

    let (status, _) = admin
        .call(Method::POST, "/admin/v1/agents/procurement/resume", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let fresh = credential(&s, &agent, "alice", &dpop).await;
    let now = s.now_s() + 4;
    assert!(tool_call(&v, &fresh, &dpop, now).await.is_ok());
    assert_eq!(
        tool_call(&v, &held, &dpop, now).await.unwrap_err(),
        Rejection::Revoked
    );
    assert!(
        kinds_in_trail(&s)
            .await
            .iter()
            .any(|k| k == "agent.suspended")
    );

    let (status, _) = admin
        .call(
            Method::POST,
            "/admin/v1/agents/nobody/suspend",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.stop().await;
}

async fn agents_go_to_the_manager_when_configured_and_reassignment_is_audited(db: Db) {
    let s = TestServer::start_with(db, |c| {
        c.offboarding.agents = countersign_server::config::AgentFate::ReassignToManager;
    })
    .await;
    s.clock.follow_system_time();
    s.human("mgr").await;
    s.human("bob").await;
    s.human_with_manager("alice", "mgr").await;
    let g = countersign_tests::ghost::Ghost::new(&s, "procurement", "alice").await;
    let admin = s.admin_api().await;
    let (status, done) = admin
        .call(
            Method::POST,
            "/admin/v1/humans/alice/deactivate",
            Some(json!({"reason": "left"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["reassigned_agents"], json!(["procurement"]));
    assert_eq!(done["reassigned_to"], "mgr");
    assert_eq!(done["suspended_agents"], json!([]));
    // The credential alice approved dies all the same; the agent works on for its manager.
    assert_eq!(g.call(s.now_s() + 2).await.unwrap_err(), Rejection::Revoked);
    let (_, body) = s
        .bc_authorize(&g.agent, &[("scope", "openid"), ("login_hint", "mgr")])
        .await;
    assert!(body["auth_req_id"].is_string(), "{body}");
    assert!(
        kinds_in_trail(&s)
            .await
            .iter()
            .any(|k| k == "agents.reassigned")
    );

    // Explicit reassignment: to an active human only, audited.
    let reassign = |agent: &'static str, owner: &'static str| {
        let admin = &admin;
        async move {
            let path = format!("/admin/v1/agents/{agent}/reassign");
            let body = json!({"owner": owner, "reason": "team change"});
            admin.call(Method::POST, &path, Some(body)).await.0
        }
    };
    assert_eq!(reassign("procurement", "bob").await, StatusCode::NO_CONTENT);
    assert_eq!(owner_of(&s, "procurement").await, "bob");
    assert_eq!(
        reassign("procurement", "alice").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "alice is inactive"
    );
    assert_eq!(reassign("nobody", "bob").await, StatusCode::NOT_FOUND);
    assert_eq!(owner_of(&s, "procurement").await, "bob");
    let (_, events) = admin
        .call(
            Method::GET,
            "/admin/v1/audit?subject=agent:procurement",
            None,
        )
        .await;
    assert_eq!(events[0]["kind"], "agent.reassigned", "{events}");
    assert_eq!(events[0]["detail"]["from"], "mgr");
    assert_eq!(events[0]["detail"]["to"], "bob");
    s.stop().await;
}
