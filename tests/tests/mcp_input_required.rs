#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Held calls for MCP 2026-07-28 clients (the official Python SDK speaking 2026-07-28:
//! `server/discover`, no session): the gateway answers `input_required` with a URL
//! elicitation of the approval's page and a sealed request state; the SDK retries with
//! it and the retry resumes the same approval. The page is checked in headless Chromium
//! (axe, CSP) and screenshotted into docs/gateway/. A request state resumes only its own
//! call, and a call is forwarded once however often its state is replayed.

use std::process::Command;

use countersign_shared::approval::DecisionKind;
use countersign_tests::mcp::{ClientRun, Rig, Sdk, call, decide, gateway_calls, held_request};
use countersign_tests::{Db, both_backends, new_agent};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MODERN: &[(&str, &str)] = &[("CS_MCP_MODE", "auto")];

/// Opens `url` in headless Chromium (tests/browser/approval_page.py): 200, no script,
/// `expected` on the page, axe clean; the SQLite run saves the screenshots.
async fn check_in_browser(db: Db, url: &str, name: &str, expected: &str) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut cmd = Command::new(countersign_tests::tools::python());
    cmd.arg(format!("{root}/tests/browser/approval_page.py"))
        .args([url, name, expected]);
    if matches!(db, Db::Sqlite) {
        cmd.args(["--shots", &format!("{root}/docs/gateway")]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run the browser (scripts/test.sh installs Playwright)");
    assert!(
        out.status.success(),
        "the approval page failed in the browser:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

both_backends!(a_2026_client_watches_the_approval_page_and_its_retry_resumes_the_approval);
async fn a_2026_client_watches_the_approval_page_and_its_retry_resumes_the_approval(db: Db) {
    let rig = Rig::start(db).await;
    let wallet = rig.server.wallet("alice").await;
    let order = json!({"vendor": "Acme", "amount": 1200, "currency": "EUR"});
    // The SDK's request timeout covers every round of the call.
    let steps =
        json!([{"op": "call", "tool": "shop.place_order", "arguments": order, "timeout": 240}]);
    let mut client = rig.client(Sdk::Python, &steps, MODERN).await;
    // The first answer: a URL elicitation of the approval's page.
    let elicited = client.next().await;
    let params = &elicited["elicited"];
    assert_eq!(params["mode"], "url", "{elicited}");
    assert!(
        params["message"]
            .as_str()
            .unwrap()
            .contains("held until 1 approver answers"),
        "{elicited}"
    );
    let page = params["url"].as_str().unwrap().to_owned();
    assert!(
        page.starts_with(&rig.server.url("/gateway/approvals/")),
        "{page}"
    );
    let id = held_request(&wallet, "Acme", 1200.0).await;

    // The page shows what waits, to anyone holding the link, and nothing else.
    let http = reqwest::Client::new();
    let pending = http.get(&page).send().await.unwrap();
    assert_eq!(pending.status(), StatusCode::OK);
    let html = pending.text().await.unwrap();
    assert!(html.contains("waits for approval"), "{html}");
    assert!(html.contains("Acme") && html.contains("1200"), "{html}");
    let forged = format!("{page}x");
    assert_eq!(
        http.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    check_in_browser(db, &page, "approval-pending", "Pending: waiting for").await;
    assert!(
        rig.upstream.calls().is_empty(),
        "nothing runs before approval"
    );

    // The SDK retried with the request state and waits on the same approval.
    decide(&wallet, &id, DecisionKind::Approve).await;
    let result = client.next().await;
    assert!(client.finish().await.success());
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["json"]["order"], "ord-acme-1200");
    let calls = rig.upstream.calls_of("place_order");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0]["arguments"],
        json!({"vendor": "Acme", "amount": 1200.0, "currency": "EUR"})
    );
    assert!(
        calls[0]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    check_in_browser(
        db,
        &page,
        "approval-approved",
        "Approved, and the gateway took the credential",
    )
    .await;

    // Traced: held (with the approval request; again for each retry that timed out while
    // the browser ran), then forwarded, all under the one decision.
    let events = gateway_calls(&rig.server, |e| {
        e.last().is_some_and(|last| last["outcome"] == "forwarded")
    })
    .await;
    let (last, rounds) = events.split_last().unwrap();
    assert!(!rounds.is_empty(), "{events:?}");
    assert_eq!(last["outcome"], "forwarded", "{events:?}");
    for round in rounds {
        assert_eq!(round["outcome"], "awaiting_approval", "{events:?}");
        assert_eq!(round["auth_req_id"], id.as_str());
        assert_eq!(round["decision_id"], last["decision_id"]);
        assert_ne!(round["mcp_request_id"], last["mcp_request_id"]);
    }
    rig.server.stop().await;
}

both_backends!(a_request_state_resumes_only_its_own_call_and_forwards_it_once);
async fn a_request_state_resumes_only_its_own_call_and_forwards_it_once(db: Db) {
    let rig = Rig::start(db).await;
    let wallet = rig.server.wallet("alice").await;
    let token = rig.token().await;
    let order = json!({"vendor": "Initech", "amount": 1500, "currency": "EUR"});
    // One round by hand: the state comes back to the test.
    let mut first = ClientRun::start_with_env(
        Sdk::Python,
        &rig.mcp_url(),
        &token,
        &json!([{"op": "call_once", "tool": "shop.place_order", "arguments": order}]),
        MODERN,
    );
    let round = first.next().await;
    assert!(first.finish().await.success());
    let state = round["input_required"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("input_required with a state: {round}"))
        .to_owned();
    assert_eq!(
        round["input_required"]["inputRequests"]["countersign_approval"]["method"],
        "elicitation/create"
    );
    let id = held_request(&wallet, "Initech", 1500.0).await;
    // Retried before anyone answers: after `retry_hold_secs` (5 s here) the same state
    // comes back, with nothing more to ask.
    let mut early = ClientRun::start_with_env(
        Sdk::Python,
        &rig.mcp_url(),
        &token,
        &json!([{"op": "call_once", "tool": "shop.place_order", "arguments": order,
                 "request_state": state}]),
        MODERN,
    );
    let again = early.next().await;
    assert!(early.finish().await.success());
    assert_eq!(
        again["input_required"]["requestState"],
        state.as_str(),
        "{again}"
    );
    assert!(
        again["input_required"].get("inputRequests").is_none(),
        "{again}"
    );
    // Another agent echoing the state: refused, as a forged one is.
    let mut other = new_agent("rival", "alice", "client_secret_basic");
    other.bearer_only = true;
    let other = rig.server.agent_with(other, false).await;
    let (status, body) = rig
        .server
        .post_as(
            &other,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", rig.mcp_url().as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stolen = countersign_tests::mcp::run_with_env(
        Sdk::Python,
        &rig.mcp_url(),
        body["access_token"].as_str().unwrap(),
        json!([{"op": "call", "tool": "shop.place_order", "arguments": order,
                "request_state": state}]),
        MODERN,
    )
    .await;
    assert_eq!(stolen[0]["error"]["code"], -32602, "{stolen:?}");
    decide(&wallet, &id, DecisionKind::Approve).await;

    let mut tampered = state.clone().into_bytes();
    tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let resume = |arguments: &Value, state: &str| {
        json!({"op": "call", "tool": "shop.place_order", "arguments": arguments,
               "request_state": state})
    };
    let more = json!({"vendor": "Initech", "amount": 9999, "currency": "EUR"});
    let steps = json!([
        {"op": "list"},
        resume(&more, &state),
        {"op": "call", "tool": "shop.get_catalog", "arguments": {}, "request_state": state},
        resume(&order, &tampered),
        resume(&order, &state),
        resume(&order, &state),
    ]);
    let mut second = ClientRun::start_with_env(Sdk::Python, &rig.mcp_url(), &token, &steps, MODERN);
    let listed = second.next().await;
    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(second.next().await);
    }
    assert!(second.finish().await.success());
    // Listing over 2026-07-28 is filtered as over a session: the destructive tool hidden.
    let tools = listed["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("shop.place_order")), "{listed}");
    assert!(!tools.contains(&json!("shop.drop_database")), "{listed}");
    // Other arguments, another tool, a forged state: refused as invalid params.
    for refused in &results[..3] {
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("requestState"),
            "{refused}"
        );
    }
    // The call itself, forwarded once; its replay is refused and not forwarded again.
    assert_eq!(results[3]["is_error"], false, "{}", results[3]);
    assert_eq!(results[3]["json"]["order"], "ord-initech-1500");
    assert_eq!(results[4]["is_error"], true, "{}", results[4]);
    assert!(
        results[4]["texts"][0]
            .as_str()
            .unwrap()
            .contains("not forwarded again"),
        "{}",
        results[4]
    );
    assert_eq!(rig.upstream.calls_of("place_order").len(), 1);
    assert!(rig.upstream.calls_of("get_catalog").is_empty());

    // The agent's user cancels at the elicitation: the call ends, nothing is forwarded.
    let cancel = [("CS_MCP_MODE", "auto"), ("CS_MCP_ELICIT_ACTION", "cancel")];
    let mut cancelled = ClientRun::start_with_env(
        Sdk::Python,
        &rig.mcp_url(),
        &token,
        &json!([call(
            "shop.place_order",
            json!({"vendor": "Globex", "amount": 1300, "currency": "EUR"})
        )]),
        &cancel,
    );
    assert_eq!(cancelled.next().await["elicited"]["mode"], "url");
    let ended = cancelled.next().await;
    assert!(cancelled.finish().await.success());
    assert_eq!(ended["is_error"], true, "{ended}");
    assert!(
        ended["texts"][0]
            .as_str()
            .unwrap()
            .contains("cancelled by the agent's user"),
        "{ended}"
    );
    assert_eq!(rig.upstream.calls_of("place_order").len(), 1);
    // The approval was withdrawn: the approver is no longer asked, and it is traced.
    assert!(
        wallet.run(|w| w.pending()).await.unwrap().is_empty(),
        "a cancelled call's approval stays on the approver's phone"
    );
    let withdrawn = rig
        .server
        .state()
        .store
        .audit_events_of_kind("request.withdrawn", 0, 10)
        .await
        .unwrap();
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(
        withdrawn[0].actor,
        format!("client:{}", rig.agent.client_id)
    );
    rig.server.stop().await;
}

/// A 2026-07-28 `tools/call` over plain HTTP with the SEP-2243 headers, as any client
/// sends it (no session).
async fn call_2026(
    rig: &Rig,
    token: &str,
    id: u64,
    tool: &str,
    arguments: Value,
) -> reqwest::Response {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
    "name": tool, "arguments": arguments,
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    }}});
    reqwest::Client::new()
        .post(rig.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {token}"))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&request)
        .send()
        .await
        .unwrap()
}

// A call answered at once (allowed, denied) is one JSON body, not an event stream: the
// transport allows either, and a stream per call costs the gateway a task, a keep-alive
// timer and the event framing (docs/benchmarks.md, the gateway's throughput).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_answered_at_once_is_one_json_body() {
    let rig = Rig::start(Db::Sqlite).await;
    let token = rig.token().await;
    let allowed = call_2026(
        &rig,
        &token,
        7,
        "shop.place_order",
        json!({"vendor": "Acme", "amount": 20, "currency": "EUR"}),
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.headers()["content-type"], "application/json");
    let body: Value = allowed.json().await.unwrap();
    assert_eq!(body["id"], 7, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
    // The upstream's result, unchanged.
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains(r#""order": "ord-acme-20""#)),
        "{body}"
    );
    let denied = call_2026(&rig, &token, 8, "shop.drop_database", json!({})).await;
    assert_eq!(denied.headers()["content-type"], "application/json");
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("denied by policy")),
        "{body}"
    );
    assert!(rig.upstream.calls_of("drop_database").is_empty());
    rig.server.stop().await;
}
