//! The approval round trip, human time excluded: an agent's `bc-authorize`, the wallet
//! fetching and verifying the signed request object, the wallet's passkey assertion and
//! device-signed approval accepted by the server, and the agent's token request
//! returning the credential. One request at a time (latency, not throughput), over
//! loopback, with real wallet-core on the software platform.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use countersign_shared::approval::DecisionKind;
use countersign_wallet_core::software::{self, MemoryStorage};
use countersign_wallet_core::{EnrollOptions, Wallet};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalReport {
    pub iterations: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Median of each step: bc-authorize, wallet show, wallet decide, token.
    pub step_p50_ms: [f64; 4],
}

struct Agent {
    http: ureq::Agent,
    base: String,
    authorization: String,
    /// Its DPoP key: each token request carries a fresh proof (the endpoint requires one).
    dpop: countersign_jose::SigningKeyPair,
}

impl Agent {
    fn post(&self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<serde_json::Value> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let url = format!("{}{path}", self.base);
        let mut request = self.http.post(&url);
        if path == "/token" {
            request = request.header("DPoP", crate::dpop::proof(&self.dpop, "POST", &url)?);
        }
        let mut resp = request
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body.as_bytes())?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string()?;
        if !status.is_success() {
            bail!("{path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}

const DETAILS: &str =
    r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;

/// One round trip; returns the time of each step.
fn round_trip(agent: &Agent, wallet: &Wallet) -> anyhow::Result<[Duration; 4]> {
    let start = Instant::now();
    let created = agent.post(
        "/bc-authorize",
        &[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("binding_message", "BENCH"),
            ("authorization_details", DETAILS),
        ],
    )?;
    let id = created["auth_req_id"].as_str().context("no auth_req_id")?;
    let created_at = Instant::now();
    wallet.show(id)?;
    let shown_at = Instant::now();
    wallet.decide(id, DecisionKind::Approve, None)?;
    let decided_at = Instant::now();
    let tokens = agent.post(
        "/token",
        &[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", id),
        ],
    )?;
    if tokens["access_token"].as_str().is_none() {
        bail!("no credential: {tokens}");
    }
    Ok([
        created_at - start,
        shown_at - created_at,
        decided_at - shown_at,
        decided_at.elapsed(),
    ])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Enrolls a software wallet with `invitation` and runs `iterations` round trips after
/// a warm-up. Blocking.
pub fn run(
    base: &str,
    client_id: &str,
    secret: &str,
    invitation: &str,
    iterations: usize,
) -> anyhow::Result<ApprovalReport> {
    let wallet = Wallet::new(software::platform(Arc::new(MemoryStorage::default())));
    let options = EnrollOptions {
        platform: "desktop".into(),
        name: Some("bench".into()),
        push_channel: "none".into(),
        push_token: None,
    };
    wallet.enroll(invitation, &options)?;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let agent = Agent {
        http: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
        base: base.to_owned(),
        authorization: format!("Basic {credentials}"),
        dpop: countersign_jose::SigningKeyPair::generate(),
    };
    for _ in 0..20 {
        round_trip(&agent, &wallet)?;
    }
    let steps: Vec<[Duration; 4]> = (0..iterations)
        .map(|_| round_trip(&agent, &wallet))
        .collect::<Result<_, _>>()?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut times: Vec<f64> = steps.iter().map(|s| ms(s.iter().sum())).collect();
    times.sort_by(f64::total_cmp);
    let mut step_p50_ms = [0.0; 4];
    for (i, p50) in step_p50_ms.iter_mut().enumerate() {
        let mut step: Vec<f64> = steps.iter().map(|s| ms(s[i])).collect();
        step.sort_by(f64::total_cmp);
        *p50 = percentile(&step, 0.5);
    }
    Ok(ApprovalReport {
        iterations,
        p50_ms: percentile(&times, 0.50),
        p95_ms: percentile(&times, 0.95),
        p99_ms: percentile(&times, 0.99),
        max_ms: times.last().copied().unwrap_or_default(),
        step_p50_ms,
    })
}

/// Enrolls a software phone with an APNs token (for the push benchmark). Blocking.
pub fn enroll_phone(invitation: &str) -> anyhow::Result<()> {
    let wallet = Wallet::new(software::platform(Arc::new(MemoryStorage::default())));
    let options = EnrollOptions {
        platform: "ios".into(),
        name: Some("bench phone".into()),
        push_channel: "apns".into(),
        push_token: Some("bench-phone-token".into()),
    };
    wallet.enroll(invitation, &options)?;
    Ok(())
}
