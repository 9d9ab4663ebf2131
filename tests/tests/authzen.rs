#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The AuthZEN Authorization API 1.0 against the interop "Todo" scenario as
//! `examples/authzen-todo/` deploys it: the interop's published decision vectors (run by
//! the example's own runner, over HTTP), the batch semantics, search with pagination, the
//! errors the specification defines, and how an enforcement point authenticates.

use countersign_tests::authzen::{Todo, pid, repo_file};
use countersign_tests::tools::python;
use countersign_tests::{Db, both_backends};
use serde_json::{Value, json};

const RICKS_TODO: &str = "7240d0db-8ff0-41ec-98b2-34a096273b92";
const MORTYS_TODO: &str = "7240d0db-8ff0-41ec-98b2-34a096273b91";
const SUMMERS_TODO: &str = "7240d0db-8ff0-41ec-98b2-34a096273b93";

fn todo_item(id: &str, owner: &str) -> Value {
    json!({"type": "todo", "id": id, "properties": {"ownerID": owner}})
}

fn user(email: &str) -> Value {
    json!({"type": "user", "id": pid(email)})
}

fn decisions(body: &Value) -> Vec<bool> {
    body["evaluations"]
        .as_array()
        .unwrap_or_else(|| panic!("evaluations: {body}"))
        .iter()
        .map(|d| d["decision"].as_bool().unwrap())
        .collect()
}

both_backends!(the_todo_interop_vectors_pass_single_and_in_batches);
async fn the_todo_interop_vectors_pass_single_and_in_batches(db: Db) {
    let todo = Todo::start(db).await;
    let out = tokio::process::Command::new(python())
        .arg(repo_file("examples/authzen-todo/run_vectors.py"))
        .arg(todo.server.issuer())
        .arg(&todo.pep.client_id)
        .arg(todo.pep.secret.as_deref().unwrap())
        .output()
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the runner printed no report: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#}");
    // Every published vector: 40 single evaluations, the same 40 as one batch, and the 3
    // batch vectors.
    assert_eq!(
        report["summary"],
        json!({
            "single": {"passed": 40, "total": 40},
            "single_as_batch": {"passed": 1, "total": 1},
            "batch": {"passed": 3, "total": 3},
        })
    );
    // Each decision is in the trace, asked by the enforcement point, about the human.
    let events = todo
        .server
        .state()
        .store
        .audit_events_of_kind("decision.made", 0, 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 40 + 40 + 6, "one record per decision");
    assert!(events.iter().all(|e| e.actor == "client:todo-pep"));
    let detail: Value = serde_json::from_str(&events[0].detail).unwrap();
    assert!(
        detail["user"].as_str().unwrap().starts_with("CiRmZD"),
        "{detail}"
    );
    todo.server.stop().await;
}

