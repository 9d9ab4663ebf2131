//! A small closed-loop load generator: N workers, each sending its next request as soon as
//! the previous one answered, over keep-alive connections. Light enough (one tokio runtime,
//! pre-built headers) that on the same 2-core machine it is not what limits the numbers.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// One backchannel authentication request per iteration.
    Authorize,
    /// bc-authorize, developer approval, token request: a whole CIBA flow per iteration.
    Flow,
    /// One `POST /v1/decisions` (a purchase order; amounts alternate below and above the
    /// procurement policy's $400 threshold), traced durably.
    Decision,
    /// One `GET /healthz`: no work but HTTP, the floor the other scenarios stand on
    /// (the generator shares the machine's cores with the server).
    Healthz,
    /// One AuthZEN `POST /access/v1/evaluation` (the agent about itself, the same
    /// purchase orders as `decision`), traced durably.
    AuthzenEvaluation,
    /// One AuthZEN `POST /access/v1/evaluations` of [`AUTHZEN_BATCH`] purchase orders
    /// (`execute_all`), traced durably with one commit; rates count decisions.
    AuthzenBatch,
}

/// Evaluations in one `authzen-batch` request.
pub const AUTHZEN_BATCH: usize = 100;

impl Scenario {
    /// Decisions one iteration makes (the rate of a batch counts each).
    pub fn decisions(self) -> usize {
        match self {
            Self::AuthzenBatch => AUTHZEN_BATCH,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
    #[arg(long)]
    pub client_id: String,
    #[arg(long)]
    pub secret: String,
    #[arg(long, default_value = "alice")]
    pub login_hint: String,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub concurrency: usize,
    pub seconds: f64,
    pub iterations: u64,
    pub errors: u64,
    /// Decisions per second (for a batch, each of its evaluations counts).
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Share of the machine's CPU time the hypervisor gave to other guests while the run
    /// measured (`steal` in /proc/stat; 0 where it is not reported): on a shared VM, the
    /// latencies above grow with it.
    pub steal_pct: f64,
}

/// (steal, total) jiffies of all CPUs so far.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user).
    let steal = *fields.get(7)?;
    Some((steal, fields.iter().take(8).sum()))
}

struct Worker {
    http: reqwest::Client,
    base: String,
    auth: String,
    authorize_body: String,
    decision_bodies: [String; 2],
    authzen_bodies: [String; 2],
    authzen_batch: String,
    turn: std::sync::atomic::AtomicUsize,
    /// The agent's DPoP key: each token request carries a fresh proof by it.
    dpop: countersign_jose::SigningKeyPair,
}

impl Worker {
    async fn authorize(&self) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/bc-authorize", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(self.authorize_body.clone())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("bc-authorize answered {}", resp.status());
        }
        let body: serde_json::Value = resp.json().await?;
        body["auth_req_id"]
            .as_str()
            .map(str::to_owned)
            .context("no auth_req_id")
    }

    async fn flow(&self) -> anyhow::Result<()> {
        let id = self.authorize().await?;
        let approve = self
            .http
            .post(format!("{}/dev/approvals/{id}/approve", self.base))
            .send()
            .await?;
        if approve.status().as_u16() != 204 {
            bail!("approve answered {}", approve.status());
        }
        let token_url = format!("{}/token", self.base);
        let proof = crate::dpop::proof(&self.dpop, "POST", &token_url)?;
        let token = self
            .http
            .post(token_url)
            .header("authorization", &self.auth)
            .header("dpop", proof)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={id}"
            ))
            .send()
            .await?;
        if !token.status().is_success() {
            bail!("token answered {}", token.status());
        }
        token.bytes().await?;
        Ok(())
    }

    async fn decision(&self) -> anyhow::Result<()> {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = self
            .http
            .post(format!("{}/v1/decisions", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(self.decision_bodies[turn % 2].clone())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("decisions answered {}", resp.status());
        }
        let body: serde_json::Value = resp.json().await?;
        if body["decision_id"].as_str().is_none() {
            bail!("the decision was not recorded: {body}");
        }
        Ok(())
    }

    async fn authzen(&self, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("{path} answered {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    async fn authzen_evaluation(&self) -> anyhow::Result<()> {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = self
            .authzen("/access/v1/evaluation", &self.authzen_bodies[turn % 2])
            .await?;
        if body["context"]["decision_id"].as_str().is_none() {
            bail!("the decision was not recorded: {body}");
        }
        Ok(())
    }

    async fn authzen_batch(&self) -> anyhow::Result<()> {
        let body = self
            .authzen("/access/v1/evaluations", &self.authzen_batch)
            .await?;
        let answered = body["evaluations"].as_array().map_or(0, Vec::len);
        if answered != AUTHZEN_BATCH {
            bail!("{answered} of {AUTHZEN_BATCH} evaluations answered");
        }
        Ok(())
    }

    async fn healthz(&self) -> anyhow::Result<()> {
        let resp = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("healthz answered {}", resp.status());
        }
        resp.bytes().await?;
        Ok(())
    }

    async fn iteration(&self, scenario: Scenario) -> anyhow::Result<()> {
        match scenario {
            Scenario::Authorize => self.authorize().await.map(|_| ()),
            Scenario::Flow => self.flow().await,
            Scenario::Decision => self.decision().await,
            Scenario::Healthz => self.healthz().await,
            Scenario::AuthzenEvaluation => self.authzen_evaluation().await,
            Scenario::AuthzenBatch => self.authzen_batch().await,
        }
    }
}

