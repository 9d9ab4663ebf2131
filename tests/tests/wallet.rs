#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The human path end to end: an agent's CIBA request, a wallet (real wallet-core over
//! the software keystore and passkeys) enrolled by invitation, the request shown only
//! after the wallet checked the server's signature, a passkey-confirmed decision signed
//! by the device key, and the credential whose evidence carries that signed decision.

use countersign_jose::{Jwk, SigningKeyPair, UnverifiedJws, random_b64url, thumbprint};
use countersign_shared::approval::{ApprovalClaims, DecisionKind, transaction_hash};
use countersign_tests::wallets::TestWallet;
use countersign_tests::{Agent, CIBA_GRANT, Db, TestServer, both_backends, jwt_claims};
use countersign_wallet_core::Keystore as _;
use countersign_wallet_core::software::SoftwareKeystore;
use countersign_wallet_core::wallet::DEVICE_KEY_ALIAS;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(approve_and_deny_through_the_wallet);
both_backends!(history_keeps_the_signed_decisions_and_removing_the_device_ends_it);

const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;

async fn request(s: &TestServer, agent: &Agent, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("scope", "openid"),
        ("login_hint", "alice"),
        ("binding_message", "W4SCT"),
        ("authorization_details", ORDER),
    ];
    params.extend_from_slice(extra);
    let (status, body) = s.bc_authorize(agent, &params).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["auth_req_id"].as_str().unwrap().to_owned()
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

fn device_key(wallet: &TestWallet) -> Jwk {
    SoftwareKeystore::new(wallet.storage.clone())
        .public_key(DEVICE_KEY_ALIAS)
        .unwrap()
}

async fn approve_and_deny_through_the_wallet(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let dpop = SigningKeyPair::generate();
    let wallet = s.wallet("alice").await;
    let enrollment = wallet.run(|w| w.enrollment()).await.unwrap().unwrap();
    assert_eq!(enrollment.subject, "alice");
    assert_eq!(enrollment.rp_id, "localhost");

    let id = request(&s, &agent, &[]).await;
    let pending = wallet.run(|w| w.pending()).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].id.as_str(),
            pending[0].agent.as_str(),
            pending[0].action.as_deref()
        ),
        (id.as_str(), "procurement agent", Some("purchase_order"))
    );

    let shown = wallet
        .run({
            let id = id.clone();
            move |w| w.show(&id)
        })
        .await
        .unwrap();
    let t = &shown.transaction;
    assert_eq!(t.agent.client_id, "procurement");
    assert_eq!(t.agent.owner, "alice");
    assert_eq!(t.binding_message.as_deref(), Some("W4SCT"));
    assert_eq!(
        t.authorization_details,
        Some(serde_json::from_str::<Value>(ORDER).unwrap())
    );
    assert_eq!(t.credential_validity_secs, 900);
    assert_eq!(shown.transaction_hash, transaction_hash(t).unwrap());

    // Nothing is issued before the human decides.
    let (_, body) = token(&s, &agent, &id, &dpop).await;
    assert_eq!(body["error"], "authorization_pending");

    let recorded = wallet
        .run({
            let id = id.clone();
            move |w| w.decide(&id, DecisionKind::Approve, None)
        })
        .await
        .unwrap();
    assert_eq!(recorded.status, "approved");

    let (status, tokens) = token(&s, &agent, &id, &dpop).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let credential = jwt_claims(tokens["access_token"].as_str().unwrap());
    let evidence = &credential["evidence"][0];
    assert_eq!(evidence["type"], json!(["HumanApproval"]));
    assert_eq!(evidence["method"], "passkey+device_key");
    assert_eq!(evidence["approver"]["subject"], "alice");
    let device = device_key(&wallet);
    assert_eq!(
        evidence["deviceKeyThumbprint"],
        thumbprint(&device).unwrap()
    );
    // The wallet-signed decision, verbatim, verifies with the device key and binds this
    // exact transaction.
    let approval = UnverifiedJws::parse(evidence["approval"].as_str().unwrap()).unwrap();
    approval.verify_jwk(&device).unwrap();
    let claims: ApprovalClaims = approval.insecure_claims().unwrap();
    assert_eq!(claims.request_id, id);
    assert_eq!(claims.decision, DecisionKind::Approve);
    assert_eq!(claims.transaction_hash, shown.transaction_hash);
    assert_eq!(claims.assertion["type"], "public-key");
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["amr"], json!(["passkey", "device_key"]));

    // A denial travels the same way.
    let denied = request(&s, &agent, &[]).await;
    wallet
        .run({
            let id = denied.clone();
            move |w| {
                w.show(&id)?;
                w.decide(&id, DecisionKind::Deny, None)
            }
        })
        .await
        .unwrap();
    let (status, body) = token(&s, &agent, &denied, &dpop).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );
    assert!(wallet.run(|w| w.pending()).await.unwrap().is_empty());

    // Enrollment and its invitation are in the audit trail (after alice's registration).
    let kinds: Vec<String> =
        countersign_server::audit::recent(&s.state().store, Some("human:alice"), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .filter(|k| k.starts_with("device."))
            .collect();
    assert_eq!(kinds, ["device.enrolled", "device.invited"]);
    s.stop().await;
}

