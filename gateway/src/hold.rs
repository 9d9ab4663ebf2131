//! Holding a call for a human's approval.
//!
//! The states, each named in the trace: `held` (an approval was asked for: a CIBA request
//! exists, routed to the policy's approvers), then one of `approved` (the credential was
//! handed to the gateway, once), `denied`, `expired` or `stopped` (the agent cancelled).
//! Approved calls are forwarded with exactly the arguments the human approved.
//!
//! What survives a restart is what Countersign stores: the CIBA request and the
//! one-time hand-out of its credential. A gateway that restarts while holding a call
//! loses the agent's connection; the human's later approval is never forwarded by it,
//! and a credential already handed out is never handed out again, so no call is
//! forwarded twice.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolResponse, InputRequiredResult, InputResponses, JsonObject, ProgressNotificationParam,
    ProgressToken, ProtocolVersion,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer};
use tokio_util::sync::CancellationToken;

use crate::authority::{Approval, Authority, AuthorityError, Call, Fate, Grant, Pending};
use crate::mapping;
use crate::resume::{self, HeldState, StateRefused};
use crate::service::{Shared, finish, record, tool_error};
use crate::tasks;
use crate::upstream::Upstream;

/// A call the policy held, and who may approve it.
pub struct Held<'a> {
    pub call: &'a Call,
    /// The arguments the agent sent (what a 2026-07-28 retry must send again).
    pub arguments: &'a JsonObject,
    pub decision_id: &'a str,
    pub approvers: &'a [String],
}

/// A call counted as held (`countersign_gateway_held_calls`) until dropped, when its
/// wait is recorded (`countersign_gateway_hold_seconds`), however the hold ended.
pub(crate) struct HeldMetric(tokio::time::Instant);

impl HeldMetric {
    pub(crate) fn start() -> Self {
        metrics::gauge!("countersign_gateway_held_calls").increment(1.0);
        Self(tokio::time::Instant::now())
    }
}

impl Drop for HeldMetric {
    fn drop(&mut self) {
        metrics::gauge!("countersign_gateway_held_calls").decrement(1.0);
        metrics::histogram!("countersign_gateway_hold_seconds")
            .record(self.0.elapsed().as_secs_f64());
    }
}

/// The text a human sees in their wallet beside the action (CIBA `binding_message`).
/// Only printable ASCII of the tool's name (the upstream names its tools), at most 64
/// characters, so the message passes the server's checks for invisible characters.
fn binding_message(call: &Call) -> String {
    let tool: String = call
        .tool
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    format!("MCP call {tool}")
}

/// Asks for the approval of a held call; then, for a client that declared the tasks
/// extension, answers with a task at once (see [`crate::tasks`]); for another 2026-07-28
/// client, answers `input_required` at once (its retry resumes the approval, see
/// [`resume()`]); and for an older one holds the request, with progress notifications,
/// until the approval is answered: forwarded when approved, ended with a tool error
/// saying why otherwise.
pub async fn run<A: Authority>(
    shared: &Arc<Shared<A>>,
    upstream: &Upstream,
    tool: &str,
    held: Held<'_>,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let authority = &shared.authority;
    // A client that polls tasks gets one, while its agent has room for another (each
    // asks a human: a flood of calls must not become a flood of requests).
    let slot = match declares_tasks(ctx).then(|| shared.tasks.reserve(&held.call.agent)) {
        None => None,
        Some(Some(slot)) => Some(slot),
        Some(None) => return stop(authority, &held, TOO_MANY_TASKS.into()).await,
    };
    let pending = match authority
        .request_approval(held.call, &binding_message(held.call))
        .await
    {
        Ok(pending) => pending,
        Err(e) => {
            return stop(
                authority,
                &held,
                format!("approval could not be requested: {e}"),
            )
            .await;
        }
    };
    tracing::info!(tool = %held.call.tool, agent = %held.call.agent, auth_req_id = %pending.auth_req_id, "call held for approval");
    let message = waiting_message(held.approvers, &pending.auth_req_id);
    if let Some(slot) = slot {
        return tasks::hold_as_task(shared, upstream, tool, &held, &pending, message, slot).await;
    }
    if speaks_input_required(ctx) {
        let state = HeldState::new(&pending, held.decision_id);
        let fate = Fate::AwaitingApproval {
            auth_req_id: pending.auth_req_id.clone(),
        };
        record(authority, held.call, Some(held.decision_id), &fate).await?;
        let result = shared.resumption.input_required(
            held.call,
            held.arguments,
            &state,
            format!("This call is {message}. Watch it on the page; retry the call to resume it."),
            can_open_urls(ctx),
        );
        return Ok(result.into());
    }
    let _held = HeldMetric::start();
    let watch = Watch {
        auth_req_id: &pending.auth_req_id,
        interval_ms: pending.interval_ms,
        hold: hold_for(shared, &pending),
        message,
    };
    let waited = wait(shared, held.call, &watch, &Listener::request(ctx)).await;
    conclude(shared, upstream, tool, &held, &pending.auth_req_id, waited).await
}

