#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The AuthZEN Access Request and Approval profile (Draft 1) round trip: a step-up is a
//! denial that advertises an access request; the request reaches the owner's wallet;
//! once she approves, re-evaluating exactly the same request is permitted, once (the
//! policy's use limit); a changed request is not; a request is made once per denial and
//! may be cancelled.

use countersign_shared::approval::DecisionKind;
use countersign_tests::wallets::TestWallet;
use countersign_tests::{Agent, Db, TestServer, both_backends};
use serde_json::{Value, json};

const POLICY: &str = r#"
@id("small-orders")
permit (principal, action == Action::"purchase_order", resource)
when { context.arguments.amount < 1000 };

@id("large-orders")
@step_up
@approver("owner")
@validity("PT5M")
@reason("orders of 1,000 or more need the owner's approval")
permit (principal, action == Action::"purchase_order", resource)
when { context.arguments.amount >= 1000 };
"#;

async fn post(server: &TestServer, agent: &Agent, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .basic_auth(&agent.client_id, agent.secret.as_deref())
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(server: &TestServer, agent: &Agent, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .basic_auth(&agent.client_id, agent.secret.as_deref())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn order(agent: &str, amount: u32) -> Value {
    json!({
        "subject": {"type": "agent", "id": agent},
        "action": {"name": "purchase_order"},
        "resource": {"type": "shop", "id": "order-7",
                     "properties": {"vendor": "Acme", "amount": amount, "currency": "EUR"}},
    })
}

fn with_approval(mut body: Value, approval: &Value) -> Value {
    body["context"] = json!({"approval": approval});
    body
}

/// The access request for a denial `answer` of `body`.
fn access_request(body: &Value, answer: &Value) -> Value {
    let advertised = &answer["context"]["access_request"];
    let mut request = body.clone();
    request["denial"] = json!({
        "evaluation_id": answer["context"]["evaluation_id"],
        "expires_at": advertised["expires_at"],
        "binding_token": advertised["binding_token"],
    });
    request
}

async fn pending(wallet: &TestWallet) -> Vec<String> {
    wallet
        .run(|w| w.pending())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect()
}

both_backends!(a_step_up_becomes_an_access_request_and_its_approval_permits_once);
async fn a_step_up_becomes_an_access_request_and_its_approval_permits_once(db: Db) {
    let server = TestServer::start(db).await;
    server.human("alice").await;
    server.install_policy(POLICY).await;
    let mut new = countersign_tests::new_agent("shopper", "alice", "client_secret_basic");
    new.bearer_only = true;
    let shopper = server.agent_with(new, false).await;
    let other = server.agent("other", "alice", "client_secret_basic").await;
    let wallet = server.wallet("alice").await;
    let metadata: Value = server.get_json("/.well-known/authzen-configuration").await;
    assert_eq!(
        metadata["access_request_endpoint"],
        server.url("/access/v1/requests")
    );
    assert_eq!(
        metadata["capabilities"],
        json!(["urn:openid:authzen:capability:access-request"])
    );

    // Small orders pass; a large one is a requestable denial.
    let (_, small) = post(
        &server,
        &shopper,
        "/access/v1/evaluation",
        &order("shopper", 120),
    )
    .await;
    assert_eq!(small["decision"], true, "{small}");
    let body = order("shopper", 1500);
    let (status, denied) = post(&server, &shopper, "/access/v1/evaluation", &body).await;
    assert_eq!(status, 200);
    assert_eq!(denied["decision"], false, "{denied}");
    let context = &denied["context"];
    assert_eq!(context["reason"], "approval_required");
    assert_eq!(context["outcome"], "step_up");
    assert_eq!(context["evaluation_id"], context["decision_id"]);
    assert_eq!(
        context["access_request"]["endpoint"],
        server.url("/access/v1/requests")
    );
    let request = access_request(&body, &denied);

    // The denial binds the request: another amount, or another client, cannot use it.
    let mut changed = request.clone();
    changed["resource"]["properties"]["amount"] = json!(9000);
    let (status, problem) = post(&server, &shopper, "/access/v1/requests", &changed).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:openid:authzen:access-request:error:invalid_denial_binding"
    );
    let (status, _) = post(&server, &other, "/access/v1/requests", &request).await;
    assert_eq!(status, 400, "another client's denial");
    assert!(pending(&wallet).await.is_empty(), "nobody was asked");

    // The request reaches the owner's wallet, once.
    let (status, created) = post(&server, &shopper, "/access/v1/requests", &request).await;
    assert_eq!(status, 202, "{created}");
    let task = &created["task"];
    assert_eq!(task["status"], "pending");
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(
        task["status_endpoint"],
        server.url(&format!("/access/v1/requests/{id}"))
    );
    let (status, problem) = post(&server, &shopper, "/access/v1/requests", &request).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:openid:authzen:access-request:error:duplicate_request"
    );
    assert_eq!(pending(&wallet).await, std::slice::from_ref(&id));
    let shown = wallet
        .run({
            let id = id.clone();
            move |w| w.show(&id)
        })
        .await
        .unwrap();
    let details = shown.transaction.authorization_details.unwrap();
    assert_eq!(details[0]["amount"], 1500, "{details}");
    // Only its client sees the task.
    let (status, _) = get(&server, &other, &format!("/access/v1/requests/{id}")).await;
    assert_eq!(status, 404);

    // Presented before anyone answered: not yet.
    let early = with_approval(body.clone(), &json!({"id": id}));
    let (_, answer) = post(&server, &shopper, "/access/v1/evaluation", &early).await;
    assert_eq!(answer["decision"], false, "{answer}");
    assert_eq!(answer["context"]["reason"], "grant_pending");
    assert_eq!(answer["context"]["next_action"], "retry");

    // Alice approves on her phone; the task says so and carries the approval.
    let approve = id.clone();
    wallet
        .run(move |w| w.decide(&approve, DecisionKind::Approve, None))
        .await
        .unwrap();
    let (status, approved) = get(&server, &shopper, &format!("/access/v1/requests/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(approved["task"]["status"], "approved", "{approved}");
    assert_eq!(approved["result"]["mode"], "reevaluate");
    let approval = approved["result"]["approval"].clone();
    assert_eq!(approval["id"], id.as_str());

    // The same request, with the approval: permitted, once.
    let again = with_approval(body.clone(), &approval);
    let (_, answer) = post(&server, &shopper, "/access/v1/evaluation", &again).await;
    assert_eq!(answer["decision"], true, "{answer}");
    assert_eq!(answer["context"]["approval"]["uses"], 1);
    // Another amount with the same approval: not what was approved.
    let other_amount = with_approval(order("shopper", 1600), &approval);
    let (_, answer) = post(&server, &shopper, "/access/v1/evaluation", &other_amount).await;
    assert_eq!(answer["decision"], false, "{answer}");
    assert_eq!(answer["context"]["reason"], "out_of_scope");
    assert_eq!(answer["context"]["next_action"], "request");
    assert!(answer["context"]["access_request"]["binding_token"].is_string());
    // The use limit (one) is spent.
    let (_, answer) = post(&server, &shopper, "/access/v1/evaluation", &again).await;
    assert_eq!(answer["decision"], false, "{answer}");
    assert_eq!(answer["context"]["reason"], "approval_expired");
    // Another client presenting the approval: not its own.
    let (_, answer) = post(&server, &other, "/access/v1/evaluation", &{
        let mut b = again.clone();
        b["subject"]["id"] = json!("other");
        b
    })
    .await;
    assert_eq!(answer["decision"], false, "{answer}");
    let used = server
        .state()
        .store
        .audit_events_of_kind("access.approval_used", 0, 10)
        .await
        .unwrap();
    assert_eq!(used.len(), 1, "one use, traced");
    assert_eq!(used[0].subject, id);
    server.stop().await;
}

both_backends!(an_access_request_can_be_cancelled_once);
async fn an_access_request_can_be_cancelled_once(db: Db) {
    let server = TestServer::start(db).await;
    server.human("alice").await;
    server.install_policy(POLICY).await;
    let shopper = server
        .agent("shopper", "alice", "client_secret_basic")
        .await;
    let wallet = server.wallet("alice").await;
    let body = order("shopper", 2500);
    let (_, denied) = post(&server, &shopper, "/access/v1/evaluation", &body).await;
    let (status, created) = post(
        &server,
        &shopper,
        "/access/v1/requests",
        &access_request(&body, &denied),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let id = created["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(pending(&wallet).await.len(), 1);
    let cancel = format!("/access/v1/requests/{id}/cancel");
    let (status, cancelled) = post(&server, &shopper, &cancel, &json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["task"]["status"], "cancelled");
    assert!(
        pending(&wallet).await.is_empty(),
        "the approver is no longer asked"
    );
    let (status, problem) = post(&server, &shopper, &cancel, &json!({})).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:openid:authzen:access-request:error:invalid_task_state"
    );
    let (status, _) = post(
        &server,
        &shopper,
        "/access/v1/requests/nope/cancel",
        &json!({}),
    )
    .await;
    assert_eq!(status, 404);
    // Without a binding token, or with a forged one: refused, nobody asked.
    let mut forged = access_request(&body, &denied);
    forged["denial"]["binding_token"] = json!("eyJhbGciOiJFUzI1NiJ9.e30.AAAA");
    let (status, _) = post(&server, &shopper, "/access/v1/requests", &forged).await;
    assert_eq!(status, 400);
    let (status, _) = post(&server, &shopper, "/access/v1/requests", &body).await;
    assert_eq!(status, 400, "no denial");
    assert!(pending(&wallet).await.is_empty());
    server.stop().await;
}
