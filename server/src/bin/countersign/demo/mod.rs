//! `countersign demo`: the whole promise on one laptop in a few seconds. A real server
//! starts in-process on a free loopback port over embedded SQLite in a temporary
//! directory; Alice is provisioned over SCIM; the procurement agent (`private_key_jwt` +
//! DPoP) and the procurement policy are registered; a software wallet on `wallet-core`
//! enrolls with a real passkey ceremony and device key. Then the story in [`story`]
//! runs against it over HTTP, and every step is narrated with its timing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use countersign_jose::JwkSet;
use countersign_server::approvals::ApprovalDesk;
use countersign_server::clock::{Clock as _, SystemClock};
use countersign_server::config::Config;
use countersign_server::policy::service::PolicyEngine;
use countersign_server::server::{self, Running};
use countersign_server::store::Store;
use countersign_server::{admin, approvals, directory, policy};
use countersign_wallet_core::software::{self, FileStorage};
use countersign_wallet_core::{EnrollOptions, Wallet, WalletError};
use serde_json::{Value, json};

mod agent;
mod narrator;
mod record;
mod story;

use agent::{DemoAgent, OrderTool};
use narrator::{Narrator, Tone, ms_since};

/// The brief's procurement policy, as documented (docs/policy/examples).
const PROCUREMENT_POLICY: &str =
    include_str!("../../../../../docs/policy/examples/procurement.cedar");
/// How long the tool caches the status list; also the server's `status_list_ttl_secs`.
const STATUS_TTL_SECS: u64 = 1;
const HUMAN: &str = "alice";
const AGENT: &str = "procurement";

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the database, keys and wallet in DIR (created if missing) instead of a
    /// temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Print each event as one JSON object per line instead of the timeline.
    #[arg(long)]
    json: bool,
    /// Stop at the approval and let you approve or deny in the terminal, as the wallet's
    /// human would.
    #[arg(long, conflicts_with = "json")]
    interactive: bool,
}

/// Runs the demo; exits 1 (after a `demo.failed` event) when anything does not happen as
/// it must.
pub async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let narrator = Narrator::new(args.json);
    let (temporary, dir) = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (None, dir.clone())
        }
        None => {
            let t = tempfile::tempdir().context("creating a temporary directory")?;
            let path = t.path().to_owned();
            (Some(t), path)
        }
    };
    let outcome = match Demo::set_up(narrator.clone(), &dir, args.interactive).await {
        Ok(mut demo) => {
            let told = demo.tell().await;
            demo.running.shutdown().await;
            told
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            let kept = temporary.is_none().then(|| dir.display().to_string());
            narrator.event(
                "demo.finished",
                Tone::Done,
                &match &kept {
                    Some(dir) => format!("done; everything is kept in {dir}"),
                    None => "done; the temporary directory is removed".into(),
                },
                json!({ "kept": kept }),
                &[],
            );
            Ok(())
        }
        Err(e) => {
            narrator.event(
                "demo.failed",
                Tone::Failed,
                &format!("the demo failed: {e:#}"),
                json!({ "error": format!("{e:#}") }),
                &[],
            );
            drop(temporary);
            std::process::exit(1);
        }
    }
}

/// A server and the parties around it.
pub struct Demo {
    narrator: Narrator,
    running: Running,
    issuer: String,
    http: reqwest::Client,
    scim_token: String,
    scim_id: String,
    agent: DemoAgent,
    tool: OrderTool,
    wallet: Arc<Wallet>,
    interactive: bool,
}

fn demo_config(dir: &Path) -> anyhow::Result<Config> {
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}?mode=rwc", dir.join("countersign.db").display()),
        keys_dir: dir.join("keys"),
        ..Config::default()
    };
    // A one-second polling interval and status TTL keep the story short; production
    // defaults are 5 and 10 seconds.
    config.ciba.poll_interval_secs = 1;
    config.tokens.status_list_ttl_secs = STATUS_TTL_SECS;
    config.authorization_details_types.insert(
        "delete_environment".into(),
        json!({
            "type": "object",
            "required": ["type", "environment"],
            "properties": {
                "type": {"const": "delete_environment"},
                "environment": {"type": "string", "minLength": 1}
            }
        }),
    );
    config
        .policy
        .actions
        .insert("delete_environment".into(), "destructive".into());
    config.validate()?;
    Ok(config)
}

impl Demo {
    async fn set_up(narrator: Narrator, dir: &Path, interactive: bool) -> anyhow::Result<Self> {
        narrator.part("Setting up: a server, Alice, her procurement agent, its policy, her wallet");
        let started = Instant::now();
        let config = demo_config(dir)?;
        let running = server::start(config, Arc::new(SystemClock)).await?;
        let issuer = running.base_url();
        narrator.event(
            "server.started",
            Tone::Done,
            &format!("authorization server at {issuer} (SQLite)"),
            json!({ "issuer": issuer, "database": "sqlite", "data_dir": dir, "took_ms": ms_since(started) }),
            &[format!("data: {}", dir.display())],
        );
        let state = &running.state;
        let http = reqwest::Client::new();

        let (scim_token, scim_id) =
            provision_alice(&narrator, &state.store, &http, &issuer).await?;
        let agent = register_agent(&narrator, &state.store, &issuer).await?;
        activate_policy(&narrator, &state.policy, &state.store).await?;
        let wallet = enroll_wallet(&narrator, &state.approvals, dir).await?;
        let jwks: JwkSet = http
            .get(format!("{issuer}/jwks.json"))
            .send()
            .await?
            .json()
            .await?;
        let tool = OrderTool::new(&issuer, &jwks, Duration::from_secs(STATUS_TTL_SECS));
        Ok(Self {
            narrator,
            running,
            issuer,
            http,
            scim_token,
            scim_id,
            agent,
            tool,
            wallet,
            interactive,
        })
    }
}