/// How long a call is held for `pending`: the gateway's limit, at most the request's
/// own expiry.
pub(crate) fn hold_for<A>(shared: &Shared<A>, pending: &Pending) -> Duration {
    let hold_ms = shared.config.hold_timeout_secs.saturating_mul(1000);
    Duration::from_millis(pending.expires_in_ms.min(hold_ms))
}

/// Ends a held call as its wait ended: forwarded when approved, else a tool error (or,
/// when the agent or the gateway went away, a JSON-RPC error) saying why, traced.
pub(crate) async fn conclude<A: Authority>(
    shared: &Shared<A>,
    upstream: &Upstream,
    tool: &str,
    held: &Held<'_>,
    auth_req_id: &str,
    waited: Waited,
) -> Result<CallToolResponse, ErrorData> {
    let authority = &shared.authority;
    match waited {
        Waited::Granted(grant) => forward(shared, upstream, tool, held, &grant).await,
        Waited::Ended(reason) => stop(authority, held, reason).await,
        Waited::Unanswered { .. } => stop(authority, held, UNANSWERED.into()).await,
        Waited::Interrupted {
            reason,
            error,
            by_agent,
        } => {
            // Nothing can resume this request: the approver is no longer asked.
            if by_agent {
                withdraw(authority, held.call, auth_req_id, &reason).await;
            }
            interrupted(authority, held, reason, error).await
        }
    }
}

