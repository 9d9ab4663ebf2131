//! The policy service: keeps the active policy version compiled, gathers the facts of an
//! attempted action (directory, session, baseline, time, network), evaluates, routes a
//! step-up to its approvers, and prepares what the decision writes: its trace event, the
//! session's update and the baseline's samples. Callers write those atomically with the
//! request (see `store::group_commit`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use super::baseline::{Baseline, MAX_SAMPLES, Sample};
use super::document::{DEFAULT_POLICY, PolicyDocument, Problem, compile};
use super::facts::{
    AgentFacts, Arguments, DecisionFacts, HumanFacts, NetworkFacts, Principal, RequestFacts,
    SessionFacts, TimeFacts, ToolFacts, TotalsFacts,
};
use super::schema::{AUTHENTICATE, CountersignSchema};
use super::{ApproverRoute, Decision, Outcome, PolicyError};
use crate::config::{Config, PolicyConfig};
use crate::store::baselines::SampleRecord;
use crate::store::clients::ClientRecord;
use crate::store::humans::HumanRecord;
use crate::store::sessions::SessionUpdate;
use crate::store::{Store, StoreError};

/// Most entity sets kept; a full cache starts over.
const ENTITY_CACHE_ENTRIES: usize = 10_000;

struct CachedBaseline {
    baseline: Baseline,
    loaded_at_ms: i64,
}

/// The compiled active policy and what evaluating needs besides facts.
pub struct PolicyEngine {
    schema: CountersignSchema,
    config: PolicyConfig,
    active: RwLock<Arc<PolicyDocument>>,
    tz: jiff::tz::TimeZone,
    zones: Vec<(String, Vec<ipnet::IpNet>)>,
    baselines: Mutex<HashMap<(String, String), CachedBaseline>>,
    /// Cedar entities per (document version, directory facts): building them is most of
    /// a decision's cost, and they change only with the directory.
    entities: Mutex<HashMap<(i64, u64), Arc<cedar_policy::Entities>>>,
    /// The shared part of contexts (time to the minute, network, session, ...).
    contexts: Mutex<HashMap<u64, Arc<super::facts::ContextFields>>>,
}

impl PolicyEngine {
    /// An engine running the built-in default policy (version 0) until a stored version
    /// is installed.
    pub fn new(config: &Config) -> Result<Self, String> {
        let schema = CountersignSchema::new(&config.policy, &config.authorization_details_types)
            .map_err(|e| e.to_string())?;
        let default = compile(DEFAULT_POLICY, 0, &schema, config.policy.max_validity_secs)
            .map_err(|p| format!("the default policy does not compile: {p:?}"))?;
        let tz = jiff::tz::TimeZone::get(&config.policy.time_zone)
            .map_err(|e| format!("policy.time_zone: {e}"))?;
        let mut zones = Vec::new();
        for (name, blocks) in &config.policy.network_zones {
            let nets = blocks
                .iter()
                .map(|b| b.parse::<ipnet::IpNet>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("policy.network_zones.{name}: {e}"))?;
            zones.push((name.clone(), nets));
        }
        Ok(Self {
            schema,
            config: config.policy.clone(),
            active: RwLock::new(Arc::new(default)),
            tz,
            zones,
            baselines: Mutex::new(HashMap::new()),
            entities: Mutex::new(HashMap::new()),
            contexts: Mutex::new(HashMap::new()),
        })
    }

    pub fn schema(&self) -> &CountersignSchema {
        &self.schema
    }

