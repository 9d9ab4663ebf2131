//! Declarative policy tests (`countersign policy test FILE`): a TOML file names a policy
//! document, a small directory of its own (humans, agents) and cases, each a request with
//! the outcome and approvers it must get. Runs without a database.
//!
//! ```toml
//! policy = "procurement.cedar"          # relative to this file
//!
//! [humans.alice]
//! department = "procurement"
//! manager = "bob"
//! [humans.bob]
//! role = "cfo"
//!
//! [agents.procurement]
//! owner = "alice"
//!
//! [[cases]]
//! name = "a large order needs the owner"
//! agent = "procurement"
//! details = { type = "purchase_order", vendor = "Acme", amount = 1200, currency = "USD" }
//! expect = "step_up"
//! approvers = ["alice"]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::PolicyDocument;
use super::engine::evaluate;
use super::facts::{
    AgentFacts, AnomalyFacts, Arguments, DecisionFacts, HumanFacts, RequestFacts, SessionFacts,
    TotalsFacts,
};
use super::schema::AUTHENTICATE;
use super::service::PolicyEngine;
use super::{ApproverRoute, Decision, Outcome};
use crate::ids::{ClientId, Subject};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The Cedar file under test, relative to the suite file.
    pub policy: Option<String>,
    #[serde(default)]
    pub humans: BTreeMap<String, CaseHuman>,
    #[serde(default)]
    pub agents: BTreeMap<String, CaseAgent>,
    #[serde(default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseHuman {
    pub name: Option<String>,
    pub email: Option<String>,
    pub department: String,
    pub title: String,
    pub role: String,
    pub manager: Option<String>,
    pub groups: Vec<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseAgent {
    pub owner: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub department: String,
    #[serde(default = "low")]
    pub risk_tier: String,
    #[serde(default)]
    pub suspended: bool,
}

fn low() -> String {
    "low".into()
}

/// Overrides of the facts a case's request is decided with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseContext {
    /// Local time in the configured zone (default Monday 10:00).
    pub hour: Option<i64>,
    pub minute: Option<i64>,
    /// `Mon` .. `Sun`.
    pub weekday: Option<String>,
    pub source_ip: Option<std::net::IpAddr>,
    pub prompt_labels: Vec<String>,
    pub session_classifications: Vec<String>,
    pub session_classes: Vec<String>,
    pub samples: Option<i64>,
    pub rate_last_hour: Option<i64>,
    pub quantity_p95: Option<f64>,
    pub quantity_ratio: Option<f64>,
    pub amount_p95: Option<f64>,
    pub amount_ratio: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub agent: String,
    /// The human the request names (default: the agent's owner).
    #[serde(default)]
    pub user: Option<String>,
    /// The `authorization_details` entry, or an array of entries decided together as one
    /// request (omit for a plain authentication).
    #[serde(default)]
    pub details: Option<Value>,
    /// The tool, when the details do not name it.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub context: CaseContext,
    pub expect: Outcome,
    /// The subjects who may approve (step-up), after routing.
    #[serde(default)]
    pub approvers: Option<Vec<String>>,
    /// The determining policies' ids.
    #[serde(default)]
    pub policies: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    pub outcome: Outcome,
    pub approvers: Vec<String>,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    /// What differed from the expectation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

fn human(suite: &Suite, subject: &str) -> Result<HumanFacts, String> {
    let h = suite
        .humans
        .get(subject)
        .ok_or_else(|| format!("human {subject:?} is not in [humans]"))?;
    Ok(HumanFacts {
        subject: Subject::new(subject),
        email: h
            .email
            .clone()
            .unwrap_or_else(|| format!("{subject}@example.com")),
        name: h.name.clone().unwrap_or_else(|| subject.to_owned()),
        department: h.department.clone(),
        title: h.title.clone(),
        role: h.role.clone(),
        active: h.active.unwrap_or(true),
        manager: h.manager.as_deref().map(Subject::new),
        groups: h.groups.clone(),
    })
}

