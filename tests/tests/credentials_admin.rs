#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Administering credentials through the admin API, on both databases: listing by agent,
//! approver and owner; revoking one (idempotently, with a reason) and in bulk; revocation
//! recorded with its reason; bad requests refused.

use countersign_server::admin::Role;
use countersign_tests::console;
use countersign_tests::{Agent, Db, TestServer, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(list_and_revoke_credentials_by_id_agent_approver_and_owner);
both_backends!(credentials_list_in_keyset_pages_on_the_api_and_the_console);

async fn credential(s: &TestServer, agent: &Agent, subject: &str) -> String {
    let id = s.start_request(agent, subject).await;
    s.dev_decide(&id, true).await;
    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(agent, &id).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    countersign_tests::jwt_claims(tokens["access_token"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn list_and_revoke_credentials_by_id_agent_approver_and_owner(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("bob").await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let b = s.agent("b", "bob", "client_secret_basic").await;
    let c1 = credential(&s, &a, "alice").await;
    let c2 = credential(&s, &b, "alice").await;
    let c3 = credential(&s, &b, "bob").await;

    let admin = s.admin_api().await;
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    let (status, all) = admin.call(Method::GET, "/admin/v1/credentials", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all), sorted(vec![c1.clone(), c2.clone(), c3.clone()]));
    assert_eq!(
        ids(&admin
            .call(Method::GET, "/admin/v1/credentials?agent=b", None)
            .await
            .1),
        sorted(vec![c2.clone(), c3.clone()])
    );
    assert_eq!(
        ids(&admin
            .call(Method::GET, "/admin/v1/credentials?approver=alice", None)
            .await
            .1),
        sorted(vec![c1.clone(), c2.clone()])
    );
    assert_eq!(
        ids(&admin
            .call(Method::GET, "/admin/v1/credentials?owner=bob", None)
            .await
            .1),
        sorted(vec![c2.clone(), c3.clone()])
    );
    assert_eq!(
        admin
            .call(Method::GET, "/admin/v1/credentials?agent=a&owner=bob", None)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // One, with a reason; a second revocation changes nothing.
    let (status, body) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/credentials/{c1}/revoke"),
            Some(json!({"reason": "laptop stolen"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"revoked": [c1.clone()]}))
    );
    let (_, body) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/credentials/{c1}/revoke"),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(body, json!({"revoked": []}));
    let (_, shown) = admin
        .call(Method::GET, &format!("/admin/v1/credentials/{c1}"), None)
        .await;
    assert_eq!(shown["revoked_reason"], "laptop stolen");
    assert!(shown["revoked_at"].is_i64());

    // Everything held by bob's agents.
    let (status, body) = admin
        .call(
            Method::POST,
            "/admin/v1/credentials/revoke",
            Some(json!({"owner": "bob", "reason": "offboarded"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sorted(
            body["revoked"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        ),
        sorted(vec![c2.clone(), c3.clone()])
    );
    let (_, body) = admin
        .call(
            Method::POST,
            "/admin/v1/credentials/revoke",
            Some(json!({"approver": "bob", "reason": "x"})),
        )
        .await;
    assert_eq!(body, json!({"revoked": []}), "already revoked");
    let (_, shown) = admin
        .call(Method::GET, &format!("/admin/v1/credentials/{c3}"), None)
        .await;
    assert_eq!(shown["revoked_reason"], "offboarded");

    // Refusals.
    assert_eq!(
        admin
            .call(Method::GET, "/admin/v1/credentials/nope", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/credentials/nope/revoke",
                Some(json!({"reason": "x"}))
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                &format!("/admin/v1/credentials/{c1}/revoke"),
                Some(json!({"reason": " "}))
            )
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/credentials/revoke",
                Some(json!({"reason": "everything"}))
            )
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/credentials/revoke",
                Some(json!({"agent": "a", "owner": "bob", "reason": "x"}))
            )
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.http
            .get(s.url("/admin/v1/credentials"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

/// The `rel="next"` address of a `Link` header, as a path on the server.
fn next_link(resp: &reqwest::Response, s: &TestServer) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().unwrap();
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("not a next link: {link}"));
    Some(target.strip_prefix(&s.url("")).unwrap().to_owned())
}

async fn credentials_list_in_keyset_pages_on_the_api_and_the_console(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let a = s.agent("a", "alice", "client_secret_basic").await;
    let b = s.agent("b", "alice", "client_secret_basic").await;
    let mut issued = Vec::new();
    for agent in [&a, &b, &a, &b, &a] {
        issued.push(credential(&s, agent, "alice").await);
    }
    issued.reverse(); // newest first
    let admin = s.admin_api().await;

    // Two at a time: each page follows the last, nothing repeats or is skipped, and the
    // filter and page size travel in the next link.
    let mut seen = Vec::new();
    let mut path = "/admin/v1/credentials?owner=alice&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let resp = admin.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let next = next_link(&resp, &s);
        let page: Value = resp.json().await.unwrap();
        let ids: Vec<String> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(ids);
        pages += 1;
        match next {
            Some(n) => {
                assert!(n.contains("owner=alice") && n.contains("limit=2"), "{n}");
                path = n;
            }
            None => break,
        }
    }
    assert_eq!((seen, pages), (issued.clone(), 3));
    // An exact last page has no next link.
    let resp = admin
        .request(Method::GET, "/admin/v1/credentials?limit=5")
        .send()
        .await
        .unwrap();
    assert!(next_link(&resp, &s).is_none());
    // The agent filter pages the same way.
    let (_, first) = admin
        .call(Method::GET, "/admin/v1/credentials?agent=a&limit=2", None)
        .await;
    assert_eq!(first[1]["id"], issued[2]);

    for bad in ["limit=0", "limit=1001", "limit=two"] {
        let (status, body) = admin
            .call(Method::GET, &format!("/admin/v1/credentials?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for bad in ["after=nonsense", "after=12.", "after=-1.x"] {
        let (status, body) = admin
            .call(Method::GET, &format!("/admin/v1/credentials?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }

    // The console shows 50 a page; with one page, no "Next page".
    let session = console::sign_in(&s, Role::Viewer).await;
    let page = console::get(&s, &session, "/console/credentials?agent=b")
        .await
        .text()
        .await
        .unwrap();
    for id in [&issued[1], &issued[3]] {
        assert!(page.contains(id.as_str()), "{id} listed");
    }
    assert!(
        !page.contains(issued[0].as_str()),
        "a's credential filtered out"
    );
    assert!(!page.contains("rel=\"next\""));
    // Past 50, a "Next page" link carries on from the 50th: the oldest is on page two.
    let oldest = issued.last().unwrap().clone();
    for _ in 0..46 {
        credential(&s, &a, "alice").await;
    }
    let page = console::get(&s, &session, "/console/credentials")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(oldest.as_str()));
    let next = page
        .split("<a rel=\"next\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let page = console::get(&s, &session, &next)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(oldest.as_str()), "{next}");
    assert!(!page.contains("rel=\"next\""), "two pages in all");
    let resp = console::get(&s, &session, "/console/credentials?after=x").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}