/// The identity provider provisions Alice over SCIM, as it would in production. Returns
/// its SCIM token and Alice's SCIM id.
async fn provision_alice(
    narrator: &Narrator,
    store: &Store,
    http: &reqwest::Client,
    issuer: &str,
) -> anyhow::Result<(String, String)> {
    let started = Instant::now();
    let now = SystemClock.now_ms();
    let scope = admin::Scope::Scim;
    let scim_token = admin::create_key(store, "demo-idp", scope, None, now, crate::CLI)
        .await?
        .secret
        .expose()
        .to_owned();
    let user = json!({
        "schemas": [countersign_server::scim::schema::USER],
        "userName": HUMAN,
        "displayName": "Alice Example",
        "name": {"givenName": "Alice", "familyName": "Example"},
        "emails": [{"value": "alice@example.com", "primary": true}],
        "active": true
    });
    let created = scim(
        http,
        issuer,
        &scim_token,
        reqwest::Method::POST,
        "/Users",
        &user,
    )
    .await?;
    if created.0 != 201 {
        bail!("SCIM create of Alice answered {}: {}", created.0, created.1);
    }
    let scim_id = created.1["id"].as_str().context("SCIM id")?.to_owned();
    narrator.event(
        "human.provisioned",
        Tone::Done,
        "Alice provisioned by the identity provider over SCIM",
        json!({ "subject": HUMAN, "scim_id": scim_id, "took_ms": ms_since(started) }),
        &[],
    );

    Ok((scim_token, scim_id))
}

async fn register_agent(
    narrator: &Narrator,
    store: &Store,
    issuer: &str,
) -> anyhow::Result<DemoAgent> {
    let now = SystemClock.now_ms();
    let started = Instant::now();
    let agent = DemoAgent::new(AGENT, issuer);
    directory::add_agent(
        store,
        directory::NewAgent {
            client_id: AGENT.into(),
            name: Some("Procurement agent".into()),
            owner: HUMAN.into(),
            auth_method: "private_key_jwt".into(),
            jwks: Some(agent.jwks()?),
            delivery_mode: None,
            notification_endpoint: None,
            require_signed_request: false,
            user_code_required: false,
            bearer_only: false,
            dpop_jkt: None,
            department: "procurement".into(),
            risk_tier: None,
            description: Some("places purchase orders".into()),
            tools: None,
            approver: None,
        },
        now,
        crate::CLI,
    )
    .await?;
    narrator.event(
        "agent.registered",
        Tone::Done,
        "procurement agent registered: owner Alice, private_key_jwt, DPoP-bound credentials",
        json!({
            "client_id": AGENT, "owner": HUMAN, "auth": "private_key_jwt",
            "dpop_jkt": agent.dpop_thumbprint()?, "took_ms": ms_since(started),
        }),
        &[],
    );

    Ok(agent)
}

async fn activate_policy(
    narrator: &Narrator,
    policy: &PolicyEngine,
    store: &Store,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let version = policy::manage::add(
        policy,
        store,
        SystemClock.now_ms(),
        PROCUREMENT_POLICY,
        Some("demo"),
        true,
        "demo",
    )
    .await?;
    narrator.event(
        "policy.activated",
        Tone::Done,
        &format!("procurement policy v{} active: {}", version.version, version.policies.join(", ")),
        json!({ "version": version.version, "policies": version.policies, "took_ms": ms_since(started) }),
        &[
            "< $400 allow · ≥ $400 step up to the owner · destructive deny".into(),
        ],
    );

    Ok(())
}

/// Alice's wallet (a software one, kept in `dir`) enrolls with an invitation.
async fn enroll_wallet(
    narrator: &Narrator,
    desk: &ApprovalDesk,
    dir: &Path,
) -> anyhow::Result<Arc<Wallet>> {
    let started = Instant::now();
    let invitation = approvals::enrollment::invite(desk, HUMAN, "demo")
        .await?
        .uri;
    let storage = FileStorage::open(&dir.join("wallet.json"))?;
    let wallet = Arc::new(Wallet::new(software::platform(Arc::new(storage))));
    let enrolled = blocking(&wallet, move |w| {
        w.enroll(
            &invitation,
            &EnrollOptions {
                platform: "desktop".into(),
                name: Some("Alice's demo wallet".into()),
                push_channel: "none".into(),
                push_token: None,
            },
        )
    })
    .await?;
    narrator.event(
        "wallet.enrolled",
        Tone::Done,
        "Alice's wallet enrolled: device key and passkey created, WebAuthn registration verified",
        json!({ "device_id": enrolled.device_id, "subject": enrolled.subject, "rp_id": enrolled.rp_id, "took_ms": ms_since(started) }),
        &[],
    );

    Ok(wallet)
}

/// Runs a blocking wallet operation (what a phone's background thread does) off the
/// runtime serving the requests it makes.
async fn blocking<T: Send + 'static>(
    wallet: &Arc<Wallet>,
    op: impl FnOnce(&Wallet) -> Result<T, WalletError> + Send + 'static,
) -> anyhow::Result<T> {
    let wallet = wallet.clone();
    Ok(tokio::task::spawn_blocking(move || op(&wallet)).await??)
}

/// A SCIM request with the identity provider's token: status and JSON body.
async fn scim(
    http: &reqwest::Client,
    issuer: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let response = http
        .request(method, format!("{issuer}/scim/v2{path}"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}
