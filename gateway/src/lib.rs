//! The Countersign MCP gateway: governs any agent's tool calls without changing the
//! agent. It stands in front of MCP servers (Streamable HTTP or stdio children), shows
//! each agent the tools it may use, and decides every `tools/call` with Countersign:
//! forwarded when allowed, refused with the policy's reason when denied, and held until
//! a human approves it on their phone when the policy asks for a step-up, then
//! forwarded with exactly the approved arguments and the credential that proves it.
//!
//! The decision is not made here: an [`Authority`] answers it (the server in-process, or
//! over HTTP).

mod approval_page;
pub mod authority;
pub mod config;
mod hold;
pub mod http;
pub mod mapping;
pub mod resume;
pub mod secrets;
mod service;
mod tasks;
pub mod upstream;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub use authority::{
    AgentId, Approval, ApprovalState, ApprovalView, Authority, AuthorityError, Call, Fate, Grant,
    Pending, PresentedToken, TokenRefused, Verdict,
};
pub use config::{GatewayConfig, InvalidKey, ToolMapping, UpstreamConfig};
pub use resume::Resumption;
pub use secrets::{Secrets, SecretsError};
pub use service::{Caller, GatewayService, Shared};
pub use upstream::{CREDENTIAL_META, UpstreamError, Upstreams};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] InvalidKey),
    #[error("gateway secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// A gateway connected to its upstreams, not yet serving: what its tools' action types
/// are is known (the server declares them before it builds its policy schema).
pub struct Prepared {
    config: GatewayConfig,
    upstreams: Upstreams,
}

/// Makes ring the process's TLS provider (what the rest of Countersign uses): rmcp's
/// HTTP client uses rustls without choosing one. Idempotent.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How long a stdio gateway whose agent went away waits for its calls under way.
const STDIO_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Validates `config`, reads its secrets and connects to every upstream.
pub async fn connect(config: GatewayConfig) -> Result<Prepared, GatewayError> {
    config.validate()?;
    init_tls();
    let secrets = Secrets::load(config.secrets_file.as_deref(), std::env::vars())?;
    if let Some((key, name)) = config
        .secret_references()
        .into_iter()
        .find(|(_, name)| secrets.get(name).is_none())
    {
        return Err(InvalidKey {
            key,
            reason: format!(
                "secret {name:?} is not in gateway.secrets_file nor in {}{}",
                secrets::ENV_PREFIX,
                name.to_ascii_uppercase()
            ),
        }
        .into());
    }
    let upstreams = Upstreams::connect(
        &config.upstreams,
        &secrets,
        Duration::from_millis(config.upstream_timeout_ms),
    )
    .await?;
    Ok(Prepared { config, upstreams })
}

impl Prepared {
    /// The `authorization_details` type of every tool behind the gateway. Refused: two
    /// tools whose default types are the same (`a.b_c` and `a_b.c`), and a default type
    /// that `declared` already knows (an upstream naming a tool `order` under `purchase`
    /// must not inherit `purchase_order`'s rules): the mapping must name those.
    pub fn action_types(
        &self,
        declared: impl Fn(&str) -> bool,
    ) -> Result<BTreeSet<String>, InvalidKey> {
        let mut types = BTreeSet::new();
        let mut defaults: std::collections::BTreeMap<String, String> = Default::default();
        for upstream in self.upstreams.iter() {
            for tool in &upstream.tools {
                let name = format!(
                    "{}{}{}",
                    upstream.name,
                    config::NAMESPACE_SEPARATOR,
                    tool.name
                );
                let mapping = self.config.tools.get(&name);
                let kind = mapping::type_of(&name, mapping);
                if mapping.and_then(|m| m.kind.as_ref()).is_none() {
                    let clash = |why: String| InvalidKey {
                        key: format!("gateway.tools.\"{name}\".type"),
                        reason: format!("{why}; name this tool's type in its mapping"),
                    };
                    if declared(&kind) {
                        return Err(clash(format!(
                            "its default type {kind:?} is already an authorization_details type"
                        )));
                    }
                    if let Some(other) = defaults.insert(kind.clone(), name.clone()) {
                        return Err(clash(format!(
                            "{other} and {name} would both have the type {kind:?}"
                        )));
                    }
                }
                types.insert(kind);
            }
        }
        Ok(types)
    }

    /// Serves with `authority` deciding; `resumption` seals what 2026-07-28 clients
    /// echo back when a call is held.
    pub fn start<A: Authority>(self, authority: A, resumption: Resumption) -> Gateway<A> {
        let tasks = tasks::HeldTasks::new(self.config.max_held_tasks);
        Gateway {
            shared: Arc::new(Shared {
                authority,
                upstreams: self.upstreams,
                config: self.config,
                resumption,
                stopping: tokio_util::sync::CancellationToken::new(),
                calls: tokio_util::task::TaskTracker::new(),
                tasks,
            }),
        }
    }
}

/// A running gateway: its upstream connections and its authority.
pub struct Gateway<A> {
    shared: Arc<Shared<A>>,
}

impl<A: Authority> Gateway<A> {
    /// The HTTP routes (MCP and its protected-resource metadata) for a gateway whose
    /// authorization server is `issuer`.
    pub fn router(&self, issuer: &str, allowed_hosts: Vec<String>) -> axum::Router {
        http::router(self.shared.clone(), issuer, allowed_hosts)
    }

    /// Serves one agent over stdin and stdout until the agent closes them.
    pub async fn serve_stdio(&self, caller: Caller) -> Result<(), GatewayError> {
        use rmcp::ServiceExt;
        let service = GatewayService::for_agent(self.shared.clone(), caller);
        let running =
            service
                .serve(rmcp::transport::stdio())
                .await
                .map_err(|e| UpstreamError::Call {
                    upstream: "stdio".into(),
                    reason: e.to_string(),
                })?;
        let _ = running.waiting().await;
        // Nobody will collect the tasks of the agent that left: their approvals are
        // withdrawn as a cancelled call's are.
        self.shared.tasks.cancel_all();
        // The agent closed the pipe, and rmcp cancelled its requests still under way
        // (held calls end unforwarded, their approvals withdrawn). Each finishes what it
        // owes the trace, which a gateway beside the agent sends over the network,
        // before the process may exit.
        self.drain(STDIO_DRAIN).await;
        Ok(())
    }

    /// Waits, at most `within`, for the calls and held calls' tasks under way to finish
    /// what they owe the trace (after [`Gateway::stop`], they end at once).
    pub async fn drain(&self, within: std::time::Duration) {
        self.shared.calls.close();
        if tokio::time::timeout(within, self.shared.calls.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = self.shared.calls.len(),
                "calls still under way when the gateway stops"
            );
        }
    }

    /// Ends every held call (each is recorded as stopped, none is forwarded) and closes
    /// the MCP sessions, so the HTTP server can stop.
    pub fn stop(&self) {
        self.shared.stopping.cancel();
    }

    pub fn authority(&self) -> &A {
        &self.shared.authority
    }
}
