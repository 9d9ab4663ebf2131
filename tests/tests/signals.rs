#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Shared Signals, on both databases: a RISC `account-disabled` SET pushed by the
//! configured transmitter (RFC 8935) offboards the human (the agent's credential dies for
//! a verifier with a 1 s status TTL, its pending request ends, its next request is
//! refused); `account-enabled` reactivates without resurrecting; CAEP `session-revoked`
//! revokes what the human approved. Forged, misaddressed, stale, mistyped or replayed
//! SETs each get RFC 8935's error and change nothing. Polled delivery (RFC 8936) acts the
//! same, acknowledges what it took (also a redelivered SET, without acting twice) and
//! reports the rest in `setErrs`.

use countersign_jose::{JwkSet, SigningKeyPair, random_b64url};
use countersign_server::config::TransmitterConfig;
use countersign_tests::fakes::ssf_poll::FakePollTransmitter;
use countersign_tests::ghost::Ghost;
use countersign_tests::{Db, TestServer, both_backends};
use countersign_verifier::Rejection;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_risc_account_disabled_set_offboards_the_human,
    bad_sets_get_the_rfc_8935_error_and_change_nothing,
    polled_sets_act_once_and_are_acknowledged_or_refused,
    rs256_sets_signed_by_panva_jose_act_and_forgeries_do_not
);

const IDP: &str = "https://idp.example.com";
const DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// The transmitter `IDP`, trusted with `idp`'s key.
fn transmitter(idp: &SigningKeyPair) -> TransmitterConfig {
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![idp.public_jwk()],
    })
    .unwrap();
    TransmitterConfig {
        issuer: IDP.into(),
        jwks: Some(jwks),
        ..Default::default()
    }
}

async fn server(db: Db, idp: &SigningKeyPair) -> TestServer {
    server_trusting(db, transmitter(idp)).await
}

/// A server (on real time) that accepts SETs from `t`, polling it each second if it has
/// a `poll_url`.
async fn server_trusting(db: Db, t: TransmitterConfig) -> TestServer {
    let s = TestServer::start_with(db, move |c| {
        c.signals.poll_interval_secs = 1;
        c.signals.transmitters = vec![t];
    })
    .await;
    s.clock.follow_system_time();
    s
}

/// Alice and Bob, each owning an agent with a live credential and a pending request.
async fn alice_and_bob(s: &TestServer) -> (Ghost, Ghost) {
    s.human("alice").await;
    s.human("bob").await;
    (
        Ghost::new(s, "procurement", "alice").await,
        Ghost::new(s, "travel", "bob").await,
    )
}

fn claims(s: &TestServer, event: &str, subject: Value) -> Value {
    json!({
        "iss": IDP,
        "aud": s.issuer(),
        "iat": s.now_s(),
        "jti": random_b64url(12),
        "sub_id": subject,
        "events": { event: {"reason_admin": {"en": "terminated"}} }
    })
}

fn email(address: &str) -> Value {
    json!({"format": "email", "email": address})
}

