//! An AuthZEN evaluation decided as every Countersign decision is: the subject, resource
//! and action become the policy's principal, tool and `authorization_details` entry
//! (docs/authzen.md, "The mapping"), the active policy decides, and the decision is in the
//! trace (`decision.made`) before it is answered. A batch is written with one commit.

use serde_json::{Map, Value, json};

use super::Pdp;
use super::access_request::{self, Redemption};
use super::request::{Evaluation, Malformed, Semantic};
use crate::ciba::authorize::Peer;
use crate::policy::facts::Principal;
use crate::policy::service::{self, Attempt, Decided};
use crate::policy::{Outcome, PolicyError};
use crate::store::StoreError;
use crate::store::clients::ClientRecord;
use crate::store::group_commit::WriteSet;
use crate::store::humans::HumanRecord;

/// Subject types of a human (the principal is the `Human` the id names).
pub const HUMAN_TYPES: [&str; 2] = ["user", "human"];
/// The subject type of an agent (the principal is the `Agent` with that client id).
pub const AGENT_TYPE: &str = "agent";
/// The resource type naming one of `policy.tools` by its id.
pub const TOOL_TYPE: &str = "tool";

/// Why an evaluation was not decided: for a single evaluation its HTTP answer, in a batch
/// the item's `context.error`.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    /// 400: the request cannot be decided as sent.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the caller may not ask this.
    #[error("{0}")]
    Forbidden(String),
    /// The decision could not be made or recorded (storage): nothing is answered.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Malformed> for EvaluationError {
    fn from(e: Malformed) -> Self {
        Self::BadRequest(e.0)
    }
}

/// An AuthZEN decision: `{"decision": bool, "context": {...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub decision: bool,
    pub context: Map<String, Value>,
}

impl Answer {
    fn denied(reason: String) -> Self {
        let mut context = Map::new();
        context.insert("reasons".into(), json!([reason]));
        Self {
            decision: false,
            context,
        }
    }

    /// A closed decision for an item that could not be decided (AuthZEN §7.3's
    /// `context.error`).
    pub fn error(status: u16, message: &str) -> Self {
        let mut context = Map::new();
        context.insert(
            "error".into(),
            json!({"status": status, "message": message}),
        );
        Self {
            decision: false,
            context,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("decision".into(), Value::Bool(self.decision));
        if !self.context.is_empty() {
            out.insert("context".into(), Value::Object(self.context.clone()));
        }
        Value::Object(out)
    }
}

/// An item decided by the policy, its record not yet written.
struct Pending<'a> {
    decided: Decided,
    details: Vec<Value>,
    principal: Principal,
    /// What was evaluated, for whom: a step-up's access request binds to it.
    evaluation: &'a Evaluation,
    subject: String,
}

/// An item's outcome before recording.
enum Item<'a> {
    /// Answered without a policy decision (an unknown human, an undeclared action).
    Answered(Answer),
    Decided(Box<Pending<'a>>),
}

/// Who acts, and for whom: the client whose policy facts apply, the human, the principal.
struct Parties {
    client: ClientRecord,
    user: HumanRecord,
    principal: Principal,
}

async fn parties(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    e: &Evaluation,
) -> Result<Result<Parties, Answer>, EvaluationError> {
    let kind = e.subject.kind.as_str();
    if HUMAN_TYPES.contains(&kind) {
        let Some(user) = pdp.store.human_by_hint(&e.subject.id).await? else {
            return Ok(Err(Answer::error(404, "no such subject")));
        };
        if !user.active {
            return Ok(Err(Answer::denied(format!(
                "{} is offboarded",
                user.subject
            ))));
        }
        return Ok(Ok(Parties {
            client: caller.clone(),
            user,
            principal: Principal::User,
        }));
    }
    if kind != AGENT_TYPE {
        return Err(EvaluationError::BadRequest(format!(
            "unknown subject type {kind:?}: this PDP decides for subjects of type {}, {} and {AGENT_TYPE}",
            HUMAN_TYPES[0], HUMAN_TYPES[1]
        )));
    }
    if e.subject.id != caller.client_id {
        return Err(EvaluationError::Forbidden(format!(
            "client {} may ask about itself and about humans, not about agent {:?}",
            caller.client_id, e.subject.id
        )));
    }
    let Some(owner) = pdp.store.human(&caller.owner_subject).await? else {
        return Ok(Err(Answer::error(
            404,
            "the agent's owner is not in the directory",
        )));
    };
    Ok(Ok(Parties {
        client: caller.clone(),
        user: owner,
        principal: Principal::Agent,
    }))
}

