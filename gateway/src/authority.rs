//! What the gateway asks of Countersign: who the agent is, what the policy decides for a
//! call, an approval when it asks for one, and the trace of what became of the call.
//!
//! The gateway knows nothing of how these are answered: the server implements this trait
//! in-process (`countersign serve` with `[gateway]`), and a remote implementation speaks
//! Countersign's HTTP API with the agent's own client credentials.

use std::future::Future;

use serde_json::Value;

use crate::mapping::Action;

/// The agent a call comes from: its OAuth client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentId(pub String);

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent's call as the policy and the trace see it.
#[derive(Debug, Clone)]
pub struct Call {
    pub agent: AgentId,
    /// The namespaced tool.
    pub tool: String,
    pub action: Action,
    /// The MCP session or task the call belongs to: the policy's `task_id`, so rules over
    /// a session (a confidential read, then an external send) apply.
    pub session: Option<String>,
    /// The JSON-RPC id of the `tools/call`, for the trace.
    pub mcp_request_id: String,
    /// The agent's network address, when the call came over the network.
    pub source_ip: Option<std::net::IpAddr>,
}

/// The policy's answer for a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow {
        decision_id: String,
    },
    Deny {
        decision_id: String,
        reasons: Vec<String>,
    },
    StepUp {
        decision_id: String,
        reasons: Vec<String>,
        /// The humans who may approve (subjects).
        approvers: Vec<String>,
    },
}

/// An approval asked for and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The CIBA request (`auth_req_id`).
    pub auth_req_id: String,
    /// How long until it expires.
    pub expires_in_ms: u64,
    /// How long to wait between polls.
    pub interval_ms: u64,
}

/// Where an approval stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Approval {
    Pending,
    /// Pending, and polled too soon (CIBA `slow_down`): the interval grew by 5 seconds.
    SlowDown,
    /// Approved: the credential, bound to the gateway's key for the agent.
    Granted(Grant),
    Denied {
        reason: Option<String>,
    },
    Expired,
    /// The credential was already handed out (to this gateway, before a restart): the
    /// call may have been forwarded, so it is not forwarded again.
    AlreadyUsed,
}

/// A credential for exactly one approved call.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The access token (a VC-JWT), sent to the upstream as `Authorization: DPoP ...`.
    pub access_token: String,
    /// The `authorization_details` the human approved: what is forwarded.
    pub approved: Vec<Value>,
}

/// Where an approval stands, as the page the agent's user watches shows it: read-only,
/// nothing is handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalView {
    /// The agent that asked.
    pub agent: AgentId,
    pub state: ApprovalState,
    /// The CIBA `binding_message` the approver sees beside the action.
    pub binding_message: Option<String>,
    /// The `authorization_details` asked for.
    pub details: Vec<Value>,
    /// How many humans may answer it.
    pub approvers: usize,
    /// Seconds until it expires (0 once it has).
    pub expires_in_s: i64,
}

/// The answer an approval has, as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    /// Approved; the gateway has not collected the credential yet.
    Approved,
    /// Approved, and the credential was handed to the gateway (once).
    HandedOut,
    Denied,
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::HandedOut => "handed_out",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }
}

/// What finally became of a call, for the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Held for an approval and answered `input_required` (MCP 2026-07-28): the agent
    /// retries with the request state to resume it.
    AwaitingApproval { auth_req_id: String },
    /// Forwarded; the upstream answered (`is_error` says whether the tool failed).
    Forwarded { is_error: bool },
    /// Not answered by the upstream (unreachable, timed out, protocol error).
    UpstreamFailed { reason: String },
    /// Denied by the policy or the human, expired, or ended by the agent.
    Stopped { reason: String },
}

impl Fate {
    /// The trace's and the metrics' name for it.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::AwaitingApproval { .. } => "awaiting_approval",
            Self::Forwarded { is_error: false } => "forwarded",
            Self::Forwarded { is_error: true } => "forwarded_tool_error",
            Self::UpstreamFailed { .. } => "upstream_failed",
            Self::Stopped { .. } => "stopped",
        }
    }

    /// Why it ended so, when it did not simply run.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::UpstreamFailed { reason } | Self::Stopped { reason } => Some(reason),
            Self::AwaitingApproval { .. } | Self::Forwarded { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// The request to decide was refused as malformed (the agent can fix it).
    #[error("{0}")]
    Invalid(String),
    /// The agent may not act (disabled, suspended, unknown).
    #[error("{0}")]
    Unauthorized(String),
    /// Countersign could not answer (storage down, network): retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// The bearer credential an HTTP request came with.
#[derive(Debug, Clone)]
pub struct PresentedToken<'a> {
    /// `Bearer` or `DPoP`.
    pub scheme: &'a str,
    pub token: &'a str,
    /// The `DPoP` header, for a DPoP-bound token.
    pub dpop_proof: Option<&'a str>,
    /// The request's method and URL, which a DPoP proof must name.
    pub method: &'a str,
    pub url: &'a str,
}

/// Why a presented token was refused (RFC 6750 §3.1 / RFC 9449 §7.1 error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    InvalidDpopProof(String),
    #[error("{0}")]
    Unavailable(String),
    /// The agent is over its rate limit: retry after this many seconds.
    #[error("over the rate limit; retry in {0} s")]
    RateLimited(u64),
}

/// Countersign, as the gateway sees it.
pub trait Authority: Send + Sync + 'static {
    /// The agent an access token for the gateway names (HTTP transport).
    fn authenticate(
        &self,
        token: PresentedToken<'_>,
    ) -> impl Future<Output = Result<AgentId, TokenRefused>> + Send;

    /// The policy's decision for a call, traced.
    fn decide(&self, call: &Call) -> impl Future<Output = Result<Verdict, AuthorityError>> + Send;

    /// Whether a tool's action can be allowed for the agent at all (a dry run with no
    /// arguments, not traced): tools it cannot are hidden from `tools/list`.
    fn may_offer(
        &self,
        agent: &AgentId,
        tool: &str,
        action: &Action,
    ) -> impl Future<Output = Result<bool, AuthorityError>> + Send;

    /// Asks the human the policy routes to, over CIBA, as the agent; the credential will
    /// be bound to the gateway's key for the agent.
    fn request_approval(
        &self,
        call: &Call,
        binding_message: &str,
    ) -> impl Future<Output = Result<Pending, AuthorityError>> + Send;

    /// Where the approval stands; once granted, the credential (handed out once).
    fn poll(
        &self,
        agent: &AgentId,
        auth_req_id: &str,
    ) -> impl Future<Output = Result<Approval, AuthorityError>> + Send;

    /// Ends an approval the agent no longer wants (its user cancelled the held call): the
    /// approver is no longer asked, and the request can no longer be resumed.
    fn withdraw(
        &self,
        agent: &AgentId,
        auth_req_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), AuthorityError>> + Send;

    /// Where an approval the gateway asked for stands, for the page the agent's user
    /// watches (`None`: no such request). Read-only: polling is [`Authority::poll`]'s.
    fn approval_status(
        &self,
        auth_req_id: &str,
    ) -> impl Future<Output = Result<Option<ApprovalView>, AuthorityError>> + Send;

    /// A DPoP proof (RFC 9449) by the gateway's key for the agent, for a request to
    /// `url` carrying `access_token`.
    fn dpop_proof(
        &self,
        agent: &AgentId,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> Result<String, AuthorityError>;

    /// Records what became of a call, with its MCP request id.
    fn record(
        &self,
        call: &Call,
        decision_id: Option<&str>,
        fate: &Fate,
    ) -> impl Future<Output = Result<(), AuthorityError>> + Send;
}
