//! The AuthZEN interop "Todo" scenario deployed as `examples/authzen-todo/` ships it: its
//! configuration, users and roles, the policy in `docs/policy/examples/`, and an
//! enforcement point registered to ask.

use std::path::{Path, PathBuf};

use countersign_server::clock::Clock as _;
use countersign_server::config::Config;
use countersign_server::directory::{self, NewGroup, NewHuman};
use serde_json::{Value, json};

use crate::{Agent, Db, TestServer, new_agent};

/// A file of `examples/authzen-todo/` (or `docs/`), from the repository root.
pub fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Takes the example's settings into `c` (what an operator merges into theirs).
fn apply_example_config(c: &mut Config) {
    let example = Config::load(
        Some(&repo_file("examples/authzen-todo/countersign.toml")),
        [],
    )
    .expect("the example configuration loads");
    for (name, schema) in example.authorization_details_types {
        c.authorization_details_types.entry(name).or_insert(schema);
    }
    c.policy.human_actions = example.policy.human_actions;
    c.policy.actions.extend(example.policy.actions);
    c.authzen = example.authzen;
}

/// The Todo deployment: users and roles imported, the policy active, and `todo-pep`, the
/// enforcement point (client_secret_basic).
pub struct Todo {
    pub server: TestServer,
    pub pep: Agent,
}

/// The interop's users: (subject, email, groups).
pub fn users() -> Vec<Value> {
    let text =
        std::fs::read_to_string(repo_file("examples/authzen-todo/users.json")).expect("users.json");
    serde_json::from_str(&text).expect("users.json is JSON")
}

/// The subject (PID) of the user with `email`.
pub fn pid(email: &str) -> String {
    users()
        .into_iter()
        .find(|u| u["email"] == email)
        .and_then(|u| u["subject"].as_str().map(str::to_owned))
        .expect("a Todo user")
}

impl Todo {
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, |_| {}).await
    }

    /// [`Todo::start`] with `tweak` applied to the configuration after the example's.
    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config)) -> Self {
        let server = TestServer::start_with(db, |c| {
            apply_example_config(c);
            tweak(c);
        })
        .await;
        let store = &server.state().store;
        let now = server.clock.now_ms();
        for group in ["admin", "editor", "viewer", "evil_genius"] {
            let new = NewGroup {
                name: group.into(),
                display_name: None,
            };
            directory::add_group(store, new, now, "test")
                .await
                .expect("add group");
        }
        for user in users() {
            let new: NewHuman = serde_json::from_value(json!({
                "subject": user["subject"], "email": user["email"], "name": user["name"],
            }))
            .expect("a new human");
            directory::add_human(store, new, now, "test")
                .await
                .expect("add human");
            for group in user["groups"].as_array().expect("groups") {
                let group = group.as_str().expect("a group name");
                let subject = user["subject"].as_str().expect("subject");
                directory::set_group_member(store, group, subject, true, now, "test")
                    .await
                    .expect("add member");
            }
        }
        server.human("todo-operator").await;
        let policy = std::fs::read_to_string(repo_file("docs/policy/examples/authzen-todo.cedar"))
            .expect("the example policy");
        server.install_policy(&policy).await;
        let mut new = new_agent("todo-pep", "todo-operator", "client_secret_basic");
        new.bearer_only = true;
        let pep = server.agent_with(new, false).await;
        Self { server, pep }
    }

    /// `Authorization: Basic` of the enforcement point.
    pub fn basic(&self) -> String {
        use base64::Engine as _;
        let pair = format!(
            "{}:{}",
            self.pep.client_id,
            self.pep.secret.as_deref().expect("a secret")
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// POSTs `body` to the AuthZEN `path` as the enforcement point: status, the body
    /// (JSON, else its text as a string), and the echoed `X-Request-ID`.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.server.url(path))
            .header("Authorization", self.basic())
            .json(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}
