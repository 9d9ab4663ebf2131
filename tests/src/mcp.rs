//! The MCP gateway's test rig: a Countersign server with the gateway in front of a small
//! shop written with the official Python MCP SDK (`tests/interop/mcp/upstream.py`), an
//! agent registered for it with its identity token, and the official Python and
//! TypeScript MCP clients (`client.py`, `client.mjs`) driven as agents would use them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_gateway::{ToolMapping, UpstreamConfig};
use countersign_server::config::{Config, ToolConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use countersign_shared::approval::DecisionKind;

use crate::idp::free_port;
use crate::tools::python;
use crate::wallets::TestWallet;
use crate::{Agent, Db, TestServer, new_agent};

/// The shop's policy: the catalogue and small orders pass; orders from 1,000 need the
/// owner; nothing external after a confidential read in the same session; nothing
/// destructive.
pub const POLICY: &str = r#"
@id("catalog")
permit (principal, action == Action::"shop_get_catalog", resource);

@id("small-orders")
@reason("orders under 1,000 pass")
permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount < 1000 };

@id("large-orders")
@step_up
@approver("owner")
@validity("PT5M")
@reason("orders of 1,000 or more need the owner's approval")
permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount >= 1000 };

@id("customer-records")
permit (principal, action == Action::"read_customer", resource);

@id("email")
permit (principal, action == Action::"send_email", resource);

@id("no-exfiltration")
@reason("nothing leaves the company after confidential data was read in the same session")
forbid (principal, action in Action::"external", resource)
when { context.session.classifications.contains("confidential") };

@id("no-destruction")
@reason("destructive actions are never allowed to agents")
forbid (principal, action in Action::"destructive", resource);
"#;

fn interop(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop/mcp")
        .join(file)
}

/// The Python upstream, killed when dropped.
pub struct Upstream {
    _child: Child,
    pub url: String,
    log: PathBuf,
}

impl Upstream {
    /// Starts the shop on a free port; it verifies credentials against `issuer`.
    pub async fn start(issuer: &str, dir: &Path) -> Self {
        let port = free_port();
        let log = dir.join("upstream-calls.jsonl");
        let child = Command::new(python())
            .arg(interop("upstream.py"))
            .arg(port.to_string())
            .env("COUNTERSIGN_ISSUER", issuer)
            .env("MCP_UPSTREAM_LOG", &log)
            .kill_on_drop(true)
            .spawn()
            .expect("the Python MCP upstream starts (scripts/test.sh installs mcp)");
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    _child: child,
                    url: format!("http://127.0.0.1:{port}/mcp"),
                    log,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the Python MCP upstream did not listen on {port} within 30 s");
    }

    /// The calls the shop's tools executed, in order.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Calls `place_order` directly with the credential and proof `logged` carried, and
    /// other `arguments`: what a thief of both could try.
    pub async fn replay(&self, logged: &Value, arguments: Value) -> Value {
        let headers = json!({
            "Authorization": logged["authorization"],
            "DPoP": logged["dpop"],
        });
        let mut results = run(
            Sdk::Python,
            &self.url,
            &headers.to_string(),
            json!([call("place_order", arguments)]),
        )
        .await;
        results.remove(0)
    }

    /// The executed calls of `tool`.
    pub fn calls_of(&self, tool: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["tool"] == tool)
            .collect()
    }
}

/// Configures the gateway in front of `upstream` as the shop's deployment does.
pub fn configure(c: &mut Config, upstream_url: &str) {
    configure_gateway(c, upstream_url);
    configure_policy(c);
}

/// The gateway's part of [`configure`]: the shop upstream and its tools' mapping.
fn configure_gateway(c: &mut Config, upstream_url: &str) {
    c.gateway.enabled = true;
    c.gateway.progress_interval_ms = 200;
    // A 2026-07-28 client's retry answers again after this long (tests see the rounds).
    c.gateway.retry_hold_secs = 5;
    c.gateway.upstreams.insert(
        "shop".into(),
        UpstreamConfig {
            url: Some(upstream_url.to_owned()),
            command: None,
            env: Default::default(),
            headers: Default::default(),
        },
    );
    let mapping = |kind: &str, resource: Option<&str>| ToolMapping {
        kind: Some(kind.into()),
        resource: resource.map(str::to_owned),
        ..ToolMapping::default()
    };
    c.gateway.tools.insert(
        "shop.place_order".into(),
        mapping("purchase_order", Some("shop")),
    );
    c.gateway.tools.insert(
        "shop.read_customer".into(),
        mapping("read_customer", Some("crm")),
    );
    c.gateway.tools.insert(
        "shop.send_email".into(),
        mapping("send_email", Some("mail")),
    );
    c.gateway
        .tools
        .insert("shop.drop_database".into(), mapping("drop_database", None));
}

