#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! SCIM 2.0 provisioning, on both databases: the independent compliance checker
//! `scim2-tester` (PyPI) finds no failure; an Okta-style and an Entra ID-style PATCH
//! deactivation each offboard the human (the agent's credential dies for a verifier with a
//! 1 s status TTL, its pending request ends, its next request is refused); filters and
//! pages; groups route approvals; bad input gets the SCIM error RFC 7644 names and
//! changes nothing; filters and paths nested 100,000 deep, and bodies over the limit, get
//! that error too, and the server keeps serving.
//!
//! The checker needs Python with scim2-tester (`CS_SCIM_PYTHON`, else `python3`);
//! `scripts/test.sh` installs it.

use countersign_tests::ghost::Ghost;
use countersign_tests::scim::{ENTERPRISE, ERROR, GROUP, PATCH_OP, USER};
use countersign_tests::{Db, TestServer, both_backends};
use countersign_verifier::Rejection;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    scim2_tester_finds_no_failure,
    okta_style_patch_deactivation_offboards_the_human,
    entra_style_patch_deactivation_offboards_the_human,
    filters_pages_and_attribute_selection,
    groups_provision_approver_groups,
    bad_input_gets_the_scim_error_and_changes_nothing,
    deep_filters_get_invalid_filter_and_the_server_keeps_serving
);

async fn scim2_tester_finds_no_failure(db: Db) {
    let s = TestServer::start(db).await;
    let scim = s.scim_api().await;
    let python = std::env::var("CS_SCIM_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/scim2-tester/check.py");
    let out = tokio::process::Command::new(&python)
        .args([script, &s.scim_base(), &scim.token])
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (scripts/test.sh installs scim2-tester): {e}")
        });
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scim2-tester found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(", 0 failed"), "{report}");
    s.stop().await;
}

fn user(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "title": "Buyer",
        "active": true,
        ENTERPRISE: {"department": "Procurement"}
    })
}