/// An AuthZEN evaluation of a purchase order of `amount` by agent `client_id`.
fn authzen_order(client_id: &str, amount: u32) -> serde_json::Value {
    serde_json::json!({
        "subject": {"type": "agent", "id": client_id},
        "action": {"name": "purchase_order"},
        "resource": {"type": "erp", "id": "po",
                     "properties": {"vendor": "Acme", "amount": amount, "currency": "USD"}},
    })
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

pub async fn run(args: &LoadArgs) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .http1_only()
        .build()?;
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", args.client_id, args.secret));
    let worker = std::sync::Arc::new(Worker {
        http,
        base: args.base.trim_end_matches('/').to_owned(),
        auth: format!("Basic {credentials}"),
        authorize_body: format!(
            "scope=openid&login_hint={}&binding_message=bench",
            args.login_hint
        ),
        decision_bodies: [120, 1200].map(|amount| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair(
                    "authorization_details",
                    &serde_json::json!([{"type": "purchase_order", "vendor": "Acme",
                        "amount": amount, "currency": "USD"}])
                    .to_string(),
                )
                .finish()
        }),
        authzen_bodies: [120, 1200].map(|amount| authzen_order(&args.client_id, amount).to_string()),
        authzen_batch: serde_json::json!({
            "subject": {"type": "agent", "id": args.client_id},
            "action": {"name": "purchase_order"},
            "evaluations": (0..AUTHZEN_BATCH)
                .map(|i| serde_json::json!({"resource": authzen_order(&args.client_id, if i % 2 == 0 { 120 } else { 1200 })["resource"]}))
                .collect::<Vec<_>>(),
        })
        .to_string(),
        turn: std::sync::atomic::AtomicUsize::new(0),
        dpop: countersign_jose::SigningKeyPair::generate(),
    });
    // Fail fast with a readable reason if the server is not set up for this.
    worker
        .iteration(args.scenario)
        .await
        .context("first request failed")?;

    let warmup_end = Instant::now() + Duration::from_secs(args.warmup_secs);
    let end = warmup_end + Duration::from_secs(args.duration_secs);
    let steal = tokio::spawn(async move {
        tokio::time::sleep_until(warmup_end.into()).await;
        let from = cpu_times();
        tokio::time::sleep_until(end.into()).await;
        match (from, cpu_times()) {
            (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
                100.0 * (s1 - s0) as f64 / (t1 - t0) as f64
            }
            _ => 0.0,
        }
    });
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let worker = worker.clone();
        let scenario = args.scenario;
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::with_capacity(65_536);
            let mut errors = 0u64;
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let ok = worker.iteration(scenario).await.is_ok();
                if start >= warmup_end {
                    if ok {
                        latencies_us
                            .push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies_us, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let seconds = args.duration_secs as f64;
    Ok(Report {
        scenario: args.scenario,
        concurrency: args.concurrency,
        seconds,
        iterations: all.len() as u64,
        errors,
        per_second: (all.len() * args.scenario.decisions()) as f64 / seconds,
        p50_ms: percentile(&all, 0.50),
        p95_ms: percentile(&all, 0.95),
        p99_ms: percentile(&all, 0.99),
        steal_pct: steal.await?,
    })
}
