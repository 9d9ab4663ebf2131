#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test support: failing loudly is the point

//! Test harness for end-to-end tests: a real Countersign server started in-process on a
//! loopback port, over a fresh SQLite file or a fresh PostgreSQL database, with a clock the
//! test can move, and helpers that speak the protocol as a client would (over HTTP).

use std::sync::Arc;

use countersign_jose::{Header, JwkSet, SigningKeyPair, random_b64url};
use countersign_server::clock::{Clock, ManualClock};
use countersign_server::config::Config;
use countersign_server::directory::{self, NewAgent, NewHuman};
use countersign_server::server::{self, Running};
use countersign_server::state::AppState;
use countersign_server::store::testing::{create_postgres_database, drop_postgres_database};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub mod admin_api;
pub mod authzen;
pub mod child;
pub mod console;
pub mod fakes;
pub mod ghost;
pub mod idp;
pub mod mcp;
pub mod node;
pub mod receiver;
pub mod scim;
pub mod tamper;
mod tokens;
pub mod tools;
pub mod wallets;
pub mod webdriver;

pub use admin_api::AdminApi;
pub use tokens::{assert_oauth_error, jwt_claims, resource_proof, unsigned_jwt};

pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// The actor the trail records for what the harness sets up directly (not through an API).
pub const TEST_ACTOR: &str = "test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend from an `async fn(Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Db::Postgres).await
                }
            }
        )+
    };
}

pub struct TestServer {
    running: Option<Running>,
    pub clock: Arc<ManualClock>,
    pub db: Db,
    config: Config,
    /// The directory holding keys (and the SQLite file); shared with replicas.
    dir: Arc<tempfile::TempDir>,
    /// Replicas share the database and leave dropping it to the original.
    owns_database: bool,
    pub http: reqwest::Client,
}

/// A registered agent and what it authenticates with.
pub struct Agent {
    pub client_id: String,
    pub secret: Option<String>,
    pub key: Option<SigningKeyPair>,
    /// `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    pub method: String,
    /// The agent's DPoP key: every credential is bound to a key unless the agent was
    /// registered bearer-only, so helpers that fetch tokens prove this one.
    pub dpop: SigningKeyPair,
}

