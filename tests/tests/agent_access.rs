#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! What the directory says an agent may use and who approves for it, enforced where
//! decisions are made: a tool outside the agent's list is denied whatever the policies
//! say (at `POST /v1/decisions` and at `bc-authorize`), and a step-up whose policy names
//! no `@approver` goes to the agent's approver route.

use countersign_server::config::ToolConfig;
use countersign_server::directory::NewAgent;
use countersign_tests::{Db, TestServer, assert_oauth_error, both_backends, new_agent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    tools_outside_the_agents_list_are_denied_and_its_approver_route_is_used,
    bad_tools_and_approver_routes_are_refused
);

/// Every action steps up, to whoever the agent's route names.
const STEP_UP_ALL: &str = r#"@id("everything") @step_up permit (principal, action, resource);"#;

async fn server(db: Db) -> TestServer {
    let s = TestServer::start_with(db, |c| {
        for (id, location) in [
            ("erp", "https://erp.example"),
            ("crm", "https://crm.example"),
        ] {
            c.policy.tools.insert(
                id.into(),
                ToolConfig {
                    risk_level: "medium".into(),
                    data_classification: "internal".into(),
                    category: id.into(),
                    locations: vec![location.into()],
                },
            );
        }
    })
    .await;
    s.human("bob").await;
    s.human_with_manager("alice", "bob").await;
    s.install_policy(STEP_UP_ALL).await;
    s
}

fn order_at(location: &str) -> String {
    json!([{"type": "purchase_order", "vendor": "Acme", "amount": 120, "currency": "USD",
            "locations": [location]}])
    .to_string()
}

async fn tools_outside_the_agents_list_are_denied_and_its_approver_route_is_used(db: Db) {
    let s = server(db).await;
    let agent = s
        .agent_with(
            NewAgent {
                tools: Some(vec!["erp".into(), "erp".into()]),
                approver: Some("manager".into()),
                ..new_agent("buyer", "alice", "client_secret_basic")
            },
            false,
        )
        .await;
    let decide = |resource: &'static str| {
        let (s, agent) = (&s, &agent);
        async move {
            let (status, body) = s
                .post_as(
                    agent,
                    "/v1/decisions",
                    &[
                        ("action", "purchase_order"),
                        (
                            "arguments",
                            r#"{"vendor": "Acme", "amount": 120, "currency": "USD"}"#,
                        ),
                        ("resource", resource),
                    ],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };

    // Its own tool: the policy steps up, and the agent's route (the owner's manager)
    // approves.
    let erp = decide("erp").await;
    assert_eq!(erp["decision"], "step_up", "{erp}");
    assert_eq!(erp["approver_routes"], json!(["manager"]));
    assert_eq!(erp["approvers"], json!(["bob"]));

    // Another tool: denied, though the policy permits everything.
    let crm = decide("crm").await;
    assert_eq!(crm["decision"], "deny", "{crm}");
    let reasons = crm["reasons"].to_string();
    assert!(
        reasons.contains("may not use tool \\\"crm\\\""),
        "{reasons}"
    );
    // The same at bc-authorize, where the tool is named by the request's locations.
    let refused = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("authorization_details", &order_at("https://crm.example")),
            ],
        )
        .await;
    assert_oauth_error(refused, StatusCode::FORBIDDEN, "access_denied");
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("authorization_details", &order_at("https://erp.example")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The admin API shows both, and lifts them: any tool, approved by the user.
    let admin = s.admin_api().await;
    let (_, agents) = admin.call(Method::GET, "/admin/v1/agents", None).await;
    let listed = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client_id"] == "buyer")
        .unwrap();
    assert_eq!(listed["tools"], json!(["erp"]), "deduplicated");
    assert_eq!(listed["approver"], "manager");
    let (status, updated) = admin
        .call(
            Method::PATCH,
            "/admin/v1/agents/buyer",
            Some(json!({"tools": [], "approver": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated.get("tools"), None);
    assert_eq!(updated.get("approver"), None);
    let crm = decide("crm").await;
    assert_eq!(crm["decision"], "step_up", "{crm}");
    assert_eq!(crm["approver_routes"], json!(["user"]));
    assert_eq!(crm["approvers"], json!(["alice"]));
    s.stop().await;
}

async fn bad_tools_and_approver_routes_are_refused(db: Db) {
    let s = server(db).await;
    let admin = s.admin_api().await;
    let agent = |extra: Value| {
        let mut body =
            json!({"client_id": "x", "owner": "alice", "auth_method": "client_secret_basic"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for bad in [
        json!({"approver": "boss"}),
        json!({"approver": "group:"}),
        json!({"tools": ["has space"]}),
        json!({"tools": [""]}),
    ] {
        let (status, problem) = admin
            .call(Method::POST, "/admin/v1/agents", Some(agent(bad.clone())))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
    }
    let (_, agents) = admin.call(Method::GET, "/admin/v1/agents", None).await;
    assert_eq!(agents, json!([]), "nothing was registered");
    s.stop().await;
}
