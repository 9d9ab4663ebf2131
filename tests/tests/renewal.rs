#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Renewal by token exchange (RFC 8693), on both databases: a policy-allowed action type
//! renews within its window for the same task and details, with the same key; everything
//! else needs a fresh approval. Revoking a credential takes its renewals with it, and every
//! renewal and revocation is in the hash-chained audit trail.

use countersign_jose::{SigningKeyPair, random_b64url};
use countersign_tests::{Agent, Db, TestServer, assert_oauth_error, both_backends, jwt_claims};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    renews_within_task_and_window_and_nothing_else,
    revoking_a_credential_revokes_its_renewals_and_is_audited
);

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const DEPLOY: &str = r#"[{"type":"deployment","service":"billing","environment":"staging"}]"#;
const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme","amount":120,"currency":"USD"}]"#;
/// Deployments may be renewed for 20 minutes after the approval; orders never.
const WINDOW_SECS: i64 = 1200;

async fn server(db: Db) -> TestServer {
    let s = TestServer::start_with(db, |c| {
        c.authorization_details_types.insert(
            "deployment".into(),
            json!({"type": "object", "required": ["type", "service"],
                   "properties": {"type": {"const": "deployment"}, "service": {"type": "string"},
                                  "environment": {"type": "string"}}}),
        );
        c.tokens
            .renewal_windows_secs
            .insert("deployment".into(), WINDOW_SECS as u64);
    })
    .await;
    s.human("alice").await;
    s
}

