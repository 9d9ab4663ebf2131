#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Crash consistency under load: a server process is killed (SIGKILL) several times, at
//! random moments, while concurrent agents run `bc-authorize` -> developer approval ->
//! `token` (with DPoP) against it, and started again each time on the same database, keys
//! and configuration file. Each client records only what the server acknowledged: a 200
//! with an `auth_req_id`, a 204 for the approval, a 200 with an access token (its `jti`).
//! A step that got no answer (the connection refused, reset or cut off around a kill) is
//! not recorded and is retried once the server is back; the retry may find that the lost
//! attempt had taken effect (`409` for an approval, `invalid_grant` for a token), which is
//! allowed then and only then.
//!
//! Afterwards, with the server up and the load stopped: every acknowledged request
//! exists; every acknowledged approval is still recorded and yields exactly one token
//! (polled now, a request still approved gets it, an issued one `invalid_grant`); no
//! request answered 200 at the token endpoint twice, no `jti` was handed out twice and
//! each one handed out is the one stored on its request, bound to its agent's DPoP key;
//! every issuance and approval has exactly one trace event, and every such event its
//! effect; no two credentials share a Token Status List entry; the audit chain and its
//! signed checkpoints verify.
//!
//! The server runs as a child process ([`countersign_tests::child`]). `CS_CRASH_SEED=N`
//! replays a kill schedule; the seed is printed with the summary (`--nocapture`).

mod client;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use countersign_server::clock::{Clock as _, SystemClock};
use countersign_server::directory;
use countersign_server::ids::AuthReqId;
use countersign_server::store::Store;
use countersign_server::store::auth_requests::{AuthRequestRecord, AuthRequestStatus};
use countersign_server::store::testing::{create_postgres_database, drop_postgres_database};
use countersign_server::store::tokens::{TokenRecord, TokenSelector};
use countersign_tests::child::{ChildServer, stable_port};
use countersign_tests::{Db, both_backends, new_agent, new_human};
use serde_json::Value;

use client::{AgentClient, FinalPoll, Ledger, POLL_INTERVAL};

/// Concurrent agents, each with its own client credentials and DPoP key.
const CLIENTS: usize = 8;
/// Server processes killed during the load (the last one started is not).
const KILLS: usize = 5;
/// How long a server lives after it answered `/readyz` before it is killed: at random in
/// this range, in milliseconds.
const UPTIME_MS: (u64, u64) = (800, 2500);
const DEV_DECIDER: &str = "developer-mode";
const ALL: i64 = i32::MAX as i64;

#[test]
fn child_server() {
    countersign_tests::child::serve_if_child();
}

both_backends!(acknowledged_work_survives_sigkill_under_load);

