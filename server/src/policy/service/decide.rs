//! Deciding an attempted action: the facts of the attempt (directory, session, baseline,
//! time, network), the evaluation, the routing of a step-up to its approvers, and what
//! the decision writes (its trace's facts, the session's update, the baseline's samples).

use std::net::IpAddr;

use serde_json::Value;

use super::PolicyEngine;
use crate::ids::Subject;
use crate::policy::facts::{
    AgentFacts, Arguments, DecisionFacts, HumanFacts, Principal, RequestFacts, SessionFacts,
    ToolFacts, TotalsFacts,
};
use crate::policy::schema::{AUTHENTICATE, CountersignSchema};
use crate::policy::{ApproverRoute, Decision, Outcome, PolicyError};
use crate::store::baselines::SampleRecord;
use crate::store::clients::ClientRecord;
use crate::store::humans::HumanRecord;
use crate::store::sessions::SessionUpdate;
use crate::store::{Store, StoreError};

/// An attempted action, from `bc-authorize` or the decision API.
pub struct Attempt<'a> {
    pub client: &'a ClientRecord,
    /// The human the request names (for the decision API: the agent's owner unless one
    /// is named).
    pub user: &'a HumanRecord,
    /// RFC 9396 entries, already validated against their types' schemas.
    pub details: Option<&'a [Value]>,
    /// A tool named outside the details (decision API `resource`).
    pub resource: Option<&'a str>,
    pub scope: &'a str,
    pub binding_message: Option<&'a str>,
    pub task_id: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub prompt_labels: &'a [String],
    /// Who performs it: the agent (`bc-authorize`, the decision API) or `user` (AuthZEN
    /// subjects of type `user`, for `policy.human_actions`).
    pub principal: Principal,
}

/// A decision and everything it writes.
#[derive(Debug)]
pub struct Decided {
    pub decision: Decision,
    /// What the policies said before routing (a step-up nobody can approve is denied).
    pub evaluated: Outcome,
    /// The first entry's action (or `authenticate`) and tool.
    pub action: String,
    pub resource: String,
    /// For a step-up: the subjects who may approve.
    pub approvers: Vec<Subject>,
    /// Accepted actions for the baselines (allow only; a step-up adds them on approval).
    pub samples: Vec<SampleRecord>,
    pub session: Option<SessionUpdate>,
    /// The facts of each evaluated entry, as recorded in the trace.
    pub facts: Vec<DecisionFacts>,
}

async fn human_facts(store: &Store, h: &HumanRecord) -> Result<HumanFacts, StoreError> {
    Ok(HumanFacts {
        subject: h.subject.clone(),
        email: h.email.clone(),
        name: h.name.clone(),
        department: h.department.clone(),
        title: h.title.clone(),
        role: h.role.clone(),
        active: h.active,
        manager: h.manager.clone(),
        groups: store.groups_of(&h.subject).await?,
    })
}

/// The sample an accepted entry adds to its agent's baseline.
pub fn sample_of(
    client_id: &str,
    action: &str,
    detail: Option<&Value>,
    at_ms: i64,
) -> SampleRecord {
    let args = detail.map(Arguments::from_detail).unwrap_or_default();
    SampleRecord {
        client_id: client_id.to_owned(),
        action: action.to_owned(),
        at_ms,
        quantity: args.quantity,
        amount: args.amount,
    }
}

/// The action of each entry (`authenticate` for a request without details).
pub fn actions_of(details: Option<&[Value]>) -> Vec<(String, Option<&Value>)> {
    match details {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|d| {
                let kind = d.get("type").and_then(Value::as_str).unwrap_or_default();
                (kind.to_owned(), Some(d))
            })
            .collect(),
        _ => vec![(AUTHENTICATE.to_owned(), None)],
    }
}

/// Denies `part` when the directory limits `client` to tools that do not include `tool`
/// (whatever the policies said: the directory's limit is not theirs to lift).
fn refuse_unlisted_tool(client: &ClientRecord, tool: &str, part: &mut Decision) {
    let Some(tools) = &client.tools else {
        return;
    };
    if tools.iter().any(|t| t == tool) {
        return;
    }
    part.outcome = Outcome::Deny;
    part.approvers.clear();
    part.policies.clear();
    part.reasons = vec![format!(
        "agent {} may not use tool {tool:?} (it may use {})",
        client.client_id,
        tools.join(", ")
    )];
}