/// The policy's part of [`configure`]: the classes of the shop's actions and the tools
/// they act on (what the server needs whether the gateway runs in it or elsewhere).
pub fn configure_policy(c: &mut Config) {
    for (action, class) in [
        ("send_email", "external"),
        ("drop_database", "destructive"),
        ("read_customer", "read"),
    ] {
        c.policy.actions.insert(action.into(), class.into());
    }
    let tool = |classification: &str, category: &str| ToolConfig {
        risk_level: "medium".into(),
        data_classification: classification.into(),
        category: category.into(),
        locations: Vec::new(),
    };
    c.policy
        .tools
        .insert("crm".into(), tool("confidential", "crm"));
    c.policy
        .tools
        .insert("mail".into(), tool("public", "email"));
    c.policy
        .tools
        .insert("shop".into(), tool("internal", "erp"));
}

/// Enables the gateway in front of the shop run as a stdio child process (no port, no
/// credential checks): for tests of the gateway's HTTP surface rather than its calls.
pub fn configure_stdio(c: &mut Config) {
    c.gateway.enabled = true;
    c.gateway.upstreams.insert(
        "shop".into(),
        UpstreamConfig {
            url: None,
            command: Some(vec![
                python(),
                interop("upstream.py").display().to_string(),
                "stdio".into(),
            ]),
            env: Default::default(),
            headers: Default::default(),
        },
    );
}

/// A server on a port chosen first (the upstream must know the issuer before the
/// server connects to it), the shop in front, Alice and her shopping agent.
pub struct Rig {
    pub server: TestServer,
    pub upstream: Upstream,
    pub agent: Agent,
    _dir: tempfile::TempDir,
}

