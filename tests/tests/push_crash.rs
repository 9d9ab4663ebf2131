#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! A server process is killed (SIGKILL) after creating a request and before its alert
//! could be sent (APNs was down); after a restart the alert goes out exactly once, and a
//! further restart sends nothing again.
//!
//! The server runs as a child process: this test binary re-executes itself with
//! `COUNTERSIGN_CHILD_CONFIG` set, which makes `child_server` (otherwise a no-op) run a
//! server from that configuration file until it is killed.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use countersign_jose::SigningKeyPair;
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::directory::{self, NewHuman};
use countersign_server::store::Store;
use countersign_tests::fakes::apns::FakeApns;
use countersign_tests::fakes::{APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, apns_key_pem};
use countersign_tests::new_agent;
use countersign_tests::wallets::TestWallet;
use countersign_wallet_core::EnrollOptions;
use countersign_wallet_core::software::MemoryStorage;

const CHILD: &str = "COUNTERSIGN_CHILD_CONFIG";

#[test]
fn child_server() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let config = Config::load(Some(Path::new(&path)), Vec::new()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let _running = countersign_server::server::start(config, Arc::new(SystemClock))
            .await
            .unwrap();
        std::future::pending::<()>().await;
    });
}

fn spawn_child(config: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_server",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(base: &str) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the child server did not become ready");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_survives_a_crash_and_goes_out_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKeyPair::generate();
    let apns_port = free_port();
    let server_port = free_port();
    let base = format!("http://127.0.0.1:{server_port}");
    let ca_file = dir.path().join("apns-ca.pem");
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("cs.db").display());
    let config_file = dir.path().join("countersign.toml");
    std::fs::write(
        &config_file,
        format!(
            r#"listen = "127.0.0.1:{server_port}"
database_url = "{database}"
keys_dir = "{keys}"
[push]
initial_backoff_ms = 3000
[push.apns]
key = """{pem}"""
key_id = "{APNS_KEY_ID}"
team_id = "{APNS_TEAM}"
topic = "{APNS_TOPIC}"
base_url = "https://localhost:{apns_port}"
ca_file = "{ca}"
"#,
            keys = dir.path().join("keys").display(),
            pem = apns_key_pem(&key),
            ca = ca_file.display(),
        ),
    )
    .unwrap();

    // APNs is down: start it once for its CA, then stop it.
    let down = FakeApns::start(
        format!("127.0.0.1:{apns_port}").parse().unwrap(),
        APNS_TEAM,
        APNS_KEY_ID,
        key.public_jwk(),
        APNS_TOPIC,
    )
    .await;
    std::fs::copy(&down.ca_file, &ca_file).unwrap();
    down.stop();

    // The directory, written straight to the database the child will use.
    let store = Store::connect(&database, 1, Duration::ZERO).await.unwrap();
    store.migrate().await.unwrap();
    let new_human = NewHuman {
        subject: "alice".into(),
        email: "alice@example.com".into(),
        name: "Alice".into(),
        user_code: None,
        department: String::new(),
        title: String::new(),
        role: String::new(),
        manager: None,
    };
    directory::add_human(&store, new_human, 0, "test")
        .await
        .unwrap();
    let agent = directory::add_agent(
        &store,
        new_agent("procurement", "alice", "client_secret_basic"),
        0,
        "test",
    )
    .await
    .unwrap();
    let secret = agent.client_secret.unwrap();
    let admin = countersign_server::admin::create_key(
        &store,
        "t",
        countersign_server::admin::Scope::Admin,
        None,
        0,
        "test",
    )
    .await
    .unwrap();
    let admin = admin.secret.expose().to_owned();

    let mut child = spawn_child(&config_file);
    wait_ready(&base).await;
    let http = reqwest::Client::new();
    let invitation: serde_json::Value = http
        .post(format!("{base}/admin/v1/humans/alice/invitations"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = invitation["uri"].as_str().unwrap().to_owned();
    let phone = TestWallet::over(Arc::new(MemoryStorage::default()), None);
    phone
        .run(move |w| {
            w.enroll(
                &uri,
                &EnrollOptions {
                    platform: "ios".into(),
                    name: None,
                    push_channel: "apns".into(),
                    push_token: Some("phone-token".into()),
                },
            )
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the directory cache
    let created: serde_json::Value = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth("procurement", Some(&secret))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["auth_req_id"].as_str().unwrap().to_owned();

    // Wait for a failed attempt to be recorded (the lease released), then kill the server
    // before its next retry.
    let mut recorded = false;
    for _ in 0..100 {
        let rows = store.pushes_for_request(&id).await.unwrap();
        if rows.first().is_some_and(|(row, delivered, error)| {
            row.attempts >= 1 && delivered.is_none() && error.is_some()
        }) {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recorded, "the first attempt never failed");
    child.kill().unwrap();
    child.wait().unwrap();

    // APNs comes back (with a new certificate); the server restarts.
    let apns = FakeApns::start(
        format!("127.0.0.1:{apns_port}").parse().unwrap(),
        APNS_TEAM,
        APNS_KEY_ID,
        key.public_jwk(),
        APNS_TOPIC,
    )
    .await;
    std::fs::copy(&apns.ca_file, &ca_file).unwrap();
    let mut child = spawn_child(&config_file);
    wait_ready(&base).await;
    let got = apns.wait_for(1).await;
    assert_eq!(got[0].body["request_id"], id);
    for _ in 0..100 {
        if store.pushes_for_request(&id).await.unwrap()[0].1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Delivered is final: another restart sends nothing.
    let mut child = spawn_child(&config_file);
    wait_ready(&base).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(apns.received().len(), 1, "sent exactly once");
    child.kill().unwrap();
    child.wait().unwrap();
}
