//! The policy service: keeps the active policy version compiled, gathers the facts of an
//! attempted action (directory, session, baseline, time, network), evaluates, routes a
//! step-up to its approvers, and prepares what the decision writes: its trace event, the
//! session's update and the baseline's samples. Callers write those atomically with the
//! request (see `store::group_commit`). The engine and its caches are here; a decision's
//! steps are in [`decide`](mod@decide).

mod decide;

pub use decide::{Attempt, Decided, actions_of, decide, sample_of};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use super::baseline::{Baseline, MAX_SAMPLES, Sample};
use super::document::{DEFAULT_POLICY, PolicyDocument, Problem, compile};
use super::facts::{DecisionFacts, NetworkFacts, TimeFacts, ToolFacts};
use super::schema::CountersignSchema;
use super::{Decision, PolicyError};
use crate::config::{Config, PolicyConfig};
use crate::store::baselines::SampleRecord;
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