/// The `authorization_details` entry of an evaluation: its type is the action's name;
/// the resource's and action's properties are its `arguments`, and those named like an
/// argument field (or mapped to one by `authzen.property_fields`) are that field; the
/// resource's id is the `target` unless a property sets it.
pub fn detail(
    e: &Evaluation,
    property_fields: &std::collections::BTreeMap<String, String>,
) -> Value {
    let fields = crate::policy::schema::ARGUMENT_FIELDS;
    let mut entry = Map::new();
    let mut arguments = Map::new();
    for (name, value) in e.resource.properties.iter().chain(&e.action.properties) {
        arguments.insert(name.clone(), value.clone());
        let field = property_fields.get(name).unwrap_or(name);
        if fields.contains(&field.as_str()) {
            entry.insert(field.clone(), value.clone());
        }
    }
    if e.resource.kind != TOOL_TYPE && !entry.contains_key("target") {
        entry.insert("target".into(), Value::String(e.resource.id.clone()));
    }
    entry.insert("type".into(), Value::String(e.action.name.clone()));
    entry.insert("arguments".into(), Value::Object(arguments));
    Value::Object(entry)
}

/// The tool a resource names: a `tool` names one of `policy.tools` by id; any other type
/// is the tool (`resource == Tool::"todo"`), its id the target.
fn tool_of(e: &Evaluation) -> &str {
    if e.resource.kind == TOOL_TYPE {
        &e.resource.id
    } else {
        &e.resource.kind
    }
}

async fn decide_item<'a>(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    e: &'a Evaluation,
    peer: &Peer,
    now_ms: i64,
) -> Result<Item<'a>, EvaluationError> {
    let parties = match parties(pdp, caller, e).await? {
        Ok(parties) => parties,
        Err(answer) => return Ok(Item::Answered(answer)),
    };
    let schema = pdp.policy.schema();
    if !schema.knows(&e.action.name) {
        return Ok(Item::Answered(Answer::denied(format!(
            "no policy decides {:?}: it is not a declared action",
            e.action.name
        ))));
    }
    if schema.principal_of(&e.action.name) != parties.principal {
        let performer = match parties.principal {
            Principal::User => "agents",
            Principal::Agent => "humans",
        };
        return Ok(Item::Answered(Answer::denied(format!(
            "{:?} is performed by {performer}, not by a subject of type {:?}",
            e.action.name, e.subject.kind
        ))));
    }
    let details = vec![detail(e, &pdp.config.authzen.property_fields)];
    pdp.authorizing
        .details
        .check(&details)
        .map_err(|err| EvaluationError::BadRequest(err.to_string()))?;
    let task_id = e.context.get("task_id").and_then(Value::as_str);
    let attempt = Attempt {
        client: &parties.client,
        user: &parties.user,
        details: Some(details.as_slice()),
        resource: Some(tool_of(e)),
        scope: "openid",
        binding_message: None,
        task_id,
        source_ip: peer.source_ip,
        prompt_labels: &[],
        principal: parties.principal,
    };
    match service::decide(pdp.policy, pdp.store, &attempt, now_ms).await {
        Ok(decided) => Ok(Item::Decided(Box::new(Pending {
            decided,
            details,
            principal: parties.principal,
            evaluation: e,
            subject: parties.user.subject.to_string(),
        }))),
        Err(PolicyError::Store(e)) => Err(EvaluationError::Store(e)),
        Err(PolicyError::NotFound(m)) => Ok(Item::Answered(Answer::error(404, &m))),
        Err(other) => Err(EvaluationError::BadRequest(other.to_string())),
    }
}

