#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! A gateway beside its agent, on another machine than Countersign (`countersign gateway
//! --remote URL`): the official Python MCP SDK client launches it over stdio, and it asks
//! the server only over its public HTTP API with the agent's own `private_key_jwt`
//! credential: `POST /v1/decisions`, CIBA, and the reports back to the trace
//! (`POST /v1/gateway-calls`, `POST /v1/withdrawals`). The server runs no gateway of its
//! own; the shop upstream verifies the credentials itself.

use std::time::Duration;

use countersign_jose::{SigningKeyPair, b64url_encode};
use countersign_server::store::auth_requests::AuthRequestStatus;
use countersign_shared::approval::DecisionKind;
use countersign_tests::idp::free_port;
use countersign_tests::mcp::{
    ClientRun, POLICY, Upstream, call, configure_policy, decide, gateway_calls, held_request,
};
use countersign_tests::tools::countersign_binary;
use countersign_tests::{Agent, Db, TestServer, both_backends, new_agent};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The private JWK (RFC 7517) an operator gives the gateway for the agent.
fn private_jwk(key: &SigningKeyPair) -> Value {
    let public = key.public_jwk();
    json!({
        "kty": "EC", "crv": "P-256", "x": public.x, "y": public.y,
        "d": b64url_encode(key.scalar_bytes()),
    })
}

/// The remote gateway's own configuration: its keys, the shop, the tools' mapping.
fn gateway_toml(keys_dir: &std::path::Path, upstream_url: &str) -> String {
    format!(
        r#"keys_dir = {keys:?}

[gateway]
enabled = true
progress_interval_ms = 200

[gateway.upstreams.shop]
url = {upstream_url:?}

[gateway.tools."shop.place_order"]
type = "purchase_order"
resource = "shop"

[gateway.tools."shop.read_customer"]
type = "read_customer"
resource = "crm"

[gateway.tools."shop.send_email"]
type = "send_email"
resource = "mail"

[gateway.tools."shop.drop_database"]
type = "drop_database"
"#,
        keys = keys_dir.display().to_string(),
    )
}

/// A server with no gateway of its own: the action types the remote gateway sends are
/// declared as any deployment declares its types.
async fn server_on(port: u16, db: Db) -> TestServer {
    let server = TestServer::start_with(db, move |c| {
        c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        configure_policy(c);
        for kind in [
            "shop_get_catalog",
            "read_customer",
            "send_email",
            "drop_database",
        ] {
            c.authorization_details_types
                .insert(kind.into(), json!({"type": "object"}));
        }
    })
    .await;
    server.clock.follow_system_time();
    server.human("alice").await;
    server.install_policy(POLICY).await;
    server
}

async fn trace_of_kind(server: &TestServer, kind: &str) -> Vec<(String, Value)> {
    let mut events = server
        .state()
        .store
        .audit_events_of_kind(kind, 0, 1000)
        .await
        .unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| (e.actor, serde_json::from_str(&e.detail).unwrap()))
        .collect()
}

/// A server without a gateway, the shop upstream, the agent `beside` (private_key_jwt)
/// and the remote gateway's configuration file.
struct Beside {
    dir: tempfile::TempDir,
    issuer: String,
    upstream: Upstream,
    server: TestServer,
    agent: Agent,
    config: std::path::PathBuf,
}

