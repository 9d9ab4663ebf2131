#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Every way to get an approval the human did not give is refused with a clear reason,
//! and nothing is issued: a changed amount, a replayed or moved approval, another human's
//! device, an expired request, a wrong RP ID or origin, an assertion without user
//! verification, a stale signature counter, and (on the wallet side) a request object
//! the pinned server key did not sign.

use std::sync::Arc;

use countersign_jose::{SigningKeyPair, UnverifiedJws, random_b64url};
use countersign_shared::approval::{APPROVAL_TYP, ApprovalClaims, DecisionKind};
use countersign_tests::wallets::{TestWallet, assert_refused};
use countersign_tests::{Agent, Db, TestServer};
use countersign_wallet_core::software::{AuthenticatorFaults, SoftwareKeystore};
use countersign_wallet_core::wallet::DEVICE_KEY_ALIAS;
use countersign_wallet_core::{DeviceKey, WalletError};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Setup {
    s: TestServer,
    agent: Agent,
    wallet: TestWallet,
}

async fn setup() -> Setup {
    let s = TestServer::start(Db::Sqlite).await;
    s.human("alice").await;
    s.human("bob").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let wallet = s.wallet("alice").await;
    Setup { s, agent, wallet }
}

async fn request(s: &TestServer, agent: &Agent, amount: u32) -> String {
    let details = format!(
        r#"[{{"type":"purchase_order","vendor":"Acme","amount":{amount},"currency":"USD"}}]"#
    );
    let (status, body) = s
        .bc_authorize(
            agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("requested_expiry", "60"),
                ("authorization_details", &details),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["auth_req_id"].as_str().unwrap().to_owned()
}

async fn show(wallet: &TestWallet, id: &str) -> Result<(), WalletError> {
    let id = id.to_owned();
    wallet.run(move |w| w.show(&id).map(|_| ())).await
}

async fn decide(wallet: &TestWallet, id: &str) -> Result<(), WalletError> {
    let id = id.to_owned();
    wallet
        .run(move |w| w.decide(&id, DecisionKind::Approve, None).map(|_| ()))
        .await
}

/// Nothing was issued: the agent is still told to wait.
async fn nothing_issued(s: &TestServer, agent: &Agent, id: &str) {
    s.clock.advance_ms(1_000);
    let (_, body) = s.poll(agent, id).await;
    assert_eq!(body["error"], "authorization_pending", "{body}");
}

fn device(wallet: &TestWallet) -> DeviceKey {
    DeviceKey::new(
        Arc::new(SoftwareKeystore::new(wallet.storage.clone())),
        DEVICE_KEY_ALIAS,
    )
}

/// POSTs a decision with a valid device proof, as a tampering client could.
async fn post_decision(
    s: &TestServer,
    wallet: &TestWallet,
    id: &str,
    approval: &str,
) -> (StatusCode, Value) {
    let path = format!("/wallet/v1/requests/{id}/decision");
    let proof = device(wallet).proof("POST", &s.url(&path)).unwrap();
    let resp = s
        .http
        .post(s.url(&path))
        .header("DPoP", proof)
        .json(&json!({ "approval": approval }))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_changed_after_display_cannot_be_approved() {
    let Setup { s, agent, wallet } = setup().await;
    let id = request(&s, &agent, 1200).await;
    show(&wallet, &id).await.unwrap();
    s.execute_sql(&format!(
        "UPDATE auth_requests SET authorization_details = \
         '[{{\"type\":\"purchase_order\",\"vendor\":\"Acme\",\"amount\":12000,\"currency\":\"USD\"}}]' \
         WHERE id = '{id}'"
    ))
    .await;
    assert_refused(decide(&wallet, &id).await, 422, "transaction hash mismatch");
    nothing_issued(&s, &agent, &id).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_cannot_be_replayed_or_moved_to_another_request() {
    let Setup { s, agent, wallet } = setup().await;
    let first = request(&s, &agent, 100).await;
    show(&wallet, &first).await.unwrap();
    decide(&wallet, &first).await.unwrap();
    let stored = s.auth_request(&first).await;
    let approval = stored.approval_jws.unwrap();

    // Replayed on the same request: already decided.
    let (status, body) = post_decision(&s, &wallet, &first, &approval).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Moved to another request: it names the first one.
    let second = request(&s, &agent, 100).await;
    show(&wallet, &second).await.unwrap();
    let (status, body) = post_decision(&s, &wallet, &second, &approval).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"].as_str().unwrap().contains("another request"),
        "{body}"
    );

    // Re-signed for the second request around the first request's (used) assertion.
    let mut claims: ApprovalClaims = UnverifiedJws::parse(&approval)
        .unwrap()
        .insecure_claims()
        .unwrap();
    let shown = {
        let id = second.clone();
        wallet.run(move |w| w.show(&id)).await.unwrap()
    };
    claims.request_id = second.clone();
    claims.transaction_hash = shown.transaction_hash;
    claims.jti = random_b64url(16);
    let forged = device(&wallet).sign_jws(APPROVAL_TYP, &claims).unwrap();
    let (status, body) = post_decision(&s, &wallet, &second, &forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no open challenge"),
        "{body}"
    );
    nothing_issued(&s, &agent, &second).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_humans_device_can_neither_see_nor_approve() {
    let Setup { s, agent, wallet } = setup().await;
    let bobs = s.wallet("bob").await;
    let id = request(&s, &agent, 100).await;
    assert!(bobs.run(|w| w.pending()).await.unwrap().is_empty());
    assert_refused(
        show(&bobs, &id).await,
        403,
        "not routed to this device's human",
    );

    // Bob's device signing an approval built from Alice's view of the request.
    show(&wallet, &id).await.unwrap();
    let shown = {
        let id = id.clone();
        wallet.run(move |w| w.show(&id)).await.unwrap()
    };
    let claims = ApprovalClaims {
        request_id: id.clone(),
        transaction_hash: shown.transaction_hash,
        decision: DecisionKind::Approve,
        iat: s.now_s(),
        jti: random_b64url(16),
        assertion: json!({}),
        reason: None,
    };
    let forged = device(&bobs).sign_jws(APPROVAL_TYP, &claims).unwrap();
    let (status, _) = post_decision(&s, &bobs, &id, &forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // And Bob's signature presented by Alice's device is not her device's.
    let (status, body) = post_decision(&s, &wallet, &id, &forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not signed by this device"),
        "{body}"
    );
    nothing_issued(&s, &agent, &id).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_cannot_be_approved() {
    let Setup { s, agent, wallet } = setup().await;
    let id = request(&s, &agent, 100).await;
    show(&wallet, &id).await.unwrap();
    s.clock.advance_ms(61_000);
    assert!(
        matches!(decide(&wallet, &id).await, Err(WalletError::Expired)),
        "the server's problem code says it expired"
    );
    let (_, body) = s.poll(&agent, &id).await;
    assert_eq!(body["error"], "expired_token");
    s.stop().await;
}

/// Shows with the real wallet's state but asserts through a misbehaving authenticator.
async fn faulty_assertion_is_refused(faults: AuthenticatorFaults, reason: &str) {
    let Setup { s, agent, wallet } = setup().await;
    let faulty = wallet.snapshot(Some(faults));
    let id = request(&s, &agent, 100).await;
    show(&faulty, &id).await.unwrap();
    assert_refused(decide(&faulty, &id).await, 422, reason);
    nothing_issued(&s, &agent, &id).await;
    // The failed attempt used up the challenge; an honest retry needs a fresh one.
    show(&wallet, &id).await.unwrap();
    decide(&wallet, &id).await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_for_another_rp_id_is_refused() {
    faulty_assertion_is_refused(
        AuthenticatorFaults {
            rp_id: Some("evil.example".into()),
            ..AuthenticatorFaults::default()
        },
        "RP ID",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_from_another_origin_is_refused() {
    faulty_assertion_is_refused(
        AuthenticatorFaults {
            origin: Some("http://evil.localhost".into()),
            ..AuthenticatorFaults::default()
        },
        "origin",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_without_user_verification_is_refused() {
    faulty_assertion_is_refused(
        AuthenticatorFaults {
            skip_user_verification: true,
            ..AuthenticatorFaults::default()
        },
        "user was not verified",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloned_authenticator_with_a_stale_counter_is_refused() {
    let Setup { s, agent, wallet } = setup().await;
    let clone = wallet.snapshot(None);
    let first = request(&s, &agent, 100).await;
    show(&wallet, &first).await.unwrap();
    decide(&wallet, &first).await.unwrap();
    let second = request(&s, &agent, 100).await;
    show(&clone, &second).await.unwrap();
    assert_refused(decide(&clone, &second).await, 422, "signature counter");
    nothing_issued(&s, &agent, &second).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_refuses_a_request_object_its_pinned_key_did_not_sign() {
    let Setup { s, agent, wallet } = setup().await;
    // Pin another key under the server's kid, as if someone else signed the objects.
    let mut enrollment: Value = serde_json::from_str(
        &countersign_wallet_core::SecureStorage::get(&*wallet.storage, "enrollment")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let other = SigningKeyPair::generate().public_jwk();
    enrollment["jwks"]["keys"][0]["x"] = json!(other.x);
    enrollment["jwks"]["keys"][0]["y"] = json!(other.y);
    countersign_wallet_core::SecureStorage::put(
        &*wallet.storage,
        "enrollment",
        &enrollment.to_string(),
    )
    .unwrap();
    let id = request(&s, &agent, 100).await;
    match show(&wallet, &id).await {
        Err(WalletError::Protocol(m)) => assert!(m.contains("signature does not verify"), "{m}"),
        other => panic!("expected the request object to be refused, got {other:?}"),
    }
    // Never shown, so it cannot be decided.
    match decide(&wallet, &id).await {
        Err(WalletError::Invalid(m)) => assert!(m.contains("has not been shown"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    nothing_issued(&s, &agent, &id).await;
    s.stop().await;
}

/// A denial's reason is signed with it, so only the device can add one; the server still
/// refuses one on an approval, or one that is not short text, before anything is checked
/// or recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reason_only_goes_with_a_denial_and_must_be_short_text() {
    let Setup { s, agent, wallet } = setup().await;
    let id = request(&s, &agent, 100).await;
    show(&wallet, &id).await.unwrap();
    let shown = {
        let id = id.clone();
        wallet.run(move |w| w.show(&id)).await.unwrap()
    };
    let signed = |decision, reason: &str| {
        let claims = ApprovalClaims {
            request_id: id.clone(),
            transaction_hash: shown.transaction_hash.clone(),
            decision,
            iat: s.now_s(),
            jti: random_b64url(16),
            assertion: json!({}),
            reason: Some(reason.to_owned()),
        };
        device(&wallet).sign_jws(APPROVAL_TYP, &claims).unwrap()
    };
    for (approval, why) in [
        (signed(DecisionKind::Approve, "fine"), "goes with a denial"),
        (
            signed(DecisionKind::Deny, &"x".repeat(501)),
            "1-500 characters",
        ),
        (
            signed(DecisionKind::Deny, "line\nbreak"),
            "1-500 characters",
        ),
        (signed(DecisionKind::Deny, "  "), "1-500 characters"),
    ] {
        let (status, body) = post_decision(&s, &wallet, &id, &approval).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    // The wallet itself will not put a reason on an approval.
    let local = {
        let id = id.clone();
        wallet
            .run(move |w| w.decide(&id, DecisionKind::Approve, Some("because")))
            .await
    };
    assert!(matches!(local, Err(WalletError::Invalid(_))), "{local:?}");
    nothing_issued(&s, &agent, &id).await;
    s.stop().await;
}