/// The entries of `case`: none, one, or an array of them.
fn entries_of(case: &Case) -> Result<Vec<Option<&Value>>, String> {
    match &case.details {
        None => Ok(vec![None]),
        Some(Value::Array(items)) if items.is_empty() => Err("details is an empty array".into()),
        Some(Value::Array(items)) => Ok(items.iter().map(Some).collect()),
        Some(one) => Ok(vec![Some(one)]),
    }
}

/// The facts of each entry of `case`, using `suite`'s directory.
fn facts_of(
    engine: &PolicyEngine,
    suite: &Suite,
    case: &Case,
) -> Result<Vec<DecisionFacts>, String> {
    let entries = entries_of(case)?;
    let owned: Vec<Value> = entries.iter().flatten().map(|v| (*v).clone()).collect();
    let totals = TotalsFacts::of_entries(&owned);
    entries
        .into_iter()
        .enumerate()
        .map(|(i, detail)| {
            let mut f = entry_facts(engine, suite, case, detail)?;
            if let Some(t) = totals.get(i) {
                f.totals = t.clone();
            }
            Ok(f)
        })
        .collect()
}

/// The facts of one entry (`detail`) of `case`.
fn entry_facts(
    engine: &PolicyEngine,
    suite: &Suite,
    case: &Case,
    detail: Option<&Value>,
) -> Result<DecisionFacts, String> {
    let agent = suite
        .agents
        .get(&case.agent)
        .ok_or_else(|| format!("agent {:?} is not in [agents]", case.agent))?;
    let owner = human(suite, &agent.owner)?;
    let owner_manager = owner
        .manager
        .as_deref()
        .map(|m| human(suite, m))
        .transpose()?;
    let user = match &case.user {
        Some(u) if *u != agent.owner => Some(human(suite, u)?),
        _ => None,
    };
    let action = match detail {
        Some(d) => d
            .get("type")
            .and_then(Value::as_str)
            .ok_or("details need a type")?
            .to_owned(),
        None => AUTHENTICATE.to_owned(),
    };
    if !engine.schema().knows(&action) {
        return Err(format!("{action:?} is not a declared action"));
    }
    let c = &case.context;
    let time = case_time(engine, c)?;
    Ok(DecisionFacts {
        tool: engine.tool_for(detail, case.resource.as_deref()),
        principal: engine.schema().principal_of(&action),
        action,
        agent: agent_facts(&case.agent, agent),
        owner,
        owner_manager,
        user,
        arguments: detail.map(Arguments::from_detail).unwrap_or_default(),
        totals: TotalsFacts::single(&detail.map(Arguments::from_detail).unwrap_or_default()),
        time,
        network: engine.network(c.source_ip),
        prompt_labels: c.prompt_labels.clone(),
        session: SessionFacts {
            id: None,
            classifications: c.session_classifications.clone(),
            classes: c.session_classes.clone(),
            actions: 0,
        },
        anomaly: anomaly_facts(c),
        request: RequestFacts {
            scope: "openid".into(),
            ..RequestFacts::default()
        },
        environment: "test".into(),
    })
}

/// The case's time: 2026-11-30T10:00:00Z, a Monday, with the hour, minute and weekday
/// the case gives.
fn case_time(engine: &PolicyEngine, c: &CaseContext) -> Result<super::facts::TimeFacts, String> {
    let mut time = engine.time_at(1_796_032_800_000);
    time.hour = c.hour.unwrap_or(10);
    time.minute = c.minute.unwrap_or(0);
    if let Some(day) = &c.weekday {
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let index = days
            .iter()
            .position(|d| d.eq_ignore_ascii_case(day))
            .ok_or_else(|| format!("weekday {day:?} must be Mon .. Sun"))?;
        time.weekday = days[index].to_owned();
        time.day_of_week = index as i64 + 1;
    }
    Ok(time)
}

fn agent_facts(client_id: &str, agent: &CaseAgent) -> AgentFacts {
    AgentFacts {
        client_id: ClientId::new(client_id),
        name: agent.name.clone().unwrap_or_else(|| client_id.to_owned()),
        owner: Subject::new(agent.owner.as_str()),
        department: agent.department.clone(),
        risk_tier: agent.risk_tier.clone(),
        status: if agent.suspended {
            "suspended"
        } else {
            "active"
        }
        .into(),
        approver: None,
    }
}

