#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! What policies can see besides the request itself: the agent's baseline (the brief's
//! 2-versus-50 servers), what the session read before (the exfiltration example), the
//! time of day and the network zone; and how policies are managed: validation errors with
//! line and column, activation, rollback (seen by a replica too), and dry-runs against
//! the decision history.

use countersign_tests::{Agent, Db, TestServer, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    an_agent_that_provisions_two_servers_asking_for_fifty,
    nothing_external_after_a_confidential_read,
    time_of_day_and_network_zone,
    validate_activate_roll_back_and_dry_run,
);

const ANY_OBJECT: &str = r#"{"type": "object", "required": ["type"]}"#;

/// A server that knows the actions of these examples and their tools.
async fn server(db: Db) -> TestServer {
    TestServer::start_with(db, |c| {
        for (action, class) in [
            ("provision_servers", "write"),
            ("read_records", "read"),
            ("send_email", "external"),
        ] {
            c.authorization_details_types
                .insert(action.into(), serde_json::from_str(ANY_OBJECT).unwrap());
            c.policy.actions.insert(action.into(), class.into());
        }
        c.policy.tools.insert(
            "crm".into(),
            countersign_server::config::ToolConfig {
                risk_level: "medium".into(),
                data_classification: "confidential".into(),
                category: "crm".into(),
                locations: vec!["https://crm.example.com".into()],
            },
        );
        c.policy.tools.insert(
            "wiki".into(),
            countersign_server::config::ToolConfig {
                risk_level: "low".into(),
                data_classification: "public".into(),
                category: "docs".into(),
                locations: vec![],
            },
        );
        c.policy
            .network_zones
            .insert("corp".into(), vec!["10.0.0.0/8".into()]);
        // The test client connects from loopback; as a trusted proxy its
        // X-Forwarded-For names the agent's address.
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
        c.policy.baseline_min_samples = 5;
        c.policy.reload_interval_ms = 50;
    })
    .await
}

async fn decide(s: &TestServer, agent: &Agent, params: &[(&str, &str)]) -> Value {
    let (status, body) = s.post_as(agent, "/v1/decisions", params).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn an_agent_that_provisions_two_servers_asking_for_fifty(db: Db) {
    let s = server(db).await;
    s.human("alice").await;
    let agent = s.agent("infra", "alice", "client_secret_basic").await;
    s.install_policy(
        r#"
@id("usual-provisioning")
permit (principal, action == Action::"provision_servers", resource)
unless { context.anomaly has quantity_ratio_pct && context.anomaly.quantity_ratio_pct > 300 };

@id("unusual-provisioning")
@step_up
@approver("owner")
@reason("far more servers than this agent usually provisions")
permit (principal, action == Action::"provision_servers", resource)
when { context.anomaly has quantity_ratio_pct && context.anomaly.quantity_ratio_pct > 300 };
"#,
    )
    .await;
    let servers = |n: u32| json!({"quantity": n}).to_string();
    // The agent's usual: two servers at a time (through bc-authorize and the decision
    // API alike; both teach the baseline).
    for i in 0..6 {
        let answer = decide(
            &s,
            &agent,
            &[("action", "provision_servers"), ("arguments", &servers(2))],
        )
        .await;
        assert_eq!(answer["decision"], "allow", "request {i}: {answer}");
    }
    // Fifty is 25 times its usual: a human must approve, and is told why.
    let fifty = decide(
        &s,
        &agent,
        &[("action", "provision_servers"), ("arguments", &servers(50))],
    )
    .await;
    assert_eq!(fifty["decision"], "step_up", "{fifty}");
    assert_eq!(fifty["policies"][0]["id"], "unusual-provisioning");
    assert!(
        fifty["risk_signals"][0]
            .as_str()
            .unwrap()
            .contains("25.0x this agent's usual"),
        "{fifty}"
    );
    // Two still passes.
    let two = decide(
        &s,
        &agent,
        &[("action", "provision_servers"), ("arguments", &servers(2))],
    )
    .await;
    assert_eq!(two["decision"], "allow", "{two}");

    // The same through bc-authorize: fifty waits for the owner.
    let details = json!([{"type": "provision_servers", "quantity": 50}]).to_string();
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("authorization_details", &details),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, polled) = s.poll(&agent, body["auth_req_id"].as_str().unwrap()).await;
    assert_eq!(polled["error"], "authorization_pending");
    s.stop().await;
}

