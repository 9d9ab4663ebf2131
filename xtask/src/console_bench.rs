//! `cargo xtask console-bench`: the console at scale. Seeds a database through the
//! server's own store (so the trail's hash chain and Merkle log are the real thing) with
//! `--agents` agents, `--humans` humans and `--events` trace events, starts the release
//! server on it, signs in with a one-time link (`countersign admin sign-in-link`) and
//! fetches every console page `--requests` times in turn, one request at a time. Reports
//! p50/p95/p99 per page and rewrites the console section of docs/benchmarks.md.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use countersign_server::ids::AuthReqId;
use countersign_server::store::Store;
use countersign_server::store::audit::NewAuditRecord;
use countersign_server::store::auth_requests::{
    ApprovalMethod, AuthRequestRecord, AuthRequestStatus,
};
use countersign_server::store::clients::ClientRecord;
use countersign_server::store::humans::HumanRecord;
use countersign_server::store::tokens::{TokenCursor, TokenGrant, TokenSelector};

use crate::bench::{
    ServerProcess, binary, machine, psql, replace_between, run_date, run_ok, wait_ready,
    workspace_root,
};

const START: &str = "<!-- bench:console:start -->";
const END: &str = "<!-- bench:console:end -->";

#[derive(clap::Args)]
pub struct ConsoleBenchArgs {
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    #[arg(long, default_value_t = 100_000)]
    humans: usize,
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Issued credentials (each on its own approved request).
    #[arg(long, default_value_t = 100_000)]
    credentials: usize,
    /// Requests per page (after 10 warm-up requests).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    #[arg(long, default_value_t = 8092)]
    port: u16,
    /// Where PostgreSQL is (a database is created and dropped there).
    #[arg(
        long,
        env = "CS_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Only SQLite.
    #[arg(long)]
    sqlite_only: bool,
    /// Do not `cargo build --release` first.
    #[arg(long)]
    skip_build: bool,
    /// Print the table instead of rewriting docs/benchmarks.md.
    #[arg(long)]
    print_only: bool,
}

const DEPARTMENTS: [&str; 6] = ["finance", "sales", "engineering", "support", "legal", "ops"];
const OUTCOMES: [&str; 3] = ["allow", "deny", "step_up"];

