//! The facts one decision sees, as plain data (recorded in the trace, replayed by
//! dry-runs), and their translation into a Cedar request and entities. Pure: nothing here
//! reads the database or the clock.

use std::net::IpAddr;
use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ToolConfig;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanFacts {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub department: String,
    pub title: String,
    pub role: String,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFacts {
    pub client_id: String,
    pub name: String,
    pub owner: String,
    pub department: String,
    pub risk_tier: String,
    /// `active` or `suspended`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    pub zones: Vec<String>,
    /// Whether the deployment names any zones (else "outside every zone" means nothing).
    #[serde(default)]
    pub zoned: bool,
}

impl NetworkFacts {
    pub fn of(ip: Option<IpAddr>, zones: &[(String, Vec<ipnet::IpNet>)]) -> Self {
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub classifications: Vec<String>,
    pub classes: Vec<String>,
    pub actions: i64,
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
    pub agent: AgentFacts,
    pub owner: HumanFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_manager: Option<HumanFacts>,
    /// The human the request names, when not the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<HumanFacts>,
    pub tool: ToolFacts,
    pub arguments: Arguments,
    pub time: TimeFacts,
    pub network: NetworkFacts,
    pub prompt_labels: Vec<String>,
    pub session: SessionFacts,
    pub anomaly: AnomalyFacts,
    pub request: RequestFacts,
    pub environment: String,
}

fn type_name(name: &str) -> EntityTypeName {
    // The names are fixed identifiers; parsing them cannot fail.
    EntityTypeName::from_str(name).unwrap_or_else(|_| unreachable_type())
}

#[allow(clippy::panic)] // only reachable if the constant type names above stop parsing
fn unreachable_type() -> EntityTypeName {
    panic!("entity type names are valid identifiers")
}

pub(crate) fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(kind), EntityId::new(id))
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn long(n: i64) -> RestrictedExpression {
    RestrictedExpression::new_long(n)
}

/// A number as Cedar `Long`, rounded up (so `amount >= 400` holds for 399.5 too), and as a
/// `decimal` when it fits Cedar's four fractional digits.
fn rounded_up(n: f64) -> i64 {
    n.ceil().clamp(i64::MIN as f64, i64::MAX as f64) as i64
}

fn decimal(n: f64) -> Option<RestrictedExpression> {
    (n.abs() < 9.0e14).then(|| RestrictedExpression::new_decimal(format!("{n:.4}")))
}

fn record(
    fields: Vec<(&str, Option<RestrictedExpression>)>,
) -> Result<RestrictedExpression, String> {
    RestrictedExpression::new_record(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))),
    )
    .map_err(|e| e.to_string())
}

fn strings(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().map(|s| string(s)))
}

fn human_entity(h: &HumanFacts) -> Result<Entity, String> {
    let mut attrs = vec![
        ("email".to_owned(), string(&h.email)),
        ("name".to_owned(), string(&h.name)),
        ("department".to_owned(), string(&h.department)),
        ("title".to_owned(), string(&h.title)),
        ("role".to_owned(), string(&h.role)),
        (
            "employment_status".to_owned(),
            string(if h.active { "active" } else { "inactive" }),
        ),
    ];
    if let Some(m) = &h.manager {
        attrs.push((
            "manager".to_owned(),
            RestrictedExpression::new_entity_uid(uid("Human", m)),
        ));
    }
    let parents = h.groups.iter().map(|g| uid("Group", g)).collect();
    Entity::new(
        uid("Human", &h.subject),
        attrs.into_iter().collect(),
        parents,
    )
    .map_err(|e| e.to_string())
}

fn group_entity(name: &str) -> Result<Entity, String> {
    Entity::new(
        uid("Group", name),
        [("name".to_owned(), string(name))].into_iter().collect(),
        Default::default(),
    )
    .map_err(|e| e.to_string())
}

impl DecisionFacts {
    /// The Cedar entities: the agent, its owner (and the owner's manager), the user, the
    /// tool, the groups they are in, and `actions` (the schema's action hierarchy).
    pub fn entities(&self, actions: &[Entity]) -> Result<Entities, String> {
        let a = &self.agent;
        let agent = Entity::new(
            uid("Agent", &a.client_id),
            [
                ("name".to_owned(), string(&a.name)),
                (
                    "owner".to_owned(),
                    RestrictedExpression::new_entity_uid(uid("Human", &a.owner)),
                ),
                ("department".to_owned(), string(&a.department)),
                ("risk_tier".to_owned(), string(&a.risk_tier)),
                ("status".to_owned(), string(&a.status)),
            ]
            .into_iter()
            .collect(),
            Default::default(),
        )
        .map_err(|e| e.to_string())?;
        let t = &self.tool;
        let tool = Entity::new(
            uid("Tool", &t.id),
            [
                ("risk_level".to_owned(), string(&t.risk_level)),
                (
                    "data_classification".to_owned(),
                    string(&t.data_classification),
                ),
                ("category".to_owned(), string(&t.category)),
            ]
            .into_iter()
            .collect(),
            Default::default(),
        )
        .map_err(|e| e.to_string())?;
        let mut entities = vec![agent, tool];
        let mut groups: Vec<&String> = Vec::new();
        for h in [
            Some(&self.owner),
            self.owner_manager.as_ref(),
            self.user.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if entities.iter().any(|e| e.uid() == uid("Human", &h.subject)) {
                continue;
            }
            entities.push(human_entity(h)?);
            groups.extend(&h.groups);
        }
        groups.sort();
        groups.dedup();
        for g in groups {
            entities.push(group_entity(g)?);
        }
        entities.extend(actions.iter().cloned());
        Entities::from_entities(entities, None).map_err(|e| e.to_string())
    }