/// A 2026-07-28 client's retry of a held call with the request state it was given:
/// waits for the same approval (with progress) as long as the gateway holds a call, then
/// forwards it, ends it, or answers `input_required` again while the approval request
/// lives.
pub async fn resume<A: Authority>(
    shared: &Shared<A>,
    upstream: &Upstream,
    tool: &str,
    resumed: Resumed<'_>,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let authority = &shared.authority;
    let state = match shared
        .resumption
        .open(resumed.sealed, resumed.call, resumed.arguments)
    {
        Ok(state) => state,
        Err(e @ StateRefused::Invalid) => {
            return Err(ErrorData::invalid_params(e.to_string(), None));
        }
        Err(StateRefused::Expired) => {
            let fate = Fate::Stopped {
                reason: EXPIRED.into(),
            };
            record(authority, resumed.call, None, &fate).await?;
            return Ok(tool_error(EXPIRED));
        }
    };
    let held = Held {
        call: resumed.call,
        arguments: resumed.arguments,
        decision_id: &state.decision_id,
        approvers: &[],
    };
    if resume::cancelled(resumed.responses) {
        let reason = "cancelled by the agent's user while held".to_owned();
        withdraw(authority, held.call, &state.auth_req_id, &reason).await;
        return stop(authority, &held, reason).await;
    }
    let _held = HeldMetric::start();
    // One retry waits `retry_hold_secs` (clients time requests out), but at least one
    // polling interval, so that each retry polls once, and never past the approval
    // request's expiry. (Its last poll was at the end of the previous retry.)
    let hold = Duration::from_secs(shared.config.retry_hold_secs)
        .max(Duration::from_millis(state.interval_ms))
        .min(state.remaining());
    let watch = Watch {
        auth_req_id: &state.auth_req_id,
        interval_ms: state.interval_ms,
        hold,
        message: waiting_message(&[], &state.auth_req_id),
    };
    match wait(shared, held.call, &watch, &Listener::request(ctx)).await {
        Waited::Granted(grant) => forward(shared, upstream, tool, &held, &grant).await,
        Waited::Ended(reason) => stop(authority, &held, reason).await,
        // Another round only while a poll can still see an answer.
        Waited::Unanswered { interval_ms }
            if state.remaining() > Duration::from_millis(interval_ms.max(1_000)) =>
        {
            let fate = Fate::AwaitingApproval {
                auth_req_id: state.auth_req_id.clone(),
            };
            record(authority, held.call, Some(held.decision_id), &fate).await?;
            // Sealed again when slow_down made the interval longer; else the same state.
            let sealed = if interval_ms == state.interval_ms {
                resumed.sealed.to_owned()
            } else {
                let slower = HeldState {
                    interval_ms,
                    ..state.clone()
                };
                shared.resumption.seal(held.call, held.arguments, &slower)
            };
            Ok(InputRequiredResult::from_request_state(sealed).into())
        }
        Waited::Unanswered { .. } => stop(authority, &held, EXPIRED.into()).await,
        // The client may retry with the same state: the request stays.
        Waited::Interrupted { reason, error, .. } => {
            interrupted(authority, &held, reason, error).await
        }
    }
}

/// A retried call and the state it echoes back.
pub struct Resumed<'a> {
    pub call: &'a Call,
    pub arguments: &'a JsonObject,
    /// The `requestState` as the client sent it.
    pub sealed: &'a str,
    pub responses: Option<&'a InputResponses>,
}

const UNANSWERED: &str = "no approval within the time the gateway holds a call";
const TOO_MANY_TASKS: &str = "too many calls of this agent wait for approval as tasks; \
     cancel one or wait for an answer";
const EXPIRED: &str = "the approval request expired before anyone answered it";

/// Whether the request's protocol has `input_required` results (2026-07-28 and later;
/// rmcp refuses to send one to an older client).
fn speaks_input_required(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Whether the request's client declared the tasks extension (SEP-2663).
fn declares_tasks(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .is_some_and(|c| c.supports_tasks())
}

/// Whether the client declared URL elicitations.
fn can_open_urls(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.url.is_some())
}

/// How waiting for an approval ended.
pub(crate) enum Waited {
    Granted(Grant),
    /// Denied, expired or already used: a tool error with the reason.
    Ended(String),
    /// Not answered within the hold; polled at last every `interval_ms`.
    Unanswered {
        interval_ms: u64,
    },
    /// The agent or the gateway went away: a JSON-RPC error, the trace says why.
    Interrupted {
        reason: String,
        error: ErrorData,
        /// The agent cancelled (or closed) the request, not the gateway stopping.
        by_agent: bool,
    },
}

/// What a poll's answer means for the hold: keep waiting (`None`), the grant, or the
/// reason it ended.
fn answer(approval: Approval) -> Option<Result<Grant, String>> {
    match approval {
        Approval::Pending | Approval::SlowDown => None,
        Approval::Granted(grant) => Some(Ok(grant)),
        Approval::Denied { reason } => Some(Err(match reason {
            Some(r) if !r.is_empty() => format!("not approved: {r}"),
            _ => "not approved".to_owned(),
        })),
        Approval::Expired => Some(Err(EXPIRED.into())),
        Approval::AlreadyUsed => Some(Err(
            "the approval was already used; the call is not forwarded again".into(),
        )),
    }
}

/// The approval a held call waits for, and for how long.
pub(crate) struct Watch<'a> {
    pub auth_req_id: &'a str,
    /// CIBA's polling interval.
    pub interval_ms: u64,
    /// How long this request holds before it gives up.
    pub hold: Duration,
    /// What the progress notifications say.
    pub message: String,
}

