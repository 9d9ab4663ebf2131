//! Rate limits and quotas (see `crate::limits`).

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per second each authenticated client may make at `bc-authorize`, `token`
    /// and `/v1/decisions` (0: no limit), and the burst above it. Past it: 429 with
    /// `Retry-After` (`slow_down` at the token endpoint, as CIBA Core §11 defines).
    pub per_client_per_sec: f64,
    pub per_client_burst: f64,
    /// Requests per second per source address on endpoints reached before any
    /// authentication (wallet enrollment, credential uses, Security Event Tokens, admin
    /// sign-in), and the burst.
    pub per_source_per_sec: f64,
    pub per_source_burst: f64,
    /// Most step-ups one agent may have waiting for one approver; more are refused and
    /// traced (approval fatigue is an attack). 0: no cap.
    pub pending_per_approver: u32,
    /// Wrong `user_code`s accepted for a human before further attempts wait (then one a
    /// minute).
    pub user_code_attempts: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_client_per_sec: 200.0,
            per_client_burst: 400.0,
            per_source_per_sec: 20.0,
            per_source_burst: 40.0,
            pending_per_approver: 20,
            user_code_attempts: 5,
        }
    }
}

impl RateLimitConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            (
                "rate_limits.per_client_per_sec",
                self.per_client_per_sec,
                self.per_client_burst,
            ),
            (
                "rate_limits.per_source_per_sec",
                self.per_source_per_sec,
                self.per_source_burst,
            ),
        ];
        for (key, rate, burst) in rates {
            if !rate.is_finite() || rate < 0.0 || !burst.is_finite() || (rate > 0.0 && burst < 1.0)
            {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be a rate >= 0 with a burst >= 1".into(),
                });
            }
        }
        if self.user_code_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "rate_limits.user_code_attempts",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}
