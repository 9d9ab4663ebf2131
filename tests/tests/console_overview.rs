#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The console's overview figures and integrations page over real HTTP: decisions per
//! minute, approval latency and anomaly flags that match what the test did; keys and
//! tokens listed without secrets; push failures by reason; SCIM token revocation by admins.

use countersign_server::admin::{self, Role, Scope};
use countersign_tests::console::{get, post, sign_in};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;

both_backends!(
    integrations_list_keys_without_secrets_and_push_failures_by_reason,
    only_admins_revoke_a_scim_token_and_it_is_audited,
    the_overview_counts_the_decisions_made_and_flags_the_agent,
);

/// The body rows of the table with `id` on `html`, each as its cells' text (tags removed,
/// spaces collapsed).
fn table_rows(html: &str, id: &str) -> Vec<Vec<String>> {
    let table = html
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .and_then(|table| table.split("<tbody>").nth(1))
        .unwrap_or_else(|| panic!("no table {id} with a body on the page"));
    let text = |fragment: &str| {
        let mut out = String::new();
        let mut in_tag = false;
        for c in fragment.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    table
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or(row);
            // Each cell starts at `<td` or `<th` and ends at its closing tag.
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(at) = [rest.find("<td"), rest.find("<th")]
                .into_iter()
                .flatten()
                .min()
            {
                let cell = &rest[at..];
                let open_end = cell.find('>').map_or(cell.len(), |i| i + 1);
                let body = &cell[open_end..];
                let close = [body.find("</td>"), body.find("</th>")]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(body.len());
                cells.push(text(&body[..close]));
                rest = &body[close..];
            }
            cells
        })
        .collect()
}

/// A push given up at `at_ms` on `channel` with `error`, as the push worker leaves it.
async fn failed_push(s: &TestServer, id: &str, channel: &str, error: &str, at_ms: i64) {
    s.execute_sql(&format!(
        "INSERT INTO push_outbox (id, auth_req_id, device_id, channel, created_at, attempts, \
         next_attempt_at, expires_at, failed_at, last_error) \
         VALUES ('{id}', 'req-{id}', 'dev-{id}', '{channel}', {at_ms}, 1, {at_ms}, {}, {at_ms}, '{error}')",
        at_ms + 600_000
    ))
    .await;
}

async fn integrations_list_keys_without_secrets_and_push_failures_by_reason(db: Db) {
    let s = TestServer::start(db).await;
    let store = &s.state().store;
    let now = s.state().now_ms();
    let scim = admin::create_key(store, "okta-provisioning", Scope::Scim, None, now, "test")
        .await
        .unwrap();
    let key = admin::create_key(store, "ci-pipeline", Scope::Admin, None, now, "test")
        .await
        .unwrap();
    failed_push(
        &s,
        "p1",
        "apns",
        "unregistered: BadDeviceToken",
        now - 60_000,
    )
    .await;
    failed_push(
        &s,
        "p2",
        "apns",
        "unregistered: BadDeviceToken",
        now - 30_000,
    )
    .await;
    failed_push(&s, "p3", "fcm", "rejected: INVALID_ARGUMENT", now - 10_000).await;
    // Two days old: not in the last 24 hours.
    failed_push(&s, "p4", "fcm", "rejected: old", now - 2 * 86_400_000).await;

    let viewer = sign_in(&s, Role::Viewer).await;
    let resp = get(&s, &viewer, "/console/integrations").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("href=\"/console/integrations\""),
        "a nav link"
    );

    let tokens = table_rows(&html, "scim-tokens");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0][0], scim.id);
    assert_eq!(tokens[0][1], "okta-provisioning");
    assert_eq!(tokens[0][4], "live");
    let keys = table_rows(&html, "admin-keys");
    let ci = keys
        .iter()
        .find(|k| k[0] == key.id)
        .unwrap_or_else(|| panic!("the admin key is listed: {keys:?}"));
    assert_eq!((ci[1].as_str(), ci[2].as_str()), ("ci-pipeline", "admin"));
    for secret in [scim.secret.expose(), key.secret.expose()] {
        assert!(!html.contains(secret), "a secret is on the page");
    }
    // A viewer sees no revoke button.
    assert!(!html.contains("/revoke\""), "a viewer is offered an action");

    let failures = table_rows(&html, "push-failures");
    assert_eq!(
        failures
            .iter()
            .map(|f| (f[0].as_str(), f[1].as_str(), f[2].as_str()))
            .collect::<Vec<_>>(),
        [
            ("apns", "unregistered: BadDeviceToken", "2"),
            ("fcm", "rejected: INVALID_ARGUMENT", "1"),
        ]
    );
    // The key that signs is listed as active, by its kid.
    let kid = s.state().keys.active().kid().to_owned();
    let signing = table_rows(&html, "signing-keys");
    assert_eq!(signing.len(), 1, "{signing:?}");
    assert_eq!(signing[0][0], kid);
    assert_eq!(signing[0][1], "ES256");
    assert!(signing[0][3].starts_with("active"), "{signing:?}");
    // Nothing configured: the empty state says what to do.
    assert!(html.contains("[[signals.transmitters]]"));
    s.stop().await;
}