/// Who waits for a held call: a request (told of progress if it asked, cancelled by its
/// client) or a task (cancelled by `tasks/cancel`).
pub(crate) struct Listener<'a> {
    progress: Option<(&'a Peer<RoleServer>, ProgressToken)>,
    cancelled: &'a CancellationToken,
}

impl<'a> Listener<'a> {
    fn request(ctx: &'a RequestContext<RoleServer>) -> Self {
        Self {
            progress: ctx.meta.get_progress_token().map(|t| (&ctx.peer, t)),
            cancelled: &ctx.ct,
        }
    }

    pub(crate) fn task(cancelled: &'a CancellationToken) -> Self {
        Self {
            progress: None,
            cancelled,
        }
    }

    /// `notifications/progress`, for a request whose client asked for them.
    async fn progress(&self, progress: f64, message: &str) {
        if let Some((peer, token)) = &self.progress {
            // A client that went away is noticed through the cancellation token.
            let _ = peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), progress)
                        .with_message(message.to_owned()),
                )
                .await;
        }
    }
}

/// Polls the approval at CIBA's interval, telling the agent it waits at the progress
/// interval, until it is answered, the hold times out, or the agent or gateway stops.
pub(crate) async fn wait<A: Authority>(
    shared: &Shared<A>,
    call: &Call,
    watch: &Watch<'_>,
    listener: &Listener<'_>,
) -> Waited {
    let progress_every = Duration::from_millis(shared.config.progress_interval_ms);
    // CIBA's polling interval: polling sooner only earns slow_down.
    let mut poll_every = Duration::from_millis(watch.interval_ms.max(50));
    listener.progress(0.0, &watch.message).await;
    // One start for every timer, so a hold as long as the interval ends with a poll.
    let start = tokio::time::Instant::now();
    let deadline = start + watch.hold;
    let (mut next_poll, mut next_progress, mut step) =
        (start + poll_every, start + progress_every, 0.0);
    loop {
        tokio::select! {
            // The gateway stopping comes first: it also ends the agents' requests.
            biased;
            () = shared.stopping.cancelled() => return Waited::Interrupted {
                reason: "the gateway stopped while the call was held".into(),
                error: ErrorData::internal_error(
                    "the gateway is stopping; the call was not forwarded (call again to ask anew)",
                    None,
                ),
                by_agent: false,
            },
            () = listener.cancelled.cancelled() => return Waited::Interrupted {
                reason: "cancelled by the agent while held".into(),
                error: ErrorData::internal_error("the call was cancelled while held for approval", None),
                by_agent: true,
            },
            () = tokio::time::sleep(poll_every.min(progress_every)) => {}
        }
        let now = tokio::time::Instant::now();
        if now >= next_poll {
            let polled = shared.authority.poll(&call.agent, watch.auth_req_id).await;
            tracing::debug!(
                auth_req_id = watch.auth_req_id,
                ?polled,
                "polled a held call's approval"
            );
            if let Ok(Approval::SlowDown) = polled {
                // CIBA §11: the interval grows by 5 seconds for the rest of the wait.
                poll_every += Duration::from_secs(5);
            }
            // Counted from when the answer came: a poll that waited (a busy server) must
            // not make the next one early.
            next_poll = tokio::time::Instant::now() + poll_every;
            match polled {
                Ok(Approval::SlowDown) => {}
                Ok(approval) => match answer(approval) {
                    None => {}
                    Some(Ok(grant)) => return Waited::Granted(grant),
                    Some(Err(reason)) => return Waited::Ended(reason),
                },
                Err(AuthorityError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "polling an approval failed; retrying");
                }
                Err(e) => return Waited::Ended(format!("the approval cannot be used: {e}")),
            }
        }
        if now >= deadline {
            return Waited::Unanswered {
                interval_ms: u64::try_from(poll_every.as_millis()).unwrap_or(u64::MAX),
            };
        }
        if now >= next_progress {
            next_progress = now + progress_every;
            step += 1.0;
            listener.progress(step, &watch.message).await;
        }
    }
}