/// Records the decided items with one commit and answers each.
async fn record(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    items: Vec<Result<Item<'_>, Answer>>,
    now_ms: i64,
) -> Result<Vec<Answer>, StoreError> {
    let actor = format!("client:{}", caller.client_id);
    let mut set = WriteSet::default();
    let mut answers = Vec::with_capacity(items.len());
    let mut step_ups = Vec::new();
    for item in items {
        let pending = match item {
            Err(answer) | Ok(Item::Answered(answer)) => {
                answers.push(answer);
                continue;
            }
            Ok(Item::Decided(pending)) => pending,
        };
        let id = crate::ids::sortable("dec_", now_ms, 16);
        let decided = &pending.decided;
        set.events.push(crate::policy::trace::decision_event(
            decided,
            &actor,
            &id,
            Some(pending.details.as_slice()),
            now_ms,
        ));
        if pending.principal == Principal::Agent {
            // An agent's allowed actions teach its baseline and its session, as at
            // `bc-authorize` and `/v1/decisions`.
            set.samples.extend(decided.samples.iter().cloned());
            if set.session.is_none() {
                set.session.clone_from(&decided.session);
            }
        }
        let answer = answer_of(decided, id);
        if decided.decision.outcome == Outcome::StepUp {
            step_ups.push((answers.len(), pending));
        }
        answers.push(answer);
    }
    if !set.events.is_empty() {
        let samples = set.samples.clone();
        pdp.store.write(set).await?;
        pdp.policy.observe(&samples);
    }
    // Recorded: now a step-up either redeems the approval it presents, or says how to
    // ask for one.
    for (index, pending) in step_ups {
        approval_or_request(pdp, caller, &pending, &mut answers[index], now_ms).await?;
    }
    Ok(answers)
}

/// A step-up with `context.approval`: permitted when the approval stands (one use
/// counted); otherwise a denial with the profile's `reason` and `next_action`, and, when
/// asking again helps, a fresh `access_request`.
async fn approval_or_request(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    pending: &Pending<'_>,
    answer: &mut Answer,
    now_ms: i64,
) -> Result<(), StoreError> {
    let e = pending.evaluation;
    let decision_id = answer
        .context
        .get("decision_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let redeemed =
        access_request::redeem(pdp, caller, e, &pending.subject, &decision_id, now_ms).await?;
    match redeemed {
        Some(Redemption::Permitted(approval)) => {
            answer.decision = true;
            answer.context.insert("approval".into(), approval);
        }
        Some(Redemption::Refused(reason)) => {
            let next = match reason {
                "grant_pending" => "retry",
                "approval_unverifiable" => "none",
                _ => "request",
            };
            answer.context.insert("reason".into(), json!(reason));
            answer.context.insert("next_action".into(), json!(next));
            if next == "request" {
                access_request::advertise(pdp, caller, e, answer, now_ms);
                // advertise() names the reason approval_required; this one says why.
                answer.context.insert("reason".into(), json!(reason));
            }
        }
        None => access_request::advertise(pdp, caller, e, answer, now_ms),
    }
    Ok(())
}

fn answer_of(decided: &Decided, decision_id: String) -> Answer {
    let d = &decided.decision;
    let mut context = Map::new();
    context.insert("decision_id".into(), Value::String(decision_id));
    context.insert("outcome".into(), json!(d.outcome.as_str()));
    context.insert("reasons".into(), json!(d.reasons));
    context.insert("policies".into(), json!(d.policies));
    if d.outcome == Outcome::StepUp {
        // Not permitted now: a human may approve it (docs/authzen.md).
        context.insert("approval_required".into(), Value::Bool(true));
        context.insert("approvers".into(), json!(decided.approvers.len()));
    }
    Answer {
        decision: d.outcome == Outcome::Allow,
        context,
    }
}

/// Whether the active policy permits `e` now, decided but not recorded (a search's
/// candidates).
pub async fn dry_run(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    e: &Evaluation,
    peer: &Peer,
) -> Result<bool, EvaluationError> {
    Ok(
        match decide_item(pdp, caller, e, peer, pdp.now_ms()).await? {
            Item::Decided(pending) => pending.decided.decision.outcome == Outcome::Allow,
            Item::Answered(answer) => answer.decision,
        },
    )
}

/// `POST /access/v1/evaluation` (and a batch without items).
pub async fn evaluate(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    e: &Evaluation,
    peer: &Peer,
) -> Result<Answer, EvaluationError> {
    let now_ms = pdp.now_ms();
    let item = decide_item(pdp, caller, e, peer, now_ms).await?;
    let mut answers = record(pdp, caller, vec![Ok(item)], now_ms).await?;
    Ok(answers.remove(0))
}

/// One batch item decided; an item that cannot be decided is its error's closed answer.
async fn outcome_of<'a>(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    item: &'a Result<Evaluation, Malformed>,
    peer: &Peer,
    now_ms: i64,
) -> Result<Result<Item<'a>, Answer>, StoreError> {
    Ok(match item {
        Err(malformed) => Err(Answer::error(400, &malformed.0)),
        Ok(e) => match decide_item(pdp, caller, e, peer, now_ms).await {
            Ok(item) => Ok(item),
            Err(EvaluationError::Store(e)) => return Err(e),
            Err(EvaluationError::BadRequest(m)) => Err(Answer::error(400, &m)),
            Err(EvaluationError::Forbidden(m)) => Err(Answer::error(403, &m)),
        },
    })
}

