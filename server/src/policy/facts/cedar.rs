//! The translation of [`DecisionFacts`] into a Cedar request, context and entities, and
//! the cache keys that let a caller reuse the parts that do not change between requests.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};
use cedar_policy_core::ast::{Context as CoreContext, Value as V};
use ref_cast::RefCast as _;
use smol_str::SmolStr;

use super::{ContextFields, DecisionFacts, HumanFacts};

/// The multiply-rotate hash of rustc's `FxHasher`: a few instructions a word, where
/// SipHash took 6 % of a decision.
#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The entity type names, parsed once (parsing one costs more than building an entity).
fn type_name(name: &str) -> EntityTypeName {
    static NAMES: std::sync::LazyLock<Vec<(&'static str, EntityTypeName)>> =
        std::sync::LazyLock::new(|| {
            ["Agent", "Human", "Group", "Tool", "Action"]
                .into_iter()
                .filter_map(|n| EntityTypeName::from_str(n).ok().map(|t| (n, t)))
                .collect()
        });
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.clone())
        .unwrap_or_else(unreachable_type)
}

#[allow(clippy::panic)] // only reachable if the constant type names above stop parsing
fn unreachable_type() -> EntityTypeName {
    panic!("entity type names are valid identifiers")
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(kind), EntityId::new(id))
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

/// A number as Cedar `Long`, rounded up (so `amount >= 400` holds for 399.5 too).
fn rounded_up(n: f64) -> i64 {
    n.ceil().clamp(i64::MIN as f64, i64::MAX as f64) as i64
}

/// A number in hundredths, rounded to the nearest (`amount_cents`, ratios in percent).
/// Cedar's `decimal` would be exact too, but constructing one parses its extension name
/// on every call, which cost more than the rest of a decision.
fn hundredths(n: f64) -> i64 {
    (n * 100.0).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64
}

