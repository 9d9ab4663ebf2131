//! The gateway over Streamable HTTP: an OAuth 2.1 protected resource as MCP's
//! authorization spec requires. Unauthenticated requests get `401` with
//! `WWW-Authenticate` naming the protected-resource metadata (RFC 9728), which names
//! Countersign as the authorization server; agents get their access token there with the
//! `client_credentials` grant. Beside it, unauthenticated, the pages where an agent's
//! user watches a held call's approval (their links are signed; see [`crate::resume`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use crate::approval_page;
use crate::authority::{AgentId, Authority, PresentedToken, TokenRefused};
use crate::resume::APPROVAL_PAGE_PATH;
use crate::service::{Caller, GatewayService, Shared};

/// Where the gateway serves MCP, under the server's base URL.
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728 §3.1: the metadata of resource `{base}/mcp` is at this path.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// Most MCP sessions remembered with their agent; beyond it the oldest are forgotten
/// (their agents start a new session).
const MAX_SESSIONS: usize = 100_000;

struct Edge<A> {
    shared: Arc<Shared<A>>,
    /// Which agent opened each MCP session: a session id is no credential, so another
    /// agent presenting it (to read its stream or act in its name) is refused.
    sessions: std::sync::Mutex<SessionOwners>,
    /// The resource identifier (`{issuer}/mcp`): the access token's audience and the URL
    /// DPoP proofs name.
    resource: String,
    issuer: String,
}

/// The routes of the gateway: MCP at [`MCP_PATH`] and its metadata at [`METADATA_PATH`].
/// `allowed_hosts` are the `Host` values accepted (DNS-rebinding protection).
pub fn router<A: Authority>(
    shared: Arc<Shared<A>>,
    issuer: &str,
    allowed_hosts: Vec<String>,
) -> Router {
    let issuer = issuer.trim_end_matches('/').to_owned();
    let edge = Arc::new(Edge {
        shared: shared.clone(),
        sessions: std::sync::Mutex::default(),
        resource: format!("{issuer}{MCP_PATH}"),
        issuer,
    });
    let mut config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // A 2026-07-28 call answered at once (allowed, denied, `input_required`) goes back
        // as one JSON body; one that sends progress first still streams. An event stream
        // per call cost a spawned task, a keep-alive timer and the framing on every call.
        // (Sessions of older clients are unaffected.)
        .with_json_response(true)
        .with_allowed_hosts(allowed_hosts)
        .with_cancellation_token(shared.stopping.child_token());
    config.max_request_body_bytes = 256 * 1024;
    // A session must outlive the longest hold: a client that asked for no progress sends
    // nothing while its call waits.
    let mut sessions = LocalSessionManager::default();
    let hold = Duration::from_secs(shared.config.hold_timeout_secs);
    sessions.session_config.keep_alive =
        Some(hold.max(Duration::from_secs(240)) + Duration::from_secs(60));
    let pages = Router::new()
        .route(
            &format!("{APPROVAL_PAGE_PATH}/{{handle}}"),
            get(approval_page::show::<A>),
        )
        .with_state(shared.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(GatewayService::new(shared.clone())),
        Arc::new(sessions),
        config,
    );
    let protected =
        Router::new()
            .nest_service(MCP_PATH, mcp)
            .layer(middleware::from_fn_with_state(
                edge.clone(),
                authenticate::<A>,
            ));
    Router::new()
        .route(METADATA_PATH, get(metadata::<A>))
        .with_state(edge)
        .merge(protected)
        .merge(pages)
}

async fn metadata<A: Authority>(State(edge): State<Arc<Edge<A>>>) -> Response {
    axum::Json(json!({
        "resource": edge.resource,
        "authorization_servers": [edge.issuer],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "resource_name": "Countersign MCP gateway",
    }))
    .into_response()
}