/// Seeds through the store in batches; prints progress, since a million events take a
/// while.
/// Returns the cursor of a credential half-way down the list (issued about 15 days ago).
async fn seed(url: &str, args: &ConsoleBenchArgs) -> anyhow::Result<String> {
    let store = Store::connect(url, 4, Duration::ZERO).await?;
    store.migrate().await?;
    let now = now_ms();
    let day = 86_400_000_i64;
    let started = Instant::now();
    for chunk in (0..args.humans).collect::<Vec<_>>().chunks(2_000) {
        let mut tx = store.begin().await?;
        for &i in chunk {
            let human = HumanRecord {
                subject: format!("h{i:06}").into(),
                email: format!("person{i}@example.com"),
                name: format!("Person {i}"),
                active: i % 50 != 7,
                user_code_hash: None,
                created_at: now - day * 90,
                department: DEPARTMENTS[i % DEPARTMENTS.len()].into(),
                title: "Analyst".into(),
                role: if i % 10 == 0 { "manager" } else { "employee" }.into(),
                manager: (i > 0).then(|| format!("h{:06}", (i - 1) / 10).into()),
            };
            store.insert_human(&mut tx, &human).await?;
        }
        tx.commit().await?;
    }
    eprintln!(
        "seeded {} humans in {:.1} s",
        args.humans,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    for chunk in (0..args.agents).collect::<Vec<_>>().chunks(2_000) {
        let mut tx = store.begin().await?;
        for &i in chunk {
            let client = ClientRecord {
                client_id: format!("a{i:05}").into(),
                name: format!("Agent {i}"),
                owner_subject: format!("h{:06}", (i * 7) % args.humans).into(),
                auth_method: "client_secret_basic".into(),
                secret_hash: Some(countersign_server::secrets::hash_secret(&format!("s{i}"))),
                jwks: None,
                delivery_mode: "poll".into(),
                notification_endpoint: None,
                require_signed_request: false,
                user_code_required: false,
                enabled: i % 40 != 3,
                created_at: now - day * 60,
                department: DEPARTMENTS[i % DEPARTMENTS.len()].into(),
                risk_tier: ["low", "medium", "high"][i % 3].into(),
                description: None,
                tools: None,
                approver: None,
                bearer_only: false,
                dpop_jkt: None,
            };
            store.insert_client(&mut tx, &client).await?;
        }
        tx.commit().await?;
    }
    eprintln!(
        "seeded {} agents in {:.1} s",
        args.agents,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let span = day * 30;
    let events = args.events.max(1);
    let step = span / i64::try_from(events).unwrap_or(i64::MAX).max(1);
    let mut batch = Vec::with_capacity(5_000);
    for n in 0..events {
        let agent = format!("a{:05}", (n * 31) % args.agents.max(1));
        let human = format!("h{:06}", (n * 7) % args.humans.max(1));
        let at = now - span + step * i64::try_from(n).unwrap_or(0);
        let (kind, subject, detail) = match n % 20 {
            0 | 1 => (
                "credential.issued",
                format!("cred_{n}"),
                format!(r#"{{"agent":"{agent}","approved_by":"{human}"}}"#),
            ),
            2 => (
                "request.approved",
                format!("req_{n}"),
                format!(
                    r#"{{"agent":"{agent}","user":"{human}","approver":"{human}","waited_ms":{}}}"#,
                    (n * 7_919) % 300_000
                ),
            ),
            3 if n % 40 == 3 => (
                "credential.revoked",
                format!("cred_{}", n - 3),
                r#"{"reason":"bench"}"#.to_owned(),
            ),
            _ => (
                "decision.made",
                format!("req_{n}"),
                format!(
                    r#"{{"agent":"{agent}","owner":"{human}","user":"{human}","action":"purchase_order","resource":"vendor:acme","outcome":"{}","evaluated":"cedar","policies":[{{"id":"orders","version":1}}],"reasons":[],"approvers":[],"risk_signals":[],"inputs":[]}}"#,
                    OUTCOMES[n % OUTCOMES.len()]
                ),
            ),
        };
        batch.push(NewAuditRecord {
            at,
            actor: format!("agent:{agent}"),
            kind: kind.into(),
            subject,
            detail,
        });
        if batch.len() == 5_000 || n + 1 == events {
            let mut tx = store.begin().await?;
            store.append_audit_events(&mut tx, &batch).await?;
            tx.commit().await?;
            batch.clear();
            if (n + 1) % 100_000 == 0 {
                eprintln!(
                    "  {} events ({:.0}/s)",
                    n + 1,
                    (n + 1) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    eprintln!(
        "seeded {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    seed_credentials(&store, args, now).await?;
    let middle = TokenCursor {
        issued_at: now - day * 15,
        jti: "",
    };
    let middle = store
        .page_tokens(TokenSelector::All, Some(middle), 1)
        .await?
        .first()
        .map(TokenCursor::write)
        .context("no credential was issued")?;
    store.close().await;
    if url.starts_with("postgres") {
        // What autovacuum does minutes after a bulk load (PostgreSQL 13 and later vacuum
        // insert-only tables too): without statistics the planner walks the newest-first
        // credential index filtering for one person's rows, and until the visibility map
        // is set a covering index still reads the table.
        psql(url, "VACUUM ANALYZE")?;
        eprintln!("vacuumed and analysed the seeded database");
    }
    Ok(middle)
}

/// Issues `--credentials` credentials over the last 30 days, each on its own approved
/// request, the way the token endpoint does (insert, then the one-statement claim), many
/// at a time so the group commit batches them.
async fn seed_credentials(store: &Store, args: &ConsoleBenchArgs, now: i64) -> anyhow::Result<()> {
    use futures_util::{StreamExt, TryStreamExt};
    let started = Instant::now();
    let span = 86_400_000_i64 * 30;
    let count = i64::try_from(args.credentials).unwrap_or(i64::MAX).max(1);
    futures_util::stream::iter(0..args.credentials)
        .map(|n| async move {
            let i = i64::try_from(n).unwrap_or(0);
            // A tenth share their millisecond with the one before: ties the jti orders.
            let issued_at = now - span + span / count * (i - i64::from(n % 10 == 1));
            let agent = (n * 13) % args.agents.max(1);
            let id = AuthReqId::from(format!("creq_{n}"));
            store
                .insert_auth_request(&AuthRequestRecord {
                    id: id.clone(),
                    client_id: format!("a{agent:05}").into(),
                    subject: format!("h{:06}", (agent * 7) % args.humans.max(1)).into(),
                    scope: "openid".into(),
                    authorization_details: Some(
                        r#"[{"type":"purchase_order","amount":{"value":"120.00","currency":"EUR"}}]"#.into(),
                    ),
                    delivery_mode: countersign_shared::DeliveryMode::Poll,
                    status: AuthRequestStatus::Approved,
                    created_at: issued_at - 60_000,
                    expires_at: now + span,
                    interval_secs: 5,
                    decided_at: Some(issued_at - 30_000),
                    decided_by: Some(format!("h{:06}", (n * 11) % args.humans.max(1))),
                    decision_method: Some(ApprovalMethod::Developer.into()),
                    action: Some("purchase_order".into()),
                    ..AuthRequestRecord::default()
                })
                .await?;
            let grant = TokenGrant {
                jti: format!("cred_{n:07}"),
                token_type: "DPoP".into(),
                cnf_jkt: None,
                issued_at,
                expires_at: issued_at + 3_600_000,
                status_list: 1_000_000 + i / 100_000,
                status_idx: i % 100_000,
            };
            // A disabled agent's or an inactive human's request is not issued; like the
            // real token endpoint, the claim says so by returning nothing.
            store
                .claim_for_issue(&id, &format!("a{agent:05}").into(), &grant, issued_at)
                .await?;
            if (n + 1) % 20_000 == 0 {
                eprintln!(
                    "  {} credentials ({:.0}/s)",
                    n + 1,
                    (n + 1) as f64 / started.elapsed().as_secs_f64()
                );
            }
            anyhow::Ok(())
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await?;
    eprintln!(
        "seeded {} credentials in {:.1} s",
        args.credentials,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pages measured: every console page, and the lists on a filtered or later page.
fn pages(args: &ConsoleBenchArgs, middle: &str) -> Vec<(&'static str, String)> {
    let agent = format!("a{:05}", args.agents / 2);
    let human = format!("h{:06}", args.humans / 2);
    let request = format!("req_{}", (args.events / 2) / 20 * 20 + 5);
    vec![
        ("overview", "/console/".into()),
        ("agents", "/console/agents".into()),
        (
            "agents, later page",
            format!("/console/agents?after={agent}"),
        ),
        ("agents, search", "/console/agents?q=Agent%20999".into()),
        ("agent", format!("/console/agents/{agent}")),
        ("humans", "/console/humans".into()),
        (
            "humans, later page",
            format!("/console/humans?after={human}"),
        ),
        ("humans, search", "/console/humans?q=person4242".into()),
        ("human", format!("/console/humans/{human}")),
        (
            "offboarding preview",
            format!("/console/humans/{human}/offboard"),
        ),
        ("credentials", "/console/credentials".into()),
        (
            "credentials, later page",
            format!("/console/credentials?after={middle}"),
        ),
        (
            "credentials, by agent",
            format!("/console/credentials?agent={agent}"),
        ),
        (
            "credentials, by approver",
            format!("/console/credentials?approver={human}"),
        ),
        (
            "credentials, by owner",
            format!("/console/credentials?owner={human}"),
        ),
        (
            "credential",
            format!(
                "/console/credentials/{}",
                middle.split_once('.').map_or("", |(_, jti)| jti)
            ),
        ),
        ("approvers", "/console/approvers".into()),
        ("policies", "/console/policies".into()),
        ("trace", "/console/trace".into()),
        (
            "trace, older page",
            format!("/console/trace?before={}", args.events / 2),
        ),
        (
            "trace, by subject",
            format!("/console/trace?subject={request}"),
        ),
        (
            "trace, by kind",
            "/console/trace?kind=credential.revoked".into(),
        ),
        (
            "trace, agent and outcome",
            format!("/console/trace?agent={agent}&outcome=deny"),
        ),
        (
            "trace, a day 10 days ago",
            format!("/console/trace?from={day}&to={day}", day = days_ago(10)),
        ),
        ("trace event", format!("/console/trace/{}", args.events / 2)),
        (
            "who approved",
            format!("/console/trace/approvals?agent={agent}"),
        ),
        ("integrations", "/console/integrations".into()),
        ("passkeys", "/console/passkeys".into()),
    ]
}

/// The UTC date `n` days ago (YYYY-MM-DD), inside the seeded month.
fn days_ago(n: u32) -> String {
    Command::new("date")
        .args(["-u", "-d", &format!("{n} days ago"), "+%F"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Milliseconds at quantile `q` of sorted `samples`.
fn quantile(samples: &[f64], q: f64) -> f64 {
    let rank = ((samples.len() as f64) * q).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

struct PageReport {
    page: &'static str,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

async fn measure(
    base: &str,
    cookie: &str,
    args: &ConsoleBenchArgs,
    middle: &str,
) -> anyhow::Result<Vec<PageReport>> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut reports = Vec::new();
    for (page, path) in pages(args, middle) {
        let url = format!("{base}{path}");
        let mut samples = Vec::with_capacity(args.requests);
        for i in 0..args.requests + 10 {
            let started = Instant::now();
            let resp = http
                .get(&url)
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() {
                bail!(
                    "{page} ({path}) answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
            if i >= 10 {
                samples.push(elapsed);
            }
        }
        samples.sort_by(f64::total_cmp);
        let report = PageReport {
            page,
            p50: quantile(&samples, 0.50),
            p95: quantile(&samples, 0.95),
            p99: quantile(&samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
        };
        eprintln!(
            "  {page}: p50 {:.1} ms, p99 {:.1} ms",
            report.p50, report.p99
        );
        reports.push(report);
    }
    Ok(reports)
}

async fn bench_backend(
    args: &ConsoleBenchArgs,
    url: &str,
    dir: &Path,
) -> anyhow::Result<Vec<PageReport>> {
    let middle = seed(url, args).await?;
    let bin = binary();
    let issuer = format!("http://127.0.0.1:{}", args.port);
    let link: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new(&bin)
            .current_dir(dir)
            .args([
                "--database",
                url,
                "admin",
                "sign-in-link",
                "--role",
                "admin",
                "--json",
            ])
            .env("COUNTERSIGN_ISSUER", &issuer)
            .env("RUST_LOG", "warn"),
    )?)?;
    let token = link["token"]
        .as_str()
        .or_else(|| {
            link["url"]
                .as_str()
                .and_then(|u| u.split_once("token=").map(|(_, t)| t))
        })
        .context("sign-in-link --json printed no token")?
        .to_owned();
    let listen = format!("127.0.0.1:{}", args.port);
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new(&bin)
        .current_dir(dir)
        .args(["--database", url, "serve", "--listen", &listen])
        .env_remove("RUST_LOG")
        .env("COUNTERSIGN_ISSUER", &issuer)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let _server = ServerProcess(child);
    wait_ready(&issuer).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let resp = http
        .post(format!("{issuer}/console/sign-in"))
        .header(reqwest::header::ORIGIN, &issuer)
        .form(&[("token", token.as_str())])
        .send()
        .await?;
    let cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("signing in set no cookie")?
        .to_owned();
    measure(&issuer, &cookie, args, &middle).await
}

fn render(args: &ConsoleBenchArgs, rows: &[(&str, Vec<PageReport>)]) -> String {
    let mut out = format!(
        "Measured {} on {}.\n\nCommand: `cargo xtask console-bench --agents {} --humans {} \
         --events {} --credentials {} --requests {}`\n\n| storage | page | p50 ms | p95 ms | p99 ms | max ms |\n\
         |---|---|---:|---:|---:|---:|\n",
        run_date(),
        machine(),
        args.agents,
        args.humans,
        args.events,
        args.credentials,
        args.requests
    );
    for (storage, reports) in rows {
        for r in reports {
            out.push_str(&format!(
                "| {storage} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                r.page, r.p50, r.p95, r.p99, r.max
            ));
        }
    }
    out
}

pub async fn run(args: ConsoleBenchArgs) -> anyhow::Result<()> {
    if !args.skip_build {
        run_ok(
            Command::new(env!("CARGO"))
                .current_dir(workspace_root())
                .args(["build", "--release", "--bin", "countersign"]),
        )?;
    }
    let dir = std::env::temp_dir().join(format!(
        "countersign-console-bench-{}",
        countersign_jose::random_b64url(6)
    ));
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("console.db").display());
    eprintln!("SQLite:");
    rows.push(("SQLite", bench_backend(&args, &sqlite, &dir).await?));
    if !args.sqlite_only {
        let db = format!("cs_console_bench_{}", std::process::id());
        psql(&args.postgres_url, &format!("DROP DATABASE IF EXISTS {db}"))?;
        psql(&args.postgres_url, &format!("CREATE DATABASE {db}"))?;
        let base = args
            .postgres_url
            .rsplit_once('/')
            .map_or(args.postgres_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{db}?sslmode=disable");
        let pg_dir = dir.join("pg");
        std::fs::create_dir_all(&pg_dir)?;
        eprintln!("PostgreSQL:");
        let result = bench_backend(&args, &url, &pg_dir).await;
        psql(
            &args.postgres_url,
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        )?;
        rows.push(("PostgreSQL", result?));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let table = render(&args, &rows);
    println!("{table}");
    if !args.print_only {
        let path = workspace_root().join("docs/benchmarks.md");
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        let block = format!("{START}\n{table}{END}");
        std::fs::write(&path, replace_between(&existing, START, END, &block))?;
    }
    Ok(())
}
