//! Held calls as tasks: the MCP Tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`).
//!
//! A client that declared the extension gets a task for a call the policy holds, at
//! once, instead of a request that stays open: it polls `tasks/get` until the human has
//! answered and the gateway has forwarded the approved call (the task is `completed` with
//! the upstream's result) or ended it (`completed` with a tool error saying why), and
//! `tasks/cancel` withdraws the approval request. rmcp's [`TaskManager`] keeps the tasks'
//! states; this module adds what a gateway serving many agents needs on top:
//!
//! - a task belongs to the agent that started it: another agent asking for it (or
//!   cancelling it) is told no such task exists, exactly as for an id never issued;
//! - an agent has at most `max_held_tasks` tasks under way (each one asks a human), so a
//!   flood of calls cannot become a flood of approval requests.
//!
//! Tasks live in the gateway's memory. A restart loses them, as it loses the connections
//! of calls held the other ways: the approval they waited for is never forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, CreateTaskResult, DetailedTask, JsonObject, Task,
};
use rmcp::task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions};
use tokio_util::sync::CancellationToken;

use crate::authority::{AgentId, Authority, Call, Fate, Pending};
use crate::hold::{self, Held, HeldMetric, Listener, Waited, Watch};
use crate::service::{Shared, record};
use crate::upstream::Upstream;

/// How long an ended task stays past its hold and forwarding, for the client to collect
/// its result (rmcp keeps an ended task one more TTL on top).
const RETRIEVAL_MS: u64 = 60_000;

/// Holds `held` as a task of its agent: traced as awaiting approval and answered at once
/// with the task, whose work waits for the approval and then forwards or ends the call
/// as a held request would.
pub(crate) async fn hold_as_task<A: Authority>(
    shared: &Arc<Shared<A>>,
    upstream: &Upstream,
    tool: &str,
    held: &Held<'_>,
    pending: &Pending,
    message: String,
    slot: Slot,
) -> Result<CallToolResponse, ErrorData> {
    let fate = Fate::AwaitingApproval {
        auth_req_id: pending.auth_req_id.clone(),
    };
    record(&shared.authority, held.call, Some(held.decision_id), &fate).await?;
    let hold = hold::hold_for(shared, pending);
    // rmcp aborts a task still working at its TTL: the TTL covers the hold, the
    // forwarding and the collection of the result.
    let ttl_ms = u64::try_from(hold.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(shared.config.upstream_timeout_ms)
        .saturating_add(RETRIEVAL_MS);
    let options = TaskOptions::new()
        .with_ttl_ms(ttl_ms)
        .with_poll_interval_ms(shared.config.progress_interval_ms)
        .with_status_message(format!("This call is {message}."));
    let work = TaskWork {
        shared: shared.clone(),
        upstream: upstream.name.clone(),
        tool: tool.to_owned(),
        call: held.call.clone(),
        arguments: held.arguments.clone(),
        decision_id: held.decision_id.to_owned(),
        auth_req_id: pending.auth_req_id.clone(),
        interval_ms: pending.interval_ms,
        hold,
        message,
    };
    // Tracked with the calls under way, so a stopping gateway lets it finish its trace.
    let tracker = shared.calls.clone();
    let task = shared.tasks.start(slot, options, move |context| {
        Box::pin(tracker.track_future(work.run(context)))
    });
    tracing::info!(task_id = %task.task_id, auth_req_id = %pending.auth_req_id, "held call answered with a task");
    Ok(CreateTaskResult::new(task).into())
}

/// What a task's work owns of the call it holds.
struct TaskWork<A> {
    shared: Arc<Shared<A>>,
    upstream: String,
    tool: String,
    call: Call,
    arguments: JsonObject,
    decision_id: String,
    auth_req_id: String,
    interval_ms: u64,
    hold: Duration,
    message: String,
}

impl<A: Authority> TaskWork<A> {
    /// Waits for the approval, then forwards or ends the call: the task `completed` with
    /// the upstream's result or a tool error saying why, `cancelled` after `tasks/cancel`
    /// (the approval withdrawn), `failed` when the gateway stopped.
    async fn run(self, context: TaskContext) -> Result<CallToolResult, TaskExit> {
        let shared = &*self.shared;
        let _held = HeldMetric::start();
        let cancelled = CancellationToken::new();
        let watcher = tokio::spawn({
            let cancelled = cancelled.clone();
            async move {
                context.cancelled().await;
                cancelled.cancel();
            }
        });
        let watch = Watch {
            auth_req_id: &self.auth_req_id,
            interval_ms: self.interval_ms,
            hold: self.hold,
            message: self.message.clone(),
        };
        let waited = hold::wait(shared, &self.call, &watch, &Listener::task(&cancelled)).await;
        watcher.abort();
        let by_agent = matches!(waited, Waited::Interrupted { by_agent: true, .. });
        let held = Held {
            call: &self.call,
            arguments: &self.arguments,
            decision_id: &self.decision_id,
            approvers: &[],
        };
        let Some(upstream) = shared.upstreams.get(&self.upstream) else {
            // Upstreams are fixed at start; a task names one that exists.
            return Err(TaskExit::Error(ErrorData::internal_error(
                "the held call's upstream is gone",
                None,
            )));
        };
        let ended = hold::conclude(
            shared,
            upstream,
            &self.tool,
            &held,
            &self.auth_req_id,
            waited,
        )
        .await;
        match ended {
            Err(_) if by_agent => Err(TaskExit::Cancelled),
            Err(error) => Err(TaskExit::Error(error)),
            Ok(CallToolResponse::Complete(result)) => Ok(result),
            // A held call ends with a result; nothing else is answered for it.
            Ok(_) => Err(TaskExit::Error(ErrorData::internal_error(
                "the held call ended without a result",
                None,
            ))),
        }
    }
}

/// The tasks of every agent the gateway serves.
pub struct HeldTasks {
    manager: TaskManager,
    /// Who started each task (pruned as rmcp forgets expired ones).
    owners: Mutex<HashMap<String, AgentId>>,
    /// Tasks under way (or being set up) per agent.
    running: Arc<Mutex<HashMap<AgentId, usize>>>,
    max_per_agent: usize,
}

/// A place for one more task of an agent, reserved before its approval is asked for and
/// given back when the task's work ends (or when it never starts).
pub struct Slot {
    agent: AgentId,
    running: Arc<Mutex<HashMap<AgentId, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.agent) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.agent);
            }
        }
    }
}

