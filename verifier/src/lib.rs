//! Offline verification of Countersign credentials, for tools and gateways.
//!
//! A credential is a W3C Verifiable Credential secured as a JWT (`typ: vc+jwt`, ES256)
//! that records one human's approval of one agent's action. Before executing a call, the
//! tool presents the credential (and the agent's DPoP proof) to [`Verifier::verify`], which
//! checks, without calling the issuer per request:
//!
//! - the signature against the trusted issuer's keys (unknown `kid`, `none`, HMAC refused);
//! - the type, issuer and validity window;
//! - that the call fits the approved `authorization_details` (per-type matchers from
//!   `countersign_shared::authorization`);
//! - the DPoP proof when the credential is key-bound (method, URL, `ath`, key, replay);
//! - revocation, from the issuer's Token Status List, cached for its `ttl` (fail closed
//!   when the status cannot be learned, unless configured otherwise);
//! - that the credential is bound to the agent's key (bearer credentials are refused
//!   unless [`VerifierBuilder::allow_bearer_credentials`]);
//! - how often it was used: a call past its `max_uses` is refused (`use_limit_reached`),
//!   counted by a [`UsageStore`] (in this process by default, or at the issuer).
//!
//! No async runtime, no web framework, no database. Keys come from the caller
//! ([`VerifierBuilder::trust_issuer`]) and, after a rotation, from a [`KeySource`]; status
//! lists from a [`status::StatusSource`]. The `http` feature provides both over HTTP(S).

mod checked;
mod claims;
mod dpop;
mod error;
pub mod status;
pub mod usage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use countersign_jose::{JwkSet, UnverifiedJws, VerifyKey};
use countersign_shared::authorization::{ActionMatcher, ExactMatcher, PurchaseOrderMatcher};
use serde_json::Value;

pub use error::Rejection;

pub(crate) use claims::StatusRef;
use claims::{Claims, max_uses_of};

pub mod fuzzing;
pub use status::{StatusList, StatusSource};
#[cfg(feature = "http")]
pub use usage::HttpUsageStore;
pub use usage::{CredentialUse, InMemoryUsageStore, UsageStore, UseCount};

/// Where an issuer's current keys come from when a credential names a `kid` the verifier
/// does not know yet (after a key rotation). Enable the `http` feature for
/// [`status::HttpKeySource`], which reads `<issuer>/jwks.json`.
pub trait KeySource: Send + Sync {
    fn fetch(&self, issuer: &str) -> Result<JwkSet, String>;
}

/// Fewest seconds between two key refreshes for one issuer, so a stream of credentials
/// with made-up `kid`s cannot turn into a stream of requests to the issuer.
const KEY_REFRESH_INTERVAL: i64 = 60;

fn parse_keys(jwks: &JwkSet) -> IssuerKeys {
    jwks.keys
        .iter()
        .filter_map(|k| VerifyKey::from_jwk(k).ok().map(|v| (k.kid.clone(), v)))
        .collect()
}

/// Whether `keys` has the key `token` (a JWS) names; a token naming none is tried against
/// all of them.
fn knows_kid_of(keys: &IssuerKeys, token: &str) -> bool {
    match UnverifiedJws::parse(token).map(|j| j.header.kid) {
        Ok(Some(kid)) => keys.iter().any(|(k, _)| k.as_deref() == Some(kid.as_str())),
        _ => true,
    }
}

/// A call as the tool received it.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// The credential (from `Authorization: DPoP <credential>`).
    pub token: &'a str,
    /// The `DPoP` header, if any.
    pub dpop_proof: Option<&'a str>,
    /// HTTP method and full URL of the call.
    pub method: &'a str,
    pub url: &'a str,
    /// The `authorization_details` type the call performs, and its arguments. `None` skips
    /// the action check (for gateways that only authenticate).
    pub action: Option<&'a str>,
    pub arguments: Option<&'a Value>,
}

