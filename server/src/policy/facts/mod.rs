//! The facts one decision sees, as plain data (recorded in the trace, replayed by
//! dry-runs); [`cedar`] translates them into a Cedar request and entities. Pure: nothing
//! here reads the database or the clock.

mod cedar;

use std::net::IpAddr;

use std::collections::BTreeMap;

use cedar_policy_core::ast::Value as V;
use smol_str::SmolStr;

/// Fields of a Cedar context record.
pub type ContextFields = BTreeMap<SmolStr, V>;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ToolConfig;
use crate::ids::{ClientId, Subject};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HumanFacts {
    pub subject: Subject,
    pub email: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub department: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Subject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentFacts {
    pub client_id: ClientId,
    pub name: String,
    pub owner: Subject,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub department: String,
    pub risk_tier: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Its approver route for step-ups whose policy names none (`None`: the user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolFacts {
    pub id: String,
    pub risk_level: String,
    pub data_classification: String,
    pub category: String,
}

impl ToolFacts {
    /// The tool a request does not name.
    pub fn unknown() -> Self {
        Self {
            id: "unknown".into(),
            risk_level: "unknown".into(),
            data_classification: "unknown".into(),
            category: "unknown".into(),
        }
    }

    pub fn configured(id: &str, t: &ToolConfig) -> Self {
        Self {
            id: id.to_owned(),
            risk_level: t.risk_level.clone(),
            data_classification: t.data_classification.clone(),
            category: t.category.clone(),
        }
    }
}

/// The action's arguments that policies can use (from its `authorization_details`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Arguments {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Arguments {
    /// Reads the known argument fields of one `authorization_details` entry.
    pub fn from_detail(detail: &Value) -> Self {
        let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_owned);
        let number = |k: &str| {
            detail
                .get(k)
                .and_then(Value::as_f64)
                .filter(|n| n.is_finite())
        };
        Self {
            amount: number("amount"),
            currency: text("currency"),
            vendor: text("vendor"),
            quantity: number("quantity"),
            target: text("target"),
            environment: text("environment"),
            classification: text("classification"),
            owner: text("owner"),
        }
    }
}

/// Who performs an action: the agent (every CIBA request and agent decision), or the human
/// the request names (`policy.human_actions`: an AuthZEN subject of type `user`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    #[default]
    Agent,
    User,
}

