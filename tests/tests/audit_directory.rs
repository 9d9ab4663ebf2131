#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Every change that decides who may approve or what an agent may do is in the audit
//! trail with the acting identity, on both databases: humans, groups and agents changed
//! through the admin API (`admin-key:ID`) and SCIM (`scim-token:ID`), SCIM tokens created
//! and revoked, each server start's configuration (`system`). A refused change writes
//! neither the change nor an event, and the chain stays intact throughout. (The CLI's
//! `cli` actor is tested in `server/tests/cli_audit.rs`, where the binary is at hand.)

use countersign_tests::scim::{ENTERPRISE, GROUP, PATCH_OP, USER};
use countersign_tests::{AdminApi, Db, TestServer, both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    adding_someone_to_an_approver_group_is_in_the_trace_with_the_acting_admin,
    human_changes_name_the_admin_and_each_field_old_and_new,
    agent_changes_name_the_admin_and_each_field_old_and_new,
    scim_changes_name_the_scim_token,
    scim_tokens_and_admin_keys_are_traced_and_revocable,
    each_start_records_its_configuration_digest,
    a_refused_change_writes_neither_the_change_nor_an_event,
);

/// (kind, actor, detail) of an event.
type Change = (String, String, Value);

fn change(kind: &str, actor: &str, detail: Value) -> Change {
    (kind.to_owned(), actor.to_owned(), detail)
}

