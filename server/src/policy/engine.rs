//! Pure evaluation: a compiled document and one action's facts in, a [`Decision`] out.

use cedar_policy::{Entities, Request};
use cedar_policy_core::ast::{Literal, ValueKind};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

use super::document::PolicyDocument;
use super::facts::DecisionFacts;
use super::{ApproverRoute, Decision, Outcome};

/// Reasons and signals an approver reads, from the facts alone.
pub fn risk_signals(f: &DecisionFacts) -> Vec<String> {
    let mut signals = Vec::new();
    let n = &f.anomaly;
    if let (Some(ratio), Some(p95)) = (n.quantity_ratio, n.quantity_p95)
        && ratio >= 2.0
    {
        signals.push(format!(
            "quantity is {ratio:.1}x this agent's usual (95th percentile {p95})"
        ));
    }
    if let (Some(ratio), Some(p95)) = (n.amount_ratio, n.amount_p95)
        && ratio >= 2.0
    {
        signals.push(format!(
            "amount is {ratio:.1}x this agent's usual (95th percentile {p95})"
        ));
    }
    for c in &f.session.classifications {
        if c != "public" && c != "unknown" {
            signals.push(format!("this session read {c} data"));
        }
    }
    for label in &f.prompt_labels {
        signals.push(format!("prompt labelled {label}"));
    }
    if f.network.zoned && f.network.source_ip.is_some() && f.network.zones.is_empty() {
        signals.push("requested from outside every known network zone".into());
    }
    signals
}

/// Evaluates `request` and `entities` (built from `facts`) against `doc`.
pub fn evaluate_prepared(
    doc: &PolicyDocument,
    facts: &DecisionFacts,
    request: &Request,
    entities: &Entities,
) -> Decision {
    let mut decision = Decision {
        outcome: Outcome::Deny,
        policies: Vec::new(),
        reasons: Vec::new(),
        approvers: Vec::new(),
        four_eyes: false,
        validity_secs: None,
        max_uses: None,
        risk_signals: Vec::new(),
        errors: Vec::new(),
    };
    let Some(slice) = doc.slice(&facts.action) else {
        decision
            .reasons
            .push(format!("{:?} is not a declared action", facts.action));
        return decision;
    };
    let applying = applying(doc, slice, request, entities, &mut decision.errors);
    // Cedar skips a policy whose evaluation fails. For a forbid that would mean a failure
    // lifts a prohibition, so here it denies instead (fail closed).
    if !applying.failed_forbids.is_empty() {
        let mut failed = applying.failed_forbids;
        failed.sort_unstable();
        for id in failed {
            decision.policies.push(doc.reference(id));
            decision.reasons.push(format!(
                "policy {id} could not be evaluated for this request, so it denies (fail closed)"
            ));
        }
        decision.risk_signals = risk_signals(facts);
        return decision;
    }
    conclude(doc, facts, applying, &mut decision);
    decision.risk_signals = risk_signals(facts);
    decision
}

/// Which policies of an action's slice apply to a request.
struct Applying<'d> {
    forbids: Vec<&'d str>,
    permits: Vec<&'d str>,
    failed_forbids: Vec<&'d str>,
    failed_step_ups: Vec<&'d str>,
}