async fn nothing_external_after_a_confidential_read(db: Db) {
    let s = server(db).await;
    s.human("alice").await;
    let agent = s.agent("assistant", "alice", "client_secret_basic").await;
    s.install_policy(
        r#"
@id("reads")
permit (principal, action in Action::"read", resource);

@id("email")
permit (principal, action == Action::"send_email", resource);

@id("no-exfiltration")
@reason("nothing leaves the company after confidential data was read in the same session")
forbid (principal, action in Action::"external", resource)
when { context.session.classifications.contains("confidential") };
"#,
    )
    .await;
    let email = json!({"to": "someone@elsewhere.example"}).to_string();
    // Reading the public wiki, then e-mailing, is fine.
    let wiki = decide(
        &s,
        &agent,
        &[
            ("action", "read_records"),
            ("resource", "wiki"),
            ("task_id", "T-1"),
        ],
    )
    .await;
    assert_eq!(wiki["decision"], "allow");
    let mail = decide(
        &s,
        &agent,
        &[
            ("action", "send_email"),
            ("arguments", &email),
            ("task_id", "T-1"),
        ],
    )
    .await;
    assert_eq!(mail["decision"], "allow", "{mail}");

    // Reading the CRM (confidential; named by its location) in session T-2...
    let crm =
        json!([{"type": "read_records", "locations": ["https://crm.example.com"]}]).to_string();
    let read = decide(
        &s,
        &agent,
        &[("authorization_details", &crm), ("task_id", "T-2")],
    )
    .await;
    assert_eq!(read["decision"], "allow");
    // ...and then e-mailing in the same session is forbidden, at bc-authorize too.
    let mail = decide(
        &s,
        &agent,
        &[
            ("action", "send_email"),
            ("arguments", &email),
            ("task_id", "T-2"),
        ],
    )
    .await;
    assert_eq!(mail["decision"], "deny", "{mail}");
    assert_eq!(mail["policies"][0]["id"], "no-exfiltration");
    let details = json!([{"type": "send_email", "to": "someone@elsewhere.example"}]).to_string();
    let (status, body) = s
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("task_id", "T-2"),
                ("authorization_details", &details),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("confidential")
    );
    // Another session is unaffected.
    let other = decide(
        &s,
        &agent,
        &[
            ("action", "send_email"),
            ("arguments", &email),
            ("task_id", "T-3"),
        ],
    )
    .await;
    assert_eq!(other["decision"], "allow");
    s.stop().await;
}

async fn time_of_day_and_network_zone(db: Db) {
    let s = server(db).await;
    s.human("alice").await;
    let agent = s.agent("infra", "alice", "client_secret_basic").await;
    s.install_policy(
        r#"
@id("provisioning") permit (principal, action == Action::"provision_servers", resource);

@id("office-hours")
@reason("changes only on weekdays between 07:00 and 19:00")
forbid (principal, action in Action::"write", resource)
when { context.time.hour < 7 || context.time.hour >= 19 || context.time.day_of_week > 5 };

@id("corp-only")
@reason("changes only from the corporate network")
forbid (principal, action in Action::"write", resource)
unless { context.network.zones.contains("corp") };
"#,
    )
    .await;
    let from = |ip: &'static str| {
        let s = &s;
        let agent = &agent;
        async move {
            let resp = s
                .http
                .post(s.url("/v1/decisions"))
                .basic_auth(&agent.client_id, agent.secret.as_deref())
                .header("x-forwarded-for", ip)
                .form(&[("action", "provision_servers")])
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        }
    };
    // Monday 2026-11-30, 10:00 UTC.
    s.clock.set_ms(1_796_032_800_000);
    let inside = from("10.20.30.40").await;
    assert_eq!(inside["decision"], "allow", "{inside}");
    let outside = from("198.51.100.7").await;
    assert_eq!(outside["decision"], "deny");
    assert_eq!(outside["policies"][0]["id"], "corp-only");
    // 22:00 the same day, and Saturday at 10:00: outside office hours.
    s.clock.set_ms(1_796_032_800_000 + 12 * 3_600_000);
    let late = from("10.20.30.40").await;
    assert_eq!(late["policies"][0]["id"], "office-hours", "{late}");
    s.clock.set_ms(1_796_032_800_000 + 5 * 86_400_000);
    let saturday = from("10.20.30.40").await;
    assert_eq!(saturday["policies"][0]["id"], "office-hours");
    s.stop().await;
}