/// Decides `attempt` at `now_ms` with the active policy.
pub async fn decide(
    engine: &PolicyEngine,
    store: &Store,
    attempt: &Attempt<'_>,
    now_ms: i64,
) -> Result<Decided, PolicyError> {
    let doc = engine.active();
    let people = People::of(store, attempt).await?;
    let common = common_facts(engine, store, attempt, &people, now_ms).await?;
    let mut facts = Vec::new();
    let mut parts = Vec::new();
    let totals = attempt
        .details
        .map(TotalsFacts::of_entries)
        .unwrap_or_default();
    for (i, (action, detail)) in actions_of(attempt.details).into_iter().enumerate() {
        check_principal(engine, &action, attempt.principal)?;
        let arguments = detail.map(Arguments::from_detail).unwrap_or_default();
        let anomaly = engine
            .baseline(
                store,
                &attempt.client.client_id,
                &action,
                now_ms,
                arguments.quantity,
                arguments.amount,
            )
            .await?;
        let f = DecisionFacts {
            tool: engine.tool_for(detail, attempt.resource),
            action,
            totals: totals
                .get(i)
                .cloned()
                .unwrap_or_else(|| TotalsFacts::single(&arguments)),
            arguments,
            anomaly,
            ..common.clone()
        };
        let mut part = engine.evaluate(&doc, &f);
        refuse_unlisted_tool(attempt.client, &f.tool.id, &mut part);
        parts.push(part);
        facts.push(f);
    }
    let mut decision = Decision::combine(parts)
        .ok_or_else(|| PolicyError::BadRequest("nothing to decide".into()))?;
    for e in &decision.errors {
        tracing::warn!(error = %e, client_id = %attempt.client.client_id, "a policy could not be evaluated and was skipped");
    }
    let evaluated = decision.outcome;
    let approvers = route_step_up(store, &mut decision, attempt, &people.owner_record).await?;
    Ok(Decided {
        samples: samples_of(attempt, decision.outcome, now_ms),
        session: session_update(engine, attempt, decision.outcome, &facts, now_ms),
        decision,
        evaluated,
        action: facts.first().map(|f| f.action.clone()).unwrap_or_default(),
        resource: facts.first().map(|f| f.tool.id.clone()).unwrap_or_default(),
        approvers,
        facts,
    })
}

/// The humans a decision is about, as the directory has them now.
struct People {
    owner_record: HumanRecord,
    owner: HumanFacts,
    owner_manager: Option<HumanFacts>,
    /// The human the request names, when not the owner.
    user: Option<HumanFacts>,
}

impl People {
    async fn of(store: &Store, attempt: &Attempt<'_>) -> Result<Self, PolicyError> {
        let client = attempt.client;
        let owner_record = store.human(&client.owner_subject).await?.ok_or_else(|| {
            PolicyError::NotFound(format!("the agent's owner {:?}", client.owner_subject))
        })?;
        let owner = human_facts(store, &owner_record).await?;
        let owner_manager = match &owner_record.manager {
            Some(m) => match store.human(m).await? {
                Some(h) => Some(human_facts(store, &h).await?),
                None => None,
            },
            None => None,
        };
        let user = if attempt.user.subject == owner_record.subject {
            None
        } else {
            Some(human_facts(store, attempt.user).await?)
        };
        Ok(Self {
            owner_record,
            owner,
            owner_manager,
            user,
        })
    }
}

/// The facts every entry of `attempt` shares (its own are filled in per entry).
async fn common_facts(
    engine: &PolicyEngine,
    store: &Store,
    attempt: &Attempt<'_>,
    people: &People,
    now_ms: i64,
) -> Result<DecisionFacts, StoreError> {
    let client = attempt.client;
    let session = match attempt.task_id {
        Some(id) => {
            let s = store.session(&client.client_id, id).await?;
            SessionFacts {
                id: Some(id.to_owned()),
                classifications: s.classifications,
                classes: s.classes,
                actions: s.actions,
            }
        }
        None => SessionFacts::default(),
    };
    Ok(DecisionFacts {
        tool: ToolFacts::unknown(),
        principal: attempt.principal,
        action: String::new(),
        agent: agent_facts(client),
        owner: people.owner.clone(),
        owner_manager: people.owner_manager.clone(),
        user: people.user.clone(),
        arguments: Arguments::default(),
        totals: TotalsFacts::default(),
        time: engine.time_at(now_ms),
        network: engine.network(attempt.source_ip),
        prompt_labels: attempt.prompt_labels.to_vec(),
        session,
        anomaly: crate::policy::facts::AnomalyFacts::default(),
        request: RequestFacts {
            scope: attempt.scope.to_owned(),
            binding_message: attempt.binding_message.map(str::to_owned),
            task_id: attempt.task_id.map(str::to_owned),
        },
        environment: engine.config.environment.clone(),
    })
}

