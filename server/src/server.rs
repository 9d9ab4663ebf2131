//! Starting and stopping a server: storage, keys, the HTTP listener and the notification
//! worker. Used by `countersign serve` and, unchanged, by the end-to-end tests.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::{self, EventKind, NewEvent};
use crate::clock::Clock;
use crate::config::Config;
use crate::oidc::keys::{KeyError, KeyRing};
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// Longest a stopping server waits for the gateway's held calls to record their end.
const GATEWAY_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// How long start-up waits for the live channel's LISTEN before serving anyway.
const LISTEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<()>,
    /// The MCP gateway, when enabled: dropping it closes its upstream connections and
    /// stops its stdio children.
    gateway: Option<countersign_gateway::Gateway<crate::gateway::authority::InProcess>>,
    /// Workers and periodic tasks; each ends when told to shut down.
    background: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn base_url(&self) -> String {
        self.state.issuer.to_string()
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the worker and closes
    /// the database pool.
    pub async fn shutdown(self) {
        if let Some(gateway) = &self.gateway {
            gateway.stop();
        }
        let _ = self.shutdown.send(true);
        // Live-channel streams never end on their own; close them so in-flight requests
        // can finish.
        self.state.live.close_all();
        let _ = self.http.await;
        // Held calls' tasks are no requests: they record their end before the store closes.
        if let Some(gateway) = &self.gateway {
            gateway.drain(GATEWAY_DRAIN).await;
        }
        for task in self.background {
            let _ = task.await;
        }
        drop(self.gateway);
        self.state.store.close().await;
    }
}