impl Principal {
    fn is_agent(&self) -> bool {
        *self == Self::Agent
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeFacts {
    pub hour: i64,
    pub minute: i64,
    pub weekday: String,
    pub day_of_week: i64,
    pub timezone: String,
}

impl TimeFacts {
    pub fn at(unix_ms: i64, tz: &jiff::tz::TimeZone, tz_name: &str) -> Self {
        let zoned = tz.to_datetime(
            jiff::Timestamp::from_millisecond(unix_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        );
        let day = i64::from(zoned.weekday().to_monday_one_offset());
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        Self {
            hour: i64::from(zoned.hour()),
            minute: i64::from(zoned.minute()),
            weekday: names[(day as usize - 1) % 7].to_owned(),
            day_of_week: day,
            timezone: tz_name.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Whether the deployment names any zones (else "outside every zone" means nothing).
    #[serde(default, skip_serializing_if = "is_false")]
    pub zoned: bool,
}

impl NetworkFacts {
    pub fn of(ip: Option<IpAddr>, zones: &[(String, Vec<ipnet::IpNet>)]) -> Self {
        // `::ffff:10.1.2.3` is 10.1.2.3: a zone of IPv4 blocks must contain it.
        let ip = ip.map(|ip| ip.to_canonical());
        let names = match ip {
            Some(ip) => zones
                .iter()
                .filter(|(_, nets)| nets.iter().any(|n| n.contains(&ip)))
                .map(|(name, _)| name.clone())
                .collect(),
            None => Vec::new(),
        };
        Self {
            source_ip: ip,
            zones: names,
            zoned: !zones.is_empty(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classifications: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub actions: i64,
}

impl SessionFacts {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

// The trace records facts without their empty fields (they are most of a typical
// decision's facts): a smaller event to write, hash and store for every decision.
fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalyFacts {
    pub samples: i64,
    pub rate_last_hour: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_ratio: Option<f64>,
}

/// What the request asks for in all, over its entries of this action's type (and, for
/// amounts, of this entry's currency): splitting one order into many entries adds up to
/// the same totals, so it can never lower the outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TotalsFacts {
    /// Entries of this type in the request (1 for a single entry).
    pub entries: i64,
    /// Sum of the amounts of this type's entries in this entry's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// Sum of the quantities of this type's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
}

impl TotalsFacts {
    /// The totals each of `details` sees: entry `i`'s totals are over every entry with
    /// its type (amounts: and its currency). Non-finite or negative numbers are left out
    /// of sums (the type's schema refuses them before this).
    pub fn of_entries(details: &[Value]) -> Vec<Self> {
        let kind = |d: &Value| d.get("type").and_then(Value::as_str).map(str::to_owned);
        let args: Vec<(Option<String>, Arguments)> = details
            .iter()
            .map(|d| (kind(d), Arguments::from_detail(d)))
            .collect();
        let sum = |values: &mut dyn Iterator<Item = Option<f64>>| {
            let mut total = None;
            for v in values.flatten().filter(|v| *v >= 0.0) {
                total = Some(total.unwrap_or(0.0) + v);
            }
            total
        };
        args.iter()
            .map(|(t, a)| {
                let same: Vec<&Arguments> = args
                    .iter()
                    .filter(|(other, _)| other == t)
                    .map(|(_, b)| b)
                    .collect();
                Self {
                    entries: i64::try_from(same.len()).unwrap_or(i64::MAX),
                    amount: a.amount.and_then(|_| {
                        sum(&mut same
                            .iter()
                            .filter(|b| b.currency == a.currency)
                            .map(|b| b.amount))
                    }),
                    quantity: a
                        .quantity
                        .and_then(|_| sum(&mut same.iter().map(|b| b.quantity))),
                }
            })
            .collect()
    }

    /// Totals of a request with one entry (or none).
    pub fn single(arguments: &Arguments) -> Self {
        Self {
            entries: 1,
            amount: arguments.amount,
            quantity: arguments.quantity,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFacts {
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// Everything one evaluation sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionFacts {
    pub action: String,
    /// Who performs it: the agent, or the human the request names (`user`, else the
    /// agent's owner).
    #[serde(default, skip_serializing_if = "Principal::is_agent")]
    pub principal: Principal,
    pub agent: AgentFacts,
    pub owner: HumanFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_manager: Option<HumanFacts>,
    /// The human the request names, when not the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<HumanFacts>,
    pub tool: ToolFacts,
    pub arguments: Arguments,
    /// Totals over the request's entries of this type (traces written before totals
    /// existed have none, and are evaluated as a single entry: see `context_with`).
    #[serde(default)]
    pub totals: TotalsFacts,
    pub time: TimeFacts,
    pub network: NetworkFacts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "SessionFacts::is_empty")]
    pub session: SessionFacts,
    pub anomaly: AnomalyFacts,
    pub request: RequestFacts,
    pub environment: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn human(subject: &str) -> HumanFacts {
        HumanFacts {
            subject: subject.into(),
            email: format!("{subject}@example.com"),
            name: subject.to_uppercase(),
            department: "procurement".into(),
            title: String::new(),
            role: String::new(),
            active: true,
            manager: None,
            groups: vec![],
        }
    }

    /// A procurement agent owned by alice ordering `detail` on Monday 10:00 UTC.
    pub(crate) fn facts(action: &str, detail: Value) -> DecisionFacts {
        DecisionFacts {
            action: action.into(),
            principal: Principal::Agent,
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
            owner_manager: None,
            user: None,
            tool: ToolFacts::unknown(),
            totals: TotalsFacts::single(&Arguments::from_detail(&detail)),
            arguments: Arguments::from_detail(&detail),
            // 2026-11-30 is a Monday.
            time: TimeFacts::at(1_796_032_800_000, &jiff::tz::TimeZone::UTC, "UTC"),
            network: NetworkFacts::default(),
            prompt_labels: vec![],
            session: SessionFacts::default(),
            anomaly: AnomalyFacts::default(),
            request: RequestFacts {
                scope: "openid".into(),
                ..RequestFacts::default()
            },
            environment: "production".into(),
        }
    }

    /// Dry-runs replay the facts a trace recorded: what the trace leaves out (empty
    /// fields) must come back as it was, and a full set must survive too.
    #[test]
    fn recorded_facts_replay_as_they_were_with_or_without_empty_fields() {
        let mut sparse = facts("purchase_order", serde_json::json!({"amount": 120}));
        sparse.agent.department.clear();
        sparse.owner.title.clear();
        let text = serde_json::to_string(&sparse).unwrap();
        for left_out in ["\"title\"", "\"session\"", "\"prompt_labels\"", "\"zones\""] {
            assert!(!text.contains(left_out), "{left_out} in {text}");
        }
        let back: DecisionFacts = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sparse);

        let mut full = sparse.clone();
        full.agent.approver = Some("manager".into());
        full.network = NetworkFacts {
            source_ip: Some("10.0.0.1".parse().unwrap()),
            zones: vec!["office".into()],
            zoned: true,
        };
        full.prompt_labels = vec!["pii".into()];
        full.session = SessionFacts {
            id: Some("t1".into()),
            classifications: vec!["confidential".into()],
            classes: vec!["read".into()],
            actions: 2,
        };
        let back: DecisionFacts =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn time_is_read_in_the_configured_zone() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        // 2026-11-30T10:00:00Z is 11:00 in Berlin (CET), a Monday.
        let t = TimeFacts::at(1_796_032_800_000, &berlin, "Europe/Berlin");
        assert_eq!(
            (t.hour, t.minute, t.weekday.as_str(), t.day_of_week),
            (11, 0, "Mon", 1)
        );
        // 2026-07-05T22:30:00Z is Monday 00:30 in Berlin (CEST).
        let t = TimeFacts::at(1_783_290_600_000, &berlin, "Europe/Berlin");
        assert_eq!((t.hour, t.minute, t.weekday.as_str()), (0, 30, "Mon"));
    }

    #[test]
    fn zones_contain_the_source_address() {
        let zones = vec![
            ("corp".to_owned(), vec!["10.0.0.0/8".parse().unwrap()]),
            (
                "vpn".to_owned(),
                vec!["10.8.0.0/16".parse().unwrap(), "fd00::/8".parse().unwrap()],
            ),
        ];
        let n = NetworkFacts::of(Some("10.8.1.2".parse().unwrap()), &zones);
        assert_eq!(n.zones, ["corp", "vpn"]);
        assert!(
            NetworkFacts::of(Some("192.0.2.1".parse().unwrap()), &zones)
                .zones
                .is_empty()
        );
        assert_eq!(
            NetworkFacts::of(Some("fd00::1".parse().unwrap()), &zones).zones,
            ["vpn"]
        );
        assert!(NetworkFacts::of(None, &zones).zones.is_empty());
        let mapped = NetworkFacts::of(Some("::ffff:10.8.1.2".parse().unwrap()), &zones);
        assert_eq!(mapped.zones, ["corp", "vpn"]);
        assert_eq!(mapped.source_ip, Some("10.8.1.2".parse().unwrap()));
    }
}
