//! How often a credential has been used. A credential states `max_uses` (a step-up
//! approval is spent by the one call it approved, unless the policy allowed more); the
//! verifier counts each accepted call through a [`UsageStore`] and refuses the call past
//! the limit with `use_limit_reached`.
//!
//! - [`InMemoryUsageStore`] (the default) counts within one tool process.
//! - [`HttpUsageStore`] (feature `http`) records each use at the issuer
//!   (`POST <issuer>/credentials/<jti>/uses`, authenticated by the presenter's DPoP proof),
//!   for a tool that runs on several hosts: a credential spent on one host is spent on all.

use std::collections::HashMap;
use std::sync::Mutex;

/// One accepted call, about to be counted.
#[derive(Debug, Clone, Copy)]
pub struct CredentialUse<'a> {
    /// The trusted issuer that signed the credential.
    pub issuer: &'a str,
    /// The credential's `jti`.
    pub jti: &'a str,
    /// The credential and the DPoP proof as presented (the online store forwards them).
    pub token: &'a str,
    pub dpop_proof: Option<&'a str>,
    /// The call's method and URL (the proof's `htm` and `htu`).
    pub method: &'a str,
    pub url: &'a str,
    /// How many uses the credential allows.
    pub max_uses: u64,
    /// When the credential expires (Unix seconds); its count may be forgotten after.
    pub expires_at: i64,
    pub now: i64,
}

/// The count after recording a use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCount {
    /// This was use number `n` (1 for the first), within the limit.
    Counted(u64),
    /// Every allowed use was spent before this call; nothing was recorded.
    LimitReached,
}

/// Where uses are counted. `Err` means the count could not be learned; the verifier then
/// refuses the call (`usage_unavailable`): it never lets a use go uncounted.
pub trait UsageStore: Send + Sync {
    fn record_use(&self, used: &CredentialUse<'_>) -> Result<UseCount, String>;
}

/// Counts uses in this process, for up to `capacity` live credentials. Expired
/// credentials' counts are dropped when room is needed (their credential is refused by
/// its validity window anyway); when every entry is live and the store is full, new
/// credentials are refused rather than counted nowhere.
pub struct InMemoryUsageStore {
    capacity: usize,
    counts: Mutex<HashMap<(String, String), (u64, i64)>>,
}

impl InMemoryUsageStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            counts: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for InMemoryUsageStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl UsageStore for InMemoryUsageStore {
    fn record_use(&self, used: &CredentialUse<'_>) -> Result<UseCount, String> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| "the usage store is poisoned".to_owned())?;
        let key = (used.issuer.to_owned(), used.jti.to_owned());
        if !counts.contains_key(&key) && counts.len() >= self.capacity {
            counts.retain(|_, (_, expires)| *expires >= used.now);
            if counts.len() >= self.capacity {
                return Err(format!(
                    "the usage store holds {} live credentials; none can be added",
                    self.capacity
                ));
            }
        }
        let entry = counts.entry(key).or_insert((0, used.expires_at));
        if entry.0 >= used.max_uses {
            return Ok(UseCount::LimitReached);
        }
        entry.0 += 1;
        Ok(UseCount::Counted(entry.0))
    }
}

/// Records each use at the issuer, which counts for every host of the tool.
#[cfg(feature = "http")]
pub struct HttpUsageStore {
    agent: ureq::Agent,
}

#[cfg(feature = "http")]
impl Default for HttpUsageStore {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            // A 409 (limit reached) is an answer, not a transport error.
            .http_status_as_error(false)
            .max_redirects(0)
            .build();
        Self {
            agent: config.into(),
        }
    }
}

/// The issuer's answer to a recorded use.
#[cfg(feature = "http")]
#[derive(serde::Deserialize)]
struct UsesAnswer {
    uses: Option<u64>,
    code: Option<String>,
}

#[cfg(feature = "http")]
impl UsageStore for HttpUsageStore {
    fn record_use(&self, used: &CredentialUse<'_>) -> Result<UseCount, String> {
        // The issuer is the trusted one the credential verified against, never a URL the
        // credential itself names.
        let url = format!(
            "{}/credentials/{}/uses",
            used.issuer.trim_end_matches('/'),
            percent_encode(used.jti)
        );
        let scheme = if used.dpop_proof.is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        let mut request = self
            .agent
            .post(&url)
            .header("authorization", &format!("{scheme} {}", used.token));
        if let Some(proof) = used.dpop_proof {
            request = request.header("dpop", proof);
        }
        let body = serde_json::json!({ "htm": used.method, "htu": used.url }).to_string();
        let mut resp = request
            .header("content-type", "application/json")
            .send(&body)
            .map_err(|e| format!("recording the use at {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let answer: UsesAnswer = serde_json::from_str(&text)
            .map_err(|e| format!("the issuer's answer ({status}) is not JSON: {e}"))?;
        match (status, answer) {
            (200, UsesAnswer { uses: Some(n), .. }) => Ok(UseCount::Counted(n)),
            (409, UsesAnswer { code: Some(c), .. }) if c == "use_limit_reached" => {
                Ok(UseCount::LimitReached)
            }
            (status, answer) => Err(format!(
                "the issuer refused to record the use ({status} {})",
                answer.code.unwrap_or_default()
            )),
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
#[cfg(feature = "http")]
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used<'a>(jti: &'a str, max_uses: u64, expires_at: i64, now: i64) -> CredentialUse<'a> {
        CredentialUse {
            issuer: "https://as.example",
            jti,
            token: "t",
            dpop_proof: None,
            method: "POST",
            url: "https://tool.example/",
            max_uses,
            expires_at,
            now,
        }
    }

    #[test]
    fn counts_up_to_the_limit_per_credential() {
        let store = InMemoryUsageStore::new(10);
        assert_eq!(
            store.record_use(&used("a", 2, 100, 0)),
            Ok(UseCount::Counted(1))
        );
        assert_eq!(
            store.record_use(&used("a", 2, 100, 0)),
            Ok(UseCount::Counted(2))
        );
        assert_eq!(
            store.record_use(&used("a", 2, 100, 0)),
            Ok(UseCount::LimitReached)
        );
        assert_eq!(
            store.record_use(&used("a", 2, 100, 0)),
            Ok(UseCount::LimitReached)
        );
        assert_eq!(
            store.record_use(&used("b", 1, 100, 0)),
            Ok(UseCount::Counted(1))
        );
        assert_eq!(
            store.record_use(&used("b", 1, 100, 0)),
            Ok(UseCount::LimitReached)
        );
    }

    #[test]
    fn a_full_store_forgets_expired_credentials_but_never_live_ones() {
        let store = InMemoryUsageStore::new(2);
        assert!(store.record_use(&used("a", 1, 10, 0)).is_ok());
        assert!(store.record_use(&used("b", 1, 100, 0)).is_ok());
        // Full of live credentials: a third is refused, not counted nowhere.
        assert!(store.record_use(&used("c", 1, 100, 5)).is_err());
        // Once "a" expired its slot is free; "b" is still spent.
        assert_eq!(
            store.record_use(&used("c", 1, 100, 50)),
            Ok(UseCount::Counted(1))
        );
        assert_eq!(
            store.record_use(&used("b", 1, 100, 50)),
            Ok(UseCount::LimitReached)
        );
    }
}