async fn acknowledged_work_survives_sigkill_under_load(db: Db) {
    let started = Instant::now();
    let seed = std::env::var("CS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let setup = Setup::new(db).await;
    let mut server = ChildServer::new(
        setup.config_file.clone(),
        setup.dir.path().to_owned(),
        setup.base.clone(),
    );
    server.spawn();
    server.wait_ready().await;

    let (ledgers, uptimes) = load_with_kills(&setup.agents, &mut server, seed).await;
    let load_time = started.elapsed();
    let unexpected: Vec<&String> = ledgers.iter().flat_map(|l| &l.unexpected).collect();
    assert!(
        unexpected.is_empty(),
        "answers no crash explains: {unexpected:#?}"
    );

    let mut handed_out = tokens_handed_out(&setup.agents, &ledgers);
    let rows = acknowledged_rows(&setup.store, &setup.agents, &ledgers).await;
    let final_tokens = poll_every_decided_request(&setup.agents, &rows, &mut handed_out).await;
    check_rows(&setup.store, &setup.agents, &rows, &handed_out).await;
    let issued = setup.store.tokens(TokenSelector::All, ALL).await.unwrap();
    check_traces(&setup.store, &issued).await;
    let report = audit_report(&setup).await;

    let sum = |f: fn(&Ledger) -> usize| ledgers.iter().map(f).sum::<usize>();
    let acknowledged_tokens = sum(|l| l.tokens.len());
    assert!(acknowledged_tokens > 0, "the load issued nothing");
    // Requests created whose 200 a kill cut off: never approved, still pending.
    let orphans = setup
        .store
        .count_pending_auth_requests(SystemClock.now_ms())
        .await
        .unwrap();
    println!(
        "{db:?} seed {seed}: {KILLS} kills after {uptimes:?} ms up; acknowledged {} requests, \
         {} approvals, {acknowledged_tokens} tokens; lost to kills: {} approvals and {} tokens \
         found done on retry, {orphans} requests created unacknowledged, {} attempts without \
         an answer; {} slow_down; {final_tokens} tokens issued by the final polls; stored {} \
         credentials, {} audit events, {} checkpoints; load {load_time:.1?}, total {:.1?}",
        sum(|l| l.requests.len()),
        sum(|l| l.approved.len()),
        sum(|l| l.approved_unacked.len()),
        sum(|l| l.tokens_unacked.len()),
        sum(|l| l.transport_errors),
        sum(|l| l.slow_downs),
        issued.len(),
        report["events"],
        report["checkpoints_verified"],
        started.elapsed(),
    );
    for line in server.logged() {
        println!("{line}");
    }
    server.kill();
    setup.close().await;
}

/// The database, the directory (a human and the agents) and an admin key, written before
/// any server runs, and the configuration every server process is started with.
struct Setup {
    db: Db,
    dir: tempfile::TempDir,
    database: String,
    config_file: PathBuf,
    base: String,
    store: Store,
    agents: Vec<Arc<AgentClient>>,
    admin_key: String,
}

impl Setup {
    async fn new(db: Db) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = match db {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("cs.db").display()),
            Db::Postgres => create_postgres_database()
                .await
                .expect("PostgreSQL must be reachable (127.0.0.1:5432)"),
        };
        let port = stable_port();
        let base = format!("http://127.0.0.1:{port}");
        let config_file = dir.path().join("countersign.toml");
        std::fs::write(
            &config_file,
            format!(
                r#"listen = "127.0.0.1:{port}"
database_url = "{database}"
keys_dir = "{keys}"
dev_approvals = true
[ciba]
poll_interval_secs = {interval}
[audit]
checkpoint_interval_secs = 1
"#,
                keys = dir.path().join("keys").display(),
                interval = POLL_INTERVAL.as_secs(),
            ),
        )
        .unwrap();

        let store = Store::connect(&database, 2, Duration::ZERO).await.unwrap();
        store.migrate().await.unwrap();
        directory::add_human(&store, new_human("alice", None), 0, "cli")
            .await
            .unwrap();
        let mut agents = Vec::new();
        for i in 0..CLIENTS {
            let created = directory::add_agent(
                &store,
                new_agent(&format!("agent-{i}"), "alice", "client_secret_basic"),
                0,
                "cli",
            )
            .await
            .unwrap();
            agents.push(Arc::new(AgentClient::new(
                created.agent.client_id,
                created.client_secret.unwrap(),
                base.clone(),
            )));
        }
        let admin = countersign_server::admin::create_key(
            &store,
            "crash-test",
            countersign_server::admin::Scope::Admin,
            None,
            0,
            "cli",
        )
        .await
        .unwrap();
        Self {
            db,
            dir,
            database,
            config_file,
            base,
            store,
            agents,
            admin_key: admin.secret.expose().to_owned(),
        }
    }

    async fn close(self) {
        self.store.close().await;
        if self.db == Db::Postgres {
            drop_postgres_database(&self.database).await.unwrap();
        }
    }
}