/// Who approved what, for the tool's own log.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub credential_id: String,
    /// The agent (OAuth client id) holding the credential.
    pub agent: String,
    /// RFC 7638 thumbprint of the agent key the credential is bound to.
    pub agent_key: Option<String>,
    /// The approving human's subject and name; `None` when a policy allowed the action
    /// without asking anyone (`approval_method` is then `policy`).
    pub approver: Option<String>,
    pub approver_name: Option<String>,
    /// How the approval was given (`dev` for developer approvals).
    pub approval_method: Option<String>,
    /// The policy that required the approval, when the issuer recorded one.
    pub policy: Option<Value>,
    pub authorization_details: Vec<Value>,
    pub expires_at: i64,
    /// How often the credential may be used (`None`: any number of times), and which
    /// use this call was (`None` when uses are not counted).
    pub max_uses: Option<u64>,
    pub use_number: Option<u64>,
}

pub(crate) type IssuerKeys = Vec<(Option<String>, VerifyKey)>;

/// Configures a [`Verifier`].
pub struct VerifierBuilder {
    issuers: HashMap<String, Arc<IssuerKeys>>,
    key_source: Option<Arc<dyn KeySource>>,
    matchers: Vec<Box<dyn ActionMatcher>>,
    status_source: Option<Arc<dyn StatusSource>>,
    max_status_ttl: i64,
    fail_open: bool,
    leeway: i64,
    dpop_max_age: i64,
    replay_capacity: usize,
    credential_cache_capacity: usize,
    usage: Arc<dyn UsageStore>,
    allow_bearer: bool,
}

impl VerifierBuilder {
    /// Trusts credentials from `issuer` signed by a key of `jwks` (keys that are not
    /// P-256 are ignored).
    pub fn trust_issuer(mut self, issuer: impl Into<String>, jwks: &JwkSet) -> Self {
        self.issuers
            .insert(issuer.into(), Arc::new(parse_keys(jwks)));
        self
    }

    /// Refetches a trusted issuer's keys from `source` when a credential names an unknown
    /// `kid` (at most once a minute per issuer).
    pub fn key_source(mut self, source: impl KeySource + 'static) -> Self {
        self.key_source = Some(Arc::new(source));
        self
    }

    /// Adds (or replaces) the matcher for one `authorization_details` type.
    pub fn matcher(mut self, m: impl ActionMatcher + 'static) -> Self {
        self.matchers.retain(|x| x.action_type() != m.action_type());
        self.matchers.push(Box::new(m));
        self
    }

    pub fn status_source(mut self, source: impl StatusSource + 'static) -> Self {
        self.status_source = Some(Arc::new(source));
        self
    }

    /// Caches a status list for at most this long, even if its `ttl` allows longer.
    pub fn status_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.max_status_ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Counts uses in `store` instead of this process's memory (e.g. [`HttpUsageStore`]
    /// for a tool running on several hosts).
    pub fn usage_store(mut self, store: impl UsageStore + 'static) -> Self {
        self.usage = Arc::new(store);
        self
    }

    /// Whether a credential must be bound to the agent's key (`cnf.jkt`, proven by a DPoP
    /// proof on every call). Default true: a bearer credential is refused
    /// (`not_key_bound`); set false only for agents registered bearer-only.
    pub fn require_proof_of_possession(mut self, required: bool) -> Self {
        self.allow_bearer = !required;
        self
    }

    /// Same as `require_proof_of_possession(false)`.
    pub fn allow_bearer_credentials(self) -> Self {
        self.require_proof_of_possession(false)
    }

