//! Rolling statistics of what an agent usually does for one action: how often (per hour)
//! and how much (quantity, amount). Policies see a request compared with them as
//! `context.anomaly` (e.g. `quantity_ratio`: requested quantity ÷ the usual 95th
//! percentile). Pure data; [`super::service`] loads samples from the store and keeps one
//! baseline per agent × action.

use std::collections::VecDeque;

use super::facts::AnomalyFacts;

/// Most samples kept per agent × action.
pub const MAX_SAMPLES: usize = 1000;
const HOUR_MS: i64 = 3_600_000;

/// One accepted action (allowed by policy, or approved by a human).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_ms: i64,
    pub quantity: Option<f64>,
    pub amount: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// Oldest first.
    samples: VecDeque<Sample>,
    /// Sorted copies for percentiles.
    quantities: Vec<f64>,
    amounts: Vec<f64>,
}

fn insert_sorted(v: &mut Vec<f64>, x: f64) {
    let i = v.partition_point(|y| *y < x);
    v.insert(i, x);
}

fn remove_sorted(v: &mut Vec<f64>, x: f64) {
    let i = v.partition_point(|y| *y < x);
    if v.get(i) == Some(&x) {
        v.remove(i);
    }
}

/// The 95th percentile (nearest rank) of sorted values.
fn p95(sorted: &[f64]) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() as f64 * 0.95).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Baseline {
    /// A baseline of `samples` (any order).
    pub fn from_samples(mut samples: Vec<Sample>) -> Self {
        samples.sort_by_key(|s| s.at_ms);
        let mut b = Self::default();
        for s in samples {
            b.add(s);
        }
        b
    }

    pub fn add(&mut self, s: Sample) {
        if self.samples.len() >= MAX_SAMPLES
            && let Some(old) = self.samples.pop_front()
        {
            self.forget(old);
        }
        if let Some(q) = s.quantity {
            insert_sorted(&mut self.quantities, q);
        }
        if let Some(a) = s.amount {
            insert_sorted(&mut self.amounts, a);
        }
        self.samples.push_back(s);
    }

    fn forget(&mut self, s: Sample) {
        if let Some(q) = s.quantity {
            remove_sorted(&mut self.quantities, q);
        }
        if let Some(a) = s.amount {
            remove_sorted(&mut self.amounts, a);
        }
    }

    /// Drops samples older than `since_ms`.
    pub fn expire(&mut self, since_ms: i64) {
        while let Some(s) = self.samples.front().copied() {
            if s.at_ms >= since_ms {
                break;
            }
            self.samples.pop_front();
            self.forget(s);
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// How a request for `quantity` / `amount` at `now_ms` compares. Ratios are given only
    /// with at least `min_samples` samples (a new agent has no "usual" yet).
    pub fn facts(
        &self,
        now_ms: i64,
        quantity: Option<f64>,
        amount: Option<f64>,
        min_samples: usize,
    ) -> AnomalyFacts {
        let rate_last_hour = self
            .samples
            .iter()
            .rev()
            .take_while(|s| s.at_ms > now_ms - HOUR_MS)
            .count() as i64;
        let enough = self.samples.len() >= min_samples.max(1);
        let ratio = |requested: Option<f64>, usual: Option<f64>| match (requested, usual) {
            (Some(r), Some(u)) if enough && u > 0.0 => Some(r / u),
            _ => None,
        };
        let quantity_p95 = p95(&self.quantities).filter(|_| enough);
        let amount_p95 = p95(&self.amounts).filter(|_| enough);
        AnomalyFacts {
            samples: self.samples.len() as i64,
            rate_last_hour,
            quantity_ratio: ratio(quantity, quantity_p95),
            quantity_p95,
            amount_ratio: ratio(amount, amount_p95),
            amount_p95,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64, quantity: f64) -> Sample {
        Sample {
            at_ms,
            quantity: Some(quantity),
            amount: None,
        }
    }

    #[test]
    fn an_agent_that_provisions_two_servers_asking_for_fifty() {
        let b = Baseline::from_samples((0..20).map(|i| sample(i * 60_000, 2.0)).collect());
        let usual = b.facts(20 * 60_000, Some(2.0), None, 5);
        assert_eq!(
            (usual.quantity_p95, usual.quantity_ratio),
            (Some(2.0), Some(1.0))
        );
        let fifty = b.facts(20 * 60_000, Some(50.0), None, 5);
        assert_eq!(fifty.quantity_ratio, Some(25.0));
        assert_eq!(fifty.samples, 20);
        assert_eq!(fifty.rate_last_hour, 20);
        assert_eq!(fifty.amount_ratio, None);
    }

    #[test]
    fn no_ratios_until_enough_history() {
        let b = Baseline::from_samples((0..4).map(|i| sample(i, 2.0)).collect());
        let f = b.facts(10, Some(50.0), None, 5);
        assert_eq!(
            (f.samples, f.quantity_ratio, f.quantity_p95),
            (4, None, None)
        );
    }

    #[test]
    fn percentile_ignores_rare_outliers_and_old_samples_expire() {
        let mut samples: Vec<Sample> = (0..99).map(|i| sample(i, 2.0)).collect();
        samples.push(sample(99, 1000.0));
        let mut b = Baseline::from_samples(samples);
        assert_eq!(b.facts(100, Some(4.0), None, 5).quantity_ratio, Some(2.0));
        b.expire(99);
        assert_eq!(b.len(), 1);
        assert_eq!(b.facts(100, Some(4.0), None, 1).quantity_p95, Some(1000.0));
        for i in 0..(MAX_SAMPLES as i64 + 10) {
            b.add(sample(100 + i, 3.0));
        }
        assert_eq!(b.len(), MAX_SAMPLES);
        assert_eq!(b.facts(0, None, None, 1).quantity_p95, Some(3.0));
    }
}
