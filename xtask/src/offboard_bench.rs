//! Offboarding at scale: a human owning `agents` agents that hold `per_agent` live
//! credentials each (issued through real CIBA flows, allowed by the procurement policy)
//! is deactivated through the admin API; measured are the time until the answer (every
//! credential revoked, agents suspended, trail written, committed) and the time until a
//! verifier that fetches the status list on every call refuses one of the credentials.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use countersign_verifier::status::HttpStatusSource;
use countersign_verifier::{Presentation, Rejection, Verifier};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize)]
pub struct OffboardReport {
    pub agents: usize,
    pub credentials: usize,
    /// How long issuing them took (not part of the measurement).
    pub seed_secs: f64,
    /// From sending the deactivation to its answer.
    pub revoke_ms: f64,
    /// From sending it to a verifier refusing a credential.
    pub visible_ms: f64,
    pub revoked: usize,
}

const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme","amount":120,"currency":"USD"}]"#;

async fn admin(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {body}");
    }
    Ok(body)
}

/// A credential and the DPoP key it is bound to.
type Bound = (String, std::sync::Arc<countersign_jose::SigningKeyPair>);

/// One credential for agent `id`: a $120 order the policy allows, then the token.
async fn credential(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    secret: &str,
) -> anyhow::Result<Bound> {
    let started: Value = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("scope", "openid"),
            ("login_hint", "owner"),
            ("authorization_details", ORDER),
        ])
        .send()
        .await?
        .json()
        .await?;
    let req = started["auth_req_id"]
        .as_str()
        .with_context(|| format!("bc-authorize: {started}"))?;
    let token_url = format!("{base}/token");
    let key = countersign_jose::SigningKeyPair::generate();
    let proof = crate::dpop::proof(&key, "POST", &token_url)?;
    let tokens: Value = http
        .post(&token_url)
        .basic_auth(id, Some(secret))
        .header("dpop", proof)
        .form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", req),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = tokens["access_token"]
        .as_str()
        .with_context(|| format!("token: {tokens}"))?
        .to_owned();
    Ok((token, std::sync::Arc::new(key)))
}

/// Whether a verifier with no status cache refuses `credential` as revoked.
async fn refused(
    issuer: &str,
    jwks: &countersign_jose::JwkSet,
    (credential, key): &Bound,
) -> anyhow::Result<bool> {
    const TOOL: &str = "https://tools.example.com/orders";
    let verifier = Verifier::builder()
        .trust_issuer(issuer, jwks)
        .status_source(HttpStatusSource::default())
        .status_ttl(Duration::ZERO)
        .build();
    let credential = credential.clone();
    let proof = crate::dpop::presenting(key, &credential, "POST", TOOL)?;
    let verdict = tokio::task::spawn_blocking(move || {
        verifier.verify(&Presentation {
            token: &credential,
            dpop_proof: Some(&proof),
            method: "POST",
            url: TOOL,
            action: None,
            arguments: None,
        })
    })
    .await?;
    match verdict {
        Ok(_) => Ok(false),
        Err(Rejection::Revoked) => Ok(true),
        Err(other) => bail!("the verifier refused the credential for another reason: {other:?}"),
    }
}

pub async fn run(
    base: &str,
    admin_key: &str,
    agents: usize,
    per_agent: usize,
    concurrency: usize,
) -> anyhow::Result<OffboardReport> {
    let http = reqwest::Client::new();
    admin(
        &http,
        base,
        admin_key,
        "/admin/v1/humans",
        json!({"subject": "owner", "email": "owner@example.com", "name": "Owner"}),
    )
    .await?;
    let mut fleet = Vec::with_capacity(agents);
    for i in 0..agents {
        let created = admin(
            &http,
            base,
            admin_key,
            "/admin/v1/agents",
            json!({"client_id": format!("fleet-{i}"), "owner": "owner", "auth_method": "client_secret_basic"}),
        )
        .await?;
        let secret = created["client_secret"]
            .as_str()
            .context("no client_secret")?
            .to_owned();
        fleet.push((format!("fleet-{i}"), secret));
    }
    let fleet = Arc::new(fleet);
    let total = agents * per_agent;
    let next = Arc::new(AtomicUsize::new(0));
    let seeded = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (http, fleet, next, base) =
            (http.clone(), fleet.clone(), next.clone(), base.to_owned());
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(last);
                }
                let (id, secret) = &fleet[n % fleet.len()];
                last = Some(credential(&http, &base, id, secret).await?);
            }
        })
    });
    let mut sample = None;
    for w in futures_util::future::join_all(workers).await {
        if let Some(c) = w?? {
            sample = Some(c);
        }
    }
    let sample = sample.context("no credential issued")?;
    let seed_secs = seeded.elapsed().as_secs_f64();
    let jwks: countersign_jose::JwkSet = http
        .get(format!("{base}/jwks.json"))
        .send()
        .await?
        .json()
        .await?;
    if refused(base, &jwks, &sample).await? {
        bail!("the sample credential is refused before offboarding");
    }

    let t0 = Instant::now();
    let done = admin(
        &http,
        base,
        admin_key,
        "/admin/v1/humans/owner/deactivate",
        json!({"reason": "benchmark"}),
    )
    .await?;
    let revoke_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let revoked = done["revoked"].as_array().map_or(0, Vec::len);
    while !refused(base, &jwks, &sample).await? {
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("the revocation did not reach the verifier within 30 s");
        }
    }
    let visible_ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(OffboardReport {
        agents,
        credentials: total,
        seed_secs,
        revoke_ms,
        visible_ms,
        revoked,
    })
}