/// What a held call's progress notifications say.
fn waiting_message(approvers: &[String], auth_req_id: &str) -> String {
    let who = match approvers {
        [] => "an approver".to_owned(),
        [_] => "1 approver".to_owned(),
        many => format!("{} approvers", many.len()),
    };
    format!("held until {who} answers in Countersign (request {auth_req_id})")
}

/// Forwards exactly what the human approved, whatever the agent sent, with the
/// credential and a proof for the upstream.
async fn forward<A: Authority>(
    shared: &Shared<A>,
    upstream: &Upstream,
    tool: &str,
    held: &Held<'_>,
    grant: &Grant,
) -> Result<CallToolResponse, ErrorData> {
    let authority = &shared.authority;
    let Some(arguments) = grant
        .approved
        .first()
        .and_then(mapping::approved_arguments)
        .cloned()
    else {
        let reason = "the approved credential names no arguments; the call is not forwarded";
        return stop(authority, held, reason.into()).await;
    };
    let proof = match authority.dpop_proof(
        &held.call.agent,
        "POST",
        &upstream.credential_audience(),
        &grant.access_token,
    ) {
        Ok(proof) => proof,
        Err(e) => {
            tracing::error!(error = %e, "no DPoP proof for an approved call");
            let reason = "the approved call could not be proven to the tool; it is not forwarded";
            return stop(authority, held, reason.into()).await;
        }
    };
    let credential = (format!("DPoP {}", grant.access_token), proof);
    let result = shared
        .upstreams
        .call(upstream, tool, arguments, Some(credential))
        .await;
    finish(authority, held.call, Some(held.decision_id), result).await
}

/// Withdraws an approval nobody will resume; a failure is logged (the request expires
/// on its own, and an answer to it is never forwarded).
async fn withdraw<A: Authority>(authority: &A, call: &Call, auth_req_id: &str, reason: &str) {
    if let Err(e) = authority.withdraw(&call.agent, auth_req_id, reason).await {
        tracing::warn!(auth_req_id, error = %e, "a held call's approval could not be withdrawn");
    }
}

/// Records why a held call's request ended without an answer (the agent or the gateway
/// went away) and answers with the JSON-RPC error.
async fn interrupted<A: Authority>(
    authority: &A,
    held: &Held<'_>,
    reason: String,
    error: ErrorData,
) -> Result<CallToolResponse, ErrorData> {
    let fate = Fate::Stopped { reason };
    record(authority, held.call, Some(held.decision_id), &fate).await?;
    Err(error)
}

/// Ends a held call with a tool error saying why, traced.
async fn stop<A: Authority>(
    authority: &A,
    held: &Held<'_>,
    reason: String,
) -> Result<CallToolResponse, ErrorData> {
    let fate = Fate::Stopped {
        reason: reason.clone(),
    };
    record(authority, held.call, Some(held.decision_id), &fate).await?;
    Ok(tool_error(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_grant_forwards_and_every_other_answer_says_why() {
        assert!(answer(Approval::Pending).is_none());
        assert!(answer(Approval::SlowDown).is_none());
        let grant = Grant {
            access_token: "t".into(),
            approved: Vec::new(),
        };
        assert_eq!(answer(Approval::Granted(grant.clone())), Some(Ok(grant)));
        assert_eq!(
            answer(Approval::Denied {
                reason: Some("not this vendor".into())
            }),
            Some(Err("not approved: not this vendor".into()))
        );
        assert_eq!(
            answer(Approval::Denied { reason: None }),
            Some(Err("not approved".into()))
        );
        assert!(matches!(answer(Approval::Expired), Some(Err(r)) if r.contains("expired")));
        assert!(
            matches!(answer(Approval::AlreadyUsed), Some(Err(r)) if r.contains("not forwarded again"))
        );
    }
}