/// Cedar's authorizer semantics, over conditions compiled once per document: a policy
/// applies when its condition is true. A policy whose evaluation fails is reported in
/// `errors` and set aside: skipped, as Cedar does, unless it is a forbid or a step-up.
fn applying<'d>(
    doc: &PolicyDocument,
    slice: &'d [super::document::CompiledPolicy],
    request: &Request,
    entities: &Entities,
    errors: &mut Vec<String>,
) -> Applying<'d> {
    let evaluator = Evaluator::new(
        request.as_ref().clone(),
        entities.as_ref(),
        Extensions::all_available(),
    );
    let mut applying = Applying {
        forbids: Vec::new(),
        permits: Vec::new(),
        failed_forbids: Vec::new(),
        failed_step_ups: Vec::new(),
    };
    for p in slice {
        let applies = evaluator
            .interpret(&p.condition, &p.slots)
            .map_err(|e| e.to_string())
            .and_then(|v| match v.value_kind() {
                ValueKind::Lit(Literal::Bool(b)) => Ok(*b),
                _ => Err("the condition is not a boolean".to_owned()),
            });
        match applies {
            Ok(true) if p.forbid => applying.forbids.push(p.id.as_str()),
            Ok(true) => applying.permits.push(p.id.as_str()),
            Ok(false) => {}
            Err(e) => {
                errors.push(format!("while evaluating policy `{}`: {e}", p.id));
                if p.forbid {
                    applying.failed_forbids.push(p.id.as_str());
                } else if doc.meta(&p.id).is_some_and(|m| m.step_up) {
                    applying.failed_step_ups.push(p.id.as_str());
                }
            }
        }
    }
    applying
}

/// Any applying forbid denies; else any applying permit allows, or steps up when one of
/// them is a step-up; else deny. Fills in what the determining policies say.
fn conclude(
    doc: &PolicyDocument,
    facts: &DecisionFacts,
    applying: Applying<'_>,
    decision: &mut Decision,
) {
    let Applying {
        forbids,
        mut permits,
        failed_step_ups,
        ..
    } = applying;
    // A step-up whose condition fails might have applied: skipping it could let a plain
    // permit allow what needed a human, so it applies (fail closed to a human).
    permits.extend(failed_step_ups.iter().copied());
    let allowed = forbids.is_empty() && !permits.is_empty();
    let determining_ids = if allowed { permits } else { forbids };
    let mut determining: Vec<&super::document::PolicyMeta> = determining_ids
        .into_iter()
        .filter_map(|id| doc.meta(id))
        .collect();
    determining.sort_by(|a, b| a.id.cmp(&b.id));
    if !allowed && determining.is_empty() {
        decision
            .reasons
            .push("no policy permits this action".to_owned());
    } else if allowed {
        let stepping: Vec<_> = determining.iter().filter(|m| m.step_up).copied().collect();
        if stepping.is_empty() {
            decision.outcome = Outcome::Allow;
        } else {
            // Step-up wins over a plain permit: only the step-up policies determine it.
            decision.outcome = Outcome::StepUp;
            determining = stepping;
            decision.approvers = approvers(&determining, facts);
            decision.four_eyes = determining.iter().any(|m| m.four_eyes);
        }
    }
    decision.validity_secs = determining.iter().filter_map(|m| m.validity_secs).min();
    decision.max_uses = determining
        .iter()
        .filter_map(|m| m.max_uses)
        .reduce(super::UseLimit::stricter);
    for m in &determining {
        decision.policies.push(doc.reference(&m.id));
        if decision.outcome == Outcome::StepUp && failed_step_ups.contains(&m.id.as_str()) {
            decision.reasons.push(format!(
                "policy {} could not be evaluated for this request, so it requires approval (fail closed)",
                m.id
            ));
        } else {
            decision.reasons.push(m.reason.clone());
        }
    }
}

/// Who approves a step-up: each determining policy's `@approver`, else the directory's
/// route for this agent, else the request's user; each once.
fn approvers(
    determining: &[&super::document::PolicyMeta],
    facts: &DecisionFacts,
) -> Vec<ApproverRoute> {
    let mut approvers: Vec<ApproverRoute> = determining
        .iter()
        .map(|m| {
            m.approver.clone().unwrap_or_else(|| {
                facts
                    .agent
                    .approver
                    .as_deref()
                    .and_then(ApproverRoute::parse)
                    .unwrap_or(ApproverRoute::User)
            })
        })
        .collect();
    approvers.sort();
    approvers.dedup();
    approvers
}

/// Evaluates `facts` against `doc`. Facts that cannot be expressed in Cedar deny.
pub fn evaluate(doc: &PolicyDocument, facts: &DecisionFacts) -> Decision {
    evaluate_with(
        doc,
        facts,
        facts.request(),
        facts.entities(&doc.base_entities),
    )
}

