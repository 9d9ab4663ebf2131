//! The benchmark's policies and requests: 100 realistic policies over 20 actions, and a
//! mix of requests across them. Shared by the criterion bench and the instruction-count
//! example.

#![allow(dead_code)] // each user takes what it needs

use countersign_server::config::Config;
use countersign_server::policy::facts::{
    AgentFacts, AnomalyFacts, Arguments, DecisionFacts, HumanFacts, NetworkFacts, RequestFacts,
    SessionFacts, TimeFacts, ToolFacts, TotalsFacts,
};
use serde_json::json;

pub const ACTIONS: usize = 20;

pub fn action(i: usize) -> String {
    format!("action_{i:02}")
}

pub fn class(i: usize) -> &'static str {
    ["read", "write", "destructive", "external"][i % 4]
}

/// A configuration declaring the 20 actions with typed arguments.
pub fn config() -> Config {
    let mut c = Config::default();
    for i in 0..ACTIONS {
        c.authorization_details_types.insert(
            action(i),
            json!({"type": "object", "required": ["type", "amount", "quantity", "vendor"],
                   "properties": {"amount": {"type": "number"}, "quantity": {"type": "integer"},
                                  "vendor": {"type": "string"}}}),
        );
        c.policy.actions.insert(action(i), class(i).into());
    }
    c.policy
        .network_zones
        .insert("corp".into(), vec!["10.0.0.0/8".into()]);
    c
}

/// Five policies per action, of the kinds deployments write: a threshold that passes, a
/// step-up above it (to the owner or a group), office hours, a risk-tier rule, an anomaly
/// step-up; plus class-wide rules on the destructive and external classes.
pub fn policies() -> String {
    let mut text = String::new();
    for i in 0..ACTIONS {
        let a = action(i);
        let limit = 100 * (i + 1);
        text.push_str(&format!(
            "@id(\"{a}-small\") permit (principal, action == Action::\"{a}\", resource) \
             when {{ context.arguments.amount < {limit} && principal.status == \"active\" }};\n\
             @id(\"{a}-large\") @step_up @approver(\"{}\") permit (principal, action == Action::\"{a}\", resource) \
             when {{ context.arguments.amount >= {limit} }};\n\
             @id(\"{a}-hours\") forbid (principal, action == Action::\"{a}\", resource) \
             when {{ context.time.hour < 6 || context.time.hour >= 22 }};\n\
             @id(\"{a}-risk\") forbid (principal, action == Action::\"{a}\", resource) \
             when {{ principal.risk_tier == \"high\" && !context.network.zones.contains(\"corp\") }};\n\
             @id(\"{a}-anomaly\") @step_up @approver(\"manager\") @four_eyes permit (principal, action == Action::\"{a}\", resource) \
             when {{ context.anomaly has quantity_ratio_pct && context.anomaly.quantity_ratio_pct > 300 \
                     && principal.owner.department == \"procurement\" }};\n",
            if i % 2 == 0 { "owner" } else { "group:approvers" }
        ));
    }
    text
}

pub fn human(subject: &str) -> HumanFacts {
    HumanFacts {
        subject: subject.into(),
        email: format!("{subject}@example.com"),
        name: subject.into(),
        department: "procurement".into(),
        title: "Buyer".into(),
        role: "buyer".into(),
        active: true,
        manager: Some("bob".into()),
        groups: vec!["buyers".into(), "approvers".into()],
    }
}

pub fn facts(i: usize, amount: f64) -> DecisionFacts {
    let engine_time = TimeFacts {
        hour: 10,
        minute: 30,
        weekday: "Tue".into(),
        day_of_week: 2,
        timezone: "UTC".into(),
    };
    DecisionFacts {
        action: action(i),
        principal: countersign_server::policy::facts::Principal::Agent,
        agent: AgentFacts {
            client_id: "procurement".into(),
            name: "Procurement".into(),
            owner: "alice".into(),
            department: "procurement".into(),
            risk_tier: "low".into(),
            status: "active".into(),
            approver: None,
        },
        owner: human("alice"),
        owner_manager: Some(HumanFacts {
            manager: None,
            ..human("bob")
        }),
        user: None,
        tool: ToolFacts::unknown(),
        arguments: Arguments::from_detail(
            &json!({"amount": amount, "quantity": 2, "vendor": "Acme"}),
        ),
        totals: TotalsFacts::single(&Arguments::from_detail(
            &json!({"amount": amount, "quantity": 2, "vendor": "Acme"}),
        )),
        time: engine_time,
        network: NetworkFacts {
            source_ip: Some("10.1.2.3".parse().unwrap()),
            zones: vec!["corp".into()],
            zoned: true,
        },
        prompt_labels: vec![],
        session: SessionFacts::default(),
        anomaly: AnomalyFacts {
            samples: 40,
            rate_last_hour: 3,
            quantity_p95: Some(2.0),
            quantity_ratio: Some(1.0),
            amount_p95: Some(300.0),
            amount_ratio: Some(amount / 300.0),
        },
        request: RequestFacts {
            scope: "openid".into(),
            ..RequestFacts::default()
        },
        environment: "production".into(),
    }
}

/// 80 requests: each action with amounts below and above its threshold.
pub fn requests() -> Vec<DecisionFacts> {
    (0..ACTIONS * 4)
        .map(|n| facts(n % ACTIONS, [50.0, 150.0, 900.0, 2500.0][n / ACTIONS]))
        .collect()
}
