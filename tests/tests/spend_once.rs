#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! An approval is spent by the call it approved. A step-up credential says `max_uses: 1`;
//! a tool's verifier refuses its second use (`use_limit_reached`), counting in its own
//! process or, for a tool on several hosts, at the issuer (`POST
//! /credentials/{id}/uses`, authenticated by the agent's DPoP proof the tool received).
//! A policy's `@max_uses` allows more.

use std::sync::Arc;

use countersign_jose::{SigningKeyPair, random_b64url};
use countersign_tests::{Agent, Db, TestServer, both_backends, jwt_claims, resource_proof};
use countersign_verifier::status::HttpStatusSource;
use countersign_verifier::{HttpUsageStore, Presentation, Rejection, Verdict, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_single_use_credential_is_refused_the_second_time,
    tools_on_several_hosts_count_uses_at_the_issuer,
    the_uses_endpoint_refuses_what_it_cannot_attribute,
);

const TOOL: &str = "https://tools.example.com/orders";
const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;

fn verifier(s: &TestServer, jwks: &countersign_jose::JwkSet, online: bool) -> Arc<Verifier> {
    let mut b = Verifier::builder()
        .trust_issuer(s.issuer(), jwks)
        .status_source(HttpStatusSource::default());
    if online {
        b = b.usage_store(HttpUsageStore::default());
    }
    Arc::new(b.build())
}

async fn call(
    v: &Arc<Verifier>,
    credential: &str,
    proof: String,
    now: i64,
) -> Result<Verdict, Rejection> {
    let (v, credential) = (v.clone(), credential.to_owned());
    tokio::task::spawn_blocking(move || {
        let args = json!({"vendor": "Acme", "amount": 1200, "currency": "USD"});
        v.verify_at(
            &Presentation {
                token: &credential,
                dpop_proof: Some(&proof),
                method: "POST",
                url: TOOL,
                action: Some("purchase_order"),
                arguments: Some(&args),
            },
            now,
        )
    })
    .await
    .unwrap()
}