/// In push mode the credential goes out with the decision: the wallet's approval issues it
/// in the same transaction, and its evidence is the signed approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_approval_pushes_the_credential_to_a_push_mode_agent() {
    use countersign_tests::receiver::Receiver;
    let s = TestServer::start(Db::Sqlite).await;
    s.human("alice").await;
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap(), &[]).await;
    // The agent registered its DPoP key: pushed credentials are bound to it.
    let dpop = SigningKeyPair::generate();
    let jkt = countersign_jose::thumbprint(&dpop.public_jwk()).unwrap();
    let new = countersign_server::directory::NewAgent {
        delivery_mode: Some("push".into()),
        notification_endpoint: Some(rx.url()),
        dpop_jkt: Some(jkt.clone()),
        ..countersign_tests::new_agent("pusher", "alice", "client_secret_basic")
    };
    let agent = s.agent_with(new, false).await;
    let wallet = s.wallet("alice").await;
    let id = request(&s, &agent, &[("client_notification_token", "push-token")]).await;
    wallet
        .run({
            let id = id.clone();
            move |w| {
                w.show(&id)?;
                w.decide(&id, DecisionKind::Approve, None)
            }
        })
        .await
        .unwrap();
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].body["auth_req_id"], id);
    let credential = jwt_claims(got[0].body["access_token"].as_str().unwrap());
    assert_eq!(credential["evidence"][0]["method"], "passkey+device_key");
    assert!(credential["evidence"][0]["approval"].is_string());
    assert_eq!(credential["cnf"]["jkt"], jkt.as_str());
    s.stop().await;
}

/// The wallet keeps each decision with the exact approval it signed; removing the device
/// disables it on the server (in the trail, by the device) before anything is forgotten
/// locally, and a removed device is refused.
async fn history_keeps_the_signed_decisions_and_removing_the_device_ends_it(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let wallet = s.wallet("alice").await;
    let approved = request(&s, &agent, &[]).await;
    let denied = request(&s, &agent, &[]).await;
    for (id, kind, reason) in [
        (approved.clone(), DecisionKind::Approve, None),
        (denied.clone(), DecisionKind::Deny, Some("not mine")),
    ] {
        wallet
            .run(move |w| {
                w.show(&id)?;
                w.decide(&id, kind, reason)
            })
            .await
            .unwrap();
    }
    let history = wallet.run(|w| w.history()).await.unwrap();
    let decided: Vec<(&str, &str, Option<&str>)> = history
        .iter()
        .map(|e| {
            (
                e.request_id.as_str(),
                e.decision.as_str(),
                e.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        [
            (denied.as_str(), "deny", Some("not mine")),
            (approved.as_str(), "approve", None)
        ]
    );
    // The evidence is the approval the server holds: signed by this device's key.
    let key = device_key(&wallet);
    let evidence = UnverifiedJws::parse(&history[1].evidence).unwrap();
    evidence.verify_jwk(&key).unwrap();
    let claims: ApprovalClaims = evidence.insecure_claims().unwrap();
    assert_eq!(claims.transaction_hash, history[1].transaction_hash);
    assert_eq!(history[1].device_jkt, thumbprint(&key).unwrap());
    assert_eq!(history[0].binding_message.as_deref(), Some("W4SCT"));
    let stored = s.auth_request(&approved).await;
    assert_eq!(
        stored.approval_jws.as_deref(),
        Some(history[1].evidence.as_str())
    );

    let device_id = wallet
        .run(|w| w.enrollment())
        .await
        .unwrap()
        .unwrap()
        .device_id;
    // A copy of the device's state, as a stolen backup would be, still holds the key.
    let copy = wallet.snapshot(None);
    wallet.run(|w| w.remove_device()).await.unwrap();
    assert!(wallet.run(|w| w.enrollment()).await.unwrap().is_none());
    assert!(wallet.run(|w| w.history()).await.unwrap().is_empty());
    let refused = copy.run(|w| w.pending()).await;
    assert!(
        matches!(
            refused,
            Err(countersign_wallet_core::WalletError::Refused { status: 401, .. })
        ),
        "{refused:?}"
    );
    let again = copy.run(|w| w.remove_device()).await;
    assert!(
        matches!(
            again,
            Err(countersign_wallet_core::WalletError::Refused { status: 401, .. })
        ),
        "{again:?}"
    );
    let removal = countersign_server::audit::recent(&s.state().store, Some("human:alice"), 10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "device.removed")
        .expect("the removal is traced");
    assert_eq!(removal.actor, format!("device:{device_id}"));
    s.stop().await;
}