fn agent_facts(client: &ClientRecord) -> AgentFacts {
    AgentFacts {
        client_id: client.client_id.clone(),
        name: client.name.clone(),
        owner: client.owner_subject.clone(),
        department: client.department.clone(),
        risk_tier: client.risk_tier.clone(),
        status: if client.enabled {
            "active"
        } else {
            "suspended"
        }
        .to_owned(),
        approver: client.approver.clone(),
    }
}

/// Refuses an action the schema does not declare, or one of the other kind of principal.
fn check_principal(
    engine: &PolicyEngine,
    action: &str,
    principal: Principal,
) -> Result<(), PolicyError> {
    if !engine.schema.knows(action) {
        return Err(PolicyError::BadRequest(format!(
            "{action:?} is not a declared action"
        )));
    }
    if engine.schema.principal_of(action) != principal {
        return Err(PolicyError::BadRequest(match principal {
            Principal::Agent => format!("{action:?} is an action of humans, not of agents"),
            Principal::User => format!("{action:?} is an action of agents, not of humans"),
        }));
    }
    Ok(())
}

/// For a step-up, the humans it routes to now; a step-up nobody can approve becomes a
/// denial saying so.
async fn route_step_up(
    store: &Store,
    decision: &mut Decision,
    attempt: &Attempt<'_>,
    owner: &HumanRecord,
) -> Result<Vec<Subject>, StoreError> {
    if decision.outcome != Outcome::StepUp {
        return Ok(Vec::new());
    }
    let approvers = route(store, decision, attempt.client, attempt.user, owner).await?;
    if approvers.is_empty() {
        let routes: Vec<String> = decision.approvers.iter().map(ToString::to_string).collect();
        decision.outcome = Outcome::Deny;
        decision.reasons.push(format!(
            "no active approver is available ({}{})",
            routes.join(", "),
            if decision.four_eyes {
                "; the owner is excluded"
            } else {
                ""
            }
        ));
    }
    Ok(approvers)
}

/// Accepted actions for the baselines: an allow's (a step-up adds them on approval).
fn samples_of(attempt: &Attempt<'_>, outcome: Outcome, now_ms: i64) -> Vec<SampleRecord> {
    match outcome {
        Outcome::Allow => actions_of(attempt.details)
            .into_iter()
            .map(|(a, d)| sample_of(&attempt.client.client_id, &a, d, now_ms))
            .collect(),
        _ => Vec::new(),
    }
}

/// What the decision adds to its task's session: its class and what it read.
fn session_update(
    engine: &PolicyEngine,
    attempt: &Attempt<'_>,
    outcome: Outcome,
    facts: &[DecisionFacts],
    now_ms: i64,
) -> Option<SessionUpdate> {
    match (attempt.task_id, outcome) {
        (Some(id), Outcome::Allow | Outcome::StepUp) => facts.first().map(|f| SessionUpdate {
            client_id: attempt.client.client_id.clone(),
            session_id: id.to_owned(),
            at_ms: now_ms,
            class: engine.schema.class_of(&f.action).to_owned(),
            classification: session_classification(facts, &engine.schema),
        }),
        _ => None,
    }
}

/// The most sensitive data classification this attempt reads (only reads touch data).
fn session_classification(facts: &[DecisionFacts], schema: &CountersignSchema) -> Option<String> {
    facts
        .iter()
        .filter(|f| schema.class_of(&f.action) == "read")
        .map(|f| {
            f.arguments
                .classification
                .clone()
                .unwrap_or_else(|| f.tool.data_classification.clone())
        })
        .find(|c| c != "unknown")
}

/// The subjects the step-up routes to: active, and not the owner under four-eyes.
async fn route(
    store: &Store,
    decision: &Decision,
    client: &ClientRecord,
    user: &HumanRecord,
    owner: &HumanRecord,
) -> Result<Vec<Subject>, StoreError> {
    let mut subjects = Vec::new();
    for r in &decision.approvers {
        match r {
            ApproverRoute::User => subjects.push(user.subject.clone()),
            ApproverRoute::Owner => subjects.push(client.owner_subject.clone()),
            ApproverRoute::Manager => subjects.extend(owner.manager.clone()),
            ApproverRoute::Group(g) => {
                subjects.extend(store.group_members(g).await?);
            }
            ApproverRoute::Role(role) => {
                subjects.extend(store.humans_with_role(role).await?);
            }
        }
    }
    subjects.sort();
    subjects.dedup();
    let mut active = Vec::with_capacity(subjects.len());
    for s in subjects {
        if decision.four_eyes && s == client.owner_subject {
            continue;
        }
        if store.human(&s).await?.is_some_and(|h| h.active) {
            active.push(s);
        }
    }
    Ok(active)
}