async fn credential(
    s: &TestServer,
    agent: &Agent,
    details: &str,
    task: Option<&str>,
    key: &SigningKeyPair,
) -> String {
    let mut params = vec![("authorization_details", details)];
    if let Some(task) = task {
        params.push(("task_id", task));
    }
    let tokens = s.approved_tokens(agent, "alice", &params, Some(key)).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn renew(
    s: &TestServer,
    agent: &Agent,
    token: &str,
    extra: &[(&str, &str)],
    key: Option<&SigningKeyPair>,
) -> (StatusCode, Value) {
    let mut params = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", token),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    params.extend_from_slice(extra);
    let proof = key.map(|k| s.dpop_proof(k, &s.url("/token"), &random_b64url(12)));
    s.post_as_with(agent, "/token", &params, proof).await
}

async fn renews_within_task_and_window_and_nothing_else(db: Db) {
    let s = server(db).await;
    let agent = s.agent("deployer", "alice", "client_secret_basic").await;
    let key = SigningKeyPair::generate();
    let approved_at = s.now_s();
    let c1 = credential(&s, &agent, DEPLOY, Some("CHG-42"), &key).await;
    let task = [("task_id", "CHG-42")];

    s.clock.advance_ms(600_000);
    let (status, body) = renew(&s, &agent, &c1, &task, Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "DPoP");
    assert!(body.get("id_token").is_none(), "{body}");
    assert_eq!(
        body["authorization_details"],
        serde_json::from_str::<Value>(DEPLOY).unwrap()
    );
    let c2 = body["access_token"].as_str().unwrap().to_owned();
    let (old, new) = (jwt_claims(&c1), jwt_claims(&c2));
    assert_ne!(old["jti"], new["jti"]);
    assert_eq!(new["cnf"], old["cnf"], "still bound to the agent's key");
    assert_eq!(new["evidence"][0]["renewalOf"], old["id"]);
    assert_eq!(
        new["evidence"][0]["approver"],
        old["evidence"][0]["approver"]
    );
    assert_eq!(
        new["evidence"][0]["approvedAt"],
        old["evidence"][0]["approvedAt"]
    );
    assert_eq!(new["credentialSubject"]["context"]["task_id"], "CHG-42");
    assert_ne!(new["status"], old["status"], "a status entry of its own");
    // Capped by the approval's window, not the usual 15 minutes from now.
    assert_eq!(new["exp"], approved_at + WINDOW_SECS);
    assert_eq!(body["expires_in"], WINDOW_SECS - 600);

    // The same credential is renewed once; the newest one renews further.
    assert_oauth_error(
        renew(&s, &agent, &c1, &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    // Anything but the same task, details, key and client needs a fresh approval.
    assert_oauth_error(
        renew(&s, &agent, &c2, &[("task_id", "CHG-43")], Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_oauth_error(
        renew(&s, &agent, &c2, &[], Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let prod = r#"[{"type":"deployment","service":"billing","environment":"production"}]"#;
    assert_oauth_error(
        renew(
            &s,
            &agent,
            &c2,
            &[("task_id", "CHG-42"), ("authorization_details", prod)],
            Some(&key),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_authorization_details",
    );
    assert_oauth_error(
        renew(&s, &agent, &c2, &task, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    );
    assert_oauth_error(
        renew(&s, &agent, &c2, &task, Some(&SigningKeyPair::generate())).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let other = s.agent("other", "alice", "client_secret_basic").await;
    assert_oauth_error(
        renew(&s, &other, &c2, &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_oauth_error(
        renew(
            &s,
            &agent,
            &c2,
            &[("task_id", "CHG-42"), ("audience", "x")],
            Some(&key),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_target",
    );
    assert_oauth_error(
        renew(&s, &agent, "not.a.token", &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    // Same details spelled exactly is fine.
    let (status, body) = renew(
        &s,
        &agent,
        &c2,
        &[("task_id", "CHG-42"), ("authorization_details", DEPLOY)],
        Some(&key),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c3 = body["access_token"].as_str().unwrap().to_owned();

    // Past the window every credential of the approval has expired: no more renewals.
    s.clock.advance_ms(1000 * (WINDOW_SECS - 600));
    let (status, body) = renew(&s, &agent, &c3, &task, Some(&key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // Financial transactions and task-less approvals always need a fresh approval.
    let order = credential(&s, &agent, ORDER, Some("PO-1"), &key).await;
    let (status, body) = renew(&s, &agent, &order, &[("task_id", "PO-1")], Some(&key)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("purchase_order"),
        "{body}"
    );
    let taskless = credential(&s, &agent, DEPLOY, None, &key).await;
    assert_oauth_error(
        renew(&s, &agent, &taskless, &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // A deactivated approver's approvals renew no more.
    let c4 = credential(&s, &agent, DEPLOY, Some("CHG-42"), &key).await;
    // Deactivated alone (offboarding would also revoke c4): the renewal checks the
    // approver itself.
    s.deactivate_only("alice").await;
    s.clock.advance_ms(1_000);
    assert_oauth_error(
        renew(&s, &agent, &c4, &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    let discovery: Value = s.get_json("/.well-known/openid-configuration").await;
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(TOKEN_EXCHANGE))
    );
    s.stop().await;
}

async fn revoking_a_credential_revokes_its_renewals_and_is_audited(db: Db) {
    let s = server(db).await;
    let agent = s.agent("deployer", "alice", "client_secret_basic").await;
    let key = SigningKeyPair::generate();
    let c1 = credential(&s, &agent, DEPLOY, Some("CHG-7"), &key).await;
    let task = [("task_id", "CHG-7")];
    s.clock.advance_ms(1_000);
    let c2 = renew(&s, &agent, &c1, &task, Some(&key)).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance_ms(1_000);
    let c3 = renew(&s, &agent, &c2, &task, Some(&key)).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jti = |t: &str| jwt_claims(t)["jti"].as_str().unwrap().to_owned();
    // An unrelated credential of the same agent stays live.
    let unrelated = credential(&s, &agent, DEPLOY, Some("CHG-8"), &key).await;

    let admin = s.admin_api().await;

    let (_, shown) = admin
        .call(
            Method::GET,
            &format!("/admin/v1/credentials/{}", jti(&c3)),
            None,
        )
        .await;
    assert_eq!(shown["renewal_of"], jti(&c2));
    assert_eq!(shown["task_id"], "CHG-7");

    // Revoking the middle of the chain takes the later renewal along, not the earlier.
    let (status, body) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/credentials/{}/revoke", jti(&c2)),
            Some(json!({"reason": "change cancelled"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut revoked: Vec<String> = serde_json::from_value(body["revoked"].clone()).unwrap();
    revoked.sort();
    let mut expected = vec![jti(&c2), jti(&c3)];
    expected.sort();
    assert_eq!(revoked, expected);
    for (token, revoked) in [(&c1, false), (&c2, true), (&c3, true), (&unrelated, false)] {
        let (_, shown) = admin
            .call(
                Method::GET,
                &format!("/admin/v1/credentials/{}", jti(token)),
                None,
            )
            .await;
        assert_eq!(shown["revoked_at"].is_i64(), revoked, "{shown}");
    }
    // A revoked credential is never renewed; nor is the renewed parent again.
    assert_oauth_error(
        renew(&s, &agent, &c3, &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_oauth_error(
        renew(&s, &agent, &c1, &task, Some(&key)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // The agent gives up a credential itself (RFC 7009): recorded too.
    let (status, _) = s.post_as(&agent, "/revoke", &[("token", &unrelated)]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, events) = admin
        .call(Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    // Decisions, approvals and issuance are traced as well; these are the lifecycle.
    let all = events.as_array().unwrap();
    let events: Vec<&Value> = all
        .iter()
        .filter(|e| {
            matches!(
                e["kind"].as_str(),
                Some("credential.revoked" | "credential.renewed")
            )
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "credential.revoked",
            "credential.revoked",
            "credential.renewed",
            "credential.renewed"
        ]
    );
    assert_eq!(events[0]["actor"], "client:deployer");
    assert!(
        events[1]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin-key:")
    );
    assert_eq!(events[2]["actor"], "client:deployer");
    assert_eq!(events[1]["detail"]["reason"], "change cancelled");
    assert_eq!(events[1]["subject"], format!("credential:{}", jti(&c2)));
    assert_eq!(events[3]["detail"]["renewal_of"], jti(&c1));
    let (_, report) = admin
        .call(Method::GET, "/admin/v1/audit/verify", None)
        .await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["events"], all.len());
    assert_eq!(report["head"], all[0]["hash"]);
    let (status, _) = admin
        .call(Method::GET, "/admin/v1/audit?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.stop().await;
}
