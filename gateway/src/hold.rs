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

use std::time::Duration;

use rmcp::model::{CallToolResponse, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use crate::authority::{Approval, Authority, Call, Fate};
use crate::mapping;
use crate::service::{Shared, finish, record, tool_error};
use crate::upstream::Upstream;

/// A call the policy held, and who may approve it.
pub struct Held<'a> {
    pub call: &'a Call,
    pub decision_id: &'a str,
    pub approvers: &'a [String],
}

/// A call counted as held (`countersign_gateway_held_calls`) until dropped, when its
/// wait is recorded (`countersign_gateway_hold_seconds`), however the hold ended.
struct HeldMetric(tokio::time::Instant);

impl HeldMetric {
    fn start() -> Self {
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
fn binding_message(call: &Call) -> String {
    let mut text = format!("MCP call {}", call.tool);
    text.truncate(120);
    text
}

/// Holds a call until its approval is answered, then forwards it (approved) or ends it
/// with a tool error saying why.
pub async fn run<A: Authority>(
    shared: &Shared<A>,
    upstream: &Upstream,
    tool: &str,
    held: Held<'_>,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let Held {
        call,
        decision_id,
        approvers,
    } = held;
    let authority = &shared.authority;
    let stop = |reason: String| async move {
        record(
            authority,
            call,
            Some(decision_id),
            &Fate::Stopped {
                reason: reason.clone(),
            },
        )
        .await?;
        Ok::<_, ErrorData>(tool_error(reason))
    };
    let pending = match authority
        .request_approval(call, &binding_message(call))
        .await
    {
        Ok(pending) => pending,
        Err(e) => return stop(format!("approval could not be requested: {e}")).await,
    };
    let who = if approvers.is_empty() {
        "an approver".to_owned()
    } else {
        approvers.join(", ")
    };
    let waiting = format!(
        "held for approval by {who} (request {})",
        pending.auth_req_id
    );
    let _held = HeldMetric::start();
    tracing::info!(tool = %call.tool, agent = %call.agent, auth_req_id = %pending.auth_req_id, "call held for approval");
    let hold_ms = shared.config.hold_timeout_secs.saturating_mul(1000);
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(pending.expires_in_ms.min(hold_ms));
    let progress_every = Duration::from_millis(shared.config.progress_interval_ms);
    // CIBA's polling interval: polling sooner only earns slow_down.
    let poll_every = Duration::from_millis(pending.interval_ms.max(50));
    let tick = poll_every.min(progress_every);
    let token = ctx.meta.get_progress_token();
    let mut progress = 0.0;
    let notify = |progress: f64| {
        let token = token.clone();
        let message = waiting.clone();
        async move {
            if let Some(token) = token {
                // A client that went away is noticed through the cancellation token.
                let _ = ctx
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token, progress).with_message(message),
                    )
                    .await;
            }
        }
    };
    notify(progress).await;
    let mut next_poll = tokio::time::Instant::now() + poll_every;
    let mut next_progress = tokio::time::Instant::now() + progress_every;
    let grant = loop {
        tokio::select! {
            () = shared.stopping.cancelled() => {
                record(authority, call, Some(decision_id), &Fate::Stopped {
                    reason: "the gateway stopped while the call was held".into(),
                }).await?;
                return Err(ErrorData::internal_error(
                    "the gateway is stopping; the call was not forwarded (call again to ask anew)",
                    None,
                ));
            }
            () = ctx.ct.cancelled() => {
                record(authority, call, Some(decision_id), &Fate::Stopped {
                    reason: "cancelled by the agent while held".into(),
                }).await?;
                return Err(ErrorData::internal_error("the call was cancelled while held for approval", None));
            }
            () = tokio::time::sleep(tick) => {}
        }
        let now = tokio::time::Instant::now();
        if now >= next_poll {
            next_poll = now + poll_every;
            match authority.poll(&call.agent, &pending.auth_req_id).await {
                Ok(Approval::Pending) => {}
                Ok(Approval::Granted(grant)) => break grant,
                Ok(Approval::Denied { reason }) => {
                    return stop(match reason {
                        Some(r) if !r.is_empty() => format!("denied by the approver: {r}"),
                        _ => "denied by the approver".to_owned(),
                    })
                    .await;
                }
                Ok(Approval::Expired) => {
                    return stop("the approval request expired before anyone answered it".into())
                        .await;
                }
                Ok(Approval::AlreadyUsed) => {
                    return stop(
                        "the approval was already used; the call is not forwarded again".into(),
                    )
                    .await;
                }
                Err(e) => tracing::warn!(error = %e, "polling an approval failed; retrying"),
            }
        }
        if now >= deadline {
            return stop("no approval within the time the gateway holds a call".into()).await;
        }
        if now >= next_progress {
            next_progress = now + progress_every;
            progress += 1.0;
            notify(progress).await;
        }
    };
    // Exactly what the human approved is forwarded, whatever the agent sent.
    let Some(arguments) = grant
        .approved
        .first()
        .and_then(mapping::approved_arguments)
        .cloned()
    else {
        return stop(
            "the approved credential names no arguments; the call is not forwarded".into(),
        )
        .await;
    };
    let target = upstream.credential_audience();
    let proof = authority
        .dpop_proof(&call.agent, "POST", &target, &grant.access_token)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let credential = (format!("DPoP {}", grant.access_token), proof);
    let result = shared
        .upstreams
        .call(upstream, tool, arguments, Some(credential))
        .await;
    finish(authority, call, Some(decision_id), result).await
}