impl HeldTasks {
    pub fn new(max_per_agent: usize) -> Self {
        Self {
            manager: TaskManager::new(),
            owners: Mutex::new(HashMap::new()),
            running: Arc::new(Mutex::new(HashMap::new())),
            max_per_agent,
        }
    }

    /// Reserves a place for one more task of `agent`, if it has fewer than the maximum
    /// under way.
    pub fn reserve(&self, agent: &AgentId) -> Option<Slot> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let count = running.entry(agent.clone()).or_insert(0);
        if *count >= self.max_per_agent {
            return None;
        }
        *count += 1;
        Some(Slot {
            agent: agent.clone(),
            running: self.running.clone(),
        })
    }

    /// Starts `work` as a task of the slot's agent; the slot is given back when the work
    /// ends. Returns the task's first state, for `CreateTaskResult`.
    pub fn start(
        &self,
        slot: Slot,
        options: TaskOptions,
        work: impl FnOnce(TaskContext) -> TaskFuture,
    ) -> Task {
        let agent = slot.agent.clone();
        let task = self.manager.spawn(options, move |context| {
            let future = work(context);
            Box::pin(async move {
                let _slot = slot;
                future.await
            })
        });
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        // rmcp evicts tasks past their retention; their owners go with them.
        owners.retain(|id, _| self.manager.get_task(id).is_ok());
        owners.insert(task.task_id.clone(), agent);
        task
    }

    /// `tasks/get`, for the task's own agent only.
    pub fn get(&self, agent: &AgentId, task_id: &str) -> Result<DetailedTask, ErrorData> {
        self.owned(agent, task_id)?;
        self.manager.get_task(task_id)
    }

    /// `tasks/cancel`, for the task's own agent only. Cooperative: the task withdraws its
    /// approval request and settles as `cancelled` (unless it had already ended).
    pub fn cancel(&self, agent: &AgentId, task_id: &str) -> Result<(), ErrorData> {
        self.owned(agent, task_id)?;
        self.manager.cancel_task(task_id)
    }

    /// `tasks/update`, for the task's own agent only. A held call asks the client for
    /// nothing, so every response is ignored, as the extension says of unknown keys.
    pub fn update(&self, agent: &AgentId, task_id: &str) -> Result<(), ErrorData> {
        self.owned(agent, task_id)?;
        self.manager.update_task(task_id, [])
    }

    /// Cancels every task (a gateway serving one agent over stdio whose agent left: no
    /// one will collect them).
    pub fn cancel_all(&self) {
        let ids: Vec<String> = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        for id in ids {
            // A task rmcp already forgot has nothing to cancel.
            let _ = self.manager.cancel_task(&id);
        }
    }

    /// The error for a task that is not the agent's: the same as for one that does not
    /// exist, so ids cannot be probed.
    fn owned(&self, agent: &AgentId, task_id: &str) -> Result<(), ErrorData> {
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if owners.get(task_id) == Some(agent) {
            Ok(())
        } else {
            Err(ErrorData::invalid_params(
                format!("unknown task: {}", printable(task_id)),
                None,
            ))
        }
    }
}

