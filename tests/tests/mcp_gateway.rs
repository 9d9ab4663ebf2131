#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The MCP gateway with independent MCP clients, the official Python SDK's and the
//! official TypeScript SDK's, in front of a shop written with the official Python SDK that
//! verifies approvals on its own (PyJWT): allowed calls pass unchanged, denied ones carry
//! the policy's reason, step-ups wait for the owner's wallet and then carry exactly the
//! approved arguments, and nothing is forwarded twice across a restart.

use std::time::Duration;

use countersign_server::clock::Clock;
use countersign_shared::approval::DecisionKind;
use countersign_tests::mcp::{ClientRun, Rig, Sdk, call, decide, gateway_calls, held_request, run};
use countersign_tests::{Db, both_backends, new_agent};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(agents_see_only_what_they_may_use_and_policy_decides_each_call);
async fn agents_see_only_what_they_may_use_and_policy_decides_each_call(db: Db) {
    let rig = Rig::start(db).await;
    let token = rig.token().await;
    let steps = json!([
        {"op": "list"},
        call("shop.get_catalog", json!({})),
        call("shop.place_order", json!({"vendor": "Acme", "amount": 120, "currency": "EUR"})),
        call("shop.drop_database", json!({})),
        call("shop.read_customer", json!({"customer_id": "c-17"})),
        call("shop.send_email", json!({"to": "rival@example.net", "body": "the IBAN"})),
        call("shop.nope", json!({})),
    ]);
    let results = run(Sdk::Python, &rig.mcp_url(), &token, steps).await;
    // The destructive tool is hidden: no policy can allow it.
    assert_eq!(
        results[0]["tools"],
        json!([
            "shop.get_catalog",
            "shop.place_order",
            "shop.read_customer",
            "shop.send_email"
        ])
    );
    // Allowed: the upstream's result, unchanged: what the same client gets from the
    // upstream directly.
    let direct = run(
        Sdk::Python,
        &rig.upstream.url,
        "unused",
        json!([call("get_catalog", json!({}))]),
    )
    .await;
    assert_eq!(results[1], direct[0]);
    assert_eq!(results[1]["is_error"], false, "{}", results[1]);
    assert_eq!(results[1]["json"]["items"][1]["price"], 1200);
    assert_eq!(results[2]["is_error"], false, "{}", results[2]);
    assert_eq!(results[2]["json"]["order"], "ord-acme-120");
    // Denied (called though hidden): the policy's reason, and the tool never ran.
    assert_eq!(results[3]["is_error"], true);
    assert!(
        results[3]["texts"][0]
            .as_str()
            .unwrap()
            .contains("destructive actions are never allowed to agents"),
        "{}",
        results[3]
    );
    // A confidential read, then an external send in the same session: stopped.
    assert_eq!(results[4]["is_error"], false, "{}", results[4]);
    assert_eq!(results[5]["is_error"], true, "{}", results[5]);
    assert!(
        results[5]["texts"][0]
            .as_str()
            .unwrap()
            .contains("nothing leaves the company"),
        "{}",
        results[5]
    );
    // An unknown tool is a JSON-RPC invalid-params error.
    assert_eq!(results[6]["error"]["code"], -32602, "{}", results[6]);
    let executed: Vec<Value> = rig
        .upstream
        .calls()
        .iter()
        .map(|c| c["tool"].clone())
        .collect();
    assert_eq!(
        executed,
        vec![
            json!("get_catalog"),
            json!("place_order"),
            json!("read_customer"),
            json!("get_catalog"), // the direct call
        ]
    );
    // Every call is in the trace with its MCP request id.
    let gateway = gateway_calls(&rig.server, |e| e.len() >= 5).await;
    assert_eq!(
        gateway.len(),
        5,
        "five decided calls (the unknown tool is not one)"
    );
    let detail = &gateway[3];
    assert_eq!(detail["outcome"], "forwarded");
    assert_eq!(detail["tool"], "shop.read_customer");
    assert!(!detail["mcp_request_id"].as_str().unwrap().is_empty());
    rig.server.stop().await;
}

both_backends!(a_held_call_waits_for_the_owner_and_carries_exactly_the_approval);
async fn a_held_call_waits_for_the_owner_and_carries_exactly_the_approval(db: Db) {
    let rig = Rig::start(db).await;
    let wallet = rig.server.wallet("alice").await;
    let token = rig.token().await;
    let order = json!({"vendor": "Acme", "amount": 1200, "currency": "EUR"});
    let mut client = ClientRun::start(
        Sdk::Python,
        &rig.mcp_url(),
        &token,
        &json!([call("shop.place_order", order.clone())]),
    );
    let id = held_request(&wallet, "Acme", 1200.0).await;
    assert!(
        rig.upstream.calls().is_empty(),
        "nothing runs before approval"
    );
    decide(&wallet, &id, DecisionKind::Approve).await;
    let result = client.next().await;
    assert!(client.finish().await.success());
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["json"]["order"], "ord-acme-1200");
    assert!(
        result["progress"].as_array().unwrap().iter().any(|m| m
            .as_str()
            .is_some_and(|m| m.contains("held until 1 approver answers"))),
        "progress while held: {result}"
    );
    // The shop verified the credential and proof itself and saw the approved arguments.
    let calls = rig.upstream.calls_of("place_order");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0]["arguments"],
        json!({"vendor": "Acme", "amount": 1200.0, "currency": "EUR"})
    );
    let authorization = calls[0]["authorization"].as_str().unwrap();
    assert!(authorization.starts_with("DPoP "), "{authorization}");

    // The same credential and proof with other arguments: the shop refuses them.
    let replay = rig
        .upstream
        .replay(
            &calls[0],
            json!({"vendor": "Acme", "amount": 9999, "currency": "EUR"}),
        )
        .await;
    assert_eq!(replay["is_error"], true, "{replay}");
    assert!(
        replay["texts"][0]
            .as_str()
            .unwrap()
            .contains("the human approved"),
        "{replay}"
    );
    assert_eq!(rig.upstream.calls_of("place_order").len(), 1);
    rig.server.stop().await;
}

