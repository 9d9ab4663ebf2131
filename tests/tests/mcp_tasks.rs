#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Held calls as tasks (the MCP Tasks extension, SEP-2663), driven by the official Rust
//! MCP SDK's client (rmcp) speaking 2026-07-28 and declaring the extension: the Python
//! and TypeScript SDKs here do not implement it. A held call is answered with a task at
//! once; the task completes with the upstream's result once the owner approves (the shop
//! verifies the credential itself), completes with a tool error when the owner denies or
//! the approval expires, and `tasks/cancel` withdraws the approval request. A task is its
//! own agent's only, an agent has at most `max_held_tasks` waiting, and a restart never
//! forwards a task's call.

use std::time::Duration;

use countersign_shared::approval::DecisionKind;
use countersign_tests::mcp::{Rig, decide, gateway_calls, held_request};
use countersign_tests::wallets::TestWallet;
use countersign_tests::{Db, both_backends, new_agent};
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    ClientConfig, DetailedTask, GetTaskParams, Implementation, ProtocolVersion, TaskPayload,
    TaskStatus,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ClientConfig>;

/// A 2026-07-28 client (no session) of the gateway that declares the tasks extension.
async fn tasks_client(url: &str, token: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("countersign-tasks-test", "1.0.0"),
    );
    info.serve_with_lifecycle(
        transport,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("a 2026-07-28 client connects to the gateway")
}

async fn order(client: &Client, vendor: &str, amount: u32) -> CallToolResponse {
    let arguments = json!({"vendor": vendor, "amount": amount, "currency": "EUR"});
    let params = CallToolRequestParams::new("shop.place_order")
        .with_arguments(arguments.as_object().unwrap().clone());
    client.call_tool_once(params).await.expect("tools/call")
}

/// The task a held call was answered with: working, saying who must answer.
fn created(response: CallToolResponse) -> String {
    let CallToolResponse::Task(created) = response else {
        panic!("a held call is answered with a task: {response:?}");
    };
    let task = created.task;
    assert_eq!(task.status, TaskStatus::Working);
    let message = task.status_message.unwrap_or_default();
    assert!(
        message.contains("held until 1 approver answers"),
        "{message}"
    );
    // Kept past the hold (5 min, the policy's approval window) and the forwarding.
    assert!(
        task.ttl_ms.is_some_and(|ttl| ttl > 300_000),
        "{:?}",
        task.ttl_ms
    );
    assert_eq!(
        task.poll_interval_ms,
        Some(200),
        "the gateway's progress interval"
    );
    task.task_id
}

async fn task(client: &Client, id: &str) -> DetailedTask {
    client
        .get_task(GetTaskParams::new(id))
        .await
        .expect("tasks/get")
        .task
}