async fn okta_style_patch_deactivation_offboards_the_human(db: Db) {
    let s = TestServer::start(db).await;
    s.clock.follow_system_time();
    let scim = s.scim_api().await;
    let id = scim
        .create_user(user("alice@example.com", "alice@example.com"))
        .await;
    let g = Ghost::new(&s, "procurement", "alice@example.com").await;
    // Okta: no path, the attributes as the value.
    let patch = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    });
    let a = scim
        .call(Method::PATCH, &format!("/Users/{id}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["active"], false);
    g.assert_dead(&s, "alice@example.com").await;
    // Reactivation resurrects nothing.
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": true}}]});
    let a = scim
        .call(Method::PATCH, &format!("/Users/{id}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        s.state()
            .store
            .human("alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert_eq!(g.call(s.now_s() + 3).await, Err(Rejection::Revoked));
    s.stop().await;
}

async fn entra_style_patch_deactivation_offboards_the_human(db: Db) {
    let s = TestServer::start(db).await;
    s.clock.follow_system_time();
    let scim = s.scim_api().await;
    let id = scim
        .create_user(user("alice@example.com", "alice@example.com"))
        .await;
    let g = Ghost::new(&s, "procurement", "alice@example.com").await;
    // Entra ID: capitalized op, a path, the boolean as a string.
    let patch = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
    });
    let a = scim
        .call(Method::PATCH, &format!("/Users/{id}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["active"], false);
    g.assert_dead(&s, "alice@example.com").await;
    // Entra's other habits: a filtered e-mail path that creates its element, the
    // manager by id alone, an enterprise attribute by its full path.
    let boss = scim
        .create_user(user("bob@example.com", "bob@example.com"))
        .await;
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "alice@home.example"},
        {"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": boss},
        {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Finance"}
    ]});
    let a = scim
        .call(Method::PATCH, &format!("/Users/{id}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["emails"][1],
        json!({"type": "home", "value": "alice@home.example"})
    );
    let human = s
        .state()
        .store
        .human("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(human.manager.as_deref(), Some("bob@example.com"));
    assert_eq!(human.department, "Finance");
    // DELETE: the User is gone (404); the human stays, inactive, for the trail.
    let a = scim
        .call(Method::DELETE, &format!("/Users/{boss}"), None)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = scim
        .call(Method::GET, &format!("/Users/{boss}"), None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        !s.state()
            .store
            .human("bob@example.com")
            .await
            .unwrap()
            .unwrap()
            .active
    );
    s.stop().await;
}

async fn filters_pages_and_attribute_selection(db: Db) {
    let s = TestServer::start(db).await;
    let scim = s.scim_api().await;
    for name in ["ann", "anna", "bert"] {
        let mut body = user(
            &format!("{name}@example.com"),
            &format!("{name}@example.com"),
        );
        body["externalId"] = json!(format!("ext-{name}"));
        scim.create_user(body).await;
        // Lists are in creation order (ties broken by id).
        s.clock.advance_ms(1);
    }
    let count = |filter: &str| {
        let path = format!("/Users?filter={}", urlencode(filter));
        let (scim, filter) = (&scim, filter.to_owned());
        async move {
            let a = scim.call(Method::GET, &path, None).await;
            assert_eq!(a.status, StatusCode::OK, "{filter}: {}", a.body);
            a.body["totalResults"].as_u64().unwrap()
        }
    };
    assert_eq!(count(r#"userName eq "ANN@example.com""#).await, 1);
    assert_eq!(count(r#"userName sw "ann""#).await, 2);
    assert_eq!(count(r#"userName co "er""#).await, 1);
    assert_eq!(count("title pr").await, 3);
    assert_eq!(
        count(r#"userName sw "ann" and not (userName eq "ann@example.com")"#).await,
        1
    );
    assert_eq!(
        count(r#"externalId eq "ext-bert" or userName eq "ann@example.com""#).await,
        2
    );
    assert_eq!(
        count(r#"emails[type eq "work" and value ew "@example.com"]"#).await,
        3
    );
    assert_eq!(
        count(&format!(r#"{ENTERPRISE}:department eq "procurement""#)).await,
        3
    );

    let a = scim
        .call(
            Method::GET,
            "/Users?startIndex=2&count=1&attributes=userName",
            None,
        )
        .await;
    assert_eq!(
        (
            a.body["totalResults"].as_u64(),
            a.body["startIndex"].as_u64()
        ),
        (Some(3), Some(2))
    );
    let page = a.body["Resources"].as_array().unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["userName"], "anna@example.com");
    assert!(
        page[0].get("emails").is_none() && page[0]["id"].is_string(),
        "{}",
        page[0]
    );
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"b\"", "excludedAttributes": ["emails"]});
    let a = scim
        .call(Method::POST, "/Users/.search", Some(search))
        .await;
    assert_eq!(a.body["totalResults"], 1, "{}", a.body);
    assert!(a.body["Resources"][0].get("emails").is_none());
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn groups_provision_approver_groups(db: Db) {
    let s = TestServer::start(db).await;
    let scim = s.scim_api().await;
    let ann = scim
        .create_user(user("ann@example.com", "ann@example.com"))
        .await;
    let bert = scim
        .create_user(user("bert@example.com", "bert@example.com"))
        .await;
    let a = scim
        .call(
            Method::POST,
            "/Groups",
            Some(
                json!({"schemas": [GROUP], "displayName": "treasury", "members": [{"value": ann}]}),
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let group = a.body["id"].as_str().unwrap().to_owned();
    let store = &s.state().store;
    assert_eq!(
        store.group_members("treasury").await.unwrap(),
        ["ann@example.com"]
    );
    // Okta adds, Entra removes by value filter.
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": bert}]}]});
    let a = scim
        .call(Method::PATCH, &format!("/Groups/{group}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        store.group_members("treasury").await.unwrap(),
        ["ann@example.com", "bert@example.com"]
    );
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "Remove", "path": format!("members[value eq \"{ann}\"]")}]});
    let a = scim
        .call(Method::PATCH, &format!("/Groups/{group}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        store.group_members("treasury").await.unwrap(),
        ["bert@example.com"]
    );
    // A member that is not a provisioned User is refused.
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": "nobody"}]}]});
    let a = scim
        .call(Method::PATCH, &format!("/Groups/{group}"), Some(patch))
        .await;
    assert_eq!(
        (a.status, a.body["scimType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalidValue"))
    );
    assert_eq!(
        store.group_members("treasury").await.unwrap(),
        ["bert@example.com"]
    );
    let a = scim
        .call(Method::DELETE, &format!("/Groups/{group}"), None)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(store.group_members("treasury").await.unwrap().is_empty());
    s.stop().await;
}

async fn bad_input_gets_the_scim_error_and_changes_nothing(db: Db) {
    let s = TestServer::start(db).await;
    let scim = s.scim_api().await;
    let id = scim
        .create_user(user("ann@example.com", "ann@example.com"))
        .await;
    let before = scim.call(Method::GET, &format!("/Users/{id}"), None).await;

    let expect = |a: countersign_tests::scim::Answer, status: u16, scim_type: Option<&str>| {
        assert_eq!(a.status.as_u16(), status, "{}", a.body);
        assert_eq!(a.body["schemas"], json!([ERROR]), "{}", a.body);
        assert_eq!(a.body["status"], status.to_string());
        assert_eq!(a.body["scimType"].as_str(), scim_type, "{}", a.body);
    };
    // Wrong tokens: an admin key is not a SCIM token.
    let admin = s.admin_api().await;
    for token in ["nope", admin.key()] {
        let a = s
            .http
            .get(format!("{}/Users", s.scim_base()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
        assert!(a.headers().get("www-authenticate").is_some());
    }
    let users = format!("/Users/{id}");
    expect(
        scim.call(Method::POST, "/Users", Some(json!("{not json")))
            .await,
        400,
        Some("invalidSyntax"),
    );
    let mut unknown = user("x@example.com", "x@example.com");
    unknown["favouriteColour"] = json!("blue");
    expect(
        scim.call(Method::POST, "/Users", Some(unknown)).await,
        400,
        Some("invalidSyntax"),
    );
    expect(
        scim.call(Method::POST, "/Users", Some(json!({"schemas": [USER]})))
            .await,
        400,
        Some("invalidValue"),
    );
    let mut typed = user("y@example.com", "y@example.com");
    typed["active"] = json!(7);
    expect(
        scim.call(Method::POST, "/Users", Some(typed)).await,
        400,
        Some("invalidValue"),
    );
    expect(
        scim.call(
            Method::POST,
            "/Users",
            Some(user("ANN@example.com", "other@example.com")),
        )
        .await,
        409,
        Some("uniqueness"),
    );
    expect(
        scim.call(Method::GET, "/Users?filter=userName%20zz%20%22x%22", None)
            .await,
        400,
        Some("invalidFilter"),
    );
    expect(
        scim.call(Method::GET, "/Users?startIndex=abc", None).await,
        400,
        Some("invalidValue"),
    );
    let bad_path = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nickName", "value": "x"}]});
    expect(
        scim.call(Method::PATCH, &users, Some(bad_path)).await,
        400,
        Some("invalidPath"),
    );
    let bad_op = json!({"schemas": [PATCH_OP], "Operations": [{"op": "move", "path": "title", "value": "x"}]});
    expect(
        scim.call(Method::PATCH, &users, Some(bad_op)).await,
        400,
        Some("invalidSyntax"),
    );
    let no_schema = json!({"Operations": [{"op": "replace", "path": "title", "value": "x"}]});
    expect(
        scim.call(Method::PATCH, &users, Some(no_schema)).await,
        400,
        Some("invalidSyntax"),
    );
    let drop_required =
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "userName"}]});
    expect(
        scim.call(Method::PATCH, &users, Some(drop_required)).await,
        400,
        Some("invalidValue"),
    );
    let stale = scim
        .call_with(
            Method::PUT,
            &users,
            Some(user("ann@example.com", "ann@example.com")),
            &[("if-match", "W/\"99\"")],
        )
        .await;
    expect(stale, 412, None);
    expect(
        scim.call(Method::GET, "/Users/unknown", None).await,
        404,
        None,
    );
    expect(scim.call(Method::GET, "/Nothing", None).await, 404, None);
    expect(
        scim.call(Method::DELETE, "/ServiceProviderConfig", None)
            .await,
        405,
        None,
    );

    let after = scim.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(after.body, before.body, "nothing changed");
    assert_eq!(after.etag, before.etag);
    let all = scim.call(Method::GET, "/Users", None).await;
    assert_eq!(all.body["totalResults"], 1, "{}", all.body);
    assert!(
        s.state()
            .store
            .human("ann@example.com")
            .await
            .unwrap()
            .unwrap()
            .active
    );
    s.stop().await;
}

/// The issue: a filter a few tens of thousands of parentheses deep overflowed the stack of
/// the recursive parser and took the whole process down.
async fn deep_filters_get_invalid_filter_and_the_server_keeps_serving(db: Db) {
    // A body limit above the 100,000-deep filter (200 KB), so that it reaches the parser
    // over POST .search.
    let s = TestServer::start_with(db, |c| c.max_body_bytes = 1 << 20).await;
    let scim = s.scim_api().await;
    let id = scim
        .create_user(user("ann@example.com", "ann@example.com"))
        .await;
    let expect = |a: countersign_tests::scim::Answer, status: u16, scim_type: Option<&str>| {
        assert_eq!(a.status.as_u16(), status, "{}", a.body);
        assert_eq!(a.body["schemas"], json!([ERROR]), "{}", a.body);
        assert_eq!(a.body["scimType"].as_str(), scim_type, "{}", a.body);
    };
    let core = r#"userName eq "ann@example.com""#;
    let deep = |n: usize| format!("{}{core}{}", "(".repeat(n), ")".repeat(n));
    let search = |filter: String| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});

    // GET: as deep as a URI can carry (hyper refuses URIs over 64 KiB with 414 before any
    // handler runs).
    let n = 30_000;
    let query = format!("{}{}{}", "(".repeat(n), urlencode(core), ")".repeat(n));
    expect(
        scim.call(Method::GET, &format!("/Users?filter={query}"), None)
            .await,
        400,
        Some("invalidFilter"),
    );
    for endpoint in ["/Users/.search", "/Groups/.search"] {
        expect(
            scim.call(Method::POST, endpoint, Some(search(deep(100_000))))
                .await,
            400,
            Some("invalidFilter"),
        );
    }
    // Deep without parentheses: `not (` and value filters nest too.
    let nots = format!("{}{core}{}", "not (".repeat(50_000), ")".repeat(50_000));
    expect(
        scim.call(Method::POST, "/Users/.search", Some(search(nots)))
            .await,
        400,
        Some("invalidFilter"),
    );
    // A PATCH path's value filter is parsed by the same parser; its error is invalidPath.
    let path = format!(r#"emails[{}]"#, deep(100_000).replace("userName", "type"));
    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": path}]});
    expect(
        scim.call(Method::PATCH, &format!("/Users/{id}"), Some(patch))
            .await,
        400,
        Some("invalidPath"),
    );
    // JSON nested past serde_json's limit (128) is not JSON to us.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    expect(
        scim.call(Method::POST, "/Users", Some(json!(nested))).await,
        400,
        Some("invalidSyntax"),
    );
    // A body over the limit gets a SCIM error document, not axum's plain-text 413.
    expect(
        scim.call(
            Method::POST,
            "/Users",
            Some(json!("x".repeat((1 << 20) + 1024))),
        )
        .await,
        413,
        None,
    );

    // Still serving.
    let a = scim
        .call(
            Method::GET,
            &format!("/Users?filter={}", urlencode(core)),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["totalResults"], 1, "{}", a.body);
    s.stop().await;
}