/// Runs the agents while the server is killed `KILLS` times, each time after a random
/// uptime, and started again; stops them once the last server is ready. Returns their
/// ledgers and the uptimes.
async fn load_with_kills(
    agents: &[Arc<AgentClient>],
    server: &mut ChildServer,
    seed: u64,
) -> (Vec<Ledger>, Vec<u64>) {
    let mut rng = XorShift(seed | 1);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = agents
        .iter()
        .map(|a| tokio::spawn(client::run(a.clone(), stop.clone())))
        .collect();
    let mut uptimes = Vec::new();
    for _ in 0..KILLS {
        let uptime = rng.between(UPTIME_MS.0, UPTIME_MS.1);
        uptimes.push(uptime);
        tokio::time::sleep(Duration::from_millis(uptime)).await;
        server.kill();
        server.spawn();
        server.wait_ready().await;
    }
    assert_eq!(server.generations(), KILLS + 1);
    stop.store(true, Ordering::SeqCst);
    let mut ledgers = Vec::new();
    for c in clients {
        ledgers.push(c.await.unwrap());
    }
    (ledgers, uptimes)
}

/// Every 200 the agents got at the token endpoint, by request; no request answered 200
/// twice and no jti handed out twice.
fn tokens_handed_out(agents: &[Arc<AgentClient>], ledgers: &[Ledger]) -> HashMap<String, String> {
    let mut handed_out = HashMap::new();
    let mut jtis = HashSet::new();
    for (agent, ledger) in agents.iter().zip(ledgers) {
        for (id, jti) in &ledger.tokens {
            assert!(
                handed_out.insert(id.clone(), jti.clone()).is_none(),
                "{}: request {id} answered 200 at the token endpoint twice",
                agent.client_id
            );
            assert!(jtis.insert(jti.clone()), "jti {jti} handed out twice");
        }
    }
    handed_out
}

/// The stored row of every acknowledged request, with its agent's index: each exists and
/// belongs to its agent; each approval acknowledged (or found done on retry) is recorded
/// as the developer's; each request with a token handed out is issued.
async fn acknowledged_rows(
    store: &Store,
    agents: &[Arc<AgentClient>],
    ledgers: &[Ledger],
) -> BTreeMap<String, (usize, AuthRequestRecord)> {
    let mut rows = BTreeMap::new();
    for (n, (agent, ledger)) in agents.iter().zip(ledgers).enumerate() {
        for id in &ledger.requests {
            let row = store
                .auth_request(&AuthReqId::from(id))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged request {id} is gone"));
            assert_eq!(row.client_id, agent.client_id, "{id}");
            rows.insert(id.clone(), (n, row));
        }
        for id in ledger.approved.iter().chain(&ledger.approved_unacked) {
            let row = &rows[id].1;
            assert!(
                matches!(
                    row.status,
                    AuthRequestStatus::Approved | AuthRequestStatus::Issued
                ),
                "the approval of {id} was lost: {:?}",
                row.status
            );
            assert_eq!(row.decided_by.as_deref(), Some(DEV_DECIDER), "{id}");
        }
        for (id, jti) in &ledger.tokens {
            assert_eq!(
                rows[id].1.status,
                AuthRequestStatus::Issued,
                "token {jti} was handed out for {id}, but the request is not issued: \
                 the answer came before the issuance was recorded"
            );
        }
    }
    rows
}

/// Polls every decided request once more, each agent its own: a request stored as
/// approved gets its token, one stored as issued `invalid_grant`. Adds the tokens handed
/// out now to `handed_out` (never a second one for a request, never a jti again); returns
/// how many there were.
async fn poll_every_decided_request(
    agents: &[Arc<AgentClient>],
    rows: &BTreeMap<String, (usize, AuthRequestRecord)>,
    handed_out: &mut HashMap<String, String>,
) -> usize {
    let mut per_agent: Vec<Vec<(String, AuthRequestStatus)>> = vec![Vec::new(); agents.len()];
    for (id, (n, row)) in rows {
        assert_ne!(row.status, AuthRequestStatus::Denied, "{id}");
        if row.status != AuthRequestStatus::Pending {
            per_agent[*n].push((id.clone(), row.status));
        }
    }
    let polls: Vec<_> = per_agent
        .into_iter()
        .enumerate()
        .map(|(n, ids)| tokio::spawn(client::final_polls(agents[n].clone(), ids)))
        .collect();
    let mut jtis: HashSet<String> = handed_out.values().cloned().collect();
    let mut issued_now = 0;
    for p in polls {
        for (id, outcome) in p.await.unwrap() {
            match outcome {
                FinalPoll::Token(jti) => {
                    issued_now += 1;
                    assert!(jtis.insert(jti.clone()), "jti {jti} handed out twice");
                    assert!(
                        handed_out.insert(id.clone(), jti).is_none(),
                        "request {id} answered 200 at the token endpoint twice"
                    );
                }
                FinalPoll::AlreadyIssued => {}
                FinalPoll::Other(what) => panic!("final poll of {id}: {what}"),
            }
        }
    }
    issued_now
}