/// Polls `tasks/get` as a client would until the task has ended.
async fn ended(client: &Client, id: &str) -> DetailedTask {
    for _ in 0..300 {
        let task = task(client, id).await;
        if task.status().is_terminal() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {id} did not end within 30 s");
}

fn completed(task: &DetailedTask) -> CallToolResult {
    let TaskPayload::Completed { result } = &task.payload else {
        panic!("the task completed: {task:?}");
    };
    serde_json::from_value(Value::Object(result.clone())).expect("a CallToolResult")
}

fn text(result: &CallToolResult) -> String {
    serde_json::to_string(&result.content).unwrap()
}

/// The wallet's pending requests once there are `count`, by vendor.
async fn pending(wallet: &TestWallet, count: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for _ in 0..150 {
        let requests = wallet.run(|w| w.pending()).await.unwrap();
        seen.clear();
        for request in &requests {
            let id = request.id.clone();
            let shown = wallet.run(move |w| w.show(&id)).await.unwrap();
            let details = shown.transaction.authorization_details.clone().unwrap();
            let vendor = details[0]["vendor"].as_str().unwrap().to_owned();
            seen.push((vendor, request.id.clone()));
        }
        if seen.len() == count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the wallet shows {seen:?}, not {count} requests");
}

fn id_of(requests: &[(String, String)], vendor: &str) -> String {
    let found = requests.iter().find(|(v, _)| v == vendor);
    found.expect("a request for the vendor").1.clone()
}

both_backends!(a_held_call_becomes_a_task_that_completes_when_the_owner_approves);
async fn a_held_call_becomes_a_task_that_completes_when_the_owner_approves(db: Db) {
    let rig = Rig::start(db).await;
    let wallet = rig.server.wallet("alice").await;
    let client = tasks_client(&rig.mcp_url(), &rig.token().await).await;

    // An allowed call is answered as ever, with the upstream's result.
    let small = order(&client, "Acme", 120).await;
    let CallToolResponse::Complete(small) = small else {
        panic!("an allowed call is no task: {small:?}");
    };
    assert_eq!(small.is_error, Some(false));
    assert!(text(&small).contains("ord-acme-120"), "{small:?}");

    let id = created(order(&client, "Acme", 1200).await);
    let request = held_request(&wallet, "Acme", 1200.0).await;
    assert_eq!(task(&client, &id).await.status(), TaskStatus::Working);
    assert!(
        rig.upstream.calls_of("place_order").len() == 1,
        "only the small order ran"
    );

    // Another agent of the same owner neither sees nor cancels it.
    let mut other = new_agent("snoop", "alice", "client_secret_basic");
    other.bearer_only = true;
    let snoop = rig.server.agent_with(other, false).await;
    let snooper = tasks_client(&rig.mcp_url(), &rig.token_of(&snoop).await).await;
    for refused in [
        snooper.get_task(GetTaskParams::new(&id)).await.err(),
        snooper.cancel_task(CancelTaskParams::new(&id)).await.err(),
    ] {
        let refused = format!("{:?}", refused.expect("refused"));
        assert!(refused.contains("unknown task"), "{refused}");
    }
    assert_eq!(task(&client, &id).await.status(), TaskStatus::Working);

    decide(&wallet, &request, DecisionKind::Approve).await;
    let done = ended(&client, &id).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    let result = completed(&done);
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert!(text(&result).contains("ord-acme-1200"), "{result:?}");
    // The shop verified the credential and proof itself and saw the approved arguments.
    let calls = rig.upstream.calls_of("place_order");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1]["arguments"],
        json!({"vendor": "Acme", "amount": 1200.0, "currency": "EUR"})
    );
    assert!(
        calls[1]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    // Polling the ended task again changes nothing and forwards nothing.
    assert_eq!(task(&client, &id).await.status(), TaskStatus::Completed);
    assert_eq!(rig.upstream.calls_of("place_order").len(), 2);

    // Traced: held (with its approval request), then forwarded, under one decision.
    let events = gateway_calls(&rig.server, |e| e.len() >= 3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let of = |outcome: &str| -> Vec<&Value> {
        events.iter().filter(|e| e["outcome"] == outcome).collect()
    };
    let (held, forwarded) = (of("awaiting_approval"), of("forwarded"));
    assert_eq!(held.len(), 1, "{events:?}");
    assert!(held[0]["auth_req_id"].is_string(), "{events:?}");
    let approved = forwarded
        .iter()
        .filter(|e| e["decision_id"] == held[0]["decision_id"]);
    assert_eq!(approved.count(), 1, "{events:?}");
    drop((client, snooper));
    rig.server.stop().await;
}

both_backends!(tasks_are_cancelled_denied_and_limited_per_agent);
async fn tasks_are_cancelled_denied_and_limited_per_agent(db: Db) {
    let rig = Rig::start_with(db, |c| c.gateway.max_held_tasks = 2).await;
    let wallet = rig.server.wallet("alice").await;
    let client = tasks_client(&rig.mcp_url(), &rig.token().await).await;
    let cancelled = created(order(&client, "Umbrella", 1100).await);
    let denied = created(order(&client, "Initech", 1500).await);
    let requests = pending(&wallet, 2).await;

    // A third held call while two wait: refused with a tool error, no one is asked.
    let refused = order(&client, "Globex", 1300).await;
    let CallToolResponse::Complete(refused) = refused else {
        panic!("past the limit a call gets no task: {refused:?}");
    };
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("too many calls"), "{refused:?}");
    assert_eq!(pending(&wallet, 2).await.len(), 2);

    // Cancelled: the approval request is withdrawn, the owner is no longer asked.
    client
        .cancel_task(CancelTaskParams::new(&cancelled))
        .await
        .unwrap();
    assert_eq!(
        ended(&client, &cancelled).await.status(),
        TaskStatus::Cancelled
    );
    let left = pending(&wallet, 1).await;
    assert_eq!(left[0].0, "Initech");
    let store = &rig.server.state().store;
    let withdrawn = store
        .audit_events_of_kind("request.withdrawn", 0, 10)
        .await
        .unwrap();
    assert_eq!(withdrawn.len(), 1);

    // Denied by the owner: the task completes with a tool error saying so.
    decide(&wallet, &id_of(&requests, "Initech"), DecisionKind::Deny).await;
    let done = ended(&client, &denied).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    let result = completed(&done);
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("not approved"), "{result:?}");

    // With both ended, the agent may hold calls as tasks again.
    let again = created(order(&client, "Globex", 1300).await);
    pending(&wallet, 1).await;
    client
        .cancel_task(CancelTaskParams::new(&again))
        .await
        .unwrap();
    ended(&client, &again).await;
    assert!(
        rig.upstream.calls_of("place_order").is_empty(),
        "nothing forwarded"
    );

    let events = gateway_calls(&rig.server, |e| {
        e.iter().filter(|e| e["outcome"] == "stopped").count() >= 4
    })
    .await;
    let stopped: Vec<&str> = events
        .iter()
        .filter(|e| e["outcome"] == "stopped")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        stopped.iter().any(|r| r.contains("too many calls")),
        "{stopped:?}"
    );
    assert!(
        stopped.contains(&"cancelled by the agent while held"),
        "{stopped:?}"
    );
    assert!(
        stopped.iter().any(|r| r.starts_with("not approved")),
        "{stopped:?}"
    );
    drop(client);
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_a_task_waits_never_forwards_its_call() {
    let mut rig = Rig::start(Db::Sqlite).await;
    let wallet = rig.server.wallet("alice").await;
    let token = rig.token().await;
    let client = tasks_client(&rig.mcp_url(), &token).await;
    let id = created(order(&client, "Hooli", 1250).await);
    let request = held_request(&wallet, "Hooli", 1250.0).await;
    drop(client);
    rig.server.restart().await;

    // The task ended with the gateway that held it, traced before the store closed; the
    // new gateway has never heard of it.
    let events = gateway_calls(&rig.server, |e| e.len() >= 2).await;
    assert_eq!(events[0]["outcome"], "awaiting_approval", "{events:?}");
    assert_eq!(events[1]["outcome"], "stopped", "{events:?}");
    assert_eq!(
        events[1]["reason"], "the gateway stopped while the call was held",
        "{events:?}"
    );
    let client = tasks_client(&rig.mcp_url(), &token).await;
    let gone = format!("{:?}", client.get_task(GetTaskParams::new(&id)).await);
    assert!(gone.contains("unknown task"), "{gone}");

    // The owner approves the request no gateway holds any more: nothing is forwarded.
    decide(&wallet, &request, DecisionKind::Approve).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(rig.upstream.calls_of("place_order").is_empty());
    drop(client);
    rig.server.stop().await;
}

both_backends!(a_task_whose_approval_expires_ends_with_an_error);
async fn a_task_whose_approval_expires_ends_with_an_error(db: Db) {
    // Approval requests of held calls live as long as the gateway holds a call: 2 s here.
    let rig = Rig::start_with(db, |c| c.gateway.hold_timeout_secs = 2).await;
    let wallet = rig.server.wallet("alice").await;
    let client = tasks_client(&rig.mcp_url(), &rig.token().await).await;
    let CallToolResponse::Task(created) = order(&client, "Stark", 1700).await else {
        panic!("a held call is answered with a task");
    };
    let id = created.task.task_id;
    pending(&wallet, 1).await;
    let done = ended(&client, &id).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    let result = completed(&done);
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("expired"), "{result:?}");
    // The owner is no longer asked, and nothing ran.
    assert!(wallet.run(|w| w.pending()).await.unwrap().is_empty());
    assert!(rig.upstream.calls_of("place_order").is_empty());
    let events = gateway_calls(&rig.server, |e| e.len() >= 2).await;
    assert_eq!(events[1]["outcome"], "stopped", "{events:?}");
    drop(client);
    rig.server.stop().await;
}