impl TestServer {
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, |_| {}).await
    }

    /// Starts with developer approvals on, a 1-second poll interval and fast notification
    /// retries; `tweak` may change anything else.
    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config)) -> Self {
        // `CS_TEST_LOG=debug` (any filter) shows the servers' logs with the test's output.
        if let Ok(filter) = std::env::var("CS_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match db {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("cs.db").display()),
            Db::Postgres => create_postgres_database()
                .await
                .expect("PostgreSQL must be reachable (127.0.0.1:5432)"),
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url,
            keys_dir: dir.path().join("keys"),
            dev_approvals: true,
            ..Config::default()
        };
        config.ciba.poll_interval_secs = 1;
        config.notifications.initial_backoff_ms = 20;
        config.notifications.max_backoff_ms = 200;
        config.notifications.poll_interval_ms = 20;
        tweak(&mut config);
        let clock = Arc::new(ManualClock::default());
        let running = server::start(config.clone(), clock.clone())
            .await
            .expect("server starts");
        config.listen = running.addr;
        Self {
            running: Some(running),
            clock,
            db,
            config,
            dir: Arc::new(dir),
            owns_database: true,
            http: reqwest::Client::new(),
        }
    }

    /// A server whose issuer is `http://localhost:PORT` while it listens on
    /// 127.0.0.1:PORT: what a browser needs for WebAuthn (no RP ID names an IP address).
    pub async fn start_on_localhost(db: Db) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::start_with(db, move |c| {
            c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            c.issuer = Some(format!("http://localhost:{port}"));
        })
        .await
    }

    /// A second server process on the same database and keys, on its own port and with its
    /// own notification worker: what several stateless replicas behind a load balancer are.
    pub async fn replica(&self) -> Self {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        // Both replicas must answer as the same issuer.
        config.issuer = Some(self.issuer());
        let running = server::start(config.clone(), self.clock.clone())
            .await
            .expect("replica starts");
        config.listen = running.addr;
        Self {
            running: Some(running),
            clock: self.clock.clone(),
            db: self.db,
            config,
            dir: self.dir.clone(),
            owns_database: false,
            http: reqwest::Client::new(),
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("server is running")
    }

    pub fn state(&self) -> &AppState {
        &self.running().state
    }

    /// Authentication request `id` as the server stored it (it must exist).
    pub async fn auth_request(
        &self,
        id: &str,
    ) -> countersign_server::store::auth_requests::AuthRequestRecord {
        self.state()
            .store
            .auth_request(&id.into())
            .await
            .expect("read the request")
            .expect("the request exists")
    }

    /// Runs one SQL statement on the server's database from outside the server, as an
    /// attacker with database access (or a test setting up a fault) would.
    pub async fn execute_sql(&self, sql: &str) {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.config.database_url)
            .await
            .expect("database");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("statement");
        conn.close().await.expect("close");
    }

    pub fn issuer(&self) -> String {
        self.running().base_url()
    }

    /// `path` on this server's own address (for a replica, not the shared issuer's).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().addr)
    }

    pub fn now_s(&self) -> i64 {
        self.clock.now_secs()
    }

    /// Stops the server and starts a new one on the same database, keys and port, as a
    /// process restart would.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let running = server::start(self.config.clone(), self.clock.clone())
            .await
            .expect("server restarts");
        self.running = Some(running);
    }

    /// Restarts with `tweak` applied to the configuration (same database, keys and port).
    pub async fn reconfigure(&mut self, tweak: impl FnOnce(&mut Config)) {
        tweak(&mut self.config);
        self.restart().await;
    }

    /// Stops the server and drops the test database.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if self.db == Db::Postgres && self.owns_database {
            drop_postgres_database(&self.config.database_url)
                .await
                .expect("drop test database");
        }
    }

    pub async fn human(&self, subject: &str) {
        self.human_with_code(subject, None).await;
    }

    /// Marks `subject` inactive and nothing else (offboarding would also revoke and
    /// suspend): for tests of what an inactive human alone changes.
    pub async fn deactivate_only(&self, subject: &str) {
        let store = &self.state().store;
        let mut tx = store.begin().await.expect("begin");
        assert!(
            store
                .set_human_active(&mut tx, subject, false)
                .await
                .expect("deactivate")
        );
        tx.commit().await.expect("commit");
        store.forget_directory_cache();
    }

    /// A human whose manager is `manager` (already registered).
    pub async fn human_with_manager(&self, subject: &str, manager: &str) {
        let new = NewHuman {
            manager: Some(manager.into()),
            ..new_human(subject, None)
        };
        directory::add_human(&self.state().store, new, self.clock.now_ms(), TEST_ACTOR)
            .await
            .expect("add human");
    }

    /// Stores `source` as a new policy version and activates it; returns its version.
    pub async fn install_policy(&self, source: &str) -> i64 {
        let state = self.state();
        countersign_server::policy::manage::add(
            &state.policy,
            &state.store,
            state.now_ms(),
            source,
            None,
            true,
            TEST_ACTOR,
        )
        .await
        .unwrap_or_else(|e| panic!("policy does not install: {e}"))
        .version
    }

    pub async fn human_with_code(&self, subject: &str, user_code: Option<&str>) {
        directory::add_human(
            &self.state().store,
            new_human(subject, user_code),
            self.clock.now_ms(),
            TEST_ACTOR,
        )
        .await
        .expect("add human");
    }

    /// Registers an agent; `jwks` is filled in from a fresh key for `private_key_jwt` or
    /// when `key` is true.
    pub async fn agent_with(&self, mut new: NewAgent, key: bool) -> Agent {
        let key = (key || new.auth_method == "private_key_jwt").then(SigningKeyPair::generate);
        if let Some(k) = &key {
            new.jwks = Some(
                serde_json::to_value(JwkSet {
                    keys: vec![k.public_jwk()],
                })
                .expect("jwks"),
            );
        }
        let method = new.auth_method.clone();
        let created =
            directory::add_agent(&self.state().store, new, self.clock.now_ms(), TEST_ACTOR)
                .await
                .expect("add agent");
        Agent {
            client_id: created.agent.client_id,
            secret: created.client_secret,
            key,
            method,
            dpop: SigningKeyPair::generate(),
        }
    }

    pub async fn agent(&self, client_id: &str, owner: &str, method: &str) -> Agent {
        self.agent_with(new_agent(client_id, owner, method), false)
            .await
    }

    /// POSTs a form to `path` authenticated as `agent` with its registered method.
    pub async fn post_as(
        &self,
        agent: &Agent,
        path: &str,
        params: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.post_as_with(agent, path, params, None).await
    }

    pub async fn post_as_with(
        &self,
        agent: &Agent,
        path: &str,
        params: &[(&str, &str)],
        dpop: Option<String>,
    ) -> (StatusCode, Value) {
        let mut form: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let mut req = self.http.post(self.url(path));
        match agent.method.as_str() {
            "client_secret_basic" => {
                req = req.basic_auth(&agent.client_id, agent.secret.as_deref())
            }
            "client_secret_post" => {
                form.push(("client_id".into(), agent.client_id.clone()));
                form.push((
                    "client_secret".into(),
                    agent.secret.clone().unwrap_or_default(),
                ));
            }
            _ => {
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion".into(),
                    agent.assertion(&self.issuer(), self.now_s()),
                ));
            }
        }
        if let Some(proof) = dpop {
            req = req.header("DPoP", proof);
        }
        let resp = req.form(&form).send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs `path` and decodes the JSON body.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        resp.json().await.expect("JSON body")
    }

    /// The published JWK Set, as a verifier would fetch it.
    pub async fn jwks(&self) -> JwkSet {
        self.get_json("/jwks.json").await
    }

    pub async fn bc_authorize(
        &self,
        agent: &Agent,
        params: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.post_as(agent, "/bc-authorize", params).await
    }

    /// A valid request for `subject`; returns the `auth_req_id`.
    pub async fn start_request(&self, agent: &Agent, subject: &str) -> String {
        let (status, body) = self
            .bc_authorize(agent, &[("scope", "openid"), ("login_hint", subject)])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["auth_req_id"]
            .as_str()
            .expect("auth_req_id")
            .to_owned()
    }

    /// A whole approved flow: a request for `subject` with `params` added, a developer
    /// approval, and the token request with a DPoP proof by `dpop` (default: the agent's
    /// own key). Returns the token response (asserting it succeeded).
    pub async fn approved_tokens(
        &self,
        agent: &Agent,
        subject: &str,
        params: &[(&str, &str)],
        dpop: Option<&SigningKeyPair>,
    ) -> Value {
        let mut request = vec![("scope", "openid"), ("login_hint", subject)];
        request.extend_from_slice(params);
        let (status, body) = self.bc_authorize(agent, &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["auth_req_id"]
            .as_str()
            .expect("auth_req_id")
            .to_owned();
        assert_eq!(self.dev_decide(&id, true).await, StatusCode::NO_CONTENT);
        let key = dpop.unwrap_or(&agent.dpop);
        let proof =
            Some(self.dpop_proof(key, &format!("{}/token", self.issuer()), &random_b64url(12)));
        let (status, tokens) = self
            .post_as_with(
                agent,
                "/token",
                &[("grant_type", CIBA_GRANT), ("auth_req_id", &id)],
                proof,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    /// A token request for `auth_req_id` with a DPoP proof by the agent's key.
    pub async fn poll(&self, agent: &Agent, auth_req_id: &str) -> (StatusCode, Value) {
        let proof = self.dpop_proof(
            &agent.dpop,
            &format!("{}/token", self.issuer()),
            &random_b64url(12),
        );
        self.post_as_with(
            agent,
            "/token",
            &[("grant_type", CIBA_GRANT), ("auth_req_id", auth_req_id)],
            Some(proof),
        )
        .await
    }

    pub async fn dev_decide(&self, auth_req_id: &str, approve: bool) -> StatusCode {
        let verb = if approve { "approve" } else { "deny" };
        self.http
            .post(self.url(&format!("/dev/approvals/{auth_req_id}/{verb}")))
            .send()
            .await
            .expect("dev approval")
            .status()
    }

    /// A fresh DPoP proof by `key` for `method` `htu` (no `ath`).
    pub fn dpop_proof_for(&self, key: &SigningKeyPair, method: &str, htu: &str) -> String {
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(key.public_jwk()),
            ..Header::default()
        };
        key.sign_with_header(
            &header,
            &json!({"jti": random_b64url(12), "htm": method, "htu": htu, "iat": self.now_s()}),
        )
        .expect("sign proof")
    }

    /// A DPoP proof for the token endpoint signed by `key`.
    pub fn dpop_proof(&self, key: &SigningKeyPair, htu: &str, jti: &str) -> String {
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(countersign_jose::Jwk {
                kid: None,
                alg: None,
                use_: None,
                ..key.public_jwk()
            }),
            ..Header::default()
        };
        key.sign_with_header(
            &header,
            &json!({"jti": jti, "htm": "POST", "htu": htu, "iat": self.now_s()}),
        )
        .expect("sign proof")
    }
}

