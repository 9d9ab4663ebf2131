//! What a decision event is about, copied out of its `detail` into plain, indexed columns
//! when it is appended (migrations 0013 and 0018), so the console's trace filters and
//! figures use indexed queries and never parse the trail's JSON. They are an index, not part of the event: the chain hash covers `detail`,
//! from which they are derived again at any time.

use std::borrow::Cow;

use serde::Deserialize;

use super::EventKind;

/// The facet columns, in the order [`Facets`] binds them.
pub(super) const COLUMNS: &str =
    "agent, human, outcome, policy_id, policy_version, resource, latency_ms";
pub(super) const COUNT: usize = 7;

/// Event kinds whose detail names facets (the trace of decisions and what followed them).
const DECISION_MADE: &str = EventKind::DecisionMade.as_str();
const REQUEST_APPROVED: &str = EventKind::RequestApproved.as_str();
const REQUEST_DENIED: &str = EventKind::RequestDenied.as_str();
const CREDENTIAL_ISSUED: &str = EventKind::CredentialIssued.as_str();

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facets {
    pub agent: Option<String>,
    /// The human the request was made for (`detail.user`).
    pub human: Option<String>,
    /// `allow`, `step_up`, `deny` (a decision), `approved`, `denied` (a human's decision).
    pub outcome: Option<String>,
    /// The first policy the detail names (the one that determined the outcome).
    pub policy_id: Option<String>,
    pub policy_version: Option<i64>,
    pub resource: Option<String>,
    /// A human's decision: how long the request waited for it, in ms (`detail.waited_ms`).
    pub latency_ms: Option<i64>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(default, borrow)]
    agent: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    resource: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    policies: Option<Vec<PolicyRef<'a>>>,
    #[serde(default)]
    waited_ms: Option<i64>,
}

#[derive(Deserialize)]
struct PolicyRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default)]
    version: Option<i64>,
}

/// The facets of an event of `kind` with `detail` (all `None` for other kinds, or when
/// the detail is not the JSON object those kinds write).
pub fn of(kind: &str, detail: &str) -> Facets {
    let outcome_of_kind = match kind {
        DECISION_MADE | CREDENTIAL_ISSUED => None,
        REQUEST_APPROVED => Some("approved"),
        REQUEST_DENIED => Some("denied"),
        _ => return Facets::default(),
    };
    let Ok(d) = serde_json::from_str::<Detail<'_>>(detail) else {
        return Facets::default();
    };
    let first = d.policies.as_ref().and_then(|p| p.first());
    Facets {
        agent: d.agent.map(Cow::into_owned),
        human: d.user.map(Cow::into_owned),
        outcome: match outcome_of_kind {
            Some(o) => Some(o.to_owned()),
            None if kind == DECISION_MADE => d.outcome.map(Cow::into_owned),
            None => None,
        },
        policy_id: first.map(|p| p.id.clone().into_owned()),
        policy_version: first.and_then(|p| p.version),
        resource: d.resource.map(Cow::into_owned),
        latency_ms: match kind {
            REQUEST_APPROVED | REQUEST_DENIED => d.waited_ms,
            _ => None,
        },
    }
}

impl Facets {
    pub(super) fn bind<'q>(self, q: super::super::AnyQuery<'q>) -> super::super::AnyQuery<'q> {
        q.bind(self.agent)
            .bind(self.human)
            .bind(self.outcome)
            .bind(self.policy_id)
            .bind(self.policy_version)
            .bind(self.resource)
            .bind(self.latency_ms)
    }

    /// The bytes the facets add to a statement's parameters (what batches are sized by:
    /// see `store::STATEMENT_BYTES`).
    pub(super) fn bytes(&self) -> usize {
        [
            &self.agent,
            &self.human,
            &self.outcome,
            &self.policy_id,
            &self.resource,
        ]
        .iter()
        .map(|s| s.as_ref().map_or(0, String::len))
        .sum::<usize>()
            + 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_approvals_and_issuance_name_their_facets() {
        let decision = of(
            "decision.made",
            r#"{"agent":"bot","user":"alice","outcome":"step_up","resource":"r1",
                "policies":[{"id":"pay","version":3},{"id":"other","version":1}],"inputs":[{"x":1}]}"#,
        );
        assert_eq!(decision.agent.as_deref(), Some("bot"));
        assert_eq!(decision.human.as_deref(), Some("alice"));
        assert_eq!(decision.outcome.as_deref(), Some("step_up"));
        assert_eq!(decision.policy_id.as_deref(), Some("pay"));
        assert_eq!(decision.policy_version, Some(3));
        assert_eq!(decision.resource.as_deref(), Some("r1"));
        let approved = of(
            "request.approved",
            r#"{"agent":"bot","user":"alice","approver":"bob","policies":null,"waited_ms":4200}"#,
        );
        assert_eq!(approved.outcome.as_deref(), Some("approved"));
        assert_eq!(approved.policy_id, None);
        assert_eq!(approved.latency_ms, Some(4200));
        let denied = of("request.denied", r#"{"agent":"bot","waited_ms":17}"#);
        assert_eq!(denied.latency_ms, Some(17));
        // Only a human's decision waited: a decision's own field of that name is not it.
        assert_eq!(of("decision.made", r#"{"waited_ms":5}"#).latency_ms, None);
        let issued = of("credential.issued", r#"{"agent":"bot","outcome":"x"}"#);
        assert_eq!(issued.outcome, None);
        assert_eq!(issued.agent.as_deref(), Some("bot"));
    }

    #[test]
    fn other_kinds_and_malformed_details_have_none() {
        assert_eq!(
            of("agent.suspended", r#"{"agent":"bot"}"#),
            Facets::default()
        );
        assert_eq!(of("decision.made", "not json"), Facets::default());
        assert_eq!(of("decision.made", r#"{"agent":5}"#), Facets::default());
    }
}