impl Rig {
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, |_| {}).await
    }

    /// [`Rig::start`] with `tweak` applied to the server's configuration last.
    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let upstream = Upstream::start(&issuer, dir.path()).await;
        let url = upstream.url.clone();
        let server = TestServer::start_with(db, move |c| {
            c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            configure(c, &url);
            tweak(c);
        })
        .await;
        // The upstream checks proofs against the real time; the CIBA interval too.
        server.clock.follow_system_time();
        server.human("alice").await;
        server.install_policy(POLICY).await;
        let mut new = new_agent("shopper", "alice", "client_secret_basic");
        // Standard MCP clients send bearer tokens; the approved calls' credentials are
        // bound to the gateway's key for the agent all the same.
        new.bearer_only = true;
        let agent = server.agent_with(new, false).await;
        Self {
            server,
            upstream,
            agent,
            _dir: dir,
        }
    }

    pub fn mcp_url(&self) -> String {
        self.server.url("/mcp")
    }

    /// An MCP client of `sdk` running `steps` as the rig's agent, with its own token and
    /// the environment variables `env` (`CS_MCP_MODE`...).
    pub async fn client(&self, sdk: Sdk, steps: &Value, env: &[(&str, &str)]) -> ClientRun {
        let token = self.token().await;
        ClientRun::start_with_env(sdk, &self.mcp_url(), &token, steps, env)
    }

    /// The agent's identity token for the gateway (`client_credentials`).
    pub async fn token(&self) -> String {
        self.token_of(&self.agent).await
    }

    /// Another agent's identity token for the gateway.
    pub async fn token_of(&self, agent: &Agent) -> String {
        let resource = self.mcp_url();
        let (status, body) = self
            .server
            .post_as(
                agent,
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", resource.as_str()),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }
}

/// Waits until the wallet shows exactly one pending request, checks what it shows, and
/// returns its id.
pub async fn held_request(wallet: &TestWallet, vendor: &str, amount: f64) -> String {
    for _ in 0..150 {
        let pending = wallet.run(|w| w.pending()).await.unwrap();
        if let Some(first) = pending.first() {
            assert_eq!(pending.len(), 1, "one held call, one request");
            let id = first.id.clone();
            let shown = wallet
                .run({
                    let id = id.clone();
                    move |w| w.show(&id)
                })
                .await
                .unwrap();
            let details = shown.transaction.authorization_details.clone().unwrap();
            assert_eq!(details[0]["vendor"], vendor, "{details}");
            assert_eq!(details[0]["amount"].as_f64(), Some(amount), "{details}");
            assert_eq!(details[0]["arguments"]["vendor"], vendor, "{details}");
            assert_eq!(
                shown.transaction.binding_message.as_deref(),
                Some("MCP call shop.place_order")
            );
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no request reached the wallet");
}

pub async fn decide(wallet: &TestWallet, id: &str, kind: DecisionKind) {
    let id = id.to_owned();
    wallet
        .run(move |w| w.decide(&id, kind, None))
        .await
        .unwrap();
}

/// The `gateway.call` trace events' details, oldest first, once `ready` holds of them
/// (or after 5 s): the record of a forwarded call is committed just after its answer
/// went out.
pub async fn gateway_calls(server: &TestServer, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut details = Vec::new();
    for _ in 0..100 {
        let mut events = server
            .state()
            .store
            .audit_events_of_kind("gateway.call", 0, 1000)
            .await
            .expect("read the trace");
        events.reverse();
        details = events
            .iter()
            .map(|e| serde_json::from_str(&e.detail).expect("a JSON detail"))
            .collect();
        if ready(&details) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    details
}

/// One MCP client process running a list of steps; its output lines are read as they
/// come.
pub struct ClientRun {
    child: Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

/// Which official SDK drives the gateway.
#[derive(Debug, Clone, Copy)]
pub enum Sdk {
    Python,
    TypeScript,
}

impl ClientRun {
    pub fn start(sdk: Sdk, url: &str, token: &str, steps: &Value) -> Self {
        Self::start_with_env(sdk, url, token, steps, &[])
    }

    /// The Python SDK's client running `steps` against the MCP server it starts as a
    /// child process with `command` (a JSON array), over stdio.
    pub fn start_stdio(command: &Value, steps: &Value, env: &[(&str, &str)]) -> Self {
        let mut client = Command::new(python());
        client
            .arg(interop("client.py"))
            .arg("--stdio")
            .arg(command.to_string())
            .arg(steps.to_string())
            .envs(env.iter().copied());
        Self::spawn(client)
    }

    /// [`ClientRun::start`] with environment variables for the client (`CS_MCP_MODE`...).
    pub fn start_with_env(
        sdk: Sdk,
        url: &str,
        token: &str,
        steps: &Value,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = match sdk {
            Sdk::Python => {
                let mut c = Command::new(python());
                c.arg(interop("client.py"));
                c
            }
            Sdk::TypeScript => {
                let mut c = Command::new("node");
                c.arg(interop("client.mjs"));
                c
            }
        };
        command
            .envs(env.iter().copied())
            .arg(url)
            .arg(token)
            .arg(steps.to_string());
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the MCP client starts");
        let stdout = child.stdout.take().expect("stdout");
        Self {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        }
    }

    /// The next step's result.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), self.lines.next_line())
            .await
            .expect("the MCP client answered in time")
            .expect("read the client's output")
            .expect("the client printed a result (see its stderr above)");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Waits for the client to exit.
    pub async fn finish(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the MCP client exits")
            .expect("wait")
    }
}

/// Runs `steps` to the end and returns every result.
pub async fn run(sdk: Sdk, url: &str, token: &str, steps: Value) -> Vec<Value> {
    run_with_env(sdk, url, token, steps, &[]).await
}

/// [`run`] with environment variables for the client.
pub async fn run_with_env(
    sdk: Sdk,
    url: &str,
    token: &str,
    steps: Value,
    env: &[(&str, &str)],
) -> Vec<Value> {
    let count = steps.as_array().map_or(0, Vec::len);
    let mut client = ClientRun::start_with_env(sdk, url, token, &steps, env);
    let mut results = Vec::new();
    for _ in 0..count {
        results.push(client.next().await);
    }
    let status = client.finish().await;
    assert!(status.success(), "the MCP client failed: {status}");
    results
}

/// A `tools/call` step.
pub fn call(tool: &str, arguments: Value) -> Value {
    json!({"op": "call", "tool": tool, "arguments": arguments})
}