fn anomaly_facts(c: &CaseContext) -> AnomalyFacts {
    AnomalyFacts {
        samples: c.samples.unwrap_or(0),
        rate_last_hour: c.rate_last_hour.unwrap_or(0),
        quantity_p95: c.quantity_p95,
        quantity_ratio: c.quantity_ratio,
        amount_p95: c.amount_p95,
        amount_ratio: c.amount_ratio,
    }
}

/// Routes a step-up within the suite's directory (as the server does with its own).
fn route(suite: &Suite, facts: &DecisionFacts, d: &Decision) -> Vec<String> {
    let mut subjects = Vec::new();
    for r in &d.approvers {
        match r {
            ApproverRoute::User => subjects.push(
                facts
                    .user
                    .as_ref()
                    .map_or(&facts.owner.subject, |u| &u.subject)
                    .to_string(),
            ),
            ApproverRoute::Owner => subjects.push(facts.agent.owner.to_string()),
            ApproverRoute::Manager => {
                subjects.extend(facts.owner.manager.as_ref().map(ToString::to_string))
            }
            ApproverRoute::Group(g) => subjects.extend(
                suite
                    .humans
                    .iter()
                    .filter(|(_, h)| h.groups.contains(g))
                    .map(|(s, _)| s.clone()),
            ),
            ApproverRoute::Role(role) => subjects.extend(
                suite
                    .humans
                    .iter()
                    .filter(|(_, h)| h.role == *role)
                    .map(|(s, _)| s.clone()),
            ),
        }
    }
    subjects.sort();
    subjects.dedup();
    subjects.retain(|s| {
        !(d.four_eyes && *s == facts.agent.owner)
            && suite.humans.get(s).is_none_or(|h| h.active != Some(false))
    });
    subjects
}

/// Runs every case of `suite` against `doc`.
pub fn run(engine: &PolicyEngine, doc: &PolicyDocument, suite: &Suite) -> Vec<CaseResult> {
    suite
        .cases
        .iter()
        .map(|case| match facts_of(engine, suite, case) {
            Err(e) => CaseResult {
                name: case.name.clone(),
                passed: false,
                outcome: Outcome::Deny,
                approvers: vec![],
                policies: vec![],
                reasons: vec![],
                failures: vec![e],
            },
            Ok(entries) => {
                let Some(d) = Decision::combine(entries.iter().map(|f| evaluate(doc, f)).collect())
                else {
                    return CaseResult {
                        name: case.name.clone(),
                        passed: false,
                        outcome: Outcome::Deny,
                        approvers: vec![],
                        policies: vec![],
                        reasons: vec![],
                        failures: vec!["nothing to decide".into()],
                    };
                };
                let facts = &entries[0];
                let mut outcome = d.outcome;
                let approvers = if outcome == Outcome::StepUp {
                    route(suite, facts, &d)
                } else {
                    Vec::new()
                };
                if outcome == Outcome::StepUp && approvers.is_empty() {
                    outcome = Outcome::Deny;
                }
                let policies: Vec<String> = d.policies.iter().map(|p| p.id.clone()).collect();
                let mut failures = Vec::new();
                if outcome != case.expect {
                    failures.push(format!(
                        "expected {}, got {}",
                        case.expect.as_str(),
                        outcome.as_str()
                    ));
                }
                if let Some(want) = &case.approvers {
                    let mut want = want.clone();
                    want.sort();
                    if want != approvers {
                        failures.push(format!("expected approvers {want:?}, got {approvers:?}"));
                    }
                }
                if let Some(want) = &case.policies {
                    let mut want = want.clone();
                    want.sort();
                    if want != policies {
                        failures.push(format!("expected policies {want:?}, got {policies:?}"));
                    }
                }
                CaseResult {
                    name: case.name.clone(),
                    passed: failures.is_empty(),
                    outcome,
                    approvers,
                    policies,
                    reasons: d.reasons,
                    failures,
                }
            }
        })
        .collect()
}