    /// The Cedar context (see the schema's `DecisionContext`).
    pub fn context(&self) -> Result<Context, String> {
        let args = &self.arguments;
        let arguments = record(vec![
            ("amount", args.amount.map(rounded_up).map(long)),
            ("amount_decimal", args.amount.and_then(decimal)),
            ("currency", args.currency.as_deref().map(string)),
            ("vendor", args.vendor.as_deref().map(string)),
            ("quantity", args.quantity.map(rounded_up).map(long)),
            ("target", args.target.as_deref().map(string)),
            ("environment", args.environment.as_deref().map(string)),
            ("classification", args.classification.as_deref().map(string)),
        ])?;
        let t = &self.time;
        let time = record(vec![
            ("hour", Some(long(t.hour))),
            ("minute", Some(long(t.minute))),
            ("weekday", Some(string(&t.weekday))),
            ("day_of_week", Some(long(t.day_of_week))),
            ("timezone", Some(string(&t.timezone))),
        ])?;
        let network = record(vec![
            (
                "source_ip",
                self.network
                    .source_ip
                    .map(|ip| RestrictedExpression::new_ip(ip.to_string())),
            ),
            ("zones", Some(strings(&self.network.zones))),
        ])?;
        let prompt = record(vec![("labels", Some(strings(&self.prompt_labels)))])?;
        let s = &self.session;
        let session = record(vec![
            ("id", s.id.as_deref().map(string)),
            ("classifications", Some(strings(&s.classifications))),
            ("classes", Some(strings(&s.classes))),
            ("actions", Some(long(s.actions))),
        ])?;
        let n = &self.anomaly;
        let pct = |r: Option<f64>| r.map(|r| rounded_up(r * 100.0)).map(long);
        let anomaly = record(vec![
            ("samples", Some(long(n.samples))),
            ("rate_last_hour", Some(long(n.rate_last_hour))),
            ("quantity_p95", n.quantity_p95.map(rounded_up).map(long)),
            ("quantity_ratio", n.quantity_ratio.and_then(decimal)),
            ("quantity_ratio_pct", pct(n.quantity_ratio)),
            ("amount_p95", n.amount_p95.map(rounded_up).map(long)),
            ("amount_ratio", n.amount_ratio.and_then(decimal)),
            ("amount_ratio_pct", pct(n.amount_ratio)),
        ])?;
        let r = &self.request;
        let request = record(vec![
            ("scope", Some(string(&r.scope))),
            ("binding_message", r.binding_message.as_deref().map(string)),
            ("task_id", r.task_id.as_deref().map(string)),
        ])?;
        Context::from_pairs([
            ("arguments".to_owned(), arguments),
            ("time".to_owned(), time),
            ("network".to_owned(), network),
            ("prompt".to_owned(), prompt),
            ("session".to_owned(), session),
            ("anomaly".to_owned(), anomaly),
            ("request".to_owned(), request),
            ("environment".to_owned(), string(&self.environment)),
        ])
        .map_err(|e| e.to_string())
    }

    /// The Cedar request: the agent performs the action on the tool.
    pub fn request(&self) -> Result<Request, String> {
        Request::new(
            uid("Agent", &self.agent.client_id),
            uid("Action", &self.action),
            uid("Tool", &self.tool.id),
            self.context()?,
            None,
        )
        .map_err(|e| e.to_string())
    }
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
            agent: AgentFacts {
                client_id: "procurement".into(),
                name: "Procurement".into(),
                owner: "alice".into(),
                department: "procurement".into(),
                risk_tier: "low".into(),
                status: "active".into(),
            },
            owner: human("alice"),
            owner_manager: None,
            user: None,
            tool: ToolFacts::unknown(),
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
    }

    #[test]
    fn facts_build_a_cedar_request() {
        let f = facts(
            "purchase_order",
            serde_json::json!({"type": "purchase_order", "vendor": "Acme", "amount": 399.5, "currency": "USD"}),
        );
        assert!(f.entities(&[]).is_ok());
        assert!(f.request().is_ok());
        assert_eq!(rounded_up(399.5), 400);
        assert_eq!(rounded_up(400.0), 400);
    }
}