fn permits(outcome: &Result<Item<'_>, Answer>) -> bool {
    match outcome {
        Ok(Item::Decided(p)) => p.decided.decision.outcome == Outcome::Allow,
        Ok(Item::Answered(a)) | Err(a) => a.decision,
    }
}

/// `POST /access/v1/evaluations`: every item decided (`execute_all`: all at once, their
/// reads overlapping; they are independent, AuthZEN §7), or in order until `semantic`
/// says stop (the answers end with the deciding item). An item that cannot be decided is
/// denied with its `context.error`. Recorded with one commit.
pub async fn evaluate_batch(
    pdp: &Pdp<'_>,
    caller: &ClientRecord,
    items: &[Result<Evaluation, Malformed>],
    semantic: Semantic,
    peer: &Peer,
) -> Result<Vec<Answer>, StoreError> {
    let now_ms = pdp.now_ms();
    let outcomes = if semantic == Semantic::ExecuteAll {
        futures_util::future::join_all(
            items
                .iter()
                .map(|item| outcome_of(pdp, caller, item, peer, now_ms)),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
    } else {
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let outcome = outcome_of(pdp, caller, item, peer, now_ms).await?;
            let stop = semantic.stops_after(permits(&outcome));
            outcomes.push(outcome);
            if stop {
                break;
            }
        }
        outcomes
    };
    record(pdp, caller, outcomes, now_ms).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authzen::request::{ActionRef, Entity};

    fn todo_update(owner: &str) -> Evaluation {
        let mut properties = Map::new();
        properties.insert("ownerID".into(), json!(owner));
        Evaluation {
            subject: Entity {
                kind: "user".into(),
                id: "morty".into(),
                properties: Map::new(),
            },
            action: ActionRef {
                name: "can_update_todo".into(),
                properties: Map::new(),
            },
            resource: Entity {
                kind: "todo".into(),
                id: "t-1".into(),
                properties,
            },
            context: Map::new(),
        }
    }

    #[test]
    fn properties_become_arguments_and_mapped_fields() {
        let e = todo_update("morty@example.com");
        let renames =
            std::collections::BTreeMap::from([("ownerID".to_owned(), "owner".to_owned())]);
        let entry = detail(&e, &renames);
        assert_eq!(entry["type"], "can_update_todo");
        assert_eq!(entry["owner"], "morty@example.com");
        assert_eq!(entry["target"], "t-1");
        assert_eq!(entry["arguments"]["ownerID"], "morty@example.com");
        assert_eq!(tool_of(&e), "todo");
        let unmapped = detail(&e, &Default::default());
        assert!(
            unmapped.get("owner").is_none(),
            "only mapped names are fields"
        );
    }

    #[test]
    fn a_tool_resource_names_the_tool_and_no_target() {
        let mut e = todo_update("x");
        e.resource.kind = TOOL_TYPE.into();
        e.resource.id = "erp".into();
        assert_eq!(tool_of(&e), "erp");
        assert!(detail(&e, &Default::default()).get("target").is_none());
    }

    #[test]
    fn answers_omit_an_empty_context() {
        let allow = Answer {
            decision: true,
            context: Map::new(),
        };
        assert_eq!(allow.to_json(), json!({"decision": true}));
        let error = Answer::error(404, "no such subject");
        assert_eq!(
            error.to_json(),
            json!({"decision": false, "context": {"error": {"status": 404, "message": "no such subject"}}})
        );
    }
}