impl Beside {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let upstream = Upstream::start(&issuer, dir.path()).await;
        let server = server_on(port, Db::Sqlite).await;
        let agent = server
            .agent_with(new_agent("beside", "alice", "private_key_jwt"), false)
            .await;
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            gateway_toml(&dir.path().join("gateway-keys"), &upstream.url),
        )
        .unwrap();
        Self {
            dir,
            issuer,
            upstream,
            server,
            agent,
            config,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_beside_its_agent_decides_holds_and_reports_over_http() {
    let Beside {
        dir,
        issuer,
        upstream,
        server,
        agent,
        config,
    } = Beside::start().await;
    assert!(!server.state().config.gateway.enabled);
    let key_file = dir.path().join("beside.jwk");
    std::fs::write(
        &key_file,
        private_jwk(agent.key.as_ref().unwrap()).to_string(),
    )
    .unwrap();
    let wallet = server.wallet("alice").await;

    let gateway = json!([
        countersign_binary(),
        "--config",
        config,
        "gateway",
        "--agent",
        "beside",
        "--remote",
        issuer,
        "--agent-key",
        key_file,
    ]);
    let steps = json!([
        {"op": "list"},
        call("shop.get_catalog", json!({})),
        call("shop.drop_database", json!({})),
        call("shop.place_order", json!({"vendor": "Acme", "amount": 1200, "currency": "EUR"})),
        // The agent gives up on this one after 3 s: its approval is withdrawn.
        {"op": "call", "tool": "shop.place_order", "timeout": 3,
         "arguments": {"vendor": "Bolt", "amount": 5000, "currency": "EUR"}},
    ]);
    let mut client = ClientRun::start_stdio(&gateway, &steps, &[("RUST_LOG", "warn")]);

    let listed = client.next().await;
    assert_eq!(
        listed["tools"],
        json!([
            "shop.get_catalog",
            "shop.place_order",
            "shop.read_customer",
            "shop.send_email"
        ]),
        "the destructive tool is hidden: {listed}"
    );
    let catalog = client.next().await;
    assert_eq!(catalog["is_error"], false, "{catalog}");
    assert_eq!(catalog["json"]["items"][0]["sku"], "A-1");
    let dropped = client.next().await;
    assert_eq!(dropped["is_error"], true, "{dropped}");
    assert!(
        dropped["texts"][0]
            .as_str()
            .unwrap()
            .contains("destructive actions are never allowed"),
        "{dropped}"
    );

    // Held: the owner's wallet shows it; nothing runs until she approves.
    let id = held_request(&wallet, "Acme", 1200.0).await;
    assert!(upstream.calls_of("place_order").is_empty());
    decide(&wallet, &id, DecisionKind::Approve).await;
    let ordered = client.next().await;
    assert_eq!(ordered["is_error"], false, "{ordered}");
    assert_eq!(ordered["json"]["order"], "ord-acme-1200");
    // The shop verified the credential (issued to the agent, bound to the gateway's key
    // for it) and the proof, and the issuer counted its use.
    let calls = upstream.calls_of("place_order");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    let request = server.auth_request(&id).await;
    assert_eq!(request.client_id, "beside");
    assert_eq!(request.status, AuthRequestStatus::Issued);

    // The next large order: held, then abandoned by the agent after 3 s.
    let abandoned = wait_for_pending(&wallet).await;
    let given_up = client.next().await;
    assert!(given_up.get("error").is_some(), "{given_up}");
    assert!(client.finish().await.success());
    let mut status = AuthRequestStatus::Pending;
    for _ in 0..100 {
        status = server.auth_request(&abandoned).await.status;
        if status != AuthRequestStatus::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, AuthRequestStatus::Denied, "withdrawn");
    assert!(wallet.run(|w| w.pending()).await.unwrap().is_empty());
    let withdrawn = trace_of_kind(&server, "request.withdrawn").await;
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    assert_eq!(withdrawn[0].0, "client:beside");
    assert_eq!(upstream.calls_of("place_order").len(), 1);

    // Every call is in the server's trace, reported by the gateway as the agent.
    let reported = gateway_calls(&server, |d| d.len() >= 4).await;
    let outcomes: Vec<(&str, &str)> = reported
        .iter()
        .map(|d| (d["tool"].as_str().unwrap(), d["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("shop.get_catalog", "forwarded"),
            ("shop.drop_database", "stopped"),
            ("shop.place_order", "forwarded"),
            ("shop.place_order", "stopped"),
        ],
        "{reported:?}"
    );
    for detail in &reported {
        assert_eq!(detail["agent"], "beside");
        let decision = detail["decision_id"].as_str().unwrap();
        let about = server
            .state()
            .store
            .audit_events_about(decision, 5)
            .await
            .unwrap();
        assert!(
            about.iter().any(|e| e.actor == "client:beside"),
            "the decision {decision} is the agent's own"
        );
    }
    server.stop().await;
}

/// The id of the one request the wallet shows, once it shows one.
async fn wait_for_pending(wallet: &countersign_tests::wallets::TestWallet) -> String {
    for _ in 0..150 {
        let pending = wallet.run(|w| w.pending()).await.unwrap();
        if let Some(first) = pending.first() {
            return first.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no request reached the wallet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_gateway_with_a_wrong_credential_stops_at_start() {
    let Beside {
        dir,
        issuer,
        upstream: _upstream,
        server,
        config,
        ..
    } = Beside::start().await;
    // Not the key registered for the agent.
    let key_file = dir.path().join("other.jwk");
    std::fs::write(
        &key_file,
        private_jwk(&SigningKeyPair::generate()).to_string(),
    )
    .unwrap();
    let out = tokio::process::Command::new(countersign_binary())
        .arg("--config")
        .arg(&config)
        .args(["gateway", "--agent", "beside", "--remote", &issuer])
        .arg("--agent-key")
        .arg(&key_file)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("as agent \"beside\"") && stderr.contains("401"),
        "{stderr}"
    );
    server.stop().await;
}

/// A gateway's report of a call: `POST /v1/gateway-calls` as `agent`.
async fn report(
    server: &TestServer,
    agent: &Agent,
    fields: &[(&str, String)],
) -> (StatusCode, Value) {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server.post_as(agent, "/v1/gateway-calls", &fields).await
}

fn fields(decision: &str, outcome: &str) -> Vec<(&'static str, String)> {
    vec![
        ("tool", "shop.place_order".to_owned()),
        ("outcome", outcome.to_owned()),
        ("decision_id", decision.to_owned()),
        ("mcp_request_id", "7".to_owned()),
    ]
}

async fn withdraw(server: &TestServer, agent: &Agent, id: &str) -> (StatusCode, Value) {
    server
        .post_as(
            agent,
            "/v1/withdrawals",
            &[("auth_req_id", id), ("reason", "user cancelled")],
        )
        .await
}

both_backends!(gateway_reports_name_only_the_agents_own_decisions_and_requests);
async fn gateway_reports_name_only_the_agents_own_decisions_and_requests(db: Db) {
    let server = server_on(free_port(), db).await;
    let shopper = server
        .agent("shopper", "alice", "client_secret_basic")
        .await;
    let other = server.agent("other", "alice", "client_secret_basic").await;
    let (status, decided) = server
        .post_as(
            &shopper,
            "/v1/decisions",
            &[
                ("action", "purchase_order"),
                (
                    "arguments",
                    r#"{"vendor":"Acme","amount":120,"currency":"EUR"}"#,
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["subject"], "alice", "whom an approval is asked of");
    let decision = decided["decision_id"].as_str().unwrap().to_owned();

    // Another agent cannot write into this agent's history.
    let (status, body) = report(&server, &other, &fields(&decision, "forwarded")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    // Malformed reports.
    let (status, body) = report(&server, &shopper, &fields(&decision, "exploded")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let (status, _) = report(&server, &shopper, &[("outcome", "forwarded".into())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no tool");
    let (status, _) = report(&server, &shopper, &fields(&decision, "awaiting_approval")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "awaiting what?");
    let mut long = fields(&decision, "stopped");
    long.push(("reason", "x".repeat(1001)));
    let (status, _) = report(&server, &shopper, &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "reason too long");
    let (status, _) = report(&server, &shopper, &fields("dec_nonexistent", "forwarded")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown decision");
    let anonymous = reqwest::Client::new()
        .post(server.url("/v1/gateway-calls"))
        .form(&[("tool", "x"), ("outcome", "forwarded")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        trace_of_kind(&server, "gateway.call").await.is_empty(),
        "nothing was recorded"
    );

    // The agent's own report is recorded, with the agent as actor.
    let (status, body) = report(&server, &shopper, &fields(&decision, "forwarded")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded"], "gateway.call");
    let recorded = trace_of_kind(&server, "gateway.call").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "client:shopper");
    assert_eq!(recorded[0].1["decision_id"], decision.as_str());
    assert_eq!(recorded[0].1["mcp_request_id"], "7");

    // Withdrawals: only the agent's own pending request, once.
    let details = r#"[{"type":"purchase_order","vendor":"Acme","amount":5000,"currency":"EUR"}]"#;
    let (status, started) = server
        .bc_authorize(
            &shopper,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("authorization_details", details),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let id = started["auth_req_id"].as_str().unwrap();
    let (status, body) = withdraw(&server, &other, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["withdrawn"], false,
        "not the other agent's to withdraw"
    );
    let pending = server.auth_request(id).await;
    assert_eq!(pending.status, AuthRequestStatus::Pending);
    let (status, body) = withdraw(&server, &shopper, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawn"], true);
    let (status, body) = withdraw(&server, &shopper, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawn"], false, "once");
    let (status, body) = server.post_as(&shopper, "/v1/withdrawals", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = server.poll(&shopper, id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "access_denied");
    let withdrawn = trace_of_kind(&server, "request.withdrawn").await;
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0].1["reason"], "user cancelled");

    // A report may name the agent's own approval request, not another agent's.
    let mut awaiting = fields(&decision, "awaiting_approval");
    awaiting.push(("auth_req_id", id.to_owned()));
    let (status, body) = report(&server, &shopper, &awaiting).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    awaiting.retain(|(k, _)| *k != "decision_id");
    let (status, _) = report(&server, &other, &awaiting).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}