pub fn new_human(subject: &str, user_code: Option<&str>) -> NewHuman {
    NewHuman {
        subject: subject.into(),
        email: format!("{subject}@example.com"),
        name: subject.to_uppercase(),
        user_code: user_code.map(str::to_owned),
        department: String::new(),
        title: String::new(),
        role: String::new(),
        manager: None,
    }
}

pub fn new_agent(client_id: &str, owner: &str, method: &str) -> NewAgent {
    NewAgent {
        client_id: client_id.into(),
        name: Some(format!("{client_id} agent")),
        owner: owner.into(),
        auth_method: method.into(),
        jwks: None,
        delivery_mode: None,
        notification_endpoint: None,
        require_signed_request: false,
        user_code_required: false,
        bearer_only: false,
        dpop_jkt: None,
        department: String::new(),
        risk_tier: None,
        description: None,
        tools: None,
        approver: None,
    }
}

impl Agent {
    /// An RFC 7523 client assertion with a fresh `jti`.
    pub fn assertion(&self, aud: &str, now_s: i64) -> String {
        self.assertion_claims(json!({
            "iss": self.client_id, "sub": self.client_id, "aud": aud,
            "iat": now_s, "exp": now_s + 60, "jti": random_b64url(12),
        }))
    }

    pub fn assertion_claims(&self, claims: Value) -> String {
        self.key
            .as_ref()
            .expect("agent has a key")
            .sign("JWT", &claims)
            .expect("sign")
    }
}