/// Opens the store (running migrations) and loads or creates the signing keys.
async fn open_parts(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> Result<(Store, KeyRing), StartError> {
    let store = Store::connect(
        &config.database_url,
        config.database_max_connections,
        std::time::Duration::from_millis(config.directory_cache_ttl_ms),
    )
    .await?;
    store.migrate().await?;
    // A retired key stays published while anything it signed can still be valid: the
    // longest a credential can live is what a policy's @validity may set (bounded by
    // policy.max_validity_secs), not the default access-token lifetime; plus clock skew.
    let longest_secs = config
        .tokens
        .access_token_ttl_secs
        .max(config.tokens.id_token_ttl_secs)
        .max(config.policy.max_validity_secs)
        .saturating_add(config.ciba.clock_skew_secs);
    let retention_ms = i64::try_from(longest_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let keys = KeyRing::load_or_create(&config.keys_dir, clock.now_ms(), retention_ms)?;
    Ok((store, keys))
}

/// The state a server would have, without serving: for administrative commands that need
/// the domain services (and the issuer's identity) but no listener.
pub async fn open_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    let (store, keys) = open_parts(&config, &clock).await?;
    AppState::new(config, store, clock, keys).map_err(StartError::Config)
}

/// Records `config.loaded` (actor `system`): the digest of the configuration this server
/// runs with, secrets redacted, so a change between starts shows in the trail.
async fn record_config_loaded(state: &AppState) -> Result<(), StartError> {
    let digest = state
        .config
        .digest()
        .map_err(|e| StartError::Config(format!("the configuration does not serialize: {e}")))?;
    let event = NewEvent {
        actor: "system",
        kind: EventKind::ConfigLoaded,
        subject: "config",
        detail: json!({
            "sha256": digest,
            "version": env!("CARGO_PKG_VERSION"),
            "issuer": &*state.issuer,
            "signing_kid": state.keys.active().kid(),
        }),
    };
    let mut tx = state.store.begin().await?;
    audit::record(&state.store, &mut tx, state.now_ms(), event).await?;
    tx.commit().await?;
    Ok(())
}

/// Opens the store (running migrations), loads or creates keys, binds the listener and
/// starts serving. When no issuer is configured it is `http://` + the bound address, so a
/// port of 0 works.
pub async fn start(mut config: Config, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    crate::http::ops::init_metrics();
    let (store, keys) = open_parts(&config, &clock).await?;
    let listener = bind(&config).await?;
    config.listen = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    // The gateway's upstreams first: their tools' action types are part of the policy
    // schema the state compiles.
    let gateway = connect_gateway(&mut config).await?;
    let state = AppState::new(config, store, clock, keys).map_err(StartError::Config)?;
    if let Err(e) = crate::policy::service::refresh(&state.policy, &state.store).await {
        // The built-in default stays in force; the error names what to fix.
        tracing::error!(error = %e, "the active policy version could not be installed");
    }
    record_config_loaded(&state).await?;
    if state.config.dev_approvals {
        tracing::warn!(
            "DEVELOPER MODE: /dev/approvals lets anyone on this machine approve requests without a human"
        );
    }
    let (shutdown, rx) = watch::channel(false);
    let background = spawn_background(&state, &rx).await;
    let gateway = match gateway {
        Some(prepared) => Some(
            crate::gateway::start(
                Arc::new(state.clone()),
                state.keys.dir(),
                &state.issuer,
                prepared,
            )
            .map_err(|e| StartError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let mut app = crate::http::router(state.clone());
    if let Some(gateway) = &gateway {
        app = app.merge(gateway.router(&state.issuer, gateway_hosts(&state)));
        tracing::info!(url = %crate::paths::gateway_resource(&state.issuer), "MCP gateway serving");
    }
    let http = tokio::spawn(serve(listener, app, rx));
    Ok(Running {
        addr: state.config.listen,
        state,
        shutdown,
        http,
        gateway,
        background,
    })
}

/// Binds the configured listener; developer approvals only on a loopback address (checked
/// on the socket actually bound, not only the configured address).
async fn bind(config: &Config) -> Result<tokio::net::TcpListener, StartError> {
    let listen_error = |source| StartError::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    if config.dev_approvals && !addr.ip().to_canonical().is_loopback() {
        return Err(StartError::Config(format!(
            "dev_approvals: the listener is bound to {addr}; developer approvals need a loopback-only listener"
        )));
    }
    Ok(listener)
}

/// Connects the gateway's upstreams when it is enabled, declaring their tools' action
/// types in `config`.
async fn connect_gateway(
    config: &mut Config,
) -> Result<Option<countersign_gateway::Prepared>, StartError> {
    let gateway = crate::gateway::connect(&config.gateway)
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    if let Some(prepared) = &gateway {
        let declared = &config.authorization_details_types;
        let types = prepared
            .action_types(|t| declared.contains_key(t))
            .map_err(|e| StartError::Config(e.to_string()))?;
        config.declare_gateway_types(types);
    }
    Ok(gateway)
}

/// Starts the workers: client notifications, push alerts, the live channel's listener
/// (waited for, briefly), housekeeping, security-event polling and policy reloads.
async fn spawn_background(state: &AppState, rx: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let worker = tokio::spawn(crate::notifications::run_worker(state.outbox(), rx.clone()));
    let push_worker = tokio::spawn(crate::push::worker::run(state.push_worker(), rx.clone()));
    let live_listener = spawn_live_listener(state, rx).await;
    let housekeeping = tokio::spawn(crate::housekeeping::run(state.housekeeping(), rx.clone()));
    let signal_poller = tokio::spawn(crate::signals::poll::run(
        state.signal_receiver(),
        rx.clone(),
    ));
    let policy_refresh = tokio::spawn(crate::housekeeping::refresh_policy(
        state.policy.clone(),
        state.store.clone(),
        std::time::Duration::from_millis(state.config.policy.reload_interval_ms),
        rx.clone(),
    ));
    vec![
        worker,
        push_worker,
        live_listener,
        housekeeping,
        signal_poller,
        policy_refresh,
    ]
}

/// Listens for live-channel notifications from other replicas. A replica that serves
/// wallets before it LISTENs would not wake them for requests created elsewhere; so this
/// waits (briefly: the listener keeps retrying, and subscribers are told to resync once
/// it is in place).
async fn spawn_live_listener(state: &AppState, rx: &watch::Receiver<bool>) -> JoinHandle<()> {
    let (listening_tx, mut listening_rx) = watch::channel(false);
    let live_listener = tokio::spawn({
        let (store, hub, rx) = (state.store.clone(), state.live.clone(), rx.clone());
        let resync = hub.clone();
        async move {
            let listening = move || {
                resync.resync_all();
                let _ = listening_tx.send(true);
            };
            store
                .listen_live(move |payload| hub.publish_notified(payload), listening, rx)
                .await;
        }
    });
    if tokio::time::timeout(LISTEN_WAIT, listening_rx.wait_for(|ready| *ready))
        .await
        .is_err()
    {
        tracing::warn!("the live channel listener is not connected yet; serving anyway");
    }
    live_listener
}

/// Serves `app` on `listener` until `stop` changes.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = async move {
        let _ = stop.changed().await;
    };
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // No Nagle delay: a streamed response (server-sent events, an MCP result) is
    // written as headers, then body; with Nagle the body waited for the client's
    // delayed ACK, 40 ms per MCP call through the gateway.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
    {
        tracing::error!(error = %e, "HTTP server stopped with an error");
    }
}

/// The `Host` values the MCP gateway answers (DNS-rebinding protection): the issuer's
/// host, and the loopback names when it is served on a loopback address.
fn gateway_hosts(state: &AppState) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some(host) = state
        .issuer
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .filter(|h| !h.is_empty())
    {
        hosts.push(host.to_owned());
    }
    if state.config.listen.ip().is_loopback() || state.config.listen.ip().is_unspecified() {
        hosts.extend(["localhost", "127.0.0.1", "::1"].map(str::to_owned));
    }
    hosts
}