/// At most 64 printable ASCII characters of a client's text, for an error message.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use rmcp::model::{CallToolResult, ContentBlock, TaskStatus};

    use super::*;

    fn agent(name: &str) -> AgentId {
        AgentId(name.into())
    }

    fn finished() -> impl FnOnce(TaskContext) -> TaskFuture {
        |_: TaskContext| -> TaskFuture {
            Box::pin(async { Ok(CallToolResult::success(vec![ContentBlock::text("done")])) })
        }
    }

    fn waiting() -> impl FnOnce(TaskContext) -> TaskFuture {
        |context: TaskContext| -> TaskFuture {
            Box::pin(async move {
                context.cancelled().await;
                Err(TaskExit::Cancelled)
            })
        }
    }

    async fn settled(tasks: &HeldTasks, agent: &AgentId, id: &str) -> DetailedTask {
        for _ in 0..200 {
            let task = tasks.get(agent, id).unwrap();
            if task.status().is_terminal() {
                return task;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the task did not settle");
    }

    #[tokio::test]
    async fn a_task_is_seen_and_cancelled_only_by_its_own_agent() {
        let tasks = HeldTasks::new(4);
        let (alice, mallory) = (agent("alice-agent"), agent("mallory-agent"));
        let slot = tasks.reserve(&alice).unwrap();
        let id = tasks.start(slot, TaskOptions::new(), waiting()).task_id;
        let refused = tasks.get(&mallory, &id).unwrap_err();
        let never_issued = tasks.get(&mallory, "no-such-task").unwrap_err();
        assert_eq!(refused.code, never_issued.code);
        assert_eq!(refused.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(tasks.cancel(&mallory, &id).is_err());
        assert!(tasks.update(&mallory, &id).is_err());
        assert_eq!(
            tasks.get(&alice, &id).unwrap().status(),
            TaskStatus::Working
        );

        tasks.cancel(&alice, &id).unwrap();
        assert_eq!(
            settled(&tasks, &alice, &id).await.status(),
            TaskStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn an_agent_has_at_most_the_maximum_under_way_and_ended_tasks_free_their_place() {
        let tasks = HeldTasks::new(2);
        let (alice, bob) = (agent("alice-agent"), agent("bob-agent"));
        let first = tasks.reserve(&alice).unwrap();
        let second = tasks.reserve(&alice).unwrap();
        assert!(tasks.reserve(&alice).is_none(), "a third is refused");
        assert!(
            tasks.reserve(&bob).is_some(),
            "other agents are not counted"
        );

        // A reservation whose task never starts gives its place back.
        drop(second);
        let second = tasks.reserve(&alice).unwrap();
        let waits = tasks.start(first, TaskOptions::new(), waiting()).task_id;
        let ends = tasks.start(second, TaskOptions::new(), finished()).task_id;
        assert_eq!(
            settled(&tasks, &alice, &ends).await.status(),
            TaskStatus::Completed
        );
        let third = tasks.reserve(&alice);
        assert!(third.is_some(), "the finished task's place");
        assert!(
            tasks.reserve(&alice).is_none(),
            "the waiting task still holds its place"
        );
        drop(third);

        tasks.cancel_all();
        settled(&tasks, &alice, &waits).await;
        let mut freed = None;
        for _ in 0..200 {
            freed = tasks.reserve(&alice);
            if freed.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(freed.is_some(), "a cancelled task gives its place back");
    }
}