async fn push(s: &TestServer, set: &str, content_type: &str) -> (StatusCode, Value) {
    let resp = s
        .http
        .post(s.url("/ssf/events"))
        .header("content-type", content_type)
        .body(set.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn push_set(s: &TestServer, set: &str) -> (StatusCode, Value) {
    push(s, set, "application/secevent+jwt").await
}

async fn a_risc_account_disabled_set_offboards_the_human(db: Db) {
    let idp = SigningKeyPair::generate();
    let s = server(db, &idp).await;
    let (alice, bob) = alice_and_bob(&s).await;

    let set = idp
        .sign(
            "secevent+jwt",
            &claims(&s, DISABLED, email("alice@example.com")),
        )
        .unwrap();
    let (status, body) = push_set(&s, &set).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    alice.assert_dead(&s, "alice").await;
    bob.assert_alive(&s).await;
    let (status, body) = push_set(&s, &set).await;
    assert_eq!(
        (status, body["err"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "a replay"
    );

    // Re-enabled: active again, nothing resurrected.
    let opaque = json!({"format": "opaque", "id": "alice"});
    let set = idp
        .sign("secevent+jwt", &claims(&s, ENABLED, opaque))
        .unwrap();
    assert_eq!(push_set(&s, &set).await.0, StatusCode::ACCEPTED);
    assert!(
        s.state()
            .store
            .human("alice")
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert_eq!(alice.call(s.now_s() + 3).await, Err(Rejection::Revoked));

    // Sessions revoked: what bob approved dies; bob stays active.
    let iss_sub = json!({"format": "iss_sub", "iss": IDP, "sub": "bob"});
    let set = idp
        .sign("secevent+jwt", &claims(&s, SESSION_REVOKED, iss_sub))
        .unwrap();
    assert_eq!(push_set(&s, &set).await.0, StatusCode::ACCEPTED);
    assert_eq!(bob.call(s.now_s() + 4).await, Err(Rejection::Revoked));
    assert!(s.state().store.human("bob").await.unwrap().unwrap().active);

    assert_eq!(signals_received(&s).await, 3);
    s.stop().await;
}

async fn bad_sets_get_the_rfc_8935_error_and_change_nothing(db: Db) {
    let idp = SigningKeyPair::generate();
    let s = server(db, &idp).await;
    s.human("alice").await;
    let alice = Ghost::new(&s, "procurement", "alice").await;
    let who = email("alice@example.com");
    let forger = SigningKeyPair::generate();
    let mut wrong_iss = claims(&s, DISABLED, who.clone());
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_aud = claims(&s, DISABLED, who.clone());
    wrong_aud["aud"] = json!("https://someone-else.example");
    let mut stale = claims(&s, DISABLED, who.clone());
    stale["iat"] = json!(s.now_s() - 3 * 24 * 3600);
    let mut no_jti = claims(&s, DISABLED, who.clone());
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut no_events = claims(&s, DISABLED, who.clone());
    no_events["events"] = json!({});
    let cases: Vec<(String, &str, &str)> = vec![
        (
            forger
                .sign("secevent+jwt", &claims(&s, DISABLED, who.clone()))
                .unwrap(),
            "application/secevent+jwt",
            "invalid_key",
        ),
        (
            idp.sign("secevent+jwt", &wrong_iss).unwrap(),
            "application/secevent+jwt",
            "invalid_issuer",
        ),
        (
            idp.sign("secevent+jwt", &wrong_aud).unwrap(),
            "application/secevent+jwt",
            "invalid_audience",
        ),
        (
            idp.sign("secevent+jwt", &stale).unwrap(),
            "application/secevent+jwt",
            "invalid_request",
        ),
        (
            idp.sign("secevent+jwt", &no_jti).unwrap(),
            "application/secevent+jwt",
            "invalid_request",
        ),
        (
            idp.sign("secevent+jwt", &no_events).unwrap(),
            "application/secevent+jwt",
            "invalid_request",
        ),
        // An access token is not a SET, even when signed by the right key.
        (
            idp.sign("JWT", &claims(&s, DISABLED, who.clone())).unwrap(),
            "application/secevent+jwt",
            "invalid_request",
        ),
        (
            idp.sign("secevent+jwt", &claims(&s, DISABLED, who.clone()))
                .unwrap(),
            "application/json",
            "invalid_request",
        ),
        (
            "not.a.jws".into(),
            "application/secevent+jwt",
            "invalid_request",
        ),
        (
            countersign_tests::unsigned_jwt(
                json!({"alg": "none", "typ": "secevent+jwt"}),
                claims(&s, DISABLED, who.clone()),
            ),
            "application/secevent+jwt",
            "invalid_request",
        ),
    ];
    for (set, content_type, err) in cases {
        let (status, body) = push(&s, &set, content_type).await;
        assert_eq!(
            (status, body["err"].as_str()),
            (StatusCode::BAD_REQUEST, Some(err)),
            "{body}"
        );
        assert!(body["description"].is_string());
    }
    // An unknown subject is accepted (the transmitter did nothing wrong) and acts on no one.
    let set = idp
        .sign(
            "secevent+jwt",
            &claims(&s, DISABLED, email("nobody@example.com")),
        )
        .unwrap();
    assert_eq!(push_set(&s, &set).await.0, StatusCode::ACCEPTED);
    alice.assert_alive(&s).await;
    assert!(
        s.state()
            .store
            .human("alice")
            .await
            .unwrap()
            .unwrap()
            .active
    );
    s.stop().await;
}

async fn polled_sets_act_once_and_are_acknowledged_or_refused(db: Db) {
    let idp = SigningKeyPair::generate();
    let poller = FakePollTransmitter::start("poll-secret").await;
    let s = server_trusting(
        db,
        TransmitterConfig {
            poll_url: Some(poller.url()),
            poll_token: Some("poll-secret".into()),
            ..transmitter(&idp)
        },
    )
    .await;
    let (alice, bob) = alice_and_bob(&s).await;

    // A forged SET about bob is refused with RFC 8935's code; bob keeps his agent.
    let forged_claims = claims(&s, DISABLED, email("bob@example.com"));
    let forged_jti = forged_claims["jti"].as_str().unwrap().to_owned();
    let forged = SigningKeyPair::generate()
        .sign("secevent+jwt", &forged_claims)
        .unwrap();
    poller.queue(&forged_jti, &forged);
    // The real one about alice offboards her.
    let real_claims = claims(&s, DISABLED, email("alice@example.com"));
    let jti = real_claims["jti"].as_str().unwrap().to_owned();
    let set = idp.sign("secevent+jwt", &real_claims).unwrap();
    poller.queue(&jti, &set);

    poller.wait_answered(&jti).await;
    poller.wait_answered(&forged_jti).await;
    assert_eq!(poller.acks_of(&jti), 1);
    assert_eq!(poller.error_for(&forged_jti).unwrap()["err"], "invalid_key");
    alice.assert_dead(&s, "alice").await;
    bob.assert_alive(&s).await;

    // Delivered again (as after a lost acknowledgement): acknowledged, not acted on twice.
    assert_eq!(poller.acks_of(&jti), 1);
    poller.queue(&jti, &set);
    poller.wait_acks(&jti, 2).await;
    assert_eq!(signals_received(&s).await, 1, "acted on once");
    assert_eq!(poller.unauthorized(), 0, "every poll carried the token");
    s.stop().await;
}

/// Signs `claims` with RS256 in Node (panva's `jose`, tests/interop/openid-client).
async fn rs256_sets(claims: &[Value]) -> Value {
    let sets = serde_json::to_string(claims).unwrap();
    countersign_tests::node::run_json("openid-client", "sign-sets.mjs", &[("SETS", sets)]).await
}

/// How many SETs the audit trail says were acted on.
async fn signals_received(s: &TestServer) -> usize {
    let admin = s.admin_api().await;
    let (_, events) = admin
        .call(reqwest::Method::GET, "/admin/v1/audit?limit=200", None)
        .await;
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "signal.received")
        .count()
}

async fn rs256_sets_signed_by_panva_jose_act_and_forgeries_do_not(db: Db) {
    const AUDIENCE: &str = "https://countersign.test";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims_for = |event: &str, subject: Value| {
        json!({
            "iss": IDP, "aud": AUDIENCE, "iat": now, "jti": random_b64url(12),
            "sub_id": subject, "events": { event: {} }
        })
    };
    let signed = rs256_sets(&[
        claims_for(DISABLED, email("alice@example.com")),
        claims_for(DISABLED, email("bob@example.com")),
    ])
    .await;
    let s = server_trusting(
        db,
        TransmitterConfig {
            issuer: IDP.into(),
            jwks: Some(signed["jwks"].to_string()),
            audience: Some(AUDIENCE.into()),
            ..Default::default()
        },
    )
    .await;
    let (alice, bob) = alice_and_bob(&s).await;

    // The same claims signed by another RSA key under the transmitter's kid: refused.
    let forged = signed["other_key_set"].as_str().unwrap();
    let (status, body) = push_set(&s, forged).await;
    assert_eq!(
        (status, body["err"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_key")),
        "{body}"
    );
    // (Checked in the store: the verifier's status cache must not see alice alive just
    // before she is offboarded.)
    let active = |s: &TestServer| {
        let store = s.state().store.clone();
        async move { store.human("alice").await.unwrap().unwrap().active }
    };
    assert!(active(&s).await);

    // Re-signed with HS256 using the public key as the secret (algorithm confusion).
    let parts: Vec<&str> = signed["sets"][0].as_str().unwrap().split('.').collect();
    let hs_header = countersign_jose::b64url_encode(br#"{"alg":"HS256","typ":"secevent+jwt"}"#);
    let confused = format!("{hs_header}.{}.{}", parts[1], parts[2]);
    let (status, body) = push_set(&s, &confused).await;
    assert_eq!(
        (status, body["err"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    assert!(active(&s).await);

    let (status, body) = push_set(&s, signed["sets"][0].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    alice.assert_dead(&s, "alice").await;
    bob.assert_alive(&s).await;
    s.stop().await;
}