/// Every decided request is now issued, and the jti handed out for it (if a kill did not
/// take it) is the one stored on it, a DPoP token bound to its agent's key.
async fn check_rows(
    store: &Store,
    agents: &[Arc<AgentClient>],
    rows: &BTreeMap<String, (usize, AuthRequestRecord)>,
    handed_out: &HashMap<String, String>,
) {
    for (id, (n, before)) in rows {
        if before.status == AuthRequestStatus::Pending {
            continue;
        }
        let row = store
            .auth_request(&AuthReqId::from(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, AuthRequestStatus::Issued, "{id}");
        let Some(jti) = handed_out.get(id) else {
            continue; // its token was lost to a kill: issued, never handed out
        };
        let token = store
            .token(jti)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("jti {jti} handed out for {id} is not stored"));
        assert_eq!(
            &token.auth_req_id, id,
            "jti {jti} is stored on another request"
        );
        assert_eq!(token.token_type, "DPoP", "{id}");
        assert_eq!(
            token.cnf_jkt.as_deref(),
            Some(agents[*n].jkt.as_str()),
            "{id}"
        );
    }
}

/// Over the whole database: every stored credential has exactly one `credential.issued`
/// event naming its request and every such event a stored credential; every issued request
/// exactly one `request.approved` event and every such event an issued request (all
/// approved requests are issued by now); no two credentials share a status list entry.
async fn check_traces(store: &Store, issued: &[TokenRecord]) {
    let mut entries = HashSet::new();
    for t in issued {
        assert!(
            entries.insert((t.status_list, t.status_idx)),
            "status list entry {:?}/{:?} given to two credentials (one is {})",
            t.status_list,
            t.status_idx,
            t.jti
        );
    }
    let stored: BTreeMap<&str, &str> = issued
        .iter()
        .map(|t| (t.jti.as_str(), t.auth_req_id.as_str()))
        .collect();
    assert_eq!(stored.len(), issued.len(), "a jti stored twice");

    let events = store
        .audit_events_of_kind("credential.issued", 0, ALL)
        .await
        .unwrap();
    let mut traced = BTreeSet::new();
    for e in &events {
        let detail: Value = serde_json::from_str(&e.detail).unwrap();
        let request = detail["request"].as_str().unwrap();
        assert!(
            traced.insert(e.subject.as_str()),
            "credential {} traced twice",
            e.subject
        );
        let Some(&stored_for) = stored.get(e.subject.as_str()) else {
            panic!(
                "credential {} of {request} is traced as issued but not stored",
                e.subject
            );
        };
        assert_eq!(stored_for, request, "credential {}", e.subject);
    }
    assert_eq!(
        traced.len(),
        issued.len(),
        "a stored credential is not traced"
    );

    let events = store
        .audit_events_of_kind("request.approved", 0, ALL)
        .await
        .unwrap();
    let approvals: BTreeSet<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(approvals.len(), events.len(), "an approval traced twice");
    let issued_requests: BTreeSet<&str> = stored.values().copied().collect();
    assert_eq!(
        approvals, issued_requests,
        "approved requests and approval traces differ"
    );
}

/// The server's own check of the audit chain and its signed checkpoints, which must pass.
async fn audit_report(setup: &Setup) -> Value {
    let report: Value = reqwest::Client::new()
        .get(format!("{}/admin/v1/audit/verify", setup.base))
        .bearer_auth(&setup.admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["events"].as_i64().unwrap() > 0, "{report}");
    assert_eq!(report["checkpoints_unverifiable"], 0, "{report}");
    report
}

/// A small seeded generator for the kill schedule (xorshift64).
struct XorShift(u64);

impl XorShift {
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low + 1)
    }
}