async fn only_admins_revoke_a_scim_token_and_it_is_audited(db: Db) {
    let s = TestServer::start(db).await;
    let store = &s.state().store;
    let now = s.state().now_ms();
    let scim = admin::create_key(store, "okta", Scope::Scim, None, now, "test")
        .await
        .unwrap();
    let live = || async {
        admin::verify_key(store, scim.secret.expose(), Scope::Scim, s.state().now_ms())
            .await
            .unwrap()
            .is_some()
    };
    let path = format!("/console/integrations/scim-tokens/{}/revoke", scim.id);

    for role in [Role::Viewer, Role::Operator] {
        let session = sign_in(&s, role).await;
        let refused = post(&s, &session, &path, &[("confirm", "yes")]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{role}");
        assert!(live().await, "a {role} revoked a SCIM token");
    }
    let admin_session = sign_in(&s, Role::Admin).await;
    let page = get(&s, &admin_session, "/console/integrations")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&path), "an admin is offered the action");
    // Without the confirmation nothing happens.
    let unconfirmed = post(&s, &admin_session, &path, &[]).await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(live().await);
    let done = post(&s, &admin_session, &path, &[("confirm", "yes")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(!live().await, "the token still works");
    let again = post(&s, &admin_session, &path, &[("confirm", "yes")]).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let revoked: Vec<_> = store
        .recent_audit_events(Some(&format!("scim-token:{}", scim.id)), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "scim_token.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].actor.starts_with("admin-key:"),
        "{}",
        revoked[0].actor
    );
    let tokens = table_rows(
        &get(&s, &admin_session, "/console/integrations")
            .await
            .text()
            .await
            .unwrap(),
        "scim-tokens",
    );
    assert!(tokens[0][4].starts_with("revoked"), "{tokens:?}");
    s.stop().await;
}

async fn the_overview_counts_the_decisions_made_and_flags_the_agent(db: Db) {
    let s = TestServer::start_with(db, |c| {
        c.authorization_details_types.insert(
            "delete_environment".into(),
            serde_json::json!({"type": "object", "required": ["type", "target"],
                   "properties": {"type": {"const": "delete_environment"}, "target": {"type": "string"}}}),
        );
        c.policy
            .actions
            .insert("delete_environment".into(), "destructive".into());
    })
    .await;
    s.human("bob").await;
    s.human_with_manager("alice", "bob").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    s.install_policy(include_str!("../../docs/policy/examples/procurement.cedar"))
        .await;
    let ask = |details: String| {
        let agent = &agent;
        let s = &s;
        async move {
            s.bc_authorize(
                agent,
                &[
                    ("scope", "openid"),
                    ("login_hint", "alice"),
                    ("authorization_details", &details),
                ],
            )
            .await
        }
    };
    let order = |amount: u32| {
        serde_json::json!([{"type": "purchase_order", "vendor": "Acme", "amount": amount, "currency": "USD"}])
            .to_string()
    };
    let destroy =
        serde_json::json!([{"type": "delete_environment", "target": "production"}]).to_string();

    let viewer = sign_in(&s, Role::Viewer).await;
    let before = get(&s, &viewer, "/console/").await.text().await.unwrap();
    assert!(before.contains("No decisions in the last hour"));
    assert!(before.contains("No agent stands out"));

    // Two allowed, one stepped up (approved 90 s later), five denied.
    for amount in [100, 200] {
        assert_eq!(ask(order(amount)).await.0, StatusCode::OK);
    }
    let (status, body) = ask(order(1200)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let waiting = body["auth_req_id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(ask(destroy.clone()).await.0, StatusCode::FORBIDDEN);
    }
    // The queue's refresh (htmx) fetches the queue alone.
    let queue = get(&s, &viewer, "/console/queue").await;
    assert_eq!(queue.status(), StatusCode::OK);
    let queue = queue.text().await.unwrap();
    assert!(queue.contains("purchase_order: Acme, 1200 USD"), "{queue}");
    assert!(!queue.contains("<svg"), "the refresh computes no figures");
    s.clock.advance_ms(90_000);
    assert_eq!(s.dev_decide(&waiting, true).await, StatusCode::NO_CONTENT);

    let html = get(&s, &viewer, "/console/").await.text().await.unwrap();
    let totals = table_rows(&html, "decision-totals");
    assert_eq!(
        totals.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["2", "1", "5"],
        "allowed, stepped up, denied: {totals:?}"
    );
    assert!(
        html.contains("2 allowed, 1 stepped up, 5 denied"),
        "the chart's summary"
    );
    assert!(html.contains("<svg") && html.contains("class=\"bar-deny\""));
    // The one human decision took 90 s, so both percentiles are 90 s.
    assert!(
        html.contains("<dt>Human decisions</dt><dd>1</dd>"),
        "{html}"
    );
    assert!(html.contains("<dt>Approval time, median</dt><dd>1 min 30 s</dd>"));
    assert!(html.contains("<dt>Approval time, 95th percentile</dt><dd>1 min 30 s</dd>"));
    // Five denials against no history: the agent is flagged, with the reason.
    let flagged = table_rows(&html, "flagged");
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0][0], "procurement");
    assert!(
        flagged[0][1].starts_with("6 denials and step-ups in the last hour"),
        "{flagged:?}"
    );
    s.stop().await;
}