/// Evaluates `facts` with the request and entities already built for them (a cache may
/// keep the entities and the shared part of the context).
pub fn evaluate_with(
    doc: &PolicyDocument,
    facts: &DecisionFacts,
    request: Result<Request, String>,
    entities: Result<impl std::borrow::Borrow<Entities>, String>,
) -> Decision {
    let prepared = request.and_then(|r| Ok((r, entities?)));
    match prepared {
        Ok((request, entities)) => evaluate_prepared(doc, facts, &request, entities.borrow()),
        Err(e) => Decision {
            outcome: Outcome::Deny,
            policies: Vec::new(),
            reasons: vec![format!("the request's facts cannot be evaluated: {e}")],
            approvers: Vec::new(),
            four_eyes: false,
            validity_secs: None,
            max_uses: None,
            risk_signals: Vec::new(),
            errors: vec![e],
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::policy::document::{DEFAULT_POLICY, compile};
    use crate::policy::facts::tests::{facts, human};
    use crate::policy::schema::CountersignSchema;
    use crate::policy::{PolicyRef, facts::AnomalyFacts, facts::NetworkFacts};

    fn doc(source: &str) -> PolicyDocument {
        let mut c = Config::default();
        for t in [
            "provision_servers",
            "delete_environment",
            "send_email",
            "read_records",
        ] {
            c.authorization_details_types
                .insert(t.into(), json!({"type": "object"}));
        }
        c.policy
            .actions
            .insert("provision_servers".into(), "write".into());
        c.policy
            .actions
            .insert("delete_environment".into(), "destructive".into());
        c.policy
            .actions
            .insert("send_email".into(), "external".into());
        c.policy
            .actions
            .insert("read_records".into(), "read".into());
        let schema = CountersignSchema::new(&c.policy, &c.authorization_details_types).unwrap();
        compile(source, 7, &schema, 86_400).unwrap_or_else(|p| panic!("{p:?}"))
    }

    const PROCUREMENT: &str = r#"
@id("small-orders")
permit (principal, action == Action::"purchase_order", resource)
when { context.arguments.amount < 400 };

@id("large-orders")
@step_up
@approver("owner")
@validity("PT10M")
@reason("orders of $400 or more need the owner's approval")
permit (principal, action == Action::"purchase_order", resource)
when { context.arguments.amount >= 400 };

@id("no-destruction")
forbid (principal, action in Action::"destructive", resource);

@id("destructive-otherwise")
permit (principal, action in Action::"destructive", resource);

@id("office-hours")
forbid (principal, action in Action::"external", resource)
when { context.time.hour < 7 || context.time.hour >= 19 || context.time.day_of_week > 5 };

@id("corp-network-only")
forbid (principal, action in Action::"write", resource)
unless { context.network.zones.contains("corp") };

@id("provisioning")
permit (principal, action == Action::"provision_servers", resource)
unless { context.anomaly has quantity_ratio_pct && context.anomaly.quantity_ratio_pct > 300 };

@id("provisioning-unusual")
@step_up
@approver("manager")
@four_eyes
permit (principal, action == Action::"provision_servers", resource)
when { context.anomaly has quantity_ratio_pct && context.anomaly.quantity_ratio_pct > 300 };
"#;

    fn order(amount: f64) -> crate::policy::facts::DecisionFacts {
        facts(
            "purchase_order",
            json!({"type": "purchase_order", "vendor": "Acme", "amount": amount, "currency": "USD"}),
        )
    }

    #[test]
    fn the_400_dollar_threshold() {
        let d = doc(PROCUREMENT);
        let small = evaluate(&d, &order(399.0));
        assert_eq!(small.outcome, Outcome::Allow);
        assert_eq!(
            small.policies,
            [PolicyRef {
                id: "small-orders".into(),
                version: 7
            }]
        );
        for amount in [400.0, 1200.0, 399.01] {
            let big = evaluate(&d, &order(amount));
            assert_eq!(big.outcome, Outcome::StepUp, "{amount}");
            assert_eq!(big.approvers, [ApproverRoute::Owner]);
            assert_eq!(big.validity_secs, Some(600));
            assert_eq!(
                big.reasons,
                ["orders of $400 or more need the owner's approval"]
            );
        }
    }

    /// Overflow is a runtime error the validator cannot rule out: a forbid that fails
    /// denies (naming itself); a step-up that fails steps up (naming itself); a plain
    /// permit that fails is skipped, so the others decide.
    #[test]
    fn a_failing_forbid_denies_and_a_failing_permit_is_skipped() {
        let overflow = "context.arguments.amount * 9223372036854775807 > 0";
        let d = doc(&format!(
            "@id(\"all\") permit (principal, action, resource);\n\
             @id(\"broken-forbid\") forbid (principal, action == Action::\"purchase_order\", resource) when {{ {overflow} }};"
        ));
        let denied = evaluate(&d, &order(1200.0));
        assert_eq!(denied.outcome, Outcome::Deny);
        assert_eq!(denied.policies, [d.reference("broken-forbid")]);
        assert!(
            denied.reasons[0].contains("fail closed"),
            "{:?}",
            denied.reasons
        );
        assert_eq!(denied.errors.len(), 1, "{:?}", denied.errors);
        // No overflow for a zero amount: the forbid evaluates to false and the permit allows.
        assert_eq!(evaluate(&d, &order(0.0)).outcome, Outcome::Allow);

        let d = doc(&format!(
            "@id(\"small\") permit (principal, action == Action::\"purchase_order\", resource) when {{ context.arguments.amount < 5000 }};\n\
             @id(\"broken-permit\") @step_up permit (principal, action == Action::\"purchase_order\", resource) when {{ {overflow} }};"
        ));
        let stepped = evaluate(&d, &order(1200.0));
        assert_eq!(stepped.outcome, Outcome::StepUp, "{stepped:?}");
        assert_eq!(stepped.policies, [d.reference("broken-permit")]);
        assert_eq!(stepped.approvers, [ApproverRoute::User]);
        assert!(
            stepped.reasons[0].contains("fail closed"),
            "{:?}",
            stepped.reasons
        );
        assert_eq!(stepped.errors.len(), 1);
        // Without the failure (amount 0) the step-up does not apply and the permit allows.
        assert_eq!(evaluate(&d, &order(0.0)).outcome, Outcome::Allow);

        // Alone, a failing step-up still steps up (it might have applied), never denies
        // for lack of a permit; and a failing plain permit is skipped.
        let d = doc(&format!(
            "@id(\"broken-permit\") @step_up permit (principal, action == Action::\"purchase_order\", resource) when {{ {overflow} }};\n\
             @id(\"broken-plain\") permit (principal, action == Action::\"purchase_order\", resource) when {{ {overflow} }};"
        ));
        assert_eq!(evaluate(&d, &order(1200.0)).outcome, Outcome::StepUp);
        let d = doc(&format!(
            "@id(\"broken-plain\") permit (principal, action == Action::\"purchase_order\", resource) when {{ {overflow} }};"
        ));
        assert_eq!(evaluate(&d, &order(1200.0)).outcome, Outcome::Deny);
    }

    #[test]
    fn destructive_actions_are_denied_by_the_forbid_that_fired() {
        let d = doc(PROCUREMENT);
        let denied = evaluate(
            &d,
            &facts(
                "delete_environment",
                json!({"type": "delete_environment", "target": "production"}),
            ),
        );
        assert_eq!(denied.outcome, Outcome::Deny);
        assert_eq!(denied.policies[0].id, "no-destruction");
        assert_eq!(
            denied.reasons,
            ["policy no-destruction forbids this action"]
        );
    }

    #[test]
    fn time_of_day_and_network_zone_rules() {
        let d = doc(PROCUREMENT);
        let mut f = facts("send_email", json!({"type": "send_email"}));
        // Nothing permits send_email: denied with no policy.
        assert_eq!(evaluate(&d, &f).policies, []);
        f.time.hour = 22;
        let late = evaluate(&d, &f);
        assert_eq!(late.policies[0].id, "office-hours");

        let mut p = facts(
            "provision_servers",
            json!({"type": "provision_servers", "quantity": 2}),
        );
        let outside = evaluate(&d, &p);
        assert_eq!(
            (outside.outcome, outside.policies[0].id.as_str()),
            (Outcome::Deny, "corp-network-only")
        );
        p.network = NetworkFacts {
            source_ip: Some("10.1.2.3".parse().unwrap()),
            zones: vec!["corp".into()],
            zoned: true,
        };
        assert_eq!(evaluate(&d, &p).outcome, Outcome::Allow);
    }

    #[test]
    fn unusual_quantities_step_up_to_the_manager_with_four_eyes() {
        let d = doc(PROCUREMENT);
        let mut p = facts(
            "provision_servers",
            json!({"type": "provision_servers", "quantity": 50}),
        );
        p.network.zones = vec!["corp".into()];
        p.anomaly = AnomalyFacts {
            samples: 20,
            quantity_p95: Some(2.0),
            quantity_ratio: Some(25.0),
            ..AnomalyFacts::default()
        };
        let d50 = evaluate(&d, &p);
        assert_eq!(d50.outcome, Outcome::StepUp);
        assert_eq!(d50.approvers, [ApproverRoute::Manager]);
        assert!(d50.four_eyes);
        assert!(
            d50.risk_signals[0].contains("25.0x"),
            "{:?}",
            d50.risk_signals
        );
        p.anomaly.quantity_ratio = Some(1.0);
        assert_eq!(evaluate(&d, &p).outcome, Outcome::Allow);
    }

    #[test]
    fn the_default_policy_steps_everything_up_to_the_user() {
        let d = doc(DEFAULT_POLICY);
        let decided = evaluate(&d, &facts("authenticate", json!({})));
        assert_eq!(decided.outcome, Outcome::StepUp);
        assert_eq!(decided.approvers, [ApproverRoute::User]);
    }

    #[test]
    fn an_agents_approver_route_applies_where_the_policy_names_none() {
        let d = doc(
            r#"@id("default") @step_up permit (principal, action, resource);
               @id("big") @step_up @approver("owner") permit (principal, action, resource) when { context.arguments has amount && context.arguments.amount > 1000 };"#,
        );
        let mut f = order(10.0);
        f.agent.approver = Some("group:finance".into());
        assert_eq!(
            evaluate(&d, &f).approvers,
            [ApproverRoute::Group("finance".into())]
        );
        // A policy's own @approver wins over the agent's route.
        let mut big = order(5000.0);
        big.agent.approver = Some("group:finance".into());
        assert_eq!(
            evaluate(&d, &big).approvers,
            [ApproverRoute::Owner, ApproverRoute::Group("finance".into())],
            "both step-up policies determine it"
        );
    }

    #[test]
    fn group_membership_and_manager_attributes_are_visible() {
        let d = doc(
            r#"@id("finance") permit (principal, action, resource) when { principal.owner in Group::"finance" };
               @id("boss") @step_up permit (principal, action, resource) when { principal.owner has manager && principal.owner.manager == Human::"carol" };"#,
        );
        let mut f = order(10.0);
        assert_eq!(evaluate(&d, &f).outcome, Outcome::Deny);
        f.owner.groups = vec!["finance".into()];
        assert_eq!(evaluate(&d, &f).outcome, Outcome::Allow);
        f.owner.groups.clear();
        f.owner.manager = Some("carol".into());
        f.owner_manager = Some(human("carol"));
        assert_eq!(evaluate(&d, &f).outcome, Outcome::StepUp);
    }
}