async fn validate_activate_roll_back_and_dry_run(db: Db) {
    let s = server(db).await;
    s.human("alice").await;
    let agent = s.agent("buyer", "alice", "client_secret_basic").await;
    let admin = s.admin_api().await;
    let replica = s.replica().await;

    // A mistake is refused with its line and column.
    let typo = "@id(\"small\")\npermit (principal, action == Action::\"purchase_order\", resource)\nwhen { context.arguments.amout < 400 };\n";
    let (status, validation) = admin
        .call(
            Method::POST,
            "/admin/v1/policies/validate",
            Some(json!({"source": typo})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(validation["valid"], false);
    assert_eq!(validation["problems"][0]["line"], 3, "{validation}");
    assert_eq!(validation["problems"][0]["column"], 8);
    assert_eq!(validation["problems"][0]["policy"], "small");
    let (status, problem) = admin
        .call(
            Method::POST,
            "/admin/v1/policies",
            Some(json!({"source": typo})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("3:8"),
        "{problem}"
    );

    let threshold = |amount: u32| {
        format!(
            "@id(\"small\") permit (principal, action == Action::\"purchase_order\", resource) when {{ context.arguments.amount < {amount} }};\n\
             @id(\"large\") @step_up permit (principal, action == Action::\"purchase_order\", resource) when {{ context.arguments.amount >= {amount} }};\n"
        )
    };
    let add = |source: String, activate: bool| {
        let admin = &admin;
        async move {
            let (status, v) = admin
                .call(
                    Method::POST,
                    "/admin/v1/policies",
                    Some(json!({"source": source, "activate": activate})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v
        }
    };
    let v1 = add(threshold(400), true).await;
    assert_eq!(
        (v1["version"].clone(), v1["active"].clone()),
        (json!(1), json!(true))
    );
    let ask = |amount: u32| {
        let s = &s;
        let agent = &agent;
        async move {
            let args = json!({"vendor": "Acme", "amount": amount, "currency": "USD"}).to_string();
            decide(
                s,
                agent,
                &[("action", "purchase_order"), ("arguments", &args)],
            )
            .await
        }
    };
    for amount in [100, 250, 300, 1_000] {
        ask(amount).await;
    }
    assert_eq!(ask(300).await["decision"], "allow");

    // Dry-run a stricter threshold against what was decided: three orders would change.
    let (status, report) = admin
        .call(
            Method::POST,
            "/admin/v1/policies/dry-run",
            Some(json!({"source": threshold(200)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["replayed"], 5, "{report}");
    assert_eq!(report["changes"], json!({"allow -> step_up": 3}));
    assert_eq!(report["changed"][0]["was"], "allow");
    assert_eq!(report["changed"][0]["would_be"], "step_up");
    assert_eq!(report["changed"][0]["policies_now"][0]["id"], "large");

    // Version 2 (stored, then activated) changes the answer; the replica follows.
    let v2 = add(threshold(200), false).await;
    assert_eq!(v2["active"], false);
    assert_eq!(
        ask(300).await["decision"],
        "allow",
        "storing does not activate"
    );
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/policies/2/activate", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ask(300).await["decision"], "step_up");
    let on_replica = || async {
        replica
            .post_as(
                &agent,
                "/v1/decisions",
                &[
                    ("action", "purchase_order"),
                    (
                        "arguments",
                        &json!({"vendor": "Acme", "amount": 300, "currency": "USD"}).to_string(),
                    ),
                    ("dry_run", "true"),
                ],
            )
            .await
            .1["decision"]
            .clone()
    };
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = on_replica().await;
        if seen == "step_up" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen, "step_up",
        "the replica installs the activated version"
    );

    // Roll back: version 1 again, here and on the replica.
    let (status, back) = admin
        .call(Method::POST, "/admin/v1/policies/rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["version"], 1);
    assert_eq!(ask(300).await["decision"], "allow");
    for _ in 0..100 {
        seen = on_replica().await;
        if seen == "allow" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "allow");
    let (_, versions) = admin.call(Method::GET, "/admin/v1/policies", None).await;
    let active: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["active"] == true)
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(active, [1]);
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/policies/9/activate", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Every change is in the trace.
    let (_, events) = admin
        .call(Method::GET, "/admin/v1/audit?limit=1000", None)
        .await;
    let changes: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str().filter(|k| k.starts_with("policy.")))
        .collect();
    assert_eq!(
        changes,
        [
            "policy.activated",
            "policy.activated",
            "policy.added",
            "policy.activated",
            "policy.added"
        ]
    );
    replica.stop().await;
    s.stop().await;
}