/// A Cedar record of the fields that have a value. Inserting into the map one by one
/// costs less than `BTreeMap::from_iter`'s collect, sort and bulk build for these few keys.
fn record<const N: usize>(fields: [(&'static str, Option<V>); N]) -> V {
    let mut map = BTreeMap::new();
    for (k, v) in fields {
        if let Some(v) = v {
            map.insert(SmolStr::new_static(k), v);
        }
    }
    V::record_arc(Arc::new(map), None)
}

fn strings(items: &[String]) -> V {
    V::set(items.iter().map(|s| V::from(s.as_str())), None)
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
    /// A key for the entities of these facts (they depend on the directory only). Not a
    /// defence against collisions chosen by an attacker: the facts come from the
    /// directory, not from requests.
    pub fn entities_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = FxHasher::default();
        (
            &self.agent,
            &self.owner,
            &self.owner_manager,
            &self.user,
            &self.tool,
        )
            .hash(&mut h);
        h.finish()
    }

    /// The Cedar entities: `base` (the schema's action hierarchy) with the agent, its
    /// owner (and the owner's manager), the user, the tool and the groups they are in.
    pub fn entities(&self, base: &Entities) -> Result<Entities, String> {
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
        base.clone()
            .add_entities(entities, None)
            .map_err(|e| e.to_string())
    }

    /// The parts of the context many requests share (time to the minute, network, prompt
    /// labels, session, environment), which a cache may keep; see [`Self::context_with`].
    pub fn shared_context(&self) -> ContextFields {
        let t = &self.time;
        let time = record([
            ("hour", Some(V::from(t.hour))),
            ("minute", Some(V::from(t.minute))),
            ("weekday", Some(V::from(t.weekday.as_str()))),
            ("day_of_week", Some(V::from(t.day_of_week))),
            ("timezone", Some(V::from(t.timezone.as_str()))),
        ]);
        let network = record([
            // Text, not `ipaddr`: rules on addresses use the configured zones.
            (
                "source_ip",
                self.network.source_ip.map(|ip| V::from(ip.to_string())),
            ),
            ("zones", Some(strings(&self.network.zones))),
        ]);
        let prompt = record([("labels", Some(strings(&self.prompt_labels)))]);
        let s = &self.session;
        let session = record([
            ("id", s.id.as_deref().map(V::from)),
            ("classifications", Some(strings(&s.classifications))),
            ("classes", Some(strings(&s.classes))),
            ("actions", Some(V::from(s.actions))),
        ]);
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ("time", time),
            ("network", network),
            ("prompt", prompt),
            ("session", session),
            ("environment", V::from(self.environment.as_str())),
        ] {
            fields.insert(SmolStr::new_static(k), v);
        }
        fields
    }

    /// A key for [`Self::shared_context`].
    pub fn shared_context_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = FxHasher::default();
        (
            &self.time,
            &self.network,
            &self.prompt_labels,
            &self.session,
            &self.environment,
        )
            .hash(&mut h);
        h.finish()
    }

    /// The Cedar context (see the schema's `<Action>Context` types): `shared` (from
    /// [`Self::shared_context`]) with this request's arguments, anomaly facts and request
    /// facts. Built from values, not expressions Cedar would have to evaluate first.
    pub fn context_with(&self, shared: &ContextFields) -> Context {
        let args = &self.arguments;
        let arguments = record([
            ("amount", args.amount.map(rounded_up).map(V::from)),
            ("amount_cents", args.amount.map(hundredths).map(V::from)),
            ("currency", args.currency.as_deref().map(V::from)),
            ("vendor", args.vendor.as_deref().map(V::from)),
            ("quantity", args.quantity.map(rounded_up).map(V::from)),
            ("target", args.target.as_deref().map(V::from)),
            ("environment", args.environment.as_deref().map(V::from)),
            (
                "classification",
                args.classification.as_deref().map(V::from),
            ),
            ("owner", args.owner.as_deref().map(V::from)),
        ]);
        // Facts recorded before totals existed replay as the single entry they were.
        let single;
        let t = if self.totals.entries == 0 {
            single = super::TotalsFacts::single(args);
            &single
        } else {
            &self.totals
        };
        let totals = record([
            ("entries", Some(V::from(t.entries))),
            ("amount", t.amount.map(rounded_up).map(V::from)),
            ("amount_cents", t.amount.map(hundredths).map(V::from)),
            ("quantity", t.quantity.map(rounded_up).map(V::from)),
        ]);
        let n = &self.anomaly;
        let anomaly = record([
            ("samples", Some(V::from(n.samples))),
            ("rate_last_hour", Some(V::from(n.rate_last_hour))),
            ("quantity_p95", n.quantity_p95.map(rounded_up).map(V::from)),
            (
                "quantity_ratio_pct",
                n.quantity_ratio.map(hundredths).map(V::from),
            ),
            ("amount_p95", n.amount_p95.map(rounded_up).map(V::from)),
            (
                "amount_ratio_pct",
                n.amount_ratio.map(hundredths).map(V::from),
            ),
        ]);
        let r = &self.request;
        let request = record([
            ("scope", Some(V::from(r.scope.as_str()))),
            ("binding_message", r.binding_message.as_deref().map(V::from)),
            ("task_id", r.task_id.as_deref().map(V::from)),
        ]);
        let mut fields = shared.clone();
        fields.insert(SmolStr::new_static("arguments"), arguments);
        fields.insert(SmolStr::new_static("totals"), totals);
        fields.insert(SmolStr::new_static("anomaly"), anomaly);
        fields.insert(SmolStr::new_static("request"), request);
        Context::ref_cast(&CoreContext::Value(Arc::new(fields))).clone()
    }

    /// The whole Cedar context.
    pub fn context(&self) -> Context {
        self.context_with(&self.shared_context())
    }

    /// The Cedar request: the agent (or, for a human's action, the human) performs the
    /// action on the tool.
    pub fn request(&self) -> Result<Request, String> {
        self.request_with(self.context())
    }

    /// The Cedar request with `context` (from [`Self::context_with`]).
    pub fn request_with(&self, context: Context) -> Result<Request, String> {
        let principal = match self.principal {
            super::Principal::Agent => uid("Agent", &self.agent.client_id),
            super::Principal::User => {
                uid("Human", &self.user.as_ref().unwrap_or(&self.owner).subject)
            }
        };
        Request::new(
            principal,
            uid("Action", &self.action),
            uid("Tool", &self.tool.id),
            context,
            None,
        )
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use cedar_policy::Entities;

    use super::rounded_up;
    use crate::policy::facts::tests::facts;

    #[test]
    fn facts_build_a_cedar_request() {
        let f = facts(
            "purchase_order",
            serde_json::json!({"type": "purchase_order", "vendor": "Acme", "amount": 399.5, "currency": "USD"}),
        );
        assert!(f.entities(&Entities::empty()).is_ok());
        assert!(f.request().is_ok());
        assert_eq!(rounded_up(399.5), 400);
        assert_eq!(rounded_up(400.0), 400);
    }
}