    /// Accept credentials whose status cannot be learned (default: refuse them).
    pub fn fail_open_when_status_unavailable(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// Tolerated clock difference, seconds (default 30).
    pub fn leeway_secs(mut self, secs: i64) -> Self {
        self.leeway = secs;
        self
    }

    /// DPoP proofs older than this are refused (default 120 s).
    pub fn dpop_max_age_secs(mut self, secs: i64) -> Self {
        self.dpop_max_age = secs;
        self
    }

    /// How many checked credentials to remember (default 10,000; 0 checks every
    /// credential's signature on every call). See [`Verifier::verify`].
    pub fn credential_cache_capacity(mut self, entries: usize) -> Self {
        self.credential_cache_capacity = entries;
        self
    }

    pub fn build(self) -> Verifier {
        Verifier {
            issuers: RwLock::new(self.issuers),
            key_source: self.key_source,
            last_key_refresh: Mutex::new(HashMap::new()),
            matchers: self.matchers,
            status_source: self.status_source,
            status_cache: status::StatusCache::default(),
            max_status_ttl: self.max_status_ttl,
            fail_open: self.fail_open,
            leeway: self.leeway,
            dpop_max_age: self.dpop_max_age,
            replay: dpop::ReplayCache::new(self.replay_capacity),
            checked: checked::CredentialCache::new(self.credential_cache_capacity),
            usage: self.usage,
            allow_bearer: self.allow_bearer,
        }
    }
}

/// Verifies presented credentials. Share one per process: it caches status lists and
/// remembers DPoP proofs to refuse replays.
pub struct Verifier {
    issuers: RwLock<HashMap<String, Arc<IssuerKeys>>>,
    key_source: Option<Arc<dyn KeySource>>,
    last_key_refresh: Mutex<HashMap<String, i64>>,
    matchers: Vec<Box<dyn ActionMatcher>>,
    status_source: Option<Arc<dyn StatusSource>>,
    status_cache: status::StatusCache,
    max_status_ttl: i64,
    fail_open: bool,
    leeway: i64,
    dpop_max_age: i64,
    replay: dpop::ReplayCache,
    checked: checked::CredentialCache,
    usage: Arc<dyn UsageStore>,
    allow_bearer: bool,
}

impl Verifier {
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            issuers: HashMap::new(),
            key_source: None,
            matchers: vec![Box::new(PurchaseOrderMatcher::default())],
            status_source: None,
            max_status_ttl: 300,
            fail_open: false,
            leeway: 30,
            dpop_max_age: 120,
            replay_capacity: 100_000,
            credential_cache_capacity: 10_000,
            usage: Arc::new(InMemoryUsageStore::default()),
            allow_bearer: false,
        }
    }

    /// Verifies a presentation now.
    pub fn verify(&self, p: &Presentation<'_>) -> Result<Verdict, Rejection> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(p, now)
    }

    /// Verifies a presentation at Unix time `now` (seconds).
    ///
    /// A credential seen before (and verified against the issuer's current keys) is not
    /// parsed or signature-checked again; the validity window, the action, the DPoP proof
    /// and the revocation status are checked on every call.
    pub fn verify_at(&self, p: &Presentation<'_>, now: i64) -> Result<Verdict, Rejection> {
        let token_hash = countersign_jose::sha256(p.token.as_bytes());
        let checked = match self.checked.get(&token_hash) {
            Some(c)
                if self
                    .keys_of(&c.issuer)
                    .is_some_and(|k| Arc::ptr_eq(&k, &c.keys)) =>
            {
                c
            }
            _ => {
                let c = Arc::new(self.check_credential(p.token, now)?);
                self.checked.insert(token_hash, c.clone(), now);
                c
            }
        };

        if checked.exp + self.leeway <= now {
            return Err(Rejection::Expired {
                exp: checked.exp,
                now,
            });
        }
        if let Some(nbf) = checked.nbf.filter(|nbf| nbf - self.leeway > now) {
            return Err(Rejection::NotYetValid { nbf, now });
        }
        let verdict = &checked.verdict;
        if verdict.agent_key.is_none() && !self.allow_bearer {
            return Err(Rejection::NotKeyBound);
        }
        if let Some(action) = p.action {
            self.check_action(&verdict.authorization_details, action, p.arguments)?;
        }
        if let Some(jkt) = &verdict.agent_key {
            let proof = p.dpop_proof.ok_or(Rejection::DpopMissing)?;
            let ath = countersign_jose::b64url_encode(token_hash);
            let ctx = dpop::ProofContext {
                ath: &ath,
                bound_jkt: jkt,
                method: p.method,
                url: p.url,
                now,
                max_age: self.dpop_max_age,
                leeway: self.leeway,
            };
            let (id, expires) = dpop::check(proof, &ctx)?;
            match self.replay.first_use(id, expires, now) {
                dpop::Use::First => {}
                dpop::Use::Replayed => return Err(Rejection::DpopReplayed),
                dpop::Use::TooOld => {
                    return Err(Rejection::DpopInvalid(
                        "the proof is older than the replay window; send a fresh one".into(),
                    ));
                }
            }
        }
        if let Some(reference) = &checked.status {
            self.check_status(reference, &checked.issuer, &checked.keys, now)?;
        }
        // Last: only a call that passed every check spends a use.
        let mut verdict = verdict.clone();
        if let Some(max_uses) = verdict.max_uses {
            let used = CredentialUse {
                issuer: &checked.issuer,
                jti: &checked.jti,
                token: p.token,
                dpop_proof: p.dpop_proof,
                method: p.method,
                url: p.url,
                max_uses,
                expires_at: checked.exp,
                now,
            };
            match self.usage.record_use(&used) {
                Ok(UseCount::Counted(n)) => verdict.use_number = Some(n),
                Ok(UseCount::LimitReached) => return Err(Rejection::UseLimitReached { max_uses }),
                Err(reason) => return Err(Rejection::UsageUnavailable(reason)),
            }
        }
        Ok(verdict)
    }

    /// Parses `token`, verifies its signature against the trusted issuer's keys and reads
    /// what it states (everything that does not depend on the call or the time).
    fn check_credential(&self, token: &str, now: i64) -> Result<checked::Checked, Rejection> {
        let jws = UnverifiedJws::parse(token)?;
        if jws.header.typ.as_deref() != Some("vc+jwt") {
            return Err(Rejection::WrongType(jws.header.typ.clone()));
        }
        let claims: Claims = jws
            .insecure_claims()
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        let issuer = claims.iss.clone().unwrap_or_default();
        let mut keys = self
            .keys_of(&issuer)
            .ok_or_else(|| Rejection::UntrustedIssuer(claims.iss.clone()))?;
        match self.check_signature(&jws, &keys) {
            Err(Rejection::UnknownKey(kid)) => {
                keys = self
                    .refresh_keys(&issuer, now)
                    .ok_or(Rejection::UnknownKey(kid))?;
                self.check_signature(&jws, &keys)?;
            }
            other => other?,
        }

        let exp = claims
            .exp
            .ok_or_else(|| Rejection::Malformed("exp is missing".into()))?;
        let details = claims
            .subject
            .and_then(|s| s.authorization_details)
            .unwrap_or_default();
        let evidence = claims.evidence.into_iter().next();
        let (approver, approval_method, policy) = match evidence {
            Some(e) => (e.approver, e.method, e.policy.filter(|p| !p.is_null())),
            None => (None, None, None),
        };
        let approver = match approver {
            Some(a) => Some(a),
            None if approval_method.as_deref() == Some("policy") => None,
            None => return Err(Rejection::Malformed("evidence.approver is missing".into())),
        };
        let jti = claims
            .jti
            .clone()
            .ok_or_else(|| Rejection::Malformed("jti is missing".into()))?;
        let max_uses = max_uses_of(claims.max_uses.as_ref())?;
        let verdict = Verdict {
            credential_id: claims.id.unwrap_or_else(|| jti.clone()),
            agent: claims
                .client_id
                .ok_or_else(|| Rejection::Malformed("client_id is missing".into()))?,
            agent_key: claims.cnf.and_then(|c| c.jkt),
            approver: approver
                .as_ref()
                .map(|a| {
                    a.subject
                        .clone()
                        .ok_or_else(|| Rejection::Malformed("approver subject is missing".into()))
                })
                .transpose()?,
            approver_name: approver.and_then(|a| a.name),
            approval_method,
            policy,
            authorization_details: details,
            expires_at: exp,
            max_uses,
            use_number: None,
        };
        Ok(checked::Checked {
            keys,
            issuer,
            jti,
            exp,
            nbf: claims.nbf,
            status: claims.status.and_then(|s| s.status_list),
            verdict,
        })
    }

    fn keys_of(&self, issuer: &str) -> Option<Arc<IssuerKeys>> {
        self.issuers.read().ok()?.get(issuer).cloned()
    }

    /// Refetches `issuer`'s keys if allowed now; returns the new set.
    fn refresh_keys(&self, issuer: &str, now: i64) -> Option<Arc<IssuerKeys>> {
        let source = self.key_source.as_ref()?;
        {
            let mut last = self.last_key_refresh.lock().ok()?;
            if last
                .get(issuer)
                .is_some_and(|t| now - t < KEY_REFRESH_INTERVAL)
            {
                return None;
            }
            last.insert(issuer.to_owned(), now);
        }
        let keys = Arc::new(parse_keys(&source.fetch(issuer).ok()?));
        self.issuers
            .write()
            .ok()?
            .insert(issuer.to_owned(), keys.clone());
        Some(keys)
    }

    fn check_signature(&self, jws: &UnverifiedJws, keys: &IssuerKeys) -> Result<(), Rejection> {
        let kid = jws.header.kid.as_deref();
        let mut candidates = keys
            .iter()
            .filter(|(k, _)| kid.is_none() || k.as_deref() == kid)
            .peekable();
        if candidates.peek().is_none() {
            return Err(Rejection::UnknownKey(jws.header.kid.clone()));
        }
        if candidates.any(|(_, key)| jws.verify_key(key).is_ok()) {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }

    fn check_action(
        &self,
        details: &[Value],
        action: &str,
        arguments: Option<&Value>,
    ) -> Result<(), Rejection> {
        let approved: Vec<&Value> = details
            .iter()
            .filter(|d| d.get("type").and_then(Value::as_str) == Some(action))
            .collect();
        if approved.is_empty() {
            return Err(Rejection::ActionMismatch {
                requested: action.to_owned(),
                approved: details
                    .iter()
                    .filter_map(|d| d.get("type")?.as_str().map(str::to_owned))
                    .collect(),
            });
        }
        let empty = Value::Object(serde_json::Map::new());
        let arguments = arguments.unwrap_or(&empty);
        let fallback = ExactMatcher::new(action);
        let matcher: &dyn ActionMatcher =
            match self.matchers.iter().find(|m| m.action_type() == action) {
                Some(m) => m.as_ref(),
                None => &fallback,
            };
        let mut first_mismatch = None;
        for entry in approved {
            match matcher.check(entry, arguments) {
                Ok(()) => return Ok(()),
                Err(m) => {
                    first_mismatch.get_or_insert(m);
                }
            }
        }
        let m = first_mismatch.unwrap_or_else(|| {
            countersign_shared::authorization::Mismatch::new("arguments", "no approval matches")
        });
        Err(Rejection::ArgumentOutsideApproval {
            field: m.field,
            reason: m.reason,
        })
    }

    fn check_status(
        &self,
        reference: &StatusRef,
        issuer: &str,
        keys: &IssuerKeys,
        now: i64,
    ) -> Result<(), Rejection> {
        let status = match self.status_cache.fresh(&reference.uri, reference.idx, now) {
            Some(status) => status,
            None => match self.fetch_status(reference, issuer, keys, now) {
                Ok(status) => status,
                Err(_) if self.fail_open => return Ok(()),
                Err(reason) => return Err(Rejection::StatusUnavailable(reason)),
            },
        };
        match status {
            Some(0) => Ok(()),
            Some(_) => Err(Rejection::Revoked),
            None if self.fail_open => Ok(()),
            None => Err(Rejection::StatusUnavailable(format!(
                "index {} is outside the list",
                reference.idx
            ))),
        }
    }

    fn fetch_status(
        &self,
        reference: &StatusRef,
        issuer: &str,
        keys: &IssuerKeys,
        now: i64,
    ) -> Result<Option<u8>, String> {
        let source = self
            .status_source
            .as_ref()
            .ok_or("no status source is configured")?;
        let token = source.fetch(&reference.uri)?;
        let (list, ttl) = match status::decode(&token, &reference.uri, keys, now) {
            // After a key rotation the issuer signs its lists with a key this verifier may
            // not know yet, while the credential (signed by the retired key) verified:
            // learn the new key as for a credential, at most once a minute.
            Err(e) if !knows_kid_of(keys, &token) => match self.refresh_keys(issuer, now) {
                Some(fresh) => status::decode(&token, &reference.uri, &fresh, now)?,
                None => return Err(e),
            },
            other => other?,
        };
        let status = list.get(reference.idx);
        let ttl = ttl
            .unwrap_or(self.max_status_ttl)
            .clamp(0, self.max_status_ttl);
        self.status_cache.store(&reference.uri, list, now + ttl);
        Ok(status)
    }
}
