//! Rate limits: token buckets per key (a client, a source address, a human), in this
//! process. Bounded by construction: keys are capped in length and number, and a full
//! table forgets buckets that refilled (which say nothing a fresh bucket would not).
//! With several replicas each enforces its own share; the limits are for floods, not
//! billing.

use std::collections::HashMap;
use std::sync::Mutex;

/// A limit: `per_sec` sustained, bursts of `burst`. `per_sec == 0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

/// Most distinct keys one limiter tracks.
const MAX_KEYS: usize = 100_000;
/// Longest key kept (client ids and addresses are far shorter; anything longer is cut).
const MAX_KEY_LEN: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Token buckets for one kind of key.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Refused: try again after this many seconds (at least 1, for `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has a token at `now_ms` (takes none).
    pub fn allows(&self, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        if self.rate.per_sec <= 0.0 {
            return Ok(());
        }
        let key = key.get(..MAX_KEY_LEN).unwrap_or(key);
        let Ok(buckets) = self.buckets.lock() else {
            return Ok(());
        };
        match buckets.get(key) {
            Some(b) => {
                let tokens = refilled(self.rate, *b, now_ms);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    let wait = ((1.0 - tokens) / self.rate.per_sec).ceil().max(1.0);
                    Err(RetryAfter(wait as u64))
                }
            }
            None => Ok(()),
        }
    }

    /// Takes one token from `key`'s bucket at `now_ms`, or says how long to wait.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        if self.rate.per_sec <= 0.0 {
            return Ok(());
        }
        let key = key.get(..MAX_KEY_LEN).unwrap_or(key);
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            let rate = self.rate;
            buckets.retain(|_, b| refilled(rate, *b, now_ms) < rate.burst);
            if buckets.len() >= MAX_KEYS {
                // Every tracked key is mid-burst: a flood of distinct keys. Refuse the
                // new one rather than forget a limited one.
                return Err(RetryAfter(1));
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.rate.burst,
            at_ms: now_ms,
        });
        let tokens = refilled(self.rate, *bucket, now_ms);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at_ms: now_ms,
            };
            Ok(())
        } else {
            *bucket = Bucket {
                tokens,
                at_ms: now_ms,
            };
            let wait = ((1.0 - tokens) / self.rate.per_sec).ceil().max(1.0);
            Err(RetryAfter(wait as u64))
        }
    }
}

fn refilled(rate: Rate, b: Bucket, now_ms: i64) -> f64 {
    let elapsed = now_ms.saturating_sub(b.at_ms).max(0) as f64 / 1000.0;
    (b.tokens + elapsed * rate.per_sec).min(rate.burst)
}

/// The server's limiters.
#[derive(Debug)]
pub struct Limits {
    /// Per authenticated client at `bc-authorize`, `token` and `/v1/decisions`.
    pub per_client: Limiter,
    /// Per source address on endpoints a caller reaches before authenticating.
    pub per_source: Limiter,
    /// Wrong `user_code` attempts per human.
    pub user_code_failures: Limiter,
}

impl Limits {
    pub fn from_config(c: &crate::config::RateLimitConfig) -> Self {
        Self {
            per_client: Limiter::new(Rate {
                per_sec: c.per_client_per_sec,
                burst: c.per_client_burst,
            }),
            per_source: Limiter::new(Rate {
                per_sec: c.per_source_per_sec,
                burst: c.per_source_burst,
            }),
            // A few wrong guesses, then one per minute: 6 digits take years.
            user_code_failures: Limiter::new(Rate {
                per_sec: 1.0 / 60.0,
                burst: f64::from(c.user_code_attempts),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let l = Limiter::new(Rate {
            per_sec: 2.0,
            burst: 3.0,
        });
        for _ in 0..3 {
            assert_eq!(l.check("a", 0), Ok(()));
        }
        assert_eq!(l.check("a", 0), Err(RetryAfter(1)));
        // Other keys have their own bucket.
        assert_eq!(l.check("b", 0), Ok(()));
        // Half a second refills one token.
        assert_eq!(l.check("a", 500), Ok(()));
        assert!(l.check("a", 500).is_err());
        let off = Limiter::new(Rate {
            per_sec: 0.0,
            burst: 0.0,
        });
        for _ in 0..1000 {
            assert_eq!(off.check("a", 0), Ok(()));
        }
    }

    #[test]
    fn a_flood_of_keys_stays_bounded() {
        let l = Limiter::new(Rate {
            per_sec: 1.0,
            burst: 1.0,
        });
        for i in 0..MAX_KEYS {
            assert!(l.check(&format!("k{i}"), 0).is_ok());
        }
        // Full of spent buckets: a new key is refused, not added.
        assert!(l.check("new", 0).is_err());
        assert_eq!(l.buckets.lock().unwrap().len(), MAX_KEYS);
        // Once they refilled they are forgotten and room is made.
        assert!(l.check("new", 5_000).is_ok());
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
        // Keys are cut to a bounded length.
        let long = "x".repeat(10_000);
        assert!(l.check(&long, 6_000).is_ok());
        assert!(
            l.buckets
                .lock()
                .unwrap()
                .keys()
                .all(|k| k.len() <= MAX_KEY_LEN)
        );
    }
}