async fn credential(s: &TestServer, agent: &Agent) -> String {
    let tokens = s
        .approved_tokens(agent, "alice", &[("authorization_details", ORDER)], None)
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn a_single_use_credential_is_refused_the_second_time(db: Db) {
    let s = TestServer::start(db).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    // The default policy steps every action up: the approval is spent once.
    let token = credential(&s, &agent).await;
    assert_eq!(jwt_claims(&token)["max_uses"], 1);
    let v = verifier(&s, &s.jwks().await, false);
    let now = s.now_s();
    let first = call(
        &v,
        &token,
        resource_proof(&agent.dpop, "POST", TOOL, &token, now),
        now,
    )
    .await
    .unwrap();
    assert_eq!((first.max_uses, first.use_number), (Some(1), Some(1)));
    let second = call(
        &v,
        &token,
        resource_proof(&agent.dpop, "POST", TOOL, &token, now),
        now,
    )
    .await;
    assert_eq!(second, Err(Rejection::UseLimitReached { max_uses: 1 }));

    // A policy may allow more: @max_uses("3") says 3, and the fourth call is refused.
    s.install_policy(
        r#"@id("three") @step_up @max_uses("3") permit (principal, action, resource);"#,
    )
    .await;
    let token = credential(&s, &agent).await;
    assert_eq!(jwt_claims(&token)["max_uses"], 3);
    for n in 1..=3 {
        let verdict = call(
            &v,
            &token,
            resource_proof(&agent.dpop, "POST", TOOL, &token, now),
            now,
        )
        .await
        .unwrap();
        assert_eq!(verdict.use_number, Some(n));
    }
    assert_eq!(
        call(
            &v,
            &token,
            resource_proof(&agent.dpop, "POST", TOOL, &token, now),
            now
        )
        .await,
        Err(Rejection::UseLimitReached { max_uses: 3 })
    );
    s.stop().await;
}

async fn tools_on_several_hosts_count_uses_at_the_issuer(db: Db) {
    let s = TestServer::start(db).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    let token = credential(&s, &agent).await;
    let jwks = s.jwks().await;
    // Two hosts of one tool, each with its own verifier, counting at the issuer.
    let (host_a, host_b) = (verifier(&s, &jwks, true), verifier(&s, &jwks, true));
    let now = s.now_s();
    let used = call(
        &host_a,
        &token,
        resource_proof(&agent.dpop, "POST", TOOL, &token, now),
        now,
    )
    .await
    .unwrap();
    assert_eq!(used.use_number, Some(1));
    assert_eq!(
        call(
            &host_b,
            &token,
            resource_proof(&agent.dpop, "POST", TOOL, &token, now),
            now
        )
        .await,
        Err(Rejection::UseLimitReached { max_uses: 1 })
    );
    let jti = jwt_claims(&token)["jti"].as_str().unwrap().to_owned();
    let row = s.state().store.token(&jti).await.unwrap().unwrap();
    assert_eq!(row.jti, jti);
    s.stop().await;
}

/// What the endpoint answers a report it cannot attribute to the credential's agent and
/// this call: a report repeated with the same proof is the same use; another key's proof,
/// a proof for another credential, another credential's URL, a forged or revoked
/// credential are refused and count nothing.
async fn the_uses_endpoint_refuses_what_it_cannot_attribute(db: Db) {
    let s = TestServer::start(db).await;
    s.clock.follow_system_time();
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    s.install_policy(r#"@id("two") @step_up @max_uses("2") permit (principal, action, resource);"#)
        .await;
    let token = credential(&s, &agent).await;
    let jti = jwt_claims(&token)["jti"].as_str().unwrap().to_owned();
    let report = |jti: &str, token: &str, proof: Option<String>| {
        let mut req = s
            .http
            .post(s.url(&format!("/credentials/{jti}/uses")))
            .header("authorization", format!("DPoP {token}"))
            .json(&json!({"htm": "POST", "htu": TOOL}));
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let now = s.now_s();
    let proof = resource_proof(&agent.dpop, "POST", TOOL, &token, now);
    let (status, body) = report(&jti, &token, Some(proof.clone())).await;
    assert_eq!(
        (status, body["uses"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    assert_eq!(body["max_uses"], 2);
    // The same proof again (a retry after a lost answer): the same use, not a second.
    let (status, body) = report(&jti, &token, Some(proof)).await;
    assert_eq!(
        (status, body["uses"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );

    let refused = |(status, body): (StatusCode, Value), want: StatusCode, code: &str| {
        assert_eq!(
            (status, body["code"].as_str()),
            (want, Some(code)),
            "{body}"
        );
    };
    let stranger = SigningKeyPair::generate();
    refused(
        report(
            &jti,
            &token,
            Some(resource_proof(&stranger, "POST", TOOL, &token, now)),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    refused(
        report(&jti, &token, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    refused(
        report(
            &jti,
            &token,
            Some(resource_proof(&agent.dpop, "POST", TOOL, "another", now)),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    refused(
        report(
            &jti,
            &token,
            Some(resource_proof(&agent.dpop, "GET", TOOL, &token, now)),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    refused(
        report(
            &jti,
            &token,
            Some(resource_proof(
                &agent.dpop,
                "POST",
                TOOL,
                &token,
                now - 3600,
            )),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    refused(
        report(
            "someone-else",
            &token,
            Some(resource_proof(&agent.dpop, "POST", TOOL, &token, now)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", random_b64url(64));
    refused(
        report(
            &jti,
            &forged,
            Some(resource_proof(&agent.dpop, "POST", TOOL, &forged, now)),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    // The second (last) use, then the limit.
    let (status, body) = report(
        &jti,
        &token,
        Some(resource_proof(&agent.dpop, "POST", TOOL, &token, now)),
    )
    .await;
    assert_eq!(
        (status, body["uses"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );
    refused(
        report(
            &jti,
            &token,
            Some(resource_proof(&agent.dpop, "POST", TOOL, &token, now)),
        )
        .await,
        StatusCode::CONFLICT,
        "use_limit_reached",
    );
    // A revoked credential counts nothing.
    let fresh = credential(&s, &agent).await;
    let fresh_jti = jwt_claims(&fresh)["jti"].as_str().unwrap().to_owned();
    let admin = s.admin_api().await;
    let (status, _) = admin
        .call(
            reqwest::Method::POST,
            &format!("/admin/v1/credentials/{fresh_jti}/revoke"),
            Some(json!({"reason": "test"})),
        )
        .await;
    assert!(status.is_success());
    refused(
        report(
            &fresh_jti,
            &fresh,
            Some(resource_proof(&agent.dpop, "POST", TOOL, &fresh, now)),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    s.stop().await;
}
