//! Deciding agents' actions: Cedar policies with three outcomes.
//!
//! - a matching `forbid` → **deny**;
//! - a matching `permit` annotated `@step_up` → **step up** (a human approves; the
//!   policy names who, see [`document`]);
//! - a plain matching `permit` → **allow**;
//! - nothing matches → deny.
//!
//! When a plain and a `@step_up` permit both match, step up wins: the stricter answer.
//! Evaluation ([`engine`]) is pure: a request, its facts and a compiled document in, a
//! [`Decision`] with the determining policies and reasons out. [`service`] gathers the
//! facts (directory, session, baselines), keeps the active version, and records each
//! decision in the trace.

pub mod annotations;
pub mod baseline;
pub mod cases;
pub mod document;
pub mod engine;
pub mod facts;
pub mod history;
pub mod manage;
pub mod schema;
pub mod service;
pub mod trace;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use countersign_shared::decision::Outcome;

/// A policy as decisions name it: its `@id` and the version of the set it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct PolicyRef {
    pub id: String,
    pub version: i64,
}

/// Who approves a step-up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ApproverRoute {
    /// The human the request names (`login_hint`).
    User,
    /// The agent's owner.
    Owner,
    /// The manager of the agent's owner.
    Manager,
    Group(String),
    Role(String),
}

impl ApproverRoute {
    pub fn parse(s: &str) -> Option<Self> {
        let name_ok = |n: &str| !n.is_empty() && n.len() <= 128 && !n.contains(char::is_control);
        match s {
            "user" => Some(Self::User),
            "owner" => Some(Self::Owner),
            "manager" => Some(Self::Manager),
            _ => match s.split_once(':') {
                Some(("group", name)) if name_ok(name) => Some(Self::Group(name.to_owned())),
                Some(("role", name)) if name_ok(name) => Some(Self::Role(name.to_owned())),
                _ => None,
            },
        }
    }
}

impl std::fmt::Display for ApproverRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User => f.write_str("user"),
            Self::Owner => f.write_str("owner"),
            Self::Manager => f.write_str("manager"),
            Self::Group(g) => write!(f, "group:{g}"),
            Self::Role(r) => write!(f, "role:{r}"),
        }
    }
}

impl From<ApproverRoute> for String {
    fn from(r: ApproverRoute) -> Self {
        r.to_string()
    }
}

impl TryFrom<String> for ApproverRoute {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not an approver route"))
    }
}

/// How often a credential may be used within its validity (`@max_uses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseLimit {
    Times(u32),
    Unlimited,
}

impl UseLimit {
    /// What a credential gets when no determining policy says: one use.
    pub const DEFAULT: Self = Self::Times(1);
    /// Most uses a policy may grant a credential short of "unlimited".
    pub const MAX_TIMES: u32 = 1_000_000;

    /// `"unlimited"` or a count from 1 to [`Self::MAX_TIMES`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unlimited" => Some(Self::Unlimited),
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0') => s
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= Self::MAX_TIMES)
                .map(Self::Times),
            _ => None,
        }
    }

    /// The stricter of two limits.
    pub fn stricter(self, other: Self) -> Self {
        match (self, other) {
            (Self::Times(a), Self::Times(b)) => Self::Times(a.min(b)),
            (Self::Times(n), Self::Unlimited) | (Self::Unlimited, Self::Times(n)) => Self::Times(n),
            (Self::Unlimited, Self::Unlimited) => Self::Unlimited,
        }
    }

    /// As stored on the request: the count, 0 for unlimited.
    pub fn as_stored(self) -> i64 {
        match self {
            Self::Times(n) => i64::from(n),
            Self::Unlimited => 0,
        }
    }

    /// From the stored value (0: unlimited; anything out of range: one use).
    pub fn from_stored(n: i64) -> Self {
        match n {
            0 => Self::Unlimited,
            n => u32::try_from(n)
                .ok()
                .filter(|n| *n >= 1)
                .map_or(Self::DEFAULT, Self::Times),
        }
    }
}