both_backends!(each_batch_semantic_stops_where_it_says);
async fn each_batch_semantic_stops_where_it_says(db: Db) {
    let todo = Todo::start(db).await;
    let batch = |semantic: Option<&str>| {
        let mut body = json!({
            "subject": user("morty@the-citadel.com"),
            "action": {"name": "can_update_todo"},
            "evaluations": [
                {"resource": todo_item(RICKS_TODO, "rick@the-citadel.com")},
                {"resource": todo_item(MORTYS_TODO, "morty@the-citadel.com")},
                {"resource": todo_item(SUMMERS_TODO, "summer@the-smiths.com")},
            ],
        });
        if let Some(s) = semantic {
            body["options"] = json!({"evaluations_semantic": s});
        }
        body
    };
    let path = "/access/v1/evaluations";
    let (status, all) = todo.post(path, &batch(None)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(decisions(&all), [false, true, false]);
    assert!(
        all.get("decision").is_none(),
        "no top-level decision: {all}"
    );
    let (_, explicit) = todo.post(path, &batch(Some("execute_all"))).await;
    assert_eq!(decisions(&explicit), [false, true, false]);
    let (_, deny_first) = todo.post(path, &batch(Some("deny_on_first_deny"))).await;
    assert_eq!(decisions(&deny_first), [false], "stops at the first deny");
    let (_, permit_first) = todo
        .post(path, &batch(Some("permit_on_first_permit")))
        .await;
    assert_eq!(
        decisions(&permit_first),
        [false, true],
        "stops at the first permit"
    );
    // The decision's context carries the reasons and the determining policies.
    let allowed = &all["evaluations"][1]["context"];
    assert_eq!(allowed["policies"][0]["id"], "todo-update-own", "{allowed}");
    assert_eq!(allowed["reasons"][0], "editors update their own todos");
    assert!(allowed["decision_id"].as_str().unwrap().starts_with("dec_"));
    // An item that cannot be decided is denied alone, with its error; the others stand.
    let mut mixed = batch(None);
    mixed["evaluations"][0]["subject"] = json!({"type": "robot", "id": "r2"});
    mixed["evaluations"][2] = json!("not an object");
    let (status, answer) = todo.post(path, &mixed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(decisions(&answer), [false, true, false]);
    assert_eq!(answer["evaluations"][0]["context"]["error"]["status"], 400);
    assert!(
        answer["evaluations"][0]["context"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown subject type")
    );
    assert_eq!(answer["evaluations"][2]["context"]["error"]["status"], 400);
    // No items: a single evaluation, answered as one.
    let single = json!({
        "subject": user("rick@the-citadel.com"),
        "action": {"name": "can_delete_todo"},
        "resource": todo_item(MORTYS_TODO, "morty@the-citadel.com"),
        "evaluations": [],
    });
    let (_, answer) = todo.post(path, &single).await;
    assert_eq!(answer["decision"], true, "{answer}");
    assert!(answer.get("evaluations").is_none());
    // Past the batch limit: refused whole.
    let too_many = json!({
        "subject": user("rick@the-citadel.com"),
        "action": {"name": "can_read_todos"},
        "resource": {"type": "todo", "id": "x"},
        "evaluations": vec![json!({}); 1001],
    });
    let (status, _) = todo.post(path, &too_many).await;
    assert_eq!(status, 400);
    todo.server.stop().await;
}

both_backends!(errors_are_the_ones_the_specification_defines);
async fn errors_are_the_ones_the_specification_defines(db: Db) {
    let todo = Todo::start(db).await;
    let path = "/access/v1/evaluation";
    let valid = json!({
        "subject": user("beth@the-smiths.com"),
        "action": {"name": "can_read_todos"},
        "resource": {"type": "todo", "id": "todo-1"},
    });
    let (status, answer) = todo.post(path, &valid).await;
    assert_eq!(
        (status, answer["decision"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    // Malformed: each a 400 with a message.
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("subject");
    let mut untyped = valid.clone();
    untyped["action"]["name"] = json!(123);
    let mut unknown_type = valid.clone();
    unknown_type["subject"] = json!({"type": "robot", "id": "r2"});
    let mut extra = valid.clone();
    extra["foo"] = json!("bar");
    for (body, expected) in [
        (&missing, "subject is required"),
        (&untyped, "action.name must be a string"),
        (&unknown_type, "unknown subject type \"robot\""),
    ] {
        let (status, text) = todo.post(path, body).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.as_str().unwrap().contains(expected), "{text}");
    }
    let (status, _) = todo.post(path, &extra).await;
    assert_eq!(status, 200, "unknown members are ignored");
    let client = reqwest::Client::new();
    let raw = |body: &'static str, content_type: &'static str| {
        client
            .post(todo.server.url(path))
            .header("Authorization", todo.basic())
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        raw("{not json", "application/json").await.unwrap().status(),
        400
    );
    assert_eq!(raw("", "application/json").await.unwrap().status(), 400);
    assert_eq!(
        raw(r#"{"subject":{}}"#, "text/plain")
            .await
            .unwrap()
            .status(),
        400,
        "Content-Type must be application/json"
    );
    // Unauthenticated, or the wrong secret: 401 with the challenges.
    let anonymous = client
        .post(todo.server.url(path))
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenges: Vec<_> = anonymous
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer realm=")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic realm=")),
        "{challenges:?}"
    );
    let wrong = client
        .post(todo.server.url(path))
        .basic_auth("todo-pep", Some("not-the-secret"))
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // An agent subject other than the caller: 403.
    let mut other_agent = valid.clone();
    other_agent["subject"] = json!({"type": "agent", "id": "someone-else"});
    let (status, _) = todo.post(path, &other_agent).await;
    assert_eq!(status, 403);
    // An unknown human is denied (fail closed), an undeclared action too.
    let mut stranger = valid.clone();
    stranger["subject"]["id"] = json!("nobody");
    let (status, answer) = todo.post(path, &stranger).await;
    assert_eq!(
        (status, answer["decision"].as_bool()),
        (200, Some(false)),
        "{answer}"
    );
    let mut undeclared = valid.clone();
    undeclared["action"]["name"] = json!("can_launch_rockets");
    let (status, answer) = todo.post(path, &undeclared).await;
    assert_eq!(
        (status, answer["decision"].as_bool()),
        (200, Some(false)),
        "{answer}"
    );
    // The request id is echoed exactly.
    let echoed = client
        .post(todo.server.url(path))
        .header("Authorization", todo.basic())
        .header("X-Request-ID", "pep-req-42")
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "pep-req-42");
    todo.server.stop().await;
}

both_backends!(searches_page_through_what_the_policy_permits);
async fn searches_page_through_what_the_policy_permits(db: Db) {
    let todo = Todo::start(db).await;
    // Who may create todos: Rick, Morty, Summer (admins and editors), in subject order.
    let creators = |page: Value| {
        json!({
            "subject": {"type": "user"},
            "action": {"name": "can_create_todo"},
            "resource": {"type": "todo", "id": "new"},
            "page": page,
        })
    };
    let path = "/access/v1/search/subject";
    let (status, first) = todo.post(path, &creators(json!({"limit": 2}))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["page"]["count"], 2);
    let token = first["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty(), "more to come: {first}");
    let (_, second) = todo
        .post(path, &creators(json!({"limit": 2, "token": token})))
        .await;
    assert_eq!(second["page"]["next_token"], "", "the last page: {second}");
    let mut found: Vec<String> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["results"].as_array().unwrap())
        .map(|r| {
            assert_eq!(r["type"], "user");
            r["id"].as_str().unwrap().to_owned()
        })
        .collect();
    found.sort();
    let mut expected: Vec<String> = [
        "rick@the-citadel.com",
        "morty@the-citadel.com",
        "summer@the-smiths.com",
    ]
    .into_iter()
    .map(pid)
    .collect();
    expected.sort();
    assert_eq!(found, expected);
    // A token continues only the request it came from.
    let mut changed = creators(json!({"limit": 2, "token": token}));
    changed["action"]["name"] = json!("can_delete_todo");
    let (status, _) = todo.post(path, &changed).await;
    assert_eq!(status, 400);
    // The resource of a subject search needs its id.
    let mut no_id = creators(json!({}));
    no_id["resource"] = json!({"type": "todo"});
    assert_eq!(todo.post(path, &no_id).await.0, 400);

    // What Morty may do to his own todo, and Beth to hers.
    let actions = |email: &str| {
        json!({
            "subject": user(email),
            "resource": todo_item(MORTYS_TODO, email),
        })
    };
    let names = |body: &Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, morty) = todo
        .post(
            "/access/v1/search/action",
            &actions("morty@the-citadel.com"),
        )
        .await;
    assert_eq!(status, 200, "{morty}");
    assert_eq!(
        names(&morty),
        [
            "can_create_todo",
            "can_delete_todo",
            "can_read_todos",
            "can_read_user",
            "can_update_todo"
        ]
    );
    let (_, beth) = todo
        .post("/access/v1/search/action", &actions("beth@the-smiths.com"))
        .await;
    assert_eq!(names(&beth), ["can_read_todos", "can_read_user"]);
    // Countersign keeps no inventory of todos: a resource search finds none (not an error).
    let resources = json!({
        "subject": user("rick@the-citadel.com"),
        "action": {"name": "can_read_todos"},
        "resource": {"type": "todo"},
    });
    let (status, none) = todo.post("/access/v1/search/resource", &resources).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["results"], json!([]));
    assert_eq!(none["page"]["next_token"], "");
    todo.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enforcement_point_discovers_the_api_and_may_use_an_access_token() {
    let todo = Todo::start(Db::Sqlite).await;
    let issuer = todo.server.issuer();
    let metadata: Value = todo
        .server
        .get_json("/.well-known/authzen-configuration")
        .await;
    assert_eq!(metadata["policy_decision_point"], issuer.as_str());
    for (key, path) in [
        ("access_evaluation_endpoint", "/access/v1/evaluation"),
        ("access_evaluations_endpoint", "/access/v1/evaluations"),
        ("search_subject_endpoint", "/access/v1/search/subject"),
        ("search_resource_endpoint", "/access/v1/search/resource"),
        ("search_action_endpoint", "/access/v1/search/action"),
    ] {
        assert_eq!(metadata[key], format!("{issuer}{path}"));
    }
    // A client_credentials token for the API, presented as a bearer token.
    let resource = format!("{issuer}/access/v1");
    let (status, tokens) = todo
        .server
        .post_as(
            &todo.pep,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource.as_str()),
            ],
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let body = json!({
        "subject": user("jerry@the-smiths.com"),
        "action": {"name": "can_create_todo"},
        "resource": {"type": "todo", "id": "x"},
    });
    let client = reqwest::Client::new();
    let with = |authorization: String| {
        client
            .post(todo.server.url("/access/v1/evaluation"))
            .header("Authorization", authorization)
            .json(&body)
            .send()
    };
    let answer = with(format!("Bearer {token}")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        answer["decision"], false,
        "a viewer creates nothing: {answer}"
    );
    // A tampered token, or one for another resource, is refused.
    let mut tampered = token.to_owned();
    tampered.pop();
    assert_eq!(
        with(format!("Bearer {tampered}")).await.unwrap().status(),
        401
    );
    let (status, _) = todo
        .server
        .post_as(
            &todo.pep,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://elsewhere.example/access/v1"),
            ],
        )
        .await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(with(format!("Token {token}")).await.unwrap().status(), 401);
    todo.server.stop().await;
}