/// The events about `subject` (`human:ID`, `group:NAME`, ...), oldest first.
async fn trail_of(admin: &AdminApi<'_>, subject: &str) -> Vec<Value> {
    let (status, events) = admin
        .call(
            Method::GET,
            &format!("/admin/v1/audit?limit=1000&subject={subject}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let mut events = events.as_array().unwrap().clone();
    events.reverse();
    events
}

/// The changes about `subject` whose kind starts with `prefix`, oldest first.
async fn changes_of(admin: &AdminApi<'_>, subject: &str, prefix: &str) -> Vec<Change> {
    trail_of(admin, subject)
        .await
        .into_iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with(prefix))
        .map(|e| {
            change(
                e["kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["detail"].clone(),
            )
        })
        .collect()
}

/// The chain's report (`intact`, `events`).
async fn verify(admin: &AdminApi<'_>) -> Value {
    let (status, report) = admin
        .call(Method::GET, "/admin/v1/audit/verify", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["intact"], true, "{report}");
    report
}

async fn call_ok(admin: &AdminApi<'_>, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = admin.call(method, path, body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// The hole the issue names: an admin quietly adds someone to the group an agent's
/// step-ups are routed to. The addition, and who made it, is in the trace.
async fn adding_someone_to_an_approver_group_is_in_the_trace_with_the_acting_admin(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("mallory").await;
    let admin = s.admin_api().await;
    let actor = format!("admin-key:{}", admin.id);
    let group = json!({"name": "payments-approvers", "display_name": "Payments approvers"});
    call_ok(&admin, Method::POST, "/admin/v1/groups", Some(group)).await;
    let agent = json!({"client_id": "procurement", "owner": "alice",
        "auth_method": "client_secret_basic", "approver": "group:payments-approvers"});
    call_ok(&admin, Method::POST, "/admin/v1/agents", Some(agent)).await;

    let member = "/admin/v1/groups/payments-approvers/members/mallory";
    let (status, _) = admin.call(Method::PUT, member, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Adding her again changes nothing, so records nothing; removing her is recorded.
    let (status, _) = admin.call(Method::PUT, member, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = admin.call(Method::DELETE, member, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let who = json!({"group": "payments-approvers", "subject": "mallory"});
    assert_eq!(
        changes_of(&admin, "group:payments-approvers", "group.").await,
        [
            change(
                "group.created",
                &actor,
                json!({"display_name": "Payments approvers"})
            ),
            change("group.member_added", &actor, who.clone()),
            change("group.member_removed", &actor, who),
        ]
    );
    // An auditor asking about mallory finds it too.
    let export = s
        .http
        .get(s.url("/admin/v1/audit/export?human=mallory"))
        .bearer_auth(admin.key())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kinds: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "human.created",
            "group.member_added",
            "group.member_removed"
        ]
    );
    verify(&admin).await;
    s.stop().await;
}

async fn human_changes_name_the_admin_and_each_field_old_and_new(db: Db) {
    let s = TestServer::start(db).await;
    let admin = s.admin_api().await;
    let actor = format!("admin-key:{}", admin.id);
    let bob = json!({"subject": "bob", "email": "bob@example.com", "name": "Bob"});
    call_ok(&admin, Method::POST, "/admin/v1/humans", Some(bob)).await;
    let carol = json!({"subject": "carol", "email": "carol@example.com", "name": "Carol",
        "role": "buyer", "department": "procurement", "user_code": "secret-code-1"});
    call_ok(&admin, Method::POST, "/admin/v1/humans", Some(carol)).await;
    let update = json!({"manager": "bob", "role": "approver", "title": "Lead buyer"});
    let path = "/admin/v1/humans/carol";
    call_ok(&admin, Method::PATCH, path, Some(update.clone())).await;
    // The same values again change nothing and record nothing.
    call_ok(&admin, Method::PATCH, path, Some(update)).await;
    let clear = json!({"manager": "", "department": "finance"});
    call_ok(&admin, Method::PATCH, path, Some(clear)).await;
    // Employment status: offboarding and reactivation.
    let reason = json!({"reason": "left the company"});
    call_ok(
        &admin,
        Method::POST,
        &format!("{path}/deactivate"),
        Some(reason),
    )
    .await;
    call_ok(&admin, Method::POST, &format!("{path}/activate"), None).await;

    let changes = changes_of(&admin, "human:carol", "human.").await;
    assert_eq!(
        changes,
        [
            change(
                "human.created",
                &actor,
                json!({"email": "carol@example.com", "name": "Carol", "department": "procurement",
                    "title": "", "role": "buyer", "manager": null, "user_code": true})
            ),
            change(
                "human.updated",
                &actor,
                json!({"changes": {
                    "manager": {"from": null, "to": "bob"},
                    "role": {"from": "buyer", "to": "approver"},
                    "title": {"from": "", "to": "Lead buyer"},
                }})
            ),
            change(
                "human.updated",
                &actor,
                json!({"changes": {
                    "manager": {"from": "bob", "to": null},
                    "department": {"from": "procurement", "to": "finance"},
                }})
            ),
            change(
                "human.offboarded",
                &actor,
                json!({"reason": "left the company"})
            ),
            change("human.reactivated", &actor, json!({})),
        ]
    );
    let text = serde_json::to_string(&trail_of(&admin, "human:carol").await).unwrap();
    assert!(!text.contains("secret-code-1"), "the user code stays out");
    verify(&admin).await;
    s.stop().await;
}

async fn agent_changes_name_the_admin_and_each_field_old_and_new(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("bob").await;
    let admin = s.admin_api().await;
    let actor = format!("admin-key:{}", admin.id);
    let agent = json!({"client_id": "procurement", "owner": "alice", "name": "Buyer bot",
        "auth_method": "client_secret_basic", "tools": ["erp"], "approver": "owner"});
    let created = call_ok(&admin, Method::POST, "/admin/v1/agents", Some(agent)).await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let path = "/admin/v1/agents/procurement";
    let update = json!({"tools": ["erp", "crm"], "approver": "group:finance", "risk_tier": "high"});
    call_ok(&admin, Method::PATCH, path, Some(update.clone())).await;
    call_ok(&admin, Method::PATCH, path, Some(update)).await;
    let lift = json!({"tools": [], "approver": ""});
    call_ok(&admin, Method::PATCH, path, Some(lift)).await;
    let reassign = json!({"owner": "bob", "reason": "team change"});
    call_ok(
        &admin,
        Method::POST,
        &format!("{path}/reassign"),
        Some(reassign),
    )
    .await;
    let reason = json!({"reason": "misbehaving"});
    call_ok(
        &admin,
        Method::POST,
        &format!("{path}/suspend"),
        Some(reason),
    )
    .await;
    call_ok(&admin, Method::POST, &format!("{path}/resume"), None).await;

    let changes = changes_of(&admin, "agent:procurement", "agent.").await;
    let registered = json!({"owner": "alice", "name": "Buyer bot",
        "auth_method": "client_secret_basic", "keys": [], "delivery_mode": "poll",
        "notification_endpoint": null, "require_signed_request": false,
        "user_code_required": false, "bearer_only": false, "dpop_jkt": null,
        "department": "", "risk_tier": "low", "description": null,
        "tools": ["erp"], "approver": "owner"});
    assert_eq!(changes[0], change("agent.registered", &actor, registered));
    assert_eq!(
        changes[1],
        change(
            "agent.updated",
            &actor,
            json!({"changes": {
                "tools": {"from": ["erp"], "to": ["crm", "erp"]},
                "approver": {"from": "owner", "to": "group:finance"},
                "risk_tier": {"from": "low", "to": "high"},
            }})
        )
    );
    assert_eq!(
        changes[2],
        change(
            "agent.updated",
            &actor,
            json!({"changes": {
                "tools": {"from": ["crm", "erp"], "to": null},
                "approver": {"from": "group:finance", "to": null},
            }})
        )
    );
    let rest: Vec<(&str, &str)> = changes[3..]
        .iter()
        .map(|(k, a, _)| (k.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        rest,
        [
            ("agent.reassigned", actor.as_str()),
            ("agent.suspended", actor.as_str()),
            ("agent.resumed", actor.as_str())
        ]
    );
    let text = serde_json::to_string(&trail_of(&admin, "agent:procurement").await).unwrap();
    assert!(
        !text.contains(&secret),
        "the client secret stays out of the trail"
    );
    verify(&admin).await;
    s.stop().await;
}

fn scim_user(user_name: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "displayName": user_name.to_uppercase(),
        "emails": [{"value": format!("{user_name}@example.com"), "primary": true}],
        "title": "Buyer",
        "active": true,
        ENTERPRISE: {"department": "Procurement"}
    })
}

async fn scim_patch(scim: &countersign_tests::scim::ScimApi<'_>, path: &str, ops: Value) {
    let patch = json!({"schemas": [PATCH_OP], "Operations": ops});
    let a = scim.call(Method::PATCH, path, Some(patch)).await;
    assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
}

async fn scim_changes_name_the_scim_token(db: Db) {
    let s = TestServer::start(db).await;
    let scim = s.scim_api().await;
    let actor = format!("scim-token:{}", scim.id);
    let ann = scim.create_user(scim_user("ann")).await;
    let boss = scim.create_user(scim_user("boss")).await;
    let bert = scim.create_user(scim_user("bert")).await;
    scim_patch(
        &scim,
        &format!("/Users/{ann}"),
        json!([{"op": "replace", "path": "title", "value": "Head buyer"},
               {"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": boss}]),
    )
    .await;
    scim_patch(
        &scim,
        &format!("/Users/{ann}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;

    let group = json!({"schemas": [GROUP], "displayName": "treasury", "members": [{"value": ann}]});
    let a = scim.call(Method::POST, "/Groups", Some(group)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{id}");
    scim_patch(
        &scim,
        &path,
        json!([{"op": "add", "path": "members", "value": [{"value": bert}]},
               {"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]),
    )
    .await;
    scim_patch(
        &scim,
        &path,
        json!([{"op": "replace", "path": "displayName", "value": "Treasury team"}]),
    )
    .await;
    let a = scim.call(Method::DELETE, &path, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    let admin = s.admin_api().await;
    let created = json!({"email": "ann@example.com", "name": "ANN", "department": "Procurement",
        "title": "Buyer", "role": "", "manager": null, "user_code": false});
    let updated = json!({"changes": {"title": {"from": "Buyer", "to": "Head buyer"},
        "manager": {"from": null, "to": "boss"}}});
    let offboarded = json!({"reason": "deprovisioned by the identity provider (SCIM)"});
    assert_eq!(
        changes_of(&admin, "human:ann", "human.").await,
        [
            change("human.created", &actor, created),
            change("human.updated", &actor, updated),
            change("human.offboarded", &actor, offboarded),
        ]
    );
    let member = |who: &str| json!({"group": "treasury", "subject": who});
    assert_eq!(
        changes_of(&admin, "group:treasury", "group.").await,
        [
            change("group.created", &actor, json!({"display_name": "treasury"})),
            change("group.member_added", &actor, member("ann")),
            change("group.member_removed", &actor, member("ann")),
            change("group.member_added", &actor, member("bert")),
            change(
                "group.updated",
                &actor,
                json!({"changes": {"display_name": {"from": "treasury", "to": "Treasury team"}}})
            ),
            change("group.member_removed", &actor, member("bert")),
            change(
                "group.deleted",
                &actor,
                json!({"display_name": "Treasury team"})
            ),
        ]
    );
    verify(&admin).await;
    s.stop().await;
}

async fn scim_tokens_and_admin_keys_are_traced_and_revocable(db: Db) {
    let s = TestServer::start(db).await;
    let admin = s.admin_api().await;
    let actor = format!("admin-key:{}", admin.id);
    let body = json!({"name": "okta", "expires_in_days": 30});
    let created = call_ok(&admin, Method::POST, "/admin/v1/scim-tokens", Some(body)).await;
    let (id, token) = (
        created["id"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    let users = |token: &str| {
        s.http
            .get(s.url("/scim/v2/Users"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(users(token).await.unwrap().status(), StatusCode::OK);
    let path = format!("/admin/v1/scim-tokens/{id}");
    let (status, _) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        users(token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Only a live SCIM token is revoked: not twice, not an admin key by this route.
    let (status, _) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let admin_key = format!("/admin/v1/scim-tokens/{}", admin.id);
    let (status, _) = admin.call(Method::DELETE, &admin_key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let subject = format!("scim-token:{id}");
    assert_eq!(
        changes_of(&admin, &subject, "").await,
        [
            change(
                "scim_token.created",
                &actor,
                json!({"name": "okta", "expires_at": created["expires_at"]})
            ),
            change("scim_token.revoked", &actor, json!({"name": "okta"})),
        ]
    );
    let text = serde_json::to_string(&trail_of(&admin, &subject).await).unwrap();
    assert!(!text.contains(token), "the token stays out of the trail");
    // The harness's own admin key is traced as well, with its (direct) actor.
    assert_eq!(
        changes_of(&admin, &format!("admin-key:{}", admin.id), "").await,
        [change(
            "admin_key.created",
            countersign_tests::TEST_ACTOR,
            json!({"name": "test", "expires_at": null})
        )]
    );
    verify(&admin).await;
    s.stop().await;
}

async fn each_start_records_its_configuration_digest(db: Db) {
    let mut s = TestServer::start(db).await;
    let first = s.state().config.digest().unwrap();
    s.restart().await;
    s.reconfigure(|c| c.ciba.poll_interval_secs = 2).await;
    let changed = s.state().config.digest().unwrap();
    assert_ne!(first, changed);
    let admin = s.admin_api().await;
    let starts = changes_of(&admin, "config", "").await;
    let digests: Vec<(&str, &str, &Value)> = starts
        .iter()
        .map(|(k, a, d)| (k.as_str(), a.as_str(), &d["sha256"]))
        .collect();
    let (f, c) = (json!(first), json!(changed));
    assert_eq!(
        digests,
        [
            ("config.loaded", "system", &f),
            ("config.loaded", "system", &f),
            ("config.loaded", "system", &c)
        ],
        "the same configuration twice, then a changed one"
    );
    let detail = &starts[2].2;
    assert_eq!(detail["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(detail["issuer"], s.issuer());
    assert_eq!(detail["signing_kid"], s.state().keys.active().kid());
    assert_eq!(detail.as_object().unwrap().len(), 4, "{detail}");
    verify(&admin).await;
    s.stop().await;
}

/// Changes refused by validation, through the admin API and SCIM: each answers with its
/// error and leaves the directory and the trail exactly as they were (one transaction
/// holds the change and its event).
async fn a_refused_change_writes_neither_the_change_nor_an_event(db: Db) {
    let s = TestServer::start(db).await;
    s.human("bob").await;
    s.agent("procurement", "bob", "client_secret_basic").await;
    let scim = s.scim_api().await;
    let ann = scim.create_user(scim_user("ann")).await;
    let group = json!({"schemas": [GROUP], "displayName": "treasury", "members": [{"value": ann}]});
    let a = scim.call(Method::POST, "/Groups", Some(group)).await;
    let group_id = a.body["id"].as_str().unwrap().to_owned();
    let admin = s.admin_api().await;
    let before = verify(&admin).await["events"].clone();
    let directory = |s: &TestServer| {
        let store = s.state().store.clone();
        async move {
            store.forget_directory_cache();
            (
                store.human("bob").await.unwrap(),
                store.human("ann").await.unwrap(),
                store.client("procurement").await.unwrap(),
                store.list_groups().await.unwrap(),
            )
        }
    };
    let unchanged = directory(&s).await;

    // A valid role with an unknown manager: neither lands.
    let bad = json!({"role": "approver", "manager": "nobody"});
    let (status, _) = admin
        .call(Method::PATCH, "/admin/v1/humans/bob", Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Valid tools with an invalid approver route.
    let bad = json!({"tools": ["erp"], "approver": "boss"});
    let (status, _) = admin
        .call(Method::PATCH, "/admin/v1/agents/procurement", Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let path = "/admin/v1/groups/treasury/members/nobody";
    let (status, _) = admin.call(Method::PUT, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let taken = json!({"subject": "bobby", "email": "bob@example.com", "name": "B"});
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/humans", Some(taken))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let again =
        json!({"client_id": "procurement", "owner": "bob", "auth_method": "client_secret_basic"});
    let (status, _) = admin
        .call(Method::POST, "/admin/v1/agents", Some(again))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // SCIM: a new title with an e-mail another human has (refused by the database inside
    // the transaction), and an unknown group member beside a valid rename.
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "title", "value": "Head buyer"},
        {"op": "replace", "path": "emails", "value": [{"value": "bob@example.com", "primary": true}]}]});
    let a = scim
        .call(Method::PATCH, &format!("/Users/{ann}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "displayName", "value": "Treasury team"},
        {"op": "add", "path": "members", "value": [{"value": "nobody"}]}]});
    let a = scim
        .call(Method::PATCH, &format!("/Groups/{group_id}"), Some(patch))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);

    assert_eq!(directory(&s).await, unchanged);
    assert_eq!(
        verify(&admin).await["events"],
        before,
        "no event was written"
    );
    s.stop().await;
}