fn challenge<A>(edge: &Edge<A>, refused: Option<&TokenRefused>) -> Response {
    let metadata = format!("resource_metadata=\"{}{METADATA_PATH}\"", edge.issuer);
    let (status, value) = match refused {
        None => (StatusCode::UNAUTHORIZED, format!("Bearer {metadata}")),
        Some(TokenRefused::InvalidToken(why)) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", {metadata}",
                quoted(why)
            ),
        ),
        Some(TokenRefused::InvalidDpopProof(why)) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "DPoP error=\"invalid_dpop_proof\", error_description=\"{}\", algs=\"ES256\", {metadata}",
                quoted(why)
            ),
        ),
        Some(TokenRefused::RateLimited(secs)) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "this agent is over its rate limit (rate_limits.per_client_per_sec)",
            )
                .into_response();
            if let Ok(v) = HeaderValue::try_from(secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        Some(TokenRefused::Unavailable(why)) => {
            tracing::warn!(error = %why, "the gateway could not check an access token");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                "the access token cannot be checked now",
            )
                .into_response();
        }
    };
    let mut response = (status, "").into_response();
    if let Ok(v) = HeaderValue::try_from(value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// A quoted-string's content (RFC 9110 §5.6.4), printable ASCII only.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .take(200)
        .collect()
}

fn presented<'a>(
    headers: &'a HeaderMap,
    method: &'a str,
    url: &'a str,
) -> Option<PresentedToken<'a>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        "Bearer"
    } else if scheme.eq_ignore_ascii_case("dpop") {
        "DPoP"
    } else {
        return None;
    };
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    let dpop_proof = headers.get("dpop").and_then(|v| v.to_str().ok());
    Some(PresentedToken {
        scheme,
        token,
        dpop_proof,
        method,
        url,
    })
}

async fn authenticate<A: Authority>(
    State(edge): State<Arc<Edge<A>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let source_ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if request.headers().get_all("dpop").iter().count() > 1 {
        // RFC 9449 §4.3: exactly one proof.
        let refused = TokenRefused::InvalidDpopProof("more than one DPoP header".into());
        return challenge(&edge, Some(&refused));
    }
    let Some(token) = presented(request.headers(), &method, &edge.resource) else {
        return challenge(&edge, None);
    };
    let agent = match edge.shared.authority.authenticate(token.clone()).await {
        Ok(agent) => agent,
        Err(refused) => return challenge(&edge, Some(&refused)),
    };
    // Calls that come with no MCP session of their own belong to the token's session.
    let fallback_session = format!(
        "token:{}",
        countersign_jose::b64url_encode(&countersign_jose::sha256(token.token.as_bytes())[..12])
    );
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session {
        let owner = edge.owners().owner(session).cloned();
        if owner.as_ref() != Some(&agent) {
            // Another agent's session answers as an unknown one does (MCP Streamable
            // HTTP: 404, start a new session), so nothing tells the caller it exists.
            return (StatusCode::NOT_FOUND, "no such session").into_response();
        }
    }
    request.extensions_mut().insert(Caller {
        agent: agent.clone(),
        fallback_session,
        source_ip,
    });
    let response = next.run(request).await;
    if session.is_none()
        && let Some(opened) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        edge.owners().insert(opened.to_owned(), agent);
    }
    response
}

/// MCP session ids and the agents that opened them. Each agent keeps its newest
/// [`SESSIONS_PER_AGENT`]: one agent opening sessions forgets only its own old ones.
#[derive(Default)]
struct SessionOwners {
    owners: std::collections::HashMap<String, AgentId>,
    by_agent: std::collections::HashMap<AgentId, std::collections::VecDeque<String>>,
}

/// Sessions remembered per agent.
const SESSIONS_PER_AGENT: usize = 256;

impl SessionOwners {
    fn owner(&self, session: &str) -> Option<&AgentId> {
        self.owners.get(session)
    }

    fn insert(&mut self, session: String, agent: AgentId) {
        if self.owners.len() >= MAX_SESSIONS {
            // A backstop against many agents at once: start over (sessions answer 404
            // and their agents open new ones).
            self.owners.clear();
            self.by_agent.clear();
        }
        let own = self.by_agent.entry(agent.clone()).or_default();
        if own.len() >= SESSIONS_PER_AGENT
            && let Some(oldest) = own.pop_front()
        {
            self.owners.remove(&oldest);
        }
        own.push_back(session.clone());
        self.owners.insert(session, agent);
    }
}

impl<A> Edge<A> {
    fn owners(&self) -> std::sync::MutexGuard<'_, SessionOwners> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