both_backends!(a_denial_or_an_expiry_while_held_ends_the_call_with_an_error);
async fn a_denial_or_an_expiry_while_held_ends_the_call_with_an_error(db: Db) {
    let rig = Rig::start(db).await;
    let wallet = rig.server.wallet("alice").await;
    let token = rig.token().await;
    let mut client = ClientRun::start(
        Sdk::TypeScript,
        &rig.mcp_url(),
        &token,
        &json!([
            call(
                "shop.place_order",
                json!({"vendor": "Initech", "amount": 1500, "currency": "EUR"})
            ),
            call(
                "shop.place_order",
                json!({"vendor": "Initrode", "amount": 1600, "currency": "EUR"})
            ),
        ]),
    );
    let id = held_request(&wallet, "Initech", 1500.0).await;
    decide(&wallet, &id, DecisionKind::Deny).await;
    let denied = client.next().await;
    assert_eq!(denied["is_error"], true, "{denied}");
    assert!(
        denied["texts"][0]
            .as_str()
            .unwrap()
            .contains("not approved"),
        "{denied}"
    );
    // The second waits until the request expires (the server's clock moves past it).
    held_request(&wallet, "Initrode", 1600.0).await;
    rig.server.clock.advance_ms(3_600_000);
    let expired = client.next().await;
    assert!(client.finish().await.success());
    assert_eq!(expired["is_error"], true, "{expired}");
    assert!(
        expired["texts"][0].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    assert!(rig.upstream.calls_of("place_order").is_empty());
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_lists_calls_and_waits_through_a_hold() {
    let rig = Rig::start(Db::Sqlite).await;
    let wallet = rig.server.wallet("alice").await;
    let token = rig.token().await;
    let mut client = ClientRun::start(
        Sdk::TypeScript,
        &rig.mcp_url(),
        &token,
        &json!([
            {"op": "list"},
            call("shop.get_catalog", json!({})),
            call("shop.place_order", json!({"vendor": "Globex", "amount": 2500, "currency": "USD"})),
        ]),
    );
    assert_eq!(
        client.next().await["tools"],
        json!([
            "shop.get_catalog",
            "shop.place_order",
            "shop.read_customer",
            "shop.send_email"
        ])
    );
    assert_eq!(client.next().await["json"]["items"][0]["sku"], "A-1");
    let id = held_request(&wallet, "Globex", 2500.0).await;
    decide(&wallet, &id, DecisionKind::Approve).await;
    let approved = client.next().await;
    assert!(client.finish().await.success());
    assert_eq!(approved["is_error"], false, "{approved}");
    assert_eq!(approved["json"]["order"], "ord-globex-2500");
    assert!(
        !approved["progress"].as_array().unwrap().is_empty(),
        "{approved}"
    );
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_a_call_is_held_never_forwards_it_twice() {
    let mut rig = Rig::start(Db::Sqlite).await;
    let wallet = rig.server.wallet("alice").await;
    let token = rig.token().await;
    let order = json!({"vendor": "Hooli", "amount": 1250, "currency": "EUR"});
    let mut client = ClientRun::start(
        Sdk::Python,
        &rig.mcp_url(),
        &token,
        &json!([call("shop.place_order", order.clone())]),
    );
    let id = held_request(&wallet, "Hooli", 1250.0).await;
    rig.server.restart().await;
    // The held call ended with the restart, unforwarded; the agent hears so.
    let ended = client.next().await;
    assert!(
        ended.get("error").is_some() || ended["is_error"] == true,
        "{ended}"
    );
    let _ = client.finish().await;
    // The owner approves the request the gateway no longer holds: nothing is forwarded.
    decide(&wallet, &id, DecisionKind::Approve).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(rig.upstream.calls_of("place_order").is_empty());
    // Calling again asks anew; approved, it is forwarded once.
    let mut again = ClientRun::start(
        Sdk::Python,
        &rig.mcp_url(),
        &token,
        &json!([call("shop.place_order", order)]),
    );
    let second = held_request(&wallet, "Hooli", 1250.0).await;
    assert_ne!(second, id);
    decide(&wallet, &second, DecisionKind::Approve).await;
    let result = again.next().await;
    assert!(again.finish().await.success());
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(rig.upstream.calls_of("place_order").len(), 1);
    rig.server.stop().await;
}

both_backends!(the_gateway_is_a_protected_resource_agents_discover);
async fn the_gateway_is_a_protected_resource_agents_discover(db: Db) {
    let rig = Rig::start(db).await;
    let http = reqwest::Client::new();
    // RFC 9728: the metadata names the resource and Countersign as its server.
    let metadata: Value = http
        .get(rig.server.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], rig.mcp_url());
    assert_eq!(
        metadata["authorization_servers"],
        json!([rig.server.issuer()])
    );
    let discovery: Value = http
        .get(rig.server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}});
    let post = |auth: Option<String>| {
        let mut request = http
            .post(rig.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    // No token: 401 naming the metadata.
    let response = post(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!(
                "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
                rig.server.issuer()
            )),
        "{challenge}"
    );
    // A credential of this server is not an identity token for the gateway; nor is a
    // token for another resource, nor a forged one.
    for bad in ["Bearer not-a-jwt", "Bearer a.b.c", "Basic Zm9vOmJhcg=="] {
        let response = post(Some(bad.into())).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let (status, body) = rig
        .server
        .post_as(
            &rig.agent,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://elsewhere.example/mcp"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target", "{body}");
    // A valid token: the session starts.
    let token = rig.token().await;
    let response = post(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Another agent presenting that session id gets what an unknown session gets.
    let mut other = new_agent("snoop", "alice", "client_secret_basic");
    other.bearer_only = true;
    let snoop = rig.server.agent_with(other, false).await;
    let resource = rig.mcp_url();
    let (status, body) = rig
        .server
        .post_as(
            &snoop,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let response = http
        .post(rig.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header(
            "authorization",
            format!("Bearer {}", body["access_token"].as_str().unwrap()),
        )
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Disabled agents are refused at once, whatever their token says.
    countersign_server::directory::offboarding::suspend_agent(
        &rig.server.state().store,
        rig.server.clock.now_ms(),
        "shopper",
        "test",
        "test",
    )
    .await
    .unwrap();
    let response = post(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    rig.server.stop().await;
}

/// README's "Put your agents behind the gateway": the generic client configuration it
/// shows, with this run's address and token, is what an MCP client connects with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_client_configuration_connects() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("\n## Put your agents behind the gateway\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has the gateway section");
    let block = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section shows a JSON client configuration");
    let block: String = block.lines().map(str::trim).collect::<Vec<_>>().join("\n");
    let rig = Rig::start(Db::Sqlite).await;
    let token = rig.token().await;
    let config: Value = serde_json::from_str(
        &block
            .replace("http://127.0.0.1:8080/mcp", &rig.mcp_url())
            .replace("${COUNTERSIGN_TOKEN}", &token),
    )
    .expect("the configuration is JSON");
    let server = &config["mcpServers"]["countersign"];
    assert_eq!(server["type"], "streamable-http");
    let results = run(
        Sdk::Python,
        server["url"].as_str().unwrap(),
        &server["headers"].to_string(),
        json!([{"op": "list"}, call("shop.get_catalog", json!({}))]),
    )
    .await;
    assert_eq!(results[0]["tools"].as_array().unwrap().len(), 4);
    assert_eq!(results[1]["is_error"], false, "{}", results[1]);
    rig.server.stop().await;
}

both_backends!(an_agent_that_gives_up_on_a_held_call_withdraws_its_approval);
async fn an_agent_that_gives_up_on_a_held_call_withdraws_its_approval(db: Db) {
    let rig = Rig::start(db).await;
    let wallet = rig.server.wallet("alice").await;
    // The Python SDK times the request out after 3 s and sends notifications/cancelled.
    let order = json!({"vendor": "Umbrella", "amount": 1100, "currency": "EUR"});
    let steps =
        json!([{"op": "call", "tool": "shop.place_order", "arguments": order, "timeout": 3}]);
    let mut client = rig.client(Sdk::Python, &steps, &[]).await;
    held_request(&wallet, "Umbrella", 1100.0).await;
    let gave_up = client.next().await;
    assert!(client.finish().await.success());
    assert!(gave_up.get("error").is_some(), "{gave_up}");
    // The cancellation reaches the gateway after the client has moved on.
    let mut pending = wallet.run(|w| w.pending()).await.unwrap();
    for _ in 0..50 {
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pending = wallet.run(|w| w.pending()).await.unwrap();
    }
    assert!(
        pending.is_empty(),
        "the approver is still asked: {pending:?}"
    );
    let store = &rig.server.state().store;
    let withdrawn = store
        .audit_events_of_kind("request.withdrawn", 0, 10)
        .await
        .unwrap();
    assert_eq!(withdrawn.len(), 1);
    let calls = gateway_calls(&rig.server, |e| !e.is_empty()).await;
    let detail = &calls[0];
    assert_eq!(detail["outcome"], "stopped");
    assert_eq!(detail["reason"], "cancelled by the agent while held");
    assert!(rig.upstream.calls_of("place_order").is_empty());
    rig.server.stop().await;
}
