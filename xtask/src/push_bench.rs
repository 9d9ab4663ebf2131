//! Time from `bc-authorize` to the alert's arrival at a (local, fake) APNs, under load:
//! `concurrency` agents together send `rate` backchannel requests per second (open loop:
//! at a steady pace, not as fast as they can) for `duration`; every request alerts the
//! approver's phone, and each alert's arrival is matched to the moment its request was
//! sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_tests::fakes::apns::FakeApns;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    pub concurrency: usize,
    /// Offered load, requests per second.
    pub rate: u32,
    pub requests: usize,
    pub delivered: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

pub async fn run(
    base: &str,
    client_id: &str,
    secret: &str,
    apns: &FakeApns,
    concurrency: usize,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<PushReport> {
    let period = Duration::from_secs_f64(concurrency as f64 / f64::from(rate.max(1)));
    let http = reqwest::Client::new();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let before = apns.received().len();
    let stop = Instant::now() + duration;
    let workers = (0..concurrency).map(|_| {
        let (http, sent) = (http.clone(), sent.clone());
        let url = format!("{base}/bc-authorize");
        let (client_id, secret) = (client_id.to_owned(), secret.to_owned());
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(period);
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < stop {
                pace.tick().await;
                let t0 = Instant::now();
                let Ok(response) = http
                    .post(&url)
                    .basic_auth(&client_id, Some(&secret))
                    .form(&[("scope", "openid"), ("login_hint", "alice")])
                    .send()
                    .await
                else {
                    continue;
                };
                if let Ok(body) = response.json::<serde_json::Value>().await
                    && let Some(id) = body["auth_req_id"].as_str()
                    && let Ok(mut sent) = sent.lock()
                {
                    sent.insert(id.to_owned(), t0);
                }
            }
        })
    });
    futures_util::future::join_all(workers).await;
    // Let the last alerts arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let mut latencies: Vec<f64> = apns.received()[before..]
        .iter()
        .filter_map(|d| {
            let id = d.body["request_id"].as_str()?;
            let t0 = sent.get(id)?;
            Some(d.at.saturating_duration_since(*t0).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(PushReport {
        concurrency,
        rate,
        requests: sent.len(),
        delivered: latencies.len(),
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
    })
}