    /// The document decisions use now.
    pub fn active(&self) -> Arc<PolicyDocument> {
        match self.active.read() {
            Ok(doc) => doc.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn install(&self, doc: PolicyDocument) {
        let doc = Arc::new(doc);
        match self.active.write() {
            Ok(mut active) => *active = doc,
            Err(poisoned) => *poisoned.into_inner() = doc,
        }
    }

    /// Evaluates `facts` against `doc`, reusing the entities built for the same directory
    /// facts before.
    pub fn evaluate(&self, doc: &PolicyDocument, facts: &DecisionFacts) -> Decision {
        let key = (doc.version, facts.entities_key());
        let cached = self.entities.lock().ok().and_then(|c| c.get(&key).cloned());
        let entities = match cached {
            Some(e) => Ok(e),
            None => facts.entities(&doc.base_entities).map(|e| {
                let e = Arc::new(e);
                if let Ok(mut cache) = self.entities.lock() {
                    if cache.len() >= ENTITY_CACHE_ENTRIES {
                        cache.clear();
                    }
                    cache.insert(key, e.clone());
                }
                e
            }),
        };
        let key = facts.shared_context_key();
        let shared = self.contexts.lock().ok().and_then(|c| c.get(&key).cloned());
        let shared = shared.unwrap_or_else(|| {
            let fields = Arc::new(facts.shared_context());
            if let Ok(mut cache) = self.contexts.lock() {
                if cache.len() >= ENTITY_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, fields.clone());
            }
            fields
        });
        let request = facts.request_with(facts.context_with(&shared));
        super::engine::evaluate_with(doc, facts, request, entities)
    }

    pub fn compile(&self, source: &str, version: i64) -> Result<PolicyDocument, Vec<Problem>> {
        compile(source, version, &self.schema, self.config.max_validity_secs)
    }

    /// The built-in default document.
    pub fn default_document(&self) -> Result<PolicyDocument, Vec<Problem>> {
        self.compile(DEFAULT_POLICY, 0)
    }

    pub fn time_at(&self, unix_ms: i64) -> TimeFacts {
        TimeFacts::at(unix_ms, &self.tz, &self.config.time_zone)
    }

    pub fn network(&self, ip: Option<IpAddr>) -> NetworkFacts {
        NetworkFacts::of(ip, &self.zones)
    }

    /// The tool an `authorization_details` entry acts on: its `tool` field, or the tool
    /// whose configured `locations` include one of its `locations`, or `fallback`.
    pub fn tool_for(&self, detail: Option<&Value>, fallback: Option<&str>) -> ToolFacts {
        let named = detail
            .and_then(|d| d.get("tool"))
            .and_then(Value::as_str)
            .or(fallback);
        if let Some(id) = named {
            return match self.config.tools.get(id) {
                Some(t) => ToolFacts::configured(id, t),
                None => ToolFacts {
                    id: id.to_owned(),
                    ..ToolFacts::unknown()
                },
            };
        }
        let locations: Vec<&str> = detail
            .and_then(|d| d.get("locations"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.config
            .tools
            .iter()
            .find(|(_, t)| t.locations.iter().any(|l| locations.contains(&l.as_str())))
            .map_or_else(ToolFacts::unknown, |(id, t)| ToolFacts::configured(id, t))
    }

    /// The baseline of `client_id` for `action` at `now_ms`: reused for
    /// `baseline_refresh_ms`, else read again from the store.
    async fn baseline(
        &self,
        store: &Store,
        client_id: &str,
        action: &str,
        now_ms: i64,
        quantity: Option<f64>,
        amount: Option<f64>,
    ) -> Result<super::facts::AnomalyFacts, StoreError> {
        let key = (client_id.to_owned(), action.to_owned());
        let window_start = now_ms - 1000 * self.config.baseline_window_secs as i64;
        let min = self.config.baseline_min_samples as usize;
        if let Ok(mut cache) = self.baselines.lock()
            && let Some(cached) = cache.get_mut(&key)
            && now_ms - cached.loaded_at_ms < self.config.baseline_refresh_ms as i64
        {
            cached.baseline.expire(window_start);
            return Ok(cached.baseline.facts(now_ms, quantity, amount, min));
        }
        let samples = store
            .samples(client_id, action, window_start, MAX_SAMPLES as i64)
            .await?
            .into_iter()
            .map(|s| Sample {
                at_ms: s.at_ms,
                quantity: s.quantity,
                amount: s.amount,
            })
            .collect();
        let baseline = Baseline::from_samples(samples);
        let facts = baseline.facts(now_ms, quantity, amount, min);
        if let Ok(mut cache) = self.baselines.lock() {
            if cache.len() >= 100_000 {
                cache.clear();
            }
            cache.insert(
                key,
                CachedBaseline {
                    baseline,
                    loaded_at_ms: now_ms,
                },
            );
        }
        Ok(facts)
    }

    /// Adds accepted actions to this process's baselines (the store has them already).
    pub fn observe(&self, samples: &[SampleRecord]) {
        if let Ok(mut cache) = self.baselines.lock() {
            for s in samples {
                if let Some(cached) = cache.get_mut(&(s.client_id.clone(), s.action.clone())) {
                    cached.baseline.add(Sample {
                        at_ms: s.at_ms,
                        quantity: s.quantity,
                        amount: s.amount,
                    });
                }
            }
        }
    }
}

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
    pub approvers: Vec<String>,
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
        anomaly: super::facts::AnomalyFacts::default(),
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
) -> Result<Vec<String>, StoreError> {
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
) -> Result<Vec<String>, StoreError> {
    let mut subjects = Vec::new();
    for r in &decision.approvers {
        match r {
            ApproverRoute::User => subjects.push(user.subject.clone()),
            ApproverRoute::Owner => subjects.push(client.owner_subject.clone()),
            ApproverRoute::Manager => subjects.extend(owner.manager.clone()),
            ApproverRoute::Group(g) => subjects.extend(store.group_members(g).await?),
            ApproverRoute::Role(role) => subjects.extend(store.humans_with_role(role).await?),
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

/// Loads and installs the active stored version when it differs from the one running.
/// Called at start-up and periodically (another replica or the CLI may have activated
/// one). A stored version that no longer compiles (e.g. the configuration dropped an
/// action it names) keeps the running one and is logged.
pub async fn refresh(engine: &PolicyEngine, store: &Store) -> Result<(), PolicyError> {
    let stored = store.active_policy_version().await?;
    let running = engine.active().version;
    let wanted = stored.unwrap_or(0);
    if wanted == running {
        return Ok(());
    }
    let doc = match stored {
        None => engine.default_document().map_err(PolicyError::Invalid)?,
        Some(version) => {
            let record = store.policy_version(version).await?.ok_or_else(|| {
                PolicyError::Corrupt(format!("active version {version} is missing"))
            })?;
            match engine.compile(&record.source, version) {
                Ok(doc) => doc,
                Err(problems) => {
                    tracing::error!(version, problems = ?problems, "the active policy version does not compile with this configuration; keeping the running one");
                    return Err(PolicyError::Invalid(problems));
                }
            }
        }
    };
    tracing::info!(version = wanted, "policy version installed");
    engine.install(doc);
    Ok(())
}