/// What the engine decided, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// The policies that determined the outcome (for `deny` with no forbid: none).
    pub policies: Vec<PolicyRef>,
    /// Human-readable reasons, one per determining policy (or why nothing matched).
    pub reasons: Vec<String>,
    /// For a step-up: who may approve (any one of them).
    pub approvers: Vec<ApproverRoute>,
    /// For a step-up: the agent's owner may not approve.
    pub four_eyes: bool,
    /// The credential's validity when a policy set one.
    pub validity_secs: Option<u64>,
    /// How often the credential may be used, when a determining policy said
    /// (`@max_uses`); otherwise [`UseLimit::DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<UseLimit>,
    /// What an approver should know: unusual amounts or quantities, sensitive data read
    /// earlier in the session, prompt labels.
    pub risk_signals: Vec<String>,
    /// Policies that could not be evaluated (Cedar skips them); for operators.
    pub errors: Vec<String>,
}

impl Decision {
    /// Combines the decisions for several `authorization_details` entries of one request:
    /// the strictest outcome, with everything that determined it.
    pub fn combine(parts: Vec<Decision>) -> Option<Decision> {
        let mut parts = parts.into_iter();
        let mut acc = parts.next()?;
        for d in parts {
            let outcome = acc.outcome.stricter(d.outcome);
            let (keep_acc, keep_d) = (acc.outcome == outcome, d.outcome == outcome);
            if !keep_acc {
                acc.policies.clear();
                acc.reasons.clear();
                acc.approvers.clear();
            }
            if keep_d {
                acc.policies.extend(d.policies);
                acc.reasons.extend(d.reasons);
                acc.approvers.extend(d.approvers);
            }
            acc.four_eyes |= d.four_eyes;
            acc.validity_secs = match (acc.validity_secs, d.validity_secs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            acc.max_uses = match (acc.max_uses, d.max_uses) {
                (Some(a), Some(b)) => Some(a.stricter(b)),
                (a, b) => a.or(b),
            };
            acc.risk_signals.extend(d.risk_signals);
            acc.errors.extend(d.errors);
            acc.outcome = outcome;
        }
        acc.policies.sort();
        acc.policies.dedup();
        acc.reasons.dedup();
        acc.approvers.sort();
        acc.approvers.dedup();
        acc.risk_signals.sort();
        acc.risk_signals.dedup();
        Some(acc)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy document does not compile; every problem with its position.
    #[error("the policy does not validate: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<document::Problem>),
    #[error("{0}")]
    NotFound(String),
    /// A request the engine cannot build facts for (e.g. an undeclared action).
    #[error("{0}")]
    BadRequest(String),
    #[error("stored policy data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(outcome: Outcome, id: &str, approver: Option<ApproverRoute>) -> Decision {
        Decision {
            outcome,
            policies: vec![PolicyRef {
                id: id.into(),
                version: 1,
            }],
            reasons: vec![format!("{id} matched")],
            approvers: approver.into_iter().collect(),
            four_eyes: false,
            validity_secs: Some(600),
            max_uses: None,
            risk_signals: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn routes_round_trip_and_bad_ones_are_refused() {
        for r in ["user", "owner", "manager", "group:finance", "role:cfo"] {
            assert_eq!(ApproverRoute::parse(r).unwrap().to_string(), r);
        }
        for bad in ["", "boss", "group:", "team:x", "role:\n"] {
            assert_eq!(ApproverRoute::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn combining_keeps_the_strictest_outcome_and_what_determined_it() {
        let allow = decision(Outcome::Allow, "a", None);
        let step = decision(Outcome::StepUp, "s", Some(ApproverRoute::Manager));
        let combined = Decision::combine(vec![allow.clone(), step.clone()]).unwrap();
        assert_eq!(combined.outcome, Outcome::StepUp);
        assert_eq!(combined.policies, step.policies);
        assert_eq!(combined.approvers, [ApproverRoute::Manager]);
        let deny = decision(Outcome::Deny, "d", None);
        let combined = Decision::combine(vec![step, deny.clone(), allow]).unwrap();
        assert_eq!(combined.outcome, Outcome::Deny);
        assert_eq!(combined.policies, deny.policies);
        assert!(combined.approvers.is_empty());
        assert_eq!(Decision::combine(vec![]), None);
    }
}
